package webhook_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"

	slov1alpha1 "github.com/budgetgate/budgetgate/api/v1alpha1"
	"github.com/budgetgate/budgetgate/internal/controller"
	"github.com/budgetgate/budgetgate/internal/promconn"
	"github.com/budgetgate/budgetgate/internal/sli"
	"github.com/budgetgate/budgetgate/internal/testbin"
	bgwebhook "github.com/budgetgate/budgetgate/internal/webhook"
)

// The suite installs budgetgate's webhook configurations (config/webhook) into a
// real kube-apiserver and runs the real manager, controllers and webhooks
// together; only the SLI source is scripted. Freezes therefore come from the
// controller's own evaluation, and admission goes through the API server.

// testConnections: the default, another open to every namespace, and one for
// namespaces labelled tenant=b only.
const testConnections = `
connections:
- name: default
  url: http://scripted.invalid
- name: other
  url: http://other.invalid
- name: tenant-b
  url: https://mimir.invalid/prometheus
  namespace_selector: tenant=b
  http_client_config:
    http_headers:
      X-Scope-OrgID: {values: [b]}
`

var (
	ctx       context.Context
	cancel    context.CancelFunc
	testEnv   *envtest.Environment
	cfg       *rest.Config
	k8sClient client.Client
	scheme    = runtime.NewScheme()
	source    = &scriptedSource{ratios: map[string]float64{}}
	// connections are the manager's Prometheus connections, all answered
	// by source; asked records which ones the controller asked.
	connections *promconn.Set
	asked       sync.Map
)

func TestWebhooks(t *testing.T) {
	RegisterFailHandler(Fail)
	SetDefaultEventuallyTimeout(30 * time.Second)
	SetDefaultEventuallyPollingInterval(100 * time.Millisecond)
	RunSpecs(t, "Webhook Suite")
}

var _ = BeforeSuite(func() {
	logf.SetLogger(zap.New(zap.WriteTo(GinkgoWriter), zap.UseDevMode(true)))
	ctx, cancel = context.WithCancel(context.Background())
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(slov1alpha1.AddToScheme(scheme))
	utilruntime.Must(monitoringv1.AddToScheme(scheme))

	testEnv = &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join("..", "..", "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		WebhookInstallOptions: envtest.WebhookInstallOptions{Paths: []string{filepath.Join("..", "..", "config", "webhook")}},
	}
	testEnv.BinaryAssetsDirectory = envtestBinaryDir()
	var err error
	cfg, err = testEnv.Start()
	Expect(err).NotTo(HaveOccurred())
	k8sClient, err = client.New(cfg, client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())

	w := &testEnv.WebhookInstallOptions
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		WebhookServer:          webhook.NewServer(webhook.Options{Host: w.LocalServingHost, Port: w.LocalServingPort, CertDir: w.LocalServingCertDir}),
	})
	Expect(err).NotTo(HaveOccurred())
	connections, err = promconn.Parse([]byte(testConnections), "")
	Expect(err).NotTo(HaveOccurred())
	Expect(controller.Setup(ctx, mgr, controller.Config{
		Connections: connections,
		Sources: func(c *promconn.Connection) (sli.Source, error) {
			asked.Store(c.Name, true)
			return source, nil
		},
		// SLOs evaluated every hour or less often wait for real: specs use
		// them to see that a watch, not the next evaluation, re-evaluates.
		RequeueAfter: func(d time.Duration) time.Duration {
			if d >= time.Hour {
				return d
			}
			return 300 * time.Millisecond
		},
		// The manager starts without the Rollout CRD; rollout_test.go installs
		// it and waits for the controller to see it.
		KindDiscoveryInterval: 200 * time.Millisecond,
	})).To(Succeed())
	Expect(bgwebhook.Setup(mgr, bgwebhook.Options{Connections: connections})).To(Succeed())
	go func() {
		defer GinkgoRecover()
		Expect(mgr.Start(ctx)).To(Succeed())
	}()

	addr := net.JoinHostPort(w.LocalServingHost, fmt.Sprint(w.LocalServingPort))
	Eventually(func() error {
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: time.Second}, "tcp", addr, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // test dial
		if err != nil {
			return err
		}
		return conn.Close()
	}).Should(Succeed())
})

var _ = AfterSuite(func() {
	cancel()
	if testEnv != nil {
		Expect(testEnv.Stop()).To(Succeed())
	}
})

// envtestBinaryDir is where envtest starts etcd and kube-apiserver from:
// KUBEBUILDER_ASSETS when set (make test sets it), else bin/k8s/<K8S_VERSION
// of hack/versions.env>-<os>-<arch> (internal/testbin), where
// make envtest-binaries puts them.
func envtestBinaryDir() string {
	dir, err := testbin.EnvtestAssets()
	if err != nil {
		Fail(err.Error())
	}
	return dir
}

// scriptedSource answers with one error ratio per SLO (keyed by its errors
// selector) for every window.
type scriptedSource struct {
	mu     sync.Mutex
	ratios map[string]float64
}

func (s *scriptedSource) set(key string, ratio float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ratios[key] = ratio
}

func (s *scriptedSource) Measure(_ context.Context, ind sli.Indicator, windows []time.Duration) (map[time.Duration]sli.Result, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ind.Ratio == nil {
		return nil, nil
	}
	r, ok := s.ratios[ind.Ratio.Errors]
	if !ok {
		return nil, nil
	}
	out := map[time.Duration]sli.Result{}
	for _, w := range windows {
		out[w] = sli.Result{ErrorRatio: r, Events: 1000}
	}
	return out, nil
}
