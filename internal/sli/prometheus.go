package sli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
)

// DefaultTimeout bounds each Prometheus query unless WithTimeout says otherwise.
const DefaultTimeout = 10 * time.Second

// MaxConcurrentQueries bounds the queries one Measure call has in flight. With
// n windows, a Measure call needs at most ⌈n ÷ MaxConcurrentQueries⌉ query
// timeouts (see EvaluationDeadline).
const MaxConcurrentQueries = 4

// EvaluationDeadline is how long a Measure call of n windows may take when
// each query is bounded by perQuery: one per-query timeout for every round of
// MaxConcurrentQueries queries, plus a second for the rest of the evaluation.
func EvaluationDeadline(perQuery time.Duration, n int) time.Duration {
	rounds := max(1, (n+MaxConcurrentQueries-1)/MaxConcurrentQueries)
	return time.Duration(rounds)*perQuery + time.Second
}

// negativeTolerance is how far below zero a measured ratio may fall by float
// noise and still count as zero; further below, the counters are inconsistent
// (e.g. a bucket above its count) and the window has no data.
const negativeTolerance = 1e-6

// Prometheus is a Source that asks a Prometheus server's HTTP API, one
// instant query per window, all evaluated at the same instant.
type Prometheus struct {
	api     v1.API
	timeout time.Duration
	now     func() time.Time
}

var _ Source = (*Prometheus)(nil)

// Option configures NewPrometheus.
type Option func(*options)

type options struct {
	timeout      time.Duration
	roundTripper http.RoundTripper
	now          func() time.Time
}

// WithTimeout bounds each query (default DefaultTimeout). Prometheus is asked
// to give up after the same time.
func WithTimeout(d time.Duration) Option { return func(o *options) { o.timeout = d } }

// WithRoundTripper sets the HTTP transport, e.g. for TLS or authentication
// (default api.DefaultRoundTripper).
func WithRoundTripper(rt http.RoundTripper) Option {
	return func(o *options) { o.roundTripper = rt }
}

// WithClock sets the function that gives the evaluation instant of a Measure
// call (default time.Now).
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// NewPrometheus returns a Source for the Prometheus server at address, an
// http or https URL such as http://prometheus.monitoring:9090.
func NewPrometheus(address string, opts ...Option) (*Prometheus, error) {
	o := options{timeout: DefaultTimeout, now: time.Now}
	for _, opt := range opts {
		opt(&o)
	}
	if o.timeout <= 0 {
		return nil, fmt.Errorf("sli: timeout must be positive, got %v", o.timeout)
	}
	if o.now == nil {
		return nil, errors.New("sli: nil clock")
	}
	u, err := url.Parse(address)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("sli: Prometheus address %q is not an http(s) URL", address)
	}
	client, err := api.NewClient(api.Config{Address: address, RoundTripper: o.roundTripper})
	if err != nil {
		return nil, fmt.Errorf("sli: %w", err)
	}
	return &Prometheus{api: v1.NewAPI(client), timeout: o.timeout, now: o.now}, nil
}

// RefusedError is a query that Prometheus, or the gateway in front of it,
// refused as unauthenticated or forbidden.
type RefusedError struct {
	// Status is the HTTP status, e.g. "401 Unauthorized".
	Status string
}

func (e *RefusedError) Error() string {
	return "Prometheus answered " + e.Status + ": the connection's credentials were refused (the platform checks its http_client_config and Secret)"
}

// refused turns the client's "client error: 401" into what it means.
func refused(err error) error {
	var apiErr *v1.Error
	if !errors.As(err, &apiErr) || apiErr.Type != v1.ErrClient {
		return err
	}
	for code, what := range map[string]string{"401": "401 Unauthorized", "403": "403 Forbidden", "407": "407 Proxy Authentication Required"} {
		if strings.HasSuffix(apiErr.Msg, "client error: "+code) {
			return &RefusedError{Status: what}
		}
	}
	return err
}

// QueryError is a failed query for one window.
type QueryError struct {
	Window time.Duration
	Query  string
	Err    error
}

func (e *QueryError) Error() string {
	return fmt.Sprintf("sli: window %s: query %s: %v", model.Duration(e.Window), e.Query, e.Err)
}

func (e *QueryError) Unwrap() error { return e.Err }

// Measure runs one instant query per distinct window, at most four at a time,
// longest window first, each bounded by the timeout and evaluated at the same
// instant. Long windows go first because they are the slowest and the ones
// that hold the budget: when the caller's deadline cuts an evaluation short, it
// loses short windows, whose rules keep their last decision for staleHold. A window whose
// answer is empty, NaN or infinite is absent from the map. A ratio below zero
// by float noise counts as 0 and one above 1 as 1; one further below zero
// means inconsistent counters and the window is absent.
//
// An invalid indicator or window is reported, wrapping ErrBadIndicator or
// ErrBadWindow, before anything is sent. Failed windows come back as
// *QueryError joined with errors.Join, next to the results of the others;
// errors.Is(err, context.DeadlineExceeded) tells timeouts, either ours or
// Prometheus's.
func (p *Prometheus) Measure(ctx context.Context, ind Indicator, windows []time.Duration) (map[time.Duration]Result, error) {
	if err := ValidateIndicator(ind); err != nil {
		return nil, err
	}
	for _, w := range windows {
		if err := checkWindow(w); err != nil {
			return nil, err
		}
	}
	windows = slices.Compact(slices.Sorted(slices.Values(windows)))
	slices.Reverse(windows)
	at := p.now()

	var (
		results = make([]Result, len(windows))
		found   = make([]bool, len(windows))
		errs    = make([]error, len(windows))
		sem     = make(chan struct{}, MaxConcurrentQueries)
		wg      sync.WaitGroup
	)
	for i, w := range windows {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			results[i], found[i], errs[i] = p.measure(ctx, ind, w, at)
		})
	}
	wg.Wait()

	out := make(map[time.Duration]Result, len(windows))
	for i, w := range windows {
		if found[i] {
			out[w] = results[i]
		}
	}
	return out, errors.Join(errs...)
}

