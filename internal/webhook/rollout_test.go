package webhook_test

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	slov1alpha1 "github.com/budgetgate/budgetgate/api/v1alpha1"
)

// Argo Rollouts through the registry of gated kinds, against a real API
// server with Argo's own Rollout CRD (test/crds/argo-rollouts, v1.10.1): the
// manager of the suite starts without the CRD, the spec installs it and
// budgetgate gates Rollouts from then on; the trust model's attacks stay
// closed for them. No Argo Rollouts controller runs here: the specs write the
// ReplicaSets it would write, as its ServiceAccount (the e2e suite runs the
// real controller, test/e2e/rollout_test.go).

const (
	argoController    = "system:serviceaccount:argo-rollouts:argo-rollouts"
	rolloutCRDName    = "rollouts.argoproj.io"
	rolloutsGroupVers = "argoproj.io/v1alpha1"
)

var crdKind = schema.GroupVersionKind{Group: "apiextensions.k8s.io", Version: "v1", Kind: "CustomResourceDefinition"}

// cartLabels select the cart Rollout's pods; its own labels (app=web) are
// what the SLO selects.
func cartLabels() map[string]string { return map[string]string{"app": "cart"} }

func cartTemplate(image string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: cartLabels()},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "cart", Image: image}}},
	}
}

func toMap(v any) map[string]any {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(v)
	Expect(err).NotTo(HaveOccurred())
	return m
}

// newRollout is a canary Rollout (20%, then a pause) of image, labelled app=web.
func newRollout(ns, name, image string) *unstructured.Unstructured {
	t := cartTemplate(image)
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": rolloutsGroupVers, "kind": "Rollout",
		"metadata": map[string]any{"namespace": ns, "name": name, "labels": map[string]any{"app": "web"}},
		"spec": map[string]any{
			"replicas": int64(2),
			"selector": map[string]any{"matchLabels": map[string]any{"app": "cart"}},
			"strategy": map[string]any{"canary": map[string]any{"steps": []any{
				map[string]any{"setWeight": int64(20)}, map[string]any{"pause": map[string]any{}},
			}}},
			"template": toMap(&t),
		},
	}}
}

func rolloutKey(ns string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion(rolloutsGroupVers)
	u.SetKind("Rollout")
	u.SetNamespace(ns)
	u.SetName("cart")
	return u
}

func getRollout(ns string) *unstructured.Unstructured {
	u := rolloutKey(ns)
	Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(u), u)).To(Succeed())
	return u
}

// updateRollout applies mutate to the cart Rollout as user, retrying conflicts.
func updateRollout(user, ns string, mutate func(*unstructured.Unstructured)) error {
	c, _ := crAs(user)
	return updateRolloutWith(c, ns, mutate)
}

func updateRolloutWith(c client.Client, ns string, mutate func(*unstructured.Unstructured)) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		u := rolloutKey(ns)
		if err := c.Get(ctx, client.ObjectKeyFromObject(u), u); err != nil {
			return err
		}
		mutate(u)
		return c.Update(ctx, u)
	})
}

// setRolloutImage is `kubectl argo rollouts set image cart cart=IMAGE`.
func setRolloutImage(image string) func(*unstructured.Unstructured) {
	return func(u *unstructured.Unstructured) {
		containers, _, _ := unstructured.NestedSlice(u.Object, "spec", "template", "spec", "containers")
		containers[0].(map[string]any)["image"] = image
		Expect(unstructured.SetNestedSlice(u.Object, containers, "spec", "template", "spec", "containers")).To(Succeed())
	}
}

// patchRollout sends a patch of type pt as user, to the subresource when one is named.
func patchRollout(user, ns string, pt types.PatchType, patch string, subresource ...string) error {
	c, _ := crAs(user)
	if len(subresource) > 0 {
		return c.SubResource(subresource[0]).Patch(ctx, rolloutKey(ns), client.RawPatch(pt, []byte(patch)))
	}
	return c.Patch(ctx, rolloutKey(ns), client.RawPatch(pt, []byte(patch)))
}

