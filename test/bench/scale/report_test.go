package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func ms(v ...int) []time.Duration {
	out := make([]time.Duration, 0, len(v))
	for _, x := range v {
		out = append(out, time.Duration(x)*time.Millisecond)
	}
	return out
}

func TestPercentile(t *testing.T) {
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = 100 - i // 100..1, unsorted on purpose
	}
	for _, tc := range []struct {
		samples []time.Duration
		p       float64
		want    time.Duration
	}{
		{nil, 99, 0},
		{ms(7), 50, 7 * time.Millisecond},
		{ms(7), 99, 7 * time.Millisecond},
		{ms(hundred...), 50, 50 * time.Millisecond},
		{ms(hundred...), 99, 99 * time.Millisecond},
		{ms(hundred...), 100, 100 * time.Millisecond},
		{ms(hundred...), 0.1, 1 * time.Millisecond},
		{ms(5, 1, 4, 2, 3), 90, 5 * time.Millisecond}, // nearest rank: ceil(4.5) = 5th
		{ms(5, 1, 4, 2, 3), 50, 3 * time.Millisecond},
	} {
		if got := percentile(tc.samples, tc.p); got != tc.want {
			t.Errorf("percentile(%v, %v) = %v, want %v", tc.samples, tc.p, got, tc.want)
		}
	}
	in := ms(3, 1, 2)
	_ = percentile(in, 50)
	if in[0] != 3*time.Millisecond {
		t.Error("percentile sorted its input in place")
	}
}

func TestSummarize(t *testing.T) {
	got := summarize(ms(10, 20, 30, 40))
	want := latencySummary{Count: 4, P50: 0.02, P90: 0.04, P99: 0.04, Max: 0.04}
	if got != want {
		t.Fatalf("summarize = %+v, want %+v", got, want)
	}
}

func TestRates(t *testing.T) {
	if got := perMinute(3000, 150*time.Second); got != 1200 {
		t.Errorf("perMinute = %v, want 1200", got)
	}
	if got := perMinute(10, 0); got != 0 {
		t.Errorf("perMinute over no time = %v, want 0", got)
	}
	// 1,000 SLOs, 8 queries each per minute, over 2.5 minutes.
	if got := queriesPerSLOPerInterval(20000, 1000, 150*time.Second, time.Minute); got != 8 {
		t.Errorf("queriesPerSLOPerInterval = %v, want 8", got)
	}
	if got := queriesPerSLOPerInterval(100, 0, time.Minute, time.Minute); got != 0 {
		t.Errorf("queriesPerSLOPerInterval without SLOs = %v, want 0", got)
	}
	g := gaugeSummary([]float64{0, 4, 2, 10})
	if g != (gaugeStats{Samples: 4, Mean: 4, Max: 10}) {
		t.Errorf("gaugeSummary = %+v", g)
	}
	if g := gaugeSummary(nil); g != (gaugeStats{}) {
		t.Errorf("gaugeSummary(nil) = %+v", g)
	}
}

func TestWithinInterval(t *testing.T) {
	for _, tc := range []struct {
		staleness time.Duration
		want      bool
	}{
		{30 * time.Second, true},
		{63 * time.Second, true}, // +5% jitter
		{65 * time.Second, true}, // + 2s for second resolution and the evaluation
		{66 * time.Second, false},
		{2 * time.Minute, false},
	} {
		if got := withinInterval(tc.staleness, time.Minute); got != tc.want {
			t.Errorf("withinInterval(%v) = %v, want %v", tc.staleness, got, tc.want)
		}
	}
}

func TestDiffCounts(t *testing.T) {
	got := diffCounts(map[string]float64{"pods": 4, "deployments": 1, "gone": 2},
		map[string]float64{"pods": 4, "deployments": 2, "servicelevelobjectives": 1})
	if len(got) != 3 || got["deployments"] != 1 || got["servicelevelobjectives"] != 1 || got["gone"] != -2 {
		t.Fatalf("diffCounts = %v", got)
	}
}

func TestParseProcStatus(t *testing.T) {
	status := "Name:\tmanager\nVmPeak:\t 1800000 kB\nVmHWM:\t   90112 kB\nVmRSS:\t   71680 kB\nThreads:\t12\n"
	got, err := parseProcStatus(strings.NewReader(status))
	if err != nil {
		t.Fatal(err)
	}
	if got.RSS != 71680*1024 || got.PeakRSS != 90112*1024 {
		t.Fatalf("parseProcStatus = %+v", got)
	}
	for _, bad := range []string{
		"Name:\tmanager\n",                       // neither
		"VmRSS:\t 100 kB\n",                      // no VmHWM
		"VmRSS:\t 100 MB\nVmHWM:\t 100 kB\n",     // unit
		"VmRSS:\t lots kB\nVmHWM:\t 100 kB\n",    // number
		"VmRSS:\t 100 kB extra\nVmHWM:\t 1 kB\n", // shape
	} {
		if _, err := parseProcStatus(strings.NewReader(bad)); err == nil {
			t.Errorf("parseProcStatus(%q): want an error", bad)
		}
	}
}

