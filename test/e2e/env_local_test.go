//go:build e2e

package e2e

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/budgetgate/budgetgate/test/utils"
)

// localEnv runs the operator, Prometheus and the demo service as local
// processes next to a local (kwok) cluster whose API server can reach them.
// The operator runs as two replicas with leader election, as installed: two
// manager processes, each with its own webhook server, behind a TCP proxy that
// stands in for the webhook Service (the webhook configurations' URL).
type localEnv struct {
	operators           []*localOperator
	webhookProxy        *utils.Proxy
	prometheus, demoApp *utils.Process
	demoURL, promURL    string
}

// localOperator is one manager process.
type localOperator struct {
	proc      *utils.Process
	probePort int
	// fieldManager is the name its writes carry in managedFields: the API
	// server takes it from the User-Agent, that is the program's name, so
	// each replica runs the manager under its own name (a symlink).
	fieldManager string
}

func setupLocal(kubeconfig string) *localEnv {
	e := &localEnv{}
	var (
		prometheus, demoApp *utils.Process
		demoURL             string
	)
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

	By("making the webhook certificate and URL webhook configurations the API server can call, through a proxy to both replicas")
	webhookPorts := []int{freePort(), freePort()}
	proxy, err := utils.NewProxy("127.0.0.1:0", fmt.Sprintf("127.0.0.1:%d", webhookPorts[0]), fmt.Sprintf("127.0.0.1:%d", webhookPorts[1]))
	Expect(err).NotTo(HaveOccurred())
	e.webhookProxy = proxy
	certDir := filepath.Join(state, "certs")
	out, err := run(filepath.Join(root, "bin", "local-webhook"), "--cert-dir", certDir,
		"--url", "https://"+proxy.Addr(),
		filepath.Join(root, "config", "webhook", "manifests.yaml"), filepath.Join(root, "config", "webhook", "workloads.yaml"))
	Expect(err).NotTo(HaveOccurred(), out)
	webhooks := filepath.Join(state, "webhooks.yaml")
	Expect(os.WriteFile(webhooks, []byte(out), 0o644)).To(Succeed())

	By("starting the operator as its ServiceAccount: two replicas with leader election")
	operatorKubeconfig := filepath.Join(state, "operator.kubeconfig")
	Expect(impersonatingKubeconfig(kubeconfig, operatorKubeconfig, serviceAccount,
		"system:serviceaccounts", "system:serviceaccounts:"+operatorNamespace, "system:authenticated")).To(Succeed())
	manager, err := filepath.Abs(env("E2E_MANAGER", bin("manager")))
	Expect(err).NotTo(HaveOccurred())
	for i, name := range []string{"a", "b"} {
		program := filepath.Join(state, "manager-"+name)
		Expect(os.Symlink(manager, program)).To(Succeed())
		probePort := freePort()
		e.operators = append(e.operators, &localOperator{probePort: probePort, fieldManager: "manager-" + name,
			proc: &utils.Process{Name: "operator-" + name, Path: program,
				Args: []string{"--kubeconfig", operatorKubeconfig,
					fmt.Sprintf("--prometheus-address=http://127.0.0.1:%d", promPort),
					fmt.Sprintf("--webhook-port=%d", webhookPorts[i]), "--webhook-cert-path", certDir,
					"--metrics-bind-address=0", fmt.Sprintf("--health-probe-bind-address=127.0.0.1:%d", probePort),
					"--leader-elect", "--leader-election-namespace", operatorNamespace},
				Env:     []string{"POD_NAMESPACE=" + operatorNamespace},
				LogPath: filepath.Join(state, "operator-"+name+".log")}})
	}
	Expect(e.StartOperator()).To(Succeed())
	_, err = kubectl.Run("", "apply", "--server-side", "--field-manager=e2e", "-f", webhooks)
	Expect(err).NotTo(HaveOccurred())
	e.prometheus, e.demoApp, e.demoURL = prometheus, demoApp, demoURL
	e.promURL = fmt.Sprintf("http://127.0.0.1:%d", promPort)
	return e
}

