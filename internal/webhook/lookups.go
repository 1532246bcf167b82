package webhook

import (
	"context"
	"fmt"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/budgetgate/budgetgate/internal/freeze"
	"github.com/budgetgate/budgetgate/internal/workload"
)

// lookups implements freeze.Lookups for one request. internal/freeze calls it
// only when a freeze would otherwise deny, with the request's deadline.
type lookups struct {
	h      *WorkloadHandler
	kind   workload.Kind
	obj    *workload.Object
	oldObj *workload.Object
}

var _ freeze.Lookups = &lookups{}

// Revisions walks the workload's own revision history, a page at a time, with
// its own selector in its own namespace: the revisions it controls (ReplicaSets
// of a Deployment, ControllerRevisions of a StatefulSet or DaemonSet). The
// history gate (HistoryHandler) makes sure that during a freeze only the
// workload's controller adds to it.
func (l *lookups) Revisions(ctx context.Context, _ *freeze.Workload, fn func(*corev1.PodTemplateSpec) bool) error {
	w := l.oldObj // the stored object: its UID and selector are the server's
	if w == nil {
		w = l.obj
	}
	return l.kind.EachRevision(ctx, l.h.APIReader, w, l.h.PageSize, func(r workload.Revision) bool {
		return fn(&r.Template)
	})
}

// Authorized asks the API server whether the user may perform verb on
// servicelevelobjectives in the namespace.
func (l *lookups) Authorized(ctx context.Context, user authenticationv1.UserInfo, namespace, verb string) (bool, error) {
	return authorize(ctx, l.h.Writer, user, &authorizationv1.ResourceAttributes{
		Namespace: namespace, Verb: verb, Group: freeze.SLOGroup, Resource: freeze.SLOResource,
	})
}

// authorize runs a SubjectAccessReview for user on attrs.
func authorize(ctx context.Context, c client.Client, user authenticationv1.UserInfo, attrs *authorizationv1.ResourceAttributes) (bool, error) {
	extra := make(map[string]authorizationv1.ExtraValue, len(user.Extra))
	for k, v := range user.Extra {
		extra[k] = authorizationv1.ExtraValue(v)
	}
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User: user.Username, UID: user.UID, Groups: user.Groups, Extra: extra, ResourceAttributes: attrs,
	}}
	if err := c.Create(ctx, sar); err != nil {
		return false, fmt.Errorf("SubjectAccessReview of %s %s for %s: %w", attrs.Verb, attrs.Resource, user.Username, err)
	}
	return sar.Status.Allowed, nil
}

func isConflict(err error) bool { return apierrors.IsConflict(err) }
