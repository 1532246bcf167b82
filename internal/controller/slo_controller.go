package controller

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/recorder"

	slov1alpha1 "github.com/budgetgate/budgetgate/api/v1alpha1"
	"github.com/budgetgate/budgetgate/internal/budget"
	"github.com/budgetgate/budgetgate/internal/policy"
	"github.com/budgetgate/budgetgate/internal/promconn"
	"github.com/budgetgate/budgetgate/internal/sli"
	"github.com/budgetgate/budgetgate/internal/sloview"
	"github.com/budgetgate/budgetgate/internal/workload"
)

// SourceFor returns the SLI source of a Prometheus connection.
type SourceFor func(conn *promconn.Connection) (sli.Source, error)

// ServiceLevelObjectiveReconciler evaluates every SLO on its interval: it reads
// the SLI over every window its policy needs, runs the budget engine, and keeps
// the budget, burn rates, rule states and freeze state in status.
type ServiceLevelObjectiveReconciler struct {
	client.Client
	// APIReader lists workloads on demand, uncached: the operator caches only its own kinds.
	APIReader client.Reader
	Recorder  recorder.EventRecorder
	Clock     clock.PassiveClock
	// Sources gives the SLI source of a Prometheus connection.
	Sources SourceFor
	// Connections are the Prometheus connections SLOs may name.
	Connections *promconn.Set
	// QueryTimeout bounds each Prometheus query; an evaluation of n windows may
	// take sli.EvaluationDeadline(QueryTimeout, n).
	QueryTimeout time.Duration
	// RequeueAfter turns an evaluation interval into the delay before the next
	// evaluation; by default the interval with ±5% jitter so that SLOs created
	// together do not query Prometheus together.
	RequeueAfter func(interval time.Duration) time.Duration
	// Kinds are the gated workload kinds.
	Kinds *workload.Registry
	// Fence, when set, must pass before an evaluation starts (Config.Fence).
	Fence func() error
	// RuleLabels are put on every PrometheusRule the controller writes, e.g.
	// release=kube-prometheus-stack for the Prometheus that selects rules by it.
	RuleLabels map[string]string

	// startRuleWatch starts the watch of PrometheusRules (SetupWithManager).
	startRuleWatch func() error

	// seriesChecks remembers, per SLO, when its errors selector was last
	// checked for series and whether it had any.
	seriesChecks sync.Map
	// retentionChecks remembers, per source, its Prometheus' retention.
	retentionChecks sync.Map
}

// +kubebuilder:rbac:groups=slo.budgetgate.dev,resources=servicelevelobjectives,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=slo.budgetgate.dev,resources=servicelevelobjectives/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=slo.budgetgate.dev,resources=servicelevelobjectives/finalizers,verbs=update
// +kubebuilder:rbac:groups=slo.budgetgate.dev,resources=errorbudgetpolicies,verbs=get;list;watch
// +kubebuilder:rbac:groups=slo.budgetgate.dev,resources=errorbudgetpolicybindings,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=apps,resources=deployments;statefulsets;daemonsets,verbs=get;list;patch

// fenceRetry is how soon an SLO is looked at again when the fence stopped its
// evaluation: the leader election's retry period.
const fenceRetry = 2 * time.Second

