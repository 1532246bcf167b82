package controller

import (
	"context"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	slov1alpha1 "github.com/budgetgate/budgetgate/api/v1alpha1"
	"github.com/budgetgate/budgetgate/internal/policy"
)

// PolicyNameIndex indexes SLOs by the ErrorBudgetPolicy they ask for: the
// policyRef name, or "default" for SLOs without one (they use the policy named
// default when it exists).
const PolicyNameIndex = "spec.policyRef.name"

// PolicyNameOf is the value PolicyNameIndex holds for an SLO.
var PolicyNameOf = policy.NameOf

// SetupIndexes registers the field indexes the controllers and webhooks use.
func SetupIndexes(ctx context.Context, mgr ctrl.Manager) error {
	return mgr.GetFieldIndexer().IndexField(ctx, &slov1alpha1.ServiceLevelObjective{}, PolicyNameIndex,
		func(o client.Object) []string {
			return []string{PolicyNameOf(o.(*slov1alpha1.ServiceLevelObjective))}
		})
}
