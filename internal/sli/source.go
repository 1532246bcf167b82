// Package sli reads service level indicators: the error ratio and the number of
// events of an SLO over a set of windows.
package sli

import (
	"context"
	"time"
)

// Indicator says how to measure an SLO. Exactly one of its fields is set.
type Indicator struct {
	Ratio   *Ratio
	Latency *Latency
	// Query is a PromQL expression of the error ratio containing $window.
	Query string
	// QueryEvents, optional with Query, is a PromQL expression of the number of
	// events over $window, so that the low-traffic guard can apply.
	QueryEvents string
}

// Ratio: errors and total are Prometheus selectors of counters,
// e.g. http_requests_total{job="checkout",code=~"5.."}.
type Ratio struct {
	Errors string
	Total  string
}

// Latency: Success is a histogram bucket selector with an le matcher
// (http_request_duration_seconds_bucket{job="checkout",le="0.3"}) and Total the
// matching count selector (http_request_duration_seconds_count{job="checkout"}).
type Latency struct {
	Success string
	Total   string
}

// Result is what a source measured over one window.
type Result struct {
	// ErrorRatio is bad ÷ all events, in [0, 1].
	ErrorRatio float64
	// Events is the number of events in the window; -1 when the indicator cannot
	// tell (query indicators without QueryEvents).
	Events float64
}

// Source measures indicators.
type Source interface {
	// Measure returns one entry per window that had data; a window missing from
	// the map had no data (empty result, NaN or ±Inf). The error is non-nil when
	// the source could not be asked at all or answered with an error, and may
	// come with partial results.
	Measure(ctx context.Context, ind Indicator, windows []time.Duration) (map[time.Duration]Result, error)
}