// Reconcile evaluates one SLO.
func (r *ServiceLevelObjectiveReconciler) Reconcile(ctx context.Context, req ctrl.Request) (result ctrl.Result, retErr error) {
	start := r.Clock.Now()
	slo := &slov1alpha1.ServiceLevelObjective{}
	if err := r.Get(ctx, req.NamespacedName, slo); err != nil {
		if kerrors.IsNotFound(err) {
			forgetMetrics(req.Namespace, req.Name)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	log := ctrl.LoggerFrom(ctx).WithValues("slo", klog.KObj(slo))
	ctx = ctrl.LoggerInto(ctx, log)

	if r.Fence != nil {
		if err := r.Fence(); err != nil {
			// The lease may be another replica's: measure nothing and write
			// nothing (the client is fenced too). Look again soon rather than
			// fail: a renewal that was only late makes this replica lead again,
			// a lost lease ends the manager within the renew deadline.
			log.Info("Not evaluating SLO: this replica may have lost the leader lease", "reason", err.Error())
			return ctrl.Result{RequeueAfter: fenceRetry}, nil
		}
	}

	if !slo.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, r.finalize(ctx, slo)
	}
	if !controllerutil.ContainsFinalizer(slo, slov1alpha1.SLOFinalizer) {
		orig := slo.DeepCopy()
		controllerutil.AddFinalizer(slo, slov1alpha1.SLOFinalizer)
		if err := r.Patch(ctx, slo, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{})); err != nil {
			return ctrl.Result{}, fmt.Errorf("adding finalizer to %s: %w", klog.KObj(slo), err)
		}
	}

	patch := newStatusPatch(r.Client, slo)
	defer func() { retErr = patch.done(ctx, slo, &result, retErr) }()

	in, err := r.readInputs(ctx, slo)
	if err != nil {
		if inv, ok := errors.AsType[*invalidError](err); ok {
			evaluationErrors.WithLabelValues(slo.Namespace, slo.Name, inv.reason).Inc()
			setNotReady(slo, inv.reason, inv.Error())
			log.Info("Cannot evaluate SLO", "reason", inv.reason, "message", inv.Error())
			if inv.retry {
				// A missing policy may appear; the policy watch re-queues us then, this is the fallback.
				return ctrl.Result{RequeueAfter: r.requeueAfter(slo, in.interval)}, nil
			}
			return ctrl.Result{}, reconcile.TerminalError(inv)
		}
		return ctrl.Result{}, err
	}

	// The rules first: the measurement reads what they record.
	r.syncRules(ctx, slo, in.policy)
	now := r.Clock.Now()
	windows := budget.Windows(in.objective, in.policy.Budget)
	measured := r.measure(ctx, slo, in, windows)
	prometheusQueries.WithLabelValues(slo.Namespace).Add(float64(measured.queries))
	if measured.err != nil {
		evaluationErrors.WithLabelValues(slo.Namespace, slo.Name, slov1alpha1.ReasonQueryFailed).Inc()
		log.Info("Failed to query Prometheus", "error", measured.err.Error())
	}
	in.warnings = append(in.warnings, r.indicatorWarnings(ctx, slo, in, measured, now)...)

	eval := budget.Evaluate(in.objective, in.policy.Budget, measured.m, sloview.State(&slo.Status), now)
	before := policyChoice(slo)
	wasEnforcing := sloview.Enforcing(slo)
	writeStatus(slo, in, eval, measured, now)
	slo.Status.SLISource = sliSource(measured)
	r.recordPolicyChoice(slo, before, wasEnforcing)
	gated, annotateErr := r.syncAnnotations(ctx, slo, false)
	slo.Status.GatedWorkloads = gated
	r.recordTransition(slo, in, eval, gated)
	exportMetrics(slo, eval)
	evaluationDuration.WithLabelValues(slo.Namespace).Observe(r.Clock.Since(start).Seconds())
	if annotateErr != nil {
		// The evaluation stands (the deferred patch saves it); retry the annotations with backoff.
		return ctrl.Result{}, annotateErr
	}
	log.Info("Evaluated SLO",
		"budgetRemaining", slo.Status.ErrorBudget, "fastBurn", slo.Status.FastBurn,
		"frozen", eval.State.Frozen, "dataAvailable", eval.DataAvailable, "policy", in.policy.Name, "gatedWorkloads", gated)
	return ctrl.Result{RequeueAfter: r.requeueAfter(slo, in.interval)}, nil
}

