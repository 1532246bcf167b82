package importer

import (
	"errors"
	"fmt"
	"math/big"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	slov1alpha1 "github.com/budgetgate/budgetgate/api/v1alpha1"
	"github.com/budgetgate/budgetgate/internal/sli"
)

// OpenSLO v1 (https://openslo.com): an SLO refers to its SLI, AlertPolicies
// and their AlertConditions by name or holds them inline; a metric source
// is a DataSource's, and for Prometheus its spec.query is a counter
// selector or PromQL.

type osMeta struct {
	Name        string                  `yaml:"name"`
	DisplayName string                  `yaml:"displayName"`
	Labels      map[string]stringOrList `yaml:"labels"`
	Annotations map[string]string       `yaml:"annotations"`
}

type osObject struct {
	APIVersion string   `yaml:"apiVersion"`
	Kind       string   `yaml:"kind"`
	Metadata   osMeta   `yaml:"metadata"`
	Spec       anything `yaml:"spec"`
}

type osSLO struct {
	APIVersion string    `yaml:"apiVersion"`
	Kind       string    `yaml:"kind"`
	Metadata   osMeta    `yaml:"metadata"`
	Spec       osSLOSpec `yaml:"spec"`
}

type osSLOSpec struct {
	Description     string             `yaml:"description"`
	Service         string             `yaml:"service"`
	Indicator       *osInlineSLI       `yaml:"indicator"`
	IndicatorRef    *string            `yaml:"indicatorRef"`
	BudgetingMethod string             `yaml:"budgetingMethod"`
	TimeWindow      []osTimeWindow     `yaml:"timeWindow"`
	Objectives      []osObjective      `yaml:"objectives"`
	AlertPolicies   []osAlertPolicyUse `yaml:"alertPolicies"`
}

type osInlineSLI struct {
	Metadata osMeta    `yaml:"metadata"`
	Spec     osSLISpec `yaml:"spec"`
}

type osSLI struct {
	APIVersion string    `yaml:"apiVersion"`
	Kind       string    `yaml:"kind"`
	Metadata   osMeta    `yaml:"metadata"`
	Spec       osSLISpec `yaml:"spec"`
}

type osSLISpec struct {
	Description     string    `yaml:"description"`
	ThresholdMetric *osMetric `yaml:"thresholdMetric"`
	RatioMetric     *osRatio  `yaml:"ratioMetric"`
}

type osRatio struct {
	Counter bool      `yaml:"counter"`
	Good    *osMetric `yaml:"good"`
	Bad     *osMetric `yaml:"bad"`
	Total   *osMetric `yaml:"total"`
	RawType string    `yaml:"rawType"`
	Raw     *osMetric `yaml:"raw"`
}

type osMetric struct {
	MetricSource struct {
		MetricSourceRef string              `yaml:"metricSourceRef"`
		Type            string              `yaml:"type"`
		Spec            map[string]anything `yaml:"spec"`
	} `yaml:"metricSource"`
}

type osObjective struct {
	DisplayName     string       `yaml:"displayName"`
	Op              string       `yaml:"op"`
	Value           *number      `yaml:"value"`
	Target          *number      `yaml:"target"`
	TargetPercent   *number      `yaml:"targetPercent"`
	TimeSliceTarget *number      `yaml:"timeSliceTarget"`
	TimeSliceWindow anything     `yaml:"timeSliceWindow"`
	Indicator       *osInlineSLI `yaml:"indicator"`
	IndicatorRef    *string      `yaml:"indicatorRef"`
	CompositeWeight *number      `yaml:"compositeWeight"`
}

type osTimeWindow struct {
	Duration  string `yaml:"duration"`
	IsRolling *bool  `yaml:"isRolling"`
	Calendar  *struct {
		StartTime string `yaml:"startTime"`
		TimeZone  string `yaml:"timeZone"`
	} `yaml:"calendar"`
}

type osAlertPolicyUse struct {
	AlertPolicyRef string             `yaml:"alertPolicyRef"`
	Kind           string             `yaml:"kind"`
	Metadata       osMeta             `yaml:"metadata"`
	Spec           *osAlertPolicySpec `yaml:"spec"`
}

type osAlertPolicy struct {
	APIVersion string            `yaml:"apiVersion"`
	Kind       string            `yaml:"kind"`
	Metadata   osMeta            `yaml:"metadata"`
	Spec       osAlertPolicySpec `yaml:"spec"`
}

