// Package rules turns a ServiceLevelObjective and the policy it resolves to
// into Prometheus recording and alerting rules: the error ratio over every
// window the policy uses, Sloth's metadata series, and one alert per policy
// rule that fires on the same data as the budget engine's rule.
//
// It is pure: no client, no clock, no I/O. The thresholds, windows, budget,
// low-traffic guard and release margin all come from internal/budget
// (Windows, Threshold, AllowedErrorRatio, AtLeastBound, AtMostBound,
// MinEvents, ReleaseMargin), never from arithmetic of its own, so a page and
// the freeze it mirrors cannot drift apart. Series and label names follow Sloth's, so Sloth's Grafana
// dashboards read budgetgate's series unchanged (see docs/alerting.md).
package rules

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"github.com/prometheus/common/model"
	"k8s.io/apimachinery/pkg/util/intstr"

	slov1alpha1 "github.com/budgetgate/budgetgate/api/v1alpha1"
	"github.com/budgetgate/budgetgate/internal/budget"
	"github.com/budgetgate/budgetgate/internal/policy"
	"github.com/budgetgate/budgetgate/internal/sli"
)

// Names of recorded series. The slo:* ratios and sloth_slo_info are Sloth's;
// the slo:sli_errors and slo:sli_events counts are budgetgate's own, recorded
// where exactness needs counts and not only ratios.
const (
	// SLIErrorRatio is followed by the window, as Sloth writes it
	// (prometheus/common's model.Duration): slo:sli_error:ratio_rate5m,
	// ..._rate1h, ..._rate30d, ..._rate4w (28d), ..._rate1w (7d).
	SLIErrorRatio = "slo:sli_error:ratio_rate"
	// SLIErrors is the number of failed events over the base window (the
	// policy's shortest), from which the period ratio is a ratio of totals.
	SLIErrors = "slo:sli_errors:increase"
	// SLIEvents is the number of events over a window, for the policy's
	// low-traffic guard (minEvents) and for the period ratio.
	SLIEvents = "slo:sli_events:increase"

	Objective             = "slo:objective:ratio"
	ErrorBudget           = "slo:error_budget:ratio"
	TimePeriodDays        = "slo:time_period:days"
	CurrentBurnRate       = "slo:current_burn_rate:ratio"
	PeriodBurnRate        = "slo:period_burn_rate:ratio"
	PeriodBudgetRemaining = "slo:period_error_budget_remaining:ratio"
	Info                  = "sloth_slo_info"
)

// Label names. The sloth_* ones are Sloth's.
const (
	LabelID        = "sloth_id"
	LabelService   = "sloth_service"
	LabelSLO       = "sloth_slo"
	LabelWindow    = "sloth_window"
	LabelSeverity  = "sloth_severity"
	LabelObjective = "sloth_objective"
	// LabelAlertSeverity is the severity label Alertmanager routes usually match.
	LabelAlertSeverity = "severity"
	LabelRule          = "budgetgate_rule"
	LabelAction        = "budgetgate_action"
	LabelPolicy        = "budgetgate_policy"
)

// Default severities of alerts: a Freeze rule pages, a Warn rule opens a ticket.
const (
	SeverityPage   = "page"
	SeverityTicket = "ticket"
)

// Group name prefixes, followed by the SLO's sloth_id: the error ratios and
// counts with the alerts that read them, and Sloth's metadata series.
const (
	GroupSLIPrefix  = "budgetgate-slo-sli-"
	GroupMetaPrefix = "budgetgate-slo-meta-recordings-"
)

// DefaultBaseWindow is the window of the counts the period ratio is summed
// from when the policy has no burn-rate rule to take its shortest window from.
const DefaultBaseWindow = 5 * time.Minute

// Options adjust what Generate writes.
type Options struct {
	// Service is the sloth_service label; empty: the SLO's namespace.
	Service string
	// Severities maps a policy rule's name to the severity of its alert;
	// rules not in it page when they freeze and open a ticket when they warn.
	Severities map[string]string
	// Labels are added to every alert (the SLO's spec.alerting.labels); they
	// never replace the labels the generator sets.
	Labels map[string]string
}