// finalize removes a deleted SLO's freeze marks from the workloads that carry
// them, then its finalizer. (Deleting a frozen SLO needs the lift-freeze verb:
// the SLO webhook checks that before the deletion starts.)
func (r *ServiceLevelObjectiveReconciler) finalize(ctx context.Context, slo *slov1alpha1.ServiceLevelObjective) error {
	if !controllerutil.ContainsFinalizer(slo, slov1alpha1.SLOFinalizer) {
		return nil
	}
	if _, err := r.syncAnnotations(ctx, slo, true); err != nil {
		return err
	}
	// The garbage collector would delete the owned PrometheusRule too; the
	// finalizer does it at once, and where no garbage collector runs.
	if slo.Status.PrometheusRule != nil {
		if err := r.deleteRules(ctx, slo); err != nil {
			return fmt.Errorf("deleting the PrometheusRule of %s: %w", klog.KObj(slo), err)
		}
	}
	if slo.Status.Freeze.Active && r.Recorder != nil {
		r.Recorder.Eventf(slo, nil, "Warning", "FreezeLifted", "Delete", "Lifted the release freeze: the SLO was deleted")
	}
	orig := slo.DeepCopy()
	controllerutil.RemoveFinalizer(slo, slov1alpha1.SLOFinalizer)
	if err := r.Patch(ctx, slo, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{})); err != nil && !kerrors.IsNotFound(err) {
		return fmt.Errorf("removing finalizer from %s: %w", klog.KObj(slo), err)
	}
	forgetMetrics(slo.Namespace, slo.Name)
	return nil
}

// inputs is everything an evaluation needs, read and validated.
type inputs struct {
	objective budget.Objective
	indicator sli.Indicator
	interval  time.Duration
	policy    policy.Policy
	// resolution says through which binding the policy was chosen.
	resolution policy.Resolution
	warnings   []string
}

// invalidError is input that stops evaluation; retry says whether waiting may help.
type invalidError struct {
	reason string
	err    error
	retry  bool
}

func (e *invalidError) Error() string { return e.err.Error() }
func (e *invalidError) Unwrap() error { return e.err }

func (r *ServiceLevelObjectiveReconciler) readInputs(ctx context.Context, slo *slov1alpha1.ServiceLevelObjective) (inputs, error) {
	in := inputs{interval: policy.DefaultEvaluationInterval}
	var err error
	specErr := func(err error) error { return &invalidError{reason: slov1alpha1.ReasonInvalidSpec, err: err} }
	if in.interval, err = policy.EvaluationInterval(&slo.Spec); err != nil {
		in.interval = policy.DefaultEvaluationInterval
		return in, specErr(err)
	}
	if in.objective, err = policy.Objective(&slo.Spec); err != nil {
		return in, specErr(err)
	}
	if in.indicator, err = policy.Indicator(&slo.Spec.Indicator); err != nil {
		return in, specErr(err)
	}
	if err := sli.ValidateIndicator(in.indicator); err != nil {
		return in, specErr(fmt.Errorf("spec.indicator: %w", err))
	}
	in.resolution, err = policy.ResolveBinding(ctx, r.Client, slo)
	in.policy = in.resolution.Policy
	switch {
	case policy.IsInvalidBinding(err):
		return in, &invalidError{reason: slov1alpha1.ReasonInvalidBinding, retry: true, err: err}
	case policy.IsNotFound(err):
		return in, &invalidError{reason: slov1alpha1.ReasonPolicyNotFound, retry: true, err: err}
	case policy.IsInvalid(err):
		return in, &invalidError{reason: slov1alpha1.ReasonInvalidPolicy, retry: true, err: err}
	case err != nil:
		return in, err
	}
	if err := policy.CheckWindows(in.objective, string(slo.Spec.Window), in.policy.Budget); err != nil {
		return in, &invalidError{reason: slov1alpha1.ReasonInvalidPolicy,
			err: fmt.Errorf("policy %q does not fit window %s: %w", in.policy.Name, slo.Spec.Window, err)}
	}
	in.warnings = policy.Warnings(&slo.Spec, in.objective, in.indicator, in.policy)
	return in, nil
}

// measurement is what one evaluation got from Prometheus.
type measurement struct {
	m   budget.Measurements
	err error
	// carriedFrom is set when the SLO window went unanswered and its last known
	// value (measured then) stands in for it.
	carriedFrom time.Time
	carried     time.Duration
	// source is the SLI source asked (nil when there was none).
	source sli.Source
	// queries counts the queries sent; recorded and raw list the windows
	// read from recorded series and measured raw, and rawWhy says why raw.
	queries       int
	recorded, raw []time.Duration
	rawWhy        string
}

