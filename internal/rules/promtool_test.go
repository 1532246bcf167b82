package rules

import (
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"go.yaml.in/yaml/v3"

	slov1alpha1 "github.com/budgetgate/budgetgate/api/v1alpha1"
	"github.com/budgetgate/budgetgate/internal/budget"
	"github.com/budgetgate/budgetgate/internal/policy"
	prometheustest "github.com/budgetgate/budgetgate/test/prometheus"
)

// scenario is the traffic of one SLO, minute by minute: errs(i) failed and
// total(i) events in the minute that ends at minute i (1..history).
type scenario struct {
	name  string
	errs  func(i int) int
	total func(i int) int
	// latency: the SLO is a latency indicator over a histogram whose
	// le="0.3" bucket counts the events that did not fail.
	latency bool
}

// history is 3 days and 1 hour: the Workbook's longest window (3d) is full.
const history = 3*24*60 + 60

func constant(n int) func(int) int { return func(int) int { return n } }

// during is n errors a minute in minutes (from, to] before the end of the history.
func during(from, to, n int) func(int) int {
	return func(i int) int {
		if i > history-from && i <= history-to {
			return n
		}
		return 0
	}
}

// workbookScenarios: at 99.9% a burn rate of b is b errors in 1,000 events,
// so 10,000 events a minute with 144 errors is exactly the Workbook's 14.4x.
func workbookScenarios() []scenario {
	busy := constant(10000)
	return []scenario{
		{"at-14x4", constant(144), busy, false},
		{"below-14x4", constant(143), busy, false},
		{"at-6x", constant(60), busy, false},
		{"below-6x", constant(59), busy, false},
		{"at-3x", constant(30), busy, false},
		{"below-3x", constant(29), busy, false},
		{"at-1x", constant(10), busy, false},
		{"below-1x", constant(9), busy, false},
		// 100x for the last 10 minutes: the 5m and 1h windows burn fast.
		{"spike-now", during(10, 0, 1000), busy, false},
		// 100x that stopped 6 minutes ago: the 1h window still burns, the 5m one no longer.
		{"spike-over", during(70, 6, 1000), busy, false},
		// 7x for the last 6 hours: slow burn only.
		{"slow-only", during(360, 0, 70), busy, false},
		// Half of 30 events a minute fail: the 5m window has 150 events,
		// fewer than the guard's 167, so fast burn has no data.
		{"low-traffic", constant(15), constant(30), false},
		{"diurnal", diurnalErrors, diurnalTotal, false},
		{"latency-at-14x4", constant(144), busy, true},
		{"latency-spike-now", during(10, 0, 1000), busy, true},
	}
}

// randomScenarios are generated histories for the equivalence of alerts and
// rules beyond the hand-picked ones: a steady error rate below 1x, and one
// to three incidents in the last 10 hours at rates around the Workbook's
// thresholds, at traffic from 30 to 10,000 events a minute (the guard
// applies to the lowest). Histories whose budget ends within 2% of
// exhaustion are drawn again: there the recorded SLO-window ratio (a ratio
// of 5m totals) and the raw one may round to different sides of 0, and this
// test is about the burn windows, which are recorded exactly.
func randomScenarios(n int) []scenario {
	rng := rand.New(rand.NewPCG(11, 2026))
	var out []scenario
	for len(out) < n {
		total := []int{10000, 10000, 1000, 35, 30}[rng.IntN(5)]
		base := rng.IntN(total/1000 + 1)
		type incident struct{ from, to, per10k int }
		var incs []incident
		for range 1 + rng.IntN(3) {
			from := 3 + rng.IntN(600)
			incs = append(incs, incident{from, max(0, from-3-rng.IntN(400)), []int{20, 30, 59, 60, 100, 143, 144, 300, 1000, 5000}[rng.IntN(10)]})
		}
		errs := func(i int) int {
			e := base
			for _, in := range incs {
				if i > history-in.from && i <= history-in.to {
					e = max(e, in.per10k*total/10000)
				}
			}
			return min(e, total)
		}
		sc := scenario{fmt.Sprintf("random-%d", len(out)), errs, constant(total), false}
		if r := 1 - sc.window(30*24*60).ErrorRatio/0.001; math.Abs(r) < 0.02 {
			continue
		}
		out = append(out, sc)
	}
	return out
}

