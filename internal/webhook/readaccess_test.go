package webhook_test

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	slov1alpha1 "github.com/budgetgate/budgetgate/api/v1alpha1"
	"github.com/budgetgate/budgetgate/test/gitops"
)

// The users of these specs, each bound in the frozen namespace to one
// built-in role only (and the hotfixer to release-during-freeze as well).
const (
	reader      = "reader"    // view
	developer   = "developer" // edit
	nsAdmin     = "ns-admin"  // admin
	auditor     = "auditor"   // view, bound cluster-wide
	hotfixer2   = "hotfixer2" // edit + release-during-freeze
	kubectlDeny = "kubectl-set-image-denied.golden"
)

// What people whose release was denied can see of the freeze, and what they
// cannot change: budgetgate's read-only role aggregates into the built-in
// view, edit and admin roles; write access and the custom verbs do not
// (docs/security.md, "Who can see what").
var _ = Describe("Who can see a freeze", Ordered, func() {
	var ns string
	var slo *slov1alpha1.ServiceLevelObjective
	BeforeAll(func() {
		ns, slo = frozenNamespace(slov1alpha1.ModeEnforce)
		shippedRoles()
		bind := func(user, role string) {
			Expect(k8sClient.Create(ctx, &rbacv1.RoleBinding{
				ObjectMeta: metav1.ObjectMeta{Namespace: ns, GenerateName: "see-"},
				RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: role},
				Subjects:   []rbacv1.Subject{{Kind: "User", Name: user, APIGroup: "rbac.authorization.k8s.io"}},
			})).To(Succeed())
		}
		bind(reader, "view")
		bind(developer, "edit")
		bind(nsAdmin, "admin")
		bind(hotfixer2, "edit")
		bind(hotfixer2, "release-during-freeze")
		crb := &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{GenerateName: "see-auditor-"},
			RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "view"},
			Subjects:   []rbacv1.Subject{{Kind: "User", Name: auditor, APIGroup: "rbac.authorization.k8s.io"}},
		}
		Expect(k8sClient.Create(ctx, crb)).To(Succeed())
		DeferCleanup(func() { Expect(client.IgnoreNotFound(k8sClient.Delete(ctx, crb))).To(Succeed()) })

		fex := exception(ns, "payment-fix", nil, []slov1alpha1.WorkloadReference{{Kind: "Deployment", Name: "other"}}, time.Hour)
		Expect(k8sClient.Create(ctx, fex)).To(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(allowed(g, reader, ns, "list", "servicelevelobjectives")).To(BeTrue())
		}).Should(Succeed())
	})

	It("lets view, edit and admin read SLOs and exceptions in their namespace, and write neither", func() {
		for _, user := range []string{reader, developer, nsAdmin} {
			By(user + " reads")
			c, _ := crAs(user)
			slos := &slov1alpha1.ServiceLevelObjectiveList{}
			Expect(c.List(ctx, slos, client.InNamespace(ns))).To(Succeed(), user)
			Expect(slos.Items).To(HaveLen(1), user)
			got := &slov1alpha1.ServiceLevelObjective{}
			Expect(c.Get(ctx, client.ObjectKeyFromObject(slo), got)).To(Succeed(), user)
			Expect(got.Status.Freeze.Active).To(BeTrue(), "%s sees the freeze", user)
			fexes := &slov1alpha1.FreezeExceptionList{}
			Expect(c.List(ctx, fexes, client.InNamespace(ns))).To(Succeed(), user)
			Expect(fexes.Items).To(HaveLen(1), user)
			Expect(c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "payment-fix"}, &slov1alpha1.FreezeException{})).To(Succeed(), user)
			watch, err := csWatchSLOs(user, ns)
			Expect(err).NotTo(HaveOccurred(), "%s watches SLOs", user)
			watch.Stop()

			By(user + " writes nothing: RBAC refuses before any webhook is asked")
			forbiddenByRBAC := func(err error, what string) {
				GinkgoHelper()
				Expect(apierrors.IsForbidden(err)).To(BeTrue(), "%s %s: want Forbidden, got %v", user, what, err)
				Expect(err.Error()).To(ContainSubstring(`User "`+user+`" cannot`), "%s %s", user, what)
			}
			newSLO := slo.DeepCopy()
			newSLO.ObjectMeta = metav1.ObjectMeta{Namespace: ns, Name: "mine"}
			newSLO.Status = slov1alpha1.ServiceLevelObjectiveStatus{}
			forbiddenByRBAC(c.Create(ctx, newSLO), "creates an SLO")
			changed := got.DeepCopy()
			changed.Spec.Description = "changed by " + user
			forbiddenByRBAC(c.Update(ctx, changed), "updates the SLO")
			forbiddenByRBAC(c.Patch(ctx, got.DeepCopy(), client.RawPatch("application/merge-patch+json", []byte(`{"metadata":{"labels":{"x":"y"}}}`))), "patches the SLO")
			forbiddenByRBAC(c.Status().Update(ctx, changed), "updates the SLO's status")
			forbiddenByRBAC(c.Delete(ctx, got.DeepCopy()), "deletes the SLO")
			forbiddenByRBAC(c.Create(ctx, exception(ns, "mine", nil, []slov1alpha1.WorkloadReference{{Kind: "Deployment", Name: "web"}}, time.Hour)), "creates a FreezeException")
			forbiddenByRBAC(c.Delete(ctx, &slov1alpha1.FreezeException{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "payment-fix"}}), "deletes a FreezeException")
			forbiddenByRBAC(c.DeleteAllOf(ctx, &slov1alpha1.FreezeException{}, client.InNamespace(ns)), "deletes all FreezeExceptions")

			By(user + " holds none of budgetgate's custom verbs, nor write verbs on its kinds")
			Eventually(func(g Gomega) {
				for _, resource := range []string{"servicelevelobjectives", "freezeexceptions"} {
					for _, verb := range []string{"get", "list", "watch"} {
						g.Expect(allowed(g, user, ns, verb, resource)).To(BeTrue(), "%s may %s %s", user, verb, resource)
					}
					for _, verb := range []string{"create", "update", "patch", "delete", "deletecollection",
						slov1alpha1.VerbReleaseDuringFreeze, slov1alpha1.VerbLiftFreeze, slov1alpha1.VerbApprove} {
						g.Expect(allowed(g, user, ns, verb, resource)).To(BeFalse(), "%s may %s %s", user, verb, resource)
					}
				}
			}).Should(Succeed())

			By(user + " cannot read ErrorBudgetPolicies through a RoleBinding: they are cluster-scoped")
			forbiddenByRBAC(c.List(ctx, &slov1alpha1.ErrorBudgetPolicyList{}), "lists ErrorBudgetPolicies")

			By(user + "'s binding ends at the namespace")
			forbiddenByRBAC(c.List(ctx, &slov1alpha1.ServiceLevelObjectiveList{}, client.InNamespace("default")), "lists SLOs elsewhere")
		}

		By("view bound cluster-wide reads policies, and still writes nothing")
		c, _ := crAs(auditor)
		Expect(c.List(ctx, &slov1alpha1.ErrorBudgetPolicyList{})).To(Succeed())
		ebp := &slov1alpha1.ErrorBudgetPolicy{}
		Expect(c.Get(ctx, client.ObjectKey{Name: "policy-" + ns}, ebp)).To(Succeed())
		ebp.Spec.Mode = slov1alpha1.ModeDryRun
		Expect(apierrors.IsForbidden(c.Update(ctx, ebp))).To(BeTrue())
	})

	It("answers the commands the deny message names, with the real kubectl", func() {
		kc := kubectlAt()
		By("kubectl auth can-i, for the read and write verbs and the custom verb of a hotfix")
		for _, tc := range []struct {
			user, verb, resource, want string
		}{
			{developer, "list", "servicelevelobjectives.slo.budgetgate.dev", "yes"},
			{developer, "watch", "freezeexceptions.slo.budgetgate.dev", "yes"},
			{developer, "create", "servicelevelobjectives.slo.budgetgate.dev", "no"},
			{developer, "create", "freezeexceptions.slo.budgetgate.dev", "no"},
			{reader, "get", "servicelevelobjectives.slo.budgetgate.dev/web-availability", "yes"},
			{developer, "release-during-freeze", "servicelevelobjectives.slo.budgetgate.dev", "no"},
			{hotfixer2, "release-during-freeze", "servicelevelobjectives.slo.budgetgate.dev", "yes"},
		} {
			out, err := kc("auth", "can-i", tc.verb, tc.resource, "-n", ns, "--as", tc.user)
			lines := strings.Split(strings.TrimSpace(out), "\n")
			Expect(lines[len(lines)-1]).To(Equal(tc.want), "kubectl auth can-i %s %s --as %s:\n%s", tc.verb, tc.resource, tc.user, out)
			Expect(err == nil).To(Equal(tc.want == "yes"), "exit status of can-i %s %s --as %s", tc.verb, tc.resource, tc.user)
			if tc.verb == slov1alpha1.VerbReleaseDuringFreeze {
				// kubectl does not know custom verbs, warns, and asks anyway.
				Expect(out).To(ContainSubstring("Warning: verb 'release-during-freeze' is not a known verb"))
			}
		}

		By("kubectl describe slo and kubectl get fex, as the deny message says")
		out, err := kc("describe", "slo", "web-availability", "-n", ns, "--as", developer)
		Expect(err).NotTo(HaveOccurred(), out)
		Expect(out).To(And(ContainSubstring("Releases frozen since"), ContainSubstring("fast-burn"), ContainSubstring("Hold Until:")))
		out, err = kc("get", "fex", "-n", ns, "--as", reader)
		Expect(err).NotTo(HaveOccurred(), out)
		Expect(out).To(ContainSubstring("payment-fix"))
		out, err = kc("get", "slo", "web-availability", "-n", ns, "-o", "wide", "--as", reader)
		Expect(err).NotTo(HaveOccurred(), out)
		Expect(out).To(ContainSubstring("policy-" + ns))
	})

	It("prints the denial as kubectl users see it (golden)", func() {
		kc := kubectlAt()
		// Hold the freeze for an hour, so that the message says until when.
		Expect(retry.RetryOnConflict(retry.DefaultRetry, func() error {
			ebp := &slov1alpha1.ErrorBudgetPolicy{}
			if err := k8sClient.Get(ctx, client.ObjectKey{Name: "policy-" + ns}, ebp); err != nil {
				return err
			}
			ebp.Spec.Freeze.MinDuration = "1h"
			return k8sClient.Update(ctx, ebp)
		})).To(Succeed())
		Eventually(func(g Gomega) {
			got := &slov1alpha1.ServiceLevelObjective{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(slo), got)).To(Succeed())
			g.Expect(got.Status.Freeze.HoldUntil.Time).To(BeTemporally(">", time.Now().Add(30*time.Minute)))
		}).Should(Succeed())
		time.Sleep(300 * time.Millisecond) // the webhook reads the manager's cache

		out, err := kc("set", "image", "deployment/web", "web=web:v2", "-n", ns, "--as", developer)
		Expect(err).To(HaveOccurred(), "the release was admitted:\n%s", out)
		got := "$ kubectl set image deployment/web web=web:v2 -n shop --as developer\n" + normalise(out, ns)
		path := filepath.Join("testdata", kubectlDeny)
		if os.Getenv("UPDATE_GOLDEN") != "" {
			Expect(os.MkdirAll("testdata", 0o755)).To(Succeed())
			Expect(os.WriteFile(path, []byte(got), 0o644)).To(Succeed())
		}
		want, err := os.ReadFile(path)
		Expect(err).NotTo(HaveOccurred(), "write it with UPDATE_GOLDEN=1, then read it")
		Expect(got).To(Equal(string(want)))
	})

	It("shows Argo CD the SLO's health with the shipped health check", func() {
		script, err := os.ReadFile(filepath.Join("..", "..", gitops.ArgoCDHealthScript))
		Expect(err).NotTo(HaveOccurred())
		health := func(g Gomega, name string) gitops.Health {
			u := &unstructured.Unstructured{}
			u.SetGroupVersionKind(slov1alpha1.GroupVersion.WithKind("ServiceLevelObjective"))
			g.Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, u)).To(Succeed())
			h, err := gitops.RunArgoCDHealth(string(script), u.Object)
			g.Expect(err).NotTo(HaveOccurred())
			return h
		}
		By("the frozen SLO is Degraded, with the Frozen condition's message")
		Eventually(func(g Gomega) {
			h := health(g, slo.Name)
			g.Expect(h.Status).To(Equal("Degraded"))
			g.Expect(h.Message).To(And(HavePrefix("Releases frozen since "), ContainSubstring("fast-burn: burn rate 20.00x")))
		}).Should(Succeed())

		By("an SLO without data yet is Progressing; one within its budget is Healthy")
		for name, ratio := range map[string]float64{"quiet": -1, "calm": 0} {
			s := slo.DeepCopy()
			s.ObjectMeta = metav1.ObjectMeta{Namespace: ns, Name: name}
			s.Status = slov1alpha1.ServiceLevelObjectiveStatus{}
			s.Spec.WorkloadSelector = nil
			s.Spec.Indicator.Ratio.Errors = fmt.Sprintf(`http_requests_total{namespace=%q,slo=%q,code=~"5.."}`, ns, name)
			if ratio >= 0 {
				source.set(s.Spec.Indicator.Ratio.Errors, ratio)
			}
			Expect(k8sClient.Create(ctx, s)).To(Succeed())
		}
		Eventually(func(g Gomega) {
			quiet := health(g, "quiet")
			g.Expect(quiet.Status).To(Equal("Progressing"))
			g.Expect(quiet.Message).To(HavePrefix("No data yet: Prometheus returned no data for any window (no series, NaN or infinite values, or fewer events than the policy's minEvents)"))
			h := health(g, "calm")
			g.Expect(h.Status).To(Equal("Healthy"))
			g.Expect(h.Message).To(HavePrefix(fmt.Sprintf(`Evaluated against policy "policy-%s": SLI 100.0000%%, budget 100.0%% left`, ns)))
		}).Should(Succeed())
	})
})

