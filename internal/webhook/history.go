package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/recorder"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/budgetgate/budgetgate/internal/freeze"
	"github.com/budgetgate/budgetgate/internal/workload"
)

// HistoryPath is where the history gate is served.
const HistoryPath = "/validate-apps-v1-history"

// HistoryHandler gates writes of revision history (ReplicaSets and
// ControllerRevisions): during a freeze only a workload's own controller may
// add to or change the history of a frozen workload, so that a rollback can
// only restore a revision that was really released. The API server calls it
// only when a history object is created with a controller reference, or its
// controller reference or content changes (matchConditions), never for the
// controllers' routine scaling and status updates.
type HistoryHandler struct {
	Cache     client.Reader
	APIReader client.Reader
	Recorder  recorder.EventRecorder
	Kinds     *workload.Registry
	Deadline  time.Duration
	// Contact is the platform's contact, the last line of a denial (--contact).
	Contact string
}

var _ admission.Handler = &HistoryHandler{}

// historyObject is the part of a ReplicaSet or ControllerRevision that matters.
type historyObject struct {
	metav1.ObjectMeta `json:"metadata"`
	// Spec.Template of a ReplicaSet.
	Spec struct {
		Template *corev1.PodTemplateSpec `json:"template,omitempty"`
	} `json:"spec"`
	// Data of a ControllerRevision.
	Data json.RawMessage `json:"data,omitempty"`
}

func decodeHistory(raw []byte) (*historyObject, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	o := &historyObject{}
	if err := json.Unmarshal(raw, o); err != nil {
		return nil, err
	}
	return o, nil
}

func ownerRef(o *historyObject) *freeze.OwnerRef {
	if o == nil {
		return nil
	}
	c := workload.Controller(o.OwnerReferences)
	if c == nil {
		return nil
	}
	return &freeze.OwnerRef{Kind: c.Kind, Name: c.Name, UID: string(c.UID)}
}

// Handle decides one write of revision history.
func (h *HistoryHandler) Handle(ctx context.Context, req admission.Request) admission.Response {
	switch req.Kind.Kind {
	case string(workload.ReplicaSets), string(workload.ControllerRevisions):
	default:
		return admission.Allowed("budgetgate's history gate sees only ReplicaSets and ControllerRevisions")
	}
	newObj, err := decodeHistory(req.Object.Raw)
	if err != nil {
		return admission.Errored(http.StatusBadRequest, fmt.Errorf("decoding %s: %w", req.Kind.Kind, err))
	}
	oldObj, err := decodeHistory(req.OldObject.Raw)
	if err != nil {
		return admission.Errored(http.StatusBadRequest, fmt.Errorf("decoding old %s: %w", req.Kind.Kind, err))
	}
	if newObj == nil {
		return admission.Allowed("no new object")
	}
	ctx, cancel := context.WithTimeout(ctx, deadline(h.Deadline))
	defer cancel()
	hreq := freeze.HistoryRequest{
		Operation: req.Operation, Kind: req.Kind.Kind, Namespace: req.Namespace, Name: req.Name, User: req.UserInfo,
		OldController: ownerRef(oldObj), NewController: ownerRef(newObj), Contact: h.Contact,
	}
	if oldObj != nil {
		hreq.Created = oldObj.CreationTimestamp.Time
		hreq.ContentChanged = contentChanged(oldObj, newObj)
	}
	var frozen []freeze.FrozenSLO
	if hreq.NewController != nil {
		if frozen, err = frozenSLOs(ctx, h.Cache, req.Namespace); err != nil {
			return admission.Errored(http.StatusInternalServerError, err)
		}
	}
	var res freeze.Result
	if hreq.NewController != nil && len(frozen) == 0 {
		// Nothing is frozen here: no lookup needed.
		res = freeze.Result{Decision: freeze.Allow, Class: freeze.ClassNotFrozen, Message: "budgetgate: nothing is frozen in " + req.Namespace}
	} else {
		res = freeze.DecideHistory(ctx, hreq, frozen, historyLookups{h: h})
	}
	admissionDecisions.WithLabelValues(req.Kind.Kind, req.Namespace, string(res.Decision), string(res.Class)).Inc()
	if res.Decision == freeze.Deny && (req.DryRun == nil || !*req.DryRun) && h.Recorder != nil && hreq.NewController != nil {
		ref := &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Namespace: req.Namespace, Name: hreq.NewController.Name}}
		if k, ok := h.kindNamed(hreq.NewController.Kind); ok {
			ref.SetGroupVersionKind(k.GVK)
			h.Recorder.Eventf(ref, nil, corev1.EventTypeWarning, "RevisionDenied", "History", "%s", firstLine(res.Message))
		}
	}
	return response(res)
}

// contentChanged: a ReplicaSet's template or a ControllerRevision's data differs.
func contentChanged(old, new *historyObject) bool {
	if old.Spec.Template != nil || new.Spec.Template != nil {
		return !equality.Semantic.DeepEqual(old.Spec.Template, new.Spec.Template)
	}
	return !bytes.Equal(compactJSON(old.Data), compactJSON(new.Data))
}

func compactJSON(raw json.RawMessage) []byte {
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return raw
	}
	return b.Bytes()
}

// historyLookups finds a revision's workload, uncached, by its controller reference.
type historyLookups struct{ h *HistoryHandler }

func (l historyLookups) Owner(ctx context.Context, namespace string, ref freeze.OwnerRef) (*freeze.Workload, error) {
	kind, ok := l.h.kindNamed(ref.Kind)
	if !ok {
		return nil, nil
	}
	w, err := kind.Get(ctx, l.h.APIReader, namespace, ref.Name)
	if apierrors.IsNotFound(err) || (kind.Optional && workload.NotServed(err)) {
		// No such workload, or (a CRD's kind) no such API: the reference
		// names nothing gated, so nothing it owns is a gated revision.
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if string(w.UID) != ref.UID {
		return nil, nil
	}
	return freezeWorkload(w, kind.String()), nil
}

func (l historyLookups) MayWriteHistory(kind string, user authenticationv1.UserInfo) bool {
	k, ok := l.h.kindNamed(kind)
	return ok && k.MayWriteHistory(user.Username)
}

// kindNamed finds a gated kind by its name (owner references carry the kind;
// gated kinds have distinct names). Another group's kind of the same name (a
// reference to an OpenKruise Rollout, say) finds the gated one, whose lookup
// then fails to match the reference's UID: it is treated as no gated owner.
func (h *HistoryHandler) kindNamed(name string) (workload.Kind, bool) {
	for _, k := range h.Kinds.All() {
		if k.GVK.Kind == name {
			return k, true
		}
	}
	return workload.Kind{}, false
}
