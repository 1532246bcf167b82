package policy

import (
	"slices"
	"testing"
	"time"

	slov1alpha1 "github.com/budgetgate/budgetgate/api/v1alpha1"
	"github.com/budgetgate/budgetgate/internal/budget"
)

// platformSpec is the bound policy of the table below: fast burn as a factor,
// slow burn as a budget share, and a budget-exhausted rule.
func platformSpec() slov1alpha1.ErrorBudgetPolicySpec {
	return slov1alpha1.ErrorBudgetPolicySpec{
		Mode: slov1alpha1.ModeEnforce,
		Rules: []slov1alpha1.PolicyRule{
			{Name: "fast-burn", BurnRate: &slov1alpha1.BurnRateCondition{LongWindow: "1h", ShortWindow: "5m", Factor: dec("14.4")}},
			{Name: "slow-burn", BurnRate: &slov1alpha1.BurnRateCondition{LongWindow: "6h", ShortWindow: "30m", BudgetPercent: dec("5")}},
			{Name: "budget-exhausted", BudgetRemainingBelow: dec("0")},
			{Name: "slow-warn", Action: slov1alpha1.ActionWarn, BurnRate: &slov1alpha1.BurnRateCondition{LongWindow: "1d", ShortWindow: "2h", Factor: dec("3")}},
		},
		Freeze:               slov1alpha1.FreezeSettings{MinDuration: "1h", ReleaseWhen: slov1alpha1.ReleaseWhen{BudgetRemainingAbove: "0.05"}},
		ExemptReleaseClasses: []string{"hotfix", "security"},
		MaxExceptionDuration: "24h",
	}
}

func mustPolicy(t *testing.T, name string, spec slov1alpha1.ErrorBudgetPolicySpec) Policy {
	t.Helper()
	p, err := FromSpec(name, &spec)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return p
}

