//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

const shopNamespace = "shop-e2e"

// What the controller decided live, for the replay to be compared with
// (kubectl budgetgate simulate, at the end of the story).
var (
	storyStart             time.Time
	liveFrozen, liveLifted time.Time
)

// The demo story, asserted: one SLO over the checkout service, a policy whose
// windows are minutes, and errors switched on and off through the demo service.
var _ = Describe("budgetgate on a real cluster", Ordered, func() {
	BeforeAll(func() {
		storyStart = time.Now()
		By("deploying checkout (with one earlier release, so rollbacks have a target) and a ledger StatefulSet")
		apply(fmt.Sprintf(`
apiVersion: v1
kind: Namespace
metadata: {name: %[1]s}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: checkout, namespace: %[1]s, labels: {app.kubernetes.io/part-of: checkout}}
spec:
  replicas: 2
  revisionHistoryLimit: 5
  selector: {matchLabels: {app: checkout}}
  template:
    metadata: {labels: {app: checkout, app.kubernetes.io/part-of: checkout}}
    spec: {containers: [{name: app, image: "registry.example/shop/checkout:v1"}]}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: ledger, namespace: %[1]s, labels: {app.kubernetes.io/part-of: checkout}}
spec:
  replicas: 1
  serviceName: ledger
  selector: {matchLabels: {app: ledger}}
  template:
    metadata: {labels: {app: ledger}}
    spec: {containers: [{name: ledger, image: "registry.example/shop/ledger:v1"}]}
---
# dev may deploy; alice may also release during a freeze.
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: deployers, namespace: %[1]s}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: edit}
subjects:
  - {apiGroup: rbac.authorization.k8s.io, kind: User, name: dev}
  - {apiGroup: rbac.authorization.k8s.io, kind: User, name: alice}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: hotfixers, namespace: %[1]s}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: budgetgate-release-during-freeze}
subjects:
  - {apiGroup: rbac.authorization.k8s.io, kind: User, name: alice}
`, shopNamespace))
		kc("rollout", "status", "deployment/checkout", "--timeout=120s")
		kc("set", "image", "deployment/checkout", "app=registry.example/shop/checkout:v2")
		kc("rollout", "status", "deployment/checkout", "--timeout=120s")

		By("applying the checkout SLO under a policy whose windows are minutes")
		apply(fmt.Sprintf(`
apiVersion: slo.budgetgate.dev/v1alpha1
kind: ErrorBudgetPolicy
metadata: {name: e2e}
spec:
  mode: Enforce
  rules:
    - name: fast-burn
      burnRate: {longWindow: 2m, shortWindow: 30s, factor: "5"}
      action: Freeze
  freeze: {minDuration: 1m}
  onMissingData: Hold
  staleHold: 20s
---
apiVersion: slo.budgetgate.dev/v1alpha1
kind: ServiceLevelObjective
metadata: {name: checkout-availability, namespace: %[1]s}
spec:
  description: successful purchase completion
  target: "99"
  window: 1h
  evaluationInterval: 10s
  policyRef: {name: e2e}
  indicator:
    ratio:
      errors: http_requests_total{job="checkout",code=~"5.."}
      total: http_requests_total{job="checkout"}
  workloadSelector:
    matchLabels: {app.kubernetes.io/part-of: checkout}
`, shopNamespace))
	})

	It("reports a healthy SLO as Ready with its budget", func() {
		Eventually(func(g Gomega) {
			s := getSLO(g)
			g.Expect(s.condition("Ready")).To(Equal("True"))
			g.Expect(s.condition("DataAvailable")).To(Equal("True"))
			g.Expect(s.Status.Freeze.Active).To(BeFalse())
			g.Expect(s.Status.GatedWorkloads).To(Equal(2))
			g.Expect(s.Status.ObservedGeneration).To(Equal(s.Metadata.Generation))
		}, 2*time.Minute).Should(Succeed())
	})

	// rollout_test.go: an Argo Rollout beside checkout, from healthy to after the lift.
	It("runs an Argo Rollout the SLO selects, under the Argo Rollouts controller, installed after the operator", specRolloutHealthy)
	AfterAll(stopArgoRollouts)

	It("freezes when errors burn the budget, and marks the workloads", func() {
		Expect(environ.SetErrorRate(0.3)).To(Succeed())
		Eventually(func(g Gomega) {
			s := getSLO(g)
			g.Expect(s.Status.Freeze.Active).To(BeTrue())
			g.Expect(s.Status.Freeze.Rule).To(Equal("fast-burn"))
			g.Expect(s.condition("Frozen")).To(Equal("True"))
			var err error
			liveFrozen, err = time.Parse(time.RFC3339, s.Status.Freeze.Since)
			g.Expect(err).NotTo(HaveOccurred())
		}, 4*time.Minute).Should(Succeed())
		Eventually(func(g Gomega) {
			out, err := kubectl.Run("", "get", "deployment/checkout", "-n", shopNamespace, "-o", "jsonpath={.metadata.annotations}")
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(out).To(ContainSubstring(`"budgetgate.dev/frozen":"true"`))
			g.Expect(out).To(ContainSubstring(`"budgetgate.dev/frozen-by":"checkout-availability"`))
		}).Should(Succeed())
	})

	It("denies a routine release with budgetgate's message", func() {
		out := kcFails("set", "image", "deployment/checkout", "app=registry.example/shop/checkout:v3")
		Expect(out).To(ContainSubstring("budgetgate: release of Deployment " + shopNamespace + "/checkout blocked until "))
		Expect(out).To(ContainSubstring(" by SLO " + shopNamespace + "/checkout-availability, frozen since "))
		Expect(out).To(ContainSubstring("(rule fast-burn: "))
		Expect(out).To(ContainSubstring("\nStill allowed: rollback (kubectl rollout undo deployment/checkout -n " + shopNamespace + ";"))
		Expect(out).To(ContainSubstring("\nHotfix: if kubectl auth can-i release-during-freeze servicelevelobjectives.slo.budgetgate.dev -n " + shopNamespace + " says yes,"))
		Expect(out).To(ContainSubstring("\nSee the freeze: kubectl describe slo checkout-availability -n " + shopNamespace + "\n"))
	})

	It("lets the developer it denied read the freeze, as the message says, and change nothing", func() {
		// budgetgate's read-only role, aggregated into the built-in edit role
		// by this cluster's kube-controller-manager.
		Expect(kc("--as=dev", "describe", "slo", "checkout-availability")).To(ContainSubstring("Releases frozen since"))
		kc("--as=dev", "get", "fex") // succeeds: dev may list the namespace's exceptions
		for verb, want := range map[string]string{"list": "yes", "create": "no", "update": "no", "delete": "no"} {
			for _, resource := range []string{"servicelevelobjectives.slo.budgetgate.dev", "freezeexceptions.slo.budgetgate.dev"} {
				out, _ := kubectl.Run("", "-n", shopNamespace, "--as=dev", "auth", "can-i", verb, resource)
				Expect(strings.TrimSpace(out)).To(Equal(want), "dev may %s %s", verb, resource)
			}
		}
	})

	It("lets a rollback and scaling through", func() {
		kc("rollout", "undo", "deployment/checkout")
		Expect(kc("get", "deployment/checkout", "-o", "jsonpath={.spec.template.spec.containers[0].image}")).
			To(Equal("registry.example/shop/checkout:v1"))
		kc("scale", "deployment/checkout", "--replicas=3")
	})

	It("gates the Argo Rollout like a Deployment: a new image denied, undo admitted, promote, restart and abort pass", specRolloutFrozen)

	It("lets an authorised hotfix through and no one else's", func() {
		hotfix := `{"spec":{"template":{"metadata":{"annotations":{"budgetgate.dev/release-class":"hotfix"}},` +
			`"spec":{"containers":[{"name":"app","image":"registry.example/shop/checkout:v1-hotfix%s"}]}}}}`
		out := kcFails("--as=dev", "patch", "deployment/checkout", "-p", fmt.Sprintf(hotfix, "-dev"))
		Expect(out).To(ContainSubstring("hotfix"))
		kc("--as=alice", "patch", "deployment/checkout", "-p", fmt.Sprintf(hotfix, ""))
	})

	It("denies forged rollback targets and the two-step escape, while kube-controller-manager's own writes pass", func() {
		uid := kc("get", "deployment/checkout", "-o", "jsonpath={.metadata.uid}")
		By("a ReplicaSet forged by dev under the frozen Deployment is denied")
		_, err := kubectl.Run(fmt.Sprintf(`
apiVersion: apps/v1
kind: ReplicaSet
metadata:
  name: checkout-forged
  namespace: %s
  labels: {app: checkout, pod-template-hash: forged}
  ownerReferences: [{apiVersion: apps/v1, kind: Deployment, name: checkout, uid: %q, controller: true}]
spec:
  replicas: 0
  selector: {matchLabels: {app: checkout, pod-template-hash: forged}}
  template:
    metadata: {labels: {app: checkout, app.kubernetes.io/part-of: checkout, pod-template-hash: forged}}
    spec: {containers: [{name: app, image: "registry.example/shop/checkout:v9-unreleased"}]}
`, shopNamespace, uid), "--as=dev", "create", "-f", "-")
		Expect(err).To(HaveOccurred())
		Expect(err.Error()).To(ContainSubstring(`may not write ReplicaSet ` + shopNamespace + `/checkout-forged as revision history of Deployment ` + shopNamespace + `/checkout`))

		By("relabelling out of the frozen SLO's selection (step one of two) is denied")
		out := kcFails("--as=dev", "label", "deployment/checkout", "app.kubernetes.io/part-of-")
		Expect(out).To(ContainSubstring("budgetgate: label change of Deployment " + shopNamespace + "/checkout blocked until "))

		By("a restart passes, and kube-controller-manager writes its ReplicaSet during the freeze")
		before := kc("get", "replicasets", "-l", "app=checkout", "-o", "name")
		kc("--as=dev", "rollout", "restart", "deployment/checkout")
		kc("rollout", "status", "deployment/checkout", "--timeout=120s")
		Expect(kc("get", "replicasets", "-l", "app=checkout", "-o", "name")).NotTo(Equal(before))

		By("kubectl rollout undo --to-revision, two releases back, passes")
		kc("--as=dev", "rollout", "undo", "deployment/checkout", "--to-revision=2")
		kc("rollout", "status", "deployment/checkout", "--timeout=120s")
		Expect(kc("get", "deployment/checkout", "-o", "jsonpath={.spec.template.spec.containers[0].image}")).
			To(Equal("registry.example/shop/checkout:v2"))
	})

	It("gates a StatefulSet like a Deployment", func() {
		out := kcFails("set", "image", "statefulset/ledger", "ledger=registry.example/shop/ledger:v2")
		Expect(out).To(ContainSubstring("StatefulSet " + shopNamespace + "/ledger"))
	})

	It("keeps the freeze while Prometheus is down, as onMissingData: Hold says", func() {
		Expect(environ.StopPrometheus()).To(Succeed())
		Eventually(func(g Gomega) {
			s := getSLO(g)
			g.Expect(s.condition("DataAvailable")).To(Equal("False"))
			g.Expect(s.conditionReason("DataAvailable")).To(Equal("QueryFailed"))
		}, 2*time.Minute).Should(Succeed())
		// Past staleHold (20s) and minDuration (1m) the freeze holds without data.
		Consistently(func(g Gomega) {
			g.Expect(getSLO(g).Status.Freeze.Active).To(BeTrue())
		}, 75*time.Second, 5*time.Second).Should(Succeed())
		Expect(environ.StartPrometheus()).To(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(getSLO(g).condition("DataAvailable")).To(Equal("True"))
		}, 2*time.Minute).Should(Succeed())
	})

	It("keeps the freeze across an operator restart, and keeps denying", func() {
		before := getSLOOnce()
		Expect(environ.StopOperator()).To(Succeed())
		Expect(environ.StartOperator()).To(Succeed())
		// Wait for an evaluation by the new process before checking what it kept.
		Eventually(func(g Gomega) {
			s := getSLO(g)
			g.Expect(s.Status.LastEvaluationTime).NotTo(Equal(before.Status.LastEvaluationTime))
			g.Expect(s.Status.Freeze.Active).To(BeTrue())
			g.Expect(s.Status.Freeze.Since).To(Equal(before.Status.Freeze.Since))
		}, 2*time.Minute).Should(Succeed())
		out := kcFails("--as=dev", "set", "image", "deployment/checkout", "app=registry.example/shop/checkout:v3")
		Expect(out).To(ContainSubstring("fast-burn"))
		// An admin holds every verb, release-during-freeze included, but claims
		// nothing: a routine release is denied to them too.
		out = kcFails("set", "image", "deployment/checkout", "app=registry.example/shop/checkout:v3")
		Expect(out).To(ContainSubstring("fast-burn"))
	})

	// failover_test.go and rotation_test.go: the two replicas mid-freeze.
	It("fails over when the leader is killed: the freeze holds, releases stay denied, another replica evaluates", specFailover)
	It("stops a replica that lost its lease from writing status, and ends it", specLostLease)
	It("re-issues a deleted webhook certificate Secret, every admission request answered", specRotateDeletedSecret)
	It("renews a serving certificate near expiry under the same CA, every admission request answered", specRotateServerCert)
	It("replaces a CA near expiry, every admission request answered", specRotateCA)

	It("admits releases while the webhook is down (failurePolicy: Ignore)", func() {
		Expect(environ.StopOperator()).To(Succeed())
		kc("set", "image", "statefulset/ledger", "ledger=registry.example/shop/ledger:v2-while-down")
		Expect(environ.StartOperator()).To(Succeed())
	})

	It("lifts the freeze when the errors stop, and the routine release goes through", func() {
		Expect(environ.SetErrorRate(0)).To(Succeed())
		Eventually(func(g Gomega) {
			s := getSLO(g)
			g.Expect(s.Status.Freeze.Active).To(BeFalse())
			g.Expect(s.condition("Frozen")).To(Equal("False"))
			var err error
			liveLifted, err = time.Parse(time.RFC3339, s.conditionTime("Frozen"))
			g.Expect(err).NotTo(HaveOccurred())
		}, 5*time.Minute).Should(Succeed())
		Eventually(func(g Gomega) {
			out, err := kubectl.Run("", "get", "deployment/checkout", "-n", shopNamespace, "-o", "jsonpath={.metadata.annotations}")
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(out).NotTo(ContainSubstring("budgetgate.dev/frozen"))
		}).Should(Succeed())
		kc("set", "image", "deployment/checkout", "app=registry.example/shop/checkout:v3")
		kc("rollout", "status", "deployment/checkout", "--timeout=120s")
	})

	It("releases the Argo Rollout once the freeze lifted", specRolloutAfterLift)

	It("replays the story with kubectl budgetgate simulate and finds the freeze the controller decided live", specSimulateStory)
})