// SeriesSeen reports whether selector matched any series over the window
// before now, asking Prometheus's series API for at most one series. It tells
// an errors selector that never matched anything (a typo in a label value: the
// SLI then reads a perfect 100%) from a service without errors.
func (p *Prometheus) SeriesSeen(ctx context.Context, selector string, window time.Duration) (bool, error) {
	if _, err := parseSelector(selector); err != nil {
		return false, fmt.Errorf("%w: %w", ErrBadIndicator, err)
	}
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	at := p.now()
	sets, _, _, err := p.api.Series(ctx, []string{selector}, at.Add(-window), at, v1.WithLimit(1))
	if err != nil {
		return false, fmt.Errorf("sli: series %s: %w", selector, withContextCause(ctx, err))
	}
	return len(sets) > 0, nil
}

// SeriesChecker is implemented by sources that can tell whether a selector
// ever matched a series (Prometheus does).
type SeriesChecker interface {
	SeriesSeen(ctx context.Context, selector string, window time.Duration) (bool, error)
}

var _ SeriesChecker = (*Prometheus)(nil)

// measure asks for one window; found is false when Prometheus had no data.
func (p *Prometheus) measure(ctx context.Context, ind Indicator, w time.Duration, at time.Time) (r Result, found bool, err error) {
	q := buildQuery(ind, w)
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	val, _, _, err := p.api.Query(ctx, q, at, v1.WithTimeout(serverTimeout(p.timeout)))
	if err == nil {
		r, found, err = decode(ind, val)
	} else {
		err = refused(withContextCause(ctx, err))
	}
	if err != nil {
		return Result{}, false, &QueryError{Window: w, Query: q, Err: err}
	}
	return r, found, nil
}

// serverTimeout rounds d down to what Prometheus's timeout parameter accepts:
// v1.WithTimeout formats it with Duration.String, and Prometheus rejects
// "1.5s" or "100µs". Zero sends no timeout.
func serverTimeout(d time.Duration) time.Duration {
	if d >= time.Second {
		return d.Truncate(time.Second)
	}
	return d.Truncate(time.Millisecond)
}

// withContextCause makes sure that errors.Is finds context.DeadlineExceeded
// (or Canceled) in err when the query ran out of time, on our side or on
// Prometheus's (which answers 503 with errorType "timeout").
func withContextCause(ctx context.Context, err error) error {
	if cause := ctx.Err(); cause != nil {
		if errors.Is(err, cause) {
			return err
		}
		return fmt.Errorf("%w: %w", cause, err)
	}
	if apiErr, ok := errors.AsType[*v1.Error](err); ok {
		var body struct {
			ErrorType v1.ErrorType `json:"errorType"`
		}
		if apiErr.Type == v1.ErrTimeout ||
			json.Unmarshal([]byte(apiErr.Detail), &body) == nil && body.ErrorType == v1.ErrTimeout {
			return fmt.Errorf("%w: Prometheus: %w", context.DeadlineExceeded, err)
		}
	}
	return err
}

// decode turns a query answer into a Result; found is false for no data.
func decode(ind Indicator, val model.Value) (r Result, found bool, err error) {
	var vec model.Vector
	switch v := val.(type) {
	case model.Vector:
		vec = v
	case *model.Scalar:
		vec = model.Vector{{Value: v.Value}}
	default:
		return Result{}, false, fmt.Errorf("unexpected result type %s, want vector", val.Type())
	}

	if ind.Query != "" && ind.QueryEvents == "" {
		switch len(vec) {
		case 0:
			return Result{}, false, nil
		case 1:
			ratio, ok := clampRatio(float64(vec[0].Value))
			return Result{ErrorRatio: ratio, Events: -1}, ok, nil
		}
		return Result{}, false, fmt.Errorf("got %d series, want one: aggregate the query, e.g. with sum()", len(vec))
	}

	var ratio, events *model.Sample
	for _, s := range vec {
		switch s.Metric[partLabel] {
		case "ratio":
			ratio = s
		case "events":
			events = s
		default:
			return Result{}, false, fmt.Errorf("unexpected series %s", s.Metric)
		}
	}
	if ratio == nil || events == nil {
		return Result{}, false, nil
	}
	n := float64(events.Value)
	if math.IsNaN(n) || math.IsInf(n, 0) || n < 0 {
		return Result{}, false, nil
	}
	rv, ok := clampRatio(float64(ratio.Value))
	return Result{ErrorRatio: rv, Events: n}, ok, nil
}

// clampRatio brings a measured ratio into [0, 1]; ok is false for no data.
func clampRatio(r float64) (ratio float64, ok bool) {
	switch {
	case math.IsNaN(r) || math.IsInf(r, 0) || r < -negativeTolerance:
		return 0, false
	case r < 0:
		return 0, true
	case r > 1:
		// More errors than events: the error series extrapolated further
		// than the total one near a 100% error rate.
		return 1, true
	}
	return r, true
}
