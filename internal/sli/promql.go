package sli

import (
	"errors"
	"fmt"
	"regexp"
	"regexp/syntax"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/prometheus/common/model"
)

// ErrBadIndicator is wrapped by every error about an indicator that cannot be
// measured as written: zero or several kinds set, a selector that does not
// parse, a latency success selector without an le matcher, or a query without
// $window.
var ErrBadIndicator = errors.New("bad indicator")

// ErrBadWindow is wrapped by the error about a window that is not a positive
// whole number of milliseconds, the resolution of Prometheus durations.
var ErrBadWindow = errors.New("bad window")

// WindowVar is the placeholder that query indicators use for the window.
const WindowVar = "$window"

// partLabel tells the error ratio and the event count apart in the single
// query that ratio and latency indicators send per window.
const partLabel = "budgetgate_part"

// BuildQuery returns the PromQL that Measure sends for ind over window.
//
// Ratio and latency indicators yield one query with two series, told apart by
// the label budgetgate_part: "ratio" (bad ÷ all) and "events" (all). For a
// ratio, an error selector without series counts as zero errors:
//
//	label_replace((sum(increase(E[1h])) or vector(0)) / sum(increase(T[1h])), "budgetgate_part", "ratio", "", "")
//	  or label_replace(sum(increase(T[1h])), "budgetgate_part", "events", "", "")
//
// A latency indicator measures 1 - sum(increase(S[1h])) / sum(increase(T[1h])).
// A query indicator is returned with every $window replaced by the window; with
// QueryEvents it is combined with it like a ratio's two parts.
func BuildQuery(ind Indicator, window time.Duration) (string, error) {
	if err := ValidateIndicator(ind); err != nil {
		return "", err
	}
	if err := checkWindow(window); err != nil {
		return "", err
	}
	return buildQuery(ind, window), nil
}

// buildQuery is BuildQuery for an indicator and window already checked.
func buildQuery(ind Indicator, window time.Duration) string {
	w := model.Duration(window).String()
	events := EventsExpr(ind, w)
	if events == "" {
		return strings.ReplaceAll(ind.Query, WindowVar, w)
	}
	return combine(RatioExpr(ind, w), events)
}

// RatioExpr is the PromQL of the indicator's error ratio over window (a
// PromQL duration such as "1h"), exactly as BuildQuery measures it. The rules
// generator (internal/rules) records the same expressions.
func RatioExpr(ind Indicator, window string) string {
	switch {
	case ind.Ratio != nil:
		return "(" + increase(ind.Ratio.Errors, window) + " or vector(0)) / " + increase(ind.Ratio.Total, window)
	case ind.Latency != nil:
		return "1 - " + increase(ind.Latency.Success, window) + " / " + increase(ind.Latency.Total, window)
	}
	return "(" + strings.ReplaceAll(ind.Query, WindowVar, window) + ")"
}

// EventsExpr is the PromQL of the indicator's number of events over window,
// or "" for a query indicator without QueryEvents, which cannot count them.
func EventsExpr(ind Indicator, window string) string {
	switch {
	case ind.Ratio != nil:
		return increase(ind.Ratio.Total, window)
	case ind.Latency != nil:
		return increase(ind.Latency.Total, window)
	case ind.QueryEvents != "":
		return "(" + strings.ReplaceAll(ind.QueryEvents, WindowVar, window) + ")"
	}
	return ""
}

func increase(selector, window string) string {
	return "sum(increase(" + selector + "[" + window + "]))"
}

func combine(ratio, events string) string {
	return fmt.Sprintf(`label_replace(%s, %q, "ratio", "", "") or label_replace(%s, %q, "events", "", "")`,
		ratio, partLabel, events, partLabel)
}

func checkWindow(w time.Duration) error {
	if w <= 0 || w%time.Millisecond != 0 {
		return fmt.Errorf("%w: %v", ErrBadWindow, w)
	}
	return nil
}

