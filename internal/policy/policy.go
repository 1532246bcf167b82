// Package policy turns the API's ServiceLevelObjective and ErrorBudgetPolicy
// specs into the budget engine's types, applying defaults and checking what the
// CRD schema cannot. It is shared by the controllers and the webhooks so that
// both read a spec the same way.
package policy

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"

	slov1alpha1 "github.com/budgetgate/budgetgate/api/v1alpha1"
	"github.com/budgetgate/budgetgate/internal/budget"
	"github.com/budgetgate/budgetgate/internal/sli"
)

// Defaults the CRD also sets; repeated here for objects written before a default
// existed and for the built-in policy.
const (
	DefaultWindow               = 30 * 24 * time.Hour
	DefaultEvaluationInterval   = time.Minute
	MinEvaluationInterval       = 10 * time.Second
	DefaultMinDuration          = time.Hour
	DefaultStaleHold            = 30 * time.Minute
	DefaultMaxExceptionDuration = 24 * time.Hour
	// MinTarget is the lowest target in percent. Below it an objective would
	// allow more failed events than good ones, and no multi-window burn rule
	// above 2x could fire; what is written there is nearly always a fraction
	// meant as a percentage ("0.999" for 99.9%). The CRD's CEL rule on
	// spec.target says the same.
	MinTarget = 50
)

// DefaultExemptReleaseClasses are exempt when a policy lists none.
var DefaultExemptReleaseClasses = []string{"hotfix", "security"}

// ParseDuration parses a Prometheus duration ("5m", "30d"); empty gives def.
func ParseDuration(field string, d slov1alpha1.Duration, def time.Duration) (time.Duration, error) {
	if d == "" {
		return def, nil
	}
	v, err := model.ParseDuration(string(d))
	if err != nil {
		return 0, fmt.Errorf("%s: %q is not a duration such as 5m, 1h or 30d: %w", field, d, err)
	}
	if v <= 0 {
		return 0, fmt.Errorf("%s: %q must be positive", field, d)
	}
	return time.Duration(v), nil
}

// ParseDecimal parses a decimal string; empty gives def.
func ParseDecimal(field string, s slov1alpha1.Decimal, def float64) (float64, error) {
	if s == "" {
		return def, nil
	}
	v, err := strconv.ParseFloat(string(s), 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("%s: %q is not a decimal number", field, s)
	}
	return v, nil
}

// Objective reads the objective of an SLO spec.
func Objective(spec *slov1alpha1.ServiceLevelObjectiveSpec) (budget.Objective, error) {
	target, err := ParseDecimal("spec.target", spec.Target, 0)
	if err != nil {
		return budget.Objective{}, err
	}
	if err := checkTarget(spec.Target, target); err != nil {
		return budget.Objective{}, err
	}
	window, err := ParseDuration("spec.window", spec.Window, DefaultWindow)
	if err != nil {
		return budget.Objective{}, err
	}
	o := budget.Objective{Target: percentToFraction(string(spec.Target), target), Window: window}
	return o, budget.ValidateObjective(o)
}

// checkTarget reports a target outside [MinTarget, 100) as the CRD's CEL
// rules do, for SLOs that got in without them.
func checkTarget(text slov1alpha1.Decimal, target float64) error {
	switch {
	case target >= 100:
		return fmt.Errorf(`spec.target: %q: target must be below 100: a 100%% objective leaves no error budget to spend; write e.g. "99.9" or "99.99"`, text)
	case target >= MinTarget:
		return nil
	}
	if _, digits, ok := strings.Cut(string(text), "."); ok && target >= 0.5 && target < 1 && strings.TrimLeft(string(text), "0") == "."+digits {
		p := digits + "0"
		if len(digits) > 2 {
			p = digits[:2] + "." + digits[2:]
		} else if len(digits) == 2 {
			p = digits
		}
		return fmt.Errorf(`spec.target: %q: target is a percentage, not a fraction: for %s%% write %q`, text, p, p)
	}
	return fmt.Errorf(`spec.target: %q: target is a percentage of good events, at least %d, e.g. "99.9": below %d the objective would allow more failed events than good ones`,
		text, MinTarget, MinTarget)
}

