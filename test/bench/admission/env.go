package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	slov1alpha1 "github.com/budgetgate/budgetgate/api/v1alpha1"
	"github.com/budgetgate/budgetgate/test/utils"
)

// operatorNamespace holds the managers' leader election Lease.
const operatorNamespace = "budgetgate-system"

// env is the benchmark's cluster side: clients, the fake Prometheus, the
// managers and the webhook configurations.
type env struct {
	root, runDir string
	kubeconfig   string
	cfg          *rest.Config
	// admin sends the load as the kubeconfig's user (the kwok admin);
	// hotfix impersonates hotfixUser.
	admin, hotfix kubernetes.Interface
	crc           client.Client
	kubectl       utils.Kubectl
	localWebhook  string
	deployments   int

	promURL  string
	prom     *http.Server
	managers []*manager
	backends []*backend
	null     *http.Server
	configs  webhookConfigs
	// applied are the webhook configurations to delete at the end.
	applied []client.Object
}

// manager is one running manager variant.
type manager struct {
	variant
	proc                                           *utils.Process
	webhookPort, metricsPort, probePort, pprofPort int
}

func (m *manager) metricsURL() string {
	return fmt.Sprintf("http://127.0.0.1:%d/metrics", m.metricsPort)
}

// backend is what the release webhook can be pointed at: a manager variant,
// or the null webhook.
type backend struct {
	name string
	port int
	// mgr is the manager serving it; nil for the null webhook.
	mgr *manager
	// requests counts the release gate requests it has answered.
	requests func(ctx context.Context) (float64, error)
}

// gates says whether the backend decides releases (a manager does; the null
// webhook admits everything).
func (b *backend) gates() bool { return b.mgr != nil }

// warnings hands the warnings of a response to the request that got them:
// the request's context carries its collector.
type warnings struct{}

type warnKey struct{}

type warnCollector struct {
	mu   sync.Mutex
	list []string
}

func (warnings) HandleWarningHeaderWithContext(ctx context.Context, _ int, _ string, text string) {
	if c, ok := ctx.Value(warnKey{}).(*warnCollector); ok {
		c.mu.Lock()
		c.list = append(c.list, text)
		c.mu.Unlock()
	}
}

func newEnv(root, runDir, kubeconfig string, cfg *rest.Config, kubectl, localWebhook string,
	deployments int) (*env, error) {
	e := &env{root: root, runDir: runDir, kubeconfig: kubeconfig, localWebhook: localWebhook, deployments: deployments,
		kubectl: utils.Kubectl{Path: kubectl, Kubeconfig: kubeconfig}}
	cfg = rest.CopyConfig(cfg)
	// No client-side rate limit: the pacer sets the rate. Answers in
	// protobuf, which costs this process (sharing the cores with the
	// cluster) less to decode than JSON.
	cfg.QPS, cfg.Burst = -1, 0
	cfg.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	cfg.WarningHandlerWithContext = warnings{}
	cfg.Timeout = 30 * time.Second
	e.cfg = cfg
	var err error
	if e.admin, err = kubernetes.NewForConfig(cfg); err != nil {
		return nil, err
	}
	hot := rest.CopyConfig(cfg)
	hot.Impersonate = rest.ImpersonationConfig{UserName: hotfixUser, Groups: []string{"system:authenticated"}}
	if e.hotfix, err = kubernetes.NewForConfig(hot); err != nil {
		return nil, err
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, err
	}
	if err := slov1alpha1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	if e.crc, err = client.New(cfg, client.Options{Scheme: scheme}); err != nil {
		return nil, err
	}
	return e, nil
}

// nodes reports the cluster's nodes and whether kwok runs each.
func (e *env) nodes(ctx context.Context) (map[string]bool, error) {
	list, err := e.admin.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, n := range list.Items {
		out[n.Name] = n.Annotations[kwokNodeAnnotation] == "fake"
	}
	return out, nil
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "==> "+format+"\n", args...)
}

