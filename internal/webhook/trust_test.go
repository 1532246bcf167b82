package webhook_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	slov1alpha1 "github.com/budgetgate/budgetgate/api/v1alpha1"
)

// The trust model of docs/security.md, proven through a real API server with
// impersonated users bound to the built-in edit role (and, where a line of the
// model says so, to budgetgate's shipped roles). Each spec is an attack that
// must stay closed; the names are the ones docs/security.md links to.
var _ = Describe("Trust model", func() {
	var ns string
	var slo *slov1alpha1.ServiceLevelObjective
	BeforeEach(func() {
		ns, slo = frozenNamespace(slov1alpha1.ModeEnforce)
		bindUsers(ns)
	})

	Describe("forged history", func() {
		It("[T1] denies a ReplicaSet created by a user with edit under the frozen Deployment, and the 'rollback' to it", func() {
			web := getDeployment(ns, "web")
			forged := replicaSetOf(web, "forged", podTemplate("web:v9-unreleased"), true)
			devcs, _ := csAs(dev)
			_, err := devcs.AppsV1().ReplicaSets(ns).Create(ctx, forged, metav1.CreateOptions{})
			Expect(forbiddenMessage(err)).To(ContainSubstring(fmt.Sprintf(
				`budgetgate: "dev" may not write ReplicaSet %[1]s/web-forged as revision history of Deployment %[1]s/web, whose releases are frozen by SLO %[1]s/web-availability: during a freeze only Deployment %[1]s/web's own controller may add to or change its revision history, so that a rollback can only restore what was released before.`, ns)))
			Eventually(func() []string { return eventReasons(ns) }).Should(ContainElement("RevisionDenied"))

			cs, _ := csAs(dev)
			err = updateDeployment(cs, ns, "web", func(d *appsv1.Deployment) { d.Spec.Template = podTemplate("web:v9-unreleased") })
			Expect(forbiddenMessage(err)).To(ContainSubstring("budgetgate: release of Deployment " + ns + "/web blocked until"))
		})

		It("[T2] denies rewriting the template of a ReplicaSet the Deployment controls", func() {
			web := getDeployment(ns, "web")
			controller, _ := csAs(deploymentController)
			rs, err := controller.AppsV1().ReplicaSets(ns).Create(ctx, replicaSetOf(web, "v0", podTemplate("web:v0"), true), metav1.CreateOptions{})
			Expect(err).NotTo(HaveOccurred(), "the Deployment controller writes history during a freeze")
			cs, _ := csAs(dev)
			err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
				got, err := cs.AppsV1().ReplicaSets(ns).Get(ctx, rs.Name, metav1.GetOptions{})
				if err != nil {
					return err
				}
				got.Spec.Template.Spec.Containers[0].Image = "web:v9-unreleased"
				_, err = cs.AppsV1().ReplicaSets(ns).Update(ctx, got, metav1.UpdateOptions{})
				return err
			})
			Expect(forbiddenMessage(err)).To(ContainSubstring(`budgetgate: "dev" may not write ReplicaSet ` + ns + `/web-v0 as revision history`))
			By("scaling the ReplicaSet is not history and passes")
			Expect(retry.RetryOnConflict(retry.DefaultRetry, func() error {
				got, err := cs.AppsV1().ReplicaSets(ns).Get(ctx, rs.Name, metav1.GetOptions{})
				if err != nil {
					return err
				}
				got.Spec.Replicas = new(int32(1))
				_, err = cs.AppsV1().ReplicaSets(ns).Update(ctx, got, metav1.UpdateOptions{})
				return err
			})).To(Succeed())
		})

		It("[T3] denies re-pointing another workload's ReplicaSet at the frozen Deployment", func() {
			other := newDeployment(ns, "batch", "batch:v1")
			other.Labels = map[string]string{"app": "batch"}
			other.Spec.Selector.MatchLabels = other.Labels
			other.Spec.Template.Labels = other.Labels
			Expect(k8sClient.Create(ctx, other)).To(Succeed())
			controller, _ := csAs(deploymentController)
			rs, err := controller.AppsV1().ReplicaSets(ns).Create(ctx, replicaSetOf(other, "v9", podTemplate("web:v9-unreleased"), true), metav1.CreateOptions{})
			Expect(err).NotTo(HaveOccurred(), "history of an unfrozen workload is not gated")
			web := getDeployment(ns, "web")
			cs, _ := csAs(dev)
			patch := fmt.Sprintf(`{"metadata":{"ownerReferences":[{"apiVersion":"apps/v1","kind":"Deployment","name":"web","uid":%q,"controller":true}]}}`, web.UID)
			_, err = cs.AppsV1().ReplicaSets(ns).Patch(ctx, rs.Name, types.MergePatchType, []byte(patch), metav1.PatchOptions{})
			Expect(forbiddenMessage(err)).To(ContainSubstring(`budgetgate: "dev" may not write ReplicaSet ` + ns + `/batch-v9 as revision history of Deployment ` + ns + `/web`))
		})

		It("[T4] denies the Deployment controller adopting a ReplicaSet written during the freeze", func() {
			web := getDeployment(ns, "web")
			cs, _ := csAs(dev)
			orphan := replicaSetOf(web, "orphan", podTemplate("web:v9-unreleased"), false)
			created, err := cs.AppsV1().ReplicaSets(ns).Create(ctx, orphan, metav1.CreateOptions{})
			Expect(err).NotTo(HaveOccurred(), "an orphan is nobody's history")
			controller, _ := csAs(deploymentController)
			patch := fmt.Sprintf(`{"metadata":{"ownerReferences":[{"apiVersion":"apps/v1","kind":"Deployment","name":"web","uid":%q,"controller":true,"blockOwnerDeletion":true}]}}`, web.UID)
			_, err = controller.AppsV1().ReplicaSets(ns).Patch(ctx, created.Name, types.MergePatchType, []byte(patch), metav1.PatchOptions{})
			Expect(forbiddenMessage(err)).To(ContainSubstring("during the freeze, and may not be adopted as a revision of Deployment " + ns + "/web until the freeze lifts"))
			err = updateDeployment(cs, ns, "web", func(d *appsv1.Deployment) { d.Spec.Template = podTemplate("web:v9-unreleased") })
			Expect(forbiddenMessage(err)).To(ContainSubstring("budgetgate: release of Deployment " + ns + "/web blocked until"))
		})

		It("[T5] keeps rollbacks to revisions the controller wrote, a hotfix admitted in this freeze included", func() {
			controller, _ := csAs(deploymentController)
			_, err := controller.AppsV1().ReplicaSets(ns).Create(ctx, replicaSetOf(getDeployment(ns, "web"), "v1", podTemplate("web:v1"), true), metav1.CreateOptions{})
			Expect(err).NotTo(HaveOccurred(), "the ReplicaSet of the release before the freeze")
			cs, _ := csAs(hotfixer)
			hotfix := podTemplate("web:v1-hotfix")
			hotfix.Annotations = map[string]string{slov1alpha1.ReleaseClassAnnotation: "hotfix", slov1alpha1.ReleaseReasonAnnotation: "INC-1 payment timeouts"}
			Expect(updateDeployment(cs, ns, "web", func(d *appsv1.Deployment) { d.Spec.Template = hotfix })).To(Succeed())
			// What kube-controller-manager does next: a ReplicaSet for the hotfix.
			_, err = controller.AppsV1().ReplicaSets(ns).Create(ctx, replicaSetOf(getDeployment(ns, "web"), "hotfix", hotfix, true), metav1.CreateOptions{})
			Expect(err).NotTo(HaveOccurred())
			devcs, _ := csAs(dev)
			Expect(updateDeployment(devcs, ns, "web", func(d *appsv1.Deployment) { d.Spec.Template = podTemplate("web:v1") })).To(Succeed(), "rollback to v1")
			Expect(updateDeployment(devcs, ns, "web", func(d *appsv1.Deployment) { d.Spec.Template = hotfix })).To(Succeed(), "back to the hotfix")
		})
	})

	Describe("relabelling", func() {
		It("[T6] denies the first step of the two-step escape: labels that leave the frozen SLO's selection", func() {
			cs, _ := csAs(dev)
			err := updateDeployment(cs, ns, "web", func(d *appsv1.Deployment) { d.Labels = map[string]string{"app": "web-escaped"} })
			msg := forbiddenMessage(err)
			Expect(msg).To(MatchRegexp(`budgetgate: label change of Deployment %[1]s/web blocked until (at least \S+|the error budget recovers): the new labels would leave the selection of SLO %[1]s/web-availability, frozen since \S+ \(rule fast-burn: `, ns))
			Expect(msg).To(ContainSubstring(`User "dev" may not lift-freeze on servicelevelobjectives.slo.budgetgate.dev in namespace ` + ns + "."))
			Expect(msg).To(ContainSubstring("Change the labels after the freeze lifts, or ask someone for whom kubectl auth can-i lift-freeze servicelevelobjectives.slo.budgetgate.dev -n " + ns + " says yes."))
			Expect(msg).To(ContainSubstring("See the freeze: kubectl describe slo web-availability -n " + ns))

			By("and so the second step still meets the freeze")
			err = updateDeployment(cs, ns, "web", func(d *appsv1.Deployment) {
				d.Labels = map[string]string{"app": "web-escaped"}
				d.Spec.Template.Spec.Containers[0].Image = "web:v2"
			})
			forbiddenMessage(err)

			By("labels that keep the workload selected pass")
			Expect(updateDeployment(cs, ns, "web", func(d *appsv1.Deployment) { d.Labels["team"] = "checkout" })).To(Succeed())
		})

		It("[T7] lets someone who may lift-freeze relabel, records it, and unmarks the workload", func() {
			cs, seen := csAs(lead)
			Expect(updateDeployment(cs, ns, "web", func(d *appsv1.Deployment) { d.Labels = map[string]string{"app": "web-moved"} })).To(Succeed())
			Expect(strings.Join(seen.all(), "\n")).To(ContainSubstring(fmt.Sprintf(`budgetgate: Deployment %s/web relabelled out of the freeze of SLO %s/web-availability by "lead", who may lift-freeze`, ns, ns)))
			Eventually(func() []string { return eventReasons(ns) }).Should(ContainElement("LeftFreeze"))
			By("the freeze marks go once the SLO no longer selects it")
			Eventually(func(g Gomega) {
				d := &appsv1.Deployment{}
				g.Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web"}, d)).To(Succeed())
				g.Expect(d.Annotations).NotTo(HaveKey(slov1alpha1.FrozenByAnnotation))
				g.Expect(d.Annotations).NotTo(HaveKey(slov1alpha1.FrozenAnnotation))
			}).Should(Succeed())
		})

		It("[T8] does not let a workload reuse another workload's exception by relabelling into its selector", func() {
			// The SLO selects app=web; the exception covers team=payments only.
			pay := newDeployment(ns, "pay", "pay:v1")
			pay.Labels = map[string]string{"app": "web", "team": "payments"}
			Expect(k8sClient.Create(ctx, pay)).To(MatchError(ContainSubstring("budgetgate: creation of Deployment "+ns+"/pay blocked")), "creating a selected workload is gated")
			fex := exception(ns, "payments-fix", &metav1.LabelSelector{MatchLabels: map[string]string{"team": "payments"}}, nil, time.Hour)
			oc, _ := crAs(oncall)
			Expect(oc.Create(ctx, fex)).To(Succeed())
			waitException(client.ObjectKeyFromObject(fex), func(f *slov1alpha1.FreezeException) bool { return f.Status.Active })

			cs, _ := csAs(dev)
			err := updateDeployment(cs, ns, "web", func(d *appsv1.Deployment) {
				d.Labels = map[string]string{"app": "web", "team": "payments"}
				d.Spec.Template.Spec.Containers[0].Image = "web:v2"
			})
			Expect(forbiddenMessage(err)).To(ContainSubstring("budgetgate: release of Deployment " + ns + "/web blocked until"))
		})
	})

	Describe("release-class claims", func() {
		hotfixed := func(image, reason string) corev1.PodTemplateSpec {
			t := podTemplate(image)
			t.Annotations = map[string]string{slov1alpha1.ReleaseClassAnnotation: "hotfix", slov1alpha1.ReleaseReasonAnnotation: reason}
			return t
		}
		It("[T9] honours a claim only for the release that makes it", func() {
			alice, seen := csAs(hotfixer)
			Expect(updateDeployment(alice, ns, "web", func(d *appsv1.Deployment) { d.Spec.Template = hotfixed("web:v1-hotfix", "INC-1 payment timeouts") })).To(Succeed())
			Expect(strings.Join(seen.all(), "\n")).To(ContainSubstring(`as release class "hotfix" by "alice"`))

			By("a routine release on top of it, class left on the template, is denied, for alice and a GitOps bot alike")
			leftOver := `Release class "hotfix" was claimed by an earlier release and counts only for that one; to claim it for this release, change budgetgate.dev/release-reason (e.g. to the incident) in the same change.`
			for _, user := range []string{hotfixer, gitopsBot} {
				cs, _ := csAs(user)
				err := updateDeployment(cs, ns, "web", func(d *appsv1.Deployment) { d.Spec.Template.Spec.Containers[0].Image = "web:v2-feature" })
				Expect(forbiddenMessage(err)).To(ContainSubstring(leftOver), user)
			}
			By("re-applying the same hotfix releases nothing and passes")
			Expect(updateDeployment(alice, ns, "web", func(d *appsv1.Deployment) { d.Spec.Template = hotfixed("web:v1-hotfix", "INC-1 payment timeouts") })).To(Succeed())
			By("a new reason claims the class again")
			Expect(updateDeployment(alice, ns, "web", func(d *appsv1.Deployment) { d.Spec.Template = hotfixed("web:v1-hotfix2", "INC-2 null deref") })).To(Succeed())
			By("but not for someone without release-during-freeze")
			cs, _ := csAs(dev)
			err := updateDeployment(cs, ns, "web", func(d *appsv1.Deployment) { d.Spec.Template = hotfixed("web:v1-hotfix3", "INC-3 mine") })
			Expect(forbiddenMessage(err)).To(ContainSubstring(`user "dev" may not release-during-freeze`))
		})
	})

	Describe("the frozen SLO itself", func() {
		edits := []struct {
			what   string
			mutate func(*slov1alpha1.ServiceLevelObjective)
		}{
			{"spec.workloadSelector", func(s *slov1alpha1.ServiceLevelObjective) {
				s.Spec.WorkloadSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "nothing"}}
			}},
			{"spec.target", func(s *slov1alpha1.ServiceLevelObjective) { s.Spec.Target = "90" }},
			{"spec.policyRef", func(s *slov1alpha1.ServiceLevelObjective) {
				s.Spec.PolicyRef = &slov1alpha1.PolicyReference{Name: "built-in"}
			}},
			{"spec.indicator", func(s *slov1alpha1.ServiceLevelObjective) {
				s.Spec.Indicator.Ratio.Errors = `nothing_total{code="500"}`
			}},
			{"spec.prometheus", func(s *slov1alpha1.ServiceLevelObjective) {
				s.Spec.Prometheus = &slov1alpha1.PrometheusSource{Connection: "other"}
			}},
			{"metadata.ownerReferences", func(s *slov1alpha1.ServiceLevelObjective) {
				s.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "ConfigMap", Name: "dead-mans-switch", UID: "0000"}}
			}},
		}
		It("[T10] cannot be changed or deleted to dissolve the freeze without lift-freeze", func() {
			c, _ := crAs(sloEditor)
			for _, e := range edits {
				err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
					got := &slov1alpha1.ServiceLevelObjective{}
					if err := c.Get(ctx, client.ObjectKeyFromObject(slo), got); err != nil {
						return err
					}
					e.mutate(got)
					return c.Update(ctx, got)
				})
				msg := forbiddenMessage(err)
				Expect(msg).To(ContainSubstring(fmt.Sprintf("budgetgate: SLO %s/web-availability is frozen (rule fast-burn, since ", ns)), e.what)
				Expect(msg).To(ContainSubstring(") and "+e.what+" would change or lift the freeze of its workloads, which needs the lift-freeze verb"), e.what)
			}
			err := c.Delete(ctx, fresh(slo))
			msg := forbiddenMessage(err)
			Expect(msg).To(ContainSubstring(") and deleting it would change or lift the freeze of its workloads, which needs the lift-freeze verb on servicelevelobjectives.slo.budgetgate.dev in namespace " + ns + `: "sloeditor" does not have it.`))
			// The next steps, as in the release gate's denials; the SLO webhook
			// asks about this SLO by name, so the command names it too.
			Expect(msg).To(HaveSuffix("\nMake the change after the freeze lifts, or ask someone for whom kubectl auth can-i lift-freeze servicelevelobjectives.slo.budgetgate.dev/web-availability -n " + ns + " says yes." +
				"\nSee the freeze: kubectl describe slo web-availability -n " + ns +
				"\nExceptions and help: your platform team (kubectl get fex -n " + ns + ")"))

			By("an edit that changes nothing the freeze depends on passes")
			Expect(retry.RetryOnConflict(retry.DefaultRetry, func() error {
				got := fresh(slo)
				got.Spec.Description = "checkout availability, as the status page promises"
				return c.Update(ctx, got)
			})).To(Succeed())
		})

		It("[T11] can be changed and deleted by someone who may lift-freeze, recorded, and its marks go with it", func() {
			c, seen := crAs(lead)
			Expect(retry.RetryOnConflict(retry.DefaultRetry, func() error {
				got := fresh(slo)
				got.Spec.Target = "99"
				return c.Update(ctx, got)
			})).To(Succeed())
			Expect(strings.Join(seen.all(), "\n")).To(ContainSubstring("budgetgate: lead, who may lift-freeze, changed the frozen SLO: spec.target; this is recorded"))
			Eventually(func(g Gomega) { g.Expect(sloEventReasons(g, ns)).To(ContainElement("FrozenSLOChanged")) }).Should(Succeed())

			Expect(c.Delete(ctx, fresh(slo))).To(Succeed())
			Eventually(func(g Gomega) {
				err := k8sClient.Get(ctx, client.ObjectKeyFromObject(slo), &slov1alpha1.ServiceLevelObjective{})
				g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "the finalizer is released")
				d := &appsv1.Deployment{}
				g.Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web"}, d)).To(Succeed())
				g.Expect(d.Annotations).NotTo(HaveKey(slov1alpha1.FrozenAnnotation))
			}).Should(Succeed())
		})

		It("[T12] records a change of the policy of a frozen SLO", func() {
			ebp := &slov1alpha1.ErrorBudgetPolicy{}
			Expect(k8sClient.Get(ctx, client.ObjectKey{Name: "policy-" + ns}, ebp)).To(Succeed())
			c, seen := crAs("") // the platform admin
			ebp.Spec.Mode = slov1alpha1.ModeDryRun
			Expect(c.Update(ctx, ebp)).To(Succeed())
			Expect(strings.Join(seen.all(), "\n")).To(ContainSubstring(fmt.Sprintf("changed policy policy-%s while 1 SLOs under it are frozen (%s/web-availability); they follow the change at their next evaluation; this is recorded", ns, ns)))
		})
	})

	Describe("exceptions", func() {
		It("[T13] records the requester the API server authenticated, whatever the manifest says", func() {
			fex := exception(ns, "fix", nil, []slov1alpha1.WorkloadReference{{Kind: "Deployment", Name: "web"}}, time.Hour)
			fex.Spec.RequestedBy = "someone-else"
			oc, _ := crAs(oncall)
			Expect(oc.Create(ctx, fex)).To(Succeed())
			got := &slov1alpha1.FreezeException{}
			Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(fex), got)).To(Succeed())
			Expect(got.Spec.RequestedBy).To(Equal(oncall))
			By("and keeps it whatever an update says")
			Expect(retry.RetryOnConflict(retry.DefaultRetry, func() error {
				g := &slov1alpha1.FreezeException{}
				if err := oc.Get(ctx, client.ObjectKeyFromObject(fex), g); err != nil {
					return err
				}
				g.Spec.RequestedBy = "someone-else"
				return oc.Update(ctx, g)
			})).To(Succeed())
			Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(fex), got)).To(Succeed())
			Expect(got.Spec.RequestedBy).To(Equal(oncall))
			By("kubectl get fex -o wide shows it")
			Expect(tableRow(ns, "fix")).To(ContainElements(oncall))

			By("the release under it records requester and user")
			waitException(client.ObjectKeyFromObject(fex), func(f *slov1alpha1.FreezeException) bool { return f.Status.Active })
			cs, _ := csAs(dev)
			Expect(updateDeployment(cs, ns, "web", func(d *appsv1.Deployment) { d.Spec.Template.Spec.Containers[0].Image = "web:v2" })).To(Succeed())
			Eventually(func(g Gomega) {
				g.Expect(eventNotes(g, ns, "ReleaseExcepted")).To(ContainElement(ContainSubstring("Admitted release by dev under FreezeException fix (requested by oncall)")))
			}).Should(Succeed())
		})

		It("[T14] under a policy requiring approval, counts an exception only once a second person approves it", func() {
			ebp := &slov1alpha1.ErrorBudgetPolicy{}
			Expect(k8sClient.Get(ctx, client.ObjectKey{Name: "policy-" + ns}, ebp)).To(Succeed())
			ebp.Spec.RequireExceptionApproval = true
			Expect(k8sClient.Update(ctx, ebp)).To(Succeed())
			oc, _ := crAs(oncall)
			fex := exception(ns, "needs-approval", nil, []slov1alpha1.WorkloadReference{{Kind: "Deployment", Name: "web"}}, time.Hour)
			Expect(oc.Create(ctx, fex)).To(Succeed())
			waitException(client.ObjectKeyFromObject(fex), func(f *slov1alpha1.FreezeException) bool { return f.Status.Active })
			time.Sleep(time.Second) // the SLO's next evaluation carries the policy's approval setting
			cs, _ := csAs(dev)
			release := func(image string) error {
				return updateDeployment(cs, ns, "web", func(d *appsv1.Deployment) { d.Spec.Template.Spec.Containers[0].Image = image })
			}
			Eventually(func(g Gomega) {
				err := release("web:v2")
				g.Expect(err).To(HaveOccurred())
				g.Expect(err.Error()).To(ContainSubstring("FreezeException " + ns + "/needs-approval is not approved yet"))
			}).Should(Succeed())

			approve := func(user string) error {
				c, _ := crAs(user)
				patch := []byte(`{"metadata":{"annotations":{"budgetgate.dev/approve":"true"}}}`)
				return c.Patch(ctx, &slov1alpha1.FreezeException{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fex.Name}}, client.RawPatch(types.MergePatchType, patch))
			}
			Expect(forbiddenMessage(approve(oncall))).To(ContainSubstring(`spec.approvedBy: "oncall" requested this exception and cannot approve it; a second person must`))
			forbiddenMessage(approve(dev)) // edit does not even let dev write exceptions
			Expect(forbiddenMessage(approve(oncall2))).To(ContainSubstring(`"oncall2" may not approve freezeexceptions.slo.budgetgate.dev in namespace ` + ns))
			Expect(approve(approver)).To(Succeed())
			got := &slov1alpha1.FreezeException{}
			Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(fex), got)).To(Succeed())
			Expect(got.Spec.ApprovedBy).To(Equal(approver))
			Expect(got.Annotations).NotTo(HaveKey(slov1alpha1.ApproveAnnotation))
			Expect(tableRow(ns, fex.Name)).To(ContainElements(oncall, approver))
			time.Sleep(500 * time.Millisecond)
			Expect(release("web:v2")).To(Succeed())

			By("a self-approval written into the spec is refused too")
			c, _ := crAs(oncall)
			Expect(retry.RetryOnConflict(retry.DefaultRetry, func() error {
				g := &slov1alpha1.FreezeException{}
				if err := c.Get(ctx, client.ObjectKeyFromObject(fex), g); err != nil {
					return err
				}
				g.Spec.Reason = "Widened after approval, to cover more"
				return c.Update(ctx, g)
			})).To(Succeed())
			Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(fex), got)).To(Succeed())
			Expect(got.Spec.ApprovedBy).To(BeEmpty(), "changing an approved exception clears the approval")
		})

		It("[T15] does not extend break-glass by deleting and re-creating an exception", func() {
			ebp := &slov1alpha1.ErrorBudgetPolicy{}
			Expect(k8sClient.Get(ctx, client.ObjectKey{Name: "policy-" + ns}, ebp)).To(Succeed())
			ebp.Spec.MaxExceptionDuration = "8s"
			Expect(k8sClient.Update(ctx, ebp)).To(Succeed())
			time.Sleep(time.Second) // the next evaluation and the exception bound see the policy
			oc, _ := crAs(oncall)
			first := exception(ns, "first", nil, []slov1alpha1.WorkloadReference{{Kind: "Deployment", Name: "web"}}, 8*time.Second)
			Expect(oc.Create(ctx, first)).To(Succeed())
			start := time.Now()
			waitException(client.ObjectKeyFromObject(first), func(f *slov1alpha1.FreezeException) bool { return f.Status.Active })
			cs, _ := csAs(dev)
			release := func(image string) error {
				return updateDeployment(cs, ns, "web", func(d *appsv1.Deployment) { d.Spec.Template.Spec.Containers[0].Image = image })
			}
			Expect(release("web:v2")).To(Succeed())

			By("deleting it keeps it as a record while the freeze lasts")
			Expect(oc.Delete(ctx, first)).To(Succeed())
			waitException(client.ObjectKeyFromObject(first), func(f *slov1alpha1.FreezeException) bool { return f.DeletionTimestamp != nil })
			time.Sleep(time.Until(start.Add(4 * time.Second))) // so that the second would, on its own, still count at 9s
			second := exception(ns, "second", nil, []slov1alpha1.WorkloadReference{{Kind: "Deployment", Name: "web"}}, 8*time.Second)
			Expect(oc.Create(ctx, second)).To(Succeed())
			waitException(client.ObjectKeyFromObject(second), func(f *slov1alpha1.FreezeException) bool { return f.Status.Active })
			Expect(release("web:v3")).To(Succeed(), "within the first exception's 8s")

			By("past 8s of break-glass in this freeze, the second exception no longer counts")
			time.Sleep(time.Until(start.Add(9 * time.Second)))
			err := release("web:v4")
			Expect(forbiddenMessage(err)).To(ContainSubstring("FreezeException " + ns + "/second is not honoured: exceptions have let this workload release since "))
			Expect(err.Error()).To(ContainSubstring("break-glass is bounded by maxExceptionDuration 8s per freeze."))
		})
	})
})

