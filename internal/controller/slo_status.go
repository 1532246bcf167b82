package controller

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	slov1alpha1 "github.com/budgetgate/budgetgate/api/v1alpha1"
	"github.com/budgetgate/budgetgate/internal/budget"
	"github.com/budgetgate/budgetgate/internal/sloview"
)

// writeStatus records an evaluation in status.
func writeStatus(slo *slov1alpha1.ServiceLevelObjective, in inputs, eval budget.Evaluation, measured measurement, now time.Time) {
	queryErr := measured.err
	st := &slo.Status
	gen := slo.Generation
	st.ObservedGeneration = gen
	st.LastEvaluationTime = timePtr(now)
	st.Policy = in.policy.Name
	setPolicyBound(slo, in)
	st.Warnings = in.warnings

	st.SLI, st.ErrorBudget = "", nil
	if eval.Budget != nil {
		st.SLI = decimal(eval.SLI, 6)
		st.ErrorBudget = &slov1alpha1.ErrorBudgetStatus{
			Remaining:        decimal(eval.Budget.Remaining, 4),
			Consumed:         decimal(eval.Budget.Consumed, 4),
			RemainingPercent: fmt.Sprintf("%.1f%%", eval.Budget.Remaining*100),
		}
		if f := eval.Forecast; f != nil {
			eb := st.ErrorBudget
			eb.ForecastWindow = string(durationOf(f.Window))
			switch {
			case f.Exhausted:
				eb.ExhaustedIn, eb.ExhaustsAt = "exhausted", timePtr(now)
			case f.Burning:
				in := f.In.Round(time.Minute)
				eb.ExhaustedIn, eb.ExhaustsAt = string(durationOf(in)), timePtr(now.Add(in))
			default:
				eb.ExhaustedIn = "never"
			}
		}
	}

	st.BurnRates = make([]slov1alpha1.WindowBurnRate, 0, len(eval.Windows))
	for _, w := range eval.Windows {
		br := slov1alpha1.WindowBurnRate{Window: string(durationOf(w.Window)), DataAvailable: w.OK}
		if w.Window == in.objective.Window && w.OK {
			br.CarriedFrom = timePtr(measured.carriedFrom)
		}
		if w.OK {
			br.BurnRate = decimal(w.BurnRate, 4)
			// Full precision: the SLO window's ratio is what a slow Prometheus
			// leaves the budget at (see measure).
			br.ErrorRatio = decimal(w.ErrorRatio, 12)
			if w.Events >= 0 {
				br.Events = decimal(w.Events, 0)
			}
		}
		st.BurnRates = append(st.BurnRates, br)
	}
	st.FastBurn = fastBurn(in.policy.Budget, eval)

	st.Rules = make([]slov1alpha1.RuleStatus, 0, len(eval.Rules))
	for _, r := range eval.Rules {
		rs := slov1alpha1.RuleStatus{
			Name:         r.Name,
			Action:       slov1alpha1.RuleAction(r.Action),
			Firing:       r.Firing,
			Threshold:    decimal(r.Threshold, 4),
			Message:      r.Message,
			LastDataTime: timePtr(eval.State.Rules[r.Name].LastData),
		}
		if r.HasData {
			rs.Value = decimal(r.Value, 4)
		}
		st.Rules = append(st.Rules, rs)
	}

	s := eval.State
	st.Freeze = slov1alpha1.FreezeStatus{
		Active:         s.Frozen,
		LastFiringTime: timePtr(s.LastFreezeFiring),
	}
	if s.Frozen {
		st.Freeze.Mode = in.policy.Mode
		st.Freeze.Since = timePtr(s.Since)
		st.Freeze.HoldUntil = timePtr(s.HoldUntil)
		st.Freeze.Rule = s.Rule
		st.Freeze.Reason = eval.Reason
	}

	if queryErr != nil {
		st.ConsecutiveQueryFailures++
	} else {
		st.ConsecutiveQueryFailures = 0
	}

	setDataCondition(slo, eval, queryErr)
	setFrozenCondition(slo, in, eval)
	ready := metav1.Condition{Type: slov1alpha1.ConditionReady, Status: metav1.ConditionTrue,
		Reason: slov1alpha1.ReasonEvaluated, ObservedGeneration: gen,
		Message: fmt.Sprintf("Evaluated against policy %q", in.policy.Name)}
	if eval.Budget != nil {
		ready.Message += fmt.Sprintf(": SLI %.4f%%, budget %.1f%% left", eval.SLI*100, eval.Budget.Remaining*100)
	}
	if !measured.carriedFrom.IsZero() && eval.Budget != nil {
		ready.Message += fmt.Sprintf(" (the budget as last measured, at %s: Prometheus did not answer for the SLO window)",
			measured.carriedFrom.UTC().Format(time.RFC3339))
	}
	if queryErr != nil && !anyWindowAnswered(eval, measured) {
		ready.Status, ready.Reason = metav1.ConditionFalse, slov1alpha1.ReasonQueryFailed
		ready.Message = "No window could be measured: " + queryErr.Error()
	}
	meta.SetStatusCondition(&st.Conditions, ready)
}

