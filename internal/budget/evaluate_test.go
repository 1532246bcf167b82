package budget

import (
	"maps"
	"math"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// The clock of every scenario; 12:00 UTC.
var t0 = time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)

var obj999 = Objective{Target: 0.999, Window: slo30}

const (
	m5  = 5 * time.Minute
	m30 = 30 * time.Minute
	h1  = time.Hour
	h2  = 2 * time.Hour
	h6  = 6 * time.Hour
	h24 = 24 * time.Hour
	d3  = 3 * day
)

// allWindows are the windows of the default policy at 30d.
var allWindows = []time.Duration{m5, m30, h1, h2, h6, h24, d3, slo30}

// burns is a burn rate (at 99.9%) per window; a window not listed has no measurement.
type burns map[time.Duration]float64

// calm burns half the budget rate everywhere and has spent 40% of the budget.
var calm = burns{m5: 0.5, m30: 0.5, h1: 0.5, h2: 0.5, h6: 0.5, h24: 0.5, d3: 0.5, slo30: 0.4}

func (b burns) with(over burns) burns {
	out := maps.Clone(b)
	maps.Copy(out, over)
	return out
}

func (b burns) without(ws ...time.Duration) burns {
	out := maps.Clone(b)
	for _, w := range ws {
		delete(out, w)
	}
	return out
}

const events = 1000

// meas measures every listed window: the error ratio of its burn rate, 1000 events.
func (b burns) meas() Measurements {
	m := Measurements{}
	for w, burn := range b {
		m[w] = Measurement{ErrorRatio: burn * (1 - obj999.Target), Events: events, OK: true}
	}
	return m
}

// windows is the expected WindowResults of the default policy's windows for b.
func (b burns) windows() []WindowResult {
	out := make([]WindowResult, 0, len(allWindows))
	for _, w := range allWindows {
		burn, ok := b[w]
		if !ok {
			out = append(out, WindowResult{Window: w, Events: -1})
			continue
		}
		out = append(out, WindowResult{Window: w, OK: true, ErrorRatio: burn * (1 - obj999.Target), BurnRate: burn, Events: events})
	}
	return out
}

// mems is the memory of the default policy's rules, all with data at `at`, the
// named ones firing.
func mems(at time.Time, firing ...string) map[string]RuleMemory {
	m := map[string]RuleMemory{}
	for _, r := range DefaultPolicy().Rules {
		m[r.Name] = RuleMemory{LastData: at}
	}
	for _, n := range firing {
		m[n] = RuleMemory{Firing: true, LastData: at}
	}
	return m
}

func (m burns) budget() *Budget {
	c := m[slo30]
	return &Budget{Consumed: c, Remaining: 1 - c}
}

func (m burns) sli() float64 { return 1 - m[slo30]*(1-obj999.Target) }

// The results of the default policy's rules on calm data.
var (
	fastCalm     = RuleResult{Name: "fast-burn", Action: ActionFreeze, HasData: true, Value: 0.5, Threshold: 14.4, Message: "burn rate 0.50x over 1h and 0.50x over 5m < 14.40x"}
	slowCalm     = RuleResult{Name: "slow-burn", Action: ActionFreeze, HasData: true, Value: 0.5, Threshold: 6, Message: "burn rate 0.50x over 6h and 0.50x over 30m < 6.00x"}
	gradualCalm  = RuleResult{Name: "gradual-burn", Action: ActionWarn, HasData: true, Value: 0.5, Threshold: 3, Message: "burn rate 0.50x over 1d and 0.50x over 2h < 3.00x"}
	chronicCalm  = RuleResult{Name: "chronic-burn", Action: ActionWarn, HasData: true, Value: 0.5, Threshold: 1, Message: "burn rate 0.50x over 3d and 0.50x over 6h < 1.00x"}
	budget60Calm = RuleResult{Name: "budget-exhausted", Action: ActionFreeze, HasData: true, Value: 0.6, Threshold: 0, Message: "budget 60.0% left > 0.0%"}
	fastFiring   = RuleResult{Name: "fast-burn", Action: ActionFreeze, Firing: true, HasData: true, Value: 15.1, Threshold: 14.4, Message: "burn rate 15.10x over 1h and 16.00x over 5m ≥ 14.40x"}
	budget62     = RuleResult{Name: "budget-exhausted", Action: ActionFreeze, HasData: true, Value: 0.623, Threshold: 0, Message: "budget 62.3% left > 0.0%"}
)

// fast burns 15.1x over 1h and 16x over 5m, with 62.3% of the budget left.
var fast = calm.with(burns{h1: 15.1, m5: 16, slo30: 0.377})

// fastStarted is the evaluation of fast at t0 from the zero state.
var fastStarted = Evaluation{
	SLI:           fast.sli(),
	Budget:        fast.budget(),
	Windows:       fast.windows(),
	Rules:         []RuleResult{fastFiring, slowCalm, gradualCalm, chronicCalm, budget62},
	DataAvailable: true,
	State: State{
		Frozen: true, Since: t0, HoldUntil: t0.Add(h1), Rule: "fast-burn", LastFreezeFiring: t0,
		Rules: mems(t0, "fast-burn"),
	},
	Transition: TransitionStarted,
	Reason:     "fast-burn: burn rate 15.10x over 1h and 16.00x over 5m ≥ 14.40x; budget 62.3% left",
}

