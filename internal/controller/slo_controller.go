package controller

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/recorder"

	slov1alpha1 "github.com/budgetgate/budgetgate/api/v1alpha1"
	"github.com/budgetgate/budgetgate/internal/budget"
	"github.com/budgetgate/budgetgate/internal/policy"
	"github.com/budgetgate/budgetgate/internal/sli"
)

// SourceFor returns the SLI source for a Prometheus address.
type SourceFor func(address string) (sli.Source, error)

// ServiceLevelObjectiveReconciler evaluates every SLO on its interval: it reads
// the SLI over every window its policy needs, runs the budget engine, and keeps
// the budget, burn rates, rule states and freeze state in status.
type ServiceLevelObjectiveReconciler struct {
	client.Client
	// APIReader lists workloads on demand, uncached: the operator caches only its own kinds.
	APIReader client.Reader
	Recorder  recorder.EventRecorder
	Clock     clock.PassiveClock
	// Sources gives the SLI source of a Prometheus address.
	Sources SourceFor
	// PrometheusAddress is the operator's --prometheus-address, used unless an SLO overrides it.
	PrometheusAddress string
	// QueryTimeout bounds one evaluation's queries (all windows together).
	QueryTimeout time.Duration
	// RequeueAfter turns an evaluation interval into the delay before the next
	// evaluation; by default the interval with ±5% jitter so that SLOs created
	// together do not query Prometheus together.
	RequeueAfter func(interval time.Duration) time.Duration
}

// +kubebuilder:rbac:groups=slo.budgetgate.dev,resources=servicelevelobjectives,verbs=get;list;watch
// +kubebuilder:rbac:groups=slo.budgetgate.dev,resources=servicelevelobjectives/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=slo.budgetgate.dev,resources=errorbudgetpolicies,verbs=get;list;watch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=apps,resources=deployments;statefulsets;daemonsets,verbs=get;list;patch

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

	before := slo.DeepCopy()
	defer func() {
		if equality.Semantic.DeepEqual(before.Status, slo.Status) {
			return
		}
		if err := r.Status().Patch(ctx, slo, client.MergeFrom(before)); err != nil {
			retErr = utilerrors.NewAggregate([]error{retErr, fmt.Errorf("patching status of %s: %w", klog.KObj(slo), err)})
			result = ctrl.Result{}
		}
	}()

	in, err := r.readInputs(ctx, slo)
	if err != nil {
		if inv, ok := errors.AsType[*invalidError](err); ok {
			evaluationErrors.WithLabelValues(slo.Namespace, slo.Name, inv.reason).Inc()
			setNotReady(slo, inv.reason, inv.Error())
			log.Info("Cannot evaluate SLO", "reason", inv.reason, "message", inv.Error())
			if inv.retry {
				// A missing policy may appear; the policy watch re-queues us then, this is the fallback.
				return ctrl.Result{RequeueAfter: r.requeueAfter(in.interval)}, nil
			}
			return ctrl.Result{}, reconcile.TerminalError(inv)
		}
		return ctrl.Result{}, err
	}

	now := r.Clock.Now()
	windows := budget.Windows(in.objective, in.policy.Budget)
	measurements, queryErr := r.measure(ctx, slo, in, windows)
	prometheusQueries.WithLabelValues(slo.Namespace).Add(float64(len(windows)))
	if queryErr != nil {
		evaluationErrors.WithLabelValues(slo.Namespace, slo.Name, slov1alpha1.ReasonQueryFailed).Inc()
		log.Info("Failed to query Prometheus", "error", queryErr.Error())
	}

	eval := budget.Evaluate(in.objective, in.policy.Budget, measurements, stateFromStatus(&slo.Status), now)
	writeStatus(slo, in, eval, queryErr, now)
	gated, annotateErr := r.syncAnnotations(ctx, slo)
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
	return ctrl.Result{RequeueAfter: r.requeueAfter(in.interval)}, nil
}

