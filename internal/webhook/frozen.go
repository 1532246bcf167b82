package webhook

import (
	"context"
	"fmt"

	"sigs.k8s.io/controller-runtime/pkg/client"

	slov1alpha1 "github.com/budgetgate/budgetgate/api/v1alpha1"
	"github.com/budgetgate/budgetgate/internal/freeze"
	"github.com/budgetgate/budgetgate/internal/policy"
	"github.com/budgetgate/budgetgate/internal/sloview"
)

// frozenSLOs reads the frozen SLOs of a namespace from the cache, each with the
// policy its status names. A policy that became invalid or was deleted since the
// freeze began keeps the freeze, with the built-in policy's exempt classes and
// exception bound.
func frozenSLOs(ctx context.Context, cache client.Reader, namespace string) ([]freeze.FrozenSLO, error) {
	list := &slov1alpha1.ServiceLevelObjectiveList{}
	if err := cache.List(ctx, list, client.InNamespace(namespace)); err != nil {
		return nil, fmt.Errorf("listing SLOs in %s: %w", namespace, err)
	}
	var out []freeze.FrozenSLO
	for i := range list.Items {
		slo := &list.Items[i]
		if !slo.Status.Freeze.Active {
			continue
		}
		p, err := policy.ByName(ctx, cache, slo.Status.Policy)
		if err != nil {
			p = policy.Builtin()
		}
		if f, ok := sloview.Frozen(slo, p); ok {
			out = append(out, f)
		}
	}
	return out, nil
}

// namespaceExceptions reads the FreezeExceptions of a namespace that count
// (see sloview.Exception) from the cache.
func namespaceExceptions(ctx context.Context, cache client.Reader, namespace string) ([]freeze.Exception, error) {
	list := &slov1alpha1.FreezeExceptionList{}
	if err := cache.List(ctx, list, client.InNamespace(namespace)); err != nil {
		return nil, fmt.Errorf("listing FreezeExceptions in %s: %w", namespace, err)
	}
	var out []freeze.Exception
	for i := range list.Items {
		if e, ok := sloview.Exception(&list.Items[i]); ok {
			out = append(out, e)
		}
	}
	return out, nil
}
