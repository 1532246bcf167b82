package policy

import (
	"context"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	slov1alpha1 "github.com/budgetgate/budgetgate/api/v1alpha1"
)

func binding(name, policy string, override slov1alpha1.OverrideMode, priority int32, sel map[string]string) *slov1alpha1.ErrorBudgetPolicyBinding {
	return &slov1alpha1.ErrorBudgetPolicyBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: slov1alpha1.ErrorBudgetPolicyBindingSpec{
			NamespaceSelector: metav1.LabelSelector{MatchLabels: sel},
			PolicyRef:         slov1alpha1.PolicyReference{Name: policy},
			AllowOverride:     override,
			Priority:          priority,
		},
	}
}

func namespace(name string, lbls map[string]string) *corev1.Namespace {
	l := map[string]string{corev1.LabelMetadataName: name}
	for k, v := range lbls {
		l[k] = v
	}
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: l}}
}

func TestSelectBinding(t *testing.T) {
	audit := *binding("audit", "audit", "", 0, nil) // {}: every namespace
	enforce := *binding("enforce", "platform", "", 10, map[string]string{"budgetgate.dev/enforce": "true"})
	tieA := *binding("a-tie", "x", "", 10, map[string]string{"team": "pay"})
	tieB := *binding("b-tie", "y", "", 10, map[string]string{"team": "pay"})
	bad := *binding("bad", "x", "", 5, nil)
	bad.Spec.NamespaceSelector = metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "a b", Operator: "In", Values: []string{"x"}}}}
	tests := []struct {
		name     string
		bindings []slov1alpha1.ErrorBudgetPolicyBinding
		labels   map[string]string
		want     string
		wantErr  bool
	}{
		{"none", nil, nil, "", false},
		{"a cluster-wide binding selects every namespace", []slov1alpha1.ErrorBudgetPolicyBinding{audit}, map[string]string{"x": "y"}, "audit", false},
		{"the higher priority wins", []slov1alpha1.ErrorBudgetPolicyBinding{audit, enforce}, map[string]string{"budgetgate.dev/enforce": "true"}, "enforce", false},
		{"a binding that does not select the namespace", []slov1alpha1.ErrorBudgetPolicyBinding{audit, enforce}, map[string]string{"budgetgate.dev/enforce": "false"}, "audit", false},
		{"equal priorities: the first name", []slov1alpha1.ErrorBudgetPolicyBinding{tieB, tieA}, map[string]string{"team": "pay"}, "a-tie", false},
		{"an unreadable selector above the match", []slov1alpha1.ErrorBudgetPolicyBinding{audit, bad}, nil, "", true},
		{"an unreadable selector below the match", []slov1alpha1.ErrorBudgetPolicyBinding{enforce, bad}, map[string]string{"budgetgate.dev/enforce": "true"}, "enforce", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := SelectBinding(tt.bindings, tt.labels)
			if (err != nil) != tt.wantErr || tt.wantErr && !IsInvalidBinding(err) {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			got := ""
			if b != nil {
				got = b.Name
			}
			if got != tt.want {
				t.Errorf("got binding %q, want %q", got, tt.want)
			}
		})
	}
}