// diffEvaluation compares evaluations but for their forecast, which
// TestForecast covers (and which must follow from the budget and the
// forecast window's burn: checked here).
func diffEvaluation(t *testing.T, what string, want, got Evaluation) {
	t.Helper()
	if got.Budget != nil {
		var fw WindowResult
		for _, w := range got.Windows {
			if w.Window == time.Hour {
				fw = w
			}
		}
		if fw.OK && got.Forecast == nil || !fw.OK && got.Forecast != nil {
			t.Errorf("%s: forecast %+v with the 1h window %+v", what, got.Forecast, fw)
		}
	}
	if diff := cmp.Diff(want, got, approx, cmpopts.IgnoreFields(Evaluation{}, "Forecast")); diff != "" {
		t.Errorf("%s (-want +got):\n%s", what, diff)
	}
}

func TestEvaluate(t *testing.T) {
	withMinEvents := DefaultPolicy()
	withMinEvents.MinEvents, withMinEvents.MinEventsAuto = 100, false
	lowTraffic := fast.meas()
	lowTraffic[m5] = Measurement{ErrorRatio: 16 * (1 - obj999.Target), Events: 12, OK: true}

	overspent := calm.with(burns{slo30: 1.02})
	exhausted := calm.with(burns{slo30: 1})
	warn := calm.with(burns{h24: 3.5, h2: 4, d3: 1.2, h6: 1.5})

	tests := []struct {
		name string
		p    Policy
		m    Measurements
		prev State
		want Evaluation
	}{
		{
			name: "healthy",
			p:    DefaultPolicy(),
			m:    calm.meas(),
			want: Evaluation{
				SLI:           calm.sli(),
				Budget:        calm.budget(),
				Windows:       calm.windows(),
				Rules:         []RuleResult{fastCalm, slowCalm, gradualCalm, chronicCalm, budget60Calm},
				DataAvailable: true,
				State:         State{Rules: mems(t0)},
			},
		},
		{
			name: "fast burn starts a freeze",
			p:    DefaultPolicy(),
			m:    fast.meas(),
			want: fastStarted,
		},
		{
			name: "long window above, short window below: not firing",
			p:    DefaultPolicy(),
			m:    calm.with(burns{h1: 15.1, m5: 2}).meas(),
			want: Evaluation{
				SLI:     calm.sli(),
				Budget:  calm.budget(),
				Windows: calm.with(burns{h1: 15.1, m5: 2}).windows(),
				Rules: []RuleResult{
					{Name: "fast-burn", Action: ActionFreeze, HasData: true, Value: 2, Threshold: 14.4, Message: "burn rate 15.10x over 1h ≥ 14.40x but 2.00x over 5m < 14.40x"},
					slowCalm, gradualCalm, chronicCalm, budget60Calm,
				},
				DataAvailable: true,
				State:         State{Rules: mems(t0)},
			},
		},
		{
			name: "short window above, long window below: not firing",
			p:    DefaultPolicy(),
			m:    calm.with(burns{h6: 3, m30: 7}).meas(),
			want: Evaluation{
				SLI:     calm.sli(),
				Budget:  calm.budget(),
				Windows: calm.with(burns{h6: 3, m30: 7}).windows(),
				Rules: []RuleResult{
					fastCalm,
					{Name: "slow-burn", Action: ActionFreeze, HasData: true, Value: 3, Threshold: 6, Message: "burn rate 3.00x over 6h < 6.00x but 7.00x over 30m ≥ 6.00x"},
					gradualCalm,
					{Name: "chronic-burn", Action: ActionWarn, HasData: true, Value: 0.5, Threshold: 1, Message: "burn rate 0.50x over 3d < 1.00x but 3.00x over 6h ≥ 1.00x"},
					budget60Calm,
				},
				DataAvailable: true,
				State:         State{Rules: mems(t0)},
			},
		},
		{
			name: "warn rules fire but never freeze",
			p:    DefaultPolicy(),
			m:    warn.meas(),
			want: Evaluation{
				SLI:     calm.sli(),
				Budget:  calm.budget(),
				Windows: warn.windows(),
				Rules: []RuleResult{
					fastCalm,
					{Name: "slow-burn", Action: ActionFreeze, HasData: true, Value: 0.5, Threshold: 6, Message: "burn rate 1.50x over 6h and 0.50x over 30m < 6.00x"},
					{Name: "gradual-burn", Action: ActionWarn, Firing: true, HasData: true, Value: 3.5, Threshold: 3, Message: "burn rate 3.50x over 1d and 4.00x over 2h ≥ 3.00x"},
					{Name: "chronic-burn", Action: ActionWarn, Firing: true, HasData: true, Value: 1.2, Threshold: 1, Message: "burn rate 1.20x over 3d and 1.50x over 6h ≥ 1.00x"},
					budget60Calm,
				},
				DataAvailable: true,
				State:         State{Rules: mems(t0, "gradual-burn", "chronic-burn")},
			},
		},
		{
			name: "budget exactly exhausted freezes",
			p:    DefaultPolicy(),
			m:    exhausted.meas(),
			want: Evaluation{
				SLI:     exhausted.sli(),
				Budget:  exhausted.budget(),
				Windows: exhausted.windows(),
				Rules: []RuleResult{
					fastCalm, slowCalm, gradualCalm, chronicCalm,
					{Name: "budget-exhausted", Action: ActionFreeze, Firing: true, HasData: true, Value: 0, Threshold: 0, Message: "budget 0.0% left ≤ 0.0%"},
				},
				DataAvailable: true,
				State: State{
					Frozen: true, Since: t0, HoldUntil: t0.Add(h1), Rule: "budget-exhausted", LastFreezeFiring: t0,
					Rules: mems(t0, "budget-exhausted"),
				},
				Transition: TransitionStarted,
				Reason:     "budget-exhausted: budget 0.0% left ≤ 0.0%",
			},
		},
		{
			name: "several freeze rules: the first one starts the freeze",
			p:    DefaultPolicy(),
			m:    fast.with(burns{h6: 7, m30: 8, slo30: 1.02}).meas(),
			want: Evaluation{
				SLI:     overspent.sli(),
				Budget:  overspent.budget(),
				Windows: fast.with(burns{h6: 7, m30: 8, slo30: 1.02}).windows(),
				Rules: []RuleResult{
					fastFiring,
					{Name: "slow-burn", Action: ActionFreeze, Firing: true, HasData: true, Value: 7, Threshold: 6, Message: "burn rate 7.00x over 6h and 8.00x over 30m ≥ 6.00x"},
					gradualCalm,
					{Name: "chronic-burn", Action: ActionWarn, HasData: true, Value: 0.5, Threshold: 1, Message: "burn rate 0.50x over 3d < 1.00x but 7.00x over 6h ≥ 1.00x"},
					{Name: "budget-exhausted", Action: ActionFreeze, Firing: true, HasData: true, Value: -0.02, Threshold: 0, Message: "budget -2.0% left ≤ 0.0%"},
				},
				DataAvailable: true,
				State: State{
					Frozen: true, Since: t0, HoldUntil: t0.Add(h1), Rule: "fast-burn", LastFreezeFiring: t0,
					Rules: mems(t0, "fast-burn", "slow-burn", "budget-exhausted"),
				},
				Transition: TransitionStarted,
				Reason:     "fast-burn: burn rate 15.10x over 1h and 16.00x over 5m ≥ 14.40x; budget -2.0% left; also firing: slow-burn, budget-exhausted",
			},
		},
		{
			name: "MinEvents: a low-traffic window has no data",
			p:    withMinEvents,
			m:    lowTraffic,
			want: Evaluation{
				SLI:    fast.sli(),
				Budget: fast.budget(),
				Windows: append([]WindowResult{{Window: m5, Events: 12}},
					fast.windows()[1:]...),
				Rules: []RuleResult{
					{Name: "fast-burn", Action: ActionFreeze, Stale: true, Threshold: 14.4,
						Message: "too few events over 5m (12 < minEvents 100); burn rate 15.10x over 1h; not firing: never had data"},
					slowCalm, gradualCalm, chronicCalm, budget62,
				},
				DataAvailable: false,
				State: State{Rules: func() map[string]RuleMemory {
					m := mems(t0)
					m["fast-burn"] = RuleMemory{}
					return m
				}()},
			},
		},
		{
			name: "MinEvents: enough events, or an unknown count, pass",
			p:    withMinEvents,
			m: func() Measurements {
				m := fast.meas()
				m[m5] = Measurement{ErrorRatio: 16 * (1 - obj999.Target), Events: -1, OK: true}
				m[h1] = Measurement{ErrorRatio: 15.1 * (1 - obj999.Target), Events: 100, OK: true}
				return m
			}(),
			want: func() Evaluation {
				e := fastStarted
				e.Windows = fast.windows()
				e.Windows[0].Events = -1
				e.Windows[2].Events = 100
				return e
			}(),
		},
		{
			name: "no measurements at all",
			p:    DefaultPolicy(),
			m:    nil,
			want: Evaluation{
				Windows: burns{}.windows(),
				Rules: []RuleResult{
					{Name: "fast-burn", Action: ActionFreeze, Stale: true, Threshold: 14.4, Message: "no data over 1h and 5m; not firing: never had data"},
					{Name: "slow-burn", Action: ActionFreeze, Stale: true, Threshold: 6, Message: "no data over 6h and 30m; not firing: never had data"},
					{Name: "gradual-burn", Action: ActionWarn, Stale: true, Threshold: 3, Message: "no data over 1d and 2h; not firing: never had data"},
					{Name: "chronic-burn", Action: ActionWarn, Stale: true, Threshold: 1, Message: "no data over 3d and 6h; not firing: never had data"},
					{Name: "budget-exhausted", Action: ActionFreeze, Stale: true, Threshold: 0, Message: "no data over 30d; not firing: never had data"},
				},
				State: State{Rules: map[string]RuleMemory{
					"fast-burn": {}, "slow-burn": {}, "gradual-burn": {}, "chronic-burn": {}, "budget-exhausted": {},
				}},
			},
		},
		{
			name: "bad ratios: NaN and Inf have no data, out of range is clamped",
			p:    DefaultPolicy(),
			m: func() Measurements {
				m := calm.meas()
				m[m5] = Measurement{ErrorRatio: math.NaN(), Events: math.NaN(), OK: true}
				m[h1] = Measurement{ErrorRatio: math.Inf(1), Events: events, OK: true}
				m[m30] = Measurement{ErrorRatio: 1.5, Events: events, OK: true}
				m[h6] = Measurement{ErrorRatio: -0.5, Events: events, OK: true}
				m[h2] = Measurement{ErrorRatio: 0.5, Events: events, OK: false}
				return m
			}(),
			want: Evaluation{
				SLI:    calm.sli(),
				Budget: calm.budget(),
				Windows: []WindowResult{
					{Window: m5, Events: -1},
					{Window: m30, OK: true, ErrorRatio: 1, BurnRate: 1000, Events: events},
					{Window: h1, Events: events},
					{Window: h2, Events: -1},
					{Window: h6, OK: true, ErrorRatio: 0, BurnRate: 0, Events: events},
					{Window: h24, OK: true, ErrorRatio: 0.5 * (1 - obj999.Target), BurnRate: 0.5, Events: events},
					{Window: d3, OK: true, ErrorRatio: 0.5 * (1 - obj999.Target), BurnRate: 0.5, Events: events},
					{Window: slo30, OK: true, ErrorRatio: 0.4 * (1 - obj999.Target), BurnRate: 0.4, Events: events},
				},
				Rules: []RuleResult{
					{Name: "fast-burn", Action: ActionFreeze, Stale: true, Threshold: 14.4, Message: "no usable data over 1h (error ratio +Inf) and no usable data over 5m (error ratio NaN); not firing: never had data"},
					{Name: "slow-burn", Action: ActionFreeze, HasData: true, Value: 0, Threshold: 6, Message: "burn rate 0.00x over 6h < 6.00x but 1000.00x over 30m ≥ 6.00x"},
					{Name: "gradual-burn", Action: ActionWarn, Stale: true, Threshold: 3, Message: "no data over 2h; burn rate 0.50x over 1d; not firing: never had data"},
					{Name: "chronic-burn", Action: ActionWarn, HasData: true, Value: 0, Threshold: 1, Message: "burn rate 0.50x over 3d and 0.00x over 6h < 1.00x"},
					budget60Calm,
				},
				State: State{Rules: map[string]RuleMemory{
					"fast-burn": {}, "slow-burn": {LastData: t0}, "gradual-burn": {}, "chronic-burn": {LastData: t0}, "budget-exhausted": {LastData: t0},
				}},
			},
		},
		{
			name: "empty policy only measures the SLO window",
			p:    Policy{Name: "empty"},
			m:    calm.meas(),
			want: Evaluation{
				SLI:           calm.sli(),
				Budget:        calm.budget(),
				Windows:       []WindowResult{{Window: slo30, OK: true, ErrorRatio: 0.4 * (1 - obj999.Target), BurnRate: 0.4, Events: events}},
				Rules:         []RuleResult{},
				DataAvailable: true,
				State:         State{Rules: map[string]RuleMemory{}},
			},
		},
		{
			name: "invalid rules: no condition never fires, both conditions is a burn rule",
			p: Policy{Name: "odd", OnMissingData: MissingDataRelease, Rules: []Rule{
				{Name: "none", Action: ActionFreeze},
				{Name: "both", Action: ActionFreeze, BurnRate: &BurnRateRule{LongWindow: h1, ShortWindow: m5, Factor: 14.4}, BudgetRemainingAtOrBelow: new(0.9)},
			}},
			m: fast.meas(),
			want: Evaluation{
				SLI:    fast.sli(),
				Budget: fast.budget(),
				Windows: []WindowResult{
					{Window: m5, OK: true, ErrorRatio: 16 * (1 - obj999.Target), BurnRate: 16, Events: events},
					{Window: h1, OK: true, ErrorRatio: 15.1 * (1 - obj999.Target), BurnRate: 15.1, Events: events},
					{Window: slo30, OK: true, ErrorRatio: 0.377 * (1 - obj999.Target), BurnRate: 0.377, Events: events},
				},
				Rules: []RuleResult{
					{Name: "none", Action: ActionFreeze, HasData: true, Message: "rule has no condition (set burnRate or budgetRemainingAtOrBelow)"},
					{Name: "both", Action: ActionFreeze, Firing: true, HasData: true, Value: 15.1, Threshold: 14.4, Message: "burn rate 15.10x over 1h and 16.00x over 5m ≥ 14.40x"},
				},
				DataAvailable: true,
				State: State{Frozen: true, Since: t0, HoldUntil: t0, Rule: "both", LastFreezeFiring: t0, Rules: map[string]RuleMemory{
					"none": {LastData: t0}, "both": {Firing: true, LastData: t0},
				}},
				Transition: TransitionStarted,
				Reason:     "both: burn rate 15.10x over 1h and 16.00x over 5m ≥ 14.40x; budget 62.3% left",
			},
		},
		{
			name: "rules no longer in the policy are forgotten",
			p:    DefaultPolicy(),
			m:    calm.meas(),
			prev: State{LastFreezeFiring: t0.Add(-day), Rules: map[string]RuleMemory{"old": {Firing: true, LastData: t0.Add(-h1)}}},
			want: Evaluation{
				SLI:           calm.sli(),
				Budget:        calm.budget(),
				Windows:       calm.windows(),
				Rules:         []RuleResult{fastCalm, slowCalm, gradualCalm, chronicCalm, budget60Calm},
				DataAvailable: true,
				State:         State{LastFreezeFiring: t0.Add(-day), Rules: mems(t0)},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prevCopy := cloneState(tt.prev)
			tt.want.State.Evaluated = t0 // every state records when it was evaluated
			got := Evaluate(obj999, tt.p, tt.m, tt.prev, t0)
			diffEvaluation(t, "Evaluate", tt.want, got)
			if diff := cmp.Diff(prevCopy, tt.prev); diff != "" {
				t.Errorf("Evaluate modified prev (-before +after):\n%s", diff)
			}
		})
	}
}

