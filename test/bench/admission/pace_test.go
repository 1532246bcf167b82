package main

import (
	"context"
	"sync"
	"testing"
	"time"
)

func TestPacerDue(t *testing.T) {
	start := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		rate float64
		i    int
		want time.Duration
	}{
		{200, 0, 0},
		{200, 1, 5 * time.Millisecond},
		{200, 200, time.Second},
		{200, 2000, 10 * time.Second},
		{3, 1, 333333333 * time.Nanosecond},
		{3, 3, time.Second},
		{0.5, 1, 2 * time.Second},
	} {
		if got := (pacer{start: start, rate: tc.rate}).due(tc.i).Sub(start); got != tc.want {
			t.Errorf("rate %g: due(%d) = start+%v, want start+%v", tc.rate, tc.i, got, tc.want)
		}
	}
}

// fakeClock jumps to the time the pacer sleeps until: runLoad's bookkeeping
// can be checked without waiting or timing anything.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) SleepUntil(_ context.Context, t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.After(c.now) {
		c.now = t
	}
}

func TestRunLoad(t *testing.T) {
	start := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	clk := &fakeClock{now: start}
	var mu sync.Mutex
	calls := map[int]int{}
	samples := runLoad(context.Background(), clk, 200, 8, 1000, func(_ context.Context, i int) (outcome, string) {
		mu.Lock()
		calls[i]++
		mu.Unlock()
		if i%100 == 7 {
			return outcomeError, "boom"
		}
		return outcomeOK, ""
	})
	if len(samples) != 1000 || len(calls) != 1000 {
		t.Fatalf("%d samples from %d distinct requests, want 1000 of each", len(samples), len(calls))
	}
	errors := 0
	for i, s := range samples {
		if calls[i] != 1 {
			t.Errorf("request %d sent %d times", i, calls[i])
		}
		if want := start.Add(time.Duration(i) * 5 * time.Millisecond); !s.Due.Equal(want) {
			t.Errorf("sample %d due %v, want %v (samples must stay in request order)", i, s.Due, want)
		}
		if s.Start.Before(s.Due) || s.End.Before(s.Start) {
			t.Errorf("sample %d: due %v, start %v, end %v: out of order", i, s.Due, s.Start, s.End)
		}
		if s.Outcome == outcomeError {
			errors++
			if s.Err != "boom" {
				t.Errorf("sample %d: error %q, want boom", i, s.Err)
			}
		}
	}
	if errors != 10 {
		t.Errorf("%d errors recorded, want 10", errors)
	}
}

func TestRunLoadStopsWithContext(t *testing.T) {
	clk := &fakeClock{now: time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)}
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	sent := 0
	samples := runLoad(ctx, clk, 100, 2, 500, func(_ context.Context, i int) (outcome, string) {
		mu.Lock()
		defer mu.Unlock()
		sent++
		if sent == 50 {
			cancel()
		}
		return outcomeOK, ""
	})
	// The two workers may each have taken one more job before seeing the cancel.
	if len(samples) != sent || sent < 50 || sent > 52 {
		t.Errorf("%d samples for %d requests sent; want every sent one recorded, and the run stopped after the 50th", len(samples), sent)
	}
}

func TestAchievedRate(t *testing.T) {
	start := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	s := make([]sample, 0, 201)
	for i := range 201 {
		s = append(s, sample{Start: start.Add(time.Duration(i) * 5 * time.Millisecond)})
	}
	// Out of order, as workers finish.
	s[3], s[150] = s[150], s[3]
	if got := achievedRate(s); got < 199.999 || got > 200.001 {
		t.Errorf("achievedRate = %v, want 200", got)
	}
	if got := achievedRate(s[:1]); got != 0 {
		t.Errorf("achievedRate of one sample = %v, want 0", got)
	}
}

func TestSampleTimes(t *testing.T) {
	due := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	s := sample{Due: due, Start: due.Add(2 * time.Millisecond), End: due.Add(12 * time.Millisecond)}
	if s.Latency() != 10*time.Millisecond || s.Delay() != 2*time.Millisecond || s.FromDue() != 12*time.Millisecond {
		t.Errorf("latency %v, delay %v, from due %v; want 10ms, 2ms, 12ms", s.Latency(), s.Delay(), s.FromDue())
	}
}
