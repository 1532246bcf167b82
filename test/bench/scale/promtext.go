package main

import (
	"fmt"
	"io"
	"math"
	"slices"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// metrics is one scrape of a Prometheus text endpoint (the manager's /metrics,
// the kube-apiserver's /metrics).
type metrics map[string]*dto.MetricFamily

// parseMetrics reads the Prometheus text exposition format.
func parseMetrics(r io.Reader) (metrics, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("parsing metrics: %w", err)
	}
	return metrics(fams), nil
}

// matches reports whether a series carries every label in want.
func matches(m *dto.Metric, want map[string]string) bool {
	for k, v := range want {
		found := false
		for _, lp := range m.GetLabel() {
			if lp.GetName() == k {
				found = lp.GetValue() == v
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// sum adds up the values of the counters, gauges and untyped series of name
// that carry the labels in want; found is false when no series matched.
func (ms metrics) sum(name string, want map[string]string) (total float64, found bool) {
	fam, ok := ms[name]
	if !ok {
		return 0, false
	}
	for _, m := range fam.GetMetric() {
		if !matches(m, want) {
			continue
		}
		switch {
		case m.Counter != nil:
			total += m.GetCounter().GetValue()
		case m.Gauge != nil:
			total += m.GetGauge().GetValue()
		case m.Untyped != nil:
			total += m.GetUntyped().GetValue()
		default:
			continue
		}
		found = true
	}
	return total, found
}

// value is sum, 0 when absent.
func (ms metrics) value(name string, want map[string]string) float64 {
	v, _ := ms.sum(name, want)
	return v
}

// byLabel sums the series of name by the value of one label, e.g. the watches
// per resource.
func (ms metrics) byLabel(name, label string, want map[string]string) map[string]float64 {
	out := map[string]float64{}
	fam, ok := ms[name]
	if !ok {
		return out
	}
	for _, m := range fam.GetMetric() {
		if !matches(m, want) {
			continue
		}
		key := ""
		for _, lp := range m.GetLabel() {
			if lp.GetName() == label {
				key = lp.GetValue()
			}
		}
		switch {
		case m.Gauge != nil:
			out[key] += m.GetGauge().GetValue()
		case m.Counter != nil:
			out[key] += m.GetCounter().GetValue()
		case m.Untyped != nil:
			out[key] += m.GetUntyped().GetValue()
		}
	}
	return out
}

// histogram is a cumulative histogram: counts[i] observations ≤ bounds[i],
// the last bound +Inf.
type histogram struct {
	bounds []float64
	counts []float64
	count  float64
	sum    float64
}

// histogram merges the histograms of name that carry the labels in want.
func (ms metrics) histogram(name string, want map[string]string) histogram {
	var h histogram
	fam, ok := ms[name]
	if !ok {
		return h
	}
	acc := map[float64]float64{}
	for _, m := range fam.GetMetric() {
		if m.Histogram == nil || !matches(m, want) {
			continue
		}
		hm := m.GetHistogram()
		h.count += float64(hm.GetSampleCount())
		h.sum += hm.GetSampleSum()
		for _, b := range hm.GetBucket() {
			acc[b.GetUpperBound()] += float64(b.GetCumulativeCount())
		}
	}
	if h.count == 0 {
		return h
	}
	acc[math.Inf(1)] = h.count // whether or not the +Inf bucket was parsed, it is the count
	for b := range acc {
		h.bounds = append(h.bounds, b)
	}
	slices.Sort(h.bounds)
	for _, b := range h.bounds {
		h.counts = append(h.counts, acc[b])
	}
	return h
}

// sub is the histogram of the observations made between before and h (both
// scrapes of the same series).
func (h histogram) sub(before histogram) histogram {
	out := histogram{count: h.count - before.count, sum: h.sum - before.sum}
	prev := map[float64]float64{}
	for i, b := range before.bounds {
		prev[b] = before.counts[i]
	}
	for i, b := range h.bounds {
		out.bounds = append(out.bounds, b)
		out.counts = append(out.counts, h.counts[i]-prev[b])
	}
	return out
}

// quantile estimates the q-quantile like PromQL's histogram_quantile: linear
// interpolation inside the bucket that holds it, the lower bound of the first
// bucket taken as 0. A quantile in the +Inf bucket returns the highest finite
// bound. NaN without observations.
func (h histogram) quantile(q float64) float64 {
	if h.count <= 0 || len(h.bounds) == 0 {
		return math.NaN()
	}
	rank := q * h.count
	lower, below := 0.0, 0.0
	for i, b := range h.bounds {
		if h.counts[i] >= rank {
			if math.IsInf(b, 1) {
				return lower
			}
			inBucket := h.counts[i] - below
			if inBucket <= 0 {
				return b
			}
			return lower + (b-lower)*(rank-below)/inBucket
		}
		lower, below = b, h.counts[i]
	}
	return lower
}

// mean of the observations, NaN without any.
func (h histogram) mean() float64 {
	if h.count <= 0 {
		return math.NaN()
	}
	return h.sum / h.count
}

// bucketOf returns the bounds of the bucket that holds the q-quantile: with
// coarse buckets (the API server's webhook histogram has 5ms, 25ms, 100ms, ...)
// the quantile is only known to lie between them. (0, 0) without observations.
func (h histogram) bucketOf(q float64) (lower, upper float64) {
	if h.count <= 0 {
		return 0, 0
	}
	rank := q * h.count
	for i, b := range h.bounds {
		if h.counts[i] >= rank {
			return lower, b
		}
		lower = b
	}
	return lower, math.Inf(1)
}