// setupCluster makes the benchmark's objects afresh: namespaces, budgetgate's
// CRDs and release-during-freeze ClusterRole, the hotfix user's bindings, and
// the Deployments, each with two earlier releases in its history and then
// paused.
//
// Paused, because the benchmark measures admission: a paused Deployment's new
// template makes no new ReplicaSet, so 200 updates a second do not also make
// kube-controller-manager create and delete 200 ReplicaSets a second (and
// call the history gate for each) on the same two cores. The admission path
// does not look at spec.paused.
func (e *env) setupCluster(ctx context.Context) error {
	// A previous run's namespaces, kept (--keep-objects) or left by a run
	// that was killed: no manager runs now to release its SLOs' finalizers,
	// so drop them; the namespaces go with everything in them.
	for _, ns := range []string{nsOpen, nsFrozen} {
		slos := &slov1alpha1.ServiceLevelObjectiveList{}
		if err := e.crc.List(ctx, slos, client.InNamespace(ns)); err != nil && !meta.IsNoMatchError(err) {
			return err
		}
		for i := range slos.Items {
			noFinalizers := client.RawPatch(types.MergePatchType, []byte(`{"metadata":{"finalizers":null}}`))
			if err := e.crc.Patch(ctx, &slos.Items[i], noFinalizers); err != nil && !apierrors.IsNotFound(err) {
				return err
			}
		}
		err := e.admin.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return err
		}
	}
	if err := e.waitNamespacesGone(ctx); err != nil {
		return err
	}
	for _, ns := range []string{operatorNamespace, nsOpen, nsFrozen} {
		obj := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}
		_, err := e.admin.CoreV1().Namespaces().Create(ctx, obj, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return err
		}
	}

	logf("installing budgetgate's CRDs and the release-during-freeze ClusterRole")
	if out, err := e.kubectl.Run("", "apply", "--server-side", "--force-conflicts",
		"-f", filepath.Join(e.root, "config", "crd", "bases"),
		"-f", filepath.Join(e.root, "config", "rbac", "release_during_freeze_role.yaml")); err != nil {
		return fmt.Errorf("%w: %s", err, out)
	}
	if out, err := e.kubectl.Run("", "wait", "--for=condition=Established", "--timeout=60s",
		"crd/servicelevelobjectives.slo.budgetgate.dev", "crd/errorbudgetpolicies.slo.budgetgate.dev",
		"crd/freezeexceptions.slo.budgetgate.dev"); err != nil {
		return fmt.Errorf("%w: %s", err, out)
	}
	for _, role := range []string{"edit", "release-during-freeze"} {
		rb := &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: "hotfixer-" + role, Namespace: nsFrozen},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
			Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: hotfixUser}},
		}
		if _, err := e.admin.RbacV1().RoleBindings(nsFrozen).Create(ctx, rb, metav1.CreateOptions{}); err != nil {
			return err
		}
	}

	logf("creating %d Deployments in each of %s and %s, each with two releases in its history",
		e.deployments, nsOpen, nsFrozen)
	for _, ns := range []string{nsOpen, nsFrozen} {
		for i := range e.deployments {
			d := deployment(ns, i, podTemplate(i, historyImages[0], nil))
			if _, err := e.admin.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
				return err
			}
		}
	}
	if err := e.waitHistory(ctx, 1); err != nil {
		return err
	}
	for _, ns := range []string{nsOpen, nsFrozen} {
		for i := range e.deployments {
			body, err := templatePatch(podTemplate(i, historyImages[1], nil))
			if err != nil {
				return err
			}
			_, err = e.admin.AppsV1().Deployments(ns).Patch(ctx, depName(i), types.JSONPatchType, body, metav1.PatchOptions{})
			if err != nil {
				return err
			}
		}
	}
	if err := e.waitHistory(ctx, 2); err != nil {
		return err
	}
	for _, ns := range []string{nsOpen, nsFrozen} {
		for i := range e.deployments {
			if _, err := e.admin.AppsV1().Deployments(ns).Patch(ctx, depName(i), types.MergePatchType,
				[]byte(`{"spec":{"paused":true}}`), metav1.PatchOptions{}); err != nil {
				return err
			}
		}
	}
	return nil
}

