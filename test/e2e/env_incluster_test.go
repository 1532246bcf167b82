//go:build e2e

package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
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
	inClusterWebhookService = "budgetgate-webhook-service"
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

// PrometheusURL: none. The in-cluster Prometheus keeps its TSDB in an
// emptyDir, so the story's history before StopPrometheus is gone.
func (e *inClusterEnv) PrometheusURL() (string, error) {
	return "", errors.New("the in-cluster Prometheus lost the story's history at its restart (emptyDir storage)")
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

// Replicas are the manager's pods. Signalling them means signalling their
// container's process from the node, which the suite can only do on the local
// real node: it runs on that node, as root.
func (e *inClusterEnv) Replicas() ([]replica, error) {
	if e.name != "real-node" {
		return nil, fmt.Errorf("signalling the manager's processes needs the node's process table; the %s cluster's node is not this machine", e.name)
	}
	out, err := kubectl.Run("", "-n", operatorNamespace, "get", "pods", "-l", inClusterManagerPods, "-o", "json")
	if err != nil {
		return nil, err
	}
	var pods podList
	if err := json.Unmarshal([]byte(out), &pods); err != nil {
		return nil, err
	}
	var reps []replica
	for _, p := range pods.Items {
		if c, ok := p.manager(); ok && c.State.Running != nil && p.Metadata.DeletionTimestamp == "" {
			reps = append(reps, &podReplica{pod: p.Metadata.Name, ip: p.Status.PodIP, containerID: c.ContainerID, restarts: c.RestartCount})
		}
	}
	return reps, nil
}

// RestoreReplicas waits until every replica is Ready again (the kubelet
// restarts a container that ended) and the API server reaches the webhook.
func (e *inClusterEnv) RestoreReplicas() error {
	deadline := time.Now().Add(3 * time.Minute)
	for {
		out, err := kubectl.Run("", "-n", operatorNamespace, "get", inClusterManager, "-o", "jsonpath={.status.readyReplicas}/{.spec.replicas}")
		if r := strings.Split(strings.TrimSpace(out), "/"); err == nil && len(r) == 2 && r[0] == r[1] {
			return e.waitWebhook(2 * time.Minute)
		}
		if time.Now().After(deadline) {
			pods, _ := kubectl.Run("", "-n", operatorNamespace, "get", "pods", "-o", "wide")
			return fmt.Errorf("the manager's replicas are not all Ready after 3m (ready/wanted %q): %v\n%s", out, err, pods)
		}
		time.Sleep(time.Second)
	}
}

type podList struct {
	Items []podItem `json:"items"`
}

type podItem struct {
	Metadata struct {
		Name              string `json:"name"`
		DeletionTimestamp string `json:"deletionTimestamp"`
	} `json:"metadata"`
	Status struct {
		PodIP             string            `json:"podIP"`
		ContainerStatuses []containerStatus `json:"containerStatuses"`
	} `json:"status"`
}

type containerStatus struct {
	Name         string `json:"name"`
	ContainerID  string `json:"containerID"`
	RestartCount int    `json:"restartCount"`
	Ready        bool   `json:"ready"`
	State        struct {
		Running *struct{} `json:"running"`
	} `json:"state"`
}

func (p podItem) manager() (containerStatus, bool) {
	for _, c := range p.Status.ContainerStatuses {
		if c.Name == "manager" {
			return c, true
		}
	}
	return containerStatus{}, false
}

// podReplica is one manager pod's container, as it ran when listed.
type podReplica struct {
	pod, ip, containerID string
	restarts             int
}

func (r *podReplica) Name() string { return "pod/" + r.pod }

// Holds: a pod's identity is its name (the hostname), "_", a UUID.
func (r *podReplica) Holds(holder string) bool { return strings.HasPrefix(holder, r.pod+"_") }

// Signal signals the container's processes on this node, found by the
// container's ID in their cgroup.
func (r *podReplica) Signal(sig syscall.Signal) error {
	id := r.containerID[strings.Index(r.containerID, "://")+3:]
	procs, err := filepath.Glob("/proc/[0-9]*/cgroup")
	if err != nil {
		return err
	}
	signalled := 0
	for _, f := range procs {
		data, err := os.ReadFile(f)
		if err != nil || !strings.Contains(string(data), id) {
			continue
		}
		pid, err := strconv.Atoi(filepath.Base(filepath.Dir(f)))
		if err != nil {
			continue
		}
		if err := syscall.Kill(pid, sig); err != nil {
			return fmt.Errorf("sending %s to process %d of %s: %w", sig, pid, r.Name(), err)
		}
		signalled++
	}
	if signalled == 0 {
		return fmt.Errorf("no process of container %s (%s) on this node", id, r.Name())
	}
	return nil
}

// Ended: the container the replica was listed with has stopped running (or
// been replaced, or its pod deleted). The kubelet may take a while (crash
// loop back-off) to start the next one.
func (r *podReplica) Ended() (bool, error) {
	out, err := kubectl.Run("", "-n", operatorNamespace, "get", "pod", r.pod, "--ignore-not-found", "-o", "json")
	if err != nil {
		return false, err
	}
	if strings.TrimSpace(out) == "" {
		return true, nil
	}
	var p podItem
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		return false, err
	}
	c, ok := p.manager()
	return !ok || c.ContainerID != r.containerID || c.RestartCount != r.restarts || c.State.Running == nil, nil
}

// Log is the listed container's log: the previous one once the kubelet has
// started another.
func (r *podReplica) Log() (string, error) {
	args := []string{"-n", operatorNamespace, "logs", r.pod, "-c", "manager"}
	current, err := kubectl.Run("", "-n", operatorNamespace, "get", "pod", r.pod,
		"-o", `jsonpath={.status.containerStatuses[?(@.name=="manager")].containerID}`)
	if err != nil {
		return "", err
	}
	if strings.TrimSpace(current) != r.containerID {
		args = append(args, "--previous")
	}
	return kubectl.Run("", args...)
}

// FieldManager is empty: every pod runs the same program, and writes as "manager".
func (r *podReplica) FieldManager() string { return "" }

// OutOfService once no EndpointSlice of the webhook Service lists the pod's
// IP as ready (kube-proxy then stops sending connections to it).
func (r *podReplica) OutOfService() (bool, error) {
	out, err := kubectl.Run("", "-n", operatorNamespace, "get", "endpointslices",
		"-l", "kubernetes.io/service-name="+inClusterWebhookService,
		"-o", `jsonpath={range .items[*].endpoints[*]}{.addresses[0]} {.conditions.ready}{"\n"}{end}`)
	if err != nil {
		return false, err
	}
	for line := range strings.SplitSeq(out, "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == r.ip && f[1] == "true" {
			return false, nil
		}
	}
	return true, nil
}
