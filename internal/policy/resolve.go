package policy

import (
	"context"
	"fmt"

	"sigs.k8s.io/controller-runtime/pkg/client"

	slov1alpha1 "github.com/budgetgate/budgetgate/api/v1alpha1"
)

// NameOf is the name of the ErrorBudgetPolicy an SLO asks for: its policyRef, or
// "default" (which falls back to the built-in policy when it does not exist).
func NameOf(slo *slov1alpha1.ServiceLevelObjective) string {
	if slo.Spec.PolicyRef != nil && slo.Spec.PolicyRef.Name != "" {
		return slo.Spec.PolicyRef.Name
	}
	return slov1alpha1.DefaultPolicyName
}

// Get reads a policy by name: the built-in one for "built-in", or for "default"
// when no policy has that name. found is false when a named policy is missing.
func Get(ctx context.Context, c client.Reader, name string) (p Policy, found bool, err error) {
	if name == slov1alpha1.BuiltInPolicyName {
		return Builtin(), true, nil
	}
	ebp := &slov1alpha1.ErrorBudgetPolicy{}
	if err := c.Get(ctx, client.ObjectKey{Name: name}, ebp); err != nil {
		if client.IgnoreNotFound(err) != nil {
			return Policy{}, false, fmt.Errorf("getting ErrorBudgetPolicy %q: %w", name, err)
		}
		if name == slov1alpha1.DefaultPolicyName {
			return Builtin(), true, nil
		}
		return Policy{}, false, nil
	}
	p, err = FromSpec(ebp.Name, &ebp.Spec)
	return p, true, err
}

// ForExceptions is the policy that bounds FreezeExceptions in a namespace: of
// the policies its SLOs use, the one with the shortest maxExceptionDuration; the
// built-in policy (24h) when no SLO there uses a valid policy.
func ForExceptions(ctx context.Context, c client.Reader, namespace string) (Policy, error) {
	slos := &slov1alpha1.ServiceLevelObjectiveList{}
	if err := c.List(ctx, slos, client.InNamespace(namespace)); err != nil {
		return Policy{}, fmt.Errorf("listing SLOs in %s: %w", namespace, err)
	}
	var strictest *Policy
	seen := map[string]bool{}
	for i := range slos.Items {
		name := NameOf(&slos.Items[i])
		if seen[name] {
			continue
		}
		seen[name] = true
		p, found, err := Get(ctx, c, name)
		if err != nil || !found {
			continue // an invalid or missing policy is reported on its SLOs
		}
		if strictest == nil || p.MaxExceptionDuration < strictest.MaxExceptionDuration {
			strictest = &p
		}
	}
	if strictest == nil {
		return Builtin(), nil
	}
	return *strictest, nil
}