// waitHistory waits until every Deployment controls n ReplicaSets.
func (e *env) waitHistory(ctx context.Context, n int) error {
	what := fmt.Sprintf("kube-controller-manager to write %d ReplicaSets per Deployment", n)
	return utils.Poll(ctx, 3*time.Minute, time.Second, what,
		func(ctx context.Context) (bool, error) {
			for _, ns := range []string{nsOpen, nsFrozen} {
				list, err := e.admin.AppsV1().ReplicaSets(ns).List(ctx, metav1.ListOptions{})
				if err != nil {
					return false, err
				}
				owned := map[string]int{}
				for _, rs := range list.Items {
					if ref := metav1.GetControllerOf(&rs); ref != nil {
						owned[ref.Name]++
					}
				}
				for i := range e.deployments {
					if owned[depName(i)] < n {
						return false, nil
					}
				}
			}
			return true, nil
		})
}

// startPrometheus serves a fake Prometheus query API: every query of the
// frozen namespace's SLO answers an error ratio of 0.5 (a burn rate of 500x
// at 99.9%, frozen by the built-in policy's fast-burn rule), every other 0.
// The benchmark measures admission, not evaluation: a fake answers at once
// and costs the shared cores nothing.
func (e *env) startPrometheus() error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/api/v1/query", func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		value := "0"
		if strings.Contains(r.Form.Get("query"), nsFrozen) {
			value = "0.5"
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = fmt.Fprintf(w, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[%d,%q]}]}}`,
			time.Now().Unix(), value)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"status":"success","data":[]}`)
	})
	e.prom = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = e.prom.Serve(l) }()
	e.promURL = "http://" + l.Addr().String()
	return nil
}

// renderWebhooks makes the webhook certificate and the URL webhook
// configurations with hack/local-webhook, as the e2e suite and the demo do.
func (e *env) renderWebhooks(port int) error {
	out, err := utils.Command(e.localWebhook, "--cert-dir", filepath.Join(e.runDir, "certs"),
		"--url", fmt.Sprintf("https://127.0.0.1:%d", port),
		filepath.Join(e.root, "config", "webhook", "manifests.yaml"),
		filepath.Join(e.root, "config", "webhook", "workloads.yaml"))
	if err != nil {
		return err
	}
	e.configs, err = parseConfigs([]byte(out))
	return err
}

// startManagers runs every manager variant as a local process with its
// webhook server on 127.0.0.1, as the e2e suite does (test/utils.Process),
// with leader election on: one of them runs the controllers (the SLO
// evaluation that freezes), all of them serve the webhooks, as replicas of an
// installation do. Switching variants is then a change of the webhook URL,
// with every variant's cache already warm.
func (e *env) startManagers(ctx context.Context, variants []variant) error {
	for _, v := range variants {
		m := &manager{variant: v}
		for _, p := range []*int{&m.webhookPort, &m.metricsPort, &m.probePort, &m.pprofPort} {
			port, err := utils.FreePort()
			if err != nil {
				return err
			}
			*p = port
		}
		if len(e.managers) == 0 {
			if err := e.renderWebhooks(m.webhookPort); err != nil {
				return fmt.Errorf("hack/local-webhook: %w", err)
			}
		}
		args := make([]string, 0, 20+len(v.Args))
		args = append(args, "--kubeconfig", e.kubeconfig,
			"--prometheus-address", e.promURL,
			"--webhook-port", strconv.Itoa(m.webhookPort), "--webhook-cert-path", filepath.Join(e.runDir, "certs"),
			"--metrics-bind-address", fmt.Sprintf("127.0.0.1:%d", m.metricsPort), "--metrics-secure=false",
			"--health-probe-bind-address", fmt.Sprintf("127.0.0.1:%d", m.probePort),
			"--pprof-bind-address", fmt.Sprintf("127.0.0.1:%d", m.pprofPort),
			"--leader-elect", "--leader-election-namespace", operatorNamespace)
		m.proc = &utils.Process{Name: "manager-" + v.Name, Path: v.Path, Args: append(args, v.Args...),
			Env:     []string{"POD_NAMESPACE=" + operatorNamespace},
			LogPath: filepath.Join(e.runDir, "manager-"+v.Name+".log")}
		logf("starting manager %s: %s %s (log %s)", v.Name, v.Path, strings.Join(v.Args, " "), m.proc.LogPath)
		if err := m.proc.Start(); err != nil {
			return err
		}
		e.managers = append(e.managers, m)
		e.backends = append(e.backends, &backend{name: v.Name, port: m.webhookPort, mgr: m,
			requests: func(ctx context.Context) (float64, error) {
				v, err := scrape(ctx, m.metricsURL(), managerSeries)
				return v["requests"], err
			}})
		ready := func(ctx context.Context) (bool, error) {
			if !m.proc.Running() {
				return false, fmt.Errorf("manager %s exited; log:\n%s", v.Name, m.proc.Tail(30))
			}
			return httpOK(ctx, fmt.Sprintf("http://127.0.0.1:%d/readyz", m.probePort)), nil
		}
		if err := utils.Poll(ctx, 2*time.Minute, 500*time.Millisecond, "manager "+v.Name+" to be ready", ready); err != nil {
			return err
		}
	}
	return nil
}