// inputs is everything an evaluation needs, read and validated.
type inputs struct {
	objective budget.Objective
	indicator sli.Indicator
	interval  time.Duration
	policy    policy.Policy
	warnings  []string
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
	if in.policy, err = r.resolvePolicy(ctx, slo); err != nil {
		return in, err
	}
	if err := policy.CheckWindows(in.objective, string(slo.Spec.Window), in.policy.Budget); err != nil {
		return in, &invalidError{reason: slov1alpha1.ReasonInvalidPolicy,
			err: fmt.Errorf("policy %q does not fit window %s: %w", in.policy.Name, slo.Spec.Window, err)}
	}
	in.warnings = budget.Warnings(in.objective, in.policy.Budget)
	return in, nil
}

// resolvePolicy: policyRef, else the policy named "default", else the built-in one.
func (r *ServiceLevelObjectiveReconciler) resolvePolicy(ctx context.Context, slo *slov1alpha1.ServiceLevelObjective) (policy.Policy, error) {
	name := PolicyNameOf(slo)
	ebp := &slov1alpha1.ErrorBudgetPolicy{}
	if err := r.Get(ctx, client.ObjectKey{Name: name}, ebp); err != nil {
		if !kerrors.IsNotFound(err) {
			return policy.Policy{}, fmt.Errorf("getting ErrorBudgetPolicy %q: %w", name, err)
		}
		if slo.Spec.PolicyRef == nil {
			return policy.Builtin(), nil
		}
		return policy.Policy{}, &invalidError{reason: slov1alpha1.ReasonPolicyNotFound, retry: true,
			err: fmt.Errorf("ErrorBudgetPolicy %q not found", name)}
	}
	p, err := policy.FromSpec(ebp.Name, &ebp.Spec)
	if err != nil {
		return policy.Policy{}, &invalidError{reason: slov1alpha1.ReasonInvalidPolicy, retry: true,
			err: fmt.Errorf("ErrorBudgetPolicy %q is invalid: %w", name, err)}
	}
	return p, nil
}

func (r *ServiceLevelObjectiveReconciler) measure(ctx context.Context, slo *slov1alpha1.ServiceLevelObjective,
	in inputs, windows []time.Duration) (budget.Measurements, error) {
	address := r.PrometheusAddress
	if slo.Spec.Prometheus != nil && slo.Spec.Prometheus.Address != "" {
		address = slo.Spec.Prometheus.Address
	}
	if address == "" {
		return nil, errors.New("no Prometheus address: set --prometheus-address or spec.prometheus.address")
	}
	src, err := r.Sources(address)
	if err != nil {
		return nil, fmt.Errorf("connecting to Prometheus at %s: %w", address, err)
	}
	if r.QueryTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, r.QueryTimeout)
		defer cancel()
	}
	results, err := src.Measure(ctx, in.indicator, windows)
	m := make(budget.Measurements, len(results))
	for w, res := range results {
		m[w] = budget.Measurement{ErrorRatio: res.ErrorRatio, Events: res.Events, OK: true}
	}
	return m, err
}

func (r *ServiceLevelObjectiveReconciler) requeueAfter(interval time.Duration) time.Duration {
	if r.RequeueAfter != nil {
		return r.RequeueAfter(interval)
	}
	return Jitter(interval)
}

// Jitter spreads an interval by ±5%.
func Jitter(interval time.Duration) time.Duration {
	return interval + time.Duration((rand.Float64()-0.5)*0.1*float64(interval))
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
	return ctrl.NewControllerManagedBy(mgr).
		For(&slov1alpha1.ServiceLevelObjective{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&slov1alpha1.ErrorBudgetPolicy{}, handler.EnqueueRequestsFromMapFunc(r.slosForPolicy),
			builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		WithOptions(opts).
		Named("servicelevelobjective").
		Complete(r)
}

// slosForPolicy maps a policy to the SLOs that ask for it by name (SLOs without
// a policyRef ask for "default").
func (r *ServiceLevelObjectiveReconciler) slosForPolicy(ctx context.Context, o client.Object) []reconcile.Request {
	list := &slov1alpha1.ServiceLevelObjectiveList{}
	if err := r.List(ctx, list, client.MatchingFields{PolicyNameIndex: o.GetName()}); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "Failed to list SLOs of policy", "policy", o.GetName())
		return nil
	}
	reqs := make([]reconcile.Request, 0, len(list.Items))
	for i := range list.Items {
		reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
	}
	return reqs
}
