package budget

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestDefaultPolicy(t *testing.T) {
	want := Policy{
		Name: "built-in",
		Rules: []Rule{
			{Name: "fast-burn", Action: ActionFreeze, BurnRate: &BurnRateRule{LongWindow: time.Hour, ShortWindow: 5 * time.Minute, BudgetShare: 0.02}},
			{Name: "slow-burn", Action: ActionFreeze, BurnRate: &BurnRateRule{LongWindow: 6 * time.Hour, ShortWindow: 30 * time.Minute, BudgetShare: 0.05}},
			{Name: "gradual-burn", Action: ActionWarn, BurnRate: &BurnRateRule{LongWindow: 24 * time.Hour, ShortWindow: 2 * time.Hour, BudgetShare: 0.10}},
			{Name: "chronic-burn", Action: ActionWarn, BurnRate: &BurnRateRule{LongWindow: 3 * day, ShortWindow: 6 * time.Hour, BudgetShare: 0.10}},
			{Name: "budget-exhausted", Action: ActionFreeze, BudgetRemainingAtOrBelow: new(0.0)},
		},
		MinDuration:   time.Hour,
		ReleaseMargin: 0.05,
		OnMissingData: MissingDataRelease,
		StaleHold:     30 * time.Minute,
		MinEventsAuto: true,
	}
	p := DefaultPolicy()
	if diff := cmp.Diff(want, p); diff != "" {
		t.Errorf("DefaultPolicy() (-want +got):\n%s", diff)
	}
	if err := ValidatePolicy(p); err != nil {
		t.Errorf("ValidatePolicy(DefaultPolicy()) = %v", err)
	}
	// Every call returns a policy of its own.
	p.Rules[0].BurnRate.BudgetShare = 1
	*p.Rules[4].BudgetRemainingAtOrBelow = 0.5
	if diff := cmp.Diff(want, DefaultPolicy()); diff != "" {
		t.Errorf("DefaultPolicy() shares memory with an earlier result (-want +got):\n%s", diff)
	}
}

func TestDefaultPolicyThresholds(t *testing.T) {
	tests := []struct {
		window time.Duration
		want   map[string]float64 // by rule name
	}{
		{slo30, map[string]float64{"fast-burn": 14.4, "slow-burn": 6, "gradual-burn": 3, "chronic-burn": 1}},
		{28 * day, map[string]float64{"fast-burn": 13.44, "slow-burn": 5.6, "gradual-burn": 2.8, "chronic-burn": 0.1 * 28.0 / 3}},
		{7 * day, map[string]float64{"fast-burn": 3.36, "slow-burn": 1.4, "gradual-burn": 0.7, "chronic-burn": 0.1 * 7.0 / 3}},
	}
	for _, tt := range tests {
		t.Run(formatDuration(tt.window), func(t *testing.T) {
			o := Objective{Target: 0.999, Window: tt.window}
			got := map[string]float64{}
			for _, r := range DefaultPolicy().Rules {
				if r.BurnRate != nil {
					got[r.Name] = r.BurnRate.Threshold(o)
				}
			}
			if diff := cmp.Diff(tt.want, got, approx); diff != "" {
				t.Errorf("thresholds (-want +got):\n%s", diff)
			}
		})
	}
}

func TestWindows(t *testing.T) {
	tests := []struct {
		name string
		o    Objective
		p    Policy
		want []time.Duration
	}{
		{"default at 30d", Objective{0.999, slo30}, DefaultPolicy(),
			[]time.Duration{5 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour, 6 * time.Hour, 24 * time.Hour, 3 * day, slo30}},
		{"default at 3d: the SLO window is shared", Objective{0.999, 3 * day}, DefaultPolicy(),
			[]time.Duration{5 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour, 6 * time.Hour, 24 * time.Hour, 3 * day}},
		{"empty policy", Objective{0.999, 7 * day}, Policy{}, []time.Duration{7 * day}},
		{"budget rules need no windows", Objective{0.99, 7 * day},
			Policy{Rules: []Rule{{Name: "b", Action: ActionFreeze, BudgetRemainingAtOrBelow: new(0.0)}}},
			[]time.Duration{7 * day}},
		{"duplicates and odd windows", Objective{0.99, 0}, Policy{Rules: []Rule{
			{Name: "a", BurnRate: &BurnRateRule{LongWindow: time.Hour, ShortWindow: -time.Minute}},
			{Name: "b", BurnRate: &BurnRateRule{LongWindow: time.Hour, ShortWindow: time.Hour}},
		}}, []time.Duration{-time.Minute, 0, time.Hour}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, Windows(tt.o, tt.p)); diff != "" {
				t.Errorf("Windows (-want +got):\n%s", diff)
			}
		})
	}
}

