package dashboard

import (
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	slov1alpha1 "github.com/budgetgate/budgetgate/api/v1alpha1"
	"github.com/budgetgate/budgetgate/internal/budget"
	"github.com/budgetgate/budgetgate/internal/freeze"
	"github.com/budgetgate/budgetgate/internal/policy"
	"github.com/budgetgate/budgetgate/internal/rules"
	prometheustest "github.com/budgetgate/budgetgate/test/prometheus"
)

// What Grafana would substitute for the variables: one SLO, as in a row of
// the repeated SLO section.
const (
	testNamespace = "shop"
	testSLO       = "checkout-availability"
	testJob       = "budgetgate-metrics"
	testTarget    = 0.999
)

var testVars = strings.NewReplacer(
	"$__rate_interval", "5m", "$__range", "1h",
	v(VarNamespace), testNamespace, v(VarSLO), testSLO, v(VarJob), testJob,
)

// scrape is how Prometheus labelled the operator's series: through a
// ServiceMonitor, whose target label namespace (the operator's namespace)
// renames the SLO's to exported_namespace, or with no namespace target label.
type scrape struct {
	name string
	// labels of a series about something in namespace ns.
	labels func(ns string) map[string]string
}

var scrapes = []scrape{
	// The operator runs in the SLOs' own namespace here, so that a series of
	// another namespace's SLO carries namespace="shop" too, and must still
	// not be selected.
	{"service-monitor", func(ns string) map[string]string {
		return map[string]string{"job": testJob, "instance": "10.0.0.1:8443", labelNamespace: testNamespace, labelExportedNamespace: ns}
	}},
	{"plain", func(ns string) map[string]string {
		return map[string]string{"job": testJob, "instance": "10.0.0.1:8443", labelNamespace: ns}
	}},
}

type promSeries struct {
	Series string `yaml:"series"`
	Values string `yaml:"values"`
}

type promSample struct {
	Labels string  `yaml:"labels"`
	Value  float64 `yaml:"value"`
}

type promExprTest struct {
	Expr       string       `yaml:"expr"`
	EvalTime   string       `yaml:"eval_time"`
	ExpSamples []promSample `yaml:"exp_samples"`
}

type promTestGroup struct {
	Name           string         `yaml:"name"`
	Interval       string         `yaml:"interval"`
	InputSeries    []promSeries   `yaml:"input_series"`
	PromqlExprTest []promExprTest `yaml:"promql_expr_test"`
}

func metric(name string, labels map[string]string, extra ...string) model.Metric {
	m := model.Metric{}
	if name != "" {
		m[model.MetricNameLabel] = model.LabelValue(name)
	}
	for k, v := range labels {
		m[model.LabelName(k)] = model.LabelValue(v)
	}
	for i := 0; i+1 < len(extra); i += 2 {
		m[model.LabelName(extra[i])] = model.LabelValue(extra[i+1])
	}
	return m
}

func without(m model.Metric, names ...model.LabelName) model.Metric {
	out := m.Clone()
	for _, n := range names {
		delete(out, n)
	}
	return out
}

