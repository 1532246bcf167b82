package webhook_test

import (
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	slov1alpha1 "github.com/budgetgate/budgetgate/api/v1alpha1"
)

// ErrorBudgetPolicyBindings (docs/rollout.md, docs/api.md): the platform
// decides the policy of a namespace's SLOs; an SLO naming a policy its
// binding does not allow is rejected at apply with the binding's name; a
// binding or namespace label change re-evaluates the SLOs it affects; the
// SLO's status says which policy applies through which binding; and a team
// member cannot step around any of it.

// bindingPolicy creates an ErrorBudgetPolicy named name+"-"+ns: fast burn at
// factor over 1h/5m, freezes held 2s.
func bindingPolicy(ns, name string, mode slov1alpha1.PolicyMode, factor string) string {
	ebp := &slov1alpha1.ErrorBudgetPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: name + "-" + ns},
		Spec: slov1alpha1.ErrorBudgetPolicySpec{
			Mode: mode,
			Rules: []slov1alpha1.PolicyRule{{Name: "fast-burn", Action: slov1alpha1.ActionFreeze,
				BurnRate: &slov1alpha1.BurnRateCondition{LongWindow: "1h", ShortWindow: "5m", Factor: new(slov1alpha1.Decimal(factor))}}},
			Freeze: slov1alpha1.FreezeSettings{MinDuration: "2s"},
			// The same guard for all: an automatic one rises as a threshold
			// falls, which would make "tighter" weaker (TestWeaknesses).
			MinEvents: new(int64(50)),
		},
	}
	Expect(k8sClient.Create(ctx, ebp)).To(Succeed())
	DeferCleanup(func() { Expect(client.IgnoreNotFound(k8sClient.Delete(ctx, ebp))).To(Succeed()) })
	return ebp.Name
}

// policyBinding creates an ErrorBudgetPolicyBinding that deletes itself when the spec ends.
func policyBinding(name string, sel map[string]string, policyName string, override slov1alpha1.OverrideMode, priority int32) *slov1alpha1.ErrorBudgetPolicyBinding {
	b := &slov1alpha1.ErrorBudgetPolicyBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: slov1alpha1.ErrorBudgetPolicyBindingSpec{
			NamespaceSelector: metav1.LabelSelector{MatchLabels: sel},
			PolicyRef:         slov1alpha1.PolicyReference{Name: policyName},
			AllowOverride:     override,
			Priority:          priority,
		},
	}
	Expect(k8sClient.Create(ctx, b)).To(Succeed())
	DeferCleanup(func() { Expect(client.IgnoreNotFound(k8sClient.Delete(ctx, b))).To(Succeed()) })
	return b
}

// boundNamespace creates a namespace labelled team=<its name> (the label
// the specs' bindings select) with a web Deployment.
func boundNamespace() string {
	nsObj := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "bound-"}}
	Expect(k8sClient.Create(ctx, nsObj)).To(Succeed())
	Expect(retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(nsObj), nsObj); err != nil {
			return err
		}
		nsObj.Labels["team"] = nsObj.Name
		return k8sClient.Update(ctx, nsObj)
	})).To(Succeed())
	Expect(k8sClient.Create(ctx, newDeployment(nsObj.Name, "web", "web:v1"))).To(Succeed())
	return nsObj.Name
}

// boundSLO is an SLO selecting app=web whose scripted error ratio is ratio;
// policyRef is left out when empty.
func boundSLO(ns, name, policyRef string, ratio float64) *slov1alpha1.ServiceLevelObjective {
	slo := &slov1alpha1.ServiceLevelObjective{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: slov1alpha1.ServiceLevelObjectiveSpec{
			Target: "99.9", Window: "30d", EvaluationInterval: "10s",
			Indicator: slov1alpha1.Indicator{Ratio: &slov1alpha1.RatioIndicator{
				Errors: `http_requests_total{namespace="` + ns + `",slo="` + name + `",code=~"5.."}`,
				Total:  `http_requests_total{namespace="` + ns + `",slo="` + name + `"}`,
			}},
			WorkloadSelector: &metav1.LabelSelector{MatchLabels: labelsWeb()},
		},
	}
	if policyRef != "" {
		slo.Spec.PolicyRef = &slov1alpha1.PolicyReference{Name: policyRef}
	}
	source.set(slo.Spec.Indicator.Ratio.Errors, ratio)
	return slo
}