// diurnalTotal is 100 to 10,000 events a minute over a day, quiet at
// midnight (minute 0 of each day) and busy at noon.
func diurnalTotal(i int) int {
	return 100 + int(math.Round(9900*(1-math.Cos(2*math.Pi*float64(i%1440)/1440))/2))
}

// diurnalErrors: 0.02% of events fail, 2% during two hours each night
// (quiet) and 1% during half an hour at noon of the second day (busy).
func diurnalErrors(i int) int {
	rate := 0.0002
	switch m := i % 1440; {
	case m >= 60 && m < 180:
		rate = 0.02
	case i/1440 == 1 && m >= 700 && m < 730:
		rate = 0.01
	}
	return int(math.Round(rate * float64(diurnalTotal(i))))
}

// window is what budgetgate's raw query measures over the last n minutes at
// the end of the history, as Prometheus computes increase() on series
// sampled every minute: the n−1 increments inside the range, extrapolated
// to n minutes; a range longer than the history holds all of it and is
// extrapolated by half a minute.
func (s scenario) window(n int) budget.Measurement {
	first, scale := history-n+2, float64(n)/float64(n-1)
	if n > history {
		first, scale = 1, (float64(history)+0.5)/float64(history)
	}
	var e, t float64
	for i := first; i <= history; i++ {
		e += float64(s.errs(i))
		t += float64(s.total(i))
	}
	return budget.Measurement{ErrorRatio: (e * scale) / (t * scale), Events: t * scale, OK: t > 0}
}

// series writes a counter in promtool's expanding notation, one sample a minute.
func series(start int, inc func(int) int) string {
	var b strings.Builder
	b.WriteString(strconv.Itoa(start))
	v := start
	for i := 1; i <= history; {
		d, j := inc(i), i
		for j <= history && inc(j) == d {
			j++
		}
		n := j - i
		fmt.Fprintf(&b, " %d+%dx%d", v+d, d, n-1)
		v += d * n
		i = j
	}
	return b.String()
}

