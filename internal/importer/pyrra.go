package importer

import (
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/prometheus/common/model"

	slov1alpha1 "github.com/budgetgate/budgetgate/api/v1alpha1"
	"github.com/budgetgate/budgetgate/internal/sli"
)

// Pyrra (https://pyrra.dev): one ServiceLevelObjective object per SLO, its
// indicator written as counter selectors, its alerts four multi-window
// burn-rate tiers whose windows scale with the SLO window.

type pyrraObject struct {
	APIVersion string    `yaml:"apiVersion"`
	Kind       string    `yaml:"kind"`
	Metadata   k8sMeta   `yaml:"metadata"`
	Spec       pyrraSpec `yaml:"spec"`
	Status     anything  `yaml:"status"`
}

type pyrraSpec struct {
	Description             string         `yaml:"description"`
	Target                  number         `yaml:"target"`
	Window                  string         `yaml:"window"`
	Indicator               pyrraIndicator `yaml:"indicator"`
	Alerting                pyrraAlerting  `yaml:"alerting"`
	PartialResponseStrategy string         `yaml:"partial_response_strategy"`
	PerformanceOverAccuracy bool           `yaml:"performanceOverAccuracy"`
	RuleOutput              anything       `yaml:"ruleOutput"`
}

type pyrraQuery struct {
	Metric string `yaml:"metric"`
}

type pyrraIndicator struct {
	Ratio *struct {
		Errors   pyrraQuery `yaml:"errors"`
		Total    pyrraQuery `yaml:"total"`
		Grouping []string   `yaml:"grouping"`
	} `yaml:"ratio"`
	Latency *struct {
		Success  pyrraQuery `yaml:"success"`
		Total    pyrraQuery `yaml:"total"`
		Grouping []string   `yaml:"grouping"`
	} `yaml:"latency"`
	LatencyNative *struct {
		Total    pyrraQuery `yaml:"total"`
		Latency  string     `yaml:"latency"`
		Grouping []string   `yaml:"grouping"`
	} `yaml:"latencyNative"`
	BoolGauge *struct {
		Metric   string   `yaml:"metric"`
		Grouping []string `yaml:"grouping"`
	} `yaml:"bool_gauge"`
}

type pyrraAlerting struct {
	Disabled   *bool  `yaml:"disabled"`
	Burnrates  *bool  `yaml:"burnrates"`
	Absent     *bool  `yaml:"absent"`
	Name       string `yaml:"name"`
	AbsentName string `yaml:"absentName"`
	Severities *struct {
		Absent       string `yaml:"absent"`
		FastBurn     string `yaml:"fastBurn"`
		MediumBurn   string `yaml:"mediumBurn"`
		SlowBurn     string `yaml:"slowBurn"`
		LongTermBurn string `yaml:"longTermBurn"`
	} `yaml:"severities"`
}