func TestWarnings(t *testing.T) {
	tests := []struct {
		name string
		o    Objective
		p    Policy
		want []string
	}{
		{"99.9% at 30d", Objective{0.999, slo30}, DefaultPolicy(), nil},
		{"93.1% at 30d: 14.4x is still reachable", Objective{0.931, slo30}, DefaultPolicy(), nil},
		{"93% at 30d: fast burn cannot fire", Objective{0.93, slo30}, DefaultPolicy(), []string{
			`rule "fast-burn" can never fire: its threshold 14.40x exceeds the highest possible burn rate 14.29x of a 93% target (needs a target of at least 93.06%)`,
		}},
		{"90% at 30d", Objective{0.9, slo30}, DefaultPolicy(), []string{
			`rule "fast-burn" can never fire: its threshold 14.40x exceeds the highest possible burn rate 10.00x of a 90% target (needs a target of at least 93.06%)`,
		}},
		{"80% at 30d: slow burn too", Objective{0.8, slo30}, DefaultPolicy(), []string{
			`rule "fast-burn" can never fire: its threshold 14.40x exceeds the highest possible burn rate 5.00x of a 80% target (needs a target of at least 93.06%)`,
			`rule "slow-burn" can never fire: its threshold 6.00x exceeds the highest possible burn rate 5.00x of a 80% target (needs a target of at least 83.34%)`,
		}},
		{"90% at 7d: thresholds scale down", Objective{0.9, 7 * day}, DefaultPolicy(), nil},
		{"explicit factor, warn rule", Objective{0.95, slo30}, Policy{Rules: []Rule{
			{Name: "page", Action: ActionWarn, BurnRate: &BurnRateRule{LongWindow: time.Hour, ShortWindow: 5 * time.Minute, Factor: 25}},
		}}, []string{
			`rule "page" can never fire: its threshold 25.00x exceeds the highest possible burn rate 20.00x of a 95% target (needs a target of at least 96.00%)`,
		}},
		{"threshold equal to the highest burn rate can fire", Objective{0.9, slo30}, Policy{Rules: []Rule{
			{Name: "all-fail", Action: ActionFreeze, BurnRate: &BurnRateRule{LongWindow: time.Hour, ShortWindow: 5 * time.Minute, Factor: maxBurnRate(0.9)}},
		}}, nil},
		{"invalid objective", Objective{1, slo30}, DefaultPolicy(), nil},
		{"NaN target", Objective{math.NaN(), slo30}, DefaultPolicy(), nil},
		{"uncomputable threshold", Objective{0.9, slo30}, Policy{Rules: []Rule{
			{Name: "x", BurnRate: &BurnRateRule{BudgetShare: 0.02}},
		}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, Warnings(tt.o, tt.p)); diff != "" {
				t.Errorf("Warnings (-want +got):\n%s", diff)
			}
		})
	}
}

func TestValidateObjective(t *testing.T) {
	tests := []struct {
		name string
		o    Objective
		want string // "" for valid
	}{
		{"99.9% over 30d", Objective{0.999, slo30}, ""},
		{"tiny target", Objective{1e-9, time.Minute}, ""},
		{"zero target", Objective{0, slo30}, "target must be above 0 and below 1 (0% < target < 100%), got 0"},
		{"100%", Objective{1, slo30}, "target must be above 0 and below 1 (0% < target < 100%), got 1"},
		{"percent instead of fraction", Objective{99.9, slo30}, "target must be above 0 and below 1 (0% < target < 100%), got 99.9"},
		{"NaN", Objective{math.NaN(), slo30}, "target must be above 0 and below 1 (0% < target < 100%), got NaN"},
		{"zero window", Objective{0.99, 0}, "window must be positive, got 0s"},
		{"both", Objective{-1, -day}, "target must be above 0 and below 1 (0% < target < 100%), got -1\nwindow must be positive, got -1d"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, errString(ValidateObjective(tt.o))); diff != "" {
				t.Errorf("ValidateObjective (-want +got):\n%s", diff)
			}
		})
	}
}

