package budget

import (
	"math"
	"time"
)

// BurnRate is how fast an error ratio spends the error budget of a target:
// errorRatio ÷ (1 − target). A burn rate of 1 spends exactly the whole budget over
// the SLO window; 14.4 spends it in 1/14.4 of the window.
//
// Beyond the plain quotient: a zero error ratio burns nothing (0) even for a target
// of 100% or more, and with such a target any error burns at +Inf. The result is
// NaN only when an input is NaN, or when an infinite ratio meets a target of −Inf.
func BurnRate(errorRatio, target float64) float64 {
	if math.IsNaN(errorRatio) || math.IsNaN(target) {
		return math.NaN()
	}
	allowed := AllowedErrorRatio(target)
	if allowed > 0 {
		return errorRatio / allowed
	}
	switch {
	case errorRatio > 0:
		return math.Inf(1)
	case errorRatio < 0:
		return math.Inf(-1)
	}
	return 0
}

// AllowedErrorRatio is the error ratio a target allows, 1 − target: the
// error budget as a ratio (0.0010000000000000009 for 0.999), which BurnRate
// divides by.
func AllowedErrorRatio(target float64) float64 {
	return 1 - target
}

// ComputeBudget is the error budget of a target given the error ratio measured over
// the whole SLO window: Consumed = BurnRate(errorRatio, target), and
// Remaining = 1 − Consumed, which goes negative once the budget is overspent.
func ComputeBudget(errorRatio, target float64) Budget {
	consumed := BurnRate(errorRatio, target)
	return Budget{Consumed: consumed, Remaining: 1 - consumed}
}

// Threshold is the burn-rate threshold of the rule for an objective: Factor when it
// is non-zero, else BudgetShare × o.Window ÷ LongWindow (14.4 for 2% over 1h of a
// 30d window, 3.36 for 2% over 1h of a 7d window).
//
// It never returns NaN: a threshold that cannot be computed (LongWindow ≤ 0, or a
// NaN factor or share) is +Inf, which no burn rate of a valid objective reaches.
func (r BurnRateRule) Threshold(o Objective) float64 {
	t := r.Factor
	if t == 0 {
		if r.LongWindow <= 0 {
			return math.Inf(1)
		}
		t = r.BudgetShare * (float64(o.Window) / float64(r.LongWindow))
	}
	if math.IsNaN(t) {
		return math.Inf(1)
	}
	return t
}

// maxBurnRate is the highest burn rate a target allows: an error ratio of 1.
func maxBurnRate(target float64) float64 {
	return BurnRate(1, target)
}

// DefaultForecastWindow is the window whose burn a forecast holds when the
// policy has no burn-rate rule.
const DefaultForecastWindow = time.Hour

// Forecast is when an SLO's budget runs out if the burn rate over Window
// held: Remaining × SLO window ÷ burn rate from now. It is a projection, not
// a promise: the SLO window slides, so errors that leave it give budget back,
// and the burn changes.
type Forecast struct {
	// Window is the window whose burn rate is held, and BurnRate that rate.
	Window   time.Duration
	BurnRate float64
	// Exhausted: the budget is already spent (In is 0).
	Exhausted bool
	// Burning: the burn is above zero, so the budget runs out in In.
	// Without burn, the budget never runs out at this rate.
	Burning bool
	In      time.Duration
}

// ForecastWindow is the window of a policy's forecast: the shortest long
// window of its burn-rate rules (1h under the built-in policy, the fast
// burn's), recent enough to follow an incident and long enough not to
// follow every blip; DefaultForecastWindow without burn-rate rules.
func ForecastWindow(p Policy) time.Duration {
	w := time.Duration(0)
	for _, r := range p.Rules {
		if r.BurnRate != nil && (w == 0 || r.BurnRate.LongWindow < w) {
			w = r.BurnRate.LongWindow
		}
	}
	if w == 0 {
		return DefaultForecastWindow
	}
	return w
}

// NewForecast is the forecast of budget b at the burn measured over window
// fw (nil when fw has no data).
func NewForecast(o Objective, b Budget, fw WindowResult) *Forecast {
	if !fw.OK {
		return nil
	}
	f := &Forecast{Window: fw.Window, BurnRate: fw.BurnRate}
	switch {
	case b.Remaining <= 0:
		f.Exhausted = true
	case fw.BurnRate > 0 && !math.IsInf(fw.BurnRate, 0) && !math.IsNaN(fw.BurnRate):
		f.Burning = true
		in := b.Remaining * float64(o.Window) / fw.BurnRate
		f.In = time.Duration(math.Min(in, float64(math.MaxInt64/2)))
	}
	return f
}
