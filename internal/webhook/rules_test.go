package webhook_test

import (
	"fmt"
	"path/filepath"
	"slices"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	slov1alpha1 "github.com/budgetgate/budgetgate/api/v1alpha1"
	"github.com/budgetgate/budgetgate/internal/controller"
	"github.com/budgetgate/budgetgate/internal/policy"
	"github.com/budgetgate/budgetgate/internal/rules"
)

// One SLO gives its freeze and its pages (docs/alerting.md): with alerting
// on, the controller writes the SLO's PrometheusRule (the rules of
// internal/rules), owned by the SLO, keeps it as the policy changes and as
// people edit it, and deletes it with the SLO or when alerting goes off.
// The manager starts without the Prometheus Operator's CRD, as most
// clusters do; the spec installs it (test/crds/prometheus-operator).
var _ = Describe("Prometheus rules of an SLO", Ordered, func() {
	var (
		ns     string
		key    client.ObjectKey
		ruleOf = func(g Gomega) *monitoringv1.PrometheusRule {
			pr := &monitoringv1.PrometheusRule{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: controller.PrometheusRuleName(key.Name)}, pr)).To(Succeed())
			return pr
		}
		sloNow = func(g Gomega) *slov1alpha1.ServiceLevelObjective {
			s := &slov1alpha1.ServiceLevelObjective{}
			g.Expect(k8sClient.Get(ctx, key, s)).To(Succeed())
			return s
		}
		rulesCondition = func(g Gomega) *metav1.Condition {
			s := sloNow(g)
			c := meta.FindStatusCondition(s.Status.Conditions, slov1alpha1.ConditionRulesWritten)
			g.Expect(c).NotTo(BeNil(), "no RulesWritten condition")
			g.Expect(c.ObservedGeneration).To(Equal(s.Generation))
			return c
		}
		severities = func(pr *monitoringv1.PrometheusRule) map[string]string {
			out := map[string]string{}
			for _, g := range pr.Spec.Groups {
				for _, r := range g.Rules {
					if r.Alert != "" {
						out[r.Labels[rules.LabelRule]] = r.Labels[rules.LabelAlertSeverity]
					}
				}
			}
			return out
		}
		update = func(mutate func(*slov1alpha1.ServiceLevelObjective)) {
			GinkgoHelper()
			Expect(retry.RetryOnConflict(retry.DefaultRetry, func() error {
				s := &slov1alpha1.ServiceLevelObjective{}
				if err := k8sClient.Get(ctx, key, s); err != nil {
					return err
				}
				mutate(s)
				return k8sClient.Update(ctx, s)
			})).To(Succeed())
		}
		policyName string
	)

	BeforeAll(func() {
		ns = boundNamespace()
		policyName = bindingPolicy(ns, "paging", slov1alpha1.ModeEnforce, "14.4")
		Expect(retry.RetryOnConflict(retry.DefaultRetry, func() error {
			p := &slov1alpha1.ErrorBudgetPolicy{}
			if err := k8sClient.Get(ctx, client.ObjectKey{Name: policyName}, p); err != nil {
				return err
			}
			p.Spec.Alerting = &slov1alpha1.PolicyAlerting{Enabled: true}
			return k8sClient.Update(ctx, p)
		})).To(Succeed())
		s := boundSLO(ns, "web", policyName, 0)
		s.Spec.Alerting = &slov1alpha1.SLOAlerting{Labels: map[string]string{"team": "web"}}
		Expect(k8sClient.Create(ctx, s)).To(Succeed())
		key = client.ObjectKeyFromObject(s)
	})

	It("says, while the cluster has no PrometheusRule CRD, that the rules are not written, and evaluates as before", func() {
		dc := discovery.NewDiscoveryClientForConfigOrDie(cfg)
		_, err := dc.ServerResourcesForGroupVersion("monitoring.coreos.com/v1")
		Expect(apierrors.IsNotFound(err)).To(BeTrue(), "the suite's API server serves PrometheusRules before this spec installed them: %v", err)
		Eventually(func(g Gomega) {
			c := rulesCondition(g)
			g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(c.Reason).To(Equal(slov1alpha1.ReasonPrometheusRuleCRDMissing))
			g.Expect(c.Message).To(ContainSubstring("kubectl budgetgate rules web -n " + ns))
			g.Expect(meta.IsStatusConditionTrue(sloNow(g).Status.Conditions, slov1alpha1.ConditionReady)).To(BeTrue())
		}).Should(Succeed())
	})

	It("writes the SLO's rules once the CRD is installed: owned by the SLO, labelled, exactly what the generator makes", func() {
		_, err := envtest.InstallCRDs(cfg, envtest.CRDInstallOptions{
			Paths: []string{filepath.Join("..", "..", "test", "crds", "prometheus-operator")}, ErrorIfPathMissing: true,
		})
		Expect(err).NotTo(HaveOccurred())
		Eventually(func(g Gomega) {
			c := rulesCondition(g)
			g.Expect(c.Status).To(Equal(metav1.ConditionTrue), c.Message)
			pr := ruleOf(g)
			g.Expect(metav1.IsControlledBy(pr, sloNow(g))).To(BeTrue(), "not controlled by the SLO: %v", pr.OwnerReferences)
			g.Expect(pr.Labels).To(HaveKeyWithValue("app.kubernetes.io/managed-by", "budgetgate"))
			g.Expect(pr.Labels).To(HaveKeyWithValue("budgetgate.dev/slo", "web"))

			s := sloNow(g)
			p := &slov1alpha1.ErrorBudgetPolicy{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKey{Name: policyName}, p)).To(Succeed())
			pol, err := policy.FromSpec(p.Name, &p.Spec)
			g.Expect(err).NotTo(HaveOccurred())
			want, err := rules.Generate(s, pol, rules.Options{Labels: map[string]string{"team": "web"}})
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(pr.Spec.Groups).To(Equal(want))
			for _, grp := range pr.Spec.Groups {
				for _, r := range grp.Rules {
					if r.Alert != "" {
						g.Expect(r.Labels).To(HaveKeyWithValue("team", "web"), r.Alert)
					}
				}
			}
			st := s.Status.PrometheusRule
			g.Expect(st).NotTo(BeNil())
			g.Expect(st.Name).To(Equal(pr.Name))
			g.Expect(st.Generation).To(Equal(pr.Generation))
			g.Expect(st.Alerts).To(Equal(int32(1)), "one alert per policy rule")
			g.Expect(c.Message).To(Equal("PrometheusRule budgetgate-web holds " + itoa(st.RecordingRules) + " recording rules and 1 alerts"))
		}).Should(Succeed())
	})

	It("follows the policy: a severity mapped in the policy relabels the alert", func() {
		Eventually(func(g Gomega) { g.Expect(severities(ruleOf(g))).To(Equal(map[string]string{"fast-burn": "page"})) }).Should(Succeed())
		Expect(retry.RetryOnConflict(retry.DefaultRetry, func() error {
			p := &slov1alpha1.ErrorBudgetPolicy{}
			if err := k8sClient.Get(ctx, client.ObjectKey{Name: policyName}, p); err != nil {
				return err
			}
			p.Spec.Alerting.Severities = map[string]slov1alpha1.Severity{"fast-burn": "critical"}
			return k8sClient.Update(ctx, p)
		})).To(Succeed())
		Eventually(func(g Gomega) { g.Expect(severities(ruleOf(g))).To(Equal(map[string]string{"fast-burn": "critical"})) }).Should(Succeed())
	})

	It("refuses a severity for a rule the policy does not have", func() {
		p := &slov1alpha1.ErrorBudgetPolicy{}
		Expect(k8sClient.Get(ctx, client.ObjectKey{Name: policyName}, p)).To(Succeed())
		p.Spec.Alerting.Severities = map[string]slov1alpha1.Severity{"fast-burm": "page"}
		err := k8sClient.Update(ctx, p)
		Expect(apierrors.IsInvalid(err)).To(BeTrue(), "%v", err)
		Expect(err.Error()).To(ContainSubstring("alerting.severities names a rule this policy does not have"))
	})

	It("takes back a PrometheusRule someone changed or deleted (a team silencing its own page)", func() {
		Expect(retry.RetryOnConflict(retry.DefaultRetry, func() error {
			pr := &monitoringv1.PrometheusRule{}
			if err := k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: controller.PrometheusRuleName("web")}, pr); err != nil {
				return err
			}
			for i := range pr.Spec.Groups {
				pr.Spec.Groups[i].Rules = slices.DeleteFunc(pr.Spec.Groups[i].Rules, func(r monitoringv1.Rule) bool { return r.Alert != "" })
			}
			return k8sClient.Update(ctx, pr)
		})).To(Succeed())
		Eventually(func(g Gomega) { g.Expect(severities(ruleOf(g))).To(HaveLen(1)) }).Should(Succeed())

		Expect(k8sClient.Delete(ctx, &monitoringv1.PrometheusRule{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: controller.PrometheusRuleName("web")}})).To(Succeed())
		Eventually(func(g Gomega) { g.Expect(severities(ruleOf(g))).To(HaveLen(1)) }).Should(Succeed())
	})

	It("deletes the rules when the SLO turns alerting off, and writes them again when it turns it on", func() {
		update(func(s *slov1alpha1.ServiceLevelObjective) { s.Spec.Alerting.Enabled = new(false) })
		Eventually(func(g Gomega) {
			err := k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: controller.PrometheusRuleName("web")}, &monitoringv1.PrometheusRule{})
			g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "%v", err)
			s := sloNow(g)
			g.Expect(s.Status.PrometheusRule).To(BeNil())
			g.Expect(meta.FindStatusCondition(s.Status.Conditions, slov1alpha1.ConditionRulesWritten)).To(BeNil())
		}).Should(Succeed())
		update(func(s *slov1alpha1.ServiceLevelObjective) { s.Spec.Alerting.Enabled = nil })
		Eventually(func(g Gomega) { g.Expect(rulesCondition(g).Status).To(Equal(metav1.ConditionTrue)) }).Should(Succeed())
	})

	It("deletes the rules with the SLO", func() {
		Expect(k8sClient.Delete(ctx, &slov1alpha1.ServiceLevelObjective{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"}})).To(Succeed())
		Eventually(func(g Gomega) {
			err := k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: controller.PrometheusRuleName("web")}, &monitoringv1.PrometheusRule{})
			g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "%v", err)
			g.Expect(apierrors.IsNotFound(k8sClient.Get(ctx, key, &slov1alpha1.ServiceLevelObjective{}))).To(BeTrue())
		}).Should(Succeed())
	})
})

func itoa(n int32) string { return fmt.Sprint(n) }
