// Package simulate replays an error-budget policy over an SLO's history:
// at every step it calls the budget engine (budget.Evaluate) with the
// measurements of that instant and the state the previous step returned,
// exactly as the controller does at every evaluation, and records when the
// policy would have frozen, paged, opened tickets and lifted. There is no
// second implementation of the policy here: what the replay decides is what
// the controller would have decided had it evaluated at those instants.
//
// It is pure: the history comes in as measurements by instant (the plugin
// reads them with range queries, sli.Prometheus.MeasureRange), and nothing
// here reads a clock.
package simulate

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/budgetgate/budgetgate/internal/budget"
)

// History is the measurements of an SLO by instant, every window the
// policy needs at each (a window without data is absent, as the controller
// sees it).
type History map[time.Time]budget.Measurements

// Input is what to replay.
type Input struct {
	Objective budget.Objective
	Policy    budget.Policy
	// Start, End and Step: the instants evaluated are Start, Start+Step, …,
	// up to End.
	Start, End time.Time
	Step       time.Duration
	History    History
	// Releases are instants at which a release (a new ReplicaSet or
	// ControllerRevision of a gated workload) was made; the replay says
	// which would have been denied.
	Releases []Release
}

// Release is one release of a gated workload.
type Release struct {
	At       time.Time
	Workload string // e.g. "Deployment/checkout"
	Revision string // e.g. "checkout-6d9f8c7b5" or "3"
}

// Point is the engine's decision at one instant.
type Point struct {
	At        time.Time
	Remaining float64 // budget left (fraction), NaN without data over the SLO window
	HasBudget bool
	// BurnRates by window, for the windows with data.
	BurnRates map[time.Duration]float64
	Frozen    bool
	// Firing lists the rules firing, in policy order.
	Firing []string
}

// Period is a span in which something held, [From, To); To is the end of
// the replay when it still held then (Open).
type Period struct {
	From, To time.Time
	Open     bool
	// Rule: the rule that started the freeze, or that paged or opened the ticket.
	Rule string
}

// Duration is To − From.
func (p Period) Duration() time.Duration { return p.To.Sub(p.From) }

// Result is what the policy would have done.
type Result struct {
	Points []Point
	// Freezes are the freezes of the policy (Enforce or DryRun alike).
	Freezes []Period
	// Pages and Tickets are the spans in which a Freeze rule (a page) or a
	// Warn rule (a ticket) fired: what the generated alerts would have done.
	Pages, Tickets []Period
	// FrozenFor is the total time frozen.
	FrozenFor time.Duration
	// Denied are the releases made while frozen: a new pod template would
	// have been denied (rollbacks and authorised hotfixes aside, which the
	// history cannot tell).
	Denied []Release
}

// Replay runs the policy over the history.
func Replay(in Input) (Result, error) {
	switch {
	case in.Step <= 0:
		return Result{}, errors.New("simulate: step must be positive")
	case !in.End.After(in.Start):
		return Result{}, fmt.Errorf("simulate: end %s is not after start %s", in.End.Format(time.RFC3339), in.Start.Format(time.RFC3339))
	case in.End.Sub(in.Start)/in.Step > 1_000_000:
		return Result{}, fmt.Errorf("simulate: %s at a step of %s is more than a million evaluations: raise the step", in.End.Sub(in.Start), in.Step)
	}
	var (
		res   Result
		state budget.State
	)
	// Instants are compared as instants: time.Time keys of another location
	// (UTC against local) would not match.
	byInstant := make(map[int64]budget.Measurements, len(in.History))
	for at, m := range in.History {
		byInstant[at.UnixNano()] = m
	}
	open := map[string]*Period{} // firing rule spans, by "page/"+rule or "ticket/"+rule
	var freeze *Period
	for at := in.Start; !at.After(in.End); at = at.Add(in.Step) {
		ev := budget.Evaluate(in.Objective, in.Policy, byInstant[at.UnixNano()], state, at)
		state = ev.State
		p := Point{At: at, BurnRates: map[time.Duration]float64{}, Frozen: ev.State.Frozen}
		if ev.Budget != nil {
			p.Remaining, p.HasBudget = ev.Budget.Remaining, true
		}
		for _, w := range ev.Windows {
			if w.OK {
				p.BurnRates[w.Window] = w.BurnRate
			}
		}
		firing := map[string]bool{}
		for _, r := range ev.Rules {
			if !r.Firing {
				continue
			}
			p.Firing = append(p.Firing, r.Name)
			kind := "ticket/"
			if r.Action == budget.ActionFreeze {
				kind = "page/"
			}
			firing[kind+r.Name] = true
			if open[kind+r.Name] == nil {
				open[kind+r.Name] = &Period{From: at, Rule: r.Name}
			}
		}
		for key, span := range open {
			if !firing[key] {
				span.To = at
				res.add(key, *span)
				delete(open, key)
			}
		}
		switch {
		case ev.State.Frozen && freeze == nil:
			freeze = &Period{From: at, Rule: ev.State.Rule}
		case !ev.State.Frozen && freeze != nil:
			freeze.To = at
			res.Freezes = append(res.Freezes, *freeze)
			freeze = nil
		}
		res.Points = append(res.Points, p)
	}
	end := res.Points[len(res.Points)-1].At
	for key, span := range open {
		span.To, span.Open = end, true
		res.add(key, *span)
	}
	if freeze != nil {
		freeze.To, freeze.Open = end, true
		res.Freezes = append(res.Freezes, *freeze)
	}
	byStart := func(a, b Period) int { return a.From.Compare(b.From) }
	slices.SortFunc(res.Pages, byStart)
	slices.SortFunc(res.Tickets, byStart)
	for _, f := range res.Freezes {
		res.FrozenFor += f.Duration()
	}
	for _, r := range in.Releases {
		for _, f := range res.Freezes {
			if !r.At.Before(f.From) && (r.At.Before(f.To) || f.Open && !r.At.After(f.To)) {
				res.Denied = append(res.Denied, r)
				break
			}
		}
	}
	slices.SortFunc(res.Denied, func(a, b Release) int { return a.At.Compare(b.At) })
	return res, nil
}

func (r *Result) add(key string, p Period) {
	if key[:5] == "page/" {
		r.Pages = append(r.Pages, p)
	} else {
		r.Tickets = append(r.Tickets, p)
	}
}
