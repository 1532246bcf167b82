package webhook

import (
	"context"
	"errors"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	slov1alpha1 "github.com/budgetgate/budgetgate/api/v1alpha1"
	"github.com/budgetgate/budgetgate/internal/budget"
	"github.com/budgetgate/budgetgate/internal/policy"
	"github.com/budgetgate/budgetgate/internal/sli"
)

// The validating webhooks of budgetgate's own kinds check what the CRD schema and
// CEL cannot: PromQL syntax, policy consistency and exception lifetimes. They
// read only the cache and never call Prometheus.

// +kubebuilder:webhook:path=/validate-slo-budgetgate-dev-v1alpha1-servicelevelobjective,mutating=false,failurePolicy=fail,sideEffects=None,groups=slo.budgetgate.dev,resources=servicelevelobjectives,verbs=create;update,versions=v1alpha1,name=vservicelevelobjective-v1alpha1.budgetgate.dev,admissionReviewVersions=v1,timeoutSeconds=5
// +kubebuilder:webhook:path=/validate-slo-budgetgate-dev-v1alpha1-errorbudgetpolicy,mutating=false,failurePolicy=fail,sideEffects=None,groups=slo.budgetgate.dev,resources=errorbudgetpolicies,verbs=create;update,versions=v1alpha1,name=verrorbudgetpolicy-v1alpha1.budgetgate.dev,admissionReviewVersions=v1,timeoutSeconds=5
// +kubebuilder:webhook:path=/validate-slo-budgetgate-dev-v1alpha1-freezeexception,mutating=false,failurePolicy=fail,sideEffects=None,groups=slo.budgetgate.dev,resources=freezeexceptions,verbs=create;update,versions=v1alpha1,name=vfreezeexception-v1alpha1.budgetgate.dev,admissionReviewVersions=v1,timeoutSeconds=5

// SLOValidator validates ServiceLevelObjectives.
type SLOValidator struct {
	Cache client.Reader
}

var _ admission.Validator[*slov1alpha1.ServiceLevelObjective] = &SLOValidator{}

// ValidateCreate checks a new SLO.
func (v *SLOValidator) ValidateCreate(ctx context.Context, slo *slov1alpha1.ServiceLevelObjective) (admission.Warnings, error) {
	return v.validate(ctx, slo)
}

// ValidateUpdate checks a changed SLO.
func (v *SLOValidator) ValidateUpdate(ctx context.Context, _, slo *slov1alpha1.ServiceLevelObjective) (admission.Warnings, error) {
	return v.validate(ctx, slo)
}

// ValidateDelete allows every deletion.
func (v *SLOValidator) ValidateDelete(context.Context, *slov1alpha1.ServiceLevelObjective) (admission.Warnings, error) {
	return nil, nil
}

