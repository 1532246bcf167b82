package controller_test

import (
	"errors"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	slov1alpha1 "github.com/budgetgate/budgetgate/api/v1alpha1"
)

// newSLO is a 99.9% over 30d ratio SLO whose errors selector is unique to it, so
// that the scripted source can answer for it alone.
func newSLO(namespace, name string, policy string) *slov1alpha1.ServiceLevelObjective {
	slo := &slov1alpha1.ServiceLevelObjective{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec: slov1alpha1.ServiceLevelObjectiveSpec{
			Target: "99.9",
			Window: "30d",
			Indicator: slov1alpha1.Indicator{Ratio: &slov1alpha1.RatioIndicator{
				Errors: `http_requests_total{namespace="` + namespace + `",job="` + name + `",code=~"5.."}`,
				Total:  `http_requests_total{namespace="` + namespace + `",job="` + name + `"}`,
			}},
			EvaluationInterval: "10s",
		},
	}
	if policy != "" {
		slo.Spec.PolicyRef = &slov1alpha1.PolicyReference{Name: policy}
	}
	return slo
}

// at scripts ratio over the given windows.
func at(ratio float64, windows ...time.Duration) map[time.Duration]float64 {
	m := map[time.Duration]float64{}
	for _, w := range windows {
		m[w] = ratio
	}
	return m
}

func errorsKey(slo *slov1alpha1.ServiceLevelObjective) string { return slo.Spec.Indicator.Ratio.Errors }

// burnPolicy freezes at factor× over 1h∧5m and holds for minDuration.
func burnPolicy(name, factor, minDuration string, missing slov1alpha1.MissingDataAction) *slov1alpha1.ErrorBudgetPolicy {
	return &slov1alpha1.ErrorBudgetPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: slov1alpha1.ErrorBudgetPolicySpec{
			Rules: []slov1alpha1.PolicyRule{{
				Name:     "fast-burn",
				BurnRate: &slov1alpha1.BurnRateCondition{LongWindow: "1h", ShortWindow: "5m", Factor: new(slov1alpha1.Decimal(factor))},
				Action:   slov1alpha1.ActionFreeze,
			}},
			Freeze:        slov1alpha1.FreezeSettings{MinDuration: slov1alpha1.Duration(minDuration)},
			OnMissingData: missing,
			StaleHold:     "5m",
		},
	}
}

// fresh reads the SLO from the API server.
func fresh(g Gomega, slo *slov1alpha1.ServiceLevelObjective) *slov1alpha1.ServiceLevelObjective {
	out := &slov1alpha1.ServiceLevelObjective{}
	g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(slo), out)).To(Succeed())
	return out
}

func condition(slo *slov1alpha1.ServiceLevelObjective, t string) metav1.Condition {
	c := meta.FindStatusCondition(slo.Status.Conditions, t)
	if c == nil {
		return metav1.Condition{Type: t, Status: metav1.ConditionUnknown}
	}
	return *c
}

// evaluatedAfter waits until the SLO was evaluated for its current generation at
// or after the fake clock's current time, and returns it.
func evaluatedAfter(g Gomega, slo *slov1alpha1.ServiceLevelObjective, t time.Time) *slov1alpha1.ServiceLevelObjective {
	got := fresh(g, slo)
	g.Expect(got.Status.ObservedGeneration).To(Equal(got.Generation))
	g.Expect(got.Status.LastEvaluationTime).NotTo(BeNil())
	g.Expect(got.Status.LastEvaluationTime.Time.Before(t.Truncate(time.Second))).To(BeFalse(), "not evaluated since %s", t)
	return got
}

