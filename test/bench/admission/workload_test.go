package main

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"

	slov1alpha1 "github.com/budgetgate/budgetgate/api/v1alpha1"
)

func TestUpdatesNext(t *testing.T) {
	u := newUpdates(4)
	image := func(up update) string { return up.template.Spec.Containers[0].Image }

	// Open and routine releases: a new image each time, Deployment i mod 4.
	a, b := u.next(kindWebhook, 5), u.next(kindNoWebhook, 5)
	if a.namespace != nsOpen || b.namespace != nsOpen || a.index != 1 || b.index != 1 || image(a) == image(b) {
		t.Errorf("open updates: %s/%d %s and %s/%d %s; want bench-open/1 twice with different images",
			a.namespace, a.index, image(a), b.namespace, b.index, image(b))
	}
	d := u.next(kindDeny, 2)
	if d.namespace != nsFrozen || d.index != 2 || d.onAdmit != nil || image(d) == historyImages[0] || image(d) == historyImages[1] {
		t.Errorf("deny update %s/%d %s: want a new image in bench-frozen", d.namespace, d.index, image(d))
	}

	// Rollbacks alternate between the two releases in the history, starting
	// from the second (where setup leaves every Deployment), and only move
	// once admitted.
	r := u.next(kindRollback, 6) // Deployment 2, at release 1
	if r.namespace != nsFrozen || r.index != 2 || image(r) != historyImages[0] {
		t.Fatalf("first rollback %s/%d %s, want bench-frozen/2 back to %s", r.namespace, r.index, image(r), historyImages[0])
	}
	if again := u.next(kindRollback, 2); image(again) != historyImages[0] {
		t.Errorf("a rollback not admitted moved the state: next target %s", image(again))
	}
	r.onAdmit()
	if r2 := u.next(kindRollback, 2); image(r2) != historyImages[1] {
		t.Errorf("after the rollback to release 0, next target %s, want %s", image(r2), historyImages[1])
	}
	// A hotfix leaves another template: the next rollback goes to release 0.
	h := u.next(kindExempt, 2)
	h.onAdmit()
	if r3 := u.next(kindRollback, 2); image(r3) != historyImages[0] {
		t.Errorf("after a hotfix, next rollback target %s, want %s", image(r3), historyImages[0])
	}
	// Other Deployments are untouched.
	if r4 := u.next(kindRollback, 3); image(r4) != historyImages[0] {
		t.Errorf("Deployment 3's rollback target %s, want %s", image(r4), historyImages[0])
	}
}

func TestExemptTemplatesClaimTheirRelease(t *testing.T) {
	u := newUpdates(4)
	h1, h2 := u.next(kindExempt, 0), u.next(kindExempt, 4)
	for _, h := range []update{h1, h2} {
		if h.namespace != nsFrozen || h.index != 0 || h.template.Annotations[slov1alpha1.ReleaseClassAnnotation] != "hotfix" {
			t.Errorf("hotfix %s/%d annotations %v: want release-class hotfix in bench-frozen", h.namespace, h.index, h.template.Annotations)
		}
	}
	// A claim counts only for the release that makes it: successive hotfixes
	// of one Deployment must change the reason.
	r1, r2 := h1.template.Annotations[slov1alpha1.ReleaseReasonAnnotation], h2.template.Annotations[slov1alpha1.ReleaseReasonAnnotation]
	if r1 == "" || r1 == r2 {
		t.Errorf("release reasons %q and %q: want two different ones", r1, r2)
	}
}

func TestTemplatePatch(t *testing.T) {
	tmpl := podTemplate(7, "registry.example/bench/app:9", nil)
	body, err := templatePatch(tmpl)
	if err != nil {
		t.Fatal(err)
	}
	var ops []struct {
		Op    string                 `json:"op"`
		Path  string                 `json:"path"`
		Value corev1.PodTemplateSpec `json:"value"`
	}
	if err := json.Unmarshal(body, &ops); err != nil {
		t.Fatal(err)
	}
	if len(ops) != 1 || ops[0].Op != "replace" || ops[0].Path != "/spec/template" {
		t.Fatalf("patch %s: want one replace of /spec/template", body)
	}
	if diff := cmp.Diff(tmpl, ops[0].Value); diff != "" {
		t.Errorf("patched template (-want +got):\n%s", diff)
	}
	// The template matches its Deployment's selector and its SLO's.
	d := deployment(nsOpen, 7, tmpl)
	for k, v := range d.Spec.Selector.MatchLabels {
		if tmpl.Labels[k] != v {
			t.Errorf("template labels %v do not match the selector %v", tmpl.Labels, d.Spec.Selector.MatchLabels)
		}
	}
	if d.Labels["app.kubernetes.io/part-of"] != partOf {
		t.Errorf("Deployment labels %v: the SLO selects app.kubernetes.io/part-of=%s", d.Labels, partOf)
	}
}
