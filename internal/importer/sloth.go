package importer

import (
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	slov1alpha1 "github.com/budgetgate/budgetgate/api/v1alpha1"
)

// Sloth (https://sloth.dev): PrometheusServiceLevel objects and the CLI's
// `version: prometheus/v1` files hold the same spec, camelCase in the
// former and snake_case in the latter. An SLO's period is not in the spec
// but Sloth's --default-slo-period (30d by default); its alert windows are
// Sloth's defaults (the SRE Workbook's, for 30d and 28d) or an AlertWindows
// document for the period.

type k8sMeta struct {
	Name      string              `yaml:"name"`
	Namespace string              `yaml:"namespace"`
	Labels    map[string]string   `yaml:"labels"`
	Rest      map[string]anything `yaml:",inline"` // uid, annotations, managedFields...: not read
}

type slothObject struct {
	APIVersion string    `yaml:"apiVersion"`
	Kind       string    `yaml:"kind"`
	Metadata   k8sMeta   `yaml:"metadata"`
	Spec       slothSpec `yaml:"spec"`
	Status     anything  `yaml:"status"`
}

type slothCLI struct {
	Version   string `yaml:"version"`
	slothSpec `yaml:",inline"`
}

type slothSpec struct {
	Service    string            `yaml:"service"`
	Labels     map[string]string `yaml:"labels"`
	SLOPlugins *slothPlugins     `yaml:"sloPlugins"`
	SLOs       []slothSLO        `yaml:"slos"`
}

type slothSLO struct {
	Name        string            `yaml:"name"`
	Description string            `yaml:"description"`
	Objective   number            `yaml:"objective"`
	Plugins     *slothPlugins     `yaml:"plugins"`
	Labels      map[string]string `yaml:"labels"`
	SLI         slothSLI          `yaml:"sli"`
	Alerting    slothAlerting     `yaml:"alerting"`
}

type slothSLI struct {
	Raw *struct {
		ErrorRatioQuery string `yaml:"errorRatioQuery"`
	} `yaml:"raw"`
	Events *struct {
		ErrorQuery string `yaml:"errorQuery"`
		TotalQuery string `yaml:"totalQuery"`
	} `yaml:"events"`
	Plugin *struct {
		ID      string            `yaml:"id"`
		Options map[string]string `yaml:"options"`
	} `yaml:"plugin"`
}