// percentToFraction moves the decimal point of a percentage two places left in
// the text, so that "99.9" becomes exactly the double nearest 0.999 (99.9/100
// would be 0.9990000000000001).
func percentToFraction(text string, percent float64) float64 {
	text = strings.TrimSpace(text)
	if strings.HasPrefix(text, "-") {
		return percent / 100
	}
	whole, frac, _ := strings.Cut(text, ".")
	whole = strings.Repeat("0", max(0, 2-len(whole))) + whole
	v, err := strconv.ParseFloat(whole[:len(whole)-2]+"."+whole[len(whole)-2:]+frac, 64)
	if err != nil {
		return percent / 100
	}
	return v
}

// EvaluationInterval reads the evaluation interval of an SLO spec.
func EvaluationInterval(spec *slov1alpha1.ServiceLevelObjectiveSpec) (time.Duration, error) {
	d, err := ParseDuration("spec.evaluationInterval", spec.EvaluationInterval, DefaultEvaluationInterval)
	if err != nil {
		return 0, err
	}
	if d < MinEvaluationInterval {
		return 0, fmt.Errorf("spec.evaluationInterval: %q is shorter than the minimum %s", spec.EvaluationInterval, MinEvaluationInterval)
	}
	return d, nil
}

// Indicator reads the indicator of an SLO spec.
func Indicator(in *slov1alpha1.Indicator) (sli.Indicator, error) {
	var out sli.Indicator
	n := 0
	if in.Ratio != nil {
		n++
		out.Ratio = &sli.Ratio{Errors: in.Ratio.Errors, Total: in.Ratio.Total}
	}
	if in.Latency != nil {
		n++
		out.Latency = &sli.Latency{Success: in.Latency.Success, Total: in.Latency.Total}
	}
	if in.Query != "" {
		n++
		out.Query = in.Query
	}
	out.QueryEvents = in.QueryEvents
	if n != 1 {
		return sli.Indicator{}, errors.New("spec.indicator: exactly one of ratio, latency or query must be set")
	}
	return out, nil
}

// Builtin is the built-in SRE Workbook policy with the API's defaults.
func Builtin() Policy {
	return Policy{
		Name:                 slov1alpha1.BuiltInPolicyName,
		Mode:                 slov1alpha1.ModeEnforce,
		Budget:               budget.DefaultPolicy(),
		ExemptReleaseClasses: DefaultExemptReleaseClasses,
		MaxExceptionDuration: DefaultMaxExceptionDuration,
	}
}

// Policy is an ErrorBudgetPolicy read into the engine's terms, with the parts
// that only enforcement needs.
type Policy struct {
	Name                     string
	Mode                     slov1alpha1.PolicyMode
	Budget                   budget.Policy
	ExemptReleaseClasses     []string
	MaxExceptionDuration     time.Duration
	RequireExceptionApproval bool
	// Alerting: the SLOs under the policy get their Prometheus rules
	// written, unless an SLO says otherwise.
	Alerting bool
	// Severities of the alerts by rule name (spec.alerting.severities).
	Severities map[string]string
}

// AlertingEnabled says whether the rules of slo are written under p: the
// SLO's spec.alerting.enabled if set, else the policy's.
func AlertingEnabled(slo *slov1alpha1.ServiceLevelObjective, p Policy) bool {
	if a := slo.Spec.Alerting; a != nil && a.Enabled != nil {
		return *a.Enabled
	}
	return p.Alerting
}