func (r *ServiceLevelObjectiveReconciler) measure(ctx context.Context, slo *slov1alpha1.ServiceLevelObjective,
	in inputs, windows []time.Duration) measurement {
	var out measurement
	name := promconn.NameOf(&slo.Spec)
	var nsLabels map[string]string
	var err error
	if r.Connections.NeedsNamespaceLabels(name) {
		nsLabels, err = policy.NamespaceLabels(ctx, r.Client, slo.Namespace)
	}
	var conn *promconn.Connection
	if err == nil {
		conn, err = r.Connections.Resolve(name, slo.Namespace, nsLabels)
	}
	var src sli.Source
	if err == nil {
		src, err = r.Sources(conn)
	}
	if err != nil {
		out.err = err
	} else {
		out.source = src
		// Every query has its own timeout; the evaluation as a whole gets one per
		// round of concurrent queries, so a slow Prometheus costs windows, longest
		// asked first, not the whole evaluation.
		ctx, cancel := context.WithTimeout(ctx, sli.EvaluationDeadline(r.queryTimeout(), len(windows)))
		defer cancel()
		results, rawWindows := r.measureRecorded(ctx, slo, in, windows, src, &out)
		if len(rawWindows) > 0 {
			raw, err := src.Measure(ctx, in.indicator, rawWindows)
			out.queries += len(rawWindows)
			out.err = err
			for w, res := range raw {
				results[w] = res
			}
		}
		out.m = make(budget.Measurements, len(results))
		for w, res := range results {
			out.m[w] = budget.Measurement{ErrorRatio: res.ErrorRatio, Events: res.Events, OK: true}
		}
	}
	// The SLO window unanswered (an error, not an empty answer): keep the budget
	// it last measured, so that a slow or unreachable Prometheus can only hold a
	// budget freeze, never lift it.
	if out.err != nil && unanswered(out.err, in.objective.Window) {
		if m, at, ok := lastMeasured(&slo.Status, in.objective.Window); ok {
			if out.m == nil {
				out.m = budget.Measurements{}
			}
			out.m[in.objective.Window] = m
			out.carriedFrom, out.carried = at, in.objective.Window
		}
	}
	return out
}

func (r *ServiceLevelObjectiveReconciler) queryTimeout() time.Duration {
	if r.QueryTimeout > 0 {
		return r.QueryTimeout
	}
	return sli.DefaultTimeout
}

// unanswered reports whether err says that window was not answered: a
// *sli.QueryError for it, or an error about the source as a whole.
func unanswered(err error, window time.Duration) bool {
	found, specific := false, false
	walkErrors(err, func(e error) {
		if qe, ok := e.(*sli.QueryError); ok {
			specific = true
			found = found || qe.Window == window
		}
	})
	return found || !specific
}

// walkErrors calls fn on err and every error it wraps, joined ones included.
func walkErrors(err error, fn func(error)) {
	if err == nil {
		return
	}
	fn(err)
	switch u := err.(type) {
	case interface{ Unwrap() []error }:
		for _, e := range u.Unwrap() {
			walkErrors(e, fn)
		}
	case interface{ Unwrap() error }:
		walkErrors(u.Unwrap(), fn)
	}
}

// lastMeasured is the last measurement of a window that status holds, and when
// it was measured.
func lastMeasured(st *slov1alpha1.ServiceLevelObjectiveStatus, window time.Duration) (budget.Measurement, time.Time, bool) {
	name := string(durationOf(window))
	for _, w := range st.BurnRates {
		if w.Window != name || !w.DataAvailable || w.ErrorRatio == "" {
			continue
		}
		ratio, err := strconv.ParseFloat(string(w.ErrorRatio), 64)
		if err != nil {
			return budget.Measurement{}, time.Time{}, false
		}
		events := -1.0
		if w.Events != "" {
			if e, err := strconv.ParseFloat(string(w.Events), 64); err == nil {
				events = e
			}
		}
		at := sloview.TimeOf(w.CarriedFrom)
		if at.IsZero() {
			at = sloview.TimeOf(st.LastEvaluationTime)
		}
		return budget.Measurement{ErrorRatio: ratio, Events: events, OK: true}, at, true
	}
	return budget.Measurement{}, time.Time{}, false
}