// StopOperator stops every replica (SIGTERM: each steps down, releasing the lease).
func (e *localEnv) StopOperator() error {
	var errs []error
	for _, o := range e.operators {
		errs = append(errs, o.proc.Stop())
	}
	return errors.Join(errs...)
}

func (e *localEnv) StopPrometheus() error { return e.prometheus.Stop() }

func (e *localEnv) StartPrometheus() error { return e.prometheus.Start() }

// PrometheusURL: the local Prometheus keeps its TSDB on disk across
// StopPrometheus, so it holds the whole story.
func (e *localEnv) PrometheusURL() (string, error) { return e.promURL, nil }

// StartOperator starts the replicas that are not running and returns once
// every replica is ready (its webhook serves).
func (e *localEnv) StartOperator() error {
	for _, o := range e.operators {
		if !o.proc.Running() {
			if err := o.proc.Start(); err != nil {
				return err
			}
		}
	}
	for _, o := range e.operators {
		if err := o.waitReady(2 * time.Minute); err != nil {
			return err
		}
	}
	return nil
}

func (o *localOperator) waitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/readyz", o.probePort))
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("readyz: %s", resp.Status)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %s: %w; log:\n%s", o.proc.Name, timeout, err, o.proc.Tail(40))
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// Replicas are the manager processes that run.
func (e *localEnv) Replicas() ([]replica, error) {
	var out []replica
	for _, o := range e.operators {
		if o.proc.Running() {
			out = append(out, &localReplica{o: o})
		}
	}
	return out, nil
}

// RestoreReplicas starts the replicas that ended again.
func (e *localEnv) RestoreReplicas() error { return e.StartOperator() }

// localReplica is one manager process, as it runs now.
type localReplica struct{ o *localOperator }

func (r *localReplica) Name() string { return r.o.proc.Name }

// Holds matches the identity the manager logs when it starts.
func (r *localReplica) Holds(holder string) bool {
	log, err := r.Log()
	if err != nil {
		return false
	}
	id := ""
	for _, l := range parseLog(log) {
		if l.Msg == "Running for the leader lease" {
			id = l.Identity
		}
	}
	return id != "" && id == holder
}

func (r *localReplica) Signal(sig syscall.Signal) error { return r.o.proc.Signal(sig) }

func (r *localReplica) Ended() (bool, error) { return !r.o.proc.Running(), nil }

// Log is the log of the process's last start: the Process marks each start with a line "==> ...: starting".
func (r *localReplica) Log() (string, error) {
	data, err := os.ReadFile(r.o.proc.LogPath)
	if err != nil {
		return "", err
	}
	log := string(data)
	if i := strings.LastIndex(log, "\n==> "); i >= 0 {
		log = log[i+1:]
	}
	return log, nil
}

func (r *localReplica) FieldManager() string { return r.o.fieldManager }

// OutOfService once the process has ended: the proxy sends a connection to
// the next replica when one refuses it.
func (r *localReplica) OutOfService() (bool, error) { return !r.o.proc.Running(), nil }

func (e *localEnv) SetErrorRate(rate float64) error {
	resp, err := http.Post(e.demoURL+"/admin/error-rate?value="+url.QueryEscape(fmt.Sprint(rate)), "text/plain", nil)
	if err != nil {
		return err
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("setting the error rate: %s", resp.Status)
	}
	return nil
}

func (e *localEnv) Diagnostics() string {
	var b strings.Builder
	for _, o := range e.operators {
		fmt.Fprintf(&b, "\n===== %s log (last 60 lines) =====\n%s\n", o.proc.Name, o.proc.Tail(60))
	}
	fmt.Fprintf(&b, "\n===== prometheus log (last 15 lines) =====\n%s\n", e.prometheus.Tail(15))
	return b.String()
}

func (e *localEnv) Teardown() {
	procs := []*utils.Process{e.prometheus, e.demoApp}
	for _, o := range e.operators {
		// A paused process ends on SIGTERM only once resumed.
		_ = o.proc.Signal(syscall.SIGCONT)
		procs = append(procs, o.proc)
	}
	for _, p := range procs {
		if p != nil {
			_ = p.Stop()
		}
	}
	if e.webhookProxy != nil {
		_ = e.webhookProxy.Close()
	}
}
