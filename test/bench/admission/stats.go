package main

import (
	"math"
	"slices"
	"time"
)

// percentile is the nearest-rank p-th percentile (0 < p ≤ 100) of sorted, a
// sorted slice: the smallest sample such that at least p% of the samples are
// at or below it. 0 for no samples.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

// Summary is what the report says about one set of latencies, in
// milliseconds.
type Summary struct {
	Count int     `json:"count"`
	P50   float64 `json:"p50Ms"`
	P90   float64 `json:"p90Ms"`
	P99   float64 `json:"p99Ms"`
	Max   float64 `json:"maxMs"`
	Mean  float64 `json:"meanMs"`
}

func summarize(samples []time.Duration) Summary {
	if len(samples) == 0 {
		return Summary{}
	}
	s := slices.Clone(samples)
	slices.Sort(s)
	var sum time.Duration
	for _, d := range s {
		sum += d
	}
	return Summary{
		Count: len(s),
		P50:   ms(percentile(s, 50)),
		P90:   ms(percentile(s, 90)),
		P99:   ms(percentile(s, 99)),
		Max:   ms(s[len(s)-1]),
		Mean:  ms(sum / time.Duration(len(s))),
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// Ratio is Summary a ÷ Summary b, statistic by statistic (0 where b's is 0).
type Ratio struct {
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
	// AddedP50Ms is a's p50 minus b's, in milliseconds.
	AddedP50Ms float64 `json:"addedP50Ms"`
}

func ratio(a, b Summary) Ratio {
	div := func(x, y float64) float64 {
		if y == 0 {
			return 0
		}
		return x / y
	}
	return Ratio{P50: div(a.P50, b.P50), P90: div(a.P90, b.P90), P99: div(a.P99, b.P99), Max: div(a.Max, b.Max),
		AddedP50Ms: a.P50 - b.P50}
}

// Spread is the smallest, median and largest of a set of values (e.g. the
// p50 ratios of each adjacent webhook/no-webhook pair of phases).
type Spread struct {
	Min    float64 `json:"min"`
	Median float64 `json:"median"`
	Max    float64 `json:"max"`
	N      int     `json:"n"`
}

func spread(v []float64) Spread {
	if len(v) == 0 {
		return Spread{}
	}
	s := slices.Clone(v)
	slices.Sort(s)
	med := s[len(s)/2]
	if len(s)%2 == 0 {
		med = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return Spread{Min: s[0], Median: med, Max: s[len(s)-1], N: len(s)}
}

// cdf returns up to about points (latency ms, fraction at or below) pairs of
// the empirical distribution of samples, for the chart: every sample when
// there are few, else evenly spaced ranks plus the top 1%, where the
// interesting part of a latency distribution is, and always the maximum.
func cdf(samples []time.Duration, points int) [][2]float64 {
	if len(samples) == 0 || points < 2 {
		return nil
	}
	s := slices.Clone(samples)
	slices.Sort(s)
	n := len(s)
	var idx []int
	if n <= points {
		for i := range n {
			idx = append(idx, i)
		}
	} else {
		body, tail := points/2, points-points/2
		for k := range body {
			idx = append(idx, k*(n-1)/body)
		}
		tailStart := n - 1 - n/100
		for k := range tail + 1 {
			idx = append(idx, tailStart+k*(n-1-tailStart)/tail)
		}
		slices.Sort(idx)
		idx = slices.Compact(idx)
	}
	out := make([][2]float64, 0, len(idx))
	for _, i := range idx {
		out = append(out, [2]float64{ms(s[i]), float64(i+1) / float64(n)})
	}
	return out
}
