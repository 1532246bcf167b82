package webhook

import (
	"context"
	"encoding/json"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/budgetgate/budgetgate/internal/freeze"
)

// lookups implements freeze.Lookups for one request. internal/freeze calls it
// only when a freeze would otherwise deny.
type lookups struct {
	h    *WorkloadHandler
	kind string
	obj  *workload
}

var _ freeze.Lookups = &lookups{}

// PreviousTemplates reads the workload's own revision history with its own
// selector in its own namespace: ReplicaSets of a Deployment, ControllerRevisions
// of a StatefulSet or DaemonSet, each owned by the workload.
func (l *lookups) PreviousTemplates(ctx context.Context, _ *freeze.Workload) ([]corev1.PodTemplateSpec, error) {
	if l.obj == nil || l.obj.UID == "" {
		return nil, nil // a new workload has no history
	}
	sel, err := selectorOf(l.obj)
	if err != nil {
		return nil, err
	}
	opts := []client.ListOption{client.InNamespace(l.obj.Namespace), client.MatchingLabelsSelector{Selector: sel}}
	var out []corev1.PodTemplateSpec
	switch l.kind {
	case "Deployment":
		list := &appsv1.ReplicaSetList{}
		if err := l.h.APIReader.List(ctx, list, opts...); err != nil {
			return nil, fmt.Errorf("listing ReplicaSets of Deployment %s/%s: %w", l.obj.Namespace, l.obj.Name, err)
		}
		for i := range list.Items {
			if ownedBy(list.Items[i].OwnerReferences, l.obj) {
				out = append(out, list.Items[i].Spec.Template)
			}
		}
	default:
		list := &appsv1.ControllerRevisionList{}
		if err := l.h.APIReader.List(ctx, list, opts...); err != nil {
			return nil, fmt.Errorf("listing ControllerRevisions of %s %s/%s: %w", l.kind, l.obj.Namespace, l.obj.Name, err)
		}
		for i := range list.Items {
			if !ownedBy(list.Items[i].OwnerReferences, l.obj) {
				continue
			}
			// StatefulSet and DaemonSet revisions store a patch that replaces spec.template.
			var rev struct {
				Spec workloadSpec `json:"spec"`
			}
			if err := json.Unmarshal(list.Items[i].Data.Raw, &rev); err == nil {
				out = append(out, rev.Spec.Template)
			}
		}
	}
	return out, nil
}

func ownedBy(refs []metav1.OwnerReference, w *workload) bool {
	for _, r := range refs {
		if r.UID == w.UID && r.Controller != nil && *r.Controller {
			return true
		}
	}
	return false
}

// MayReleaseDuringFreeze asks the API server whether the user may perform the
// custom verb release-during-freeze on servicelevelobjectives in the namespace.
func (l *lookups) MayReleaseDuringFreeze(ctx context.Context, user authenticationv1.UserInfo, namespace string) (bool, error) {
	extra := make(map[string]authorizationv1.ExtraValue, len(user.Extra))
	for k, v := range user.Extra {
		extra[k] = authorizationv1.ExtraValue(v)
	}
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User: user.Username, UID: user.UID, Groups: user.Groups, Extra: extra,
		ResourceAttributes: &authorizationv1.ResourceAttributes{
			Namespace: namespace, Verb: freeze.ReleaseDuringFreezeVerb,
			Group: freeze.SLOGroup, Resource: freeze.SLOResource,
		},
	}}
	if err := l.h.Writer.Create(ctx, sar); err != nil {
		return false, fmt.Errorf("SubjectAccessReview for %s: %w", user.Username, err)
	}
	return sar.Status.Allowed, nil
}

func isConflict(err error) bool { return apierrors.IsConflict(err) }
