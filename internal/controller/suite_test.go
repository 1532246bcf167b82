package controller_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	clocktesting "k8s.io/utils/clock/testing"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"

	slov1alpha1 "github.com/budgetgate/budgetgate/api/v1alpha1"
	"github.com/budgetgate/budgetgate/internal/controller"
	"github.com/budgetgate/budgetgate/internal/promconn"
	"github.com/budgetgate/budgetgate/internal/sli"
	"github.com/budgetgate/budgetgate/internal/testbin"
)

// The suite runs the real manager, wired by controller.Setup exactly as in
// main.go, against a real kube-apiserver and etcd (envtest). Only the SLI source
// is scripted, and the clock is a fake one the specs step.

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
	clock     = clocktesting.NewFakeClock(time.Now().Truncate(time.Second))
	source    = newScriptedSource()
	// connections are the manager's Prometheus connections, all answered
	// by source; asked records which ones the controller asked.
	connections *promconn.Set
	asked       sync.Map
)

func TestControllers(t *testing.T) {
	RegisterFailHandler(Fail)
	SetDefaultEventuallyTimeout(30 * time.Second)
	SetDefaultEventuallyPollingInterval(100 * time.Millisecond)
	RunSpecs(t, "Controller Suite")
}

var _ = BeforeSuite(func() {
	logf.SetLogger(zap.New(zap.WriteTo(GinkgoWriter), zap.UseDevMode(true)))
	ctx, cancel = context.WithCancel(context.Background())
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(slov1alpha1.AddToScheme(scheme))
	utilruntime.Must(monitoringv1.AddToScheme(scheme))

	By("starting a kube-apiserver and etcd")
	testEnv = &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join("..", "..", "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		BinaryAssetsDirectory: envtestBinaryDir(),
	}
	var err error
	cfg, err = testEnv.Start()
	Expect(err).NotTo(HaveOccurred())
	k8sClient, err = client.New(cfg, client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())

	By("starting the manager")
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
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
		Clock:        clock,
		RequeueAfter: func(time.Duration) time.Duration { return 250 * time.Millisecond },
	})).To(Succeed())
	go func() {
		defer GinkgoRecover()
		Expect(mgr.Start(ctx)).To(Succeed())
	}()
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

// scriptedSource answers per SLO (keyed by its errors selector or query) with
// error ratios per window, or with an error.
type scriptedSource struct {
	mu      sync.Mutex
	scripts map[string]script
	calls   map[string]int
	unseen  map[string]bool
}

type script struct {
	ratios map[time.Duration]float64 // window → error ratio; missing windows have no data
	dflt   *float64                  // ratio for windows not in ratios
	events float64
	err    error
	failed []time.Duration // windows whose query fails (times out)
}

func newScriptedSource() *scriptedSource {
	return &scriptedSource{scripts: map[string]script{}, calls: map[string]int{}, unseen: map[string]bool{}}
}

// failWindows scripts every window at dflt, except that the queries of failed
// windows time out.
func (s *scriptedSource) failWindows(key string, dflt float64, failed ...time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.scripts[key] = script{dflt: &dflt, events: 10000, failed: failed}
}

// noSeries makes SeriesSeen report that the key's selector never matched.
func (s *scriptedSource) noSeries(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.unseen[key] = true
}

// SeriesSeen implements sli.SeriesChecker.
func (s *scriptedSource) SeriesSeen(_ context.Context, selector string, _ time.Duration) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.unseen[selector], nil
}

func keyOf(ind sli.Indicator) string {
	switch {
	case ind.Ratio != nil:
		return ind.Ratio.Errors
	case ind.Latency != nil:
		return ind.Latency.Success
	}
	return ind.Query
}

// set scripts the key: every window at ratio dflt, except those in overrides.
func (s *scriptedSource) set(key string, dflt float64, overrides map[time.Duration]float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.scripts[key] = script{ratios: overrides, dflt: &dflt, events: 10000}
}

func (s *scriptedSource) fail(key string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.scripts[key] = script{err: err}
}

func (s *scriptedSource) Measure(_ context.Context, ind sli.Indicator, windows []time.Duration) (map[time.Duration]sli.Result, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := keyOf(ind)
	s.calls[key]++
	sc, ok := s.scripts[key]
	if !ok {
		return nil, nil
	}
	if sc.err != nil {
		return nil, sc.err
	}
	out := map[time.Duration]sli.Result{}
	var errs []error
	for _, w := range windows {
		if slices.Contains(sc.failed, w) {
			errs = append(errs, &sli.QueryError{Window: w, Query: "scripted", Err: context.DeadlineExceeded})
			continue
		}
		if r, ok := sc.ratios[w]; ok {
			out[w] = sli.Result{ErrorRatio: r, Events: sc.events}
		} else if sc.dflt != nil {
			out[w] = sli.Result{ErrorRatio: *sc.dflt, Events: sc.events}
		}
	}
	return out, errors.Join(errs...)
}

// newNamespace creates a namespace for one spec.
func newNamespace() string {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "bg-"}}
	Expect(k8sClient.Create(ctx, ns)).To(Succeed())
	return ns.Name
}

// eventsFor lists the reasons of the Events regarding an object, sorted.
func eventsFor(g Gomega, namespace, name string) []string {
	list := &corev1.EventList{}
	g.Expect(k8sClient.List(ctx, list, client.InNamespace(namespace))).To(Succeed())
	var reasons []string
	for _, e := range list.Items {
		if e.InvolvedObject.Name == name {
			reasons = append(reasons, e.Reason)
		}
	}
	slices.Sort(reasons)
	return reasons
}

var _ = fmt.Sprintf
