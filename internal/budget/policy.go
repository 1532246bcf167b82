package budget

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"time"
)

// BuiltinPolicyName is the name of DefaultPolicy.
const BuiltinPolicyName = "built-in"

// Defaults of a policy, as applied by DefaultPolicy.
const (
	DefaultMinDuration   = time.Hour
	DefaultStaleHold     = 30 * time.Minute
	DefaultOnMissingData = MissingDataRelease
	// DefaultReleaseMargin is the hysteresis of budget freezes: a budget rule
	// that fired keeps firing until 5% of the budget is back. A budget hovering
	// at zero then freezes once instead of with every wobble (see
	// TestReleaseMarginStopsFlapping: 23 transitions a day without it, 1 with it).
	DefaultReleaseMargin = 0.05
)

// DefaultPolicy is the built-in multi-window, multi-burn-rate policy of the SRE
// Workbook ("Alerting on SLOs"). Its burn thresholds are budget shares, so they
// scale with the SLO window; at 30d they are the Workbook's figures:
//
//	fast-burn         2% of the budget in 1h   (1h ∧ 5m)   14.4×  Freeze
//	slow-burn         5% of the budget in 6h   (6h ∧ 30m)   6×    Freeze
//	gradual-burn     10% of the budget in 24h  (24h ∧ 2h)   3×    Warn
//	chronic-burn     10% of the budget in 3d   (3d ∧ 6h)    1×    Warn
//	budget-exhausted remaining budget ≤ 0                         Freeze
//
// (at 7d the fast-burn threshold is 3.36×, at 28d 13.44×). MinDuration is 1h,
// ReleaseMargin DefaultReleaseMargin, OnMissingData Release after a StaleHold of
// 30m, and the automatic low-traffic guard (see MinEvents). Every call returns a
// new policy that the caller may modify.
func DefaultPolicy() Policy {
	exhausted := 0.0
	return Policy{
		Name: BuiltinPolicyName,
		Rules: []Rule{
			{Name: "fast-burn", Action: ActionFreeze, BurnRate: &BurnRateRule{
				LongWindow: time.Hour, ShortWindow: 5 * time.Minute, BudgetShare: 0.02}},
			{Name: "slow-burn", Action: ActionFreeze, BurnRate: &BurnRateRule{
				LongWindow: 6 * time.Hour, ShortWindow: 30 * time.Minute, BudgetShare: 0.05}},
			{Name: "gradual-burn", Action: ActionWarn, BurnRate: &BurnRateRule{
				LongWindow: 24 * time.Hour, ShortWindow: 2 * time.Hour, BudgetShare: 0.10}},
			{Name: "chronic-burn", Action: ActionWarn, BurnRate: &BurnRateRule{
				LongWindow: 72 * time.Hour, ShortWindow: 6 * time.Hour, BudgetShare: 0.10}},
			{Name: "budget-exhausted", Action: ActionFreeze, BudgetRemainingAtOrBelow: &exhausted},
		},
		MinDuration:   DefaultMinDuration,
		ReleaseMargin: DefaultReleaseMargin,
		OnMissingData: DefaultOnMissingData,
		StaleHold:     DefaultStaleHold,
		MinEventsAuto: true,
	}
}

// MinEvents is the low-traffic guard of p for objective o: p.MinEvents, or, when
// p.MinEventsAuto is set, the fewest events for which one bad event alone cannot
// reach the lowest burn threshold of p's Freeze rules:
// ⌊1 ÷ (threshold × (1 − target))⌋ + 1. For the built-in policy that is 167
// events at 99.9% (6× slow burn: one error in 166 is a burn of 6.02), 17 at 99%
// and 1,667 at 99.99%. Without burn-rate Freeze rules the automatic guard is 0.
func MinEvents(o Objective, p Policy) float64 {
	if !p.MinEventsAuto {
		return p.MinEvents
	}
	lowest := math.Inf(1)
	for _, r := range p.Rules {
		if r.Action == ActionFreeze && r.BurnRate != nil {
			lowest = math.Min(lowest, r.BurnRate.Threshold(o))
		}
	}
	allowed := 1 - o.Target
	if math.IsInf(lowest, 0) || !(lowest > 0) || !(allowed > 0) || math.IsNaN(allowed) {
		return 0
	}
	n := math.Floor(1/(lowest*allowed)) + 1
	if !isFinite(n) {
		return 0
	}
	return n
}

// Windows is every distinct window the objective and policy need measured, shortest
// first: the SLO window and the long and short window of every burn-rate rule.
func Windows(o Objective, p Policy) []time.Duration {
	ws := make([]time.Duration, 1, 1+2*len(p.Rules))
	ws[0] = o.Window
	for _, r := range p.Rules {
		if r.BurnRate != nil {
			ws = append(ws, r.BurnRate.LongWindow, r.BurnRate.ShortWindow)
		}
	}
	slices.Sort(ws)
	return slices.Compact(ws)
}