func (c *converter) pyrra(d *document) error {
	var obj pyrraObject
	unknown, err := decode(d.node, &obj, nil)
	if err != nil {
		return err
	}
	spec := &obj.Spec
	namespace := obj.Metadata.Namespace
	if c.opts.Namespace != "" {
		namespace = c.opts.Namespace
	}
	if obj.Metadata.Name == "" {
		return errors.New("metadata.name: required")
	}
	s := &SLO{From: fmt.Sprintf("%s: Pyrra ServiceLevelObjective %s", d.where(), objectKey(obj.Metadata.Namespace, obj.Metadata.Name))}
	n, fs, err := name("metadata.name", obj.Metadata.Name)
	if err != nil {
		return err
	}
	s.Object = newSLO(namespace, n)
	var errs []error

	if !spec.Target.set() {
		errs = append(errs, errors.New("spec.target: required"))
	} else if t, tfs, err := target("spec.target", spec.Target.rat, spec.Target.Text); err != nil {
		errs = append(errs, err)
	} else {
		s.Object.Spec.Target = t
		fs = append(fs, tfs...)
	}
	window, wd, err := duration(spec.Window)
	if err != nil {
		errs = append(errs, fmt.Errorf("spec.window: %w", err))
	}
	s.Object.Spec.Window = window
	desc, dfs := description("spec.description", spec.Description)
	s.Object.Spec.Description = desc
	fs = append(fs, dfs...)

	ind, ifs, err := pyrraIndicatorOf(&spec.Indicator)
	if err != nil {
		errs = append(errs, err)
	}
	s.Object.Spec.Indicator = ind
	fs = append(fs, ifs...)

	// Pyrra puts labels prefixed pyrra.dev/ (without the prefix) on its
	// rules, and all of them on its PrometheusRule.
	propagated, kube := map[string]string{}, map[string]string{}
	for k, v := range obj.Metadata.Labels {
		if name, ok := strings.CutPrefix(k, pyrraPropagate); ok {
			propagated[name] = v
		}
		kube[k] = v
	}
	if len(kube) > 0 {
		fs = append(fs, differs("metadata.labels", "Pyrra puts the SLO's labels on the PrometheusRule it writes, where a Prometheus' ruleSelector often selects it; "+
			"budgetgate labels the PrometheusRules it writes as the platform says (--prometheus-rule-labels), and keeps these on the ServiceLevelObjective"))
		l, lfs := labels("metadata.labels", kube)
		s.Object.Labels = l
		fs = append(fs, lfs...)
	}
	if len(propagated) > 0 {
		fs = append(fs, differs("metadata.labels", "Pyrra adds %s (its labels prefixed %s) to every recording and alert rule; budgetgate adds them to its alerts "+
			"(spec.alerting.labels), not to its recorded series", flowMap(propagated), pyrraPropagate))
		al, afs := alertLabels("metadata.labels", propagated)
		withAlertLabels(s.Object, al)
		fs = append(fs, afs...)
	}
	fs = append(fs, differs("", "Pyrra's recorded series (e.g. %s:burnrate5m, labelled slo=%q) are not written: budgetgate's follow Sloth's names "+
		"(slo:sli_error:ratio_rate5m, labelled sloth_slo=%q), so dashboards built on Pyrra's series need changing", pyrraSeriesPrefix(&spec.Indicator), obj.Metadata.Name, n))
	if spec.PartialResponseStrategy != "" && spec.PartialResponseStrategy != "abort" {
		fs = append(fs, differs("spec.partial_response_strategy", "%q (read by Thanos Ruler only): budgetgate's rules have no partial response strategy", spec.PartialResponseStrategy))
	}
	if spec.PerformanceOverAccuracy {
		fs = append(fs, note("spec.performanceOverAccuracy", "budgetgate's rules always record the SLO window's ratio as a ratio of totals from 5m counts (docs/alerting.md), which is both exact and cheap"))
	}
	if spec.RuleOutput.set() {
		fs = append(fs, differs("spec.ruleOutput", "%s: budgetgate writes one rule set per SLO, with no labels to route parts of it", spec.RuleOutput.String()))
	}
	for _, u := range unknown {
		fs = append(fs, differs(u, "not a field import knows, so not carried over"))
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}

	p, pfs, err := pyrraPolicy(&spec.Alerting, window, wd)
	if err != nil {
		return err
	}
	fs = append(fs, pfs...)
	if p == nil {
		alertingOff(s.Object)
	}
	s.Findings = fs
	if err := checkSLO(s.Object, policyObject(p)); err != nil {
		return err
	}
	if p != nil {
		if err := c.usePolicy(s, p); err != nil {
			return err
		}
	}
	c.addSLO(s)
	return nil
}

// pyrraPropagate prefixes the labels Pyrra puts on its rules.
const pyrraPropagate = "pyrra.dev/"

