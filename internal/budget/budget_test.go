package budget

import (
	"math"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

const (
	day   = 24 * time.Hour
	slo30 = 30 * day
)

// approx compares floats to 1e-9 relative, and NaN equal to NaN.
var approx = cmp.Options{cmpopts.EquateApprox(1e-9, 1e-12), cmpopts.EquateNaNs()}

func TestBurnRate(t *testing.T) {
	inf := math.Inf(1)
	tests := []struct {
		name          string
		ratio, target float64
		want          float64
	}{
		{"no errors", 0, 0.999, 0},
		{"exactly the budget", 0.001, 0.999, 1},
		{"fast burn", 0.0144, 0.999, 14.4},
		{"every request fails at 99.9%", 1, 0.999, 1000},
		{"every request fails at 90%", 1, 0.9, 10},
		{"zero target", 0.25, 0, 0.25},
		{"target 100%, errors", 0.01, 1, inf},
		{"target 100%, no errors", 0, 1, 0},
		{"target above 100%, errors", 0.01, 1.5, inf},
		{"target above 100%, negative ratio", -0.01, 1.5, math.Inf(-1)},
		{"NaN ratio", math.NaN(), 0.999, math.NaN()},
		{"NaN target", 0.1, math.NaN(), math.NaN()},
		{"infinite ratio", inf, 0.999, inf},
		{"target -Inf", 0.5, math.Inf(-1), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, BurnRate(tt.ratio, tt.target), approx); diff != "" {
				t.Errorf("BurnRate(%v, %v) (-want +got):\n%s", tt.ratio, tt.target, diff)
			}
		})
	}
}

func TestComputeBudget(t *testing.T) {
	tests := []struct {
		name          string
		ratio, target float64
		want          Budget
	}{
		{"untouched", 0, 0.999, Budget{Consumed: 0, Remaining: 1}},
		{"a quarter spent", 0.00025, 0.999, Budget{Consumed: 0.25, Remaining: 0.75}},
		{"exactly spent", 0.001, 0.999, Budget{Consumed: 1, Remaining: 0}},
		{"overspent goes negative", 0.0015, 0.999, Budget{Consumed: 1.5, Remaining: -0.5}},
		{"99% target", 0.002, 0.99, Budget{Consumed: 0.2, Remaining: 0.8}},
		{"target 100% with errors", 0.1, 1, Budget{Consumed: math.Inf(1), Remaining: math.Inf(-1)}},
		{"NaN ratio", math.NaN(), 0.99, Budget{Consumed: math.NaN(), Remaining: math.NaN()}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, ComputeBudget(tt.ratio, tt.target), approx); diff != "" {
				t.Errorf("ComputeBudget(%v, %v) (-want +got):\n%s", tt.ratio, tt.target, diff)
			}
		})
	}
}

// TestWorkbookFigures checks the SRE Workbook's table ("Alerting on SLOs", 99.9% over
// 30 days): burning at the threshold for the long window consumes the stated share
// of the budget.
func TestWorkbookFigures(t *testing.T) {
	o := Objective{Target: 0.999, Window: slo30}
	tests := []struct {
		burn         float64
		for_         time.Duration
		wantConsumed float64
	}{
		{14.4, time.Hour, 0.02},
		{6, 6 * time.Hour, 0.05},
		{3, 24 * time.Hour, 0.10},
		{1, 3 * day, 0.10},
	}
	for _, tt := range tests {
		t.Run(formatBurn(tt.burn)+"/"+formatDuration(tt.for_), func(t *testing.T) {
			// Errors at the burn rate for the duration, none for the rest of the window.
			windowRatio := tt.burn * (1 - o.Target)
			sloRatio := windowRatio * float64(tt.for_) / float64(o.Window)
			got := ComputeBudget(sloRatio, o.Target)
			want := Budget{Consumed: tt.wantConsumed, Remaining: 1 - tt.wantConsumed}
			if diff := cmp.Diff(want, got, approx); diff != "" {
				t.Errorf("budget after burning (-want +got):\n%s", diff)
			}
			if got := BurnRate(windowRatio, o.Target); math.Abs(got-tt.burn) > 1e-9 {
				t.Errorf("BurnRate = %v, want %v", got, tt.burn)
			}
		})
	}
}