func cloneState(s State) State {
	s.Rules = maps.Clone(s.Rules)
	return s
}

// step is one evaluation of a scenario, at t0 + at, fed the state of the step before.
type step struct {
	at   time.Duration
	m    Measurements
	want Evaluation
}

// Every state records when it was evaluated (State.Evaluated): a step that
// does not spell it out expects t0 + at.
func runSteps(t *testing.T, p Policy, prev State, steps []step) {
	t.Helper()
	for _, s := range steps {
		if s.want.State.Evaluated.IsZero() {
			s.want.State.Evaluated = t0.Add(s.at)
		}
		got := Evaluate(obj999, p, s.m, prev, t0.Add(s.at))
		diffEvaluation(t, "at t0+"+formatDuration(s.at), s.want, got)
		prev = got.State
	}
}

// calmFrozen is the evaluation of calm data at t0+at that stays frozen with state st.
func calmFrozen(at time.Duration, st State, reason string) Evaluation {
	st.Rules, st.Evaluated = mems(t0.Add(at)), t0.Add(at)
	return Evaluation{
		SLI:           calm.sli(),
		Budget:        calm.budget(),
		Windows:       calm.windows(),
		Rules:         []RuleResult{fastCalm, slowCalm, gradualCalm, chronicCalm, budget60Calm},
		DataAvailable: true,
		State:         st,
		Reason:        reason,
	}
}

