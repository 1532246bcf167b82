package main

import (
	"context"
	"fmt"
	"time"
)

// snapshot is everything read at one instant of a measured window: the
// manager's and Prometheus's metrics, the CPU time of each process, the
// machine's busy time and load.
type snapshot struct {
	at      time.Time
	manager metrics
	prom    metrics
	cpu     map[string]float64 // seconds, by process
	busy    float64            // machine busy seconds, all cores
	load1   float64
}

// The processes whose CPU the benchmark reports.
const (
	procManager    = "manager"
	procPrometheus = "prometheus"
	procAPIServer  = "kube-apiserver"
	procEtcd       = "etcd"
	procBench      = "bench"
)

func (b *bench) snapshot(ctx context.Context) (snapshot, error) {
	s := snapshot{at: time.Now(), cpu: map[string]float64{}}
	var err error
	if s.manager, err = scrape(ctx, b.mgr.metricsURL); err != nil {
		return s, fmt.Errorf("scraping the manager: %w", err)
	}
	if s.prom, err = scrape(ctx, b.prom.URL+"/metrics"); err != nil {
		return s, fmt.Errorf("scraping Prometheus: %w", err)
	}
	for name, pid := range b.pids() {
		if v, err := readProcCPU(pid); err == nil {
			s.cpu[name] = v
		}
	}
	s.busy, _ = readMachineBusy()
	s.load1, _ = readLoadAverage()
	return s, nil
}

// interval is what happened between two snapshots: one evaluation
// interval of a phase.
type interval struct {
	Seconds float64 `json:"seconds"`
	// Reconciles of the SLO controller (controller_runtime_reconcile_total).
	Reconciles float64 `json:"reconciles"`
	// ManagerQueries: budgetgate_slo_prometheus_queries_total.
	ManagerQueries float64 `json:"managerQueries"`
	// APIQueries: instant queries Prometheus answered
	// (prometheus_http_requests_total{handler="/api/v1/query"}), and the
	// seconds its handler spent on them (request durations summed).
	APIQueries       float64 `json:"prometheusApiQueries"`
	APIQuerySeconds  float64 `json:"prometheusApiQuerySeconds"`
	EngineQueries    float64 `json:"engineQueries"`
	EngineSeconds    float64 `json:"engineSeconds"`
	RuleEvalSeconds  float64 `json:"ruleEvaluationSeconds"`
	RuleGroupSeconds float64 `json:"ruleGroupSeconds"`
	RuleEvaluations  float64 `json:"ruleEvaluations"`
	RuleGroupsMissed float64 `json:"ruleGroupIterationsMissed"`
	RuleFailures     float64 `json:"ruleEvaluationFailures"`
	// EvalP50/EvalP99: budgetgate_slo_evaluation_duration_seconds over the
	// interval (bucket interpolation); EvalMean its sum over its count.
	EvalMean float64 `json:"evaluationMeanSeconds"`
	EvalP50  float64 `json:"evaluationP50Seconds"`
	EvalP99  float64 `json:"evaluationP99Seconds"`
	// QueueWaitMean: workqueue_queue_duration_seconds of the SLO controller.
	QueueWaitMean float64 `json:"queueWaitMeanSeconds"`
	// CPUSeconds by process over the interval; OtherCores is the machine's
	// busy time not spent by them, in cores (other people's work).
	CPUSeconds map[string]float64 `json:"cpuSeconds"`
	// At the interval's end: Prometheus's head series and Go heap in use,
	// the manager's Go heap in use.
	PromHeadSeries float64  `json:"prometheusHeadSeries"`
	PromHeapBytes  float64  `json:"prometheusHeapInuseBytes"`
	MgrHeapBytes   float64  `json:"managerHeapInuseBytes"`
	OtherCores     float64  `json:"otherCores"`
	Load1          float64  `json:"loadAverage1m"`
	Lag            lagStats `json:"lag"`
}

const sloController = "servicelevelobjective"

func diff(a, b snapshot) interval {
	secs := b.at.Sub(a.at).Seconds()
	d := func(ms0, ms1 metrics, name string, match ...string) float64 {
		return round3(ms1.sum(name, match...) - ms0.sum(name, match...))
	}
	iv := interval{
		Seconds:          round3(secs),
		Reconciles:       d(a.manager, b.manager, "controller_runtime_reconcile_total", "controller", sloController),
		ManagerQueries:   d(a.manager, b.manager, "budgetgate_slo_prometheus_queries_total"),
		APIQueries:       d(a.prom, b.prom, "prometheus_http_requests_total", "handler", "/api/v1/query"),
		APIQuerySeconds:  d(a.prom, b.prom, "prometheus_http_request_duration_seconds_sum", "handler", "/api/v1/query"),
		EngineQueries:    d(a.prom, b.prom, "prometheus_engine_query_duration_seconds_count", "slice", "inner_eval"),
		EngineSeconds:    d(a.prom, b.prom, "prometheus_engine_query_duration_seconds_sum", "slice", "inner_eval"),
		RuleEvalSeconds:  d(a.prom, b.prom, "prometheus_rule_evaluation_duration_seconds_sum"),
		RuleGroupSeconds: d(a.prom, b.prom, "prometheus_rule_group_duration_seconds_sum"),
		RuleEvaluations:  d(a.prom, b.prom, "prometheus_rule_evaluations_total"),
		RuleGroupsMissed: d(a.prom, b.prom, "prometheus_rule_group_iterations_missed_total"),
		RuleFailures:     d(a.prom, b.prom, "prometheus_rule_evaluation_failures_total"),
		CPUSeconds:       map[string]float64{},
		Load1:            b.load1,
		PromHeadSeries:   b.prom.sum("prometheus_tsdb_head_series"),
		PromHeapBytes:    b.prom.sum("go_memstats_heap_inuse_bytes"),
		MgrHeapBytes:     b.manager.sum("go_memstats_heap_inuse_bytes"),
	}
	if n := d(a.manager, b.manager, "budgetgate_slo_evaluation_duration_seconds_count"); n > 0 {
		iv.EvalMean = round3(d(a.manager, b.manager, "budgetgate_slo_evaluation_duration_seconds_sum") / n)
		bk := diffBuckets(b.manager.buckets("budgetgate_slo_evaluation_duration_seconds"), a.manager.buckets("budgetgate_slo_evaluation_duration_seconds"))
		iv.EvalP50, iv.EvalP99 = round3(bucketQuantile(0.5, bk)), round3(bucketQuantile(0.99, bk))
	}
	if n := d(a.manager, b.manager, "workqueue_queue_duration_seconds_count", "name", sloController); n > 0 {
		iv.QueueWaitMean = round3(d(a.manager, b.manager, "workqueue_queue_duration_seconds_sum", "name", sloController) / n)
	}
	ours := 0.0
	for name, v1 := range b.cpu {
		if v0, ok := a.cpu[name]; ok && v1 >= v0 {
			iv.CPUSeconds[name] = round3(v1 - v0)
			ours += v1 - v0
		}
	}
	if secs > 0 {
		iv.OtherCores = round3(max(0, (b.busy-a.busy)-ours) / secs)
	}
	return iv
}