func httpOK(ctx context.Context, url string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	_ = resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// apply creates obj or replaces what is there.
func (e *env) apply(ctx context.Context, obj client.Object) error {
	existing := obj.DeepCopyObject().(client.Object)
	err := e.crc.Get(ctx, client.ObjectKeyFromObject(obj), existing)
	switch {
	case apierrors.IsNotFound(err):
		err = e.crc.Create(ctx, obj)
	case err == nil:
		obj.SetResourceVersion(existing.GetResourceVersion())
		err = e.crc.Update(ctx, obj)
	}
	if err != nil {
		return err
	}
	key := fmt.Sprintf("%T/%s", obj, obj.GetName())
	for _, a := range e.applied {
		if fmt.Sprintf("%T/%s", a, a.GetName()) == key {
			return nil
		}
	}
	e.applied = append(e.applied, obj)
	return nil
}

// installWebhooks applies every webhook configuration, calling the first
// manager; the release webhook is switched per phase (setGate).
func (e *env) installWebhooks(ctx context.Context) error {
	for _, c := range e.configs.Mutating {
		c.SetGroupVersionKind(admissionregistrationv1.SchemeGroupVersion.WithKind("MutatingWebhookConfiguration"))
		if err := e.apply(ctx, c.DeepCopy()); err != nil {
			return err
		}
	}
	for _, c := range e.configs.Validating {
		c.SetGroupVersionKind(admissionregistrationv1.SchemeGroupVersion.WithKind("ValidatingWebhookConfiguration"))
		if err := e.apply(ctx, c.DeepCopy()); err != nil {
			return err
		}
	}
	return nil
}

func (e *env) gateBase() (*admissionregistrationv1.ValidatingWebhookConfiguration, error) {
	for _, c := range e.configs.Validating {
		if c.Name == gateConfig {
			return c, nil
		}
	}
	return nil, fmt.Errorf("hack/local-webhook rendered no %s", gateConfig)
}

// startNull serves the null webhook: an AdmissionReview endpoint on
// 127.0.0.1, with the managers' certificate, that reads each review, decodes
// its envelope for the request's uid and admits it. It does what any
// webhook must and nothing more, so the release webhook pointed at it
// measures the floor: what calling a webhook costs the API server, the
// transport and this machine, before any decision.
func (e *env) startNull() error {
	certs := filepath.Join(e.runDir, "certs")
	cert, err := tls.LoadX509KeyPair(filepath.Join(certs, "tls.crt"), filepath.Join(certs, "tls.key"))
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	var served atomic.Int64
	e.null = &http.Server{
		ReadHeaderTimeout: 10 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, err := io.ReadAll(io.LimitReader(r.Body, 8<<20))
			var review struct {
				Request *struct {
					UID string `json:"uid"`
				} `json:"request"`
			}
			if err != nil || json.Unmarshal(body, &review) != nil || review.Request == nil {
				http.Error(w, "not an AdmissionReview", http.StatusBadRequest)
				return
			}
			served.Add(1)
			w.Header().Set("Content-Type", "application/json")
			_, _ = fmt.Fprintf(w, `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview",`+
				`"response":{"uid":%q,"allowed":true}}`, review.Request.UID)
		}),
	}
	// HTTP/1.1, as the managers serve by default.
	go func() {
		_ = e.null.Serve(tls.NewListener(l, &tls.Config{Certificates: []tls.Certificate{cert},
			NextProtos: []string{"http/1.1"}, MinVersion: tls.VersionTLS12}))
	}()
	e.backends = append(e.backends, &backend{name: nullWebhook, port: l.Addr().(*net.TCPAddr).Port,
		requests: func(context.Context) (float64, error) { return float64(served.Load()), nil }})
	return nil
}

