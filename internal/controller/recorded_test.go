package controller

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	slov1alpha1 "github.com/budgetgate/budgetgate/api/v1alpha1"
	"github.com/budgetgate/budgetgate/internal/budget"
	"github.com/budgetgate/budgetgate/internal/promconn"
	"github.com/budgetgate/budgetgate/internal/rules"
	"github.com/budgetgate/budgetgate/internal/sli"
)

// bothWays is a source that answers raw queries and the recorded query,
// counting each, with what the test says the recorded series hold.
type bothWays struct {
	recorded    map[time.Duration]sli.Result
	recordedErr error
	rawAsked    []time.Duration
	recAsked    int
}

func (b *bothWays) Measure(_ context.Context, _ sli.Indicator, windows []time.Duration) (map[time.Duration]sli.Result, error) {
	b.rawAsked = append(b.rawAsked, windows...)
	out := map[time.Duration]sli.Result{}
	for _, w := range windows {
		out[w] = sli.Result{ErrorRatio: 0.5, Events: 1000}
	}
	return out, nil
}

func (b *bothWays) MeasureRecorded(context.Context, sli.Recorded) (map[time.Duration]sli.Result, error) {
	b.recAsked++
	return b.recorded, b.recordedErr
}

// The controller reads recorded series only where they can be trusted, and
// measures the rest raw, saying why: rules not written, a recording younger
// than the SLO window it sums, series Prometheus has not produced yet,
// another rule's series under the SLO's labels.
func TestMeasureRecordedFallbacks(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 12, 3, 6, 0, 0, 0, time.UTC)
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	if err := slov1alpha1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	conns, err := promconn.FromAddress("http://prometheus:9090")
	if err != nil {
		t.Fatal(err)
	}
	slo := &slov1alpha1.ServiceLevelObjective{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "checkout"},
		Spec: slov1alpha1.ServiceLevelObjectiveSpec{Target: "99.9", Window: "30d", Indicator: slov1alpha1.Indicator{Ratio: &slov1alpha1.RatioIndicator{
			Errors: `http_requests_total{job="checkout",code=~"5.."}`, Total: `http_requests_total{job="checkout"}`}}},
	}
	newR := func(src sli.Source) *ServiceLevelObjectiveReconciler {
		return &ServiceLevelObjectiveReconciler{Client: fake.NewClientBuilder().WithScheme(s).Build(), Clock: clocktesting.NewFakeClock(now),
			Connections: conns, Sources: func(*promconn.Connection) (sli.Source, error) { return src, nil }}
	}
	in, err := newR(nil).readInputs(ctx, slo)
	if err != nil {
		t.Fatal(err)
	}
	windows := budget.Windows(in.objective, in.policy.Budget)
	rec, err := rules.RecordedQuery(slo, in.policy, rules.Options{})
	if err != nil {
		t.Fatal(err)
	}
	all := map[time.Duration]sli.Result{}
	for _, w := range windows {
		all[w] = sli.Result{ErrorRatio: 0.001, Events: 5000}
	}
	withRules := func(since time.Duration, hash string) *slov1alpha1.ServiceLevelObjective {
		c := slo.DeepCopy()
		c.Status.PrometheusRule = &slov1alpha1.PrometheusRuleStatus{Name: "budgetgate-checkout", RecordingHash: hash,
			RecordingSince: &metav1.Time{Time: now.Add(-since)}}
		setRulesCondition(c, metav1.ConditionTrue, slov1alpha1.ReasonRulesWritten, "")
		return c
	}
	const month = 30 * 24 * time.Hour
	without := func(m map[time.Duration]sli.Result, w time.Duration) map[time.Duration]sli.Result {
		out := map[time.Duration]sli.Result{}
		for k, v := range m {
			if k != w {
				out[k] = v
			}
		}
		return out
	}
	for _, tc := range []struct {
		name        string
		slo         *slov1alpha1.ServiceLevelObjective
		recorded    map[time.Duration]sli.Result
		recordedErr error
		wantRaw     []time.Duration
		wantQueries int
		wantWhy     string
	}{
		{"no rules", slo, all, nil, windows, len(windows), "alerting is off or its rules are not written"},
		{"rules of another indicator", withRules(2*month, "0000"), all, nil, windows, len(windows), "being rewritten"},
		{"all recorded", withRules(month+time.Hour, rec.Hash), all, nil, nil, 1, ""},
		{"recording younger than the SLO window", withRules(2*time.Hour, rec.Hash), all, nil, []time.Duration{month}, 2,
			"the recording rules have run for 2h, less than the 30d the SLO window's recorded ratio sums"},
		{"a window not recorded yet", withRules(month+time.Hour, rec.Hash), without(all, time.Hour), nil, []time.Duration{time.Hour}, 2,
			"no recorded series yet for 1h"},
		{"another rule writes under the SLO's labels", withRules(month+time.Hour, rec.Hash), nil,
			fmt.Errorf("sli: %w 1h", sli.ErrAmbiguousRecorded), windows, 1 + len(windows), "cannot be trusted"},
		{"recorded query fails", withRules(month+time.Hour, rec.Hash), nil, errors.New("503"), windows, 1 + len(windows), "reading the recorded series failed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := &bothWays{recorded: tc.recorded, recordedErr: tc.recordedErr}
			m := newR(src).measure(ctx, tc.slo, in, windows)
			if m.err != nil {
				t.Fatal(m.err)
			}
			if fmt.Sprint(sorted(src.rawAsked)) != fmt.Sprint(sorted(tc.wantRaw)) {
				t.Errorf("raw windows %v, want %v", src.rawAsked, tc.wantRaw)
			}
			if m.queries != tc.wantQueries {
				t.Errorf("queries %d, want %d", m.queries, tc.wantQueries)
			}
			st := sliSource(m)
			if tc.wantWhy == "" && st.Message != "" || !strings.Contains(st.Message, tc.wantWhy) {
				t.Errorf("status message %q, want it to say %q", st.Message, tc.wantWhy)
			}
			if len(st.Recorded)+len(st.Raw) != len(windows) || int(st.Queries) != tc.wantQueries {
				t.Errorf("status %+v does not account for the %d windows", st, len(windows))
			}
			for _, w := range windows {
				if !m.m[w].OK {
					t.Errorf("window %s has no data", w)
				}
			}
		})
	}
}