func TestWeaknesses(t *testing.T) {
	d30 := budget.Objective{Target: 0.999, Window: 30 * 24 * time.Hour}
	d7 := budget.Objective{Target: 0.999, Window: 7 * 24 * time.Hour}
	with := func(f func(*slov1alpha1.ErrorBudgetPolicySpec)) slov1alpha1.ErrorBudgetPolicySpec {
		s := platformSpec()
		f(&s)
		return s
	}
	tests := []struct {
		name      string
		candidate slov1alpha1.ErrorBudgetPolicySpec
		base      slov1alpha1.ErrorBudgetPolicySpec // platformSpec() when zero
		objective budget.Objective
		want      []string
	}{
		{name: "the same policy", candidate: platformSpec(), objective: d30},
		{name: "a lower threshold over the same windows", objective: d30, candidate: with(func(s *slov1alpha1.ErrorBudgetPolicySpec) {
			s.Rules[0].BurnRate.Factor = dec("10")
		})},
		{name: "one more Freeze rule, a longer hold, fewer exempt classes, a shorter exception bound, approval", objective: d30,
			candidate: with(func(s *slov1alpha1.ErrorBudgetPolicySpec) {
				s.Rules = append(s.Rules, slov1alpha1.PolicyRule{Name: "low-budget", BudgetRemainingBelow: dec("0.25")})
				s.Freeze.MinDuration = "4h"
				s.ExemptReleaseClasses = []string{"security"}
				s.MaxExceptionDuration = "2h"
				s.RequireExceptionApproval = true
				s.OnMissingData = slov1alpha1.MissingDataHold
			})},
		{name: "Enforce over a DryRun base", objective: d30, candidate: platformSpec(),
			base: with(func(s *slov1alpha1.ErrorBudgetPolicySpec) { s.Mode = slov1alpha1.ModeDryRun })},
		{name: "DryRun over an Enforce base", objective: d30,
			candidate: with(func(s *slov1alpha1.ErrorBudgetPolicySpec) { s.Mode = slov1alpha1.ModeDryRun }),
			want:      []string{"mode DryRun is weaker than Enforce"}},
		{name: "a higher threshold", objective: d30,
			candidate: with(func(s *slov1alpha1.ErrorBudgetPolicySpec) { s.Rules[0].BurnRate.Factor = dec("20") }),
			want:      []string{`no Freeze rule fires whenever rule "fast-burn" (burn rate ≥ 14.4x over 1h and 5m) does`}},
		{name: "the same threshold over other windows", objective: d30,
			candidate: with(func(s *slov1alpha1.ErrorBudgetPolicySpec) { s.Rules[0].BurnRate.ShortWindow = "10m" }),
			want:      []string{`no Freeze rule fires whenever rule "fast-burn" (burn rate ≥ 14.4x over 1h and 5m) does`}},
		{name: "a Freeze rule turned into Warn", objective: d30,
			candidate: with(func(s *slov1alpha1.ErrorBudgetPolicySpec) { s.Rules[2].Action = slov1alpha1.ActionWarn }),
			want:      []string{`no Freeze rule fires whenever rule "budget-exhausted" (budget remaining ≤ 0) does`}},
		{name: "a Warn rule dropped", objective: d30,
			candidate: with(func(s *slov1alpha1.ErrorBudgetPolicySpec) { s.Rules = s.Rules[:3] })},
		{name: "factor 6 for 5% over 6h: the same threshold at 30d", objective: d30,
			candidate: with(func(s *slov1alpha1.ErrorBudgetPolicySpec) {
				s.Rules[1].BurnRate.BudgetPercent, s.Rules[1].BurnRate.Factor = nil, dec("6")
			})},
		{name: "factor 6 for 5% over 6h: weaker at 7d, where 5% is 1.4x", objective: d7,
			candidate: with(func(s *slov1alpha1.ErrorBudgetPolicySpec) {
				s.Rules[1].BurnRate.BudgetPercent, s.Rules[1].BurnRate.Factor = nil, dec("6")
			}),
			want: []string{`no Freeze rule fires whenever rule "slow-burn" (burn rate ≥ 1.4x over 6h and 30m) does`}},
		{name: "a budget bound further from zero", objective: d30,
			candidate: with(func(s *slov1alpha1.ErrorBudgetPolicySpec) { s.Rules[2].BudgetRemainingBelow = dec("0.1") })},
		{name: "a budget bound closer to zero", objective: d30, candidate: platformSpec(),
			base: with(func(s *slov1alpha1.ErrorBudgetPolicySpec) { s.Rules[2].BudgetRemainingBelow = dec("0.1") }),
			want: []string{`no Freeze rule fires whenever rule "budget-exhausted" (budget remaining ≤ 0.1) does`}},
		{name: "shorter holds, less hysteresis, shorter staleHold", objective: d30,
			candidate: with(func(s *slov1alpha1.ErrorBudgetPolicySpec) {
				s.Freeze.MinDuration = "30m"
				s.Freeze.ReleaseWhen.BudgetRemainingAbove = "0"
				s.StaleHold = "5m"
			}),
			want: []string{
				"freeze.minDuration 30m is shorter than 1h",
				"freeze.releaseWhen.budgetRemainingAbove 0 is below 0.05",
				"staleHold 5m is shorter than 30m",
			}},
		{name: "Release without data under a Hold base", objective: d30, candidate: platformSpec(),
			base: with(func(s *slov1alpha1.ErrorBudgetPolicySpec) { s.OnMissingData = slov1alpha1.MissingDataHold }),
			want: []string{"onMissingData Release is weaker than Hold"}},
		{name: "a higher low-traffic guard", objective: d30,
			candidate: with(func(s *slov1alpha1.ErrorBudgetPolicySpec) { s.MinEvents = new(int64(1000)) }),
			want:      []string{"the low-traffic guard (minEvents) of 1000 events is above 167; write minEvents: 167 or less"}},
		{name: "a lower threshold raises the automatic guard: weaker in quiet windows", objective: d30,
			candidate: with(func(s *slov1alpha1.ErrorBudgetPolicySpec) { s.Rules[1].BurnRate.BudgetPercent = dec("2.5") }),
			want:      []string{"the low-traffic guard (minEvents) of 334 events is above 167; write minEvents: 167 or less"}},
		{name: "a lower threshold with the guard written out", objective: d30,
			candidate: with(func(s *slov1alpha1.ErrorBudgetPolicySpec) {
				s.Rules[1].BurnRate.BudgetPercent = dec("2.5")
				s.MinEvents = new(int64(167))
			})},
		{name: "no low-traffic guard under a guarded base", objective: d30,
			candidate: with(func(s *slov1alpha1.ErrorBudgetPolicySpec) { s.MinEvents = new(int64(0)) })},
		{name: "a guard under an unguarded base", objective: d30, candidate: platformSpec(),
			base: with(func(s *slov1alpha1.ErrorBudgetPolicySpec) { s.MinEvents = new(int64(0)) }),
			want: []string{"the low-traffic guard (minEvents) of 167 events is above none (0); write minEvents: 0 or less"}},
		{name: "more exempt classes, a longer exception bound, no approval", objective: d30,
			candidate: platformSpec(),
			base: with(func(s *slov1alpha1.ErrorBudgetPolicySpec) {
				s.ExemptReleaseClasses = []string{"security"}
				s.MaxExceptionDuration = "4h"
				s.RequireExceptionApproval = true
			}),
			want: []string{
				`release class "hotfix" is exempt, which it is not under the bound policy`,
				"maxExceptionDuration 1d is longer than 4h",
				"exceptions need no approval, which they do under the bound policy",
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := tt.base
			if base.Rules == nil {
				base = platformSpec()
			}
			got := Weaknesses(mustPolicy(t, "team", tt.candidate), mustPolicy(t, "platform", base), tt.objective)
			if !slices.Equal(got, tt.want) {
				t.Errorf("Weaknesses:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestWeaknessesOfTheBuiltInPolicy(t *testing.T) {
	o := budget.Objective{Target: 0.999, Window: 30 * 24 * time.Hour}
	if got := Weaknesses(Builtin(), Builtin(), o); got != nil {
		t.Errorf("built-in against itself: %q", got)
	}
	dry := Builtin()
	dry.Mode = slov1alpha1.ModeDryRun
	if got := Weaknesses(Builtin(), dry, o); got != nil {
		t.Errorf("Enforce against DryRun: %q", got)
	}
	if got, want := Weaknesses(dry, Builtin(), o), []string{"mode DryRun is weaker than Enforce"}; !slices.Equal(got, want) {
		t.Errorf("DryRun against Enforce: %q, want %q", got, want)
	}
}