// seriesCheckInterval is how often an SLO whose errors never show is checked
// for error series at all.
const seriesCheckInterval = time.Hour

type seriesCheck struct {
	at   time.Time
	seen bool
}

// indicatorWarnings warns when a ratio indicator's errors selector matched no
// series over the SLO window while the SLI reads 100%: a typo in a label value
// would otherwise pass as a perfect service. It asks Prometheus's series API at
// most once an hour per SLO, and only when no error was measured.
func (r *ServiceLevelObjectiveReconciler) indicatorWarnings(ctx context.Context, slo *slov1alpha1.ServiceLevelObjective,
	in inputs, m measurement, now time.Time) []string {
	return append(r.retentionWarning(ctx, slo, in, m, now), r.seriesWarnings(ctx, slo, in, m, now)...)
}

// retentionCheckInterval is how long a Prometheus' retention is remembered.
const retentionCheckInterval = time.Hour

// retentionWarning warns when the SLO's Prometheus keeps less history than
// the SLO window: the budget then covers only what is kept.
func (r *ServiceLevelObjectiveReconciler) retentionWarning(ctx context.Context, slo *slov1alpha1.ServiceLevelObjective,
	in inputs, m measurement, now time.Time) []string {
	rr, ok := m.source.(sli.RetentionReporter)
	if !ok {
		return nil
	}
	var retention time.Duration
	if v, ok := r.retentionChecks.Load(m.source); ok && now.Sub(v.(retentionCheck).at) < retentionCheckInterval {
		retention = v.(retentionCheck).retention
	} else {
		got, err := rr.Retention(ctx)
		if err != nil {
			return nil
		}
		retention = got
		r.retentionChecks.Store(m.source, retentionCheck{at: now, retention: got})
	}
	if retention == 0 || retention >= in.objective.Window {
		return nil
	}
	return []string{fmt.Sprintf("Prometheus connection %q keeps %s of samples (storage.tsdb.retention.time), less than the SLO window %s: "+
		"the budget covers only the last %s; raise the retention, or use a connection to long-term storage (Thanos, Mimir)",
		promconn.NameOf(&slo.Spec), durationOf(retention), durationOf(in.objective.Window), durationOf(retention))}
}

// retentionCheck is a remembered retention of one source.
type retentionCheck struct {
	at        time.Time
	retention time.Duration
}

func (r *ServiceLevelObjectiveReconciler) seriesWarnings(ctx context.Context, slo *slov1alpha1.ServiceLevelObjective,
	in inputs, m measurement, now time.Time) []string {
	checker, ok := m.source.(sli.SeriesChecker)
	slom, measured := m.m[in.objective.Window]
	if !ok || in.indicator.Ratio == nil || !measured || slom.ErrorRatio != 0 || !m.carriedFrom.IsZero() {
		return nil
	}
	key := slo.Namespace + "/" + slo.Name + "/" + in.indicator.Ratio.Errors
	if v, ok := r.seriesChecks.Load(key); ok && now.Sub(v.(seriesCheck).at) < seriesCheckInterval {
		return seriesWarning(v.(seriesCheck).seen, in)
	}
	seen, err := checker.SeriesSeen(ctx, in.indicator.Ratio.Errors, in.objective.Window)
	if err != nil {
		return nil
	}
	r.seriesChecks.Store(key, seriesCheck{at: now, seen: seen})
	return seriesWarning(seen, in)
}

func seriesWarning(seen bool, in inputs) []string {
	if seen {
		return nil
	}
	return []string{fmt.Sprintf("spec.indicator.ratio.errors matched no series in the last %s, so the SLI reads 100%%: "+
		"right if the service had no errors (counters often appear only with the first error), "+
		"otherwise check the selector's metric name and label values", durationOf(in.objective.Window))}
}

