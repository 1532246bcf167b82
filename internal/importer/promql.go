package importer

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/budgetgate/budgetgate/internal/sli"
)

// The sources write their queries in three ways: Sloth as PromQL over a
// {{.window}} template variable, Pyrra as counter selectors, OpenSLO as
// whatever its data source reads (for Prometheus: a counter selector, or
// PromQL). budgetgate's ratio and latency indicators take counter
// selectors and build the PromQL themselves; its query indicator takes
// PromQL over $window. The functions here recognise the common shapes,
// sum(rate(SELECTOR[$window])) and sum(increase(SELECTOR[$window])), so that
// an SLO becomes a ratio or latency indicator where it can, and a query
// indicator where it cannot.

var windowTemplate = regexp.MustCompile(`\{\{-?\s*\.window\s*-?\}\}`)

// windowVar replaces Sloth's {{.window}} with budgetgate's $window. Any other
// template action has no equivalent.
func windowVar(q string) (string, error) {
	out := windowTemplate.ReplaceAllLiteralString(strings.TrimSpace(q), sli.WindowVar)
	if i := strings.Index(out, "{{"); i >= 0 {
		end := strings.Index(out[i:], "}}")
		action := out[i:]
		if end >= 0 {
			action = out[i : i+end+2]
		}
		return "", fmt.Errorf("%w: the template action %s: budgetgate replaces only $window (Sloth's {{.window}}) in queries", ErrUnsupported, action)
	}
	return out, nil
}

// validSelector says whether s is a selector budgetgate's ratio and latency
// indicators take, by asking the one check the controller and webhook use.
func validSelector(s string) bool {
	if s == "" || len(s) > maxSelector {
		return false
	}
	return sli.ValidateIndicator(sli.Indicator{Latency: &sli.Latency{Success: `x_bucket{le="1"}`, Total: s}}) == nil
}

// countOverWindow recognises sum(rate(S[$window])) and sum(increase(S[$window]))
// and returns the selector S and the function.
func countOverWindow(q string) (selector, fn string, ok bool) {
	arg, ok := call(unparen(q), "sum")
	if !ok {
		return "", "", false
	}
	arg = unparen(arg)
	for _, f := range []string{"rate", "increase"} {
		inner, ok := call(arg, f)
		if !ok {
			continue
		}
		sel, ok := overWindow(inner)
		if !ok || !validSelector(sel) {
			return "", "", false
		}
		return sel, f, true
	}
	return "", "", false
}

// plainSelector recognises a counter given as S or sum(S), as OpenSLO's
// counter metrics are written.
func plainSelector(q string) (string, bool) {
	q = unparen(q)
	if validSelector(q) {
		return q, true
	}
	if arg, ok := call(q, "sum"); ok {
		arg = unparen(arg)
		if validSelector(arg) {
			return arg, true
		}
	}
	return "", false
}

// difference recognises A - B at the top level of q.
func difference(q string) (a, b string, ok bool) {
	parts := splitTop(unparen(q), '-')
	if len(parts) != 2 {
		return "", "", false
	}
	return strings.TrimSpace(parts[0]), strings.TrimSpace(parts[1]), true
}

// increaseOf is the PromQL of the number of events a selector counts over $window.
func increaseOf(selector string) string {
	return "sum(increase(" + selector + "[" + sli.WindowVar + "]))"
}

// call recognises name(ARG) filling all of s, and returns ARG.
func call(s, name string) (string, bool) {
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, name) {
		return "", false
	}
	rest := strings.TrimLeft(s[len(name):], " \t\n")
	if !strings.HasPrefix(rest, "(") {
		return "", false
	}
	end := closing(rest, 0)
	if end != len(rest)-1 {
		return "", false
	}
	return rest[1:end], true
}

// overWindow recognises S[$window] and returns S.
func overWindow(s string) (string, bool) {
	s = strings.TrimSpace(s)
	if !strings.HasSuffix(s, "]") {
		return "", false
	}
	open := -1
	scan(s, func(i int, c byte, depth int) bool {
		if c == '[' && depth == 0 {
			open = i
		}
		return true
	})
	if open < 0 || closing(s, open) != len(s)-1 {
		return "", false
	}
	if strings.TrimSpace(s[open+1:len(s)-1]) != sli.WindowVar {
		return "", false
	}
	return strings.TrimSpace(s[:open]), true
}

