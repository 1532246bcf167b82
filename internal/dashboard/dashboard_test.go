package dashboard

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"go.yaml.in/yaml/v3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	slov1alpha1 "github.com/budgetgate/budgetgate/api/v1alpha1"
	"github.com/budgetgate/budgetgate/internal/budget"
	_ "github.com/budgetgate/budgetgate/internal/controller" // registers the budgetgate_slo_* metrics
	"github.com/budgetgate/budgetgate/internal/policy"
	"github.com/budgetgate/budgetgate/internal/rules"
	"github.com/budgetgate/budgetgate/internal/webhook" // registers budgetgate_admission_decisions_total
)

var update = flag.Bool("update", false, "rewrite the generated files in config/grafana (as make dashboards does)")

// moduleRoot is where the generated files live, relative to this package.
const moduleRoot = "../.."

// TestGolden: the committed config/grafana files are what the package
// generates. go test -update (or make dashboards) rewrites them.
func TestGolden(t *testing.T) {
	files, err := Files()
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range files {
		full := filepath.Join(moduleRoot, path)
		if *update {
			if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(full, want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(full)
		if err != nil {
			t.Fatalf("%v (run make dashboards)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s is stale; run make dashboards (or go test ./internal/dashboard -update):\n%s",
				path, cmp.Diff(string(want), string(got)))
		}
	}
}

// dash is the dashboard as Grafana reads it: the JSON, not the SDK's types.
type dash struct {
	Panels      []panel `json:"panels"`
	Annotations struct {
		List []struct {
			Name   string `json:"name"`
			Target target `json:"target"`
		} `json:"list"`
	} `json:"annotations"`
	Templating struct {
		List []variable `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID          int      `json:"id"`
	Type        string   `json:"type"`
	Title       string   `json:"title"`
	Repeat      string   `json:"repeat"`
	Collapsed   bool     `json:"collapsed"`
	Panels      []panel  `json:"panels"`
	Targets     []target `json:"targets"`
	Datasource  dsRef    `json:"datasource"`
	FieldConfig struct {
		Defaults struct {
			Thresholds struct {
				Steps []step `json:"steps"`
			} `json:"thresholds"`
			Custom struct {
				ThresholdsStyle struct {
					Mode string `json:"mode"`
				} `json:"thresholdsStyle"`
			} `json:"custom"`
		} `json:"defaults"`
	} `json:"fieldConfig"`
}

type step struct {
	Value *float64 `json:"value"`
	Color string   `json:"color"`
}

type target struct {
	RefID      string `json:"refId"`
	Expr       string `json:"expr"`
	Datasource dsRef  `json:"datasource"`
}

type dsRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type variable struct {
	Type       string `json:"type"`
	Name       string `json:"name"`
	Query      string `json:"query"`
	Multi      bool   `json:"multi"`
	IncludeAll bool   `json:"includeAll"`
	Datasource dsRef  `json:"datasource"`
}

func load(t *testing.T) dash {
	t.Helper()
	j, err := JSON()
	if err != nil {
		t.Fatal(err)
	}
	var m dash
	if err := json.Unmarshal(j, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// expression is one PromQL expression of the dashboard and where it is: key
// is "<panel title>/<refId>", "annotation/<name>" or "variable/<name>".
type expression struct{ key, where, expr string }

var labelValues = regexp.MustCompile(`^label_values\((.*), *(\w+)\)$`)

// expressions are every PromQL expression of the dashboard: panel queries,
// annotation queries, and the selectors of label_values variables.
func (m dash) expressions(t *testing.T) []expression {
	t.Helper()
	var out []expression
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			for _, q := range p.Targets {
				out = append(out, expression{p.Title + "/" + q.RefID, fmt.Sprintf("panel %d %q query %s", p.ID, p.Title, q.RefID), q.Expr})
			}
			walk(p.Panels)
		}
	}
	walk(m.Panels)
	for _, a := range m.Annotations.List {
		out = append(out, expression{"annotation/" + a.Name, "annotation " + a.Name, a.Target.Expr})
	}
	for _, v := range m.Templating.List {
		if v.Type != "query" {
			continue
		}
		sub := labelValues.FindStringSubmatch(v.Query)
		if sub == nil {
			t.Fatalf("variable %s: query %q is not label_values(selector, label)", v.Name, v.Query)
		}
		out = append(out, expression{"variable/" + v.Name, "variable " + v.Name, sub[1]})
	}
	return out
}

// recordedEverywhere are the series the rules generator records for a ratio
// SLO under the built-in policy at every usual SLO window: the dashboard
// must not read a series that only SLOs of some windows have (such as
// slo:sli_error:ratio_rate30d).
func recordedEverywhere(t *testing.T) map[string]bool {
	t.Helper()
	var common map[string]bool
	for _, w := range []string{"7d", "28d", "30d"} {
		slo := &slov1alpha1.ServiceLevelObjective{
			ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "checkout"},
			Spec: slov1alpha1.ServiceLevelObjectiveSpec{Target: "99.9", Window: slov1alpha1.Duration(w),
				Indicator: slov1alpha1.Indicator{Ratio: &slov1alpha1.RatioIndicator{
					Errors: `http_requests_total{code=~"5.."}`, Total: `http_requests_total`}}},
		}
		groups, err := rules.Generate(slo, policy.Builtin(), rules.Options{})
		if err != nil {
			t.Fatal(err)
		}
		names := map[string]bool{}
		for _, g := range groups {
			for _, r := range g.Rules {
				if r.Record != "" {
					names[r.Record] = true
				}
			}
		}
		if common == nil {
			common = names
			continue
		}
		for n := range common {
			if !names[n] {
				delete(common, n)
			}
		}
	}
	return common
}

// registered reports whether a collector of that name is in
// controller-runtime's registry, which the manager serves: internal/controller,
// internal/webhook (imported above) and controller-runtime register theirs at
// init. A probe of the same name but another help text is refused exactly
// when the name is taken.
func registered(t *testing.T, name string) bool {
	t.Helper()
	probe := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: "probe of TestQueriesNameKnownSeries"})
	if err := metrics.Registry.Register(probe); err != nil {
		if !strings.Contains(err.Error(), "same fully-qualified name") {
			t.Fatalf("probing %s: %v", name, err)
		}
		return true
	}
	metrics.Registry.Unregister(probe)
	return false
}

// TestQueriesNameKnownSeries: every series the dashboard reads is one the
// rules generator records, or a metric the operator's registry holds, or
// Prometheus' own up.
func TestQueriesNameKnownSeries(t *testing.T) {
	recorded := recordedEverywhere(t)
	m := load(t)
	used := map[string]bool{}
	for _, e := range m.expressions(t) {
		names, err := metricNames(e.expr)
		if err != nil {
			t.Errorf("%s: %v in %s", e.where, err, e.expr)
			continue
		}
		if len(names) == 0 {
			t.Errorf("%s reads no series: %s", e.where, e.expr)
		}
		for _, n := range names {
			used[n] = true
			switch {
			case recorded[n], n == MetricScrapeTargetUp:
			case strings.HasPrefix(n, "slo:") || strings.HasPrefix(n, "sloth_"):
				t.Errorf("%s reads %s, which the rules generator does not record for every SLO window", e.where, n)
			case registered(t, n), strings.HasSuffix(n, histogramBucketsSuffix) &&
				registered(t, strings.TrimSuffix(n, histogramBucketsSuffix)):
			default:
				t.Errorf("%s reads %s, which neither the rules generator records nor the operator exports", e.where, n)
			}
		}
	}
	// What the issue asks the dashboard to show, by its sources.
	for _, n := range []string{
		rules.PeriodBudgetRemaining, rules.ErrorBudget, rules.SLIErrorRatio + "5m", rules.SLIErrorRatio + "3d", rules.Info,
		MetricFrozen, MetricRuleFiring, MetricAdmissionDecisions, MetricScrapeTargetUp, MetricReconcileErrors,
		MetricWorkqueueDepth, MetricWebhookLatency + histogramBucketsSuffix,
	} {
		if !used[n] {
			t.Errorf("no query reads %s", n)
		}
	}
	// The probe itself can fail: a name nobody registered is not found.
	if registered(t, "budgetgate_no_such_metric") {
		t.Error("registered() finds a metric nobody registered")
	}
}

// TestBurnThresholdsAreTheEngines: one burn-rate panel per rule of the
// built-in policy, reading the rule's two windows, with the rule's threshold
// drawn as the engine computes it for a 30d SLO.
func TestBurnThresholdsAreTheEngines(t *testing.T) {
	want := []struct {
		rule        string
		long, short string
		threshold   float64 // the SRE Workbook's figures at 30d
		color       string
	}{
		{"fast-burn", "1h", "5m", 14.4, "red"},
		{"slow-burn", "6h", "30m", 6, "red"},
		{"gradual-burn", "1d", "2h", 3, "orange"},
		{"chronic-burn", "3d", "6h", 1, "orange"},
	}
	engine := map[string]float64{}
	for _, r := range budget.DefaultPolicy().Rules {
		if r.BurnRate != nil {
			engine[r.Name] = r.BurnRate.Threshold(budget.Objective{Target: 0.999, Window: 30 * 24 * time.Hour})
		}
	}
	if len(engine) != len(want) {
		t.Fatalf("the built-in policy has %d burn-rate rules, this test expects %d", len(engine), len(want))
	}
	m := load(t)
	for _, w := range want {
		p := findPanel(t, m, w.rule+":")
		steps := p.FieldConfig.Defaults.Thresholds.Steps
		if len(steps) != 2 || steps[0].Value != nil || steps[1].Value == nil {
			t.Errorf("%s: thresholds %+v, want a base and one line", p.Title, steps)
			continue
		}
		got := *steps[1].Value
		if got != engine[w.rule] {
			t.Errorf("%s: threshold %v, the engine's is %v", p.Title, got, engine[w.rule])
		}
		if math.Abs(got-w.threshold) > 1e-9 || steps[1].Color != w.color {
			t.Errorf("%s: threshold %v in %s, want %v in %s", p.Title, got, steps[1].Color, w.threshold, w.color)
		}
		if mode := p.FieldConfig.Defaults.Custom.ThresholdsStyle.Mode; mode != "dashed" {
			t.Errorf("%s: thresholds drawn %q, want dashed", p.Title, mode)
		}
		var read []string
		for _, q := range p.Targets {
			names, err := metricNames(q.Expr)
			if err != nil {
				t.Fatal(err)
			}
			read = append(read, names...)
		}
		wantRead := []string{rules.SLIErrorRatio + w.long, rules.ErrorBudget, rules.SLIErrorRatio + w.short, rules.ErrorBudget}
		if !slices.Equal(read, wantRead) {
			t.Errorf("%s reads %v, want %v", p.Title, read, wantRead)
		}
	}

	// The budget panel: the budget-exhausted bound and the release margin.
	p := findPanel(t, m, "Error budget left over the SLO window")
	zero, margin := 0.0, budget.DefaultReleaseMargin
	wantSteps := []step{{nil, "transparent"}, {&zero, "red"}, {&margin, "green"}}
	if diff := cmp.Diff(wantSteps, p.FieldConfig.Defaults.Thresholds.Steps); diff != "" {
		t.Errorf("%s thresholds (-want +got):\n%s", p.Title, diff)
	}
}

func findPanel(t *testing.T, m dash, titlePrefix string) panel {
	t.Helper()
	var found []panel
	for _, p := range m.Panels {
		if strings.HasPrefix(p.Title, titlePrefix) {
			found = append(found, p)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d panels titled %q...", len(found), titlePrefix)
	}
	return found[0]
}

var grafanaVar = regexp.MustCompile(`\$\{?(\w+)\}?`)

// TestVariables: the data source, namespace and SLO variables exist and read
// Sloth's labels; every variable a query uses is defined.
func TestVariables(t *testing.T) {
	m := load(t)
	vars := map[string]variable{}
	for _, v := range m.Templating.List {
		vars[v.Name] = v
	}
	wantQuery := map[string]string{
		VarNamespace: "label_values(" + rules.Info + ", " + rules.LabelService + ")",
		VarSLO:       "label_values(" + rules.Info + `{` + rules.LabelService + `=~"$namespace"}, ` + rules.LabelSLO + ")",
		VarJob:       `label_values(controller_runtime_webhook_requests_total{webhook="` + webhook.WorkloadPath + `"}, job)`,
	}
	if v := vars[VarDatasource]; v.Type != "datasource" || v.Query != "prometheus" {
		t.Errorf("variable %s = %+v, want a prometheus data source variable", VarDatasource, v)
	}
	for name, q := range wantQuery {
		v, ok := vars[name]
		if !ok {
			t.Errorf("no variable %s", name)
			continue
		}
		if v.Type != "query" || v.Query != q || v.Datasource.UID != "${"+VarDatasource+"}" {
			t.Errorf("variable %s = %+v, want a query %s on ${%s}", name, v, q, VarDatasource)
		}
	}
	for _, name := range []string{VarNamespace, VarSLO} {
		if v := vars[name]; !v.Multi || !v.IncludeAll {
			t.Errorf("variable %s: multi %v, includeAll %v; want both", name, v.Multi, v.IncludeAll)
		}
	}
	builtin := map[string]bool{"__rate_interval": true, "__range": true, "__interval": true}
	for _, e := range m.expressions(t) {
		for _, sub := range grafanaVar.FindAllStringSubmatch(e.expr, -1) {
			if _, ok := vars[sub[1]]; !ok && !builtin[sub[1]] {
				t.Errorf("%s uses $%s, which is no variable: %s", e.where, sub[1], e.expr)
			}
		}
	}
}

// TestLayout: panel ids are unique; every panel and query reads the data
// source variable; the SLO row repeats per SLO, and each panel of it reads
// only the SLO of its row.
func TestLayout(t *testing.T) {
	m := load(t)
	ids := map[int]string{}
	inSLORow := false
	sloPanels := 0
	for _, p := range m.Panels {
		if other, dup := ids[p.ID]; dup {
			t.Errorf("panels %q and %q share id %d", other, p.Title, p.ID)
		}
		ids[p.ID] = p.Title
		if p.Type == "row" {
			if p.Collapsed || len(p.Panels) > 0 {
				t.Errorf("row %q is collapsed or holds its panels: Grafana shows an expanded row's panels only after it", p.Title)
			}
			inSLORow = p.Repeat == VarSLO
			continue
		}
		if p.Datasource.UID != "${"+VarDatasource+"}" {
			t.Errorf("panel %q reads data source %+v", p.Title, p.Datasource)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, q := range p.Targets {
			if q.Datasource.UID != "${"+VarDatasource+"}" {
				t.Errorf("panel %q query %s reads data source %+v", p.Title, q.RefID, q.Datasource)
			}
			if inSLORow && strings.Count(q.Expr, "$"+VarSLO) < strings.Count(q.Expr, "{") {
				t.Errorf("panel %q in the SLO row: a selector of query %s does not select $%s: %s", p.Title, q.RefID, VarSLO, q.Expr)
			}
		}
		if inSLORow {
			sloPanels++
		}
	}
	if want := 3 + 4; sloPanels != want { // freeze, rules, budget; one per burn-rate rule
		t.Errorf("the SLO row has %d panels, want %d", sloPanels, want)
	}
}

func TestWorkloadWebhookPath(t *testing.T) {
	if WorkloadWebhookPath != webhook.WorkloadPath {
		t.Errorf("WorkloadWebhookPath = %q, internal/webhook serves the release gate at %q", WorkloadWebhookPath, webhook.WorkloadPath)
	}
}

// TestConfigMap: a ConfigMap the sidecar loads, holding the dashboard JSON
// unchanged, small enough for kubectl apply's last-applied annotation.
func TestConfigMap(t *testing.T) {
	j, err := JSON()
	if err != nil {
		t.Fatal(err)
	}
	out, err := ConfigMap(j)
	if err != nil {
		t.Fatal(err)
	}
	var cm struct {
		APIVersion string `yaml:"apiVersion"`
		Kind       string `yaml:"kind"`
		Metadata   struct {
			Name      string            `yaml:"name"`
			Namespace string            `yaml:"namespace"`
			Labels    map[string]string `yaml:"labels"`
		} `yaml:"metadata"`
		Data map[string]string `yaml:"data"`
	}
	if err := yaml.Unmarshal(out, &cm); err != nil {
		t.Fatal(err)
	}
	if cm.APIVersion != "v1" || cm.Kind != "ConfigMap" || cm.Metadata.Name != "budgetgate-dashboard" || cm.Metadata.Namespace != "" {
		t.Errorf("ConfigMap is %s %s %s/%s, want v1 ConfigMap budgetgate-dashboard without a namespace",
			cm.APIVersion, cm.Kind, cm.Metadata.Namespace, cm.Metadata.Name)
	}
	if got := cm.Metadata.Labels["grafana_dashboard"]; got != "1" {
		t.Errorf("label grafana_dashboard = %q, want \"1\" (kube-prometheus-stack's sidecar default)", got)
	}
	if len(cm.Data) != 1 || cm.Data["budgetgate-dashboard.json"] != string(j) {
		t.Errorf("data keys %v: want budgetgate-dashboard.json holding the dashboard JSON unchanged", slices.Sorted(maps.Keys(cm.Data)))
	}
	if !json.Valid([]byte(cm.Data["budgetgate-dashboard.json"])) {
		t.Error("the ConfigMap's dashboard is not valid JSON")
	}
	// kubectl apply (client side) keeps the whole object in an annotation of at most 256 KiB.
	if len(out) > 256*1024-1024 {
		t.Errorf("the ConfigMap is %d bytes: too close to kubectl apply's 256 KiB annotation limit", len(out))
	}
}