// allowed asks the API server whether user may verb resource (of budgetgate's
// group) in ns.
func allowed(g Gomega, user, ns, verb, resource string) bool {
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User: user, Groups: []string{"system:authenticated"},
		ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: ns, Verb: verb, Group: slov1alpha1.GroupVersion.Group, Resource: resource},
	}}
	g.Expect(k8sClient.Create(ctx, sar)).To(Succeed())
	return sar.Status.Allowed
}

// csWatchSLOs starts a watch of the SLOs in ns as user.
func csWatchSLOs(user, ns string) (interface{ Stop() }, error) {
	cs, _ := csAs(user)
	w, err := cs.RESTClient().Get().AbsPath("/apis/slo.budgetgate.dev/v1alpha1/namespaces", ns, "servicelevelobjectives").
		Param("watch", "true").Param("timeoutSeconds", "1").Stream(ctx)
	if err != nil {
		return nil, err
	}
	return stopper(func() { _ = w.Close() }), nil
}

type stopper func()

func (s stopper) Stop() { s() }

// kubectlAt returns a function that runs the real kubectl (from the envtest
// binaries) against the suite's API server as its admin; --as impersonates.
func kubectlAt() func(args ...string) (string, error) {
	GinkgoHelper()
	bin := filepath.Join(envtestBinaryDir(), "kubectl")
	if _, err := os.Stat(bin); err != nil {
		if os.Getenv("BUDGETGATE_REQUIRE_KUBECTL") != "" {
			Fail(fmt.Sprintf("no kubectl at %s (make envtest-binaries gets it)", bin))
		}
		Skip("no kubectl at " + bin + " (make envtest-binaries gets it)")
	}
	kubeconfig := filepath.Join(GinkgoT().TempDir(), "kubeconfig")
	Expect(os.WriteFile(kubeconfig, testEnv.KubeConfig, 0o600)).To(Succeed())
	return func(args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, bin, append([]string{"--kubeconfig", kubeconfig}, args...)...)
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			Fail(fmt.Sprintf("running kubectl: %v", err))
		}
		return string(out), err
	}
}

var rfc3339 = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ`)

// normalise makes kubectl's output comparable across runs: the namespace is
// shop, times are <time>.
func normalise(out, ns string) string {
	return rfc3339.ReplaceAllString(strings.ReplaceAll(out, ns, "shop"), "<time>")
}
