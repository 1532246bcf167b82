package webhook

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/budgetgate/budgetgate/internal/freeze"
)

// A slow API server must not turn the deny path into an allow: past the
// webhook's timeout the API server would ignore the webhook (failurePolicy
// Ignore) and the release would pass. The decision's own deadline comes first,
// and denies.
func TestDenyPathHasItsOwnDeadline(t *testing.T) {
	slow := fake.NewClientBuilder().WithScheme(testScheme()).WithInterceptorFuncs(interceptor.Funcs{
		List: func(ctx context.Context, _ client.WithWatch, _ client.ObjectList, _ ...client.ListOption) error {
			<-ctx.Done() // an API server that never answers
			return ctx.Err()
		},
	}).Build()
	cache := fake.NewClientBuilder().WithScheme(testScheme()).WithObjects(frozenSLO()).Build()
	h := handler(cache, slow)
	h.Deadline = 200 * time.Millisecond
	start := time.Now()
	resp := h.Handle(context.Background(), updateRequest(t, deployment("checkout:v1", nil), deployment("checkout:v0", nil)))
	took := time.Since(start)
	if resp.Allowed {
		t.Fatal("a rollback that could not be verified was allowed")
	}
	want := "Could not verify a rollback: reading the revision history failed (budgetgate's deadline for this decision passed before the API server answered); if this is a rollback, retry it."
	if !strings.Contains(resp.Result.Message, "\n"+want+"\n") {
		t.Errorf("deny message lacks %q:\n%s", want, resp.Result.Message)
	}
	if took > 2*time.Second {
		t.Errorf("decision took %v with a 200ms deadline", took)
	}
}

// History is read a page at a time and the walk stops at the first match.
func TestHistoryIsPagedAndStopsAtFirstMatch(t *testing.T) {
	old := deployment("checkout:v1", nil)
	var history []client.Object
	for i := range 250 {
		tpl := old.Spec.Template.DeepCopy()
		tpl.Spec.Containers[0].Image = fmt.Sprintf("checkout:v0.%03d", i)
		history = append(history, &appsv1.ReplicaSet{
			ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: fmt.Sprintf("checkout-%03d", i), Labels: old.Labels,
				OwnerReferences: []metav1.OwnerReference{{UID: old.UID, Controller: new(true), Kind: "Deployment", Name: "checkout", APIVersion: "apps/v1"}}},
			Spec: appsv1.ReplicaSetSpec{Selector: old.Spec.Selector, Template: *tpl},
		})
	}
	var lists atomic.Int32
	var limits []int64
	api := fake.NewClientBuilder().WithScheme(testScheme()).WithObjects(history...).WithInterceptorFuncs(interceptor.Funcs{
		List: func(ctx context.Context, c client.WithWatch, list client.ObjectList, opts ...client.ListOption) error {
			lists.Add(1)
			lo := &client.ListOptions{}
			lo.ApplyOptions(opts)
			limits = append(limits, lo.Limit)
			return c.List(ctx, list, opts...)
		},
	}).Build()
	cache := fake.NewClientBuilder().WithScheme(testScheme()).WithObjects(frozenSLO()).Build()
	h := handler(cache, api)
	h.PageSize = 100

	// The fake client does not page (it ignores Limit), so one list returns
	// everything; what matters here is that a limit is always sent and that the
	// walk ends at the match.
	resp := h.Handle(context.Background(), updateRequest(t, old, deployment("checkout:v0.007", nil)))
	if !resp.Allowed || resp.Result.Message != string(freeze.ClassRollback) {
		t.Fatalf("rollback to revision 7: allowed=%v %q", resp.Allowed, resp.Result.Message)
	}
	for _, l := range limits {
		if l != 100 {
			t.Errorf("list limit %d, want 100", l)
		}
	}
	if lists.Load() != 1 {
		t.Errorf("%d lists", lists.Load())
	}
}

