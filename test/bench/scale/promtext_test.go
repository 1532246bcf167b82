package main

import (
	"math"
	"strings"
	"testing"
)

// A scrape shaped like the manager's: a counter and a gauge per controller,
// histograms of two controllers with the same buckets.
const scrape = `# HELP controller_runtime_reconcile_total Total number of reconciliations per controller
# TYPE controller_runtime_reconcile_total counter
controller_runtime_reconcile_total{controller="servicelevelobjective",result="success"} 1000
controller_runtime_reconcile_total{controller="servicelevelobjective",result="error"} 3
controller_runtime_reconcile_total{controller="servicelevelobjective",result="requeue_after"} 997
controller_runtime_reconcile_total{controller="freezeexception",result="success"} 7
# HELP workqueue_depth Current depth of workqueue
# TYPE workqueue_depth gauge
workqueue_depth{controller="servicelevelobjective",name="servicelevelobjective"} 12
workqueue_depth{controller="freezeexception",name="freezeexception"} 0
# HELP process_resident_memory_bytes Resident memory size in bytes.
# TYPE process_resident_memory_bytes gauge
process_resident_memory_bytes 7.0254592e+07
# HELP apiserver_longrunning_requests Gauge of all active long-running apiserver requests
# TYPE apiserver_longrunning_requests gauge
apiserver_longrunning_requests{resource="deployments",scope="cluster",verb="WATCH"} 1
apiserver_longrunning_requests{resource="deployments",scope="namespace",verb="WATCH"} 2
apiserver_longrunning_requests{resource="pods",scope="cluster",verb="WATCH"} 4
apiserver_longrunning_requests{resource="pods",scope="cluster",verb="CONNECT"} 1
# HELP workqueue_queue_duration_seconds How long in seconds an item stays in workqueue before being requested
# TYPE workqueue_queue_duration_seconds histogram
workqueue_queue_duration_seconds_bucket{name="servicelevelobjective",le="0.01"} 50
workqueue_queue_duration_seconds_bucket{name="servicelevelobjective",le="0.1"} 80
workqueue_queue_duration_seconds_bucket{name="servicelevelobjective",le="1"} 100
workqueue_queue_duration_seconds_bucket{name="servicelevelobjective",le="+Inf"} 100
workqueue_queue_duration_seconds_sum{name="servicelevelobjective"} 12.5
workqueue_queue_duration_seconds_count{name="servicelevelobjective"} 100
workqueue_queue_duration_seconds_bucket{name="freezeexception",le="0.01"} 10
workqueue_queue_duration_seconds_bucket{name="freezeexception",le="0.1"} 10
workqueue_queue_duration_seconds_bucket{name="freezeexception",le="1"} 10
workqueue_queue_duration_seconds_bucket{name="freezeexception",le="+Inf"} 20
workqueue_queue_duration_seconds_sum{name="freezeexception"} 100
workqueue_queue_duration_seconds_count{name="freezeexception"} 20
`

