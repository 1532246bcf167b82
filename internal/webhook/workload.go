// Package webhook holds budgetgate's admission handlers: the release gate that
// enforces freezes (wiring the pure internal/freeze decision), the history gate
// that keeps rollback targets unforgeable, and the admission of budgetgate's
// own kinds for what CEL cannot check.
package webhook

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/recorder"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	slov1alpha1 "github.com/budgetgate/budgetgate/api/v1alpha1"
	"github.com/budgetgate/budgetgate/internal/freeze"
	"github.com/budgetgate/budgetgate/internal/workload"
)

// WorkloadPath is where the release gate is served.
const WorkloadPath = "/validate-apps-v1-workloads"

// DefaultDeadline bounds every lookup of one admission decision together. The
// webhook configurations give the API server 3 seconds; past them it ignores
// the webhook (failurePolicy Ignore) and the release passes, so budgetgate
// decides well before: a lookup that runs out of time denies.
const DefaultDeadline = 2 * time.Second

// +kubebuilder:rbac:groups=apps,resources=replicasets;controllerrevisions,verbs=list
// +kubebuilder:rbac:groups=apps,resources=deployments;statefulsets;daemonsets,verbs=get
// +kubebuilder:rbac:groups=authorization.k8s.io,resources=subjectaccessreviews,verbs=create
// +kubebuilder:rbac:groups=slo.budgetgate.dev,resources=freezeexceptions/status,verbs=get;update;patch

// WorkloadHandler gates releases of the registered workload kinds.
//
// It reads freeze state only from the cached SLO status: on the allow path it
// makes no call that leaves the process. Only when a freeze would otherwise deny
// does it read the workload's own revision history (to recognise a rollback) and
// ask for a SubjectAccessReview (a claimed release class, labels that leave a
// freeze), all within Deadline.
type WorkloadHandler struct {
	// Cache reads SLOs, policies and exceptions from the informer cache.
	Cache client.Reader
	// APIReader reads revision history, uncached and only on demand.
	APIReader client.Reader
	// Writer creates SubjectAccessReviews and records exception uses.
	Writer   client.Client
	Recorder recorder.EventRecorder
	Clock    clock.PassiveClock
	// Kinds are the gated kinds.
	Kinds *workload.Registry
	// Deadline bounds the lookups of one decision (DefaultDeadline when 0).
	Deadline time.Duration
	// PageSize of history lists (workload.DefaultPageSize when 0).
	PageSize int64
	// Contact is where the platform takes questions and requests for
	// exceptions: the last line of every deny message (--contact).
	Contact string
}

var _ admission.Handler = &WorkloadHandler{}

func freezeWorkload(w *workload.Object, kind string) *freeze.Workload {
	if w == nil {
		return nil
	}
	return &freeze.Workload{Kind: kind, Namespace: w.Namespace, Name: w.Name, Labels: w.Labels, Template: &w.Spec.Template}
}

// Handle decides one admission request.
func (h *WorkloadHandler) Handle(ctx context.Context, req admission.Request) admission.Response {
	kind, ok := h.Kinds.Lookup(schema.GroupKind{Group: req.Kind.Group, Kind: req.Kind.Kind})
	if !ok {
		return admission.Allowed("budgetgate gates only " + strings.Join(h.Kinds.Names(), ", "))
	}
	now := h.Clock.Now()
	ctx, cancel := context.WithTimeout(ctx, deadline(h.Deadline))
	defer cancel()

	frozen, err := frozenSLOs(ctx, h.Cache, req.Namespace)
	if err != nil {
		return admission.Errored(http.StatusInternalServerError, err)
	}
	if len(frozen) == 0 {
		// Nothing in the namespace is frozen, the common case: Decide allows
		// whatever the objects' labels and templates say (rules 1 and 2), so
		// it is told only whether there is a new object, and decoding the
		// two objects, most of the handler's work on this path, is skipped
		// (make bench-admission, docs/performance.md).
		res := freeze.Decide(ctx, freeze.Request{Operation: req.Operation, New: undecoded(req, kind)}, nil, nil, nil, now)
		admissionDecisions.WithLabelValues(kind.String(), req.Namespace, string(res.Decision), string(res.Class)).Inc()
		return response(res)
	}
	newObj, err := workload.Decode(req.Object.Raw)
	if err != nil {
		return admission.Errored(http.StatusBadRequest, fmt.Errorf("decoding %s: %w", kind, err))
	}
	oldObj, err := workload.Decode(req.OldObject.Raw)
	if err != nil {
		return admission.Errored(http.StatusBadRequest, fmt.Errorf("decoding old %s: %w", kind, err))
	}
	var exceptions []freeze.Exception
	if len(frozen) > 0 {
		if exceptions, err = namespaceExceptions(ctx, h.Cache, req.Namespace); err != nil {
			return admission.Errored(http.StatusInternalServerError, err)
		}
	}
	current := newObj
	if current == nil {
		current = oldObj
	}
	res := freeze.Decide(ctx, freeze.Request{
		Operation: req.Operation,
		Old:       freezeWorkload(oldObj, kind.String()),
		New:       freezeWorkload(newObj, kind.String()),
		User:      req.UserInfo,
		Contact:   h.Contact,
	}, frozen, exceptions, &lookups{h: h, kind: kind, obj: current, oldObj: oldObj}, now)

	admissionDecisions.WithLabelValues(kind.String(), req.Namespace, string(res.Decision), string(res.Class)).Inc()
	dryRun := req.DryRun != nil && *req.DryRun
	if !dryRun {
		h.record(ctx, kind, current, res, now)
	}
	return response(res)
}

