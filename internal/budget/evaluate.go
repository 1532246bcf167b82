package budget

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// Evaluate evaluates an objective against its policy at time now, from the
// measurements of every window in Windows(o, p) and the state the previous
// evaluation returned (the zero State before the first one). It is pure: it neither
// reads a clock nor modifies prev.
//
// Windows: a window has data only when its measurement is present and OK, its
// ErrorRatio is finite, and it counted at least MinEvents(o, p) events (when that
// is > 0; a negative or NaN Events count is unknown and passes). The ratio is
// clamped into [0, 1]. The SLO-window measurement gives the SLI and the Budget.
//
// Rules: a burn-rate rule fires when the burn rate is at or above its threshold
// over both its windows; a budget rule fires when the remaining budget is at or
// below its bound (both within Tolerance, see AtLeast and AtMost). A budget Freeze
// rule that fired keeps firing until the remaining budget is above
// p.ReleaseMargin (hysteresis). A rule missing data for a window keeps its last
// decision made with data for p.StaleHold after that data, and at least at its
// first evaluation without data (the one after prev.Evaluated), then does not
// fire (Release) or keeps that decision (Hold); a rule that never had data does
// not fire. (A rule with both conditions set, which ValidatePolicy rejects, is
// evaluated as a burn-rate rule.)
//
// Freeze: any firing Freeze rule starts a freeze, or extends it so that it holds at
// least p.MinDuration past that firing. A freeze lifts once no Freeze rule fires
// and its hold has passed. Warn rules never freeze.
//
// Evaluate never panics and its decisions are never NaN whatever the input, but
// they are meaningful only for an objective and policy that pass ValidateObjective
// and ValidatePolicy. An objective with a NaN target has no data at all.
func Evaluate(o Objective, p Policy, m Measurements, prev State, now time.Time) Evaluation {
	ws := Windows(o, p)
	ev := Evaluation{
		Windows:       make([]WindowResult, len(ws)),
		Rules:         make([]RuleResult, len(p.Rules)),
		DataAvailable: true,
	}
	notes := make([]windowNote, len(ws))
	for i, w := range ws {
		ev.Windows[i], notes[i] = evalWindow(o, p, w, m[w])
		if !ev.Windows[i].OK {
			ev.DataAvailable = false
		}
	}
	win := func(w time.Duration) (WindowResult, windowNote) {
		for i := range ws {
			if ws[i] == w {
				return ev.Windows[i], notes[i]
			}
		}
		return WindowResult{Window: w, Events: -1}, windowNote{} // unreachable
	}

	slo, sloNote := win(o.Window)
	if slo.OK {
		b := ComputeBudget(slo.ErrorRatio, o.Target)
		ev.Budget = &b
		ev.SLI = 1 - slo.ErrorRatio
		fw, _ := win(ForecastWindow(p))
		ev.Forecast = NewForecast(o, b, fw)
	}

	mems := make(map[string]RuleMemory, len(p.Rules))
	for i, r := range p.Rules {
		var mem RuleMemory
		ev.Rules[i], mem = evalRule(o, p, r, win, slo, sloNote, ev.Budget, prev.Rules[r.Name], prev.Evaluated, now)
		mems[r.Name] = mem
	}
	next := advance(p, ev.Rules, prev, now)
	next.Rules, next.Evaluated = mems, now
	switch {
	case next.Frozen && !prev.Frozen:
		ev.Transition = TransitionStarted
	case prev.Frozen && !next.Frozen:
		ev.Transition = TransitionLifted
	}
	ev.State = next
	if next.Frozen {
		ev.Reason = freezeReason(p, &ev, now)
	}
	return ev
}

