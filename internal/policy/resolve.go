package policy

import (
	"context"
	"errors"
	"fmt"

	"sigs.k8s.io/controller-runtime/pkg/client"

	slov1alpha1 "github.com/budgetgate/budgetgate/api/v1alpha1"
)

// This file is the one answer to "which policy does this SLO use", shared by the
// SLO controller, the webhooks and the exception bound, so that they never
// disagree.

// NotFoundError: the SLO names a policy that does not exist (yet).
type NotFoundError struct{ Name string }

func (e *NotFoundError) Error() string { return fmt.Sprintf("ErrorBudgetPolicy %q not found", e.Name) }

// InvalidError: the policy exists but cannot be used as written.
type InvalidError struct {
	Name string
	Err  error
}

func (e *InvalidError) Error() string {
	return fmt.Sprintf("ErrorBudgetPolicy %q is invalid: %v", e.Name, e.Err)
}

func (e *InvalidError) Unwrap() error { return e.Err }

// IsNotFound and IsInvalid tell the typed errors of Resolve and ByName apart
// from errors reading the API.
func IsNotFound(err error) bool { _, ok := errors.AsType[*NotFoundError](err); return ok }
func IsInvalid(err error) bool  { _, ok := errors.AsType[*InvalidError](err); return ok }

// NameOf is the name of the ErrorBudgetPolicy an SLO asks for: its policyRef
// ("built-in" for the built-in policy), or "default" (which falls back to the
// built-in policy when it does not exist).
func NameOf(slo *slov1alpha1.ServiceLevelObjective) string {
	if slo.Spec.PolicyRef != nil && slo.Spec.PolicyRef.Name != "" {
		return slo.Spec.PolicyRef.Name
	}
	return slov1alpha1.DefaultPolicyName
}

// Resolve returns the policy an SLO uses: the built-in policy for policyRef
// "built-in"; the named policy for another policyRef (NotFoundError,
// InvalidError); without policyRef the policy named "default", or the built-in
// one when there is none.
func Resolve(ctx context.Context, c client.Reader, slo *slov1alpha1.ServiceLevelObjective) (Policy, error) {
	name := NameOf(slo)
	p, err := ByName(ctx, c, name)
	if IsNotFound(err) && (slo.Spec.PolicyRef == nil || slo.Spec.PolicyRef.Name == "") {
		return Builtin(), nil
	}
	return p, err
}

// ByName returns a policy by the name Resolve reports (and SLO status records):
// "built-in" is the built-in policy; any other name is an ErrorBudgetPolicy
// (NotFoundError, InvalidError). An ErrorBudgetPolicy cannot be named
// "built-in": the API server rejects the name.
func ByName(ctx context.Context, c client.Reader, name string) (Policy, error) {
	if name == slov1alpha1.BuiltInPolicyName {
		return Builtin(), nil
	}
	ebp := &slov1alpha1.ErrorBudgetPolicy{}
	if err := c.Get(ctx, client.ObjectKey{Name: name}, ebp); err != nil {
		if client.IgnoreNotFound(err) == nil {
			return Policy{}, &NotFoundError{Name: name}
		}
		return Policy{}, fmt.Errorf("getting ErrorBudgetPolicy %q: %w", name, err)
	}
	p, err := FromSpec(ebp.Name, &ebp.Spec)
	if err != nil {
		return Policy{}, &InvalidError{Name: name, Err: err}
	}
	return p, nil
}

// ForExceptions is the policy that bounds FreezeExceptions in a namespace: of
// the policies its SLOs use, the one with the shortest maxExceptionDuration,
// with RequireExceptionApproval if any of them requires approval; the built-in
// policy (24h) when no SLO there uses a valid policy.
func ForExceptions(ctx context.Context, c client.Reader, namespace string) (Policy, error) {
	slos := &slov1alpha1.ServiceLevelObjectiveList{}
	if err := c.List(ctx, slos, client.InNamespace(namespace)); err != nil {
		return Policy{}, fmt.Errorf("listing SLOs in %s: %w", namespace, err)
	}
	var strictest *Policy
	approval := false
	seen := map[string]bool{}
	for i := range slos.Items {
		name := NameOf(&slos.Items[i])
		if seen[name] {
			continue
		}
		seen[name] = true
		p, err := Resolve(ctx, c, &slos.Items[i])
		if IsNotFound(err) || IsInvalid(err) {
			continue // reported on its SLOs
		}
		if err != nil {
			return Policy{}, err
		}
		approval = approval || p.RequireExceptionApproval
		if strictest == nil || p.MaxExceptionDuration < strictest.MaxExceptionDuration {
			strictest = &p
		}
	}
	if strictest == nil {
		return Builtin(), nil
	}
	out := *strictest
	out.RequireExceptionApproval = approval
	return out, nil
}