// undecoded stands for the request's new object without reading it: present
// (with a template, as every decoded workload has) or not.
func undecoded(req admission.Request, kind workload.Kind) *freeze.Workload {
	if len(req.Object.Raw) == 0 {
		return nil
	}
	return &freeze.Workload{Kind: kind.String(), Namespace: req.Namespace, Name: req.Name, Template: &corev1.PodTemplateSpec{}}
}

func deadline(d time.Duration) time.Duration {
	if d <= 0 {
		return DefaultDeadline
	}
	return d
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

// record emits an Event on the workload for every denied, warned, exempted,
// excepted or relabelled release, and counts a use on the exception.
func (h *WorkloadHandler) record(ctx context.Context, kind workload.Kind, w *workload.Object, res freeze.Result, now time.Time) {
	var eventType, reason, note string
	user := res.AuditAnnotations[freeze.AuditUser]
	switch {
	case res.Decision == freeze.Deny:
		eventType, reason, note = corev1.EventTypeWarning, "ReleaseDenied", firstLine(res.Message)
	case res.Decision == freeze.Warn:
		eventType, reason, note = corev1.EventTypeWarning, "ReleaseWouldBeDenied", firstLine(res.Message)
	case res.Class == freeze.ClassExemptClass:
		eventType, reason = corev1.EventTypeNormal, "ReleaseExempted"
		note = fmt.Sprintf("Admitted release class %q by %s during the freeze of %s", res.ReleaseClass, user, strings.Join(res.SLOs, ", "))
		if r := res.AuditAnnotations[freeze.AuditReleaseReason]; r != "" {
			note += fmt.Sprintf(" (reason: %q)", r)
		}
	case res.Class == freeze.ClassException:
		eventType, reason = corev1.EventTypeNormal, "ReleaseExcepted"
		note = fmt.Sprintf("Admitted release by %s under FreezeException %s (requested by %s) during the freeze of %s",
			user, res.Exception, orUnknown(res.AuditAnnotations[freeze.AuditRequestedBy]), strings.Join(res.SLOs, ", "))
		if a := res.AuditAnnotations[freeze.AuditApprovedBy]; a != "" {
			note += ", approved by " + a
		}
		h.countExceptionUse(ctx, w.Namespace, res.Exception, now)
	case res.AuditAnnotations[freeze.AuditLifted] != "":
		eventType, reason = corev1.EventTypeWarning, "LeftFreeze"
		note = fmt.Sprintf("%s, who may %s, changed the labels so that %s no longer gates this workload (%s)",
			user, freeze.LiftFreezeVerb, res.AuditAnnotations[freeze.AuditLifted], res.Class)
	default:
		return
	}
	if h.Recorder == nil || w == nil {
		return
	}
	ref := &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Namespace: w.Namespace, Name: w.Name, UID: w.UID}}
	ref.SetGroupVersionKind(kind.GVK)
	h.Recorder.Eventf(ref, nil, eventType, reason, "Release", "%s", note)
}

func orUnknown(s string) string {
	if s == "" {
		return "an unknown user"
	}
	return s
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

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
