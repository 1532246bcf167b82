package controller

import (
	"context"
	"fmt"
	"time"

	kerrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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

	slov1alpha1 "github.com/budgetgate/budgetgate/api/v1alpha1"
	"github.com/budgetgate/budgetgate/internal/policy"
	"github.com/budgetgate/budgetgate/internal/sloview"
)

// FreezeExceptionReconciler reports whether each exception is valid and in
// force, and re-queues it at its expiry so that Active turns False on time. A
// deleted exception is kept (finalizer) while a freeze it may have counted in
// lasts: the release gate counts it toward the workload's break-glass bound, so
// deleting and re-creating an exception cannot restart that clock.
type FreezeExceptionReconciler struct {
	client.Client
	Clock clock.PassiveClock
}

// +kubebuilder:rbac:groups=slo.budgetgate.dev,resources=freezeexceptions,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=slo.budgetgate.dev,resources=freezeexceptions/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=slo.budgetgate.dev,resources=freezeexceptions/finalizers,verbs=update

// Reconcile checks one exception.
func (r *FreezeExceptionReconciler) Reconcile(ctx context.Context, req ctrl.Request) (result ctrl.Result, retErr error) {
	fex := &slov1alpha1.FreezeException{}
	if err := r.Get(ctx, req.NamespacedName, fex); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	log := ctrl.LoggerFrom(ctx).WithValues("freezeException", klog.KObj(fex))
	ctx = ctrl.LoggerInto(ctx, log)
	if !fex.DeletionTimestamp.IsZero() {
		return r.release(ctx, fex)
	}
	if !controllerutil.ContainsFinalizer(fex, slov1alpha1.ExceptionFinalizer) {
		orig := fex.DeepCopy()
		controllerutil.AddFinalizer(fex, slov1alpha1.ExceptionFinalizer)
		if err := r.Patch(ctx, fex, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{})); err != nil {
			return ctrl.Result{}, fmt.Errorf("adding finalizer to %s: %w", klog.KObj(fex), err)
		}
	}
	patch := newStatusPatch(r.Client, fex)
	defer func() { retErr = patch.done(ctx, fex, &result, retErr) }()

	now := r.Clock.Now()
	gen := fex.Generation
	fex.Status.ObservedGeneration = gen
	valid := metav1.Condition{Type: slov1alpha1.ConditionValid, Status: metav1.ConditionTrue,
		Reason: slov1alpha1.ReasonValid, ObservedGeneration: gen, Message: "Exception is well-formed"}
	active := metav1.Condition{Type: slov1alpha1.ConditionActive, ObservedGeneration: gen}

	problem, p, err := r.validate(ctx, fex)
	if err != nil {
		return ctrl.Result{}, err
	}
	expiresAt := fex.Spec.ExpiresAt.Time
	switch {
	case problem != "":
		valid.Status, valid.Reason, valid.Message = metav1.ConditionFalse, slov1alpha1.ReasonInvalid, problem
		active.Status, active.Reason, active.Message = metav1.ConditionFalse, slov1alpha1.ReasonInvalid, "Ignored: "+problem
	case !now.Before(expiresAt):
		active.Status, active.Reason = metav1.ConditionFalse, slov1alpha1.ReasonExpired
		active.Message = "Expired at " + expiresAt.UTC().Format(time.RFC3339)
	default:
		active.Status, active.Reason = metav1.ConditionTrue, slov1alpha1.ReasonInForce
		active.Message = fmt.Sprintf("Selected workloads may release during a freeze until %s", expiresAt.UTC().Format(time.RFC3339))
		if fex.Spec.RequestedBy != "" {
			active.Message += "; requested by " + fex.Spec.RequestedBy
		}
		if fex.Spec.ApprovedBy != "" {
			active.Message += ", approved by " + fex.Spec.ApprovedBy
		} else if p.RequireExceptionApproval {
			active.Message += fmt.Sprintf("; not approved yet: policy %q requires a second person's approval before it counts "+
				"(kubectl annotate fex %s -n %s %s=true)", p.Name, fex.Name, fex.Namespace, slov1alpha1.ApproveAnnotation)
		}
		result.RequeueAfter = expiresAt.Sub(now) + time.Second
	}
	fex.Status.Active = active.Status == metav1.ConditionTrue
	meta.SetStatusCondition(&fex.Status.Conditions, valid)
	meta.SetStatusCondition(&fex.Status.Conditions, active)
	log.V(1).Info("Checked FreezeException", "active", fex.Status.Active, "reason", active.Reason)
	return result, nil
}

