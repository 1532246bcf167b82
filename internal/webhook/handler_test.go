package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	slov1alpha1 "github.com/budgetgate/budgetgate/api/v1alpha1"
	"github.com/budgetgate/budgetgate/internal/workload"
)

// These tests drive the handler with AdmissionRequests and a fake cache, for
// what the envtest suite cannot see: audit annotations, and that the allow path
// makes no call that leaves the process.

var testNow = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

func testScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(slov1alpha1.AddToScheme(s))
	return s
}

func frozenSLO() *slov1alpha1.ServiceLevelObjective {
	return &slov1alpha1.ServiceLevelObjective{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "checkout-availability"},
		Spec: slov1alpha1.ServiceLevelObjectiveSpec{
			Target:           "99.9",
			WorkloadSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "checkout"}},
		},
		Status: slov1alpha1.ServiceLevelObjectiveStatus{
			Policy: slov1alpha1.BuiltInPolicyName,
			Freeze: slov1alpha1.FreezeStatus{
				Active: true, Mode: slov1alpha1.ModeEnforce, Rule: "fast-burn",
				Reason:    "fast-burn: burn rate 15.10x over 1h and 16.00x over 5m ≥ 14.40x; budget 62.3% left",
				Since:     &metav1.Time{Time: testNow.Add(-10 * time.Minute)},
				HoldUntil: &metav1.Time{Time: testNow.Add(50 * time.Minute)},
			},
		},
	}
}

func deployment(image string, annotations map[string]string) *appsv1.Deployment {
	lbls := map[string]string{"app": "checkout"}
	return &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "checkout", UID: "uid-1", Labels: lbls},
		Spec: appsv1.DeploymentSpec{
			Replicas: new(int32(3)),
			Selector: &metav1.LabelSelector{MatchLabels: lbls},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: lbls, Annotations: annotations},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: image}}},
			},
		},
	}
}

func updateRequest(t testing.TB, old, new *appsv1.Deployment) admission.Request {
	oldRaw, err := json.Marshal(old)
	if err != nil {
		t.Fatal(err)
	}
	newRaw, err := json.Marshal(new)
	if err != nil {
		t.Fatal(err)
	}
	return admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
		UID:       "req-1",
		Kind:      metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"},
		Resource:  metav1.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"},
		Namespace: "shop", Name: "checkout",
		Operation: admissionv1.Update,
		UserInfo:  authenticationv1.UserInfo{Username: "alice", Groups: []string{"developers"}},
		Object:    runtime.RawExtension{Raw: newRaw},
		OldObject: runtime.RawExtension{Raw: oldRaw},
	}}
}

// forbidCalls is a client that fails the test on any call: what leaves the process.
func forbidCalls(t testing.TB) client.WithWatch {
	fail := func(what string) { t.Errorf("unexpected %s call on the admission path", what) }
	return fake.NewClientBuilder().WithScheme(testScheme()).WithInterceptorFuncs(interceptor.Funcs{
		Get: func(context.Context, client.WithWatch, client.ObjectKey, client.Object, ...client.GetOption) error {
			fail("Get")
			return nil
		},
		List: func(context.Context, client.WithWatch, client.ObjectList, ...client.ListOption) error {
			fail("List")
			return nil
		},
		Create: func(context.Context, client.WithWatch, client.Object, ...client.CreateOption) error {
			fail("Create")
			return nil
		},
	}).Build()
}

func handler(cache client.Reader, outbound client.Client) *WorkloadHandler {
	return &WorkloadHandler{Cache: cache, APIReader: outbound, Writer: outbound, Clock: clocktesting.NewFakePassiveClock(testNow), Kinds: workload.Default()}
}

func TestAllowPathsMakeNoOutboundCalls(t *testing.T) {
	notFrozen := frozenSLO()
	notFrozen.Status.Freeze = slov1alpha1.FreezeStatus{}
	scaled := deployment("checkout:v1", nil)
	scaled.Spec.Replicas = new(int32(10))
	tests := []struct {
		name     string
		slo      *slov1alpha1.ServiceLevelObjective
		old, new *appsv1.Deployment
		class    string
	}{
		{"not frozen", notFrozen, deployment("checkout:v1", nil), deployment("checkout:v2", nil), "not-frozen"},
		{"frozen, replicas only", frozenSLO(), deployment("checkout:v1", nil), scaled, "scale-or-metadata"},
		{"frozen, restart", frozenSLO(), deployment("checkout:v1", nil),
			deployment("checkout:v1", map[string]string{"kubectl.kubernetes.io/restartedAt": "2026-11-27T11:59:00Z"}), "restart"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cache := fake.NewClientBuilder().WithScheme(testScheme()).WithObjects(tt.slo).Build()
			h := handler(cache, forbidCalls(t))
			resp := h.Handle(context.Background(), updateRequest(t, tt.old, tt.new))
			if !resp.Allowed || resp.Result.Message != tt.class {
				t.Errorf("got allowed=%v message=%q, want allowed with class %q", resp.Allowed, resp.Result.Message, tt.class)
			}
		})
	}
}