func TestThreshold(t *testing.T) {
	inf := math.Inf(1)
	tests := []struct {
		name string
		rule BurnRateRule
		o    Objective
		want float64
	}{
		{"factor wins", BurnRateRule{LongWindow: time.Hour, Factor: 10, BudgetShare: 0.02}, Objective{0.999, slo30}, 10},
		{"share at 30d", BurnRateRule{LongWindow: time.Hour, BudgetShare: 0.02}, Objective{0.999, slo30}, 14.4},
		{"share at 7d", BurnRateRule{LongWindow: time.Hour, BudgetShare: 0.02}, Objective{0.999, 7 * day}, 3.36},
		{"share at 28d", BurnRateRule{LongWindow: time.Hour, BudgetShare: 0.02}, Objective{0.999, 28 * day}, 13.44},
		{"share over 3d", BurnRateRule{LongWindow: 3 * day, BudgetShare: 0.1}, Objective{0.999, slo30}, 1},
		{"zero long window", BurnRateRule{BudgetShare: 0.02}, Objective{0.999, slo30}, inf},
		{"negative long window", BurnRateRule{LongWindow: -time.Hour, BudgetShare: 0.02}, Objective{0.999, slo30}, inf},
		{"NaN factor", BurnRateRule{LongWindow: time.Hour, Factor: math.NaN()}, Objective{0.999, slo30}, inf},
		{"NaN share", BurnRateRule{LongWindow: time.Hour, BudgetShare: math.NaN()}, Objective{0.999, slo30}, inf},
		{"infinite share, zero SLO window", BurnRateRule{LongWindow: time.Hour, BudgetShare: inf}, Objective{0.999, 0}, inf},
		{"zero SLO window", BurnRateRule{LongWindow: time.Hour, BudgetShare: 0.02}, Objective{0.999, 0}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, tt.rule.Threshold(tt.o), approx); diff != "" {
				t.Errorf("Threshold (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFormatDuration(t *testing.T) {
	tests := map[time.Duration]string{
		0:                              "0s",
		5 * time.Minute:                "5m",
		time.Hour:                      "1h",
		90 * time.Minute:               "1h30m",
		3 * day:                        "3d",
		36 * time.Hour:                 "1d12h",
		slo30:                          "30d",
		-time.Hour:                     "-1h",
		1500 * time.Millisecond:        "1s500ms",
		time.Microsecond:               "1µs",
		time.Duration(math.MinInt64):   time.Duration(math.MinInt64).String(),
		time.Duration(math.MaxInt64):   time.Duration(math.MaxInt64).String(),
		time.Hour + 2*time.Millisecond: "1h2ms",
	}
	for d, want := range tests {
		if got := formatDuration(d); got != want {
			t.Errorf("formatDuration(%d) = %q, want %q", int64(d), got, want)
		}
	}
}

// The forecast holds the fast burn's window: at 99.9% over 30d, half the
// budget left and a burn of 10x, the budget lasts 30d × 0.5 ÷ 10 = 36h.
func TestForecast(t *testing.T) {
	o := Objective{Target: 0.999, Window: 30 * 24 * time.Hour}
	p := DefaultPolicy()
	if w := ForecastWindow(p); w != time.Hour {
		t.Errorf("ForecastWindow(built-in) = %s, want 1h (the fast burn's long window)", w)
	}
	if w := ForecastWindow(Policy{Rules: []Rule{{Name: "exhausted", BudgetRemainingAtOrBelow: new(0.0)}}}); w != DefaultForecastWindow {
		t.Errorf("without burn rules: %s", w)
	}
	hour := func(ratio float64) Measurement { return Measurement{ErrorRatio: ratio, Events: 1e6, OK: true} }
	m := Measurements{}
	for _, w := range Windows(o, p) {
		m[w] = hour(0)
	}
	for _, tc := range []struct {
		name             string
		window, fastHour float64 // error ratios over 30d and 1h
		want             Forecast
	}{
		{"half left, 10x", 0.0005, 0.01, Forecast{Window: time.Hour, BurnRate: 10, Burning: true, In: 36 * time.Hour}},
		{"not burning", 0.0005, 0, Forecast{Window: time.Hour}},
		{"spent", 0.002, 0.01, Forecast{Window: time.Hour, BurnRate: 10, Exhausted: true}},
	} {
		m[o.Window], m[time.Hour] = hour(tc.window), hour(tc.fastHour)
		ev := Evaluate(o, p, m, State{}, time.Now())
		if ev.Forecast == nil {
			t.Fatalf("%s: no forecast", tc.name)
		}
		got := *ev.Forecast
		if got.Window != tc.want.Window || got.Burning != tc.want.Burning || got.Exhausted != tc.want.Exhausted ||
			math.Abs(got.BurnRate-tc.want.BurnRate) > 1e-9 || (got.In-tc.want.In).Abs() > time.Second {
			t.Errorf("%s: %+v, want %+v", tc.name, got, tc.want)
		}
	}
	delete(m, time.Hour)
	if ev := Evaluate(o, p, m, State{}, time.Now()); ev.Forecast != nil {
		t.Errorf("without data over 1h: %+v, want no forecast", ev.Forecast)
	}
}
