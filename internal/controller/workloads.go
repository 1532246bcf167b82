package controller

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	appsv1ac "k8s.io/client-go/applyconfigurations/apps/v1"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	slov1alpha1 "github.com/budgetgate/budgetgate/api/v1alpha1"
)

// WorkloadKinds are the kinds an SLO gates.
var WorkloadKinds = []string{"Deployment", "StatefulSet", "DaemonSet"}

// selectedWorkloads lists, uncached and metadata only, the workloads an SLO selects.
// An SLO without a selector, or with an empty one, gates nothing.
func (r *ServiceLevelObjectiveReconciler) selectedWorkloads(ctx context.Context, slo *slov1alpha1.ServiceLevelObjective) ([]metav1.PartialObjectMetadata, error) {
	if slo.Spec.WorkloadSelector == nil {
		return nil, nil
	}
	sel, err := metav1.LabelSelectorAsSelector(slo.Spec.WorkloadSelector)
	if err != nil {
		return nil, fmt.Errorf("spec.workloadSelector of %s: %w", klog.KObj(slo), err)
	}
	if sel.Empty() {
		// An empty selector would select every workload of the namespace; like an
		// unset one it gates nothing, so that a typo never freezes a whole namespace.
		return nil, nil
	}
	var out []metav1.PartialObjectMetadata
	for _, kind := range WorkloadKinds {
		list := &metav1.PartialObjectMetadataList{}
		list.SetGroupVersionKind(appsv1.SchemeGroupVersion.WithKind(kind + "List"))
		if err := r.APIReader.List(ctx, list, client.InNamespace(slo.Namespace), client.MatchingLabelsSelector{Selector: sel}); err != nil {
			return nil, fmt.Errorf("listing %ss selected by %s: %w", kind, klog.KObj(slo), err)
		}
		for i := range list.Items {
			list.Items[i].SetGroupVersionKind(appsv1.SchemeGroupVersion.WithKind(kind))
			out = append(out, list.Items[i])
		}
	}
	return out, nil
}

// FieldManager is the server-side apply field manager of the freeze annotations.
const FieldManager = "budgetgate"

// syncAnnotations makes the freeze annotations of every workload this SLO selects
// reflect all frozen SLOs of the namespace that select it: budgetgate.dev/frozen,
// frozen-by (sorted SLO names) and frozen-since (the earliest start). Workloads
// whose annotations are already right are not written; a workload no longer
// frozen by anyone loses them (server-side apply drops what the field manager no
// longer applies). It returns the number of workloads the SLO selects.
func (r *ServiceLevelObjectiveReconciler) syncAnnotations(ctx context.Context, slo *slov1alpha1.ServiceLevelObjective) (int32, error) {
	if r.APIReader == nil {
		return 0, nil
	}
	workloads, err := r.selectedWorkloads(ctx, slo)
	if err != nil || len(workloads) == 0 {
		return 0, err
	}
	others := &slov1alpha1.ServiceLevelObjectiveList{}
	if err := r.List(ctx, others, client.InNamespace(slo.Namespace)); err != nil {
		return 0, fmt.Errorf("listing SLOs in %s: %w", slo.Namespace, err)
	}
	frozen := []*slov1alpha1.ServiceLevelObjective{}
	if slo.Status.Freeze.Active {
		frozen = append(frozen, slo)
	}
	for i := range others.Items {
		o := &others.Items[i]
		if o.Name != slo.Name && o.Status.Freeze.Active && o.Spec.WorkloadSelector != nil {
			frozen = append(frozen, o)
		}
	}
	var errs []error
	for i := range workloads {
		w := &workloads[i]
		want := freezeAnnotations(frozen, w.Labels)
		if annotationsMatch(w.Annotations, want) {
			continue
		}
		if err := r.applyAnnotations(ctx, w, want); err != nil {
			errs = append(errs, err)
			continue
		}
		verb := "Marked"
		if want == nil {
			verb = "Unmarked"
		}
		ctrl.LoggerFrom(ctx).V(1).Info(verb+" frozen workload", "kind", w.Kind, "workload", klog.KObj(w))
	}
	return int32(len(workloads)), errors.Join(errs...)
}

// freezeAnnotations are the annotations a workload with these labels should
// carry, or nil when no frozen SLO selects it.
func freezeAnnotations(frozen []*slov1alpha1.ServiceLevelObjective, lbls map[string]string) map[string]string {
	var names []string
	var since time.Time
	for _, s := range frozen {
		sel, err := metav1.LabelSelectorAsSelector(s.Spec.WorkloadSelector)
		if err != nil || sel.Empty() || !sel.Matches(labels.Set(lbls)) {
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

// applyAnnotations server-side applies exactly want as budgetgate's annotations.
func (r *ServiceLevelObjectiveReconciler) applyAnnotations(ctx context.Context, w *metav1.PartialObjectMetadata, want map[string]string) error {
	var ac runtime.ApplyConfiguration
	switch w.Kind {
	case "Deployment":
		ac = appsv1ac.Deployment(w.Name, w.Namespace).WithAnnotations(want)
	case "StatefulSet":
		ac = appsv1ac.StatefulSet(w.Name, w.Namespace).WithAnnotations(want)
	case "DaemonSet":
		ac = appsv1ac.DaemonSet(w.Name, w.Namespace).WithAnnotations(want)
	default:
		return nil
	}
	if err := r.Apply(ctx, ac, client.FieldOwner(FieldManager), client.ForceOwnership); err != nil {
		return fmt.Errorf("applying freeze annotations to %s %s: %w", w.Kind, klog.KObj(w), err)
	}
	return nil
}