// policyChoice is what an SLO's status says of its policy: status.policy,
// status.policyBinding and the PolicyBound condition's reason, for the
// SLO's current generation.
func policyChoice(g Gomega, key client.ObjectKey) (policyName, binding, reason, message string) {
	got := &slov1alpha1.ServiceLevelObjective{}
	g.Expect(k8sClient.Get(ctx, key, got)).To(Succeed())
	c := meta.FindStatusCondition(got.Status.Conditions, slov1alpha1.ConditionPolicyBound)
	g.Expect(c).NotTo(BeNil(), "no PolicyBound condition yet")
	g.Expect(c.ObservedGeneration).To(Equal(got.Generation))
	return got.Status.Policy, got.Status.PolicyBinding, c.Reason, c.Message
}

func expectChoice(key client.ObjectKey, policyName, binding, reason string) {
	GinkgoHelper()
	Eventually(func(g Gomega) {
		p, b, r, m := policyChoice(g, key)
		g.Expect([]string{p, b, r}).To(Equal([]string{policyName, binding, reason}), m)
	}).Should(Succeed())
}

func rejected(err error) string {
	GinkgoHelper()
	Expect(err).To(HaveOccurred())
	Expect(apierrors.IsForbidden(err)).To(BeTrue(), "want Forbidden, got %v", err)
	return err.Error()
}

func setPolicyRef(key client.ObjectKey, name string) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		s := &slov1alpha1.ServiceLevelObjective{}
		if err := k8sClient.Get(ctx, key, s); err != nil {
			return err
		}
		s.Spec.PolicyRef = &slov1alpha1.PolicyReference{Name: name}
		return k8sClient.Update(ctx, s)
	})
}

func labelNamespace(c client.Client, ns, key, value string) error {
	patch := `{"metadata":{"labels":{"` + key + `":"` + value + `"}}}`
	if value == "" {
		patch = `{"metadata":{"labels":{"` + key + `":null}}}`
	}
	return c.Patch(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, client.RawPatch(types.MergePatchType, []byte(patch)))
}