func (v *SLOValidator) validate(ctx context.Context, slo *slov1alpha1.ServiceLevelObjective) (admission.Warnings, error) {
	var errs []error
	o, err := policy.Objective(&slo.Spec)
	if err != nil {
		errs = append(errs, err)
	}
	if _, err := policy.EvaluationInterval(&slo.Spec); err != nil {
		errs = append(errs, err)
	}
	if ind, err := policy.Indicator(&slo.Spec.Indicator); err != nil {
		errs = append(errs, err)
	} else if err := sli.ValidateIndicator(ind); err != nil {
		errs = append(errs, fmt.Errorf("spec.indicator: %w", err))
	}
	if slo.Spec.WorkloadSelector != nil {
		if _, err := metav1.LabelSelectorAsSelector(slo.Spec.WorkloadSelector); err != nil {
			errs = append(errs, fmt.Errorf("spec.workloadSelector: %w", err))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}

	// The policy may change or appear later, so what depends on it only warns.
	var warnings admission.Warnings
	name := policy.NameOf(slo)
	p, found, err := policy.Get(ctx, v.Cache, name)
	switch {
	case err != nil:
		warnings = append(warnings, err.Error())
	case !found:
		warnings = append(warnings, fmt.Sprintf("ErrorBudgetPolicy %q does not exist yet: the SLO is not evaluated until it does", name))
	default:
		if err := policy.CheckWindows(o, string(slo.Spec.Window), p.Budget); err != nil {
			warnings = append(warnings, fmt.Sprintf("policy %q does not fit this SLO: %v", p.Name, err))
		}
		warnings = append(warnings, budget.Warnings(o, p.Budget)...)
	}
	if slo.Spec.WorkloadSelector == nil || len(slo.Spec.WorkloadSelector.MatchLabels)+len(slo.Spec.WorkloadSelector.MatchExpressions) == 0 {
		warnings = append(warnings, "spec.workloadSelector is empty: this SLO observes only and gates no workload")
	}
	return warnings, nil
}

// PolicyValidator validates ErrorBudgetPolicies.
type PolicyValidator struct{}

var _ admission.Validator[*slov1alpha1.ErrorBudgetPolicy] = &PolicyValidator{}

// ValidateCreate checks a new policy.
func (v *PolicyValidator) ValidateCreate(_ context.Context, p *slov1alpha1.ErrorBudgetPolicy) (admission.Warnings, error) {
	return validatePolicy(p)
}

// ValidateUpdate checks a changed policy.
func (v *PolicyValidator) ValidateUpdate(_ context.Context, _, p *slov1alpha1.ErrorBudgetPolicy) (admission.Warnings, error) {
	return validatePolicy(p)
}

// ValidateDelete allows every deletion.
func (v *PolicyValidator) ValidateDelete(context.Context, *slov1alpha1.ErrorBudgetPolicy) (admission.Warnings, error) {
	return nil, nil
}

func validatePolicy(ebp *slov1alpha1.ErrorBudgetPolicy) (admission.Warnings, error) {
	p, err := policy.FromSpec(ebp.Name, &ebp.Spec)
	if err != nil {
		return nil, err
	}
	hasFreeze := false
	for _, r := range p.Budget.Rules {
		hasFreeze = hasFreeze || r.Action == budget.ActionFreeze
	}
	if !hasFreeze {
		return admission.Warnings{"no rule has action Freeze: SLOs under this policy never freeze releases"}, nil
	}
	return nil, nil
}

// ExceptionValidator validates FreezeExceptions.
type ExceptionValidator struct {
	Cache client.Reader
	Clock clock.PassiveClock
}

var _ admission.Validator[*slov1alpha1.FreezeException] = &ExceptionValidator{}

// ValidateCreate checks a new exception: it must expire in the future, within
// the maxExceptionDuration of the namespace's policies.
func (v *ExceptionValidator) ValidateCreate(ctx context.Context, fex *slov1alpha1.FreezeException) (admission.Warnings, error) {
	return nil, v.validate(ctx, fex, true)
}

// ValidateUpdate checks a changed exception; a new expiry is checked like a new exception's.
func (v *ExceptionValidator) ValidateUpdate(ctx context.Context, old, fex *slov1alpha1.FreezeException) (admission.Warnings, error) {
	return nil, v.validate(ctx, fex, !old.Spec.ExpiresAt.Equal(&fex.Spec.ExpiresAt))
}

// ValidateDelete allows every deletion.
func (v *ExceptionValidator) ValidateDelete(context.Context, *slov1alpha1.FreezeException) (admission.Warnings, error) {
	return nil, nil
}

func (v *ExceptionValidator) validate(ctx context.Context, fex *slov1alpha1.FreezeException, checkExpiry bool) error {
	if fex.Spec.WorkloadSelector != nil {
		if _, err := metav1.LabelSelectorAsSelector(fex.Spec.WorkloadSelector); err != nil {
			return fmt.Errorf("spec.workloadSelector: %w", err)
		}
	}
	if !checkExpiry {
		return nil
	}
	now := v.Clock.Now()
	expiresAt := fex.Spec.ExpiresAt.Time
	if !expiresAt.After(now) {
		return fmt.Errorf("spec.expiresAt: %s is not in the future", expiresAt.UTC().Format(time.RFC3339))
	}
	p, err := policy.ForExceptions(ctx, v.Cache, fex.Namespace)
	if err != nil {
		return err
	}
	// An exception's lifetime counts from its creation, as the exception
	// controller counts it: moving expiresAt later cannot extend it past the bound.
	created, since := now, "from now"
	if !fex.CreationTimestamp.IsZero() {
		created, since = fex.CreationTimestamp.Time, "after the exception was created"
	}
	if d := expiresAt.Sub(created); d > p.MaxExceptionDuration {
		return fmt.Errorf("spec.expiresAt: %s is %s %s, longer than the maxExceptionDuration %s of policy %q; ask again when it runs out",
			expiresAt.UTC().Format(time.RFC3339), d.Round(time.Minute), since, p.MaxExceptionDuration, p.Name)
	}
	return nil
}
