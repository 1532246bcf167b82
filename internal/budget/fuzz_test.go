package budget

import (
	"math"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func FuzzEvaluate(f *testing.F) {
	nan, inf := math.NaN(), math.Inf(1)
	type seed struct {
		target                     float64
		sloWindow                  int64
		r0, r1, r2, r3, r4, r5, r6 float64
		rSLO                       float64
		okMask                     uint8
		events, minEvents          float64
		long, short                int64
		factor, share, bound       float64
		customAction               bool
		minDuration, staleHold     int64
		margin                     float64
		hold                       bool
		frozen                     bool
		sinceOff, holdOff          int64
		lastDataOff                int64
		firingMask                 uint8
		rule                       string
		nowOff, step               int64
	}
	seeds := []seed{
		// Healthy default at 99.9%/30d.
		{0.999, int64(slo30), 0.0005, 0.0005, 0.0005, 0.0005, 0.0005, 0.0005, 0.0005, 0.0004, 0xff, 1000, 0,
			int64(h1), int64(m5), 14.4, 0, 0, true, int64(h1), int64(m30), 0, false, false, 0, 0, 0, 0, "", 0, int64(time.Minute)},
		// Fast burn.
		{0.999, int64(slo30), 0.016, 0.0005, 0.0151, 0.0005, 0.0005, 0.0005, 0.0005, 0.0004, 0xff, 1000, 0,
			int64(h1), int64(m5), 0, 0.02, 0, false, int64(h1), int64(m30), 0, false, false, 0, 0, 0, 0, "", 0, int64(10 * time.Minute)},
		// Frozen, data missing, Hold.
		{0.99, int64(7 * day), 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.02, 0x0f, 10, 100,
			int64(h6), int64(m30), 6, 0, -0.1, true, int64(h1), int64(m30), 0.1, true, true, -int64(h1), int64(h1), -int64(m30), 0xff, "fast-burn", 0, int64(h1)},
		// Garbage everywhere.
		{nan, 0, nan, inf, -inf, -1, 2, nan, inf, nan, 0xaa, nan, inf,
			0, -1, nan, inf, nan, true, -1, -1, nan, true, true, 0, math.MinInt64, math.MaxInt64, 0x55, "", math.MaxInt64, math.MinInt64},
		{1, -int64(day), 0, 1, 0, 1, 0, 1, 0, 1, 0xff, -1, -1,
			int64(h1), int64(h1), 0, 0, 1, false, math.MaxInt64, math.MaxInt64, inf, false, true, 1, -1, 1, 0xff, "budget-exhausted", -1, 1},
		{0, int64(time.Minute), 1e308, -1e308, 5e-324, 0, 0, 0, 0, 0, 0x80, 0, 0,
			int64(time.Nanosecond), 0, -1, -1, -inf, false, 0, 0, -inf, false, false, 0, 0, 0, 0, "custom", 0, 0},
	}
	for _, s := range seeds {
		f.Add(s.target, s.sloWindow, s.r0, s.r1, s.r2, s.r3, s.r4, s.r5, s.r6, s.rSLO, s.okMask, s.events, s.minEvents,
			s.long, s.short, s.factor, s.share, s.bound, s.customAction, s.minDuration, s.staleHold, s.margin, s.hold,
			s.frozen, s.sinceOff, s.holdOff, s.lastDataOff, s.firingMask, s.rule, s.nowOff, s.step)
	}
	f.Fuzz(func(t *testing.T,
		target float64, sloWindow int64,
		r0, r1, r2, r3, r4, r5, r6, rSLO float64, okMask uint8, events, minEvents float64,
		long, short int64, factor, share, bound float64, customAction bool,
		minDuration, staleHold int64, margin float64, hold bool,
		frozen bool, sinceOff, holdOff, lastDataOff int64, firingMask uint8, rule string,
		nowOff, step int64,
	) {
		o := Objective{Target: target, Window: time.Duration(sloWindow)}
		p := DefaultPolicy()
		p.MinDuration, p.StaleHold = time.Duration(minDuration), time.Duration(staleHold)
		p.ReleaseMargin, p.MinEvents = margin, minEvents
		p.MinEventsAuto = minEvents < 0
		if hold {
			p.OnMissingData = MissingDataHold
		}
		action := ActionWarn
		if customAction {
			action = ActionFreeze
		}
		p.Rules = append(p.Rules,
			Rule{Name: "custom", Action: action, BurnRate: &BurnRateRule{
				LongWindow: time.Duration(long), ShortWindow: time.Duration(short), Factor: factor, BudgetShare: share}},
			Rule{Name: "custom-budget", Action: action, BudgetRemainingAtOrBelow: &bound},
		)
		// Exercise the validators and Warnings on everything too.
		_ = ValidatePolicy(p)
		_ = ValidateObjective(o)
		_ = Warnings(o, p)

		ratios := []float64{r0, r1, r2, r3, r4, r5, r6}
		m := Measurements{}
		for i, w := range Windows(o, p) {
			r := ratios[i%len(ratios)]
			if w == o.Window {
				r = rSLO
			}
			m[w] = Measurement{ErrorRatio: r, Events: events * float64(i), OK: okMask&(1<<(i%8)) != 0}
		}

		at := func(off int64) time.Time {
			if off == 0 {
				return time.Time{}
			}
			return t0.Add(time.Duration(off))
		}
		prev := State{Frozen: frozen, Since: at(sinceOff), HoldUntil: at(holdOff), Rule: rule,
			LastFreezeFiring: at(lastDataOff), Rules: map[string]RuleMemory{}}
		for i, r := range p.Rules {
			prev.Rules[r.Name] = RuleMemory{Firing: firingMask&(1<<(i%8)) != 0, LastData: at(lastDataOff)}
		}

		now := t0.Add(time.Duration(nowOff))
		for i := range 4 {
			if i == 2 {
				m = nil // data disappears
			}
			before := cloneState(prev)
			ev := Evaluate(o, p, m, prev, now)
			if diff := cmp.Diff(before, prev); diff != "" {
				t.Fatalf("Evaluate modified prev:\n%s", diff)
			}
			checkEvaluation(t, o, p, prev, now, ev)
			prev = ev.State
			now = now.Add(time.Duration(step))
		}
	})
}

// checkEvaluation checks the invariants every evaluation must hold.
func checkEvaluation(t *testing.T, o Objective, p Policy, prev State, now time.Time, ev Evaluation) {
	t.Helper()
	checkWindows(t, o, p, ev)
	firingFreeze := checkRules(t, p, ev)
	checkDecisions(t, o, p, prev, ev)
	freezing := len(firingFreeze) > 0
	checkState(t, p, now, ev, freezing, firingFreeze)
	checkTransition(t, prev, now, ev, freezing)
}

// checkWindows checks the window results, data availability and budget of ev.
func checkWindows(t *testing.T, o Objective, p Policy, ev Evaluation) {
	t.Helper()
	ws := Windows(o, p)
	if len(ev.Windows) != len(ws) {
		t.Fatalf("%d window results for %d windows", len(ev.Windows), len(ws))
	}
	all := true
	for i, w := range ev.Windows {
		if w.Window != ws[i] {
			t.Fatalf("window %d is %v, want %v", i, w.Window, ws[i])
		}
		if i > 0 && w.Window <= ev.Windows[i-1].Window {
			t.Fatalf("windows not strictly ascending: %v", ws)
		}
		all = all && w.OK
		if w.OK && (!(w.ErrorRatio >= 0 && w.ErrorRatio <= 1) || !(w.BurnRate >= 0)) {
			t.Fatalf("window %v: ratio %v, burn rate %v", w.Window, w.ErrorRatio, w.BurnRate)
		}
		if !w.OK && (w.ErrorRatio != 0 || w.BurnRate != 0) {
			t.Fatalf("window %v without data has ratio %v, burn rate %v", w.Window, w.ErrorRatio, w.BurnRate)
		}
	}
	if ev.DataAvailable != all {
		t.Fatalf("DataAvailable = %v, every window has data: %v", ev.DataAvailable, all)
	}
	if b := ev.Budget; b != nil {
		if math.IsNaN(b.Consumed) || math.IsNaN(b.Remaining) || !(ev.SLI >= 0 && ev.SLI <= 1) {
			t.Fatalf("budget %+v, SLI %v", *b, ev.SLI)
		}
	}
}

// checkRules checks the rule results and the remembered rules of ev, and returns
// the names of the firing Freeze rules.
func checkRules(t *testing.T, p Policy, ev Evaluation) (firingFreeze []string) {
	t.Helper()
	if len(ev.Rules) != len(p.Rules) {
		t.Fatalf("%d rule results for %d rules", len(ev.Rules), len(p.Rules))
	}
	for i, r := range ev.Rules {
		if r.Name != p.Rules[i].Name || r.Action != p.Rules[i].Action {
			t.Fatalf("rule %d is %q/%s, want %q/%s", i, r.Name, r.Action, p.Rules[i].Name, p.Rules[i].Action)
		}
		if r.HasData && math.IsNaN(r.Value) {
			t.Fatalf("rule %q has data and a NaN value", r.Name)
		}
		if r.HasData == r.Stale {
			t.Fatalf("rule %q: HasData %v, Stale %v", r.Name, r.HasData, r.Stale)
		}
		if r.Message == "" {
			t.Fatalf("rule %q has no message", r.Name)
		}
		if br := p.Rules[i].BurnRate; br != nil && math.IsNaN(r.Threshold) {
			t.Fatalf("rule %q has a NaN threshold", r.Name)
		}
		if _, ok := ev.State.Rules[r.Name]; !ok {
			t.Fatalf("rule %q is not remembered", r.Name)
		}
		if r.Action == ActionFreeze && r.Firing {
			firingFreeze = append(firingFreeze, r.Name)
		}
	}
	for name := range ev.State.Rules {
		if !slices.ContainsFunc(p.Rules, func(r Rule) bool { return r.Name == name }) {
			t.Fatalf("state remembers %q, not in the policy", name)
		}
	}
	return firingFreeze
}

// checkDecisions checks each rule's decision against its inputs, independently
// of the comparison helpers: a burn rule with data in both windows fires when
// both burn rates are at or above the threshold and does not when either is
// clearly below it; a budget rule fires when the remaining budget is at or below
// its bound and does not when it is clearly above both its bound and (for a
// Freeze rule that fired before) the release margin; a rule without data fires
// only if it fired before, and keeps its decision at its first evaluation
// without data.
func checkDecisions(t *testing.T, o Objective, p Policy, prev State, ev Evaluation) {
	t.Helper()
	win := func(w time.Duration) WindowResult {
		for _, r := range ev.Windows {
			if r.Window == w {
				return r
			}
		}
		t.Fatalf("no result for window %v", w)
		return WindowResult{}
	}
	clearlyBelow := func(v, th float64) bool { return v < th-2*Tolerance*math.Max(1, math.Abs(th)) }
	for i, rule := range p.Rules {
		res := ev.Rules[i]
		if !res.HasData {
			mem := prev.Rules[rule.Name]
			if res.Firing && !mem.Firing {
				t.Fatalf("rule %q without data fires although it did not before (a blip must not freeze)", rule.Name)
			}
			if !prev.Evaluated.IsZero() && !mem.LastData.IsZero() && !mem.LastData.Before(prev.Evaluated) && res.Firing != mem.Firing {
				t.Fatalf("rule %q flipped its decision at its first evaluation without data (one failed query must not)", rule.Name)
			}
			continue
		}
		switch {
		case rule.BurnRate != nil:
			l, s := win(rule.BurnRate.LongWindow), win(rule.BurnRate.ShortWindow)
			th := rule.BurnRate.Threshold(o)
			if l.BurnRate >= th && s.BurnRate >= th && !res.Firing {
				t.Fatalf("rule %q: burn %v and %v ≥ %v but not firing", rule.Name, l.BurnRate, s.BurnRate, th)
			}
			if (clearlyBelow(l.BurnRate, th) || clearlyBelow(s.BurnRate, th)) && res.Firing {
				t.Fatalf("rule %q: burn %v and %v, threshold %v, but firing", rule.Name, l.BurnRate, s.BurnRate, th)
			}
		case rule.BudgetRemainingAtOrBelow != nil:
			bound, rem := *rule.BudgetRemainingAtOrBelow, ev.Budget.Remaining
			if rem <= bound && !res.Firing {
				t.Fatalf("rule %q: budget %v ≤ %v but not firing", rule.Name, rem, bound)
			}
			level := bound
			if rule.Action == ActionFreeze && prev.Rules[rule.Name].Firing {
				margin := p.ReleaseMargin
				if !isFinite(margin) {
					margin = 0 // what Evaluate makes of a margin ValidatePolicy rejects
				}
				level = math.Max(bound, margin)
			}
			if clearlyBelow(level, rem) && res.Firing {
				t.Fatalf("rule %q: budget %v above %v but firing", rule.Name, rem, level)
			}
		}
	}
}

// checkState checks ev's freeze state against the firing Freeze rules.
func checkState(t *testing.T, p Policy, now time.Time, ev Evaluation, freezing bool, firingFreeze []string) {
	t.Helper()
	st := ev.State
	if st.Frozen {
		if st.Since.IsZero() {
			t.Fatalf("frozen with a zero Since")
		}
		if ev.Reason == "" {
			t.Fatalf("frozen without a reason")
		}
	} else if !st.Since.IsZero() || !st.HoldUntil.IsZero() || st.Rule != "" || ev.Reason != "" {
		t.Fatalf("not frozen but Since %v, HoldUntil %v, Rule %q, Reason %q", st.Since, st.HoldUntil, st.Rule, ev.Reason)
	}
	if freezing {
		if !st.Frozen || !st.LastFreezeFiring.Equal(now) || !slices.Contains(firingFreeze, st.Rule) {
			t.Fatalf("Freeze rules %v fire but state is %+v", firingFreeze, st)
		}
		if want := now.Add(p.MinDuration); st.HoldUntil.Before(want) {
			t.Fatalf("HoldUntil %v before now + MinDuration %v", st.HoldUntil, want)
		}
	}
}

// checkTransition checks ev's transition against the previous and the new state.
func checkTransition(t *testing.T, prev State, now time.Time, ev Evaluation, freezing bool) {
	t.Helper()
	st := ev.State
	switch ev.Transition {
	case TransitionStarted:
		if prev.Frozen || !st.Frozen || !st.Since.Equal(now) || !freezing {
			t.Fatalf("started: prev frozen %v, state %+v, freezing %v", prev.Frozen, st, freezing)
		}
	case TransitionLifted:
		if !prev.Frozen || st.Frozen || freezing || now.Before(prev.HoldUntil) {
			t.Fatalf("lifted: prev %+v, state %+v, freezing %v", prev, st, freezing)
		}
	case TransitionNone:
		if prev.Frozen != st.Frozen {
			t.Fatalf("no transition but frozen %v → %v", prev.Frozen, st.Frozen)
		}
	default:
		t.Fatalf("transition %q", ev.Transition)
	}
}

func FuzzThreshold(f *testing.F) {
	f.Add(0.0, 0.02, int64(slo30), int64(time.Hour))
	f.Add(14.4, 0.0, int64(7*day), int64(time.Hour))
	f.Add(0.0, 0.1, int64(slo30), int64(0))
	f.Add(math.NaN(), math.Inf(1), int64(0), int64(-1))
	f.Add(0.0, math.Inf(-1), int64(0), int64(1))
	f.Add(-1.0, 1e308, int64(math.MaxInt64), int64(1))
	f.Fuzz(func(t *testing.T, factor, share float64, window, long int64) {
		r := BurnRateRule{LongWindow: time.Duration(long), ShortWindow: time.Duration(long / 2), Factor: factor, BudgetShare: share}
		o := Objective{Target: 0.999, Window: time.Duration(window)}
		got := r.Threshold(o)
		switch {
		case math.IsNaN(got):
			t.Fatalf("Threshold(%+v, %+v) = NaN", r, o)
		case factor != 0 && !math.IsNaN(factor):
			if got != factor {
				t.Fatalf("Threshold = %v, want the factor %v", got, factor)
			}
		case factor != 0 || long <= 0:
			if !math.IsInf(got, 1) {
				t.Fatalf("Threshold = %v, want +Inf", got)
			}
		case share > 0 && window > 0 && !math.IsInf(share, 0):
			want := share * (float64(window) / float64(long))
			if !(got >= 0) || got != want {
				t.Fatalf("Threshold = %v, want %v", got, want)
			}
		}
		if ValidatePolicy(Policy{OnMissingData: MissingDataRelease, Rules: []Rule{{Name: "r", Action: ActionFreeze, BurnRate: &r}}}) == nil &&
			ValidateObjective(o) == nil && !(got >= 0) { // a tiny share may underflow to 0
			t.Fatalf("valid rule %+v for %+v has threshold %v", r, o, got)
		}
	})
}

func FuzzComputeBudget(f *testing.F) {
	f.Add(0.0, 0.999)
	f.Add(0.001, 0.999)
	f.Add(1.0, 0.9)
	f.Add(0.5, 1.0)
	f.Add(-0.5, 2.0)
	f.Add(math.NaN(), 0.5)
	f.Add(math.Inf(1), math.Inf(-1))
	f.Add(5e-324, 1-1e-16)
	f.Fuzz(func(t *testing.T, ratio, target float64) {
		b := ComputeBudget(ratio, target)
		nanIn := math.IsNaN(ratio) || math.IsNaN(target) || (math.IsInf(ratio, 0) && math.IsInf(target, -1))
		if math.IsNaN(b.Consumed) != nanIn {
			t.Fatalf("ComputeBudget(%v, %v) = %+v; NaN expected: %v", ratio, target, b, nanIn)
		}
		if nanIn {
			return
		}
		if b.Remaining != 1-b.Consumed {
			t.Fatalf("ComputeBudget(%v, %v) = %+v: Remaining != 1 − Consumed", ratio, target, b)
		}
		if c := BurnRate(ratio, target); c != b.Consumed {
			t.Fatalf("ComputeBudget(%v, %v).Consumed = %v, BurnRate = %v", ratio, target, b.Consumed, c)
		}
		if ratio >= 0 && ratio <= 1 && target > 0 && target < 1 {
			if !(b.Consumed >= 0) || !(b.Remaining <= 1) || math.IsInf(b.Consumed, -1) {
				t.Fatalf("ComputeBudget(%v, %v) = %+v", ratio, target, b)
			}
			// More errors never leave more budget.
			if more := ComputeBudget(min(1, ratio*2+1e-9), target); more.Remaining > b.Remaining {
				t.Fatalf("ComputeBudget(%v) leaves %v, more errors leave %v", ratio, b.Remaining, more.Remaining)
			}
		}
	})
}