// nullWebhook names the null webhook's phases.
const nullWebhook = "null"

func (e *env) backend(name string) *backend {
	for _, b := range e.backends {
		if b.name == name {
			return b
		}
	}
	return nil
}

// setGate points the release webhook at backend b, or removes it (b nil),
// and waits until the API server acts on the change: three dry-run routine
// releases in the frozen namespace in a row reach b (its request counter
// moves) and are denied (admitted by the null webhook), or, with the webhook
// removed, are admitted.
func (e *env) setGate(ctx context.Context, b *backend) error {
	base, err := e.gateBase()
	if err != nil {
		return err
	}
	port := 0
	if b != nil {
		port = b.port
	}
	cfg, err := withReleaseGate(base, port)
	if err != nil {
		return err
	}
	cfg.SetGroupVersionKind(admissionregistrationv1.SchemeGroupVersion.WithKind("ValidatingWebhookConfiguration"))
	if err := e.apply(ctx, cfg); err != nil {
		return err
	}
	what := "the release gate to be removed"
	if b != nil {
		what = "the release gate to call " + b.name
	}
	u := newUpdates(e.deployments)
	streak := 0
	return utils.Poll(ctx, time.Minute, 100*time.Millisecond, what, func(ctx context.Context) (bool, error) {
		var before float64
		if b != nil {
			if before, err = b.requests(ctx); err != nil {
				return false, err
			}
		}
		up := u.next(kindDeny, 0)
		body, err := templatePatch(up.template)
		if err != nil {
			return false, err
		}
		_, err = e.admin.AppsV1().Deployments(up.namespace).Patch(ctx, depName(up.index), types.JSONPatchType, body,
			metav1.PatchOptions{DryRun: []string{metav1.DryRunAll}})
		ok := err == nil
		if b != nil {
			if b.gates() {
				o, _ := classify(expectDeny, err, nil)
				ok = o == outcomeOK
			}
			after, rerr := b.requests(ctx)
			if rerr != nil {
				return false, rerr
			}
			ok = ok && after > before
		}
		if ok {
			streak++
		} else {
			streak = 0
		}
		return streak >= 3, nil
	})
}

// scrape reads want from a Prometheus text endpoint.
func scrape(ctx context.Context, url string, want map[string]series) (map[string]float64, error) {
	text, err := get(ctx, url)
	if err != nil {
		return nil, err
	}
	fams, err := parseText(text)
	if err != nil {
		return nil, err
	}
	return extract(fams, want), nil
}

func get(ctx context.Context, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer func() { _ = resp.Body.Close() }()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return string(data), nil
}

// apiserverRaw GETs a path of the API server (/metrics, /debug/pprof/...).
func (e *env) apiserverRaw(ctx context.Context, path string, params map[string]string) ([]byte, error) {
	req := e.admin.CoreV1().RESTClient().Get().AbsPath(path)
	for k, v := range params {
		req = req.Param(k, v)
	}
	return req.Timeout(0).DoRaw(ctx)
}

