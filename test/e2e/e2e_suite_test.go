//go:build e2e

// Package e2e runs budgetgate's whole loop against a real cluster: the one in
// E2E_KUBECONFIG (`make test-e2e` brings up a local kwok cluster for it). The
// suite itself runs, as local processes it can stop and restart, the demo
// checkout service, a real Prometheus scraping it every second, and the
// operator, which talks to the cluster with the credentials of its
// ServiceAccount (impersonation), so that a missing RBAC rule fails the suite.
package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"sigs.k8s.io/yaml"

	"github.com/budgetgate/budgetgate/test/utils"
)

const (
	operatorNamespace = "budgetgate-system"
	serviceAccount    = "system:serviceaccount:budgetgate-system:budgetgate-controller-manager"
)

var (
	root       = projectRoot()
	state      string
	kubectl    utils.Kubectl
	operator   *utils.Process
	prometheus *utils.Process
	demoApp    *utils.Process
	demoURL    string
)

func TestE2E(t *testing.T) {
	RegisterFailHandler(Fail)
	SetDefaultEventuallyTimeout(time.Minute)
	SetDefaultEventuallyPollingInterval(time.Second)
	RunSpecs(t, "budgetgate e2e suite")
}

func projectRoot() string {
	wd, _ := os.Getwd()
	return filepath.Clean(filepath.Join(wd, "..", ".."))
}

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func bin(parts ...string) string { return filepath.Join(append([]string{root, "bin"}, parts...)...) }

