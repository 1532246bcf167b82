package controller

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	slov1alpha1 "github.com/budgetgate/budgetgate/api/v1alpha1"
	"github.com/budgetgate/budgetgate/internal/sloview"
	"github.com/budgetgate/budgetgate/internal/workload"
)

// FieldManager is the server-side apply field manager of the freeze annotations.
const FieldManager = "budgetgate"

// The webhooks read Rollouts (their owner lookup), the controller lists and marks them.
// +kubebuilder:rbac:groups=argoproj.io,resources=rollouts,verbs=get;list;patch

// setupKindDiscovery adds the workload.Discovery that tells kinds which of its
// optional kinds are served, after looking once now, so that the first
// evaluations already list the Rollouts of a cluster that has them (a failed
// look is logged and tried again when the manager starts it).
func setupKindDiscovery(ctx context.Context, mgr ctrl.Manager, kinds *workload.Registry, interval time.Duration) error {
	client, err := discovery.NewDiscoveryClientForConfig(mgr.GetConfig())
	if err != nil {
		return fmt.Errorf("setting up discovery of the gated kinds: %w", err)
	}
	d := &workload.Discovery{Kinds: kinds, Client: client, Interval: interval}
	d.Refresh(ctx)
	if err := mgr.Add(d); err != nil {
		return fmt.Errorf("setting up discovery of the gated kinds: %w", err)
	}
	return nil
}

// syncAnnotations makes the freeze annotations of every workload that this SLO
// selects, or that an earlier evaluation marked for it, reflect all frozen SLOs
// of the namespace that select it: budgetgate.dev/frozen, frozen-by (sorted SLO
// names) and frozen-since (the earliest start). A workload that stopped being
// selected, or whose SLO is being deleted (deleting), loses this SLO's mark;
// one no longer frozen by anyone loses the annotations (server-side apply drops
// what the field manager no longer applies). Workloads whose annotations are
// already right are not written. It returns the number of workloads the SLO
// selects.
//
// It lists the metadata of the namespace's workloads of every gated kind,
// uncached: selection by label alone would miss the workloads that left it.
// The kinds are listed concurrently and the annotations written
// AnnotationWorkers at a time.
func (r *ServiceLevelObjectiveReconciler) syncAnnotations(ctx context.Context, slo *slov1alpha1.ServiceLevelObjective, deleting bool) (int32, error) {
	if r.APIReader == nil {
		return 0, nil
	}
	others := &slov1alpha1.ServiceLevelObjectiveList{}
	if err := r.List(ctx, others, client.InNamespace(slo.Namespace)); err != nil {
		return 0, fmt.Errorf("listing SLOs in %s: %w", slo.Namespace, err)
	}
	frozen := []*slov1alpha1.ServiceLevelObjective{}
	if slo.Status.Freeze.Active && !deleting {
		frozen = append(frozen, slo)
	}
	for i := range others.Items {
		o := &others.Items[i]
		if o.Name != slo.Name && o.Status.Freeze.Active && o.DeletionTimestamp.IsZero() {
			frozen = append(frozen, o)
		}
	}
	// The kinds are listed at once: an evaluation waits for one round trip to
	// the API server, not one per kind.
	kinds := r.Kinds.Served()
	lists := make([][]metav1.PartialObjectMetadata, len(kinds))
	listErrs := make([]error, len(kinds))
	var wg sync.WaitGroup
	for i, kind := range kinds {
		wg.Go(func() { lists[i], listErrs[i] = kind.ListMeta(ctx, r.APIReader, slo.Namespace) })
	}
	wg.Wait()
	var gated int32
	var marks []mark
	var errs []error
	for i, kind := range kinds {
		if listErrs[i] != nil {
			errs = append(errs, listErrs[i])
			continue
		}
		for j := range lists[i] {
			w := &lists[i][j]
			selected := !deleting && sloview.Selects(slo, w.Namespace, w.Labels)
			if selected {
				gated++
			}
			if !selected && !markedBy(w.Annotations, slo.Name) {
				continue // not ours to touch: other SLOs keep their own marks
			}
			want := freezeAnnotations(frozen, w.Namespace, w.Labels)
			if annotationsMatch(w.Annotations, want) {
				continue
			}
			marks = append(marks, mark{kind: kind, w: w, want: want})
		}
	}
	return gated, errors.Join(append(errs, r.writeAllMarks(ctx, marks)...)...)
}

