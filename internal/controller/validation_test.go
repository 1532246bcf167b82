package controller_test

import (
	"os"
	"path/filepath"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	slov1alpha1 "github.com/budgetgate/budgetgate/api/v1alpha1"
)

var _ = Describe("API validation by the API server", func() {
	It("accepts the samples", func() {
		Expect(client.IgnoreAlreadyExists(k8sClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}}))).To(Succeed())
		files, err := filepath.Glob(filepath.Join("..", "..", "config", "samples", "slo_*.yaml"))
		Expect(err).NotTo(HaveOccurred())
		Expect(files).To(HaveLen(3))
		for _, f := range files {
			data, err := os.ReadFile(f)
			Expect(err).NotTo(HaveOccurred())
			obj := &unstructured.Unstructured{}
			Expect(yaml.Unmarshal(data, &obj.Object)).To(Succeed(), f)
			if obj.GetKind() == "FreezeException" {
				// The sample's expiry is a placeholder; exceptions must expire within a day.
				Expect(unstructured.SetNestedField(obj.Object, time.Now().Add(2*time.Hour).UTC().Format(time.RFC3339), "spec", "expiresAt")).To(Succeed())
			}
			Expect(k8sClient.Create(ctx, obj)).To(Succeed(), f)
			DeferCleanup(func() { Expect(client.IgnoreNotFound(k8sClient.Delete(ctx, obj))).To(Succeed()) })
		}
		slo := &slov1alpha1.ServiceLevelObjective{}
		Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: "shop", Name: "checkout-availability"}, slo)).To(Succeed())
		Expect(slo.Spec.Target).To(Equal(slov1alpha1.Decimal("99.9")))
		ebp := &slov1alpha1.ErrorBudgetPolicy{}
		Expect(k8sClient.Get(ctx, client.ObjectKey{Name: "default"}, ebp)).To(Succeed())
		Expect(ebp.Spec.Rules).To(HaveLen(5))
	})

	It("applies defaults", func() {
		ns := newNamespace()
		slo := newSLO(ns, "defaults", "")
		slo.Spec.Window, slo.Spec.EvaluationInterval = "", ""
		Expect(k8sClient.Create(ctx, slo)).To(Succeed())
		Expect(slo.Spec.Window).To(Equal(slov1alpha1.Duration("30d")))
		Expect(slo.Spec.EvaluationInterval).To(Equal(slov1alpha1.Duration("1m")))

		ebp := burnPolicy("defaults-"+ns, "14.4", "", "")
		ebp.Spec.StaleHold = ""
		Expect(k8sClient.Create(ctx, ebp)).To(Succeed())
		Expect(ebp.Spec.Mode).To(Equal(slov1alpha1.ModeEnforce))
		Expect(ebp.Spec.Freeze.MinDuration).To(Equal(slov1alpha1.Duration("1h")))
		Expect(ebp.Spec.ExemptReleaseClasses).To(Equal([]string{"hotfix", "security"}))
		Expect(ebp.Spec.OnMissingData).To(Equal(slov1alpha1.MissingDataRelease))
		Expect(ebp.Spec.StaleHold).To(Equal(slov1alpha1.Duration("30m")))
		Expect(ebp.Spec.MaxExceptionDuration).To(Equal(slov1alpha1.Duration("24h")))
	})

	DescribeTable("rejects an invalid ServiceLevelObjective with a readable message",
		func(mutate func(*slov1alpha1.ServiceLevelObjective), message string) {
			slo := newSLO("default", "invalid", "")
			mutate(slo)
			err := k8sClient.Create(ctx, slo)
			Expect(apierrors.IsInvalid(err)).To(BeTrue(), "got %v", err)
			expectInvalid(err, `ServiceLevelObjective.slo.budgetgate.dev "invalid" is invalid: `, message)
		},
		Entry("target of 100", func(s *slov1alpha1.ServiceLevelObjective) { s.Spec.Target = "100" },
			`spec.target: Invalid value: "100": target must be below 100: a 100% objective leaves no error budget to spend; write e.g. "99.9" or "99.99"`),
		Entry("target of 0", func(s *slov1alpha1.ServiceLevelObjective) { s.Spec.Target = "0" },
			`spec.target: Invalid value: "0": target is a percentage of good events, at least 50, e.g. "99.9": below 50 the objective would allow more failed events than good ones`),
		Entry("target that is a fraction", func(s *slov1alpha1.ServiceLevelObjective) { s.Spec.Target = "0.999" },
			`spec.target: Invalid value: "0.999": target is a percentage, not a fraction: for 99.9% write "99.9"`),
		Entry("target that is no number", func(s *slov1alpha1.ServiceLevelObjective) { s.Spec.Target = "99.9%" },
			`spec.target: Invalid value: "99.9%": write the number without the % sign: "99.9"`),
		Entry("window in an unknown unit", func(s *slov1alpha1.ServiceLevelObjective) { s.Spec.Window = "30x" },
			`spec.window: Invalid value: "30x": not a duration: write a whole number and one unit (ms, s, m, h, d, w or y), e.g. 5m, 1h or 30d`),
		Entry("window in two units", func(s *slov1alpha1.ServiceLevelObjective) { s.Spec.Window = "1h30m" },
			`spec.window: Invalid value: "1h30m": not a single-unit duration: write 90m`),
		Entry("evaluation interval under 10s", func(s *slov1alpha1.ServiceLevelObjective) { s.Spec.EvaluationInterval = "5s" },
			`spec.evaluationInterval: Invalid value: "5s": evaluationInterval must be at least 10s, e.g. 30s or 1m`),
		Entry("two indicators", func(s *slov1alpha1.ServiceLevelObjective) {
			s.Spec.Indicator.Query = `sum(rate(errors[$window])) / sum(rate(requests[$window]))`
		}, `spec.indicator: Invalid value: exactly one of ratio, latency or query must be set`),
		Entry("no indicator", func(s *slov1alpha1.ServiceLevelObjective) { s.Spec.Indicator = slov1alpha1.Indicator{} },
			`spec.indicator: Invalid value: exactly one of ratio, latency or query must be set`),
		Entry("queryEvents with a ratio indicator", func(s *slov1alpha1.ServiceLevelObjective) {
			s.Spec.Indicator.QueryEvents = `sum(increase(requests[$window]))`
		}, `spec.indicator: Invalid value: queryEvents goes with query; ratio and latency indicators count their events themselves`),
		Entry("query without $window", func(s *slov1alpha1.ServiceLevelObjective) {
			s.Spec.Indicator = slov1alpha1.Indicator{Query: `sum(rate(errors[5m]))`}
		}, `spec.indicator.query: Invalid value: "sum(rate(errors[5m]))": query must contain $window where a range goes, e.g. rate(http_requests_total[$window]): budgetgate puts each window it measures there`),
		Entry("latency without le", func(s *slov1alpha1.ServiceLevelObjective) {
			s.Spec.Indicator = slov1alpha1.Indicator{Latency: &slov1alpha1.LatencyIndicator{
				Success: `http_request_duration_seconds_bucket{job="a"}`, Total: `http_request_duration_seconds_count{job="a"}`}}
		}, `spec.indicator.latency.success: Invalid value: "http_request_duration_seconds_bucket{job=\"a\"}": success selects the histogram bucket of fast-enough requests with an le matcher, e.g. http_request_duration_seconds_bucket{job="checkout",le="0.3"}`),
	)

	DescribeTable("rejects an invalid ErrorBudgetPolicy with a readable message",
		func(mutate func(*slov1alpha1.ErrorBudgetPolicy), message string) {
			ebp := burnPolicy("invalid", "14.4", "1h", "")
			mutate(ebp)
			err := k8sClient.Create(ctx, ebp)
			Expect(apierrors.IsInvalid(err)).To(BeTrue(), "got %v", err)
			expectInvalid(err, `ErrorBudgetPolicy.slo.budgetgate.dev "`+ebp.Name+`" is invalid: `, message)
		},
		Entry("short window equal to the long window", func(p *slov1alpha1.ErrorBudgetPolicy) {
			p.Spec.Rules[0].BurnRate.ShortWindow = "1h"
		}, `spec.rules[0].burnRate.shortWindow: Invalid value: shortWindow must be shorter than longWindow 1h: about a twelfth of it, e.g. 5m with 1h`),
		Entry("short window longer in other units", func(p *slov1alpha1.ErrorBudgetPolicy) {
			p.Spec.Rules[0].BurnRate.ShortWindow = "2h"
			p.Spec.Rules[0].BurnRate.LongWindow = "90m"
		}, `spec.rules[0].burnRate.shortWindow: Invalid value: shortWindow 2h is longer than longWindow 90m: swap them`),
		Entry("both factor and budgetPercent", func(p *slov1alpha1.ErrorBudgetPolicy) {
			p.Spec.Rules[0].BurnRate.BudgetPercent = new(slov1alpha1.Decimal("2"))
		}, `spec.rules[0].burnRate: Invalid value: set exactly one of factor or budgetPercent`),
		Entry("a rule with two conditions", func(p *slov1alpha1.ErrorBudgetPolicy) {
			p.Spec.Rules[0].BudgetRemainingBelow = new(slov1alpha1.Decimal("0"))
		}, `spec.rules[0]: Invalid value: a rule has exactly one of burnRate or budgetRemainingBelow`),
		Entry("a zero factor", func(p *slov1alpha1.ErrorBudgetPolicy) {
			p.Spec.Rules[0].BurnRate.Factor = new(slov1alpha1.Decimal("0"))
		}, `spec.rules[0].burnRate.factor: Invalid value: "0": factor must be above 0: the burn rate at which the rule fires, e.g. "14.4"`),
		Entry("a budget bound written as a percentage", func(p *slov1alpha1.ErrorBudgetPolicy) {
			p.Spec.Rules = append(p.Spec.Rules, slov1alpha1.PolicyRule{Name: "budget", BudgetRemainingBelow: new(slov1alpha1.Decimal("10"))})
		}, `spec.rules[1].budgetRemainingBelow: Invalid value: "10": budgetRemainingBelow is a fraction of the budget, not a percentage: for 10% write "0.1"`),
		Entry("a release margin of 1 or more", func(p *slov1alpha1.ErrorBudgetPolicy) {
			p.Spec.Freeze.ReleaseWhen.BudgetRemainingAbove = "1.5"
		}, `spec.freeze.releaseWhen.budgetRemainingAbove: Invalid value: "1.5": budgetRemainingAbove is a fraction of the budget below 1, e.g. "0.1" for 10%`),
		Entry("an unknown mode", func(p *slov1alpha1.ErrorBudgetPolicy) { p.Spec.Mode = "Audit" },
			`spec.mode: Unsupported value: "Audit": supported values: "Enforce", "DryRun"`),
		Entry("no rules", func(p *slov1alpha1.ErrorBudgetPolicy) { p.Spec.Rules = nil },
			`spec.rules: Required value`),
	)

	DescribeTable("rejects an invalid FreezeException with a readable message",
		func(mutate func(*slov1alpha1.FreezeException), message string) {
			fex := &slov1alpha1.FreezeException{
				ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "invalid"},
				Spec: slov1alpha1.FreezeExceptionSpec{
					Reason:    "Roll out the payment provider fix",
					Workloads: []slov1alpha1.WorkloadReference{{Kind: "Deployment", Name: "checkout"}},
					ExpiresAt: metav1.NewTime(time.Now().Add(time.Hour)),
				},
			}
			mutate(fex)
			err := k8sClient.Create(ctx, fex)
			Expect(apierrors.IsInvalid(err)).To(BeTrue(), "got %v", err)
			expectInvalid(err, `FreezeException.slo.budgetgate.dev "invalid" is invalid: `, message)
		},
		Entry("a short reason", func(f *slov1alpha1.FreezeException) { f.Spec.Reason = "because" },
			`spec.reason: Invalid value: "because": reason says why the release cannot wait for the freeze to lift, in 10 characters or more, e.g. "Roll back the payment client (INC-4821)"`),
		Entry("no workloads", func(f *slov1alpha1.FreezeException) { f.Spec.Workloads = nil },
			`spec.workloads: Invalid value: list the workloads the exception covers, e.g. [{kind: Deployment, name: checkout}], or select them with workloadSelector`),
		Entry("an approver without a time", func(f *slov1alpha1.FreezeException) { f.Spec.ApprovedBy = "someone" },
			`spec: Invalid value: approvedBy and approvedAt are set together, by budgetgate, when someone approves`),
		Entry("an unknown kind", func(f *slov1alpha1.FreezeException) { f.Spec.Workloads[0].Kind = "Pod" },
			`spec.workloads[0].kind: Unsupported value: "Pod": supported values: "Deployment", "StatefulSet", "DaemonSet", "Rollout"`),
	)

	// The name is checked by the webhook (CEL could name the field only as
	// <nil>); one that got in without it is reported invalid.
	It("reports a policy named built-in invalid", func() {
		ebp := burnPolicy(slov1alpha1.BuiltInPolicyName, "14.4", "1h", "")
		Expect(k8sClient.Create(ctx, ebp)).To(Succeed())
		DeferCleanup(func() { Expect(client.IgnoreNotFound(k8sClient.Delete(ctx, ebp))).To(Succeed()) })
		Eventually(func(g Gomega) {
			got := &slov1alpha1.ErrorBudgetPolicy{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(ebp), got)).To(Succeed())
			valid := meta.FindStatusCondition(got.Status.Conditions, slov1alpha1.ConditionValid)
			g.Expect(valid).NotTo(BeNil())
			g.Expect(valid.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(valid.Message).To(ContainSubstring(`metadata.name: "built-in" is reserved for budgetgate's built-in policy`))
		}).Should(Succeed())
	})

	It("rejects a FreezeException without an expiry", func() {
		obj := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "slo.budgetgate.dev/v1alpha1", "kind": "FreezeException",
			"metadata": map[string]any{"namespace": "default", "name": "no-expiry"},
			"spec": map[string]any{"reason": "Roll out the payment provider fix",
				"workloads": []any{map[string]any{"kind": "Deployment", "name": "checkout"}}},
		}}
		err := k8sClient.Create(ctx, obj)
		Expect(apierrors.IsInvalid(err)).To(BeTrue(), "got %v", err)
		Expect(err.Error()).To(ContainSubstring(`spec.expiresAt: Required value`))
	})
})

// expectInvalid: the API server's whole message; where several checks fail it
// lists them in brackets, and message must be one of them.
func expectInvalid(err error, prefix, message string) {
	GinkgoHelper()
	Expect(err.Error()).To(Or(Equal(prefix+message), And(HavePrefix(prefix+"["), ContainSubstring(message+", "), HaveSuffix("]")),
		And(HavePrefix(prefix+"["), HaveSuffix(message+"]"))))
}
