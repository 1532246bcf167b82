// Command scale is `make bench-scale`: budgetgate at the scale of the design's
// targets on a local kwok cluster of its own — 10,000 Deployments in 100
// namespaces, 1,000 SLOs (10 per namespace, each gating a tenth of its
// namespace's workloads by a label, a tenth of them frozen) — with the manager
// running as a local process against a fake Prometheus that makes exactly the
// intended SLOs burn. It reports the manager's memory after settling, the
// reconcile rate and queue depth, the evaluation round and the Prometheus
// queries per SLO, how long one freeze takes to annotate 1,000 workloads, and
// the admission latency of a burst of pod-template updates, then writes the
// report as JSON to bin/bench/scale-TIMESTAMP.json.
//
// It refuses a cluster whose API server is not on this machine unless
// --allow-remote is given, and tears down what it started (the manager, the
// cluster if it brought it up) unless --keep is given.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	slov1alpha1 "github.com/budgetgate/budgetgate/api/v1alpha1"
	"github.com/budgetgate/budgetgate/internal/testbin"
	"github.com/budgetgate/budgetgate/test/utils"
)

type config struct {
	root, state, kubeconfig, clusterName string
	manager, localWebhook, kubectl, out  string
	nodes                                int
	layout                               layout
	fanout                               int
	observe, promDelay                   time.Duration
	admissionRates                       []float64
	admissionDuration                    time.Duration
	workers                              int
	bringUp, keep, allowRemote           bool
	timeout                              time.Duration
}

func parseFlags(args []string) (config, error) {
	fs := flag.NewFlagSet("bench-scale", flag.ContinueOnError)
	var c config
	fs.StringVar(&c.root, "root", ".", "The repository root.")
	fs.StringVar(&c.state, "state", ".cluster/scale", "State directory of the scale cluster (kwok workdir, kubeconfig, logs).")
	fs.StringVar(&c.kubeconfig, "kubeconfig", "", "Admin kubeconfig of the cluster (default STATE/kubeconfig).")
	fs.StringVar(&c.clusterName, "cluster-name", "budgetgate-scale", "kwok cluster name.")
	fs.IntVar(&c.nodes, "nodes", 3, "Fake nodes (Deployments have replicas 0: no pods need them beyond cluster-up's smoke test).")
	fs.StringVar(&c.manager, "manager", "bin/manager", "The manager binary.")
	fs.StringVar(&c.localWebhook, "local-webhook", "bin/local-webhook", "The local-webhook binary.")
	fs.StringVar(&c.kubectl, "kubectl", "", "kubectl (default bin/k8s/K8S_VERSION-OS-ARCH/kubectl, hack/versions.env).")
	fs.StringVar(&c.out, "out", "bin/bench", "Directory of the JSON report.")
	fs.IntVar(&c.layout.namespaces, "namespaces", 100, "Namespaces.")
	fs.IntVar(&c.layout.perNamespace, "deployments-per-namespace", 100, "Deployments per namespace.")
	fs.IntVar(&c.layout.slosPerNamespace, "slos-per-namespace", 10, "SLOs per namespace.")
	fs.IntVar(&c.layout.frozenEvery, "frozen-every", 10, "Every Nth SLO of a namespace burns (and freezes).")
	fs.IntVar(&c.fanout, "fanout", 1000, "Workloads of the fan-out SLO (0 skips the fan-out).")
	fs.DurationVar(&c.observe, "observe", 150*time.Second, "How long to observe evaluations after the first round (≥ one 60s interval).")
	fs.DurationVar(&c.promDelay, "prom-delay", 0, "Delay of every fake Prometheus answer (query cost).")
	rates := fs.String("admission-rate", "200", "Pod-template updates per second of the admission bursts, comma-separated for "+
		"one pair of bursts per rate, e.g. 200,50 (0 skips them).")
	fs.DurationVar(&c.admissionDuration, "admission-duration", 5*time.Second, "Length of each admission burst.")
	fs.IntVar(&c.workers, "workers", 32, "Concurrent requests when creating objects.")
	fs.BoolVar(&c.bringUp, "cluster-up", true, "Bring the kwok cluster up (hack/cluster-up.sh) when it does not answer.")
	fs.BoolVar(&c.keep, "keep", false, "Keep the cluster and everything in it (the manager still stops).")
	fs.BoolVar(&c.allowRemote, "allow-remote", false, "Run against an API server that is not on this machine.")
	fs.DurationVar(&c.timeout, "timeout", 25*time.Minute, "Give up after this long.")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	root, err := filepath.Abs(c.root)
	if err != nil {
		return c, err
	}
	c.root = root
	abs := func(p string) string {
		if filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(root, p)
	}
	c.state, c.manager, c.localWebhook, c.out = abs(c.state), abs(c.manager), abs(c.localWebhook), abs(c.out)
	if c.kubeconfig == "" {
		c.kubeconfig = filepath.Join(c.state, "kubeconfig")
	}
	c.kubeconfig = abs(c.kubeconfig)
	if c.kubectl == "" {
		if c.kubectl, err = testbin.Kubectl(); err != nil {
			return c, err
		}
	}
	c.kubectl = abs(c.kubectl)
	if c.admissionRates, err = parseRates(*rates); err != nil {
		return c, err
	}
	l := c.layout
	if l.namespaces < 1 || l.perNamespace < 1 || l.slosPerNamespace < 1 || l.frozenEvery < 0 {
		return c, errors.New("--namespaces, --deployments-per-namespace and --slos-per-namespace must be positive")
	}
	if c.observe < time.Minute {
		return c, errors.New("--observe must cover at least one 60s evaluation interval")
	}
	return c, nil
}

