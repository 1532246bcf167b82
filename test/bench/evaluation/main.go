// Command evaluation is `make bench-evaluation`: what evaluating 1,000 SLOs
// costs in a real Prometheus, raw queries and recorded series side by side
// in one run.
//
// It backfills a Prometheus with the history of 1,000 synthetic services
// (http_requests_total{service,code}, diurnal, one sample a minute, a day
// more than the SLO window) and, with promtool tsdb create-blocks-from
// rules, the base-window counts the recorded SLO-window ratio sums; the
// services' counters then go on live, scraped from this process. It starts
// envtest's kube-apiserver and etcd with budgetgate's CRDs and the
// PrometheusRule CRD, creates the built-in policy (config/samples) and one
// 99.9%/7d SLO per service evaluated every minute, and runs the manager
// built from ./cmd against both. Then it alternates phases (ABAB by
// default):
//
//   - raw: the policy's alerting off, no rules in Prometheus; every window
//     is an increase() query;
//   - recorded: alerting on, the rules the controller writes into
//     PrometheusRules loaded into Prometheus (rule_files; no Prometheus
//     Operator here), and the SLOs' status.prometheusRule.recordingSince set
//     to the start of the backfilled counts, so that every window, the SLO
//     window's too, is read from the recorded series in one query.
//
// In each phase, after the switch has reached every SLO and a warm-up, it
// reads the manager's and Prometheus's metrics and every process's CPU once
// per evaluation interval, and watches every SLO's status: queries sent,
// Prometheus query and rule-evaluation seconds, evaluation lag after each
// SLO's due instant, manager and Prometheus CPU. It prints a table, raw
// against recorded with ratios, and writes JSON to bin/bench.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	slov1alpha1 "github.com/budgetgate/budgetgate/api/v1alpha1"
	"github.com/budgetgate/budgetgate/internal/policy"
	"github.com/budgetgate/budgetgate/internal/testbin"
	prometheustest "github.com/budgetgate/budgetgate/test/prometheus"
	"github.com/budgetgate/budgetgate/test/utils"
)

// The phases: every window measured raw, with no rules in Prometheus
// (alerting off); the same with every SLO's rules loaded into Prometheus
// anyway (rules loaded as a file, which the controller cannot see, or the
// controller before it read recorded series); every window read from the
// recorded series (alerting on).
const (
	kindRaw      = "raw"
	kindRawRules = "raw-rules"
	kindRecorded = "recorded"
)

var kinds = []string{kindRaw, kindRawRules, kindRecorded}

type config struct {
	root, state, manager, out string
	slos                      int
	window                    string
	windowDur                 time.Duration
	interval                  time.Duration // the SLOs' evaluationInterval
	ruleInterval              time.Duration // Prometheus's evaluation_interval
	sampleInterval            time.Duration // history and scrape interval
	phases                    []string
	warmup                    time.Duration
	measure                   int
	perSLOSample              int
	timeout                   time.Duration
	keepData                  bool
}

