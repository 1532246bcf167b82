package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/budgetgate/budgetgate/internal/budget"
	"github.com/budgetgate/budgetgate/internal/sli"
)

// indicatorOf is the SLI indicator budgetgate reads from sloObject's spec.
func indicatorOf(t *testing.T, namespace, name string) sli.Indicator {
	t.Helper()
	spec := sloObject(namespace, name, "1m", map[string]string{groupLabel: "g0"}).Object["spec"].(map[string]any)
	ratio := spec["indicator"].(map[string]any)["ratio"].(map[string]any)
	ind := sli.Indicator{Ratio: &sli.Ratio{Errors: ratio["errors"].(string), Total: ratio["total"].(string)}}
	if err := sli.ValidateIndicator(ind); err != nil {
		t.Fatalf("the benchmark's SLO indicator is invalid: %v", err)
	}
	return ind
}

func TestParseQuery(t *testing.T) {
	ind := indicatorOf(t, "scale-007", "slo-3")
	for _, w := range []time.Duration{5 * time.Minute, time.Hour, 30 * 24 * time.Hour} {
		q, err := sli.BuildQuery(ind, w)
		if err != nil {
			t.Fatal(err)
		}
		slo, window, err := parseQuery(q)
		if err != nil {
			t.Fatal(err)
		}
		if slo != "scale-007/slo-3" {
			t.Errorf("slo = %q", slo)
		}
		if d, err := time.ParseDuration(window); err == nil && d != w {
			t.Errorf("window %q, want %v", window, w)
		}
	}
	if _, _, err := parseQuery(`sum(rate(x[5m]))`); err == nil {
		t.Error("a query without slo= must be refused")
	}
	if _, _, err := parseQuery(`x{slo="a/b"}`); err == nil {
		t.Error("a query without a range must be refused")
	}
}

// The fake answers budgetgate's own Prometheus client: a burning SLO reads
// burnRatio over every window, a healthy one okRatio, and every window
// asked is one query counted for that SLO.
func TestFakePrometheusAnswersBudgetgate(t *testing.T) {
	f := newFakePrometheus(0)
	f.setBurning("scale-000/slo-0", true)
	srv := httptest.NewServer(f)
	defer srv.Close()
	src, err := sli.NewPrometheus(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	windows := budget.Windows(budget.Objective{Target: 0.999, Window: 30 * 24 * time.Hour}, budget.DefaultPolicy())
	if len(windows) != 8 {
		t.Fatalf("the built-in policy has %d windows, want 8", len(windows))
	}
	for _, tc := range []struct {
		slo  string
		want float64
	}{{"slo-0", burnRatio}, {"slo-1", okRatio}} {
		res, err := src.Measure(context.Background(), indicatorOf(t, "scale-000", tc.slo), windows)
		if err != nil {
			t.Fatal(err)
		}
		if len(res) != len(windows) {
			t.Fatalf("%s: %d windows answered, want %d", tc.slo, len(res), len(windows))
		}
		for w, r := range res {
			if r.ErrorRatio != tc.want || r.Events != fakeEvents {
				t.Errorf("%s over %v: %+v, want ratio %v", tc.slo, w, r, tc.want)
			}
		}
	}
	total, per, bad := f.counts()
	if total != 16 || per["scale-000/slo-0"] != 8 || per["scale-000/slo-1"] != 8 || bad != 0 {
		t.Fatalf("counts = %d %v %d; want 16, 8 each, 0", total, per, bad)
	}

	// The burn decides a freeze: 50x over 1h and 5m, far over 14.4x; healthy is 0.1x.
	ok, burn := okRatio/0.001, burnRatio/0.001
	if burn < 14.4 || ok >= 1 {
		t.Fatalf("burn rates %v and %v do not separate frozen from healthy", burn, ok)
	}

	f.setBurning("scale-000/slo-0", false)
	res, err := src.Measure(context.Background(), indicatorOf(t, "scale-000", "slo-0"), windows[:1])
	if err != nil || res[windows[0]].ErrorRatio != okRatio {
		t.Fatalf("after recovering: %v, %v", res, err)
	}
}

func TestFakePrometheusRefusesForeignQueries(t *testing.T) {
	f := newFakePrometheus(0)
	srv := httptest.NewServer(f)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/api/v1/query?query=up")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("status %d, want 400", resp.StatusCode)
	}
	if total, _, bad := f.counts(); total != 0 || bad != 1 {
		t.Fatalf("total %d bad %d, want 0 and 1", total, bad)
	}
}

func TestLayout(t *testing.T) {
	l := layout{namespaces: 100, perNamespace: 100, slosPerNamespace: 10, frozenEvery: 10}
	if l.workloads() != 10000 || l.slos() != 1000 || l.frozenSLOs() != 100 || l.frozenWorkloads() != 1000 {
		t.Fatalf("workloads %d slos %d frozen SLOs %d frozen workloads %d", l.workloads(), l.slos(), l.frozenSLOs(), l.frozenWorkloads())
	}
	none := layout{namespaces: 2, perNamespace: 10, slosPerNamespace: 10, frozenEvery: 0}
	if none.frozenSLOs() != 0 || none.frozenWorkloads() != 0 {
		t.Fatal("frozenEvery 0 freezes nothing")
	}
}

func TestAdmissionTargets(t *testing.T) {
	l := layout{namespaces: 100, perNamespace: 100, slosPerNamespace: 10, frozenEvery: 10}
	for _, frozen := range []bool{false, true} {
		got := admissionTargets(l, frozen, 1000)
		if len(got) != 1000 {
			t.Fatalf("frozen=%v: %d targets, want 1000", frozen, len(got))
		}
		seen := map[workloadRef]bool{}
		for _, w := range got {
			if seen[w] {
				t.Fatalf("frozen=%v: %v twice", frozen, w)
			}
			seen[w] = true
			var j int
			if _, err := fmt.Sscanf(w.name, "w-%d", &j); err != nil {
				t.Fatal(err)
			}
			if l.burns(j%l.slosPerNamespace) != frozen {
				t.Fatalf("frozen=%v: %v is in the wrong group", frozen, w)
			}
		}
		// Interleaved: the first 100 updates go to 100 namespaces.
		nss := map[string]bool{}
		for _, w := range got[:100] {
			nss[w.namespace] = true
		}
		if len(nss) != 100 {
			t.Errorf("frozen=%v: the first 100 targets are in %d namespaces, want 100", frozen, len(nss))
		}
	}
	if got := admissionTargets(l, true, 5000); len(got) != 1000 {
		t.Errorf("only 1,000 workloads are frozen: got %d targets", len(got))
	}
	names := []string{namespaceName(0), namespaceName(99), workloadName(7), sloName(3)}
	if !slices.Equal(names, []string{"scale-000", "scale-099", "w-0007", "slo-3"}) {
		t.Errorf("names = %v", names)
	}
}