// TestPromtoolWorkbookBurnRates runs the generated rules in promtool test
// rules over a history at exactly (and just below) the Workbook's burn rates,
// at spikes and at low traffic, and expects each alert to fire when, and
// only when, the budget engine's rule fires on the same data: the engine is
// given the numbers budgetgate's raw queries measure over the same series.
// The recorded ratios are checked against those numbers too.
func TestPromtoolWorkbookBurnRates(t *testing.T) {
	if testing.Short() {
		t.Skip("promtool evaluates 3 days of rules for 12 SLOs (about a minute); skipped with -short")
	}
	promtool := prometheustest.Require(t).Promtool
	p := policy.Builtin()
	dir := t.TempDir()
	var inputs []map[string]string
	alerts := map[string][]map[string]any{}
	var exprs []map[string]any
	var all []monitoringv1.RuleGroup
	evalTime := time.Duration(history) * time.Minute
	at := strconv.Itoa(history) + "m"
	firing := map[string][]string{}
	scenarios := append(workbookScenarios(), randomScenarios(10)...)
	for _, sc := range scenarios {
		ind := ratioIndicator(sc.name)
		if sc.latency {
			ind = latencyIndicator()
			ind.Latency.Success = strings.ReplaceAll(ind.Latency.Success, "checkout", sc.name)
			ind.Latency.Total = strings.ReplaceAll(ind.Latency.Total, "checkout", sc.name)
		}
		slo := newSLO("wb", sc.name, "99.9", "30d", ind)
		gs, err := Generate(slo, p, Options{})
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, gs...)
		good := func(i int) int { return sc.total(i) - sc.errs(i) }
		if sc.latency {
			inputs = append(inputs,
				map[string]string{"series": `http_request_duration_seconds_bucket{job="` + sc.name + `",le="0.3"}`, "values": series(1_000_000_000, good)},
				map[string]string{"series": `http_request_duration_seconds_count{job="` + sc.name + `"}`, "values": series(1_001_000_000, sc.total)})
		} else {
			inputs = append(inputs,
				map[string]string{"series": `http_requests_total{job="` + sc.name + `",code="500"}`, "values": series(1_000_000, sc.errs)},
				map[string]string{"series": `http_requests_total{job="` + sc.name + `",code="200"}`, "values": series(1_000_000_000, good)})
		}

		o, err := policy.Objective(&slo.Spec)
		if err != nil {
			t.Fatal(err)
		}
		m := budget.Measurements{}
		for _, w := range budget.Windows(o, p.Budget) {
			m[w] = sc.window(int(w / time.Minute))
		}
		ev := budget.Evaluate(o, p.Budget, m, budget.State{}, time.Unix(0, 0).Add(evalTime))
		ids := map[string]string{LabelID: "wb-" + sc.name, LabelService: "wb", LabelSLO: sc.name}
		for i, r := range p.Budget.Rules {
			name := AlertName(r.Name)
			if _, ok := alerts[name]; !ok {
				alerts[name] = nil
			}
			if !ev.Rules[i].Firing {
				continue
			}
			firing[sc.name] = append(firing[sc.name], r.Name)
			rule := findAlert(t, gs, name)
			labels := maps.Clone(rule.Labels)
			maps.Copy(labels, ids)
			alerts[name] = append(alerts[name], map[string]any{"exp_labels": labels, "exp_annotations": rule.Annotations})
		}
		for _, w := range budget.Windows(o, p.Budget) {
			if w == o.Window {
				continue
			}
			ls := maps.Clone(ids)
			ls[LabelWindow] = dur(w)
			// Equal to the last few bits: promtool compares exactly.
			exprs = append(exprs, map[string]any{
				"expr": fmt.Sprintf(`abs(%s{sloth_slo=%q} - %s) <= bool %s`,
					SLIErrorRatio+dur(w), sc.name, num(m[w].ErrorRatio), num(1e-12*m[w].ErrorRatio)),
				"eval_time":   at,
				"exp_samples": []map[string]any{{"labels": labelString(ls), "value": 1}},
			})
		}
	}
	for _, sc := range scenarios {
		t.Logf("%-12s engine rules firing: %v", sc.name, firing[sc.name])
	}
	// Exactness on diurnal traffic: the recorded period ratio (a ratio of
	// totals from the 5m counts) is within 1% of the raw
	// increase(...[30d]) ratio, while Sloth's average of 5m ratios is not.
	const (
		f       = `{sloth_slo="diurnal"}`
		raw     = `(sum(increase(http_requests_total{job="diurnal",code=~"5.."}[30d])) / sum(increase(http_requests_total{job="diurnal"}[30d])))`
		avgRate = `avg_over_time(slo:sli_error:ratio_rate5m` + f + `[30d])`
	)
	for _, c := range []struct {
		expr string
		want float64
	}{
		{`abs(max(slo:sli_error:ratio_rate30d` + f + `) / scalar` + raw + ` - 1) < bool 0.01`, 1},
		{`abs(max(` + avgRate + `) / scalar` + raw + ` - 1) < bool 0.01`, 0},
		{`max(` + avgRate + `) / scalar` + raw + ` > bool 1.1`, 1},
	} {
		exprs = append(exprs, map[string]any{"expr": c.expr, "eval_time": at, "exp_samples": []map[string]any{{"labels": "{}", "value": c.want}}})
	}
	trueRatio, avg := diurnalRatios()
	t.Logf("diurnal traffic over %s: true error ratio %.6f; Sloth's average of 5m ratios %.6f (%+.1f%%), budget left %.1f%% instead of %.1f%%",
		evalTime, trueRatio, avg, (avg/trueRatio-1)*100, (1-avg/0.001)*100, (1-trueRatio/0.001)*100)

	file, err := RuleFile(all)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "rules.yaml"), file, 0o644); err != nil {
		t.Fatal(err)
	}
	var alertTests []map[string]any
	for _, name := range slices.Sorted(maps.Keys(alerts)) {
		exp := alerts[name]
		if exp == nil {
			exp = []map[string]any{}
		}
		alertTests = append(alertTests, map[string]any{"eval_time": at, "alertname": name, "exp_alerts": exp})
	}
	test := map[string]any{
		"rule_files":          []string{"rules.yaml"},
		"evaluation_interval": "5m",
		"tests": []map[string]any{{
			"interval": "1m", "input_series": inputs, "alert_rule_test": alertTests, "promql_expr_test": exprs,
		}},
	}
	b, err := yaml.Marshal(test)
	if err != nil {
		t.Fatal(err)
	}
	testFile := filepath.Join(dir, "workbook.test.yaml")
	if err := os.WriteFile(testFile, b, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(promtool, "test", "rules", "workbook.test.yaml")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool test rules: %v\n%s", err, out)
	}
	t.Logf("promtool test rules (%d SLOs; %d alerts checked on each; %d checks of recorded series): %s",
		len(scenarios), len(alertTests), len(exprs), strings.TrimSpace(string(out)))
}