type osAlertPolicySpec struct {
	Description         string           `yaml:"description"`
	AlertWhenNoData     bool             `yaml:"alertWhenNoData"`
	AlertWhenResolved   bool             `yaml:"alertWhenResolved"`
	AlertWhenBreaching  *bool            `yaml:"alertWhenBreaching"`
	Conditions          []osConditionUse `yaml:"conditions"`
	NotificationTargets []anything       `yaml:"notificationTargets"`
}

type osConditionUse struct {
	ConditionRef string           `yaml:"conditionRef"`
	Kind         string           `yaml:"kind"`
	Metadata     osMeta           `yaml:"metadata"`
	Spec         *osConditionSpec `yaml:"spec"`
}

type osAlertCondition struct {
	APIVersion string          `yaml:"apiVersion"`
	Kind       string          `yaml:"kind"`
	Metadata   osMeta          `yaml:"metadata"`
	Spec       osConditionSpec `yaml:"spec"`
}

type osConditionSpec struct {
	Description string `yaml:"description"`
	Severity    string `yaml:"severity"`
	Condition   struct {
		Kind           string  `yaml:"kind"`
		Op             string  `yaml:"op"`
		Threshold      *number `yaml:"threshold"`
		LookbackWindow string  `yaml:"lookbackWindow"`
		AlertAfter     string  `yaml:"alertAfter"`
	} `yaml:"condition"`
}

type osDataSource struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   osMeta `yaml:"metadata"`
	Spec       struct {
		Description       string   `yaml:"description"`
		Type              string   `yaml:"type"`
		ConnectionDetails anything `yaml:"connectionDetails"`
	} `yaml:"spec"`
}

// openSLOIndex holds the OpenSLO documents of an input by kind and name.
type openSLOIndex struct {
	docs map[string]map[string]*document
}

func (x *openSLOIndex) add(d *document) error {
	var o osObject
	if _, err := decode(d.node, &o, nil); err != nil {
		return err
	}
	if o.Metadata.Name == "" {
		return errors.New("metadata.name: required")
	}
	if x.docs == nil {
		x.docs = map[string]map[string]*document{}
	}
	if x.docs[d.kind] == nil {
		x.docs[d.kind] = map[string]*document{}
	}
	if first, dup := x.docs[d.kind][o.Metadata.Name]; dup {
		return fmt.Errorf("a second %s named %q (the first: %s)", d.kind, o.Metadata.Name, first.where())
	}
	x.docs[d.kind][o.Metadata.Name] = d
	return nil
}

// get decodes the document of a kind and name into v.
func (x *openSLOIndex) get(kind, name string, v any) (d *document, unknown []string, err error) {
	d = x.docs[kind][name]
	if d == nil {
		return nil, nil, fmt.Errorf("no %s named %q in the input: give the file that defines it too", kind, name)
	}
	unknown, err = decode(d.node, v, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("%s %q (%s): %w", kind, name, d.where(), err)
	}
	return d, unknown, nil
}

