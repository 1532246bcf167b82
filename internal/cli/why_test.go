package cli_test

import (
	"context"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	slov1alpha1 "github.com/budgetgate/budgetgate/api/v1alpha1"
)

// whyCluster sets up namespace ns on the test cluster: Deployment web at
// revision 3 with the history the Deployment controller writes (revisions 1
// and 2 before the freeze, 3 during it), Deployment batch that no SLO
// selects, SLO web-availability frozen 10 minutes ago by fast-burn, and two
// users with namespaced rights: dev (read, no claim, no exceptions) and alice
// (read, may release-during-freeze and create exceptions).
func whyCluster(t *testing.T, ns string) (freezeSince time.Time) {
	t.Helper()
	cluster(t)
	ctx := context.Background()
	ensureNamespace(t, ns)
	c := env.client
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now().Truncate(time.Second)
	deploy := func(name string, labels map[string]string, image string) *appsv1.Deployment {
		d := &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels, Annotations: map[string]string{"deployment.kubernetes.io/revision": "3"}},
			Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
				Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}},
					Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: name, Image: image}}}}},
		}
		must(c.Create(ctx, d))
		return d
	}
	web := deploy("web", map[string]string{"app.kubernetes.io/part-of": "shop"}, "web:v3")
	deploy("batch", nil, "batch:v1")
	// The history, as the Deployment controller writes it; creation times
	// are the API server's, so revisions 1 and 2 are created now and the
	// freeze is dated after them, and revision 3 after the freeze start.
	for _, rev := range []string{"1", "2"} {
		rs := &appsv1.ReplicaSet{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web-rev" + rev,
				Labels:          map[string]string{"app": "web", "pod-template-hash": "h" + rev},
				Annotations:     map[string]string{"deployment.kubernetes.io/revision": rev},
				OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: "web", UID: web.UID, Controller: ptr.To(true)}}},
			Spec: appsv1.ReplicaSetSpec{Replicas: ptr.To(int32(0)), Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web", "pod-template-hash": "h" + rev}},
				Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web", "pod-template-hash": "h" + rev}},
					Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "web:v" + rev}}}}},
		}
		must(c.Create(ctx, rs))
	}
	// The freeze starts a second after revisions 1 and 2 were written
	// (creation times have a resolution of a second), and revision 3 a
	// second after that.
	written := &appsv1.ReplicaSet{}
	must(c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web-rev2"}, written))
	freezeSince = written.CreationTimestamp.Add(time.Second)
	time.Sleep(time.Until(freezeSince.Add(1100 * time.Millisecond)))
	slo := &slov1alpha1.ServiceLevelObjective{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web-availability"},
		Spec: slov1alpha1.ServiceLevelObjectiveSpec{Target: "99.9", Window: "30d",
			Indicator:        slov1alpha1.Indicator{Ratio: &slov1alpha1.RatioIndicator{Errors: `http_requests_total{job="web",code=~"5.."}`, Total: `http_requests_total{job="web"}`}},
			WorkloadSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app.kubernetes.io/part-of": "shop"}}},
	}
	must(c.Create(ctx, slo))
	slo.Status = slov1alpha1.ServiceLevelObjectiveStatus{
		Policy: "built-in", GatedWorkloads: 1, LastEvaluationTime: &metav1.Time{Time: now},
		ErrorBudget: &slov1alpha1.ErrorBudgetStatus{Remaining: "0.623", Consumed: "0.377", RemainingPercent: "62.3%", ExhaustedIn: "1d5h42m", ForecastWindow: "1h"},
		Rules: []slov1alpha1.RuleStatus{
			{Name: "fast-burn", Action: slov1alpha1.ActionFreeze, Firing: true, Value: "15.1", Threshold: "14.4", Message: "burn rate 15.10x over 1h and 16.00x over 5m ≥ 14.40x"},
			{Name: "slow-burn", Action: slov1alpha1.ActionFreeze, Value: "2.1", Threshold: "6", Message: "burn rate 2.10x over 6h"},
		},
		Freeze: slov1alpha1.FreezeStatus{Active: true, Mode: slov1alpha1.ModeEnforce, Since: &metav1.Time{Time: freezeSince},
			HoldUntil: &metav1.Time{Time: now.Add(50 * time.Minute)}, Rule: "fast-burn",
			Reason: "fast-burn: burn rate 15.10x over 1h and 16.00x over 5m ≥ 14.40x; budget 62.3% left"},
	}
	must(c.Status().Update(ctx, slo))
	rs3 := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web-rev3", Labels: map[string]string{"app": "web", "pod-template-hash": "h3"},
			Annotations:     map[string]string{"deployment.kubernetes.io/revision": "3"},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: "web", UID: web.UID, Controller: ptr.To(true)}}},
		Spec: appsv1.ReplicaSetSpec{Replicas: ptr.To(int32(3)), Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web", "pod-template-hash": "h3"}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web", "pod-template-hash": "h3"}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "web:v3"}}}}},
	}
	// Written during the freeze by the Deployment controller, the only one who may.
	kcm := rest.CopyConfig(env.testEnv.Config)
	kcm.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:kube-system:deployment-controller",
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"}}
	kcmClient, err := client.New(kcm, client.Options{Scheme: c.Scheme()})
	must(err)
	must(kcmClient.Create(ctx, rs3))

	read := rbacv1.PolicyRule{APIGroups: []string{"", "apps", "slo.budgetgate.dev"}, Verbs: []string{"get", "list", "watch"},
		Resources: []string{"deployments", "replicasets", "controllerrevisions", "servicelevelobjectives", "freezeexceptions"}}
	roles := map[string][]rbacv1.PolicyRule{
		"reader":  {read},
		"claimer": {read, {APIGroups: []string{"slo.budgetgate.dev"}, Resources: []string{"servicelevelobjectives"}, Verbs: []string{slov1alpha1.VerbReleaseDuringFreeze}}, {APIGroups: []string{"slo.budgetgate.dev"}, Resources: []string{"freezeexceptions"}, Verbs: []string{"create"}}},
	}
	for name, rules := range roles {
		must(c.Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Rules: rules}))
	}
	for user, role := range map[string]string{"dev": "reader", "alice": "claimer"} {
		must(c.Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: user},
			RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: role},
			Subjects: []rbacv1.Subject{{Kind: "User", Name: user, APIGroup: "rbac.authorization.k8s.io"}}}))
	}
	return freezeSince
}