// FromSpec reads an ErrorBudgetPolicy spec, applying defaults and validating it.
// Errors name the field and say why.
func FromSpec(name string, spec *slov1alpha1.ErrorBudgetPolicySpec) (Policy, error) {
	var errs []error
	p := Policy{Name: name, Mode: spec.Mode, ExemptReleaseClasses: spec.ExemptReleaseClasses}
	if p.Mode == "" {
		p.Mode = slov1alpha1.ModeEnforce
	}
	if p.Mode != slov1alpha1.ModeEnforce && p.Mode != slov1alpha1.ModeDryRun {
		errs = append(errs, fmt.Errorf("spec.mode: %q must be Enforce or DryRun", spec.Mode))
	}
	if p.ExemptReleaseClasses == nil {
		p.ExemptReleaseClasses = DefaultExemptReleaseClasses
	}
	p.RequireExceptionApproval = spec.RequireExceptionApproval
	if a := spec.Alerting; a != nil {
		p.Alerting = a.Enabled
		for rule, sev := range a.Severities {
			if p.Severities == nil {
				p.Severities = map[string]string{}
			}
			p.Severities[rule] = string(sev)
			if !slices.ContainsFunc(spec.Rules, func(r slov1alpha1.PolicyRule) bool { return r.Name == rule }) {
				errs = append(errs, fmt.Errorf("spec.alerting.severities: %q is not a rule of this policy", rule))
			}
		}
	}
	b := budget.Policy{Name: name, OnMissingData: budget.MissingDataRelease, MinEventsAuto: spec.MinEvents == nil}
	if spec.MinEvents != nil {
		b.MinEvents = float64(*spec.MinEvents)
	}
	var err error
	if b.MinDuration, err = ParseDuration("spec.freeze.minDuration", spec.Freeze.MinDuration, DefaultMinDuration); err != nil {
		errs = append(errs, err)
	}
	if b.ReleaseMargin, err = ParseDecimal("spec.freeze.releaseWhen.budgetRemainingAbove", spec.Freeze.ReleaseWhen.BudgetRemainingAbove, budget.DefaultReleaseMargin); err != nil {
		errs = append(errs, err)
	} else if b.ReleaseMargin >= 1 {
		errs = append(errs, fmt.Errorf("spec.freeze.releaseWhen.budgetRemainingAbove: %q must be below 1 (the whole budget), or a budget freeze could never lift",
			spec.Freeze.ReleaseWhen.BudgetRemainingAbove))
	}
	if b.StaleHold, err = ParseDuration("spec.staleHold", spec.StaleHold, DefaultStaleHold); err != nil {
		errs = append(errs, err)
	}
	if p.MaxExceptionDuration, err = ParseDuration("spec.maxExceptionDuration", spec.MaxExceptionDuration, DefaultMaxExceptionDuration); err != nil {
		errs = append(errs, err)
	}
	switch spec.OnMissingData {
	case "", slov1alpha1.MissingDataRelease:
	case slov1alpha1.MissingDataHold:
		b.OnMissingData = budget.MissingDataHold
	default:
		errs = append(errs, fmt.Errorf("spec.onMissingData: %q must be Release or Hold", spec.OnMissingData))
	}
	if spec.MinEvents != nil && *spec.MinEvents < 0 {
		errs = append(errs, fmt.Errorf("spec.minEvents: %d must not be negative (0 disables the low-traffic guard)", *spec.MinEvents))
	}
	if name == slov1alpha1.BuiltInPolicyName {
		errs = append(errs, fmt.Errorf("metadata.name: %q is reserved for budgetgate's built-in policy, which SLOs select with policyRef: {name: built-in}; "+
			"choose another name, e.g. %q, the policy SLOs without a policyRef use", name, slov1alpha1.DefaultPolicyName))
	}
	if len(spec.Rules) == 0 {
		errs = append(errs, errors.New("spec.rules: at least one rule is required"))
	}
	for i := range spec.Rules {
		r, err := rule(i, &spec.Rules[i])
		if err != nil {
			errs = append(errs, err)
			continue
		}
		b.Rules = append(b.Rules, r)
	}
	if len(errs) == 0 {
		if err := budget.ValidatePolicy(b); err != nil {
			errs = append(errs, fmt.Errorf("spec.rules: %w", err))
		}
	}
	p.Budget = b
	return p, errors.Join(errs...)
}

