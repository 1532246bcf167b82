// Package budget is the pure error-budget engine of budgetgate: SLI to budget,
// burn rates, multi-window rule evaluation and the freeze state machine.
//
// It knows nothing of Kubernetes and never reads a clock: every function takes the
// time it needs as a parameter, so the controller, the tests and the fuzz targets
// all drive it the same way.
package budget

import "time"

// Action is what a firing rule asks for.
type Action string

const (
	// ActionFreeze stops non-critical releases while the rule fires.
	ActionFreeze Action = "Freeze"
	// ActionWarn only reports.
	ActionWarn Action = "Warn"
)

// MissingData is what a rule does once its data has been missing for StaleHold.
type MissingData string

const (
	// MissingDataRelease treats a rule without data as not firing after StaleHold.
	MissingDataRelease MissingData = "Release"
	// MissingDataHold keeps the last decision of a rule without data indefinitely.
	MissingDataHold MissingData = "Hold"
)

// Objective is the statically known part of an SLO.
type Objective struct {
	// Target is the objective as a fraction in (0, 1), e.g. 0.999.
	Target float64
	// Window is the SLO window, e.g. 30 days.
	Window time.Duration
}

// BurnRateRule fires when the burn rate is at or above the threshold over both
// LongWindow and ShortWindow.
type BurnRateRule struct {
	LongWindow  time.Duration
	ShortWindow time.Duration
	// Factor is an explicit burn-rate threshold. When zero, BudgetShare is used.
	Factor float64
	// BudgetShare is the share of the whole error budget (0.02 = 2%) that burning
	// at the threshold for LongWindow consumes; the threshold is then
	// BudgetShare × Objective.Window ÷ LongWindow (14.4 for 2% over 1h of 30d).
	BudgetShare float64
}

// Rule is one rule of a policy: exactly one of BurnRate and BudgetRemainingAtOrBelow is set.
type Rule struct {
	Name     string
	Action   Action
	BurnRate *BurnRateRule
	// BudgetRemainingAtOrBelow fires when the remaining budget fraction over the SLO
	// window is at or below this value (0 = budget exhausted).
	BudgetRemainingAtOrBelow *float64
}

// Policy is an error-budget policy with every default already applied.
type Policy struct {
	Name  string
	Rules []Rule
	// MinDuration is the least time a freeze holds, and how long no Freeze rule
	// may have fired before a burn freeze lifts.
	MinDuration time.Duration
	// ReleaseMargin: a freeze held by a budget rule lifts only once the remaining
	// budget is above this fraction (hysteresis).
	ReleaseMargin float64
	// OnMissingData and StaleHold: a rule without data keeps its last decision for
	// StaleHold, then follows OnMissingData.
	OnMissingData MissingData
	StaleHold     time.Duration
	// MinEvents: a window with fewer events than this has no data (low-traffic
	// guard); 0 disables the guard. Ignored when MinEventsAuto is set.
	MinEvents float64
	// MinEventsAuto derives the guard from the objective: see MinEvents.
	MinEventsAuto bool
}

// Measurement is what an SLI source measured over one window.
type Measurement struct {
	// ErrorRatio is bad events ÷ all events over the window, in [0, 1].
	ErrorRatio float64
	// Events is the number of events over the window (used by the MinEvents guard).
	Events float64
	// OK is false when the source had no data for the window; the other fields are then meaningless.
	OK bool
}

// Measurements are keyed by window length.
type Measurements map[time.Duration]Measurement

// RuleMemory is what must be remembered about a rule between evaluations.
type RuleMemory struct {
	// Firing is the rule's decision the last time it had data; while it has none,
	// this is what StaleHold and OnMissingData Hold keep.
	Firing bool
	// LastData is the last time the rule had data for all its windows (zero: never).
	LastData time.Time
}

// State is the freeze state carried from one evaluation to the next; the
// controller persists it in SLO status so that it survives restarts.
type State struct {
	Frozen bool
	// Since is when the current freeze started.
	Since time.Time
	// HoldUntil is the earliest time the current freeze may lift.
	HoldUntil time.Time
	// Rule is the Freeze rule that started, or last extended, the freeze.
	Rule string
	// LastFreezeFiring is the last time any Freeze rule fired.
	LastFreezeFiring time.Time
	// Rules remembers each rule by name.
	Rules map[string]RuleMemory
	// Evaluated is when the evaluation that returned this state ran (zero
	// before the first). A rule whose last data is from then is at its first
	// evaluation without data, which never flips its decision.
	Evaluated time.Time
}

// Budget is the error budget over the SLO window.
type Budget struct {
	// Consumed is the fraction of the budget spent (may exceed 1).
	Consumed float64
	// Remaining is 1 − Consumed (may go negative).
	Remaining float64
}

// WindowResult is the burn over one window.
type WindowResult struct {
	Window time.Duration
	OK     bool // false: no data (missing, not finite, or fewer than MinEvents)
	// ErrorRatio (clamped into [0, 1]) and BurnRate are 0 when the window has no data.
	ErrorRatio float64
	BurnRate   float64
	// Events is the measured event count, or −1 when unknown (no measurement, or a NaN count).
	Events float64
}

// RuleResult is one rule's evaluation.
type RuleResult struct {
	Name   string
	Action Action
	// Firing is the decision used (after missing-data handling).
	Firing bool
	// HasData is false when a window of the rule had no data.
	HasData bool
	// Stale is true when the decision was carried over or decided by OnMissingData.
	Stale bool
	// Value is what was compared: for burn rules the lower of the two windows'
	// burn rates, for budget rules the remaining fraction.
	Value float64
	// Threshold is the (scaled) burn factor, or the remaining-budget bound.
	Threshold float64
	// Message explains the result with numbers, e.g.
	// "burn rate 15.10x over 1h and 16.00x over 5m ≥ 14.40x".
	Message string
}

// Transition says whether an evaluation started or lifted a freeze.
type Transition string

const (
	TransitionNone    Transition = ""
	TransitionStarted Transition = "Started"
	TransitionLifted  Transition = "Lifted"
)

// Evaluation is the result of one evaluation of an SLO against its policy.
type Evaluation struct {
	// SLI is the good-event ratio over the SLO window; valid when Budget is non-nil.
	SLI    float64
	Budget *Budget // nil without data over the SLO window
	// Forecast is when the budget runs out at the current burn; nil without
	// data over the SLO window or the forecast window.
	Forecast *Forecast
	// Windows holds one result per distinct window, shortest first.
	Windows []WindowResult
	// Rules holds one result per policy rule, in policy order.
	Rules []RuleResult
	// DataAvailable is true when every window had data.
	DataAvailable bool
	// State is the state to persist; Transition says how it changed.
	State      State
	Transition Transition
	// Reason explains the freeze while frozen (names the rule and its numbers), "" otherwise.
	Reason string
}