// calmLifted is the evaluation of calm data at t0+at that lifts the freeze.
func calmLifted(at time.Duration, lastFiring time.Time) Evaluation {
	return Evaluation{
		SLI:           calm.sli(),
		Budget:        calm.budget(),
		Windows:       calm.windows(),
		Rules:         []RuleResult{fastCalm, slowCalm, gradualCalm, chronicCalm, budget60Calm},
		DataAvailable: true,
		State:         State{LastFreezeFiring: lastFiring, Rules: mems(t0.Add(at)), Evaluated: t0.Add(at)},
		Transition:    TransitionLifted,
	}
}

func TestFreezeHoldsForMinDurationThenLifts(t *testing.T) {
	held := State{Frozen: true, Since: t0, HoldUntil: t0.Add(h1), Rule: "fast-burn", LastFreezeFiring: t0}
	reason := "fast-burn: burn rate 0.50x over 1h and 0.50x over 5m < 14.40x; budget 60.0% left; held until 2026-03-02T13:00:00Z (minDuration 1h)"
	runSteps(t, DefaultPolicy(), State{}, []step{
		{0, fast.meas(), fastStarted},
		{10 * time.Minute, calm.meas(), calmFrozen(10*time.Minute, held, reason)},
		{h1 - time.Second, calm.meas(), calmFrozen(h1-time.Second, held, reason)},
		{h1, calm.meas(), calmLifted(h1, t0)},
		{2 * h1, calm.meas(), Evaluation{
			SLI: calm.sli(), Budget: calm.budget(), Windows: calm.windows(),
			Rules:         []RuleResult{fastCalm, slowCalm, gradualCalm, chronicCalm, budget60Calm},
			DataAvailable: true,
			State:         State{LastFreezeFiring: t0, Rules: mems(t0.Add(2 * h1))},
		}},
	})
}