func findAlert(t *testing.T, gs []monitoringv1.RuleGroup, name string) monitoringv1.Rule {
	t.Helper()
	for _, g := range gs {
		for _, r := range g.Rules {
			if r.Alert == name {
				return r
			}
		}
	}
	t.Fatalf("no alert %s", name)
	return monitoringv1.Rule{}
}

func labelString(ls map[string]string) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(ls)) {
		parts = append(parts, k+"="+strconv.Quote(ls[k]))
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// diurnalRatios are the true error ratio of the diurnal scenario over its
// history and the average of its 5m ratios sampled every 5 minutes (Sloth's
// optimised period ratio), computed from the series directly.
func diurnalRatios() (trueRatio, avg float64) {
	var e, t, sum float64
	n := 0
	for i := 1; i <= history; i++ {
		e += float64(diurnalErrors(i))
		t += float64(diurnalTotal(i))
		if i%5 == 0 && i >= 5 {
			var we, wt float64
			for j := i - 3; j <= i; j++ {
				we += float64(diurnalErrors(j))
				wt += float64(diurnalTotal(j))
			}
			sum += we / wt
			n++
		}
	}
	return e / t, sum / float64(n)
}

// TestPromtoolBudgetHysteresis: a budget Freeze rule that fired keeps firing
// until the budget is back above the policy's releaseMargin, in the engine
// and in its alert. Three SLOs under a policy with only that rule (margin
// 5%) over one day, 10,000 events a minute: 14,000 errors in the first 100
// minutes spend the budget, which is back at 2.8% at the end, inside the
// margin (still firing); 13,000 errors leave 9.7%, above it (resolved); a
// steady 0.5x never fires. The engine is replayed minute by minute with its
// state carried, on the numbers budgetgate's raw queries measure.
func TestPromtoolBudgetHysteresis(t *testing.T) {
	promtool := prometheustest.Require(t).Promtool
	p, err := policy.FromSpec("hysteresis", &slov1alpha1.ErrorBudgetPolicySpec{
		Rules: []slov1alpha1.PolicyRule{{Name: "budget-exhausted", BudgetRemainingBelow: ptr(slov1alpha1.Decimal("0"))}},
	})
	if err != nil {
		t.Fatal(err)
	}
	const end = 1440
	busy := constant(10000)
	burst := func(n int) func(int) int {
		return func(i int) int {
			if i <= 100 {
				return n
			}
			return 0
		}
	}
	scenarios := []scenario{{"inside-margin", burst(140), busy, false}, {"above-margin", burst(130), busy, false}, {"steady", constant(5), busy, false}}
	evalTimes := []int{100, 1390, 1420, end}
	dir := t.TempDir()
	var groups []monitoringv1.RuleGroup
	var inputs []map[string]string
	expected := map[int][]map[string]any{}
	for _, sc := range scenarios {
		slo := newSLO("hy", sc.name, "99.9", "7d", ratioIndicator(sc.name))
		gs, err := Generate(slo, p, Options{})
		if err != nil {
			t.Fatal(err)
		}
		groups = append(groups, gs...)
		inputs = append(inputs,
			map[string]string{"series": `http_requests_total{job="` + sc.name + `",code="500"}`, "values": seriesUntil(end, 1_000_000, sc.errs)},
			map[string]string{"series": `http_requests_total{job="` + sc.name + `",code="200"}`,
				"values": seriesUntil(end, 1_000_000_000, func(i int) int { return sc.total(i) - sc.errs(i) })})
		o, err := policy.Objective(&slo.Spec)
		if err != nil {
			t.Fatal(err)
		}
		var st budget.State
		var fired []int
		for now := 1; now <= end; now++ {
			m := budget.Measurements{}
			for _, w := range budget.Windows(o, p.Budget) {
				m[w] = sc.windowAt(now, int(w/time.Minute))
			}
			ev := budget.Evaluate(o, p.Budget, m, st, time.Unix(0, 0).Add(time.Duration(now)*time.Minute))
			st = ev.State
			if slices.Contains(evalTimes, now) && ev.Rules[0].Firing {
				fired = append(fired, now)
				rule := findAlert(t, gs, "SLOBudgetExhausted")
				labels := maps.Clone(rule.Labels)
				maps.Copy(labels, map[string]string{LabelID: "hy-" + sc.name, LabelService: "hy", LabelSLO: sc.name})
				expected[now] = append(expected[now], map[string]any{"exp_labels": labels, "exp_annotations": rule.Annotations})
			}
		}
		t.Logf("%-13s engine rule budget-exhausted firing at minutes %v of %v", sc.name, fired, evalTimes)
	}
	if len(expected[end]) != 1 {
		t.Fatalf("at the end the engine should fire for inside-margin only: %v", expected[end])
	}
	file, err := RuleFile(groups)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "rules.yaml"), file, 0o644); err != nil {
		t.Fatal(err)
	}
	var alertTests []map[string]any
	for _, at := range evalTimes {
		exp := expected[at]
		if exp == nil {
			exp = []map[string]any{}
		}
		alertTests = append(alertTests, map[string]any{"eval_time": strconv.Itoa(at) + "m", "alertname": "SLOBudgetExhausted", "exp_alerts": exp})
	}
	b, err := yaml.Marshal(map[string]any{
		"rule_files":          []string{"rules.yaml"},
		"evaluation_interval": "1m",
		"tests":               []map[string]any{{"interval": "1m", "input_series": inputs, "alert_rule_test": alertTests}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "hysteresis.test.yaml"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(promtool, "test", "rules", "hysteresis.test.yaml")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool test rules: %v\n%s", err, out)
	}
	t.Logf("promtool test rules: %s", strings.TrimSpace(string(out)))
}

// windowAt is window at minute now of a history: see window.
func (s scenario) windowAt(now, n int) budget.Measurement {
	first, scale := now-n+2, float64(n)/float64(n-1)
	if n > now {
		first, scale = 1, (float64(now)+0.5)/float64(now)
	}
	var e, t float64
	for i := first; i <= now; i++ {
		e += float64(s.errs(i))
		t += float64(s.total(i))
	}
	return budget.Measurement{ErrorRatio: (e * scale) / (t * scale), Events: t * scale, OK: t > 0}
}

// seriesUntil is series over a history of end minutes.
func seriesUntil(end, start int, inc func(int) int) string {
	var b strings.Builder
	b.WriteString(strconv.Itoa(start))
	v := start
	for i := 1; i <= end; {
		d, j := inc(i), i
		for j <= end && inc(j) == d {
			j++
		}
		n := j - i
		fmt.Fprintf(&b, " %d+%dx%d", v+d, d, n-1)
		v += d * n
		i = j
	}
	return b.String()
}