// bench holds one run.
type bench struct {
	cfg     config
	rep     *report
	rest    *rest.Config
	c       client.Client
	cs      kubernetes.Interface
	proto   kubernetes.Interface // protobuf, for large lists
	meta    metadata.Interface
	mgr     *managerProcess
	prom    *fakePrometheus
	started bool // the cluster was brought up by this run
}

var deploymentsGVR = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}

func main() {
	closeInheritedFiles()
	// controller-runtime's client logs the API server's warnings (deleting a
	// frozen SLO has one) through its logger.
	ctrllog.SetLogger(zap.New(zap.WriteTo(os.Stderr)))
	cfg, err := parseFlags(os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench-scale:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()

	b := &bench{cfg: cfg, rep: &report{StartedAt: time.Now()}}
	runErr := b.run(ctx)
	if runErr != nil {
		logf("FAILED: %v", runErr)
		if b.mgr != nil {
			logf("manager log: %s", b.mgr.logPath)
		}
	}
	b.teardown()
	b.rep.FinishedAt = time.Now()
	if b.rep.Manager.Proc.RSS > 0 {
		b.rep.Targets = b.rep.targets()
		b.rep.print(os.Stdout)
		if path, err := writeJSON(cfg.out, b.rep); err != nil {
			logf("writing the report: %v", err)
		} else {
			fmt.Printf("\nreport: %s\n", path)
		}
	}
	if runErr != nil {
		os.Exit(1)
	}
}

// closeInheritedFiles marks every file descriptor this process inherited
// beyond stdin, stdout and stderr close-on-exec. Under `flock LOCK make
// bench-scale` the lock's descriptor is one of them: without this, the kwok
// cluster's daemons (started through hack/cluster-up.sh) and the manager would
// inherit it and hold the lock for as long as they run (with --keep, after
// the benchmark ends).
func closeInheritedFiles() {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return
	}
	for _, e := range entries {
		if fd, err := strconv.Atoi(e.Name()); err == nil && fd > 2 {
			syscall.CloseOnExec(fd)
		}
	}
}

// parseRates reads --admission-rate: positive rates, comma-separated; "0"
// or "" for none.
func parseRates(s string) ([]float64, error) {
	var out []float64
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		v, err := strconv.ParseFloat(f, 64)
		if err != nil || v < 0 || math.IsInf(v, 0) || math.IsNaN(v) {
			return nil, fmt.Errorf("--admission-rate: %q is not a rate per second", f)
		}
		if v > 0 {
			out = append(out, v)
		}
	}
	return out, nil
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "==> %s %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

