package policy

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
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

// Resolve returns the policy an SLO uses (see ResolveBinding, which also says
// through which binding).
func Resolve(ctx context.Context, c client.Reader, slo *slov1alpha1.ServiceLevelObjective) (Policy, error) {
	r, err := ResolveBinding(ctx, c, slo)
	return r.Policy, err
}

// Resolution is the policy an SLO uses and how it was chosen.
type Resolution struct {
	// Policy is the policy in force.
	Policy Policy
	// Requested is the policy the SLO asks for (NameOf).
	Requested string
	// Binding is the ErrorBudgetPolicyBinding that selects the SLO's
	// namespace (nil when none does); the fields below are set only with one.
	Binding *slov1alpha1.ErrorBudgetPolicyBinding
	// NotAllowed says why the binding does not allow the SLO's policyRef,
	// in which case Policy is the binding's policy; empty when it allows it.
	NotAllowed []string
}

// BoundName is the policy the binding names ("" without a binding).
func (r Resolution) BoundName() string {
	if r.Binding == nil {
		return ""
	}
	return r.Binding.Spec.PolicyRef.Name
}

// AllowOverride is the binding's allowOverride with its default.
func (r Resolution) AllowOverride() slov1alpha1.OverrideMode { return allowOverride(r.Binding) }

func allowOverride(b *slov1alpha1.ErrorBudgetPolicyBinding) slov1alpha1.OverrideMode {
	if b == nil || b.Spec.AllowOverride == "" {
		return slov1alpha1.OverrideNone
	}
	return b.Spec.AllowOverride
}

// ResolveBinding returns the policy an SLO uses, and the binding that decided
// it. Without a binding selecting its namespace (BindingFor): the built-in
// policy for policyRef "built-in"; the named policy for another policyRef
// (NotFoundError, InvalidError); without policyRef the policy named
// "default", or the built-in one when there is none. With a binding: the
// binding's policy for an SLO without a policyRef or one its allowOverride
// does not allow (Resolution.NotAllowed says why); else the policy the SLO
// names. This is the one resolution the controller and the webhooks share.
func ResolveBinding(ctx context.Context, c client.Reader, slo *slov1alpha1.ServiceLevelObjective) (Resolution, error) {
	r := Resolution{Requested: NameOf(slo)}
	b, err := BindingFor(ctx, c, slo.Namespace)
	if err != nil {
		return r, err
	}
	if b == nil {
		r.Policy, err = ByName(ctx, c, r.Requested)
		if IsNotFound(err) && !hasPolicyRef(slo) {
			r.Policy, err = Builtin(), nil
		}
		return r, err
	}
	r.Binding = b
	bound := func() (Policy, error) {
		p, err := ByName(ctx, c, b.Spec.PolicyRef.Name)
		if err != nil {
			return p, fmt.Errorf("the policy of ErrorBudgetPolicyBinding %q: %w", b.Name, err)
		}
		return p, nil
	}
	if !hasPolicyRef(slo) || r.Requested == b.Spec.PolicyRef.Name {
		r.Policy, err = bound()
		return r, err
	}
	switch allowOverride(b) {
	case slov1alpha1.OverrideAny:
		r.Policy, err = ByName(ctx, c, r.Requested)
		return r, err
	case slov1alpha1.OverrideStricter:
		asked, err := ByName(ctx, c, r.Requested)
		if err != nil {
			return r, err
		}
		base, err := bound()
		if err != nil {
			return r, err
		}
		o, err := Objective(&slo.Spec)
		if err != nil {
			// Strictness depends on the objective; without one, the binding's policy.
			r.NotAllowed = []string{"the strictness of a policy is judged for the SLO's target and window, which cannot be read: " + err.Error()}
			r.Policy = base
			return r, nil
		}
		if r.NotAllowed = Weaknesses(asked, base, o); len(r.NotAllowed) == 0 {
			r.Policy = asked
		} else {
			r.Policy = base
		}
		return r, nil
	default:
		r.NotAllowed = []string{"allowOverride is None"}
		r.Policy, err = bound()
		return r, err
	}
}

func hasPolicyRef(slo *slov1alpha1.ServiceLevelObjective) bool {
	return slo.Spec.PolicyRef != nil && slo.Spec.PolicyRef.Name != ""
}