// TestNothingFrozenSkipsDecoding: where no SLO of the namespace is frozen the
// objects cannot change the decision, and the handler does not read them; as
// soon as one is frozen it does, and an object it cannot read is an error,
// never an allow.
func TestNothingFrozenSkipsDecoding(t *testing.T) {
	notFrozen := frozenSLO()
	notFrozen.Status.Freeze = slov1alpha1.FreezeStatus{}
	garbage := updateRequest(t, deployment("checkout:v1", nil), deployment("checkout:v2", nil))
	garbage.Object.Raw, garbage.OldObject.Raw = []byte(`{"metadata":`), []byte(`not json`)
	noObject := updateRequest(t, deployment("checkout:v1", nil), deployment("checkout:v2", nil))
	noObject.Object.Raw = nil
	for _, tc := range []struct {
		name    string
		slo     *slov1alpha1.ServiceLevelObjective
		req     admission.Request
		allowed bool
		message string
		code    int32
	}{
		{"nothing frozen: not read", notFrozen, garbage, true, "not-frozen", http.StatusOK},
		{"no SLO at all: not read", nil, garbage, true, "not-frozen", http.StatusOK},
		{"nothing frozen, no new object", notFrozen, noObject, true, "scale-or-metadata", http.StatusOK},
		{"frozen: read, and unreadable is an error", frozenSLO(), garbage, false, "", http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := fake.NewClientBuilder().WithScheme(testScheme())
			if tc.slo != nil {
				b = b.WithObjects(tc.slo)
			}
			resp := handler(b.Build(), forbidCalls(t)).Handle(context.Background(), tc.req)
			if resp.Allowed != tc.allowed || resp.Result.Code != tc.code || tc.allowed && resp.Result.Message != tc.message {
				t.Errorf("got allowed=%v code=%d message=%q, want allowed=%v code=%d message=%q",
					resp.Allowed, resp.Result.Code, resp.Result.Message, tc.allowed, tc.code, tc.message)
			}
		})
	}
}

func TestAuditAnnotations(t *testing.T) {
	t.Run("exception", func(t *testing.T) {
		fex := &slov1alpha1.FreezeException{
			ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "payment-fix", Generation: 1},
			Spec: slov1alpha1.FreezeExceptionSpec{
				Reason:    "Switch to the backup payment provider (INC-4821)",
				Workloads: []slov1alpha1.WorkloadReference{{Kind: "Deployment", Name: "checkout"}},
				ExpiresAt: metav1.Time{Time: testNow.Add(time.Hour)},
			},
			Status: slov1alpha1.FreezeExceptionStatus{Conditions: []metav1.Condition{{
				Type: slov1alpha1.ConditionValid, Status: metav1.ConditionTrue, ObservedGeneration: 1, Reason: "Valid"}}},
		}
		cache := fake.NewClientBuilder().WithScheme(testScheme()).WithObjects(frozenSLO(), fex).Build()
		h := handler(cache, forbidCalls(t))
		h.Writer = nil // counting the use is asynchronous and tested in the envtest suite
		resp := h.Handle(context.Background(), updateRequest(t, deployment("checkout:v1", nil), deployment("checkout:v2", nil)))
		if !resp.Allowed {
			t.Fatalf("denied: %s", resp.Result.Message)
		}
		want := map[string]string{"user": "alice", "exception": "payment-fix", "reason": "Switch to the backup payment provider (INC-4821)"}
		for k, v := range want {
			if resp.AuditAnnotations[k] != v {
				t.Errorf("audit annotation %q = %q, want %q (all: %v)", k, resp.AuditAnnotations[k], v, resp.AuditAnnotations)
			}
		}
		if len(resp.Warnings) == 0 {
			t.Error("want a warning that the release went through under an exception")
		}
	})

	t.Run("exempt release class", func(t *testing.T) {
		var sars int
		outbound := fake.NewClientBuilder().WithScheme(testScheme()).WithInterceptorFuncs(interceptor.Funcs{
			Create: func(_ context.Context, _ client.WithWatch, obj client.Object, _ ...client.CreateOption) error {
				sar, ok := obj.(*authorizationv1.SubjectAccessReview)
				if !ok {
					t.Fatalf("unexpected create of %T", obj)
				}
				sars++
				ra := sar.Spec.ResourceAttributes
				sar.Status.Allowed = sar.Spec.User == "alice" && ra.Verb == "release-during-freeze" &&
					ra.Resource == "servicelevelobjectives" && ra.Group == "slo.budgetgate.dev" && ra.Namespace == "shop"
				return nil
			},
		}).Build()
		cache := fake.NewClientBuilder().WithScheme(testScheme()).WithObjects(frozenSLO()).Build()
		h := handler(cache, outbound)
		hotfix := deployment("checkout:v1-hotfix", map[string]string{slov1alpha1.ReleaseClassAnnotation: "hotfix"})
		resp := h.Handle(context.Background(), updateRequest(t, deployment("checkout:v1", nil), hotfix))
		if !resp.Allowed {
			t.Fatalf("denied: %s", resp.Result.Message)
		}
		if sars != 1 {
			t.Errorf("SubjectAccessReviews = %d, want 1", sars)
		}
		if resp.AuditAnnotations["user"] != "alice" || resp.AuditAnnotations["release-class"] != "hotfix" {
			t.Errorf("audit annotations = %v, want user alice and release-class hotfix", resp.AuditAnnotations)
		}
	})
}

