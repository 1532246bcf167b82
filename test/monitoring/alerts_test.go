// Package monitoring tests the alerts budgetgate ships on itself
// (config/prometheus/alerts.yaml, the same in the Helm chart) with promtool:
// every alert fires when its condition holds for its `for`, and not when the
// operator is healthy.
package monitoring

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"sigs.k8s.io/yaml"

	"github.com/budgetgate/budgetgate/internal/rules"
	prometheustest "github.com/budgetgate/budgetgate/test/prometheus"
)

// operatorAlerts reads the shipped PrometheusRule.
func operatorAlerts(t *testing.T) *monitoringv1.PrometheusRule {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "config", "prometheus", "alerts.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	pr := &monitoringv1.PrometheusRule{}
	if err := yaml.UnmarshalStrict(data, pr); err != nil {
		t.Fatal(err)
	}
	return pr
}

func TestOperatorAlerts(t *testing.T) {
	bins := prometheustest.Require(t)
	pr := operatorAlerts(t)
	dir := t.TempDir()

	// The whole file, annotations included, is valid.
	full, err := rules.RuleFile(pr.Spec.Groups)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "full.yaml"), full, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bins.Promtool, "check", "rules", filepath.Join(dir, "full.yaml")).CombinedOutput(); err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}

	// The unit tests compare labels; promtool would compare annotations
	// too, so they are tested by check rules above and left out here.
	groups := pr.Spec.DeepCopy().Groups
	names := map[string]bool{}
	for gi := range groups {
		for ri := range groups[gi].Rules {
			groups[gi].Rules[ri].Annotations = nil
			names[groups[gi].Rules[ri].Alert] = true
		}
	}
	bare, err := rules.RuleFile(groups)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "alerts.yaml"), bare, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := strings.ReplaceAll(unitTests, "JOB", `job="budgetgate-controller-manager-metrics-service"`)
	for name := range names {
		if !strings.Contains(tests, "alertname: "+name+"\n") {
			t.Errorf("alert %s has no promtool test", name)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "tests.yaml"), []byte(tests), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bins.Promtool, "test", "rules", "tests.yaml")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool test rules: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}