func num(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

// TestPromtoolQueries evaluates every query of the dashboard in promtool,
// Prometheus' own engine, with the variables substituted as Grafana would
// for one SLO: every query parses, and the SLO, freeze and admission
// queries return exactly the expected series and values.
//
// The recorded error ratios are input series with the labels the rules
// generator gives them, and the generator's metadata group (error budget,
// budget left, sloth_slo_info) runs on them, so the budget and burn-rate
// panels are checked against budget.ComputeBudget and budget.BurnRate on the
// same ratios. The operator's series come scraped both ways (scrapes), each
// beside series of another namespace's SLO of the same name and of another
// SLO of the namespace, which no query may select: the gauges they would add
// show as extra series or counts, and their admission counters, unlike the
// selected ones, increase.
func TestPromtoolQueries(t *testing.T) {
	promtool := prometheustest.Require(t).Promtool
	slo := &slov1alpha1.ServiceLevelObjective{
		ObjectMeta: metav1.ObjectMeta{Namespace: testNamespace, Name: testSLO},
		Spec: slov1alpha1.ServiceLevelObjectiveSpec{Target: "99.9", Window: "30d",
			Indicator: slov1alpha1.Indicator{Ratio: &slov1alpha1.RatioIndicator{
				Errors: `http_requests_total{code=~"5.."}`, Total: `http_requests_total`}}},
	}
	groups, err := rules.Generate(slo, policy.Builtin(), rules.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var meta []monitoringv1.RuleGroup
	ratioLabels := map[string]map[string]string{} // by window
	var infoLabels map[string]string
	for _, g := range groups {
		if strings.HasPrefix(g.Name, rules.GroupMetaPrefix) {
			meta = append(meta, g)
		}
		for _, r := range g.Rules {
			if strings.HasPrefix(r.Record, rules.SLIErrorRatio) {
				ratioLabels[strings.TrimPrefix(r.Record, rules.SLIErrorRatio)] = r.Labels
			}
			if r.Record == rules.Info {
				infoLabels = r.Labels
			}
		}
	}
	ruleFile, err := rules.RuleFile(meta)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "meta.yaml"), ruleFile, 0o644); err != nil {
		t.Fatal(err)
	}

	// A different error ratio per window, so that a panel reading the wrong
	// window shows.
	ratio := map[string]float64{}
	var recorded []promSeries
	for i, w := range slices.Sorted(maps.Keys(ratioLabels)) {
		ratio[w] = 0.00037 * float64(i+1)
		recorded = append(recorded, promSeries{metric(rules.SLIErrorRatio+w, ratioLabels[w]).String(),
			num(ratio[w]) + "+0x120"})
	}
	ids := map[string]string{rules.LabelID: rules.ID(testNamespace, testSLO), rules.LabelService: testNamespace,
		rules.LabelSLO: testSLO}
	period := window(Window)
	remaining := budget.ComputeBudget(ratio[period], testTarget).Remaining
	// The generator's budget left keeps the SLO window's sloth_window, as Sloth's does.
	budgetSeries := metric(rules.PeriodBudgetRemaining, ids, rules.LabelWindow, period)

	expected := map[string]func(scrape) []model.Sample{}
	want := func(key string, f func(scrape) []model.Sample) { expected[key] = f }
	static := func(samples ...model.Sample) func(scrape) []model.Sample {
		return func(scrape) []model.Sample { return samples }
	}
	sample := func(m model.Metric, v float64) model.Sample {
		return model.Sample{Metric: m, Value: model.SampleValue(v)}
	}

	want("Error budget left/A", static(sample(budgetSeries, remaining)))
	want("Error budget left over the SLO window/A", static(sample(budgetSeries, remaining)))
	for _, r := range budget.DefaultPolicy().Rules {
		if r.BurnRate == nil {
			continue
		}
		long, short := window(r.BurnRate.LongWindow), window(r.BurnRate.ShortWindow)
		title := r.Name + ": burn rate over " + long + " and " + short
		for ref, w := range map[string]string{"A": long, "B": short} {
			want(title+"/"+ref, static(sample(metric("", ids, rules.LabelWindow, w), budget.BurnRate(ratio[w], testTarget))))
		}
	}
	want("variable/"+VarNamespace, static(sample(metric(rules.Info, infoLabels), 1)))
	want("variable/"+VarSLO, static(sample(metric(rules.Info, infoLabels), 1)))

	// The operator's series, per scrape.
	type opSeries struct {
		name   string
		ns     string
		labels []string
		values string
	}
	const selected, others = "selected", "others"
	op := []struct {
		opSeries
		of string // selected: the queries must return it; others: never
	}{
		{opSeries{MetricFrozen, testNamespace, []string{labelName, testSLO}, "1+0x120"}, selected},
		{opSeries{MetricFrozen, "payments", []string{labelName, testSLO}, "1+0x120"}, others},
		{opSeries{MetricFrozen, testNamespace, []string{labelName, "checkout-latency"}, "1+0x120"}, others},
		{opSeries{MetricRuleFiring, testNamespace, []string{labelName, testSLO, "rule", "fast-burn", "action", "Freeze"}, "1+0x120"}, selected},
		{opSeries{MetricRuleFiring, testNamespace, []string{labelName, testSLO, "rule", "gradual-burn", "action", "Warn"}, "0+0x120"}, selected},
		{opSeries{MetricRuleFiring, "payments", []string{labelName, testSLO, "rule", "slow-burn", "action", "Freeze"}, "1+0x120"}, others},
		{opSeries{MetricBudgetRemaining, testNamespace, []string{labelName, testSLO}, "0.25+0x120"}, selected},
		{opSeries{MetricBudgetRemaining, "payments", []string{labelName, testSLO}, "0.5+0x120"}, others},
		{opSeries{MetricBudgetRemaining, testNamespace, []string{labelName, "checkout-latency"}, "0.75+0x120"}, others},
	}
	decision := func(d freeze.Decision, c freeze.Class) []string {
		return []string{"kind", "Deployment", "decision", string(d), "reason", string(c)}
	}
	// Counters: the selected ones do not move, so their rates and
	// increases are exactly 0; another namespace's increase, and would show.
	admissions := []struct {
		opSeries
		of string
	}{
		{opSeries{MetricAdmissionDecisions, testNamespace, decision(freeze.Deny, freeze.ClassTemplateChange), "3+0x120"}, selected},
		{opSeries{MetricAdmissionDecisions, testNamespace, decision(freeze.Warn, freeze.ClassDryRun), "2+0x120"}, selected},
		{opSeries{MetricAdmissionDecisions, testNamespace, decision(freeze.Allow, freeze.ClassNotFrozen), "5+0x120"}, selected},
		{opSeries{MetricAdmissionDecisions, "payments", decision(freeze.Deny, freeze.ClassTemplateChange), "0+6x120"}, others},
		{opSeries{MetricAdmissionDecisions, "payments", decision(freeze.Allow, freeze.ClassRollback), "0+6x120"}, others},
	}
	webhookRequests := metric(MetricWebhookRequests, nil, "job", testJob, "instance", "10.0.0.1:8443",
		"webhook", WorkloadWebhookPath, "code", "200")

	series := func(sc scrape, s opSeries) model.Metric {
		return metric(s.name, sc.labels(s.ns), s.labels...)
	}
	selectedOf := func(name string) func(scrape) []model.Sample {
		return func(sc scrape) []model.Sample {
			var out []model.Sample
			for _, s := range op {
				if s.name == name && s.of == selected {
					v, err := strconv.ParseFloat(strings.SplitN(s.values, "+", 2)[0], 64)
					if err != nil {
						t.Fatal(err)
					}
					out = append(out, sample(series(sc, s.opSeries), v))
				}
			}
			return out
		}
	}
	frozen := selectedOf(MetricFrozen)
	want("annotation/Release freezes", frozen)
	want("Release freeze/A", frozen)
	want("Policy rules/A", selectedOf(MetricRuleFiring))
	want("Error budget left over the SLO window/B", selectedOf(MetricBudgetRemaining))
	want("SLOs freezing releases/A", static(sample(model.Metric{}, 1)))
	want("Releases denied/A", static(sample(model.Metric{}, 0)))
	by := func(labels ...string) model.Sample { return sample(metric("", nil, labels...), 0) }
	want("Denied and warned, by kind and reason/A", static(
		by(decision(freeze.Deny, freeze.ClassTemplateChange)...), by(decision(freeze.Warn, freeze.ClassDryRun)...)))
	want("Admitted, by reason/A", static(by("reason", string(freeze.ClassNotFrozen))))
	want("Decisions in the time range, by decision and reason/A", static(
		by("decision", string(freeze.Deny), "reason", string(freeze.ClassTemplateChange)),
		by("decision", string(freeze.Warn), "reason", string(freeze.ClassDryRun)),
		by("decision", string(freeze.Allow), "reason", string(freeze.ClassNotFrozen))))
	want("variable/"+VarJob, static(sample(webhookRequests, 3)))
	want("Webhook responses, by code/A", static(by("webhook", WorkloadWebhookPath, "code", "200")))

	exprs := load(t).expressions(t)
	var testGroups []promTestGroup
	checked := 0
	for _, sc := range scrapes {
		g := promTestGroup{Name: sc.name, Interval: "1m", InputSeries: slices.Clone(recorded)}
		for _, s := range op {
			g.InputSeries = append(g.InputSeries, promSeries{series(sc, s.opSeries).String(), s.values})
		}
		for _, s := range admissions {
			g.InputSeries = append(g.InputSeries, promSeries{series(sc, s.opSeries).String(), s.values})
		}
		g.InputSeries = append(g.InputSeries, promSeries{webhookRequests.String(), "3+0x120"})
		for _, e := range exprs {
			// Every other query (the operator's health) reads series this
			// test does not write: promtool parses it and finds nothing.
			var samples []promSample
			if f, ok := expected[e.key]; ok {
				for _, s := range f(sc) {
					samples = append(samples, promSample{s.Metric.String(), float64(s.Value)})
				}
				checked++
			}
			g.PromqlExprTest = append(g.PromqlExprTest, promExprTest{testVars.Replace(e.expr), "2h", samples})
		}
		testGroups = append(testGroups, g)
	}
	if checked != 2*len(expected) {
		t.Fatalf("%d expected results match no query of the dashboard", len(expected)-checked/2)
	}
	out, err := yaml.Marshal(map[string]any{
		"rule_files":          []string{"meta.yaml"},
		"evaluation_interval": "1m",
		"tests":               testGroups,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "dashboard.test.yaml"), out, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(promtool, "test", "rules", "dashboard.test.yaml")
	cmd.Dir = dir
	res, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool test rules: %v\n%s", err, res)
	}
	t.Logf("promtool test rules: %d queries, %d of them with their results checked, under %d scrapes; %s",
		len(exprs), len(expected), len(scrapes), strings.TrimSpace(string(res)))
}