func TestFreezeRefireExtendsHold(t *testing.T) {
	at30 := t0.Add(30 * time.Minute)
	refired := fastStarted
	refired.State = State{Frozen: true, Since: t0, HoldUntil: at30.Add(h1), Rule: "fast-burn", LastFreezeFiring: at30, Rules: mems(at30, "fast-burn")}
	refired.Transition = TransitionNone

	held := State{Frozen: true, Since: t0, HoldUntil: at30.Add(h1), Rule: "fast-burn", LastFreezeFiring: at30}
	reason := "fast-burn: burn rate 0.50x over 1h and 0.50x over 5m < 14.40x; budget 60.0% left; held until 2026-03-02T13:30:00Z (minDuration 1h)"
	runSteps(t, DefaultPolicy(), State{}, []step{
		{0, fast.meas(), fastStarted},
		{30 * time.Minute, fast.meas(), refired},
		{h1, calm.meas(), calmFrozen(h1, held, reason)},
		{h1 + 29*time.Minute, calm.meas(), calmFrozen(h1+29*time.Minute, held, reason)},
		{h1 + 30*time.Minute, calm.meas(), calmLifted(h1+30*time.Minute, at30)},
	})
}

func TestFreezeHandsOverToAnotherFiringRule(t *testing.T) {
	both := fast.with(burns{h6: 7, m30: 8})
	slowOnly := calm.with(burns{h6: 7, m30: 8, slo30: 0.377})
	slowFiring := RuleResult{Name: "slow-burn", Action: ActionFreeze, Firing: true, HasData: true, Value: 7, Threshold: 6, Message: "burn rate 7.00x over 6h and 8.00x over 30m ≥ 6.00x"}
	chronic := RuleResult{Name: "chronic-burn", Action: ActionWarn, HasData: true, Value: 0.5, Threshold: 1, Message: "burn rate 0.50x over 3d < 1.00x but 7.00x over 6h ≥ 1.00x"}
	at20 := t0.Add(20 * time.Minute)
	runSteps(t, DefaultPolicy(), State{}, []step{
		{0, both.meas(), Evaluation{
			SLI: fast.sli(), Budget: fast.budget(), Windows: both.windows(),
			Rules:         []RuleResult{fastFiring, slowFiring, gradualCalm, chronic, budget62},
			DataAvailable: true,
			State: State{Frozen: true, Since: t0, HoldUntil: t0.Add(h1), Rule: "fast-burn", LastFreezeFiring: t0,
				Rules: mems(t0, "fast-burn", "slow-burn")},
			Transition: TransitionStarted,
			Reason:     "fast-burn: burn rate 15.10x over 1h and 16.00x over 5m ≥ 14.40x; budget 62.3% left; also firing: slow-burn",
		}},
		// The first rule stops; the freeze is now held by the one still firing.
		{20 * time.Minute, slowOnly.meas(), Evaluation{
			SLI: fast.sli(), Budget: fast.budget(), Windows: slowOnly.windows(),
			Rules:         []RuleResult{fastCalm, slowFiring, gradualCalm, chronic, budget62},
			DataAvailable: true,
			State: State{Frozen: true, Since: t0, HoldUntil: at20.Add(h1), Rule: "slow-burn", LastFreezeFiring: at20,
				Rules: mems(at20, "slow-burn")},
			Reason: "slow-burn: burn rate 7.00x over 6h and 8.00x over 30m ≥ 6.00x; budget 62.3% left",
		}},
		// Both fire again: the current rule is kept.
		{40 * time.Minute, both.meas(), Evaluation{
			SLI: fast.sli(), Budget: fast.budget(), Windows: both.windows(),
			Rules:         []RuleResult{fastFiring, slowFiring, gradualCalm, chronic, budget62},
			DataAvailable: true,
			State: State{Frozen: true, Since: t0, HoldUntil: t0.Add(h1 + 40*time.Minute), Rule: "slow-burn", LastFreezeFiring: t0.Add(40 * time.Minute),
				Rules: mems(t0.Add(40*time.Minute), "fast-burn", "slow-burn")},
			Reason: "slow-burn: burn rate 7.00x over 6h and 8.00x over 30m ≥ 6.00x; budget 62.3% left; also firing: fast-burn",
		}},
	})
}