func TestResolveBinding(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := slov1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if err := corev1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	policy := func(name string, f func(*slov1alpha1.ErrorBudgetPolicySpec)) *slov1alpha1.ErrorBudgetPolicy {
		s := platformSpec()
		if f != nil {
			f(&s)
		}
		return &slov1alpha1.ErrorBudgetPolicy{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: s}
	}
	objects := []client.Object{
		policy("platform", nil),
		policy("default", func(s *slov1alpha1.ErrorBudgetPolicySpec) { s.Mode = slov1alpha1.ModeDryRun }),
		policy("audit", func(s *slov1alpha1.ErrorBudgetPolicySpec) { s.Mode = slov1alpha1.ModeDryRun }),
		policy("relaxed", func(s *slov1alpha1.ErrorBudgetPolicySpec) { s.Rules[0].BurnRate.Factor = dec("30") }),
		policy("tighter", func(s *slov1alpha1.ErrorBudgetPolicySpec) { s.Rules[0].BurnRate.Factor = dec("10") }),
		namespace("free", nil),
		namespace("locked", map[string]string{"override": "none"}),
		namespace("stricter", map[string]string{"override": "stricter"}),
		namespace("any", map[string]string{"override": "any"}),
		namespace("missing-policy", map[string]string{"override": "missing"}),
		binding("lock", "platform", slov1alpha1.OverrideNone, 0, map[string]string{"override": "none"}),
		binding("strict", "platform", slov1alpha1.OverrideStricter, 0, map[string]string{"override": "stricter"}),
		binding("any", "platform", slov1alpha1.OverrideAny, 0, map[string]string{"override": "any"}),
		binding("gone", "not-there", "", 0, map[string]string{"override": "missing"}),
	}
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(objects...).Build()
	slo := func(ns, ref string) *slov1alpha1.ServiceLevelObjective {
		s := &slov1alpha1.ServiceLevelObjective{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "s"},
			Spec: slov1alpha1.ServiceLevelObjectiveSpec{Target: "99.9", Window: "30d"}}
		if ref != "" {
			s.Spec.PolicyRef = &slov1alpha1.PolicyReference{Name: ref}
		}
		return s
	}
	tests := []struct {
		ns, ref    string
		policy     string
		binding    string
		notAllowed []string
		err        string
	}{
		{ns: "free", policy: "default"},
		{ns: "free", ref: "relaxed", policy: "relaxed"},
		{ns: "locked", policy: "platform", binding: "lock"},
		{ns: "locked", ref: "platform", policy: "platform", binding: "lock"},
		{ns: "locked", ref: "tighter", policy: "platform", binding: "lock", notAllowed: []string{"allowOverride is None"}},
		{ns: "locked", ref: "built-in", policy: "platform", binding: "lock", notAllowed: []string{"allowOverride is None"}},
		{ns: "stricter", policy: "platform", binding: "strict"},
		{ns: "stricter", ref: "tighter", policy: "tighter", binding: "strict"},
		{ns: "stricter", ref: "relaxed", policy: "platform", binding: "strict",
			notAllowed: []string{`no Freeze rule fires whenever rule "fast-burn" (burn rate ≥ 14.4x over 1h and 5m) does`}},
		{ns: "stricter", ref: "audit", policy: "platform", binding: "strict", notAllowed: []string{"mode DryRun is weaker than Enforce"}},
		{ns: "stricter", ref: "not-there", binding: "strict", err: `ErrorBudgetPolicy "not-there" not found`},
		{ns: "any", ref: "relaxed", policy: "relaxed", binding: "any"},
		{ns: "any", policy: "platform", binding: "any"},
		{ns: "missing-policy", binding: "gone", err: `the policy of ErrorBudgetPolicyBinding "gone": ErrorBudgetPolicy "not-there" not found`},
		{ns: "no-such-namespace", policy: "default"},
	}
	for _, tt := range tests {
		r, err := ResolveBinding(context.Background(), c, slo(tt.ns, tt.ref))
		name := tt.ns + "/" + tt.ref
		if tt.err != "" {
			if err == nil || err.Error() != tt.err || !IsNotFound(err) {
				t.Errorf("%s: err = %v, want NotFound %q", name, err, tt.err)
			}
		} else if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		} else if r.Policy.Name != tt.policy {
			t.Errorf("%s: policy %q, want %q", name, r.Policy.Name, tt.policy)
		}
		got := ""
		if r.Binding != nil {
			got = r.Binding.Name
		}
		if got != tt.binding || !slices.Equal(r.NotAllowed, tt.notAllowed) {
			t.Errorf("%s: binding %q %q, want %q %q", name, got, r.NotAllowed, tt.binding, tt.notAllowed)
		}
	}
}

func TestNotAllowedMessage(t *testing.T) {
	r := Resolution{Requested: "relaxed", Binding: binding("platform-enforce", "strict", slov1alpha1.OverrideNone, 0, nil), NotAllowed: []string{"allowOverride is None"}}
	want := `spec.policyRef: policy "relaxed" is not allowed in namespace team-a: ErrorBudgetPolicyBinding "platform-enforce" binds policy "strict" there with allowOverride: None. ` +
		`Leave policyRef out (policy "strict" applies) or write policyRef: {name: strict}`
	if got := r.NotAllowedMessage("team-a"); got != want {
		t.Errorf("None:\n got %s\nwant %s", got, want)
	}
	r.Binding.Spec.AllowOverride = slov1alpha1.OverrideStricter
	r.NotAllowed = []string{"mode DryRun is weaker than Enforce", "freeze.minDuration 30m is shorter than 1h"}
	want = `spec.policyRef: policy "relaxed" is not allowed in namespace team-a: ErrorBudgetPolicyBinding "platform-enforce" binds policy "strict" there with allowOverride: Stricter, ` +
		`and "relaxed" is not at least as strict: mode DryRun is weaker than Enforce; freeze.minDuration 30m is shorter than 1h. ` +
		`Leave policyRef out (policy "strict" applies), write policyRef: {name: strict}, or name a policy at least as strict`
	if got := r.NotAllowedMessage("team-a"); got != want {
		t.Errorf("Stricter:\n got %s\nwant %s", got, want)
	}
	if got := (Resolution{Requested: "x"}).NotAllowedMessage("a"); got != "" {
		t.Errorf("allowed: %q", got)
	}
}
