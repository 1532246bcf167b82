package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"sync"
	"time"
)

// The benchmark measures budgetgate, not Prometheus: a real Prometheus would
// need 1,000 sets of series backfilled over 30 days, and its query cost would
// share these 2 cores with the manager. So the manager talks to this fake
// instead. It answers the instant queries budgetgate sends (one per window per
// evaluation, see internal/sli.BuildQuery) from a table: the query names its
// SLO in the label slo="NAMESPACE/NAME" of its selectors, and the SLO either
// burns (burnRatio over every window) or is healthy (okRatio). It counts every
// query per SLO on the server side, and can delay answers to stand in for
// query cost.

const (
	// okRatio is the error ratio of a healthy SLO: 0.1x burn for a 99.9% target.
	// Not 0: an SLO that never errs makes budgetgate ask the series API once an
	// hour whether its errors selector matches anything.
	okRatio = 0.0001
	// burnRatio is the error ratio of a burning SLO: 50x burn for a 99.9% target,
	// over every window, so the built-in fast-burn rule (14.4x over 1h and 5m)
	// freezes at the first evaluation.
	burnRatio = 0.05
	// events in every window: far above any minEvents.
	fakeEvents = 1e6
)

var (
	sloLabel  = regexp.MustCompile(`slo="([^"]+)"`)
	rangeExpr = regexp.MustCompile(`\[([0-9]+[a-z]+)\]`)
)

// parseQuery finds the SLO and the window a budgetgate query is about.
func parseQuery(q string) (slo, window string, err error) {
	m := sloLabel.FindStringSubmatch(q)
	if m == nil {
		return "", "", fmt.Errorf(`query has no slo="..." matcher: %s`, q)
	}
	w := rangeExpr.FindStringSubmatch(q)
	if w == nil {
		return "", "", fmt.Errorf("query has no range: %s", q)
	}
	return m[1], w[1], nil
}

// fakePrometheus serves /api/v1/query and /api/v1/series.
type fakePrometheus struct {
	delay time.Duration

	mu      sync.Mutex
	burning map[string]bool
	queries map[string]int // per SLO
	total   int
	errors  int
}

func newFakePrometheus(delay time.Duration) *fakePrometheus {
	return &fakePrometheus{delay: delay, burning: map[string]bool{}, queries: map[string]int{}}
}

// setBurning makes an SLO (NAMESPACE/NAME) burn or recover.
func (f *fakePrometheus) setBurning(slo string, burning bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.burning[slo] = burning
}

// counts returns the queries answered so far: in total, per SLO, and how
// many could not be answered.
func (f *fakePrometheus) counts() (total int, perSLO map[string]int, errors int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.total, maps.Clone(f.queries), f.errors
}

type promSample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

// answer is the Prometheus API response body for one query, and its status.
func (f *fakePrometheus) answer(query string, at float64) (int, []byte) {
	slo, _, err := parseQuery(query)
	f.mu.Lock()
	if err != nil {
		f.errors++
		f.mu.Unlock()
		body, _ := json.Marshal(map[string]string{"status": "error", "errorType": "bad_data", "error": err.Error()})
		return http.StatusBadRequest, body
	}
	f.total++
	f.queries[slo]++
	ratio := okRatio
	if f.burning[slo] {
		ratio = burnRatio
	}
	f.mu.Unlock()
	value := func(v float64) [2]any { return [2]any{at, strconv.FormatFloat(v, 'g', -1, 64)} }
	body, _ := json.Marshal(map[string]any{
		"status": "success",
		"data": map[string]any{
			"resultType": "vector",
			"result": []promSample{
				{Metric: map[string]string{"budgetgate_part": "ratio"}, Value: value(ratio)},
				{Metric: map[string]string{"budgetgate_part": "events"}, Value: value(fakeEvents)},
			},
		},
	})
	return http.StatusOK, body
}

func (f *fakePrometheus) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	switch r.URL.Path {
	case "/api/v1/query":
		if f.delay > 0 {
			time.Sleep(f.delay)
		}
		at := float64(time.Now().UnixMilli()) / 1000
		if t, err := strconv.ParseFloat(r.FormValue("time"), 64); err == nil {
			at = t
		}
		code, body := f.answer(r.FormValue("query"), at)
		w.WriteHeader(code)
		_, _ = w.Write(body)
	case "/api/v1/series":
		// Every selector has series (only asked for SLOs that measure no errors).
		_, _ = w.Write([]byte(`{"status":"success","data":[{"__name__":"bench_requests_total"}]}`))
	default:
		http.NotFound(w, r)
	}
}

// serve listens on a free loopback port; stop ends it.
func (f *fakePrometheus) serve() (address string, stop func(), err error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: f, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	return "http://" + l.Addr().String(), func() { _ = srv.Close() }, nil
}