// pyrraSeriesPrefix is the metric Pyrra names its recorded series after.
func pyrraSeriesPrefix(in *pyrraIndicator) string {
	sel := ""
	switch {
	case in.Ratio != nil:
		sel = in.Ratio.Total.Metric
	case in.Latency != nil:
		sel = in.Latency.Total.Metric
	case in.LatencyNative != nil:
		sel = in.LatencyNative.Total.Metric
	case in.BoolGauge != nil:
		sel = in.BoolGauge.Metric
	}
	if i := strings.IndexAny(sel, "{ "); i >= 0 {
		sel = sel[:i]
	}
	if sel == "" {
		return "metric"
	}
	// Pyrra's slo.BurnrateName.
	return strings.TrimSuffix(strings.TrimSuffix(sel, "_total"), "_count")
}

func pyrraIndicatorOf(in *pyrraIndicator) (slov1alpha1.Indicator, []Finding, error) {
	kinds := 0
	for _, set := range []bool{in.Ratio != nil, in.Latency != nil, in.LatencyNative != nil, in.BoolGauge != nil} {
		if set {
			kinds++
		}
	}
	if kinds != 1 {
		return slov1alpha1.Indicator{}, nil, errors.New("spec.indicator: exactly one of ratio, latency, latencyNative and bool_gauge must be set")
	}
	var fs []Finding
	grouping := func(field string, g []string) {
		if len(g) > 0 {
			fs = append(fs, differs(field, "Pyrra measures one SLO per value of %s; budgetgate measures the SLO over all the selected series together "+
				"(write one SLO per value, each selecting it, to keep them apart)", strings.Join(g, ", ")))
		}
	}
	selector := func(field, s string) (string, error) {
		s = strings.TrimSpace(s)
		if !validSelector(s) {
			return "", fmt.Errorf("%s: %q is not a Prometheus selector budgetgate reads, e.g. http_requests_total{job=\"checkout\"}", field, s)
		}
		return s, nil
	}
	switch {
	case in.Ratio != nil:
		grouping("spec.indicator.ratio.grouping", in.Ratio.Grouping)
		e, err1 := selector("spec.indicator.ratio.errors.metric", in.Ratio.Errors.Metric)
		t, err2 := selector("spec.indicator.ratio.total.metric", in.Ratio.Total.Metric)
		if err := errors.Join(err1, err2); err != nil {
			return slov1alpha1.Indicator{}, nil, err
		}
		return slov1alpha1.Indicator{Ratio: &slov1alpha1.RatioIndicator{Errors: e, Total: t}}, fs, nil
	case in.Latency != nil:
		grouping("spec.indicator.latency.grouping", in.Latency.Grouping)
		s, err1 := selector("spec.indicator.latency.success.metric", in.Latency.Success.Metric)
		t, err2 := selector("spec.indicator.latency.total.metric", in.Latency.Total.Metric)
		if err := errors.Join(err1, err2); err != nil {
			return slov1alpha1.Indicator{}, nil, err
		}
		if err := sli.ValidateIndicator(sli.Indicator{Latency: &sli.Latency{Success: s, Total: t}}); err != nil {
			return slov1alpha1.Indicator{}, nil, fmt.Errorf("spec.indicator.latency: %w", err)
		}
		return slov1alpha1.Indicator{Latency: &slov1alpha1.LatencyIndicator{Success: s, Total: t}}, fs, nil
	case in.LatencyNative != nil:
		ln := in.LatencyNative
		grouping("spec.indicator.latencyNative.grouping", ln.Grouping)
		t, err := selector("spec.indicator.latencyNative.total.metric", ln.Total.Metric)
		if err != nil {
			return slov1alpha1.Indicator{}, nil, err
		}
		lat, err := model.ParseDuration(strings.TrimSpace(ln.Latency))
		if err != nil || lat <= 0 {
			return slov1alpha1.Indicator{}, nil, fmt.Errorf("spec.indicator.latencyNative.latency: %q is not a duration such as 200ms", ln.Latency)
		}
		secs := new(big.Rat).SetFrac64(int64(time.Duration(lat)/time.Millisecond), 1000)
		le, _ := decimal(secs)
		hist := "sum(increase(" + t + "[" + sli.WindowVar + "]))"
		fs = append(fs, differs("spec.indicator.latencyNative", "budgetgate has no native-histogram indicator: written as a query indicator, "+
			"1 - histogram_fraction(0, %s, ...), the fraction of requests over %s as Pyrra measures it, with histogram_count as its events", le, ln.Latency))
		return slov1alpha1.Indicator{
			Query:       "1 - histogram_fraction(0, " + le + ", " + hist + ")",
			QueryEvents: "histogram_count(" + hist + ")",
		}, fs, nil
	}
	bg := in.BoolGauge
	grouping("spec.indicator.bool_gauge.grouping", bg.Grouping)
	m, err := selector("spec.indicator.bool_gauge.metric", bg.Metric)
	if err != nil {
		return slov1alpha1.Indicator{}, nil, err
	}
	count := "sum(count_over_time(" + m + "[" + sli.WindowVar + "]))"
	fs = append(fs, differs("spec.indicator.bool_gauge", "budgetgate has no boolean gauge indicator: written as a query indicator, the share of samples of %s "+
		"that are 0, as Pyrra measures it; its events are samples, so the policy's low-traffic guard (minEvents) counts samples, not requests", m))
	return slov1alpha1.Indicator{
		Query:       "1 - sum(sum_over_time(" + m + "[" + sli.WindowVar + "])) / " + count,
		QueryEvents: count,
	}, fs, nil
}

