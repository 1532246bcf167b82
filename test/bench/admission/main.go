// Command admission measures what budgetgate's release gate adds to a
// Deployment update through a real kube-apiserver (`make bench-admission`,
// docs/performance.md "Admission through the API server").
//
// It sends pod-template updates (JSON patches of spec.template) to paused
// Deployments of the local kwok cluster, open-loop at a fixed rate from a
// number of workers, and times each request. One run alternates phases:
//
//	webhook     not frozen, the release gate installed (the allow path)
//	no-webhook  the same updates with the release webhook removed
//	deny        frozen: a routine release, denied
//	rollback    frozen: back to an earlier revision, admitted
//	exempt      frozen: a hotfix claimed by a user bound to release-during-freeze
//
// webhook and no-webhook phases alternate (ABAB…), every other round in
// reverse, so that the machine's noise hits both. With --null-webhook (on by
// default) the allow path is also measured through the null webhook, which
// admits every review without deciding: what any webhook costs, the floor
// under budgetgate's. It starts the manager
// itself (bin/bench/manager, or the variants given with --manager: all run at
// once, leader-elected, and the release webhook's URL picks the one a phase
// measures), a fake Prometheus that freezes the frozen namespace's SLO, and
// makes the webhook configurations with hack/local-webhook. It prints
// p50/p90/p99/max per phase and the webhook/no-webhook ratios, and writes them
// as JSON and a chart of the latency distributions into --out. It counts
// requests admitted that the gate should have denied (fail-open) and every
// error. --profile adds a round during which it takes CPU profiles of the
// manager and the kube-apiserver.
//
// It refuses every cluster but a local kwok cluster made by
// hack/cluster-up.sh from this repository, unless --allow-any-cluster.
//
// It lives under test/, not cmd/: it is a test harness built from the
// repository (it reuses the e2e suite's process helpers, test/utils), not a
// program budgetgate ships.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/budgetgate/budgetgate/internal/testbin"
)

// variant is a manager to measure: a name, a binary and extra flags.
type variant struct {
	Name string   `json:"name"`
	Path string   `json:"path"`
	Args []string `json:"args,omitempty"`
}

var variantName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)

// parseVariant reads "NAME=PATH [FLAG...]", e.g. "h2=bin/bench/manager
// --enable-http2".
func parseVariant(s string) (variant, error) {
	name, rest, ok := strings.Cut(s, "=")
	f := strings.Fields(rest)
	if !ok || !variantName.MatchString(name) || len(f) == 0 {
		return variant{}, fmt.Errorf("--manager %q: want NAME=PATH [FLAG...], NAME in lower case letters, digits and -", s)
	}
	v := variant{Name: name, Path: f[0]}
	if len(f) > 1 {
		v.Args = f[1:]
	}
	return v, nil
}

type variantList []variant

func (l *variantList) String() string {
	s := make([]string, 0, len(*l))
	for _, v := range *l {
		s = append(s, v.Name+"="+strings.Join(append([]string{v.Path}, v.Args...), " "))
	}
	return strings.Join(s, ", ")
}

func (l *variantList) Set(s string) error {
	v, err := parseVariant(s)
	if err != nil {
		return err
	}
	for _, o := range *l {
		if o.Name == v.Name {
			return fmt.Errorf("--manager %s given twice", v.Name)
		}
	}
	*l = append(*l, v)
	return nil
}

// options are the command's flags.
type options struct {
	Kubeconfig      string      `json:"-"`
	AllowAnyCluster bool        `json:"allowAnyCluster,omitempty"`
	Rate            float64     `json:"rate"`
	Workers         int         `json:"workers"`
	Updates         int         `json:"updatesPerPhase"`
	Warmup          int         `json:"warmupPerPhase"`
	Rounds          int         `json:"rounds"`
	Deployments     int         `json:"deploymentsPerNamespace"`
	Managers        variantList `json:"managers"`
	NullWebhook     bool        `json:"nullWebhook"`
	Profile         bool        `json:"profile"`
	Kubectl         string      `json:"-"`
	LocalWebhook    string      `json:"-"`
	Out             string      `json:"-"`
	KeepObjects     bool        `json:"-"`
}