// FuzzHandle sends random AdmissionReview bodies for Deployments to the release
// gate while a freeze holds: it never panics, and it never allows a change that
// the freeze gates (a new pod template of a selected Deployment) without a
// recorded reason: a rollback to a revision in the history, or a claimed class
// or exception recorded with the user in the audit annotations.
func FuzzHandle(f *testing.F) {
	seed := func(old, nw *appsv1.Deployment, op admissionv1.Operation, user string) {
		o, _ := json.Marshal(old)
		n, _ := json.Marshal(nw)
		f.Add(o, n, string(op), user)
	}
	v1, v0 := deployment("checkout:v1", nil), deployment("checkout:v0", nil)
	seed(v1, deployment("checkout:v2", nil), admissionv1.Update, "mallory")
	seed(v1, v0, admissionv1.Update, "mallory")
	seed(v1, deployment("checkout:v2", map[string]string{"budgetgate.dev/release-class": "hotfix"}), admissionv1.Update, "alice")
	relabelled := deployment("checkout:v2", nil)
	relabelled.Labels = map[string]string{"app": "other"}
	seed(v1, relabelled, admissionv1.Update, "mallory")
	seed(nil, v1, admissionv1.Create, "mallory")
	f.Add([]byte(`{"metadata":{"labels":null}}`), []byte(`{"spec":{"template":{"spec":{"containers":[{}]}}}}`), "UPDATE", "x")
	f.Add([]byte(`garbage`), []byte(`{`), "DELETE", "")

	history := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "checkout-v0", Labels: v1.Labels,
			OwnerReferences: []metav1.OwnerReference{{UID: v1.UID, Controller: new(true), Kind: "Deployment", Name: "checkout", APIVersion: "apps/v1"}}},
		Spec: appsv1.ReplicaSetSpec{Selector: v1.Spec.Selector, Template: v0.Spec.Template},
	}
	api := fake.NewClientBuilder().WithScheme(testScheme()).WithObjects(history).WithInterceptorFuncs(interceptor.Funcs{
		Create: func(_ context.Context, _ client.WithWatch, obj client.Object, _ ...client.CreateOption) error {
			return nil // every SubjectAccessReview is denied
		},
	}).Build()
	cache := fake.NewClientBuilder().WithScheme(testScheme()).WithObjects(frozenSLO()).Build()
	h := handler(cache, api)
	h.Recorder = nil
	f.Fuzz(func(t *testing.T, oldRaw, newRaw []byte, op, user string) {
		req := admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
			UID: "fuzz", Kind: metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"},
			Namespace: "shop", Name: "checkout", Operation: admissionv1.Operation(op),
			UserInfo: authenticationv1.UserInfo{Username: user},
			Object:   runtime.RawExtension{Raw: newRaw}, OldObject: runtime.RawExtension{Raw: oldRaw},
		}}
		resp := h.Handle(context.Background(), req)
		if !resp.Allowed {
			return
		}
		var old, nw appsv1.Deployment
		if json.Unmarshal(newRaw, &nw) != nil || len(newRaw) == 0 {
			return
		}
		if op != string(admissionv1.Create) && op != string(admissionv1.Update) {
			return
		}
		selected := nw.Namespace == "" || nw.Namespace == "shop" // the request's namespace decides, not the body's
		selected = selected && (nw.Labels["app"] == "checkout" ||
			json.Unmarshal(oldRaw, &old) == nil && old.Labels["app"] == "checkout")
		gated := op == string(admissionv1.Create)
		if op == string(admissionv1.Update) {
			if json.Unmarshal(oldRaw, &old) != nil {
				return // the handler errors out on an undecodable old object
			}
			gated = !freeze.TemplatesEqualIgnoringHash(&old.Spec.Template, &nw.Spec.Template) &&
				!freeze.OnlyRestartChanged(&old.Spec.Template, &nw.Spec.Template)
		}
		if !selected || !gated {
			return
		}
		switch resp.Result.Message {
		case string(freeze.ClassRollback):
			if !freeze.SameRevision(&nw.Spec.Template, &history.Spec.Template) {
				t.Fatalf("allowed as a rollback to a template not in the history: %s", newRaw)
			}
		case string(freeze.ClassExemptClass), string(freeze.ClassException), string(freeze.ClassRelabel):
			if resp.AuditAnnotations["user"] != user {
				t.Fatalf("allowed as %s without recording the user: %v", resp.Result.Message, resp.AuditAnnotations)
			}
		default:
			t.Fatalf("a gated change of a frozen Deployment was allowed as %q (old %s, new %s)", resp.Result.Message, oldRaw, newRaw)
		}
	})
}