type slothAlerting struct {
	Name        string            `yaml:"name"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
	PageAlert   slothAlert        `yaml:"pageAlert"`
	TicketAlert slothAlert        `yaml:"ticketAlert"`
}

type slothAlert struct {
	Disable     bool              `yaml:"disable"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

type slothPlugins struct {
	OverridePrevious bool `yaml:"overridePrevious"`
	Chain            []struct {
		ID       string   `yaml:"id"`
		Config   anything `yaml:"config"`
		Priority int      `yaml:"priority"`
	} `yaml:"chain"`
}

// slothCLIKeys are the snake_case keys of the CLI spec.
var slothCLIKeys = map[string]string{
	"errorRatioQuery": "error_ratio_query",
	"errorQuery":      "error_query",
	"totalQuery":      "total_query",
	"pageAlert":       "page_alert",
	"ticketAlert":     "ticket_alert",
	"sloPlugins":      "slo_plugins",
}

type slothWindowsObject struct {
	APIVersion string   `yaml:"apiVersion"`
	Kind       string   `yaml:"kind"`
	Metadata   anything `yaml:"metadata"`
	Spec       struct {
		SLOPeriod string         `yaml:"sloPeriod"`
		Page      slothQuickSlow `yaml:"page"`
		Ticket    slothQuickSlow `yaml:"ticket"`
	} `yaml:"spec"`
}

type slothQuickSlow struct {
	Quick slothWindow `yaml:"quick"`
	Slow  slothWindow `yaml:"slow"`
}

type slothWindow struct {
	ErrorBudgetPercent number `yaml:"errorBudgetPercent"`
	ShortWindow        string `yaml:"shortWindow"`
	LongWindow         string `yaml:"longWindow"`
}

// slothWindowSet is the alerting of Sloth SLOs of one period: the page
// windows become Freeze rules, the ticket windows Warn rules.
type slothWindowSet struct {
	period      string
	page        []slov1alpha1.PolicyRule
	ticket      []slov1alpha1.PolicyRule
	builtinLike bool   // the same budget shares and windows as Sloth's defaults
	from        string // the AlertWindows document, or "" for Sloth's defaults
	unknown     []string
}

// slothDefaultWindows are Sloth's windows for 30d and 28d (the SRE
// Workbook's, as budget shares): the built-in policy's burn rules.
func slothDefaultWindows(period string) *slothWindowSet {
	return &slothWindowSet{
		period: period,
		page: []slov1alpha1.PolicyRule{
			burnRule(ruleFastBurn, slov1alpha1.ActionFreeze, "1h", "5m", "", "2"),
			burnRule(ruleSlowBurn, slov1alpha1.ActionFreeze, "6h", "30m", "", "5"),
		},
		ticket: []slov1alpha1.PolicyRule{
			burnRule(ruleGradualBurn, slov1alpha1.ActionWarn, "1d", "2h", "", "10"),
			burnRule(ruleChronicBurn, slov1alpha1.ActionWarn, "3d", "6h", "", "10"),
		},
		builtinLike: true,
	}
}

// readSlothWindows reads the AlertWindows documents and decides the period
// of Sloth SLOs.
func (c *converter) readSlothWindows(docs []*document) error {
	c.slothWindows = map[string]*slothWindowSet{}
	var errs []error
	periods := map[time.Duration]string{}
	for _, d := range docs {
		var w slothWindowsObject
		unknown, err := decode(d.node, &w, nil)
		if err != nil {
			errs = append(errs, &DocumentError{Input: d.input, Document: d.index, Line: d.line, Kind: d.kindText(), Err: err})
			continue
		}
		set, p, err := slothWindowRules(&w, d.where())
		if err != nil {
			errs = append(errs, &DocumentError{Input: d.input, Document: d.index, Line: d.line, Kind: d.kindText(), Err: err})
			continue
		}
		set.unknown = unknown
		if other, dup := periods[p]; dup {
			errs = append(errs, &DocumentError{Input: d.input, Document: d.index, Line: d.line, Kind: d.kindText(),
				Err: fmt.Errorf("a second AlertWindows for the period %s (the first: %s); Sloth uses one per period", set.period, c.slothWindows[other].from)})
			continue
		}
		periods[p] = set.period
		c.slothWindows[set.period] = set
	}
	switch {
	case c.opts.SlothPeriod != "":
		p, _, err := duration(c.opts.SlothPeriod)
		if err != nil {
			errs = append(errs, fmt.Errorf("the Sloth SLO period: %w", err))
		}
		c.slothPeriod = string(p)
	case len(c.slothWindows) == 1:
		for p := range c.slothWindows {
			c.slothPeriod = p
		}
	case len(c.slothWindows) > 1:
		errs = append(errs, fmt.Errorf("AlertWindows for the periods %s: say which is the period of the Sloth SLOs (Sloth's --default-slo-period) with --sloth-period",
			strings.Join(sortedKeys(c.slothWindows), ", ")))
	default:
		c.slothPeriod = "30d"
	}
	return errors.Join(errs...)
}

func slothWindowRules(w *slothWindowsObject, from string) (*slothWindowSet, time.Duration, error) {
	period, pd, err := duration(w.Spec.SLOPeriod)
	if err != nil {
		return nil, 0, fmt.Errorf("spec.sloPeriod: %w", err)
	}
	set := &slothWindowSet{period: string(period), from: from}
	var errs []error
	add := func(field, ruleName string, action slov1alpha1.RuleAction, win slothWindow) slov1alpha1.PolicyRule {
		long, ld, err1 := duration(win.LongWindow)
		short, sd, err2 := duration(win.ShortWindow)
		if err := errors.Join(err1, err2); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", field, err))
		} else if sd >= ld {
			errs = append(errs, fmt.Errorf("%s: shortWindow %s is not shorter than longWindow %s", field, win.ShortWindow, win.LongWindow))
		} else if ld > pd {
			errs = append(errs, fmt.Errorf("%s: longWindow %s is longer than the SLO period %s", field, win.LongWindow, w.Spec.SLOPeriod))
		}
		pct := ""
		if !win.ErrorBudgetPercent.set() {
			errs = append(errs, fmt.Errorf("%s.errorBudgetPercent: required", field))
		} else if r := win.ErrorBudgetPercent.rat; r.Sign() <= 0 || r.Cmp(big.NewRat(100, 1)) > 0 {
			errs = append(errs, fmt.Errorf("%s.errorBudgetPercent: %s must be above 0 and at most 100", field, win.ErrorBudgetPercent.Text))
		} else {
			pct, _ = decimal(r)
		}
		return burnRule(ruleName, action, long, short, "", pct)
	}
	set.page = []slov1alpha1.PolicyRule{
		add("spec.page.quick", ruleFastBurn, slov1alpha1.ActionFreeze, w.Spec.Page.Quick),
		add("spec.page.slow", ruleSlowBurn, slov1alpha1.ActionFreeze, w.Spec.Page.Slow),
	}
	set.ticket = []slov1alpha1.PolicyRule{
		add("spec.ticket.quick", ruleGradualBurn, slov1alpha1.ActionWarn, w.Spec.Ticket.Quick),
		add("spec.ticket.slow", ruleChronicBurn, slov1alpha1.ActionWarn, w.Spec.Ticket.Slow),
	}
	if err := errors.Join(errs...); err != nil {
		return nil, 0, err
	}
	def := slothDefaultWindows(set.period)
	set.builtinLike = sameRules(set.page, def.page) && sameRules(set.ticket, def.ticket)
	return set, pd, nil
}