// release removes the finalizer of a deleted exception once no freeze in its
// namespace could count it any more: none is frozen, or every freeze began
// after the exception expired.
func (r *FreezeExceptionReconciler) release(ctx context.Context, fex *slov1alpha1.FreezeException) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(fex, slov1alpha1.ExceptionFinalizer) {
		return ctrl.Result{}, nil
	}
	slos := &slov1alpha1.ServiceLevelObjectiveList{}
	if err := r.List(ctx, slos, client.InNamespace(fex.Namespace)); err != nil {
		return ctrl.Result{}, fmt.Errorf("listing SLOs in %s: %w", fex.Namespace, err)
	}
	for i := range slos.Items {
		s := &slos.Items[i]
		if s.Status.Freeze.Active && sloview.TimeOf(s.Status.Freeze.Since).Before(fex.Spec.ExpiresAt.Time) {
			ctrl.LoggerFrom(ctx).V(1).Info("Keeping deleted FreezeException as a record of break-glass during a freeze", "slo", klog.KObj(s))
			return ctrl.Result{}, nil // the SLO watch re-queues us when the freeze lifts
		}
	}
	orig := fex.DeepCopy()
	controllerutil.RemoveFinalizer(fex, slov1alpha1.ExceptionFinalizer)
	if err := r.Patch(ctx, fex, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{})); err != nil && !kerrors.IsNotFound(err) {
		return ctrl.Result{}, fmt.Errorf("removing finalizer from %s: %w", klog.KObj(fex), err)
	}
	return ctrl.Result{}, nil
}

// validate returns what makes the exception unusable, or "", and the policy
// that bounds exceptions in its namespace.
func (r *FreezeExceptionReconciler) validate(ctx context.Context, fex *slov1alpha1.FreezeException) (string, policy.Policy, error) {
	if fex.Spec.WorkloadSelector != nil {
		if _, err := metav1.LabelSelectorAsSelector(fex.Spec.WorkloadSelector); err != nil {
			return fmt.Sprintf("spec.workloadSelector: %v", err), policy.Policy{}, nil
		}
	}
	if fex.Spec.WorkloadSelector == nil && len(fex.Spec.Workloads) == 0 {
		return "spec: select workloads with workloadSelector or list them in workloads", policy.Policy{}, nil
	}
	if len(fex.Spec.Reason) < 10 {
		return "spec.reason: say why in at least 10 characters", policy.Policy{}, nil
	}
	p, err := policy.ForExceptions(ctx, r.Client, fex.Namespace)
	if err != nil {
		return "", p, err
	}
	if lifetime := sloview.Lifetime(fex); lifetime > p.MaxExceptionDuration {
		return fmt.Sprintf("spec.expiresAt: %s is %s after the exception was created, longer than the maxExceptionDuration %s of policy %q",
			fex.Spec.ExpiresAt.UTC().Format(time.RFC3339), lifetime.Round(time.Second), p.MaxExceptionDuration, p.Name), p, nil
	}
	return "", p, nil
}

// SetupWithManager registers the controller; it also revisits the deleted
// exceptions of a namespace when a freeze there lifts.
func (r *FreezeExceptionReconciler) SetupWithManager(mgr ctrl.Manager, opts controller.Options) error {
	if r.Clock == nil {
		r.Clock = clock.RealClock{}
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&slov1alpha1.FreezeException{}, builder.WithPredicates(predicate.Or(
			predicate.GenerationChangedPredicate{}, deletionPredicate()))).
		Watches(&slov1alpha1.ServiceLevelObjective{}, handler.EnqueueRequestsFromMapFunc(r.deletedExceptions),
			builder.WithPredicates(freezeLifted())).
		WithOptions(opts).
		Named("freezeexception").
		Complete(r)
}

// freezeLifted passes SLO updates that end a freeze, and SLO deletions.
func freezeLifted() predicate.Predicate {
	return predicate.Funcs{
		CreateFunc:  func(event.CreateEvent) bool { return false },
		GenericFunc: func(event.GenericEvent) bool { return false },
		DeleteFunc:  func(event.DeleteEvent) bool { return true },
		UpdateFunc: func(e event.UpdateEvent) bool {
			o, okO := e.ObjectOld.(*slov1alpha1.ServiceLevelObjective)
			n, okN := e.ObjectNew.(*slov1alpha1.ServiceLevelObjective)
			return okO && okN && o.Status.Freeze.Active && !n.Status.Freeze.Active
		},
	}
}

// deletedExceptions lists the deleted exceptions of an SLO's namespace.
func (r *FreezeExceptionReconciler) deletedExceptions(ctx context.Context, o client.Object) []reconcile.Request {
	list := &slov1alpha1.FreezeExceptionList{}
	if err := r.List(ctx, list, client.InNamespace(o.GetNamespace())); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "Failed to list FreezeExceptions", "namespace", o.GetNamespace())
		return nil
	}
	var reqs []reconcile.Request
	for i := range list.Items {
		if !list.Items[i].DeletionTimestamp.IsZero() {
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
		}
	}
	return reqs
}
