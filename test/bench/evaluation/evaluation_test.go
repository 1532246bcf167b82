package main

import (
	"fmt"
	"math"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/budgetgate/budgetgate/internal/controller"
	"github.com/budgetgate/budgetgate/internal/rules"
)

// The backfill rule names each service's SLO with label_replace; that must
// be the namespace and sloth_id the benchmark creates the SLO with.
func TestServiceToSLOLabels(t *testing.T) {
	re := regexp.MustCompile("^(?:" + serviceNamespaceRegex + ")$")
	// PromQL's label_replace writes ${1}; Go's Expand reads the same syntax.
	for _, i := range []int{0, 9, 10, 421, 999, 9999} {
		m := re.FindStringSubmatchIndex(serviceName(i))
		if m == nil {
			t.Fatalf("%s does not match %s", serviceName(i), serviceNamespaceRegex)
		}
		ns := string(re.ExpandString(nil, namespaceReplacement, serviceName(i), m))
		id := string(re.ExpandString(nil, slothIDReplacement, serviceName(i), m))
		if ns != namespaceName(i) || id != rules.ID(namespaceName(i), serviceName(i)) {
			t.Errorf("service %s: namespace %s, sloth_id %s; the SLO is %s/%s, sloth_id %s",
				serviceName(i), ns, id, namespaceName(i), serviceName(i), rules.ID(namespaceName(i), serviceName(i)))
		}
	}
}