func parseFlags(args []string) (config, error) {
	fs := flag.NewFlagSet("bench-evaluation", flag.ContinueOnError)
	var c config
	fs.StringVar(&c.root, "root", ".", "The repository root.")
	fs.StringVar(&c.state, "state", ".cluster/evaluation", "Directory of the run: kubeconfig, logs, Prometheus data (removed at the end unless --keep-data).")
	fs.StringVar(&c.manager, "manager", "bin/bench/evaluation-manager", "The manager binary (go build ./cmd).")
	fs.StringVar(&c.out, "out", "bin/bench", "Directory of the JSON report.")
	fs.IntVar(&c.slos, "slos", 1000, "SLOs, one per synthetic service, 10 per namespace.")
	fs.StringVar(&c.window, "window", "7d", "The SLOs' window; the history is a day longer.")
	fs.DurationVar(&c.interval, "interval", time.Minute, "The SLOs' evaluationInterval, and the length of a measured interval.")
	fs.DurationVar(&c.ruleInterval, "rule-interval", time.Minute, "Prometheus's evaluation_interval for the generated rules (and the backfill's).")
	fs.DurationVar(&c.sampleInterval, "sample-interval", time.Minute, "One history sample, and one scrape of the live counters, per this.")
	phases := fs.String("phases", "raw,raw-rules,recorded,raw,raw-rules,recorded",
		"The phases, in order: raw (alerting off, no rules in Prometheus), raw-rules (alerting off, the rules loaded "+
			"into Prometheus all the same) or recorded (alerting on, recorded series read).")
	fs.DurationVar(&c.warmup, "warmup", 2*time.Minute, "Wait after a switch has reached every SLO, before measuring.")
	fs.IntVar(&c.measure, "measure", 5, "Measured evaluation intervals per phase.")
	fs.IntVar(&c.perSLOSample, "per-slo-backfill-sample", 10,
		"Backfill the generated rules of this many SLOs one by one first, to time the per-SLO way (0: skip).")
	fs.DurationVar(&c.timeout, "timeout", 2*time.Hour, "Give up after this long.")
	fs.BoolVar(&c.keepData, "keep-data", false, "Keep the Prometheus data and logs under --state.")
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
	c.state, c.manager, c.out = abs(c.state), abs(c.manager), abs(c.out)
	w, err := model.ParseDuration(c.window)
	if err != nil {
		return c, fmt.Errorf("--window: %w", err)
	}
	c.windowDur = time.Duration(w)
	for p := range strings.SplitSeq(*phases, ",") {
		p = strings.TrimSpace(p)
		if !slices.Contains(kinds, p) {
			return c, fmt.Errorf("--phases: %q is none of %s", p, strings.Join(kinds, ", "))
		}
		c.phases = append(c.phases, p)
	}
	switch {
	case c.slos < 1 || c.slos > 10000:
		return c, errors.New("--slos must be 1 to 10,000 (service names have four digits)")
	case c.measure < 1:
		return c, errors.New("--measure must be at least 1")
	case c.ruleInterval > 5*time.Minute:
		return c, errors.New("--rule-interval must not exceed the 5m base window the recorded sums assume")
	}
	return c, nil
}

// bench holds one run.
type bench struct {
	cfg  config
	rep  *report
	bins prometheustest.Binaries
	work string

	traffic                           *traffic
	historyEnd, recordingFrom, origin time.Time
	baseWindow                        string
	stopTraffic                       func()
	prom                              *prometheustest.Server
	api                               v1.API
	env                               *envtest.Environment
	rest                              *rest.Config
	c                                 client.WithWatch
	mgr                               *managerProcess
	rec                               *recorder
	policy                            policy.Policy
	groups                            []monitoringv1.RuleGroup
	firstGroups                       []monitoringv1.RuleGroup // of slos[0] as listed
	hashes                            map[string]string
	procs                             sync.Map // name → pid
	stopWatch                         context.CancelFunc
}

