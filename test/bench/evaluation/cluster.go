package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"

	slov1alpha1 "github.com/budgetgate/budgetgate/api/v1alpha1"
	"github.com/budgetgate/budgetgate/internal/testbin"
	"github.com/budgetgate/budgetgate/test/utils"
)

// startAPIServer starts envtest's etcd and kube-apiserver with budgetgate's
// CRDs and the Prometheus Operator's PrometheusRule CRD (the controller
// writes PrometheusRules only where the cluster serves them), and writes an
// admin kubeconfig for the manager.
func (b *bench) startAPIServer() error {
	assets, err := testbin.EnvtestAssets()
	if err != nil {
		return err
	}
	b.env = &envtest.Environment{
		CRDDirectoryPaths: []string{
			filepath.Join(b.cfg.root, "config", "crd", "bases"),
			filepath.Join(b.cfg.root, "test", "crds", "prometheus-operator"),
		},
		ErrorIfCRDPathMissing: true,
		BinaryAssetsDirectory: assets,
	}
	cfg, err := b.env.Start()
	if err != nil {
		return fmt.Errorf("starting envtest's kube-apiserver and etcd (binaries from %s): %w", assets, err)
	}
	cfg.QPS, cfg.Burst, cfg.Timeout = -1, 0, time.Minute
	b.rest = cfg
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, slov1alpha1.AddToScheme, monitoringv1.AddToScheme} {
		if err := add(scheme); err != nil {
			return err
		}
	}
	if b.c, err = client.NewWithWatch(cfg, client.Options{Scheme: scheme}); err != nil {
		return err
	}
	return writeKubeconfig(cfg, b.kubeconfig())
}

func (b *bench) kubeconfig() string { return filepath.Join(b.cfg.state, "kubeconfig") }

