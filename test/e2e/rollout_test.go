//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/budgetgate/budgetgate/test/utils"
)

// Argo Rollouts in the demo story (e2e_test.go): the real Argo Rollouts
// controller (bin/argo-rollouts, hack/argo-rollouts.sh, built from its Go
// module) runs as a local process beside the cluster, as its own
// ServiceAccount with its own ClusterRole, and rolls out a canary Rollout
// "cart" that the checkout SLO selects. Its CRDs are installed after the
// operator started, so the story also shows budgetgate picking Rollouts up
// when their CRD appears. Healthy before the freeze; during it a new image is
// denied, `kubectl argo rollouts undo` (as the plugin sends it) is admitted and
// the controller rolls it out, promote and restart pass; after the lift the
// new image goes through.

// argoRollouts is the controller process, while the story runs.
var argoRollouts *utils.Process

const argoServiceAccount = "system:serviceaccount:argo-rollouts:argo-rollouts"

func argoBin(parts ...string) string {
	return env("E2E_ARGO_ROLLOUTS", bin(append([]string{"argo-rollouts"}, parts...)...))
}

// rolloutStoryOrSkip skips where the suite does not run the operator itself:
// in-cluster environments preload only the images of the main story.
func rolloutStoryOrSkip() {
	if c := os.Getenv("E2E_CLUSTER"); c != "" {
		Skip("the Argo Rollouts story runs on the local kwok cluster (make test-e2e), not in the " + c + " environment")
	}
}

// specRolloutHealthy installs Argo Rollouts and rolls out cart:v1, then cart:v2
// through the canary's pause, before the freeze.
func specRolloutHealthy() {
	rolloutStoryOrSkip()
	By("installing Argo Rollouts' CRDs and roles, and starting its controller as its ServiceAccount")
	manifests := argoBin("manifests")
	_, err := kubectl.Run("", "apply", "--server-side", "--field-manager=e2e", "-f", filepath.Join(manifests, "crds"), "-f", filepath.Join(manifests, "role"))
	Expect(err).NotTo(HaveOccurred())
	_, err = kubectl.Run("", "wait", "--for=condition=Established", "crd", "rollouts.argoproj.io", "analysisruns.argoproj.io",
		"analysistemplates.argoproj.io", "clusteranalysistemplates.argoproj.io", "experiments.argoproj.io", "--timeout=60s")
	Expect(err).NotTo(HaveOccurred())
	apply(`
apiVersion: v1
kind: Namespace
metadata: {name: argo-rollouts}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: argo-rollouts, namespace: argo-rollouts}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: argo-rollouts}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: argo-rollouts}
subjects: [{kind: ServiceAccount, name: argo-rollouts, namespace: argo-rollouts}]
`)
	kubeconfig := filepath.Join(state, "argo-rollouts.kubeconfig")
	Expect(impersonatingKubeconfig(kubectl.Kubeconfig, kubeconfig, argoServiceAccount,
		"system:serviceaccounts", "system:serviceaccounts:argo-rollouts", "system:authenticated")).To(Succeed())
	argoRollouts = &utils.Process{Name: "argo-rollouts", Path: argoBin("rollouts-controller"),
		Args: []string{"--kubeconfig", kubeconfig, "--leader-elect=false", "--loglevel", "info",
			"--metricsPort", strconv.Itoa(freePort()), "--healthzPort", strconv.Itoa(freePort())},
		Env:     []string{"POD_NAMESPACE=argo-rollouts"},
		LogPath: filepath.Join(state, "argo-rollouts.log")}
	Expect(argoRollouts.Start()).To(Succeed())
	reportArgoOnFailure()

	By("rolling out cart:v1, a canary (50%, then a pause) the checkout SLO selects")
	apply(fmt.Sprintf(`
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: cart, namespace: %s, labels: {app.kubernetes.io/part-of: checkout}}
spec:
  replicas: 2
  revisionHistoryLimit: 5
  selector: {matchLabels: {app: cart}}
  strategy:
    canary:
      steps: [{setWeight: 50}, {pause: {}}]
  template:
    metadata: {labels: {app: cart}}
    spec: {containers: [{name: cart, image: "registry.example/shop/cart:v1"}]}
`, shopNamespace))
	waitRollout("Healthy", "registry.example/shop/cart:v1")

	By("releasing cart:v2 through the canary's pause, before the freeze")
	kc("--as=dev", "patch", "rollout/cart", "--type=json", "-p",
		`[{"op":"replace","path":"/spec/template/spec/containers/0/image","value":"registry.example/shop/cart:v2"}]`)
	waitRollout("Paused", "")
	promote()
	waitRollout("Healthy", "registry.example/shop/cart:v2")
}

