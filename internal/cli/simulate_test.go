package cli_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	slov1alpha1 "github.com/budgetgate/budgetgate/api/v1alpha1"
	"github.com/budgetgate/budgetgate/internal/cli"
	prometheustest "github.com/budgetgate/budgetgate/test/prometheus"
)

// simulate against a real Prometheus holding two days of traffic with one
// known incident: 4% errors (40x a 99.9% budget) for 30 minutes, 10 hours
// before the end. Worked out from the generator: the fast-burn rule (1h and
// 5m at 14.4x) fires once the last hour holds 14.4 × 0.1% ÷ 4% = 21.6
// minutes of the incident, so from about 22 minutes in, until the 5m window
// clears a few minutes after the incident; the freeze then holds 30 minutes
// (the policy's minDuration). At a 5m step: one freeze starting 20–30
// minutes into the incident and lifting 30–45 minutes after it ended, one
// page inside it, and the release made during it denied.
func TestSimulateAgainstPrometheus(t *testing.T) {
	bins := prometheustest.Require(t)
	cluster(t)
	ctx := context.Background()
	end := time.Now().Truncate(time.Hour).Add(-time.Hour)
	incident := end.Add(-10 * time.Hour)
	var ok, bad []prometheustest.Sample
	var nOK, nBad float64
	for at := end.Add(-48 * time.Hour); !at.After(end); at = at.Add(time.Minute) {
		rate, errRate := 1000.0, 0.0005
		if !at.Before(incident) && at.Before(incident.Add(30*time.Minute)) {
			errRate = 0.04
		}
		nOK += rate * (1 - errRate)
		nBad += rate * errRate
		ok = append(ok, prometheustest.Sample{T: at, V: nOK})
		bad = append(bad, prometheustest.Sample{T: at, V: nBad})
	}
	data := t.TempDir()
	bins.Backfill(t, data, prometheustest.Family{Name: "http_requests", Type: "counter", Series: []prometheustest.Series{
		{Metric: `http_requests_total{job="sim",code="200"}`, Samples: ok},
		{Metric: `http_requests_total{job="sim",code="500"}`, Samples: bad},
	}})
	prom := bins.Start(t, prometheustest.Options{DataDir: data})

	const ns = "sim"
	ensureNamespace(t, ns)
	pol := &slov1alpha1.ErrorBudgetPolicy{ObjectMeta: metav1.ObjectMeta{Name: "sim-fast"}, Spec: slov1alpha1.ErrorBudgetPolicySpec{
		Rules: []slov1alpha1.PolicyRule{{Name: "fast-burn", Action: slov1alpha1.ActionFreeze,
			BurnRate: &slov1alpha1.BurnRateCondition{LongWindow: "1h", ShortWindow: "5m", Factor: new(slov1alpha1.Decimal("14.4"))}}},
	}}
	if err := env.client.Create(ctx, pol); err != nil && !strings.Contains(err.Error(), "already exists") {
		t.Fatal(err)
	}
	slo := &slov1alpha1.ServiceLevelObjective{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "sim-availability"},
		Spec: slov1alpha1.ServiceLevelObjectiveSpec{Target: "99.9", Window: "1d", PolicyRef: &slov1alpha1.PolicyReference{Name: "sim-fast"},
			Indicator: slov1alpha1.Indicator{Ratio: &slov1alpha1.RatioIndicator{Errors: `http_requests_total{job="sim",code=~"5.."}`, Total: `http_requests_total{job="sim"}`}}},
	}
	if err := env.client.Create(ctx, slo); err != nil && !strings.Contains(err.Error(), "already exists") {
		t.Fatal(err)
	}
	policyFile := filepath.Join(t.TempDir(), "fast.yaml")
	if err := os.WriteFile(policyFile, []byte(`apiVersion: slo.budgetgate.dev/v1alpha1
kind: ErrorBudgetPolicy
metadata: {name: fast}
spec:
  rules:
  - {name: fast-burn, action: Freeze, burnRate: {longWindow: 1h, shortWindow: 5m, factor: "14.4"}}
  freeze: {minDuration: 30m}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"--kubeconfig", env.kubeconfig, "-n", ns, "simulate", "sim-availability", "--prometheus", prom.URL,
		"--policy", policyFile, "--since", "24h", "--until", end.Format(time.RFC3339)}
	out, _, err := run(t, "", append(args, "-o", "json")...)
	if err != nil {
		t.Fatalf("simulate: %v\n%s", err, out)
	}
	var sim cli.Simulation
	if err := json.Unmarshal([]byte(out), &sim); err != nil {
		t.Fatal(err)
	}
	t.Logf("simulate: %d evaluations in %s; freezes %+v; pages %+v", sim.Evaluations, sim.Took, sim.Freezes, sim.Pages)
	if len(sim.Freezes) != 1 {
		t.Fatalf("%d freezes, want 1: %+v", len(sim.Freezes), sim.Freezes)
	}
	f := sim.Freezes[0]
	if d := f.From.Sub(incident); d < 20*time.Minute || d > 30*time.Minute {
		t.Errorf("the freeze starts %s into the incident, want 20–30m", d)
	}
	if d := f.To.Sub(incident.Add(30 * time.Minute)); d < 30*time.Minute || d > 45*time.Minute {
		t.Errorf("the freeze lifts %s after the incident, want 30–45m (30m minDuration after the last firing)", d)
	}
	if len(sim.Pages) != 1 || sim.Pages[0].From != f.From || !sim.Pages[0].To.Before(f.To) {
		t.Errorf("pages %+v, want one from the freeze's start, ending before it lifts", sim.Pages)
	}
	if sim.Policy != "fast" || sim.Evaluations != 24*12+1 {
		t.Errorf("policy %s, %d evaluations; want fast and 289", sim.Policy, sim.Evaluations)
	}

	// The text, the terminal chart and the SVG.
	text, _, err := run(t, "", args...)
	if err != nil || !strings.Contains(text, "1 freeze, ") || !strings.Contains(text, "frozen │") {
		t.Errorf("text output: %v\n%s", err, text)
	}
	svg := filepath.Join(t.TempDir(), "sim.svg")
	if out, _, err := run(t, "", append(args, "-o", "svg", "--file", svg)...); err != nil || !strings.Contains(out, "wrote "+svg+": 1 freeze, ") {
		t.Errorf("-o svg: %v %s", err, out)
	}
	if b, err := os.ReadFile(svg); err != nil || !strings.Contains(string(b), "fast-burn freezes at 14.4x") {
		t.Errorf("the SVG lacks the threshold: %v", err)
	}
	if _, _, err := run(t, "", "--kubeconfig", env.kubeconfig, "-n", ns, "simulate", "sim-availability"); err == nil || !strings.Contains(err.Error(), "--prometheus") {
		t.Errorf("without --prometheus: %v", err)
	}
}