// pyrraTier is one of Pyrra's four alert tiers: windows as fractions of a
// 28-day SLO window (Pyrra's slo.Windows), a constant burn factor, and a
// severity that pages (critical) or not (warning).
type pyrraTier struct {
	rule                  string
	longDiv, shortDiv     time.Duration // the SLO window divided by these, rounded to the minute
	forDiv                time.Duration
	factor                string
	action                slov1alpha1.RuleAction
	defaultSeverity, tier string
}

// severity is the severity of a tier's alerts: Pyrra's default, or the SLO's.
func (t pyrraTier) severity(a *pyrraAlerting) string {
	if s := a.Severities; s != nil {
		if v := map[string]string{"fastBurn": s.FastBurn, "mediumBurn": s.MediumBurn, "slowBurn": s.SlowBurn, "longTermBurn": s.LongTermBurn}[t.tier]; v != "" {
			return v
		}
	}
	return t.defaultSeverity
}

var pyrraTiers = []pyrraTier{
	{rule: "fast-burn", longDiv: 28 * 24, shortDiv: 28 * 24 * 12, forDiv: 28 * 24 * 30, factor: "14", action: slov1alpha1.ActionFreeze, defaultSeverity: "critical", tier: "fastBurn"},
	{rule: "medium-burn", longDiv: 28 * 4, shortDiv: 28 * 24 * 2, forDiv: 28 * 24 * 4, factor: "7", action: slov1alpha1.ActionFreeze, defaultSeverity: "critical", tier: "mediumBurn"},
	{rule: "slow-burn", longDiv: 28, shortDiv: 28 * 12, forDiv: 28 * 24, factor: "2", action: slov1alpha1.ActionWarn, defaultSeverity: "warning", tier: "slowBurn"},
	{rule: "long-term-burn", longDiv: 7, shortDiv: 28 * 4, forDiv: 28 * 8, factor: "1", action: slov1alpha1.ActionWarn, defaultSeverity: "warning", tier: "longTermBurn"},
}