// opensloDocument converts an OpenSLO SLO; the other kinds are read when an
// SLO refers to them.
func (c *converter) opensloDocument(d *document) error {
	if d.kind != "SLO" {
		return nil
	}
	var slo osSLO
	unknown, err := decode(d.node, &slo, nil)
	if err != nil {
		return err
	}
	spec := &slo.Spec
	namespace := c.opts.Namespace
	from := fmt.Sprintf("%s: OpenSLO SLO %q", d.where(), slo.Metadata.Name)

	var common []Finding
	for _, u := range unknown {
		common = append(common, differs(u, "not a field import knows, so not carried over"))
	}
	window, wfs, err := openSLOWindow(spec.TimeWindow)
	if err != nil {
		return err
	}
	common = append(common, wfs...)
	switch spec.BudgetingMethod {
	case "Occurrences":
	case "Timeslices", "RatioTimeslices":
		common = append(common, differs("spec.budgetingMethod", "%s: budgetgate's budget is Occurrences, good events over all events in the window; "+
			"it has no time slices (timeSliceTarget, timeSliceWindow), so a bad minute of few events weighs less than one of many", spec.BudgetingMethod))
	case "":
		return errors.New("spec.budgetingMethod: required (Occurrences, Timeslices or RatioTimeslices)")
	default:
		return fmt.Errorf("spec.budgetingMethod: %q is not Occurrences, Timeslices or RatioTimeslices", spec.BudgetingMethod)
	}
	if spec.Service != "" {
		common = append(common, note("spec.service", "%q: budgetgate's service (sloth_service in its rules) is the SLO's namespace", spec.Service))
	}
	desc := spec.Description
	if desc == "" {
		desc = slo.Metadata.DisplayName
	}
	desc, dfs := description("spec.description", desc)
	common = append(common, dfs...)
	lbls, annotations, mfs := openSLOMeta("metadata", &slo.Metadata)
	common = append(common, mfs...)

	if len(spec.Objectives) == 0 {
		return errors.New("spec.objectives: no objective to import")
	}
	composite := false
	for _, o := range spec.Objectives {
		if o.Indicator != nil || o.IndicatorRef != nil {
			composite = true
		}
	}
	if composite && (spec.Indicator != nil || spec.IndicatorRef != nil) {
		return errors.New("spec: indicator or indicatorRef either on the SLO or on its objectives (a composite SLO), not both")
	}

	p, pfs, err := c.openSLOPolicy(slo.Metadata.Name, spec.AlertPolicies, window)
	if err != nil {
		return err
	}
	common = append(common, pfs...)

	var errs []error
	for i := range spec.Objectives {
		o := &spec.Objectives[i]
		field := fmt.Sprintf("spec.objectives[%d]", i)
		base := slo.Metadata.Name
		if len(spec.Objectives) > 1 {
			// Sloth's OpenSLO import names objectives the same way.
			base = fmt.Sprintf("%s-%d", slo.Metadata.Name, i)
		}
		n, nfs, err := name("metadata.name", base)
		if err != nil {
			return err
		}
		s := &SLO{From: from, Object: newSLO(namespace, n)}
		if len(spec.Objectives) > 1 {
			s.From += fmt.Sprintf(", objective %d", i)
		}
		s.Object.Labels, s.Object.Annotations = lbls, annotations
		s.Object.Spec.Window = window
		s.Object.Spec.Description = desc
		fs := append(append([]Finding{}, common...), nfs...)
		if o.DisplayName != "" && len(spec.Objectives) > 1 {
			fs = append(fs, note(field+".displayName", "%q", o.DisplayName))
		}
		if composite {
			fs = append(fs, differs(field, "a composite SLO's objective: budgetgate has no composite budget, so each objective is an SLO of its own "+
				"(compositeWeight is not carried over)"))
		}
		t, tfs, err := openSLOTarget(field, o)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		s.Object.Spec.Target = t
		fs = append(fs, tfs...)
		if spec.BudgetingMethod == "Occurrences" && (o.TimeSliceTarget != nil || o.TimeSliceWindow.set()) {
			fs = append(fs, note(field, "timeSliceTarget and timeSliceWindow are for time-slice budgets and are not read with Occurrences"))
		}
		if o.Op != "" || o.Value != nil {
			fs = append(fs, note(field, "op and value are for threshold metrics and are not read with a ratio metric"))
		}

		var sliField string
		var sliSpec *osSLISpec
		var sliUnknown []string
		switch {
		case o.Indicator != nil:
			sliField, sliSpec = field+".indicator", &o.Indicator.Spec
		case o.IndicatorRef != nil:
			var ref osSLI
			_, u, err := c.openslo.get("SLI", *o.IndicatorRef, &ref)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s.indicatorRef: %w", field, err))
				continue
			}
			sliField, sliSpec, sliUnknown = refField("SLI", *o.IndicatorRef), &ref.Spec, u
		case spec.Indicator != nil:
			sliField, sliSpec = "spec.indicator", &spec.Indicator.Spec
		case spec.IndicatorRef != nil:
			var ref osSLI
			_, u, err := c.openslo.get("SLI", *spec.IndicatorRef, &ref)
			if err != nil {
				errs = append(errs, fmt.Errorf("spec.indicatorRef: %w", err))
				continue
			}
			sliField, sliSpec, sliUnknown = refField("SLI", *spec.IndicatorRef), &ref.Spec, u
		default:
			errs = append(errs, errors.New("spec: indicator or indicatorRef is required"))
			continue
		}
		for _, u := range sliUnknown {
			fs = append(fs, differs(sub(sliField, u), "not a field import knows, so not carried over"))
		}
		ind, ifs, err := c.openSLOIndicator(sliField, sliSpec)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		s.Object.Spec.Indicator = ind
		fs = append(fs, ifs...)
		s.Findings = fs
		if err := checkSLO(s.Object, policyObject(p)); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", field, err))
			continue
		}
		if p != nil {
			if err := c.usePolicy(s, p); err != nil {
				errs = append(errs, err)
				continue
			}
		}
		c.addSLO(s)
	}
	return errors.Join(errs...)
}

