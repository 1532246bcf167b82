package main

import (
	"fmt"
	"math"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// percentileX places quantile q on the chart's x axis: -log10(1-q), so that
// 50%, 90%, 99% and 99.9% are evenly spaced, as on a latency-by-percentile
// plot (HdrHistogram's), where the tail is as wide as the body.
func percentileX(q float64) float64 { return -math.Log10(1 - q) }

// percentileTicks labels the x axis in percentiles.
type percentileTicks struct{}

func (percentileTicks) Ticks(lo, hi float64) []plot.Tick {
	var ts []plot.Tick
	for _, t := range []struct {
		q     float64
		label string
	}{{0, "0%"}, {0.5, "50%"}, {0.9, "90%"}, {0.99, "99%"}, {0.999, "99.9%"}, {0.9999, "99.99%"}} {
		if x := percentileX(t.q); x >= lo-1e-9 && x <= hi+1e-9 {
			ts = append(ts, plot.Tick{Value: x, Label: t.label})
		}
	}
	return ts
}

// percentilePoints turns a latency sample into chart points: x from the
// quantile (the rank over n+1, so the maximum stays finite), y in ms.
func percentilePoints(samples []time.Duration, points int) plotter.XYs {
	n := len(samples)
	pts := cdf(samples, points)
	out := make(plotter.XYs, 0, len(pts))
	for _, p := range pts {
		rank := math.Round(p[1] * float64(n))
		out = append(out, plotter.XY{X: percentileX(rank / float64(n+1)), Y: p[0]})
	}
	return out
}

// chart draws the pooled latency distribution of every group, latency by
// percentile, one line per phase group, into each of paths (.svg, .png).
func (r *report) chart(paths ...string) error {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("Deployment template updates through kube-apiserver, %g/s, %d workers (%d CPUs)",
		r.Options.Rate, r.Options.Workers, r.Machine.CPUs)
	p.X.Label.Text = "percentile"
	p.Y.Label.Text = "latency (ms)"
	p.X.Tick.Marker = percentileTicks{}
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Legend.Top = true
	p.Legend.Left = true
	p.Add(plotter.NewGrid())
	var lines []any
	for _, g := range r.Groups {
		pts := percentilePoints(g.latencies, 400)
		if len(pts) == 0 {
			continue
		}
		lines = append(lines, fmt.Sprintf("%s (p50 %.1f, p99 %.1f ms)", g.Group, g.Latency.P50, g.Latency.P99), pts)
	}
	if err := plotutil.AddLines(p, lines...); err != nil {
		return err
	}
	for _, path := range paths {
		if err := p.Save(9*vg.Inch, 5.5*vg.Inch, path); err != nil {
			return err
		}
	}
	return nil
}
