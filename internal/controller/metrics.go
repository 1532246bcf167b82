package controller

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Labels identifying the SLO of a series.
const (
	labelNamespace = "namespace"
	labelName      = "name"
)

// Metrics of the SLO controller, served on the manager's metrics endpoint.
var (
	budgetRemaining = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "budgetgate_slo_error_budget_remaining_ratio",
		Help: "Fraction of the error budget left over the SLO window (negative once overspent).",
	}, []string{labelNamespace, labelName})
	burnRate = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "budgetgate_slo_burn_rate",
		Help: "Error-budget burn rate over a window (1 = spending exactly the budget over the SLO window).",
	}, []string{labelNamespace, labelName, "window"})
	frozen = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "budgetgate_slo_frozen",
		Help: "1 while the SLO freezes releases of its workloads.",
	}, []string{labelNamespace, labelName})
	ruleFiring = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "budgetgate_slo_rule_firing",
		Help: "1 while a policy rule fires for the SLO.",
	}, []string{labelNamespace, labelName, "rule", "action"})
	evaluationErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "budgetgate_slo_evaluation_errors_total",
		Help: "Evaluations that failed, by reason (InvalidSpec, PolicyNotFound, InvalidPolicy, QueryFailed).",
	}, []string{labelNamespace, labelName, "reason"})
	evaluationDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "budgetgate_slo_evaluation_duration_seconds",
		Help:    "Time one SLO evaluation took, Prometheus queries included.",
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 20},
	}, []string{labelNamespace})
	prometheusQueries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "budgetgate_slo_prometheus_queries_total",
		Help: "Prometheus instant queries issued for SLO evaluations (one per window per evaluation).",
	}, []string{labelNamespace})
)

func init() {
	metrics.Registry.MustRegister(budgetRemaining, burnRate, frozen, ruleFiring,
		evaluationErrors, evaluationDuration, prometheusQueries)
}

// forgetMetrics drops the series of a deleted SLO.
func forgetMetrics(namespace, name string) {
	labels := prometheus.Labels{labelNamespace: namespace, labelName: name}
	budgetRemaining.DeletePartialMatch(labels)
	burnRate.DeletePartialMatch(labels)
	frozen.DeletePartialMatch(labels)
	ruleFiring.DeletePartialMatch(labels)
	evaluationErrors.DeletePartialMatch(labels)
	exported.Lock()
	delete(exported.series, namespace+"/"+name)
	exported.Unlock()
}

// exported remembers the windows and rules whose series were last exported for
// each SLO, so that a window or rule removed from its policy loses its series.
var exported = struct {
	sync.Mutex
	series map[string]exportedSeries
}{series: map[string]exportedSeries{}}

type exportedSeries struct {
	windows []string
	rules   [][2]string // name, action
}

// forgetStaleSeries deletes the series of windows and rules that an SLO
// exported last time and not now, and remembers what it exports now.
func forgetStaleSeries(namespace, name string, now exportedSeries) {
	key := namespace + "/" + name
	exported.Lock()
	defer exported.Unlock()
	prev := exported.series[key]
	for _, w := range prev.windows {
		if !contains(now.windows, w) {
			burnRate.DeleteLabelValues(namespace, name, w)
		}
	}
	for _, r := range prev.rules {
		if !contains(now.rules, r) {
			ruleFiring.DeleteLabelValues(namespace, name, r[0], r[1])
		}
	}
	exported.series[key] = now
}

func contains[T comparable](s []T, v T) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