func (b *bench) run(ctx context.Context) error {
	cfg := b.cfg
	l := cfg.layout
	b.rep.Machine = utils.MachineInfo(cfg.root)
	b.rep.Config = runConfig{
		Cluster: cfg.clusterName, Nodes: cfg.nodes, Namespaces: l.namespaces, Deployments: l.workloads(), Replicas: 0,
		SLOs: l.slos(), FrozenSLOs: l.frozenSLOs(), FrozenWorkloads: l.frozenWorkloads(), FanoutWorkloads: cfg.fanout,
		EvaluationInterval: "1m", Observe: cfg.observe.String(), PromDelay: cfg.promDelay.String(),
		AdmissionRates: cfg.admissionRates, AdmissionDuration: cfg.admissionDuration.String(), ApplyWorkers: cfg.workers,
		KubeControllerArgs: strings.Join(kcmArgs, " "),
	}
	setupStart := time.Now()

	if err := b.clusterUp(ctx); err != nil {
		return err
	}

	t := time.Now()
	logf("installing budgetgate's CRDs, namespace and RBAC (dist/install.yaml)")
	if err := b.install(ctx); err != nil {
		return err
	}
	b.rep.Setup.InstallSeconds = since(t)

	if err := b.createWorkloads(ctx); err != nil {
		return err
	}
	before, err := b.apiserverWatches(ctx)
	if err != nil {
		return err
	}

	b.prom = newFakePrometheus(cfg.promDelay)
	promAddr, stopProm, err := b.prom.serve()
	if err != nil {
		return err
	}
	defer stopProm()
	for i := range l.namespaces {
		for s := range l.slosPerNamespace {
			b.prom.setBurning(sloKey(namespaceName(i), sloName(s)), l.burns(s))
		}
	}

	t = time.Now()
	logf("starting the manager (log: %s), fake Prometheus at %s", filepath.Join(cfg.state, "manager.log"), promAddr)
	if b.mgr, err = b.startManager(ctx, promAddr); err != nil {
		return err
	}
	if _, err := b.kubectl(ctx, b.mgr.webhooks, "apply", "--server-side", "--force-conflicts",
		"--field-manager="+fieldManager, "-f", "-"); err != nil {
		return err
	}
	b.rep.Setup.ManagerStartSeconds = since(t)

	if err := b.createSLOs(ctx); err != nil {
		return err
	}
	b.rep.Setup.TotalSeconds = since(setupStart)

	if err := b.observe(ctx); err != nil {
		return err
	}
	if b.rep.Manager, err = b.memory(ctx); err != nil {
		return err
	}
	after, err := b.apiserverWatches(ctx)
	if err != nil {
		return err
	}
	b.rep.Watches = watches{Before: before, After: after}
	if b.rep.CacheCost, err = b.measureCacheCost(ctx); err != nil {
		return err
	}

	if cfg.fanout > 0 {
		if err := b.fanout(ctx); err != nil {
			return err
		}
		m, err := b.memory(ctx)
		if err != nil {
			return err
		}
		b.rep.AfterFan = &m
	}
	if len(cfg.admissionRates) > 0 {
		if err := b.admissionBursts(ctx); err != nil {
			return err
		}
		m, err := b.memory(ctx)
		if err != nil {
			return err
		}
		b.rep.AfterAdmission = &m
	}
	return b.watchesOfManager(ctx)
}

// watchesOfManager stops the manager and compares the API server's open
// watches with it running and stopped: the difference is exactly what its
// caches watch. (Comparing with the count before it started would also count
// watches that kube-controller-manager's garbage collector opens on new CRDs.)
func (b *bench) watchesOfManager(ctx context.Context) error {
	b.mgr.stop()
	time.Sleep(2 * time.Second)
	stopped, err := b.apiserverWatches(ctx)
	if err != nil {
		return err
	}
	b.rep.Watches.AfterStop = stopped
	b.rep.Watches.ByManager = diffCounts(stopped, b.rep.Watches.After)
	b.rep.Watches.Description = "open WATCH requests per resource (apiserver_longrunning_requests): openedByManager = " +
		"managerSettled - managerStopped"
	return nil
}

