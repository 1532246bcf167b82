package controller_test

import (
	"errors"
	"fmt"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	dto "github.com/prometheus/client_model/go"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	slov1alpha1 "github.com/budgetgate/budgetgate/api/v1alpha1"
)

// The numbers-and-time lines of docs/security.md: what Prometheus does (or
// fails to do) can hold a freeze but never lift a budget freeze, nor start one.
var _ = Describe("Numbers and time", func() {
	var ns string
	BeforeEach(func() { ns = newNamespace() })

	budgetPolicy := func(name string, missing slov1alpha1.MissingDataAction) *slov1alpha1.ErrorBudgetPolicy {
		return &slov1alpha1.ErrorBudgetPolicy{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: slov1alpha1.ErrorBudgetPolicySpec{
				Rules:         []slov1alpha1.PolicyRule{{Name: "budget-exhausted", BudgetRemainingBelow: new(slov1alpha1.Decimal("0")), Action: slov1alpha1.ActionFreeze}},
				Freeze:        slov1alpha1.FreezeSettings{MinDuration: "1m"},
				OnMissingData: missing,
				StaleHold:     "5m",
			},
		}
	}

	It("keeps the last known budget while Prometheus does not answer for the SLO window, so a budget freeze holds", func() {
		name := "budget-" + ns
		Expect(k8sClient.Create(ctx, budgetPolicy(name, slov1alpha1.MissingDataRelease))).To(Succeed())
		slo := newSLO(ns, "spent", name)
		source.set(errorsKey(slo), 0.0011, nil) // 110% of the budget spent
		Expect(k8sClient.Create(ctx, slo)).To(Succeed())
		Eventually(func(g Gomega) {
			got := fresh(g, slo)
			g.Expect(got.Status.Freeze.Active).To(BeTrue())
			g.Expect(got.Status.Freeze.Rule).To(Equal("budget-exhausted"))
		}).Should(Succeed())

		By("the 30d query times out on every evaluation; the short ones answer")
		source.failWindows(errorsKey(slo), 0.0011, 30*24*time.Hour)
		clock.Step(2 * time.Minute)
		Eventually(func(g Gomega) {
			got := evaluatedAfter(g, slo, clock.Now())
			g.Expect(got.Status.Freeze.Active).To(BeTrue())
			w := windowStatus(got, "30d")
			g.Expect(w.CarriedFrom).NotTo(BeNil())
			g.Expect(w.ErrorRatio).To(Equal(slov1alpha1.Decimal("0.0011")))
			g.Expect(condition(got, slov1alpha1.ConditionDataAvailable).Reason).To(Equal(slov1alpha1.ReasonQueryFailed))
			// The only window of this policy went unanswered: not Ready, but frozen on the last budget.
			g.Expect(condition(got, slov1alpha1.ConditionReady).Reason).To(Equal(slov1alpha1.ReasonQueryFailed))
			g.Expect(got.Status.ErrorBudget.RemainingPercent).To(Equal("-10.0%"))
		}).Should(Succeed())

		By("long past staleHold, under onMissingData Release, it still holds")
		clock.Step(80 * time.Minute)
		Eventually(func(g Gomega) {
			got := evaluatedAfter(g, slo, clock.Now())
			g.Expect(got.Status.Freeze.Active).To(BeTrue(), "a slow Prometheus lifted a budget freeze")
			g.Expect(got.Status.Rules[0].Firing).To(BeTrue())
		}).Should(Succeed())
	})

	It("never starts a freeze of a healthy SLO on a Prometheus outage, under Hold or Release", func() {
		for _, missing := range []slov1alpha1.MissingDataAction{slov1alpha1.MissingDataHold, slov1alpha1.MissingDataRelease} {
			name := fmt.Sprintf("blip-%s-%s", strings.ToLower(string(missing)), ns)
			Expect(k8sClient.Create(ctx, burnPolicy(name, "14.4", "1m", missing))).To(Succeed())
			slo := newSLO(ns, "healthy-"+strings.ToLower(string(missing)), name)
			source.set(errorsKey(slo), 0.0001, nil)
			Expect(k8sClient.Create(ctx, slo)).To(Succeed())
			Eventually(func(g Gomega) { g.Expect(fresh(g, slo).Status.Rules).To(HaveLen(1)) }).Should(Succeed())
			source.fail(errorsKey(slo), errors.New("Post \"http://prometheus:9090/api/v1/query\": connection refused"))
			for range 3 {
				clock.Step(4 * time.Minute)
				Eventually(func(g Gomega) {
					got := evaluatedAfter(g, slo, clock.Now())
					g.Expect(got.Status.Freeze.Active).To(BeFalse())
					g.Expect(got.Status.Rules[0].Firing).To(BeFalse())
				}).Should(Succeed())
			}
		}
	})

	It("warns in status about a budget shorter than the evaluation interval and an errors selector that matches nothing", func() {
		slo := newSLO(ns, "tight", "")
		slo.Spec.Target = "99.999" // 25.9s of full outage in 30d
		slo.Spec.EvaluationInterval = "1m"
		source.set(errorsKey(slo), 0, nil)
		source.noSeries(errorsKey(slo))
		Expect(k8sClient.Create(ctx, slo)).To(Succeed())
		Eventually(func(g Gomega) {
			got := fresh(g, slo)
			g.Expect(got.Status.Warnings).To(ContainElement(
				"the error budget of 99.999% over 30d is 25.9s of full outage, shorter than the evaluation interval 1m: a full outage spends it before the next evaluation; lower the target, lengthen the window or shorten evaluationInterval"))
			g.Expect(got.Status.Warnings).To(ContainElement(
				"spec.indicator.ratio.errors matched no series in the last 30d, so the SLI reads 100%: right if the service had no errors (counters often appear only with the first error), otherwise check the selector's metric name and label values"))
		}).Should(Succeed())
	})

	It("drops the metric series of windows and rules removed from its policy", func() {
		name := "shrinking-" + ns
		ebp := burnPolicy(name, "14.4", "1m", slov1alpha1.MissingDataRelease)
		ebp.Spec.Rules = append(ebp.Spec.Rules, slov1alpha1.PolicyRule{Name: "slow-burn", Action: slov1alpha1.ActionWarn,
			BurnRate: &slov1alpha1.BurnRateCondition{LongWindow: "6h", ShortWindow: "30m", Factor: new(slov1alpha1.Decimal("6"))}})
		Expect(k8sClient.Create(ctx, ebp)).To(Succeed())
		slo := newSLO(ns, "metered", name)
		source.set(errorsKey(slo), 0.0001, nil)
		Expect(k8sClient.Create(ctx, slo)).To(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(seriesOf("budgetgate_slo_burn_rate", ns, "metered", "window")).To(ConsistOf("5m", "30m", "1h", "6h", "30d"))
			g.Expect(seriesOf("budgetgate_slo_rule_firing", ns, "metered", "rule")).To(ConsistOf("fast-burn", "slow-burn"))
		}).Should(Succeed())
		Expect(retry.RetryOnConflict(retry.DefaultRetry, func() error {
			got := &slov1alpha1.ErrorBudgetPolicy{}
			if err := k8sClient.Get(ctx, client.ObjectKey{Name: name}, got); err != nil {
				return err
			}
			got.Spec.Rules = got.Spec.Rules[:1]
			return k8sClient.Update(ctx, got)
		})).To(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(seriesOf("budgetgate_slo_burn_rate", ns, "metered", "window")).To(ConsistOf("5m", "1h", "30d"))
			g.Expect(seriesOf("budgetgate_slo_rule_firing", ns, "metered", "rule")).To(ConsistOf("fast-burn"))
		}).Should(Succeed())
	})
})

// windowStatus is the status entry of a window.
func windowStatus(slo *slov1alpha1.ServiceLevelObjective, window string) slov1alpha1.WindowBurnRate {
	for _, w := range slo.Status.BurnRates {
		if w.Window == window {
			return w
		}
	}
	return slov1alpha1.WindowBurnRate{}
}

// seriesOf lists the values of label of the series of metric for one SLO, as
// the manager's metrics endpoint would serve them.
func seriesOf(metric, ns, name, label string) []string {
	families, err := metrics.Registry.Gather()
	Expect(err).NotTo(HaveOccurred())
	var out []string
	for _, f := range families {
		if f.GetName() != metric {
			continue
		}
		for _, m := range f.GetMetric() {
			if labelOf(m, "namespace") == ns && labelOf(m, "name") == name {
				out = append(out, labelOf(m, label))
			}
		}
	}
	return out
}

func labelOf(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}