// ValidateIndicator reports, wrapping ErrBadIndicator, why ind cannot be
// measured. Exactly one kind must be set. Ratio and latency selectors must be
// plain PromQL instant vector selectors (metric{label op "value", ...} with
// ops = != =~ !~ and regexes that compile); the latency success selector needs
// an le matcher with = or =~. A query must contain $window and have balanced
// brackets and terminated strings; it is not otherwise parsed, so Prometheus
// reports the remaining mistakes when it is queried.
func ValidateIndicator(ind Indicator) error {
	if ind.QueryEvents != "" && ind.Query == "" {
		return fmt.Errorf("%w: queryEvents needs query", ErrBadIndicator)
	}
	kinds := 0
	for _, set := range []bool{ind.Ratio != nil, ind.Latency != nil, ind.Query != ""} {
		if set {
			kinds++
		}
	}
	if kinds != 1 {
		return fmt.Errorf("%w: exactly one of ratio, latency and query must be set, got %d", ErrBadIndicator, kinds)
	}
	var err error
	switch {
	case ind.Ratio != nil:
		err = errors.Join(
			field("ratio.errors", checkSelector(ind.Ratio.Errors, exampleErrors)),
			field("ratio.total", checkSelector(ind.Ratio.Total, exampleTotal)))
		if err == nil && sameSelector(ind.Ratio.Errors, ind.Ratio.Total) {
			err = field("ratio.errors", errors.New(`the same selector as ratio.total, so every event would count as failed; `+
				`select the failed events only, e.g. add code=~"5.." as in `+exampleErrors))
		}
	case ind.Latency != nil:
		err = errors.Join(
			field("latency.success", checkSuccessSelector(ind.Latency.Success)),
			field("latency.total", checkSelector(ind.Latency.Total, exampleCount)))
	default:
		err = field("query", checkQuery(ind.Query))
		if ind.QueryEvents != "" {
			err = errors.Join(err, field("queryEvents", checkQuery(ind.QueryEvents)))
		}
	}
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadIndicator, err)
	}
	return nil
}

// Warnings are messages about an indicator that can be measured but probably
// does not measure what its author meant: a latency bucket that counts every
// request as fast (le="+Inf"), an le regex (which may select several buckets,
// whose sum counts a request once per bucket), and a query indicator without
// queryEvents (the low-traffic guard cannot apply). nil for a valid indicator
// with nothing to say, and for an invalid one.
func Warnings(ind Indicator) []string {
	if ValidateIndicator(ind) != nil {
		return nil
	}
	var out []string
	switch {
	case ind.Latency != nil:
		sel, _ := parseSelector(ind.Latency.Success)
		for _, m := range sel.matchers {
			if m.name != "le" {
				continue
			}
			switch {
			case m.op == "=~":
				out = append(out, fmt.Sprintf(`latency.success matches le with a regex (le=~%q): if it selects several buckets, a fast request is counted once per bucket and the SLI reads too good; select one bucket, e.g. le="0.3"`, m.value))
			case isInf(m.value):
				out = append(out, fmt.Sprintf(`latency.success selects le=%q, the bucket of every request: the SLI is always 100%%; select the bucket of your latency objective, e.g. le="0.3"`, m.value))
			}
		}
	case ind.Query != "" && ind.QueryEvents == "":
		out = append(out, "indicator.query has no queryEvents: budgetgate cannot count the events of a window, so the policy's low-traffic guard (minEvents) does not apply and one failed request in a quiet window can freeze; add queryEvents, e.g. sum(increase(http_requests_total[$window]))")
	}
	return out
}

func isInf(s string) bool {
	f, err := strconv.ParseFloat(s, 64)
	return err == nil && f > 0 && f > 1e308
}

// FieldError is what is wrong with one field of an indicator, such as
// "ratio.errors". ValidateIndicator's errors wrap one per wrong field, so
// that the webhook can name each field in full (FieldErrors).
type FieldError struct {
	Field string
	Err   error
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Err.Error() }
func (e *FieldError) Unwrap() error { return e.Err }

// FieldErrors lists the FieldErrors in an error of ValidateIndicator, in order.
func FieldErrors(err error) []*FieldError {
	if fe, ok := err.(*FieldError); ok {
		return []*FieldError{fe}
	}
	var out []*FieldError
	switch e := err.(type) {
	case interface{ Unwrap() []error }:
		for _, err := range e.Unwrap() {
			out = append(out, FieldErrors(err)...)
		}
	case interface{ Unwrap() error }:
		out = FieldErrors(e.Unwrap())
	}
	return out
}

func field(name string, err error) error {
	if err != nil {
		return &FieldError{Field: name, Err: err}
	}
	return nil
}

// Examples that messages about selectors end with.
const (
	exampleErrors  = `http_requests_total{job="checkout",code=~"5.."}`
	exampleTotal   = `http_requests_total{job="checkout"}`
	exampleBucket  = `http_request_duration_seconds_bucket{job="checkout",le="0.3"}`
	exampleCount   = `http_request_duration_seconds_count{job="checkout"}`
	exampleLeValue = "0.3"
)

