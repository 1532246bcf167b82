package webhook

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/recorder"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	slov1alpha1 "github.com/budgetgate/budgetgate/api/v1alpha1"
	"github.com/budgetgate/budgetgate/internal/policy"
	"github.com/budgetgate/budgetgate/internal/sloview"
)

// BindingPath is the admission webhook of ErrorBudgetPolicyBindings.
const BindingPath = "/validate-slo-budgetgate-dev-v1alpha1-errorbudgetpolicybinding"

const auditBindingInUseBy = "binding-in-use-by-frozen"

// +kubebuilder:webhook:path=/validate-slo-budgetgate-dev-v1alpha1-errorbudgetpolicybinding,mutating=false,failurePolicy=fail,sideEffects=NoneOnDryRun,groups=slo.budgetgate.dev,resources=errorbudgetpolicybindings,verbs=create;update;delete,versions=v1alpha1,name=verrorbudgetpolicybinding-v1alpha1.budgetgate.dev,admissionReviewVersions=v1,timeoutSeconds=5

// BindingHandler admits ErrorBudgetPolicyBindings: a namespaceSelector that
// cannot be read is rejected (the controller would stop evaluating the SLOs
// it may select); a missing policy and a tie with another binding are
// warnings; and, as for policies, a binding written or deleted while frozen
// SLOs it governs or selects are in Enforce mode is admitted (bindings are the
// platform's to write) but recorded with the user.
type BindingHandler struct {
	Cache    client.Reader
	Recorder recorder.EventRecorder
}

// Handle validates a binding and records changes that reach frozen SLOs.
func (h *BindingHandler) Handle(ctx context.Context, req admission.Request) admission.Response {
	b, old, err := decode[slov1alpha1.ErrorBudgetPolicyBinding](req)
	if err != nil {
		return admission.Errored(http.StatusBadRequest, err)
	}
	var warnings []string
	if b != nil && req.Operation != admissionv1.Delete {
		sel, err := metav1.LabelSelectorAsSelector(&b.Spec.NamespaceSelector)
		if err != nil {
			return verdict(nil, nil, fmt.Errorf("spec.namespaceSelector: %w", err))
		}
		warnings = h.warnings(ctx, b, sel)
	}
	if req.Operation == admissionv1.Update && equality.Semantic.DeepEqual(old.Spec, b.Spec) {
		return verdict(warnings, nil, nil)
	}
	name := req.Name
	if b != nil && b.Name != "" {
		name = b.Name
	}
	after := b
	if req.Operation == admissionv1.Delete {
		after = nil
	}
	frozen, err := h.frozenUnder(ctx, name, after)
	if err != nil || len(frozen) == 0 {
		return verdict(warnings, nil, nil)
	}
	verb := map[admissionv1.Operation]string{admissionv1.Create: "created", admissionv1.Update: "changed", admissionv1.Delete: "deleted"}[req.Operation]
	note := fmt.Sprintf("%s %s ErrorBudgetPolicyBinding %s while %d SLOs it governs are frozen (%s); they are evaluated again under the change right away",
		req.UserInfo.Username, verb, name, len(frozen), strings.Join(frozen, ", "))
	if h.Recorder != nil && !isDryRun(req) {
		subject := old
		if subject == nil {
			subject = b
		}
		h.Recorder.Eventf(subject, nil, corev1.EventTypeWarning, "BindingChangedDuringFreeze", "Change", "%s", note)
	}
	warnings = append(warnings, "budgetgate: "+note+"; this is recorded")
	return verdict(warnings, map[string]string{"user": req.UserInfo.Username, auditBindingInUseBy: strings.Join(frozen, ",")}, nil)
}

// warnings: the policy does not exist or is invalid; another binding of the
// same priority selects some of the same namespaces (the first name wins).
func (h *BindingHandler) warnings(ctx context.Context, b *slov1alpha1.ErrorBudgetPolicyBinding, sel labels.Selector) []string {
	var out []string
	if _, err := policy.ByName(ctx, h.Cache, b.Spec.PolicyRef.Name); policy.IsNotFound(err) {
		out = append(out, fmt.Sprintf("spec.policyRef: ErrorBudgetPolicy %q does not exist yet: the SLOs of the namespaces this binding selects are not evaluated until it does",
			b.Spec.PolicyRef.Name))
	} else if err != nil {
		out = append(out, "spec.policyRef: "+err.Error())
	}
	others := &slov1alpha1.ErrorBudgetPolicyBindingList{}
	nss := namespaceList()
	if h.Cache.List(ctx, others) != nil || h.Cache.List(ctx, nss) != nil {
		return out
	}
	for i := range others.Items {
		o := &others.Items[i]
		if o.Name == b.Name || o.Spec.Priority != b.Spec.Priority {
			continue
		}
		osel, err := metav1.LabelSelectorAsSelector(&o.Spec.NamespaceSelector)
		if err != nil {
			continue
		}
		var both []string
		for j := range nss.Items {
			if l := labels.Set(nss.Items[j].Labels); sel.Matches(l) && osel.Matches(l) {
				both = append(both, nss.Items[j].Name)
			}
		}
		if len(both) == 0 {
			continue
		}
		first := min(b.Name, o.Name)
		out = append(out, fmt.Sprintf("spec.priority: ErrorBudgetPolicyBinding %q has the same priority %d and also selects namespaces %s; "+
			"there the binding whose name sorts first (%q) applies: give the one that should apply a higher priority",
			o.Name, b.Spec.Priority, strings.Join(firstN(both, 5), ", "), first))
	}
	return out
}

// frozenUnder lists "namespace/name" of the SLOs frozen in Enforce mode
// that the binding governs now (their status names it) or will govern after
// the request (b; nil when it deletes the binding).
func (h *BindingHandler) frozenUnder(ctx context.Context, name string, b *slov1alpha1.ErrorBudgetPolicyBinding) ([]string, error) {
	list := &slov1alpha1.ServiceLevelObjectiveList{}
	if err := h.Cache.List(ctx, list); err != nil {
		return nil, err
	}
	bindings := &slov1alpha1.ErrorBudgetPolicyBindingList{}
	nss := namespaceList()
	if b != nil {
		if err := h.Cache.List(ctx, bindings); err != nil {
			return nil, err
		}
		bindings.Items = slices.DeleteFunc(bindings.Items, func(o slov1alpha1.ErrorBudgetPolicyBinding) bool { return o.Name == name })
		bindings.Items = append(bindings.Items, *b)
		if err := h.Cache.List(ctx, nss); err != nil {
			return nil, err
		}
	}
	governs := map[string]bool{}
	for i := range nss.Items {
		if w, err := policy.SelectBinding(bindings.Items, nss.Items[i].Labels); err == nil && w != nil && w.Name == name {
			governs[nss.Items[i].Name] = true
		}
	}
	var out []string
	for i := range list.Items {
		s := &list.Items[i]
		if sloview.Enforcing(s) && (s.Status.PolicyBinding == name || governs[s.Namespace]) {
			out = append(out, s.Namespace+"/"+s.Name)
		}
	}
	slices.Sort(out)
	return out, nil
}

func namespaceList() *metav1.PartialObjectMetadataList {
	l := &metav1.PartialObjectMetadataList{}
	l.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("NamespaceList"))
	return l
}

func firstN(s []string, n int) []string {
	if len(s) <= n {
		return s
	}
	return append(s[:n:n], fmt.Sprintf("and %d more", len(s)-n))
}