var _ = Describe("ServiceLevelObjective controller", func() {
	var ns string
	BeforeEach(func() { ns = newNamespace() })

	It("reports budget, burn rates and rules of a healthy SLO under the built-in policy", func() {
		slo := newSLO(ns, "healthy", "")
		// 0.05% errors everywhere: half the budget of a 99.9% target is spent.
		source.set(errorsKey(slo), 0.0005, nil)
		Expect(k8sClient.Create(ctx, slo)).To(Succeed())

		Eventually(func(g Gomega) {
			got := fresh(g, slo)
			g.Expect(got.Status.ObservedGeneration).To(Equal(got.Generation))
			ready := condition(got, slov1alpha1.ConditionReady)
			g.Expect(ready.Status).To(Equal(metav1.ConditionTrue))
			g.Expect(ready.ObservedGeneration).To(Equal(got.Generation))
			g.Expect(ready.Message).To(Equal(`Evaluated against policy "built-in": SLI 99.9500%, budget 50.0% left`))
			g.Expect(condition(got, slov1alpha1.ConditionDataAvailable).Status).To(Equal(metav1.ConditionTrue))
			g.Expect(condition(got, slov1alpha1.ConditionFrozen).Status).To(Equal(metav1.ConditionFalse))

			g.Expect(got.Status.Policy).To(Equal("built-in"))
			g.Expect(got.Status.SLI).To(Equal(slov1alpha1.Decimal("0.9995")))
			// Half the budget left at a burn of 0.5x over 1h (the fast
			// burn's window) lasts 0.5 × 30d ÷ 0.5 = 30d.
			g.Expect(got.Status.ErrorBudget).NotTo(BeNil())
			g.Expect(got.Status.ErrorBudget.ExhaustsAt).NotTo(BeNil())
			g.Expect(got.Status.ErrorBudget.ExhaustsAt.Time).To(BeTemporally("==", got.Status.LastEvaluationTime.Add(30*24*time.Hour)))
			g.Expect(got.Status.ErrorBudget).To(Equal(&slov1alpha1.ErrorBudgetStatus{
				Remaining: "0.5", Consumed: "0.5", RemainingPercent: "50.0%",
				ExhaustedIn: "30d", ForecastWindow: "1h", ExhaustsAt: got.Status.ErrorBudget.ExhaustsAt}))
			g.Expect(got.Status.FastBurn).To(Equal("0.50x"))
			g.Expect(got.Status.Freeze.Active).To(BeFalse())
			g.Expect(got.Status.ConsecutiveQueryFailures).To(BeZero())

			windows := make([]string, 0, len(got.Status.BurnRates))
			for _, w := range got.Status.BurnRates {
				windows = append(windows, w.Window)
				g.Expect(w.BurnRate).To(Equal(slov1alpha1.Decimal("0.5")), "window %s", w.Window)
				g.Expect(w.ErrorRatio).To(Equal(slov1alpha1.Decimal("0.0005")))
				g.Expect(w.Events).To(Equal(slov1alpha1.Decimal("10000")))
				g.Expect(w.DataAvailable).To(BeTrue())
			}
			g.Expect(windows).To(Equal([]string{"5m", "30m", "1h", "2h", "6h", "1d", "3d", "30d"}))

			thresholds := map[string]slov1alpha1.Decimal{}
			for _, r := range got.Status.Rules {
				g.Expect(r.Firing).To(BeFalse(), "rule %s", r.Name)
				thresholds[r.Name] = r.Threshold
			}
			g.Expect(thresholds).To(Equal(map[string]slov1alpha1.Decimal{
				"fast-burn": "14.4", "slow-burn": "6", "gradual-burn": "3", "chronic-burn": "1", "budget-exhausted": "0"}))
		}).Should(Succeed())
	})

	It("freezes on a fast burn, holds for minDuration and lifts when the burn stops", func() {
		Expect(k8sClient.Create(ctx, burnPolicy("hold-"+ns, "14.4", "10m", slov1alpha1.MissingDataRelease))).To(Succeed())
		slo := newSLO(ns, "burning", "hold-"+ns)
		// 2% errors over the last hour and 5 minutes: a 20x burn; 0.01% over 30d.
		source.set(errorsKey(slo), 0.0001, at(0.02, time.Hour, 5*time.Minute))
		Expect(k8sClient.Create(ctx, slo)).To(Succeed())

		var since time.Time
		Eventually(func(g Gomega) {
			got := fresh(g, slo)
			g.Expect(got.Status.ObservedGeneration).To(Equal(got.Generation))
			g.Expect(got.Status.Freeze.Active).To(BeTrue())
			g.Expect(got.Status.Freeze.Rule).To(Equal("fast-burn"))
			g.Expect(got.Status.Freeze.Reason).To(ContainSubstring("fast-burn"))
			g.Expect(got.Status.Freeze.Reason).To(ContainSubstring("20.00x over 1h"))
			g.Expect(got.Status.Freeze.Reason).To(ContainSubstring("14.40x"))
			g.Expect(got.Status.Freeze.Mode).To(Equal(slov1alpha1.ModeEnforce))
			g.Expect(got.Status.FastBurn).To(Equal("20.00x"))
			frozen := condition(got, slov1alpha1.ConditionFrozen)
			g.Expect(frozen.Status).To(Equal(metav1.ConditionTrue))
			g.Expect(frozen.Reason).To(Equal(slov1alpha1.ReasonBudgetBurning))
			g.Expect(frozen.ObservedGeneration).To(Equal(got.Generation))
			g.Expect(got.Status.Freeze.HoldUntil.Sub(got.Status.Freeze.Since.Time)).To(Equal(10 * time.Minute))
			since = got.Status.Freeze.Since.Time
			g.Expect(eventsFor(g, ns, slo.Name)).To(ContainElement("FreezeStarted"))
		}).Should(Succeed())

		By("the burn stops, the freeze holds until minDuration has passed")
		source.set(errorsKey(slo), 0.0001, nil)
		clock.Step(5 * time.Minute)
		Consistently(func(g Gomega) {
			got := fresh(g, slo)
			g.Expect(got.Status.Freeze.Active).To(BeTrue())
			g.Expect(got.Status.Freeze.Since.Time).To(Equal(since))
		}, "1500ms", "250ms").Should(Succeed())
		Eventually(func(g Gomega) {
			got := evaluatedAfter(g, slo, clock.Now())
			g.Expect(got.Status.Rules[0].Firing).To(BeFalse())
			g.Expect(got.Status.Freeze.Active).To(BeTrue())
		}).Should(Succeed())

		By("minDuration has passed without a Freeze rule firing: the freeze lifts")
		clock.Step(6 * time.Minute)
		Eventually(func(g Gomega) {
			got := fresh(g, slo)
			g.Expect(got.Status.Freeze.Active).To(BeFalse())
			g.Expect(got.Status.Freeze.Since).To(BeNil())
			g.Expect(condition(got, slov1alpha1.ConditionFrozen).Status).To(Equal(metav1.ConditionFalse))
			g.Expect(eventsFor(g, ns, slo.Name)).To(ContainElements("FreezeStarted", "FreezeLifted"))
		}).Should(Succeed())
	})

	DescribeTable("when Prometheus fails during a freeze",
		func(missing slov1alpha1.MissingDataAction, frozenAfterStaleHold bool) {
			name := "missing-" + ns
			Expect(k8sClient.Create(ctx, burnPolicy(name, "14.4", "1m", missing))).To(Succeed())
			slo := newSLO(ns, "flaky", name)
			source.set(errorsKey(slo), 0.0001, at(0.05, time.Hour, 5*time.Minute))
			Expect(k8sClient.Create(ctx, slo)).To(Succeed())
			Eventually(func(g Gomega) { g.Expect(fresh(g, slo).Status.Freeze.Active).To(BeTrue()) }).Should(Succeed())

			By("the source fails: DataAvailable=False, the decision is kept for staleHold")
			source.fail(errorsKey(slo), errors.New("Post \"http://prometheus:9090/api/v1/query\": connection refused"))
			clock.Step(2 * time.Minute) // past minDuration, within staleHold (5m)
			Eventually(func(g Gomega) {
				got := evaluatedAfter(g, slo, clock.Now())
				data := condition(got, slov1alpha1.ConditionDataAvailable)
				g.Expect(data.Status).To(Equal(metav1.ConditionFalse))
				g.Expect(data.Reason).To(Equal(slov1alpha1.ReasonQueryFailed))
				g.Expect(data.Message).To(ContainSubstring("connection refused"))
				g.Expect(got.Status.ConsecutiveQueryFailures).To(BeNumerically(">=", 1))
				g.Expect(condition(got, slov1alpha1.ConditionReady).Reason).To(Equal(slov1alpha1.ReasonQueryFailed))
				g.Expect(got.Status.Freeze.Active).To(BeTrue())
				g.Expect(condition(got, slov1alpha1.ConditionFrozen).Reason).To(Equal(slov1alpha1.ReasonHeldWithoutData))
			}).Should(Succeed())

			By("staleHold has passed: onMissingData decides")
			clock.Step(5 * time.Minute)
			Eventually(func(g Gomega) {
				got := evaluatedAfter(g, slo, clock.Now())
				g.Expect(got.Status.Freeze.Active).To(Equal(frozenAfterStaleHold))
			}).Should(Succeed())
			Consistently(func(g Gomega) {
				g.Expect(fresh(g, slo).Status.Freeze.Active).To(Equal(frozenAfterStaleHold))
			}, "1s", "250ms").Should(Succeed())
		},
		Entry("Release lifts the freeze", slov1alpha1.MissingDataRelease, false),
		Entry("Hold keeps it", slov1alpha1.MissingDataHold, true),
	)

	It("re-evaluates its SLOs when a policy changes", func() {
		name := "tunable-" + ns
		ebp := burnPolicy(name, "50", "1m", slov1alpha1.MissingDataRelease)
		Expect(k8sClient.Create(ctx, ebp)).To(Succeed())
		slo := newSLO(ns, "tuned", name)
		source.set(errorsKey(slo), 0.0001, at(0.02, time.Hour, 5*time.Minute))
		Expect(k8sClient.Create(ctx, slo)).To(Succeed())
		Eventually(func(g Gomega) {
			got := fresh(g, slo)
			g.Expect(got.Status.Policy).To(Equal(name))
			g.Expect(got.Status.Rules).To(HaveLen(1))
			g.Expect(got.Status.Rules[0].Threshold).To(Equal(slov1alpha1.Decimal("50")))
			g.Expect(got.Status.Rules[0].Value).To(Equal(slov1alpha1.Decimal("20")))
			g.Expect(got.Status.Freeze.Active).To(BeFalse())
		}).Should(Succeed())
		Eventually(func(g Gomega) {
			got := &slov1alpha1.ErrorBudgetPolicy{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(ebp), got)).To(Succeed())
			g.Expect(got.Status.ServiceLevelObjectives).To(Equal(int32(1)))
			valid := meta.FindStatusCondition(got.Status.Conditions, slov1alpha1.ConditionValid)
			g.Expect(valid).NotTo(BeNil())
			g.Expect(valid.Status).To(Equal(metav1.ConditionTrue))
			g.Expect(valid.ObservedGeneration).To(Equal(got.Generation))
		}).Should(Succeed())

		By("lowering the factor below the burn rate freezes")
		Eventually(func(g Gomega) {
			got := &slov1alpha1.ErrorBudgetPolicy{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(ebp), got)).To(Succeed())
			got.Spec.Rules[0].BurnRate.Factor = new(slov1alpha1.Decimal("10"))
			g.Expect(k8sClient.Update(ctx, got)).To(Succeed())
		}).Should(Succeed())
		Eventually(func(g Gomega) {
			got := fresh(g, slo)
			g.Expect(got.Status.Rules[0].Threshold).To(Equal(slov1alpha1.Decimal("10")))
			g.Expect(got.Status.Freeze.Active).To(BeTrue())
		}).Should(Succeed())
	})

	It("is not Ready while its policy is missing, and recovers when it appears", func() {
		name := "late-" + ns
		slo := newSLO(ns, "waiting", name)
		source.set(errorsKey(slo), 0.0001, nil)
		Expect(k8sClient.Create(ctx, slo)).To(Succeed())
		Eventually(func(g Gomega) {
			got := fresh(g, slo)
			ready := condition(got, slov1alpha1.ConditionReady)
			g.Expect(ready.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(ready.Reason).To(Equal(slov1alpha1.ReasonPolicyNotFound))
			g.Expect(ready.Message).To(Equal(`ErrorBudgetPolicy "` + name + `" not found`))
			g.Expect(ready.ObservedGeneration).To(Equal(got.Generation))
		}).Should(Succeed())

		Expect(k8sClient.Create(ctx, burnPolicy(name, "14.4", "1m", slov1alpha1.MissingDataRelease))).To(Succeed())
		Eventually(func(g Gomega) {
			got := fresh(g, slo)
			g.Expect(condition(got, slov1alpha1.ConditionReady).Status).To(Equal(metav1.ConditionTrue))
			g.Expect(got.Status.Policy).To(Equal(name))
		}).Should(Succeed())
	})

	It("reports a policy whose windows exceed the SLO window", func() {
		name := "too-long-" + ns
		ebp := burnPolicy(name, "2", "1m", slov1alpha1.MissingDataRelease)
		ebp.Spec.Rules[0].BurnRate.LongWindow = "30d"
		ebp.Spec.Rules[0].BurnRate.ShortWindow = "1d"
		Expect(k8sClient.Create(ctx, ebp)).To(Succeed())
		slo := newSLO(ns, "short-window", name)
		slo.Spec.Window = "7d"
		source.set(errorsKey(slo), 0.0001, nil)
		Expect(k8sClient.Create(ctx, slo)).To(Succeed())
		Eventually(func(g Gomega) {
			ready := condition(fresh(g, slo), slov1alpha1.ConditionReady)
			g.Expect(ready.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(ready.Reason).To(Equal(slov1alpha1.ReasonInvalidPolicy))
			g.Expect(ready.Message).To(ContainSubstring(`longWindow 30d is longer than the SLO window 7d`))
		}).Should(Succeed())
	})
})
