package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	promapi "github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	"k8s.io/apimachinery/pkg/util/intstr"

	slov1alpha1 "github.com/budgetgate/budgetgate/api/v1alpha1"
	"github.com/budgetgate/budgetgate/internal/controller"
	"github.com/budgetgate/budgetgate/internal/policy"
	"github.com/budgetgate/budgetgate/internal/rules"
	prometheustest "github.com/budgetgate/budgetgate/test/prometheus"
)

func durationString(d time.Duration) string { return model.Duration(d).String() }

// backfillHistory writes the services' counters from the history's start to
// its end into TSDB blocks (promtool tsdb create-blocks-from openmetrics).
func (b *bench) backfillHistory() error {
	file := filepath.Join(b.work, "history.om.txt")
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	t := time.Now()
	n, err := b.traffic.writeHistory(f, b.historyEnd, b.cfg.sampleInterval)
	if err = errors.Join(err, f.Close()); err != nil {
		return err
	}
	fi, _ := os.Stat(file)
	b.rep.Setup.HistorySamples = n
	b.rep.Setup.HistoryFileBytes = fi.Size()
	b.rep.Setup.HistoryWriteSeconds = since(t)
	logf("wrote %d samples (%.0f MiB) in %.1fs; backfilling them with promtool tsdb create-blocks-from openmetrics",
		n, float64(fi.Size())/(1<<20), b.rep.Setup.HistoryWriteSeconds)
	t = time.Now()
	if err := b.bins.CreateBlocks(file, b.rawBlocks()); err != nil {
		return err
	}
	b.rep.Setup.HistoryBackfillSeconds = since(t)
	logf("history backfilled in %.1fs", b.rep.Setup.HistoryBackfillSeconds)
	return os.Remove(file)
}

func (b *bench) rawBlocks() string  { return filepath.Join(b.work, "raw") }
func (b *bench) ruleBlocks() string { return filepath.Join(b.work, "rule-blocks") }
func (b *bench) dataDir() string    { return filepath.Join(b.work, "data") }
func (b *bench) rulesFile() string  { return filepath.Join(b.work, "rules.yaml") }

// baseCountRules are the recording rules of the base window's counts that
// the SLO window's recorded ratio sums, as Generate writes them for one SLO.
func baseCountRules(slo *slov1alpha1.ServiceLevelObjective, p policy.Policy) ([]monitoringv1.Rule, string, error) {
	groups, err := rules.Generate(slo, p, rules.Options{})
	if err != nil {
		return nil, "", err
	}
	var base []monitoringv1.Rule
	window := ""
	for _, r := range groups[0].Rules {
		if w, ok := strings.CutPrefix(r.Record, rules.SLIErrors); ok {
			window = w
		}
	}
	for _, r := range groups[0].Rules {
		if r.Record == rules.SLIErrors+window || r.Record == rules.SLIEvents+window {
			base = append(base, r)
		}
	}
	if len(base) != 2 {
		return nil, "", fmt.Errorf("base-window count rules of %s/%s: %d, want 2", slo.Namespace, slo.Name, len(base))
	}
	return base, window, nil
}

// aggregatedBaseRules record, in one rule each, the base-window counts of
// every service's SLO, with exactly the series (names, labels, values) of
// the SLOs' own generated rules: sum(increase(...[5m])) by service, the
// service named into the SLO's sloth_* labels with label_replace. One rule
// per count instead of one per SLO and count is what makes promtool's
// backfill of 1,000 SLOs affordable: promtool writes one block per rule and
// 2h, and queries Prometheus once for each (see the report's per-SLO
// backfill sample). checkBackfill compares both at past instants.
func aggregatedBaseRules(window string, interval time.Duration) []monitoringv1.RuleGroup {
	relabel := func(selector string) string {
		e := fmt.Sprintf("increase(%s[%s])", selector, window)
		e = fmt.Sprintf(`label_replace(%s, %q, "$1", "service", "(.+)")`, e, rules.LabelSLO)
		e = fmt.Sprintf("label_replace(%s, %q, %q, \"service\", `%s`)", e, rules.LabelService, namespaceReplacement, serviceNamespaceRegex)
		e = fmt.Sprintf("label_replace(%s, %q, %q, \"service\", `%s`)", e, rules.LabelID, slothIDReplacement, serviceNamespaceRegex)
		return fmt.Sprintf("sum by (%s, %s, %s) (%s)", rules.LabelID, rules.LabelService, rules.LabelSLO, e)
	}
	labels := map[string]string{rules.LabelWindow: window}
	d := monitoringv1.Duration(durationString(interval))
	return []monitoringv1.RuleGroup{{
		Name:     "bench-base-counts",
		Interval: &d,
		Rules: []monitoringv1.Rule{
			{Record: rules.SLIErrors + window, Expr: intstr.FromString(relabel(fmt.Sprintf(`%s{code=~"5.."}`, metricName))), Labels: labels},
			{Record: rules.SLIEvents + window, Expr: intstr.FromString(relabel(metricName)), Labels: labels},
		},
	}}
}

