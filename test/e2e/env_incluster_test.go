//go:build e2e

package e2e

import (
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"
)

// The in-cluster environments: everything runs inside the cluster. budgetgate
// is installed from dist/install.yaml with its own image, so the manager talks
// to the API server as its ServiceAccount, the API server reaches the webhook
// through its Service, and the built-in certificate rotation and leader
// election run for real; Prometheus (monitoring/prometheus, Service
// prometheus-operated) and the demo checkout service (demo/checkout-traffic)
// come from test/demo/kind (test/demo/real on the real node). Stopping and
// starting means scaling their Deployments.
//
//   - E2E_CLUSTER=real: the local cluster with a real node (hack/real.sh e2e;
//     docs/real-node.md), images built without Docker and loaded into its
//     containerd.
//   - E2E_CLUSTER=kind: a kind cluster (hack/kind.sh e2e; docs/kind.md).
//     NOTE: written on a machine without a Docker engine, so never run there.
const (
	inClusterManager        = "deployment/budgetgate-controller-manager"
	inClusterManagerPods    = "control-plane=controller-manager"
	inClusterPromNamespace  = "monitoring"
	inClusterPromDeployment = "deployment/prometheus"
	inClusterPromPods       = "app=prometheus"
	inClusterDemoNamespace  = "demo"
	inClusterDemoDeployment = "deployment/checkout-traffic"
	inClusterLogs           = "logs"
	// The demo service's admin endpoint through the API server's service proxy:
	// the API server reaches pod IPs, and `kubectl create --raw` POSTs.
	inClusterErrorRatePath = "/api/v1/namespaces/demo/services/checkout-traffic:http/proxy/admin/error-rate"
)

type inClusterEnv struct {
	name string
	// managerReplicas is what StartOperator scales the manager back to.
	managerReplicas string
	probe           string
}

// setupInCluster installs budgetgate, Prometheus and the demo service with
// `hack/SCRIPT install` (the same step the in-cluster demos use) and returns
// once all are Ready, the API server reaches the webhook and Prometheus
// scrapes the demo service. BeforeSuite has already validated
// dist/install.yaml with a server-side dry run and applied its CRDs and RBAC.
// With E2E_INSTALLED_BY=helm the chart is already installed (hack/real.sh
// helm): it only waits until the API server reaches the webhook.
func setupInCluster(name, script string, extraEnv ...string) *inClusterEnv {
	e := &inClusterEnv{name: name, managerReplicas: "2", probe: filepath.Join(root, "test", "demo", "kind", "webhook-probe.yaml")}
	switch by := installedBy(); by {
	case "":
	case "helm":
		ginkgo.By(fmt.Sprintf("checking budgetgate as the Helm chart installed it in the %s cluster (hack/%s helm)", name, script))
		gomega.Expect(e.waitWebhook(2 * time.Minute)).To(gomega.Succeed())
		return e
	default:
		ginkgo.Fail(fmt.Sprintf("E2E_INSTALLED_BY=%q: want empty (the suite installs dist/install.yaml) or helm", by))
	}
	ginkgo.By(fmt.Sprintf("installing budgetgate from its installer, Prometheus and the demo checkout service in the %s cluster", name))
	cmd := exec.Command(filepath.Join(root, "hack", script), "install")
	cmd.Dir = root
	cmd.Env = append(append(os.Environ(),
		"INSTALL_YAML="+env("E2E_INSTALL_YAML", filepath.Join(root, "dist", "install.yaml"))), extraEnv...)
	cmd.Stdout, cmd.Stderr = ginkgo.GinkgoWriter, ginkgo.GinkgoWriter
	gomega.Expect(cmd.Run()).To(gomega.Succeed(), "hack/%s install failed; its output is above", script)
	return e
}

func setupKind() *inClusterEnv {
	return setupInCluster("kind", "kind.sh", "KIND_KUBECONFIG="+kubectl.Kubeconfig, "KIND_KUBECTL="+kubectl.Path)
}

func setupReal() *inClusterEnv { return setupInCluster("real-node", "real.sh") }

// scaleTo scales a Deployment; with 0 it waits until its pods are gone, else
// until every replica is Ready.
func scaleTo(namespace, deployment, selector, replicas string) error {
	if out, err := kubectl.Run("", "-n", namespace, "scale", deployment, "--replicas="+replicas); err != nil {
		return fmt.Errorf("scaling %s/%s to %s: %w\n%s", namespace, deployment, replicas, err, out)
	}
	if replicas == "0" {
		out, err := kubectl.Run("", "-n", namespace, "wait", "--for=delete", "pod", "-l", selector, "--timeout=120s")
		if err != nil {
			return fmt.Errorf("waiting for the pods of %s/%s to go: %w\n%s", namespace, deployment, err, out)
		}
		return nil
	}
	if out, err := kubectl.Run("", "-n", namespace, "rollout", "status", deployment, "--timeout=180s"); err != nil {
		pods, _ := kubectl.Run("", "-n", namespace, "get", "pods", "-l", selector, "-o", "wide")
		return fmt.Errorf("%s/%s not Ready: %w\n%s\n%s", namespace, deployment, err, out, pods)
	}
	return nil
}

