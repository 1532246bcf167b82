package rules

import (
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	slov1alpha1 "github.com/budgetgate/budgetgate/api/v1alpha1"
	"github.com/budgetgate/budgetgate/internal/policy"
)

// The platform's labels go on the PrometheusRule, but never over
// budgetgate's own, which the controller finds its rules by; the caller's
// map is not changed.
func TestPrometheusRule(t *testing.T) {
	slo := &slov1alpha1.ServiceLevelObjective{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "checkout"}}
	extra := map[string]string{"release": "kube-prometheus-stack", ObjectLabelSLO: "other", ObjectLabelManagedBy: "someone"}
	groups := []monitoringv1.RuleGroup{{Name: "g"}}
	pr := PrometheusRule(slo, groups, extra)
	if pr.Namespace != "shop" || pr.Name != "budgetgate-checkout" || pr.Kind != "PrometheusRule" || pr.APIVersion != "monitoring.coreos.com/v1" {
		t.Errorf("object %s %s/%s %s", pr.APIVersion, pr.Namespace, pr.Name, pr.Kind)
	}
	want := map[string]string{"release": "kube-prometheus-stack", ObjectLabelSLO: "checkout", ObjectLabelManagedBy: "budgetgate"}
	if len(pr.Labels) != len(want) {
		t.Errorf("labels %v, want %v", pr.Labels, want)
	}
	for k, v := range want {
		if pr.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, pr.Labels[k], v)
		}
	}
	if extra[ObjectLabelSLO] != "other" {
		t.Error("the caller's labels were changed")
	}
	if len(pr.Spec.Groups) != 1 || pr.Spec.Groups[0].Name != "g" {
		t.Errorf("groups %+v", pr.Spec.Groups)
	}
	if got := PrometheusRule(slo, nil, nil).Labels; len(got) != 2 {
		t.Errorf("without extra labels: %v", got)
	}

	p := policy.Policy{Severities: map[string]string{"fast-burn": "critical"}}
	if o := OptionsFor(slo, p); o.Labels != nil || o.Severities["fast-burn"] != "critical" {
		t.Errorf("options without alerting: %+v", o)
	}
	slo.Spec.Alerting = &slov1alpha1.SLOAlerting{Labels: map[string]string{"team": "payments"}}
	if o := OptionsFor(slo, p); o.Labels["team"] != "payments" {
		t.Errorf("options with the SLO's alert labels: %+v", o)
	}
}