func sorted(ws []time.Duration) []time.Duration { return slices.Sorted(slices.Values(ws)) }

// retentionSource reports a retention.
type retentionSource struct {
	bothWays
	retention time.Duration
	asked     int
}

func (r *retentionSource) Retention(context.Context) (time.Duration, error) {
	r.asked++
	return r.retention, nil
}

// A Prometheus that keeps less than the SLO window gets a warning in status;
// its retention is asked once an hour, not at every evaluation.
func TestRetentionWarning(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 12, 3, 6, 0, 0, 0, time.UTC)
	slo := &slov1alpha1.ServiceLevelObjective{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "checkout"},
		Spec: slov1alpha1.ServiceLevelObjectiveSpec{Prometheus: &slov1alpha1.PrometheusSource{Connection: "mimir"}}}
	in := inputs{objective: budget.Objective{Target: 0.999, Window: 30 * 24 * time.Hour}}
	r := &ServiceLevelObjectiveReconciler{}
	for _, tc := range []struct {
		retention time.Duration
		want      string
	}{
		{15 * 24 * time.Hour, `Prometheus connection "mimir" keeps 15d of samples (storage.tsdb.retention.time), less than the SLO window 30d: the budget covers only the last 15d`},
		{0, ""}, // unknown: no warning
		{90 * 24 * time.Hour, ""},
	} {
		src := &retentionSource{retention: tc.retention}
		r.retentionChecks.Clear()
		got := strings.Join(r.retentionWarning(ctx, slo, in, measurement{source: src}, now), "")
		if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
			t.Errorf("retention %s: warning %q, want %q", tc.retention, got, tc.want)
		}
		r.retentionWarning(ctx, slo, in, measurement{source: src}, now.Add(30*time.Minute))
		r.retentionWarning(ctx, slo, in, measurement{source: src}, now.Add(61*time.Minute))
		if src.asked != 2 {
			t.Errorf("retention asked %d times in 61 minutes, want 2", src.asked)
		}
	}
}
