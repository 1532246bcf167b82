package main

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// The synthetic services' counters. History and live scrapes carry the same
// labels (the scrape keeps them: honor_labels), so the live samples continue
// the backfilled series without a reset or a second series.
const (
	metricName = "http_requests_total"
	trafficJob = "synthetic"
)

func serviceName(i int) string   { return fmt.Sprintf("svc-%04d", i) }
func namespaceName(i int) string { return fmt.Sprintf("team-%03d", i/slosPerNamespace) }

// slosPerNamespace: service i's SLO lives in namespace team-(i/10). The
// backfill rule derives the namespace from the service name the same way
// (serviceNamespaceRegex).
const slosPerNamespace = 10

// serviceNamespaceRegex and its replacements turn a service label
// (svc-0042) into its SLO's namespace (team-004) and sloth_id
// (team-004-svc-0042) inside PromQL's label_replace.
const (
	serviceNamespaceRegex = `svc-(\d{3})(\d)`
	namespaceReplacement  = "team-${1}"
	slothIDReplacement    = "team-${1}-svc-${1}${2}"
)

// shape is the diurnal traffic at t as a share of the peak: 1% at 04:00
// UTC, 100% at 16:00 UTC (the curve of TestRecordedEqualsRaw).
func shape(t time.Time) float64 {
	h := float64(t.Hour()) + float64(t.Minute())/60
	s := 0.5 - 0.5*math.Cos(2*math.Pi*(h-4)/24)
	return 0.01 + 0.99*s*s
}

// peak is service i's requests per minute at peak: 100 to 10,000.
func peak(i int) float64 { return 100 * float64(1+(i*37)%100) }

// errorRatio is service i's constant error ratio: 0.02% to 0.15%, so that
// about a third of the 99.9% SLOs spend more than their budget (and
// freeze), the rest not.
func errorRatio(i int) float64 { return 0.0002 + 0.0001*float64((i*7)%14) }

// traffic gives every service's counters at any time after origin, where
// they are 0: the peak times the diurnal shape integrated minute by minute.
type traffic struct {
	services int
	origin   time.Time

	mu sync.Mutex
	// cum[k] is the integral of shape over the first k minutes after origin.
	cum []float64
}

func newTraffic(services int, origin time.Time) *traffic {
	return &traffic{services: services, origin: origin.Truncate(time.Minute), cum: []float64{0}}
}

// units is the integral of shape from origin to t, in minutes at peak.
func (tr *traffic) units(t time.Time) float64 {
	d := t.Sub(tr.origin)
	if d <= 0 {
		return 0
	}
	k := int(d / time.Minute)
	frac := float64(d%time.Minute) / float64(time.Minute)
	tr.mu.Lock()
	defer tr.mu.Unlock()
	for len(tr.cum) <= k {
		n := len(tr.cum)
		tr.cum = append(tr.cum, tr.cum[n-1]+shape(tr.origin.Add(time.Duration(n-1)*time.Minute)))
	}
	return tr.cum[k] + frac*shape(tr.origin.Add(time.Duration(k)*time.Minute))
}

// counters are service i's successful and failed requests at t.
func (tr *traffic) counters(i int, t time.Time) (ok, failed float64) {
	total := peak(i) * tr.units(t)
	failed = total * errorRatio(i)
	return total - failed, failed
}

func seriesLabels(i int, code string) string {
	return `{job="` + trafficJob + `",instance="` + trafficJob + `",service="` + serviceName(i) + `",code="` + code + `"}`
}

// writeHistory writes every service's two counters from origin to end, one
// sample every step, in the OpenMetrics format promtool backfills from
// (prometheustest.WriteOpenMetrics's, streamed: the samples do not fit in
// memory comfortably). It returns the number of samples.
func (tr *traffic) writeHistory(w io.Writer, end time.Time, step time.Duration) (int, error) {
	bw := bufio.NewWriterSize(w, 1<<20)
	if _, err := bw.WriteString("# TYPE http_requests counter\n"); err != nil {
		return 0, err
	}
	var times []time.Time
	for t := tr.origin; !t.After(end); t = t.Add(step) {
		times = append(times, t)
	}
	units := make([]float64, len(times))
	for k, t := range times {
		units[k] = tr.units(t)
	}
	n := 0
	var line []byte
	for i := range tr.services {
		for _, code := range []string{"200", "500"} {
			prefix := metricName + seriesLabels(i, code) + " "
			share := 1 - errorRatio(i)
			if code == "500" {
				share = errorRatio(i)
			}
			for k, t := range times {
				line = append(line[:0], prefix...)
				line = strconv.AppendFloat(line, peak(i)*units[k]*share, 'f', -1, 64)
				line = append(line, ' ')
				line = strconv.AppendInt(line, t.Unix(), 10)
				line = append(line, '\n')
				if _, err := bw.Write(line); err != nil {
					return n, err
				}
				n++
			}
		}
	}
	if _, err := bw.WriteString("# EOF\n"); err != nil {
		return n, err
	}
	return n, bw.Flush()
}

// ServeHTTP is the live /metrics of the services, scraped by Prometheus.
func (tr *traffic) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	now := time.Now()
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	bw := bufio.NewWriterSize(w, 64<<10)
	_, _ = bw.WriteString("# TYPE " + metricName + " counter\n")
	var line []byte
	for i := range tr.services {
		ok, failed := tr.counters(i, now)
		for _, s := range []struct {
			code string
			v    float64
		}{{"200", ok}, {"500", failed}} {
			line = append(line[:0], metricName+seriesLabels(i, s.code)+" "...)
			line = strconv.AppendFloat(line, s.v, 'f', -1, 64)
			line = append(line, '\n')
			_, _ = bw.Write(line)
		}
	}
	_ = bw.Flush()
}
