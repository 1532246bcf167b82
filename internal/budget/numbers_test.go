package budget

import (
	"math"
	"strconv"
	"testing"
	"time"
)

// Targets and ratios here come from decimal text and event counts, the way the
// controller gets them (a target "99.9" becomes the double nearest 0.999; a
// ratio is errors ÷ events), never as burn × (1 − target), which would take the
// code's own float path and hide a comparison that misses by one ulp.

func parse(t *testing.T, s string) float64 {
	t.Helper()
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// exactly measures every window of the default policy at the same error ratio
// errors ÷ events, except the SLO window, which has spent 40% of the budget.
func exactly(errors, events float64) Measurements {
	m := Measurements{}
	for _, w := range allWindows {
		m[w] = Measurement{ErrorRatio: errors / events, Events: events, OK: true}
	}
	m[slo30] = Measurement{ErrorRatio: 400.0 / 1_000_000, Events: 1_000_000, OK: true}
	return m
}

func firing(ev Evaluation) map[string]bool {
	out := map[string]bool{}
	for _, r := range ev.Rules {
		out[r.Name] = r.Firing
	}
	return out
}

func TestWorkbookThresholdsFireExactly(t *testing.T) {
	target := parse(t, "0.999")
	o := Objective{Target: target, Window: slo30}
	p := DefaultPolicy()
	p.Rules = p.Rules[:2] // fast-burn 14.4x, slow-burn 6x
	tests := []struct {
		name           string
		errors, events float64
		fast, slow     bool
	}{
		// 1.44% of requests failing is a burn of exactly 14.4x as people read it;
		// in floats it is 14.399999999999986.
		{"1.44% fires fast-burn", 144, 10_000, true, true},
		{"1.43% does not", 143, 10_000, false, true},
		// 0.6% is exactly 6x (5.999999999999995 in floats).
		{"0.6% fires slow-burn", 60, 10_000, false, true},
		{"0.59% does not", 59, 10_000, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := Evaluate(o, p, exactly(tt.errors, tt.events), State{}, t0)
			got := firing(ev)
			if got["fast-burn"] != tt.fast || got["slow-burn"] != tt.slow {
				t.Errorf("firing %v, want fast-burn %v, slow-burn %v (burn %v)", got, tt.fast, tt.slow, ev.Windows[0].BurnRate)
			}
			if (tt.fast || tt.slow) != ev.State.Frozen {
				t.Errorf("frozen %v", ev.State.Frozen)
			}
		})
	}
	// The float facts the tolerance exists for, so that this test fails if they change.
	if b := BurnRate(144.0/10_000, target); b >= 14.4 {
		t.Errorf("BurnRate(1.44%%, 99.9%%) = %v, no longer below 14.4 in floats: the test above proves nothing", b)
	}
	if b := BurnRate(60.0/10_000, target); b >= 6 {
		t.Errorf("BurnRate(0.6%%, 99.9%%) = %v, no longer below 6 in floats", b)
	}
}

func TestBudgetExactlySpentIsExhausted(t *testing.T) {
	target := parse(t, "0.999")
	o := Objective{Target: target, Window: slo30}
	p := DefaultPolicy()
	m := exactly(0, 1000)
	// 1,000 errors in 1,000,000 requests over 30 days: the whole budget, and not a bit more.
	m[slo30] = Measurement{ErrorRatio: 1000.0 / 1_000_000, Events: 1_000_000, OK: true}
	ev := Evaluate(o, p, m, State{}, t0)
	if ev.Budget.Remaining <= 0 {
		t.Fatalf("remaining %v: the float fact this test is about (8.9e-16 left) changed", ev.Budget.Remaining)
	}
	if !firing(ev)["budget-exhausted"] || !ev.State.Frozen || ev.State.Rule != "budget-exhausted" {
		t.Errorf("budget exactly spent (remaining %v): rules %v, state %+v", ev.Budget.Remaining, firing(ev), ev.State)
	}
	// 999 errors leave 0.1% of the budget: not exhausted.
	m[slo30] = Measurement{ErrorRatio: 999.0 / 1_000_000, Events: 1_000_000, OK: true}
	if ev := Evaluate(o, p, m, State{}, t0); firing(ev)["budget-exhausted"] {
		t.Errorf("0.1%% of the budget left fires budget-exhausted")
	}
}