// advance is the freeze state machine: the state after prev given the rule results
// (in policy order) at now. Rules is left for the caller to fill. The release
// margin needs no case here: it keeps a budget rule firing (see evalRule), so a
// budget freeze lifts like any other once that rule stops.
func advance(p Policy, rules []RuleResult, prev State, now time.Time) (next State) {
	freezing, keepRule, firstFreeze := false, false, ""
	for i, r := range p.Rules {
		if r.Action != ActionFreeze || !rules[i].Firing {
			continue
		}
		if !freezing {
			firstFreeze = r.Name
		}
		freezing = true
		if prev.Frozen && r.Name == prev.Rule {
			keepRule = true
		}
	}

	next.LastFreezeFiring = prev.LastFreezeFiring
	switch {
	case !prev.Frozen && freezing:
		next.Frozen = true
		next.Since = now
		next.HoldUntil = now.Add(p.MinDuration)
		next.Rule = firstFreeze
		next.LastFreezeFiring = now
	case !prev.Frozen:
		// Not frozen, and nothing to freeze for.
	case freezing:
		next.Frozen = true
		next.Since = prev.Since
		next.HoldUntil = prev.HoldUntil
		if hold := now.Add(p.MinDuration); hold.After(next.HoldUntil) {
			next.HoldUntil = hold
		}
		next.Rule = firstFreeze
		if keepRule {
			next.Rule = prev.Rule
		}
		next.LastFreezeFiring = now
	case !now.Before(prev.HoldUntil):
		// Lifted.
	default:
		next.Frozen = true
		next.Since = prev.Since
		next.HoldUntil = prev.HoldUntil
		next.Rule = prev.Rule
	}
	if next.Frozen && next.Since.IsZero() {
		// A frozen state without a start (hand-edited or corrupt status): start now.
		next.Since = now
	}
	return next
}

// Tolerance is the relative tolerance of threshold comparisons. Burn rates and
// budgets are quotients of measured numbers: 1.44% errors at a 99.9% target is
// a burn of 14.399999999999986, not 14.4. A comparison within Tolerance of its
// threshold counts as reaching it, so that "≥ 14.4x" means what people read.
// No measurement is that precise, so nothing that should not fire does.
const Tolerance = 1e-9

// AtLeast reports whether v ≥ threshold within Tolerance (relative to the
// threshold, and at least Tolerance absolute): v ≥ AtLeastBound(threshold).
func AtLeast(v, threshold float64) bool {
	return v >= threshold || v >= AtLeastBound(threshold)
}

// AtLeastBound is the least value that AtLeast accepts for threshold:
// threshold − Tolerance × max(1, |threshold|), or threshold itself when it is
// not finite. Generated alert rules compare with it (">= 14.3999999856"), so
// that an alert and the rule it mirrors decide alike at the threshold.
func AtLeastBound(threshold float64) float64 {
	if !isFinite(threshold) {
		return threshold
	}
	return threshold - Tolerance*math.Max(1, math.Abs(threshold))
}

// AtMost reports whether v ≤ bound within Tolerance (relative to the bound, and
// at least Tolerance absolute: a budget of 8.9e-16 left is exhausted):
// v ≤ AtMostBound(bound).
func AtMost(v, bound float64) bool {
	return v <= bound || v <= AtMostBound(bound)
}

// AtMostBound is the greatest value that AtMost accepts for bound: bound +
// Tolerance × max(1, |bound|), or bound itself when it is not finite.
func AtMostBound(bound float64) float64 {
	if !isFinite(bound) {
		return bound
	}
	return bound + Tolerance*math.Max(1, math.Abs(bound))
}

// ReleaseMargin is the release margin Evaluate applies to budget Freeze
// rules: p.ReleaseMargin, or 0 when it is not finite (which ValidatePolicy
// rejects).
func ReleaseMargin(p Policy) float64 {
	if !isFinite(p.ReleaseMargin) {
		return 0
	}
	return p.ReleaseMargin
}

// windowNote says why a window has no data; an empty text means the measurement
// was absent or not OK.
type windowNote struct {
	text string
}

func (n windowNote) describe(w time.Duration) string {
	if n.text != "" {
		return n.text
	}
	return "no data over " + formatDuration(w)
}

