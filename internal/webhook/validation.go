package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/recorder"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	slov1alpha1 "github.com/budgetgate/budgetgate/api/v1alpha1"
	"github.com/budgetgate/budgetgate/internal/freeze"
	"github.com/budgetgate/budgetgate/internal/policy"
	"github.com/budgetgate/budgetgate/internal/promconn"
	"github.com/budgetgate/budgetgate/internal/sli"
	"github.com/budgetgate/budgetgate/internal/sloview"
)

// The admission of budgetgate's own kinds checks what the CRD schema and CEL
// cannot (PromQL syntax, policy consistency, exception lifetimes), and holds
// the trust model for them (docs/security.md): a frozen SLO cannot be changed
// or deleted to dissolve its freeze without the lift-freeze verb, policy
// changes under a freeze are recorded, and an exception's requester and
// approver are the users the API server authenticated. The handlers read only
// the cache and never call Prometheus.

// Paths of the admission webhooks of budgetgate's kinds.
const (
	SLOPath              = "/validate-slo-budgetgate-dev-v1alpha1-servicelevelobjective"
	PolicyPath           = "/validate-slo-budgetgate-dev-v1alpha1-errorbudgetpolicy"
	ExceptionPath        = "/validate-slo-budgetgate-dev-v1alpha1-freezeexception"
	ExceptionMutatePath  = "/mutate-slo-budgetgate-dev-v1alpha1-freezeexception"
	namespaceController  = "system:serviceaccount:kube-system:namespace-controller"
	auditChangedFrozen   = "changed-frozen-slo"
	auditPolicyInUseBy   = "policy-in-use-by-frozen"
	auditExceptionApprov = "exception-approved-by"
)

// +kubebuilder:webhook:path=/validate-slo-budgetgate-dev-v1alpha1-servicelevelobjective,mutating=false,failurePolicy=fail,sideEffects=NoneOnDryRun,groups=slo.budgetgate.dev,resources=servicelevelobjectives,verbs=create;update;delete,versions=v1alpha1,name=vservicelevelobjective-v1alpha1.budgetgate.dev,admissionReviewVersions=v1,timeoutSeconds=5
// +kubebuilder:webhook:path=/validate-slo-budgetgate-dev-v1alpha1-errorbudgetpolicy,mutating=false,failurePolicy=fail,sideEffects=NoneOnDryRun,groups=slo.budgetgate.dev,resources=errorbudgetpolicies,verbs=create;update;delete,versions=v1alpha1,name=verrorbudgetpolicy-v1alpha1.budgetgate.dev,admissionReviewVersions=v1,timeoutSeconds=5
// +kubebuilder:webhook:path=/validate-slo-budgetgate-dev-v1alpha1-freezeexception,mutating=false,failurePolicy=fail,sideEffects=None,groups=slo.budgetgate.dev,resources=freezeexceptions,verbs=create;update,versions=v1alpha1,name=vfreezeexception-v1alpha1.budgetgate.dev,admissionReviewVersions=v1,timeoutSeconds=5
// +kubebuilder:webhook:path=/mutate-slo-budgetgate-dev-v1alpha1-freezeexception,mutating=true,failurePolicy=fail,sideEffects=None,groups=slo.budgetgate.dev,resources=freezeexceptions,verbs=create;update,versions=v1alpha1,name=mfreezeexception-v1alpha1.budgetgate.dev,admissionReviewVersions=v1,timeoutSeconds=5

// decode reads the new and old object of a request into fresh objects of type T
// (nil where the request has none).
func decode[T any](req admission.Request) (obj, old *T, err error) {
	if len(req.Object.Raw) > 0 {
		obj = new(T)
		if err := json.Unmarshal(req.Object.Raw, obj); err != nil {
			return nil, nil, fmt.Errorf("decoding the object: %w", err)
		}
	}
	if len(req.OldObject.Raw) > 0 {
		old = new(T)
		if err := json.Unmarshal(req.OldObject.Raw, old); err != nil {
			return nil, nil, fmt.Errorf("decoding the old object: %w", err)
		}
	}
	return obj, old, nil
}

