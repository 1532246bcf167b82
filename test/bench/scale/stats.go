package main

import (
	"math"
	"slices"
	"time"
)

// percentile is the nearest-rank p-th percentile (0 < p ≤ 100) of samples:
// the smallest sample that at least p% of the samples are at or below. 0 for
// no samples.
func percentile(samples []time.Duration, p float64) time.Duration {
	if len(samples) == 0 {
		return 0
	}
	s := slices.Clone(samples)
	slices.Sort(s)
	rank := int(math.Ceil(p / 100 * float64(len(s))))
	rank = min(max(rank, 1), len(s))
	return s[rank-1]
}

// latencySummary is what the report says about a set of latencies.
type latencySummary struct {
	Count int     `json:"count"`
	P50   float64 `json:"p50Seconds"`
	P90   float64 `json:"p90Seconds"`
	P99   float64 `json:"p99Seconds"`
	Max   float64 `json:"maxSeconds"`
}

func summarize(samples []time.Duration) latencySummary {
	return latencySummary{
		Count: len(samples),
		P50:   percentile(samples, 50).Seconds(),
		P90:   percentile(samples, 90).Seconds(),
		P99:   percentile(samples, 99).Seconds(),
		Max:   percentile(samples, 100).Seconds(),
	}
}

// perMinute turns a count over a window into a rate per minute.
func perMinute(count float64, window time.Duration) float64 {
	if window <= 0 {
		return 0
	}
	return count / window.Minutes()
}

// queriesPerSLOPerInterval is how many Prometheus queries one SLO sent per
// evaluation interval on average: queries over a window, shared by slos SLOs,
// scaled from the window to one interval.
func queriesPerSLOPerInterval(queries float64, slos int, window, interval time.Duration) float64 {
	if slos <= 0 || window <= 0 {
		return 0
	}
	return queries / float64(slos) / (window.Seconds() / interval.Seconds())
}

// gaugeStats is the mean and the maximum of gauge samples.
type gaugeStats struct {
	Samples int     `json:"samples"`
	Mean    float64 `json:"mean"`
	Max     float64 `json:"max"`
}

func gaugeSummary(samples []float64) gaugeStats {
	g := gaugeStats{Samples: len(samples)}
	if len(samples) == 0 {
		return g
	}
	total := 0.0
	for _, v := range samples {
		total += v
		g.Max = max(g.Max, v)
	}
	g.Mean = total / float64(len(samples))
	return g
}

// finite replaces NaN and ±Inf (no observations) by -1, which JSON can hold.
func finite(v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return -1
	}
	return v
}

// round3 keeps three decimals, for a readable report.
func round3(v float64) float64 { return math.Round(v*1000) / 1000 }
