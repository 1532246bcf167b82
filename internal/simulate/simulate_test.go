package simulate

import (
	"testing"
	"time"

	"github.com/budgetgate/budgetgate/internal/budget"
)

// An incident of 30 minutes at 20x under a fast-burn rule (1h/5m, 14.4x)
// with a 30-minute hold, replayed every 5 minutes: worked out by hand, the
// rule fires at 10:00 through 10:25 (both windows above 14.4x), the freeze
// starts at 10:00 and lifts at 10:55 (last firing 10:25 + 30m), the page is
// [10:00, 10:30), and of three releases the one at 10:20 is denied.
func TestReplayByHand(t *testing.T) {
	day := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	at := func(h, m int) time.Time { return day.Add(time.Duration(h)*time.Hour + time.Duration(m)*time.Minute) }
	o := budget.Objective{Target: 0.999, Window: 30 * 24 * time.Hour}
	p := budget.Policy{
		Name: "fast", MinDuration: 30 * time.Minute, StaleHold: 30 * time.Minute, OnMissingData: budget.MissingDataRelease,
		Rules: []budget.Rule{{Name: "fast-burn", Action: budget.ActionFreeze,
			BurnRate: &budget.BurnRateRule{LongWindow: time.Hour, ShortWindow: 5 * time.Minute, Factor: 14.4}}},
	}
	h := History{}
	for t0 := at(9, 0); !t0.After(at(12, 0)); t0 = t0.Add(5 * time.Minute) {
		ratio := 0.0005
		if !t0.Before(at(10, 0)) && t0.Before(at(10, 30)) {
			ratio = 0.02
		}
		m := budget.Measurements{}
		for _, w := range budget.Windows(o, p) {
			m[w] = budget.Measurement{ErrorRatio: ratio, Events: 1e6, OK: true}
		}
		m[o.Window] = budget.Measurement{ErrorRatio: 0.0005, Events: 1e8, OK: true}
		h[t0] = m
	}
	res, err := Replay(Input{Objective: o, Policy: p, Start: at(9, 0), End: at(12, 0), Step: 5 * time.Minute, History: h,
		Releases: []Release{{At: at(9, 50), Workload: "Deployment/checkout", Revision: "2"},
			{At: at(10, 20), Workload: "Deployment/checkout", Revision: "3"},
			{At: at(10, 56), Workload: "Deployment/checkout", Revision: "4"}}})
	if err != nil {
		t.Fatal(err)
	}
	want := []Period{{From: at(10, 0), To: at(10, 55), Rule: "fast-burn"}}
	if len(res.Freezes) != 1 || res.Freezes[0] != want[0] {
		t.Errorf("freezes %+v, want %+v", res.Freezes, want)
	}
	if len(res.Pages) != 1 || res.Pages[0] != (Period{From: at(10, 0), To: at(10, 30), Rule: "fast-burn"}) {
		t.Errorf("pages %+v, want [10:00, 10:30)", res.Pages)
	}
	if res.FrozenFor != 55*time.Minute {
		t.Errorf("frozen for %s, want 55m", res.FrozenFor)
	}
	if len(res.Denied) != 1 || res.Denied[0].Revision != "3" {
		t.Errorf("denied %+v, want revision 3 only", res.Denied)
	}
	if n := len(res.Points); n != 37 {
		t.Errorf("%d points, want 37 (3h at 5m, both ends)", n)
	}
	if !res.Points[12].Frozen || res.Points[23].Frozen || res.Points[22].Frozen != true {
		t.Errorf("frozen at 10:00 %v, 10:50 %v, 10:55 %v", res.Points[12].Frozen, res.Points[22].Frozen, res.Points[23].Frozen)
	}
}

// A freeze or a page still in force at the end is reported open.
func TestReplayOpenAtEnd(t *testing.T) {
	start := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	o := budget.Objective{Target: 0.99, Window: 7 * 24 * time.Hour}
	p := budget.DefaultPolicy()
	h := History{}
	for i := 0; i <= 12; i++ {
		m := budget.Measurements{}
		for _, w := range budget.Windows(o, p) {
			m[w] = budget.Measurement{ErrorRatio: 0.5, Events: 1e6, OK: true}
		}
		h[start.Add(time.Duration(i)*time.Minute)] = m
	}
	res, err := Replay(Input{Objective: o, Policy: p, Start: start, End: start.Add(12 * time.Minute), Step: time.Minute, History: h})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Freezes) != 1 || !res.Freezes[0].Open || res.Freezes[0].To != start.Add(12*time.Minute) {
		t.Errorf("freezes %+v, want one open to the end", res.Freezes)
	}
	if len(res.Pages) == 0 || !res.Pages[0].Open {
		t.Errorf("pages %+v, want open ones", res.Pages)
	}
}

func TestReplayRejects(t *testing.T) {
	t0 := time.Now()
	for _, in := range []Input{
		{Start: t0, End: t0.Add(time.Hour)},
		{Start: t0, End: t0, Step: time.Minute},
		{Start: t0, End: t0.Add(365 * 24 * time.Hour), Step: time.Second},
	} {
		if _, err := Replay(in); err == nil {
			t.Errorf("%+v: no error", in)
		}
	}
}

// History read from Prometheus comes in another time.Location than the
// replay's instants: they are matched as instants.
func TestReplayMatchesInstantsAcrossLocations(t *testing.T) {
	start := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	o := budget.Objective{Target: 0.99, Window: 7 * 24 * time.Hour}
	p := budget.DefaultPolicy()
	h := History{}
	zone := time.FixedZone("UTC+3", 3*3600)
	for i := 0; i <= 3; i++ {
		m := budget.Measurements{}
		for _, w := range budget.Windows(o, p) {
			m[w] = budget.Measurement{ErrorRatio: 0.5, Events: 1e6, OK: true}
		}
		h[start.Add(time.Duration(i)*time.Minute).In(zone)] = m
	}
	res, err := Replay(Input{Objective: o, Policy: p, Start: start, End: start.Add(3 * time.Minute), Step: time.Minute, History: h})
	if err != nil {
		t.Fatal(err)
	}
	for _, pt := range res.Points {
		if !pt.HasBudget {
			t.Errorf("%s: no data, though the history has it (in another location)", pt.At)
		}
	}
}