// verdict turns a validation outcome into a response.
func verdict(warnings []string, audit map[string]string, err error) admission.Response {
	var resp admission.Response
	if err != nil {
		resp = admission.Denied(err.Error())
		resp.Result.Reason = metav1.StatusReasonForbidden
	} else {
		resp = admission.Allowed("")
		if len(audit) > 0 {
			resp.AuditAnnotations = audit
		}
	}
	resp.Warnings = warnings
	return resp
}

func isDryRun(req admission.Request) bool { return req.DryRun != nil && *req.DryRun }

// SLOHandler admits ServiceLevelObjectives.
type SLOHandler struct {
	Cache    client.Reader
	Writer   client.Client
	Recorder recorder.EventRecorder
	Deadline time.Duration
	// Contact is the platform's contact, the last line of a denial (--contact).
	Contact string
	// Connections are the Prometheus connections an SLO may name (nil: not checked).
	Connections *promconn.Set
}

// Handle validates a created or changed SLO, and guards a frozen one.
func (h *SLOHandler) Handle(ctx context.Context, req admission.Request) admission.Response {
	slo, old, err := decode[slov1alpha1.ServiceLevelObjective](req)
	if err != nil {
		return admission.Errored(http.StatusBadRequest, err)
	}
	ctx, cancel := context.WithTimeout(ctx, deadline(h.Deadline))
	defer cancel()
	var warnings []string
	// An update that leaves the spec as it is (metadata, finalizers) is not
	// validated again: what was admitted stays admissible, so that an SLO
	// written before a rule existed can still lose its finalizer.
	if slo != nil && req.Operation != admissionv1.Delete && (old == nil || !equality.Semantic.DeepEqual(old.Spec, slo.Spec)) {
		if warnings, err = validateSLO(ctx, h.Cache, h.Connections, slo, old); err != nil {
			return verdict(nil, nil, err)
		}
	}
	if old == nil || (req.Operation != admissionv1.Update && req.Operation != admissionv1.Delete) {
		return verdict(warnings, nil, nil)
	}
	changed := frozenChanges(old, slo, req.Operation)
	if len(changed) == 0 || !sloview.Enforcing(old) {
		return verdict(warnings, nil, nil)
	}
	if req.Operation == admissionv1.Delete && req.UserInfo.Username == namespaceController {
		return verdict(warnings, nil, nil) // the namespace itself is going away
	}
	what := strings.Join(changed, ", ")
	ok, err := authorize(ctx, h.Writer, req.UserInfo, &authorizationv1.ResourceAttributes{
		Namespace: old.Namespace, Verb: slov1alpha1.VerbLiftFreeze, Group: slov1alpha1.GroupVersion.Group, Resource: "servicelevelobjectives", Name: old.Name,
	})
	if err != nil {
		return verdict(warnings, nil, fmt.Errorf("budgetgate: SLO %s/%s is frozen, and whether %q may change it (%s) could not be checked: %w; retry in a moment\n%s",
			old.Namespace, old.Name, req.UserInfo.Username, what, err, freeze.HelpLine(h.Contact, old.Namespace)))
	}
	if !ok {
		// The same shape as the release gate's denials: what was blocked and
		// why on the first line, then the next steps, then the contact.
		return verdict(warnings, nil, fmt.Errorf("budgetgate: SLO %s/%s is frozen (rule %s, since %s) and %s would change or lift the freeze of its workloads, "+
			"which needs the %s verb on servicelevelobjectives.slo.budgetgate.dev in namespace %s: %q does not have it.\n"+
			"Make the change after the freeze lifts, or ask someone for whom %s says yes.\n%s\n%s",
			old.Namespace, old.Name, old.Status.Freeze.Rule, formatTime(old.Status.Freeze.Since), what, slov1alpha1.VerbLiftFreeze, old.Namespace,
			req.UserInfo.Username, freeze.CanI(slov1alpha1.VerbLiftFreeze, old.Name, old.Namespace),
			freeze.SeeFreezeLine(old.Namespace, old.Name), freeze.HelpLine(h.Contact, old.Namespace)))
	}
	note := fmt.Sprintf("%s, who may %s, changed the frozen SLO: %s", req.UserInfo.Username, slov1alpha1.VerbLiftFreeze, what)
	if h.Recorder != nil && !isDryRun(req) {
		h.Recorder.Eventf(old, nil, corev1.EventTypeWarning, "FrozenSLOChanged", "Change", "%s", note)
	}
	warnings = append(warnings, "budgetgate: "+note+"; this is recorded")
	return verdict(warnings, map[string]string{"user": req.UserInfo.Username, auditChangedFrozen: what}, nil)
}

// frozenChanges lists what an update or deletion changes of a frozen SLO that
// decides its freeze: what it measures, against which objective and policy,
// and which workloads it gates (including owner references, through which the
// garbage collector would delete it).
func frozenChanges(old, slo *slov1alpha1.ServiceLevelObjective, op admissionv1.Operation) []string {
	if op == admissionv1.Delete || slo == nil {
		return []string{"deleting it"}
	}
	var out []string
	check := func(field string, a, b any) {
		if !equality.Semantic.DeepEqual(a, b) {
			out = append(out, field)
		}
	}
	o, n := &old.Spec, &slo.Spec
	check("spec.target", o.Target, n.Target)
	check("spec.window", o.Window, n.Window)
	check("spec.indicator", o.Indicator, n.Indicator)
	check("spec.workloadSelector", o.WorkloadSelector, n.WorkloadSelector)
	check("spec.policyRef", policy.NameOf(old), policy.NameOf(slo))
	check("spec.prometheus", o.Prometheus, n.Prometheus)
	check("metadata.ownerReferences", old.OwnerReferences, slo.OwnerReferences)
	return out
}

func formatTime(t *metav1.Time) string {
	if t == nil {
		return "an unknown time"
	}
	return t.UTC().Format(time.RFC3339)
}

// validateSLO checks what the schema cannot, and warns about what will not work
// as the author probably expects. old is the SLO before an update, nil on create.
func validateSLO(ctx context.Context, cache client.Reader, conns *promconn.Set, slo, old *slov1alpha1.ServiceLevelObjective) ([]string, error) {
	var errs []error
	o, err := policy.Objective(&slo.Spec)
	if err != nil {
		errs = append(errs, err)
	}
	if _, err := policy.EvaluationInterval(&slo.Spec); err != nil {
		errs = append(errs, err)
	}
	ind, err := policy.Indicator(&slo.Spec.Indicator)
	if err != nil {
		errs = append(errs, err)
	} else if err := sli.ValidateIndicator(ind); err != nil {
		errs = append(errs, indicatorError(err))
	}
	if slo.Spec.WorkloadSelector != nil {
		if _, err := metav1.LabelSelectorAsSelector(slo.Spec.WorkloadSelector); err != nil {
			errs = append(errs, selectorError(err))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}

	// The connection is checked when it is chosen; one that went away under
	// an SLO (the platform changed the operator's connections) only warns.
	var warnings []string
	if conns != nil {
		if err := checkConnection(ctx, cache, conns, slo); err != nil {
			if old == nil || promconn.NameOf(&old.Spec) != promconn.NameOf(&slo.Spec) {
				return nil, err
			}
			warnings = append(warnings, err.Error())
		}
	}

	// The policy may change or appear later, so what depends on it only warns.
	res, err := policy.ResolveBinding(ctx, cache, slo)
	p := res.Policy
	// A policyRef that the namespace's binding does not allow is rejected
	// when it is written; on other updates (the binding came later) it is
	// a warning, and the binding's policy applies (status says so).
	if msg := res.NotAllowedMessage(slo.Namespace); msg != "" && err == nil {
		if old == nil || policy.NameOf(old) != policy.NameOf(slo) {
			return nil, errors.New(msg)
		}
		warnings = append(warnings, msg)
	}
	switch {
	case policy.IsNotFound(err) && res.Binding != nil && policy.NameOf(slo) != res.BoundName():
		warnings = append(warnings, fmt.Sprintf("spec.policyRef: ErrorBudgetPolicy %q does not exist yet, and the SLO is not evaluated until it does; "+
			"create it, or leave policyRef out to use policy %q, which ErrorBudgetPolicyBinding %q binds in namespace %s", policy.NameOf(slo), res.BoundName(), res.Binding.Name, slo.Namespace))
	case policy.IsNotFound(err) && res.Binding != nil:
		warnings = append(warnings, fmt.Sprintf("ErrorBudgetPolicyBinding %q binds policy %q in namespace %s, which does not exist yet: the SLO is not evaluated until it does",
			res.Binding.Name, res.BoundName(), slo.Namespace))
	case policy.IsNotFound(err):
		warnings = append(warnings, fmt.Sprintf("spec.policyRef: ErrorBudgetPolicy %q does not exist yet, and the SLO is not evaluated until it does; "+
			"create it, or leave policyRef out to use the policy named %q (else the built-in one)", policy.NameOf(slo), slov1alpha1.DefaultPolicyName))
	case err != nil:
		warnings = append(warnings, err.Error())
	default:
		// A burn window longer than the SLO window stops the SLO's evaluation
		// (Ready=False, InvalidPolicy). Rejected when the SLO is written with
		// that window and policy; only a warning on other updates, since the
		// policy may have changed under an SLO that was fine.
		if rule, long := policy.LongestBurnWindow(p.Budget); long > o.Window {
			msg := fmt.Sprintf("spec.window: %s is shorter than the longWindow %s of rule %q of policy %q, so the SLO could not be evaluated; "+
				"write a window of at least %s, or set spec.policyRef to a policy with shorter windows",
				slo.Spec.Window, model.Duration(long), rule, p.Name, model.Duration(long))
			if old == nil || old.Spec.Window != slo.Spec.Window || policy.NameOf(old) != policy.NameOf(slo) {
				return nil, errors.New(msg)
			}
			warnings = append(warnings, msg)
		}
		warnings = append(warnings, policy.SpecWarnings(&slo.Spec, o, ind, p)...)
	}
	if sloview.Selector(slo) == nil {
		warnings = append(warnings, "spec.workloadSelector is empty: this SLO observes only and gates no workload; "+
			"to gate releases, select the workloads it protects, e.g. matchLabels: {app.kubernetes.io/part-of: checkout}")
	}
	return warnings, nil
}

// checkConnection says whether the SLO's namespace may use the Prometheus
// connection it names.
func checkConnection(ctx context.Context, cache client.Reader, conns *promconn.Set, slo *slov1alpha1.ServiceLevelObjective) error {
	name := promconn.NameOf(&slo.Spec)
	var nsLabels map[string]string
	if conns.NeedsNamespaceLabels(name) {
		var err error
		if nsLabels, err = policy.NamespaceLabels(ctx, cache, slo.Namespace); err != nil {
			return fmt.Errorf("spec.prometheus.connection: could not read the labels of namespace %s to check connection %q: %w; retry in a moment", slo.Namespace, name, err)
		}
	}
	if _, err := conns.Resolve(name, slo.Namespace, nsLabels); err != nil {
		return fmt.Errorf("spec.prometheus.connection: %w", err)
	}
	return nil
}

// selectorError says what is wrong with a workloadSelector, and for an
// unknown operator which ones there are.
func selectorError(err error) error {
	if strings.Contains(err.Error(), "is not a valid label selector operator") {
		return fmt.Errorf("spec.workloadSelector: %w; write In, NotIn, Exists or DoesNotExist", err)
	}
	return fmt.Errorf("spec.workloadSelector: %w", err)
}

// indicatorError names each wrong field of an indicator in full
// ("spec.indicator.ratio.errors: ...").
func indicatorError(err error) error {
	fields := sli.FieldErrors(err)
	if len(fields) == 0 {
		return fmt.Errorf("spec.indicator: %s", strings.TrimPrefix(err.Error(), sli.ErrBadIndicator.Error()+": "))
	}
	errs := make([]error, len(fields))
	for i, fe := range fields {
		errs[i] = fmt.Errorf("spec.indicator.%s: %w", fe.Field, fe.Err)
	}
	return errors.Join(errs...)
}

// PolicyHandler admits ErrorBudgetPolicies and records changes to a policy
// that frozen SLOs use.
type PolicyHandler struct {
	Cache    client.Reader
	Recorder recorder.EventRecorder
}

// Handle validates a policy; a change or deletion while SLOs under it are frozen
// is admitted (policies are the platform's to write) but recorded with the user.
func (h *PolicyHandler) Handle(ctx context.Context, req admission.Request) admission.Response {
	ebp, old, err := decode[slov1alpha1.ErrorBudgetPolicy](req)
	if err != nil {
		return admission.Errored(http.StatusBadRequest, err)
	}
	var warnings []string
	if ebp != nil && req.Operation != admissionv1.Delete {
		p, err := policy.FromSpec(ebp.Name, &ebp.Spec)
		if err != nil {
			return verdict(nil, nil, err)
		}
		warnings = policy.PolicyWarnings(&ebp.Spec, p)
	}
	if old == nil || (req.Operation == admissionv1.Update && equality.Semantic.DeepEqual(old.Spec, ebp.Spec)) {
		return verdict(warnings, nil, nil)
	}
	frozen, err := frozenUnderPolicy(ctx, h.Cache, old.Name)
	if err != nil || len(frozen) == 0 {
		return verdict(warnings, nil, nil)
	}
	verb := "changed"
	if req.Operation == admissionv1.Delete {
		verb = "deleted"
	}
	note := fmt.Sprintf("%s %s policy %s while %d SLOs under it are frozen (%s); they follow the change at their next evaluation",
		req.UserInfo.Username, verb, old.Name, len(frozen), strings.Join(frozen, ", "))
	if req.Operation == admissionv1.Delete {
		then := "their freezes hold until the policy exists again"
		if old.Name == slov1alpha1.DefaultPolicyName {
			then = "those without a policyRef follow the built-in policy from their next evaluation"
		}
		note = fmt.Sprintf("%s deleted policy %s while %d SLOs under it are frozen (%s); %s",
			req.UserInfo.Username, old.Name, len(frozen), strings.Join(frozen, ", "), then)
	}
	if h.Recorder != nil && !isDryRun(req) {
		h.Recorder.Eventf(old, nil, corev1.EventTypeWarning, "PolicyChangedDuringFreeze", "Change", "%s", note)
	}
	warnings = append(warnings, "budgetgate: "+note+"; this is recorded")
	return verdict(warnings, map[string]string{"user": req.UserInfo.Username, auditPolicyInUseBy: strings.Join(frozen, ",")}, nil)
}

// frozenUnderPolicy lists "namespace/name" of the SLOs frozen in Enforce mode
// under the policy of this name (as their status records it).
func frozenUnderPolicy(ctx context.Context, cache client.Reader, name string) ([]string, error) {
	list := &slov1alpha1.ServiceLevelObjectiveList{}
	if err := cache.List(ctx, list); err != nil {
		return nil, err
	}
	var out []string
	for i := range list.Items {
		s := &list.Items[i]
		if s.Status.Policy == name && sloview.Enforcing(s) {
			out = append(out, s.Namespace+"/"+s.Name)
		}
	}
	slices.Sort(out)
	return out, nil
}

// ExceptionHandler validates FreezeExceptions: expiry within the policy bound,
// requester and approver as the API server authenticated them.
type ExceptionHandler struct {
	Cache    client.Reader
	Writer   client.Client
	Clock    clock.PassiveClock
	Deadline time.Duration
}

// Handle validates a created or changed exception.
func (h *ExceptionHandler) Handle(ctx context.Context, req admission.Request) admission.Response {
	fex, old, err := decode[slov1alpha1.FreezeException](req)
	if err != nil {
		return admission.Errored(http.StatusBadRequest, err)
	}
	if fex == nil {
		return verdict(nil, nil, nil)
	}
	ctx, cancel := context.WithTimeout(ctx, deadline(h.Deadline))
	defer cancel()
	if fex.Spec.WorkloadSelector != nil {
		sel, err := metav1.LabelSelectorAsSelector(fex.Spec.WorkloadSelector)
		if err != nil {
			return verdict(nil, nil, selectorError(err))
		}
		// An empty selector covers no workload (only a non-empty one does),
		// so an exception with nothing else would be ignored as invalid.
		if sel.Empty() && len(fex.Spec.Workloads) == 0 && (old == nil || !equality.Semantic.DeepEqual(old.Spec, fex.Spec)) {
			return verdict(nil, nil, errors.New("spec.workloadSelector: an empty selector covers no workload; "+
				"select the workloads by label, e.g. matchLabels: {app: checkout}, or list them in spec.workloads"))
		}
	}
	user := req.UserInfo.Username
	if old == nil {
		if fex.Spec.RequestedBy != user {
			return verdict(nil, nil, fmt.Errorf("spec.requestedBy: %q is not you (%q); leave it out: budgetgate records who creates an exception", fex.Spec.RequestedBy, user))
		}
		if fex.Spec.ApprovedBy != "" {
			return verdict(nil, nil, errors.New("spec.approvedBy: an exception cannot be created approved; a second person approves it with kubectl annotate fex NAME budgetgate.dev/approve=true"))
		}
		return verdict(nil, nil, h.checkExpiry(ctx, fex))
	}
	if !fex.Spec.ExpiresAt.Equal(&old.Spec.ExpiresAt) {
		if err := h.checkExpiry(ctx, fex); err != nil {
			return verdict(nil, nil, err)
		}
	}
	if fex.Spec.ApprovedBy == "" || fex.Spec.ApprovedBy == old.Spec.ApprovedBy {
		if fex.Spec.ApprovedBy != "" && scopeChanged(old, fex) {
			return verdict(nil, nil, fmt.Errorf("spec: an approved exception cannot change what it covers, its reason or its expiry; "+
				"remove spec.approvedBy and spec.approvedAt with the change and have it approved again"))
		}
		return verdict(nil, nil, nil)
	}
	return h.approve(ctx, req.UserInfo, fex)
}

// approve checks an approval: the approver is the user making the request,
// not the requester, and may approve freezeexceptions in the namespace.
func (h *ExceptionHandler) approve(ctx context.Context, user authenticationv1.UserInfo, fex *slov1alpha1.FreezeException) admission.Response {
	switch {
	case fex.Spec.ApprovedBy != user.Username:
		return verdict(nil, nil, fmt.Errorf("spec.approvedBy: %q is not you (%q); approve with kubectl annotate fex %s -n %s %s=true",
			fex.Spec.ApprovedBy, user.Username, fex.Name, fex.Namespace, slov1alpha1.ApproveAnnotation))
	case fex.Spec.ApprovedBy == fex.Spec.RequestedBy:
		return verdict(nil, nil, fmt.Errorf("spec.approvedBy: %q requested this exception and cannot approve it; a second person must", user.Username))
	}
	ok, err := authorize(ctx, h.Writer, user, &authorizationv1.ResourceAttributes{
		Namespace: fex.Namespace, Verb: slov1alpha1.VerbApprove, Group: slov1alpha1.GroupVersion.Group, Resource: "freezeexceptions", Name: fex.Name,
	})
	if err != nil {
		return verdict(nil, nil, fmt.Errorf("whether %q may approve FreezeException %s/%s could not be checked: %w; retry in a moment", user.Username, fex.Namespace, fex.Name, err))
	}
	if !ok {
		return verdict(nil, nil, fmt.Errorf("%q may not %s freezeexceptions.slo.budgetgate.dev in namespace %s (kubectl auth can-i %s freezeexceptions.slo.budgetgate.dev -n %s); "+
			"ask someone bound to the freeze-exception-approver role", user.Username, slov1alpha1.VerbApprove, fex.Namespace, slov1alpha1.VerbApprove, fex.Namespace))
	}
	return verdict(nil, map[string]string{"user": user.Username, auditExceptionApprov: user.Username}, nil)
}

// scopeChanged: what an approval covers changed.
func scopeChanged(old, fex *slov1alpha1.FreezeException) bool {
	return !equality.Semantic.DeepEqual(old.Spec.WorkloadSelector, fex.Spec.WorkloadSelector) ||
		!equality.Semantic.DeepEqual(old.Spec.Workloads, fex.Spec.Workloads) ||
		!old.Spec.ExpiresAt.Equal(&fex.Spec.ExpiresAt) || old.Spec.Reason != fex.Spec.Reason
}

// checkExpiry: the exception must expire in the future, within the
// maxExceptionDuration of the namespace's policies, counted from its creation.
func (h *ExceptionHandler) checkExpiry(ctx context.Context, fex *slov1alpha1.FreezeException) error {
	now := h.Clock.Now()
	expiresAt := fex.Spec.ExpiresAt.Time
	p, err := policy.ForExceptions(ctx, h.Cache, fex.Namespace)
	if err != nil {
		return err
	}
	if !expiresAt.After(now) {
		return fmt.Errorf("spec.expiresAt: %s is not in the future; write a time after now, at most %s from now (the maxExceptionDuration of policy %q)",
			expiresAt.UTC().Format(time.RFC3339), p.MaxExceptionDuration, p.Name)
	}
	// An exception's lifetime counts from its creation, as the exception
	// controller counts it: moving expiresAt later cannot extend it past the bound.
	created, since := now, "from now"
	if !fex.CreationTimestamp.IsZero() {
		created, since = fex.CreationTimestamp.Time, "after the exception was created"
	}
	if d := expiresAt.Sub(created); d > p.MaxExceptionDuration {
		return fmt.Errorf("spec.expiresAt: %s is %s %s, longer than the maxExceptionDuration %s of policy %q; "+
			"write a time at most %s %s, and ask for another exception when it runs out",
			expiresAt.UTC().Format(time.RFC3339), d.Round(time.Minute), since, p.MaxExceptionDuration, p.Name, p.MaxExceptionDuration, since)
	}
	return nil
}

// ExceptionMutator records who requested and who approved a FreezeException:
// on creation the requester is the authenticated user, whatever the manifest
// says; an approval is the user who sets the budgetgate.dev/approve annotation;
// a change of what the exception covers, its reason or expiry clears the
// approval; otherwise both are kept as they were (so that kubectl replace or a
// GitOps apply without them changes nothing).
type ExceptionMutator struct {
	Clock clock.PassiveClock
}

// Handle patches the exception.
func (m *ExceptionMutator) Handle(_ context.Context, req admission.Request) admission.Response {
	fex, old, err := decode[slov1alpha1.FreezeException](req)
	if err != nil {
		// A value of the wrong type (expiresAt: tomorrow): the schema, which
		// the API server checks after mutating webhooks, rejects it with the
		// field's name; if it did not, the validating webhook still could not
		// decode the object and would reject it. Nothing undecodable is stored.
		return admission.Allowed("")
	}
	if fex == nil {
		return admission.Allowed("")
	}
	approve := fex.Annotations[slov1alpha1.ApproveAnnotation] == "true"
	delete(fex.Annotations, slov1alpha1.ApproveAnnotation)
	if old == nil {
		fex.Spec.RequestedBy = req.UserInfo.Username
		fex.Spec.ApprovedBy, fex.Spec.ApprovedAt = "", nil
	} else {
		fex.Spec.RequestedBy = old.Spec.RequestedBy
		switch {
		case approve:
			fex.Spec.ApprovedBy, fex.Spec.ApprovedAt = req.UserInfo.Username, &metav1.Time{Time: m.Clock.Now().Truncate(time.Second)}
		case scopeChanged(old, fex):
			fex.Spec.ApprovedBy, fex.Spec.ApprovedAt = "", nil
		default:
			fex.Spec.ApprovedBy, fex.Spec.ApprovedAt = old.Spec.ApprovedBy, old.Spec.ApprovedAt
		}
	}
	raw, err := json.Marshal(fex)
	if err != nil {
		return admission.Errored(http.StatusInternalServerError, err)
	}
	return admission.PatchResponseFromRaw(req.Object.Raw, raw)
}
