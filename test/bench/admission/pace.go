package main

import (
	"context"
	"sync"
	"time"
)

// pacer spaces requests evenly at a fixed rate from start: request i is due
// at start + i/rate. The load is open-loop: when a request is due it is
// handed to the next free worker whatever happened to earlier ones, so a slow
// response does not slow the offered load down (which would hide the slowness,
// the "coordinated omission" of closed-loop generators).
type pacer struct {
	start time.Time
	rate  float64 // requests per second, > 0
}

// due is when request i should be sent.
func (p pacer) due(i int) time.Time {
	return p.start.Add(time.Duration(float64(i) * float64(time.Second) / p.rate))
}

// sample is one request's timing and outcome.
type sample struct {
	Due, Start, End time.Time
	Outcome         outcome
	Err             string
}

// Latency is the request's own time, from sending to the answer.
func (s sample) Latency() time.Duration { return s.End.Sub(s.Start) }

// Delay is how late the request left: how long it waited for a free worker.
func (s sample) Delay() time.Duration { return s.Start.Sub(s.Due) }

// FromDue is the latency a client that wanted to send at Due saw, waiting for
// a worker included.
func (s sample) FromDue() time.Duration { return s.End.Sub(s.Due) }

// clock is time, replaceable in tests.
type clock interface {
	Now() time.Time
	// SleepUntil waits until t or ctx ends.
	SleepUntil(ctx context.Context, t time.Time)
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) SleepUntil(ctx context.Context, t time.Time) {
	d := time.Until(t)
	if d <= 0 {
		return
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
	case <-tm.C:
	}
}

// runLoad sends n requests at rate per second with workers concurrent
// workers; do(ctx, i) sends request i and classifies its answer. It returns
// the samples in request order. Requests not sent when ctx ends are dropped.
func runLoad(ctx context.Context, clk clock, rate float64, workers, n int,
	do func(ctx context.Context, i int) (outcome, string)) []sample {
	p := pacer{start: clk.Now(), rate: rate}
	jobs := make(chan int, n)
	samples := make([]sample, n)
	sent := make([]bool, n)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range jobs {
				if ctx.Err() != nil {
					continue // stopped: drop what is queued
				}
				start := clk.Now()
				o, msg := do(ctx, i)
				samples[i] = sample{Due: p.due(i), Start: start, End: clk.Now(), Outcome: o, Err: msg}
				sent[i] = true
			}
		})
	}
	for i := range n {
		clk.SleepUntil(ctx, p.due(i))
		if ctx.Err() != nil {
			break
		}
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	out := samples[:0]
	for i, s := range samples {
		if sent[i] {
			out = append(out, s)
		}
	}
	return out
}

// achievedRate is how many requests per second were actually sent: n-1
// intervals between the first and the last start.
func achievedRate(samples []sample) float64 {
	if len(samples) < 2 {
		return 0
	}
	first, last := samples[0].Start, samples[0].Start
	for _, s := range samples[1:] {
		if s.Start.Before(first) {
			first = s.Start
		}
		if s.Start.After(last) {
			last = s.Start
		}
	}
	span := last.Sub(first).Seconds()
	if span <= 0 {
		return 0
	}
	return float64(len(samples)-1) / span
}