func TestTrafficContinuesTheHistory(t *testing.T) {
	origin := time.Date(2026, 11, 24, 7, 3, 0, 0, time.UTC)
	tr := newTraffic(3, origin)
	end := origin.Add(2 * time.Hour)
	var b strings.Builder
	n, err := tr.writeHistory(&b, end, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if n != 3*2*121 {
		t.Errorf("%d samples, want %d", n, 3*2*121)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if lines[0] != "# TYPE http_requests counter" || lines[len(lines)-1] != "# EOF" {
		t.Errorf("first and last lines: %q, %q", lines[0], lines[len(lines)-1])
	}
	// The last sample of service 2's failures is its counter at end, which
	// the live /metrics continues from.
	_, failed := tr.counters(2, end)
	want := `http_requests_total{job="synthetic",instance="synthetic",service="svc-0002",code="500"} `
	last := lines[len(lines)-2]
	if !strings.HasPrefix(last, want) || !strings.HasSuffix(last, " "+strconv.FormatInt(end.Unix(), 10)) {
		t.Fatalf("last sample %q", last)
	}
	v, err := strconv.ParseFloat(strings.Fields(last)[1], 64)
	if err != nil || math.Abs(v-failed) > 1e-6 {
		t.Errorf("last sample %v, counter at the end %v", v, failed)
	}
	// Counters only grow, within a minute too, and split by the error ratio.
	prevOK, prevFailed := 0.0, 0.0
	for d := time.Duration(0); d <= 3*time.Hour; d += 17 * time.Second {
		ok, failed := tr.counters(1, origin.Add(d))
		if ok < prevOK || failed < prevFailed {
			t.Fatalf("counters went down at %s", d)
		}
		if total := ok + failed; total > 0 && math.Abs(failed/total-errorRatio(1)) > 1e-12 {
			t.Fatalf("error ratio %v at %s, want %v", failed/total, d, errorRatio(1))
		}
		prevOK, prevFailed = ok, failed
	}
	// An hour at 04:00 UTC carries 1% of an hour at peak.
	night := newTraffic(1, time.Date(2026, 11, 24, 3, 30, 0, 0, time.UTC))
	low := night.units(time.Date(2026, 11, 24, 4, 30, 0, 0, time.UTC))
	peakTr := newTraffic(1, time.Date(2026, 11, 24, 15, 30, 0, 0, time.UTC))
	high := peakTr.units(time.Date(2026, 11, 24, 16, 30, 0, 0, time.UTC))
	if low/60 > 0.02 || high/60 < 0.98 {
		t.Errorf("an hour around 04:00 is %.3f of peak, around 16:00 %.3f", low/60, high/60)
	}
}

func TestLiveMetricsParse(t *testing.T) {
	tr := newTraffic(2, time.Now().Add(-time.Hour))
	rec := httptest.NewRecorder()
	tr.ServeHTTP(rec, nil)
	ms, err := parseMetrics(rec.Body)
	if err != nil {
		t.Fatal(err)
	}
	if got := ms.count("http_requests_total"); got != 4 {
		t.Errorf("%d series, want 4", got)
	}
	if ms.sum("http_requests_total", "service", "svc-0001", "code", "500", "job", "synthetic") <= 0 {
		t.Error("svc-0001's failures are not counted")
	}
}

// lagAfterDue must agree with the controller's own schedule: an evaluation
// written d after the instant Spread schedules has lag d.
func TestLagAfterDue(t *testing.T) {
	const interval = time.Minute
	now := time.Date(2026, 12, 3, 5, 0, 7, 0, time.UTC)
	for _, uid := range []types.UID{"a", "4b1d", "0f5c9a3e-8d1b-4f0e-9a57-3c2f1d6b7e10"} {
		due := now.Add(controller.Spread(interval, uid, now))
		for _, d := range []time.Duration{0, 30 * time.Millisecond, 2 * time.Second, 45 * time.Second} {
			if got := lagAfterDue(interval, uid, due.Add(d)); got != d {
				t.Errorf("uid %s, written %s after due: lag %s", uid, d, got)
			}
		}
	}
}

func TestSummarize(t *testing.T) {
	const interval = time.Minute
	now := time.Date(2026, 12, 3, 5, 0, 0, 0, time.UTC)
	due := now.Add(controller.Spread(interval, "x", now))
	var evals []evaluation
	for k := range 100 {
		evals = append(evals, evaluation{uid: "x", arrived: due.Add(time.Duration(k+1) * 10 * time.Millisecond),
			last: now, previous: now.Add(-interval - time.Duration(k%5)*time.Second), queries: 8, raw: 8})
	}
	s := summarize(evals, interval)
	if s.Evaluations != 100 || s.LagP50 != 0.5 || s.LagP99 != 0.99 || s.LagMax != 1 {
		t.Errorf("lags: %+v", s)
	}
	if s.GapP50 != 62 || s.GapMax != 64 || s.Late != 40 || s.QueriesPerEvaluation != 8 || s.AllRecorded != 0 {
		t.Errorf("gaps: %+v", s)
	}
}

func TestHistogramFromText(t *testing.T) {
	text := `# TYPE budgetgate_slo_evaluation_duration_seconds histogram
budgetgate_slo_evaluation_duration_seconds_bucket{namespace="a",le="0.1"} 2
budgetgate_slo_evaluation_duration_seconds_bucket{namespace="a",le="0.5"} 8
budgetgate_slo_evaluation_duration_seconds_bucket{namespace="a",le="+Inf"} 10
budgetgate_slo_evaluation_duration_seconds_sum{namespace="a"} 3
budgetgate_slo_evaluation_duration_seconds_count{namespace="a"} 10
budgetgate_slo_evaluation_duration_seconds_bucket{namespace="b",le="0.1"} 8
budgetgate_slo_evaluation_duration_seconds_bucket{namespace="b",le="0.5"} 10
budgetgate_slo_evaluation_duration_seconds_bucket{namespace="b",le="+Inf"} 10
budgetgate_slo_evaluation_duration_seconds_sum{namespace="b"} 1
budgetgate_slo_evaluation_duration_seconds_count{namespace="b"} 10
`
	ms, err := parseMetrics(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	bk := ms.buckets("budgetgate_slo_evaluation_duration_seconds")
	if len(bk) != 3 || bk[0.1] != 10 || bk[0.5] != 18 || bk[math.Inf(1)] != 20 {
		t.Fatalf("buckets %v (the +Inf bucket must be counted once)", bk)
	}
	if q := bucketQuantile(0.5, bk); q != 0.1 {
		t.Errorf("p50 %v, want 0.1", q)
	}
	if q := bucketQuantile(0.9, bk); q != 0.5 {
		t.Errorf("p90 %v, want 0.5", q)
	}
	if q := bucketQuantile(0.99, bk); q != 0.5 {
		t.Errorf("p99 %v, want 0.5 (the highest finite bound)", q)
	}
	if ms.sum("budgetgate_slo_evaluation_duration_seconds_count") != 20 {
		t.Error("count")
	}
}

func TestProcStat(t *testing.T) {
	got, err := procCPUSeconds("4242 (prom (x) y) S 1 4242 4242 0 -1 4194560 100 0 0 0 1234 566 0 0 20 0 12 0 100 1 1")
	if err != nil || got != 18 {
		t.Errorf("procCPUSeconds: %v, %v; want 18", got, err)
	}
	busy, err := machineBusySeconds("cpu  100 5 50 1000 30 1 2 3 0 0\ncpu0 ...")
	if err != nil || busy != 1.61 {
		t.Errorf("machineBusySeconds: %v, %v; want 1.61", busy, err)
	}
}

func TestTotalsAndComparison(t *testing.T) {
	iv := func(q, cpu float64) interval {
		return interval{Seconds: 60, ManagerQueries: q, APIQuerySeconds: q / 1000,
			CPUSeconds: map[string]float64{procManager: cpu, procPrometheus: 2 * cpu}, Load1: cpu}
	}
	raw := &phase{Kind: kindRaw, Round: 1, Intervals: []interval{iv(8000, 3), iv(8000, 5)}}
	raw.Summary = totals(raw.Intervals, lagStats{LagP50: 0.2, LagP99: 1}, time.Minute)
	rec := &phase{Kind: kindRecorded, Round: 1, Intervals: []interval{iv(1000, 2)}}
	rec.Summary = totals(rec.Intervals, lagStats{LagP50: 0.1, LagP99: 0.5}, time.Minute)
	if raw.Summary.ManagerQueries != 8000 || raw.Summary.CPUSeconds[procManager] != 4 || raw.Summary.Load1Min != 3 || raw.Summary.Load1Max != 5 {
		t.Errorf("raw totals %+v", raw.Summary)
	}
	cs := comparisons([]*phase{raw, rec}, time.Minute)
	if len(cs) != 1 || cs[0].ManagerQueries != 0.125 || cs[0].ManagerCPU != 0.5 || cs[0].PrometheusCPU != 0.5 || cs[0].LagP99 != 0.5 {
		t.Errorf("comparison %+v", cs)
	}
}

func TestComparisonsABCABC(t *testing.T) {
	var phases []*phase
	for round := 1; round <= 2; round++ {
		for _, k := range kinds {
			p := &phase{Kind: k, Round: round, Intervals: []interval{{Seconds: 60, ManagerQueries: 8000,
				CPUSeconds: map[string]float64{procPrometheus: 10}}}}
			if k == kindRecorded {
				p.Intervals[0].ManagerQueries = 1000
			}
			p.Summary = totals(p.Intervals, lagStats{}, time.Minute)
			phases = append(phases, p)
		}
	}
	var got []string
	for _, c := range comparisons(phases, time.Minute) {
		got = append(got, c.Pair)
		if c.ManagerQueries != 0.125 || c.PrometheusCPU != 1 {
			t.Errorf("%s: %+v", c.Pair, c)
		}
	}
	want := "[raw 1 → recorded 1 raw-rules 1 → recorded 1 raw 2 → recorded 2 raw-rules 2 → recorded 2 " +
		"all raw → all recorded all raw-rules → all recorded]"
	if fmt.Sprint(got) != want {
		t.Errorf("pairs %v, want %s", got, want)
	}
}

func TestParseFlags(t *testing.T) {
	c, err := parseFlags([]string{"--phases", "raw, recorded,raw"})
	if err != nil || len(c.phases) != 3 || c.windowDur != 7*24*time.Hour || c.slos != 1000 {
		t.Errorf("%+v, %v", c, err)
	}
	for _, bad := range [][]string{{"--phases", "raw,both"}, {"--slos", "0"}, {"--rule-interval", "10m"}, {"--window", "a week"}} {
		if _, err := parseFlags(bad); err == nil {
			t.Errorf("%v: no error", bad)
		}
	}
}
