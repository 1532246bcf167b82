package importer

import (
	"fmt"
	"math/big"
	"reflect"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/prometheus/common/model"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	slov1alpha1 "github.com/budgetgate/budgetgate/api/v1alpha1"
	"github.com/budgetgate/budgetgate/internal/policy"
	"github.com/budgetgate/budgetgate/internal/sli"
)

// Limits of the API (api/v1alpha1) that a conversion must respect.
const (
	maxDescription = 256
	maxQuery       = 4096
	maxSelector    = 1024
	maxRules       = 16
	// maxName keeps SLO and policy names DNS labels: budgetgate writes an
	// SLO's name into label values (sloth_slo, the PrometheusRule's labels).
	maxName = 63
)

// newSLO is an SLO with its type and name set.
func newSLO(namespace, name string) *slov1alpha1.ServiceLevelObjective {
	return &slov1alpha1.ServiceLevelObjective{
		TypeMeta:   metav1.TypeMeta{APIVersion: slov1alpha1.GroupVersion.String(), Kind: "ServiceLevelObjective"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
	}
}

// newPolicy is an ErrorBudgetPolicy with these rules.
func newPolicy(name string, rules []slov1alpha1.PolicyRule) *slov1alpha1.ErrorBudgetPolicy {
	return &slov1alpha1.ErrorBudgetPolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: slov1alpha1.GroupVersion.String(), Kind: "ErrorBudgetPolicy"},
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       slov1alpha1.ErrorBudgetPolicySpec{Rules: rules},
	}
}

func samePolicy(a, b *slov1alpha1.ErrorBudgetPolicy) bool {
	if a == nil || b == nil {
		return a == b
	}
	return reflect.DeepEqual(a.Spec, b.Spec) && reflect.DeepEqual(a.Labels, b.Labels)
}

// checkPolicy reads a written policy the way the controller will, so that
// a conversion never writes one budgetgate refuses.
func checkPolicy(p *slov1alpha1.ErrorBudgetPolicy) error {
	if _, err := policy.FromSpec(p.Name, &p.Spec); err != nil {
		return fmt.Errorf("the ErrorBudgetPolicy %q written for it would be invalid: %w", p.Name, err)
	}
	return nil
}

// checkSLO reads a written SLO's objective and indicator the way the
// controller will, and its policy's windows against its window.
func checkSLO(s *slov1alpha1.ServiceLevelObjective, p *slov1alpha1.ErrorBudgetPolicy) error {
	o, err := policy.Objective(&s.Spec)
	if err != nil {
		return err
	}
	ind, err := policy.Indicator(&s.Spec.Indicator)
	if err != nil {
		return err
	}
	if err := sli.ValidateIndicator(ind); err != nil {
		return fmt.Errorf("spec.indicator: %w", err)
	}
	for f, v := range map[string]string{"query": s.Spec.Indicator.Query, "queryEvents": s.Spec.Indicator.QueryEvents} {
		if len(v) > maxQuery {
			return fmt.Errorf("spec.indicator.%s: %d characters, more than budgetgate's %d", f, len(v), maxQuery)
		}
	}
	if p != nil {
		pol, err := policy.FromSpec(p.Name, &p.Spec)
		if err != nil {
			return err
		}
		if err := policy.CheckWindows(o, string(s.Spec.Window), pol.Budget); err != nil {
			return fmt.Errorf("under ErrorBudgetPolicy %q: %w", p.Name, err)
		}
	}
	return nil
}

var singleUnit = regexp.MustCompile(`^[1-9][0-9]{0,5}(ms|s|m|h|d|w|y)$`)

// duration reads a Prometheus duration ("30d", "1h30m") as budgetgate's
// single-unit Duration: kept as written when it already is one ("4w"),
// else in the largest unit that divides it ("1h30m" → "90m").
func duration(text string) (slov1alpha1.Duration, time.Duration, error) {
	text = strings.TrimSpace(text)
	d, err := model.ParseDuration(text)
	if err != nil || d <= 0 {
		return "", 0, fmt.Errorf("%q is not a duration such as 30d, 6h or 5m", text)
	}
	if singleUnit.MatchString(text) {
		return slov1alpha1.Duration(text), time.Duration(d), nil
	}
	s, err := formatDuration(time.Duration(d))
	return s, time.Duration(d), err
}