func sameRules(a, b []slov1alpha1.PolicyRule) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !samePolicy(newPolicy("x", a[i:i+1]), newPolicy("x", b[i:i+1])) {
			return false
		}
	}
	return true
}

// sloth converts a PrometheusServiceLevel or a CLI spec: one budgetgate SLO per Sloth SLO.
func (c *converter) sloth(d *document) error {
	var spec slothSpec
	var unknown []string
	var err error
	namespace, prefix, what := "", "slos", "Sloth spec"
	var meta k8sMeta
	if d.format() == formatSlothK8s {
		var obj slothObject
		unknown, err = decode(d.node, &obj, nil)
		spec, meta, prefix = obj.Spec, obj.Metadata, "spec.slos"
		namespace = meta.Namespace
		what = "Sloth PrometheusServiceLevel " + objectKey(meta.Namespace, meta.Name)
	} else {
		var cli slothCLI
		unknown, err = decode(d.node, &cli, slothCLIKeys)
		spec = cli.slothSpec
		what = "Sloth " + slothSpecVersion + " spec"
	}
	if err != nil {
		return err
	}
	if c.opts.Namespace != "" {
		namespace = c.opts.Namespace
	}
	if spec.Service == "" {
		return errors.New("service: required (Sloth names its SLOs' series after it)")
	}
	if len(spec.SLOs) == 0 {
		return errors.New("slos: no SLO to import")
	}
	var errs []error
	for i := range spec.SLOs {
		field := fmt.Sprintf("%s[%d]", prefix, i)
		s, err := c.slothSLO(d, &spec, i, field, namespace, what)
		if err != nil {
			errs = append(errs, fmt.Errorf("SLO %q (%s): %w", spec.SLOs[i].Name, field, err))
			continue
		}
		s.Findings = append(s.Findings, unknownFindings(unknown, field, prefix+"[")...)
		if len(meta.Labels) > 0 {
			l, fs := labels("metadata.labels", meta.Labels)
			s.Object.Labels = l
			s.Findings = append(s.Findings, fs...)
		}
	}
	return errors.Join(errs...)
}