func TestBudgetFreezeLiftsAboveReleaseMargin(t *testing.T) {
	p := DefaultPolicy()
	p.ReleaseMargin = 0.1
	budgetRule := func(left float64, firing bool, msg string) RuleResult {
		return RuleResult{Name: "budget-exhausted", Action: ActionFreeze, Firing: firing, HasData: true, Value: left, Threshold: 0, Message: msg}
	}
	overspent := calm.with(burns{slo30: 1.02})
	recovering := calm.with(burns{slo30: 0.95})
	atMargin := calm.with(burns{slo30: 0.9})
	recovered := calm.with(burns{slo30: 0.85})
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	// held is the freeze while the budget rule keeps firing at d.
	held := func(d time.Duration) State {
		return State{Frozen: true, Since: t0, HoldUntil: at(d + h1), Rule: "budget-exhausted", LastFreezeFiring: at(d),
			Rules: mems(at(d), "budget-exhausted")}
	}
	runSteps(t, p, State{}, []step{
		{0, overspent.meas(), Evaluation{
			SLI: overspent.sli(), Budget: overspent.budget(), Windows: overspent.windows(),
			Rules:         []RuleResult{fastCalm, slowCalm, gradualCalm, chronicCalm, budgetRule(-0.02, true, "budget -2.0% left ≤ 0.0%")},
			DataAvailable: true,
			State:         held(0),
			Transition:    TransitionStarted,
			Reason:        "budget-exhausted: budget -2.0% left ≤ 0.0%",
		}},
		// Above the bound but not above the 10% margin: the rule keeps firing.
		{2 * h1, recovering.meas(), Evaluation{
			SLI: recovering.sli(), Budget: recovering.budget(), Windows: recovering.windows(),
			Rules: []RuleResult{fastCalm, slowCalm, gradualCalm, chronicCalm,
				budgetRule(0.05, true, "budget 5.0% left > 0.0%, but fired and holds until the budget is above 10.0% (releaseMargin)")},
			DataAvailable: true,
			State:         held(2 * h1),
			Reason:        "budget-exhausted: budget 5.0% left > 0.0%, but fired and holds until the budget is above 10.0% (releaseMargin)",
		}},
		// At the margin is not above it.
		{3 * h1, atMargin.meas(), Evaluation{
			SLI: atMargin.sli(), Budget: atMargin.budget(), Windows: atMargin.windows(),
			Rules: []RuleResult{fastCalm, slowCalm, gradualCalm, chronicCalm,
				budgetRule(0.1, true, "budget 10.0% left > 0.0%, but fired and holds until the budget is above 10.0% (releaseMargin)")},
			DataAvailable: true,
			State:         held(3 * h1),
			Reason:        "budget-exhausted: budget 10.0% left > 0.0%, but fired and holds until the budget is above 10.0% (releaseMargin)",
		}},
		// Above the margin the rule stops; the freeze holds for minDuration after its last firing.
		{4 * h1, recovered.meas(), Evaluation{
			SLI: recovered.sli(), Budget: recovered.budget(), Windows: recovered.windows(),
			Rules:         []RuleResult{fastCalm, slowCalm, gradualCalm, chronicCalm, budgetRule(0.15, false, "budget 15.0% left > 0.0%")},
			DataAvailable: true,
			State:         State{LastFreezeFiring: at(3 * h1), Rules: mems(at(4 * h1))},
			Transition:    TransitionLifted,
		}},
	})
}