func openSLOMeta(field string, m *osMeta) (map[string]string, map[string]string, []Finding) {
	var fs []Finding
	single := map[string]string{}
	for _, k := range sortedKeys(m.Labels) {
		v := m.Labels[k]
		if len(v) != 1 {
			fs = append(fs, differs(field+".labels."+k, "%d values %v: a Kubernetes label has one, so not kept", len(v), []string(v)))
			continue
		}
		single[k] = v[0]
	}
	lbls, lfs := labels(field+".labels", single)
	fs = append(fs, lfs...)
	var annotations map[string]string
	for _, k := range sortedKeys(m.Annotations) {
		if len(validationErrsAnnotation(k)) > 0 {
			fs = append(fs, differs(field+".annotations."+k, "not a valid Kubernetes annotation key, so not kept"))
			continue
		}
		if annotations == nil {
			annotations = map[string]string{}
		}
		annotations[k] = m.Annotations[k]
	}
	return lbls, annotations, fs
}

var shorthand = regexp.MustCompile(`^([1-9][0-9]*)([mhdwMQY])$`)

// openSLODuration reads OpenSLO's duration shorthand. Months, quarters and
// years have no fixed length: 30, 90 and 365 days.
func openSLODuration(field, text string) (slov1alpha1.Duration, time.Duration, []Finding, error) {
	m := shorthand.FindStringSubmatch(strings.TrimSpace(text))
	if m == nil {
		return "", 0, nil, fmt.Errorf("%s: %q is not an OpenSLO duration such as 5m, 1h, 28d, 4w or 1M", field, text)
	}
	n, err := strconv.Atoi(m[1])
	if err != nil {
		return "", 0, nil, fmt.Errorf("%s: %q: %w", field, text, err)
	}
	var fs []Finding
	unit := map[string]time.Duration{"m": time.Minute, "h": time.Hour, "d": 24 * time.Hour, "w": 7 * 24 * time.Hour}[m[2]]
	if days, approx := map[string]int{"M": 30, "Q": 90, "Y": 365}[m[2]]; approx {
		unit = time.Duration(days) * 24 * time.Hour
		fs = append(fs, differs(field, "%s: a %s has no fixed length in days; budgetgate's window is %dd", text,
			map[string]string{"M": "month", "Q": "quarter", "Y": "year"}[m[2]], n*days))
		d := time.Duration(n) * unit
		s, err := formatDuration(d)
		return s, d, fs, err
	}
	d := time.Duration(n) * unit
	s := slov1alpha1.Duration(text)
	if !singleUnit.MatchString(text) {
		if s, err = formatDuration(d); err != nil {
			return "", 0, nil, fmt.Errorf("%s: %w", field, err)
		}
	}
	return s, d, fs, nil
}

func openSLOWindow(tw []osTimeWindow) (slov1alpha1.Duration, []Finding, error) {
	if len(tw) == 0 {
		return "30d", []Finding{note("spec.timeWindow", "not set: budgetgate's default window, 30d")}, nil
	}
	var fs []Finding
	if len(tw) > 1 {
		fs = append(fs, differs("spec.timeWindow", "%d windows: OpenSLO allows one, budgetgate has one; the first is read", len(tw)))
	}
	w := tw[0]
	d, _, dfs, err := openSLODuration("spec.timeWindow[0].duration", w.Duration)
	if err != nil {
		return "", nil, err
	}
	fs = append(fs, dfs...)
	rolling := w.IsRolling != nil && *w.IsRolling
	if w.Calendar != nil || !rolling {
		start := ""
		if w.Calendar != nil {
			start = fmt.Sprintf(" starting %s (%s)", w.Calendar.StartTime, w.Calendar.TimeZone)
		}
		fs = append(fs, differs("spec.timeWindow[0]", "a calendar-aligned window of %s%s: budgetgate's windows roll, "+
			"the budget at any time is that of the last %s, and it never resets at a calendar boundary", w.Duration, start, d))
	}
	return d, fs, nil
}

func openSLOTarget(field string, o *osObjective) (slov1alpha1.Decimal, []Finding, error) {
	switch {
	case o.Target != nil && o.TargetPercent != nil:
		return "", nil, fmt.Errorf("%s: target or targetPercent, not both", field)
	case o.Target != nil && o.Target.set():
		pct := new(big.Rat).Mul(o.Target.rat, big.NewRat(100, 1))
		return target(field+".target", pct, o.Target.Text+" (as a percentage: "+pct.FloatString(4)+")")
	case o.TargetPercent != nil && o.TargetPercent.set():
		return target(field+".targetPercent", o.TargetPercent.rat, o.TargetPercent.Text)
	}
	return "", nil, fmt.Errorf("%s: target or targetPercent is required", field)
}

// promQLSources are the data source types whose queries are PromQL that a
// budgetgate Prometheus connection can run.
var promQLSources = []string{"prometheus", "thanos", "mimir", "cortex", "victoriametrics"}

