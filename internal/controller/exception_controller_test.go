package controller_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	slov1alpha1 "github.com/budgetgate/budgetgate/api/v1alpha1"
)

var _ = Describe("FreezeException controller", func() {
	newException := func(ns, name string, expiresIn time.Duration) *slov1alpha1.FreezeException {
		return &slov1alpha1.FreezeException{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec: slov1alpha1.FreezeExceptionSpec{
				Reason:    "Switch to the backup payment provider (INC-4821)",
				Workloads: []slov1alpha1.WorkloadReference{{Kind: "Deployment", Name: "checkout"}},
				ExpiresAt: metav1.NewTime(clock.Now().Add(expiresIn).Truncate(time.Second)),
			},
		}
	}
	conditionOf := func(g Gomega, fex *slov1alpha1.FreezeException, t string) (*slov1alpha1.FreezeException, metav1.Condition) {
		got := &slov1alpha1.FreezeException{}
		g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(fex), got)).To(Succeed())
		c := meta.FindStatusCondition(got.Status.Conditions, t)
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.ObservedGeneration).To(Equal(got.Generation))
		return got, *c
	}

	It("is Active until it expires", func() {
		// The fake clock starts at the real time and specs step it by minutes;
		// three hours keep the exception in force on both clocks.
		ns := newNamespace()
		fex := newException(ns, "active", 0)
		fex.Spec.ExpiresAt = metav1.NewTime(time.Now().Add(3 * time.Hour).Truncate(time.Second))
		Expect(k8sClient.Create(ctx, fex)).To(Succeed())
		Eventually(func(g Gomega) {
			got, active := conditionOf(g, fex, slov1alpha1.ConditionActive)
			g.Expect(active.Status).To(Equal(metav1.ConditionTrue))
			g.Expect(active.Reason).To(Equal(slov1alpha1.ReasonInForce))
			g.Expect(got.Status.Active).To(BeTrue())
		}).Should(Succeed())
	})

	It("turns Active false once the clock passes expiresAt", func() {
		ns := newNamespace()
		fex := newException(ns, "short", 3*time.Second)
		Expect(k8sClient.Create(ctx, fex)).To(Succeed())
		Eventually(func(g Gomega) {
			_, active := conditionOf(g, fex, slov1alpha1.ConditionActive)
			g.Expect(active.Reason).To(Equal(slov1alpha1.ReasonInForce))
		}).Should(Succeed())
		// The controller re-queues itself at expiry (in about 4s); by then the
		// fake clock is past expiresAt.
		clock.Step(5 * time.Second)
		Eventually(func(g Gomega) {
			got, active := conditionOf(g, fex, slov1alpha1.ConditionActive)
			g.Expect(active.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(active.Reason).To(Equal(slov1alpha1.ReasonExpired))
			g.Expect(active.Message).To(Equal("Expired at " + fex.Spec.ExpiresAt.UTC().Format(time.RFC3339)))
			g.Expect(got.Status.Active).To(BeFalse())
		}, 15*time.Second).Should(Succeed())
	})

	It("reports an expired exception as not Active", func() {
		ns := newNamespace()
		fex := newException(ns, "expired", -time.Minute)
		Expect(k8sClient.Create(ctx, fex)).To(Succeed())
		Eventually(func(g Gomega) {
			got, active := conditionOf(g, fex, slov1alpha1.ConditionActive)
			g.Expect(active.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(active.Reason).To(Equal(slov1alpha1.ReasonExpired))
			g.Expect(got.Status.Active).To(BeFalse())
			_, valid := conditionOf(g, fex, slov1alpha1.ConditionValid)
			g.Expect(valid.Status).To(Equal(metav1.ConditionTrue))
		}).Should(Succeed())
	})

	It("ignores an exception that outlives the policy's maxExceptionDuration", func() {
		ns := newNamespace()
		fex := newException(ns, "too-long", 0)
		fex.Spec.ExpiresAt = metav1.NewTime(time.Now().Add(72 * time.Hour).Truncate(time.Second))
		Expect(k8sClient.Create(ctx, fex)).To(Succeed())
		Eventually(func(g Gomega) {
			got, valid := conditionOf(g, fex, slov1alpha1.ConditionValid)
			g.Expect(valid.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(valid.Reason).To(Equal(slov1alpha1.ReasonInvalid))
			g.Expect(valid.Message).To(ContainSubstring(`longer than the maxExceptionDuration 24h0m0s of policy "built-in"`))
			g.Expect(got.Status.Active).To(BeFalse())
		}).Should(Succeed())
	})
})