func (r *ServiceLevelObjectiveReconciler) requeueAfter(slo *slov1alpha1.ServiceLevelObjective, interval time.Duration) time.Duration {
	if r.RequeueAfter != nil {
		return r.RequeueAfter(interval)
	}
	return Spread(interval, slo.UID, r.Clock.Now())
}

// Spread is the delay to an SLO's next evaluation: to the next instant, at
// least half an interval away, that falls on the SLO's own phase of the
// interval (a hash of its UID). SLOs created, or re-queued by a restart,
// all at once settle after one evaluation onto phases spread evenly over
// the interval, so that a thousand SLOs do not query Prometheus together;
// then each is evaluated once an interval, on its phase. Every replica and
// restart computes the same phase.
func Spread(interval time.Duration, uid types.UID, now time.Time) time.Duration {
	if interval <= 0 {
		return interval
	}
	h := fnv.New64a()
	_, _ = h.Write([]byte(uid))
	phase := time.Duration(h.Sum64() % uint64(interval))
	d := (phase - time.Duration(now.UnixNano()%int64(interval)) + interval) % interval
	for d < interval/2 {
		d += interval
	}
	return d
}

// recordTransition emits FreezeStarted and FreezeLifted Events on the SLO.
func (r *ServiceLevelObjectiveReconciler) recordTransition(slo *slov1alpha1.ServiceLevelObjective, in inputs, eval budget.Evaluation, gated int32) {
	if r.Recorder == nil {
		return
	}
	switch eval.Transition {
	case budget.TransitionStarted:
		verb := "Froze releases"
		if in.policy.Mode == slov1alpha1.ModeDryRun {
			verb = "Would freeze releases (DryRun)"
		}
		r.Recorder.Eventf(slo, nil, "Warning", "FreezeStarted", "Freeze",
			"%s of %d workloads until at least %s: %s", verb, gated,
			eval.State.HoldUntil.UTC().Format(time.RFC3339), eval.Reason)
	case budget.TransitionLifted:
		r.Recorder.Eventf(slo, nil, "Normal", "FreezeLifted", "Lift",
			"Lifted the release freeze of %d workloads: no Freeze rule of policy %q fires any more", gated, in.policy.Name)
	}
}

