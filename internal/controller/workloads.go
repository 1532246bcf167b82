package controller

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
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

func (r *ServiceLevelObjectiveReconciler) countWorkloads(ctx context.Context, slo *slov1alpha1.ServiceLevelObjective) (int32, error) {
	if r.APIReader == nil {
		return 0, nil
	}
	ws, err := r.selectedWorkloads(ctx, slo)
	return int32(len(ws)), err
}