var _ = Describe("ErrorBudgetPolicyBinding", func() {
	It("allowOverride None: rejects an SLO naming another policy, with the binding's name and what to write", func() {
		ns := boundNamespace()
		strict := bindingPolicy(ns, "strict", slov1alpha1.ModeEnforce, "14.4")
		tighter := bindingPolicy(ns, "tighter", slov1alpha1.ModeEnforce, "10")
		b := policyBinding("none-"+ns, map[string]string{"team": ns}, strict, "", 0)
		Expect(b.Spec.AllowOverride).To(Equal(slov1alpha1.OverrideNone), "the default")

		msg := rejected(k8sClient.Create(ctx, boundSLO(ns, "named", tighter, 0)))
		Expect(msg).To(ContainSubstring(`spec.policyRef: policy "` + tighter + `" is not allowed in namespace ` + ns +
			`: ErrorBudgetPolicyBinding "` + b.Name + `" binds policy "` + strict + `" there with allowOverride: None. ` +
			`Leave policyRef out (policy "` + strict + `" applies) or write policyRef: {name: ` + strict + `}`))
		Expect(rejected(k8sClient.Create(ctx, boundSLO(ns, "builtin", slov1alpha1.BuiltInPolicyName, 0)))).To(ContainSubstring(b.Name))

		By("an SLO without policyRef, or naming the bound policy, is admitted and uses it")
		plain := boundSLO(ns, "plain", "", 0)
		Expect(k8sClient.Create(ctx, plain)).To(Succeed())
		Expect(k8sClient.Create(ctx, boundSLO(ns, "same", strict, 0))).To(Succeed())
		expectChoice(client.ObjectKeyFromObject(plain), strict, b.Name, slov1alpha1.ReasonPolicyBound)
		expectChoice(client.ObjectKey{Namespace: ns, Name: "same"}, strict, b.Name, slov1alpha1.ReasonPolicyBound)

		By("changing the policyRef of an admitted SLO to another policy is rejected too")
		Expect(rejected(setPolicyRef(client.ObjectKeyFromObject(plain), tighter))).To(ContainSubstring(`ErrorBudgetPolicyBinding "` + b.Name + `"`))
	})

	It("allowOverride Stricter: admits a policy at least as strict, rejects a weaker one or a DryRun one", func() {
		ns := boundNamespace()
		strict := bindingPolicy(ns, "strict", slov1alpha1.ModeEnforce, "14.4")
		tighter := bindingPolicy(ns, "tighter", slov1alpha1.ModeEnforce, "10")
		looser := bindingPolicy(ns, "looser", slov1alpha1.ModeEnforce, "20")
		dry := bindingPolicy(ns, "dry", slov1alpha1.ModeDryRun, "14.4")
		b := policyBinding("stricter-"+ns, map[string]string{"team": ns}, strict, slov1alpha1.OverrideStricter, 0)

		s := boundSLO(ns, "tight", tighter, 0)
		Expect(k8sClient.Create(ctx, s)).To(Succeed())
		expectChoice(client.ObjectKeyFromObject(s), tighter, b.Name, slov1alpha1.ReasonPolicyRefAllowed)

		msg := rejected(k8sClient.Create(ctx, boundSLO(ns, "loose", looser, 0)))
		Expect(msg).To(ContainSubstring(`with allowOverride: Stricter, and "` + looser + `" is not at least as strict: ` +
			`no Freeze rule fires whenever rule "fast-burn" (burn rate ≥ 14.4x over 1h and 5m) does. ` +
			`Leave policyRef out (policy "` + strict + `" applies), write policyRef: {name: ` + strict + `}, or name a policy at least as strict`))
		Expect(rejected(k8sClient.Create(ctx, boundSLO(ns, "dry", dry, 0)))).To(ContainSubstring(`"` + dry + `" is not at least as strict: mode DryRun is weaker than Enforce.`))

		plain := boundSLO(ns, "plain", "", 0)
		Expect(k8sClient.Create(ctx, plain)).To(Succeed())
		expectChoice(client.ObjectKeyFromObject(plain), strict, b.Name, slov1alpha1.ReasonPolicyBound)
	})

	It("allowOverride Any: admits any policyRef; SLOs without one use the binding's policy, not default", func() {
		ns := boundNamespace()
		strict := bindingPolicy(ns, "strict", slov1alpha1.ModeEnforce, "14.4")
		dry := bindingPolicy(ns, "dry", slov1alpha1.ModeDryRun, "20")
		b := policyBinding("any-"+ns, map[string]string{"team": ns}, strict, slov1alpha1.OverrideAny, 0)
		s := boundSLO(ns, "own", dry, 0)
		Expect(k8sClient.Create(ctx, s)).To(Succeed())
		expectChoice(client.ObjectKeyFromObject(s), dry, b.Name, slov1alpha1.ReasonPolicyRefAllowed)
		plain := boundSLO(ns, "plain", "", 0)
		Expect(k8sClient.Create(ctx, plain)).To(Succeed())
		expectChoice(client.ObjectKeyFromObject(plain), strict, b.Name, slov1alpha1.ReasonPolicyBound)
	})

	It("re-evaluates the SLOs a binding or namespace label change affects, and says so in their status and Events", func() {
		ns := boundNamespace()
		strict := bindingPolicy(ns, "strict", slov1alpha1.ModeEnforce, "14.4")
		dry := bindingPolicy(ns, "dry", slov1alpha1.ModeDryRun, "14.4")
		By("an SLO written before any binding keeps its own DryRun policy, frozen in DryRun")
		s := boundSLO(ns, "early", dry, 0.02) // a 20x burn
		// Evaluated once an hour (the suite's RequeueAfter keeps that), so
		// every re-evaluation below comes from a watch.
		s.Spec.EvaluationInterval = "1h"
		key := client.ObjectKeyFromObject(s)
		Expect(k8sClient.Create(ctx, s)).To(Succeed())
		expectChoice(key, dry, "", slov1alpha1.ReasonNotBound)
		Eventually(func(g Gomega) {
			g.Expect(fresh(s).Status.Freeze.Active).To(BeTrue())
			g.Expect(fresh(s).Status.Freeze.Mode).To(Equal(slov1alpha1.ModeDryRun))
		}).Should(Succeed())

		By("a binding that does not allow its policyRef: the binding's policy applies at once, and the freeze is enforced")
		b := policyBinding("later-"+ns, map[string]string{"team": ns}, strict, slov1alpha1.OverrideNone, 0)
		expectChoice(key, strict, b.Name, slov1alpha1.ReasonPolicyRefNotAllowed)
		Eventually(func(g Gomega) {
			g.Expect(fresh(s).Status.Freeze.Active).To(BeTrue())
			g.Expect(fresh(s).Status.Freeze.Mode).To(Equal(slov1alpha1.ModeEnforce))
		}).Should(Succeed())
		admin, _ := clientAs("")
		Eventually(func() error { return setImage(admin, ns, "web:v2") }).Should(MatchError(ContainSubstring("by SLO " + ns + "/early")))
		Eventually(func(g Gomega) []string { return eventNotes(g, ns, slov1alpha1.ReasonPolicyRefNotAllowed) }).Should(ContainElement(
			`spec.policyRef "` + dry + `" is not allowed: ErrorBudgetPolicyBinding "` + b.Name + `" binds policy "` + strict + `" in namespace ` + ns +
				` with allowOverride: None, so policy "` + strict + `" applies (allowOverride is None); leave policyRef out or write policyRef: {name: ` + strict + `}; was policy "` + dry + `"`))

		By("its other updates are admitted with the same words as a warning")
		c, w := crAs("")
		Expect(retry.RetryOnConflict(retry.DefaultRetry, func() error {
			got := fresh(s)
			got.Spec.Description = "checkout availability"
			return c.Update(ctx, got)
		})).To(Succeed())
		Expect(strings.Join(w.all(), "\n")).To(ContainSubstring(`spec.policyRef: policy "` + dry + `" is not allowed in namespace ` + ns))

		By("the binding changed to Any: the SLO's own policy again; loosening a binding under an enforced freeze is recorded")
		*w = warnings{}
		Expect(retry.RetryOnConflict(retry.DefaultRetry, func() error {
			if err := c.Get(ctx, client.ObjectKeyFromObject(b), b); err != nil {
				return err
			}
			b.Spec.AllowOverride = slov1alpha1.OverrideAny
			return c.Update(ctx, b)
		})).To(Succeed())
		Expect(w.all()).To(ContainElement(MatchRegexp(`^budgetgate: .+ changed ErrorBudgetPolicyBinding ` + b.Name +
			` while 1 SLOs it governs are frozen \(` + ns + `/early\); they are evaluated again under the change right away; this is recorded$`)))
		Eventually(func(g Gomega) []string { return eventNotes(g, "default", "BindingChangedDuringFreeze") }).Should(
			ContainElement(ContainSubstring("ErrorBudgetPolicyBinding " + b.Name + " while 1 SLOs")))
		expectChoice(key, dry, b.Name, slov1alpha1.ReasonPolicyRefAllowed)
		Eventually(func(g Gomega) []string { return eventNotes(g, ns, "PolicyChanged") }).Should(ContainElement(HaveSuffix(
			`spec.policyRef "` + dry + `" applies; was policy "` + strict + `" through ErrorBudgetPolicyBinding "` + b.Name +
				`"; the freeze is no longer enforced: policy "` + dry + `" is in DryRun mode`)))

		By("the namespace relabelled out of the binding's selector")
		Expect(labelNamespace(k8sClient, ns, "team", "elsewhere")).To(Succeed())
		expectChoice(key, dry, "", slov1alpha1.ReasonNotBound)
		By("and back in, then the binding deleted")
		Expect(labelNamespace(k8sClient, ns, "team", ns)).To(Succeed())
		expectChoice(key, dry, b.Name, slov1alpha1.ReasonPolicyRefAllowed)
		Expect(k8sClient.Delete(ctx, b)).To(Succeed())
		expectChoice(key, dry, "", slov1alpha1.ReasonNotBound)
	})

	It("decides between overlapping bindings by priority, then by name", func() {
		ns := boundNamespace()
		low := bindingPolicy(ns, "low", slov1alpha1.ModeDryRun, "14.4")
		high := bindingPolicy(ns, "high", slov1alpha1.ModeEnforce, "14.4")
		policyBinding("b-low-"+ns, map[string]string{"team": ns}, low, "", 0)
		hb := policyBinding("z-high-"+ns, map[string]string{"team": ns}, high, "", 10)
		s := boundSLO(ns, "plain", "", 0)
		Expect(k8sClient.Create(ctx, s)).To(Succeed())
		expectChoice(client.ObjectKeyFromObject(s), high, hb.Name, slov1alpha1.ReasonPolicyBound)
		c, w := crAs("")
		tie := &slov1alpha1.ErrorBudgetPolicyBinding{ObjectMeta: metav1.ObjectMeta{Name: "a-tie-" + ns},
			Spec: slov1alpha1.ErrorBudgetPolicyBindingSpec{NamespaceSelector: metav1.LabelSelector{MatchLabels: map[string]string{"team": ns}},
				PolicyRef: slov1alpha1.PolicyReference{Name: low}, Priority: 10}}
		Expect(c.Create(ctx, tie)).To(Succeed())
		DeferCleanup(func() { Expect(client.IgnoreNotFound(k8sClient.Delete(ctx, tie))).To(Succeed()) })
		Expect(w.all()).To(ContainElement(`spec.priority: ErrorBudgetPolicyBinding "` + hb.Name + `" has the same priority 10 and also selects namespaces ` + ns +
			`; there the binding whose name sorts first ("` + tie.Name + `") applies: give the one that should apply a higher priority`))
		expectChoice(client.ObjectKeyFromObject(s), low, tie.Name, slov1alpha1.ReasonPolicyBound)

		By("a selector the API server's schema lets through but that cannot be read is rejected")
		bad := tie.DeepCopy()
		bad.ObjectMeta = metav1.ObjectMeta{Name: "bad-" + ns}
		bad.Spec.NamespaceSelector = metav1.LabelSelector{MatchLabels: map[string]string{"not a key": "x"}}
		Expect(rejected(k8sClient.Create(ctx, bad))).To(ContainSubstring(`spec.namespaceSelector: `))
		By("a binding to a policy that does not exist yet is admitted with a warning")
		*w = warnings{}
		later := tie.DeepCopy()
		later.ObjectMeta = metav1.ObjectMeta{Name: "later-" + ns}
		later.Spec.NamespaceSelector = metav1.LabelSelector{MatchLabels: map[string]string{"team": "nobody-" + ns}}
		later.Spec.PolicyRef.Name = "not-yet-" + ns
		Expect(c.Create(ctx, later)).To(Succeed())
		DeferCleanup(func() { Expect(client.IgnoreNotFound(k8sClient.Delete(ctx, later))).To(Succeed()) })
		Expect(w.all()).To(ContainElement(`spec.policyRef: ErrorBudgetPolicy "not-yet-` + ns +
			`" does not exist yet: the SLOs of the namespaces this binding selects are not evaluated until it does`))
	})
})