func setDataCondition(slo *slov1alpha1.ServiceLevelObjective, eval budget.Evaluation, queryErr error) {
	c := metav1.Condition{Type: slov1alpha1.ConditionDataAvailable, ObservedGeneration: slo.Generation}
	var missing []string
	for _, w := range eval.Windows {
		if !w.OK {
			missing = append(missing, string(durationOf(w.Window)))
		}
	}
	switch {
	case queryErr != nil:
		c.Status, c.Reason = metav1.ConditionFalse, slov1alpha1.ReasonQueryFailed
		c.Message = fmt.Sprintf("%d consecutive evaluations failed: %v", slo.Status.ConsecutiveQueryFailures, queryErr)
	case len(missing) == len(eval.Windows):
		c.Status, c.Reason = metav1.ConditionFalse, slov1alpha1.ReasonNoData
		c.Message = "Prometheus returned no data for any window (no series, NaN or infinite values, or fewer events than the policy's minEvents)"
	case len(missing) > 0:
		c.Status, c.Reason = metav1.ConditionFalse, slov1alpha1.ReasonPartialData
		c.Message = "No data over " + strings.Join(missing, ", ")
	default:
		c.Status, c.Reason = metav1.ConditionTrue, slov1alpha1.ReasonAllWindowsPresent
		c.Message = fmt.Sprintf("All %d windows measured", len(eval.Windows))
	}
	if c.Status == metav1.ConditionFalse && staleRules(eval) {
		c.Message += "; rules without data keep their last decision for the policy's staleHold, then follow onMissingData"
	}
	meta.SetStatusCondition(&slo.Status.Conditions, c)
}

func setFrozenCondition(slo *slov1alpha1.ServiceLevelObjective, in inputs, eval budget.Evaluation) {
	c := metav1.Condition{Type: slov1alpha1.ConditionFrozen, ObservedGeneration: slo.Generation}
	s := eval.State
	switch {
	case !s.Frozen:
		c.Status, c.Reason = metav1.ConditionFalse, slov1alpha1.ReasonWithinBudget
		c.Message = "No Freeze rule fires"
	default:
		c.Status, c.Reason = metav1.ConditionTrue, slov1alpha1.ReasonBudgetBurning
		if staleRules(eval) && !anyFreezeRuleFiringWithData(eval) {
			c.Reason = slov1alpha1.ReasonHeldWithoutData
		}
		c.Message = fmt.Sprintf("Releases frozen since %s, until at least %s: %s",
			s.Since.UTC().Format(time.RFC3339), s.HoldUntil.UTC().Format(time.RFC3339), eval.Reason)
		if in.policy.Mode == slov1alpha1.ModeDryRun {
			c.Reason = slov1alpha1.ReasonDryRun
			c.Message = "DryRun: releases are admitted with a warning. " + c.Message
		}
	}
	meta.SetStatusCondition(&slo.Status.Conditions, c)
}

// setNotReady records input that stops evaluation; the freeze state is left as it was.
func setNotReady(slo *slov1alpha1.ServiceLevelObjective, reason, message string) {
	slo.Status.ObservedGeneration = slo.Generation
	meta.SetStatusCondition(&slo.Status.Conditions, metav1.Condition{
		Type: slov1alpha1.ConditionReady, Status: metav1.ConditionFalse, Reason: reason,
		Message: message, ObservedGeneration: slo.Generation,
	})
}

func exportMetrics(slo *slov1alpha1.ServiceLevelObjective, eval budget.Evaluation) {
	ns, name := slo.Namespace, slo.Name
	var now exportedSeries
	defer func() { forgetStaleSeries(ns, name, now) }()
	if eval.Budget != nil {
		budgetRemaining.WithLabelValues(ns, name).Set(eval.Budget.Remaining)
	} else {
		budgetRemaining.DeleteLabelValues(ns, name)
	}
	for _, w := range eval.Windows {
		window := string(durationOf(w.Window))
		if w.OK {
			burnRate.WithLabelValues(ns, name, window).Set(w.BurnRate)
			now.windows = append(now.windows, window)
		} else {
			burnRate.DeleteLabelValues(ns, name, window)
		}
	}
	for _, r := range eval.Rules {
		ruleFiring.WithLabelValues(ns, name, r.Name, string(r.Action)).Set(boolFloat(r.Firing))
		now.rules = append(now.rules, [2]string{r.Name, string(r.Action)})
	}
	frozen.WithLabelValues(ns, name).Set(boolFloat(eval.State.Frozen))
}

// fastBurn is the burn rate over the shortest long window among the policy's burn rules.
func fastBurn(p budget.Policy, eval budget.Evaluation) string {
	var window time.Duration
	for _, r := range p.Rules {
		if r.BurnRate != nil && (window == 0 || r.BurnRate.LongWindow < window) {
			window = r.BurnRate.LongWindow
		}
	}
	for _, w := range eval.Windows {
		if w.Window == window && w.OK {
			return fmt.Sprintf("%.2fx", w.BurnRate)
		}
	}
	return ""
}

func staleRules(eval budget.Evaluation) bool {
	for _, r := range eval.Rules {
		if r.Stale {
			return true
		}
	}
	return false
}

func anyFreezeRuleFiringWithData(eval budget.Evaluation) bool {
	for _, r := range eval.Rules {
		if r.Action == budget.ActionFreeze && r.Firing && !r.Stale {
			return true
		}
	}
	return false
}

// anyWindowAnswered: Prometheus answered for some window in this evaluation
// (a window carried from an earlier one does not count).
func anyWindowAnswered(eval budget.Evaluation, m measurement) bool {
	for _, w := range eval.Windows {
		if w.OK && (m.carriedFrom.IsZero() || w.Window != m.carried) {
			return true
		}
	}
	return false
}

// decimal formats a number with at most prec decimals and no trailing zeros.
func decimal(v float64, prec int) slov1alpha1.Decimal {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return ""
	}
	s := strconv.FormatFloat(v, 'f', prec, 64)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	if s == "-0" {
		s = "0"
	}
	return slov1alpha1.Decimal(s)
}

func durationOf(d time.Duration) slov1alpha1.Duration {
	return slov1alpha1.Duration(model.Duration(d).String())
}

var (
	timeOf  = sloview.TimeOf
	timePtr = sloview.TimePtr
)

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
