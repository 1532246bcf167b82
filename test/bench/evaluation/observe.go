package main

import (
	"context"
	"math"
	"slices"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	slov1alpha1 "github.com/budgetgate/budgetgate/api/v1alpha1"
	"github.com/budgetgate/budgetgate/internal/controller"
)

// evaluation is one SLO evaluation as the benchmark saw it: the status
// write that carried a new lastEvaluationTime, when its watch event
// arrived, and where the evaluation read its windows.
type evaluation struct {
	key      string
	uid      types.UID
	arrived  time.Time
	last     time.Time // status.lastEvaluationTime (whole seconds)
	previous time.Time // the SLO's lastEvaluationTime before (zero: none seen)
	queries  int32
	recorded int
	raw      int
}

// lagAfterDue is how long after its due instant an evaluation's status was
// written: the controller evaluates every SLO on its own phase of the
// interval (controller.Spread), so the due instant is the last phase
// instant at or before t.
func lagAfterDue(interval time.Duration, uid types.UID, t time.Time) time.Duration {
	d := controller.Spread(interval, uid, t) % interval
	return (interval - d) % interval
}

// recorder keeps every evaluation the SLO watch shows.
type recorder struct {
	mu    sync.Mutex
	evals []evaluation
	last  map[string]time.Time
}

func newRecorder() *recorder { return &recorder{last: map[string]time.Time{}} }

func (r *recorder) observe(slo *slov1alpha1.ServiceLevelObjective, at time.Time) {
	if slo.Status.LastEvaluationTime == nil {
		return
	}
	key := slo.Namespace + "/" + slo.Name
	last := slo.Status.LastEvaluationTime.Time
	r.mu.Lock()
	defer r.mu.Unlock()
	prev, seen := r.last[key]
	if seen && !last.After(prev) {
		return // another status write (the benchmark's own recordingSince)
	}
	r.last[key] = last
	if !seen {
		return // the first sight after a (re)list is not an evaluation we saw happen
	}
	e := evaluation{key: key, uid: slo.UID, arrived: at, last: last, previous: prev}
	if s := slo.Status.SLISource; s != nil {
		e.queries, e.recorded, e.raw = s.Queries, len(s.Recorded), len(s.Raw)
	}
	r.evals = append(r.evals, e)
}

// between returns the evaluations whose status arrived in (from, to].
func (r *recorder) between(from, to time.Time) []evaluation {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []evaluation
	for _, e := range r.evals {
		if e.arrived.After(from) && !e.arrived.After(to) {
			out = append(out, e)
		}
	}
	return out
}

// watchSLOs feeds rec from a watch of every SLO until ctx ends, listing
// again whenever the watch ends.
func watchSLOs(ctx context.Context, c client.WithWatch, rec *recorder) {
	for ctx.Err() == nil {
		list := &slov1alpha1.ServiceLevelObjectiveList{}
		if err := c.List(ctx, list); err != nil {
			sleep(ctx, time.Second)
			continue
		}
		now := time.Now()
		for i := range list.Items {
			rec.observe(&list.Items[i], now)
		}
		w, err := c.Watch(ctx, &slov1alpha1.ServiceLevelObjectiveList{},
			&client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: list.ResourceVersion}})
		if err != nil {
			sleep(ctx, time.Second)
			continue
		}
		for ev := range w.ResultChan() {
			if ev.Type != watch.Added && ev.Type != watch.Modified {
				continue
			}
			if slo, ok := ev.Object.(*slov1alpha1.ServiceLevelObjective); ok {
				rec.observe(slo, time.Now())
			}
		}
		w.Stop()
	}
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// lagStats summarises the evaluations of a measured window.
type lagStats struct {
	// Evaluations seen (status writes with a new lastEvaluationTime).
	Evaluations int `json:"evaluations"`
	// LagSeconds: from the SLO's due instant to its status written, ms
	// resolution (the watch event's arrival).
	LagP50 float64 `json:"lagP50Seconds"`
	LagP90 float64 `json:"lagP90Seconds"`
	LagP99 float64 `json:"lagP99Seconds"`
	LagMax float64 `json:"lagMaxSeconds"`
	// Gap: status.lastEvaluationTime minus the SLO's previous one (whole
	// seconds): the interval as each SLO experienced it.
	GapP50 float64 `json:"gapP50Seconds"`
	GapP99 float64 `json:"gapP99Seconds"`
	GapMax float64 `json:"gapMaxSeconds"`
	// Late: evaluations whose gap exceeded the interval by more than 2s.
	Late int `json:"lateOver2s"`
	// QueriesPerEvaluation as status.sliSource says (mean).
	QueriesPerEvaluation float64 `json:"statusQueriesPerEvaluation"`
	// AllRecorded: evaluations that read every window from recorded series.
	AllRecorded int `json:"allRecorded"`
}

func summarize(evals []evaluation, interval time.Duration) lagStats {
	st := lagStats{Evaluations: len(evals)}
	if len(evals) == 0 {
		return st
	}
	var lags, gaps []float64
	queries := 0.0
	for _, e := range evals {
		lags = append(lags, lagAfterDue(interval, e.uid, e.arrived).Seconds())
		if !e.previous.IsZero() {
			g := e.last.Sub(e.previous).Seconds()
			gaps = append(gaps, g)
			if g > (interval + 2*time.Second).Seconds() {
				st.Late++
			}
		}
		queries += float64(e.queries)
		if e.raw == 0 && e.recorded > 0 {
			st.AllRecorded++
		}
	}
	st.QueriesPerEvaluation = round3(queries / float64(len(evals)))
	st.LagP50, st.LagP90, st.LagP99, st.LagMax = percentile(lags, 0.5), percentile(lags, 0.9), percentile(lags, 0.99), percentile(lags, 1)
	st.GapP50, st.GapP99, st.GapMax = percentile(gaps, 0.5), percentile(gaps, 0.99), percentile(gaps, 1)
	return st
}

// percentile is the nearest-rank percentile of xs (q in (0,1]), rounded to
// the millisecond.
func percentile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	i := int(math.Ceil(q*float64(len(s)))) - 1
	i = max(0, min(i, len(s)-1))
	return round3(s[i])
}

func round3(x float64) float64 { return math.Round(x*1000) / 1000 }