func evalWindow(o Objective, p Policy, w time.Duration, m Measurement) (WindowResult, windowNote) {
	wr := WindowResult{Window: w, Events: -1}
	if !m.OK {
		return wr, windowNote{}
	}
	if !math.IsNaN(m.Events) {
		wr.Events = m.Events
	}
	if !isFinite(m.ErrorRatio) {
		return wr, windowNote{text: fmt.Sprintf("no usable data over %s (error ratio %v)", formatDuration(w), m.ErrorRatio)}
	}
	if minEvents := MinEvents(o, p); minEvents > 0 && m.Events >= 0 && m.Events < minEvents {
		return wr, windowNote{text: fmt.Sprintf("too few events over %s (%s < minEvents %s)",
			formatDuration(w), formatCount(m.Events), formatCount(minEvents))}
	}
	ratio := min(max(m.ErrorRatio, 0), 1)
	burn := BurnRate(ratio, o.Target)
	if math.IsNaN(burn) {
		return wr, windowNote{text: fmt.Sprintf("no usable data over %s (target %v)", formatDuration(w), o.Target)}
	}
	wr.OK, wr.ErrorRatio, wr.BurnRate = true, ratio, burn
	return wr, windowNote{}
}

func evalRule(o Objective, p Policy, r Rule,
	win func(time.Duration) (WindowResult, windowNote),
	slo WindowResult, sloNote windowNote, budget *Budget,
	mem RuleMemory, prevEvaluated, now time.Time,
) (RuleResult, RuleMemory) {
	res := RuleResult{Name: r.Name, Action: r.Action}
	var fired, hasData bool
	switch {
	case r.BurnRate != nil:
		br := r.BurnRate
		th := br.Threshold(o)
		res.Threshold = th
		lw, ln := win(br.LongWindow)
		sw, sn := win(br.ShortWindow)
		switch {
		case lw.OK && sw.OK:
			hasData = true
			res.Value = min(lw.BurnRate, sw.BurnRate)
			fired = AtLeast(lw.BurnRate, th) && AtLeast(sw.BurnRate, th)
			res.Message = burnMessage(lw, sw, th)
		case !lw.OK && !sw.OK:
			if ln.text == "" && sn.text == "" {
				res.Message = fmt.Sprintf("no data over %s and %s", formatDuration(lw.Window), formatDuration(sw.Window))
			} else {
				res.Message = ln.describe(lw.Window) + " and " + sn.describe(sw.Window)
			}
		case !lw.OK:
			res.Message = fmt.Sprintf("%s; burn rate %s over %s", ln.describe(lw.Window), formatBurn(sw.BurnRate), formatDuration(sw.Window))
		default:
			res.Message = fmt.Sprintf("%s; burn rate %s over %s", sn.describe(sw.Window), formatBurn(lw.BurnRate), formatDuration(lw.Window))
		}
	case r.BudgetRemainingAtOrBelow != nil:
		bound := *r.BudgetRemainingAtOrBelow
		res.Threshold = bound
		if budget == nil {
			res.Message = sloNote.describe(slo.Window)
			break
		}
		hasData = true
		res.Value = budget.Remaining
		fired = AtMost(budget.Remaining, bound)
		op := ">"
		if fired {
			op = "≤"
		}
		res.Message = fmt.Sprintf("budget %s left %s %s", formatPercent(budget.Remaining), op, formatPercent(bound))
		// Hysteresis: a budget Freeze rule that fired keeps firing until the
		// budget is above the release margin, so that a budget hovering at its
		// bound does not freeze and lift with every evaluation.
		if margin := ReleaseMargin(p); !fired && r.Action == ActionFreeze && mem.Firing && margin > bound && AtMost(budget.Remaining, margin) {
			fired = true
			res.Message += fmt.Sprintf(", but fired and holds until the budget is above %s (releaseMargin)", formatPercent(margin))
		}
	default:
		hasData = true
		res.Message = "rule has no condition (set burnRate or budgetRemainingAtOrBelow)"
	}

	if hasData {
		res.HasData, res.Firing = true, fired
		return res, RuleMemory{Firing: fired, LastData: now}
	}
	res.Stale = true
	var note string
	res.Firing, note = staleDecision(p, mem, prevEvaluated, now)
	res.Message += "; " + note
	return res, mem
}

