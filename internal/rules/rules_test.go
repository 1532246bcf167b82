package rules

import (
	"bytes"
	"flag"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	slov1alpha1 "github.com/budgetgate/budgetgate/api/v1alpha1"
	"github.com/budgetgate/budgetgate/internal/budget"
	"github.com/budgetgate/budgetgate/internal/policy"
	prometheustest "github.com/budgetgate/budgetgate/test/prometheus"
)

var update = flag.Bool("update", false, "rewrite the golden rule files in testdata")

const day = 24 * time.Hour

func newSLO(ns, name, target, window string, ind slov1alpha1.Indicator) *slov1alpha1.ServiceLevelObjective {
	return &slov1alpha1.ServiceLevelObjective{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: slov1alpha1.ServiceLevelObjectiveSpec{
			Target: slov1alpha1.Decimal(target), Window: slov1alpha1.Duration(window), Indicator: ind,
		},
	}
}

func ratioIndicator(job string) slov1alpha1.Indicator {
	return slov1alpha1.Indicator{Ratio: &slov1alpha1.RatioIndicator{
		Errors: `http_requests_total{job="` + job + `",code=~"5.."}`,
		Total:  `http_requests_total{job="` + job + `"}`,
	}}
}

func latencyIndicator() slov1alpha1.Indicator {
	return slov1alpha1.Indicator{Latency: &slov1alpha1.LatencyIndicator{
		Success: `http_request_duration_seconds_bucket{job="checkout",le="0.3"}`,
		Total:   `http_request_duration_seconds_count{job="checkout"}`,
	}}
}

func ptr[T any](v T) *T { return &v }

