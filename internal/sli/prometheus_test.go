package sli

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
)

var (
	evalTime = time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC)

	ratioIndicator = Indicator{Ratio: &Ratio{
		Errors: `http_requests_total{job="checkout",code=~"5.."}`,
		Total:  `http_requests_total{job="checkout"}`,
	}}
	latencyIndicator = Indicator{Latency: &Latency{
		Success: `http_request_duration_seconds_bucket{job="checkout",le="0.3"}`,
		Total:   `http_request_duration_seconds_count{job="checkout"}`,
	}}
	queryIndicator = Indicator{Query: `sum(rate(errors_total[$window])) / sum(rate(requests_total[$window]))`}
)

// fakeProm fakes /api/v1/query: answer maps a query to a status and a JSON
// body; every query and its time parameter are recorded.
type fakeProm struct {
	answer func(query string) (int, string)

	mu       sync.Mutex
	queries  []string
	times    []string
	timeouts []string
}

func (f *fakeProm) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/api/v1/query" {
		http.NotFound(w, r)
		return
	}
	q, timeout := r.FormValue("query"), r.FormValue("timeout")
	f.mu.Lock()
	f.queries = append(f.queries, q)
	f.times = append(f.times, r.FormValue("time"))
	f.timeouts = append(f.timeouts, timeout)
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if _, err := model.ParseDuration(timeout); err != nil { // as Prometheus does
		w.WriteHeader(http.StatusBadRequest)
		_, _ = fmt.Fprintf(w, `{"status":"error","errorType":"bad_data","error":%q}`, err.Error())
		return
	}
	code, body := f.answer(q)
	w.WriteHeader(code)
	_, _ = fmt.Fprint(w, body)
}

// recorded returns copies of the queries, times and timeouts received so far.
func (f *fakeProm) recorded() (queries, times, timeouts []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.queries), slices.Clone(f.times), slices.Clone(f.timeouts)
}

