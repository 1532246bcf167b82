//go:build e2e

package e2e

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// What only a cluster that runs budgetgate's own pods shows (E2E_CLUSTER=real
// or kind): the installer's Deployment, certificates, leader election,
// PodDisruptionBudget and pod security, for real. On kwok the operator is a
// local process, and these specs are skipped.
var _ = Describe("budgetgate as installed", Ordered, func() {
	BeforeAll(func() {
		if c := os.Getenv("E2E_CLUSTER"); c != "real" && c != "kind" {
			Skip("the operator runs as a local process on kwok; E2E_CLUSTER=real or kind installs it in the cluster")
		}
	})

	It("runs two Ready replicas of its own image, admitted under the restricted pod security standard", func() {
		// Whoever installed it owns the Deployment: these checks must not pass
		// on what another install method left behind.
		managedBy, err := kubectl.Run("", "-n", operatorNamespace, "get", inClusterManager, "-o",
			`jsonpath={.metadata.labels.app\.kubernetes\.io/managed-by}`)
		Expect(err).NotTo(HaveOccurred())
		if installedBy() == "helm" {
			Expect(managedBy).To(Equal("Helm"))
			Expect(kubectl.Run("", "-n", operatorNamespace, "get", inClusterManager, "-o",
				`jsonpath={.metadata.annotations.meta\.helm\.sh/release-name}`)).To(Equal("budgetgate"))
		} else {
			Expect(managedBy).To(Equal("kustomize"))
		}
		GinkgoWriter.Printf("installed by: %s\n", managedBy)
		Expect(kubectl.Run("", "get", "namespace", operatorNamespace, "-o",
			`jsonpath={.metadata.labels.pod-security\.kubernetes\.io/enforce}`)).To(Equal("restricted"))
		Eventually(func(g Gomega) {
			out, err := kubectl.Run("", "-n", operatorNamespace, "get", inClusterManager, "-o", "jsonpath={.status.readyReplicas}")
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(out).To(Equal("2"))
		}, 2*time.Minute).Should(Succeed())
		out, err := kubectl.Run("", "-n", operatorNamespace, "get", "pods", "-l", inClusterManagerPods, "-o", "wide")
		Expect(err).NotTo(HaveOccurred())
		GinkgoWriter.Printf("budgetgate's own pods:\n%s\n", out)
		images, err := kubectl.Run("", "-n", operatorNamespace, "get", "pods", "-l", inClusterManagerPods,
			"-o", "jsonpath={range .items[*]}{.status.containerStatuses[0].imageID}{\"\\n\"}{end}")
		Expect(err).NotTo(HaveOccurred())
		GinkgoWriter.Printf("running image IDs:\n%s\n", images)
	})

	It("issued its webhook certificate itself and injected the CA into all three webhook configurations", func() {
		out, err := kubectl.Run("", "-n", operatorNamespace, "get", "secret", "budgetgate-webhook-server-cert", "-o", "json")
		Expect(err).NotTo(HaveOccurred())
		var secret struct {
			Data map[string]string `json:"data"`
		}
		Expect(json.Unmarshal([]byte(out), &secret)).To(Succeed())
		for _, k := range []string{"ca.crt", "tls.crt", "tls.key"} {
			Expect(secret.Data).To(HaveKey(k))
		}
		ca := secret.Data["ca.crt"]
		for _, cfg := range []string{"validatingwebhookconfiguration/budgetgate-workload-release-gate",
			"validatingwebhookconfiguration/budgetgate-validating-webhook-configuration",
			"mutatingwebhookconfiguration/budgetgate-mutating-webhook-configuration"} {
			Eventually(func(g Gomega) {
				bundles, err := kubectl.Run("", "get", cfg, "-o", "jsonpath={range .webhooks[*]}{.clientConfig.caBundle}{\"\\n\"}{end}")
				g.Expect(err).NotTo(HaveOccurred())
				lines := strings.Fields(bundles)
				g.Expect(lines).NotTo(BeEmpty())
				for _, b := range lines {
					g.Expect(b).To(Equal(ca), "%s carries another CA than the certificate Secret", cfg)
				}
			}).Should(Succeed())
		}
		raw, err := base64.StdEncoding.DecodeString(ca)
		Expect(err).NotTo(HaveOccurred())
		Expect(string(raw)).To(ContainSubstring("BEGIN CERTIFICATE"))
	})

	It("is reached by the API server through its Service, on both replicas, with one leader", func() {
		Eventually(func(g Gomega) {
			ips, err := kubectl.Run("", "-n", operatorNamespace, "get", "endpointslices",
				"-l", "kubernetes.io/service-name=budgetgate-webhook-service",
				"-o", "jsonpath={range .items[*].endpoints[?(@.conditions.ready==true)]}{.addresses[0]}{\" \"}{end}")
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(strings.Fields(ips)).To(HaveLen(2))
		}).Should(Succeed())
		Expect(kubectl.Run("", "apply", "--dry-run=server", "-f", root+"/test/demo/kind/webhook-probe.yaml")).
			To(ContainSubstring("created (server dry run)"))
		// Eventually: a leader that ended without handing the Lease over (killed,
		// or its RBAC gone first) is replaced once the lease duration (10s) passes.
		var holder string
		Eventually(func(g Gomega) {
			var err error
			holder, err = kubectl.Run("", "-n", operatorNamespace, "get", "lease", "budgetgate.slo.budgetgate.dev", "-o", "jsonpath={.spec.holderIdentity}")
			g.Expect(err).NotTo(HaveOccurred())
			pods, err := kubectl.Run("", "-n", operatorNamespace, "get", "pods", "-l", inClusterManagerPods, "-o", "jsonpath={.items[*].metadata.name}")
			g.Expect(err).NotTo(HaveOccurred())
			leaders := 0
			for _, p := range strings.Fields(pods) {
				if strings.HasPrefix(holder, p+"_") {
					leaders++
				}
			}
			g.Expect(leaders).To(Equal(1), "lease holder %q is not exactly one of the pods %s", holder, pods)
		}, 45*time.Second, time.Second).Should(Succeed())
		GinkgoWriter.Printf("leader: %s\n", holder)
	})

	It("keeps a replica serving through a drain: the PodDisruptionBudget holds the second eviction", func() {
		node, err := kubectl.Run("", "get", "nodes", "-o", "jsonpath={.items[0].metadata.name}")
		Expect(err).NotTo(HaveOccurred())
		defer func() {
			_, err := kubectl.Run("", "uncordon", node)
			Expect(err).NotTo(HaveOccurred())
			Eventually(func(g Gomega) {
				out, err := kubectl.Run("", "-n", operatorNamespace, "get", inClusterManager, "-o", "jsonpath={.status.readyReplicas}")
				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(out).To(Equal("2"))
			}, 2*time.Minute).Should(Succeed())
		}()
		out, err := kubectl.Run("", "drain", node, "--pod-selector="+inClusterManagerPods, "--ignore-daemonsets",
			"--delete-emptydir-data", "--timeout=20s")
		Expect(err).To(HaveOccurred(), "the drain evicted every replica:\n%s", out)
		Expect(err.Error()).To(ContainSubstring("disruption budget"))
		ready, err := kubectl.Run("", "-n", operatorNamespace, "get", inClusterManager, "-o", "jsonpath={.status.readyReplicas}")
		Expect(err).NotTo(HaveOccurred())
		Expect(ready).To(Equal("1"), "one replica must keep serving while the node drains")
		Expect(kubectl.Run("", "apply", "--dry-run=server", "-f", root+"/test/demo/kind/webhook-probe.yaml")).
			To(ContainSubstring("created (server dry run)"), "the webhook answers during the drain")
	})
})