// customPolicy: explicit factors, a Warn burn rule and a Warn budget rule.
func customPolicy(t *testing.T) policy.Policy {
	t.Helper()
	d := func(s string) *slov1alpha1.Decimal { return ptr(slov1alpha1.Decimal(s)) }
	p, err := policy.FromSpec("checkout-policy", &slov1alpha1.ErrorBudgetPolicySpec{
		MinEvents: ptr(int64(50)),
		Rules: []slov1alpha1.PolicyRule{
			{Name: "fast", Action: slov1alpha1.ActionFreeze, BurnRate: &slov1alpha1.BurnRateCondition{
				LongWindow: "1h", ShortWindow: "5m", Factor: d("10")}},
			{Name: "slow", Action: slov1alpha1.ActionWarn, BurnRate: &slov1alpha1.BurnRateCondition{
				LongWindow: "1d", ShortWindow: "2h", BudgetPercent: d("10")}},
			{Name: "budget-low", Action: slov1alpha1.ActionWarn, BudgetRemainingBelow: d("0.25")},
			{Name: "budget-exhausted", BudgetRemainingBelow: d("0")},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

type genCase struct {
	name string
	slo  *slov1alpha1.ServiceLevelObjective
	pol  func(*testing.T) policy.Policy
	opts Options
	// want, spelled out:
	windows    []time.Duration // recorded error ratios, the period last
	records    []string        // every recorded series, in order
	alerts     map[string]string
	thresholds map[string]float64 // burn threshold of each burn alert
	budgetAt   map[string]float64 // bound of each budget alert
	// margin of each budget Freeze alert with hysteresis (releaseMargin)
	margins   map[string]float64
	minEvents float64 // low-traffic guard in the alerts (0: none)
}

func builtin(*testing.T) policy.Policy { return policy.Builtin() }

func sliRecords(base string, burn []string, period string, events bool) []string {
	var out []string
	for _, w := range burn {
		out = append(out, SLIErrorRatio+w)
		if events {
			out = append(out, SLIEvents+w)
		}
		if w == base && events {
			out = append(out, SLIErrors+w)
		}
	}
	out = append(out, SLIErrorRatio+period)
	if events {
		out = append(out, SLIEvents+period)
	}
	return append(out, Objective, ErrorBudget, TimePeriodDays, CurrentBurnRate, PeriodBurnRate, PeriodBudgetRemaining, Info)
}

var workbookWindows = []string{"5m", "30m", "1h", "2h", "6h", "1d", "3d"}

var workbookAlerts = map[string]string{
	"SLOFastBurn": "page", "SLOSlowBurn": "page", "SLOGradualBurn": "ticket", "SLOChronicBurn": "ticket", "SLOBudgetExhausted": "page",
}

func genCases(t *testing.T) []genCase {
	query := slov1alpha1.Indicator{
		Query:       `sum(rate(grpc_server_handled_total{grpc_service="checkout",grpc_code!="OK"}[$window])) / sum(rate(grpc_server_handled_total{grpc_service="checkout"}[$window]))`,
		QueryEvents: `sum(increase(grpc_server_handled_total{grpc_service="checkout"}[$window]))`,
	}
	queryNoEvents := slov1alpha1.Indicator{Query: query.Query}
	return []genCase{{
		name: "ratio-30d", slo: newSLO("shop", "checkout-availability", "99.9", "30d", ratioIndicator("checkout")), pol: builtin,
		windows: []time.Duration{5 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour, 6 * time.Hour, day, 3 * day, 30 * day},
		records: sliRecords("5m", workbookWindows, "30d", true), alerts: workbookAlerts,
		// The Workbook's figures at 30d.
		thresholds: map[string]float64{"SLOFastBurn": 14.4, "SLOSlowBurn": 6, "SLOGradualBurn": 3, "SLOChronicBurn": 1},
		budgetAt:   map[string]float64{"SLOBudgetExhausted": 0},
		margins:    map[string]float64{"SLOBudgetExhausted": 0.05},
		minEvents:  167, // one error in 166 is a burn of 6.02 at 99.9%
	}, {
		name: "latency-28d", slo: newSLO("shop", "checkout-latency", "99", "28d", latencyIndicator()), pol: builtin,
		windows: []time.Duration{5 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour, 6 * time.Hour, day, 3 * day, 28 * day},
		records: sliRecords("5m", workbookWindows, "4w", true), alerts: workbookAlerts,
		thresholds: map[string]float64{"SLOFastBurn": 13.44, "SLOSlowBurn": 5.6, "SLOGradualBurn": 2.8, "SLOChronicBurn": 0.1 * 28 / 3},
		budgetAt:   map[string]float64{"SLOBudgetExhausted": 0},
		margins:    map[string]float64{"SLOBudgetExhausted": 0.05},
		minEvents:  18, // ⌊1 ÷ (5.6 × 0.01)⌋ + 1
	}, {
		name: "query-7d", slo: newSLO("shop", "checkout-grpc", "99.5", "7d", query), pol: builtin,
		windows: []time.Duration{5 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour, 6 * time.Hour, day, 3 * day, 7 * day},
		records: sliRecords("5m", workbookWindows, "1w", true), alerts: workbookAlerts,
		thresholds: map[string]float64{"SLOFastBurn": 3.36, "SLOSlowBurn": 1.4, "SLOGradualBurn": 0.7, "SLOChronicBurn": 0.1 * 7 / 3},
		budgetAt:   map[string]float64{"SLOBudgetExhausted": 0},
		margins:    map[string]float64{"SLOBudgetExhausted": 0.05},
		minEvents:  143, // ⌊1 ÷ (1.4 × 0.005)⌋ + 1
	}, {
		name: "query-without-events-30d", slo: newSLO("shop", "checkout-grpc-raw", "99.9", "30d", queryNoEvents), pol: builtin,
		windows: []time.Duration{5 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour, 6 * time.Hour, day, 3 * day, 30 * day},
		records: sliRecords("5m", workbookWindows, "30d", false), alerts: workbookAlerts,
		thresholds: map[string]float64{"SLOFastBurn": 14.4, "SLOSlowBurn": 6, "SLOGradualBurn": 3, "SLOChronicBurn": 1},
		budgetAt:   map[string]float64{"SLOBudgetExhausted": 0},
		margins:    map[string]float64{"SLOBudgetExhausted": 0.05},
		minEvents:  0, // a query without queryEvents cannot count events
	}, {
		name: "custom-policy-30d", slo: newSLO("shop", "checkout-availability", "99.9", "30d", ratioIndicator("checkout")),
		pol: customPolicy, opts: Options{Service: "checkout", Severities: map[string]string{"budget-low": "info"}},
		windows:    []time.Duration{5 * time.Minute, time.Hour, 2 * time.Hour, day, 30 * day},
		records:    sliRecords("5m", []string{"5m", "1h", "2h", "1d"}, "30d", true),
		alerts:     map[string]string{"SLOFast": "page", "SLOSlow": "ticket", "SLOBudgetLow": "info", "SLOBudgetExhausted": "page"},
		thresholds: map[string]float64{"SLOFast": 10, "SLOSlow": 3},
		budgetAt:   map[string]float64{"SLOBudgetLow": 0.25, "SLOBudgetExhausted": 0},
		margins:    map[string]float64{"SLOBudgetExhausted": 0.05}, // budget-low warns: no hysteresis
		minEvents:  50,
	}}
}

var bound = regexp.MustCompile(`(>=|<=) ([-+0-9.eInf]+)`)

func TestGenerate(t *testing.T) {
	for _, tc := range genCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.pol(t)
			groups, err := Generate(tc.slo, p, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			ws, err := Windows(tc.slo, p)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.windows, ws); diff != "" {
				t.Errorf("windows (-want +got):\n%s", diff)
			}
			service := tc.opts.Service
			if service == "" {
				service = tc.slo.Namespace
			}
			id := service + "-" + tc.slo.Name
			if len(groups) != 2 || groups[0].Name != GroupSLIPrefix+id || groups[1].Name != GroupMetaPrefix+id {
				t.Fatalf("groups %v", names(groups))
			}
			var records []string
			var alertRules []monitoringv1.Rule
			for _, g := range groups {
				for _, r := range g.Rules {
					if r.Alert != "" {
						alertRules = append(alertRules, r)
						continue
					}
					records = append(records, r.Record)
					for k, v := range map[string]string{LabelID: id, LabelService: service, LabelSLO: tc.slo.Name} {
						if r.Labels[k] != v {
							t.Errorf("%s: label %s = %q, want %q", r.Record, k, r.Labels[k], v)
						}
					}
				}
			}
			if diff := cmp.Diff(tc.records, records); diff != "" {
				t.Errorf("recorded series (-want +got):\n%s", diff)
			}
			alerts := map[string]string{}
			for _, r := range alertRules {
				alerts[r.Alert] = r.Labels[LabelAlertSeverity]
				if r.Labels[LabelSeverity] != r.Labels[LabelAlertSeverity] {
					t.Errorf("%s: sloth_severity %q, severity %q", r.Alert, r.Labels[LabelSeverity], r.Labels[LabelAlertSeverity])
				}
				expr := r.Expr.String()
				m := bound.FindAllStringSubmatch(expr, -1)
				var got []float64
				for _, x := range m {
					f, err := strconv.ParseFloat(x[2], 64)
					if err != nil {
						t.Fatalf("%s: %q: %v", r.Alert, x[2], err)
					}
					got = append(got, f)
				}
				var want []float64
				if th, ok := tc.thresholds[r.Alert]; ok {
					// long and short window: threshold, then the guard.
					for range 2 {
						want = append(want, budget.AtLeastBound(th))
						if tc.minEvents > 0 {
							want = append(want, tc.minEvents)
						}
					}
				} else if b, ok := tc.budgetAt[r.Alert]; ok {
					want = append(want, budget.AtMostBound(b))
					if tc.minEvents > 0 {
						want = append(want, tc.minEvents)
					}
					if m, ok := tc.margins[r.Alert]; ok {
						want = append(want, budget.AtMostBound(m))
						if tc.minEvents > 0 {
							want = append(want, tc.minEvents)
						}
					}
				} else {
					t.Errorf("unexpected alert %s", r.Alert)
				}
				if !cmp.Equal(want, got, cmp.Comparer(func(a, b float64) bool { return math.Abs(a-b) <= 1e-12*math.Max(1, math.Abs(a)) })) {
					t.Errorf("%s: bounds %v, want %v in\n%s", r.Alert, got, want, expr)
				}
			}
			if diff := cmp.Diff(tc.alerts, alerts); diff != "" {
				t.Errorf("alerts and severities (-want +got):\n%s", diff)
			}

			file, err := RuleFile(groups)
			if err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", tc.name+".yaml")
			if *update {
				if err := os.WriteFile(golden, file, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./internal/rules -update)", err)
			}
			if diff := cmp.Diff(string(want), string(file)); diff != "" {
				t.Errorf("%s differs (-want +got; go test ./internal/rules -update rewrites it):\n%s", golden, diff)
			}
		})
	}
}

func names(gs []monitoringv1.RuleGroup) []string {
	var out []string
	for _, g := range gs {
		out = append(out, g.Name)
	}
	return out
}

func TestGenerateRejects(t *testing.T) {
	bad := customPolicy(t)
	bad.Budget.Rules = append(bad.Budget.Rules, budget.Rule{Name: "fast_", Action: budget.ActionWarn,
		BurnRate: &budget.BurnRateRule{LongWindow: time.Hour, ShortWindow: 5 * time.Minute, Factor: 2}})
	long := policy.Builtin()
	for _, tc := range []struct {
		name string
		slo  *slov1alpha1.ServiceLevelObjective
		pol  policy.Policy
		want string
	}{
		{"target", newSLO("shop", "a", "0.999", "30d", ratioIndicator("a")), policy.Builtin(), "target is a percentage"},
		{"indicator", newSLO("shop", "a", "99.9", "30d", slov1alpha1.Indicator{}), policy.Builtin(), "exactly one of"},
		{"window shorter than the policy's", newSLO("shop", "a", "99.9", "2d", ratioIndicator("a")), long, `longWindow 3d is longer than the SLO window 2d`},
		{"alert names collide", newSLO("shop", "a", "99.9", "30d", ratioIndicator("a")), bad, `both make alert SLOFast`},
	} {
		_, err := Generate(tc.slo, tc.pol, Options{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want it to contain %q", tc.name, err, tc.want)
		}
	}
}

func TestAlertName(t *testing.T) {
	for in, want := range map[string]string{"fast-burn": "SLOFastBurn", "budget-exhausted": "SLOBudgetExhausted", "x": "SLOX", "a1-b2": "SLOA1B2"} {
		if got := AlertName(in); got != want {
			t.Errorf("AlertName(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestPromtoolCheckRules: every golden rule file passes promtool check rules.
func TestPromtoolCheckRules(t *testing.T) {
	promtool := prometheustest.Require(t).Promtool
	files, err := filepath.Glob(filepath.Join("testdata", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files (%v)", err)
	}
	for _, f := range files {
		if strings.HasSuffix(f, ".test.yaml") {
			continue
		}
		out, err := exec.Command(promtool, "check", "rules", f).CombinedOutput()
		if err != nil {
			t.Errorf("promtool check rules %s: %v\n%s", f, err, out)
			continue
		}
		if !bytes.Contains(out, []byte("SUCCESS")) {
			t.Errorf("promtool check rules %s:\n%s", f, out)
		}
		t.Logf("promtool check rules %s: %s", f, strings.TrimSpace(string(out)))
	}
}

// An SLO's alert labels reach every alert, and never replace the labels the
// generator sets (routing by severity cannot be spoofed from the SLO).
func TestAlertLabels(t *testing.T) {
	groups, err := Generate(newSLO("shop", "a", "99.9", "30d", ratioIndicator("a")), policy.Builtin(), Options{
		Labels:     map[string]string{"team": "checkout", LabelAlertSeverity: "info", LabelRule: "nothing"},
		Severities: map[string]string{"slow-burn": "critical"},
	})
	if err != nil {
		t.Fatal(err)
	}
	alerts := 0
	for _, g := range groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				if r.Labels["team"] != "" {
					t.Errorf("recording rule %s carries the alert label", r.Record)
				}
				continue
			}
			alerts++
			if r.Labels["team"] != "checkout" {
				t.Errorf("%s: no team label: %v", r.Alert, r.Labels)
			}
			want := SeverityPage
			switch {
			case r.Labels[LabelRule] == "slow-burn":
				want = "critical"
			case r.Labels[LabelAction] == "Warn":
				want = SeverityTicket
			}
			if r.Labels[LabelAlertSeverity] != want || r.Labels[LabelRule] == "nothing" {
				t.Errorf("%s: labels %v: the SLO's labels replaced the generator's", r.Alert, r.Labels)
			}
		}
	}
	if alerts != len(policy.Builtin().Budget.Rules) {
		t.Errorf("%d alerts, want one per rule of the built-in policy", alerts)
	}
}
