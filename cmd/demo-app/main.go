/*
Copyright 2026.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

// Command demo-app is the "checkout" service of the budgetgate demo and e2e
// suite: an HTTP service whose error rate can be changed while it runs.
//
//	GET  /checkout                    200, or 500 for the configured share of requests
//	GET  /admin/error-rate            the current error rate, e.g. "0.3"
//	POST /admin/error-rate?value=0.3  changes it (0 ≤ value ≤ 1)
//	GET  /metrics                     http_requests_total{code}, http_request_duration_seconds
//	GET  /healthz                     "ok"
//
// A built-in load generator calls its own /checkout --rps times a second, so the
// counters move without outside traffic. Errors are spread evenly rather than
// drawn at random: with an error rate of 0.3, exactly 3 of every 10 requests
// fail, which keeps the burn rate Prometheus sees steady.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/budgetgate/budgetgate/internal/version"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8099", "Address to serve HTTP on.")
	errorRate := flag.Float64("error-rate", 0, "Share of /checkout requests answered with 500, between 0 and 1.")
	rps := flag.Float64("rps", 50, "Requests per second the built-in load generator sends to /checkout; 0 disables it.")
	latency := flag.Duration("latency", 5*time.Millisecond,
		"Mean simulated latency of /checkout (uniform in [0, 2×latency)).")
	showVersion := flag.Bool("version", false, "Print the version and exit.")
	flag.Parse()
	if *showVersion {
		fmt.Println(version.String("demo-app"))
		return
	}

	app, err := newApp(*errorRate, *latency)
	if err != nil {
		log.Fatalf("demo-app: %v", err)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatalf("demo-app: %v", err)
	}
	srv := &http.Server{Handler: app.handler(), ReadHeaderTimeout: 5 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Fatalf("demo-app: %v", err)
		}
	}()
	log.Printf("demo-app: serving on http://%s (error rate %g, load %g rps)", ln.Addr(), app.rate(), *rps)
	if *rps > 0 {
		go generateLoad(ctx, "http://"+selfAddress(ln.Addr()), *rps)
	}

	<-ctx.Done()
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutdown)
}

// app holds the error rate and the metrics.
type app struct {
	mu        sync.Mutex
	errorRate float64
	// debt accumulates errorRate per request; a request fails when it reaches 1,
	// which spreads failures evenly at exactly the configured share.
	debt    float64
	latency time.Duration

	registry *prometheus.Registry
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	sleep    func(time.Duration)
}

func newApp(errorRate float64, latency time.Duration) (*app, error) {
	if err := validRate(errorRate); err != nil {
		return nil, err
	}
	a := &app{
		errorRate: errorRate,
		latency:   latency,
		registry:  prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "http_requests_total",
			Help: "Requests to /checkout by HTTP status code.",
		}, []string{"code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "http_request_duration_seconds",
			Help:    "Latency of /checkout requests by HTTP status code.",
			Buckets: []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.3, 0.5, 1, 2.5},
		}, []string{"code"}),
		sleep: time.Sleep,
	}
	a.registry.MustRegister(a.requests, a.duration,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// Both series exist from the start, so PromQL sees a 0 rather than no data.
	for _, code := range []string{"200", "500"} {
		a.requests.WithLabelValues(code)
		a.duration.WithLabelValues(code)
	}
	return a, nil
}

func validRate(v float64) error {
	if v != v || v < 0 || v > 1 { // v != v: NaN
		return fmt.Errorf("error rate must be between 0 and 1, got %v", v)
	}
	return nil
}

func (a *app) rate() float64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.errorRate
}

func (a *app) setRate(v float64) error {
	if err := validRate(v); err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.errorRate = v
	a.debt = 0
	return nil
}

// fail says whether the next request fails.
func (a *app) fail() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.debt += a.errorRate
	if a.debt >= 1-1e-9 {
		a.debt--
		return true
	}
	return false
}

func (a *app) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/checkout", a.checkout)
	mux.HandleFunc("/admin/error-rate", a.adminErrorRate)
	mux.Handle("/metrics", promhttp.HandlerFor(a.registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = fmt.Fprintln(w, "ok") })
	return mux
}

func (a *app) checkout(w http.ResponseWriter, _ *http.Request) {
	start := time.Now()
	if a.latency > 0 {
		a.sleep(time.Duration(rand.Int64N(int64(2 * a.latency))))
	}
	code, body := http.StatusOK, "order placed\n"
	if a.fail() {
		code, body = http.StatusInternalServerError, "payment provider unavailable\n"
	}
	w.WriteHeader(code)
	_, _ = fmt.Fprint(w, body)
	c := strconv.Itoa(code)
	a.requests.WithLabelValues(c).Inc()
	a.duration.WithLabelValues(c).Observe(time.Since(start).Seconds())
}

func (a *app) adminErrorRate(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet:
	case http.MethodPost, http.MethodPut:
		raw := r.URL.Query().Get("value")
		if raw == "" {
			raw = r.PostFormValue("value")
		}
		v, err := strconv.ParseFloat(raw, 64)
		if err == nil {
			err = a.setRate(v)
		}
		if err != nil {
			http.Error(w, fmt.Sprintf("bad value %q: want ?value=R with 0 <= R <= 1", raw), http.StatusBadRequest)
			return
		}
		log.Printf("demo-app: error rate set to %g", v)
	default:
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "use GET or POST", http.StatusMethodNotAllowed)
		return
	}
	_, _ = fmt.Fprintf(w, "%g\n", a.rate())
}

// selfAddress is where the load generator reaches this server: the listen
// address, with an unspecified host replaced by the loopback address.
func selfAddress(addr net.Addr) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return addr.String()
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// generateLoad calls base+"/checkout" rps times a second until ctx ends.
func generateLoad(ctx context.Context, base string, rps float64) {
	client := &http.Client{Timeout: 5 * time.Second}
	tick := time.NewTicker(time.Duration(float64(time.Second) / rps))
	defer tick.Stop()
	// A few workers, so one slow request does not hold the rate back.
	work := make(chan struct{}, 64)
	for range 8 {
		go func() {
			for range work {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/checkout", nil)
				resp, err := client.Do(req)
				if err != nil {
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body) // lets the connection be reused
				_ = resp.Body.Close()
			}
		}()
	}
	defer close(work)
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			select {
			case work <- struct{}{}:
			default: // saturated: drop this tick rather than queue up
			}
		}
	}
}
