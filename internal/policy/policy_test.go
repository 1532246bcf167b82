package policy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/yaml"

	slov1alpha1 "github.com/budgetgate/budgetgate/api/v1alpha1"
	"github.com/budgetgate/budgetgate/internal/budget"
	"github.com/budgetgate/budgetgate/internal/sli"
)

func dec(s string) *slov1alpha1.Decimal { d := slov1alpha1.Decimal(s); return &d }

func TestFromSpec(t *testing.T) {
	zero := 0.0
	tests := []struct {
		name string
		spec slov1alpha1.ErrorBudgetPolicySpec
		want Policy
		err  string
	}{{
		name: "defaults applied",
		spec: slov1alpha1.ErrorBudgetPolicySpec{Rules: []slov1alpha1.PolicyRule{
			{Name: "fast-burn", BurnRate: &slov1alpha1.BurnRateCondition{LongWindow: "1h", ShortWindow: "5m", BudgetPercent: dec("2")}},
			{Name: "exhausted", BudgetRemainingBelow: dec("0"), Action: slov1alpha1.ActionWarn},
		}},
		want: Policy{
			Name: "p", Mode: slov1alpha1.ModeEnforce, ExemptReleaseClasses: []string{"hotfix", "security"},
			MaxExceptionDuration: 24 * time.Hour,
			Budget: budget.Policy{
				Name: "p", MinDuration: time.Hour, StaleHold: 30 * time.Minute, OnMissingData: budget.MissingDataRelease,
				ReleaseMargin: 0.05, MinEventsAuto: true,
				Rules: []budget.Rule{
					{Name: "fast-burn", Action: budget.ActionFreeze, BurnRate: &budget.BurnRateRule{LongWindow: time.Hour, ShortWindow: 5 * time.Minute, BudgetShare: 0.02}},
					{Name: "exhausted", Action: budget.ActionWarn, BudgetRemainingAtOrBelow: &zero},
				},
			},
		},
	}, {
		name: "everything set",
		spec: slov1alpha1.ErrorBudgetPolicySpec{
			Mode:                     slov1alpha1.ModeDryRun,
			Rules:                    []slov1alpha1.PolicyRule{{Name: "r", BurnRate: &slov1alpha1.BurnRateCondition{LongWindow: "2m", ShortWindow: "30s", Factor: dec("5")}}},
			Freeze:                   slov1alpha1.FreezeSettings{MinDuration: "1m", ReleaseWhen: slov1alpha1.ReleaseWhen{BudgetRemainingAbove: "0.1"}},
			ExemptReleaseClasses:     []string{"hotfix"},
			OnMissingData:            slov1alpha1.MissingDataHold,
			StaleHold:                "5m",
			MinEvents:                new(int64(100)),
			MaxExceptionDuration:     "4h",
			RequireExceptionApproval: true,
		},
		want: Policy{
			Name: "p", Mode: slov1alpha1.ModeDryRun, ExemptReleaseClasses: []string{"hotfix"}, MaxExceptionDuration: 4 * time.Hour,
			RequireExceptionApproval: true,
			Budget: budget.Policy{
				Name: "p", MinDuration: time.Minute, ReleaseMargin: 0.1, StaleHold: 5 * time.Minute,
				OnMissingData: budget.MissingDataHold, MinEvents: 100,
				Rules: []budget.Rule{{Name: "r", Action: budget.ActionFreeze, BurnRate: &budget.BurnRateRule{LongWindow: 2 * time.Minute, ShortWindow: 30 * time.Second, Factor: 5}}},
			},
		},
	}, {
		name: "windows in the wrong order",
		spec: slov1alpha1.ErrorBudgetPolicySpec{Rules: []slov1alpha1.PolicyRule{{Name: "r", BurnRate: &slov1alpha1.BurnRateCondition{LongWindow: "5m", ShortWindow: "1h", Factor: dec("5")}}}},
		err:  "spec.rules[0].burnRate: shortWindow 1h must be shorter than longWindow 5m",
	}, {
		name: "budget bound that always fires",
		spec: slov1alpha1.ErrorBudgetPolicySpec{Rules: []slov1alpha1.PolicyRule{{Name: "r", BudgetRemainingBelow: dec("1.5")}}},
		err:  `spec.rules[0].budgetRemainingBelow: "1.5" must be below 1 (the whole budget), or the rule would always fire`,
	}, {
		name: "release margin that never lifts",
		spec: slov1alpha1.ErrorBudgetPolicySpec{
			Rules:  []slov1alpha1.PolicyRule{{Name: "r", BudgetRemainingBelow: dec("0")}},
			Freeze: slov1alpha1.FreezeSettings{ReleaseWhen: slov1alpha1.ReleaseWhen{BudgetRemainingAbove: "1"}},
		},
		err: `spec.freeze.releaseWhen.budgetRemainingAbove: "1" must be below 1 (the whole budget), or a budget freeze could never lift`,
	}, {
		name: "both factor and budgetPercent",
		spec: slov1alpha1.ErrorBudgetPolicySpec{Rules: []slov1alpha1.PolicyRule{{Name: "r", BurnRate: &slov1alpha1.BurnRateCondition{LongWindow: "1h", ShortWindow: "5m", Factor: dec("5"), BudgetPercent: dec("2")}}}},
		err:  "spec.rules[0].burnRate: set exactly one of factor or budgetPercent",
	}, {
		name: "bad duration",
		spec: slov1alpha1.ErrorBudgetPolicySpec{Rules: []slov1alpha1.PolicyRule{{Name: "r", BudgetRemainingBelow: dec("0")}}, StaleHold: "soon"},
		err:  `spec.staleHold: "soon" is not a duration such as 5m, 1h or 30d: not a valid duration string: "soon"`,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := FromSpec("p", &tt.spec)
			if tt.err != "" {
				if err == nil || err.Error() != tt.err {
					t.Fatalf("error = %v\nwant    %s", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("FromSpec() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestBuiltinMatchesSample(t *testing.T) {
	// config/samples' "default" policy is documented as the built-in one written out.
	raw, err := os.ReadFile(filepath.Join("..", "..", "config", "samples", "slo_v1alpha1_errorbudgetpolicy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	ebp := &slov1alpha1.ErrorBudgetPolicy{}
	if err := yaml.UnmarshalStrict(raw, ebp); err != nil {
		t.Fatal(err)
	}
	sample, err := FromSpec(ebp.Name, &ebp.Spec)
	if err != nil {
		t.Fatal(err)
	}
	b := Builtin()
	sample.Name, sample.Budget.Name = b.Name, b.Budget.Name
	if diff := cmp.Diff(b, sample); diff != "" {
		t.Errorf("the sample policy differs from the built-in one (-built-in +sample):\n%s", diff)
	}
	o := budget.Objective{Target: 0.999, Window: 30 * 24 * time.Hour}
	var got []float64
	for _, r := range b.Budget.Rules {
		if r.BurnRate != nil {
			got = append(got, float64(int(r.BurnRate.Threshold(o)*100+0.5))/100)
		}
	}
	if diff := cmp.Diff([]float64{14.4, 6, 3, 1}, got); diff != "" {
		t.Errorf("thresholds at 30d (-want +got):\n%s", diff)
	}
}

func TestObjective(t *testing.T) {
	tests := []struct {
		target, window string
		want           budget.Objective
		err            string
	}{
		{"99.9", "30d", budget.Objective{Target: 0.999, Window: 30 * 24 * time.Hour}, ""},
		{"99", "", budget.Objective{Target: 0.99, Window: 30 * 24 * time.Hour}, ""},
		{"100", "30d", budget.Objective{}, `spec.target: "100": target must be below 100: a 100% objective leaves no error budget to spend; write e.g. "99.9" or "99.99"`},
		{"0.999", "30d", budget.Objective{}, `spec.target: "0.999": target is a percentage, not a fraction: for 99.9% write "99.9"`},
		{"0.95", "30d", budget.Objective{}, `spec.target: "0.95": target is a percentage, not a fraction: for 95% write "95"`},
		{"0.5", "30d", budget.Objective{}, `spec.target: "0.5": target is a percentage, not a fraction: for 50% write "50"`},
		{"0.05", "30d", budget.Objective{}, `spec.target: "0.05": target is a percentage of good events, at least 50, e.g. "99.9": below 50 the objective would allow more failed events than good ones`},
		{"9.99", "30d", budget.Objective{}, `spec.target: "9.99": target is a percentage of good events, at least 50`},
		{"50", "7d", budget.Objective{Target: 0.5, Window: 7 * 24 * time.Hour}, ""},
		{"abc", "30d", budget.Objective{}, `spec.target: "abc" is not a decimal number`},
		{"99", "30x", budget.Objective{}, `spec.window: "30x" is not a duration`},
	}
	for _, tt := range tests {
		spec := &slov1alpha1.ServiceLevelObjectiveSpec{Target: slov1alpha1.Decimal(tt.target), Window: slov1alpha1.Duration(tt.window)}
		got, err := Objective(spec)
		if tt.err != "" {
			if err == nil || !strings.HasPrefix(err.Error(), tt.err) {
				t.Errorf("Objective(%q, %q) error = %v, want %q", tt.target, tt.window, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("Objective(%q, %q) = %+v, %v; want %+v", tt.target, tt.window, got, err, tt.want)
		}
	}
}

func TestIndicatorCarriesEveryField(t *testing.T) {
	in := &slov1alpha1.Indicator{Query: "sum(rate(e[$window]))/sum(rate(t[$window]))", QueryEvents: "sum(increase(t[$window]))"}
	got, err := Indicator(in)
	if err != nil {
		t.Fatal(err)
	}
	if got.Query != in.Query || got.QueryEvents != in.QueryEvents {
		t.Errorf("Indicator() = %+v, want query and queryEvents carried over", got)
	}
}

func TestPolicyWarnings(t *testing.T) {
	burn := func(name, factor string, action slov1alpha1.RuleAction) slov1alpha1.PolicyRule {
		return slov1alpha1.PolicyRule{Name: name, Action: action,
			BurnRate: &slov1alpha1.BurnRateCondition{LongWindow: "1h", ShortWindow: "5m", Factor: new(slov1alpha1.Decimal(factor))}}
	}
	bound := func(name, below string, action slov1alpha1.RuleAction) slov1alpha1.PolicyRule {
		return slov1alpha1.PolicyRule{Name: name, Action: action, BudgetRemainingBelow: new(slov1alpha1.Decimal(below))}
	}
	tests := []struct {
		name   string
		rules  []slov1alpha1.PolicyRule
		margin slov1alpha1.Decimal
		want   []string
	}{
		{"the built-in rules", []slov1alpha1.PolicyRule{burn("fast", "14.4", ""), bound("spent", "0", "")}, "0.05", nil},
		{"no Freeze rule", []slov1alpha1.PolicyRule{burn("fast", "14.4", slov1alpha1.ActionWarn)}, "", []string{
			"spec.rules: no rule has action Freeze, so SLOs under this policy never freeze releases; " +
				"set action: Freeze on the rules that should stop releases (mode: DryRun tries a policy out without stopping them)"}},
		{"a Freeze factor below 1", []slov1alpha1.PolicyRule{burn("warn", "0.5", slov1alpha1.ActionWarn), burn("fast", "0.144", "")}, "", []string{
			`spec.rules[1].burnRate.factor: "0.144" is below 1, so rule "fast" fires while the budget is spent more slowly than the SLO window allows, ` +
				`freezing SLOs that meet their objective; a factor is a multiple of that even pace, e.g. "14.4" (2% of a 30d budget in 1h)`}},
		{"a margin not above the bound", []slov1alpha1.PolicyRule{bound("low", "0.1", ""), bound("warn", "0.2", slov1alpha1.ActionWarn)}, "0.1", []string{
			`spec.freeze.releaseWhen.budgetRemainingAbove: "0.1" is not above the bound "0.1" of rule "low", so its freeze lifts as soon as ` +
				`the budget is back above that bound, without hysteresis; write a margin above it, e.g. "0.15"`}},
		{"the default margin", []slov1alpha1.PolicyRule{bound("low", "0.2", "")}, "", []string{
			`spec.freeze.releaseWhen.budgetRemainingAbove: "0.05" (the default) is not above the bound "0.2" of rule "low", so its freeze lifts as soon as ` +
				`the budget is back above that bound, without hysteresis; write a margin above it, e.g. "0.25"`}},
	}
	for _, tt := range tests {
		spec := &slov1alpha1.ErrorBudgetPolicySpec{Rules: tt.rules}
		spec.Freeze.ReleaseWhen.BudgetRemainingAbove = tt.margin
		p, err := FromSpec("p", spec)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if diff := cmp.Diff(tt.want, PolicyWarnings(spec, p)); diff != "" {
			t.Errorf("%s: PolicyWarnings (-want +got):\n%s", tt.name, diff)
		}
	}
}

func TestLongestBurnWindow(t *testing.T) {
	rule, w := LongestBurnWindow(Builtin().Budget)
	if rule != "chronic-burn" || w != 3*24*time.Hour {
		t.Errorf("LongestBurnWindow(built-in) = %q, %v; want chronic-burn, 72h", rule, w)
	}
	if rule, w := LongestBurnWindow(budget.Policy{}); rule != "" || w != 0 {
		t.Errorf("LongestBurnWindow(no rules) = %q, %v", rule, w)
	}
}

func TestSpecWarningsNameTheField(t *testing.T) {
	spec := &slov1alpha1.ServiceLevelObjectiveSpec{Target: "90", Window: "30d"}
	o, err := Objective(spec)
	if err != nil {
		t.Fatal(err)
	}
	ind := sli.Indicator{Query: "sum(rate(e[$window])) / sum(rate(t[$window]))"}
	got := SpecWarnings(spec, o, ind, Builtin())
	want := []string{
		`spec.target: rule "fast-burn" can never fire: its threshold 14.40x exceeds the highest possible burn rate 10.00x of a 90% target (needs a target of at least 93.06%)`,
		"spec.indicator.query has no queryEvents: budgetgate cannot count the events of a window, so the policy's low-traffic guard (minEvents) does not apply and one failed request in a quiet window can freeze; add queryEvents, e.g. sum(increase(http_requests_total[$window]))",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("SpecWarnings (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(len(got), len(Warnings(spec, o, ind, Builtin()))); diff != "" {
		t.Errorf("SpecWarnings and Warnings differ in number: %s", diff)
	}
}

func TestAlerting(t *testing.T) {
	spec := &slov1alpha1.ErrorBudgetPolicySpec{
		Rules: []slov1alpha1.PolicyRule{{Name: "exhausted", Action: slov1alpha1.ActionFreeze, BudgetRemainingBelow: new(slov1alpha1.Decimal("0"))}},
	}
	p, err := FromSpec("p", spec)
	if err != nil || p.Alerting || p.Severities != nil {
		t.Fatalf("no alerting field: %+v, %v; want off", p, err)
	}
	spec.Alerting = &slov1alpha1.PolicyAlerting{Enabled: true, Severities: map[string]slov1alpha1.Severity{"exhausted": "critical"}}
	if p, err = FromSpec("p", spec); err != nil || !p.Alerting || p.Severities["exhausted"] != "critical" {
		t.Fatalf("alerting on: %+v, %v", p, err)
	}
	spec.Alerting.Severities["exhaustd"] = "page"
	if _, err := FromSpec("p", spec); err == nil || !strings.Contains(err.Error(), `spec.alerting.severities: "exhaustd" is not a rule of this policy`) {
		t.Errorf("a severity for an unknown rule: %v", err)
	}

	slo := &slov1alpha1.ServiceLevelObjective{}
	on, off := Policy{Alerting: true}, Policy{}
	for _, tc := range []struct {
		slo  *bool
		pol  Policy
		want bool
	}{{nil, off, false}, {nil, on, true}, {new(true), off, true}, {new(false), on, false}} {
		slo.Spec.Alerting = nil
		if tc.slo != nil {
			slo.Spec.Alerting = &slov1alpha1.SLOAlerting{Enabled: tc.slo}
		}
		if got := AlertingEnabled(slo, tc.pol); got != tc.want {
			t.Errorf("SLO %v, policy %v: %v, want %v", tc.slo, tc.pol.Alerting, got, tc.want)
		}
	}
	if AlertingEnabled(slo, Builtin()) {
		t.Error("the built-in policy alerts by default")
	}
}
