// Package sloview is the one translation between budgetgate's API objects and
// its engines: SLO status to the budget engine's state, a frozen SLO to the
// admission decision's view of it, which workloads an SLO selects, and a
// FreezeException to the decision's view (validity, lifetime, who asked and
// who approved). The SLO controller, the webhooks and the CLI all use it, so
// they never disagree about what an object means.
package sloview

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	slov1alpha1 "github.com/budgetgate/budgetgate/api/v1alpha1"
	"github.com/budgetgate/budgetgate/internal/budget"
	"github.com/budgetgate/budgetgate/internal/freeze"
	"github.com/budgetgate/budgetgate/internal/policy"
)

// State reads the freeze state persisted in SLO status.
func State(st *slov1alpha1.ServiceLevelObjectiveStatus) budget.State {
	s := budget.State{
		Frozen:           st.Freeze.Active,
		Since:            TimeOf(st.Freeze.Since),
		HoldUntil:        TimeOf(st.Freeze.HoldUntil),
		Rule:             st.Freeze.Rule,
		LastFreezeFiring: TimeOf(st.Freeze.LastFiringTime),
		Rules:            make(map[string]budget.RuleMemory, len(st.Rules)),
		Evaluated:        TimeOf(st.LastEvaluationTime),
	}
	for _, r := range st.Rules {
		s.Rules[r.Name] = budget.RuleMemory{Firing: r.Firing, LastData: TimeOf(r.LastDataTime)}
	}
	return s
}

// Selector is the selector of the workloads an SLO gates, or nil when it gates
// nothing: no selector, an empty one (which would select every workload of the
// namespace; a typo must never freeze a whole namespace), or one that does not
// parse.
func Selector(slo *slov1alpha1.ServiceLevelObjective) labels.Selector {
	if slo.Spec.WorkloadSelector == nil {
		return nil
	}
	sel, err := metav1.LabelSelectorAsSelector(slo.Spec.WorkloadSelector)
	if err != nil || sel.Empty() {
		return nil
	}
	return sel
}

// Selects reports whether slo gates a workload with these labels in its namespace.
func Selects(slo *slov1alpha1.ServiceLevelObjective, namespace string, lbls map[string]string) bool {
	sel := Selector(slo)
	return sel != nil && slo.Namespace == namespace && sel.Matches(labels.Set(lbls))
}

// Enforcing reports whether the SLO is frozen in Enforce mode.
func Enforcing(slo *slov1alpha1.ServiceLevelObjective) bool {
	return slo.Status.Freeze.Active && slo.Status.Freeze.Mode != slov1alpha1.ModeDryRun
}

// Frozen is the admission decision's view of a frozen SLO under its policy p
// (the one its status names). ok is false when the SLO is not frozen or gates
// nothing.
func Frozen(slo *slov1alpha1.ServiceLevelObjective, p policy.Policy) (freeze.FrozenSLO, bool) {
	sel := Selector(slo)
	if !slo.Status.Freeze.Active || sel == nil {
		return freeze.FrozenSLO{}, false
	}
	return freeze.FrozenSLO{
		Namespace:                slo.Namespace,
		Name:                     slo.Name,
		Selector:                 sel,
		DryRun:                   slo.Status.Freeze.Mode == slov1alpha1.ModeDryRun,
		Policy:                   slo.Status.Policy,
		Rule:                     slo.Status.Freeze.Rule,
		Reason:                   slo.Status.Freeze.Reason,
		Since:                    TimeOf(slo.Status.Freeze.Since),
		HoldUntil:                TimeOf(slo.Status.Freeze.HoldUntil),
		ExemptReleaseClasses:     p.ExemptReleaseClasses,
		MaxExceptionDuration:     p.MaxExceptionDuration,
		RequireExceptionApproval: p.RequireExceptionApproval,
	}, true
}

// ExceptionValid reports whether the exception controller has checked the
// exception's current generation and found it valid (its lifetime bound needs
// the namespace's policies, which the admission path does not resolve).
func ExceptionValid(fex *slov1alpha1.FreezeException) bool {
	for _, c := range fex.Status.Conditions {
		if c.Type == slov1alpha1.ConditionValid {
			return c.Status == metav1.ConditionTrue && c.ObservedGeneration == fex.Generation
		}
	}
	return false
}

// validOnce: the exception controller found some generation of it valid.
func validOnce(fex *slov1alpha1.FreezeException) bool {
	for _, c := range fex.Status.Conditions {
		if c.Type == slov1alpha1.ConditionValid {
			return c.Status == metav1.ConditionTrue
		}
	}
	return false
}

// Exception is the admission decision's view of a FreezeException. ok is false
// for an exception that never counts: not found valid by the exception
// controller, or with a selector that does not parse. Expired and deleted
// exceptions do count (see freeze.Exception: they record break-glass already
// given in this freeze).
func Exception(fex *slov1alpha1.FreezeException) (freeze.Exception, bool) {
	// Setting deletionTimestamp bumps the generation, so a deleted exception's
	// Valid condition is one generation behind. A deleted exception is never
	// honoured, only counted toward the break-glass clock, where counting more
	// can only make the bound stricter.
	if !ExceptionValid(fex) && (fex.DeletionTimestamp == nil || !validOnce(fex)) {
		return freeze.Exception{}, false
	}
	e := freeze.Exception{
		Namespace:   fex.Namespace,
		Name:        fex.Name,
		Reason:      fex.Spec.Reason,
		ExpiresAt:   fex.Spec.ExpiresAt.Time,
		CreatedAt:   fex.CreationTimestamp.Time,
		Terminating: fex.DeletionTimestamp != nil,
		RequestedBy: fex.Spec.RequestedBy,
		ApprovedBy:  fex.Spec.ApprovedBy,
	}
	if fex.Spec.WorkloadSelector != nil {
		sel, err := metav1.LabelSelectorAsSelector(fex.Spec.WorkloadSelector)
		if err != nil {
			return freeze.Exception{}, false
		}
		e.Selector = sel
	}
	for _, w := range fex.Spec.Workloads {
		e.Workloads = append(e.Workloads, freeze.WorkloadRef{Kind: w.Kind, Name: w.Name})
	}
	return e, true
}

// Lifetime is how long an exception may be in force from its creation.
func Lifetime(fex *slov1alpha1.FreezeException) time.Duration {
	return fex.Spec.ExpiresAt.Sub(fex.CreationTimestamp.Time)
}

// TimeOf is the time of a possibly nil metav1.Time (zero when nil).
func TimeOf(t *metav1.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.Time
}

// TimePtr is a metav1.Time for t, nil for the zero time.
func TimePtr(t time.Time) *metav1.Time {
	if t.IsZero() {
		return nil
	}
	return &metav1.Time{Time: t}
}