// SetupWithManager registers the controller; it re-evaluates SLOs when their
// policy changes.
func (r *ServiceLevelObjectiveReconciler) SetupWithManager(mgr ctrl.Manager, opts controller.Options) error {
	if r.Clock == nil {
		r.Clock = clock.RealClock{}
	}
	if r.Kinds == nil {
		r.Kinds = workload.Default()
	}
	c, err := ctrl.NewControllerManagedBy(mgr).
		For(&slov1alpha1.ServiceLevelObjective{}, builder.WithPredicates(predicate.Or(
			predicate.GenerationChangedPredicate{}, deletionPredicate()))).
		Watches(&slov1alpha1.ErrorBudgetPolicy{}, handler.EnqueueRequestsFromMapFunc(r.slosForPolicy),
			builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&slov1alpha1.ErrorBudgetPolicyBinding{}, handler.EnqueueRequestsFromMapFunc(r.slosForBinding),
			builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		WatchesMetadata(&corev1.Namespace{}, handler.EnqueueRequestsFromMapFunc(r.slosInNamespace),
			builder.WithPredicates(predicate.LabelChangedPredicate{})).
		WithOptions(opts).
		Named("servicelevelobjective").
		Build(r)
	if err != nil {
		return err
	}
	r.startRuleWatch = startRuleWatch(mgr, c)
	return nil
}

// deletionPredicate passes updates that start an object's deletion (which do
// not change its generation).
func deletionPredicate() predicate.Predicate {
	return predicate.Funcs{
		CreateFunc:  func(event.CreateEvent) bool { return false },
		DeleteFunc:  func(event.DeleteEvent) bool { return false },
		GenericFunc: func(event.GenericEvent) bool { return false },
		UpdateFunc: func(e event.UpdateEvent) bool {
			return e.ObjectOld.GetDeletionTimestamp().IsZero() && !e.ObjectNew.GetDeletionTimestamp().IsZero()
		},
	}
}

// slosForPolicy maps a policy to the SLOs that ask for it by name (SLOs without
// a policyRef ask for "default"), those whose status says they use it, and
// those in the namespaces of the bindings that name it.
func (r *ServiceLevelObjectiveReconciler) slosForPolicy(ctx context.Context, o client.Object) []reconcile.Request {
	log := ctrl.LoggerFrom(ctx)
	list := &slov1alpha1.ServiceLevelObjectiveList{}
	if err := r.List(ctx, list, client.MatchingFields{PolicyNameIndex: o.GetName()}); err != nil {
		log.Error(err, "Failed to list SLOs of policy", "policy", o.GetName())
		return nil
	}
	reqs := requests(list.Items, func(*slov1alpha1.ServiceLevelObjective) bool { return true })
	all := &slov1alpha1.ServiceLevelObjectiveList{}
	if err := r.List(ctx, all); err != nil {
		log.Error(err, "Failed to list SLOs", "policy", o.GetName())
		return reqs
	}
	reqs = append(reqs, requests(all.Items, func(s *slov1alpha1.ServiceLevelObjective) bool { return s.Status.Policy == o.GetName() })...)
	bindings := &slov1alpha1.ErrorBudgetPolicyBindingList{}
	if err := r.List(ctx, bindings); err != nil {
		log.Error(err, "Failed to list ErrorBudgetPolicyBindings", "policy", o.GetName())
		return reqs
	}
	for i := range bindings.Items {
		if bindings.Items[i].Spec.PolicyRef.Name == o.GetName() {
			reqs = append(reqs, r.slosForBinding(ctx, &bindings.Items[i])...)
		}
	}
	return reqs
}

// slosForBinding maps a binding to the SLOs in the namespaces it selects.
// An update maps the old and the new binding, so the SLOs a changed
// selector lets go are evaluated again too.
func (r *ServiceLevelObjectiveReconciler) slosForBinding(ctx context.Context, o client.Object) []reconcile.Request {
	log := ctrl.LoggerFrom(ctx)
	b := o.(*slov1alpha1.ErrorBudgetPolicyBinding)
	sel, err := metav1.LabelSelectorAsSelector(&b.Spec.NamespaceSelector)
	if err != nil {
		sel = labels.Everything() // every SLO then reports the invalid binding
	}
	nss := &metav1.PartialObjectMetadataList{}
	nss.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("NamespaceList"))
	if err := r.List(ctx, nss); err != nil {
		log.Error(err, "Failed to list namespaces", "binding", b.Name)
		return nil
	}
	selected := map[string]bool{}
	for i := range nss.Items {
		if sel.Matches(labels.Set(nss.Items[i].Labels)) {
			selected[nss.Items[i].Name] = true
		}
	}
	list := &slov1alpha1.ServiceLevelObjectiveList{}
	if err := r.List(ctx, list); err != nil {
		log.Error(err, "Failed to list SLOs", "binding", b.Name)
		return nil
	}
	return requests(list.Items, func(s *slov1alpha1.ServiceLevelObjective) bool { return selected[s.Namespace] })
}

// slosInNamespace maps a namespace whose labels changed to its SLOs: the
// bindings that select it may have changed.
func (r *ServiceLevelObjectiveReconciler) slosInNamespace(ctx context.Context, o client.Object) []reconcile.Request {
	list := &slov1alpha1.ServiceLevelObjectiveList{}
	if err := r.List(ctx, list, client.InNamespace(o.GetName())); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "Failed to list SLOs", "namespace", o.GetName())
		return nil
	}
	return requests(list.Items, func(*slov1alpha1.ServiceLevelObjective) bool { return true })
}

func requests(slos []slov1alpha1.ServiceLevelObjective, keep func(*slov1alpha1.ServiceLevelObjective) bool) []reconcile.Request {
	var reqs []reconcile.Request
	for i := range slos {
		if keep(&slos[i]) {
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&slos[i])})
		}
	}
	return reqs
}