func mustParse(t *testing.T, text string) metrics {
	t.Helper()
	m, err := parseMetrics(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestParseMetricsSum(t *testing.T) {
	m := mustParse(t, scrape)
	for _, tc := range []struct {
		name      string
		labels    map[string]string
		want      float64
		wantFound bool
	}{
		{"controller_runtime_reconcile_total", map[string]string{"controller": "servicelevelobjective"}, 2000, true},
		{"controller_runtime_reconcile_total", map[string]string{"controller": "servicelevelobjective", "result": "error"}, 3, true},
		{"controller_runtime_reconcile_total", nil, 2007, true},
		{"controller_runtime_reconcile_total", map[string]string{"controller": "nope"}, 0, false},
		{"controller_runtime_reconcile_total", map[string]string{"missing_label": ""}, 0, false},
		{"workqueue_depth", map[string]string{"name": "servicelevelobjective"}, 12, true},
		{"process_resident_memory_bytes", nil, 70254592, true},
		{"not_there", nil, 0, false},
		// histograms are not summed as values
		{"workqueue_queue_duration_seconds", nil, 0, false},
	} {
		got, found := m.sum(tc.name, tc.labels)
		if got != tc.want || found != tc.wantFound {
			t.Errorf("sum(%s, %v) = %v, %v; want %v, %v", tc.name, tc.labels, got, found, tc.want, tc.wantFound)
		}
	}
}

func TestParseMetricsRejectsGarbage(t *testing.T) {
	if _, err := parseMetrics(strings.NewReader("this is { not metrics\n")); err == nil {
		t.Fatal("want an error")
	}
}

func TestByLabel(t *testing.T) {
	m := mustParse(t, scrape)
	got := m.byLabel("apiserver_longrunning_requests", "resource", map[string]string{"verb": "WATCH"})
	want := map[string]float64{"deployments": 3, "pods": 4}
	if len(got) != len(want) || got["deployments"] != 3 || got["pods"] != 4 {
		t.Fatalf("byLabel = %v, want %v", got, want)
	}
	if got := m.byLabel("absent", "resource", nil); len(got) != 0 {
		t.Fatalf("byLabel of an absent metric = %v, want empty", got)
	}
}

func TestHistogramMergeAndQuantile(t *testing.T) {
	m := mustParse(t, scrape)
	h := m.histogram("workqueue_queue_duration_seconds", map[string]string{"name": "servicelevelobjective"})
	if h.count != 100 || h.sum != 12.5 {
		t.Fatalf("count, sum = %v, %v; want 100, 12.5", h.count, h.sum)
	}
	for _, tc := range []struct{ q, want float64 }{
		{0.5, 0.01},   // rank 50: the top of the first bucket
		{0.25, 0.005}, // rank 25: halfway through [0, 0.01]
		{0.65, 0.055}, // rank 65: halfway through (0.01, 0.1]
		{0.9, 0.55},   // rank 90: halfway through (0.1, 1]
		{0.99, 0.955},
	} {
		if got := h.quantile(tc.q); math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("quantile(%v) = %v, want %v", tc.q, got, tc.want)
		}
	}
	if got := h.mean(); got != 0.125 {
		t.Errorf("mean = %v, want 0.125", got)
	}

	all := m.histogram("workqueue_queue_duration_seconds", nil)
	if all.count != 120 {
		t.Fatalf("merged count = %v, want 120", all.count)
	}
	// 10 of the freezeexception observations are past 1s: the 0.99 quantile is
	// in +Inf, reported as the highest finite bound.
	if got := all.quantile(0.99); got != 1 {
		t.Errorf("merged quantile(0.99) = %v, want 1", got)
	}
	lo, hi := all.bucketOf(0.99)
	if lo != 1 || !math.IsInf(hi, 1) {
		t.Errorf("bucketOf(0.99) = %v, %v; want 1, +Inf", lo, hi)
	}
	lo, hi = h.bucketOf(0.99)
	if lo != 0.1 || hi != 1 {
		t.Errorf("bucketOf(0.99) = %v, %v; want 0.1, 1", lo, hi)
	}
}

func TestHistogramSub(t *testing.T) {
	before := mustParse(t, scrape).histogram("workqueue_queue_duration_seconds", map[string]string{"name": "servicelevelobjective"})
	after := mustParse(t, strings.NewReplacer(
		`le="0.01"} 50`, `le="0.01"} 50`,
		`le="0.1"} 80`, `le="0.1"} 80`,
		`le="1"} 100`, `le="1"} 200`,
		`le="+Inf"} 100`, `le="+Inf"} 200`,
		`_sum{name="servicelevelobjective"} 12.5`, `_sum{name="servicelevelobjective"} 62.5`,
		`_count{name="servicelevelobjective"} 100`, `_count{name="servicelevelobjective"} 200`,
	).Replace(scrape)).histogram("workqueue_queue_duration_seconds", map[string]string{"name": "servicelevelobjective"})
	d := after.sub(before)
	if d.count != 100 || d.sum != 50 {
		t.Fatalf("delta count, sum = %v, %v; want 100, 50", d.count, d.sum)
	}
	// Every new observation fell in (0.1, 1]: the median is halfway through it.
	if got := d.quantile(0.5); math.Abs(got-0.55) > 1e-9 {
		t.Errorf("delta quantile(0.5) = %v, want 0.55", got)
	}
	if got := d.quantile(0.01); got < 0.1 {
		t.Errorf("delta quantile(0.01) = %v, want in (0.1, 1]", got)
	}
}

func TestHistogramEmpty(t *testing.T) {
	h := mustParse(t, scrape).histogram("absent_seconds", nil)
	if !math.IsNaN(h.quantile(0.99)) || !math.IsNaN(h.mean()) {
		t.Fatalf("empty histogram: quantile %v, mean %v; want NaN", h.quantile(0.99), h.mean())
	}
	if lo, hi := h.bucketOf(0.99); lo != 0 || hi != 0 {
		t.Fatalf("bucketOf = %v, %v; want 0, 0", lo, hi)
	}
	if finite(h.quantile(0.99)) != -1 {
		t.Fatal("finite(NaN) should be -1")
	}
}