// metricQuery is the PromQL of an OpenSLO metric source.
func (c *converter) metricQuery(field string, m *osMetric) (string, []Finding, error) {
	src := &m.MetricSource
	typ := src.Type
	var fs []Finding
	if src.MetricSourceRef != "" {
		var ds osDataSource
		d, _, err := c.openslo.get("DataSource", src.MetricSourceRef, &ds)
		if err != nil {
			if typ == "" {
				return "", nil, fmt.Errorf("%s.metricSource.metricSourceRef: %w", field, err)
			}
		} else {
			if typ == "" {
				typ = ds.Spec.Type
			}
			fs = append(fs, note(field+".metricSource.metricSourceRef", "DataSource %q (%s): budgetgate's SLOs pick one of the Prometheus connections the platform configured "+
				"(spec.prometheus.connection, \"default\" when unset); its connectionDetails are not read", src.MetricSourceRef, d.where()))
		}
	}
	if !contains(promQLSources, strings.ToLower(typ)) {
		if typ == "" {
			return "", nil, fmt.Errorf("%s.metricSource: no type, and no DataSource that says it", field)
		}
		return "", nil, fmt.Errorf("%s.metricSource.type: %w: %q; budgetgate measures SLOs in Prometheus (or Thanos, Mimir, Cortex, VictoriaMetrics)", field, ErrUnsupported, typ)
	}
	for _, key := range []string{"query", "promql"} {
		if v, ok := src.Spec[key]; ok && v.node != nil && v.node.Kind == yaml.ScalarNode && strings.TrimSpace(v.node.Value) != "" {
			q, err := windowVar(v.node.Value)
			if err != nil {
				return "", nil, fmt.Errorf("%s.metricSource.spec.%s: %w", field, key, err)
			}
			return q, fs, nil
		}
	}
	return "", nil, fmt.Errorf("%s.metricSource.spec: no query (spec.query holds the PromQL of a Prometheus metric source)", field)
}

func (c *converter) openSLOIndicator(field string, spec *osSLISpec) (slov1alpha1.Indicator, []Finding, error) {
	if spec.ThresholdMetric != nil {
		field = sub(field, "spec.thresholdMetric")
		return slov1alpha1.Indicator{}, nil, fmt.Errorf("%s: %w: budgetgate's SLOs count good and bad events (a ratio metric); "+
			"a threshold on a metric's value (e.g. p99 latency under 500ms) can be written as a ratio of histogram buckets: "+
			"the requests faster than the threshold over all requests", field, ErrUnsupported)
	}
	r := spec.RatioMetric
	if r == nil {
		return slov1alpha1.Indicator{}, nil, fmt.Errorf("%s: ratioMetric is required", field)
	}
	field = sub(field, "spec.ratioMetric")
	var fs []Finding
	if r.Raw != nil {
		return c.openSLORaw(field, r)
	}
	if r.Total == nil || (r.Good == nil) == (r.Bad == nil) {
		return slov1alpha1.Indicator{}, nil, fmt.Errorf("%s: total and one of good or bad are required (or raw)", field)
	}
	first, good, which := r.Bad, false, "bad"
	if r.Good != nil {
		first, good, which = r.Good, true, "good"
	}
	fq, ffs, err1 := c.metricQuery(field+"."+which, first)
	tq, tfs, err2 := c.metricQuery(field+".total", r.Total)
	if err := errors.Join(err1, err2); err != nil {
		return slov1alpha1.Indicator{}, nil, err
	}
	fs = append(fs, ffs...)
	fs = append(fs, dedupe(tfs, ffs)...)
	fw, tw := strings.Contains(fq, sli.WindowVar), strings.Contains(tq, sli.WindowVar)
	switch {
	case fw && tw:
		ind, notes := eventIndicator(fq, tq, good)
		for _, n := range notes {
			fs = append(fs, note(field, "%s", n))
		}
		return ind.api(), fs, nil
	case fw != tw:
		return slov1alpha1.Indicator{}, nil, fmt.Errorf("%s: the %s and total queries must both count over a window ({{.window}} or $window) or both be counter selectors", field, which)
	}
	if !r.Counter {
		return slov1alpha1.Indicator{}, nil, fmt.Errorf("%s: counter: false: %w for gauges of event counts; budgetgate counts events with counters "+
			"(counter: true and counter selectors), or with PromQL over $window", field, ErrUnsupported)
	}
	fSel, ok1 := plainSelector(fq)
	tSel, ok2 := plainSelector(tq)
	if !ok1 || !ok2 {
		bad := fq
		if ok1 {
			bad = tq
		}
		return slov1alpha1.Indicator{}, nil, fmt.Errorf("%s: %q is neither a counter selector (metric{label=\"value\"}, or sum() of one) "+
			"nor PromQL over a window ({{.window}} or $window)", field, bad)
	}
	if !good {
		if err := sli.ValidateIndicator(sli.Indicator{Ratio: &sli.Ratio{Errors: fSel, Total: tSel}}); err != nil {
			return slov1alpha1.Indicator{}, nil, fmt.Errorf("%s: %w", field, err)
		}
		return slov1alpha1.Indicator{Ratio: &slov1alpha1.RatioIndicator{Errors: fSel, Total: tSel}}, fs, nil
	}
	if sli.ValidateIndicator(sli.Indicator{Latency: &sli.Latency{Success: fSel, Total: tSel}}) == nil {
		fs = append(fs, note(field, "good events selected by a histogram bucket (le): a latency indicator"))
		return slov1alpha1.Indicator{Latency: &slov1alpha1.LatencyIndicator{Success: fSel, Total: tSel}}, fs, nil
	}
	fs = append(fs, note(field, "good events without an le bucket: written as a query indicator, 1 - good/total over $window, "+
		"since budgetgate's ratio indicator counts bad events"))
	return slov1alpha1.Indicator{
		Query:       "1 - " + increaseOf(fSel) + " / " + increaseOf(tSel),
		QueryEvents: increaseOf(tSel),
	}, fs, nil
}