// createSLOs makes one SLO per namespace selecting its Deployments, measured
// in the fake Prometheus, and waits until the frozen namespace's is frozen
// and the other's evaluated and not frozen.
func (e *env) createSLOs(ctx context.Context) error {
	for _, ns := range []string{nsOpen, nsFrozen} {
		slo := &slov1alpha1.ServiceLevelObjective{
			ObjectMeta: metav1.ObjectMeta{Name: sloName, Namespace: ns},
			Spec: slov1alpha1.ServiceLevelObjectiveSpec{
				Target: "99.9",
				Window: "30d",
				Indicator: slov1alpha1.Indicator{Query: fmt.Sprintf(`sum(rate(bench_errors_total{namespace=%q}[$window])) / `+
					`sum(rate(bench_requests_total{namespace=%q}[$window]))`, ns, ns)},
				WorkloadSelector: &metav1.LabelSelector{MatchLabels: map[string]string{labelPartOf: partOf}},
			},
		}
		if err := e.crc.Create(ctx, slo); err != nil {
			return fmt.Errorf("creating SLO %s/bench: %w", ns, err)
		}
	}
	return utils.Poll(ctx, 2*time.Minute, time.Second, "SLO bench-frozen/bench to freeze and bench-open/bench to be evaluated",
		func(ctx context.Context) (bool, error) {
			frozen, open := &slov1alpha1.ServiceLevelObjective{}, &slov1alpha1.ServiceLevelObjective{}
			if err := e.crc.Get(ctx, types.NamespacedName{Namespace: nsFrozen, Name: sloName}, frozen); err != nil {
				return false, err
			}
			if err := e.crc.Get(ctx, types.NamespacedName{Namespace: nsOpen, Name: sloName}, open); err != nil {
				return false, err
			}
			return frozen.Status.Freeze.Active && open.Status.LastEvaluationTime != nil && !open.Status.Freeze.Active, nil
		})
}

// checkPaths sends one dry-run request of each frozen kind through the
// current gate and fails unless each gets the answer its phase expects, so
// that a broken setup stops the run before it measures the wrong thing.
func (e *env) checkPaths(ctx context.Context) error {
	u := newUpdates(e.deployments)
	for _, k := range []kind{kindDeny, kindRollback, kindExempt} {
		up := u.next(k, 0)
		o, msg := e.send(ctx, k, up, true)
		if o != outcomeOK {
			return fmt.Errorf("a dry-run %s request got %s: %s", k, o, msg)
		}
	}
	return nil
}

// send sends one update and classifies the answer.
func (e *env) send(ctx context.Context, k kind, up update, dryRun bool) (outcome, string) {
	body, err := templatePatch(up.template)
	if err != nil {
		return outcomeError, err.Error()
	}
	cs := e.admin
	if k == kindExempt {
		cs = e.hotfix
	}
	col := &warnCollector{}
	ctx = context.WithValue(ctx, warnKey{}, col)
	opts := metav1.PatchOptions{}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	_, err = cs.AppsV1().Deployments(up.namespace).Patch(ctx, depName(up.index), types.JSONPatchType, body, opts)
	col.mu.Lock()
	o, msg := classify(k.expect(), err, col.list)
	col.mu.Unlock()
	if err == nil && up.onAdmit != nil && !dryRun {
		up.onAdmit()
	}
	return o, msg
}

// cleanup deletes the benchmark's namespaces (unless keep) while the
// managers still run, so that they release their SLOs' finalizers, then stops
// the managers and the fake Prometheus and deletes the webhook configurations
// (their webhooks would point at nothing).
func (e *env) cleanup(keep bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if !keep {
		for _, ns := range []string{nsOpen, nsFrozen} {
			err := e.admin.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{})
			if err != nil && !apierrors.IsNotFound(err) {
				logf("deleting namespace %s: %v", ns, err)
			}
		}
		if err := e.waitNamespacesGone(ctx); err != nil {
			logf("%v", err)
		}
	}
	for _, obj := range slices.Backward(e.applied) {
		if err := e.crc.Delete(ctx, obj); err != nil && !apierrors.IsNotFound(err) {
			logf("deleting %s: %v", obj.GetName(), err)
		}
	}
	for _, m := range e.managers {
		if err := m.proc.Stop(); err != nil {
			logf("stopping manager %s: %v", m.Name, err)
		}
	}
	if e.prom != nil {
		_ = e.prom.Close()
	}
	if e.null != nil {
		_ = e.null.Close()
	}
}

// waitNamespacesGone waits for the benchmark's namespaces to be deleted.
func (e *env) waitNamespacesGone(ctx context.Context) error {
	gone := func(ctx context.Context) (bool, error) {
		for _, ns := range []string{nsOpen, nsFrozen} {
			if _, err := e.admin.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				return false, nil
			}
		}
		return true, nil
	}
	return utils.Poll(ctx, 3*time.Minute, time.Second, "the benchmark's namespaces to go", gone)
}
