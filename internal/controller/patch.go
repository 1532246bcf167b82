package controller

import (
	"context"
	"fmt"
	"reflect"

	"k8s.io/apimachinery/pkg/api/equality"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// statusPatch snapshots an object when a reconcile starts and patches its
// status subresource once, when the reconcile ends, if the status changed (the
// shape of Cluster API's patch.Helper). Reconcilers write
//
//	patch := newStatusPatch(r.Client, obj)
//	defer func() { retErr = patch.done(ctx, obj, &result, retErr) }()
type statusPatch struct {
	c      client.Client
	before client.Object
}

func newStatusPatch(c client.Client, obj client.Object) *statusPatch {
	return &statusPatch{c: c, before: obj.DeepCopyObject().(client.Object)}
}

// done patches the status when it changed, folds a failure into err and, on
// failure, drops result: a reconcile never returns a result with an error.
func (p *statusPatch) done(ctx context.Context, obj client.Object, result *ctrl.Result, err error) error {
	if equality.Semantic.DeepEqual(statusOf(p.before), statusOf(obj)) {
		return err
	}
	// With the resourceVersion the reconcile read: a status computed from a
	// cache that had not yet seen the last patch is refused (and retried
	// from a fresh read) rather than half-applied, since a merge patch
	// carries only the fields that differ from the stale read.
	if perr := p.c.Status().Patch(ctx, obj, client.MergeFromWithOptions(p.before, client.MergeFromWithOptimisticLock{})); perr != nil {
		*result = ctrl.Result{}
		return utilerrors.NewAggregate([]error{err, fmt.Errorf("patching status of %s: %w", klog.KObj(obj), perr)})
	}
	return err
}

// statusOf is the Status field of one of budgetgate's kinds.
func statusOf(obj client.Object) any {
	v := reflect.ValueOf(obj)
	if v.Kind() == reflect.Pointer {
		v = v.Elem()
	}
	if f := v.FieldByName("Status"); f.IsValid() {
		return f.Interface()
	}
	return nil
}
