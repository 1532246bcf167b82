package workload

import (
	"context"
	"errors"
	"reflect"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	fakediscovery "k8s.io/client-go/discovery/fake"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	clienttesting "k8s.io/client-go/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
)

var rolloutGK = schema.GroupKind{Group: "argoproj.io", Kind: "Rollout"}

func names(kinds []Kind) []string {
	var out []string
	for _, k := range kinds {
		out = append(out, k.GVK.Kind)
	}
	return out
}

// The registry gates Rollouts always (a request for one proves the API
// server serves them) and lists them only while discovery says they are served.
func TestRegistryServesOptionalKindsOnlyOnceDiscovered(t *testing.T) {
	r := Default()
	if got, want := names(r.All()), []string{"Deployment", "StatefulSet", "DaemonSet", "Rollout"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("All() = %v, want %v", got, want)
	}
	if got, want := names(r.Served()), []string{"Deployment", "StatefulSet", "DaemonSet"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Served() before discovery = %v, want %v", got, want)
	}
	if k, ok := r.Lookup(rolloutGK); !ok || k.Resource != "rollouts" || k.History != ReplicaSets || !k.Optional {
		t.Fatalf("Lookup(Rollout) = %+v, %v", k, ok)
	}
	if _, ok := r.Lookup(schema.GroupKind{Group: "rollouts.kruise.io", Kind: "Rollout"}); ok {
		t.Fatal("Lookup found OpenKruise's Rollout, which budgetgate does not gate")
	}
	if !r.SetServed(rolloutGK, true) || r.SetServed(rolloutGK, true) {
		t.Fatal("SetServed(true) twice: want changed, then unchanged")
	}
	if got, want := names(r.Served()), []string{"Deployment", "StatefulSet", "DaemonSet", "Rollout"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Served() once served = %v, want %v", got, want)
	}
	if !r.SetServed(rolloutGK, false) {
		t.Fatal("SetServed(false): want changed")
	}
	if got := names(r.Served()); len(got) != 3 {
		t.Fatalf("Served() once the CRD is gone = %v", got)
	}
	if err := r.AddWriters("Rollout", "system:serviceaccount:platform:argo-rollouts"); err != nil {
		t.Fatal(err)
	}
	k, _ := r.Lookup(rolloutGK)
	if !k.MayWriteHistory("system:serviceaccount:argo-rollouts:argo-rollouts") || !k.MayWriteHistory("system:serviceaccount:platform:argo-rollouts") ||
		k.MayWriteHistory("system:serviceaccount:kube-system:deployment-controller") {
		t.Fatalf("Rollout writers = %v", k.Writers)
	}
}

// A Rollout as `kubectl get -o json` shows it: the fields budgetgate reads
// sit where a Deployment has them.
const rolloutJSON = `{
  "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
  "metadata": {"name": "cart", "namespace": "shop", "uid": "r-1", "labels": {"app": "cart"}},
  "spec": {
    "replicas": 3, "restartAt": "2026-05-01T10:00:00Z",
    "selector": {"matchLabels": {"app": "cart"}},
    "strategy": {"canary": {"steps": [{"setWeight": 20}, {"pause": {}}]}},
    "template": {"metadata": {"labels": {"app": "cart"}}, "spec": {"containers": [{"name": "app", "image": "cart:v2"}]}}
  },
  "status": {"abort": false, "currentStepIndex": 1}
}`

