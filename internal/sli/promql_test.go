package sli

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestBuildQuery(t *testing.T) {
	tests := []struct {
		name   string
		ind    Indicator
		window time.Duration
		want   string
	}{{
		name: "ratio",
		ind: Indicator{Ratio: &Ratio{
			Errors: `http_requests_total{job="checkout",code=~"5.."}`,
			Total:  `http_requests_total{job="checkout"}`,
		}},
		window: time.Hour,
		want: `label_replace((sum(increase(http_requests_total{job="checkout",code=~"5.."}[1h])) or vector(0))` +
			` / sum(increase(http_requests_total{job="checkout"}[1h])), "budgetgate_part", "ratio", "", "")` +
			` or label_replace(sum(increase(http_requests_total{job="checkout"}[1h])), "budgetgate_part", "events", "", "")`,
	}, {
		name: "latency",
		ind: Indicator{Latency: &Latency{
			Success: `http_request_duration_seconds_bucket{job="checkout",le="0.3"}`,
			Total:   `http_request_duration_seconds_count{job="checkout"}`,
		}},
		window: 30 * 24 * time.Hour,
		want: `label_replace(1 - sum(increase(http_request_duration_seconds_bucket{job="checkout",le="0.3"}[30d]))` +
			` / sum(increase(http_request_duration_seconds_count{job="checkout"}[30d])), "budgetgate_part", "ratio", "", "")` +
			` or label_replace(sum(increase(http_request_duration_seconds_count{job="checkout"}[30d])), "budgetgate_part", "events", "", "")`,
	}, {
		name:   "query",
		ind:    Indicator{Query: `sum(rate(errors_total[$window])) / sum(rate(requests_total[$window]))`},
		window: 90 * time.Minute,
		want:   `sum(rate(errors_total[1h30m])) / sum(rate(requests_total[1h30m]))`,
	}, {
		name:   "query with sub-second window",
		ind:    Indicator{Query: `x[$window]`},
		window: 1500 * time.Millisecond,
		want:   `x[1s500ms]`,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := BuildQuery(tt.ind, tt.window)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("BuildQuery:\n got %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestBuildQueryBadWindow(t *testing.T) {
	ind := Indicator{Query: "x[$window]"}
	for _, w := range []time.Duration{0, -time.Minute, time.Microsecond, time.Second + 1} {
		if _, err := BuildQuery(ind, w); !errors.Is(err, ErrBadWindow) {
			t.Errorf("BuildQuery(%v) error = %v, want ErrBadWindow", w, err)
		}
	}
}

func TestValidateIndicator(t *testing.T) {
	ratio := func(errs, total string) Indicator { return Indicator{Ratio: &Ratio{Errors: errs, Total: total}} }
	latency := func(ok, total string) Indicator { return Indicator{Latency: &Latency{Success: ok, Total: total}} }
	const total = `http_requests_total{job="checkout"}`
	valid := []Indicator{
		ratio(`http_requests_total{job="checkout",code=~"5.."}`, total),
		ratio(`http_requests_total{ job = "a" , code !~ '2..|3..' , }`, `http_requests_total`),
		ratio(`errors:rate5m`, `{__name__="requests_total"}`),
		ratio(`{"http.requests.errors", "service.name"="checkout"}`, `{"http.requests"}`),
		ratio("x{path=`C:\\tmp`}", `x{a!=""}`),
		ratio(`x{a="\"quoted\" \u00e9"}`, `x{a=~".*"}`),
		latency(`h_bucket{le="0.3"}`, `h_count`),
		latency(`h_bucket{job="x",le=~"0.3|0.30"}`, `h_count{job="x"}`),
		latency(`h_bucket{le="+Inf"}`, `h_count`),
		{Query: `sum(rate(e[$window])) / sum(rate(t[$window]))`},
		{Query: "sum(rate(e{a=\"}\"}[$window])) # comment with ( \n / 1"},
	}
	for _, ind := range valid {
		if err := ValidateIndicator(ind); err != nil {
			t.Errorf("ValidateIndicator(%s): %v", describe(ind), err)
		}
	}

	invalid := []struct {
		ind  Indicator
		want string
	}{
		{Indicator{}, "got 0"},
		{Indicator{Ratio: &Ratio{Errors: "a", Total: "b"}, Query: "x[$window]"}, "got 2"},
		{Indicator{Ratio: &Ratio{}, Latency: &Latency{}}, "got 2"},
		{ratio("", total), "ratio.errors: empty selector"},
		{ratio("a", "  "), "ratio.total: empty selector"},
		{ratio(`a{`, total), "unclosed {"},
		{ratio(`a{b="c"`, total), "expected , or }"},
		{ratio(`a{b}`, total), `expected =, !=, =~ or !~ after "b"`},
		{ratio(`a{b=c}`, total), "expected a quoted value"},
		{ratio(`a{b=="c"}`, total), "expected a quoted value"},
		{ratio(`a{b="c}`, total), "unterminated string"},
		{ratio(`a{b=~"("}`, total), "missing closing )"},
		{ratio(`a{b="\q"}`, total), "bad escape"},
		{ratio("a{b=\"x\ny\"}", total), "newline in string"},
		{ratio(`a[5m]`, total), "only a metric selector is allowed"},
		{ratio(`a offset 5m`, total), "only a metric selector is allowed"},
		{ratio(`rate(a[5m])`, total), "only a metric selector is allowed"},
		{ratio(`a) or vector(1`, total), "only a metric selector is allowed"},
		{ratio(`a{} b`, total), "only a metric selector is allowed"},
		{ratio(`5xx_total`, total), "only a metric selector is allowed"},
		{ratio(`sum`, total), "PromQL keyword"},
		{ratio(`{}`, total), "needs a metric name or matchers"},
		{ratio(`{a=~".*"}`, total), "does not match the empty string"},
		{ratio(`{a=""}`, total), "does not match the empty string"},
		{ratio(`{"a", "b"}`, total), "metric name given twice"},
		{ratio(`{""}`, total), "empty metric name"},
		{latency(`h_bucket`, `h_count`), "needs an le matcher"},
		{latency(`h_bucket{le!="0.3"}`, `h_count`), "le must be matched with = or =~"},
		{latency(`h_bucket{le="fast"}`, `h_count`), "not a number"},
		{latency(`h_bucket{le="1"}`, `h_count[5m]`), "latency.total"},
		{Indicator{Query: "sum(rate(x[5m]))"}, "must contain $window"},
		{Indicator{Query: "sum(rate(x[$window])"}, `unclosed '('`},
		{Indicator{Query: "sum(rate(x[$window)))"}, `unexpected ')'`},
		{Indicator{Query: "x{a=\"b}[$window]"}, "unterminated string"},
	}
	for _, tt := range invalid {
		err := ValidateIndicator(tt.ind)
		if !errors.Is(err, ErrBadIndicator) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ValidateIndicator(%s) = %v, want ErrBadIndicator containing %q", describe(tt.ind), err, tt.want)
		}
	}
}

func describe(ind Indicator) string {
	switch {
	case ind.Ratio != nil && ind.Latency == nil && ind.Query == "":
		return "ratio " + ind.Ratio.Errors + " / " + ind.Ratio.Total
	case ind.Latency != nil && ind.Ratio == nil && ind.Query == "":
		return "latency " + ind.Latency.Success + " / " + ind.Latency.Total
	}
	return "query " + ind.Query
}

// FuzzIndicator checks that validation and query building never panic, and
// that a valid indicator always yields a query with balanced brackets that
// contains its selectors verbatim and no $window.
func FuzzIndicator(f *testing.F) {
	f.Add(uint8(0), `http_requests_total{job="checkout",code=~"5.."}`, `http_requests_total{job="checkout"}`)
	f.Add(uint8(1), `h_bucket{le="0.3"}`, `h_count`)
	f.Add(uint8(2), `sum(rate(e[$window])) / sum(rate(t[$window]))`, ``)
	f.Add(uint8(0), `{"a.b", c=~"(x|y)"}`, "x{a=`\\`}")
	f.Add(uint8(1), `a{le='\x41'}`, `a{b!~"[[:alpha:]]"}`)
	f.Fuzz(func(t *testing.T, kind uint8, a, b string) {
		var ind Indicator
		switch kind % 4 {
		case 0:
			ind.Ratio = &Ratio{Errors: a, Total: b}
		case 1:
			ind.Latency = &Latency{Success: a, Total: b}
		case 2:
			ind.Query = a
		default:
			ind = Indicator{Ratio: &Ratio{Errors: a, Total: b}, Query: a}
		}
		err := ValidateIndicator(ind)
		q, qerr := BuildQuery(ind, 5*time.Minute)
		if (err == nil) != (qerr == nil) {
			t.Fatalf("ValidateIndicator = %v but BuildQuery = %v", err, qerr)
		}
		if err != nil {
			if !errors.Is(err, ErrBadIndicator) {
				t.Fatalf("error %v does not wrap ErrBadIndicator", err)
			}
			return
		}
		if strings.Contains(q, WindowVar) && ind.Query == "" {
			t.Fatalf("query %q still contains %s", q, WindowVar)
		}
		if ind.Query == "" {
			if !strings.Contains(q, a) || !strings.Contains(q, b) {
				t.Fatalf("query %q lacks a selector", q)
			}
			// The selectors are plain selectors, so the whole query is
			// well formed as far as checkQuery can tell.
			if err := checkQuery(q + WindowVar); err != nil {
				t.Fatalf("built query %q: %v", q, err)
			}
		}
	})
}

// TestIndicatorMessages spells out the whole message of a wrong selector,
// which says what to write instead: the selector repaired where one simple
// repair parses, else an example of the field.
func TestIndicatorMessages(t *testing.T) {
	ratio := func(errs, total string) Indicator { return Indicator{Ratio: &Ratio{Errors: errs, Total: total}} }
	latency := func(ok, total string) Indicator { return Indicator{Latency: &Latency{Success: ok, Total: total}} }
	const total = `http_requests_total{job="checkout"}`
	tests := []struct {
		ind  Indicator
		want string
	}{
		{ratio(`x{job="checkout",code=~"5.."`, total), `bad indicator: ratio.errors: expected , or } at offset 28; write x{job="checkout",code=~"5.."}`},
		{ratio(`sum(rate(x{code=~"5.."}[5m]))`, total), `bad indicator: ratio.errors: unexpected "(" at offset 3: only a metric selector is allowed, which budgetgate wraps in increase(...[window]) itself; write x{code=~"5.."}`},
		{ratio(`x{code="500"}[5m]`, total), `bad indicator: ratio.errors: unexpected "[5m]" at offset 13: only a metric selector is allowed, which budgetgate wraps in increase(...[window]) itself; write x{code="500"}`},
		{ratio(`x offset 5m`, total), `bad indicator: ratio.errors: unexpected "offset" at offset 2: only a metric selector is allowed, which budgetgate wraps in increase(...[window]) itself; write x`},
		{ratio(`x{code="500"}`, `x{job=checkout, env=prod}`), `bad indicator: ratio.total: expected a quoted value for job= at offset 6; write x{job="checkout", env="prod"}`},
		{ratio(`x{code=~"5(xx"}`, total), `bad indicator: ratio.errors: label code: "5(xx" is not an RE2 regular expression (missing closing )); escape special characters with a backslash, or match the value exactly with = or !=`},
		{ratio(`{}`, total), `bad indicator: ratio.errors: a selector needs a metric name or matchers; write a selector such as http_requests_total{job="checkout",code=~"5.."}`},
		{ratio(`sum`, total), `bad indicator: ratio.errors: metric name "sum" is a PromQL keyword; write {__name__="sum"}`},
		{ratio(total, ` http_requests_total{ job="checkout" } `), `bad indicator: ratio.errors: the same selector as ratio.total, so every event would count as failed; select the failed events only, e.g. add code=~"5.." as in http_requests_total{job="checkout",code=~"5.."}`},
		{latency(`h_bucket{le="300ms"}`, `h_count`), `bad indicator: latency.success: le="300ms" is not a number: le is the upper bound of a bucket in the histogram's unit (seconds for *_seconds); write le="0.3"`},
		{latency(`h_bucket{le="fast"}`, `h_count`), `bad indicator: latency.success: le="fast" is not a number: le is the upper bound of a bucket in the histogram's unit (seconds for *_seconds); write le="0.3"`},
		{latency(`h_bucket{le!="0.3"}`, `h_count`), `bad indicator: latency.success: le must be matched with = or =~, not !=; write le="0.3"`},
		{latency(`h_bucket`, `h_count`), `bad indicator: latency.success: a histogram bucket selector needs an le matcher, e.g. le="0.3" as in http_request_duration_seconds_bucket{job="checkout",le="0.3"}`},
		{latency(`h_bucket{le="0.3"`, `h_count{`), "bad indicator: latency.success: expected , or } at offset 17; write h_bucket{le=\"0.3\"}\nlatency.total: unclosed {; write h_count{}"},
	}
	for _, tt := range tests {
		err := ValidateIndicator(tt.ind)
		if err == nil || err.Error() != tt.want {
			t.Errorf("ValidateIndicator(%s)\n got: %v\nwant: %s", describe(tt.ind), err, tt.want)
		}
	}
}

func TestFieldErrors(t *testing.T) {
	err := ValidateIndicator(Indicator{Latency: &Latency{Success: `h{`, Total: `h_count[5m]`}})
	fes := FieldErrors(err)
	got := make([]string, 0, len(fes))
	for _, fe := range fes {
		got = append(got, fe.Field)
	}
	if strings.Join(got, ",") != "latency.success,latency.total" {
		t.Errorf("FieldErrors(%v) fields = %v", err, got)
	}
	if fes := FieldErrors(ValidateIndicator(Indicator{})); len(fes) != 0 {
		t.Errorf("FieldErrors of an error about no field = %v", fes)
	}
}
