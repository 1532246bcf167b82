package main

import (
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func msList(v ...float64) []time.Duration {
	out := make([]time.Duration, len(v))
	for i, x := range v {
		out[i] = time.Duration(x * float64(time.Millisecond))
	}
	return out
}

func TestPercentile(t *testing.T) {
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(i+1) * time.Millisecond
	}
	for _, tc := range []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one sample", msList(7), 99, 7 * time.Millisecond},
		{"p50 of 1..100", hundred, 50, 50 * time.Millisecond},
		{"p90 of 1..100", hundred, 90, 90 * time.Millisecond},
		{"p99 of 1..100", hundred, 99, 99 * time.Millisecond},
		{"p100 is the max", hundred, 100, 100 * time.Millisecond},
		{"tiny p is the min", hundred, 0.1, time.Millisecond},
		// Nearest rank: ⌈0.99 × 10⌉ = 10, the largest of ten.
		{"p99 of ten is the max", msList(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 99, 10 * time.Millisecond},
		// ⌈0.5 × 4⌉ = 2: no interpolation between 2 and 3.
		{"p50 of four", msList(1, 2, 3, 4), 50, 2 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := percentile(tc.sorted, tc.p); got != tc.want {
				t.Errorf("percentile(%v) = %v, want %v", tc.p, got, tc.want)
			}
		})
	}
}

func TestSummarize(t *testing.T) {
	in := msList(9, 1, 5, 3, 7, 2, 8, 4, 6, 10)
	orig := slices.Clone(in)
	got := summarize(in)
	want := Summary{Count: 10, P50: 5, P90: 9, P99: 10, Max: 10, Mean: 5.5}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("summarize (-want +got):\n%s", diff)
	}
	if !slices.Equal(in, orig) {
		t.Errorf("summarize reordered its input: %v", in)
	}
	if got := summarize(nil); got != (Summary{}) {
		t.Errorf("summarize(nil) = %+v, want zero", got)
	}
}

func TestRatio(t *testing.T) {
	got := ratio(Summary{P50: 9, P90: 12, P99: 20, Max: 40}, Summary{P50: 6, P90: 8, P99: 10, Max: 0})
	want := Ratio{P50: 1.5, P90: 1.5, P99: 2, Max: 0, AddedP50Ms: 3}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ratio (-want +got):\n%s", diff)
	}
}

func TestSpread(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want Spread
	}{
		{nil, Spread{}},
		{[]float64{1.4}, Spread{Min: 1.4, Median: 1.4, Max: 1.4, N: 1}},
		{[]float64{1.6, 1.2, 1.4}, Spread{Min: 1.2, Median: 1.4, Max: 1.6, N: 3}},
		{[]float64{2, 1, 4, 3}, Spread{Min: 1, Median: 2.5, Max: 4, N: 4}},
	} {
		if got := spread(tc.in); got != tc.want {
			t.Errorf("spread(%v) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
}

func TestCDF(t *testing.T) {
	// Few samples: every one, in order, with its cumulative fraction.
	got := cdf(msList(3, 1, 2), 10)
	want := [][2]float64{{1, 1.0 / 3}, {2, 2.0 / 3}, {3, 1}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("cdf of three (-want +got):\n%s", diff)
	}

	// Many samples: thinned, but the minimum, the top 1% and the maximum are
	// there, and both coordinates only grow.
	many := make([]time.Duration, 10000)
	for i := range many {
		many[i] = time.Duration(len(many)-i) * time.Microsecond
	}
	pts := cdf(many, 100)
	if len(pts) > 102 || len(pts) < 50 {
		t.Fatalf("cdf of 10000 into 100 points gave %d", len(pts))
	}
	if pts[0] != [2]float64{0.001, 0.0001} || pts[len(pts)-1] != [2]float64{10, 1} {
		t.Errorf("cdf ends = %v … %v, want the minimum (0.001 ms, 0.0001) and the maximum (10 ms, 1)", pts[0], pts[len(pts)-1])
	}
	tail := 0
	for i, p := range pts {
		if i > 0 && (p[0] < pts[i-1][0] || p[1] <= pts[i-1][1]) {
			t.Errorf("cdf not increasing at %d: %v after %v", i, p, pts[i-1])
		}
		if p[1] > 0.99 {
			tail++
		}
	}
	if tail < 40 {
		t.Errorf("%d of %d points in the top 1%%, want about half", tail, len(pts))
	}
	if cdf(nil, 10) != nil {
		t.Error("cdf(nil) is not nil")
	}
}