func TestTargets(t *testing.T) {
	r := &report{
		Manager:  memory{MiB: 70, PeakMiB: 90},
		AfterFan: &memory{MiB: 140, PeakMiB: 140},
		Fanout:   &fanout{Workloads: 1000, Annotated: 1000, SpreadSeconds: 31, TotalSeconds: 40},
		Evaluation: evaluation{ReconcilesPerMinute: 1000, AllWithinInterval: true, QueriesPerEvaluation: 8.019,
			QueriesPerSLOPerInterval: 8.2, Staleness: gaugeStats{Max: 63}},
		Admission: []admission{
			{Scenario: "allow", TargetRate: 200, AchievedRate: 199, Client: latencySummary{P99: 0.020}},
			{Scenario: "slow", TargetRate: 200, AchievedRate: 199, Client: latencySummary{P99: 0.030}},
			{Scenario: "underdriven", TargetRate: 200, AchievedRate: 150, Client: latencySummary{P99: 0.010}, FailedOpen: 3},
		},
	}
	got := map[string]bool{}
	for _, tr := range r.targets() {
		got[tr.Name] = tr.Met
	}
	want := map[string]bool{
		"manager RSS":                                      false, // 140 MiB after the fan-out
		"freeze annotations on 1,000 workloads":            false, // 31 s
		"1,000 SLOs re-evaluated within one 60 s interval": true,
		"Prometheus queries per SLO per interval":          true,
		"admission p99 (allow at 200/s)":                   true,
		"admission p99 (slow at 200/s)":                    false,
		"admission p99 (underdriven at 200/s)":             false, // the load was not offered
		"no release failing open":                          false, // 3 failed open
	}
	if len(got) != len(want) {
		t.Fatalf("targets = %v, want %v", got, want)
	}
	for k, v := range want {
		if met, ok := got[k]; !ok || met != v {
			t.Errorf("target %q: met = %v (present %v), want %v", k, met, ok, v)
		}
	}

	r.AfterFan = &memory{MiB: 100, PeakMiB: 100}
	r.Fanout.SpreadSeconds = 12
	r.Fanout.Annotated = 999
	for _, tr := range r.targets() {
		if tr.Name == "manager RSS" && !tr.Met {
			t.Errorf("RSS 100 MiB: want met")
		}
		if tr.Name == "freeze annotations on 1,000 workloads" && tr.Met {
			t.Errorf("999 of 1,000 annotated: want not met")
		}
	}
}

func TestWriteJSON(t *testing.T) {
	dir := t.TempDir()
	r := &report{StartedAt: time.Date(2026, 12, 2, 13, 38, 9, 0, time.UTC), Manager: memory{MiB: 64.3}}
	path, err := writeJSON(filepath.Join(dir, "bench"), r)
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(path) != "scale-20261202T133809Z.json" {
		t.Errorf("path = %s", path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var back report
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if back.Manager.MiB != 64.3 || !back.StartedAt.Equal(r.StartedAt) {
		t.Fatalf("round trip: %+v", back)
	}
}

func TestParseLoadAverage(t *testing.T) {
	got, err := parseLoadAverage("17.67 21.07 18.46 3/412 30564\n")
	if err != nil || got != 17.67 {
		t.Fatalf("parseLoadAverage = %v, %v; want 17.67", got, err)
	}
	for _, bad := range []string{"", "1.0", "high 2 3 4/5 6"} {
		if _, err := parseLoadAverage(bad); err == nil {
			t.Errorf("parseLoadAverage(%q): want an error", bad)
		}
	}
}

func TestParseRates(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    []float64
		wantErr bool
	}{
		{in: "200", want: []float64{200}},
		{in: "200, 50", want: []float64{200, 50}},
		{in: "0"},
		{in: ""},
		{in: "12.5,0", want: []float64{12.5}},
		{in: "fast", wantErr: true},
		{in: "-5", wantErr: true},
		{in: "Inf", wantErr: true},
	} {
		got, err := parseRates(tc.in)
		if (err != nil) != tc.wantErr || !slices.Equal(got, tc.want) {
			t.Errorf("parseRates(%q) = %v, %v; want %v, error %v", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}