func TestAtLeastAtMost(t *testing.T) {
	inf := math.Inf(1)
	tests := []struct {
		v, th         float64
		least, atMost bool
	}{
		{14.4, 14.4, true, true},
		{14.399999999999986, 14.4, true, true},
		{14.4 * (1 - 1e-8), 14.4, false, true},
		{14.5, 14.4, true, false},
		{8.9e-16, 0, true, true},
		{1e-8, 0, true, false},
		{-1e-8, 0, false, true},
		{1, inf, false, true},
		{1, -inf, true, false},
		{math.NaN(), 1, false, false},
	}
	for _, tt := range tests {
		if got := AtLeast(tt.v, tt.th); got != tt.least {
			t.Errorf("AtLeast(%v, %v) = %v", tt.v, tt.th, got)
		}
		if got := AtMost(tt.v, tt.th); got != tt.atMost {
			t.Errorf("AtMost(%v, %v) = %v", tt.v, tt.th, got)
		}
	}
}

// hovering is a 30-day budget that hovers at zero: the SLO-window error ratio
// wobbles ±0.5% of the budget around exactly the budget with a period of 2h10m
// (a diurnal pattern seen through a sliding window, compressed), evaluated every
// minute for a day with healthy short windows, so that only the budget rule
// acts. It returns the number of freeze transitions.
func hovering(t *testing.T, p Policy) (transitions int) {
	t.Helper()
	o := Objective{Target: parse(t, "0.999"), Window: slo30}
	var st State
	for i := range 24 * 60 {
		now := t0.Add(time.Duration(i) * time.Minute)
		wobble := 0.005 * math.Sin(2*math.Pi*float64(i)/130)
		m := exactly(0, 1000)
		m[slo30] = Measurement{ErrorRatio: 0.001 * (1 + wobble), Events: 1_000_000, OK: true}
		ev := Evaluate(o, p, m, st, now)
		if ev.Transition != TransitionNone {
			transitions++
		}
		st = ev.State
	}
	return transitions
}

func TestReleaseMarginStopsFlapping(t *testing.T) {
	noMargin := DefaultPolicy()
	noMargin.ReleaseMargin = 0
	before, after := hovering(t, noMargin), hovering(t, DefaultPolicy())
	t.Logf("a budget hovering at zero for a day: %d freeze transitions with releaseMargin 0, %d with the default %v",
		before, after, DefaultReleaseMargin)
	if before != 23 {
		t.Errorf("releaseMargin 0: %d transitions, want the 23 this series shows", before)
	}
	if after != 1 {
		t.Errorf("default releaseMargin: %d transitions, want 1 (frozen once, held)", after)
	}
}

// The release margin is the hysteresis of budget rules: it never holds a freeze
// that no budget rule started or joined.
func TestReleaseMarginDoesNotHoldBurnFreezes(t *testing.T) {
	o := Objective{Target: parse(t, "0.999"), Window: slo30}
	burning := exactly(200, 10_000) // 20x everywhere
	calmNow := exactly(0, 10_000)
	low := Measurement{ErrorRatio: 970.0 / 1_000_000, Events: 1_000_000, OK: true} // 3% of the budget left
	burning[slo30], calmNow[slo30] = low, low

	t.Run("burn-only policy", func(t *testing.T) {
		p := DefaultPolicy()
		p.Rules = p.Rules[:1]
		p.ReleaseMargin = 0.5
		ev := Evaluate(o, p, burning, State{}, t0)
		if !ev.State.Frozen {
			t.Fatal("not frozen by fast-burn")
		}
		ev = Evaluate(o, p, calmNow, ev.State, t0.Add(h1))
		if ev.State.Frozen {
			t.Errorf("a burn-only freeze is held by the release margin: %s", ev.Reason)
		}
	})
	t.Run("budget rule that never fired", func(t *testing.T) {
		p := DefaultPolicy() // budget-exhausted at 0, margin 5%; 3% left is above 0
		ev := Evaluate(o, p, burning, State{}, t0)
		if !ev.State.Frozen || ev.State.Rule != "fast-burn" {
			t.Fatalf("state %+v", ev.State)
		}
		ev = Evaluate(o, p, calmNow, ev.State, t0.Add(h1))
		if ev.State.Frozen {
			t.Errorf("a fast-burn freeze is held by the margin of a budget rule that never fired: %s", ev.Reason)
		}
	})
}

