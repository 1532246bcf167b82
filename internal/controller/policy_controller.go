package controller

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	slov1alpha1 "github.com/budgetgate/budgetgate/api/v1alpha1"
	"github.com/budgetgate/budgetgate/internal/policy"
)

// ErrorBudgetPolicyReconciler validates policies and counts the SLOs using them.
// The SLO controller watches policies itself and re-evaluates their SLOs.
type ErrorBudgetPolicyReconciler struct {
	client.Client
}

// +kubebuilder:rbac:groups=slo.budgetgate.dev,resources=errorbudgetpolicies,verbs=get;list;watch
// +kubebuilder:rbac:groups=slo.budgetgate.dev,resources=errorbudgetpolicies/status,verbs=get;update;patch

// Reconcile validates one policy.
func (r *ErrorBudgetPolicyReconciler) Reconcile(ctx context.Context, req ctrl.Request) (result ctrl.Result, retErr error) {
	ebp := &slov1alpha1.ErrorBudgetPolicy{}
	if err := r.Get(ctx, req.NamespacedName, ebp); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	log := ctrl.LoggerFrom(ctx).WithValues("policy", klog.KObj(ebp))
	patch := newStatusPatch(r.Client, ebp)
	defer func() { retErr = patch.done(ctx, ebp, &result, retErr) }()

	slos := &slov1alpha1.ServiceLevelObjectiveList{}
	if err := r.List(ctx, slos, client.MatchingFields{PolicyNameIndex: ebp.Name}); err != nil {
		return ctrl.Result{}, fmt.Errorf("listing SLOs of policy %s: %w", ebp.Name, err)
	}
	ebp.Status.ServiceLevelObjectives = int32(len(slos.Items))
	ebp.Status.ObservedGeneration = ebp.Generation

	c := metav1.Condition{Type: slov1alpha1.ConditionValid, Status: metav1.ConditionTrue,
		Reason: slov1alpha1.ReasonValid, ObservedGeneration: ebp.Generation}
	p, err := policy.FromSpec(ebp.Name, &ebp.Spec)
	if err != nil {
		c.Status, c.Reason, c.Message = metav1.ConditionFalse, slov1alpha1.ReasonInvalid, err.Error()
		meta.SetStatusCondition(&ebp.Status.Conditions, c)
		log.Info("Invalid ErrorBudgetPolicy", "message", err.Error())
		return ctrl.Result{}, reconcile.TerminalError(err)
	}
	c.Message = fmt.Sprintf("%d rules, mode %s, freezes hold at least %s", len(p.Budget.Rules), p.Mode, p.Budget.MinDuration)
	meta.SetStatusCondition(&ebp.Status.Conditions, c)
	return ctrl.Result{}, nil
}

// SetupWithManager registers the controller; it also recounts a policy's SLOs
// when an SLO appears, goes or changes its policyRef.
func (r *ErrorBudgetPolicyReconciler) SetupWithManager(mgr ctrl.Manager, opts controller.Options) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&slov1alpha1.ErrorBudgetPolicy{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&slov1alpha1.ServiceLevelObjective{}, handler.EnqueueRequestsFromMapFunc(
			func(_ context.Context, o client.Object) []reconcile.Request {
				return []reconcile.Request{{NamespacedName: client.ObjectKey{Name: PolicyNameOf(o.(*slov1alpha1.ServiceLevelObjective))}}}
			}), builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		WithOptions(opts).
		Named("errorbudgetpolicy").
		Complete(r)
}