// mergeOver is a copy of a with b's labels set over it.
func mergeOver(a, b map[string]string) map[string]string {
	if len(a)+len(b) == 0 {
		return nil
	}
	out := map[string]string{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

// unknownFindings are the unknown fields of a document that concern the
// object at field: those under it, and those under no sibling (listPrefix
// is the prefix every sibling's field starts with, e.g. "spec.slos[").
func unknownFindings(unknown []string, field, listPrefix string) []Finding {
	var fs []Finding
	for _, u := range unknown {
		if strings.HasPrefix(u, field+".") || !strings.HasPrefix(u, listPrefix) {
			fs = append(fs, differs(u, "not a field import knows, so not carried over"))
		}
	}
	return fs
}

func (c *converter) slothSLO(d *document, spec *slothSpec, i int, field, namespace, what string) (*SLO, error) {
	src := &spec.SLOs[i]
	s := &SLO{From: fmt.Sprintf("%s: %s, SLO %q", d.where(), what, src.Name)}
	var fs []Finding
	if src.Name == "" {
		return nil, errors.New("name: required")
	}
	// budgetgate's sloth_service is the namespace: name the SLO after the
	// Sloth SLO alone when the namespace is the service, so that the
	// series keep Sloth's ids.
	base := src.Name
	if namespace != spec.Service {
		base = spec.Service + "-" + src.Name
	}
	n, nfs, err := name(field+".name", base)
	if err != nil {
		return nil, err
	}
	fs = append(fs, nfs...)
	s.Object = newSLO(namespace, n)
	switch {
	case namespace == spec.Service:
	case namespace == "":
		fs = append(fs, differs("service", "Sloth's series carry sloth_service=%q, sloth_slo=%q; budgetgate's carry the SLO's namespace and name "+
			"(sloth_slo=%q): import with -n %s to keep Sloth's ids", spec.Service, src.Name, n, spec.Service))
	default:
		fs = append(fs, differs("service", "Sloth's series carry sloth_service=%q, sloth_slo=%q; budgetgate's carry sloth_service=%q (the namespace), sloth_slo=%q: "+
			"import with -n %s to keep Sloth's ids", spec.Service, src.Name, namespace, n, spec.Service))
	}

	// Objective and period.
	if !src.Objective.set() {
		return nil, errors.New("objective: required")
	}
	t, tfs, err := target(field+".objective", src.Objective.rat, src.Objective.Text)
	if err != nil {
		return nil, err
	}
	s.Object.Spec.Target = t
	fs = append(fs, tfs...)
	s.Object.Spec.Window = slov1alpha1.Duration(c.slothPeriod)
	fs = append(fs, note("", "window %s: Sloth's SLO period is not part of its spec; it is %s", c.slothPeriod, c.periodSource()))
	desc, dfs := description(field+".description", src.Description)
	s.Object.Spec.Description = desc
	fs = append(fs, dfs...)

	// Indicator.
	ind, ifs, err := slothIndicator(field+".sli", &src.SLI)
	if err != nil {
		return nil, err
	}
	s.Object.Spec.Indicator = ind
	fs = append(fs, ifs...)

	// Labels: Sloth puts the spec's and the SLO's on every rule, the
	// alerting's on the alerts; budgetgate puts spec.alerting.labels on
	// the alerts only.
	alerts := !src.Alerting.PageAlert.Disable || !src.Alerting.TicketAlert.Disable
	if recorded := mergeOver(spec.Labels, src.Labels); len(recorded) > 0 && alerts {
		fs = append(fs, differs(field+".labels", "Sloth adds %s to every recording and alert rule of the SLO; budgetgate adds them to its alerts "+
			"(spec.alerting.labels), not to its recorded series", flowMap(recorded)))
	} else if len(recorded) > 0 {
		fs = append(fs, differs(field+".labels", "Sloth adds %s to every recording rule of the SLO; budgetgate's recorded series carry no labels of the SLO's", flowMap(recorded)))
	}
	if alerts {
		al, afs := alertLabels(field+".labels", mergeOver(mergeOver(spec.Labels, src.Labels), src.Alerting.Labels))
		withAlertLabels(s.Object, al)
		fs = append(fs, afs...)
	}
	for _, p := range []struct {
		field   string
		plugins *slothPlugins
	}{{"sloPlugins", spec.SLOPlugins}, {field + ".plugins", src.Plugins}} {
		if p.plugins != nil && len(p.plugins.Chain) > 0 {
			var ids []string
			for _, pl := range p.plugins.Chain {
				ids = append(ids, pl.ID)
			}
			fs = append(fs, differs(p.field, "Sloth SLO plugins %s change the rules Sloth generates; budgetgate runs no plugins", strings.Join(ids, ", ")))
		}
	}

	// Alerting.
	if !src.Alerting.PageAlert.Disable || !src.Alerting.TicketAlert.Disable {
		fs = append(fs, slothAlertingFindings(field+".alerting", &src.Alerting)...)
	}
	p, pfs, err := c.slothPolicy(field+".alerting", &src.Alerting)
	if err != nil {
		return nil, err
	}
	fs = append(fs, pfs...)
	if src.Alerting.PageAlert.Disable && src.Alerting.TicketAlert.Disable {
		alertingOff(s.Object)
	}
	s.Findings = fs
	if err := checkSLO(s.Object, policyObject(p)); err != nil {
		return nil, err
	}
	if p != nil {
		if err := c.usePolicy(s, p); err != nil {
			return nil, err
		}
	}
	c.addSLO(s)
	return s, nil
}

func policyObject(p *Policy) *slov1alpha1.ErrorBudgetPolicy {
	if p == nil {
		return nil
	}
	return p.Object
}

func (c *converter) periodSource() string {
	switch {
	case c.opts.SlothPeriod != "":
		return "--sloth-period"
	case len(c.slothWindows) == 1:
		return "the sloPeriod of the AlertWindows given"
	}
	return "Sloth's default (--sloth-period sets another)"
}

func slothIndicator(field string, sli *slothSLI) (slov1alpha1.Indicator, []Finding, error) {
	kinds := 0
	for _, set := range []bool{sli.Raw != nil, sli.Events != nil, sli.Plugin != nil} {
		if set {
			kinds++
		}
	}
	if kinds != 1 {
		return slov1alpha1.Indicator{}, nil, fmt.Errorf("%s: exactly one of raw, events and plugin must be set", field)
	}
	switch {
	case sli.Plugin != nil:
		opts := ""
		if len(sli.Plugin.Options) > 0 {
			opts = " with options " + flowMap(sli.Plugin.Options)
		}
		return slov1alpha1.Indicator{}, nil, fmt.Errorf("%s.plugin: %w: the SLI plugin %q%s: budgetgate runs no Sloth plugins; "+
			"write the queries the plugin generates as a sli.events (or sli.raw) SLI and import that", field, ErrUnsupported, sli.Plugin.ID, opts)
	case sli.Raw != nil:
		q, err := windowVar(sli.Raw.ErrorRatioQuery)
		if err != nil {
			return slov1alpha1.Indicator{}, nil, fmt.Errorf("%s.raw.errorRatioQuery: %w", field, err)
		}
		if q == "" {
			return slov1alpha1.Indicator{}, nil, fmt.Errorf("%s.raw.errorRatioQuery: required", field)
		}
		return slov1alpha1.Indicator{Query: q}, []Finding{
			note(field+".raw", "a query indicator: the error ratio query as written, with $window for {{.window}}; with no count of events, "+
				"the policy's low-traffic guard (minEvents) does not apply (add spec.indicator.queryEvents for it)"),
		}, nil
	}
	e, err1 := windowVar(sli.Events.ErrorQuery)
	t, err2 := windowVar(sli.Events.TotalQuery)
	if err := errors.Join(err1, err2); err != nil {
		return slov1alpha1.Indicator{}, nil, fmt.Errorf("%s.events: %w", field, err)
	}
	if e == "" || t == "" {
		return slov1alpha1.Indicator{}, nil, fmt.Errorf("%s.events: errorQuery and totalQuery are required", field)
	}
	ind, notes := eventIndicator(e, t, false)
	var fs []Finding
	for _, n := range notes {
		fs = append(fs, note(field+".events", "%s", n))
	}
	return ind.api(), fs, nil
}

func (i indicatorSpec) api() slov1alpha1.Indicator {
	switch {
	case i.ratio != nil:
		return slov1alpha1.Indicator{Ratio: &slov1alpha1.RatioIndicator{Errors: i.ratio[0], Total: i.ratio[1]}}
	case i.latency != nil:
		return slov1alpha1.Indicator{Latency: &slov1alpha1.LatencyIndicator{Success: i.latency[0], Total: i.latency[1]}}
	}
	return slov1alpha1.Indicator{Query: i.query, QueryEvents: i.queryEvents}
}

// slothAlertingFindings: what of Sloth's alerts budgetgate's do not keep.
// Their labels are spec.alerting.labels, and the severity labels of the page
// and ticket alerts the policy's severities.
func slothAlertingFindings(field string, a *slothAlerting) []Finding {
	var parts []string
	if a.Name != "" {
		parts = append(parts, fmt.Sprintf("the alert name %s", a.Name))
	}
	for _, m := range []struct {
		what string
		m    map[string]string
	}{
		{"annotations", a.Annotations},
		{"pageAlert.labels", without(a.PageAlert.Labels, "severity")}, {"pageAlert.annotations", a.PageAlert.Annotations},
		{"ticketAlert.labels", without(a.TicketAlert.Labels, "severity")}, {"ticketAlert.annotations", a.TicketAlert.Annotations},
	} {
		if len(m.m) > 0 {
			parts = append(parts, m.what+" "+flowMap(m.m))
		}
	}
	if len(parts) == 0 {
		return nil
	}
	return []Finding{differs(field, "%s: budgetgate names its alerts after the policy's rules (SLOFastBurn, SLOSlowBurn, ...), with its own annotations; "+
		"the labels it adds are the SLO's spec.alerting.labels and the policy's severity of each rule", strings.Join(parts, "; "))}
}

func without(m map[string]string, key string) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		if k != key {
			out[k] = v
		}
	}
	return out
}