// checkSelector parses s as a selector; a syntax error says what to write
// instead: the selector repaired, when one simple repair parses (see
// repairSelector), else an example.
func checkSelector(s, example string) error {
	_, err := parseSelectorHinted(s, example)
	return err
}

func parseSelectorHinted(s, example string) (selector, error) {
	sel, err := parseSelector(s)
	if err == nil {
		return sel, nil
	}
	if fix := repairSelector(s); fix != "" {
		return sel, fmt.Errorf("%w; write %s", err, fix)
	}
	if _, ok := errors.AsType[*regexError](err); ok {
		return sel, err // says what to write itself
	}
	if _, ok := errors.AsType[hinted](err); ok {
		return sel, err
	}
	return sel, fmt.Errorf("%w; write a selector such as %s", err, example)
}

func checkSuccessSelector(s string) error {
	sel, err := parseSelectorHinted(s, exampleBucket)
	if err != nil {
		return err
	}
	for _, m := range sel.matchers {
		if m.name != "le" {
			continue
		}
		switch m.op {
		case "=":
			if _, err := strconv.ParseFloat(m.value, 64); err != nil {
				want := exampleLeValue
				if d, derr := time.ParseDuration(m.value); derr == nil && d > 0 {
					want = strconv.FormatFloat(d.Seconds(), 'f', -1, 64)
				}
				return fmt.Errorf("le=%q is not a number: le is the upper bound of a bucket in the histogram's unit (seconds for *_seconds); write le=%q", m.value, want)
			}
			return nil
		case "=~":
			return nil
		}
		return fmt.Errorf("le must be matched with = or =~, not %s; write le=%q", m.op, m.value)
	}
	return fmt.Errorf(`a histogram bucket selector needs an le matcher, e.g. le="0.3" as in %s`, exampleBucket)
}

// sameSelector: two selectors that select the same series, as far as their
// text can tell (spaces aside).
func sameSelector(a, b string) bool {
	strip := func(s string) string { return strings.Join(strings.Fields(s), "") }
	return strip(a) == strip(b)
}

// unquotedValue is a matcher whose value lacks quotes: job=checkout.
var unquotedValue = regexp.MustCompile("([A-Za-z_][A-Za-z0-9_]*\\s*(?:=~|!=|!~|=)\\s*)([^\"'`,}\\s][^,}]*?)(\\s*[,}])")

// repairSelector returns s repaired into a plain selector by one of the
// mistakes people make most (a range or function around the selector,
// unquoted label values, a missing closing brace), or "" when none gives
// one that parses.
func repairSelector(s string) string {
	var candidates []string
	// rate(x{...}[5m]), sum(increase(x[1h])), x{...}[5m], x offset 5m: the
	// selector is what follows the last "(" up to a range, "offset" or ")".
	inner := s
	if i := strings.LastIndexByte(inner, '('); i >= 0 {
		inner = inner[i+1:]
	}
	if i := strings.IndexAny(inner, "[)"); i >= 0 {
		inner = inner[:i]
	}
	if i := strings.Index(inner, " offset "); i >= 0 {
		inner = inner[:i]
	}
	candidates = append(candidates, strings.TrimSpace(inner))
	closed := s
	if strings.Count(s, "{") > strings.Count(s, "}") {
		closed = strings.TrimRight(s, " ,") + "}"
		candidates = append(candidates, closed)
	}
	candidates = append(candidates, unquotedValue.ReplaceAllString(closed, `$1"$2"$3`))
	for _, c := range candidates {
		if c != s && c != "" {
			if _, err := parseSelector(c); err == nil {
				return c
			}
		}
	}
	return ""
}

// checkQuery checks a query indicator without parsing PromQL: it must use
// $window, close every bracket it opens and terminate its strings.
func checkQuery(q string) error {
	if !strings.Contains(q, WindowVar) {
		return fmt.Errorf("must contain %s", WindowVar)
	}
	var open []byte
	for i := 0; i < len(q); i++ {
		switch c := q[i]; c {
		case '(', '[', '{':
			open = append(open, c)
		case ')', ']', '}':
			if len(open) == 0 || open[len(open)-1] != "([{"[strings.IndexByte(")]}", c)] {
				return fmt.Errorf("unexpected %q at offset %d", c, i)
			}
			open = open[:len(open)-1]
		case '"', '\'', '`':
			n, err := stringEnd(q[i:])
			if err != nil {
				return fmt.Errorf("offset %d: %w", i, err)
			}
			i += n - 1
		case '#': // comment to the end of the line
			if j := strings.IndexByte(q[i:], '\n'); j >= 0 {
				i += j
			} else {
				i = len(q)
			}
		}
	}
	if len(open) > 0 {
		return fmt.Errorf("unclosed %q", open[len(open)-1])
	}
	return nil
}

