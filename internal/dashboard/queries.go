package dashboard

import (
	"strings"
	"time"

	"github.com/prometheus/common/model"

	"github.com/budgetgate/budgetgate/internal/rules"
)

// Metrics the operator exports. Their definitions are unexported in
// internal/controller/metrics.go and internal/webhook/metrics.go, and
// controller-runtime registers the rest; TestQueriesNameKnownSeries checks
// every name a panel queries against the registry those packages fill, so a
// rename there fails the test here.
const (
	MetricBudgetRemaining    = "budgetgate_slo_error_budget_remaining_ratio"
	MetricFrozen             = "budgetgate_slo_frozen"
	MetricRuleFiring         = "budgetgate_slo_rule_firing"
	MetricEvaluationErrors   = "budgetgate_slo_evaluation_errors_total"
	MetricEvaluationDuration = "budgetgate_slo_evaluation_duration_seconds"
	MetricPrometheusQueries  = "budgetgate_slo_prometheus_queries_total"
	MetricAdmissionDecisions = "budgetgate_admission_decisions_total"

	// controller-runtime's, served on the same endpoint.
	MetricReconciles       = "controller_runtime_reconcile_total"
	MetricReconcileErrors  = "controller_runtime_reconcile_errors_total"
	MetricWorkqueueDepth   = "workqueue_depth"
	MetricWorkqueueWait    = "workqueue_queue_duration_seconds"
	MetricWebhookLatency   = "controller_runtime_webhook_latency_seconds"
	MetricWebhookRequests  = "controller_runtime_webhook_requests_total"
	MetricLeaderStatus     = "leader_election_master_status"
	MetricScrapeTargetUp   = "up" // Prometheus' own, per scraped target
	histogramBucketsSuffix = "_bucket"
)

// WorkloadWebhookPath is the path of the release gate (internal/webhook's
// WorkloadPath; a test keeps them equal). Every replica serves it from start,
// so its request counter names the operator's scrape job before any decision.
const WorkloadWebhookPath = "/validate-apps-v1-workloads"

// Labels of the operator's SLO metrics: the SLO's namespace and name.
// Prometheus renames a scraped "namespace" label to "exported_namespace"
// when the scrape target has its own (a ServiceMonitor's does, and so does
// kube-prometheus-stack's every target), so opSLO selects both ways.
const (
	labelNamespace         = "namespace"
	labelExportedNamespace = "exported_namespace"
	labelName              = "name"
	labelJob               = "job"
)

// v is a Grafana variable reference.
func v(name string) string { return "$" + name }

// matchVar is `label=~"$variable"`: a regular-expression match, so that a
// multi-value or All selection (which Grafana writes as (a|b)) works too.
func matchVar(label, variable string) string { return label + `=~"` + v(variable) + `"` }

func eq(label, value string) string { return label + `="` + value + `"` }

// sel is a vector selector: metric{matchers}.
func sel(metric string, matchers ...string) string {
	return metric + "{" + strings.Join(matchers, ", ") + "}"
}

// window is a window as the rules generator writes it into series names
// (prometheus/common's model.Duration: 5m, 1h, 1d, 3d, 4w).
func window(w time.Duration) string { return model.Duration(w).String() }

// sloIDs selects the recorded series of the SLOs chosen in the namespace
// and SLO variables by Sloth's labels.
func sloIDs() []string {
	return []string{matchVar(rules.LabelService, VarNamespace), matchVar(rules.LabelSLO, VarSLO)}
}

// onIDs is the vector matching of an SLO's recorded series with each other,
// as the rules generator writes it.
var onIDs = "on(" + strings.Join([]string{rules.LabelID, rules.LabelService, rules.LabelSLO}, ", ") + ") group_left"

// budgetRemainingRecorded is the recorded budget left over the SLO window.
func budgetRemainingRecorded() string { return sel(rules.PeriodBudgetRemaining, sloIDs()...) }

// burnRecorded is the burn rate over w from the recorded error ratio: the
// ratio over w divided by the error budget as a ratio, as the rules
// generator records slo:current_burn_rate:ratio for its base window.
func burnRecorded(w time.Duration) string {
	return sel(rules.SLIErrorRatio+window(w), sloIDs()...) + "\n/ " + onIDs + "\n" + sel(rules.ErrorBudget, sloIDs()...)
}

// opSLO applies f (a selector → expression function, e.g. a rate) to the
// operator's series of the chosen SLOs, whichever label holds the SLO's
// namespace: exported_namespace where the scrape renamed it, else namespace.
// The second branch excludes renamed series, so that an SLO in the
// operator's own namespace cannot bring every other SLO's series with it.
func opSLO(f func(selector string) string, metric string, matchers ...string) string {
	exported := append([]string{matchVar(labelExportedNamespace, VarNamespace), matchVar(labelName, VarSLO)}, matchers...)
	plain := append([]string{matchVar(labelNamespace, VarNamespace), eq(labelExportedNamespace, ""),
		matchVar(labelName, VarSLO)}, matchers...)
	return f(sel(metric, exported...)) + " or " + f(sel(metric, plain...))
}

// opNamespace is opSLO for series whose namespace is the only SLO label
// (admission decisions carry the workload's namespace, and no SLO name).
func opNamespace(f func(selector string) string, metric string, matchers ...string) string {
	exported := append([]string{matchVar(labelExportedNamespace, VarNamespace)}, matchers...)
	plain := append([]string{matchVar(labelNamespace, VarNamespace), eq(labelExportedNamespace, "")}, matchers...)
	return f(sel(metric, exported...)) + " or " + f(sel(metric, plain...))
}

func same(selector string) string { return selector }

// rangeOf returns a function that applies fn over a range of the selector:
// rate(selector[$__rate_interval]).
func rangeOf(fn, rng string) func(string) string {
	return func(selector string) string { return fn + "(" + selector + "[" + rng + "])" }
}

// job selects the operator's scrape job chosen in the job variable.
func job() string { return matchVar(labelJob, VarJob) }

// opRate is the per-second rate of one of the operator's counters.
func opRate(metric string, matchers ...string) string {
	return "rate(" + sel(metric, append([]string{job()}, matchers...)...) + "[$__rate_interval])"
}

// quantile is the q-quantile of one of the operator's histograms by the
// given labels.
func quantile(q, metric string, by ...string) string {
	return "histogram_quantile(" + q + ", sum by (" + strings.Join(append([]string{"le"}, by...), ", ") + ") (" +
		opRate(metric+histogramBucketsSuffix) + "))"
}
