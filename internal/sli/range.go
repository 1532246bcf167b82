package sli

import (
	"context"
	"fmt"
	"time"

	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
)

// maxRangePoints is the most instants one range query asks for: Prometheus
// refuses more than 11,000 points per series.
const maxRangePoints = 10_000

// Series is a window's measurements by instant.
type Series map[time.Time]Result

// MeasureRange measures every window at every instant of [start, end] at
// step, one range query per window with the very query Measure sends, and
// decodes each instant as Measure decodes its answer: the history the
// controller would have measured had it evaluated at those instants
// (kubectl budgetgate simulate replays it). Instants without data are absent.
// A range of more than maxRangePoints instants is queried in pieces. Each
// query has the source's timeout times the number of its steps over 1,000,
// at least one timeout.
func (p *Prometheus) MeasureRange(ctx context.Context, ind Indicator, windows []time.Duration, start, end time.Time, step time.Duration) (map[time.Duration]Series, error) {
	if err := ValidateIndicator(ind); err != nil {
		return nil, err
	}
	if step <= 0 || !end.After(start) {
		return nil, fmt.Errorf("sli: range [%s, %s] at step %s is empty", start.Format(time.RFC3339), end.Format(time.RFC3339), step)
	}
	out := map[time.Duration]Series{}
	for _, w := range windows {
		if err := checkWindow(w); err != nil {
			return nil, err
		}
		q := buildQuery(ind, w)
		byTime := map[model.Time]model.Vector{}
		// Prometheus refuses a range of more than 11,000 points per series:
		// longer ranges go in pieces on the same grid, start + k·step.
		for from := start; !from.After(end); {
			to := from.Add(time.Duration(maxRangePoints-1) * step)
			if to.After(end) {
				to = end
			}
			timeout := p.timeout * time.Duration(max(1, int64(to.Sub(from)/step)/1000))
			qctx, cancel := context.WithTimeout(ctx, timeout)
			val, _, _, err := p.api.QueryRange(qctx, q, v1.Range{Start: from, End: to, Step: step}, v1.WithTimeout(serverTimeout(timeout)))
			cancel()
			if err != nil {
				return nil, &QueryError{Window: w, Query: q, Err: refused(withContextCause(qctx, err))}
			}
			m, ok := val.(model.Matrix)
			if !ok {
				return nil, &QueryError{Window: w, Query: q, Err: fmt.Errorf("unexpected result type %s, want matrix", val.Type())}
			}
			for _, ss := range m {
				for _, s := range ss.Values {
					byTime[s.Timestamp] = append(byTime[s.Timestamp], &model.Sample{Metric: ss.Metric, Value: s.Value, Timestamp: s.Timestamp})
				}
			}
			from = to.Add(step)
		}
		series := Series{}
		for ts, vec := range byTime {
			r, found, err := decode(ind, vec)
			if err != nil {
				return nil, &QueryError{Window: w, Query: q, Err: fmt.Errorf("at %s: %w", ts.Time().UTC().Format(time.RFC3339), err)}
			}
			if found {
				series[ts.Time()] = r
			}
		}
		out[w] = series
	}
	return out, nil
}