// formatDuration writes d in the largest of d, h, m, s and ms that divides it.
func formatDuration(d time.Duration) (slov1alpha1.Duration, error) {
	for _, u := range []struct {
		unit time.Duration
		name string
	}{{24 * time.Hour, "d"}, {time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}, {time.Millisecond, "ms"}} {
		if d%u.unit == 0 {
			s := fmt.Sprintf("%d%s", d/u.unit, u.name)
			if !singleUnit.MatchString(s) {
				return "", fmt.Errorf("%v cannot be written as a budgetgate duration (at most 6 digits and one unit)", d)
			}
			return slov1alpha1.Duration(s), nil
		}
	}
	return "", fmt.Errorf("%v is not a whole number of milliseconds", d)
}

// target checks a percentage as budgetgate's spec.target: at least 50 and
// below 100, at most 12 digits after the point.
func target(field string, percent *big.Rat, written string) (slov1alpha1.Decimal, []Finding, error) {
	if percent.Cmp(big.NewRat(100, 1)) >= 0 {
		return "", nil, fmt.Errorf("%s: %s%%: budgetgate's targets are below 100%%, since 100%% leaves no error budget to spend", field, written)
	}
	if percent.Cmp(big.NewRat(policy.MinTarget, 1)) < 0 {
		return "", nil, fmt.Errorf("%s: %s%%: budgetgate's targets are at least %d%% (below, an objective allows more failed events than good ones)", field, written, policy.MinTarget)
	}
	text, exact := decimal(percent)
	if !exact {
		return slov1alpha1.Decimal(text), []Finding{differs(field, "%s%% rounded to %s%% (budgetgate keeps 12 digits after the point)", written, text)}, nil
	}
	return slov1alpha1.Decimal(text), nil, nil
}

var dnsLabelInvalid = regexp.MustCompile(`[^a-z0-9-]+`)

// name makes a Kubernetes object name (a DNS label) of a source's name.
func name(field, source string) (string, []Finding, error) {
	n := strings.ToLower(source)
	n = dnsLabelInvalid.ReplaceAllString(n, "-")
	for strings.Contains(n, "--") {
		n = strings.ReplaceAll(n, "--", "-")
	}
	n = strings.Trim(n, "-")
	var fs []Finding
	if len(n) > maxName {
		n = strings.TrimRight(n[:maxName], "-")
		fs = append(fs, differs(field, "%q shortened to %q: budgetgate's names are at most %d characters", source, n, maxName))
	}
	if n == "" {
		return "", nil, fmt.Errorf("%s: %q gives no Kubernetes name (lower-case letters, digits and -)", field, source)
	}
	if n != source && len(fs) == 0 {
		fs = append(fs, note(field, "%q is written as %q (Kubernetes names are lower-case letters, digits and -)", source, n))
	}
	return n, fs, nil
}

// description keeps a text within spec.description's length.
func description(field, text string) (string, []Finding) {
	text = strings.TrimSpace(text)
	if utf8.RuneCountInString(text) <= maxDescription {
		return text, nil
	}
	r := []rune(text)
	return string(r[:maxDescription-1]) + "…", []Finding{differs(field, "shortened to budgetgate's %d characters", maxDescription)}
}

// labels keeps the labels that are valid Kubernetes labels.
func labels(field string, in map[string]string) (map[string]string, []Finding) {
	if len(in) == 0 {
		return nil, nil
	}
	out := map[string]string{}
	var bad []string
	for _, k := range sortedKeys(in) {
		if len(validation.IsQualifiedName(k)) > 0 || len(validation.IsValidLabelValue(in[k])) > 0 {
			bad = append(bad, k+": "+quoteIfNeeded(in[k]))
			continue
		}
		out[k] = in[k]
	}
	var fs []Finding
	if len(bad) > 0 {
		fs = append(fs, differs(field, "not valid Kubernetes labels, so not kept: %s", strings.Join(bad, ", ")))
	}
	if len(out) == 0 {
		out = nil
	}
	return out, fs
}

var severityPattern = regexp.MustCompile(`^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$`)

// maxAlertLabels is spec.alerting.labels' bound.
const maxAlertLabels = 16