// specRolloutFrozen: the freeze holds the Rollout like a Deployment.
func specRolloutFrozen() {
	rolloutStoryOrSkip()
	reportArgoOnFailure()
	Expect(argoRollouts.Running()).To(BeTrue(), "the Argo Rollouts controller ended:\n%s", argoRollouts.Tail(40))
	By("the operator found the Rollout CRD installed after it started, and marks the Rollout")
	Eventually(func(g Gomega) {
		out, err := kubectl.Run("", "get", "rollout/cart", "-n", shopNamespace, "-o", "jsonpath={.metadata.annotations}")
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(out).To(ContainSubstring(`"budgetgate.dev/frozen-by":"checkout-availability"`))
	}).Should(Succeed())

	By("kubectl argo rollouts set image is denied, pointing at kubectl argo rollouts undo")
	out := kcFails("--as=dev", "patch", "rollout/cart", "--type=json", "-p",
		`[{"op":"replace","path":"/spec/template/spec/containers/0/image","value":"registry.example/shop/cart:v3"}]`)
	Expect(out).To(ContainSubstring("Rollout " + shopNamespace + "/cart"))
	Expect(out).To(ContainSubstring("kubectl argo rollouts undo cart -n " + shopNamespace))

	By("kubectl argo rollouts undo is admitted, and the controller rolls cart:v1 out through the canary; promote passes")
	kc("--as=dev", "patch", "rollout/cart", "--type=json", "-p", undoPatch())
	waitRollout("Paused", "")
	promote()
	waitRollout("Healthy", "registry.example/shop/cart:v1")

	By("kubectl argo rollouts restart (spec.restartAt), abort and retry (status) pass")
	kc("--as=dev", "patch", "rollout/cart", "--type=merge", "-p",
		fmt.Sprintf(`{"spec":{"restartAt":%q}}`, time.Now().UTC().Format(time.RFC3339)))
	kc("--as=dev", "patch", "rollout/cart", "--subresource=status", "--type=merge", "-p", `{"status":{"abort":true}}`)
	kc("--as=dev", "patch", "rollout/cart", "--subresource=status", "--type=merge", "-p", `{"status":{"abort":false}}`)
}

// specRolloutAfterLift: once the freeze lifted, the Rollout releases again.
func specRolloutAfterLift() {
	rolloutStoryOrSkip()
	reportArgoOnFailure()
	Eventually(func(g Gomega) {
		out, err := kubectl.Run("", "get", "rollout/cart", "-n", shopNamespace, "-o", "jsonpath={.metadata.annotations}")
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(out).NotTo(ContainSubstring("budgetgate.dev/frozen"))
	}).Should(Succeed())
	kc("--as=dev", "patch", "rollout/cart", "--type=json", "-p",
		`[{"op":"replace","path":"/spec/template/spec/containers/0/image","value":"registry.example/shop/cart:v3"}]`)
	waitRollout("Paused", "")
	promote()
	waitRollout("Healthy", "registry.example/shop/cart:v3")
}