// Generate returns the rule groups of an SLO under its resolved policy p (as
// policy.Resolve returns it): recording rules for the error ratio over every
// window of budget.Windows, Sloth's metadata series, and one alert per
// policy rule. It fails when the SLO or the policy cannot be evaluated (the
// same checks the controller makes).
//
// Exactness. The period ratio (slo:sli_error:ratio_rate30d) is a ratio of
// totals: the failed events summed over the period divided by all events
// summed over the period, from the base window's counts (slo:sli_errors and
// slo:sli_events over 5m for the built-in policy). That is the true error
// ratio that budgetgate's raw increase(...[30d]) query measures, at the cost
// of two small series per SLO. Sloth's default instead averages the 5-minute
// ratios over the period, which weighs a quiet minute at night like a busy
// one: on 31 days of diurnal traffic (100 to 10,000 requests a minute, one
// incident at night and one at peak) it reads the error ratio 19.9% too high,
// 31.6% of the budget left instead of 43.0%. A query indicator without
// queryEvents has no counts, so its period ratio is its own query over the
// period: exact, and as costly as the raw path.
//
// Burn windows are recorded with the very expressions the controller sends
// (sum(increase(...[1h])) ratios, see internal/sli), so an alert sees the
// numbers the engine sees; their counts feed the low-traffic guard.
func Generate(slo *slov1alpha1.ServiceLevelObjective, p policy.Policy, opts Options) ([]monitoringv1.RuleGroup, error) {
	g, err := newGenerator(slo, p, opts)
	if err != nil {
		return nil, fmt.Errorf("generating rules for ServiceLevelObjective %s/%s: %w", slo.Namespace, slo.Name, err)
	}
	sli := g.sliGroup()
	// The alerts follow the recordings they read in the same group: rules of
	// a group run in order, so an alert sees the ratios of its own
	// evaluation, never those of another group's previous one.
	sli.Rules = append(sli.Rules, g.alerts()...)
	return []monitoringv1.RuleGroup{sli, g.metaGroup()}, nil
}

// ID is the sloth_id of an SLO: "<service>-<name>", as Sloth writes it.
func ID(service, name string) string { return service + "-" + name }

type generator struct {
	slo       *slov1alpha1.ServiceLevelObjective
	obj       budget.Objective
	pol       budget.Policy
	polName   string
	ind       sli.Indicator
	opts      Options
	service   string
	id        string
	windows   []time.Duration // burn windows, shortest first, without the period
	base      time.Duration
	minEvents float64
}

func newGenerator(slo *slov1alpha1.ServiceLevelObjective, p policy.Policy, opts Options) (*generator, error) {
	o, err := policy.Objective(&slo.Spec)
	if err != nil {
		return nil, err
	}
	ind, err := policy.Indicator(&slo.Spec.Indicator)
	if err != nil {
		return nil, err
	}
	if err := sli.ValidateIndicator(ind); err != nil {
		return nil, err
	}
	if err := budget.ValidatePolicy(p.Budget); err != nil {
		return nil, fmt.Errorf("policy %q: %w", p.Name, err)
	}
	if err := policy.CheckWindows(o, model.Duration(o.Window).String(), p.Budget); err != nil {
		return nil, fmt.Errorf("policy %q: %w", p.Name, err)
	}
	g := &generator{slo: slo, obj: o, pol: p.Budget, polName: p.Name, ind: ind, opts: opts,
		service: opts.Service, minEvents: budget.MinEvents(o, p.Budget)}
	if g.service == "" {
		g.service = slo.Namespace
	}
	g.id = ID(g.service, slo.Name)
	for _, w := range budget.Windows(o, p.Budget) {
		if w == o.Window {
			continue
		}
		if w%time.Millisecond != 0 {
			return nil, fmt.Errorf("window %v is not a whole number of milliseconds", w)
		}
		g.windows = append(g.windows, w)
	}
	if len(g.windows) == 0 {
		g.windows = []time.Duration{DefaultBaseWindow}
	}
	g.base = g.windows[0]
	names := map[string]string{}
	for _, r := range p.Budget.Rules {
		a := AlertName(r.Name)
		if other, dup := names[a]; dup {
			return nil, fmt.Errorf("rules %q and %q both make alert %s; rename one", other, r.Name, a)
		}
		names[a] = r.Name
	}
	return g, nil
}