// rolloutReplicaSet is the ReplicaSet the Argo Rollouts controller writes for
// template t of the cart Rollout: t plus rollouts-pod-template-hash, in
// template, labels and selector, controlled by the Rollout when controlled.
func rolloutReplicaSet(rollout *unstructured.Unstructured, hash, revision string, t corev1.PodTemplateSpec, controlled bool) *appsv1.ReplicaSet {
	t = *t.DeepCopy()
	lbls := map[string]string{"app": "cart", "rollouts-pod-template-hash": hash}
	t.Labels = lbls
	rs := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: rollout.GetNamespace(), Name: "cart-" + hash, Labels: lbls,
			Annotations: map[string]string{"rollout.argoproj.io/revision": revision}},
		Spec: appsv1.ReplicaSetSpec{Replicas: new(int32(0)), Selector: &metav1.LabelSelector{MatchLabels: lbls}, Template: t},
	}
	if controlled {
		rs.OwnerReferences = []metav1.OwnerReference{{APIVersion: rolloutsGroupVers, Kind: "Rollout", Name: rollout.GetName(),
			UID: rollout.GetUID(), Controller: new(true), BlockOwnerDeletion: new(true)}}
	}
	return rs
}

// undoPatch is what `kubectl argo rollouts undo` sends: the JSON patch that
// replaces spec.template with the ReplicaSet's template less
// rollouts-pod-template-hash.
func undoPatch(rs *appsv1.ReplicaSet) string {
	t := rs.Spec.Template.DeepCopy()
	delete(t.Labels, "rollouts-pod-template-hash")
	patch, err := json.Marshal([]any{map[string]any{"op": "replace", "path": "/spec/template", "value": t}})
	Expect(err).NotTo(HaveOccurred())
	return string(patch)
}

// rolloutEvents lists the reasons of the events about the cart Rollout in ns.
func rolloutEvents(g Gomega, ns string) []string {
	list := &corev1.EventList{}
	g.Expect(k8sClient.List(ctx, list, client.InNamespace(ns))).To(Succeed())
	var out []string
	for _, e := range list.Items {
		if e.InvolvedObject.Kind == "Rollout" && e.InvolvedObject.Name == "cart" {
			out = append(out, e.Reason)
		}
	}
	return out
}

func rolloutsServed() bool {
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	Expect(err).NotTo(HaveOccurred())
	_, err = dc.ServerResourcesForGroupVersion(rolloutsGroupVers)
	if apierrors.IsNotFound(err) {
		return false
	}
	Expect(err).NotTo(HaveOccurred())
	return true
}

func sloStatus(g Gomega, slo *slov1alpha1.ServiceLevelObjective) slov1alpha1.ServiceLevelObjectiveStatus {
	got := &slov1alpha1.ServiceLevelObjective{}
	g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(slo), got)).To(Succeed())
	ready := false
	for _, c := range got.Status.Conditions {
		if c.Type == slov1alpha1.ConditionReady {
			ready = c.Status == metav1.ConditionTrue && c.ObservedGeneration == got.Generation
		}
	}
	g.Expect(ready).To(BeTrue(), "SLO not Ready: %+v", got.Status.Conditions)
	return got.Status
}