// The platform's path of docs/rollout.md: every namespace audited in DryRun
// by one cluster-wide binding, then one namespace enforced by labelling it,
// then all of them by one edit of the cluster-wide binding.
var _ = Describe("Audit first, then enforce namespace by namespace", func() {
	It("warns everywhere, then denies in the labelled namespace only, then everywhere", func() {
		nsA, nsB := boundNamespace(), boundNamespace()
		audit := bindingPolicy(nsA, "audit", slov1alpha1.ModeDryRun, "14.4")
		enforce := bindingPolicy(nsA, "enforce", slov1alpha1.ModeEnforce, "14.4")
		everywhere := policyBinding("audit-"+nsA, nil, audit, slov1alpha1.OverrideNone, 0)
		labelled := policyBinding("enforce-"+nsA, map[string]string{"budgetgate.dev/enforce": "true"}, enforce, slov1alpha1.OverrideNone, 10)
		slos := map[string]*slov1alpha1.ServiceLevelObjective{}
		for _, ns := range []string{nsA, nsB} {
			slos[ns] = boundSLO(ns, "web-availability", "", 0.02) // a 20x burn
			Expect(k8sClient.Create(ctx, slos[ns])).To(Succeed())
		}
		frozenIn := func(ns string, mode slov1alpha1.PolicyMode, policyName, binding string) {
			GinkgoHelper()
			Eventually(func(g Gomega) {
				got := fresh(slos[ns])
				g.Expect(got.Status.Freeze.Active).To(BeTrue())
				g.Expect(got.Status.Freeze.Mode).To(Equal(mode))
				g.Expect(got.Status.Policy).To(Equal(policyName))
				g.Expect(got.Status.PolicyBinding).To(Equal(binding))
			}).Should(Succeed())
		}
		admin, seen := clientAs("")
		warned := func(ns, image string) {
			GinkgoHelper()
			*seen = warnings{}
			Expect(setImage(admin, ns, image)).To(Succeed())
			Expect(strings.Join(seen.all(), "\n")).To(And(ContainSubstring("DryRun"), ContainSubstring("by SLO "+ns+"/web-availability")))
		}
		denied := func(ns, image string) {
			GinkgoHelper()
			Eventually(func() error { return setImage(admin, ns, image) }).Should(MatchError(ContainSubstring("by SLO " + ns + "/web-availability")))
		}

		By("1. audit: a cluster-wide DryRun binding; releases pass everywhere, with the denial as a warning")
		frozenIn(nsA, slov1alpha1.ModeDryRun, audit, everywhere.Name)
		frozenIn(nsB, slov1alpha1.ModeDryRun, audit, everywhere.Name)
		warned(nsA, "web:v2")
		warned(nsB, "web:v2")

		By("2. enforce one namespace: label it")
		Expect(labelNamespace(k8sClient, nsA, "budgetgate.dev/enforce", "true")).To(Succeed())
		frozenIn(nsA, slov1alpha1.ModeEnforce, enforce, labelled.Name)
		denied(nsA, "web:v3")
		frozenIn(nsB, slov1alpha1.ModeDryRun, audit, everywhere.Name)
		warned(nsB, "web:v3")

		By("3. enforce everywhere: point the cluster-wide binding at the Enforce policy")
		Expect(retry.RetryOnConflict(retry.DefaultRetry, func() error {
			if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(everywhere), everywhere); err != nil {
				return err
			}
			everywhere.Spec.PolicyRef.Name = enforce
			return k8sClient.Update(ctx, everywhere)
		})).To(Succeed())
		frozenIn(nsB, slov1alpha1.ModeEnforce, enforce, everywhere.Name)
		denied(nsB, "web:v4")
		denied(nsA, "web:v4")
	})
})

