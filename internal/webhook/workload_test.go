package webhook_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	slov1alpha1 "github.com/budgetgate/budgetgate/api/v1alpha1"
)

// warnings collects the admission warnings a client receives.
type warnings struct {
	mu   sync.Mutex
	seen []string
}

func (w *warnings) HandleWarningHeader(_ int, _ string, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.seen = append(w.seen, text)
}

func (w *warnings) all() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.seen...)
}

// clientAs is a clientset impersonating user (as the API server sees users
// authenticated by a token or certificate), collecting warnings.
func clientAs(user string) (*kubernetes.Clientset, *warnings) {
	c := rest.CopyConfig(cfg)
	w := &warnings{}
	c.WarningHandler = w
	if user != "" {
		c.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: []string{"system:authenticated"}}
	}
	cs, err := kubernetes.NewForConfig(c)
	Expect(err).NotTo(HaveOccurred())
	return cs, w
}

func labelsWeb() map[string]string { return map[string]string{"app": "web"} }

func podTemplate(image string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: labelsWeb()},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: image}}},
	}
}

func newDeployment(ns, name, image string) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labelsWeb()},
		Spec: appsv1.DeploymentSpec{
			Replicas: new(int32(2)),
			Selector: &metav1.LabelSelector{MatchLabels: labelsWeb()},
			Template: podTemplate(image),
		},
	}
}

// frozenNamespace creates a namespace with a web Deployment (image v1) and an
// SLO selecting app=web under a policy of the given mode, burns its budget and
// waits until the SLO is frozen.
func frozenNamespace(mode slov1alpha1.PolicyMode) (string, *slov1alpha1.ServiceLevelObjective) {
	ns, slo := watchedNamespace(mode, 0.02) // a 20x burn over every window
	Eventually(func(g Gomega) {
		got := &slov1alpha1.ServiceLevelObjective{}
		g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(slo), got)).To(Succeed())
		g.Expect(got.Status.Freeze.Active).To(BeTrue())
		g.Expect(got.Status.GatedWorkloads).To(Equal(int32(1)))
		// The webhook reads the cache; wait until it shows the freeze too.
		dep := &appsv1.Deployment{}
		g.Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web"}, dep)).To(Succeed())
		g.Expect(dep.Annotations).To(HaveKeyWithValue(slov1alpha1.FrozenAnnotation, "true"))
	}).Should(Succeed())
	return ns, slo
}

// watchedNamespace creates a namespace with a web Deployment (image v1) and
// an SLO selecting app=web under a policy of the given mode (fast-burn 14.4x,
// freezes held 2s), whose scripted error ratio is ratio.
func watchedNamespace(mode slov1alpha1.PolicyMode, ratio float64) (string, *slov1alpha1.ServiceLevelObjective) {
	nsObj := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "gate-"}}
	Expect(k8sClient.Create(ctx, nsObj)).To(Succeed())
	ns := nsObj.Name
	Expect(k8sClient.Create(ctx, newDeployment(ns, "web", "web:v1"))).To(Succeed())

	ebp := &slov1alpha1.ErrorBudgetPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "policy-" + ns},
		Spec: slov1alpha1.ErrorBudgetPolicySpec{
			Mode: mode,
			Rules: []slov1alpha1.PolicyRule{{Name: "fast-burn", Action: slov1alpha1.ActionFreeze,
				BurnRate: &slov1alpha1.BurnRateCondition{LongWindow: "1h", ShortWindow: "5m", Factor: new(slov1alpha1.Decimal("14.4"))}}},
			// The burn never stops unless a spec stops it, so a short hold keeps
			// the freeze as long as the spec needs and lets it lift quickly after.
			Freeze: slov1alpha1.FreezeSettings{MinDuration: "2s"},
		},
	}
	Expect(k8sClient.Create(ctx, ebp)).To(Succeed())
	DeferCleanup(func() { Expect(client.IgnoreNotFound(k8sClient.Delete(ctx, ebp))).To(Succeed()) })
	slo := &slov1alpha1.ServiceLevelObjective{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web-availability"},
		Spec: slov1alpha1.ServiceLevelObjectiveSpec{
			Target: "99.9", Window: "30d", EvaluationInterval: "10s",
			Indicator: slov1alpha1.Indicator{Ratio: &slov1alpha1.RatioIndicator{
				Errors: `http_requests_total{namespace="` + ns + `",code=~"5.."}`,
				Total:  `http_requests_total{namespace="` + ns + `"}`,
			}},
			WorkloadSelector: &metav1.LabelSelector{MatchLabels: labelsWeb()},
			PolicyRef:        &slov1alpha1.PolicyReference{Name: ebp.Name},
		},
	}
	source.set(slo.Spec.Indicator.Ratio.Errors, ratio)
	Expect(k8sClient.Create(ctx, slo)).To(Succeed())
	return ns, slo
}