var _ = BeforeSuite(func() {
	kubeconfig := os.Getenv("E2E_KUBECONFIG")
	Expect(kubeconfig).NotTo(BeEmpty(), "set E2E_KUBECONFIG (make test-e2e does)")
	state = env("E2E_STATE", filepath.Join(root, ".cluster", "e2e-run"))
	Expect(os.RemoveAll(state)).To(Succeed())
	Expect(os.MkdirAll(state, 0o755)).To(Succeed())
	kubectl = utils.Kubectl{Path: env("E2E_KUBECTL", bin("k8s", "1.37.2-linux-amd64", "kubectl")), Kubeconfig: kubeconfig}

	By("validating dist/install.yaml against the cluster (server-side dry run)")
	install := env("E2E_INSTALL_YAML", filepath.Join(root, "dist", "install.yaml"))
	// A dry run creates nothing, so the namespaced objects need the namespace for real.
	Expect(applyKinds(install, "Namespace")).To(Succeed())
	_, err := kubectl.Run("", "apply", "--server-side", "--dry-run=server", "--field-manager=e2e", "-f", install)
	Expect(err).NotTo(HaveOccurred())

	By("installing the CRDs, the namespace and the RBAC of dist/install.yaml")
	Expect(applyKinds(install, "Namespace", "CustomResourceDefinition", "ServiceAccount",
		"ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")).To(Succeed())
	_, err = kubectl.Run("", "wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
	Expect(err).NotTo(HaveOccurred())

	By("starting the demo checkout service")
	demoPort := freePort()
	demoURL = fmt.Sprintf("http://127.0.0.1:%d", demoPort)
	demoApp = &utils.Process{Name: "demo-app", Path: env("E2E_DEMO_APP", bin("demo-app")),
		Args: []string{"--listen", fmt.Sprintf("127.0.0.1:%d", demoPort), "--rps", "50", "--error-rate", "0"}, LogPath: filepath.Join(state, "demo-app.log")}
	Expect(demoApp.Start()).To(Succeed())
	waitTCP(fmt.Sprintf("127.0.0.1:%d", demoPort))

	By("starting Prometheus, scraping the demo service every second")
	promPort := freePort()
	promConfig := filepath.Join(state, "prometheus.yml")
	Expect(os.WriteFile(promConfig, []byte(fmt.Sprintf(`global: {scrape_interval: 1s, evaluation_interval: 1s}
scrape_configs:
  - job_name: checkout
    scrape_interval: 1s
    scrape_timeout: 1s
    static_configs: [{targets: ["127.0.0.1:%d"]}]
`, demoPort)), 0o644)).To(Succeed())
	prometheus = &utils.Process{Name: "prometheus", Path: env("E2E_PROMETHEUS", bin("prometheus", "prometheus")),
		Args: []string{"--config.file=" + promConfig, "--storage.tsdb.path=" + filepath.Join(state, "prometheus-data"),
			fmt.Sprintf("--web.listen-address=127.0.0.1:%d", promPort)},
		LogPath: filepath.Join(state, "prometheus.log")}
	Expect(prometheus.Start()).To(Succeed())
	waitTCP(fmt.Sprintf("127.0.0.1:%d", promPort))

	By("making the webhook certificate and URL webhook configurations the API server can call")
	webhookPort := freePort()
	certDir := filepath.Join(state, "certs")
	out, err := run(filepath.Join(root, "bin", "local-webhook"), "--cert-dir", certDir,
		"--url", fmt.Sprintf("https://127.0.0.1:%d", webhookPort),
		filepath.Join(root, "config", "webhook", "manifests.yaml"), filepath.Join(root, "config", "webhook", "workloads.yaml"))
	Expect(err).NotTo(HaveOccurred(), out)
	webhooks := filepath.Join(state, "webhooks.yaml")
	Expect(os.WriteFile(webhooks, []byte(out), 0o644)).To(Succeed())

	By("starting the operator as its ServiceAccount")
	operatorKubeconfig := filepath.Join(state, "operator.kubeconfig")
	Expect(impersonatingKubeconfig(kubeconfig, operatorKubeconfig, serviceAccount,
		"system:serviceaccounts", "system:serviceaccounts:"+operatorNamespace, "system:authenticated")).To(Succeed())
	probePort := freePort()
	operator = &utils.Process{Name: "operator", Path: env("E2E_MANAGER", bin("manager")),
		Args: []string{"--kubeconfig", operatorKubeconfig,
			fmt.Sprintf("--prometheus-address=http://127.0.0.1:%d", promPort),
			fmt.Sprintf("--webhook-port=%d", webhookPort), "--webhook-cert-path", certDir,
			"--metrics-bind-address=0", fmt.Sprintf("--health-probe-bind-address=127.0.0.1:%d", probePort),
			"--leader-elect", "--leader-election-namespace", operatorNamespace},
		Env:     []string{"POD_NAMESPACE=" + operatorNamespace},
		LogPath: filepath.Join(state, "operator.log")}
	startOperator(probePort)
	_, err = kubectl.Run("", "apply", "--server-side", "--field-manager=e2e", "-f", webhooks)
	Expect(err).NotTo(HaveOccurred())
	operatorProbePort = probePort
})

var operatorProbePort int

// startOperator starts the operator and waits until its webhook serves (readyz).
func startOperator(probePort int) {
	Expect(operator.Start()).To(Succeed())
	Eventually(func() error {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/readyz", probePort))
		if err != nil {
			return err
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("readyz: %s", resp.Status)
		}
		return nil
	}, 2*time.Minute).Should(Succeed(), "operator not ready; log:\n%s", operator.Tail(40))
}

var _ = AfterSuite(func() {
	for _, p := range []*utils.Process{operator, prometheus, demoApp} {
		if p != nil {
			_ = p.Stop()
		}
	}
})

// On failure: the operator's log, the Events, and a description of what the suite touched.
var _ = ReportAfterEach(func(report SpecReport) {
	if !report.Failed() {
		return
	}
	var b strings.Builder
	if operator != nil {
		fmt.Fprintf(&b, "\n===== operator log (last 80 lines) =====\n%s\n", operator.Tail(80))
	}
	if prometheus != nil {
		fmt.Fprintf(&b, "\n===== prometheus log (last 15 lines) =====\n%s\n", prometheus.Tail(15))
	}
	for _, args := range [][]string{
		{"get", "events", "-n", shopNamespace, "--sort-by=.lastTimestamp"},
		{"describe", "slo", "-n", shopNamespace},
		{"describe", "deployment,statefulset", "-n", shopNamespace},
		{"get", "fex", "-n", shopNamespace, "-o", "wide"},
	} {
		out, _ := kubectl.Run("", args...)
		fmt.Fprintf(&b, "\n===== kubectl %s =====\n%s\n", strings.Join(args, " "), out)
	}
	AddReportEntry("diagnostics", b.String())
	GinkgoWriter.Print(b.String())
})

func freePort() int {
	p, err := utils.FreePort()
	Expect(err).NotTo(HaveOccurred())
	return p
}

func waitTCP(addr string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	Expect(utils.WaitForTCP(ctx, addr)).To(Succeed())
}

func run(path string, args ...string) (string, error) {
	return utils.Command(path, args...)
}

// applyKinds applies the documents of a multi-document YAML file whose kind is in kinds.
func applyKinds(file string, kinds ...string) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	want := map[string]bool{}
	for _, k := range kinds {
		want[k] = true
	}
	var keep []string
	for _, doc := range strings.Split(string(data), "\n---") {
		var meta struct {
			Kind string `json:"kind"`
		}
		if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
			return err
		}
		if want[meta.Kind] {
			keep = append(keep, strings.TrimPrefix(doc, "\n"))
		}
	}
	_, err = kubectl.Run(strings.Join(keep, "\n---\n"), "apply", "--server-side", "--field-manager=e2e", "-f", "-")
	return err
}

// impersonatingKubeconfig copies a kubeconfig, making every user impersonate user and groups.
func impersonatingKubeconfig(src, dst, user string, groups ...string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(data, &cfg); err != nil {
		return err
	}
	users, _ := cfg["users"].([]any)
	for _, u := range users {
		entry, _ := u.(map[string]any)
		info, _ := entry["user"].(map[string]any)
		if info == nil {
			continue
		}
		info["as"] = user
		gs := make([]any, 0, len(groups))
		for _, g := range groups {
			gs = append(gs, g)
		}
		info["as-groups"] = gs
	}
	out, err := yaml.Marshal(cfg)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, out, 0o600)
}
