package webhook_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	slov1alpha1 "github.com/budgetgate/budgetgate/api/v1alpha1"
)

// Prometheus connections (docs/prometheus.md): the platform configures where
// SLOs are measured and with which credentials; an SLO only picks a
// connection by name, and only one its namespace may use. The suite's
// manager has "default", "other" and "tenant-b" (namespaces labelled
// tenant=b only; testConnections in suite_test.go).
var _ = Describe("Prometheus connections", func() {
	withConnection := func(s *slov1alpha1.ServiceLevelObjective, name string) *slov1alpha1.ServiceLevelObjective {
		s.Spec.Prometheus = &slov1alpha1.PrometheusSource{Connection: name}
		return s
	}

	It("rejects at apply an SLO naming a connection the operator does not have, and says which it has", func() {
		ns := boundNamespace()
		bindUsers(ns)
		editor, _ := crAs(sloEditor)
		Expect(rejected(editor.Create(ctx, withConnection(boundSLO(ns, "web", "", 0), "thanos")))).To(ContainSubstring(
			`spec.prometheus.connection: unknown Prometheus connection "thanos": name one of default, other, tenant-b (the platform configures connections)`))
		Expect(editor.Create(ctx, withConnection(boundSLO(ns, "web", "", 0), "other"))).To(Succeed())
		Eventually(func(g Gomega) {
			_, ok := asked.Load("other")
			g.Expect(ok).To(BeTrue(), "the controller did not measure through connection other")
		}).Should(Succeed())
	})

	It("cannot be given an address: the field is gone, and the API server says so", func() {
		ns := boundNamespace()
		bindUsers(ns)
		editor, _ := crAs(sloEditor)
		s := boundSLO(ns, "web", "", 0)
		u := &unstructured.Unstructured{}
		Expect(scheme.Convert(s, u, nil)).To(Succeed())
		u.SetGroupVersionKind(slov1alpha1.GroupVersion.WithKind("ServiceLevelObjective"))
		Expect(unstructured.SetNestedField(u.Object, "http://attacker.example:9090", "spec", "prometheus", "address")).To(Succeed())
		// kubectl apply validates fields strictly by default.
		err := editor.Create(ctx, u, client.FieldValidation("Strict"))
		Expect(err).To(HaveOccurred())
		Expect(err.Error()).To(ContainSubstring(`unknown field "spec.prometheus.address"`))
		// An address in the connection's place is refused by the schema.
		Expect(unstructured.SetNestedField(u.Object, map[string]any{"connection": "http://attacker.example:9090"}, "spec", "prometheus")).To(Succeed())
		err = editor.Create(ctx, u)
		Expect(apierrors.IsInvalid(err)).To(BeTrue(), "%v", err)
		Expect(err.Error()).To(ContainSubstring("addresses are not accepted here: the platform configures them"))
	})

	It("lets only the namespaces a connection selects use it, and a team member cannot relabel theirs into it", func() {
		ns := boundNamespace()
		bindUsers(ns)
		editor, _ := crAs(sloEditor)
		devClient, _ := crAs(dev)

		By("another tenant's connection is refused")
		Expect(rejected(editor.Create(ctx, withConnection(boundSLO(ns, "web", "", 0), "tenant-b")))).To(ContainSubstring(
			`Prometheus connection "tenant-b" is for namespaces matching "tenant=b", and namespace ` + ns + ` does not match`))

		By("the team cannot label its namespace into the tenant")
		for _, c := range []client.Client{devClient, editor} {
			Expect(apierrors.IsForbidden(labelNamespace(c, ns, "tenant", "b"))).To(BeTrue())
		}

		By("once the platform labels the namespace, the SLO is admitted and measured through tenant-b")
		Expect(labelNamespace(k8sClient, ns, "tenant", "b")).To(Succeed())
		Eventually(func() error { return editor.Create(ctx, withConnection(boundSLO(ns, "web", "", 0), "tenant-b")) }).Should(Succeed())
		key := client.ObjectKey{Namespace: ns, Name: "web"}
		Eventually(func(g Gomega) {
			got := &slov1alpha1.ServiceLevelObjective{}
			g.Expect(k8sClient.Get(ctx, key, got)).To(Succeed())
			g.Expect(meta.IsStatusConditionTrue(got.Status.Conditions, slov1alpha1.ConditionReady)).To(BeTrue())
		}).Should(Succeed())

		By("the platform takes the label away: the SLO is no longer measured through tenant-b, and its status says why")
		Expect(labelNamespace(k8sClient, ns, "tenant", "")).To(Succeed())
		Eventually(func(g Gomega) {
			got := &slov1alpha1.ServiceLevelObjective{}
			g.Expect(k8sClient.Get(ctx, key, got)).To(Succeed())
			ready := meta.FindStatusCondition(got.Status.Conditions, slov1alpha1.ConditionReady)
			g.Expect(ready).NotTo(BeNil())
			g.Expect(ready.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(ready.Message).To(ContainSubstring(`Prometheus connection "tenant-b" is for namespaces matching "tenant=b"`))
		}, 20*time.Second).Should(Succeed())

		By("an unrelated edit of that SLO is still admitted, with a warning, so the team can fix it")
		editorW, w := crAs(sloEditor)
		Expect(retry.RetryOnConflict(retry.DefaultRetry, func() error {
			got := &slov1alpha1.ServiceLevelObjective{}
			if err := editorW.Get(ctx, key, got); err != nil {
				return err
			}
			got.Spec.Target = "99.5"
			return editorW.Update(ctx, got)
		})).To(Succeed())
		Expect(w.all()).To(ContainElement(ContainSubstring(`Prometheus connection "tenant-b" is for namespaces matching "tenant=b"`)))
	})
})