// setImage changes the image of the web Deployment in ns the way `kubectl set image` does.
func setImage(cs *kubernetes.Clientset, ns, image string) error {
	d, err := cs.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		return err
	}
	d.Spec.Template.Spec.Containers[0].Image = image
	_, err = cs.AppsV1().Deployments(ns).Update(ctx, d, metav1.UpdateOptions{})
	return err
}

func expectDenied(err error) string {
	Expect(err).To(HaveOccurred())
	Expect(apierrors.IsForbidden(err)).To(BeTrue(), "want Forbidden, got %v", err)
	return err.Error()
}

// eventReasons lists the reasons of the events about the web Deployment in ns.
func eventReasons(ns string) []string {
	list := &corev1.EventList{}
	Expect(k8sClient.List(ctx, list, client.InNamespace(ns))).To(Succeed())
	var out []string
	for _, e := range list.Items {
		if e.InvolvedObject.Name == "web" {
			out = append(out, e.Reason)
		}
	}
	return out
}

var _ = Describe("Workload release gate", func() {
	var admin *kubernetes.Clientset
	BeforeEach(func() { admin, _ = clientAs("") })

	It("denies a routine image update of a frozen Deployment, naming the SLO, rule, numbers and ways out", func() {
		ns, _ := frozenNamespace(slov1alpha1.ModeEnforce)
		msg := expectDenied(setImage(admin, ns, "web:v2"))
		for _, want := range []string{
			"budgetgate: release of Deployment " + ns + "/web blocked until ",
			"by SLO " + ns + "/web-availability, frozen since ",
			"(rule fast-burn: burn rate 20.00x over 1h and 20.00x over 5m ≥ 14.40x",
			"\nStill allowed: rollback (kubectl rollout undo deployment/web -n " + ns + "; under GitOps a git revert counts), scaling, restarts.\n",
			"\nHotfix: if kubectl auth can-i release-during-freeze servicelevelobjectives.slo.budgetgate.dev -n " + ns + " says yes, ",
			"\nSee the freeze: kubectl describe slo web-availability -n " + ns + "\n",
			"\nExceptions and help: your platform team (kubectl get fex -n " + ns + ")",
		} {
			Expect(msg).To(ContainSubstring(want))
		}
		Eventually(func() []string { return eventReasons(ns) }).Should(ContainElement("ReleaseDenied"))

		By("a new Deployment that the SLO selects is gated too")
		msg = expectDenied(k8sClient.Create(ctx, newDeployment(ns, "web-canary", "web:v2")))
		Expect(msg).To(ContainSubstring("budgetgate: creation of Deployment " + ns + "/web-canary blocked"))

		By("a Deployment that the SLO does not select is not")
		other := newDeployment(ns, "batch", "batch:v1")
		other.Labels = map[string]string{"app": "batch"}
		other.Spec.Selector.MatchLabels = other.Labels
		other.Spec.Template.Labels = other.Labels
		Expect(k8sClient.Create(ctx, other)).To(Succeed())
	})

	// GitOps tools diff and apply with server-side dry runs first (docs/gitops.md):
	// the dry run must get the real decision, and must record nothing.
	It("answers a dry run with the real decision and records no Event", func() {
		ns, _ := frozenNamespace(slov1alpha1.ModeEnforce)
		deps := admin.AppsV1().Deployments(ns)
		d, err := deps.Get(ctx, "web", metav1.GetOptions{})
		Expect(err).NotTo(HaveOccurred())
		d.Spec.Template.Spec.Containers[0].Image = "web:v2"
		_, err = deps.Update(ctx, d, metav1.UpdateOptions{DryRun: []string{metav1.DryRunAll}})
		Expect(expectDenied(err)).To(ContainSubstring("budgetgate: release of Deployment " + ns + "/web blocked until "))
		Consistently(func() []string { return eventReasons(ns) }, 2*time.Second).ShouldNot(ContainElement("ReleaseDenied"))

		By("the same update for real is denied and recorded")
		expectDenied(setImage(admin, ns, "web:v2"))
		Eventually(func() []string { return eventReasons(ns) }).Should(ContainElement("ReleaseDenied"))
	})

	It("lets scaling, metadata edits, restarts and rollbacks through", func() {
		ns, _ := frozenNamespace(slov1alpha1.ModeEnforce)
		deps := admin.AppsV1().Deployments(ns)

		By("scaling through the /scale subresource and by editing replicas")
		scale, err := deps.GetScale(ctx, "web", metav1.GetOptions{})
		Expect(err).NotTo(HaveOccurred())
		scale.Spec.Replicas = 5
		_, err = deps.UpdateScale(ctx, "web", scale, metav1.UpdateOptions{})
		Expect(err).NotTo(HaveOccurred())
		d, err := deps.Get(ctx, "web", metav1.GetOptions{})
		Expect(err).NotTo(HaveOccurred())
		d.Spec.Replicas = new(int32(3))
		d.Labels["team"] = "checkout" // and a label-only edit in the same update
		_, err = deps.Update(ctx, d, metav1.UpdateOptions{})
		Expect(err).NotTo(HaveOccurred())

		By("kubectl rollout restart: only the restartedAt annotation changes")
		d, err = deps.Get(ctx, "web", metav1.GetOptions{})
		Expect(err).NotTo(HaveOccurred())
		d.Spec.Template.Annotations = map[string]string{"kubectl.kubernetes.io/restartedAt": time.Now().Format(time.RFC3339)}
		_, err = deps.Update(ctx, d, metav1.UpdateOptions{})
		Expect(err).NotTo(HaveOccurred())

		By("kubectl rollout undo: the template of an earlier ReplicaSet")
		// envtest runs no kube-controller-manager, so write the history it would
		// have, as the Deployment controller (only it may, during a freeze).
		d, err = deps.Get(ctx, "web", metav1.GetOptions{})
		Expect(err).NotTo(HaveOccurred())
		controller, _ := csAs(deploymentController)
		for i, image := range []string{"web:v0", "web:v00"} {
			rs := replicaSetOf(d, fmt.Sprintf("5d4f8c7b%d", i), podTemplate(image), true)
			_, err := controller.AppsV1().ReplicaSets(ns).Create(ctx, rs, metav1.CreateOptions{})
			Expect(err).NotTo(HaveOccurred())
		}
		// --to-revision two back: the older of the two.
		Expect(updateDeployment(admin, ns, "web", func(d *appsv1.Deployment) { d.Spec.Template = podTemplate("web:v0") })).To(Succeed())
		Expect(updateDeployment(admin, ns, "web", func(d *appsv1.Deployment) { d.Spec.Template = podTemplate("web:v00") })).To(Succeed())

		By("but not a template no ReplicaSet of this Deployment carries")
		Expect(expectDenied(setImage(admin, ns, "web:v3"))).To(ContainSubstring("fast-burn"))
	})

	It("admits releases under DryRun, with the deny message as a warning the client sees", func() {
		ns, _ := frozenNamespace(slov1alpha1.ModeDryRun)
		cs, seen := clientAs("")
		Expect(setImage(cs, ns, "web:v2")).To(Succeed())
		Expect(strings.Join(seen.all(), "\n")).To(And(ContainSubstring("DryRun"), ContainSubstring("fast-burn")))
		Eventually(func() []string { return eventReasons(ns) }).Should(ContainElement("ReleaseWouldBeDenied"))
	})

	It("admits a workload covered by an active FreezeException, and not once it expired", func() {
		ns, _ := frozenNamespace(slov1alpha1.ModeEnforce)
		fex := &slov1alpha1.FreezeException{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "payment-fix"},
			Spec: slov1alpha1.FreezeExceptionSpec{
				Reason:    "Switch to the backup payment provider (INC-4821)",
				Workloads: []slov1alpha1.WorkloadReference{{Kind: "Deployment", Name: "web"}},
				ExpiresAt: metav1.NewTime(time.Now().Add(6 * time.Second).Truncate(time.Second)),
			},
		}
		Expect(k8sClient.Create(ctx, fex)).To(Succeed())
		Eventually(func(g Gomega) {
			got := &slov1alpha1.FreezeException{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(fex), got)).To(Succeed())
			g.Expect(got.Status.Active).To(BeTrue())
		}).Should(Succeed())

		cs, seen := clientAs("")
		Expect(setImage(cs, ns, "web:v2")).To(Succeed())
		Expect(strings.Join(seen.all(), "\n")).To(ContainSubstring("payment-fix"))
		Eventually(func(g Gomega) {
			got := &slov1alpha1.FreezeException{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(fex), got)).To(Succeed())
			g.Expect(got.Status.Uses).To(Equal(int64(1)))
			g.Expect(got.Status.LastUsedTime).NotTo(BeNil())
			g.Expect(eventReasons(ns)).To(ContainElement("ReleaseExcepted"))
		}).Should(Succeed())

		By("an exception for another workload does not help")
		other := fex.DeepCopy()
		other.ObjectMeta = metav1.ObjectMeta{Namespace: ns, Name: "other"}
		other.Spec.Workloads = []slov1alpha1.WorkloadReference{{Kind: "Deployment", Name: "api"}}
		other.Spec.ExpiresAt = metav1.NewTime(time.Now().Add(time.Hour).Truncate(time.Second))
		Expect(k8sClient.Create(ctx, other)).To(Succeed())

		By("once the exception expired, releases are denied again")
		time.Sleep(time.Until(fex.Spec.ExpiresAt.Time) + 100*time.Millisecond)
		expectDenied(setImage(admin, ns, "web:v3"))
	})

	It("honours an exempt release class only for users allowed to release-during-freeze", func() {
		ns, _ := frozenNamespace(slov1alpha1.ModeEnforce)
		// Both users may update Deployments; only alice may release during a freeze.
		Expect(k8sClient.Create(ctx, &rbacv1.Role{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "deployer"},
			Rules:      []rbacv1.PolicyRule{{APIGroups: []string{"apps"}, Resources: []string{"deployments"}, Verbs: []string{"get", "update", "patch"}}},
		})).To(Succeed())
		for _, u := range []string{"alice", "bob"} {
			Expect(k8sClient.Create(ctx, &rbacv1.RoleBinding{
				ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "deployer-" + u},
				RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "deployer"},
				Subjects:   []rbacv1.Subject{{Kind: "User", Name: u, APIGroup: "rbac.authorization.k8s.io"}},
			})).To(Succeed())
		}
		// The ClusterRole shipped in config/rbac, bound in this namespace only.
		Expect(k8sClient.Create(ctx, &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "hotfix-alice"},
			RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: releaseDuringFreezeRole()},
			Subjects:   []rbacv1.Subject{{Kind: "User", Name: "alice", APIGroup: "rbac.authorization.k8s.io"}},
		})).To(Succeed())

		hotfix := func(cs *kubernetes.Clientset, image string) error {
			d, err := cs.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
			if err != nil {
				return err
			}
			d.Spec.Template.Spec.Containers[0].Image = image
			d.Spec.Template.Annotations = map[string]string{slov1alpha1.ReleaseClassAnnotation: "hotfix"}
			_, err = cs.AppsV1().Deployments(ns).Update(ctx, d, metav1.UpdateOptions{})
			return err
		}
		bob, _ := clientAs("bob")
		msg := expectDenied(hotfix(bob, "web:v2-hotfix"))
		Expect(msg).To(ContainSubstring(`"hotfix"`))
		alice, _ := clientAs("alice")
		Expect(hotfix(alice, "web:v2-hotfix")).To(Succeed())
		Eventually(func() []string { return eventReasons(ns) }).Should(ContainElement("ReleaseExempted"))

		By("a class the policy does not exempt is denied even for alice")
		d, err := alice.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
		Expect(err).NotTo(HaveOccurred())
		d.Spec.Template.Spec.Containers[0].Image = "web:v3"
		d.Spec.Template.Annotations = map[string]string{slov1alpha1.ReleaseClassAnnotation: "feature"}
		_, err = alice.AppsV1().Deployments(ns).Update(ctx, d, metav1.UpdateOptions{})
		expectDenied(err)
	})

	It("gates StatefulSet and DaemonSet template changes the same way", func() {
		ns, _ := frozenNamespace(slov1alpha1.ModeEnforce)
		// New selected workloads are gated at creation: an exception admits these two.
		fex := &slov1alpha1.FreezeException{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "bootstrap"},
			Spec: slov1alpha1.FreezeExceptionSpec{Reason: "Create the stateful tier for this test",
				WorkloadSelector: &metav1.LabelSelector{MatchLabels: labelsWeb()},
				ExpiresAt:        metav1.NewTime(time.Now().Add(time.Hour))},
		}
		Expect(k8sClient.Create(ctx, fex)).To(Succeed())
		Eventually(func(g Gomega) {
			got := &slov1alpha1.FreezeException{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(fex), got)).To(Succeed())
			g.Expect(got.Status.Active).To(BeTrue())
		}).Should(Succeed())
		sts := &appsv1.StatefulSet{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "db", Labels: labelsWeb()},
			Spec:       appsv1.StatefulSetSpec{Selector: &metav1.LabelSelector{MatchLabels: labelsWeb()}, Template: podTemplate("db:v1")},
		}
		ds := &appsv1.DaemonSet{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "agent", Labels: labelsWeb()},
			Spec:       appsv1.DaemonSetSpec{Selector: &metav1.LabelSelector{MatchLabels: labelsWeb()}, Template: podTemplate("agent:v1")},
		}
		Expect(k8sClient.Create(ctx, sts)).To(Succeed())
		Expect(k8sClient.Create(ctx, ds)).To(Succeed())
		Expect(k8sClient.Delete(ctx, fex)).To(Succeed())
		// Deleted during the freeze, it stays as a record of the break-glass it
		// gave (until the freeze lifts) and admits nothing more.
		Eventually(func(g Gomega) {
			got := &slov1alpha1.FreezeException{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(fex), got)).To(Succeed())
			g.Expect(got.DeletionTimestamp).NotTo(BeNil())
			g.Expect(got.Finalizers).To(ContainElement(slov1alpha1.ExceptionFinalizer))
		}).Should(Succeed())

		attempt := 0
		Eventually(func(g Gomega) {
			// Until the cache has seen the exception go, an update may still pass.
			attempt++
			s, err := admin.AppsV1().StatefulSets(ns).Get(ctx, "db", metav1.GetOptions{})
			g.Expect(err).NotTo(HaveOccurred())
			s.Spec.Template.Spec.Containers[0].Image = fmt.Sprintf("db:v2-%d", attempt)
			_, err = admin.AppsV1().StatefulSets(ns).Update(ctx, s, metav1.UpdateOptions{})
			g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "got %v", err)
			g.Expect(err.Error()).To(ContainSubstring("StatefulSet " + ns + "/db"))
		}).Should(Succeed())
		// The controller annotates the new workloads meanwhile: retry on conflicts.
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			d, err := admin.AppsV1().DaemonSets(ns).Get(ctx, "agent", metav1.GetOptions{})
			if err != nil {
				return err
			}
			d.Spec.Template.Spec.Containers[0].Image = "agent:v2"
			_, err = admin.AppsV1().DaemonSets(ns).Update(ctx, d, metav1.UpdateOptions{})
			return err
		})
		Expect(expectDenied(err)).To(ContainSubstring("DaemonSet " + ns + "/agent"))

		By("a StatefulSet rollback to a ControllerRevision's template passes")
		s, err := admin.AppsV1().StatefulSets(ns).Get(ctx, "db", metav1.GetOptions{})
		Expect(err).NotTo(HaveOccurred())
		// The StatefulSet controller stores each revision as a patch replacing the
		// (defaulted) template; write the one an earlier db:v0 release left.
		previous := s.Spec.Template.DeepCopy()
		previous.Spec.Containers[0].Image = "db:v0"
		data, err := json.Marshal(map[string]any{"spec": map[string]any{"template": previous}})
		Expect(err).NotTo(HaveOccurred())
		stsController, _ := crAs(statefulSetController)
		Expect(stsController.Create(ctx, &appsv1.ControllerRevision{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "db-7c9d", Labels: labelsWeb(),
				OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "StatefulSet", Name: "db", UID: s.UID, Controller: new(true)}}},
			Data:     runtime.RawExtension{Raw: data},
			Revision: 1,
		})).To(Succeed())
		Expect(retry.RetryOnConflict(retry.DefaultRetry, func() error {
			s, err := admin.AppsV1().StatefulSets(ns).Get(ctx, "db", metav1.GetOptions{})
			if err != nil {
				return err
			}
			s.Spec.Template = *previous
			_, err = admin.AppsV1().StatefulSets(ns).Update(ctx, s, metav1.UpdateOptions{})
			return err
		})).To(Succeed())
	})

	It("marks selected workloads while frozen and unmarks them when the freeze lifts", func() {
		ns, slo := frozenNamespace(slov1alpha1.ModeEnforce)
		dep := &appsv1.Deployment{}
		Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web"}, dep)).To(Succeed())
		Expect(dep.Annotations).To(HaveKeyWithValue(slov1alpha1.FrozenByAnnotation, "web-availability"))
		Expect(dep.Annotations).To(HaveKey(slov1alpha1.FrozenSinceAnnotation))
		managers := make([]string, 0, len(dep.ManagedFields))
		for _, mf := range dep.ManagedFields {
			managers = append(managers, mf.Manager)
		}
		Expect(managers).To(ContainElement("budgetgate"))

		By("another field manager co-owns budgetgate's marks (e.g. a tool that rewrites all annotations)")
		marks := map[string]any{}
		for _, k := range []string{slov1alpha1.FrozenAnnotation, slov1alpha1.FrozenByAnnotation, slov1alpha1.FrozenSinceAnnotation} {
			marks[k] = dep.Annotations[k]
		}
		coOwner, err := json.Marshal(map[string]any{"apiVersion": "apps/v1", "kind": "Deployment",
			"metadata": map[string]any{"name": "web", "namespace": ns, "annotations": marks}})
		Expect(err).NotTo(HaveOccurred())
		Expect(k8sClient.Patch(ctx, dep.DeepCopy(), client.RawPatch(types.ApplyPatchType, coOwner), client.FieldOwner("another-tool"))).To(Succeed())

		By("the burn stops: after the 2s hold the freeze lifts")
		source.set(slo.Spec.Indicator.Ratio.Errors, 0)
		Eventually(func(g Gomega) {
			got := &slov1alpha1.ServiceLevelObjective{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(slo), got)).To(Succeed())
			g.Expect(got.Status.Freeze.Active).To(BeFalse())
			d := &appsv1.Deployment{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web"}, d)).To(Succeed())
			g.Expect(d.Annotations).NotTo(HaveKey(slov1alpha1.FrozenAnnotation))
			g.Expect(d.Annotations).NotTo(HaveKey(slov1alpha1.FrozenByAnnotation))
		}).Should(Succeed())
		Expect(setImage(admin, ns, "web:v2")).To(Succeed())
	})
})

// releaseDuringFreezeRole installs the ClusterRole shipped in config/rbac (once)
// and returns its name.
func releaseDuringFreezeRole() string {
	data, err := os.ReadFile(filepath.Join("..", "..", "config", "rbac", "release_during_freeze_role.yaml"))
	Expect(err).NotTo(HaveOccurred())
	role := &rbacv1.ClusterRole{}
	Expect(yaml.Unmarshal(data, role)).To(Succeed())
	Expect(client.IgnoreAlreadyExists(k8sClient.Create(ctx, role))).To(Succeed())
	return role.Name
}