// refField names an object referred to by name: "SLI/orders-errors".
func refField(kind, name string) string { return kind + "/" + name }

// sub is the path of a field inside the object at base: base.path for a
// field path, "SLI/x spec.y" for an object referred to by name.
func sub(base, path string) string {
	if base == "" {
		return path
	}
	if i := strings.Index(base, "/"); i > 0 && !strings.ContainsAny(base[:i], ".[") {
		if strings.Contains(base, " ") {
			return base + "." + path
		}
		return base + " " + path
	}
	return base + "." + path
}

func dedupe(fs, seen []Finding) []Finding {
	var out []Finding
	for _, f := range fs {
		dup := false
		for _, s := range seen {
			if s.Message == f.Message {
				dup = true
			}
		}
		if !dup {
			out = append(out, f)
		}
	}
	return out
}

// openSLORaw: a precomputed ratio, averaged over the window.
func (c *converter) openSLORaw(field string, r *osRatio) (slov1alpha1.Indicator, []Finding, error) {
	if r.Good != nil || r.Bad != nil || r.Total != nil {
		return slov1alpha1.Indicator{}, nil, fmt.Errorf("%s: raw goes without good, bad and total", field)
	}
	if r.RawType != "success" && r.RawType != "failure" {
		return slov1alpha1.Indicator{}, nil, fmt.Errorf("%s.rawType: %q is not success or failure", field, r.RawType)
	}
	q, fs, err := c.metricQuery(field+".raw", r.Raw)
	if err != nil {
		return slov1alpha1.Indicator{}, nil, err
	}
	expr := q
	if !strings.Contains(q, sli.WindowVar) {
		if sel, ok := plainSelector(q); ok && sel == unparen(q) {
			expr = "avg_over_time(" + sel + "[" + sli.WindowVar + "])"
		} else {
			expr = "avg_over_time((" + q + ")[" + sli.WindowVar + ":])"
		}
	}
	if r.RawType == "success" {
		expr = "1 - (" + expr + ")"
	}
	fs = append(fs, differs(field+".raw", "a precomputed %s ratio: written as a query indicator that averages it over the window, "+
		"weighing every sample alike rather than every event; with no count of events, the policy's low-traffic guard (minEvents) does not apply", r.RawType))
	return slov1alpha1.Indicator{Query: expr}, fs, nil
}

