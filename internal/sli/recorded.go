package sli

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
)

// Recorded is the one instant query that reads an SLO's recorded series
// (the rules of internal/rules) for every window at once, and how to tell
// its series apart.
type Recorded struct {
	// Expr selects every recorded ratio and event count of the SLO.
	Expr string
	// Classify says which window a series is for, and whether it is the
	// window's event count (else its error ratio); ok is false for a series
	// the query should not have returned.
	Classify func(m model.Metric) (window time.Duration, events bool, ok bool)
	// WithEvents says whether the rules record event counts (every
	// indicator but a query without queryEvents); without them a window's
	// Result has Events -1, as Measure gives.
	WithEvents bool
}

// ErrAmbiguousRecorded is the error of MeasureRecorded when more than one
// series answers for a window: another rule writes series under the SLO's
// labels, and none of them can be trusted.
var ErrAmbiguousRecorded = errors.New("more than one recorded series for a window")

// RecordedSource is implemented by sources that can read recorded series
// (Prometheus does).
type RecordedSource interface {
	MeasureRecorded(ctx context.Context, q Recorded) (map[time.Duration]Result, error)
}

var _ RecordedSource = (*Prometheus)(nil)

// MeasureRecorded sends q's one instant query at the source's evaluation
// instant and returns a Result for every window whose ratio (and count,
// where the rules record counts) came back, cleaned as Measure cleans raw
// answers: NaN, infinite and negative counts are no data, ratios are
// clamped into [0, 1]. Windows without data are absent; the caller measures
// them the raw way.
func (p *Prometheus) MeasureRecorded(ctx context.Context, q Recorded) (map[time.Duration]Result, error) {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	val, _, _, err := p.api.Query(ctx, q.Expr, p.now(), v1.WithTimeout(serverTimeout(p.timeout)))
	if err != nil {
		return nil, fmt.Errorf("sli: recorded series: query %s: %w", q.Expr, refused(withContextCause(ctx, err)))
	}
	vec, ok := val.(model.Vector)
	if !ok {
		return nil, fmt.Errorf("sli: recorded series: unexpected result type %s, want vector", val.Type())
	}
	return DecodeRecorded(q, vec)
}

// DecodeRecorded turns the answer to q.Expr into Results by window.
func DecodeRecorded(q Recorded, vec model.Vector) (map[time.Duration]Result, error) {
	type parts struct {
		ratio, events float64
		hasRatio      bool
		hasEvents     bool
	}
	byWindow := map[time.Duration]*parts{}
	for _, s := range vec {
		w, isEvents, ok := q.Classify(s.Metric)
		if !ok {
			return nil, fmt.Errorf("sli: recorded series: unexpected series %s", s.Metric)
		}
		p := byWindow[w]
		if p == nil {
			p = &parts{}
			byWindow[w] = p
		}
		if isEvents {
			if p.hasEvents {
				return nil, fmt.Errorf("sli: %w %s: %s", ErrAmbiguousRecorded, model.Duration(w), s.Metric)
			}
			p.events, p.hasEvents = float64(s.Value), true
		} else {
			if p.hasRatio {
				return nil, fmt.Errorf("sli: %w %s: %s", ErrAmbiguousRecorded, model.Duration(w), s.Metric)
			}
			p.ratio, p.hasRatio = float64(s.Value), true
		}
	}
	out := map[time.Duration]Result{}
	for w, p := range byWindow {
		if !p.hasRatio {
			continue
		}
		events := -1.0
		if q.WithEvents {
			if !p.hasEvents || math.IsNaN(p.events) || math.IsInf(p.events, 0) || p.events < 0 {
				continue
			}
			events = p.events
		}
		if ratio, ok := clampRatio(p.ratio); ok {
			out[w] = Result{ErrorRatio: ratio, Events: events}
		}
	}
	return out, nil
}

// RetentionReporter is implemented by sources that can say how long their
// Prometheus keeps samples.
type RetentionReporter interface {
	Retention(ctx context.Context) (time.Duration, error)
}

var _ RetentionReporter = (*Prometheus)(nil)

// Retention is the Prometheus' --storage.tsdb.retention.time, from its flags
// API; 0 when it does not say (retention by size only, or a Thanos, Mimir or
// VictoriaMetrics that has no such flag).
func (p *Prometheus) Retention(ctx context.Context) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	flags, err := p.api.Flags(ctx)
	if err != nil {
		return 0, fmt.Errorf("sli: flags: %w", refused(withContextCause(ctx, err)))
	}
	for _, name := range []string{"storage.tsdb.retention.time", "storage.tsdb.retention"} {
		if v := flags[name]; v != "" && v != "0s" && v != "0" {
			d, err := model.ParseDuration(v)
			if err != nil {
				return 0, fmt.Errorf("sli: flag %s=%q: %w", name, v, err)
			}
			return time.Duration(d), nil
		}
	}
	return 0, nil
}
