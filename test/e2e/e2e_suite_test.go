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
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"sigs.k8s.io/yaml"

	"github.com/budgetgate/budgetgate/internal/testbin"
	"github.com/budgetgate/budgetgate/test/utils"
)

const (
	operatorNamespace = "budgetgate-system"
	serviceAccount    = "system:serviceaccount:budgetgate-system:budgetgate-controller-manager"
)

var (
	root    = projectRoot()
	state   string
	kubectl utils.Kubectl
	environ environment
)

// environment runs what the suite needs around the cluster, so that specs can
// stop and start it: the operator, Prometheus, and the demo checkout service.
type environment interface {
	StopOperator() error
	// StartOperator starts the operator and returns once its webhook serves.
	StartOperator() error
	StopPrometheus() error
	StartPrometheus() error
	// PrometheusURL is the address of a Prometheus holding the story's whole
	// history, for kubectl budgetgate simulate, or an error saying why there
	// is none.
	PrometheusURL() (string, error)
	// SetErrorRate sets the share of failing checkout requests.
	SetErrorRate(rate float64) error
	// Replicas returns the operator's replicas as they run now, or an error
	// where the suite cannot signal their processes (failover_test.go).
	Replicas() ([]replica, error)
	// RestoreReplicas brings back every replica that ended and returns once
	// all of them serve.
	RestoreReplicas() error
	// Diagnostics returns logs for a failure report.
	Diagnostics() string
	Teardown()
}

func TestE2E(t *testing.T) {
	RegisterFailHandler(Fail)
	SetDefaultEventuallyTimeout(time.Minute)
	SetDefaultEventuallyPollingInterval(time.Second)
	suite, reporter := GinkgoConfiguration()
	// E2E_FOCUS runs only the specs whose text matches (a regular expression),
	// e.g. E2E_FOCUS='freezes when|fails over|lost its lease|certificate|CA near'
	// for the failover and rotation specs and the freeze they run in. The
	// story's BeforeAll runs in any case. Not for the run against the Helm
	// release, which hack/real.sh focuses itself.
	if f := os.Getenv("E2E_FOCUS"); f != "" && installedBy() == "" {
		suite.FocusStrings = append(suite.FocusStrings, f)
	}
	RunSpecs(t, "budgetgate e2e suite", suite, reporter)
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

// installedBy is E2E_INSTALLED_BY: empty when the suite installs budgetgate
// itself (from E2E_INSTALL_YAML), "helm" when hack/real.sh helm has installed
// the chart and the suite only checks it (in-cluster environments only).
func installedBy() string { return os.Getenv("E2E_INSTALLED_BY") }

func bin(parts ...string) string { return filepath.Join(append([]string{root, "bin"}, parts...)...) }

var _ = BeforeSuite(func() {
	kubeconfig := os.Getenv("E2E_KUBECONFIG")
	Expect(kubeconfig).NotTo(BeEmpty(), "set E2E_KUBECONFIG (make test-e2e does)")
	state = env("E2E_STATE", filepath.Join(root, ".cluster", "e2e-run"))
	Expect(os.RemoveAll(state)).To(Succeed())
	Expect(os.MkdirAll(state, 0o755)).To(Succeed())
	defaultKubectl, err := testbin.Kubectl() // bin/k8s/<K8S_VERSION>-<os>-<arch>/kubectl
	Expect(err).NotTo(HaveOccurred())
	kubectl = utils.Kubectl{Path: env("E2E_KUBECTL", defaultKubectl), Kubeconfig: kubeconfig}

	if installedBy() == "" {
		By("validating dist/install.yaml against the cluster (server-side dry run)")
		install := env("E2E_INSTALL_YAML", filepath.Join(root, "dist", "install.yaml"))
		// A dry run creates nothing, so the namespaced objects need the namespace for real.
		Expect(applyKinds(install, "Namespace")).To(Succeed())
		_, err := kubectl.Run("", "apply", "--server-side", "--dry-run=server", "--field-manager=e2e", "-f", install)
		Expect(err).NotTo(HaveOccurred())

		By("installing the CRDs, the namespace and the RBAC of dist/install.yaml")
		Expect(applyKinds(install, "Namespace", "CustomResourceDefinition", "ServiceAccount",
			"ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")).To(Succeed())
	}
	_, err = kubectl.Run("", "wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
	Expect(err).NotTo(HaveOccurred())

	switch os.Getenv("E2E_CLUSTER") {
	case "kind":
		environ = setupKind()
	case "real":
		environ = setupReal()
	default:
		environ = setupLocal(kubeconfig)
	}
})

var _ = AfterSuite(func() {
	if environ != nil {
		environ.Teardown()
	}
})

// On failure: the operator's log, the Events, and a description of what the suite touched.
var _ = ReportAfterEach(func(report SpecReport) {
	if !report.Failed() {
		return
	}
	var b strings.Builder
	if environ != nil {
		b.WriteString(environ.Diagnostics())
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
	for doc := range strings.SplitSeq(string(data), "\n---") {
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
