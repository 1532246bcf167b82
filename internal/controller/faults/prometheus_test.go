package faults_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/common/model"
)

// fault is how the fake Prometheus answers an evaluation.
type fault string

const (
	// answer: a healthy Prometheus answering with the scripted ratios.
	answer fault = "answer"
	// down: nothing listens on the address (connection refused).
	down fault = "down"
	// serverError: 503 from whatever stands in front of Prometheus.
	serverError fault = "5xx"
	// slow: no answer before the query timeout.
	slow fault = "slow"
	// empty: success with an empty vector (no series) for every window.
	empty fault = "empty"
	// nan: success with a NaN error ratio for every window.
	nan fault = "NaN"
	// gone: the service's series stopped 5 minutes ago: the 5m window is
	// empty, the longer windows still hold their samples.
	gone fault = "gone"
	// flapping: failed (503) and good answers alternate, failed first.
	flapping fault = "flapping"
)

// goneWindow is the window a disappeared series has left.
const goneWindow = 5 * time.Minute

// events is the event count answered with every ratio: far above any
// low-traffic guard, so that only the fault decides whether a window has data.
const events = 100000

// step is what Prometheus answers in one evaluation: a fault, and the error
// ratio per window that answers with data carry.
type step struct {
	fault  fault
	ratios map[time.Duration]float64
}

// faultProm serves /api/v1/query on a fixed address and answers as its current
// step says. Down closes the listener and every connection; the next other
// step listens on the same address again.
type faultProm struct {
	addr string

	mu      sync.Mutex
	step    step
	srv     *http.Server
	queries []query
}

// query is one query received: its window, its evaluation instant and the
// job its errors selector names.
type query struct {
	window time.Duration
	at     time.Time
	job    string
}

func newFaultProm() (*faultProm, error) {
	p := &faultProm{step: step{fault: empty}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p.addr = ln.Addr().String()
	p.serve(ln)
	return p, nil
}

// URL is the address SLOs query.
func (p *faultProm) URL() string { return "http://" + p.addr }

func (p *faultProm) serve(ln net.Listener) {
	p.srv = &http.Server{Handler: p, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = p.srv.Serve(ln) }()
}

// set switches to the next step, closing or reopening the listener.
func (p *faultProm) set(s step) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.step = s
	switch {
	case s.fault == down && p.srv != nil:
		err := p.srv.Close()
		p.srv = nil
		return err
	case s.fault != down && p.srv == nil:
		ln, err := net.Listen("tcp", p.addr)
		if err != nil {
			return fmt.Errorf("listening on %s again: %w", p.addr, err)
		}
		p.serve(ln)
	}
	return nil
}

func (p *faultProm) close() {
	_ = p.set(step{fault: down})
}

// received returns the queries received so far.
func (p *faultProm) received() []query {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]query(nil), p.queries...)
}

var (
	windowRE = regexp.MustCompile(`\[([0-9]+[smhdwy])\]`)
	jobRE    = regexp.MustCompile(`job="([^"]*)"`)
)

func (p *faultProm) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/api/v1/query" {
		http.NotFound(w, r)
		return
	}
	m := windowRE.FindStringSubmatch(r.FormValue("query"))
	if m == nil {
		http.Error(w, "no window in query", http.StatusBadRequest)
		return
	}
	window, _ := model.ParseDuration(m[1])
	secs, _ := strconv.ParseFloat(r.FormValue("time"), 64)
	at := time.Unix(0, int64(secs*1e9)).UTC()
	var job string
	if j := jobRE.FindStringSubmatch(r.FormValue("query")); j != nil {
		job = j[1]
	}
	p.mu.Lock()
	p.queries = append(p.queries, query{window: time.Duration(window), at: at, job: job})
	s := p.step
	p.mu.Unlock()

	ts := strconv.FormatFloat(secs, 'f', 3, 64)
	switch s.fault {
	case serverError:
		http.Error(w, "Service Unavailable", http.StatusServiceUnavailable)
	case slow:
		// Answer nothing until the client gives up.
		ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
		defer cancel()
		<-ctx.Done()
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			http.Error(w, "too slow even for the test", http.StatusGatewayTimeout)
		}
	case empty:
		writeVector(w, "")
	case nan:
		writeVector(w, samples(ts, "NaN"))
	case gone:
		if time.Duration(window) <= goneWindow {
			writeVector(w, "")
			return
		}
		writeVector(w, samples(ts, strconv.FormatFloat(s.ratios[time.Duration(window)], 'g', -1, 64)))
	default:
		ratio, ok := s.ratios[time.Duration(window)]
		if !ok {
			writeVector(w, "")
			return
		}
		writeVector(w, samples(ts, strconv.FormatFloat(ratio, 'g', -1, 64)))
	}
}

// samples are the two series budgetgate's ratio query returns.
func samples(ts, ratio string) string {
	return fmt.Sprintf(`{"metric":{"budgetgate_part":"ratio"},"value":[%s,%q]},`+
		`{"metric":{"budgetgate_part":"events"},"value":[%s,"%d"]}`, ts, ratio, ts, events)
}

func writeVector(w http.ResponseWriter, result string) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = fmt.Fprintf(w, `{"status":"success","data":{"resultType":"vector","result":[%s]}}`, result)
}
