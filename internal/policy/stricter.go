package policy

import (
	"fmt"
	"math"
	"slices"
	"strconv"

	"github.com/prometheus/common/model"

	slov1alpha1 "github.com/budgetgate/budgetgate/api/v1alpha1"
	"github.com/budgetgate/budgetgate/internal/budget"
)

// Weaknesses lists the ways in which policy p is weaker than base for an SLO
// with objective o; none means p is at least as strict as base ("Stricter" in
// an ErrorBudgetPolicyBinding). p is at least as strict when, for that SLO,
// it freezes whenever base freezes, holds every freeze at least as long, and
// lets no more through:
//
//   - mode: Enforce is stricter than DryRun;
//   - every Freeze rule of base has a Freeze rule in p that fires whenever it
//     does: a burn rule over the same long and short windows whose threshold
//     (scaled to o's window) is at most base's, or a budget rule whose bound
//     is at least base's; p may have more rules, and Warn rules never count;
//   - freeze.minDuration at least base's; releaseWhen.budgetRemainingAbove at
//     least base's when base has a budget Freeze rule;
//   - without data: Hold is stricter than Release; under Release, a staleHold
//     at least base's;
//   - the low-traffic guard (minEvents, automatic ones computed for o) at most
//     base's, since a window below it has no data and cannot fire;
//   - exemptReleaseClasses a subset of base's; maxExceptionDuration at most
//     base's; requireExceptionApproval when base requires it.
//
// The comparison is per objective because budgetPercent thresholds and
// automatic guards depend on the SLO's target and window.
func Weaknesses(p, base Policy, o budget.Objective) []string {
	var out []string
	if base.Mode != slov1alpha1.ModeDryRun && p.Mode == slov1alpha1.ModeDryRun {
		out = append(out, "mode DryRun is weaker than Enforce")
	}
	for _, b := range base.Budget.Rules {
		if b.Action != budget.ActionFreeze {
			continue
		}
		if !slices.ContainsFunc(p.Budget.Rules, func(r budget.Rule) bool { return coversRule(r, b, o) }) {
			out = append(out, fmt.Sprintf("no Freeze rule fires whenever rule %q (%s) does", b.Name, describeRule(b, o)))
		}
	}
	pb, bb := p.Budget, base.Budget
	if pb.MinDuration < bb.MinDuration {
		out = append(out, fmt.Sprintf("freeze.minDuration %s is shorter than %s", model.Duration(pb.MinDuration), model.Duration(bb.MinDuration)))
	}
	if hasBudgetFreeze(bb) && pb.ReleaseMargin < bb.ReleaseMargin {
		out = append(out, fmt.Sprintf("freeze.releaseWhen.budgetRemainingAbove %s is below %s", num(pb.ReleaseMargin), num(bb.ReleaseMargin)))
	}
	switch {
	case bb.OnMissingData == budget.MissingDataHold && pb.OnMissingData != budget.MissingDataHold:
		out = append(out, "onMissingData Release is weaker than Hold")
	case pb.OnMissingData != budget.MissingDataHold && pb.StaleHold < bb.StaleHold:
		out = append(out, fmt.Sprintf("staleHold %s is shorter than %s", model.Duration(pb.StaleHold), model.Duration(bb.StaleHold)))
	}
	if pm, bm := budget.MinEvents(o, pb), budget.MinEvents(o, bb); guardWeaker(pm, bm) {
		out = append(out, fmt.Sprintf("the low-traffic guard (minEvents) of %s events is above %s; write minEvents: %s or less", num(pm), guardText(bm), num(bm)))
	}
	for _, c := range p.ExemptReleaseClasses {
		if !slices.Contains(base.ExemptReleaseClasses, c) {
			out = append(out, fmt.Sprintf("release class %q is exempt, which it is not under the bound policy", c))
		}
	}
	if p.MaxExceptionDuration > base.MaxExceptionDuration {
		out = append(out, fmt.Sprintf("maxExceptionDuration %s is longer than %s", model.Duration(p.MaxExceptionDuration), model.Duration(base.MaxExceptionDuration)))
	}
	if base.RequireExceptionApproval && !p.RequireExceptionApproval {
		out = append(out, "exceptions need no approval, which they do under the bound policy")
	}
	return out
}

// coversRule: Freeze rule r fires whenever Freeze rule b does, for objective o.
func coversRule(r, b budget.Rule, o budget.Objective) bool {
	if r.Action != budget.ActionFreeze {
		return false
	}
	switch {
	case b.BurnRate != nil && r.BurnRate != nil:
		return r.BurnRate.LongWindow == b.BurnRate.LongWindow && r.BurnRate.ShortWindow == b.BurnRate.ShortWindow &&
			budget.AtMost(r.BurnRate.Threshold(o), b.BurnRate.Threshold(o))
	case b.BudgetRemainingAtOrBelow != nil && r.BudgetRemainingAtOrBelow != nil:
		return budget.AtLeast(*r.BudgetRemainingAtOrBelow, *b.BudgetRemainingAtOrBelow)
	}
	return false
}

// guardWeaker: a guard of p events lets fewer windows have data than one of
// base events (0 is no guard at all).
func guardWeaker(p, base float64) bool {
	switch {
	case p == 0:
		return false
	case base == 0:
		return true
	}
	return p > base
}

func guardText(n float64) string {
	if n == 0 {
		return "none (0)"
	}
	return num(n)
}

func hasBudgetFreeze(p budget.Policy) bool {
	return slices.ContainsFunc(p.Rules, func(r budget.Rule) bool {
		return r.Action == budget.ActionFreeze && r.BudgetRemainingAtOrBelow != nil
	})
}

func describeRule(r budget.Rule, o budget.Objective) string {
	if r.BurnRate != nil {
		return fmt.Sprintf("burn rate ≥ %sx over %s and %s", num(r.BurnRate.Threshold(o)),
			model.Duration(r.BurnRate.LongWindow), model.Duration(r.BurnRate.ShortWindow))
	}
	return "budget remaining ≤ " + num(*r.BudgetRemainingAtOrBelow)
}

// num formats a threshold or count as people write it (at most 4 decimals).
func num(v float64) string {
	return strconv.FormatFloat(math.Round(v*1e4)/1e4, 'f', -1, 64)
}