// A team member who wants a weaker policy than the platform bound
// (docs/security.md, attacks 20-25).
var _ = Describe("A team member against their namespace's binding", func() {
	It("cannot relabel the namespace, write a binding, name a DryRun policy, or change an SLO to one; and sees the binding in the SLO's status", func() {
		ns := boundNamespace()
		bindUsers(ns)
		strict := bindingPolicy(ns, "strict", slov1alpha1.ModeEnforce, "14.4")
		dry := bindingPolicy(ns, "dry", slov1alpha1.ModeDryRun, "14.4")
		b := policyBinding("team-"+ns, map[string]string{"team": ns}, strict, slov1alpha1.OverrideStricter, 0)
		const nsAdminUser = "binding-ns-admin"
		Expect(k8sClient.Create(ctx, &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, GenerateName: "admin-"},
			RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "admin"},
			Subjects:   []rbacv1.Subject{{Kind: "User", Name: nsAdminUser, APIGroup: "rbac.authorization.k8s.io"}},
		})).To(Succeed())
		devClient, _ := crAs(dev)
		editor, _ := crAs(sloEditor)
		nsAdmin, _ := crAs(nsAdminUser)
		Eventually(func(g Gomega) { g.Expect(allowed(g, nsAdminUser, ns, "get", "servicelevelobjectives")).To(BeTrue()) }).Should(Succeed())

		By("[B1] relabel their own namespace out of the binding's selector: edit and admin cannot")
		for _, c := range []client.Client{devClient, nsAdmin} {
			Expect(apierrors.IsForbidden(labelNamespace(c, ns, "team", "elsewhere"))).To(BeTrue())
		}

		By("[B2] create, change or delete a binding: edit and admin cannot")
		for _, c := range []client.Client{devClient, editor, nsAdmin} {
			own := &slov1alpha1.ErrorBudgetPolicyBinding{ObjectMeta: metav1.ObjectMeta{Name: "mine-" + ns},
				Spec: slov1alpha1.ErrorBudgetPolicyBindingSpec{NamespaceSelector: metav1.LabelSelector{MatchLabels: map[string]string{"team": ns}},
					PolicyRef: slov1alpha1.PolicyReference{Name: dry}, AllowOverride: slov1alpha1.OverrideAny, Priority: 1000}}
			Expect(apierrors.IsForbidden(c.Create(ctx, own))).To(BeTrue())
			changed := b.DeepCopy()
			changed.Spec.AllowOverride = slov1alpha1.OverrideAny
			Expect(apierrors.IsForbidden(c.Update(ctx, changed))).To(BeTrue())
			Expect(apierrors.IsForbidden(c.Delete(ctx, b))).To(BeTrue())
		}

		By("[B3] name a DryRun policy in a new SLO")
		Expect(rejected(editor.Create(ctx, boundSLO(ns, "dry", dry, 0)))).To(ContainSubstring(
			`ErrorBudgetPolicyBinding "` + b.Name + `" binds policy "` + strict + `" there with allowOverride: Stricter, and "` + dry + `" is not at least as strict: mode DryRun is weaker than Enforce`))

		By("[B4] switch an admitted SLO to the DryRun policy")
		s := boundSLO(ns, "web-availability", "", 0)
		Expect(editor.Create(ctx, s)).To(Succeed())
		Expect(retry.RetryOnConflict(retry.DefaultRetry, func() error {
			got := &slov1alpha1.ServiceLevelObjective{}
			if err := editor.Get(ctx, client.ObjectKeyFromObject(s), got); err != nil {
				return err
			}
			got.Spec.PolicyRef = &slov1alpha1.PolicyReference{Name: dry}
			err := editor.Update(ctx, got)
			if apierrors.IsConflict(err) {
				return err
			}
			Expect(rejected(err)).To(ContainSubstring(`ErrorBudgetPolicyBinding "` + b.Name + `"`))
			return nil
		})).To(Succeed())

		By("what they can see, in their namespace only: the SLO's status names the policy and the binding")
		Eventually(func(g Gomega) {
			got := &slov1alpha1.ServiceLevelObjective{}
			g.Expect(devClient.Get(ctx, client.ObjectKeyFromObject(s), got)).To(Succeed())
			g.Expect(got.Status.Policy).To(Equal(strict))
			g.Expect(got.Status.PolicyBinding).To(Equal(b.Name))
			c := meta.FindStatusCondition(got.Status.Conditions, slov1alpha1.ConditionPolicyBound)
			g.Expect(c).NotTo(BeNil())
			g.Expect(c.Message).To(Equal(`ErrorBudgetPolicyBinding "` + b.Name + `" binds policy "` + strict + `" in namespace ` + ns + ` (allowOverride: Stricter)`))
		}).Should(Succeed())
		Expect(apierrors.IsForbidden(devClient.List(ctx, &slov1alpha1.ErrorBudgetPolicyBindingList{}))).To(BeTrue(),
			"a RoleBinding of edit reads no cluster-scoped kind: the SLO's status is how a team sees its binding")
	})
})