// reportArgoOnFailure adds the controller's log and the Rollout to the
// report of a failed spec.
func reportArgoOnFailure() {
	DeferCleanup(func() {
		if !CurrentSpecReport().Failed() || argoRollouts == nil {
			return
		}
		describe, _ := kubectl.Run("", "describe", "rollout/cart", "replicasets", "-l", "app=cart", "-n", shopNamespace)
		AddReportEntry("argo-rollouts", argoRollouts.Tail(60)+"\n===== kubectl describe rollout/cart, its ReplicaSets =====\n"+describe)
	})
}

// stopArgoRollouts ends the controller after the story (AfterAll).
func stopArgoRollouts() {
	if argoRollouts != nil {
		Expect(argoRollouts.Stop()).To(Succeed())
	}
}

// rolloutStatus is the part of the cart Rollout the story reads.
type rolloutStatus struct {
	Spec struct {
		Template struct {
			Spec struct {
				Containers []struct {
					Image string `json:"image"`
				} `json:"containers"`
			} `json:"spec"`
		} `json:"template"`
	} `json:"spec"`
	Status struct {
		Phase   string `json:"phase"`
		Message string `json:"message"`
	} `json:"status"`
}

// waitRollout waits for the Rollout's phase (and its template's image, when given).
func waitRollout(phase, image string) {
	GinkgoHelper()
	Eventually(func(g Gomega) {
		var r rolloutStatus
		g.Expect(json.Unmarshal([]byte(kc("get", "rollout/cart", "-o", "json")), &r)).To(Succeed())
		g.Expect(r.Status.Phase).To(Equal(phase), "message: %s", r.Status.Message)
		if image != "" {
			g.Expect(r.Spec.Template.Spec.Containers[0].Image).To(Equal(image))
		}
	}, 90*time.Second, time.Second).Should(Succeed(), func() string { return argoRollouts.Tail(30) })
}

// promote is `kubectl argo rollouts promote cart` at an indefinite pause step:
// it clears the pause conditions in status.
func promote() {
	GinkgoHelper()
	kc("--as=dev", "patch", "rollout/cart", "--subresource=status", "--type=merge", "-p", `{"status":{"pauseConditions":null}}`)
}

// undoPatch is what `kubectl argo rollouts undo cart` sends: spec.template
// replaced by the template of the ReplicaSet of the revision before the
// current one, less rollouts-pod-template-hash.
func undoPatch() string {
	GinkgoHelper()
	var list struct {
		Items []struct {
			Metadata struct {
				Annotations     map[string]string `json:"annotations"`
				OwnerReferences []struct {
					Kind string `json:"kind"`
					Name string `json:"name"`
				} `json:"ownerReferences"`
			} `json:"metadata"`
			Spec struct {
				Template map[string]any `json:"template"`
			} `json:"spec"`
		} `json:"items"`
	}
	Expect(json.Unmarshal([]byte(kc("get", "replicasets", "-l", "app=cart", "-o", "json")), &list)).To(Succeed())
	latest, previous := -1, -1
	var templates = map[int]map[string]any{}
	for _, rs := range list.Items {
		if len(rs.Metadata.OwnerReferences) == 0 || rs.Metadata.OwnerReferences[0].Kind != "Rollout" {
			continue
		}
		rev, err := strconv.Atoi(rs.Metadata.Annotations["rollout.argoproj.io/revision"])
		if err != nil {
			continue
		}
		templates[rev] = rs.Spec.Template
		switch {
		case rev > latest:
			latest, previous = rev, latest
		case rev > previous:
			previous = rev
		}
	}
	Expect(previous).To(BeNumerically(">", 0), "no revision before the current one")
	t := templates[previous]
	if md, ok := t["metadata"].(map[string]any); ok {
		if lbls, ok := md["labels"].(map[string]any); ok {
			delete(lbls, "rollouts-pod-template-hash")
		}
	}
	patch, err := json.Marshal([]any{map[string]any{"op": "replace", "path": "/spec/template", "value": t}})
	Expect(err).NotTo(HaveOccurred())
	return string(patch)
}