// Warnings are human-readable messages about burn-rate rules that can never fire
// for the objective: their threshold exceeds the highest possible burn rate,
// 1 ÷ (1 − target), reached when every event fails. It returns nil when there is
// nothing to say, and for an objective that ValidateObjective rejects.
func Warnings(o Objective, p Policy) []string {
	if ValidateObjective(o) != nil {
		return nil
	}
	maxBurn := maxBurnRate(o.Target)
	var out []string
	for _, r := range p.Rules {
		if r.BurnRate == nil {
			continue
		}
		t := r.BurnRate.Threshold(o)
		if math.IsInf(t, 0) || t <= maxBurn {
			continue
		}
		out = append(out, fmt.Sprintf(
			"rule %q can never fire: its threshold %s exceeds the highest possible burn rate %s of a %s target (needs a target of at least %s%%)",
			r.Name, formatBurn(t), formatBurn(maxBurn), formatTarget(o.Target), formatNeededTarget(t)))
	}
	return out
}

// ValidateObjective checks that 0 < Target < 1 and Window > 0.
func ValidateObjective(o Objective) error {
	var errs []error
	if !(o.Target > 0 && o.Target < 1) {
		errs = append(errs, fmt.Errorf("target must be above 0 and below 1 (0%% < target < 100%%), got %v", o.Target))
	}
	if o.Window <= 0 {
		errs = append(errs, fmt.Errorf("window must be positive, got %s", formatDuration(o.Window)))
	}
	return errors.Join(errs...)
}

// ValidatePolicy checks a policy with its defaults applied: every rule has a
// non-empty, unique name, an action of Freeze or Warn and exactly one condition;
// burn-rate rules have positive windows with the short one shorter than the long
// one, and exactly one of a positive Factor and a positive BudgetShare; bounds,
// margins and counts are finite; durations are not negative; OnMissingData is
// Release or Hold. It reports every problem found, joined.
func ValidatePolicy(p Policy) error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if p.MinDuration < 0 {
		add("minDuration must not be negative, got %s", formatDuration(p.MinDuration))
	}
	if p.StaleHold < 0 {
		add("staleHold must not be negative, got %s", formatDuration(p.StaleHold))
	}
	if !isFinite(p.ReleaseMargin) || p.ReleaseMargin >= 1 {
		add("releaseMargin must be a finite fraction below 1, got %v", p.ReleaseMargin)
	}
	if !isFinite(p.MinEvents) || p.MinEvents < 0 {
		add("minEvents must be a finite number of at least 0, got %v", p.MinEvents)
	}
	if p.OnMissingData != MissingDataRelease && p.OnMissingData != MissingDataHold {
		add("onMissingData must be %q or %q, got %q", MissingDataRelease, MissingDataHold, p.OnMissingData)
	}

	seen := make(map[string]int, len(p.Rules))
	for i, r := range p.Rules {
		errs = append(errs, validateRule(i, r, seen)...)
	}
	return errors.Join(errs...)
}

// validateRule checks rule i of a policy; seen maps the names of the rules before it to their index.
func validateRule(i int, r Rule, seen map[string]int) []error {
	var errs []error
	id := fmt.Sprintf("rules[%d]", i)
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(id+": "+format, args...)) }
	if r.Name == "" {
		add("name must not be empty")
	} else {
		id = fmt.Sprintf("rule %q", r.Name)
		if j, dup := seen[r.Name]; dup {
			add("name is used by rules[%d] and rules[%d]", j, i)
		} else {
			seen[r.Name] = i
		}
	}
	if r.Action != ActionFreeze && r.Action != ActionWarn {
		add("action must be %q or %q, got %q", ActionFreeze, ActionWarn, r.Action)
	}
	switch {
	case r.BurnRate == nil && r.BudgetRemainingAtOrBelow == nil:
		add("needs a condition: burnRate or budgetRemainingAtOrBelow")
	case r.BurnRate != nil && r.BudgetRemainingAtOrBelow != nil:
		add("has both burnRate and budgetRemainingAtOrBelow; set exactly one")
	}
	if b := r.BudgetRemainingAtOrBelow; b != nil && (!isFinite(*b) || *b >= 1) {
		add("budgetRemainingAtOrBelow must be a finite fraction below 1, got %v", *b)
	}
	if br := r.BurnRate; br != nil {
		if br.LongWindow <= 0 {
			add("longWindow must be positive, got %s", formatDuration(br.LongWindow))
		}
		if br.ShortWindow <= 0 {
			add("shortWindow must be positive, got %s", formatDuration(br.ShortWindow))
		}
		if br.ShortWindow >= br.LongWindow && br.ShortWindow > 0 && br.LongWindow > 0 {
			add("shortWindow %s must be shorter than longWindow %s",
				formatDuration(br.ShortWindow), formatDuration(br.LongWindow))
		}
		switch {
		case br.Factor != 0 && br.BudgetShare != 0:
			add("set exactly one of factor (%v) and budgetShare (%v)", br.Factor, br.BudgetShare)
		case br.Factor != 0:
			if !isFinite(br.Factor) || br.Factor < 0 {
				add("factor must be a finite positive burn rate, got %v", br.Factor)
			}
		case !isFinite(br.BudgetShare) || br.BudgetShare <= 0:
			add("needs a positive factor or budgetShare, got factor %v and budgetShare %v", br.Factor, br.BudgetShare)
		}
	}
	return errs
}

func isFinite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }
