// Package webhook holds budgetgate's admission handlers: the workload webhook
// that enforces freezes (wiring the pure internal/freeze decision), and the
// validation of budgetgate's own kinds for what CEL cannot check.
package webhook

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/recorder"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	slov1alpha1 "github.com/budgetgate/budgetgate/api/v1alpha1"
	"github.com/budgetgate/budgetgate/internal/freeze"
	"github.com/budgetgate/budgetgate/internal/policy"
)

// WorkloadPath is where the workload webhook is served.
const WorkloadPath = "/validate-apps-v1-workloads"

// +kubebuilder:rbac:groups=apps,resources=replicasets;controllerrevisions,verbs=list
// +kubebuilder:rbac:groups=authorization.k8s.io,resources=subjectaccessreviews,verbs=create
// +kubebuilder:rbac:groups=slo.budgetgate.dev,resources=freezeexceptions/status,verbs=get;update;patch

// WorkloadHandler gates releases of Deployments, StatefulSets and DaemonSets.
//
// It reads freeze state only from the cached SLO status: on the allow path it
// makes no call that leaves the process. Only when a freeze would otherwise deny
// does it read the workload's own revision history (to recognise a rollback) and
// ask for a SubjectAccessReview (for a claimed exempt release class).
type WorkloadHandler struct {
	// Cache reads SLOs, policies and exceptions from the informer cache.
	Cache client.Reader
	// APIReader reads ReplicaSets and ControllerRevisions, uncached and only on demand.
	APIReader client.Reader
	// Writer creates SubjectAccessReviews and records exception uses.
	Writer   client.Client
	Recorder recorder.EventRecorder
	Clock    clock.PassiveClock
}

var _ admission.Handler = &WorkloadHandler{}

// workload is the part of a Deployment, StatefulSet or DaemonSet that matters;
// the three kinds share it, so one decode serves all.
type workload struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              workloadSpec `json:"spec"`
}

type workloadSpec struct {
	Selector *metav1.LabelSelector  `json:"selector,omitempty"`
	Template corev1.PodTemplateSpec `json:"template"`
}

func (w *workload) freezeWorkload(kind string) *freeze.Workload {
	if w == nil {
		return nil
	}
	return &freeze.Workload{Kind: kind, Namespace: w.Namespace, Name: w.Name, Labels: w.Labels, Template: &w.Spec.Template}
}

func decodeWorkload(raw []byte) (*workload, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	w := &workload{}
	if err := json.Unmarshal(raw, w); err != nil {
		return nil, err
	}
	return w, nil
}

// Handle decides one admission request.
func (h *WorkloadHandler) Handle(ctx context.Context, req admission.Request) admission.Response {
	kind := req.Kind.Kind
	switch kind {
	case "Deployment", "StatefulSet", "DaemonSet":
	default:
		return admission.Allowed("budgetgate gates only Deployments, StatefulSets and DaemonSets")
	}
	newObj, err := decodeWorkload(req.Object.Raw)
	if err != nil {
		return admission.Errored(http.StatusBadRequest, fmt.Errorf("decoding %s: %w", kind, err))
	}
	oldObj, err := decodeWorkload(req.OldObject.Raw)
	if err != nil {
		return admission.Errored(http.StatusBadRequest, fmt.Errorf("decoding old %s: %w", kind, err))
	}
	now := h.Clock.Now()

	frozen, err := h.frozenSLOs(ctx, req.Namespace)
	if err != nil {
		return admission.Errored(http.StatusInternalServerError, err)
	}
	var exceptions []freeze.Exception
	if len(frozen) > 0 {
		if exceptions, err = h.exceptions(ctx, req.Namespace, now); err != nil {
			return admission.Errored(http.StatusInternalServerError, err)
		}
	}
	current := newObj
	if current == nil {
		current = oldObj
	}
	res := freeze.Decide(ctx, freeze.Request{
		Operation: req.Operation,
		Old:       oldObj.freezeWorkload(kind),
		New:       newObj.freezeWorkload(kind),
		User:      req.UserInfo,
	}, frozen, exceptions, &lookups{h: h, kind: kind, obj: current}, now)

	admissionDecisions.WithLabelValues(kind, string(res.Decision), string(res.Class)).Inc()
	dryRun := req.DryRun != nil && *req.DryRun
	if !dryRun {
		h.record(ctx, kind, current, res, now)
	}
	return response(res)
}

func response(res freeze.Result) admission.Response {
	var resp admission.Response
	if res.Decision == freeze.Deny {
		resp = admission.Denied(res.Message)
		resp.Result.Reason = metav1.StatusReasonForbidden
	} else {
		resp = admission.Allowed(string(res.Class))
	}
	resp.Warnings = res.Warnings
	if len(res.AuditAnnotations) > 0 {
		resp.AuditAnnotations = res.AuditAnnotations
	}
	return resp
}

// record emits an Event on the workload for every denied, warned, exempted or
// excepted release, and counts a use on the exception.
func (h *WorkloadHandler) record(ctx context.Context, kind string, w *workload, res freeze.Result, now time.Time) {
	var eventType, reason, note string
	switch {
	case res.Decision == freeze.Deny:
		eventType, reason, note = corev1.EventTypeWarning, "ReleaseDenied", firstLine(res.Message)
	case res.Decision == freeze.Warn:
		eventType, reason, note = corev1.EventTypeWarning, "ReleaseWouldBeDenied", firstLine(res.Message)
	case res.Class == freeze.ClassExemptClass:
		eventType, reason = corev1.EventTypeNormal, "ReleaseExempted"
		note = fmt.Sprintf("Admitted release class %q by %s during the freeze of %s", res.ReleaseClass,
			res.AuditAnnotations[freeze.AuditUser], strings.Join(res.SLOs, ", "))
	case res.Class == freeze.ClassException:
		eventType, reason = corev1.EventTypeNormal, "ReleaseExcepted"
		note = fmt.Sprintf("Admitted release by %s under FreezeException %s during the freeze of %s",
			res.AuditAnnotations[freeze.AuditUser], res.Exception, strings.Join(res.SLOs, ", "))
		h.countExceptionUse(ctx, w.Namespace, res.Exception, now)
	default:
		return
	}
	if h.Recorder == nil || w == nil {
		return
	}
	ref := &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Namespace: w.Namespace, Name: w.Name, UID: w.UID}}
	ref.SetGroupVersionKind(appsv1.SchemeGroupVersion.WithKind(kind))
	h.Recorder.Eventf(ref, nil, eventType, reason, "Release", "%s", note)
}

// countExceptionUse bumps the exception's status counter in the background: the
// admission response must not wait for it.
func (h *WorkloadHandler) countExceptionUse(ctx context.Context, namespace, name string, now time.Time) {
	if h.Writer == nil || name == "" {
		return
	}
	log := ctrl.LoggerFrom(ctx)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for range 5 {
			fex := &slov1alpha1.FreezeException{}
			if err := h.Writer.Get(ctx, types.NamespacedName{Namespace: namespace, Name: name}, fex); err != nil {
				log.Error(err, "Failed to read FreezeException to count its use", "freezeException", name)
				return
			}
			before := fex.DeepCopy()
			fex.Status.Uses++
			fex.Status.LastUsedTime = &metav1.Time{Time: now}
			err := h.Writer.Status().Patch(ctx, fex, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{}))
			if err == nil {
				return
			}
			if !isConflict(err) {
				log.Error(err, "Failed to count the use of FreezeException", "freezeException", name)
				return
			}
		}
	}()
}

// frozenSLOs reads the frozen SLOs of a namespace from the cache, with their policies.
func (h *WorkloadHandler) frozenSLOs(ctx context.Context, namespace string) ([]freeze.FrozenSLO, error) {
	list := &slov1alpha1.ServiceLevelObjectiveList{}
	if err := h.Cache.List(ctx, list, client.InNamespace(namespace)); err != nil {
		return nil, fmt.Errorf("listing SLOs in %s: %w", namespace, err)
	}
	var out []freeze.FrozenSLO
	for i := range list.Items {
		slo := &list.Items[i]
		if !slo.Status.Freeze.Active || slo.Spec.WorkloadSelector == nil {
			continue
		}
		sel, err := metav1.LabelSelectorAsSelector(slo.Spec.WorkloadSelector)
		if err != nil || sel.Empty() {
			continue // an SLO whose selector cannot select anything gates nothing
		}
		p, found, err := policy.Get(ctx, h.Cache, slo.Status.Policy)
		if err != nil || !found {
			// The controller recorded the freeze; a policy that became invalid or
			// was deleted since keeps it, with the default exempt classes.
			p = policy.Builtin()
		}
		out = append(out, freeze.FrozenSLO{
			Namespace:            slo.Namespace,
			Name:                 slo.Name,
			Selector:             sel,
			DryRun:               slo.Status.Freeze.Mode == slov1alpha1.ModeDryRun,
			Policy:               slo.Status.Policy,
			Rule:                 slo.Status.Freeze.Rule,
			Reason:               slo.Status.Freeze.Reason,
			Since:                timeOf(slo.Status.Freeze.Since),
			HoldUntil:            timeOf(slo.Status.Freeze.HoldUntil),
			ExemptReleaseClasses: p.ExemptReleaseClasses,
		})
	}
	return out, nil
}

// exceptions reads the usable FreezeExceptions of a namespace from the cache:
// not expired, and not reported invalid by the exception controller.
func (h *WorkloadHandler) exceptions(ctx context.Context, namespace string, now time.Time) ([]freeze.Exception, error) {
	list := &slov1alpha1.FreezeExceptionList{}
	if err := h.Cache.List(ctx, list, client.InNamespace(namespace)); err != nil {
		return nil, fmt.Errorf("listing FreezeExceptions in %s: %w", namespace, err)
	}
	var out []freeze.Exception
	for i := range list.Items {
		fex := &list.Items[i]
		if !now.Before(fex.Spec.ExpiresAt.Time) || !exceptionValid(fex) {
			continue
		}
		e := freeze.Exception{Namespace: fex.Namespace, Name: fex.Name, Reason: fex.Spec.Reason, ExpiresAt: fex.Spec.ExpiresAt.Time}
		if fex.Spec.WorkloadSelector != nil {
			sel, err := metav1.LabelSelectorAsSelector(fex.Spec.WorkloadSelector)
			if err != nil {
				continue
			}
			e.Selector = sel
		}
		for _, w := range fex.Spec.Workloads {
			e.Workloads = append(e.Workloads, freeze.WorkloadRef{Kind: w.Kind, Name: w.Name})
		}
		out = append(out, e)
	}
	return out, nil
}

// exceptionValid: the exception controller has checked the current generation
// and found it valid (the maxExceptionDuration bound needs the SLOs' policies).
func exceptionValid(fex *slov1alpha1.FreezeException) bool {
	for _, c := range fex.Status.Conditions {
		if c.Type == slov1alpha1.ConditionValid {
			return c.Status == metav1.ConditionTrue && c.ObservedGeneration == fex.Generation
		}
	}
	return false
}

func timeOf(t *metav1.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.Time
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// selectorOf is a workload's own pod selector, for reading its revision history.
func selectorOf(w *workload) (labels.Selector, error) {
	if w.Spec.Selector == nil {
		return nil, fmt.Errorf("%s has no spec.selector", w.Name)
	}
	return metav1.LabelSelectorAsSelector(w.Spec.Selector)
}