var _ = Describe("Argo Rollouts", Ordered, func() {
	var (
		ns  string
		slo *slov1alpha1.ServiceLevelObjective
		v1  *appsv1.ReplicaSet // the revision released before the freeze
	)

	BeforeAll(func() {
		// An SLO that selects app=web and does not burn yet.
		ns, slo = watchedNamespace(slov1alpha1.ModeEnforce, 0)
		bindUsers(ns)
	})

	It("starts without the Rollout CRD, and evaluates and gates as before", func() {
		Expect(rolloutsServed()).To(BeFalse(), "the suite's API server serves Rollouts before this spec installed them")
		Eventually(func(g Gomega) {
			g.Expect(sloStatus(g, slo).GatedWorkloads).To(Equal(int32(1)), "the web Deployment")
		}).Should(Succeed())
	})

	It("gates Rollouts once their CRD is installed: counts them, marks them when the SLO freezes", func() {
		_, err := envtest.InstallCRDs(cfg, envtest.CRDInstallOptions{
			Paths: []string{filepath.Join("..", "..", "test", "crds", "argo-rollouts")}, ErrorIfPathMissing: true,
		})
		Expect(err).NotTo(HaveOccurred())
		Expect(rolloutsServed()).To(BeTrue())
		// What `edit` holds where Argo Rollouts is installed (its
		// argo-rollouts-aggregate-to-edit ClusterRole): rollouts, their scale
		// and status, for every user of the trust model; and the controller's
		// own rights on ReplicaSets.
		Expect(client.IgnoreAlreadyExists(k8sClient.Create(ctx, &rbacv1.ClusterRole{
			ObjectMeta: metav1.ObjectMeta{Name: "test-argo-rollouts-edit"},
			Rules: []rbacv1.PolicyRule{{APIGroups: []string{"argoproj.io"}, Resources: []string{"rollouts", "rollouts/scale", "rollouts/status"},
				Verbs: []string{"get", "list", "watch", "create", "update", "patch", "delete"}}},
		}))).To(Succeed())
		subjects := []rbacv1.Subject{{Kind: "ServiceAccount", Name: "argo-rollouts", Namespace: "argo-rollouts"}}
		for _, u := range []string{dev, hotfixer, lead, oncall, gitopsBot} {
			subjects = append(subjects, rbacv1.Subject{Kind: "User", Name: u, APIGroup: "rbac.authorization.k8s.io"})
		}
		for role, subj := range map[string][]rbacv1.Subject{"test-argo-rollouts-edit": subjects, "edit": subjects[:1]} {
			Expect(k8sClient.Create(ctx, &rbacv1.RoleBinding{
				ObjectMeta: metav1.ObjectMeta{Namespace: ns, GenerateName: "argo-"},
				RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: role},
				Subjects:   subj,
			})).To(Succeed())
		}

		By("a Rollout of cart:v1, then cart:v2, released before the freeze, with the ReplicaSets Argo writes")
		Expect(k8sClient.Create(ctx, newRollout(ns, "cart", "cart:v1"))).To(Succeed())
		argo, _ := csAs(argoController)
		Eventually(func() error {
			v1 = rolloutReplicaSet(getRollout(ns), "6c7d9f", "1", cartTemplate("cart:v1"), true)
			var err error
			v1, err = argo.AppsV1().ReplicaSets(ns).Create(ctx, v1, metav1.CreateOptions{})
			return err
		}).Should(Succeed(), "the Argo controller's RBAC takes a moment")
		Expect(updateRollout(dev, ns, setRolloutImage("cart:v2"))).To(Succeed())
		_, err = argo.AppsV1().ReplicaSets(ns).Create(ctx, rolloutReplicaSet(getRollout(ns), "5b8c4d", "2", cartTemplate("cart:v2"), true), metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred())
		Eventually(func(g Gomega) {
			g.Expect(sloStatus(g, slo).GatedWorkloads).To(Equal(int32(2)), "the web Deployment and the cart Rollout")
		}).Should(Succeed())

		By("the burn freezes the SLO, and the Rollout is marked")
		source.set(slo.Spec.Indicator.Ratio.Errors, 0.02)
		Eventually(func(g Gomega) {
			g.Expect(sloStatus(g, slo).Freeze.Active).To(BeTrue())
			u := rolloutKey(ns)
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(u), u)).To(Succeed())
			g.Expect(u.GetAnnotations()).To(HaveKeyWithValue(slov1alpha1.FrozenAnnotation, "true"))
			g.Expect(u.GetAnnotations()).To(HaveKeyWithValue(slov1alpha1.FrozenByAnnotation, "web-availability"))
		}).Should(Succeed())
	})

	It("denies a template change of the frozen Rollout, with the commands of Argo Rollouts", func() {
		msg := forbiddenMessage(updateRollout(dev, ns, setRolloutImage("cart:v3")))
		Expect(msg).To(ContainSubstring(`admission webhook "releases.budgetgate.dev" denied the request: budgetgate: `))
		Expect(msg).To(ContainSubstring("Rollout " + ns + "/cart"))
		Expect(msg).To(ContainSubstring("SLO " + ns + "/web-availability"))
		Expect(msg).To(ContainSubstring("kubectl argo rollouts undo cart -n " + ns))
		Expect(msg).NotTo(ContainSubstring("kubectl rollout undo"), "kubectl rollout does not know Rollouts")
		Eventually(func(g Gomega) { g.Expect(rolloutEvents(g, ns)).To(ContainElement("ReleaseDenied")) }).Should(Succeed())

		By("a new Rollout the SLO selects is gated at creation")
		Expect(forbiddenMessage(k8sClient.Create(ctx, newRollout(ns, "cart-canary", "cart:v3")))).
			To(ContainSubstring("Rollout " + ns + "/cart-canary"))
	})

	It("admits kubectl argo rollouts undo, restart, promote, abort, retry, pause and scale", func() {
		By("undo: the template of the revision before, less rollouts-pod-template-hash")
		Expect(patchRollout(dev, ns, types.JSONPatchType, undoPatch(v1))).To(Succeed())
		image, _, _ := unstructured.NestedSlice(getRollout(ns).Object, "spec", "template", "spec", "containers")
		Expect(image[0].(map[string]any)["image"]).To(Equal("cart:v1"))

		By("restart: spec.restartAt; the release gate is not even called")
		Expect(patchRollout(dev, ns, types.MergePatchType, fmt.Sprintf(`{"spec":{"restartAt":%q}}`, time.Now().UTC().Format(time.RFC3339)))).To(Succeed())
		By("pause and promote: spec.paused and status")
		Expect(patchRollout(dev, ns, types.MergePatchType, `{"spec":{"paused":true}}`)).To(Succeed())
		Expect(patchRollout(dev, ns, types.MergePatchType, `{"status":{"pauseConditions":null,"currentStepIndex":1}}`, "status")).To(Succeed())
		Expect(patchRollout(dev, ns, types.MergePatchType, `{"spec":{"paused":false}}`)).To(Succeed())
		Expect(patchRollout(dev, ns, types.MergePatchType, `{"status":{"promoteFull":true}}`, "status")).To(Succeed())
		By("abort and retry: status")
		Expect(patchRollout(dev, ns, types.MergePatchType, `{"status":{"abort":true}}`, "status")).To(Succeed())
		Expect(patchRollout(dev, ns, types.MergePatchType, `{"status":{"abort":false}}`, "status")).To(Succeed())
		By("scaling, through spec.replicas and the scale subresource")
		Expect(patchRollout(dev, ns, types.MergePatchType, `{"spec":{"replicas":5}}`)).To(Succeed())
		Expect(patchRollout(dev, ns, types.MergePatchType, `{"spec":{"replicas":3}}`, "scale")).To(Succeed())
		By("a restart through the pod template, as kubectl rollout restart would write it")
		Expect(updateRollout(dev, ns, func(u *unstructured.Unstructured) {
			Expect(unstructured.SetNestedField(u.Object, time.Now().Format(time.RFC3339), "spec", "template", "metadata", "annotations", "kubectl.kubernetes.io/restartedAt")).To(Succeed())
		})).To(Succeed())

		By("but not a template no ReplicaSet of this Rollout carries")
		forbiddenMessage(updateRollout(dev, ns, setRolloutImage("cart:v3")))
	})

	Describe("the trust model", func() {
		It("[T1] denies a ReplicaSet forged under the frozen Rollout, by dev or another kind's controller, and the 'rollback' to it", func() {
			forged := rolloutReplicaSet(getRollout(ns), "f0f0f0", "9", cartTemplate("cart:v9-unreleased"), true)
			for _, user := range []string{dev, deploymentController} {
				cs, _ := csAs(user)
				_, err := cs.AppsV1().ReplicaSets(ns).Create(ctx, forged, metav1.CreateOptions{})
				Expect(forbiddenMessage(err)).To(ContainSubstring(fmt.Sprintf(
					`budgetgate: %[2]q may not write ReplicaSet %[1]s/cart-f0f0f0 as revision history of Rollout %[1]s/cart, whose releases are frozen by SLO %[1]s/web-availability: during a freeze only Rollout %[1]s/cart's own controller may add to or change its revision history`, ns, user)))
			}
			Eventually(func(g Gomega) { g.Expect(rolloutEvents(g, ns)).To(ContainElement("RevisionDenied")) }).Should(Succeed())
			forbiddenMessage(patchRollout(dev, ns, types.JSONPatchType, undoPatch(forged)))

			By("rewriting the template of a revision the Rollout controls is denied too")
			cs, _ := csAs(dev)
			err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
				rs, err := cs.AppsV1().ReplicaSets(ns).Get(ctx, v1.Name, metav1.GetOptions{})
				if err != nil {
					return err
				}
				rs.Spec.Template.Spec.Containers[0].Image = "cart:v9-unreleased"
				_, err = cs.AppsV1().ReplicaSets(ns).Update(ctx, rs, metav1.UpdateOptions{})
				return err
			})
			Expect(forbiddenMessage(err)).To(ContainSubstring(`may not write ReplicaSet ` + ns + `/` + v1.Name + ` as revision history of Rollout`))
		})

		It("[T4] denies the Argo Rollouts controller adopting a ReplicaSet written during the freeze", func() {
			cs, _ := csAs(dev)
			orphan, err := cs.AppsV1().ReplicaSets(ns).Create(ctx,
				rolloutReplicaSet(getRollout(ns), "0a0a0a", "", cartTemplate("cart:v9-unreleased"), false), metav1.CreateOptions{})
			Expect(err).NotTo(HaveOccurred(), "an orphan is nobody's history")
			argo, _ := csAs(argoController)
			patch := fmt.Sprintf(`{"metadata":{"ownerReferences":[{"apiVersion":%q,"kind":"Rollout","name":"cart","uid":%q,"controller":true,"blockOwnerDeletion":true}]}}`,
				rolloutsGroupVers, getRollout(ns).GetUID())
			_, err = argo.AppsV1().ReplicaSets(ns).Patch(ctx, orphan.Name, types.MergePatchType, []byte(patch), metav1.PatchOptions{})
			Expect(forbiddenMessage(err)).To(ContainSubstring("during the freeze, and may not be adopted as a revision of Rollout " + ns + "/cart until the freeze lifts"))
		})

		It("[T6] denies relabelling the frozen Rollout out of the SLO's selection, and so the second step", func() {
			msg := forbiddenMessage(updateRollout(dev, ns, func(u *unstructured.Unstructured) { u.SetLabels(map[string]string{"app": "escaped"}) }))
			Expect(msg).To(ContainSubstring("Rollout " + ns + "/cart"))
			Expect(msg).To(ContainSubstring(`User "dev" may not lift-freeze on servicelevelobjectives.slo.budgetgate.dev in namespace ` + ns))
			forbiddenMessage(updateRollout(dev, ns, func(u *unstructured.Unstructured) {
				u.SetLabels(map[string]string{"app": "escaped"})
				setRolloutImage("cart:v3")(u)
			}))
			Expect(updateRollout(dev, ns, func(u *unstructured.Unstructured) {
				u.SetLabels(map[string]string{"app": "web", "team": "cart"})
			})).To(Succeed(), "labels that keep it selected pass")
		})

		It("[T8] does not let the Rollout reuse another workload's exception by relabelling into its selector", func() {
			oc, _ := crAs(oncall)
			fex := exception(ns, "payments-fix", &metav1.LabelSelector{MatchLabels: map[string]string{"team": "payments"}}, nil, time.Hour)
			Expect(oc.Create(ctx, fex)).To(Succeed())
			waitException(client.ObjectKeyFromObject(fex), func(f *slov1alpha1.FreezeException) bool { return f.Status.Active })
			msg := forbiddenMessage(updateRollout(dev, ns, func(u *unstructured.Unstructured) {
				u.SetLabels(map[string]string{"app": "web", "team": "payments"})
				setRolloutImage("cart:v3")(u)
			}))
			Expect(msg).To(ContainSubstring("Rollout " + ns + "/cart"))
			Expect(oc.Delete(ctx, fex)).To(Succeed())
		})

		It("[T9] honours a hotfix claim on the Rollout only for the release that makes it", func() {
			hotfix := func(image, reason string) func(*unstructured.Unstructured) {
				return func(u *unstructured.Unstructured) {
					setRolloutImage(image)(u)
					Expect(unstructured.SetNestedStringMap(u.Object, map[string]string{
						slov1alpha1.ReleaseClassAnnotation: "hotfix", slov1alpha1.ReleaseReasonAnnotation: reason,
					}, "spec", "template", "metadata", "annotations")).To(Succeed())
				}
			}
			alice, seen := crAs(hotfixer)
			Expect(updateRolloutWith(alice, ns, hotfix("cart:v1-hotfix", "INC-7 cart totals"))).To(Succeed())
			Expect(strings.Join(seen.all(), "\n")).To(ContainSubstring(`Rollout ` + ns + `/cart released during the freeze of SLO ` + ns + `/web-availability as release class "hotfix" by "alice"`))
			for _, user := range []string{hotfixer, gitopsBot} {
				msg := forbiddenMessage(updateRollout(user, ns, setRolloutImage("cart:v2-feature")))
				Expect(msg).To(ContainSubstring(`Release class "hotfix"`), user)
				Expect(msg).To(ContainSubstring(`change budgetgate.dev/release-reason`), user)
			}
			forbiddenMessage(updateRollout(dev, ns, hotfix("cart:v1-hotfix2", "INC-8 mine")))
		})
	})

	It("lets the Rollout release once the freeze lifts, and takes the marks away", func() {
		source.set(slo.Spec.Indicator.Ratio.Errors, 0)
		Eventually(func(g Gomega) {
			g.Expect(sloStatus(g, slo).Freeze.Active).To(BeFalse())
			u := rolloutKey(ns)
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(u), u)).To(Succeed())
			g.Expect(u.GetAnnotations()).NotTo(HaveKey(slov1alpha1.FrozenAnnotation))
			g.Expect(u.GetAnnotations()).NotTo(HaveKey(slov1alpha1.FrozenByAnnotation))
		}).Should(Succeed())
		Expect(updateRollout(dev, ns, setRolloutImage("cart:v3"))).To(Succeed())
	})

	It("stops listing Rollouts when their CRD is deleted, and keeps evaluating", func() {
		crd := &unstructured.Unstructured{}
		crd.SetGroupVersionKind(crdKind)
		crd.SetName(rolloutCRDName)
		Expect(k8sClient.Delete(ctx, crd)).To(Succeed())
		Eventually(rolloutsServed).Should(BeFalse())
		Eventually(func(g Gomega) {
			g.Expect(sloStatus(g, slo).GatedWorkloads).To(Equal(int32(1)), "the web Deployment")
		}).Should(Succeed())
	})
})