func (o options) check() error {
	var errs []error
	if o.Rate <= 0 {
		errs = append(errs, errors.New("--rate must be positive"))
	}
	if o.Workers < 1 {
		errs = append(errs, errors.New("--workers must be at least 1"))
	}
	if o.Updates < 1 || o.Warmup < 0 || o.Rounds < 1 {
		errs = append(errs, errors.New("--updates and --rounds must be at least 1, --warmup at least 0"))
	}
	if o.Deployments <= o.Workers {
		// Request i goes to Deployment i mod n: with more Deployments than
		// workers, no two requests in flight update the same one.
		errs = append(errs, fmt.Errorf("--deployments (%d) must be more than --workers (%d)", o.Deployments, o.Workers))
	}
	if o.Kubeconfig == "" {
		errs = append(errs, errors.New("--kubeconfig is required"))
	}
	return errors.Join(errs...)
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench-admission:", err)
		os.Exit(1)
	}
}

func parseOptions(root string) (options, error) {
	var o options
	bin := func(p ...string) string { return filepath.Join(append([]string{root, "bin"}, p...)...) }
	flag.StringVar(&o.Kubeconfig, "kubeconfig", os.Getenv("KUBECONFIG"),
		"Kubeconfig of the local kwok cluster (hack/cluster-up.sh writes STATE/kubeconfig).")
	flag.BoolVar(&o.AllowAnyCluster, "allow-any-cluster", false,
		"Run against a cluster that is not a local kwok cluster of this repository.")
	flag.Float64Var(&o.Rate, "rate", 200, "Template updates per second, open-loop.")
	flag.IntVar(&o.Workers, "workers", 8, "Concurrent workers sending the updates.")
	flag.IntVar(&o.Updates, "updates", 2000, "Measured updates per phase.")
	flag.IntVar(&o.Warmup, "warmup", 200, "Updates sent and not measured at the start of each phase.")
	flag.IntVar(&o.Rounds, "rounds", 3,
		"Rounds of phases (each: webhook/no-webhook per manager, then deny, rollback, exempt).")
	flag.IntVar(&o.Deployments, "deployments", 32, "Deployments per namespace.")
	flag.Var(&o.Managers, "manager",
		"Manager variant NAME=PATH [FLAG...] (repeatable; default http1=bin/bench/manager).")
	flag.BoolVar(&o.NullWebhook, "null-webhook", true, "Also measure the allow path through the null webhook, "+
		"which admits everything without deciding: the floor of any webhook.")
	flag.BoolVar(&o.Profile, "profile", false,
		"Add a round during which CPU profiles of the manager and the kube-apiserver are taken.")
	kubectl, err := testbin.Kubectl() // bin/k8s/<K8S_VERSION of hack/versions.env>/kubectl
	if err != nil {
		kubectl = "kubectl"
	}
	flag.StringVar(&o.Kubectl, "kubectl", kubectl, "kubectl binary.")
	flag.StringVar(&o.LocalWebhook, "local-webhook", bin("bench", "local-webhook"), "hack/local-webhook binary.")
	flag.StringVar(&o.Out, "out", bin("bench"), "Directory for the JSON, the chart, profiles and logs.")
	flag.BoolVar(&o.KeepObjects, "keep-objects", false, "Leave the benchmark's namespaces in the cluster.")
	flag.Parse()
	if len(o.Managers) == 0 {
		o.Managers = variantList{{Name: "http1", Path: bin("bench", "manager")}}
	}
	return o, o.check()
}