// AnnotationWorkers bounds the freeze-annotation writes one evaluation has in
// flight. Measured by make bench-scale on a kwok cluster with 10,000
// Deployments on 2 shared cores (docs/performance.md, "Scale: 10,000
// workloads, 1,000 SLOs"), a freeze of an SLO that gates 1,000 workloads
// annotated them in 31.7 s one at a time (16 ms per apply in the API server)
// and in 18.3 s 16 at a time: there the API server's CPU, not this bound, sets
// the pace (136 ms per apply with 16 in flight), so more would not help.
const AnnotationWorkers = 16

// mark is one workload whose freeze annotations must become want.
type mark struct {
	kind workload.Kind
	w    *metav1.PartialObjectMetadata
	want map[string]string
}

// writeAllMarks writes the marks, AnnotationWorkers at a time, and returns
// the errors in the order of marks.
func (r *ServiceLevelObjectiveReconciler) writeAllMarks(ctx context.Context, marks []mark) []error {
	errs := make([]error, len(marks))
	sem := make(chan struct{}, AnnotationWorkers)
	var wg sync.WaitGroup
	for i, m := range marks {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := r.writeMarks(ctx, m.kind, m.w, m.want); err != nil {
				errs[i] = fmt.Errorf("writing freeze annotations of %s %s: %w", m.kind, klog.KObj(m.w), err)
				return
			}
			verb := "Marked"
			if m.want == nil {
				verb = "Unmarked"
			}
			ctrl.LoggerFrom(ctx).V(1).Info(verb+" frozen workload", "kind", m.kind.String(), "workload", klog.KObj(m.w))
		})
	}
	wg.Wait()
	return slices.DeleteFunc(errs, func(err error) bool { return err == nil })
}

// writeMarks sets a workload's freeze annotations to want by server-side apply
// under budgetgate's field manager. Removing them (want nil) is a merge patch
// that deletes the three keys: server-side apply would only give up
// budgetgate's ownership, and keys another manager co-owns stay (kubectl
// rollout undo, for one, rewrites all of a Deployment's annotations).
func (r *ServiceLevelObjectiveReconciler) writeMarks(ctx context.Context, kind workload.Kind, w *metav1.PartialObjectMetadata, want map[string]string) error {
	if want != nil {
		return r.Apply(ctx, client.ApplyConfigurationFromUnstructured(kind.ApplyAnnotations(w.Namespace, w.Name, want)),
			client.FieldOwner(FieldManager), client.ForceOwnership)
	}
	patch := []byte(`{"metadata":{"annotations":{"` + slov1alpha1.FrozenAnnotation + `":null,"` +
		slov1alpha1.FrozenByAnnotation + `":null,"` + slov1alpha1.FrozenSinceAnnotation + `":null}}}`)
	obj := &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Namespace: w.Namespace, Name: w.Name}}
	obj.SetGroupVersionKind(kind.GVK)
	return client.IgnoreNotFound(r.Patch(ctx, obj, client.RawPatch(types.MergePatchType, patch), client.FieldOwner(FieldManager)))
}

// markedBy reports whether the frozen-by annotation names the SLO.
func markedBy(annotations map[string]string, slo string) bool {
	return slices.Contains(strings.Split(annotations[slov1alpha1.FrozenByAnnotation], ","), slo)
}

// freezeAnnotations are the annotations a workload with these labels should
// carry, or nil when no frozen SLO selects it.
func freezeAnnotations(frozen []*slov1alpha1.ServiceLevelObjective, namespace string, lbls map[string]string) map[string]string {
	var names []string
	var since time.Time
	for _, s := range frozen {
		if !sloview.Selects(s, namespace, lbls) {
			continue
		}
		names = append(names, s.Name)
		if t := s.Status.Freeze.Since; t != nil && (since.IsZero() || t.Time.Before(since)) {
			since = t.Time
		}
	}
	if len(names) == 0 {
		return nil
	}
	slices.Sort(names)
	out := map[string]string{
		slov1alpha1.FrozenAnnotation:   "true",
		slov1alpha1.FrozenByAnnotation: strings.Join(names, ","),
	}
	if !since.IsZero() {
		out[slov1alpha1.FrozenSinceAnnotation] = since.UTC().Format(time.RFC3339)
	}
	return out
}

func annotationsMatch(have, want map[string]string) bool {
	for _, k := range []string{slov1alpha1.FrozenAnnotation, slov1alpha1.FrozenByAnnotation, slov1alpha1.FrozenSinceAnnotation} {
		hv, hok := have[k]
		wv, wok := want[k]
		if hok != wok || hv != wv {
			return false
		}
	}
	return true
}
