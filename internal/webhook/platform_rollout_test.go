package webhook_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	slov1alpha1 "github.com/budgetgate/budgetgate/api/v1alpha1"
)

// The manifests of docs/rollout.md, applied with the real kubectl: two
// policies with the same rules, one DryRun and one Enforce, a cluster-wide
// binding to the DryRun one, and a binding of the Enforce one to the
// namespaces labelled budgetgate.dev/enforce=true.
const (
	rolloutPolicies = `apiVersion: slo.budgetgate.dev/v1alpha1
kind: ErrorBudgetPolicy
metadata:
  name: audit
spec:
  mode: DryRun
  rules:
    - {name: fast-burn, burnRate: {longWindow: 1h, shortWindow: 5m, budgetPercent: "2"}}
    - {name: slow-burn, burnRate: {longWindow: 6h, shortWindow: 30m, budgetPercent: "5"}}
    - {name: budget-exhausted, budgetRemainingBelow: "0"}
---
apiVersion: slo.budgetgate.dev/v1alpha1
kind: ErrorBudgetPolicy
metadata:
  name: enforce
spec:
  mode: Enforce
  rules:
    - {name: fast-burn, burnRate: {longWindow: 1h, shortWindow: 5m, budgetPercent: "2"}}
    - {name: slow-burn, burnRate: {longWindow: 6h, shortWindow: 30m, budgetPercent: "5"}}
    - {name: budget-exhausted, budgetRemainingBelow: "0"}
`
	rolloutAuditBinding = `apiVersion: slo.budgetgate.dev/v1alpha1
kind: ErrorBudgetPolicyBinding
metadata:
  name: audit
spec:
  namespaceSelector: {}      # every namespace
  policyRef: {name: audit}
  allowOverride: None
  priority: 0
`
	rolloutEnforceBinding = `apiVersion: slo.budgetgate.dev/v1alpha1
kind: ErrorBudgetPolicyBinding
metadata:
  name: enforce
spec:
  namespaceSelector:
    matchLabels: {budgetgate.dev/enforce: "true"}
  policyRef: {name: enforce}
  allowOverride: Stricter
  priority: 10
`
	rolloutTeamSLO = `apiVersion: slo.budgetgate.dev/v1alpha1
kind: ServiceLevelObjective
metadata:
  name: checkout-errors
  namespace: shop
spec:
  target: "99.9"
  window: 30d
  indicator:
    ratio:
      errors: http_requests_total{namespace="shop",code=~"5.."}
      total: http_requests_total{namespace="shop"}
  workloadSelector:
    matchLabels: {app: checkout}
  policyRef: {name: audit}
`
)