// unitTests are promtool's rule unit tests; JOB is the job matcher of the
// manager's metrics. Each alert is tested firing, and healthy.
const unitTests = `
rule_files: [alerts.yaml]
evaluation_interval: 1m
tests:
# No replica up for 5 minutes: down. One replica up: healthy.
- interval: 1m
  input_series:
  - series: 'up{JOB, instance="a"}'
    values: '1x10 0x20'
  - series: 'up{JOB, instance="b"}'
    values: '1x10 stale'
  alert_rule_test:
  - {eval_time: 10m, alertname: BudgetgateManagerDown, exp_alerts: []}
  - {eval_time: 14m, alertname: BudgetgateManagerDown, exp_alerts: []}
  - eval_time: 20m
    alertname: BudgetgateManagerDown
    exp_alerts: [{exp_labels: {severity: critical}}]
# The SLO controller runs nowhere: stopped. It runs: healthy.
- interval: 1m
  input_series:
  - series: 'controller_runtime_reconcile_total{JOB, controller="errorbudgetpolicy", result="success"}'
    values: '0+1x30'
  alert_rule_test:
  - {eval_time: 9m, alertname: BudgetgateEvaluationsStopped, exp_alerts: []}
  - eval_time: 15m
    alertname: BudgetgateEvaluationsStopped
    exp_alerts: [{exp_labels: {severity: critical, controller: servicelevelobjective, job: budgetgate-controller-manager-metrics-service}}]
- interval: 1m
  input_series:
  - series: 'controller_runtime_reconcile_total{JOB, controller="servicelevelobjective", result="success"}'
    values: '0+1x30'
  alert_rule_test:
  - {eval_time: 30m, alertname: BudgetgateEvaluationsStopped, exp_alerts: []}
  - {eval_time: 30m, alertname: BudgetgateEvaluationsStalled, exp_alerts: []}
# SLOs exist but no reconcile for 15m, then for 15m more: stalled.
- interval: 1m
  input_series:
  - series: 'controller_runtime_reconcile_total{JOB, controller="servicelevelobjective", result="success"}'
    values: '0+10x10 100x40'
  - series: 'budgetgate_slo_frozen{JOB, namespace="shop", name="web"}'
    values: '0x50'
  alert_rule_test:
  - {eval_time: 20m, alertname: BudgetgateEvaluationsStalled, exp_alerts: []}
  - eval_time: 45m
    alertname: BudgetgateEvaluationsStalled
    exp_alerts: [{exp_labels: {severity: critical}}]
# No SLOs at all: nothing stalls.
- interval: 1m
  input_series:
  - series: 'controller_runtime_reconcile_total{JOB, controller="servicelevelobjective", result="success"}'
    values: '0x50'
  alert_rule_test:
  - {eval_time: 45m, alertname: BudgetgateEvaluationsStalled, exp_alerts: []}
# SLO web has a budget, SLO api has none for 30 minutes.
- interval: 1m
  input_series:
  - series: 'budgetgate_slo_frozen{JOB, namespace="shop", name="web"}'
    values: '0x40'
  - series: 'budgetgate_slo_error_budget_remaining_ratio{JOB, namespace="shop", name="web"}'
    values: '0.5x40'
  - series: 'budgetgate_slo_frozen{JOB, namespace="shop", name="api"}'
    values: '0x40'
  alert_rule_test:
  - {eval_time: 20m, alertname: BudgetgateSLONoData, exp_alerts: []}
  - eval_time: 35m
    alertname: BudgetgateSLONoData
    exp_alerts: [{exp_labels: {severity: warning, job: budgetgate-controller-manager-metrics-service, namespace: shop, name: api}}]
# Queries of one SLO keep failing; another had one failure long ago.
- interval: 1m
  input_series:
  - series: 'budgetgate_slo_evaluation_errors_total{JOB, namespace="shop", name="web", reason="QueryFailed"}'
    values: '0+1x40'
  - series: 'budgetgate_slo_evaluation_errors_total{JOB, namespace="shop", name="api", reason="QueryFailed"}'
    values: '1x40'
  - series: 'budgetgate_slo_evaluation_errors_total{JOB, namespace="shop", name="cart", reason="InvalidSpec"}'
    values: '0+1x40'
  alert_rule_test:
  - {eval_time: 10m, alertname: BudgetgatePrometheusQueriesFailing, exp_alerts: []}
  - eval_time: 35m
    alertname: BudgetgatePrometheusQueriesFailing
    exp_alerts: [{exp_labels: {severity: warning, namespace: shop, name: web}}]
# The API server admitted requests without budgetgate's release gate; another
# webhook failing open is not ours.
- interval: 1m
  input_series:
  - series: 'apiserver_admission_webhook_fail_open_count{job="apiserver", name="releases.budgetgate.dev", type="validating"}'
    values: '0x5 3x20'
  - series: 'apiserver_admission_webhook_fail_open_count{job="apiserver", name="validate.kyverno.svc", type="validating"}'
    values: '0+1x25'
  alert_rule_test:
  - {eval_time: 4m, alertname: BudgetgateReleaseGateFailingOpen, exp_alerts: []}
  - eval_time: 7m
    alertname: BudgetgateReleaseGateFailingOpen
    exp_alerts: [{exp_labels: {severity: critical, name: releases.budgetgate.dev}}]
  - {eval_time: 25m, alertname: BudgetgateReleaseGateFailingOpen, exp_alerts: []}
# The webhook Service with no ready address for 2 minutes; with one, healthy.
- interval: 1m
  input_series:
  - series: 'kube_endpoint_info{namespace="budgetgate-system", endpoint="budgetgate-webhook-service"}'
    values: '1x10'
  - series: 'kube_endpoint_address{namespace="budgetgate-system", endpoint="budgetgate-webhook-service", ip="10.0.0.1", ready="true"}'
    values: '1x3 stale'
  - series: 'kube_endpoint_address{namespace="budgetgate-system", endpoint="budgetgate-webhook-service", ip="10.0.0.1", ready="false"}'
    values: '_x4 1x6'
  alert_rule_test:
  - {eval_time: 3m, alertname: BudgetgateWebhookNoReadyEndpoints, exp_alerts: []}
  - eval_time: 9m
    alertname: BudgetgateWebhookNoReadyEndpoints
    exp_alerts: [{exp_labels: {severity: critical, namespace: budgetgate-system, endpoint: budgetgate-webhook-service, ready: "true"}}]
# Certificates: the serving one expires in 3 days (warning after an hour),
# the CA in 12 hours (critical at once, and warning after an hour), a healthy
# one in 60 days.
- interval: 1m
  input_series:
  - series: 'budgetgate_webhook_certificate_expiry_timestamp_seconds{JOB, instance="a", certificate="serving"}'
    values: '259200x120'
  - series: 'budgetgate_webhook_certificate_expiry_timestamp_seconds{JOB, instance="a", certificate="ca"}'
    values: '43200x120'
  alert_rule_test:
  - eval_time: 1m
    alertname: BudgetgateWebhookCertificateExpiresSoon
    exp_alerts: [{exp_labels: {severity: critical, certificate: ca}}]
  - eval_time: 80m
    alertname: BudgetgateWebhookCertificateExpiresSoon
    exp_alerts:
    - {exp_labels: {severity: critical, certificate: ca}}
    - {exp_labels: {severity: warning, certificate: ca}}
    - {exp_labels: {severity: warning, certificate: serving}}
- interval: 1m
  input_series:
  - series: 'budgetgate_webhook_certificate_expiry_timestamp_seconds{JOB, instance="a", certificate="serving"}'
    values: '5184000x120'
  alert_rule_test:
  - {eval_time: 110m, alertname: BudgetgateWebhookCertificateExpiresSoon, exp_alerts: []}
`
