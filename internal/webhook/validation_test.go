package webhook_test

import (
	"encoding/json"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	slov1alpha1 "github.com/budgetgate/budgetgate/api/v1alpha1"
)

// What CEL cannot check is rejected by budgetgate's own validating webhooks.
var _ = Describe("Validation of budgetgate's kinds", func() {
	// expectRejected: the whole message the user sees, webhook prefix included.
	expectRejected := func(err error, webhook, message string) {
		Expect(err).To(HaveOccurred())
		Expect(apierrors.IsForbidden(err)).To(BeTrue(), "got %v", err)
		Expect(err.Error()).To(Equal(`admission webhook "` + webhook + `" denied the request: ` + message))
	}
	const sloWebhook, policyWebhook, fexWebhook = "vservicelevelobjective-v1alpha1.budgetgate.dev",
		"verrorbudgetpolicy-v1alpha1.budgetgate.dev", "vfreezeexception-v1alpha1.budgetgate.dev"
	slo := func(mutate func(*slov1alpha1.ServiceLevelObjective)) *slov1alpha1.ServiceLevelObjective {
		s := &slov1alpha1.ServiceLevelObjective{
			ObjectMeta: metav1.ObjectMeta{Namespace: "default", GenerateName: "v-"},
			Spec: slov1alpha1.ServiceLevelObjectiveSpec{
				Target: "99.9",
				Indicator: slov1alpha1.Indicator{Ratio: &slov1alpha1.RatioIndicator{
					Errors: `http_requests_total{job="checkout",code=~"5.."}`, Total: `http_requests_total{job="checkout"}`}},
			},
		}
		mutate(s)
		return s
	}

	DescribeTable("ServiceLevelObjective indicators must be valid PromQL",
		func(mutate func(*slov1alpha1.ServiceLevelObjective), message string) {
			expectRejected(k8sClient.Create(ctx, slo(mutate)), sloWebhook, message)
		},
		Entry("unbalanced braces", func(s *slov1alpha1.ServiceLevelObjective) {
			s.Spec.Indicator.Ratio.Errors = `http_requests_total{job="checkout",code=~"5.."`
		}, `spec.indicator.ratio.errors: expected , or } at offset 46; write http_requests_total{job="checkout",code=~"5.."}`),
		Entry("a bad regular expression", func(s *slov1alpha1.ServiceLevelObjective) {
			s.Spec.Indicator.Ratio.Total = `http_requests_total{job=~"check(out"}`
		}, `spec.indicator.ratio.total: label job: "check(out" is not an RE2 regular expression (missing closing )); escape special characters with a backslash, or match the value exactly with = or !=`),
		Entry("a range instead of a selector", func(s *slov1alpha1.ServiceLevelObjective) {
			s.Spec.Indicator.Ratio.Errors = `http_requests_total{code="500"}[5m]`
		}, `spec.indicator.ratio.errors: unexpected "[5m]" at offset 31: only a metric selector is allowed, which budgetgate wraps in increase(...[window]) itself; write http_requests_total{code="500"}`),
		Entry("an unbalanced query", func(s *slov1alpha1.ServiceLevelObjective) {
			s.Spec.Indicator = slov1alpha1.Indicator{Query: `sum(rate(errors[$window]) / sum(rate(requests[$window]))`}
		}, "spec.indicator.query: unclosed '('"),
		Entry("a selector without a matcher that selects anything", func(s *slov1alpha1.ServiceLevelObjective) {
			s.Spec.Indicator.Ratio.Total = `{job=~".*"}`
		}, `spec.indicator.ratio.total: a selector needs a metric name or a matcher that does not match the empty string; write a selector such as http_requests_total{job="checkout"}`),
		Entry("the same selector for errors and total", func(s *slov1alpha1.ServiceLevelObjective) {
			s.Spec.Indicator.Ratio.Errors = s.Spec.Indicator.Ratio.Total
		}, `spec.indicator.ratio.errors: the same selector as ratio.total, so every event would count as failed; select the failed events only, e.g. add code=~"5.." as in http_requests_total{job="checkout",code=~"5.."}`),
		Entry("a window shorter than the built-in policy's 3d burn window", func(s *slov1alpha1.ServiceLevelObjective) { s.Spec.Window = "1d" },
			`spec.window: 1d is shorter than the longWindow 3d of rule "chronic-burn" of policy "built-in", so the SLO could not be evaluated; write a window of at least 3d, or set spec.policyRef to a policy with shorter windows`),
	)

	It("accepts a valid SLO and warns about rules that can never fire", func() {
		// A 90% target cannot burn faster than 10x: the built-in fast-burn rule (14.4x) never fires.
		s := slo(func(s *slov1alpha1.ServiceLevelObjective) {
			s.Spec.Target = "90"
			s.Name, s.GenerateName = "ninety", ""
		})
		s.APIVersion, s.Kind = "slo.budgetgate.dev/v1alpha1", "ServiceLevelObjective"
		body, err := json.Marshal(s)
		Expect(err).NotTo(HaveOccurred())
		cs, seen := clientAs("")
		Expect(cs.RESTClient().Post().AbsPath("/apis/slo.budgetgate.dev/v1alpha1/namespaces/default/servicelevelobjectives").
			SetHeader("Content-Type", "application/json").Body(body).Do(ctx).Error()).To(Succeed())
		Expect(strings.Join(seen.all(), "\n")).To(And(
			ContainSubstring(`spec.target: rule "fast-burn" can never fire`),
			ContainSubstring("spec.workloadSelector is empty")))
	})

	DescribeTable("ErrorBudgetPolicy rules must be consistent",
		func(mutate func(*slov1alpha1.ErrorBudgetPolicy), message string) {
			p := &slov1alpha1.ErrorBudgetPolicy{
				ObjectMeta: metav1.ObjectMeta{GenerateName: "v-"},
				Spec: slov1alpha1.ErrorBudgetPolicySpec{Rules: []slov1alpha1.PolicyRule{{
					Name:     "fast-burn",
					BurnRate: &slov1alpha1.BurnRateCondition{LongWindow: "1h", ShortWindow: "5m", Factor: new(slov1alpha1.Decimal("14.4"))},
				}}},
			}
			mutate(p)
			expectRejected(k8sClient.Create(ctx, p), policyWebhook, message)
		},
		Entry("the reserved name built-in", func(p *slov1alpha1.ErrorBudgetPolicy) { p.Name, p.GenerateName = slov1alpha1.BuiltInPolicyName, "" },
			`metadata.name: "built-in" is reserved for budgetgate's built-in policy, which SLOs select with policyRef: {name: built-in}; `+
				`choose another name, e.g. "default", the policy SLOs without a policyRef use`),
	)

	It("bounds a FreezeException's expiry by the policy's maxExceptionDuration", func() {
		fex := func(expiresIn time.Duration) *slov1alpha1.FreezeException {
			return &slov1alpha1.FreezeException{
				ObjectMeta: metav1.ObjectMeta{Namespace: "default", GenerateName: "v-"},
				Spec: slov1alpha1.FreezeExceptionSpec{
					Reason:    "Switch to the backup payment provider (INC-4821)",
					Workloads: []slov1alpha1.WorkloadReference{{Kind: "Deployment", Name: "checkout"}},
					ExpiresAt: metav1.NewTime(time.Now().Add(expiresIn)),
				},
			}
		}
		past := fex(-time.Minute)
		expectRejected(k8sClient.Create(ctx, past), fexWebhook,
			"spec.expiresAt: "+past.Spec.ExpiresAt.UTC().Truncate(time.Second).Format(time.RFC3339)+
				` is not in the future; write a time after now, at most 24h0m0s from now (the maxExceptionDuration of policy "built-in")`)
		long := fex(48 * time.Hour)
		expectRejected(k8sClient.Create(ctx, long), fexWebhook, "spec.expiresAt: "+long.Spec.ExpiresAt.UTC().Truncate(time.Second).Format(time.RFC3339)+
			` is 48h0m0s after the exception was created, longer than the maxExceptionDuration 24h0m0s of policy "built-in"; `+
			`write a time at most 24h0m0s after the exception was created, and ask for another exception when it runs out`)
		Expect(k8sClient.Create(ctx, fex(23*time.Hour))).To(Succeed())
	})
})
