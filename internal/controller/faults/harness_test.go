package faults_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/model"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	slov1alpha1 "github.com/budgetgate/budgetgate/api/v1alpha1"
	"github.com/budgetgate/budgetgate/internal/controller"
	"github.com/budgetgate/budgetgate/internal/promconn"
	"github.com/budgetgate/budgetgate/internal/sli"
)

// The numbers of every scenario. An evaluation runs every interval of the
// fake clock; the policy freezes on a 14.4x burn over 1h and 5m and on an
// exhausted budget, holds freezes minDuration, and keeps the decisions of
// rules without data for staleHold.
const (
	interval     = time.Minute
	minDuration  = 3 * time.Minute
	staleHold    = 2 * time.Minute
	queryTimeout = 200 * time.Millisecond
	sloWindow    = 30 * 24 * time.Hour
)

// t0 is the fake clock's time at an SLO's first evaluation.
var t0 = time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)

// sloState is what Prometheus says about the SLO when it answers.
type sloState string

const (
	// healthy: 0.01% errors everywhere, burn 0.1x, budget 90% left.
	healthy sloState = "healthy"
	// burning: 2% errors over 1h and 5m, a 20x burn; frozen by fast-burn.
	burning sloState = "frozen by fast-burn"
	// exhausted: 0.2% errors over 30d, budget -100%; frozen by budget-exhausted.
	exhausted sloState = "frozen by budget-exhausted"
)

func ratiosOf(s sloState) map[time.Duration]float64 {
	switch s {
	case burning:
		return map[time.Duration]float64{sloWindow: 0.0001, time.Hour: 0.02, 5 * time.Minute: 0.02}
	case exhausted:
		return map[time.Duration]float64{sloWindow: 0.002, time.Hour: 0.0001, 5 * time.Minute: 0.0001}
	}
	return map[time.Duration]float64{sloWindow: 0.0001, time.Hour: 0.0001, 5 * time.Minute: 0.0001}
}

// Phases of a scenario, in evaluations: Prometheus answers with the SLO's
// state, then fails, then answers again with a healthy service (the burn
// stopped while Prometheus was failing).
const (
	warmUp   = 2
	faulty   = 8
	recovery = 5
)

// variant is one SLO under one fault.
type variant struct {
	state   sloState
	missing slov1alpha1.MissingDataAction
}

func (v variant) String() string { return fmt.Sprintf("%s, onMissingData %s", v.state, v.missing) }

// scriptFor is the answer of each evaluation.
func scriptFor(f fault, s sloState) []step {
	var out []step
	for range warmUp {
		out = append(out, step{fault: answer, ratios: ratiosOf(s)})
	}
	for i := range faulty {
		switch {
		case f == flapping && i%2 == 0:
			out = append(out, step{fault: serverError})
		case f == flapping:
			out = append(out, step{fault: answer, ratios: ratiosOf(s)})
		default:
			out = append(out, step{fault: f, ratios: ratiosOf(s)})
		}
	}
	for range recovery {
		out = append(out, step{fault: answer, ratios: ratiosOf(healthy)})
	}
	return out
}

// outcome is everything a scenario left behind.
type outcome struct {
	variant variant
	slo     string
	// statuses has one entry per evaluation, in order, as the watch saw them.
	statuses []slov1alpha1.ServiceLevelObjectiveStatus
	// queries are the queries the fake Prometheus received.
	queries []query
	// events are the reasons of the Events on the SLO, in order.
	events []string
	// queryFailures is budgetgate_slo_evaluation_errors_total{reason="QueryFailed"}.
	queryFailures float64
	// frozenGauge is budgetgate_slo_frozen at the end.
	frozenGauge float64
	// minDuration is the policy's.
	minDuration time.Duration
}