// slothPolicy is the policy of a Sloth SLO's alerting: its page windows as
// Freeze rules and its ticket windows as Warn rules, nil when both alerts
// are disabled.
func (c *converter) slothPolicy(field string, a *slothAlerting) (*Policy, []Finding, error) {
	page, ticket := !a.PageAlert.Disable, !a.TicketAlert.Disable
	if !page && !ticket {
		return nil, []Finding{differs(field, "the page and ticket alerts are disabled: Sloth still writes the SLO's recording rules, "+
			"but budgetgate writes an SLO's recording rules and alerts together, so spec.alerting.enabled: false writes neither; "+
			"the SLO is still measured, under its namespace's policy (the one named \"default\", else the built-in policy)")}, nil
	}
	set := c.slothWindows[c.slothPeriod]
	var fs []Finding
	if set == nil {
		set = slothDefaultWindows(c.slothPeriod)
		if c.slothPeriod != "30d" && c.slothPeriod != "28d" {
			fs = append(fs, differs(field, "Sloth has default alert windows for 30d and 28d only, and needs an AlertWindows document "+
				"(--slo-period-windows-path) for %s, which is not in the input: the policy uses the default windows' budget shares, scaled to %s", c.slothPeriod, c.slothPeriod))
		}
	}
	for _, u := range set.unknown {
		fs = append(fs, differs("AlertWindows "+u, "not a field import knows, so not carried over"))
	}
	var rules []slov1alpha1.PolicyRule
	n := "sloth"
	if !set.builtinLike {
		n += "-" + set.period + "-windows"
	}
	if page {
		rules = append(rules, set.page...)
	}
	if ticket {
		rules = append(rules, set.ticket...)
	}
	switch {
	case !page:
		n += "-ticket-only"
	case !ticket:
		n += "-page-only"
	}
	from := "Sloth's default alert windows (the SRE Workbook's, as the built-in policy's burn rules)"
	if set.from != "" {
		from = "the Sloth AlertWindows of " + set.from
	}
	severities := map[string]slov1alpha1.Severity{}
	var sfs []Finding
	for _, a := range []struct {
		on    bool
		field string
		alert slothAlert
		rules []slov1alpha1.PolicyRule
	}{{page, "pageAlert", a.PageAlert, set.page}, {ticket, "ticketAlert", a.TicketAlert, set.ticket}} {
		sev, ok := a.alert.Labels["severity"]
		if !a.on || !ok {
			continue
		}
		if !severityPattern.MatchString(sev) || len(sev) > 63 {
			sfs = append(sfs, differs(field+"."+a.field+".labels.severity", "%q is not a severity budgetgate's policies take (a label value of letters, digits, -, _ and .), so not kept", sev))
			continue
		}
		for _, r := range a.rules {
			severities[r.Name] = slov1alpha1.Severity(sev)
		}
	}
	fs = append(fs, sfs...)
	pol := &Policy{Object: newPolicy(n, rules), From: from}
	pol.Object.Spec.Alerting = alertingOn(severities)
	if len(severities) > 0 {
		fs = append(fs, note(field, "the severity labels of the page and ticket alerts are the severities of the policy's rules; "+
			"budgetgate's alerts carry the severity also as sloth_severity, where Sloth's carry page or ticket"))
	}
	var said []string
	if page {
		said = append(said, "Sloth's page alert is the Freeze rules "+ruleNames(set.page))
	}
	if ticket {
		said = append(said, "its ticket alert the Warn rules "+ruleNames(set.ticket))
	}
	pol.Findings = append(pol.Findings,
		note("", "%s: budgetgate writes an alert per rule, and a Freeze rule also freezes the workloads an SLO selects", strings.Join(said, ", ")),
		alertingNote("as Sloth does"),
		budgetExhaustedNote("Sloth"))
	if !page {
		pol.Findings = append(pol.Findings, note("", "the page alert is disabled, so no rule freezes: SLOs under this policy never freeze releases"))
	}
	if err := checkPolicy(pol.Object); err != nil {
		return nil, nil, err
	}
	return pol, fs, nil
}