// Without budget data the margin cannot be checked, and does not block the lift.
func TestBudgetFreezeLiftsWithoutBudgetData(t *testing.T) {
	p := DefaultPolicy()
	p.ReleaseMargin = 0.1
	noSLO := calm.without(slo30)
	prev := State{Frozen: true, Since: t0, HoldUntil: t0.Add(h1), Rule: "budget-exhausted", LastFreezeFiring: t0,
		Rules: mems(t0, "budget-exhausted")}
	wantMems := mems(t0.Add(2 * h1))
	wantMems["budget-exhausted"] = RuleMemory{Firing: true, LastData: t0}
	runSteps(t, p, prev, []step{
		{2 * h1, noSLO.meas(), Evaluation{
			Windows: noSLO.windows(),
			Rules: []RuleResult{fastCalm, slowCalm, gradualCalm, chronicCalm,
				{Name: "budget-exhausted", Action: ActionFreeze, Stale: true, Threshold: 0,
					Message: "no data over 30d; not firing: no data for 2h, staleHold 30m passed (onMissingData Release)"}},
			State:      State{LastFreezeFiring: t0, Rules: wantMems},
			Transition: TransitionLifted,
		}},
	})
}

func TestMissingData(t *testing.T) {
	prev := State{Frozen: true, Since: t0, HoldUntil: t0.Add(h1), Rule: "fast-burn", LastFreezeFiring: t0,
		Rules: mems(t0, "fast-burn")}
	no5m := calm.without(m5)
	// stale is the evaluation of no5m at t0+at with fast-burn deciding `firing` by `note`.
	stale := func(at time.Duration, firing bool, note string, st State, tr Transition, reason string) Evaluation {
		st.Rules = mems(t0.Add(at))
		st.Rules["fast-burn"] = RuleMemory{Firing: true, LastData: t0}
		return Evaluation{
			SLI: calm.sli(), Budget: calm.budget(), Windows: no5m.windows(),
			Rules: []RuleResult{
				{Name: "fast-burn", Action: ActionFreeze, Firing: firing, Stale: true, Threshold: 14.4,
					Message: "no data over 5m; burn rate 0.50x over 1h; " + note},
				slowCalm, gradualCalm, chronicCalm, budget60Calm,
			},
			State:      st,
			Transition: tr,
			Reason:     reason,
		}
	}
	frozen := func(holdUntil, lastFiring time.Time) State {
		return State{Frozen: true, Since: t0, HoldUntil: holdUntil, Rule: "fast-burn", LastFreezeFiring: lastFiring}
	}
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	const m20, m40 = 20 * time.Minute, 40 * time.Minute

	t.Run("Release", func(t *testing.T) {
		runSteps(t, DefaultPolicy(), prev, []step{
			// Within staleHold the rule keeps firing, and so extends the freeze.
			{m20, no5m.meas(), stale(m20, true,
				"keeping the last decision (firing) for up to staleHold 30m; last data 20m ago",
				frozen(at(m20+h1), at(m20)), TransitionNone,
				"fast-burn: no data over 5m; burn rate 0.50x over 1h; keeping the last decision (firing) for up to staleHold 30m; last data 20m ago; budget 60.0% left")},
			// After staleHold it is released; the freeze still holds for minDuration.
			{m40, no5m.meas(), stale(m40, false,
				"not firing: no data for 40m, staleHold 30m passed (onMissingData Release)",
				frozen(at(m20+h1), at(m20)), TransitionNone,
				"fast-burn: no data over 5m; burn rate 0.50x over 1h; not firing: no data for 40m, staleHold 30m passed (onMissingData Release); budget 60.0% left; held until 2026-03-02T13:20:00Z (minDuration 1h)")},
			{m20 + h1, no5m.meas(), stale(m20+h1, false,
				"not firing: no data for 1h20m, staleHold 30m passed (onMissingData Release)",
				State{LastFreezeFiring: at(m20)}, TransitionLifted, "")},
		})
	})

	t.Run("Hold", func(t *testing.T) {
		p := DefaultPolicy()
		p.OnMissingData = MissingDataHold
		runSteps(t, p, prev, []step{
			{m20, no5m.meas(), stale(m20, true,
				"keeping the last decision (firing) for up to staleHold 30m; last data 20m ago",
				frozen(at(m20+h1), at(m20)), TransitionNone,
				"fast-burn: no data over 5m; burn rate 0.50x over 1h; keeping the last decision (firing) for up to staleHold 30m; last data 20m ago; budget 60.0% left")},
			{5 * h1, no5m.meas(), stale(5*h1, true,
				"holding the last decision (firing): no data for 5h (onMissingData Hold)",
				frozen(at(6*h1), at(5*h1)), TransitionNone,
				"fast-burn: no data over 5m; burn rate 0.50x over 1h; holding the last decision (firing): no data for 5h (onMissingData Hold); budget 60.0% left")},
			// Data returns: the rule decides again and the freeze lifts after its hold.
			{5*h1 + 10*time.Minute, calm.meas(), calmFrozen(5*h1+10*time.Minute, frozen(at(6*h1), at(5*h1)),
				"fast-burn: burn rate 0.50x over 1h and 0.50x over 5m < 14.40x; budget 60.0% left; held until 2026-03-02T18:00:00Z (minDuration 1h)")},
			{6 * h1, calm.meas(), calmLifted(6*h1, at(5*h1))},
		})
	})

	t.Run("a rule that never had data holds nothing", func(t *testing.T) {
		p := DefaultPolicy()
		p.OnMissingData = MissingDataHold
		st := State{Rules: mems(t0)}
		st.Rules["fast-burn"] = RuleMemory{}
		runSteps(t, p, State{}, []step{
			{0, no5m.meas(), Evaluation{
				SLI: calm.sli(), Budget: calm.budget(), Windows: no5m.windows(),
				Rules: []RuleResult{
					{Name: "fast-burn", Action: ActionFreeze, Stale: true, Threshold: 14.4,
						Message: "no data over 5m; burn rate 0.50x over 1h; not firing: never had data"},
					slowCalm, gradualCalm, chronicCalm, budget60Calm,
				},
				State: st,
			}},
		})
	})
}