func burnMessage(l, s WindowResult, th float64) string {
	lb, sb, t := formatBurn(l.BurnRate), formatBurn(s.BurnRate), formatBurn(th)
	lw, sw := formatDuration(l.Window), formatDuration(s.Window)
	switch lOK, sOK := AtLeast(l.BurnRate, th), AtLeast(s.BurnRate, th); {
	case lOK && sOK:
		return fmt.Sprintf("burn rate %s over %s and %s over %s ≥ %s", lb, lw, sb, sw, t)
	case lOK:
		return fmt.Sprintf("burn rate %s over %s ≥ %s but %s over %s < %s", lb, lw, t, sb, sw, t)
	case sOK:
		return fmt.Sprintf("burn rate %s over %s < %s but %s over %s ≥ %s", lb, lw, t, sb, sw, t)
	default:
		return fmt.Sprintf("burn rate %s over %s and %s over %s < %s", lb, lw, sb, sw, t)
	}
}

// staleDecision is the decision of a rule without data, from its memory and
// the time of the previous evaluation (zero when unknown).
func staleDecision(p Policy, mem RuleMemory, prevEvaluated, now time.Time) (bool, string) {
	if mem.LastData.IsZero() {
		return false, "not firing: never had data"
	}
	age := now.Sub(mem.LastData)
	switch {
	case age < p.StaleHold:
		return mem.Firing, fmt.Sprintf("keeping the last decision (%s) for up to staleHold %s; last data %s ago",
			firingWord(mem.Firing), formatDuration(p.StaleHold), formatDuration(age))
	case !prevEvaluated.IsZero() && !mem.LastData.Before(prevEvaluated):
		// The rule had data at the previous evaluation: one failed query never
		// flips a decision, even when staleHold is shorter than the time
		// between evaluations (else a flapping Prometheus flaps the freeze).
		return mem.Firing, fmt.Sprintf("keeping the last decision (%s) at the first evaluation without data; last data %s ago, staleHold %s",
			firingWord(mem.Firing), formatDuration(age), formatDuration(p.StaleHold))
	case p.OnMissingData == MissingDataHold:
		return mem.Firing, fmt.Sprintf("holding the last decision (%s): no data for %s (onMissingData Hold)",
			firingWord(mem.Firing), formatDuration(age))
	default:
		return false, fmt.Sprintf("not firing: no data for %s, staleHold %s passed (onMissingData Release)",
			formatDuration(age), formatDuration(p.StaleHold))
	}
}

func firingWord(f bool) string {
	if f {
		return "firing"
	}
	return "not firing"
}

// freezeReason explains a freeze: the rule that holds it and its numbers.
func freezeReason(p Policy, ev *Evaluation, now time.Time) string {
	st := ev.State
	var b strings.Builder
	idx := -1
	for i := range p.Rules {
		if p.Rules[i].Name == st.Rule {
			idx = i
			break
		}
	}
	budgetRule := false
	switch {
	case idx >= 0:
		r := p.Rules[idx]
		budgetRule = r.BurnRate == nil && r.BudgetRemainingAtOrBelow != nil
		b.WriteString(r.Name + ": " + ev.Rules[idx].Message)
	case st.Rule == "":
		b.WriteString("frozen by an unnamed rule")
	default:
		fmt.Fprintf(&b, "%s: rule no longer in policy %q", st.Rule, p.Name)
	}
	if !budgetRule {
		if ev.Budget != nil {
			b.WriteString("; budget " + formatPercent(ev.Budget.Remaining) + " left")
		} else {
			b.WriteString("; budget unknown")
		}
	}
	if (idx < 0 || !ev.Rules[idx].Firing) && now.Before(st.HoldUntil) {
		fmt.Fprintf(&b, "; held until %s (minDuration %s)",
			st.HoldUntil.UTC().Format(time.RFC3339), formatDuration(p.MinDuration))
	}
	var also []string
	for i, r := range p.Rules {
		if r.Action == ActionFreeze && ev.Rules[i].Firing && r.Name != st.Rule {
			also = append(also, r.Name)
		}
	}
	if len(also) > 0 {
		b.WriteString("; also firing: " + strings.Join(also, ", "))
	}
	return b.String()
}
