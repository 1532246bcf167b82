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

func TestResolve(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := slov1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	valid := &slov1alpha1.ErrorBudgetPolicy{ObjectMeta: metav1.ObjectMeta{Name: "strict"},
		Spec: slov1alpha1.ErrorBudgetPolicySpec{Rules: []slov1alpha1.PolicyRule{{Name: "exhausted", BudgetRemainingBelow: dec("0")}}}}
	invalid := &slov1alpha1.ErrorBudgetPolicy{ObjectMeta: metav1.ObjectMeta{Name: "broken"},
		Spec: slov1alpha1.ErrorBudgetPolicySpec{Rules: []slov1alpha1.PolicyRule{{Name: "x", BudgetRemainingBelow: dec("2")}}}}
	// An object named built-in cannot exist on a real API server (CEL rejects
	// it); if one did, both controller and webhook would still use the built-in policy.
	impostor := &slov1alpha1.ErrorBudgetPolicy{ObjectMeta: metav1.ObjectMeta{Name: "built-in"},
		Spec: slov1alpha1.ErrorBudgetPolicySpec{Mode: slov1alpha1.ModeDryRun, Rules: valid.Spec.Rules}}
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(valid, invalid, impostor).Build()
	ref := func(name string) *slov1alpha1.ServiceLevelObjective {
		s := &slov1alpha1.ServiceLevelObjective{}
		if name != "" {
			s.Spec.PolicyRef = &slov1alpha1.PolicyReference{Name: name}
		}
		return s
	}
	tests := []struct {
		ref, want, err string
	}{
		{"", "built-in", ""},         // no "default": the built-in policy
		{"built-in", "built-in", ""}, // named explicitly
		{"strict", "strict", ""},
		{"missing", "", `ErrorBudgetPolicy "missing" not found`},
		{"broken", "", `ErrorBudgetPolicy "broken" is invalid: spec.rules[0].budgetRemainingBelow: "2" must be below 1 (the whole budget), or the rule would always fire`},
	}
	ctx := context.Background()
	for _, tt := range tests {
		p, err := Resolve(ctx, c, ref(tt.ref))
		if tt.err != "" {
			if err == nil || err.Error() != tt.err {
				t.Errorf("Resolve(%q) error = %v, want %s", tt.ref, err, tt.err)
			}
			continue
		}
		if err != nil || p.Name != tt.want || p.Mode != slov1alpha1.ModeEnforce {
			t.Errorf("Resolve(%q) = %s %s, %v; want %s Enforce", tt.ref, p.Name, p.Mode, err, tt.want)
		}
		// What the controller resolves, the webhook finds again by name.
		q, err := ByName(ctx, c, p.Name)
		if err != nil || q.Name != p.Name || q.Mode != p.Mode {
			t.Errorf("ByName(%q) = %s %s, %v", p.Name, q.Name, q.Mode, err)
		}
	}
	if _, err := ByName(ctx, c, "missing"); !IsNotFound(err) {
		t.Errorf("ByName(missing) = %v, want NotFoundError", err)
	}
	if _, err := ByName(ctx, c, "broken"); !IsInvalid(err) {
		t.Errorf("ByName(broken) = %v, want InvalidError", err)
	}
	if _, err := FromSpec("built-in", &valid.Spec); err == nil ||
		err.Error() != `metadata.name: "built-in" is reserved for budgetgate's built-in policy, which SLOs select with policyRef: {name: built-in}; `+
			`choose another name, e.g. "default", the policy SLOs without a policyRef use` {
		t.Errorf("FromSpec(built-in) = %v", err)
	}
}
