package controller

import (
	"context"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	slov1alpha1 "github.com/budgetgate/budgetgate/api/v1alpha1"
	"github.com/budgetgate/budgetgate/internal/policy"
)

// FreezeExceptionReconciler reports whether each exception is valid and in
// force, and re-queues it at its expiry so that Active turns False on time.
type FreezeExceptionReconciler struct {
	client.Client
	Clock clock.PassiveClock
}

// +kubebuilder:rbac:groups=slo.budgetgate.dev,resources=freezeexceptions,verbs=get;list;watch
// +kubebuilder:rbac:groups=slo.budgetgate.dev,resources=freezeexceptions/status,verbs=get;update;patch

// Reconcile checks one exception.
func (r *FreezeExceptionReconciler) Reconcile(ctx context.Context, req ctrl.Request) (result ctrl.Result, retErr error) {
	fex := &slov1alpha1.FreezeException{}
	if err := r.Get(ctx, req.NamespacedName, fex); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	log := ctrl.LoggerFrom(ctx).WithValues("freezeException", klog.KObj(fex))
	before := fex.DeepCopy()
	defer func() {
		if equality.Semantic.DeepEqual(before.Status, fex.Status) {
			return
		}
		if err := r.Status().Patch(ctx, fex, client.MergeFrom(before)); err != nil {
			retErr = utilerrors.NewAggregate([]error{retErr, fmt.Errorf("patching status of %s: %w", klog.KObj(fex), err)})
			result = ctrl.Result{}
		}
	}()

	now := r.Clock.Now()
	gen := fex.Generation
	fex.Status.ObservedGeneration = gen
	valid := metav1.Condition{Type: slov1alpha1.ConditionValid, Status: metav1.ConditionTrue,
		Reason: slov1alpha1.ReasonValid, ObservedGeneration: gen, Message: "Exception is well-formed"}
	active := metav1.Condition{Type: slov1alpha1.ConditionActive, ObservedGeneration: gen}

	problem, err := r.validate(ctx, fex)
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
		result.RequeueAfter = expiresAt.Sub(now) + time.Second
	}
	fex.Status.Active = active.Status == metav1.ConditionTrue
	meta.SetStatusCondition(&fex.Status.Conditions, valid)
	meta.SetStatusCondition(&fex.Status.Conditions, active)
	log.V(1).Info("Checked FreezeException", "active", fex.Status.Active, "reason", active.Reason)
	return result, nil
}

// validate returns what makes the exception unusable, or "".
func (r *FreezeExceptionReconciler) validate(ctx context.Context, fex *slov1alpha1.FreezeException) (string, error) {
	if fex.Spec.WorkloadSelector != nil {
		if _, err := metav1.LabelSelectorAsSelector(fex.Spec.WorkloadSelector); err != nil {
			return fmt.Sprintf("spec.workloadSelector: %v", err), nil
		}
	}
	if fex.Spec.WorkloadSelector == nil && len(fex.Spec.Workloads) == 0 {
		return "spec: select workloads with workloadSelector or list them in workloads", nil
	}
	if len(fex.Spec.Reason) < 10 {
		return "spec.reason: say why in at least 10 characters", nil
	}
	p, err := policy.ForExceptions(ctx, r.Client, fex.Namespace)
	if err != nil {
		return "", err
	}
	created := fex.CreationTimestamp.Time
	if lifetime := fex.Spec.ExpiresAt.Sub(created); lifetime > p.MaxExceptionDuration {
		return fmt.Sprintf("spec.expiresAt: %s is %s after the exception was created, longer than the maxExceptionDuration %s of policy %q",
			fex.Spec.ExpiresAt.UTC().Format(time.RFC3339), lifetime.Round(time.Second), p.MaxExceptionDuration, p.Name), nil
	}
	return "", nil
}

// SetupWithManager registers the controller.
func (r *FreezeExceptionReconciler) SetupWithManager(mgr ctrl.Manager, opts controller.Options) error {
	if r.Clock == nil {
		r.Clock = clock.RealClock{}
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&slov1alpha1.FreezeException{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		WithOptions(opts).
		Named("freezeexception").
		Complete(r)
}