// NotAllowedMessage tells the SLO's author that its policyRef is not
// allowed, by which binding, and what to write instead; "" when it is allowed.
func (r Resolution) NotAllowedMessage(namespace string) string {
	if len(r.NotAllowed) == 0 || r.Binding == nil {
		return ""
	}
	bound := r.BoundName()
	why := ""
	if r.AllowOverride() == slov1alpha1.OverrideStricter {
		why = fmt.Sprintf(", and %q is not at least as strict: %s", r.Requested, strings.Join(r.NotAllowed, "; "))
	}
	fix := fmt.Sprintf("Leave policyRef out (policy %q applies) or write policyRef: {name: %s}", bound, bound)
	if r.AllowOverride() == slov1alpha1.OverrideStricter {
		fix = fmt.Sprintf("Leave policyRef out (policy %q applies), write policyRef: {name: %s}, or name a policy at least as strict", bound, bound)
	}
	return fmt.Sprintf("spec.policyRef: policy %q is not allowed in namespace %s: ErrorBudgetPolicyBinding %q binds policy %q there with allowOverride: %s%s. %s",
		r.Requested, namespace, r.Binding.Name, bound, r.AllowOverride(), why, fix)
}

// BindingFor returns the ErrorBudgetPolicyBinding that decides the policies
// of a namespace's SLOs, nil when none selects it: of the bindings whose
// namespaceSelector matches the namespace's labels, the one with the highest
// priority, and among equal priorities the one whose name sorts first. A
// binding whose selector cannot be read, met before the one that applies,
// is an InvalidBindingError: it might have applied, and guessing could weaken
// a freeze. It reads the namespace's labels only when a binding exists.
func BindingFor(ctx context.Context, c client.Reader, namespace string) (*slov1alpha1.ErrorBudgetPolicyBinding, error) {
	list := &slov1alpha1.ErrorBudgetPolicyBindingList{}
	if err := c.List(ctx, list); err != nil {
		return nil, fmt.Errorf("listing ErrorBudgetPolicyBindings: %w", err)
	}
	if len(list.Items) == 0 {
		return nil, nil
	}
	lbls, err := NamespaceLabels(ctx, c, namespace)
	if err != nil {
		return nil, err
	}
	return SelectBinding(list.Items, lbls)
}

// SelectBinding is BindingFor's choice among bindings for a namespace with
// these labels.
func SelectBinding(bindings []slov1alpha1.ErrorBudgetPolicyBinding, nsLabels map[string]string) (*slov1alpha1.ErrorBudgetPolicyBinding, error) {
	order := make([]*slov1alpha1.ErrorBudgetPolicyBinding, len(bindings))
	for i := range bindings {
		order[i] = &bindings[i]
	}
	slices.SortFunc(order, func(a, b *slov1alpha1.ErrorBudgetPolicyBinding) int {
		if a.Spec.Priority != b.Spec.Priority {
			return cmp.Compare(b.Spec.Priority, a.Spec.Priority)
		}
		return strings.Compare(a.Name, b.Name)
	})
	for _, b := range order {
		sel, err := metav1.LabelSelectorAsSelector(&b.Spec.NamespaceSelector)
		if err != nil {
			return nil, &InvalidBindingError{Name: b.Name, Err: err}
		}
		if sel.Matches(labels.Set(nsLabels)) {
			return b.DeepCopy(), nil
		}
	}
	return nil, nil
}

// InvalidBindingError: a binding's namespaceSelector cannot be read.
type InvalidBindingError struct {
	Name string
	Err  error
}

func (e *InvalidBindingError) Error() string {
	return fmt.Sprintf("ErrorBudgetPolicyBinding %q has an invalid namespaceSelector: %v", e.Name, e.Err)
}

func (e *InvalidBindingError) Unwrap() error { return e.Err }

// IsInvalidBinding tells an InvalidBindingError apart.
func IsInvalidBinding(err error) bool { _, ok := errors.AsType[*InvalidBindingError](err); return ok }

// NamespaceLabels reads a namespace's labels (metadata only, from the
// cache when c is the manager's client). A namespace that does not exist has
// only the label the API server gives every namespace, its name.
func NamespaceLabels(ctx context.Context, c client.Reader, namespace string) (map[string]string, error) {
	ns := &metav1.PartialObjectMetadata{}
	ns.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Namespace"))
	if err := c.Get(ctx, client.ObjectKey{Name: namespace}, ns); err != nil {
		if apierrors.IsNotFound(err) {
			return map[string]string{corev1.LabelMetadataName: namespace}, nil
		}
		return nil, fmt.Errorf("reading the labels of namespace %s: %w", namespace, err)
	}
	return ns.Labels, nil
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
		// Under a binding with allowOverride: Stricter the same policyRef
		// may resolve differently for another objective.
		spec := &slos.Items[i].Spec
		key := NameOf(&slos.Items[i]) + "/" + string(spec.Target) + "/" + string(spec.Window)
		if seen[key] {
			continue
		}
		seen[key] = true
		p, err := Resolve(ctx, c, &slos.Items[i])
		if IsNotFound(err) || IsInvalid(err) || IsInvalidBinding(err) {
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
