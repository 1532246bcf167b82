package controller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	slov1alpha1 "github.com/budgetgate/budgetgate/api/v1alpha1"
	"github.com/budgetgate/budgetgate/internal/workload"
)

// writes records the freeze-annotation writes of syncAnnotations through the
// fake client's interceptor: who was written with what, and how many writes
// were in flight at once.
type writes struct {
	mu       sync.Mutex
	applied  map[string]map[string]string // "Kind/name" → annotations applied
	removed  []string                     // "Kind/name" of merge patches that remove them
	inFlight atomic.Int32
	maxSeen  atomic.Int32
	fail     map[string]bool // names whose Apply fails
}

func (w *writes) enter() func() {
	n := w.inFlight.Add(1)
	for {
		m := w.maxSeen.Load()
		if n <= m || w.maxSeen.CompareAndSwap(m, n) {
			break
		}
	}
	// Long enough for the other writes to start while this one is in flight.
	time.Sleep(5 * time.Millisecond)
	return func() { w.inFlight.Add(-1) }
}

func (w *writes) funcs() interceptor.Funcs {
	return interceptor.Funcs{
		Apply: func(_ context.Context, _ client.WithWatch, obj runtime.ApplyConfiguration, _ ...client.ApplyOption) error {
			defer w.enter()()
			data, err := json.Marshal(obj)
			if err != nil {
				return err
			}
			u := &unstructured.Unstructured{}
			if err := u.UnmarshalJSON(data); err != nil {
				return err
			}
			w.mu.Lock()
			defer w.mu.Unlock()
			if w.fail[u.GetName()] {
				return errors.New("injected failure")
			}
			w.applied[u.GetKind()+"/"+u.GetName()] = u.GetAnnotations()
			return nil
		},
		Patch: func(_ context.Context, _ client.WithWatch, obj client.Object, _ client.Patch, _ ...client.PatchOption) error {
			defer w.enter()()
			w.mu.Lock()
			defer w.mu.Unlock()
			w.removed = append(w.removed, obj.GetObjectKind().GroupVersionKind().Kind+"/"+obj.GetName())
			return nil
		},
	}
}

func frozenSLO(since time.Time) *slov1alpha1.ServiceLevelObjective {
	slo := &slov1alpha1.ServiceLevelObjective{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "checkout"}}
	slo.Spec.WorkloadSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "checkout"}}
	slo.Status.Freeze.Active = true
	slo.Status.Freeze.Since = &metav1.Time{Time: since}
	return slo
}

func deployment(name, app string, annotations map[string]string) *appsv1.Deployment {
	return &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name,
		Labels: map[string]string{"app": app}, Annotations: annotations}}
}

// fanoutFixture is a namespace with a frozen SLO that selects n Deployments
// and one StatefulSet that carry no marks yet, one selected Deployment already
// marked right, one marked by the SLO that left its selection, and one that
// was never selected.
func fanoutFixture(t *testing.T, n int, w *writes) (*ServiceLevelObjectiveReconciler, *slov1alpha1.ServiceLevelObjective, map[string]string) {
	t.Helper()
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	if err := slov1alpha1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	since := time.Date(2026, 12, 2, 16, 0, 0, 0, time.UTC)
	slo := frozenSLO(since)
	want := map[string]string{
		slov1alpha1.FrozenAnnotation:      "true",
		slov1alpha1.FrozenByAnnotation:    "checkout",
		slov1alpha1.FrozenSinceAnnotation: since.Format(time.RFC3339),
	}
	objs := []client.Object{slo,
		deployment("done", "checkout", want),
		deployment("left", "other", map[string]string{slov1alpha1.FrozenAnnotation: "true", slov1alpha1.FrozenByAnnotation: "checkout"}),
		deployment("bystander", "other", nil),
		&appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "db", Labels: map[string]string{"app": "checkout"}}},
	}
	for i := range n {
		objs = append(objs, deployment(fmt.Sprintf("w-%03d", i), "checkout", nil))
	}
	c := fake.NewClientBuilder().WithScheme(s).WithObjects(objs...).WithInterceptorFuncs(w.funcs()).Build()
	return &ServiceLevelObjectiveReconciler{Client: c, APIReader: c, Kinds: workload.Default()}, slo, want
}