// selector is a parsed instant vector selector.
type selector struct {
	metric   string
	matchers []matcher
}

type matcher struct {
	name, op, value string
	re              *regexp.Regexp // for =~ and !~, anchored like PromQL
}

var keywords = map[string]bool{
	"and": true, "or": true, "unless": true, "atan2": true, "bool": true, "by": true,
	"without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
	"offset": true, "start": true, "end": true, "step": true, "inf": true, "nan": true,
	"sum": true, "avg": true, "count": true, "min": true, "max": true, "group": true,
	"stddev": true, "stdvar": true, "topk": true, "bottomk": true, "count_values": true,
	"quantile": true, "limitk": true, "limit_ratio": true,
}

// parseSelector parses the subset of PromQL that ratio and latency indicators
// accept: an optional metric name followed by optional {matchers}; label names
// may be quoted (UTF-8 names), and a lone quoted string in braces is the metric
// name. Like PromQL it requires one matcher that does not match the empty
// string. Offsets, ranges and expressions are rejected.
func parseSelector(s string) (selector, error) {
	var sel selector
	p := &scanner{s: s}
	p.space()
	if p.eof() {
		return sel, errors.New("empty selector")
	}
	if name := p.ident(true); name != "" {
		p.space()
		// A keyword before "(" is a function or an aggregation, reported
		// below as something other than a selector.
		if keywords[strings.ToLower(name)] && p.peek() != '(' {
			return sel, hinted(fmt.Sprintf("metric name %q is a PromQL keyword; write {__name__=%q}", name, name))
		}
		sel.metric = name
	}
	if p.peek() == '{' {
		p.i++
		if err := p.matchers(&sel); err != nil {
			return sel, err
		}
		p.space()
	}
	if !p.eof() {
		return sel, fmt.Errorf("unexpected %q at offset %d: only a metric selector is allowed, which budgetgate wraps in increase(...[window]) itself",
			token(p.s[p.i:]), p.i)
	}
	if sel.metric == "" && len(sel.matchers) == 0 {
		return sel, errors.New("a selector needs a metric name or matchers")
	}
	if sel.metric != "" {
		return sel, nil
	}
	for _, m := range sel.matchers {
		if !m.matchesEmpty() {
			return sel, nil
		}
	}
	return sel, errors.New("a selector needs a metric name or a matcher that does not match the empty string")
}

// matchers parses the matchers after '{' up to and including '}'.
func (p *scanner) matchers(sel *selector) error {
	for {
		p.space()
		switch {
		case p.eof():
			return errors.New("unclosed {")
		case p.peek() == '}':
			p.i++
			return nil
		}
		var name string
		quoted := isQuote(p.peek())
		if quoted {
			v, err := p.str()
			if err != nil {
				return err
			}
			name = v
		} else if name = p.ident(false); name == "" {
			return fmt.Errorf("expected a label name at offset %d", p.i)
		}
		p.space()
		op := p.op()
		switch {
		case op == "" && quoted: // {"metric.name", ...}
			if sel.metric != "" {
				return fmt.Errorf("metric name given twice: %q and %q", sel.metric, name)
			}
			if name == "" {
				return errors.New("empty metric name")
			}
			sel.metric = name
		case op == "":
			return fmt.Errorf("expected =, !=, =~ or !~ after %q", name)
		default:
			if name == "" {
				return errors.New("empty label name")
			}
			p.space()
			if !isQuote(p.peek()) {
				return fmt.Errorf("expected a quoted value for %s%s at offset %d", name, op, p.i)
			}
			v, err := p.str()
			if err != nil {
				return err
			}
			m := matcher{name: name, op: op, value: v}
			if m.op == "=~" || m.op == "!~" {
				if m.re, err = regexp.Compile("^(?s:" + v + ")$"); err != nil {
					return &regexError{label: name, value: v, err: err}
				}
			}
			sel.matchers = append(sel.matchers, m)
		}
		p.space()
		switch {
		case p.peek() == ',':
			p.i++
		case p.peek() != '}':
			return fmt.Errorf("expected , or } at offset %d", p.i)
		}
	}
}