// clusterUp makes sure the cluster answers, bringing the kwok cluster up when
// it does not, and refuses one that is not on this machine.
func (b *bench) clusterUp(ctx context.Context) error {
	t := time.Now()
	if _, err := os.Stat(b.cfg.kubeconfig); err == nil {
		if err := b.connect(); err != nil {
			return err
		}
	}
	if b.cs == nil || !b.healthy(ctx) {
		if !b.cfg.bringUp {
			return fmt.Errorf("the cluster of %s does not answer (and --cluster-up=false)", b.cfg.kubeconfig)
		}
		logf("bringing up kwok cluster %s (hack/cluster-up.sh, state %s)", b.cfg.clusterName, b.cfg.state)
		if err := b.runScript(ctx, "cluster-up.sh"); err != nil {
			return err
		}
		b.started = true
		if err := b.connect(); err != nil {
			return err
		}
	} else {
		logf("reusing the running cluster of %s", b.cfg.kubeconfig)
		b.rep.Notes = append(b.rep.Notes, "the cluster was already running: it was reused and is left running")
	}
	b.rep.Setup.ClusterStarted = b.started
	b.rep.Setup.ClusterUpSeconds = since(t)
	return b.checkCluster(ctx)
}

// checkCluster refuses a local cluster that is not this benchmark's kwok
// cluster (checkKwok), before anything is written to it.
func (b *bench) checkCluster(ctx context.Context) error {
	raw, err := clientcmd.LoadFromFile(b.cfg.kubeconfig)
	if err != nil {
		return err
	}
	nodes, err := b.cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("listing the cluster's nodes: %w", err)
	}
	fake := map[string]bool{}
	for _, n := range nodes.Items {
		_, fake[n.Name] = n.Annotations[kwokNodeAnnotation]
	}
	return checkKwok(raw.CurrentContext, b.cfg.clusterName, fake, b.cfg.allowRemote)
}

// connect loads the kubeconfig, applies the guard and makes the clients. The
// benchmark's own requests are not rate-limited on the client side: as admin
// (system:masters) the API server's priority and fairness exempts them.
func (b *bench) connect() error {
	cfg, err := clientcmd.BuildConfigFromFlags("", b.cfg.kubeconfig)
	if err != nil {
		return err
	}
	if err := checkLocal(cfg.Host, b.cfg.allowRemote); err != nil {
		return err
	}
	cfg.QPS, cfg.Burst, cfg.Timeout = -1, 0, time.Minute
	cfg.UserAgent = "budgetgate-bench-scale"
	scheme := clientgoscheme.Scheme
	if err := slov1alpha1.AddToScheme(scheme); err != nil {
		return err
	}
	if b.c, err = client.New(cfg, client.Options{Scheme: scheme}); err != nil {
		return err
	}
	if b.cs, err = kubernetes.NewForConfig(cfg); err != nil {
		return err
	}
	if b.meta, err = metadata.NewForConfig(cfg); err != nil {
		return err
	}
	pcfg := rest.CopyConfig(cfg)
	pcfg.ContentType = "application/vnd.kubernetes.protobuf"
	pcfg.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	if b.proto, err = kubernetes.NewForConfig(pcfg); err != nil {
		return err
	}
	b.rest = cfg
	return nil
}

func (b *bench) healthy(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err := b.cs.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
	return err == nil
}

// teardown stops the manager and, unless --keep, deletes the cluster this run
// brought up. A cluster that stays (--keep, or it was already running) loses
// the webhook configurations that point at the stopped manager: left behind,
// every call to them would fail, and fail open.
func (b *bench) teardown() {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if b.mgr != nil {
		logf("stopping the manager")
		b.mgr.stop()
	}
	if b.started && !b.cfg.keep {
		logf("deleting the kwok cluster %s", b.cfg.clusterName)
		if err := b.runScript(ctx, "cluster-down.sh"); err != nil {
			logf("%v", err)
		}
		return
	}
	if b.mgr != nil {
		names, err := documentNames([]byte(b.mgr.webhooks))
		if err == nil && len(names) > 0 {
			args := append([]string{"delete", "--ignore-not-found", "validatingwebhookconfiguration,mutatingwebhookconfiguration"}, names...)
			if _, err := b.kubectl(ctx, "", args...); err != nil {
				logf("%v", err)
			}
		}
	}
	if b.cfg.keep {
		logf("keeping the cluster (--keep), without budgetgate's webhooks: KUBECONFIG=%s; delete it with make bench-scale-down",
			b.cfg.kubeconfig)
	} else {
		logf("the cluster was running before: left running without budgetgate's webhooks (make bench-scale-down deletes it)")
	}
}

func since(t time.Time) float64 { return round3(time.Since(t).Seconds()) }