// docs/rollout.md's transcript: the platform's path from a cluster-wide
// audit to enforcement in one namespace, then in all, run with the real
// kubectl against the suite's API server and budgetgate's real manager and
// webhooks (the SLI source is scripted: both teams' SLOs burn their budget
// 20x). BUDGETGATE_ROLLOUT_TRANSCRIPT=<file> writes what kubectl printed.
var _ = Describe("docs/rollout.md with kubectl", func() {
	It("audits everywhere, enforces shop, then every namespace", func() {
		kc := kubectlAt()
		var transcript strings.Builder
		dir := GinkgoT().TempDir()
		run := func(user string, args ...string) string {
			GinkgoHelper()
			if user != "" {
				args = append(args, "--as="+user)
			}
			words := make([]string, len(args))
			for i, a := range args {
				words[i] = strings.TrimPrefix(a, dir+"/")
				if strings.ContainsAny(a, ` {}"[]?`) {
					words[i] = "'" + a + "'"
				}
			}
			shown := "kubectl " + strings.Join(words, " ")
			out, _ := kc(args...)
			fmt.Fprintf(&transcript, "$ %s\n%s\n", shown, out)
			return out
		}
		file := func(name, content string) string {
			p := filepath.Join(dir, name)
			Expect(os.WriteFile(p, []byte(content), 0o600)).To(Succeed())
			return p
		}
		sloKey := func(ns string) client.ObjectKey {
			return client.ObjectKey{Namespace: ns, Name: "checkout-availability"}
		}
		settled := func(ns string, mode slov1alpha1.PolicyMode, policyName, binding string) {
			GinkgoHelper()
			Eventually(func(g Gomega) {
				got := &slov1alpha1.ServiceLevelObjective{}
				g.Expect(k8sClient.Get(ctx, sloKey(ns), got)).To(Succeed())
				g.Expect([]any{got.Status.Freeze.Active, got.Status.Freeze.Mode, got.Status.Policy, got.Status.PolicyBinding}).
					To(Equal([]any{true, mode, policyName, binding}))
			}).Should(Succeed())
		}

		shippedRoles()
		DeferCleanup(func() {
			for _, name := range []string{"audit", "enforce"} {
				Expect(client.IgnoreNotFound(k8sClient.Delete(ctx, &slov1alpha1.ErrorBudgetPolicyBinding{ObjectMeta: metav1.ObjectMeta{Name: name}}))).To(Succeed())
				Expect(client.IgnoreNotFound(k8sClient.Delete(ctx, &slov1alpha1.ErrorBudgetPolicy{ObjectMeta: metav1.ObjectMeta{Name: name}}))).To(Succeed())
			}
			if path := os.Getenv("BUDGETGATE_ROLLOUT_TRANSCRIPT"); path != "" {
				Expect(os.WriteFile(path, []byte(transcript.String()), 0o644)).To(Succeed())
			}
			GinkgoWriter.Print(transcript.String())
		})

		By("1. audit: DryRun in every namespace")
		Expect(run("", "apply", "-f", file("policies.yaml", rolloutPolicies))).To(ContainSubstring("errorbudgetpolicy.slo.budgetgate.dev/enforce created"))
		Expect(run("", "apply", "-f", file("binding-audit.yaml", rolloutAuditBinding))).To(ContainSubstring("errorbudgetpolicybinding.slo.budgetgate.dev/audit created"))
		By("two teams, shop and payments, each with a checkout Deployment and an SLO that burns its budget")
		for _, ns := range []string{"shop", "payments"} {
			Expect(k8sClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
			lbls := map[string]string{"app": "checkout"}
			Expect(k8sClient.Create(ctx, &appsv1.Deployment{
				ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "checkout", Labels: lbls},
				Spec: appsv1.DeploymentSpec{
					Selector: &metav1.LabelSelector{MatchLabels: lbls},
					Template: corev1.PodTemplateSpec{
						ObjectMeta: metav1.ObjectMeta{Labels: lbls},
						Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "checkout", Image: "registry.example/shop/checkout:1.5.0"}}},
					},
				},
			})).To(Succeed())
			slo := boundSLO(ns, "checkout-availability", "", 0.02)
			slo.Spec.Indicator.Ratio.Errors = `http_requests_total{namespace="` + ns + `",code=~"5.."}`
			slo.Spec.Indicator.Ratio.Total = `http_requests_total{namespace="` + ns + `"}`
			slo.Spec.WorkloadSelector = &metav1.LabelSelector{MatchLabels: lbls}
			slo.Spec.EvaluationInterval = "1m"
			source.set(slo.Spec.Indicator.Ratio.Errors, 0.02)
			Expect(k8sClient.Create(ctx, slo)).To(Succeed())
		}
		for _, role := range []string{"edit", "servicelevelobjective-editor-role"} {
			Expect(k8sClient.Create(ctx, &rbacv1.RoleBinding{
				ObjectMeta: metav1.ObjectMeta{Namespace: "shop", GenerateName: "dev-"},
				RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: role},
				Subjects:   []rbacv1.Subject{{Kind: "User", Name: "dev", APIGroup: "rbac.authorization.k8s.io"}},
			})).To(Succeed())
		}
		settled("shop", slov1alpha1.ModeDryRun, "audit", "audit")
		settled("payments", slov1alpha1.ModeDryRun, "audit", "audit")
		run("", "get", "slo", "-n", "shop", "-o", "wide")
		Expect(run("", "set", "image", "deployment/checkout", "checkout=registry.example/shop/checkout:1.6.0", "-n", "shop")).To(And(
			ContainSubstring("Warning: "), ContainSubstring("DryRun"), ContainSubstring("deployment.apps/checkout image updated")))

		By("2. enforce one namespace: label it")
		Expect(run("", "apply", "-f", file("binding-enforce.yaml", rolloutEnforceBinding))).To(ContainSubstring("errorbudgetpolicybinding.slo.budgetgate.dev/enforce created"))
		Expect(run("", "label", "namespace", "shop", "budgetgate.dev/enforce=true")).To(ContainSubstring("namespace/shop labeled"))
		settled("shop", slov1alpha1.ModeEnforce, "enforce", "enforce")
		run("", "get", "ebpb")
		run("", "get", "slo", "-n", "shop", "-o", "wide")
		Expect(run("", "set", "image", "deployment/checkout", "checkout=registry.example/shop/checkout:1.7.0", "-n", "shop")).To(
			ContainSubstring("budgetgate: release of Deployment shop/checkout blocked"))
		Expect(run("", "set", "image", "deployment/checkout", "checkout=registry.example/shop/checkout:1.6.0", "-n", "payments")).To(And(
			ContainSubstring("Warning: "), ContainSubstring("DryRun"), ContainSubstring("deployment.apps/checkout image updated")))

		By("what the shop team sees, with edit in shop only")
		run("dev", "get", "slo", "checkout-availability", "-n", "shop", "-o", `jsonpath={.status.policy} {.status.policyBinding}: {.status.conditions[?(@.type=="PolicyBound")].message}{"\n"}`)
		Expect(run("dev", "get", "ebpb")).To(ContainSubstring("Forbidden"))
		Expect(run("dev", "apply", "-f", file("team-slo.yaml", rolloutTeamSLO))).To(ContainSubstring(
			`ErrorBudgetPolicyBinding "enforce" binds policy "enforce" there with allowOverride: Stricter, and "audit" is not at least as strict: mode DryRun is weaker than Enforce`))
		Expect(run("dev", "label", "namespace", "shop", "budgetgate.dev/enforce-")).To(ContainSubstring("Forbidden"))

		By("3. enforce everywhere: point the cluster-wide binding at the Enforce policy")
		Expect(run("", "patch", "ebpb", "audit", "--type=merge", "-p", `{"spec":{"policyRef":{"name":"enforce"}}}`)).To(ContainSubstring("patched"))
		settled("payments", slov1alpha1.ModeEnforce, "enforce", "audit")
		run("", "get", "slo", "-n", "payments", "-o", "wide")
		Expect(run("", "set", "image", "deployment/checkout", "checkout=registry.example/shop/checkout:1.7.0", "-n", "payments")).To(
			ContainSubstring("budgetgate: release of Deployment payments/checkout blocked"))
		run("", "get", "events", "-n", "payments", "--field-selector", "reason=PolicyChanged", "-o", "custom-columns=OBJECT:.involvedObject.name,REASON:.reason,MESSAGE:.message")
	})
})
