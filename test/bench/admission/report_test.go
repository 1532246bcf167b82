package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// synthetic makes the result of phase p with n latencies of ms each.
func synthetic(p phase, ms float64, n int, c counts, apiFailOpen float64) phaseResult {
	r := phaseResult{Phase: p, Counts: c, Server: ServerView{FailOpen: apiFailOpen, WebhookMeanMs: ms / 2, Decisions: map[string]float64{}},
		CPU: CPUUse{Cores: map[string]float64{"kube-apiserver": ms / 10}}}
	s := make([]sample, 0, n)
	t0 := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	for i := range n {
		due := t0.Add(time.Duration(i) * 5 * time.Millisecond)
		s = append(s, sample{Due: due, Start: due, End: due.Add(time.Duration(ms * float64(time.Millisecond))), Outcome: outcomeOK})
	}
	r.add(s, 200)
	r.Counts = c
	return r
}

func TestReportFinish(t *testing.T) {
	ps := plan(2, []string{"a"}, nil, true)
	ms := map[kind][]float64{kindWebhook: {9, 12}, kindNoWebhook: {6, 8}, kindDeny: {20, 30}, kindRollback: {10, 10}, kindExempt: {11, 11}}
	var phases []phaseResult
	for _, p := range ps {
		if p.Profiled {
			// Profiled phases are slow and must not count.
			phases = append(phases, synthetic(p, 500, 10, counts{OK: 10}, 0))
			continue
		}
		c := counts{OK: 100}
		var apiFailOpen float64
		if p.Kind == kindDeny && p.Round == 1 {
			c = counts{OK: 97, FailOpen: 2, Errors: 1}
		}
		if p.Kind == kindRollback && p.Round == 0 {
			apiFailOpen = 3
		}
		phases = append(phases, synthetic(p, ms[p.Kind][p.Round], 100, c, apiFailOpen))
	}
	r := &report{Options: options{Rate: 200, Workers: 8, Updates: 100, Rounds: 2}, Plan: ps, Phases: phases}
	r.finish()

	groups := make([]string, 0, len(r.Groups))
	for _, g := range r.Groups {
		groups = append(groups, g.Group)
		if g.Phases != 2 || g.Latency.Count != 200 {
			t.Errorf("group %s pools %d phases, %d latencies; want 2 and 200 (profiled phases left out)", g.Group, g.Phases, g.Latency.Count)
		}
	}
	if diff := cmp.Diff([]string{"webhook[a]", "no-webhook", "deny[a]", "rollback[a]", "exempt[a]"}, groups); diff != "" {
		t.Errorf("groups (-want +got):\n%s", diff)
	}
	webhook := groupByName(r.Groups, "webhook[a]")
	if webhook.Latency.P50 != 9 || webhook.Latency.Max != 12 || webhook.Server.WebhookMeanMs != 5.25 {
		t.Errorf("webhook[a] p50 %v max %v webhook call mean %v; want 9, 12, 5.25", webhook.Latency.P50, webhook.Latency.Max, webhook.Server.WebhookMeanMs)
	}
	if deny := groupByName(r.Groups, "deny[a]"); deny.Counts != (counts{OK: 197, FailOpen: 2, Errors: 1}) {
		t.Errorf("deny[a] counts %+v", deny.Counts)
	}

	// Pooled: p50 9 over 6; the side-by-side pairs: 9/6 in round 1, 12/8 in
	// round 2, both 1.5.
	want := ratioResult{Group: "webhook[a]", Pooled: Ratio{P50: 1.5, P90: 1.5, P99: 1.5, Max: 1.5, AddedP50Ms: 3},
		PairP50: Spread{Min: 1.5, Median: 1.5, Max: 1.5, N: 2}, PairP99: Spread{Min: 1.5, Median: 1.5, Max: 1.5, N: 2}}
	if diff := cmp.Diff(want, r.Ratios[0], approx); diff != "" {
		t.Errorf("ratio (-want +got):\n%s", diff)
	}
	if len(r.Ratios) != 4 || r.Ratios[1].Group != "deny[a]" || r.Ratios[1].PairP50.N != 0 {
		t.Errorf("ratios %+v: want webhook, deny, rollback, exempt against no-webhook, pairs for the webhook only", r.Ratios)
	}

	met := map[string]bool{}
	for _, tg := range r.Targets {
		met[tg.Name] = tg.Met
	}
	for name, want := range map[string]bool{
		"webhook[a]: added p50 ≤ 10% over no webhook": false,
		"webhook[a]: p99 ≤ 25 ms":                     true,
		"deny[a]: p99 ≤ 25 ms":                        false,
		"no request failing open":                     false,
		"no errors":                                   false,
	} {
		if got, ok := met[name]; !ok || got != want {
			t.Errorf("target %q met=%v (present %v), want %v", name, got, ok, want)
		}
	}
	for _, tg := range r.Targets {
		if tg.Name == "no request failing open" && !strings.Contains(tg.Value, "2 seen by the client, 3 counted by the API server") {
			t.Errorf("fail-open target says %q", tg.Value)
		}
	}

	var out bytes.Buffer
	r.print(&out)
	for _, s := range []string{"webhook[a]", "1.50", "NOT met", "no request failing open"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("printed report lacks %q:\n%s", s, out.String())
		}
	}
	dir := t.TempDir()
	if err := r.writeJSON(filepath.Join(dir, "r.json")); err != nil {
		t.Fatal(err)
	}
	if err := r.chart(filepath.Join(dir, "r.svg"), filepath.Join(dir, "r.png")); err != nil {
		t.Fatal(err)
	}
}

func TestPhaseResultAdd(t *testing.T) {
	t0 := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	// Request 1 left 6 ms late (more than one 5 ms interval), request 2 on time.
	s := []sample{
		{Due: t0, Start: t0, End: t0.Add(10 * time.Millisecond), Outcome: outcomeOK},
		{Due: t0.Add(5 * time.Millisecond), Start: t0.Add(11 * time.Millisecond), End: t0.Add(20 * time.Millisecond), Outcome: outcomeFailOpen, Err: "admitted"},
		{Due: t0.Add(10 * time.Millisecond), Start: t0.Add(12 * time.Millisecond), End: t0.Add(15 * time.Millisecond), Outcome: outcomeFailOpen, Err: "admitted"},
	}
	var r phaseResult
	r.Phase = phase{Kind: kindDeny, Variant: "x"}
	r.add(s, 200)
	if r.Group != "deny[x]" || r.Late != 1 || r.Counts != (counts{OK: 1, FailOpen: 2}) {
		t.Errorf("group %q late %d counts %+v; want deny[x], 1, ok 1 fail-open 2", r.Group, r.Late, r.Counts)
	}
	if r.Latency.Max != 10 || r.FromDue.Max != 15 {
		t.Errorf("latency max %v, from due max %v; want 10 and 15 ms", r.Latency.Max, r.FromDue.Max)
	}
	if diff := cmp.Diff([]string{"fail-open: admitted"}, r.Errors); diff != "" {
		t.Errorf("errors, each message once (-want +got):\n%s", diff)
	}
}
