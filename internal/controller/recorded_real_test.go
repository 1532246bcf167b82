package controller

import (
	"context"
	"fmt"
	"maps"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	promapi "github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	slov1alpha1 "github.com/budgetgate/budgetgate/api/v1alpha1"
	"github.com/budgetgate/budgetgate/internal/budget"
	"github.com/budgetgate/budgetgate/internal/policy"
	"github.com/budgetgate/budgetgate/internal/promconn"
	"github.com/budgetgate/budgetgate/internal/rules"
	"github.com/budgetgate/budgetgate/internal/sli"
	"github.com/budgetgate/budgetgate/internal/sloview"
	prometheustest "github.com/budgetgate/budgetgate/test/prometheus"
)

// TestRecordedEqualsRaw runs the controller's measurement both ways against
// one real Prometheus: eight days of diurnal traffic (100 to 10,000 requests
// a minute) with an incident at night, one at peak and a fast burn going on
// now; the SLO's base-window counts backfilled for the whole 7d SLO window
// with `promtool tsdb create-blocks-from rules`; the generated rules loaded
// and evaluated live. The evaluation from recorded series (one query) equals
// the one from raw queries (one per window) within 1% for every window and
// for the budget, fires the same rules, and Prometheus fires the alert that
// mirrors the firing Freeze rule.
func TestRecordedEqualsRaw(t *testing.T) {
	if testing.Short() {
		t.Skip("a real Prometheus with eight days of history")
	}
	bins := prometheustest.Require(t)
	ctx := context.Background()
	// The history ends a little ahead of now, past the setup below. A
	// Prometheus whose blocks reach ahead appends nothing older than them, so
	// its rules start recording at end, and both ways measure a moment after
	// end, with the last sample as close as scrapes keep it live. Ending the
	// history before the setup instead leaves a gap as long as the setup
	// (minutes on a loaded machine), across which the latest 5m count and
	// raw increase() extrapolate differently: 0.6% on the 7d ratio in a CI
	// run, 1.2% on the budget left.
	const lead = 2 * time.Minute
	end := time.Now().Truncate(time.Minute).Add(lead)

	// Traffic and errors per minute.
	var total, errs []prometheustest.Sample
	var nTotal, nErrs float64
	for t0 := end.Add(-8 * 24 * time.Hour); !t0.After(end); t0 = t0.Add(time.Minute) {
		h := float64(t0.Hour()) + float64(t0.Minute())/60
		shape := 0.5 - 0.5*math.Cos(2*math.Pi*(h-4)/24) // 0 at 04:00, 1 at 16:00
		rate := 100 + 9900*shape*shape
		errRate := 0.0005
		switch ago := end.Sub(t0); {
		case ago < 40*time.Minute:
			errRate = 0.03 // a fast burn now: 30x
		case ago > 5*24*time.Hour && ago < 5*24*time.Hour+2*time.Hour && h < 6:
			errRate = 0.3 // at night
		case ago > 3*24*time.Hour && ago < 3*24*time.Hour+30*time.Minute:
			errRate = 0.04 // at peak (or wherever the day puts it)
		}
		nTotal += rate
		nErrs += rate * errRate
		total = append(total, prometheustest.Sample{T: t0, V: nTotal - nErrs})
		errs = append(errs, prometheustest.Sample{T: t0, V: nErrs})
	}
	raw := t.TempDir()
	bins.Backfill(t, raw, prometheustest.Family{Name: "http_requests", Type: "counter", Series: []prometheustest.Series{
		{Metric: `http_requests_total{job="checkout",code="200"}`, Samples: total},
		{Metric: `http_requests_total{job="checkout",code="500"}`, Samples: errs},
	}})

	slo := &slov1alpha1.ServiceLevelObjective{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "checkout", UID: "4b1d"},
		Spec: slov1alpha1.ServiceLevelObjectiveSpec{
			Target: "99.9", Window: "7d", EvaluationInterval: "1m",
			Indicator: slov1alpha1.Indicator{Ratio: &slov1alpha1.RatioIndicator{
				Errors: `http_requests_total{job="checkout",code=~"5.."}`, Total: `http_requests_total{job="checkout"}`,
			}},
		},
	}
	pol := policy.Builtin()
	groups, err := rules.Generate(slo, pol, rules.Options{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	writeRules := func(name string, gs []monitoringv1.RuleGroup) string {
		t.Helper()
		b, err := rules.RuleFile(gs)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}

	By := func(s string) { t.Log(s) }
	By("backfilling the base window's counts for the SLO window with promtool tsdb create-blocks-from rules")
	var base []monitoringv1.Rule
	for _, r := range groups[0].Rules {
		if r.Record == rules.SLIErrors+"5m" || r.Record == rules.SLIEvents+"5m" {
			base = append(base, r)
		}
	}
	if len(base) != 2 {
		t.Fatalf("base-window count rules: %d, want 2", len(base))
	}
	first := bins.Start(t, prometheustest.Options{DataDir: raw})
	ruleBlocks := t.TempDir()
	cmd := exec.Command(bins.Promtool, "tsdb", "create-blocks-from", "rules",
		"--start="+fmt.Sprint(end.Add(-7*24*time.Hour-10*time.Minute).Unix()), "--end="+fmt.Sprint(end.Unix()),
		"--url="+first.URL, "--output-dir="+ruleBlocks, "--eval-interval=60s",
		writeRules("base.yaml", []monitoringv1.RuleGroup{{Name: "base", Rules: base}}))
	started := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, out)
	}
	t.Logf("rule backfill of 7 days took %s", time.Since(started).Round(time.Millisecond))

	By("a Prometheus with both sets of blocks and the generated rules, evaluated every second")
	data := t.TempDir()
	for _, from := range []string{raw, ruleBlocks} {
		entries, err := os.ReadDir(from)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if e.IsDir() && len(e.Name()) == 26 { // a block's ULID
				if out, err := exec.Command("cp", "-r", filepath.Join(from, e.Name()), data).CombinedOutput(); err != nil {
					t.Fatalf("copying block %s: %v\n%s", e.Name(), err, out)
				}
			}
		}
	}
	prom := bins.Start(t, prometheustest.Options{DataDir: data,
		Config: "global:\n  evaluation_interval: 1s\nrule_files: [" + writeRules("slo.yaml", groups) + "]\n"})
	ready := time.Now()
	client, err := promapi.NewClient(promapi.Config{Address: prom.URL})
	if err != nil {
		t.Fatal(err)
	}
	api := v1.NewAPI(client)

	rec, err := rules.RecordedQuery(slo, pol, rules.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// The instant both ways measure at: the recorded 7d ratio's latest
	// sample, once the rules have run with the backfilled counts in place.
	var at time.Time
	deadline := end.Add(time.Minute)
	for {
		v, _, _, err := api.Query(ctx, "timestamp("+rules.SLIErrorRatio+"1w)", time.Now())
		if err == nil && len(v.(model.Vector)) == 1 {
			at = v.(model.Vector)[0].Timestamp.Time()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no recorded 7d ratio a minute after the history's end: %v %v", v, err)
		}
		time.Sleep(200 * time.Millisecond)
	}

	if !at.After(end) {
		t.Fatalf("the recorded 7d ratio's latest sample at %s, before the history's end %s: the rules recorded over backfilled blocks", at, end)
	}
	t.Logf("measuring %s after the history's last sample; the setup ended %s before it", at.Sub(end).Round(time.Millisecond),
		end.Sub(ready).Round(time.Second))
	By("measuring at the same instant, from recorded series and from raw queries")
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	if err := slov1alpha1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	conns, err := promconn.FromAddress(prom.URL)
	if err != nil {
		t.Fatal(err)
	}
	clock := clocktesting.NewFakeClock(at)
	r := &ServiceLevelObjectiveReconciler{
		Client:      fake.NewClientBuilder().WithScheme(s).Build(),
		Clock:       clock,
		Connections: conns,
		Sources:     PrometheusSources(sli.WithClock(clock.Now)),
	}
	in, err := r.readInputs(ctx, slo)
	if err != nil {
		t.Fatal(err)
	}
	windows := budget.Windows(in.objective, in.policy.Budget)
	rawM := r.measure(ctx, slo, in, windows)
	// The SLO window's recorded counts are sums of 5m counts taken at every
	// rule evaluation: each minute is counted by the five evaluations whose
	// 5m range holds it, the newest minutes by fewer so far, so the sum is
	// the window's count about two minutes late. While a burn goes on, raw
	// from lag earlier bounds it from the other side.
	const lag = 3 * time.Minute
	clock.SetTime(at.Add(-lag))
	rawEarlier := r.measure(ctx, slo, in, []time.Duration{in.objective.Window})
	clock.SetTime(at)

	recSLO := slo.DeepCopy()
	recSLO.Status.PrometheusRule = &slov1alpha1.PrometheusRuleStatus{Name: PrometheusRuleName(slo.Name),
		RecordingHash: rec.Hash, RecordingSince: &metav1.Time{Time: end.Add(-7*24*time.Hour - 10*time.Minute)}}
	setRulesCondition(recSLO, metav1.ConditionTrue, slov1alpha1.ReasonRulesWritten, "")
	recM := r.measure(ctx, recSLO, in, windows)

	if rawM.err != nil || recM.err != nil || rawEarlier.err != nil {
		t.Fatalf("measure errors: raw %v, recorded %v, raw %s earlier %v", rawM.err, recM.err, lag, rawEarlier.err)
	}
	if rawM.queries != len(windows) || len(rawM.recorded) != 0 {
		t.Errorf("raw: %d queries, recorded windows %v; want %d and none", rawM.queries, rawM.recorded, len(windows))
	}
	if recM.queries != 1 || len(recM.raw) != 0 {
		t.Errorf("recorded: %d queries, raw windows %v (%s); want 1 and none", recM.queries, recM.raw, recM.rawWhy)
	}
	within := func(what string, got, want float64) {
		t.Helper()
		if d := math.Abs(got-want) / math.Max(math.Abs(want), 1e-12); d > 0.01 {
			t.Errorf("%s: recorded %.6g, raw %.6g: %.2f%% apart, more than 1%%", what, got, want, 100*d)
		} else {
			t.Logf("%-14s recorded %.6g, raw %.6g (%.4f%% apart)", what, got, want, 100*d)
		}
	}
	// between says got lies between raw now and raw lag earlier (each
	// widened by slack), and how far it is from raw now.
	between := func(what string, got, now, earlier, slack float64) {
		t.Helper()
		lo, hi := math.Min(now, earlier), math.Max(now, earlier)
		lo, hi = lo-slack*math.Abs(lo), hi+slack*math.Abs(hi)
		d := math.Abs(got-now) / math.Max(math.Abs(now), 1e-12)
		if got < lo || got > hi {
			t.Errorf("%s: recorded %.6g, outside raw now %.6g and raw %s earlier %.6g (%.2f%% from raw now)", what, got, now, lag, earlier, 100*d)
		} else {
			t.Logf("%-14s recorded %.6g, raw %.6g (%.4f%% apart), raw %s earlier %.6g", what, got, now, 100*d, lag, earlier)
		}
	}
	for _, w := range windows {
		a, b := recM.m[w], rawM.m[w]
		if !a.OK || !b.OK {
			t.Fatalf("window %s: recorded %+v, raw %+v: both must have data", model.Duration(w), a, b)
		}
		if w == in.objective.Window {
			e := rawEarlier.m[w]
			between("ratio "+model.Duration(w).String(), a.ErrorRatio, b.ErrorRatio, e.ErrorRatio, 0.01)
			between("events "+model.Duration(w).String(), a.Events, b.Events, e.Events, 0.01)
			continue
		}
		within("ratio "+model.Duration(w).String(), a.ErrorRatio, b.ErrorRatio)
		within("events "+model.Duration(w).String(), a.Events, b.Events)
	}
	evalRaw := budget.Evaluate(in.objective, in.policy.Budget, rawM.m, sloview.State(&slo.Status), at)
	evalRec := budget.Evaluate(in.objective, in.policy.Budget, recM.m, sloview.State(&slo.Status), at)
	earlierM := maps.Clone(rawM.m)
	earlierM[in.objective.Window] = rawEarlier.m[in.objective.Window]
	evalEarlier := budget.Evaluate(in.objective, in.policy.Budget, earlierM, sloview.State(&slo.Status), at)
	between("budget left", evalRec.Budget.Remaining, evalRaw.Budget.Remaining, evalEarlier.Budget.Remaining, 0.01)
	firing := func(e budget.Evaluation) []string {
		var out []string
		for _, rs := range e.Rules {
			if rs.Firing {
				out = append(out, rs.Name)
			}
		}
		return out
	}
	if got, want := firing(evalRec), firing(evalRaw); fmt.Sprint(got) != fmt.Sprint(want) || !evalRaw.State.Frozen {
		t.Errorf("rules firing: recorded %v, raw %v; want the same, and a freeze", got, want)
	}
	// Which rules fire depends on the hour the test runs at (traffic is
	// diurnal): at night the 5m window can hold fewer events than the
	// automatic low-traffic guard, and then fast burn fires neither way.
	t.Logf("rules firing: %v; frozen %v both ways", firing(evalRaw), evalRaw.State.Frozen)

	By("Prometheus fires the alerts of exactly the rules the engine fires")
	want := fmt.Sprint(firing(evalRaw))
	deadline = time.Now().Add(30 * time.Second)
	for {
		v, _, _, err := api.Query(ctx, `ALERTS{alertstate="firing",sloth_slo="checkout"}`, time.Now())
		var got []string
		if err == nil {
			for _, s := range v.(model.Vector) {
				got = append(got, string(s.Metric["budgetgate_rule"]))
			}
		}
		// ALERTS come in no order: compare as the engine lists them.
		var ordered []string
		for _, rs := range evalRaw.Rules {
			if slices.Contains(got, rs.Name) {
				ordered = append(ordered, rs.Name)
			}
		}
		if len(ordered) == len(got) && fmt.Sprint(ordered) == want {
			t.Logf("alerts firing: %v", ordered)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("alerts firing %v after 30s, want %s (%v)", got, want, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}
