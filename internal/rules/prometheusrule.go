package rules

import (
	"maps"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	slov1alpha1 "github.com/budgetgate/budgetgate/api/v1alpha1"
	"github.com/budgetgate/budgetgate/internal/policy"
)

// The PrometheusRule that holds an SLO's rules, as the controller writes it
// and kubectl budgetgate rules prints it: one place, so the two cannot drift.

// Labels budgetgate puts on the PrometheusRules it writes (object labels,
// not the series labels above).
const (
	ObjectLabelManagedBy = "app.kubernetes.io/managed-by"
	ManagedBy            = "budgetgate"
	ObjectLabelSLO       = "budgetgate.dev/slo"
)

// PrometheusRuleName is the name of the PrometheusRule of an SLO.
func PrometheusRuleName(slo string) string { return "budgetgate-" + slo }

// OptionsFor are the options an SLO's rules are generated with under p: the
// policy's severities and the SLO's alert labels.
func OptionsFor(slo *slov1alpha1.ServiceLevelObjective, p policy.Policy) Options {
	o := Options{Severities: p.Severities}
	if a := slo.Spec.Alerting; a != nil {
		o.Labels = a.Labels
	}
	return o
}

// PrometheusRule is the PrometheusRule holding an SLO's groups: named for
// the SLO, in its namespace, labelled with extra (the platform's
// --prometheus-rule-labels, for its Prometheus's ruleSelector) and, over
// them, budgetgate's own labels.
func PrometheusRule(slo *slov1alpha1.ServiceLevelObjective, groups []monitoringv1.RuleGroup, extra map[string]string) *monitoringv1.PrometheusRule {
	labels := maps.Clone(extra)
	if labels == nil {
		labels = map[string]string{}
	}
	labels[ObjectLabelManagedBy] = ManagedBy
	labels[ObjectLabelSLO] = slo.Name
	return &monitoringv1.PrometheusRule{
		TypeMeta:   metav1.TypeMeta{APIVersion: monitoringv1.SchemeGroupVersion.String(), Kind: monitoringv1.PrometheusRuleKind},
		ObjectMeta: metav1.ObjectMeta{Namespace: slo.Namespace, Name: PrometheusRuleName(slo.Name), Labels: labels},
		Spec:       monitoringv1.PrometheusRuleSpec{Groups: groups},
	}
}