// BenchmarkHandle measures the handler in-process on the allow path (nothing
// frozen) and on the deny path (frozen, image change, history of 10 ReplicaSets).
func BenchmarkHandle(b *testing.B) {
	for _, bc := range benchCases(b) {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				resp := bc.h.Handle(context.Background(), bc.req)
				if resp.Allowed != bc.allowed {
					b.Fatalf("allowed = %v", resp.Allowed)
				}
			}
		})
	}
}

// BenchmarkHTTP measures the same through the webhook's HTTP handler: JSON
// AdmissionReview in, AdmissionReview out, over a loopback connection.
func BenchmarkHTTP(b *testing.B) {
	for _, bc := range benchCases(b) {
		b.Run(bc.name, func(b *testing.B) {
			srv := httptest.NewServer(&admission.Webhook{Handler: bc.h})
			defer srv.Close()
			review := admissionv1.AdmissionReview{
				TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
				Request:  &bc.req.AdmissionRequest,
			}
			body, err := json.Marshal(review)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				resp, err := http.Post(srv.URL, "application/json", bytes.NewReader(body))
				if err != nil {
					b.Fatal(err)
				}
				var out admissionv1.AdmissionReview
				if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
					b.Fatal(err)
				}
				_ = resp.Body.Close()
				if out.Response.Allowed != bc.allowed {
					b.Fatalf("allowed = %v", out.Response.Allowed)
				}
			}
		})
	}
}

type benchCase struct {
	name    string
	h       *WorkloadHandler
	req     admission.Request
	allowed bool
}

func benchCases(b *testing.B) []benchCase {
	old, updated := deployment("checkout:v1", nil), deployment("checkout:v2", nil)
	req := updateRequest(b, old, updated)

	notFrozen := frozenSLO()
	notFrozen.Status.Freeze = slov1alpha1.FreezeStatus{}
	allowCache := fake.NewClientBuilder().WithScheme(testScheme()).WithObjects(notFrozen).Build()

	history := make([]client.Object, 0, 10)
	for i := range 10 {
		t := old.Spec.Template.DeepCopy()
		t.Spec.Containers[0].Image = "checkout:v0." + string(rune('a'+i))
		history = append(history, &appsv1.ReplicaSet{
			ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "checkout-" + string(rune('a'+i)), Labels: old.Labels,
				OwnerReferences: []metav1.OwnerReference{{UID: old.UID, Controller: new(true), Kind: "Deployment", Name: "checkout", APIVersion: "apps/v1"}}},
			Spec: appsv1.ReplicaSetSpec{Selector: old.Spec.Selector, Template: *t},
		})
	}
	denyCache := fake.NewClientBuilder().WithScheme(testScheme()).WithObjects(frozenSLO()).Build()
	apiReader := fake.NewClientBuilder().WithScheme(testScheme()).WithObjects(history...).Build()
	clk := clocktesting.NewFakePassiveClock(testNow)
	return []benchCase{
		{"allow-not-frozen", &WorkloadHandler{Cache: allowCache, Clock: clk, Kinds: workload.Default()}, req, true},
		{"deny-frozen-10-revisions", &WorkloadHandler{Cache: denyCache, APIReader: apiReader, Clock: clk, Kinds: workload.Default()}, req, false},
	}
}