// why on a real API server, as two users: each is told what they may do,
// asked of the API server for them.
func TestWhyAndExcept(t *testing.T) {
	const ns = "why"
	whyCluster(t, ns)
	base := []string{"--kubeconfig", env.kubeconfig, "-n", ns}

	out, _, err := run(t, "", append(base, "--as", "dev", "why", "deployment/web")...)
	if err != nil {
		t.Fatalf("why as dev: %v\n%s", err, out)
	}
	for _, want := range []string{
		"Deployment why/web is frozen.",
		"SLO web-availability (policy built-in): frozen 0m (fast-burn), until ≥ ",
		"why:    fast-burn: burn rate 15.10x over 1h and 16.00x over 5m ≥ 14.40x; budget 62.3% left",
		"firing: fast-burn (Freeze) 15.1x, threshold 14.4x",
		"budget: 62.3% left, exhausted in 1d5h42m at the current burn",
		"rollback to revision 2 (web=web:v2): kubectl rollout undo deployment/web -n why --to-revision=2",
		"rollback to revision 1 (web=web:v1): kubectl rollout undo deployment/web -n why --to-revision=1",
		"a release claiming class hotfix or security: you may not (kubectl auth can-i release-during-freeze servicelevelobjectives.slo.budgetgate.dev -n why says no)",
		"an exception: none in force, and you may not request one",
		"See the freeze: kubectl describe slo -n why web-availability",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("why as dev lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "revision 3") {
		t.Errorf("the current revision, written during the freeze, is offered as a rollback:\n%s", out)
	}

	out, _, err = run(t, "", append(base, "--as", "alice", "why", "deploy/web")...)
	if err != nil {
		t.Fatalf("why as alice: %v", err)
	}
	for _, want := range []string{"you may (release-during-freeze)", "an exception: you may request one: kubectl budgetgate except deployment/web -n why --for 2h"} {
		if !strings.Contains(out, want) {
			t.Errorf("why as alice lacks %q:\n%s", want, out)
		}
	}

	By := t.Log
	By("dev may not request an exception; alice may, and the API server records her as the requester")
	if _, _, err := run(t, "", append(base, "--as", "dev", "except", "deployment/web", "--for", "2h", "--reason", "INC-1 hotfix")...); err == nil || !strings.Contains(err.Error(), "forbidden") {
		t.Errorf("except as dev: %v, want forbidden", err)
	}
	out, _, err = run(t, "", append(base, "--as", "alice", "except", "deployment/web", "--for", "2h", "--reason", "INC-1 ship the retry fix")...)
	if err != nil {
		t.Fatalf("except as alice: %v", err)
	}
	t.Logf("except as alice: %s", out)
	if !strings.Contains(out, "Deployment web may release until") && !strings.Contains(out, "deployment web may release until") || !strings.Contains(out, "requested by alice") {
		t.Errorf("except as alice: %s", out)
	}
	if _, _, err := run(t, "", append(base, "--as", "alice", "except", "deployment/web", "--for", "72h", "--reason", "INC-1 a long one")...); err == nil || !strings.Contains(err.Error(), "maxExceptionDuration") {
		t.Errorf("an exception beyond the policy's bound: %v, want budgetgate's refusal naming maxExceptionDuration", err)
	}
	out, _, err = run(t, "", append(base, "--as", "dev", "why", "deployment/web", "-o", "json")...)
	if err != nil || !strings.Contains(out, `"requestedBy": "alice"`) || !strings.Contains(out, `"mayClaimReleaseClass": false`) {
		t.Errorf("why -o json after the exception: %v\n%s", err, out)
	}
	out, _, _ = run(t, "", append(base, "--as", "dev", "why", "deployment/web")...)
	// The exception controller does not run here: the exception is shown, not yet in force.
	if !strings.Contains(out, `exception web-`) || !strings.Contains(out, `not in force yet`) || !strings.Contains(out, `"INC-1 ship the retry fix", requested by alice`) {
		t.Errorf("why does not show alice's exception:\n%s", out)
	}

	By("a workload no SLO selects is not frozen, and why says so")
	out, _, err = run(t, "", append(base, "--as", "dev", "why", "deployment/batch")...)
	if err != nil || !strings.Contains(out, "Deployment why/batch is not frozen: releases pass.") || !strings.Contains(out, "No SLO of namespace why selects it") {
		t.Errorf("why batch: %v\n%s", err, out)
	}
	if _, _, err := run(t, "", append(base, "why", "cronjob/nightly")...); err == nil || !strings.Contains(err.Error(), "budgetgate gates deployment, statefulset, daemonset and rollout") {
		t.Errorf("why of a kind budgetgate does not gate: %v", err)
	}
}

// release as a user who may claim a class and as one who may not, on a
// real API server with budgetgate's admission: the claim and a new reason go
// with the change in one update; the same reason twice is made new.
func TestRelease(t *testing.T) {
	const ns = "release"
	whyCluster(t, ns)
	base := []string{"--kubeconfig", env.kubeconfig, "-n", ns}
	if _, _, err := run(t, "", append(base, "--as", "dev", "release", "deployment/web", "--reason", "INC-2", "--image", "web=web:v4")...); err == nil ||
		!strings.Contains(err.Error(), "you may not claim a release class in release") {
		t.Errorf("release as dev: %v, want a refusal saying what to do", err)
	}
	// alice needs to write the Deployment too (in a team, she has edit).
	ctx := context.Background()
	if err := env.client.Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "deployer"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{"apps"}, Resources: []string{"deployments"}, Verbs: []string{"get", "patch"}}}}); err != nil {
		t.Fatal(err)
	}
	if err := env.client.Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "alice-deployer"},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "deployer"},
		Subjects: []rbacv1.Subject{{Kind: "User", Name: "alice", APIGroup: "rbac.authorization.k8s.io"}}}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := run(t, "", append(base, "--as", "alice", "release", "deployment/web", "--reason", "INC-2", "--image", "nginx=web:v4")...); err == nil ||
		!strings.Contains(err.Error(), `has no container "nginx"`) {
		t.Errorf("a container the Deployment does not have: %v", err)
	}
	var out string
	var err error
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(200 * time.Millisecond) { // RBAC takes a moment
		out, _, err = run(t, "", append(base, "--as", "alice", "release", "deployment/web", "--reason", "INC-2 retry fix", "--image", "web=web:v4")...)
		if err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil || !strings.Contains(out, `Deployment release/web released as class hotfix, reason "INC-2 retry fix": web=web:v4`) {
		t.Fatalf("release as alice: %v\n%s", err, out)
	}
	d := &appsv1.Deployment{}
	if err := env.client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web"}, d); err != nil {
		t.Fatal(err)
	}
	a := d.Spec.Template.Annotations
	if a[slov1alpha1.ReleaseClassAnnotation] != "hotfix" || a[slov1alpha1.ReleaseReasonAnnotation] != "INC-2 retry fix" || d.Spec.Template.Spec.Containers[0].Image != "web:v4" {
		t.Errorf("the template after release: %v, %s", a, d.Spec.Template.Spec.Containers[0].Image)
	}
	// The same reason again: made new, so that the claim counts for this release.
	out, _, err = run(t, "", append(base, "--as", "alice", "release", "deployment/web", "--reason", "INC-2 retry fix", "--image", "web=web:v5", "--dry-run")...)
	if err != nil || !strings.Contains(out, "would be released (dry run") || !strings.Contains(out, `reason "INC-2 retry fix (20`) {
		t.Errorf("a second release with the same reason: %v\n%s", err, out)
	}
}
