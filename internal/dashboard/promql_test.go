package dashboard

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// github.com/prometheus/prometheus is not a dependency of budgetgate, so the
// structural tests find metric names with this small scanner; the promtool
// test parses every query with Prometheus' own parser.

// promqlKeywords are the words of PromQL that are neither metrics nor functions.
var promqlKeywords = map[string]bool{
	"and": true, "or": true, "unless": true, "by": true, "without": true, "on": true, "ignoring": true,
	"group_left": true, "group_right": true, "bool": true, "offset": true, "inf": true, "nan": true,
}

// promqlFunctions are the functions and aggregations the dashboard may call.
// A word followed by "(" that is not here fails metricNames: a metric name
// never is.
var promqlFunctions = map[string]bool{
	"sum": true, "count": true, "max": true, "min": true, "avg": true, "rate": true, "increase": true,
	"histogram_quantile": true, "sort": true, "sort_desc": true, "vector": true,
}

var (
	promqlStrings  = regexp.MustCompile("\"(?:[^\"\\\\]|\\\\.)*\"|'(?:[^'\\\\]|\\\\.)*'|`[^`]*`")
	promqlMatchers = regexp.MustCompile(`\{[^{}]*\}`)
	promqlRanges   = regexp.MustCompile(`\[[^\[\]]*\]`)
	promqlGrouping = regexp.MustCompile(`(?i)\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)`)
	promqlToken    = regexp.MustCompile(`\$\{?\w+\}?|[0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?|[a-zA-Z_:][a-zA-Z0-9_:]*`)
)

// metricNames are the metric names an expression selects, in order, with
// repeats. It fails on a call of a function not in promqlFunctions.
func metricNames(expr string) ([]string, error) {
	s := promqlStrings.ReplaceAllString(expr, `""`)
	s = promqlMatchers.ReplaceAllString(s, " ")
	s = promqlRanges.ReplaceAllString(s, " ")
	s = promqlGrouping.ReplaceAllString(s, " ")
	var names []string
	for _, loc := range promqlToken.FindAllStringIndex(s, -1) {
		tok := s[loc[0]:loc[1]]
		switch {
		case tok[0] == '$', tok[0] >= '0' && tok[0] <= '9', promqlKeywords[strings.ToLower(tok)]:
			continue
		case strings.HasPrefix(strings.TrimLeft(s[loc[1]:], " \t\n"), "("):
			if !promqlFunctions[tok] {
				return nil, &unknownFunctionError{tok}
			}
			continue
		}
		names = append(names, tok)
	}
	return names, nil
}

type unknownFunctionError struct{ name string }

func (e *unknownFunctionError) Error() string {
	return "unknown function " + e.name + "( (add it to promqlFunctions if it is one)"
}

func TestMetricNames(t *testing.T) {
	tests := []struct {
		expr    string
		want    []string
		wantErr bool
	}{
		{`up`, []string{"up"}, false},
		{`slo:sli_error:ratio_rate1h{sloth_slo=~"$slo"}`, []string{"slo:sli_error:ratio_rate1h"}, false},
		{"a{x=\"}\"} / on(sloth_id, sloth_service) group_left\nb{y='{'}", []string{"a", "b"}, false},
		{`sum by (decision, reason) (rate(m{namespace=~"$namespace"}[$__rate_interval]) or rate(m{x=""}[5m])) * 60`,
			[]string{"m", "m"}, false},
		{`histogram_quantile(0.99, sum by (le, webhook) (rate(h_bucket{job=~"$job"}[$__rate_interval])))`,
			[]string{"h_bucket"}, false},
		{`count((f{a="1"} or f{b="2"}) == 1) or vector(0)`, []string{"f", "f"}, false},
		{`1 - x / 1e-9 >= 14.399999985600001 and ignoring(sloth_window) y`, []string{"x", "y"}, false},
		{`max without(sloth_window) (z) unless on(a) (w)`, []string{"z", "w"}, false},
		{`label_replace(m, "a", "$1", "b", "(.+)")`, nil, true},
		{`sum (m)`, []string{"m"}, false},
	}
	for _, tt := range tests {
		got, err := metricNames(tt.expr)
		if (err != nil) != tt.wantErr {
			t.Errorf("metricNames(%q) error = %v, want error %v", tt.expr, err, tt.wantErr)
			continue
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("metricNames(%q):\n%s", tt.expr, cmp.Diff(tt.want, got))
		}
	}
}