// kc runs kubectl in the shop namespace and expects success.
func kc(args ...string) string {
	GinkgoHelper()
	out, err := kubectl.Run("", append([]string{"-n", shopNamespace}, args...)...)
	Expect(err).NotTo(HaveOccurred())
	return strings.TrimSpace(out)
}

// kcFails runs kubectl in the shop namespace, expects budgetgate to deny it, and returns the message.
func kcFails(args ...string) string {
	GinkgoHelper()
	out, err := kubectl.Run("", append([]string{"-n", shopNamespace}, args...)...)
	Expect(err).To(HaveOccurred(), "kubectl %s was admitted:\n%s", strings.Join(args, " "), out)
	Expect(out).To(ContainSubstring(`denied the request`))
	return out
}

func apply(manifest string) {
	GinkgoHelper()
	_, err := kubectl.Run(manifest, "apply", "--server-side", "--field-manager=e2e", "-f", "-")
	Expect(err).NotTo(HaveOccurred())
}

// slo is the part of a ServiceLevelObjective the specs read, as kubectl prints it.
type slo struct {
	Metadata struct {
		Generation int `json:"generation"`
	} `json:"metadata"`
	Status struct {
		ObservedGeneration int    `json:"observedGeneration"`
		GatedWorkloads     int    `json:"gatedWorkloads"`
		LastEvaluationTime string `json:"lastEvaluationTime"`
		Freeze             struct {
			Active    bool   `json:"active"`
			Rule      string `json:"rule"`
			Since     string `json:"since"`
			HoldUntil string `json:"holdUntil"`
		} `json:"freeze"`
		Conditions []struct {
			Type               string `json:"type"`
			Status             string `json:"status"`
			Reason             string `json:"reason"`
			LastTransitionTime string `json:"lastTransitionTime"`
		} `json:"conditions"`
	} `json:"status"`
}

func (s slo) condition(t string) string {
	for _, c := range s.Status.Conditions {
		if c.Type == t {
			return c.Status
		}
	}
	return "Unknown"
}

func (s slo) conditionTime(t string) string {
	for _, c := range s.Status.Conditions {
		if c.Type == t {
			return c.LastTransitionTime
		}
	}
	return ""
}

func (s slo) conditionReason(t string) string {
	for _, c := range s.Status.Conditions {
		if c.Type == t {
			return c.Reason
		}
	}
	return ""
}

func getSLO(g Gomega) slo {
	out, err := kubectl.Run("", "get", "slo/checkout-availability", "-n", shopNamespace, "-o", "json")
	g.Expect(err).NotTo(HaveOccurred())
	var s slo
	g.Expect(json.Unmarshal([]byte(out), &s)).To(Succeed())
	return s
}

func getSLOOnce() slo {
	GinkgoHelper()
	return getSLO(Default)
}
