package sli

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	prometheustest "github.com/budgetgate/budgetgate/test/prometheus"
)

// history is 31 days of synthetic checkout traffic ending at end: 10,000
// requests a minute; 0.05% errors and 1% slower than 300ms, except in the last
// hour: 2% errors and 10% slow. Samples are 5 minutes apart until 25h before
// end and 60s apart after, so that the 1h, 6h and 24h windows see minute
// resolution.
type history struct {
	end                    time.Time
	total, errors          []prometheustest.Sample // all requests, 5xx
	fast, ok300, histCount []prometheustest.Sample // buckets le=0.1, le=0.3, and _count
}

func newHistory(end time.Time) *history {
	h := &history{end: end}
	var total, errs, fast, ok300 float64
	add := func(t time.Time) {
		h.total = append(h.total, prometheustest.Sample{T: t, V: total})
		h.errors = append(h.errors, prometheustest.Sample{T: t, V: errs})
		h.fast = append(h.fast, prometheustest.Sample{T: t, V: fast})
		h.ok300 = append(h.ok300, prometheustest.Sample{T: t, V: ok300})
		h.histCount = append(h.histCount, prometheustest.Sample{T: t, V: total})
	}
	t := end.Add(-31 * 24 * time.Hour)
	add(t)
	for t.Before(end) {
		step := 5 * time.Minute
		if !t.Before(end.Add(-25 * time.Hour)) {
			step = time.Minute
		}
		t = t.Add(step)
		m := step.Minutes()
		total += 10000 * m
		if t.After(end.Add(-time.Hour)) {
			errs, fast, ok300 = errs+200*m, fast+5000*m, ok300+9000*m
		} else {
			errs, fast, ok300 = errs+5*m, fast+8000*m, ok300+9900*m
		}
		add(t)
	}
	return h
}

func (h *history) families() []prometheustest.Family {
	sub := func(a, b []prometheustest.Sample) []prometheustest.Sample {
		out := make([]prometheustest.Sample, len(a))
		for i := range a {
			out[i] = prometheustest.Sample{T: a[i].T, V: a[i].V - b[i].V}
		}
		return out
	}
	sum := make([]prometheustest.Sample, len(h.total))
	for i, s := range h.total {
		sum[i] = prometheustest.Sample{T: s.T, V: s.V * 0.05}
	}
	const job = `job="checkout"`
	return []prometheustest.Family{{
		Name: "http_requests", Type: "counter",
		Series: []prometheustest.Series{
			{Metric: `http_requests_total{` + job + `,code="200"}`, Samples: sub(h.total, h.errors)},
			{Metric: `http_requests_total{` + job + `,code="500"}`, Samples: h.errors},
		},
	}, {
		Name: "http_request_duration_seconds", Type: "histogram",
		Series: []prometheustest.Series{
			{Metric: `http_request_duration_seconds_bucket{` + job + `,le="0.1"}`, Samples: h.fast},
			{Metric: `http_request_duration_seconds_bucket{` + job + `,le="0.3"}`, Samples: h.ok300},
			{Metric: `http_request_duration_seconds_bucket{` + job + `,le="+Inf"}`, Samples: h.histCount},
			{Metric: `http_request_duration_seconds_count{` + job + `}`, Samples: h.histCount},
			{Metric: `http_request_duration_seconds_sum{` + job + `}`, Samples: sum},
		},
	}}
}

// promIncrease is Prometheus's increase() of a counter without resets over
// the left-open range (at-w, at], extrapolation included (promql
// extrapolatedRate in Prometheus 3).
func promIncrease(s []prometheustest.Sample, at time.Time, w time.Duration) float64 {
	start := at.Add(-w)
	var in []prometheustest.Sample
	for _, p := range s {
		if p.T.After(start) && !p.T.After(at) {
			in = append(in, p)
		}
	}
	if len(in) < 2 {
		return math.NaN()
	}
	first, last := in[0], in[len(in)-1]
	result := last.V - first.V
	sampled := last.T.Sub(first.T).Seconds()
	avg := sampled / float64(len(in)-1)
	toStart, toEnd := first.T.Sub(start).Seconds(), at.Sub(last.T).Seconds()
	if toStart >= avg*1.1 {
		toStart = avg / 2
	}
	if result > 0 && sampled*first.V/result < toStart {
		toStart = sampled * first.V / result
	}
	if toEnd >= avg*1.1 {
		toEnd = avg / 2
	}
	return result * ((sampled + toStart + toEnd) / sampled)
}

// trueIncrease is the exact increase of the generated counter over w.
func trueIncrease(s []prometheustest.Sample, at time.Time, w time.Duration) float64 {
	value := func(t time.Time) float64 {
		v := 0.0
		for _, p := range s {
			if !p.T.After(t) {
				v = p.V
			}
		}
		return v
	}
	return value(at) - value(at.Add(-w))
}