// runScenario runs one SLO through script with its own manager, clock and
// fake Prometheus, one evaluation per step. The manager is the real one
// (controller.Setup), with these test hooks: the fake clock, a fake Prometheus
// at --prometheus-address, and RequeueAfter, which counts evaluations, steps
// the clock by the evaluation interval, switches Prometheus to the next step,
// and requeues at once, so that each evaluation is one step of the script.
// Each scenario has its own namespace and manager, so scenarios run in
// parallel without sharing a clock.
// tune, when set, changes the policy before it is created.
func runScenario(ctx context.Context, v variant, script []step, tune func(*slov1alpha1.ErrorBudgetPolicySpec)) (out outcome, err error) {
	out.variant = v
	ctx, stop := context.WithCancel(ctx)
	defer stop()

	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "faults-"}}
	if err := k8sClient.Create(ctx, ns); err != nil {
		return out, err
	}
	policy := faultPolicy(ns.Name, v.missing)
	if tune != nil {
		tune(&policy.Spec)
	}
	md, err := model.ParseDuration(string(policy.Spec.Freeze.MinDuration))
	if err != nil {
		return out, err
	}
	out.minDuration = time.Duration(md)
	if err := k8sClient.Create(ctx, policy); err != nil {
		return out, err
	}
	prom, err := newFaultProm()
	if err != nil {
		return out, err
	}
	defer prom.close()
	if err := prom.set(script[0]); err != nil {
		return out, err
	}

	clock := clocktesting.NewFakeClock(t0)
	var (
		mu        sync.Mutex
		evaluated int
		hookErr   error
		finished  = make(chan struct{})
	)
	requeue := func(iv time.Duration) time.Duration {
		mu.Lock()
		defer mu.Unlock()
		evaluated++
		if evaluated == len(script) {
			close(finished)
		}
		if evaluated >= len(script) {
			return time.Hour
		}
		if iv != interval {
			hookErr = errors.Join(hookErr, fmt.Errorf("evaluation interval %s, want %s", iv, interval))
		}
		clock.Step(iv)
		if err := prom.set(script[evaluated]); err != nil {
			hookErr = errors.Join(hookErr, err)
		}
		return time.Millisecond
	}

	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		// Each scenario's manager sees its own namespace (and the
		// cluster-scoped policies) only.
		Cache:      cache.Options{DefaultNamespaces: map[string]cache.Config{ns.Name: {}}},
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
		NewClient:  freshSLOClient,
	})
	if err != nil {
		return out, err
	}
	if err := controller.Setup(ctx, mgr, controller.Config{
		PrometheusAddress: prom.URL(),
		QueryTimeout:      queryTimeout,
		Sources:           controller.PrometheusSources(sli.WithTimeout(queryTimeout), sli.WithClock(clock.Now)),
		Clock:             clock,
		RequeueAfter:      requeue,
	}); err != nil {
		return out, err
	}
	mgrDone := make(chan error, 1)
	go func() { mgrDone <- mgr.Start(ctx) }()
	defer func() {
		stop()
		err = errors.Join(err, <-mgrDone)
	}()

	w, err := k8sClient.Watch(ctx, &slov1alpha1.ServiceLevelObjectiveList{}, client.InNamespace(ns.Name))
	if err != nil {
		return out, err
	}
	defer w.Stop()
	slo := faultSLO(ns.Name, policy.Name)
	out.slo = ns.Name + "/" + slo.Name
	if err := k8sClient.Create(ctx, slo); err != nil {
		return out, err
	}

	// One status per evaluation: each one has its own lastEvaluationTime.
	deadline := time.After(60 * time.Second)
	var last *metav1.Time
	for len(out.statuses) < len(script) {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				return out, errors.New("watch closed")
			}
			if ev.Type == watch.Error {
				return out, fmt.Errorf("watch: %v", ev.Object)
			}
			got, ok := ev.Object.(*slov1alpha1.ServiceLevelObjective)
			if !ok || got.Status.LastEvaluationTime == nil {
				continue
			}
			if last != nil && got.Status.LastEvaluationTime.Equal(last) {
				return out, fmt.Errorf("evaluated twice at %s", last.UTC().Format(time.RFC3339))
			}
			last = got.Status.LastEvaluationTime
			out.statuses = append(out.statuses, *got.Status.DeepCopy())
		case <-deadline:
			return out, fmt.Errorf("only %d of %d evaluations within 60s", len(out.statuses), len(script))
		}
	}
	select {
	case <-finished:
	case <-time.After(10 * time.Second):
		return out, errors.New("the last evaluation did not end")
	}

	// Events are sent asynchronously: wait until every transition has one.
	transitions := len(freezeTransitions(out.statuses))
	for start := time.Now(); ; time.Sleep(50 * time.Millisecond) {
		if out.events, err = eventReasons(ctx, ns.Name, slo.Name); err != nil {
			return out, err
		}
		if len(out.events) >= transitions || time.Since(start) > 10*time.Second {
			break
		}
	}
	out.queries = prom.received()
	out.queryFailures = metricValue("budgetgate_slo_evaluation_errors_total", ns.Name, slo.Name, "reason", slov1alpha1.ReasonQueryFailed)
	out.frozenGauge = metricValue("budgetgate_slo_frozen", ns.Name, slo.Name, "", "")
	mu.Lock()
	defer mu.Unlock()
	if evaluated != len(script) {
		return out, fmt.Errorf("%d evaluations, want %d", evaluated, len(script))
	}
	return out, hookErr
}