// openSLOPolicy is the policy of an SLO's alert policies: one rule per
// burn-rate AlertCondition. Named after the AlertPolicy when there is one,
// after the SLO when several are merged; nil without any rule.
func (c *converter) openSLOPolicy(sloName string, uses []osAlertPolicyUse, window slov1alpha1.Duration) (*Policy, []Finding, error) {
	if len(uses) == 0 {
		return nil, []Finding{note("spec.alertPolicies", "none: the SLO is evaluated under its namespace's policy (the one named \"default\", else the built-in policy)")}, nil
	}
	var rules []slov1alpha1.PolicyRule
	var pfs, sfs []Finding
	var names, froms []string
	used := map[string]bool{}
	severities := map[string]slov1alpha1.Severity{}
	for i, u := range uses {
		field := fmt.Sprintf("spec.alertPolicies[%d]", i)
		var ap osAlertPolicy
		var unknown []string
		switch {
		case u.AlertPolicyRef != "":
			d, unk, err := c.openslo.get("AlertPolicy", u.AlertPolicyRef, &ap)
			if err != nil {
				return nil, nil, fmt.Errorf("%s.alertPolicyRef: %w", field, err)
			}
			unknown = unk
			froms = append(froms, fmt.Sprintf("OpenSLO AlertPolicy %q (%s)", ap.Metadata.Name, d.where()))
			field = refField("AlertPolicy", ap.Metadata.Name)
		case u.Spec != nil:
			ap = osAlertPolicy{Kind: u.Kind, Metadata: u.Metadata, Spec: *u.Spec}
			froms = append(froms, fmt.Sprintf("the OpenSLO AlertPolicy %q inline in SLO %q", ap.Metadata.Name, sloName))
		default:
			return nil, nil, fmt.Errorf("%s: alertPolicyRef or an inline AlertPolicy is required", field)
		}
		names = append(names, ap.Metadata.Name)
		for _, un := range unknown {
			pfs = append(pfs, differs(sub(field, un), "not a field import knows, so not carried over"))
		}
		r, fs, err := c.openSLORules(field, &ap.Spec, window, used, severities)
		if err != nil {
			return nil, nil, err
		}
		rules = append(rules, r...)
		pfs = append(pfs, fs...)
	}
	if len(rules) == 0 {
		sfs = append(sfs, differs("spec.alertPolicies", "no AlertCondition becomes a budgetgate rule: "+
			"the SLO is evaluated under its namespace's policy (the one named \"default\", else the built-in policy)"))
		return nil, append(sfs, pfs...), nil
	}
	if len(rules) > maxRules {
		return nil, nil, fmt.Errorf("spec.alertPolicies: %d burn-rate conditions, more than the %d rules of a budgetgate policy", len(rules), maxRules)
	}
	base := names[0]
	if len(uses) > 1 {
		base = sloName + "-alerting"
	}
	n, nfs, err := name("metadata.name", base)
	if err != nil {
		return nil, nil, err
	}
	pol := &Policy{Object: newPolicy(n, rules), From: strings.Join(froms, " and ")}
	pol.Object.Spec.Alerting = alertingOn(severities)
	pol.Findings = append(append(nfs, pfs...),
		note("", "an AlertCondition of severity page or critical is a Freeze rule (it also freezes the workloads an SLO selects), any other a Warn rule: %s; "+
			"alerting.severities keeps their severities", ruleList(rules)),
		alertingNote("since an AlertPolicy alerts on them"),
		budgetExhaustedNote("OpenSLO's AlertPolicy"))
	if len(uses) > 1 {
		pol.Findings = append(pol.Findings, note("", "the SLO's %d AlertPolicies (%s) are one policy: a budgetgate SLO has one", len(uses), strings.Join(names, ", ")))
	}
	if err := checkPolicy(pol.Object); err != nil {
		return nil, nil, err
	}
	return pol, sfs, nil
}