// A freeze reaches every selected workload of every served kind, at most
// AnnotationWorkers writes at a time but more than one; workloads already
// right are not written, and a workload that left the selection is unmarked.
func TestSyncAnnotationsFansOutBounded(t *testing.T) {
	const n = 100
	w := &writes{applied: map[string]map[string]string{}}
	r, slo, want := fanoutFixture(t, n, w)

	gated, err := r.syncAnnotations(context.Background(), slo, false)
	if err != nil {
		t.Fatalf("syncAnnotations: %v", err)
	}
	if gated != n+2 { // the n Deployments, "done" and the StatefulSet
		t.Errorf("gated = %d, want %d", gated, n+2)
	}
	if len(w.applied) != n+1 {
		t.Errorf("%d workloads marked, want %d (every selected one but \"done\")", len(w.applied), n+1)
	}
	for key, got := range w.applied {
		if !annotationsMatch(got, want) || len(got) != len(want) {
			t.Errorf("%s marked with %v, want %v", key, got, want)
		}
	}
	for _, key := range []string{"Deployment/done", "Deployment/bystander", "Deployment/left"} {
		if _, ok := w.applied[key]; ok {
			t.Errorf("%s was marked", key)
		}
	}
	if _, ok := w.applied["StatefulSet/db"]; !ok {
		t.Error("the selected StatefulSet was not marked")
	}
	if len(w.removed) != 1 || w.removed[0] != "Deployment/left" {
		t.Errorf("unmarked %v, want [Deployment/left]", w.removed)
	}
	if m := w.maxSeen.Load(); m > AnnotationWorkers || m < 2 {
		t.Errorf("at most %d writes in flight, want 2..%d", m, AnnotationWorkers)
	}
}

// A failed write does not stop the others, and every failure is returned,
// naming its workload.
func TestSyncAnnotationsReportsEveryFailedWrite(t *testing.T) {
	const n = 40
	w := &writes{applied: map[string]map[string]string{}, fail: map[string]bool{"w-003": true, "w-031": true}}
	r, slo, _ := fanoutFixture(t, n, w)

	gated, err := r.syncAnnotations(context.Background(), slo, false)
	if gated != n+2 {
		t.Errorf("gated = %d, want %d", gated, n+2)
	}
	if err == nil {
		t.Fatal("syncAnnotations succeeded with two failed writes")
	}
	for _, name := range []string{"shop/w-003", "shop/w-031"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error %q does not name %s", err, name)
		}
	}
	if strings.Count(err.Error(), "injected failure") != 2 {
		t.Errorf("error %q: want exactly the two failures", err)
	}
	if len(w.applied) != n+1-2 {
		t.Errorf("%d workloads marked, want %d: the failures must not stop the other writes", len(w.applied), n+1-2)
	}
}

// An SLO being deleted takes its mark off every workload that carries it.
func TestSyncAnnotationsDeletingUnmarks(t *testing.T) {
	w := &writes{applied: map[string]map[string]string{}}
	r, slo, _ := fanoutFixture(t, 3, w)

	gated, err := r.syncAnnotations(context.Background(), slo, true)
	if err != nil || gated != 0 {
		t.Fatalf("syncAnnotations(deleting) = %d, %v; want 0, nil", gated, err)
	}
	if len(w.applied) != 0 {
		t.Errorf("marked %d workloads while deleting", len(w.applied))
	}
	// "done" and "left" carry its mark; the unmarked ones need no write.
	if got := strings.Join(slices.Sorted(slices.Values(w.removed)), ","); got != "Deployment/done,Deployment/left" {
		t.Errorf("unmarked %s, want Deployment/done,Deployment/left", got)
	}
}
