package controller

import (
	"context"
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	slov1alpha1 "github.com/budgetgate/budgetgate/api/v1alpha1"
	"github.com/budgetgate/budgetgate/internal/leader"
	"github.com/budgetgate/budgetgate/internal/promconn"
	"github.com/budgetgate/budgetgate/internal/sli"
)

// A replica whose fence fails (it may have lost the leader lease) neither
// measures nor writes, and looks at the SLO again soon.
func TestFenceStopsEvaluation(t *testing.T) {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	if err := slov1alpha1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	slo := &slov1alpha1.ServiceLevelObjective{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "checkout"}}
	c := fake.NewClientBuilder().WithScheme(s).WithObjects(slo).WithStatusSubresource(slo).Build()
	before := &slov1alpha1.ServiceLevelObjective{}
	if err := c.Get(context.Background(), types.NamespacedName{Namespace: "shop", Name: "checkout"}, before); err != nil {
		t.Fatal(err)
	}
	conns, err := promconn.FromAddress("http://prometheus:9090")
	if err != nil {
		t.Fatal(err)
	}
	r := &ServiceLevelObjectiveReconciler{
		Client: c,
		Clock:  clock.RealClock{},
		Sources: func(*promconn.Connection) (sli.Source, error) {
			t.Error("Prometheus asked while fenced")
			return nil, fmt.Errorf("fenced")
		},
		Connections: conns,
		Fence:       func() error { return leader.ErrNotLeader },
	}
	got, err := r.Reconcile(context.Background(), ctrl.Request{NamespacedName: types.NamespacedName{Namespace: "shop", Name: "checkout"}})
	if err != nil || got != (ctrl.Result{RequeueAfter: 2 * time.Second}) {
		t.Fatalf("Reconcile = %+v, %v; want a requeue after 2s and no error", got, err)
	}
	after := &slov1alpha1.ServiceLevelObjective{}
	if err := c.Get(context.Background(), types.NamespacedName{Namespace: "shop", Name: "checkout"}, after); err != nil {
		t.Fatal(err)
	}
	if after.ResourceVersion != before.ResourceVersion {
		t.Errorf("the SLO was written while fenced: resourceVersion %s → %s, finalizers %v, lastEvaluationTime %v",
			before.ResourceVersion, after.ResourceVersion, after.Finalizers, after.Status.LastEvaluationTime)
	}
}