func writeKubeconfig(cfg *rest.Config, path string) error {
	kc := clientcmdapi.NewConfig()
	kc.Clusters["envtest"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos["admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData, Token: cfg.BearerToken}
	kc.Contexts["envtest"] = &clientcmdapi.Context{Cluster: "envtest", AuthInfo: "admin"}
	kc.CurrentContext = "envtest"
	return clientcmd.WriteToFile(*kc, path)
}

// managerProcess is bin/manager run as a local process.
type managerProcess struct {
	cmd                  *exec.Cmd
	done                 chan struct{}
	metricsURL, readyURL string
	logPath              string
}

// startManager runs the manager built from ./cmd with the admin kubeconfig,
// measuring in the benchmark's Prometheus, its webhook server off (nothing
// is admitted here) and its metrics on plain HTTP.
func (b *bench) startManager(ctx context.Context) error {
	ports := make([]int, 2)
	for i := range ports {
		p, err := utils.FreePort()
		if err != nil {
			return err
		}
		ports[i] = p
	}
	m := &managerProcess{
		metricsURL: fmt.Sprintf("http://127.0.0.1:%d/metrics", ports[0]),
		readyURL:   fmt.Sprintf("http://127.0.0.1:%d/readyz", ports[1]),
		logPath:    filepath.Join(b.cfg.state, "manager.log"),
	}
	log, err := os.Create(m.logPath)
	if err != nil {
		return err
	}
	m.cmd = exec.Command(b.cfg.manager,
		"--kubeconfig", b.kubeconfig(),
		"--prometheus-address="+b.prom.URL,
		"--webhook-port=-1",
		fmt.Sprintf("--metrics-bind-address=127.0.0.1:%d", ports[0]), "--metrics-secure=false",
		fmt.Sprintf("--health-probe-bind-address=127.0.0.1:%d", ports[1]))
	m.cmd.Stdout, m.cmd.Stderr = log, log
	m.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := m.cmd.Start(); err != nil {
		_ = log.Close()
		return fmt.Errorf("starting %s: %w", b.cfg.manager, err)
	}
	m.done = make(chan struct{})
	go func() {
		_ = m.cmd.Wait()
		_ = log.Close()
		close(m.done)
	}()
	b.mgr = m
	return utils.Poll(ctx, 2*time.Minute, 500*time.Millisecond, "the manager to be ready", func(ctx context.Context) (bool, error) {
		select {
		case <-m.done:
			return false, fmt.Errorf("the manager exited; see %s", m.logPath)
		default:
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.readyURL, nil)
		if err != nil {
			return false, err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
}

// stop sends SIGTERM to the manager's process group, then SIGKILL after 15s.
func (m *managerProcess) stop() {
	if m == nil || m.cmd == nil || m.cmd.Process == nil {
		return
	}
	select {
	case <-m.done:
		return
	default:
	}
	_ = syscall.Kill(-m.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-m.done:
	case <-time.After(15 * time.Second):
		_ = syscall.Kill(-m.cmd.Process.Pid, syscall.SIGKILL)
		<-m.done
	}
}

// policyName: SLOs without a policyRef use the policy named "default".
const policyName = "default"

// createPolicy creates the built-in policy as written out in
// config/samples (the SRE Workbook's rules), with alerting off.
func (b *bench) createPolicy(ctx context.Context) error {
	data, err := os.ReadFile(filepath.Join(b.cfg.root, "config", "samples", "slo_v1alpha1_errorbudgetpolicy.yaml"))
	if err != nil {
		return err
	}
	pol := &slov1alpha1.ErrorBudgetPolicy{}
	if err := yaml.UnmarshalStrict(data, pol); err != nil {
		return fmt.Errorf("config/samples/slo_v1alpha1_errorbudgetpolicy.yaml: %w", err)
	}
	if pol.Name != policyName {
		return fmt.Errorf("the sample policy is %q, want %q", pol.Name, policyName)
	}
	pol.Spec.Alerting = &slov1alpha1.PolicyAlerting{Enabled: false}
	return b.c.Create(ctx, pol)
}

// setAlerting turns the policy's alerting on or off: every SLO under it gets
// its PrometheusRule written, or deleted.
func (b *bench) setAlerting(ctx context.Context, on bool) error {
	pol := &slov1alpha1.ErrorBudgetPolicy{ObjectMeta: metav1.ObjectMeta{Name: policyName}}
	patch := fmt.Sprintf(`{"spec":{"alerting":{"enabled":%t}}}`, on)
	return b.c.Patch(ctx, pol, client.RawPatch(types.MergePatchType, []byte(patch)))
}

// sloObject is service i's SLO: 99.9% of requests without a 5xx over the
// window (7d by default), evaluated every interval, gating the workloads named like the
// service (none exist: the evaluation still lists them).
func sloObject(i int, c config) *slov1alpha1.ServiceLevelObjective {
	svc := serviceName(i)
	return &slov1alpha1.ServiceLevelObjective{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespaceName(i), Name: svc},
		Spec: slov1alpha1.ServiceLevelObjectiveSpec{
			Target: "99.9", Window: slov1alpha1.Duration(c.window), EvaluationInterval: slov1alpha1.Duration(durationString(c.interval)),
			Indicator: slov1alpha1.Indicator{Ratio: &slov1alpha1.RatioIndicator{
				Errors: fmt.Sprintf(`%s{service=%q,code=~"5.."}`, metricName, svc),
				Total:  fmt.Sprintf(`%s{service=%q}`, metricName, svc),
			}},
			WorkloadSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app.kubernetes.io/name": svc}},
		},
	}
}

// createSLOs creates the namespaces and the SLOs, workers at a time.
func (b *bench) createSLOs(ctx context.Context) error {
	for ns := 0; ns*slosPerNamespace < b.cfg.slos; ns++ {
		obj := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespaceName(ns * slosPerNamespace),
			Labels: map[string]string{"bench.budgetgate.dev/evaluation": "true"}}}
		if err := b.c.Create(ctx, obj); err != nil && !apierrors.IsAlreadyExists(err) {
			return err
		}
	}
	return parallel(ctx, b.cfg.slos, 16, func(ctx context.Context, i int) error {
		return b.c.Create(ctx, sloObject(i, b.cfg))
	})
}

// parallel runs fn for 0..n-1, workers at a time, and returns the first error.
func parallel(ctx context.Context, n, workers int, fn func(context.Context, int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	next := make(chan int)
	for range workers {
		wg.Go(func() {
			for i := range next {
				if err := fn(ctx, i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
						cancel()
					}
					mu.Unlock()
				}
			}
		})
	}
	for i := range n {
		select {
		case next <- i:
		case <-ctx.Done():
		}
	}
	close(next)
	wg.Wait()
	return first
}

// listSLOs reads every SLO from the API server.
func (b *bench) listSLOs(ctx context.Context) ([]slov1alpha1.ServiceLevelObjective, error) {
	list := &slov1alpha1.ServiceLevelObjectiveList{}
	if err := b.c.List(ctx, list); err != nil {
		return nil, err
	}
	return list.Items, nil
}

// waitSLOs polls every SLO until ok holds for all of them, and says how
// many did not at the end of a timeout.
// Each round first runs every, if given.
func (b *bench) waitSLOs(ctx context.Context, timeout time.Duration, what string,
	ok func(*slov1alpha1.ServiceLevelObjective) bool, every ...func(context.Context) error) error {
	var pending int
	var example string
	err := utils.Poll(ctx, timeout, 3*time.Second, what, func(ctx context.Context) (bool, error) {
		for _, f := range every {
			if err := f(ctx); err != nil {
				return false, err
			}
		}
		slos, err := b.listSLOs(ctx)
		if err != nil {
			return false, err
		}
		pending, example = 0, ""
		for i := range slos {
			if !ok(&slos[i]) {
				pending++
				if example == "" {
					example = describe(&slos[i])
				}
			}
		}
		return len(slos) == b.cfg.slos && pending == 0, nil
	})
	if err != nil {
		return fmt.Errorf("%w (%d SLOs not there yet, e.g. %s)", err, pending, example)
	}
	return nil
}

func describe(slo *slov1alpha1.ServiceLevelObjective) string {
	st := slo.Status
	s := slo.Namespace + "/" + slo.Name
	if st.LastEvaluationTime != nil {
		s += " evaluated " + st.LastEvaluationTime.UTC().Format(time.RFC3339)
	}
	if st.SLISource != nil {
		s += fmt.Sprintf(", %d queries, recorded %v, raw %v (%s)", st.SLISource.Queries, st.SLISource.Recorded, st.SLISource.Raw, st.SLISource.Message)
	}
	if st.PrometheusRule != nil && st.PrometheusRule.RecordingSince != nil {
		s += ", recording since " + st.PrometheusRule.RecordingSince.UTC().Format(time.RFC3339)
	}
	return s
}

// seedRecordingSince tells every SLO that its recorded series go back to
// since: status.prometheusRule.recordingSince, which the controller sets to
// when it first wrote the rules and keeps while the recording hash stays.
// The benchmark backfilled the base-window counts for the whole SLO window
// (promtool tsdb create-blocks-from rules), which the controller cannot
// know; this is the one place it is told, through the status an operator
// with rights on the status subresource could write too. The controller is
// not changed. It returns how many SLOs it patched, and fails for an SLO
// whose recording hash is not the one the benchmark's rule file records.
func (b *bench) seedRecordingSince(ctx context.Context, since time.Time, hashes map[string]string) (int, error) {
	slos, err := b.listSLOs(ctx)
	if err != nil {
		return 0, err
	}
	patch := fmt.Sprintf(`{"status":{"prometheusRule":{"recordingSince":%q}}}`, since.UTC().Format(time.RFC3339))
	var todo []*slov1alpha1.ServiceLevelObjective
	for i := range slos {
		slo := &slos[i]
		pr := slo.Status.PrometheusRule
		if pr == nil || pr.RecordingSince == nil {
			continue // not written yet: next round
		}
		key := slo.Namespace + "/" + slo.Name
		if pr.RecordingHash != hashes[key] {
			return 0, fmt.Errorf("%s: recording hash %s, but the benchmark's rule file records %s", key, pr.RecordingHash, hashes[key])
		}
		if !pr.RecordingSince.After(since) {
			continue
		}
		todo = append(todo, slo)
	}
	err = parallel(ctx, len(todo), 16, func(ctx context.Context, i int) error {
		return b.c.Status().Patch(ctx, todo[i], client.RawPatch(types.MergePatchType, []byte(patch)))
	})
	return len(todo), err
}