func main() {
	closeInheritedFiles()
	ctrllog.SetLogger(zap.New(zap.WriteTo(os.Stderr)))
	cfg, err := parseFlags(os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench-evaluation:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()

	b := &bench{cfg: cfg, rep: &report{StartedAt: time.Now()}, rec: newRecorder()}
	if l, err := readLoadAverage(); err == nil {
		b.rep.Notes = append(b.rep.Notes, fmt.Sprintf("load average (1m) at the start: %.2f", l))
	}
	runErr := b.run(ctx)
	if runErr != nil {
		logf("FAILED: %v", runErr)
		if b.mgr != nil {
			logf("manager log: %s", b.mgr.logPath)
		}
	}
	if l, err := readLoadAverage(); err == nil {
		b.rep.Notes = append(b.rep.Notes, fmt.Sprintf("load average (1m) at the end of the measurements: %.2f", l))
	}
	b.teardown()
	b.rep.FinishedAt = time.Now()
	if len(b.rep.Phases) > 0 {
		b.rep.Comparison = comparisons(b.rep.Phases, cfg.interval)
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

func (b *bench) run(ctx context.Context) error {
	cfg := b.cfg
	var err error
	if b.bins, err = prometheustest.Find(); err != nil {
		return fmt.Errorf("prometheus and promtool (make prometheus): %w", err)
	}
	b.work = filepath.Join(cfg.state, "work")
	if err := os.RemoveAll(cfg.state); err != nil {
		return err
	}
	if err := os.MkdirAll(b.work, 0o755); err != nil {
		return err
	}
	b.rep.Machine = utils.MachineInfo(cfg.root)
	b.rep.Versions = versions()
	b.rep.Config = runConfig{
		SLOs: cfg.slos, Namespaces: (cfg.slos + slosPerNamespace - 1) / slosPerNamespace, Target: "99.9", Window: cfg.window,
		EvaluationInterval: durationString(cfg.interval), RuleInterval: durationString(cfg.ruleInterval),
		SampleInterval: durationString(cfg.sampleInterval), History: durationString(cfg.windowDur + 24*time.Hour),
		SeriesPerService: 2, Phases: cfg.phases, Warmup: cfg.warmup.String(), MeasuredIntervals: cfg.measure,
	}
	setupStart := time.Now()

	t := time.Now()
	logf("starting envtest's kube-apiserver and etcd")
	if err := b.startAPIServer(); err != nil {
		return err
	}
	for name, pid := range childrenNamed(procAPIServer, procEtcd) {
		b.procs.Store(name, pid)
	}
	b.procs.Store(procBench, os.Getpid())
	b.rep.Setup.APIServerSeconds = since(t)

	t = time.Now()
	logf("creating the policy (config/samples, alerting off) and %d SLOs in %d namespaces", cfg.slos, b.rep.Config.Namespaces)
	if err := b.createPolicy(ctx); err != nil {
		return err
	}
	pol := &slov1alpha1.ErrorBudgetPolicy{}
	if err := b.c.Get(ctx, keyOf("", policyName), pol); err != nil {
		return err
	}
	if b.policy, err = policy.FromSpec(pol.Name, &pol.Spec); err != nil {
		return err
	}
	if err := b.createSLOs(ctx); err != nil {
		return err
	}
	b.rep.Setup.SLOsCreatedSeconds = since(t)

	now := time.Now().Truncate(time.Minute)
	b.historyEnd = now.Add(-time.Minute)
	b.origin = b.historyEnd.Add(-cfg.windowDur - 24*time.Hour)
	b.recordingFrom = b.historyEnd.Add(-cfg.windowDur - 10*time.Minute)
	b.traffic = newTraffic(cfg.slos, b.origin)
	logf("writing %s of history for %d services", b.rep.Config.History, cfg.slos)
	if err := b.backfillHistory(); err != nil {
		return err
	}
	if err := b.backfillRules(ctx, b.policy); err != nil {
		return err
	}
	if err := b.moveBlocks(); err != nil {
		return err
	}
	target, stopTraffic, err := b.serveTraffic()
	if err != nil {
		return err
	}
	b.stopTraffic = stopTraffic
	t = time.Now()
	logf("starting Prometheus with the history and the backfilled counts, scraping the live counters at %s", target)
	if err := b.startPrometheus(target); err != nil {
		return err
	}
	b.rep.Setup.PrometheusStartSeconds = since(t)
	if err := b.checkBackfill(ctx, b.policy); err != nil {
		return err
	}

	watchCtx, stopWatch := context.WithCancel(ctx)
	b.stopWatch = stopWatch
	go watchSLOs(watchCtx, b.c, b.rec)

	t = time.Now()
	logf("starting the manager (%s; log %s)", cfg.manager, filepath.Join(cfg.state, "manager.log"))
	if err := b.startManager(ctx); err != nil {
		return err
	}
	b.procs.Store(procManager, b.mgr.cmd.Process.Pid)
	b.rep.Setup.ManagerStartSeconds = since(t)
	t = time.Now()
	if err := b.waitSLOs(ctx, 10*time.Minute, "the first evaluation of every SLO", func(s *slov1alpha1.ServiceLevelObjective) bool {
		return s.Status.LastEvaluationTime != nil && s.Status.SLISource != nil
	}); err != nil {
		return err
	}
	b.rep.Setup.FirstRoundSeconds = since(t)
	logf("every SLO evaluated once, %.1fs after the manager started", b.rep.Setup.FirstRoundSeconds)

	slos, err := b.listSLOs(ctx)
	if err != nil {
		return err
	}
	if b.groups, b.hashes, err = sloRules(slos, b.policy); err != nil {
		return err
	}
	if b.firstGroups, _, err = sloRules(slos[:1], b.policy); err != nil {
		return err
	}

	t = time.Now()
	logf("waiting until Prometheus has compacted the backfilled blocks")
	if err := b.waitCompaction(ctx, 20*time.Minute); err != nil {
		return err
	}
	b.rep.Setup.CompactionSeconds = since(t)
	b.rep.Setup.TotalSeconds = since(setupStart)
	logf("setup done in %.0fs; Prometheus holds %.0f blocks", b.rep.Setup.TotalSeconds, b.rep.Setup.PrometheusBlocks)

	rounds := map[string]int{}
	for _, kind := range cfg.phases {
		rounds[kind]++
		p, err := b.runPhase(ctx, kind, rounds[kind])
		if p != nil {
			b.rep.Phases = append(b.rep.Phases, p)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// runPhase switches every SLO to raw or recorded evaluation, waits until
// every SLO evaluates that way and for the warm-up, then measures.
func (b *bench) runPhase(ctx context.Context, kind string, round int) (*phase, error) {
	p := &phase{Kind: kind, Round: round}
	logf("phase %s %d: switching", kind, round)
	t := time.Now()
	switch kind {
	case kindRaw, kindRawRules:
		if err := b.toRaw(ctx, t, kind == kindRawRules); err != nil {
			return nil, err
		}
	case kindRecorded:
		if err := b.toRecorded(ctx); err != nil {
			return nil, err
		}
	}
	p.SwitchSeconds = since(t)
	logf("phase %s %d: every SLO evaluates %s after %.0fs; warming up for %s", kind, round, kind, p.SwitchSeconds, b.cfg.warmup)
	sleep(ctx, b.cfg.warmup)
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	prev, err := b.snapshot(ctx)
	if err != nil {
		return nil, err
	}
	p.Start = prev.at
	for k := 1; k <= b.cfg.measure; k++ {
		sleep(ctx, time.Until(p.Start.Add(time.Duration(k)*b.cfg.interval)))
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		s, err := b.snapshot(ctx)
		if err != nil {
			return nil, err
		}
		iv := diff(prev, s)
		iv.Lag = summarize(b.rec.between(prev.at, s.at), b.cfg.interval)
		p.Intervals = append(p.Intervals, iv)
		logf("phase %s %d, interval %d: %.0f evaluations, %.0f queries (Prometheus answered %.0f in %.2fs; rules %.2fs), lag p50 %.3fs p99 %.3fs, "+
			"CPU manager %.2fs Prometheus %.2fs, other %.2f cores, load %.1f",
			kind, round, k, float64(iv.Lag.Evaluations), iv.ManagerQueries, iv.APIQueries, iv.APIQuerySeconds, iv.RuleEvalSeconds,
			iv.Lag.LagP50, iv.Lag.LagP99, iv.CPUSeconds[procManager], iv.CPUSeconds[procPrometheus], iv.OtherCores, iv.Load1)
		prev = s
	}
	p.End = prev.at
	p.Summary = totals(p.Intervals, summarize(b.rec.between(p.Start, p.End), b.cfg.interval), b.cfg.interval)
	return p, nil
}

// toRaw turns alerting off (the controller deletes every PrometheusRule and
// measures every window raw) and unloads the rules from Prometheus, as the
// Prometheus Operator would once the PrometheusRules are gone; withRules
// loads every SLO's rules instead, as a platform that loads them as a file
// would (the controller cannot see those, and measures raw).
func (b *bench) toRaw(ctx context.Context, t time.Time, withRules bool) error {
	if err := b.setAlerting(ctx, false); err != nil {
		return err
	}
	var groups []monitoringv1.RuleGroup
	if withRules {
		groups = b.groups
	}
	if err := b.loadRules(ctx, groups); err != nil {
		return err
	}
	return b.waitSLOs(ctx, 10*time.Minute, "every SLO to evaluate raw", func(s *slov1alpha1.ServiceLevelObjective) bool {
		st := s.Status
		return st.LastEvaluationTime != nil && !st.LastEvaluationTime.Time.Before(t.Truncate(time.Second)) &&
			st.PrometheusRule == nil && st.SLISource != nil && len(st.SLISource.Recorded) == 0 && st.SLISource.Queries > 0
	})
}

// toRecorded loads every SLO's generated rules into Prometheus, turns
// alerting on (the controller writes the PrometheusRules and, from its next
// evaluation, reads the recorded series), and sets recordingSince to the
// start of the backfilled counts (seedRecordingSince).
func (b *bench) toRecorded(ctx context.Context) error {
	if err := b.loadRules(ctx, b.groups); err != nil {
		return err
	}
	if err := b.setAlerting(ctx, true); err != nil {
		return err
	}
	seeded := 0
	if err := b.waitSLOs(ctx, 10*time.Minute, "every SLO's rules written and its recordingSince set", func(s *slov1alpha1.ServiceLevelObjective) bool {
		pr := s.Status.PrometheusRule
		return pr != nil && pr.RecordingSince != nil && !pr.RecordingSince.After(b.recordingFrom) &&
			apimeta.IsStatusConditionTrue(s.Status.Conditions, slov1alpha1.ConditionRulesWritten)
	}, func(ctx context.Context) error {
		n, err := b.seedRecordingSince(ctx, b.recordingFrom, b.hashes)
		seeded += n
		return err
	}); err != nil {
		return err
	}
	logf("set recordingSince of %d SLOs to %s, the start of the backfilled counts", seeded, b.recordingFrom.UTC().Format(time.RFC3339))
	if err := b.checkPrometheusRule(ctx, b.firstGroups); err != nil {
		return err
	}
	seededAt := time.Now()
	return b.waitSLOs(ctx, 10*time.Minute, "every SLO to read every window from the recorded series", func(s *slov1alpha1.ServiceLevelObjective) bool {
		st := s.Status
		return st.LastEvaluationTime != nil && !st.LastEvaluationTime.Time.Before(seededAt.Truncate(time.Second)) &&
			st.SLISource != nil && st.SLISource.Queries == 1 && len(st.SLISource.Raw) == 0
	})
}

func keyOf(namespace, name string) client.ObjectKey {
	return client.ObjectKey{Namespace: namespace, Name: name}
}

// pids are the processes whose CPU is measured.
func (b *bench) pids() map[string]int {
	out := map[string]int{}
	b.procs.Range(func(k, v any) bool {
		out[k.(string)] = v.(int)
		return true
	})
	return out
}

// teardown stops everything the run started and removes its data unless
// --keep-data.
func (b *bench) teardown() {
	if b.stopWatch != nil {
		b.stopWatch()
	}
	if b.mgr != nil {
		logf("stopping the manager")
		b.mgr.stop()
	}
	if b.prom != nil {
		logf("stopping Prometheus")
		b.prom.Stop()
	}
	if b.stopTraffic != nil {
		b.stopTraffic()
	}
	if b.env != nil {
		logf("stopping kube-apiserver and etcd")
		if err := b.env.Stop(); err != nil {
			logf("stopping envtest: %v", err)
		}
	}
	if !b.cfg.keepData && b.work != "" {
		if err := os.RemoveAll(b.work); err != nil {
			logf("removing %s: %v", b.work, err)
		}
	}
}

func since(t time.Time) float64 { return round3(time.Since(t).Seconds()) }

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "==> %s %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// closeInheritedFiles marks every inherited file descriptor beyond stdin,
// stdout and stderr close-on-exec: under `flock LOCK make bench-evaluation`
// the lock's descriptor is one, and Prometheus, etcd, kube-apiserver and the
// manager would otherwise hold the lock for as long as they run.
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

// versions are the pins of hack/versions.env the run used.
func versions() map[string]string {
	out := map[string]string{}
	for _, k := range []string{"PROMETHEUS_RELEASE", "K8S_VERSION", "ETCD_VERSION"} {
		if v, err := testbin.Version(k); err == nil {
			out[k] = v
		}
	}
	return out
}