// freshSLOClient is the manager's client, except that it reads
// ServiceLevelObjectives from the API server rather than from the cache: the
// scenarios evaluate back to back, and an evaluation must never start from a
// status the cache has not seen yet. (In production, evaluationInterval is at
// least 10s; the cache is milliseconds behind.)
func freshSLOClient(c *rest.Config, opts client.Options) (client.Client, error) {
	cached, err := client.New(c, opts)
	if err != nil {
		return nil, err
	}
	direct, err := client.New(c, client.Options{Scheme: opts.Scheme, Mapper: opts.Mapper})
	if err != nil {
		return nil, err
	}
	return freshSLOs{Client: cached, direct: direct}, nil
}

type freshSLOs struct {
	client.Client
	direct client.Reader
}

func (c freshSLOs) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if _, ok := obj.(*slov1alpha1.ServiceLevelObjective); ok {
		return c.direct.Get(ctx, key, obj, opts...)
	}
	return c.Client.Get(ctx, key, obj, opts...)
}

// faultPolicy freezes on a fast burn and on an exhausted budget.
func faultPolicy(name string, missing slov1alpha1.MissingDataAction) *slov1alpha1.ErrorBudgetPolicy {
	return &slov1alpha1.ErrorBudgetPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: slov1alpha1.ErrorBudgetPolicySpec{
			Rules: []slov1alpha1.PolicyRule{{
				Name:     "fast-burn",
				BurnRate: &slov1alpha1.BurnRateCondition{LongWindow: "1h", ShortWindow: "5m", Factor: ptr.To(slov1alpha1.Decimal("14.4"))},
				Action:   slov1alpha1.ActionFreeze,
			}, {
				Name:                 "budget-exhausted",
				BudgetRemainingBelow: ptr.To(slov1alpha1.Decimal("0")),
				Action:               slov1alpha1.ActionFreeze,
			}},
			Freeze:        slov1alpha1.FreezeSettings{MinDuration: "3m"},
			OnMissingData: missing,
			StaleHold:     "2m",
		},
	}
}

// faultSLO is a 99.9% over 30d ratio SLO evaluated every minute.
func faultSLO(namespace, policy string) *slov1alpha1.ServiceLevelObjective {
	return &slov1alpha1.ServiceLevelObjective{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "checkout"},
		Spec: slov1alpha1.ServiceLevelObjectiveSpec{
			Target: "99.9",
			Window: "30d",
			Indicator: slov1alpha1.Indicator{Ratio: &slov1alpha1.RatioIndicator{
				Errors: `http_requests_total{job="checkout",code=~"5.."}`,
				Total:  `http_requests_total{job="checkout"}`,
			}},
			PolicyRef:          &slov1alpha1.PolicyReference{Name: policy},
			EvaluationInterval: "1m",
		},
	}
}

// eventReasons lists the reasons of the Events regarding the SLO, oldest first,
// one per occurrence.
func eventReasons(ctx context.Context, namespace, name string) ([]string, error) {
	list := &eventsv1.EventList{}
	if err := k8sClient.List(ctx, list, client.InNamespace(namespace)); err != nil {
		return nil, err
	}
	var out []string
	for _, e := range list.Items {
		if e.Regarding.Name != name {
			continue
		}
		n := 1
		if e.Series != nil {
			n = int(e.Series.Count)
		}
		for range n {
			out = append(out, e.Reason)
		}
	}
	return out, nil
}