// unparen removes parentheses that enclose all of s.
func unparen(s string) string {
	s = strings.TrimSpace(s)
	for strings.HasPrefix(s, "(") && closing(s, 0) == len(s)-1 {
		s = strings.TrimSpace(s[1 : len(s)-1])
	}
	return s
}

// closing is the index of the bracket that closes the one at open, or -1.
func closing(s string, open int) int {
	end := -1
	scan(s[open:], func(i int, c byte, depth int) bool {
		if i > 0 && depth == 0 && (c == ')' || c == ']' || c == '}') {
			end = open + i
			return false
		}
		return true
	})
	return end
}

// splitTop splits s at op where op is outside brackets and strings.
func splitTop(s string, op byte) []string {
	var parts []string
	last := 0
	scan(s, func(i int, c byte, depth int) bool {
		if c == op && depth == 0 {
			parts = append(parts, s[last:i])
			last = i + 1
		}
		return true
	})
	return append(parts, s[last:])
}

// scan calls f for every byte of s outside string literals, with the
// bracket depth before an opening bracket and after a closing one, until f
// returns false.
func scan(s string, f func(i int, c byte, depth int) bool) {
	depth := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '"', '\'', '`':
			j := i + 1
			for j < len(s) && s[j] != c {
				if s[j] == '\\' && c != '`' {
					j++
				}
				j++
			}
			i = j
			continue
		case '(', '[', '{':
			if !f(i, c, depth) {
				return
			}
			depth++
			continue
		case ')', ']', '}':
			depth--
		}
		if !f(i, c, depth) {
			return
		}
	}
}

// compact is s without blanks outside strings, to compare selectors as
// PromQL reads them.
func compact(s string) string {
	var b strings.Builder
	inString := byte(0)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case inString != 0:
			b.WriteByte(c)
			if c == '\\' && inString != '`' && i+1 < len(s) {
				i++
				b.WriteByte(s[i])
			} else if c == inString {
				inString = 0
			}
		case c == '"' || c == '\'' || c == '`':
			inString = c
			b.WriteByte(c)
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// eventIndicator is what two queries of counted events over $window (bad or
// good events, and all events) become: a ratio or latency indicator when
// both are sum(rate|increase(SELECTOR[$window])) with the same function,
// else a query indicator. good says the first query counts good events.
func eventIndicator(first, total string, good bool) (ind indicatorSpec, notes []string) {
	fSel, fFn, fOK := countOverWindow(first)
	tSel, tFn, tOK := countOverWindow(total)
	switch {
	case fOK && tOK && fFn == tFn && !good:
		if sli.ValidateIndicator(sli.Indicator{Ratio: &sli.Ratio{Errors: fSel, Total: tSel}}) == nil {
			return indicatorSpec{ratio: &[2]string{fSel, tSel}}, nil
		}
	case fOK && tOK && fFn == tFn && good:
		if sli.ValidateIndicator(sli.Indicator{Latency: &sli.Latency{Success: fSel, Total: tSel}}) == nil {
			return indicatorSpec{latency: &[2]string{fSel, tSel}}, nil
		}
	case !good && tOK:
		// Sloth's usual latency SLI: (count - bucket) / count.
		if a, b, ok := difference(first); ok {
			aSel, aFn, aOK := countOverWindow(a)
			bSel, bFn, bOK := countOverWindow(b)
			if aOK && bOK && aFn == tFn && bFn == tFn && compact(aSel) == compact(tSel) &&
				sli.ValidateIndicator(sli.Indicator{Latency: &sli.Latency{Success: bSel, Total: tSel}}) == nil {
				return indicatorSpec{latency: &[2]string{bSel, tSel}}, nil
			}
		}
	}
	q := "(" + strings.TrimSpace(first) + ")\n/\n(" + strings.TrimSpace(total) + ")"
	if good {
		q = "1 - " + q
	}
	ind = indicatorSpec{query: q}
	notes = append(notes, "written as a query indicator: the queries are not both sum(rate(SELECTOR[window])) (or increase) of one selector each, which budgetgate's ratio and latency indicators need")
	if tOK {
		ind.queryEvents = increaseOf(tSel)
	} else {
		notes = append(notes, "no queryEvents: the total query is not sum(rate(SELECTOR[window])), so budgetgate cannot count the events of a window, and the policy's low-traffic guard (minEvents) does not apply")
	}
	return ind, notes
}

// indicatorSpec is an indicator before it becomes the API's.
type indicatorSpec struct {
	ratio, latency     *[2]string
	query, queryEvents string
}