// AlertName is the alert of a policy rule: "SLO" and the rule's name in
// CamelCase (fast-burn: SLOFastBurn, budget-exhausted: SLOBudgetExhausted).
func AlertName(rule string) string {
	var b strings.Builder
	b.WriteString("SLO")
	up := true
	for _, r := range rule {
		switch {
		case r == '-' || r == '_' || r == '.' || r == ' ':
			up = true
		case up:
			b.WriteString(strings.ToUpper(string(r)))
			up = false
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// hasEvents: the indicator can count its events (ratio, latency, or a query with queryEvents).
func (g *generator) hasEvents() bool { return g.ind.Query == "" || g.ind.QueryEvents != "" }

func dur(w time.Duration) string { return model.Duration(w).String() }

// num writes a float so that Prometheus parses back the same float64.
func num(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "+Inf"
	case math.IsInf(f, -1):
		return "-Inf"
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

func (g *generator) idLabels() map[string]string {
	return map[string]string{LabelID: g.id, LabelService: g.service, LabelSLO: g.slo.Name}
}

// filter is the selector of the SLO's own series: {sloth_id="...",...}.
func (g *generator) filter() string {
	ls := model.LabelSet{}
	for k, v := range g.idLabels() {
		ls[model.LabelName(k)] = model.LabelValue(v)
	}
	return ls.String()
}

func (g *generator) windowLabels(w time.Duration) map[string]string {
	ls := g.idLabels()
	ls[LabelWindow] = dur(w)
	return ls
}

func record(name, expr string, labels map[string]string) monitoringv1.Rule {
	return monitoringv1.Rule{Record: name, Expr: intstr.FromString(expr), Labels: labels}
}

func increase(selector string, w time.Duration) string {
	return "sum(increase(" + selector + "[" + dur(w) + "]))"
}

// ratioExpr is the error ratio over w exactly as internal/sli measures it.
func (g *generator) ratioExpr(w time.Duration) string { return sli.RatioExpr(g.ind, dur(w)) }

// eventsExpr is the number of events over w; only when hasEvents.
func (g *generator) eventsExpr(w time.Duration) string { return sli.EventsExpr(g.ind, dur(w)) }

// errorsExpr is the number of failed events over w; only when hasEvents.
func (g *generator) errorsExpr(w time.Duration) string {
	switch {
	case g.ind.Ratio != nil:
		return increase(g.ind.Ratio.Errors, w) + " or vector(0)"
	case g.ind.Latency != nil:
		return increase(g.ind.Latency.Total, w) + " - " + increase(g.ind.Latency.Success, w)
	}
	return g.ratioExpr(w) + " * " + g.eventsExpr(w)
}

func (g *generator) sliGroup() monitoringv1.RuleGroup {
	var rules []monitoringv1.Rule
	for _, w := range g.windows {
		rules = append(rules, record(SLIErrorRatio+dur(w), g.ratioExpr(w), g.windowLabels(w)))
		if g.hasEvents() {
			rules = append(rules, record(SLIEvents+dur(w), g.eventsExpr(w), g.windowLabels(w)))
		}
		if w == g.base && g.hasEvents() {
			rules = append(rules, record(SLIErrors+dur(w), g.errorsExpr(w), g.windowLabels(w)))
		}
	}
	period := g.obj.Window
	if g.hasEvents() {
		f, b, p := g.filter(), dur(g.base), dur(period)
		errs, events := SLIErrors+b+f, SLIEvents+b+f
		// Ratio of totals: Σ errors ÷ Σ events over the period, never an
		// average of the base window's ratios (see Generate).
		rules = append(rules,
			record(SLIErrorRatio+p,
				"sum_over_time("+errs+"["+p+"])\n/\nsum_over_time("+events+"["+p+"])\n",
				g.windowLabels(period)),
			// Events over the period: the mean count per base window times
			// the number of base windows in the period.
			record(SLIEvents+p,
				"avg_over_time("+events+"["+p+"]) * "+num(float64(period)/float64(g.base)),
				g.windowLabels(period)))
	} else {
		rules = append(rules, record(SLIErrorRatio+dur(period), g.ratioExpr(period), g.windowLabels(period)))
	}
	return monitoringv1.RuleGroup{Name: GroupSLIPrefix + g.id, Rules: rules}
}

func (g *generator) metaGroup() monitoringv1.RuleGroup {
	f := g.filter()
	on := "on(" + LabelID + ", " + LabelSLO + ", " + LabelService + ") group_left"
	info := g.idLabels()
	info[LabelObjective] = targetText(g.slo.Spec.Target)
	info[LabelPolicy] = g.polName
	return monitoringv1.RuleGroup{Name: GroupMetaPrefix + g.id, Rules: []monitoringv1.Rule{
		record(Objective, "vector("+num(g.obj.Target)+")", g.idLabels()),
		record(ErrorBudget, "vector("+num(budget.AllowedErrorRatio(g.obj.Target))+")", g.idLabels()),
		record(TimePeriodDays, "vector("+num(g.obj.Window.Hours()/24)+")", g.idLabels()),
		record(CurrentBurnRate, SLIErrorRatio+dur(g.base)+f+"\n/ "+on+"\n"+ErrorBudget+f+"\n", g.idLabels()),
		record(PeriodBurnRate, SLIErrorRatio+dur(g.obj.Window)+f+"\n/ "+on+"\n"+ErrorBudget+f+"\n", g.idLabels()),
		record(PeriodBudgetRemaining, "1 - "+PeriodBurnRate+f, g.idLabels()),
		record(Info, "vector(1)", info),
	}}
}

func (g *generator) severity(r budget.Rule) string {
	if s, ok := g.opts.Severities[r.Name]; ok && s != "" {
		return s
	}
	if r.Action == budget.ActionFreeze {
		return SeverityPage
	}
	return SeverityTicket
}

// burnCondition is "the burn rate over w is at or above threshold, and w
// has data": BurnRate(ratio, target) ≥ AtLeastBound(threshold), with the
// events over w at least MinEvents when the guard applies.
func (g *generator) burnCondition(w time.Duration, threshold float64) string {
	f := g.filter()
	s := SLIErrorRatio + dur(w) + f + " / " + num(budget.AllowedErrorRatio(g.obj.Target)) + " >= " + num(budget.AtLeastBound(threshold))
	if g.guarded() {
		s += "\n  and ignoring(" + LabelWindow + ") " + SLIEvents + dur(w) + f + " >= " + num(g.minEvents)
	}
	return s
}

// budgetCondition is "the remaining budget over the SLO window is at or below
// bound, and the window has data": 1 − BurnRate(ratio, target) ≤
// AtMostBound(bound), with the guard on the window's events.
func (g *generator) budgetCondition(bound float64) string {
	p, f := dur(g.obj.Window), g.filter()
	s := "max without(" + LabelWindow + ") (\n  1 - " + SLIErrorRatio + p + f + " / " +
		num(budget.AllowedErrorRatio(g.obj.Target)) + " <= " + num(budget.AtMostBound(bound))
	if g.guarded() {
		s += "\n  and ignoring(" + LabelWindow + ") " + SLIEvents + p + f + " >= " + num(g.minEvents)
	}
	return s + "\n)\n"
}

// alertsFilter selects the SLO's firing alert of that name in ALERTS.
func (g *generator) alertsFilter(alert string) string {
	ls := model.LabelSet{"alertname": model.LabelValue(alert), "alertstate": "firing"}
	for k, v := range g.idLabels() {
		ls[model.LabelName(k)] = model.LabelValue(v)
	}
	return ls.String()
}

func (g *generator) guarded() bool { return g.minEvents > 0 && g.hasEvents() }

func (g *generator) alerts() []monitoringv1.Rule {
	var rules []monitoringv1.Rule
	for _, r := range g.pol.Rules {
		sev := g.severity(r)
		labels := map[string]string{}
		for k, v := range g.opts.Labels {
			labels[k] = v
		}
		maps.Copy(labels, map[string]string{
			LabelAlertSeverity: sev,
			LabelSeverity:      sev,
			LabelRule:          r.Name,
			LabelAction:        string(r.Action),
		})
		var expr, summary string
		title := "error budget burn rate is too fast"
		switch {
		case r.BurnRate != nil:
			br := r.BurnRate
			th := br.Threshold(g.obj)
			expr = "max without(" + LabelWindow + ") (\n  " + g.burnCondition(br.LongWindow, th) +
				"\n)\nand ignoring(" + LabelWindow + ") (\n  " + g.burnCondition(br.ShortWindow, th) + "\n)\n"
			summary = fmt.Sprintf("burn rate at or above %sx over %s and %s", num(th), dur(br.LongWindow), dur(br.ShortWindow))
		case r.BudgetRemainingAtOrBelow != nil:
			bound := *r.BudgetRemainingAtOrBelow
			expr = g.budgetCondition(bound)
			// The engine's hysteresis: a budget Freeze rule that fired keeps
			// firing until the budget is above the release margin. The
			// alert's memory is its own ALERTS series from the previous
			// evaluation of the group.
			if margin := budget.ReleaseMargin(g.pol); r.Action == budget.ActionFreeze && margin > bound {
				expr = "(\n" + expr + ")\nor\n(\n" + g.budgetCondition(margin) +
					"  and on(" + LabelID + ", " + LabelService + ", " + LabelSLO + ") ALERTS" +
					g.alertsFilter(AlertName(r.Name)) + "\n)\n"
			}
			summary = fmt.Sprintf("error budget over %s at or below %s%% left", dur(g.obj.Window), num(bound*100))
			title = "error budget is spent"
			if bound > 0 {
				title = "error budget is running out"
			}
		default:
			continue // ValidatePolicy rejects it
		}
		what := "opens a ticket"
		if sev == SeverityPage {
			what = "pages"
		}
		act := "warns"
		if r.Action == budget.ActionFreeze {
			act = "freezes the releases of the workloads the SLO protects"
		}
		rules = append(rules, monitoringv1.Rule{
			Alert:  AlertName(r.Name),
			Expr:   intstr.FromString(expr),
			Labels: labels,
			Annotations: map[string]string{
				"title": fmt.Sprintf("(%s) %s %s SLO %s.", sev, g.service, g.slo.Name, title),
				"summary": fmt.Sprintf("SLO %s/%s (target %s%% over %s): rule %s of policy %q fires: %s.",
					g.slo.Namespace, g.slo.Name, targetText(g.slo.Spec.Target), dur(g.obj.Window), r.Name, g.polName, summary),
				"description": fmt.Sprintf("This alert %s while the rule fires; on the same data budgetgate %s (action %s).",
					what, act, r.Action),
			},
		})
	}
	return rules
}

func targetText(t slov1alpha1.Decimal) string { return strings.TrimSpace(string(t)) }

// Windows are the windows whose error ratio Generate records for an SLO
// under p, shortest first, the SLO window last.
func Windows(slo *slov1alpha1.ServiceLevelObjective, p policy.Policy) ([]time.Duration, error) {
	g, err := newGenerator(slo, p, Options{})
	if err != nil {
		return nil, err
	}
	return append(slices.Clone(g.windows), g.obj.Window), nil
}

var errUnsupported = errors.New("not supported in a Prometheus rule file")

// Recorded is the one query through which the controller reads the SLO's
// recorded series for every window (instead of one raw increase() query per
// window), and the hash of the recording rules that write them.
//
// History: a burn window's recorded ratio is the raw expression evaluated by
// Prometheus at the group's last evaluation, so it is right from the first
// evaluation of the rules on. The SLO window's ratio and count are sums of
// the base window's counts over the SLO window, right only once the counts
// have been recorded for the whole window (or backfilled with promtool tsdb
// create-blocks-from rules): HistoryWindow says which window that is, and
// false when the SLO window is recorded from a raw expression (a query
// indicator without queryEvents).
type Recorded struct {
	Query sli.Recorded
	// Hash identifies the recording rules: another hash means other series.
	Hash string
	// HistoryWindow is the window whose recorded value is a sum over history.
	HistoryWindow time.Duration
	NeedsHistory  bool
}

// RecordedQuery returns the Recorded of an SLO under its resolved policy,
// for the rules Generate writes with opts.
func RecordedQuery(slo *slov1alpha1.ServiceLevelObjective, p policy.Policy, opts Options) (Recorded, error) {
	g, err := newGenerator(slo, p, opts)
	if err != nil {
		return Recorded{}, err
	}
	all := append(slices.Clone(g.windows), g.obj.Window)
	slices.Sort(all)
	all = slices.Compact(all)
	names := make([]string, 0, 2*len(all))
	for _, w := range all {
		names = append(names, SLIErrorRatio+dur(w))
		if g.hasEvents() {
			names = append(names, SLIEvents+dur(w))
		}
	}
	matchers := []string{model.MetricNameLabel + `=~"` + strings.Join(names, "|") + `"`}
	for _, k := range []string{LabelID, LabelService, LabelSLO} {
		matchers = append(matchers, k+"="+strconv.Quote(g.idLabels()[k]))
	}
	windows := map[string]time.Duration{}
	for _, w := range all {
		windows[dur(w)] = w
	}
	classify := func(m model.Metric) (time.Duration, bool, bool) {
		w, ok := windows[string(m[LabelWindow])]
		if !ok {
			return 0, false, false
		}
		switch string(m[model.MetricNameLabel]) {
		case SLIErrorRatio + dur(w):
			return w, false, true
		case SLIEvents + dur(w):
			return w, true, g.hasEvents()
		}
		return 0, false, false
	}
	var recordings []monitoringv1.Rule
	for _, r := range g.sliGroup().Rules {
		if r.Record != "" {
			recordings = append(recordings, r)
		}
	}
	b, err := json.Marshal(recordings)
	if err != nil {
		return Recorded{}, err
	}
	sum := sha256.Sum256(b)
	return Recorded{
		Query:         sli.Recorded{Expr: "{" + strings.Join(matchers, ", ") + "}", Classify: classify, WithEvents: g.hasEvents()},
		Hash:          hex.EncodeToString(sum[:8]),
		HistoryWindow: g.obj.Window,
		NeedsHistory:  g.hasEvents(),
	}, nil
}