// metricValue reads a series of the manager's metrics registry by namespace,
// name and one more label (none when key is "").
func metricValue(family, namespace, name, key, value string) float64 {
	mfs, err := ctrlmetrics.Registry.Gather()
	if err != nil {
		return -1
	}
	for _, mf := range mfs {
		if mf.GetName() != family {
			continue
		}
		for _, m := range mf.GetMetric() {
			if label(m, "namespace") == namespace && label(m, "name") == name && (key == "" || label(m, key) == value) {
				if m.GetCounter() != nil {
					return m.GetCounter().GetValue()
				}
				return m.GetGauge().GetValue()
			}
		}
	}
	return 0
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// transition is a freeze starting or lifting, at an evaluation.
type transition struct {
	eval    int
	at      time.Time
	started bool
}

func freezeTransitions(statuses []slov1alpha1.ServiceLevelObjectiveStatus) []transition {
	var out []transition
	frozen := false
	for i, st := range statuses {
		if st.Freeze.Active != frozen {
			frozen = st.Freeze.Active
			out = append(out, transition{eval: i, at: st.LastEvaluationTime.UTC(), started: frozen})
		}
	}
	return out
}

// timeline writes one character per evaluation, with | between the phases.
func timeline(statuses []slov1alpha1.ServiceLevelObjectiveStatus, char func(*slov1alpha1.ServiceLevelObjectiveStatus) byte) string {
	var b strings.Builder
	for i := range statuses {
		if i == warmUp || i == warmUp+faulty {
			b.WriteByte('|')
		}
		b.WriteByte(char(&statuses[i]))
	}
	return b.String()
}

func cond(st *slov1alpha1.ServiceLevelObjectiveStatus, t string) metav1.Condition {
	if c := meta.FindStatusCondition(st.Conditions, t); c != nil {
		return *c
	}
	return metav1.Condition{Type: t, Status: metav1.ConditionUnknown}
}

// The characters of the timelines.
var (
	dataChar = map[string]byte{
		slov1alpha1.ReasonAllWindowsPresent: 'A', slov1alpha1.ReasonQueryFailed: 'Q',
		slov1alpha1.ReasonNoData: 'N', slov1alpha1.ReasonPartialData: 'P',
	}
	readyChar  = map[string]byte{slov1alpha1.ReasonEvaluated: 'E', slov1alpha1.ReasonQueryFailed: 'Q'}
	frozenChar = map[string]byte{
		slov1alpha1.ReasonWithinBudget: '.', slov1alpha1.ReasonBudgetBurning: 'B', slov1alpha1.ReasonHeldWithoutData: 'H',
	}
)

func charOf(m map[string]byte, reason string) byte {
	if c, ok := m[reason]; ok {
		return c
	}
	return '?'
}

// dataLine: the DataAvailable reason of each evaluation.
func dataLine(st *slov1alpha1.ServiceLevelObjectiveStatus) byte {
	return charOf(dataChar, cond(st, slov1alpha1.ConditionDataAvailable).Reason)
}

// readyLine: the Ready reason (E Evaluated, Q QueryFailed).
func readyLine(st *slov1alpha1.ServiceLevelObjectiveStatus) byte {
	return charOf(readyChar, cond(st, slov1alpha1.ConditionReady).Reason)
}

// frozenLine: the Frozen reason (. WithinBudget, B BudgetBurning, H HeldWithoutData).
func frozenLine(st *slov1alpha1.ServiceLevelObjectiveStatus) byte {
	return charOf(frozenChar, cond(st, slov1alpha1.ConditionFrozen).Reason)
}

// budgetLine: b a measured budget, c one carried from an earlier evaluation, - none.
func budgetLine(st *slov1alpha1.ServiceLevelObjectiveStatus) byte {
	switch {
	case st.ErrorBudget == nil:
		return '-'
	case carriedFrom(st) != nil:
		return 'c'
	}
	return 'b'
}

// failuresLine: status.consecutiveQueryFailures (9 and up as +).
func failuresLine(st *slov1alpha1.ServiceLevelObjectiveStatus) byte {
	if st.ConsecutiveQueryFailures > 8 {
		return '+'
	}
	return byte('0' + st.ConsecutiveQueryFailures)
}

func carriedFrom(st *slov1alpha1.ServiceLevelObjectiveStatus) *metav1.Time {
	for _, w := range st.BurnRates {
		if w.Window == "30d" {
			return w.CarriedFrom
		}
	}
	return nil
}

func rule(st *slov1alpha1.ServiceLevelObjectiveStatus, name string) slov1alpha1.RuleStatus {
	for _, r := range st.Rules {
		if r.Name == name {
			return r
		}
	}
	return slov1alpha1.RuleStatus{}
}

// evaluationCounts runs slowSLOs SLOs against a Prometheus that never answers
// in time and one against a healthy one, in one manager (the default 8
// workers), each requeued as soon as it is evaluated, for d of real time. It
// returns how often the healthy SLO and each slow one were evaluated.
func evaluationCounts(ctx context.Context, slowSLOs int, d time.Duration) (healthyEvals int, slowEvals []int, err error) {
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "faults-"}}
	if err := k8sClient.Create(ctx, ns); err != nil {
		return 0, nil, err
	}
	policy := faultPolicy(ns.Name, slov1alpha1.MissingDataRelease)
	if err := k8sClient.Create(ctx, policy); err != nil {
		return 0, nil, err
	}
	good, err := newFaultProm()
	if err != nil {
		return 0, nil, err
	}
	defer good.close()
	bad, err := newFaultProm()
	if err != nil {
		return 0, nil, err
	}
	defer bad.close()
	if err := errors.Join(good.set(step{fault: answer, ratios: ratiosOf(healthy)}), bad.set(step{fault: slow})); err != nil {
		return 0, nil, err
	}

	clock := clocktesting.NewFakeClock(t0)
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Cache:                  cache.Options{DefaultNamespaces: map[string]cache.Config{ns.Name: {}}},
		Controller:             config.Controller{SkipNameValidation: ptr.To(true)},
		NewClient:              freshSLOClient,
	})
	if err != nil {
		return 0, nil, err
	}
	conns, err := promconn.FromAddresses(map[string]string{promconn.DefaultName: good.URL(), "slow": bad.URL()})
	if err != nil {
		return 0, nil, err
	}
	if err := controller.Setup(ctx, mgr, controller.Config{
		Connections:  conns,
		QueryTimeout: queryTimeout,
		Sources:      controller.PrometheusSources(sli.WithTimeout(queryTimeout), sli.WithClock(clock.Now)),
		Clock:        clock,
		RequeueAfter: func(time.Duration) time.Duration { return time.Millisecond },
	}); err != nil {
		return 0, nil, err
	}
	mgrDone := make(chan error, 1)
	go func() { mgrDone <- mgr.Start(ctx) }()
	defer func() {
		stop()
		err = errors.Join(err, <-mgrDone)
	}()

	slos := []*slov1alpha1.ServiceLevelObjective{}
	for i := range slowSLOs {
		slo := faultSLO(ns.Name, policy.Name)
		slo.Name = fmt.Sprintf("slow-%d", i)
		slo.Spec.Indicator.Ratio.Errors = fmt.Sprintf(`http_requests_total{job=%q,code=~"5.."}`, slo.Name)
		slo.Spec.Prometheus = &slov1alpha1.PrometheusSource{Connection: "slow"}
		slos = append(slos, slo)
	}
	slos = append(slos, faultSLO(ns.Name, policy.Name))
	for _, slo := range slos {
		if err := k8sClient.Create(ctx, slo); err != nil {
			return 0, nil, err
		}
	}
	// Count from when every SLO has been evaluated once (the manager has
	// started), for d. Three windows, so three queries, per evaluation.
	counts := func() (int, []int) {
		perSLO := map[string]int{}
		for _, q := range bad.received() {
			perSLO[q.job]++
		}
		var slowN []int
		for i := range slowSLOs {
			slowN = append(slowN, perSLO[fmt.Sprintf("slow-%d", i)]/3)
		}
		return len(good.received()) / 3, slowN
	}
	for start := time.Now(); ; time.Sleep(10 * time.Millisecond) {
		h, s := counts()
		if h > 0 && !slices.Contains(s, 0) {
			break
		}
		if time.Since(start) > 30*time.Second {
			return 0, nil, errors.New("the SLOs were not evaluated within 30s")
		}
	}
	h0, s0 := counts()
	time.Sleep(d)
	healthyEvals, slowEvals = counts()
	healthyEvals -= h0
	for i := range slowEvals {
		slowEvals[i] -= s0[i]
	}
	return healthyEvals, slowEvals, nil
}
