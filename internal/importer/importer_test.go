package importer

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	slov1alpha1 "github.com/budgetgate/budgetgate/api/v1alpha1"
)

func TestEventIndicator(t *testing.T) {
	for _, tc := range []struct {
		name         string
		first, total string
		good         bool
		want         indicatorSpec
	}{
		{
			name:  "sum of rates: ratio",
			first: `sum(rate(http_requests_total{job="a",code=~"5.."}[$window]))`,
			total: `sum(rate(http_requests_total{job="a"}[$window]))`,
			want:  indicatorSpec{ratio: &[2]string{`http_requests_total{job="a",code=~"5.."}`, `http_requests_total{job="a"}`}},
		},
		{
			name:  "sum of increases, spaces and parentheses",
			first: "(\n  sum ( increase( x_total{code=\"500\"} [ $window ] ) )\n)",
			total: `sum(increase(x_total[$window]))`,
			want:  indicatorSpec{ratio: &[2]string{`x_total{code="500"}`, `x_total`}},
		},
		{
			name:  "brackets inside a matcher",
			first: `sum(rate(x_total{code=~"[45].."}[$window]))`,
			total: `sum(rate(x_total[$window]))`,
			want:  indicatorSpec{ratio: &[2]string{`x_total{code=~"[45].."}`, `x_total`}},
		},
		{
			name:  "count minus bucket: latency",
			first: `sum(rate(d_count{job="a"}[$window])) - sum(rate(d_bucket{job="a",le="0.3"}[$window]))`,
			total: `sum(rate(d_count{job = "a"}[$window]))`,
			want:  indicatorSpec{latency: &[2]string{`d_bucket{job="a",le="0.3"}`, `d_count{job = "a"}`}},
		},
		{
			name:  "good events of a bucket: latency",
			first: `sum(increase(d_bucket{le="1"}[$window]))`,
			total: `sum(increase(d_count[$window]))`,
			good:  true,
			want:  indicatorSpec{latency: &[2]string{`d_bucket{le="1"}`, `d_count`}},
		},
		{
			name:  "rate and increase mixed: a query",
			first: `sum(rate(e[$window]))`,
			total: `sum(increase(t[$window]))`,
			want:  indicatorSpec{query: "(sum(rate(e[$window])))\n/\n(sum(increase(t[$window])))", queryEvents: "sum(increase(t[$window]))"},
		},
		{
			name:  "sum by: a query without events",
			first: `sum by (code) (rate(e[$window]))`,
			total: `sum by (code) (rate(t[$window]))`,
			want:  indicatorSpec{query: "(sum by (code) (rate(e[$window])))\n/\n(sum by (code) (rate(t[$window])))"},
		},
		{
			name:  "count minus bucket of another selector: a query",
			first: `sum(rate(d_count{job="a"}[$window])) - sum(rate(d_bucket{le="0.3"}[$window]))`,
			total: `sum(rate(d_count{job="b"}[$window]))`,
			want: indicatorSpec{
				query:       "(sum(rate(d_count{job=\"a\"}[$window])) - sum(rate(d_bucket{le=\"0.3\"}[$window])))\n/\n(sum(rate(d_count{job=\"b\"}[$window])))",
				queryEvents: `sum(increase(d_count{job="b"}[$window]))`,
			},
		},
		{
			name:  "good events without a bucket: a query",
			first: `sum(rate(ok_total[$window]))`,
			total: `sum(rate(all_total[$window]))`,
			good:  true,
			want:  indicatorSpec{query: "1 - (sum(rate(ok_total[$window])))\n/\n(sum(rate(all_total[$window])))", queryEvents: "sum(increase(all_total[$window]))"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, _ := eventIndicator(tc.first, tc.total, tc.good)
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(indicatorSpec{})); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestWindowVar(t *testing.T) {
	for in, want := range map[string]string{
		"x[{{.window}}]":     "x[$window]",
		"x[{{ .window }}]":   "x[$window]",
		"x[{{- .window -}}]": "x[$window]",
		"x[$window]":         "x[$window]",
	} {
		if got, err := windowVar(in); err != nil || got != want {
			t.Errorf("windowVar(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := windowVar(`x{job="{{.service}}"}[{{.window}}]`); err == nil || !errors.Is(err, ErrUnsupported) ||
		!strings.Contains(err.Error(), "the template action {{.service}}") {
		t.Errorf("another template action: %v", err)
	}
}

func TestDuration(t *testing.T) {
	for in, want := range map[string]slov1alpha1.Duration{
		"30d": "30d", "4w": "4w", "1h30m": "90m", "2d12h": "60h", "90s": "90s", "1m30s": "90s", "1500ms": "1500ms",
	} {
		if got, _, err := duration(in); err != nil || got != want {
			t.Errorf("duration(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "0d", "a month", "-5m"} {
		if _, _, err := duration(bad); err == nil {
			t.Errorf("duration(%q): no error", bad)
		}
	}
}

func TestPyrraWindows(t *testing.T) {
	// Pyrra's documented windows for 28 days, and a window so short that
	// its fastest tier has no short window left.
	p, _, err := pyrraPolicy(&pyrraAlerting{}, "28d", 28*24*3600e9)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range p.Object.Spec.Rules {
		got = append(got, r.Name+" "+string(r.BurnRate.LongWindow)+"/"+string(r.BurnRate.ShortWindow)+" "+string(*r.BurnRate.Factor)+" "+string(r.Action))
	}
	want := []string{"fast-burn 1h/5m 14 Freeze", "medium-burn 6h/30m 7 Freeze", "slow-burn 1d/2h 2 Warn", "long-term-burn 4d/6h 1 Warn"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("28d windows (-want +got):\n%s", diff)
	}
	p, _, err = pyrraPolicy(&pyrraAlerting{}, "1d", 24*3600e9)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(p.Object.Spec.Rules); n != 3 || !strings.Contains(p.Findings[0].Message, "Pyrra's fastBurn alert has windows 2m0s and 0s for a 1d SLO") {
		t.Errorf("1d: %d rules, findings %v", n, p.Findings)
	}
}

func imp(t *testing.T, opts Options, docs ...string) (*Result, error) {
	t.Helper()
	var in []Input
	for i, d := range docs {
		in = append(in, Input{Name: string(rune('a'+i)) + ".yaml", Data: []byte(d)})
	}
	return Import(in, opts)
}

const slothPSL = `apiVersion: sloth.slok.dev/v1
kind: PrometheusServiceLevel
metadata:
  name: api
  namespace: NS
spec:
  service: api
  slos:
    - name: availability
      objective: OBJECTIVE
      sli:
        events:
          errorQuery: sum(rate(http_requests_total{job="api",code=~"5.."}[{{.window}}]))
          totalQuery: sum(rate(http_requests_total{job="api"}[{{.window}}]))
      alerting: {}
`

func psl(namespace, objective string) string {
	return strings.NewReplacer("NS", namespace, "OBJECTIVE", objective).Replace(slothPSL)
}

const alertWindows = `apiVersion: sloth.slok.dev/v1
kind: AlertWindows
spec:
  sloPeriod: PERIOD
  page:
    quick: {errorBudgetPercent: 2, shortWindow: 5m, longWindow: 1h}
    slow: {errorBudgetPercent: 5, shortWindow: 30m, longWindow: 6h}
  ticket:
    quick: {errorBudgetPercent: 10, shortWindow: 2h, longWindow: 1d}
    slow: {errorBudgetPercent: 10, shortWindow: 6h, longWindow: 3d}
`

func TestSlothNamesAndPeriods(t *testing.T) {
	// In the namespace named after the service, the SLO keeps Sloth's name
	// and ids, and nothing differs.
	res, err := imp(t, Options{}, psl("api", "99.9"))
	if err != nil {
		t.Fatal(err)
	}
	s := res.SLOs[0]
	if s.Object.Namespace != "api" || s.Object.Name != "availability" || res.Differences() != 0 {
		t.Errorf("%s/%s with %d differences: %v", s.Object.Namespace, s.Object.Name, res.Differences(), s.Findings)
	}
	// Options.Namespace wins over the object's.
	res, err = imp(t, Options{Namespace: "api"}, psl("other", "99.9"))
	if err != nil {
		t.Fatal(err)
	}
	if s := res.SLOs[0].Object; s.Namespace != "api" || s.Name != "availability" {
		t.Errorf("-n api: %s/%s", s.Namespace, s.Name)
	}
	// Another namespace: <service>-<slo>, and the ids differ.
	res, err = imp(t, Options{}, psl("other", "99.9"))
	if err != nil {
		t.Fatal(err)
	}
	if s := res.SLOs[0]; s.Object.Name != "api-availability" || res.Differences() != 1 || s.Findings[0].Field != "service" {
		t.Errorf("%s, findings %v", s.Object.Name, s.Findings)
	}
	// The period: the AlertWindows' when there is one, --sloth-period's
	// when given, and a choice is needed between several.
	for _, tc := range []struct {
		opts    Options
		periods []string
		want    string
		err     string
	}{
		{want: "30d"},
		{periods: []string{"28d"}, want: "28d"},
		{opts: Options{SlothPeriod: "7d"}, periods: []string{"28d"}, want: "7d"},
		{periods: []string{"28d", "7d"}, err: "AlertWindows for the periods 28d, 7d: say which is the period of the Sloth SLOs"},
		{opts: Options{SlothPeriod: "28d"}, periods: []string{"28d", "7d"}, want: "28d"},
		{periods: []string{"28d", "4w"}, err: "a second AlertWindows for the period 4w"},
	} {
		docs := []string{psl("api", "99.9")}
		for _, p := range tc.periods {
			docs = append(docs, strings.Replace(alertWindows, "PERIOD", p, 1))
		}
		res, err := imp(t, tc.opts, docs...)
		switch {
		case tc.err != "":
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%+v %v: error %v, want %q", tc.opts, tc.periods, err, tc.err)
			}
		case err != nil:
			t.Errorf("%+v %v: %v", tc.opts, tc.periods, err)
		case string(res.SLOs[0].Object.Spec.Window) != tc.want:
			t.Errorf("%+v %v: window %s, want %s", tc.opts, tc.periods, res.SLOs[0].Object.Spec.Window, tc.want)
		}
	}
}

func TestImportErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		docs []string
		want string
	}{
		{"100%", []string{psl("api", "100")}, "spec.slos[0].objective: 100%: budgetgate's targets are below 100%"},
		{"a fraction", []string{psl("api", "0.999")}, "spec.slos[0].objective: 0.999%: budgetgate's targets are at least 50%"},
		{"not a number", []string{psl("api", "high")}, `"high" is not a number`},
		{"the same SLO twice", []string{psl("api", "99.9"), psl("api", "99")}, "ServiceLevelObjective api/availability would be written twice: for a.yaml, document 1"},
		{"not a selector", []string{`apiVersion: pyrra.dev/v1alpha1
kind: ServiceLevelObjective
metadata: {name: x}
spec:
  target: "99"
  window: 28d
  indicator:
    ratio:
      errors: {metric: 'rate(x[5m])'}
      total: {metric: x}
`}, `spec.indicator.ratio.errors.metric: "rate(x[5m])" is not a Prometheus selector budgetgate reads`},
		{"two OpenSLO objects of a name", []string{"apiVersion: openslo/v1\nkind: SLI\nmetadata: {name: x}\n", "apiVersion: openslo/v1\nkind: SLI\nmetadata: {name: x}\n"},
			`b.yaml: document 1 (line 1), openslo/v1 SLI: a second SLI named "x" (the first: a.yaml, document 1)`},
		{"a list that is not one", []string{"apiVersion: v1\nkind: List\nitems: {a: b}\n"}, "a.yaml: document 1 (line 3), v1 List: items is not a list"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := imp(t, Options{}, tc.docs...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one saying %q", err, tc.want)
			}
			var de *DocumentError
			if !errors.As(err, &de) && tc.name != "the same SLO twice" {
				t.Errorf("%v is no DocumentError", err)
			}
		})
	}
}

func TestUnknownFields(t *testing.T) {
	doc := strings.Replace(psl("api", "99.9"), "      alerting: {}\n", "      alerting: {}\n      budget: 5\n", 1)
	doc = strings.Replace(doc, "  service: api\n", "  service: api\n  owner: me\n", 1)
	res, err := imp(t, Options{}, doc)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range res.SLOs[0].Findings {
		if f.Severity == Difference {
			got = append(got, f.String())
		}
	}
	want := []string{
		"spec.owner: not a field import knows, so not carried over",
		"spec.slos[0].budget: not a field import knows, so not carried over",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
