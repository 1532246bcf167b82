// Package badinput_test is the catalogue of bad input (docs/reliability.md,
// "Bad input"): every *.yaml file in this directory holds a manifest a user
// could plausibly write wrong, the exact message the API server answers with,
// and the manifest that message tells them to write instead. The suite
// applies each through a real kube-apiserver with budgetgate's CRDs and
// validating webhooks installed, asserts the rejection (or the warning) word
// for word, and applies the fix, which must pass. A few are also applied with
// kubectl, to pin the messages as users see them.
package badinput_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"path/filepath"
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

	slov1alpha1 "github.com/budgetgate/budgetgate/api/v1alpha1"
	"github.com/budgetgate/budgetgate/internal/promconn"
	"github.com/budgetgate/budgetgate/internal/testbin"
	bgwebhook "github.com/budgetgate/budgetgate/internal/webhook"
)

var (
	ctx        context.Context
	cancel     context.CancelFunc
	testEnv    *envtest.Environment
	cfg        *rest.Config
	k8sClient  client.Client
	cache      client.Reader
	kubeconfig string
	scheme     = runtime.NewScheme()
)

func TestBadInput(t *testing.T) {
	RegisterFailHandler(Fail)
	SetDefaultEventuallyTimeout(30 * time.Second)
	SetDefaultEventuallyPollingInterval(100 * time.Millisecond)
	RunSpecs(t, "Bad input catalogue")
}

// The manager runs budgetgate's webhooks only: the catalogue is about what
// admission answers, and without controllers no finalizer holds a deleted
// object, so every entry cleans up after itself at once.
var _ = BeforeSuite(func() {
	logf.SetLogger(zap.New(zap.WriteTo(GinkgoWriter), zap.UseDevMode(true)))
	ctx, cancel = context.WithCancel(context.Background())
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(slov1alpha1.AddToScheme(scheme))

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
	// One connection, "default", as --prometheus-address makes.
	conns, err := promconn.FromAddress("http://prometheus.monitoring:9090")
	Expect(err).NotTo(HaveOccurred())
	Expect(bgwebhook.Setup(mgr, bgwebhook.Options{Connections: conns})).To(Succeed())
	cache = mgr.GetCache()
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

	kubeconfig = filepath.Join(GinkgoT().TempDir(), "kubeconfig")
	Expect(os.WriteFile(kubeconfig, testEnv.KubeConfig, 0o600)).To(Succeed())
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