func run() error {
	cwd, err := os.Getwd()
	if err != nil {
		return err
	}
	root, err := repoRoot(cwd)
	if err != nil {
		return err
	}
	o, err := parseOptions(root)
	if err != nil {
		return err
	}
	kubeconfig, err := resolvePath(o.Kubeconfig)
	if err != nil {
		return err
	}
	raw, err := clientcmd.LoadFromFile(kubeconfig)
	if err != nil {
		return err
	}
	cfg, err := clientcmd.NewDefaultClientConfig(*raw, nil).ClientConfig()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	stamp := time.Now().UTC().Format("20060102-150405")
	runDir := filepath.Join(o.Out, "admission-"+stamp)
	if err := os.MkdirAll(runDir, 0o755); err != nil {
		return err
	}
	e, err := newEnv(root, runDir, kubeconfig, cfg, o.Kubectl, o.LocalWebhook, o.Deployments)
	if err != nil {
		return err
	}
	nodes, err := e.nodes(ctx)
	if err != nil {
		return fmt.Errorf("reading the cluster's nodes: %w", err)
	}
	clusterName, clusterState, guardErr := checkLocalKwok(clusterFacts{
		Root: root, Kubeconfig: kubeconfig, Config: raw, KwokConfig: os.ReadFile, Nodes: nodes,
	})
	if guardErr != nil && !o.AllowAnyCluster {
		return fmt.Errorf("refusing to run: %w (pass --allow-any-cluster to run there anyway)", guardErr)
	}
	if guardErr != nil {
		logf("--allow-any-cluster: running although %v", guardErr)
	}

	var allowOnly []string
	if o.NullWebhook {
		allowOnly = []string{nullWebhook}
	}
	ps := plan(o.Rounds, variantNames(o.Managers), allowOnly, o.Profile)
	logf("run %s: %d phases of %d updates (+%d warm-up) at %g/s with %d workers; logs in %s",
		stamp, len(ps), o.Updates, o.Warmup, o.Rate, o.Workers, runDir)
	defer e.cleanup(o.KeepObjects)
	if err := setup(ctx, e, o); err != nil {
		return err
	}

	pids := kwokPids(clusterState, clusterName)
	pids["bench"] = os.Getpid()
	for _, m := range e.managers {
		pids["manager-"+m.Name] = m.proc.Pid()
	}
	r := &report{Started: time.Now().UTC(), Machine: machineInfo(root), Options: o, Plan: ps}
	u := newUpdates(o.Deployments)
	for i, p := range ps {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		res, err := runPhase(ctx, e, o, u, p, pids)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		logf("[%d/%d] %s", i+1, len(ps), res.line())
		r.Phases = append(r.Phases, res)
	}
	r.Machine.LoadAvgEnd = loadAvg()
	r.finish()
	r.print(os.Stdout)
	base := filepath.Join(o.Out, "admission-"+stamp)
	if err := r.writeJSON(base + ".json"); err != nil {
		return err
	}
	if err := r.chart(base+".svg", base+".png"); err != nil {
		return fmt.Errorf("chart: %w", err)
	}
	fmt.Printf("\nWrote %s.json, the chart %s.svg (and .png); logs and profiles in %s/\n", base, base, runDir)
	return nil
}

// setup makes the benchmark's objects, starts the fake Prometheus, the
// managers and the null webhook, installs the webhook configurations, freezes
// the frozen namespace's SLO and checks that every manager answers each path
// as it should.
func setup(ctx context.Context, e *env, o options) error {
	if err := e.setupCluster(ctx); err != nil {
		return fmt.Errorf("setting up: %w", err)
	}
	if err := e.startPrometheus(); err != nil {
		return err
	}
	if err := e.startManagers(ctx, o.Managers); err != nil {
		return err
	}
	if o.NullWebhook {
		if err := e.startNull(); err != nil {
			return fmt.Errorf("null webhook: %w", err)
		}
	}
	if err := e.installWebhooks(ctx); err != nil {
		return fmt.Errorf("installing the webhook configurations: %w", err)
	}
	if err := e.createSLOs(ctx); err != nil {
		return err
	}
	for _, b := range e.backends {
		if err := e.setGate(ctx, b); err != nil {
			return err
		}
		if !b.gates() {
			continue
		}
		if err := e.checkPaths(ctx); err != nil {
			return fmt.Errorf("through manager %s: %w", b.name, err)
		}
	}
	return nil
}

func variantNames(vs []variant) []string {
	out := make([]string, 0, len(vs))
	for _, v := range vs {
		out = append(out, v.Name)
	}
	return out
}

