package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/budgetgate/budgetgate/test/utils"
)

// series is one sample of a scraped /metrics page: summaries and histograms
// are flattened into their _sum, _count and _bucket series, as the text
// format writes them.
type series struct {
	name   string
	labels map[string]string
	value  float64
}

type metrics []series

// parseMetrics reads the Prometheus text format.
func parseMetrics(r io.Reader) (metrics, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		return nil, err
	}
	var out metrics
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			with := func(k, v string) map[string]string {
				c := make(map[string]string, len(labels)+1)
				for a, b := range labels {
					c[a] = b
				}
				c[k] = v
				return c
			}
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				out = append(out, series{name, labels, m.GetCounter().GetValue()})
			case dto.MetricType_GAUGE:
				out = append(out, series{name, labels, m.GetGauge().GetValue()})
			case dto.MetricType_UNTYPED:
				out = append(out, series{name, labels, m.GetUntyped().GetValue()})
			case dto.MetricType_SUMMARY:
				s := m.GetSummary()
				out = append(out, series{name + "_sum", labels, s.GetSampleSum()}, series{name + "_count", labels, float64(s.GetSampleCount())})
			case dto.MetricType_HISTOGRAM:
				h := m.GetHistogram()
				out = append(out, series{name + "_sum", labels, h.GetSampleSum()}, series{name + "_count", labels, float64(h.GetSampleCount())})
				inf := false
				for _, b := range h.GetBucket() {
					inf = inf || math.IsInf(b.GetUpperBound(), 1)
					out = append(out, series{name + "_bucket", with("le", strconv.FormatFloat(b.GetUpperBound(), 'g', -1, 64)),
						float64(b.GetCumulativeCount())})
				}
				if !inf { // the text format's +Inf bucket is the count
					out = append(out, series{name + "_bucket", with("le", "+Inf"), float64(h.GetSampleCount())})
				}
			}
		}
	}
	return out, nil
}

// sum adds the series of a name whose labels include every k=v of match
// (pairs: "handler", "/api/v1/query").
func (ms metrics) sum(name string, match ...string) float64 {
	total := 0.0
next:
	for _, s := range ms {
		if s.name != name {
			continue
		}
		for i := 0; i+1 < len(match); i += 2 {
			if s.labels[match[i]] != match[i+1] {
				continue next
			}
		}
		total += s.value
	}
	return total
}

// count is how many series of a name there are.
func (ms metrics) count(name string) int {
	n := 0
	for _, s := range ms {
		if s.name == name {
			n++
		}
	}
	return n
}

// buckets adds a histogram's cumulative bucket counts by upper bound over
// the series whose labels include match.
func (ms metrics) buckets(name string, match ...string) map[float64]float64 {
	out := map[float64]float64{}
next:
	for _, s := range ms {
		if s.name != name+"_bucket" {
			continue
		}
		for i := 0; i+1 < len(match); i += 2 {
			if s.labels[match[i]] != match[i+1] {
				continue next
			}
		}
		le, err := strconv.ParseFloat(s.labels["le"], 64)
		if err != nil {
			continue
		}
		out[le] += s.value
	}
	return out
}

// bucketQuantile is histogram_quantile over cumulative counts by upper
// bound (the difference of two scrapes): linear within the bucket, the
// highest finite bound when the quantile falls into +Inf.
func bucketQuantile(q float64, cum map[float64]float64) float64 {
	bounds := make([]float64, 0, len(cum))
	for b := range cum {
		bounds = append(bounds, b)
	}
	slices.Sort(bounds)
	if len(bounds) == 0 {
		return 0
	}
	total := cum[bounds[len(bounds)-1]]
	if total <= 0 {
		return 0
	}
	rank := q * total
	prevBound, prevCount := 0.0, 0.0
	for _, b := range bounds {
		c := cum[b]
		if c >= rank {
			if math.IsInf(b, 1) {
				return prevBound
			}
			if c == prevCount {
				return b
			}
			return prevBound + (b-prevBound)*(rank-prevCount)/(c-prevCount)
		}
		prevBound, prevCount = b, c
	}
	return prevBound
}

func diffBuckets(after, before map[float64]float64) map[float64]float64 {
	out := map[float64]float64{}
	for b, v := range after {
		out[b] = v - before[b]
	}
	return out
}

// scrape reads a /metrics page.
func scrape(ctx context.Context, url string) (metrics, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return parseMetrics(resp.Body)
}

// procCPUSeconds is a process's user+system CPU time from /proc/PID/stat.
func procCPUSeconds(stat string) (float64, error) {
	t, err := utils.ProcTicks(stat)
	return float64(t) / utils.ClockTicks, err
}

func readProcCPU(pid int) (float64, error) {
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, err
	}
	return procCPUSeconds(string(data))
}

// machineBusySeconds is the busy CPU time of the whole machine, all cores,
// from the first line of /proc/stat (idle and iowait are not busy).
func machineBusySeconds(stat string) (float64, error) {
	busy, _, err := utils.MachineTicks(stat)
	return float64(busy) / utils.ClockTicks, err
}

func readMachineBusy() (float64, error) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	return machineBusySeconds(string(data))
}

func readLoadAverage() (float64, error) {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0, err
	}
	f := strings.Fields(string(data))
	if len(f) < 1 {
		return 0, fmt.Errorf("unexpected /proc/loadavg %q", data)
	}
	return strconv.ParseFloat(f[0], 64)
}

// childrenNamed finds this process's children by command name (envtest's
// kube-apiserver and etcd, whose pids envtest does not export).
func childrenNamed(names ...string) map[string]int {
	out := map[string]int{}
	self := os.Getpid()
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		stat := string(data)
		open, end := strings.IndexByte(stat, '('), strings.LastIndexByte(stat, ')')
		if open < 0 || end < open {
			continue
		}
		comm := stat[open+1 : end]
		rest := strings.Fields(stat[end+1:])
		if len(rest) < 2 {
			continue
		}
		if ppid, err := strconv.Atoi(rest[1]); err != nil || ppid != self {
			continue
		}
		if slices.Contains(names, comm) {
			out[comm] = pid
		}
	}
	return out
}
