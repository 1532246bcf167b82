package controller

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	slov1alpha1 "github.com/budgetgate/budgetgate/api/v1alpha1"
	"github.com/budgetgate/budgetgate/internal/sloview"
)

// The SLO's side of ErrorBudgetPolicyBindings: which policy applies and
// through which binding, in status (policy, policyBinding, the PolicyBound
// condition) and in Events, so that a namespace's team sees it without
// rights on the cluster-scoped bindings.

// setPolicyBound records in status which binding chose the policy in force.
func setPolicyBound(slo *slov1alpha1.ServiceLevelObjective, in inputs) {
	r := in.resolution
	c := metav1.Condition{Type: slov1alpha1.ConditionPolicyBound, ObservedGeneration: slo.Generation, Status: metav1.ConditionTrue}
	slo.Status.PolicyBinding = ""
	switch {
	case r.Binding == nil:
		c.Status, c.Reason = metav1.ConditionFalse, slov1alpha1.ReasonNotBound
		c.Message = fmt.Sprintf("No ErrorBudgetPolicyBinding selects namespace %s: policy %q applies (%s)",
			slo.Namespace, in.policy.Name, unboundSource(slo, in.policy.Name))
	case len(r.NotAllowed) > 0:
		slo.Status.PolicyBinding = r.Binding.Name
		c.Reason = slov1alpha1.ReasonPolicyRefNotAllowed
		c.Message = fmt.Sprintf("spec.policyRef %q is not allowed: ErrorBudgetPolicyBinding %q binds policy %q in namespace %s with allowOverride: %s, "+
			"so policy %q applies (%s); leave policyRef out or write policyRef: {name: %s}",
			r.Requested, r.Binding.Name, r.BoundName(), slo.Namespace, r.AllowOverride(), r.BoundName(), strings.Join(r.NotAllowed, "; "), r.BoundName())
	case in.policy.Name != r.BoundName():
		slo.Status.PolicyBinding = r.Binding.Name
		c.Reason = slov1alpha1.ReasonPolicyRefAllowed
		how := "allows any policyRef"
		if r.AllowOverride() == slov1alpha1.OverrideStricter {
			how = fmt.Sprintf("allows a stricter one, which %q is", in.policy.Name)
		}
		c.Message = fmt.Sprintf("ErrorBudgetPolicyBinding %q binds policy %q in namespace %s and %s (allowOverride: %s): spec.policyRef %q applies",
			r.Binding.Name, r.BoundName(), slo.Namespace, how, r.AllowOverride(), in.policy.Name)
	default:
		slo.Status.PolicyBinding = r.Binding.Name
		c.Reason = slov1alpha1.ReasonPolicyBound
		c.Message = fmt.Sprintf("ErrorBudgetPolicyBinding %q binds policy %q in namespace %s (allowOverride: %s)",
			r.Binding.Name, r.BoundName(), slo.Namespace, r.AllowOverride())
	}
	meta.SetStatusCondition(&slo.Status.Conditions, c)
}

func unboundSource(slo *slov1alpha1.ServiceLevelObjective, name string) string {
	switch {
	case slo.Spec.PolicyRef != nil && slo.Spec.PolicyRef.Name != "":
		return "the SLO's policyRef"
	case name == slov1alpha1.DefaultPolicyName:
		return "the policy named default, for SLOs without a policyRef"
	}
	return "no policy named default exists"
}

// choice is what decides an SLO's policy, as its status records it.
type choice struct{ policy, binding, reason string }

func policyChoice(slo *slov1alpha1.ServiceLevelObjective) choice {
	ch := choice{policy: slo.Status.Policy, binding: slo.Status.PolicyBinding}
	if c := meta.FindStatusCondition(slo.Status.Conditions, slov1alpha1.ConditionPolicyBound); c != nil {
		ch.reason = c.Reason
	}
	return ch
}

// recordPolicyChoice emits an Event on the SLO when the policy in force or
// the binding that chose it changed (a binding, a namespace label or the
// SLO's policyRef), and when a binding overrides the SLO's policyRef. A
// change that turns an enforced freeze into warnings is a Warning that says
// so: whoever changed the binding or the label, the team sees it.
func (r *ServiceLevelObjectiveReconciler) recordPolicyChoice(slo *slov1alpha1.ServiceLevelObjective, before choice, wasEnforcing bool) {
	now := policyChoice(slo)
	if r.Recorder == nil || now == before {
		return
	}
	notAllowed := now.reason == slov1alpha1.ReasonPolicyRefNotAllowed
	if before.policy == "" && !notAllowed {
		return // the first evaluation: status says it
	}
	c := meta.FindStatusCondition(slo.Status.Conditions, slov1alpha1.ConditionPolicyBound)
	msg := c.Message
	if before.policy != "" {
		was := fmt.Sprintf("policy %q", before.policy)
		if before.binding != "" {
			was += fmt.Sprintf(" through ErrorBudgetPolicyBinding %q", before.binding)
		}
		msg += "; was " + was
	}
	kind, reason := corev1.EventTypeNormal, "PolicyChanged"
	if wasEnforcing && !sloview.Enforcing(slo) && slo.Status.Freeze.Active {
		kind = corev1.EventTypeWarning
		msg += fmt.Sprintf("; the freeze is no longer enforced: policy %q is in %s mode", slo.Status.Policy, slo.Status.Freeze.Mode)
	}
	if notAllowed {
		kind, reason = corev1.EventTypeWarning, slov1alpha1.ReasonPolicyRefNotAllowed
	}
	r.Recorder.Eventf(slo, nil, kind, reason, "Resolve", "%s", msg)
}