// One evaluation without data never flips a decision, even when staleHold is
// shorter than the time between evaluations: a Prometheus that fails every
// other query cannot flap a freeze. Only the second evaluation in a row
// without data follows onMissingData.
func TestFirstEvaluationWithoutDataKeepsTheDecision(t *testing.T) {
	p := DefaultPolicy()
	p.StaleHold, p.MinDuration = 30*time.Second, time.Minute
	const m1 = time.Minute
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	no5m := fast.without(m5)
	// stale is the evaluation of no5m at t0+d, fast-burn deciding firing by
	// note from its last data at lastData.
	stale := func(d time.Duration, lastData time.Time, firing bool, note string, st State, tr Transition, reason string) Evaluation {
		st.Evaluated = at(d)
		st.Rules = mems(at(d))
		st.Rules["fast-burn"] = RuleMemory{Firing: true, LastData: lastData}
		return Evaluation{
			SLI: fast.sli(), Budget: fast.budget(), Windows: no5m.windows(),
			Rules: []RuleResult{
				{Name: "fast-burn", Action: ActionFreeze, Firing: firing, Stale: true, Threshold: 14.4,
					Message: "no data over 5m; burn rate 15.10x over 1h; " + note},
				slowCalm, gradualCalm, chronicCalm, budget62,
			},
			State:      st,
			Transition: tr,
			Reason:     reason,
		}
	}
	frozen := func(holdUntil, lastFiring time.Time) State {
		return State{Frozen: true, Since: t0, HoldUntil: holdUntil, Rule: "fast-burn", LastFreezeFiring: lastFiring}
	}
	started := fastStarted
	started.State.HoldUntil, started.State.Evaluated = at(m1), t0
	refired := fastStarted
	refired.State = frozen(at(3*m1), at(2*m1))
	refired.State.Rules, refired.State.Evaluated = mems(at(2*m1), "fast-burn"), at(2*m1)
	refired.Transition = TransitionNone

	runSteps(t, p, State{}, []step{
		{0, fast.meas(), started},
		// Past staleHold at once, but the first evaluation without data keeps firing.
		{m1, no5m.meas(), stale(m1, t0, true,
			"keeping the last decision (firing) at the first evaluation without data; last data 1m ago, staleHold 30s",
			frozen(at(2*m1), at(m1)), TransitionNone,
			"fast-burn: no data over 5m; burn rate 15.10x over 1h; keeping the last decision (firing) at the first evaluation without data; last data 1m ago, staleHold 30s; budget 62.3% left")},
		{2 * m1, fast.meas(), refired},
		{3 * m1, no5m.meas(), stale(3*m1, at(2*m1), true,
			"keeping the last decision (firing) at the first evaluation without data; last data 1m ago, staleHold 30s",
			frozen(at(4*m1), at(3*m1)), TransitionNone,
			"fast-burn: no data over 5m; burn rate 15.10x over 1h; keeping the last decision (firing) at the first evaluation without data; last data 1m ago, staleHold 30s; budget 62.3% left")},
		// The second evaluation in a row without data follows onMissingData.
		{4 * m1, no5m.meas(), stale(4*m1, at(2*m1), false,
			"not firing: no data for 2m, staleHold 30s passed (onMissingData Release)",
			State{LastFreezeFiring: at(3 * m1)}, TransitionLifted, "")},
	})

	// A state that does not say when it was evaluated gets no such grace:
	// staleHold alone decides, and the freeze lifts.
	prev := started.State
	prev.Evaluated = time.Time{}
	runSteps(t, p, prev, []step{
		{m1, no5m.meas(), stale(m1, t0, false,
			"not firing: no data for 1m, staleHold 30s passed (onMissingData Release)",
			State{LastFreezeFiring: t0}, TransitionLifted, "")},
	})
}

// A corrupt persisted state (frozen, no start, unknown rule) is repaired, not propagated.
func TestEvaluateRepairsFrozenStateWithoutStart(t *testing.T) {
	prev := State{Frozen: true, Rule: "gone", HoldUntil: t0.Add(h1)}
	got := Evaluate(obj999, DefaultPolicy(), calm.meas(), prev, t0)
	want := calmFrozen(0, State{Frozen: true, Since: t0, HoldUntil: t0.Add(h1), Rule: "gone"},
		`gone: rule no longer in policy "built-in"; budget 60.0% left; held until 2026-03-02T13:00:00Z (minDuration 1h)`)
	diffEvaluation(t, "Evaluate", want, got)
}

func BenchmarkEvaluate(b *testing.B) {
	p := DefaultPolicy()
	m := fast.meas()
	prev := Evaluate(obj999, p, m, State{}, t0).State
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		ev := Evaluate(obj999, p, m, prev, t0.Add(time.Duration(i)*time.Minute))
		if !ev.State.Frozen {
			b.Fatal("not frozen")
		}
	}
}
