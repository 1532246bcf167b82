package prometheustest

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestWriteOpenMetrics(t *testing.T) {
	t0 := time.Unix(1782907200, 0)
	var b strings.Builder
	err := WriteOpenMetrics(&b, Family{
		Name: "requests", Type: "counter",
		Series: []Series{{
			Metric:  `requests_total{code="200"}`,
			Samples: []Sample{{t0, 0}, {t0.Add(1500 * time.Millisecond), 446400000.5}},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := "# TYPE requests counter\n" +
		"requests_total{code=\"200\"} 0 1782907200\n" +
		"requests_total{code=\"200\"} 446400000.5 1782907201.5\n" +
		"# EOF\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}

func TestStart(t *testing.T) {
	bins := Require(t)
	dataDir := t.TempDir()
	now := time.Now().Truncate(time.Minute)
	bins.Backfill(t, dataDir, Family{
		Name: "demo", Type: "gauge",
		Series: []Series{{Metric: `demo{a="b"}`, Samples: []Sample{{now.Add(-time.Hour), 1}, {now.Add(-time.Minute), 42}}}},
	})
	srv := bins.Start(t, Options{DataDir: dataDir})
	resp, err := http.Get(srv.URL + "/api/v1/query?query=demo&time=" + now.Format(time.RFC3339))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"42"`) {
		t.Errorf("query demo: %s %s", resp.Status, body)
	}
}