// alertLabels keeps the labels spec.alerting.labels takes: Prometheus label
// names that budgetgate does not set itself (severity, alertname, sloth_*,
// budgetgate_*), at most 16.
func alertLabels(field string, in map[string]string) (map[string]string, []Finding) {
	if len(in) == 0 {
		return nil, nil
	}
	out := map[string]string{}
	var reserved, invalid, over []string
	for _, k := range sortedKeys(in) {
		switch {
		case k == "severity" || k == "alertname" || strings.HasPrefix(k, "sloth_") || strings.HasPrefix(k, "budgetgate_"):
			reserved = append(reserved, k)
		case !model.LabelName(k).IsValidLegacy():
			invalid = append(invalid, k)
		case len(out) == maxAlertLabels:
			over = append(over, k)
		default:
			out[k] = in[k]
		}
	}
	var fs []Finding
	if len(reserved) > 0 {
		fs = append(fs, differs(field, "%s: budgetgate sets these labels of its alerts itself, so they are not kept", strings.Join(reserved, ", ")))
	}
	if len(invalid) > 0 {
		fs = append(fs, differs(field, "%s: not Prometheus label names, so not kept", strings.Join(invalid, ", ")))
	}
	if len(over) > 0 {
		fs = append(fs, differs(field, "%s: spec.alerting.labels holds at most %d labels, so not kept", strings.Join(over, ", "), maxAlertLabels))
	}
	if len(out) == 0 {
		out = nil
	}
	return out, fs
}

// withAlertLabels sets an SLO's spec.alerting.labels.
func withAlertLabels(s *slov1alpha1.ServiceLevelObjective, l map[string]string) {
	if len(l) == 0 {
		return
	}
	if s.Spec.Alerting == nil {
		s.Spec.Alerting = &slov1alpha1.SLOAlerting{}
	}
	s.Spec.Alerting.Labels = l
}

// alertingOff turns an SLO's rules off, for sources that alert on nothing.
func alertingOff(s *slov1alpha1.ServiceLevelObjective) {
	if s.Spec.Alerting == nil {
		s.Spec.Alerting = &slov1alpha1.SLOAlerting{}
	}
	off := false
	s.Spec.Alerting.Enabled = &off
}

// alertingOn is the spec.alerting of the policies written: their sources
// write their SLOs' rules, so budgetgate writes them too.
func alertingOn(severities map[string]slov1alpha1.Severity) *slov1alpha1.PolicyAlerting {
	if len(severities) == 0 {
		severities = nil
	}
	return &slov1alpha1.PolicyAlerting{Enabled: true, Severities: severities}
}

// alertingNote says what alerting.enabled does, on every policy written.
func alertingNote(as string) Finding {
	return note("", "alerting.enabled: budgetgate writes the recording and alert rules of the SLOs under this policy, %s "+
		"(a PrometheusRule per SLO where the Prometheus Operator is installed; kubectl budgetgate rules prints them as a file)", as)
}

// Rule names of the policies written for Sloth's windows: those of the
// built-in policy, which Sloth's default windows are.
const (
	ruleFastBurn    = "fast-burn"
	ruleSlowBurn    = "slow-burn"
	ruleGradualBurn = "gradual-burn"
	ruleChronicBurn = "chronic-burn"
)

func burnRule(ruleName string, action slov1alpha1.RuleAction, long, short slov1alpha1.Duration, factor, budgetPercent string) slov1alpha1.PolicyRule {
	br := &slov1alpha1.BurnRateCondition{LongWindow: long, ShortWindow: short}
	if factor != "" {
		f := slov1alpha1.Decimal(factor)
		br.Factor = &f
	} else {
		b := slov1alpha1.Decimal(budgetPercent)
		br.BudgetPercent = &b
	}
	return slov1alpha1.PolicyRule{Name: ruleName, BurnRate: br, Action: action}
}

// ruleList names rules for messages: "fast-burn (Freeze), slow-burn (Freeze)".
func ruleList(rules []slov1alpha1.PolicyRule) string {
	var parts []string
	for _, r := range rules {
		parts = append(parts, fmt.Sprintf("%s (%s)", r.Name, r.Action))
	}
	return strings.Join(parts, ", ")
}

// ruleNames names rules for messages: "fast-burn and slow-burn".
func ruleNames(rules []slov1alpha1.PolicyRule) string {
	var names []string
	for _, r := range rules {
		names = append(names, r.Name)
	}
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}

// budgetExhaustedNote is said of every policy written: the sources alert on
// burn rates only.
func budgetExhaustedNote(source string) Finding {
	return note("", "%s alerts on burn rates only, so this policy has no budget rule; add {name: budget-exhausted, budgetRemainingBelow: \"0\"} "+
		"to also freeze once the budget is spent, as budgetgate's built-in policy does", source)
}

// observeOnly is said once per conversion.
const observeOnly = "The SLOs select no workloads (spec.workloadSelector is unset): they measure and alert, and freeze nothing until you select the workloads each protects."

func validationErrsAnnotation(key string) []string { return validation.IsQualifiedName(key) }