func rule(i int, in *slov1alpha1.PolicyRule) (budget.Rule, error) {
	field := fmt.Sprintf("spec.rules[%d]", i)
	r := budget.Rule{Name: in.Name, Action: budget.ActionFreeze}
	switch in.Action {
	case "", slov1alpha1.ActionFreeze:
	case slov1alpha1.ActionWarn:
		r.Action = budget.ActionWarn
	default:
		return r, fmt.Errorf("%s.action: %q must be Freeze or Warn", field, in.Action)
	}
	if (in.BurnRate == nil) == (in.BudgetRemainingBelow == nil) {
		return r, fmt.Errorf("%s: a rule has exactly one of burnRate or budgetRemainingBelow", field)
	}
	if in.BudgetRemainingBelow != nil {
		v, err := ParseDecimal(field+".budgetRemainingBelow", *in.BudgetRemainingBelow, 0)
		if err != nil {
			return r, err
		}
		if v >= 1 {
			return r, fmt.Errorf("%s.budgetRemainingBelow: %q must be below 1 (the whole budget), or the rule would always fire", field, *in.BudgetRemainingBelow)
		}
		r.BudgetRemainingAtOrBelow = &v
		return r, nil
	}
	br := in.BurnRate
	long, err := ParseDuration(field+".burnRate.longWindow", br.LongWindow, 0)
	if err != nil {
		return r, err
	}
	short, err := ParseDuration(field+".burnRate.shortWindow", br.ShortWindow, 0)
	if err != nil {
		return r, err
	}
	if long == 0 || short == 0 {
		return r, fmt.Errorf("%s.burnRate: longWindow and shortWindow are required", field)
	}
	if short >= long {
		return r, fmt.Errorf("%s.burnRate: shortWindow %s must be shorter than longWindow %s", field, br.ShortWindow, br.LongWindow)
	}
	out := &budget.BurnRateRule{LongWindow: long, ShortWindow: short}
	switch {
	case br.Factor != nil && br.BudgetPercent == nil:
		if out.Factor, err = ParseDecimal(field+".burnRate.factor", *br.Factor, 0); err != nil {
			return r, err
		}
		if out.Factor <= 0 {
			return r, fmt.Errorf("%s.burnRate.factor: %q must be positive", field, *br.Factor)
		}
	case br.BudgetPercent != nil && br.Factor == nil:
		pct, err := ParseDecimal(field+".burnRate.budgetPercent", *br.BudgetPercent, 0)
		if err != nil {
			return r, err
		}
		if pct <= 0 || pct > 100 {
			return r, fmt.Errorf("%s.burnRate.budgetPercent: %q must be in (0, 100]", field, *br.BudgetPercent)
		}
		out.BudgetShare = pct / 100
	default:
		return r, fmt.Errorf("%s.burnRate: set exactly one of factor or budgetPercent", field)
	}
	r.BurnRate = out
	return r, nil
}

// Warnings are what an SLO author should know about an SLO that is valid under
// policy p: rules that can never fire for its target, indicators that probably
// do not measure what was meant, and an error budget shorter than the
// evaluation interval (a full outage spends it before the next evaluation).
func Warnings(spec *slov1alpha1.ServiceLevelObjectiveSpec, o budget.Objective, ind sli.Indicator, p Policy) []string {
	out := budget.Warnings(o, p.Budget)
	out = append(out, sli.Warnings(ind)...)
	if w := budgetWithinInterval(spec, o); w != "" {
		out = append(out, w)
	}
	return out
}

// SpecWarnings are Warnings, each starting with the field of the SLO spec it
// is about, as admission warnings name them ("spec.target: rule ...").
func SpecWarnings(spec *slov1alpha1.ServiceLevelObjectiveSpec, o budget.Objective, ind sli.Indicator, p Policy) []string {
	var out []string
	for _, w := range budget.Warnings(o, p.Budget) {
		out = append(out, "spec.target: "+w)
	}
	for _, w := range sli.Warnings(ind) {
		out = append(out, "spec.indicator."+strings.TrimPrefix(w, "indicator."))
	}
	if w := budgetWithinInterval(spec, o); w != "" {
		out = append(out, "spec.target: "+w)
	}
	return out
}