func (e *inClusterEnv) StopOperator() error {
	out, err := kubectl.Run("", "-n", operatorNamespace, "get", inClusterManager, "-o", "jsonpath={.spec.replicas}")
	if r := strings.TrimSpace(out); err == nil && r != "" && r != "0" {
		e.managerReplicas = r
	}
	// Scaling to 0 bypasses the PodDisruptionBudget, as intended: the webhook
	// is really gone, and the API server's calls fail (failurePolicy: Ignore).
	return scaleTo(operatorNamespace, inClusterManager, inClusterManagerPods, "0")
}

// StartOperator scales the manager back and returns once the API server
// reaches its webhook: readiness (= the webhook server started) is not enough,
// since the Service's endpoints and kube-proxy's rules follow a little later.
func (e *inClusterEnv) StartOperator() error {
	if err := scaleTo(operatorNamespace, inClusterManager, inClusterManagerPods, e.managerReplicas); err != nil {
		return err
	}
	return e.waitWebhook(2 * time.Minute)
}

// waitWebhook waits until a server-side dry run of an ErrorBudgetPolicy passes
// three times in a row: that webhook fails closed, so each pass means the API
// server reached a replica; three in a row makes it likely each replica's
// endpoint is in place.
func (e *inClusterEnv) waitWebhook(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	passes := 0
	for {
		_, err := kubectl.Run("", "apply", "--dry-run=server", "-f", e.probe)
		if err == nil {
			passes++
			if passes == 3 {
				return nil
			}
		} else {
			passes = 0
		}
		if time.Now().After(deadline) {
			// err carries kubectl's output.
			return fmt.Errorf("the API server does not reach budgetgate's webhook after %s: %w", timeout, err)
		}
		time.Sleep(time.Second)
	}
}

// StopPrometheus scales Prometheus to 0. Its storage is an emptyDir, so
// StartPrometheus starts with no history; with a 1s scrape interval every
// window of the e2e policy has data again within seconds (DataAvailable=True
// at the next evaluation, well within the spec's 2 minutes), and the error
// rate, still set in the demo service, keeps the burn rate above the policy.
func (e *inClusterEnv) StopPrometheus() error {
	return scaleTo(inClusterPromNamespace, inClusterPromDeployment, inClusterPromPods, "0")
}

func (e *inClusterEnv) StartPrometheus() error {
	return scaleTo(inClusterPromNamespace, inClusterPromDeployment, inClusterPromPods, "1")
}

func (e *inClusterEnv) SetErrorRate(rate float64) error {
	value := strconv.FormatFloat(rate, 'g', -1, 64)
	out, err := kubectl.Run("", "create", "--raw", inClusterErrorRatePath+"?value="+url.QueryEscape(value), "-f", "-")
	if err != nil {
		return fmt.Errorf("setting the error rate through the service proxy: %w", err)
	}
	// The demo service answers with the rate now in force.
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if got, perr := strconv.ParseFloat(strings.TrimSpace(lines[len(lines)-1]), 64); perr != nil || got != rate {
		return fmt.Errorf("setting the error rate to %s: the demo service answered %q", value, out)
	}
	return nil
}

func (e *inClusterEnv) Diagnostics() string {
	var b strings.Builder
	for _, c := range []struct {
		title string
		args  []string
	}{
		{"budgetgate pods", []string{"-n", operatorNamespace, "get", "pods", "-o", "wide"}},
		{"operator log (last 80 lines of each replica)", []string{"-n", operatorNamespace, inClusterLogs, "-l", inClusterManagerPods,
			"--prefix", "--tail=80", "--max-log-requests=10"}},
		{"prometheus log (last 15 lines)", []string{"-n", inClusterPromNamespace, inClusterLogs, inClusterPromDeployment, "--tail=15"}},
		{"demo service log (last 15 lines)", []string{"-n", inClusterDemoNamespace, inClusterLogs, inClusterDemoDeployment, "--tail=15"}},
	} {
		out, err := kubectl.Run("", c.args...)
		if err != nil && out == "" {
			out = err.Error()
		}
		fmt.Fprintf(&b, "\n===== %s =====\n%s\n", c.title, out)
	}
	return b.String()
}

// Teardown leaves the cluster to hack/kind.sh e2e or hack/real.sh e2e, which
// delete it (unless KIND_KEEP=1 or REAL_KEEP=1, for looking around after a failure).
func (e *inClusterEnv) Teardown() {}
