package sli

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/prometheus/common/model"

	prometheustest "github.com/budgetgate/budgetgate/test/prometheus"
)

func TestDecodeRecorded(t *testing.T) {
	q := Recorded{WithEvents: true, Classify: func(m model.Metric) (time.Duration, bool, bool) {
		w, err := model.ParseDuration(string(m["sloth_window"]))
		if err != nil {
			return 0, false, false
		}
		switch m[model.MetricNameLabel] {
		case "ratio":
			return time.Duration(w), false, true
		case "events":
			return time.Duration(w), true, true
		}
		return 0, false, false
	}}
	s := func(name, window string, v float64) *model.Sample {
		return &model.Sample{Metric: model.Metric{model.MetricNameLabel: model.LabelValue(name), "sloth_window": model.LabelValue(window)}, Value: model.SampleValue(v)}
	}
	got, err := DecodeRecorded(q, model.Vector{
		s("ratio", "1h", 0.02), s("events", "1h", 6000), // a window
		s("ratio", "5m", -1e-9), s("events", "5m", 500), // float noise below 0: 0
		s("ratio", "6h", math.NaN()), s("events", "6h", 100), // no data
		s("ratio", "1d", 0.001),                        // its count missing: no data
		s("ratio", "3d", 0.001), s("events", "3d", -1), // a negative count: no data
		s("ratio", "30d", 1.0000001), s("events", "30d", 9), // clamped to 1
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[time.Duration]Result{time.Hour: {0.02, 6000}, 5 * time.Minute: {0, 500}, 30 * 24 * time.Hour: {1, 9}}
	if len(got) != len(want) {
		t.Errorf("got %v, want %v", got, want)
	}
	for w, r := range want {
		if got[w] != r {
			t.Errorf("%s: %+v, want %+v", w, got[w], r)
		}
	}
	// Two series for one window: none can be trusted.
	if _, err := DecodeRecorded(q, model.Vector{s("ratio", "1h", 0), s("ratio", "1h", 0.5)}); !errors.Is(err, ErrAmbiguousRecorded) {
		t.Errorf("two ratios for 1h: %v", err)
	}
	if _, err := DecodeRecorded(q, model.Vector{s("other", "1h", 0)}); err == nil {
		t.Error("a series the query should not return is accepted")
	}
	// Without counts (a query indicator without queryEvents): Events -1.
	q.WithEvents = false
	if got, err := DecodeRecorded(q, model.Vector{s("ratio", "1h", 0.1)}); err != nil || got[time.Hour] != (Result{0.1, -1}) {
		t.Errorf("without counts: %v, %v", got, err)
	}
}

// The retention a real Prometheus reports through its flags API.
func TestRetentionOfRealPrometheus(t *testing.T) {
	bins := prometheustest.Require(t)
	srv := bins.Start(t, prometheustest.Options{Retention: "7d"})
	p, err := NewPrometheus(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	got, err := p.Retention(context.Background())
	if err != nil || got != 7*24*time.Hour {
		t.Errorf("Retention() = %s, %v; want 168h", got, err)
	}
}

// A range over a real Prometheus decodes, at every step, to what Measure
// returns at that instant.
func TestMeasureRangeEqualsMeasure(t *testing.T) {
	bins := prometheustest.Require(t)
	end := time.Now().Truncate(time.Minute).Add(-10 * time.Minute)
	h := newHistory(end)
	dataDir := t.TempDir()
	bins.Backfill(t, dataDir, h.families()...)
	srv := bins.Start(t, prometheustest.Options{DataDir: dataDir})
	p, err := NewPrometheus(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	windows := []time.Duration{5 * time.Minute, time.Hour, 30 * 24 * time.Hour}
	start := end.Add(-2 * time.Hour)
	got, err := p.MeasureRange(context.Background(), ratioIndicator, windows, start, end, 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	for at := start; !at.After(end); at = at.Add(30 * time.Minute) {
		at := at
		inst, err := NewPrometheus(srv.URL, WithClock(func() time.Time { return at }))
		if err != nil {
			t.Fatal(err)
		}
		want, err := inst.Measure(context.Background(), ratioIndicator, windows)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range windows {
			g, ok := got[w][at]
			if !ok || math.Abs(g.ErrorRatio-want[w].ErrorRatio) > 1e-12 || math.Abs(g.Events-want[w].Events) > 1e-6 {
				t.Errorf("%s at %s: range %+v (%v), instant %+v", w, at.Format(time.Kitchen), g, ok, want[w])
			}
		}
	}
	if len(got[time.Hour]) != 13 {
		t.Errorf("%d instants over 2h at 10m, want 13", len(got[time.Hour]))
	}

	// 14,401 instants, more than the 11,000 points Prometheus answers for one
	// range query: asked in pieces on the same grid, none lost or doubled.
	fine, err := p.MeasureRange(context.Background(), ratioIndicator, windows, start, end, 500*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range windows {
		if len(fine[w]) != 14401 {
			t.Errorf("%s: %d instants over 2h at 500ms, want 14401", w, len(fine[w]))
		}
		for at, r := range got[w] {
			if f, ok := fine[w][at]; !ok || f != r {
				t.Errorf("%s at %s: %+v at 500ms, %+v at 10m", w, at.Format(time.Kitchen), f, r)
			}
		}
	}
}