func (c *converter) openSLORules(field string, ap *osAlertPolicySpec, window slov1alpha1.Duration, used map[string]bool, severities map[string]slov1alpha1.Severity) ([]slov1alpha1.PolicyRule, []Finding, error) {
	var fs []Finding
	if ap.AlertWhenNoData {
		fs = append(fs, differs(sub(field, "spec.alertWhenNoData"), "budgetgate has no alert on missing data: the SLO's DataAvailable condition turns False, "+
			"and its policy's onMissingData decides what a freeze does"))
	}
	if ap.AlertWhenResolved {
		fs = append(fs, note(sub(field, "spec.alertWhenResolved"), "notifications of resolved alerts are Alertmanager's send_resolved"))
	}
	if len(ap.NotificationTargets) > 0 {
		fs = append(fs, note(sub(field, "spec.notificationTargets"), "where alerts go is Alertmanager's routing; budgetgate's alerts carry severity, "+
			"budgetgate_rule and the SLO's sloth_* labels to route by"))
	}
	if ap.AlertWhenBreaching != nil && !*ap.AlertWhenBreaching {
		return nil, append(fs, differs(sub(field, "spec.alertWhenBreaching"), "false: the policy does not alert while its conditions breach, "+
			"so none of them becomes a budgetgate rule, whose alerts fire while they breach")), nil
	}
	_, sloD, _ := duration(string(window))
	var rules []slov1alpha1.PolicyRule
	for i, cu := range ap.Conditions {
		cfield := sub(field, fmt.Sprintf("spec.conditions[%d]", i))
		var cond osAlertCondition
		switch {
		case cu.ConditionRef != "":
			_, unknown, err := c.openslo.get("AlertCondition", cu.ConditionRef, &cond)
			if err != nil {
				return nil, nil, fmt.Errorf("%s.conditionRef: %w", cfield, err)
			}
			cfield = refField("AlertCondition", cond.Metadata.Name)
			for _, u := range unknown {
				fs = append(fs, differs(sub(cfield, u), "not a field import knows, so not carried over"))
			}
		case cu.Spec != nil:
			cond = osAlertCondition{Kind: cu.Kind, Metadata: cu.Metadata, Spec: *cu.Spec}
		default:
			return nil, nil, fmt.Errorf("%s: conditionRef or an inline AlertCondition is required", cfield)
		}
		cs := &cond.Spec.Condition
		if cs.Kind != "" && cs.Kind != "burnrate" {
			fs = append(fs, differs(cfield, "condition kind %q: only burnrate conditions become budgetgate rules; not written", cs.Kind))
			continue
		}
		switch cs.Op {
		case "gt", "gte":
		case "lt", "lte":
			fs = append(fs, differs(cfield, "op %s fires while the burn rate is below the threshold; budgetgate's rules fire at or above it: not written", cs.Op))
			continue
		default:
			return nil, nil, fmt.Errorf("%s.condition.op: %q is not gt, gte, lt or lte", cfield, cs.Op)
		}
		if cs.Threshold == nil || !cs.Threshold.set() || cs.Threshold.rat.Sign() <= 0 {
			return nil, nil, fmt.Errorf("%s.condition.threshold: a burn rate above 0 is required", cfield)
		}
		factor, exact := decimal(cs.Threshold.rat)
		if !exact {
			fs = append(fs, differs(sub(cfield, "spec.condition.threshold"), "%s rounded to %s", cs.Threshold.Text, factor))
		}
		long, ld, dfs, err := openSLODuration(sub(cfield, "spec.condition.lookbackWindow"), cs.LookbackWindow)
		if err != nil {
			return nil, nil, err
		}
		fs = append(fs, dfs...)
		if ld > sloD {
			return nil, nil, fmt.Errorf("%s.condition.lookbackWindow: %s is longer than the SLO window %s", cfield, cs.LookbackWindow, window)
		}
		short, err := formatDuration((ld / 12).Round(time.Second))
		if err != nil || ld/12 < time.Second {
			return nil, nil, fmt.Errorf("%s.condition.lookbackWindow: %s is too short for a burn-rate rule", cfield, cs.LookbackWindow)
		}
		fs = append(fs, differs(sub(cfield, "spec.condition.lookbackWindow"), "%s is the long window; budgetgate's burn-rate rules also need the burn over a short window, "+
			"%s (a twelfth, as in the SRE Workbook), which stops the alert soon after the burn stops", cs.LookbackWindow, short))
		if cs.AlertAfter != "" && !regexp.MustCompile(`^0+[a-zA-Z]*$`).MatchString(cs.AlertAfter) {
			fs = append(fs, differs(sub(cfield, "spec.condition.alertAfter"), "%s: budgetgate's alerts fire, and its freezes start, as soon as a rule fires", cs.AlertAfter))
		}
		base := cond.Metadata.Name
		if base == "" {
			base = fmt.Sprintf("condition-%d", i)
		}
		rn, _, err := name(sub(cfield, "metadata.name"), base)
		if err != nil {
			return nil, nil, err
		}
		for k := 2; used[rn]; k++ {
			rn = fmt.Sprintf("%s-%d", strings.TrimSuffix(rn, fmt.Sprintf("-%d", k-1)), k)
		}
		used[rn] = true
		action := slov1alpha1.ActionWarn
		if sev := strings.ToLower(cond.Spec.Severity); sev == "page" || sev == "critical" {
			action = slov1alpha1.ActionFreeze
		}
		rules = append(rules, burnRule(rn, action, long, short, factor, ""))
		switch sev := cond.Spec.Severity; {
		case sev == "" || strings.EqualFold(sev, map[slov1alpha1.RuleAction]string{slov1alpha1.ActionFreeze: "page", slov1alpha1.ActionWarn: "ticket"}[action]):
		case !severityPattern.MatchString(sev) || len(sev) > 63:
			fs = append(fs, differs(sub(cfield, "spec.severity"), "%q is not a severity budgetgate's policies take (a label value of letters, digits, -, _ and .), so not kept", sev))
		default:
			severities[rn] = slov1alpha1.Severity(sev)
		}
	}
	return rules, fs, nil
}