func TestValidatePolicy(t *testing.T) {
	burn := func(name string, a Action, long, short time.Duration, factor, share float64) Rule {
		return Rule{Name: name, Action: a, BurnRate: &BurnRateRule{LongWindow: long, ShortWindow: short, Factor: factor, BudgetShare: share}}
	}
	base := func(rules ...Rule) Policy {
		p := DefaultPolicy()
		p.Rules = rules
		return p
	}
	tests := []struct {
		name string
		p    Policy
		want []string // nil for valid
	}{
		{"default", DefaultPolicy(), nil},
		{"no rules", base(), nil},
		{"factor rule and negative budget bound", base(
			burn("page", ActionFreeze, time.Hour, 5*time.Minute, 14.4, 0),
			Rule{Name: "overspent", Action: ActionWarn, BudgetRemainingAtOrBelow: new(-0.1)},
		), nil},
		{"empty and duplicate names", base(
			burn("", ActionFreeze, time.Hour, 5*time.Minute, 14.4, 0),
			burn("a", ActionFreeze, time.Hour, 5*time.Minute, 14.4, 0),
			burn("a", ActionWarn, time.Hour, 5*time.Minute, 14.4, 0),
		), []string{
			`rules[0]: name must not be empty`,
			`rule "a": name is used by rules[1] and rules[2]`,
		}},
		{"bad action", base(burn("a", "Page", time.Hour, 5*time.Minute, 14.4, 0)), []string{
			`rule "a": action must be "Freeze" or "Warn", got "Page"`,
		}},
		{"no condition, two conditions", base(
			Rule{Name: "none", Action: ActionWarn},
			Rule{Name: "both", Action: ActionWarn, BurnRate: &BurnRateRule{LongWindow: time.Hour, ShortWindow: time.Minute, Factor: 2}, BudgetRemainingAtOrBelow: new(0.0)},
		), []string{
			`rule "none": needs a condition: burnRate or budgetRemainingAtOrBelow`,
			`rule "both": has both burnRate and budgetRemainingAtOrBelow; set exactly one`,
		}},
		{"windows", base(
			burn("order", ActionFreeze, 5*time.Minute, time.Hour, 14.4, 0),
			burn("equal", ActionFreeze, time.Hour, time.Hour, 14.4, 0),
			burn("zero", ActionFreeze, 0, -time.Minute, 14.4, 0),
		), []string{
			`rule "order": shortWindow 1h must be shorter than longWindow 5m`,
			`rule "equal": shortWindow 1h must be shorter than longWindow 1h`,
			`rule "zero": longWindow must be positive, got 0s`,
			`rule "zero": shortWindow must be positive, got -1m`,
		}},
		{"thresholds", base(
			burn("neither", ActionFreeze, time.Hour, time.Minute, 0, 0),
			burn("both", ActionFreeze, time.Hour, time.Minute, 2, 0.1),
			burn("negative-factor", ActionFreeze, time.Hour, time.Minute, -2, 0),
			burn("nan-factor", ActionFreeze, time.Hour, time.Minute, math.NaN(), 0),
			burn("inf-factor", ActionFreeze, time.Hour, time.Minute, math.Inf(1), 0),
			burn("negative-share", ActionFreeze, time.Hour, time.Minute, 0, -0.1),
			burn("inf-share", ActionFreeze, time.Hour, time.Minute, 0, math.Inf(1)),
			Rule{Name: "nan-bound", Action: ActionFreeze, BudgetRemainingAtOrBelow: new(math.NaN())},
			Rule{Name: "full-bound", Action: ActionFreeze, BudgetRemainingAtOrBelow: new(1.0)},
		), []string{
			`rule "neither": needs a positive factor or budgetShare, got factor 0 and budgetShare 0`,
			`rule "both": set exactly one of factor (2) and budgetShare (0.1)`,
			`rule "negative-factor": factor must be a finite positive burn rate, got -2`,
			`rule "nan-factor": factor must be a finite positive burn rate, got NaN`,
			`rule "inf-factor": factor must be a finite positive burn rate, got +Inf`,
			`rule "negative-share": needs a positive factor or budgetShare, got factor 0 and budgetShare -0.1`,
			`rule "inf-share": needs a positive factor or budgetShare, got factor 0 and budgetShare +Inf`,
			`rule "nan-bound": budgetRemainingAtOrBelow must be a finite fraction below 1, got NaN`,
			`rule "full-bound": budgetRemainingAtOrBelow must be a finite fraction below 1, got 1`,
		}},
		{"policy fields", Policy{
			MinDuration:   -time.Minute,
			StaleHold:     -time.Second,
			ReleaseMargin: math.NaN(),
			MinEvents:     -1,
			OnMissingData: "",
		}, []string{
			`minDuration must not be negative, got -1m`,
			`staleHold must not be negative, got -1s`,
			`releaseMargin must be a finite fraction below 1, got NaN`,
			`minEvents must be a finite number of at least 0, got -1`,
			`onMissingData must be "Release" or "Hold", got ""`,
		}},
		{"hold, margin, min events", func() Policy {
			p := DefaultPolicy()
			p.OnMissingData, p.ReleaseMargin, p.MinEvents = MissingDataHold, 0.1, 100
			return p
		}(), nil},
		{"margin of a whole budget", func() Policy {
			p := DefaultPolicy()
			p.ReleaseMargin, p.MinEvents = 1, math.Inf(1)
			return p
		}(), []string{
			`releaseMargin must be a finite fraction below 1, got 1`,
			`minEvents must be a finite number of at least 0, got +Inf`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			if err := ValidatePolicy(tt.p); err != nil {
				got = strings.Split(err.Error(), "\n")
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ValidatePolicy (-want +got):\n%s", diff)
			}
		})
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