// start serves f and returns a source on it with the clock at evalTime.
func (f *fakeProm) start(t testing.TB, opts ...Option) *Prometheus {
	t.Helper()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	p, err := NewPrometheus(srv.URL, append([]Option{WithClock(func() time.Time { return evalTime })}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// vector is a success answer with one sample per "label=value" pair; an
// empty label means a sample without labels.
func vector(pairs ...string) string {
	var samples []string
	for i := 0; i+1 < len(pairs); i += 2 {
		metric := "{}"
		if pairs[i] != "" {
			metric = fmt.Sprintf(`{"budgetgate_part":%q}`, pairs[i])
		}
		samples = append(samples, fmt.Sprintf(`{"metric":%s,"value":[1782907200,%q]}`, metric, pairs[i+1]))
	}
	return `{"status":"success","data":{"resultType":"vector","result":[` + strings.Join(samples, ",") + `]}}`
}

func ok(body string) func(string) (int, string) {
	return func(string) (int, string) { return http.StatusOK, body }
}

// byWindow answers by the window in brackets, e.g. "[1h]".
func byWindow(answers map[string]string) func(string) (int, string) {
	return func(q string) (int, string) {
		for w, body := range answers {
			if strings.Contains(q, "["+w+"]") {
				if strings.HasPrefix(body, "HTTP ") {
					var code int
					if _, err := fmt.Sscanf(body, "HTTP %d", &code); err != nil {
						panic(fmt.Sprintf("byWindow: bad status answer %q: %v", body, err))
					}
					return code, `{"status":"error","errorType":"internal","error":"boom"}`
				}
				return http.StatusOK, body
			}
		}
		return http.StatusOK, vector()
	}
}

func TestMeasureQueries(t *testing.T) {
	windows := []time.Duration{time.Hour, 5 * time.Minute, 30 * 24 * time.Hour, time.Hour}
	tests := []struct {
		name string
		ind  Indicator
		body string
		want Result
	}{
		{"ratio", ratioIndicator, vector("ratio", "0.0125", "events", "48000"), Result{ErrorRatio: 0.0125, Events: 48000}},
		{"latency", latencyIndicator, vector("events", "1000", "ratio", "0.25"), Result{ErrorRatio: 0.25, Events: 1000}},
		{"query", queryIndicator, vector("", "0.001"), Result{ErrorRatio: 0.001, Events: -1}},
		{"query scalar", queryIndicator,
			`{"status":"success","data":{"resultType":"scalar","result":[1782907200,"0.5"]}}`,
			Result{ErrorRatio: 0.5, Events: -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeProm{answer: ok(tt.body)}
			got, err := f.start(t).Measure(context.Background(), tt.ind, windows)
			if err != nil {
				t.Fatal(err)
			}
			want := map[time.Duration]Result{time.Hour: tt.want, 5 * time.Minute: tt.want, 30 * 24 * time.Hour: tt.want}
			if !maps.Equal(got, want) {
				t.Errorf("Measure = %v, want %v", got, want)
			}
			// One query per distinct window, all at the clock's instant.
			distinct := []time.Duration{5 * time.Minute, time.Hour, 30 * 24 * time.Hour}
			wantQueries := make([]string, 0, len(distinct))
			for _, w := range distinct {
				q, _ := BuildQuery(tt.ind, w)
				wantQueries = append(wantQueries, q)
			}
			queries, times, _ := f.recorded()
			slices.Sort(queries)
			slices.Sort(wantQueries)
			if !slices.Equal(queries, wantQueries) {
				t.Errorf("queries:\n got %q\nwant %q", queries, wantQueries)
			}
			for _, ts := range times {
				if ts != "1782907200" {
					t.Errorf("query time = %q, want 1782907200 (evalTime)", ts)
				}
			}
		})
	}
}

func TestMeasureNoData(t *testing.T) {
	tests := []struct {
		name string
		ind  Indicator
		body string
	}{
		{"empty vector", ratioIndicator, vector()},
		{"NaN ratio (no traffic)", ratioIndicator, vector("ratio", "NaN", "events", "0")},
		{"+Inf ratio", ratioIndicator, vector("ratio", "+Inf", "events", "10")},
		{"-Inf ratio", latencyIndicator, vector("ratio", "-Inf", "events", "10")},
		{"no events", ratioIndicator, vector("ratio", "0.1")},
		{"no ratio", ratioIndicator, vector("events", "10")},
		{"NaN events", latencyIndicator, vector("ratio", "0.1", "events", "NaN")},
		{"negative ratio", latencyIndicator, vector("ratio", "-0.5", "events", "10")},
		{"query empty", queryIndicator, vector()},
		{"query NaN", queryIndicator, vector("", "NaN")},
		{"query +Inf", queryIndicator, vector("", "+Inf")},
		{"query scalar NaN", queryIndicator, `{"status":"success","data":{"resultType":"scalar","result":[1782907200,"NaN"]}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := (&fakeProm{answer: ok(tt.body)}).start(t).Measure(context.Background(), tt.ind, []time.Duration{time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 0 {
				t.Errorf("Measure = %v, want no windows", got)
			}
		})
	}
}

func TestMeasureClamps(t *testing.T) {
	tests := []struct {
		ratio string
		want  float64
	}{{"-1e-9", 0}, {"1.0000001", 1}, {"1.2", 1}, {"0", 0}, {"1", 1}}
	for _, tt := range tests {
		got, err := (&fakeProm{answer: ok(vector("ratio", tt.ratio, "events", "10"))}).start(t).
			Measure(context.Background(), latencyIndicator, []time.Duration{time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		if want := (Result{ErrorRatio: tt.want, Events: 10}); got[time.Hour] != want {
			t.Errorf("ratio %s: Measure = %v, want %v", tt.ratio, got, want)
		}
	}
}

func TestMeasurePartial(t *testing.T) {
	f := &fakeProm{answer: byWindow(map[string]string{
		"1h":  vector("ratio", "0.02", "events", "600000"),
		"6h":  "HTTP 500",
		"30d": vector("ratio", "0.0005", "events", "432000000"),
	})}
	got, err := f.start(t).Measure(context.Background(), ratioIndicator,
		[]time.Duration{time.Hour, 6 * time.Hour, 24 * time.Hour, 30 * 24 * time.Hour})
	want := map[time.Duration]Result{
		time.Hour:           {ErrorRatio: 0.02, Events: 600000},
		30 * 24 * time.Hour: {ErrorRatio: 0.0005, Events: 432000000},
	}
	if !maps.Equal(got, want) {
		t.Errorf("Measure = %v, want %v (24h has no data, 6h failed)", got, want)
	}
	var qe *QueryError
	if !errors.As(err, &qe) {
		t.Fatalf("error %v is not a *QueryError", err)
	}
	q6h, _ := BuildQuery(ratioIndicator, 6*time.Hour)
	if qe.Window != 6*time.Hour || qe.Query != q6h {
		t.Errorf("QueryError = {%v, %q}, want {6h, %q}", qe.Window, qe.Query, q6h)
	}
	var apiErr *v1.Error
	if !errors.As(err, &apiErr) || apiErr.Type != v1.ErrServer {
		t.Errorf("error %v does not wrap a v1.Error of type %s", err, v1.ErrServer)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a 500 must not look like a timeout: %v", err)
	}
}

func TestMeasureErrors(t *testing.T) {
	tests := []struct {
		name    string
		code    int
		body    string
		timeout bool
		want    string
	}{
		{"server error", 500, "oops", false, "server error: 500"},
		{"bad query", 400, `{"status":"error","errorType":"bad_data","error":"parse error"}`, false, "bad_data: parse error"},
		{"prometheus timeout", 503, `{"status":"error","errorType":"timeout","error":"query timed out in expression evaluation"}`, true, "server error: 503"},
		{"bad JSON", 200, `{"status":"success","data":`, false, "unexpected end"},
		{"matrix", 200, `{"status":"success","data":{"resultType":"matrix","result":[]}}`, false, "unexpected result type matrix"},
		{"foreign series", 200, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{"job":"x"},"value":[1,"1"]}]}}`, false, `unexpected series {job="x"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeProm{answer: func(string) (int, string) { return tt.code, tt.body }}
			got, err := f.start(t).Measure(context.Background(), ratioIndicator, []time.Duration{time.Hour})
			var qe *QueryError
			if !errors.As(err, &qe) || qe.Window != time.Hour || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want a *QueryError for 1h containing %q", err, tt.want)
			}
			if errors.Is(err, context.DeadlineExceeded) != tt.timeout {
				t.Errorf("errors.Is(err, DeadlineExceeded) = %v, want %v", !tt.timeout, tt.timeout)
			}
			if len(got) != 0 {
				t.Errorf("Measure = %v, want no windows", got)
			}
		})
	}
	t.Run("several series from a query indicator", func(t *testing.T) {
		f := &fakeProm{answer: ok(vector("a", "0.1", "b", "0.2"))}
		_, err := f.start(t).Measure(context.Background(), queryIndicator, []time.Duration{time.Hour})
		if err == nil || !strings.Contains(err.Error(), "got 2 series, want one") {
			t.Errorf("error = %v, want got 2 series", err)
		}
	})
}

func TestMeasureTimeout(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	f := &fakeProm{answer: func(q string) (int, string) {
		if strings.Contains(q, "[1h]") {
			<-release // hang until the test ends
		}
		return http.StatusOK, vector("ratio", "0.5", "events", "2")
	}}
	p := f.start(t, WithTimeout(100*time.Millisecond))
	start := time.Now()
	got, err := p.Measure(context.Background(), ratioIndicator, []time.Duration{time.Hour, 2 * time.Hour})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error = %v, want DeadlineExceeded", err)
	}
	var qe *QueryError
	if !errors.As(err, &qe) || qe.Window != time.Hour {
		t.Errorf("error = %v, want a QueryError for 1h", err)
	}
	if want := (map[time.Duration]Result{2 * time.Hour: {ErrorRatio: 0.5, Events: 2}}); !maps.Equal(got, want) {
		t.Errorf("Measure = %v, want %v", got, want)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Measure took %v despite a 100ms timeout", d)
	}
	_, times, _ := f.recorded()
	for _, ts := range times {
		if ts != "1782907200" {
			t.Errorf("query time = %q", ts)
		}
	}
}

func TestMeasureSendsTimeout(t *testing.T) {
	for _, tt := range []struct {
		timeout time.Duration
		want    string
	}{{0, "10s"}, {1500 * time.Millisecond, "1s"}, {90 * time.Second, "1m30s"}, {250*time.Millisecond + 7, "250ms"}} {
		f := &fakeProm{answer: ok(vector("ratio", "0", "events", "1"))}
		var opts []Option
		if tt.timeout != 0 {
			opts = append(opts, WithTimeout(tt.timeout))
		}
		if _, err := f.start(t, opts...).Measure(context.Background(), ratioIndicator, []time.Duration{time.Hour}); err != nil {
			t.Errorf("timeout %v: %v", tt.timeout, err)
		}
		if _, _, timeouts := f.recorded(); !slices.Equal(timeouts, []string{tt.want}) {
			t.Errorf("timeout %v: sent %q, want %q", tt.timeout, timeouts, tt.want)
		}
	}
}

func TestMeasureCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	f := &fakeProm{answer: ok(vector("ratio", "0.5", "events", "2"))}
	_, err := f.start(t).Measure(ctx, ratioIndicator, []time.Duration{time.Hour})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error = %v, want context.Canceled", err)
	}
}

func TestMeasureBadInput(t *testing.T) {
	f := &fakeProm{answer: ok(vector())}
	p := f.start(t)
	if _, err := p.Measure(context.Background(), Indicator{Query: "no window"}, []time.Duration{time.Hour}); !errors.Is(err, ErrBadIndicator) {
		t.Errorf("bad indicator: error = %v, want ErrBadIndicator", err)
	}
	if _, err := p.Measure(context.Background(), ratioIndicator, []time.Duration{time.Hour, 0}); !errors.Is(err, ErrBadWindow) {
		t.Errorf("bad window: error = %v, want ErrBadWindow", err)
	}
	if queries, _, _ := f.recorded(); len(queries) != 0 {
		t.Errorf("sent %d queries for bad input", len(queries))
	}
	got, err := p.Measure(context.Background(), ratioIndicator, nil)
	if err != nil || len(got) != 0 {
		t.Errorf("no windows: Measure = %v, %v", got, err)
	}
}

func TestMeasureConcurrency(t *testing.T) {
	var inFlight, peak atomic.Int32
	f := &fakeProm{answer: func(string) (int, string) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
		return http.StatusOK, vector("ratio", "0", "events", "1")
	}}
	var windows []time.Duration
	for i := 1; i <= 12; i++ {
		windows = append(windows, time.Duration(i)*time.Hour)
	}
	got, err := f.start(t).Measure(context.Background(), ratioIndicator, windows)
	if err != nil || len(got) != 12 {
		t.Fatalf("Measure = %d windows, %v", len(got), err)
	}
	t.Logf("peak in flight: %d", peak.Load())
	if p := peak.Load(); p > MaxConcurrentQueries {
		t.Errorf("%d queries in flight, want at most %d", p, MaxConcurrentQueries)
	}
}

func TestNewPrometheus(t *testing.T) {
	for _, addr := range []string{"", "localhost:9090", "ftp://x", "http://", "http://a b"} {
		if _, err := NewPrometheus(addr); err == nil {
			t.Errorf("NewPrometheus(%q) succeeded", addr)
		}
	}
	if _, err := NewPrometheus("http://localhost:9090", WithTimeout(0)); err == nil {
		t.Error("NewPrometheus with a zero timeout succeeded")
	}
	if _, err := NewPrometheus("https://prometheus.example:9090/prefix", WithRoundTripper(http.DefaultTransport)); err != nil {
		t.Error(err)
	}
}

func BenchmarkMeasure(b *testing.B) {
	f := &fakeProm{answer: ok(vector("ratio", "0.0125", "events", "48000"))}
	p := f.start(b)
	windows := []time.Duration{5 * time.Minute, 30 * time.Minute, time.Hour, 6 * time.Hour, 24 * time.Hour, 30 * 24 * time.Hour}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Measure(ctx, ratioIndicator, windows); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(windows)), "queries/op")
}

func TestMeasureAsksLongestWindowFirst(t *testing.T) {
	// The server holds every query until MaxConcurrentQueries have arrived:
	// those are the ones Measure dispatched first, whatever order the
	// goroutines reach the server in.
	var arrived atomic.Int32
	release := make(chan struct{})
	f := &fakeProm{answer: func(string) (int, string) {
		if arrived.Add(1) == MaxConcurrentQueries {
			close(release)
		}
		select {
		case <-release:
		case <-time.After(5 * time.Second):
		}
		return http.StatusOK, vector("ratio", "0", "events", "1")
	}}
	p := f.start(t)
	windows := []time.Duration{5 * time.Minute, 30 * 24 * time.Hour, time.Hour, 6 * time.Hour, 30 * time.Minute}
	if _, err := p.Measure(context.Background(), ratioIndicator, windows); err != nil {
		t.Fatal(err)
	}
	queries, _, _ := f.recorded()
	// The first MaxConcurrentQueries are started before any other, longest first.
	first := queries[:MaxConcurrentQueries]
	for _, w := range []string{"[30d]", "[6h]", "[1h]", "[30m]"} {
		if !slices.ContainsFunc(first, func(q string) bool { return strings.Contains(q, w) }) {
			t.Errorf("window %s is not among the first %d queries: %v", w, MaxConcurrentQueries, first)
		}
	}
}

func TestEvaluationDeadline(t *testing.T) {
	for _, tt := range []struct {
		n    int
		want time.Duration
	}{{0, 11 * time.Second}, {1, 11 * time.Second}, {4, 11 * time.Second}, {5, 21 * time.Second}, {8, 21 * time.Second}, {9, 31 * time.Second}} {
		if got := EvaluationDeadline(10*time.Second, tt.n); got != tt.want {
			t.Errorf("EvaluationDeadline(10s, %d) = %v, want %v", tt.n, got, tt.want)
		}
	}
}

func TestMeasureQueryEvents(t *testing.T) {
	ind := Indicator{Query: queryIndicator.Query, QueryEvents: `sum(increase(requests_total[$window]))`}
	f := &fakeProm{answer: ok(vector("ratio", "0.25", "events", "40"))}
	got, err := f.start(t).Measure(context.Background(), ind, []time.Duration{time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if want := (Result{ErrorRatio: 0.25, Events: 40}); got[time.Hour] != want {
		t.Errorf("Measure = %+v, want %+v", got[time.Hour], want)
	}
	queries, _, _ := f.recorded()
	want := `label_replace((sum(rate(errors_total[1h])) / sum(rate(requests_total[1h]))), "budgetgate_part", "ratio", "", "") or ` +
		`label_replace((sum(increase(requests_total[1h]))), "budgetgate_part", "events", "", "")`
	if queries[0] != want {
		t.Errorf("query\n%s\nwant\n%s", queries[0], want)
	}
	if err := ValidateIndicator(Indicator{QueryEvents: "x[$window]"}); !errors.Is(err, ErrBadIndicator) {
		t.Errorf("queryEvents without query: %v", err)
	}
}

func TestIndicatorWarnings(t *testing.T) {
	tests := []struct {
		ind  Indicator
		want []string
	}{
		{ratioIndicator, nil},
		{latencyIndicator, nil},
		{Indicator{Latency: &Latency{Success: `b{le="+Inf"}`, Total: `c`}}, []string{
			`latency.success selects le="+Inf", the bucket of every request: the SLI is always 100%; select the bucket of your latency objective, e.g. le="0.3"`}},
		{Indicator{Latency: &Latency{Success: `b{le=~"0.1|0.3"}`, Total: `c`}}, []string{
			`latency.success matches le with a regex (le=~"0.1|0.3"): if it selects several buckets, a fast request is counted once per bucket and the SLI reads too good; select one bucket, e.g. le="0.3"`}},
		{queryIndicator, []string{"indicator.query has no queryEvents: budgetgate cannot count the events of a window, so the policy's low-traffic guard (minEvents) does not apply and one failed request in a quiet window can freeze; add queryEvents, e.g. sum(increase(http_requests_total[$window]))"}},
		{Indicator{Query: queryIndicator.Query, QueryEvents: "sum(increase(r[$window]))"}, nil},
		{Indicator{}, nil},
	}
	for i, tt := range tests {
		if got := Warnings(tt.ind); !slices.Equal(got, tt.want) {
			t.Errorf("%d: Warnings = %q, want %q", i, got, tt.want)
		}
	}
}

func TestSeriesSeen(t *testing.T) {
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/series" {
			http.NotFound(w, r)
			return
		}
		_ = r.ParseForm()
		got = append(got, r.Form.Get("match[]")+" "+r.Form.Get("start")+" "+r.Form.Get("limit"))
		w.Header().Set("Content-Type", "application/json")
		if strings.Contains(r.Form.Get("match[]"), "typo") {
			_, _ = fmt.Fprint(w, `{"status":"success","data":[]}`)
			return
		}
		_, _ = fmt.Fprint(w, `{"status":"success","data":[{"__name__":"http_requests_total","code":"500"}]}`)
	}))
	t.Cleanup(srv.Close)
	p, err := NewPrometheus(srv.URL, WithClock(func() time.Time { return evalTime }))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if seen, err := p.SeriesSeen(ctx, `http_requests_total{code=~"5.."}`, 30*24*time.Hour); err != nil || !seen {
		t.Errorf("SeriesSeen = %v, %v", seen, err)
	}
	if seen, err := p.SeriesSeen(ctx, `http_requests_total{code=~"typo"}`, time.Hour); err != nil || seen {
		t.Errorf("SeriesSeen(typo) = %v, %v", seen, err)
	}
	if _, err := p.SeriesSeen(ctx, `rate(x[5m])`, time.Hour); !errors.Is(err, ErrBadIndicator) {
		t.Errorf("SeriesSeen(expression) error = %v", err)
	}
	want := fmt.Sprintf(`http_requests_total{code=~"5.."} %s 1`, formatTime(evalTime.Add(-30*24*time.Hour)))
	if len(got) != 2 || got[0] != want {
		t.Errorf("requests %q, want first %q", got, want)
	}
}

func formatTime(t time.Time) string { return strconv.FormatInt(t.Unix(), 10) }
