//go:build e2e

package e2e

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/budgetgate/budgetgate/test/utils"
)

// localEnv runs the operator, Prometheus and the demo service as local
// processes next to a local (kwok) cluster whose API server can reach them.
type localEnv struct {
	operator, prometheus, demoApp *utils.Process
	demoURL                       string
	probePort                     int
}

func setupLocal(kubeconfig string) *localEnv {
	e := &localEnv{}
	var (
		operator, prometheus, demoApp *utils.Process
		demoURL                       string
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
	e.operator, e.probePort = operator, probePort
	Expect(e.StartOperator()).To(Succeed())
	_, err = kubectl.Run("", "apply", "--server-side", "--field-manager=e2e", "-f", webhooks)
	Expect(err).NotTo(HaveOccurred())
	e.prometheus, e.demoApp, e.demoURL = prometheus, demoApp, demoURL
	return e
}

func (e *localEnv) StopOperator() error   { return e.operator.Stop() }
func (e *localEnv) StopPrometheus() error { return e.prometheus.Stop() }

func (e *localEnv) StartPrometheus() error { return e.prometheus.Start() }

func (e *localEnv) StartOperator() error {
	if err := e.operator.Start(); err != nil {
		return err
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/readyz", e.probePort))
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("readyz: %s", resp.Status)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("operator not ready after 2m: %w; log:\n%s", err, e.operator.Tail(40))
		}
		time.Sleep(500 * time.Millisecond)
	}
}

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
	return fmt.Sprintf("\n===== operator log (last 80 lines) =====\n%s\n\n===== prometheus log (last 15 lines) =====\n%s\n",
		e.operator.Tail(80), e.prometheus.Tail(15))
}

func (e *localEnv) Teardown() {
	for _, p := range []*utils.Process{e.operator, e.prometheus, e.demoApp} {
		if p != nil {
			_ = p.Stop()
		}
	}
}