// exception is a FreezeException in ns covering sel or workloads for d.
func exception(ns, name string, sel *metav1.LabelSelector, workloads []slov1alpha1.WorkloadReference, d time.Duration) *slov1alpha1.FreezeException {
	return &slov1alpha1.FreezeException{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: slov1alpha1.FreezeExceptionSpec{
			Reason: "INC-4821: switch to the backup payment provider", WorkloadSelector: sel, Workloads: workloads,
			ExpiresAt: metav1.NewTime(time.Now().Add(d).Truncate(time.Second)),
		},
	}
}

// fresh reads an SLO from the API server.
func fresh(slo *slov1alpha1.ServiceLevelObjective) *slov1alpha1.ServiceLevelObjective {
	got := &slov1alpha1.ServiceLevelObjective{}
	Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(slo), got)).To(Succeed())
	return got
}

// sloEventReasons lists the reasons of the events about SLOs in ns.
func sloEventReasons(g Gomega, ns string) []string {
	list := &corev1.EventList{}
	g.Expect(k8sClient.List(ctx, list, client.InNamespace(ns))).To(Succeed())
	var out []string
	for _, e := range list.Items {
		if e.InvolvedObject.Kind == "ServiceLevelObjective" {
			out = append(out, e.Reason)
		}
	}
	return out
}

// eventNotes lists the messages of the events of this reason in ns.
func eventNotes(g Gomega, ns, reason string) []string {
	list := &corev1.EventList{}
	g.Expect(k8sClient.List(ctx, list, client.InNamespace(ns))).To(Succeed())
	var out []string
	for _, e := range list.Items {
		if e.Reason == reason {
			out = append(out, e.Message)
		}
	}
	return out
}

// tableRow is the row `kubectl get fex NAME -o wide` prints: the API server's
// Table rendering of the CRD's printer columns.
func tableRow(ns, name string) []string {
	cs, _ := csAs("")
	raw, err := cs.RESTClient().Get().AbsPath("/apis/slo.budgetgate.dev/v1alpha1/namespaces", ns, "freezeexceptions", name).
		SetHeader("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io").DoRaw(ctx)
	Expect(err).NotTo(HaveOccurred())
	var table metav1.Table
	Expect(json.Unmarshal(raw, &table)).To(Succeed())
	Expect(table.Rows).To(HaveLen(1))
	var out []string
	for _, c := range table.Rows[0].Cells {
		out = append(out, fmt.Sprint(c))
	}
	return out
}
