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

package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// counter reads a counter's value.
func counter(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	m := &dto.Metric{}
	if err := c.Write(m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

func testApp(t *testing.T, rate float64) (*app, http.Handler) {
	t.Helper()
	a, err := newApp(rate, time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	a.sleep = func(time.Duration) {}
	return a, a.handler()
}

func do(t *testing.T, h http.Handler, method, target string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, target, nil))
	return rec.Code, rec.Body.String()
}

// checkouts sends n requests and returns how many failed with 500.
func checkouts(t *testing.T, h http.Handler, n int) int {
	t.Helper()
	failed := 0
	for range n {
		switch code, _ := do(t, h, http.MethodGet, "/checkout"); code {
		case http.StatusOK:
		case http.StatusInternalServerError:
			failed++
		default:
			t.Fatalf("unexpected status %d", code)
		}
	}
	return failed
}

func TestCheckoutFailsExactlyTheConfiguredShare(t *testing.T) {
	for _, tc := range []struct {
		rate float64
		n    int
		want int
	}{
		{0, 100, 0},
		{0.3, 100, 30},
		{0.3, 10, 3},
		{0.25, 8, 2},
		{0.001, 1000, 1},
		{1, 20, 20},
	} {
		a, h := testApp(t, tc.rate)
		if got := checkouts(t, h, tc.n); got != tc.want {
			t.Errorf("rate %g: %d of %d failed, want %d", tc.rate, got, tc.n, tc.want)
		}
		if got := counter(t, a.requests.WithLabelValues("500")); got != float64(tc.want) {
			t.Errorf("rate %g: http_requests_total{code=500} = %g, want %d", tc.rate, got, tc.want)
		}
		if got := counter(t, a.requests.WithLabelValues("200")); got != float64(tc.n-tc.want) {
			t.Errorf("rate %g: http_requests_total{code=200} = %g, want %d", tc.rate, got, tc.n-tc.want)
		}
	}
}

func TestAdminErrorRate(t *testing.T) {
	a, h := testApp(t, 0)
	if code, body := do(t, h, http.MethodGet, "/admin/error-rate"); code != 200 || body != "0\n" {
		t.Fatalf("GET = %d %q, want 200 \"0\\n\"", code, body)
	}
	if code, body := do(t, h, http.MethodPost, "/admin/error-rate?value=0.2"); code != 200 || body != "0.2\n" {
		t.Fatalf("POST 0.2 = %d %q", code, body)
	}
	if got := checkouts(t, h, 50); got != 10 {
		t.Errorf("after POST 0.2: %d of 50 failed, want 10", got)
	}
	for _, bad := range []string{"", "?value=", "?value=-0.1", "?value=1.5", "?value=NaN", "?value=abc"} {
		if code, _ := do(t, h, http.MethodPost, "/admin/error-rate"+bad); code != http.StatusBadRequest {
			t.Errorf("POST %q = %d, want 400", bad, code)
		}
	}
	if a.rate() != 0.2 {
		t.Errorf("rate after bad requests = %g, want 0.2 unchanged", a.rate())
	}
	if code, _ := do(t, h, http.MethodDelete, "/admin/error-rate"); code != http.StatusMethodNotAllowed {
		t.Errorf("DELETE = %d, want 405", code)
	}
	if code, body := do(t, h, http.MethodPost, "/admin/error-rate?value=0"); code != 200 || body != "0\n" {
		t.Fatalf("POST 0 = %d %q", code, body)
	}
	if got := checkouts(t, h, 50); got != 0 {
		t.Errorf("after POST 0: %d of 50 failed, want 0", got)
	}
}

func TestNewAppRejectsBadRate(t *testing.T) {
	for _, r := range []float64{-1, 1.01} {
		if _, err := newApp(r, 0); err == nil {
			t.Errorf("newApp(%g) succeeded", r)
		}
	}
}

func TestMetricsExposition(t *testing.T) {
	_, h := testApp(t, 0.5)
	checkouts(t, h, 4)
	code, body := do(t, h, http.MethodGet, "/metrics")
	if code != 200 {
		t.Fatalf("/metrics = %d", code)
	}
	for _, want := range []string{
		`http_requests_total{code="200"} 2`,
		`http_requests_total{code="500"} 2`,
		`http_request_duration_seconds_bucket{code="200",le="0.3"} 2`,
		`http_request_duration_seconds_count{code="500"} 2`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

func TestLoadGeneratorMovesTheCounters(t *testing.T) {
	a, h := testApp(t, 0)
	srv := httptest.NewServer(h)
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go generateLoad(ctx, srv.URL, 200)
	deadline := time.Now().Add(5 * time.Second)
	for counter(t, a.requests.WithLabelValues("200")) < 10 {
		if time.Now().After(deadline) {
			t.Fatal("the load generator sent fewer than 10 requests in 5s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	resp, err := http.Get(srv.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if string(b) != "ok\n" {
		t.Errorf("/healthz = %q", b)
	}
}

func TestSelfAddress(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1:8099": "127.0.0.1:8099",
		"0.0.0.0:8099":   "127.0.0.1:8099",
		"[::]:8099":      "127.0.0.1:8099",
		"[::1]:8099":     "[::1]:8099",
	} {
		addr, err := net.ResolveTCPAddr("tcp", in)
		if err != nil {
			t.Fatal(err)
		}
		if got := selfAddress(addr); got != want {
			t.Errorf("selfAddress(%s) = %s, want %s", in, got, want)
		}
	}
}