func budgetWithinInterval(spec *slov1alpha1.ServiceLevelObjectiveSpec, o budget.Objective) string {
	interval, err := EvaluationInterval(spec)
	if err != nil {
		return ""
	}
	if b := time.Duration((1 - o.Target) * float64(o.Window)); b < interval {
		return fmt.Sprintf(
			"the error budget of %s over %s is %s of full outage, shorter than the evaluation interval %s: a full outage spends it before the next evaluation; lower the target, lengthen the window or shorten evaluationInterval",
			spec.Target+"%", model.Duration(o.Window), b.Round(100*time.Millisecond), model.Duration(interval))
	}
	return ""
}

// CheckWindows reports policy windows longer than the SLO window, which could
// never have data that means anything. window is the SLO window as written.
func CheckWindows(o budget.Objective, window string, p budget.Policy) error {
	var errs []error
	for _, r := range p.Rules {
		if r.BurnRate != nil && r.BurnRate.LongWindow > o.Window {
			errs = append(errs, fmt.Errorf("rule %q: longWindow %s is longer than the SLO window %s",
				r.Name, model.Duration(r.BurnRate.LongWindow), window))
		}
	}
	return errors.Join(errs...)
}

// LongestBurnWindow is the longest long window of p's burn-rate rules and
// the rule it belongs to (the first such rule); 0 without burn-rate rules.
// An SLO window shorter than it cannot be evaluated under p.
func LongestBurnWindow(p budget.Policy) (rule string, window time.Duration) {
	for _, r := range p.Rules {
		if r.BurnRate != nil && r.BurnRate.LongWindow > window {
			rule, window = r.Name, r.BurnRate.LongWindow
		}
	}
	return rule, window
}

// PolicyWarnings are what the author of a valid policy should know: it never
// freezes (no Freeze rule), a Freeze rule whose burn factor is below 1
// freezes SLOs that meet their objective, and a release margin not above a
// budget Freeze rule's bound gives that rule no hysteresis. spec is the
// policy as written (for its text), p the same policy read by FromSpec.
func PolicyWarnings(spec *slov1alpha1.ErrorBudgetPolicySpec, p Policy) []string {
	var out []string
	if !slices.ContainsFunc(p.Budget.Rules, func(r budget.Rule) bool { return r.Action == budget.ActionFreeze }) {
		out = append(out, "spec.rules: no rule has action Freeze, so SLOs under this policy never freeze releases; "+
			"set action: Freeze on the rules that should stop releases (mode: DryRun tries a policy out without stopping them)")
	}
	for i, r := range spec.Rules {
		if r.Action == slov1alpha1.ActionWarn {
			continue
		}
		if br := r.BurnRate; br != nil && br.Factor != nil {
			if f, err := strconv.ParseFloat(string(*br.Factor), 64); err == nil && f < 1 {
				out = append(out, fmt.Sprintf("spec.rules[%d].burnRate.factor: %q is below 1, so rule %q fires while the budget is spent more slowly than the SLO window allows, "+
					"freezing SLOs that meet their objective; a factor is a multiple of that even pace, e.g. \"14.4\" (2%% of a 30d budget in 1h)", i, *br.Factor, r.Name))
			}
		}
		if r.BudgetRemainingBelow != nil {
			bound, err := strconv.ParseFloat(string(*r.BudgetRemainingBelow), 64)
			if err == nil && p.Budget.ReleaseMargin <= bound {
				out = append(out, fmt.Sprintf("spec.freeze.releaseWhen.budgetRemainingAbove: %s is not above the bound %q of rule %q, so its freeze lifts as soon as "+
					"the budget is back above that bound, without hysteresis; write a margin above it, e.g. %q",
					marginText(spec), *r.BudgetRemainingBelow, r.Name, strconv.FormatFloat(math.Round((bound+0.05)*1e6)/1e6, 'f', -1, 64)))
			}
		}
	}
	return out
}

// marginText is releaseWhen.budgetRemainingAbove as written, or its default.
func marginText(spec *slov1alpha1.ErrorBudgetPolicySpec) string {
	if m := spec.Freeze.ReleaseWhen.BudgetRemainingAbove; m != "" {
		return strconv.Quote(string(m))
	}
	return fmt.Sprintf("%q (the default)", strconv.FormatFloat(budget.DefaultReleaseMargin, 'f', -1, 64))
}