func writeRuleFile(path string, groups []monitoringv1.RuleGroup) error {
	data, err := rules.RuleFile(groups)
	if err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o644)
}

// backfillRules backfills the base-window counts of every SLO for the SLO
// window with promtool tsdb create-blocks-from rules, against a first
// Prometheus that holds the history only. First, as a sample, it backfills
// the generated rules of the first perSLOSample SLOs, one group per SLO as
// recorded_real_test.go does, and times that.
func (b *bench) backfillRules(ctx context.Context, p policy.Policy) error {
	first, err := b.bins.Run(filepath.Join(b.work, "prom-backfill"), prometheustest.Options{DataDir: b.rawBlocks()})
	if err != nil {
		return err
	}
	defer first.Stop()
	b.procs.Store(procPrometheus+"-backfill", first.Pid())
	defer b.procs.Delete(procPrometheus + "-backfill")

	var window string
	if n := min(b.cfg.perSLOSample, b.cfg.slos); n > 0 {
		var groups []monitoringv1.RuleGroup
		for i := range n {
			base, w, err := baseCountRules(sloObject(i, b.cfg), p)
			if err != nil {
				return err
			}
			window = w
			groups = append(groups, monitoringv1.RuleGroup{Name: "base-" + serviceName(i), Rules: base})
		}
		out := filepath.Join(b.work, "per-slo-sample")
		file := filepath.Join(b.work, "per-slo-sample.yaml")
		if err := writeRuleFile(file, groups); err != nil {
			return err
		}
		logf("backfilling the generated base-window rules of %d SLOs (one group per SLO), as a sample", n)
		secs, err := b.promtoolRules(ctx, first.URL, out, file)
		if err != nil {
			return err
		}
		blocks, err := countBlocks(out)
		if err != nil {
			return err
		}
		s := &perSLOSample{SLOs: n, Rules: 2 * n, Seconds: secs, Blocks: blocks,
			ExtrapolatedSeconds: round3(secs * float64(b.cfg.slos) / float64(n)),
			ExtrapolatedBlocks:  blocks * b.cfg.slos / n}
		b.rep.Setup.PerSLOBackfillSample = s
		logf("per-SLO sample: %d SLOs in %.1fs, %d blocks; for %d SLOs that is about %.0fs and %d blocks",
			n, secs, blocks, b.cfg.slos, s.ExtrapolatedSeconds, s.ExtrapolatedBlocks)
		if err := os.RemoveAll(out); err != nil {
			return err
		}
	} else {
		_, w, err := baseCountRules(sloObject(0, b.cfg), p)
		if err != nil {
			return err
		}
		window = w
	}

	b.baseWindow = window
	file := filepath.Join(b.work, "base-counts.yaml")
	if err := writeRuleFile(file, aggregatedBaseRules(window, b.cfg.ruleInterval)); err != nil {
		return err
	}
	logf("backfilling the base-window counts of all %d SLOs for the %s SLO window (2 aggregated rules)", b.cfg.slos, b.cfg.window)
	secs, err := b.promtoolRules(ctx, first.URL, b.ruleBlocks(), file)
	if err != nil {
		return err
	}
	blocks, err := countBlocks(b.ruleBlocks())
	if err != nil {
		return err
	}
	b.rep.Setup.RuleBackfillSeconds, b.rep.Setup.RuleBackfillBlocks = secs, blocks
	logf("base-window counts backfilled in %.1fs (%d blocks)", secs, blocks)
	return nil
}

// promtoolRules runs promtool tsdb create-blocks-from rules over the
// recordings' history: from recordingFrom to the end of the history.
func (b *bench) promtoolRules(ctx context.Context, url, out, file string) (float64, error) {
	cmd := exec.CommandContext(ctx, b.bins.Promtool, "tsdb", "create-blocks-from", "rules", "--quiet",
		fmt.Sprintf("--start=%d", b.recordingFrom.Unix()), fmt.Sprintf("--end=%d", b.historyEnd.Unix()),
		"--url="+url, "--output-dir="+out, "--eval-interval="+durationString(b.cfg.ruleInterval), file)
	t := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		return 0, fmt.Errorf("%s: %w\n%s", strings.Join(cmd.Args, " "), err, out)
	}
	return since(t), nil
}