// runPhase switches the release gate for p, warms up, then sends the measured
// updates, reading the servers' metrics and the processes' CPU time around
// them (and taking profiles in a profiled phase).
func runPhase(ctx context.Context, e *env, o options, u *updates, p phase, pids map[string]int) (phaseResult, error) {
	var b *backend
	if p.Kind != kindNoWebhook {
		if b = e.backend(p.Variant); b == nil {
			return phaseResult{}, fmt.Errorf("no webhook backend %q", p.Variant)
		}
	}
	if err := e.setGate(ctx, b); err != nil {
		return phaseResult{}, err
	}
	do := func(ctx context.Context, i int) (outcome, string) {
		return e.send(ctx, p.Kind, u.next(p.Kind, i), false)
	}
	if o.Warmup > 0 {
		runLoad(ctx, realClock{}, o.Rate, o.Workers, o.Warmup, do)
	}
	// The manager whose metrics and profile the phase reads: the one called,
	// or (no release webhook, or the null webhook) the first, whose release
	// gate counters must then not move.
	watched := e.managers[0]
	if b != nil && b.mgr != nil {
		watched = b.mgr
	}
	apiBefore, err := e.apiserverMetrics(ctx)
	if err != nil {
		return phaseResult{}, err
	}
	mgrBefore, decBefore, err := managerMetrics(ctx, watched)
	if err != nil {
		return phaseResult{}, err
	}
	var nullBefore float64
	if b != nil && !b.gates() {
		nullBefore, _ = b.requests(ctx)
	}
	var waitProfiles func() []string
	if p.Profiled {
		secs := max(1, int(float64(o.Updates)/o.Rate)-1)
		waitProfiles = e.profile(ctx, watched, secs, fmt.Sprintf("%s-r%d", p.group(), p.Round+1))
	}
	var conns0 map[string]bool
	if b != nil {
		conns0 = connSet(b.port)
	}
	cpu0 := takeCPU(pids)
	start := time.Now()
	samples := runLoad(ctx, realClock{}, o.Rate, o.Workers, o.Updates, do)
	cpu1 := takeCPU(pids)
	res := phaseResult{Phase: p, Started: start.UTC(), CPU: cpuUse(cpu0, cpu1)}
	if b != nil {
		res.Conns = connUse(conns0, connSet(b.port))
	}
	if waitProfiles != nil {
		res.Profiles = waitProfiles()
	}
	apiAfter, err := e.apiserverMetrics(ctx)
	if err != nil {
		return phaseResult{}, err
	}
	mgrAfter, decAfter, err := managerMetrics(ctx, watched)
	if err != nil {
		return phaseResult{}, err
	}
	res.Server = serverView(delta(apiBefore, apiAfter), delta(mgrBefore, mgrAfter), delta(decBefore, decAfter))
	if b != nil && !b.gates() {
		n, _ := b.requests(ctx)
		res.Server.HandlerRequests = n - nullBefore
	}
	res.add(samples, o.Rate)
	return res, nil
}

func (e *env) apiserverMetrics(ctx context.Context) (map[string]float64, error) {
	data, err := e.apiserverRaw(ctx, "/metrics", nil)
	if err != nil {
		return nil, fmt.Errorf("kube-apiserver /metrics: %w", err)
	}
	fams, err := parseText(string(data))
	if err != nil {
		return nil, err
	}
	return extract(fams, apiserverSeries), nil
}

func managerMetrics(ctx context.Context, m *manager) (map[string]float64, map[string]float64, error) {
	text, err := get(ctx, m.metricsURL())
	if err != nil {
		return nil, nil, fmt.Errorf("manager %s metrics: %w", m.Name, err)
	}
	fams, err := parseText(text)
	if err != nil {
		return nil, nil, err
	}
	return extract(fams, managerSeries), decisions(fams), nil
}

// profile takes CPU profiles of manager m and the kube-apiserver for secs
// seconds, in the background; the returned function waits for them and
// returns the files written.
func (e *env) profile(ctx context.Context, m *manager, secs int, prefix string) func() []string {
	dir := filepath.Join(e.runDir, "profiles")
	_ = os.MkdirAll(dir, 0o755)
	type result struct {
		file string
		err  error
	}
	results := make(chan result, 2)
	go func() {
		data, err := get(ctx, fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/profile?seconds=%d", m.pprofPort, secs))
		f := filepath.Join(dir, prefix+"-manager-"+m.Name+".pprof")
		if err == nil {
			err = os.WriteFile(f, []byte(data), 0o644)
		}
		results <- result{f, err}
	}()
	go func() {
		data, err := e.apiserverRaw(ctx, "/debug/pprof/profile", map[string]string{"seconds": fmt.Sprint(secs)})
		f := filepath.Join(dir, prefix+"-kube-apiserver.pprof")
		if err == nil {
			err = os.WriteFile(f, data, 0o644)
		}
		results <- result{f, err}
	}()
	return func() []string {
		var files []string
		for range 2 {
			r := <-results
			if r.err != nil {
				logf("profile %s: %v", r.file, r.err)
				continue
			}
			files = append(files, r.file)
		}
		return files
	}
}