// A Prometheus blip (every window without data for one evaluation) never
// starts a freeze of a healthy SLO, whatever onMissingData says.
func TestBlipNeverFreezesHealthySLO(t *testing.T) {
	o := Objective{Target: parse(t, "0.999"), Window: slo30}
	for _, missing := range []MissingData{MissingDataRelease, MissingDataHold} {
		p := DefaultPolicy()
		p.OnMissingData = missing
		ev := Evaluate(o, p, exactly(1, 10_000), State{}, t0)
		if ev.State.Frozen {
			t.Fatal("healthy SLO frozen")
		}
		st := ev.State
		for i := 1; i <= 120; i++ { // two hours without any data, past staleHold
			ev = Evaluate(o, p, Measurements{}, st, t0.Add(time.Duration(i)*time.Minute))
			for _, r := range ev.Rules {
				if r.Firing {
					t.Fatalf("%s: rule %q fires after %d minutes without data: %s", missing, r.Name, i, r.Message)
				}
			}
			st = ev.State
		}
	}
}

func TestMinEventsAuto(t *testing.T) {
	p := DefaultPolicy()
	for _, tt := range []struct {
		target string
		want   float64
	}{{"0.999", 167}, {"0.99", 17}, {"0.9999", 1667}, {"0.9", 2}} {
		o := Objective{Target: parse(t, tt.target), Window: slo30}
		if got := MinEvents(o, p); got != tt.want {
			t.Errorf("MinEvents(%s) = %v, want %v", tt.target, got, tt.want)
		}
	}
	o := Objective{Target: parse(t, "0.999"), Window: slo30}
	// One failed request out of one, or out of 166, cannot freeze; with 167
	// requests in every window one failure is a burn of 5.99x, below every Freeze rule.
	for _, n := range []float64{1, 166, 167} {
		ev := Evaluate(o, p, exactly(1, n), State{}, t0)
		if ev.State.Frozen {
			t.Errorf("one bad event out of %v freezes: %s", n, ev.Reason)
		}
	}
	// Two failures out of 167 are a real 12x burn: slow-burn fires.
	if ev := Evaluate(o, p, exactly(2, 167), State{}, t0); !ev.State.Frozen || ev.State.Rule != "slow-burn" {
		t.Errorf("2 of 167 failing: state %+v", ev.State)
	}
	// An explicit minEvents, 0 included, overrides the automatic guard.
	p.MinEventsAuto, p.MinEvents = false, 0
	if ev := Evaluate(o, p, exactly(1, 1), State{}, t0); !ev.State.Frozen {
		t.Error("minEvents 0 should disable the guard")
	}
	// Without burn-rate Freeze rules there is nothing to guard.
	p = DefaultPolicy()
	p.Rules = p.Rules[4:]
	if got := MinEvents(o, p); got != 0 {
		t.Errorf("MinEvents without burn Freeze rules = %v", got)
	}
}

// TestAtLeastAtMostBounds: the bounds that generated alert rules compare with
// decide exactly as AtLeast and AtMost do, at and next to the bound.
func TestAtLeastAtMostBounds(t *testing.T) {
	for _, th := range []float64{0, 1, 3, 6, 14.4, 13.44, 3.36, 0.05, -0.2, 1e-12, 1e9} {
		lo, hi := AtLeastBound(th), AtMostBound(th)
		for _, v := range []float64{lo, math.Nextafter(lo, math.Inf(-1)), math.Nextafter(lo, math.Inf(1)),
			hi, math.Nextafter(hi, math.Inf(-1)), math.Nextafter(hi, math.Inf(1)), th} {
			if got, want := AtLeast(v, th), v >= lo; got != want {
				t.Errorf("AtLeast(%v, %v) = %v, but v >= AtLeastBound = %v", v, th, got, want)
			}
			if got, want := AtMost(v, th), v <= hi; got != want {
				t.Errorf("AtMost(%v, %v) = %v, but v <= AtMostBound = %v", v, th, got, want)
			}
		}
	}
	if got := AtLeastBound(14.4); got != 14.399999985600001 {
		t.Errorf("AtLeastBound(14.4) = %v, want 14.399999985600001", got)
	}
	if got := AllowedErrorRatio(0.999); got != 0.0010000000000000009 {
		t.Errorf("AllowedErrorRatio(0.999) = %v, want 0.0010000000000000009 (1 - 0.999 in float64)", got)
	}
}