func TestDecodeRollout(t *testing.T) {
	w, err := Decode([]byte(rolloutJSON))
	if err != nil {
		t.Fatal(err)
	}
	if w.Kind != "Rollout" || w.Name != "cart" || w.UID != "r-1" || w.Labels["app"] != "cart" {
		t.Fatalf("metadata: %+v", w.ObjectMeta)
	}
	if got := w.Spec.Template.Spec.Containers[0].Image; got != "cart:v2" {
		t.Fatalf("template image %q", got)
	}
	sel, err := w.Selector()
	if err != nil || sel.String() != "app=cart" {
		t.Fatalf("selector %v, %v", sel, err)
	}
	// spec.workloadRef: the template lives in a Deployment; the Rollout has none.
	ref, err := Decode([]byte(`{"kind":"Rollout","metadata":{"name":"cart"},"spec":{"workloadRef":{"apiVersion":"apps/v1","kind":"Deployment","name":"cart"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(ref.Spec.Template, corev1.PodTemplateSpec{}) {
		t.Fatalf("workloadRef Rollout template = %+v, want empty", ref.Spec.Template)
	}
}

func scheme(t *testing.T) *runtime.Scheme {
	t.Helper()
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	return s
}

func template(image string, lbls map[string]string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: lbls},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: image}}},
	}
}

func replicaSet(name string, owner types.UID, ownerKind string, t corev1.PodTemplateSpec) *appsv1.ReplicaSet {
	rs := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name, Labels: t.Labels},
		Spec:       appsv1.ReplicaSetSpec{Selector: &metav1.LabelSelector{MatchLabels: t.Labels}, Template: t},
	}
	if owner != "" {
		rs.OwnerReferences = []metav1.OwnerReference{{APIVersion: "argoproj.io/v1alpha1", Kind: ownerKind, Name: "cart", UID: owner, Controller: new(true)}}
	}
	return rs
}

// A Rollout's revisions are the ReplicaSets it controls, with the template
// Argo wrote into them less rollouts-pod-template-hash: what
// `kubectl argo rollouts undo` writes back.
func TestEachRevisionOfARollout(t *testing.T) {
	hashed := func(hash string) map[string]string { return map[string]string{"app": "cart", RolloutHashLabel: hash} }
	c := fake.NewClientBuilder().WithScheme(scheme(t)).WithObjects(
		replicaSet("cart-6c7d", "r-1", "Rollout", template("cart:v1", hashed("6c7d"))),
		replicaSet("cart-5b9f", "r-1", "Rollout", template("cart:v2", hashed("5b9f"))),
		replicaSet("cart-other", "r-2", "Rollout", template("cart:v9", hashed("0000"))), // another Rollout's
		replicaSet("cart-orphan", "", "", template("cart:v8", hashed("1111"))),          // nobody's
	).Build()
	w, err := Decode([]byte(rolloutJSON))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]corev1.PodTemplateSpec{}
	if err := Rollout.EachRevision(context.Background(), c, w, 1, func(r Revision) bool {
		got[r.Name] = r.Template
		return true
	}); err != nil {
		t.Fatal(err)
	}
	want := map[string]corev1.PodTemplateSpec{
		"cart-6c7d": template("cart:v1", map[string]string{"app": "cart"}),
		"cart-5b9f": template("cart:v2", map[string]string{"app": "cart"}),
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("revisions = %+v, want %+v", got, want)
	}
}

// Without the Rollout CRD the controller's list of Rollouts finds none, and
// any other failure is still an error.
func TestListMetaOfAKindNotServed(t *testing.T) {
	noMatch := &meta.NoKindMatchError{GroupKind: rolloutGK, SearchedVersions: []string{"v1alpha1"}}
	gone := apierrors.NewNotFound(schema.GroupResource{Group: "argoproj.io", Resource: "rollouts"}, "")
	for _, tc := range []struct {
		name    string
		kind    Kind
		err     error
		wantErr bool
	}{
		{"rollouts without their CRD", Rollout, noMatch, false},
		{"rollouts whose CRD was deleted", Rollout, gone, false},
		{"rollouts, forbidden", Rollout, apierrors.NewForbidden(schema.GroupResource{Group: "argoproj.io", Resource: "rollouts"}, "", errors.New("no RBAC")), true},
		{"deployments never", Deployment, noMatch, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := fake.NewClientBuilder().WithScheme(scheme(t)).WithInterceptorFuncs(interceptor.Funcs{
				List: func(context.Context, client.WithWatch, client.ObjectList, ...client.ListOption) error { return tc.err },
			}).Build()
			got, err := tc.kind.ListMeta(context.Background(), c, "shop")
			if (err != nil) != tc.wantErr || len(got) != 0 {
				t.Fatalf("ListMeta = %v, %v; want error %v", got, err, tc.wantErr)
			}
		})
	}
	if NotServed(apierrors.NewNotFound(schema.GroupResource{Group: "argoproj.io", Resource: "rollouts"}, "cart")) {
		t.Fatal("a 404 for one Rollout says nothing about the API")
	}
}

func TestDiscoveryFollowsTheCRD(t *testing.T) {
	disc := &fakediscovery.FakeDiscovery{Fake: &clienttesting.Fake{}}
	r := Default()
	d := &Discovery{Kinds: r, Client: disc}
	served := func() bool {
		for _, k := range r.Served() {
			if k.GVK.GroupKind() == rolloutGK {
				return true
			}
		}
		return false
	}
	ctx := context.Background()

	d.Refresh(ctx)
	if served() {
		t.Fatal("served without the CRD")
	}
	disc.Resources = []*metav1.APIResourceList{{GroupVersion: "argoproj.io/v1alpha1", APIResources: []metav1.APIResource{
		{Name: "analysisruns", Kind: "AnalysisRun", Namespaced: true},
		{Name: "rollouts", Kind: "Rollout", Namespaced: true},
	}}}
	d.Refresh(ctx)
	if !served() {
		t.Fatal("not served once the CRD is installed")
	}

	failWith := func(err error) {
		disc.PrependReactor("get", "resource", func(clienttesting.Action) (bool, runtime.Object, error) { return true, nil, err })
	}
	failWith(errors.New("connection refused"))
	d.Refresh(ctx)
	if !served() {
		t.Fatal("a failed look forgot that Rollouts are served")
	}

	disc.ReactionChain = nil
	disc.Resources = []*metav1.APIResourceList{{GroupVersion: "argoproj.io/v1alpha1", APIResources: []metav1.APIResource{
		{Name: "analysisruns", Kind: "AnalysisRun", Namespaced: true},
	}}}
	d.Refresh(ctx)
	if served() {
		t.Fatal("served with the group but without rollouts")
	}
}