// pyrraPolicy is the policy of Pyrra's alerts for an SLO window: Pyrra's
// windows depend on the SLO window, so there is one per window
// ("pyrra-28d"), nil when the burn-rate alerts are off.
func pyrraPolicy(a *pyrraAlerting, window slov1alpha1.Duration, w time.Duration) (*Policy, []Finding, error) {
	if (a.Disabled != nil && *a.Disabled) || (a.Burnrates != nil && !*a.Burnrates) {
		return nil, []Finding{differs("spec.alerting", "Pyrra's burn-rate alerts are off: Pyrra still writes the SLO's recording rules, "+
			"but budgetgate writes an SLO's recording rules and alerts together, so spec.alerting.enabled: false writes neither; "+
			"the SLO is still measured, under its namespace's policy (the one named \"default\", else the built-in policy)")}, nil
	}
	var rules []slov1alpha1.PolicyRule
	var fs, pfs []Finding
	var fors []string
	severities := map[string]slov1alpha1.Severity{}
	for _, t := range pyrraTiers {
		long := (w / t.longDiv).Round(time.Minute)
		short := (w / t.shortDiv).Round(time.Minute)
		forD := (w / t.forDiv).Round(time.Minute)
		if short <= 0 || short >= long {
			pfs = append(pfs, differs("", "Pyrra's %s alert has windows %v and %v for a %s SLO, which no budgetgate rule can have: not written", t.tier, long, short, window))
			continue
		}
		ls, err1 := formatDuration(long)
		ss, err2 := formatDuration(short)
		if err := errors.Join(err1, err2); err != nil {
			return nil, nil, err
		}
		rules = append(rules, burnRule(t.rule, t.action, ls, ss, t.factor, ""))
		sev := t.severity(a)
		if !severityPattern.MatchString(sev) || len(sev) > 63 {
			fs = append(fs, differs("spec.alerting.severities."+t.tier, "%q is not a severity budgetgate's policies take (a label value of letters, digits, -, _ and .), so not kept", sev))
		} else if sev != map[slov1alpha1.RuleAction]string{slov1alpha1.ActionFreeze: "page", slov1alpha1.ActionWarn: "ticket"}[t.action] {
			severities[t.rule] = slov1alpha1.Severity(sev)
		}
		fors = append(fors, fmt.Sprintf("%s %s", t.rule, model.Duration(forD)))
	}
	if len(rules) == 0 {
		return nil, append(fs, pfs...), nil
	}
	n := "pyrra-" + string(window)
	pol := &Policy{Object: newPolicy(n, rules), From: fmt.Sprintf("Pyrra's burn-rate alerts for a %s SLO window", window), Findings: pfs}
	pol.Object.Spec.Alerting = alertingOn(severities)
	pol.Findings = append(pol.Findings,
		note("", "Pyrra's windows scale with the SLO window: this policy is for %s SLOs (the windows of a 28d SLO are 1h/5m, 6h/30m, 1d/2h and 4d/6h) at Pyrra's factors 14, 7, 2 and 1", window),
		note("", "Pyrra's fast and medium burn tiers (critical by default) are the Freeze rules, its slow and long-term tiers (warning) the Warn rules; "+
			"alerting.severities keeps Pyrra's severities"),
		alertingNote("as Pyrra does"),
		budgetExhaustedNote("Pyrra"))
	name := a.Name
	if name == "" {
		name = "ErrorBudgetBurn"
	}
	fs = append(fs, differs("spec.alerting", "Pyrra's alert %s, with `for` %s: budgetgate names its alerts after the policy's rules (SLOFastBurn, ...), "+
		"and they fire without `for`", name, strings.Join(fors, ", ")))
	if a.Absent == nil || *a.Absent {
		absent := a.AbsentName
		if absent == "" {
			absent = "SLOMetricAbsent"
		}
		fs = append(fs, differs("spec.alerting.absent", "Pyrra's %s alert fires when the SLI's metrics are absent; budgetgate has no such alert: "+
			"the SLO's DataAvailable condition turns False, and its policy's onMissingData decides what a freeze does", absent))
	}
	if err := checkPolicy(pol.Object); err != nil {
		return nil, nil, err
	}
	return pol, fs, nil
}
