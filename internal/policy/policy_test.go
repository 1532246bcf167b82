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
		{"100", "30d", budget.Objective{}, "strictly between 0 and 100"},
		{"abc", "30d", budget.Objective{}, "is not a decimal number"},
		{"99", "30x", budget.Objective{}, "is not a duration"},
	}
	for _, tt := range tests {
		spec := &slov1alpha1.ServiceLevelObjectiveSpec{Target: slov1alpha1.Decimal(tt.target), Window: slov1alpha1.Duration(tt.window)}
		got, err := Objective(spec)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
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