// hinted is a syntax error whose message says what to write instead.
type hinted string

func (e hinted) Error() string { return string(e) }

// regexError: the value of a =~ or !~ matcher is no regular expression.
type regexError struct {
	label, value string
	err          error
}

func (e *regexError) Error() string {
	msg := e.err.Error()
	if re, ok := e.err.(*syntax.Error); ok {
		msg = string(re.Code)
	}
	return fmt.Sprintf("label %s: %q is not an RE2 regular expression (%s); escape special characters with a backslash, or match the value exactly with = or !=",
		e.label, e.value, msg)
}

func (e *regexError) Unwrap() error { return e.err }

// token is the first token of s, for messages: a range "[5m]", a word, or a
// character.
func token(s string) string {
	switch {
	case s == "":
		return s
	case s[0] == '[':
		if i := strings.IndexByte(s, ']'); i >= 0 {
			return s[:i+1]
		}
	case s[0] == '_' || 'a' <= s[0] && s[0] <= 'z' || 'A' <= s[0] && s[0] <= 'Z' || '0' <= s[0] && s[0] <= '9':
		i := 1
		for i < len(s) && (s[i] == '_' || 'a' <= s[i] && s[i] <= 'z' || 'A' <= s[i] && s[i] <= 'Z' || '0' <= s[i] && s[i] <= '9') {
			i++
		}
		return s[:i]
	}
	_, n := utf8.DecodeRuneInString(s)
	return s[:n]
}

func (m matcher) matchesEmpty() bool {
	switch m.op {
	case "=":
		return m.value == ""
	case "!=":
		return m.value != ""
	}
	return m.re.MatchString("") == (m.op == "=~")
}

// scanner walks a selector byte by byte.
type scanner struct {
	s string
	i int
}

func (p *scanner) eof() bool { return p.i >= len(p.s) }

func (p *scanner) peek() byte {
	if p.eof() {
		return 0
	}
	return p.s[p.i]
}

func (p *scanner) space() {
	for !p.eof() && strings.IndexByte(" \t\r\n", p.s[p.i]) >= 0 {
		p.i++
	}
}

// ident reads a metric name ([a-zA-Z_:][a-zA-Z0-9_:]*) or, without colons,
// a label name; it returns "" when there is none.
func (p *scanner) ident(colon bool) string {
	start := p.i
	for !p.eof() {
		c := p.s[p.i]
		ok := c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' ||
			colon && c == ':' || p.i > start && '0' <= c && c <= '9'
		if !ok {
			break
		}
		p.i++
	}
	return p.s[start:p.i]
}

func (p *scanner) op() string {
	for _, op := range []string{"=~", "!=", "!~", "="} {
		if strings.HasPrefix(p.s[p.i:], op) {
			p.i += len(op)
			return op
		}
	}
	return ""
}

// str reads a PromQL string literal and returns its value.
func (p *scanner) str() (string, error) {
	n, err := stringEnd(p.s[p.i:])
	if err != nil {
		return "", err
	}
	lit := p.s[p.i : p.i+n]
	p.i += n
	return unquote(lit)
}

func isQuote(c byte) bool { return c == '"' || c == '\'' || c == '`' }

// stringEnd returns the length of the string literal at the start of s, which
// begins with a quote. Escapes are skipped, not checked: unquote does that.
func stringEnd(s string) (int, error) {
	q := s[0]
	for i := 1; i < len(s); i++ {
		switch c := s[i]; {
		case c == q:
			return i + 1, nil
		case c == '\\' && q != '`':
			i++
		case c == '\n' && q != '`':
			return 0, errors.New("newline in string")
		}
	}
	return 0, errors.New("unterminated string")
}

// unquote decodes a complete literal as PromQL does: Go escapes in "..." and
// '...', none in `...`.
func unquote(lit string) (string, error) {
	q, body := lit[0], lit[1:len(lit)-1]
	if q == '`' {
		return body, nil
	}
	var b strings.Builder
	for body != "" {
		r, _, tail, err := strconv.UnquoteChar(body, q)
		if err != nil {
			return "", fmt.Errorf("bad escape in %s", lit)
		}
		b.WriteRune(r)
		body = tail
	}
	return b.String(), nil
}
