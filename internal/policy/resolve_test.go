package policy

import (
	"context"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	slov1alpha1 "github.com/budgetgate/budgetgate/api/v1alpha1"
)

func TestForExceptions(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := slov1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	ebp := func(name, maxException string) *slov1alpha1.ErrorBudgetPolicy {
		return &slov1alpha1.ErrorBudgetPolicy{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: slov1alpha1.ErrorBudgetPolicySpec{
				Rules:                []slov1alpha1.PolicyRule{{Name: "exhausted", BudgetRemainingBelow: dec("0")}},
				MaxExceptionDuration: slov1alpha1.Duration(maxException),
			},
		}
	}
	slo := func(ns, name, policy string) *slov1alpha1.ServiceLevelObjective {
		s := &slov1alpha1.ServiceLevelObjective{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
		if policy != "" {
			s.Spec.PolicyRef = &slov1alpha1.PolicyReference{Name: policy}
		}
		return s
	}
	objects := []client.Object{
		ebp("long", "72h"), ebp("short", "2h"),
		slo("only-long", "a", "long"),
		slo("mixed", "a", "long"), slo("mixed", "b", "short"),
		slo("missing", "a", "does-not-exist"),
		slo("default", "a", ""), // asks for "default", which does not exist: the built-in policy
	}
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(objects...).Build()
	tests := []struct {
		namespace string
		policy    string
		max       time.Duration
	}{
		{"only-long", "long", 72 * time.Hour},   // a policy may raise the bound
		{"mixed", "short", 2 * time.Hour},       // the strictest policy wins
		{"missing", "built-in", 24 * time.Hour}, // missing policies are skipped
		{"default", "built-in", 24 * time.Hour},
		{"empty", "built-in", 24 * time.Hour},
	}
	for _, tt := range tests {
		p, err := ForExceptions(context.Background(), c, tt.namespace)
		if err != nil {
			t.Fatal(err)
		}
		if p.Name != tt.policy || p.MaxExceptionDuration != tt.max {
			t.Errorf("ForExceptions(%s) = %s %s, want %s %s", tt.namespace, p.Name, p.MaxExceptionDuration, tt.policy, tt.max)
		}
	}
}