// TestRealPrometheus measures backfilled history through a real Prometheus.
// Expected answers replicate increase()'s extrapolation exactly, so they
// match to float precision (relative 1e-9); the exact increase of the
// generated counters is logged next to them.
func TestRealPrometheus(t *testing.T) {
	bins := prometheustest.Require(t)
	end := time.Now().Truncate(time.Minute).Add(-10 * time.Minute)
	h := newHistory(end)
	dataDir := t.TempDir()
	bins.Backfill(t, dataDir, h.families()...)
	srv := bins.Start(t, prometheustest.Options{DataDir: dataDir})

	requests := &countingTransport{next: http.DefaultTransport}
	p, err := NewPrometheus(srv.URL, WithClock(func() time.Time { return end }), WithRoundTripper(requests))
	if err != nil {
		t.Fatal(err)
	}
	const day = 24 * time.Hour
	windows := []time.Duration{time.Hour, 6 * time.Hour, day, 30 * day}
	ctx := context.Background()

	ratioWant := func(errs, total []prometheustest.Sample, w time.Duration) (ratio, events float64) {
		n := promIncrease(total, end, w)
		return promIncrease(errs, end, w) / n, n
	}
	latencyWant := func(w time.Duration) (ratio, events float64) {
		n := promIncrease(h.histCount, end, w)
		return 1 - promIncrease(h.ok300, end, w)/n, n
	}

	tests := []struct {
		name string
		ind  Indicator
		want func(w time.Duration) Result
		// exact is the error ratio of the generated counters, for the log.
		exact func(w time.Duration) float64
	}{{
		name: "ratio",
		ind:  ratioIndicator,
		want: func(w time.Duration) Result {
			r, n := ratioWant(h.errors, h.total, w)
			return Result{ErrorRatio: r, Events: n}
		},
		exact: func(w time.Duration) float64 {
			return trueIncrease(h.errors, end, w) / trueIncrease(h.total, end, w)
		},
	}, {
		name: "latency",
		ind:  latencyIndicator,
		want: func(w time.Duration) Result {
			r, n := latencyWant(w)
			return Result{ErrorRatio: r, Events: n}
		},
		exact: func(w time.Duration) float64 {
			return 1 - trueIncrease(h.ok300, end, w)/trueIncrease(h.histCount, end, w)
		},
	}, {
		name: "query",
		ind: Indicator{Query: `sum(rate(http_requests_total{job="checkout",code=~"5.."}[$window]))` +
			` / sum(rate(http_requests_total{job="checkout"}[$window]))`},
		want: func(w time.Duration) Result {
			r, _ := ratioWant(h.errors, h.total, w)
			return Result{ErrorRatio: r, Events: -1}
		},
		exact: func(w time.Duration) float64 {
			return trueIncrease(h.errors, end, w) / trueIncrease(h.total, end, w)
		},
	}, {
		name: "ratio, error selector without series",
		ind: Indicator{Ratio: &Ratio{
			Errors: `http_requests_total{job="checkout",code="503"}`,
			Total:  `http_requests_total{job="checkout"}`,
		}},
		want: func(w time.Duration) Result {
			return Result{ErrorRatio: 0, Events: promIncrease(h.total, end, w)}
		},
		exact: func(time.Duration) float64 { return 0 },
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := requests.n.Load()
			got, err := p.Measure(ctx, tt.ind, windows)
			if err != nil {
				t.Fatal(err)
			}
			if n := requests.n.Load() - before; n != int64(len(windows)) {
				t.Errorf("Measure sent %d requests for %d windows", n, len(windows))
			}
			var table strings.Builder
			fmt.Fprintf(&table, "%-6s %-22s %-22s %-12s %-16s %-16s\n",
				"window", "expected ratio", "measured ratio", "exact ratio", "expected events", "measured events")
			for _, w := range windows {
				want, g := tt.want(w), got[w]
				fmt.Fprintf(&table, "%-6s %-22.17g %-22.17g %-12.6g %-16.10g %-16.10g\n",
					model.Duration(w), want.ErrorRatio, g.ErrorRatio, tt.exact(w), want.Events, g.Events)
				if _, ok := got[w]; !ok {
					t.Errorf("window %s: no data", model.Duration(w))
					continue
				}
				if !near(g.ErrorRatio, want.ErrorRatio) || !near(g.Events, want.Events) {
					t.Errorf("window %s: got %+v, want %+v", model.Duration(w), g, want)
				}
			}
			t.Logf("%s\n%s", describe(tt.ind), table.String())
		})
	}

	t.Run("no series", func(t *testing.T) {
		for _, ind := range []Indicator{
			{Ratio: &Ratio{Errors: `http_requests_total{job="nope",code="500"}`, Total: `http_requests_total{job="nope"}`}},
			{Latency: &Latency{Success: `nope_bucket{le="0.3"}`, Total: `nope_count`}},
			{Query: `sum(rate(nope_total[$window]))`},
		} {
			got, err := p.Measure(ctx, ind, windows)
			if err != nil || len(got) != 0 {
				t.Errorf("%s: Measure = %v, %v; want no windows and no error", describe(ind), got, err)
			}
		}
	})

	t.Run("bad PromQL", func(t *testing.T) {
		got, err := p.Measure(ctx, Indicator{Query: `sum(rate(x[$window])) +`}, windows[:2])
		var qe *QueryError
		var apiErr *v1.Error
		if !errors.As(err, &qe) || !errors.As(err, &apiErr) || apiErr.Type != v1.ErrBadData || len(got) != 0 {
			t.Errorf("Measure = %v, %v; want a QueryError wrapping bad_data", got, err)
		}
	})
}

// countingTransport counts HTTP requests.
type countingTransport struct {
	next http.RoundTripper
	n    atomic.Int64
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.next.RoundTrip(r)
}

// near reports whether a and b agree to a relative 1e-9.
func near(a, b float64) bool {
	return math.Abs(a-b) <= 1e-9*math.Max(math.Abs(a), math.Abs(b))
}