// countBlocks counts the TSDB blocks (ULID directories) in dir.
func countBlocks(dir string) (int, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range entries {
		if e.IsDir() && len(e.Name()) == 26 {
			n++
		}
	}
	return n, nil
}

// moveBlocks moves the blocks of the history and of the rule backfill into
// the data directory of the Prometheus the benchmark measures.
func (b *bench) moveBlocks() error {
	if err := os.MkdirAll(b.dataDir(), 0o755); err != nil {
		return err
	}
	for _, from := range []string{b.rawBlocks(), b.ruleBlocks()} {
		entries, err := os.ReadDir(from)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if e.IsDir() && len(e.Name()) == 26 {
				if err := os.Rename(filepath.Join(from, e.Name()), filepath.Join(b.dataDir(), e.Name())); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// serveTraffic serves the services' live counters on a loopback port.
func (b *bench) serveTraffic() (string, func(), error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: b.traffic, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	return l.Addr().String(), func() { _ = srv.Close() }, nil
}

// startPrometheus starts the Prometheus the benchmark measures: the
// history and the backfilled counts, the live counters scraped every
// sample interval, and the rule file (empty until a recorded phase).
func (b *bench) startPrometheus(target string) error {
	if err := os.WriteFile(b.rulesFile(), []byte("groups: []\n"), 0o644); err != nil {
		return err
	}
	config := fmt.Sprintf(`global:
  scrape_interval: %s
  evaluation_interval: %s
scrape_configs:
- job_name: %s
  honor_labels: true
  static_configs:
  - targets: [%q]
rule_files: [%q]
`, durationString(b.cfg.sampleInterval), durationString(b.cfg.ruleInterval), trafficJob, target, b.rulesFile())
	s, err := b.bins.Run(filepath.Join(b.work, "prom"), prometheustest.Options{DataDir: b.dataDir(), Config: config})
	if err != nil {
		return err
	}
	b.prom = s
	b.procs.Store(procPrometheus, s.Pid())
	c, err := promapi.NewClient(promapi.Config{Address: s.URL})
	if err != nil {
		return err
	}
	b.api = v1.NewAPI(c)
	return nil
}

// loadRules writes the rule file (the generated rules of every SLO, or
// none) and makes Prometheus load it, then waits until it serves that many
// rule groups.
func (b *bench) loadRules(ctx context.Context, groups []monitoringv1.RuleGroup) error {
	data := []byte("groups: []\n")
	if len(groups) > 0 {
		var err error
		if data, err = rules.RuleFile(groups); err != nil {
			return err
		}
	}
	if err := os.WriteFile(b.rulesFile(), data, 0o644); err != nil {
		return err
	}
	if err := b.prom.Reload(); err != nil {
		return err
	}
	deadline := time.Now().Add(3 * time.Minute)
	for {
		res, err := b.api.Rules(ctx, nil)
		if err == nil && len(res.Groups) == len(groups) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("Prometheus serves %d rule groups 3 minutes after the reload, want %d (%v)", len(res.Groups), len(groups), err)
		}
		sleep(ctx, time.Second)
	}
}

// waitCompaction waits until Prometheus has compacted what it loaded (the
// history and the backfilled blocks overlap, and it merges them in the
// background): until one whole compaction run, after the last compaction,
// found nothing to do.
func (b *bench) waitCompaction(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	lastCompactions, sinceTriggered := -1.0, -1.0
	for {
		ms, err := scrape(ctx, b.prom.URL+"/metrics")
		if err != nil {
			return err
		}
		compactions := ms.sum("prometheus_tsdb_compactions_total") + ms.sum("prometheus_tsdb_vertical_compactions_total")
		triggered := ms.sum("prometheus_tsdb_compactions_triggered_total")
		if compactions != lastCompactions {
			lastCompactions, sinceTriggered = compactions, triggered
		}
		// Compaction runs are sequential: a second trigger after the last
		// compaction means a whole run after it has ended.
		if triggered-sinceTriggered >= 2 && ms.sum("prometheus_tsdb_compaction_populating_block") == 0 {
			b.rep.Setup.PrometheusBlocks = ms.sum("prometheus_tsdb_blocks_loaded")
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("Prometheus still compacting after %s", timeout)
		}
		sleep(ctx, 5*time.Second)
	}
}

// checkBackfill compares, for a few SLOs at past instants, the backfilled
// base-window counts with the SLO's own generated expressions evaluated at
// the same instant: the aggregated backfill wrote the generated rules'
// series.
func (b *bench) checkBackfill(ctx context.Context, p policy.Policy) error {
	idx := []int{0, b.cfg.slos / 2, b.cfg.slos - 1}
	for _, i := range idx {
		slo := sloObject(i, b.cfg)
		base, _, err := baseCountRules(slo, p)
		if err != nil {
			return err
		}
		for _, ago := range []time.Duration{b.cfg.windowDur - time.Hour, 3 * 24 * time.Hour, 2 * time.Hour} {
			at := b.historyEnd.Add(-ago)
			for _, r := range base {
				sel := fmt.Sprintf(`%s{%s=%q}`, r.Record, rules.LabelID, r.Labels[rules.LabelID])
				v, _, _, err := b.api.Query(ctx, "timestamp("+sel+")", at)
				if err != nil {
					return fmt.Errorf("backfill check %s: %w", sel, err)
				}
				vec, _ := v.(model.Vector)
				if len(vec) != 1 {
					return fmt.Errorf("backfill check: %s at %s: %d series, want 1", sel, at.UTC().Format(time.RFC3339), len(vec))
				}
				ts := time.UnixMilli(int64(math.Round(float64(vec[0].Value) * 1000)))
				got, err := b.queryOne(ctx, sel, ts)
				if err != nil {
					return err
				}
				want, err := b.queryOne(ctx, r.Expr.String(), ts)
				if err != nil {
					return err
				}
				if math.Abs(got-want) > 1e-9*math.Max(1, math.Abs(want)) {
					return fmt.Errorf("backfill check: %s at %s is %v, the SLO's rule %s gives %v", sel, ts.UTC().Format(time.RFC3339), got, r.Expr.String(), want)
				}
				b.rep.Setup.BackfillChecks++
			}
		}
	}
	logf("backfill checked: %d values of the aggregated rules equal the SLOs' generated rules at the same instants", b.rep.Setup.BackfillChecks)
	return nil
}

func (b *bench) queryOne(ctx context.Context, q string, at time.Time) (float64, error) {
	v, _, _, err := b.api.Query(ctx, q, at)
	if err != nil {
		return 0, fmt.Errorf("query %s: %w", q, err)
	}
	vec, _ := v.(model.Vector)
	if len(vec) != 1 {
		return 0, fmt.Errorf("query %s at %s: %d series, want 1", q, at.UTC().Format(time.RFC3339), len(vec))
	}
	return float64(vec[0].Value), nil
}

// sloRules are the generated rules of every SLO as the controller writes
// them (rules.Generate with the policy's severities and the SLO's alert
// labels), read from the API server after creation, and the recording
// hash of each.
func sloRules(slos []slov1alpha1.ServiceLevelObjective, p policy.Policy) ([]monitoringv1.RuleGroup, map[string]string, error) {
	var groups []monitoringv1.RuleGroup
	hashes := map[string]string{}
	for i := range slos {
		slo := &slos[i]
		var labels map[string]string
		if slo.Spec.Alerting != nil {
			labels = slo.Spec.Alerting.Labels
		}
		gs, err := rules.Generate(slo, p, rules.Options{Severities: p.Severities, Labels: labels})
		if err != nil {
			return nil, nil, err
		}
		groups = append(groups, gs...)
		rec, err := rules.RecordedQuery(slo, p, rules.Options{})
		if err != nil {
			return nil, nil, err
		}
		hashes[slo.Namespace+"/"+slo.Name] = rec.Hash
	}
	return groups, hashes, nil
}

// checkPrometheusRule compares the PrometheusRule the controller wrote for
// one SLO with the groups the benchmark loaded into Prometheus for it.
func (b *bench) checkPrometheusRule(ctx context.Context, want []monitoringv1.RuleGroup) error {
	slos, err := b.listSLOs(ctx)
	if err != nil || len(slos) == 0 {
		return fmt.Errorf("listing SLOs: %w", err)
	}
	slo := &slos[0]
	pr := &monitoringv1.PrometheusRule{}
	if err := b.c.Get(ctx, keyOf(slo.Namespace, controller.PrometheusRuleName(slo.Name)), pr); err != nil {
		return fmt.Errorf("reading the PrometheusRule of %s/%s: %w", slo.Namespace, slo.Name, err)
	}
	got, err := rules.RuleFile(pr.Spec.Groups)
	if err != nil {
		return err
	}
	exp, err := rules.RuleFile(want)
	if err != nil {
		return err
	}
	if string(got) != string(exp) {
		return fmt.Errorf("the PrometheusRule of %s/%s differs from the rules the benchmark loaded into Prometheus:\n%s\nvs\n%s", slo.Namespace, slo.Name, got, exp)
	}
	return nil
}
