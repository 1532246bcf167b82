package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/budgetgate/budgetgate/test/utils"
)

type report struct {
	StartedAt  time.Time         `json:"startedAt"`
	FinishedAt time.Time         `json:"finishedAt"`
	Machine    utils.Machine     `json:"machine"`
	Versions   map[string]string `json:"versions"`
	Config     runConfig         `json:"config"`
	Setup      setup             `json:"setup"`
	Phases     []*phase          `json:"phases"`
	Comparison []comparison      `json:"comparison,omitempty"`
	Notes      []string          `json:"notes,omitempty"`
}

type runConfig struct {
	SLOs               int      `json:"slos"`
	Namespaces         int      `json:"namespaces"`
	Target             string   `json:"target"`
	Window             string   `json:"window"`
	EvaluationInterval string   `json:"evaluationInterval"`
	RuleInterval       string   `json:"prometheusEvaluationInterval"`
	SampleInterval     string   `json:"scrapeAndHistoryInterval"`
	History            string   `json:"history"`
	SeriesPerService   int      `json:"seriesPerService"`
	Phases             []string `json:"phases"`
	Warmup             string   `json:"warmup"`
	MeasuredIntervals  int      `json:"measuredIntervals"`
}

type perSLOSample struct {
	SLOs                int     `json:"slos"`
	Rules               int     `json:"rules"`
	Seconds             float64 `json:"seconds"`
	Blocks              int     `json:"blocks"`
	ExtrapolatedSeconds float64 `json:"extrapolatedSecondsForAllSLOs"`
	ExtrapolatedBlocks  int     `json:"extrapolatedBlocksForAllSLOs"`
}

type setup struct {
	APIServerSeconds       float64       `json:"apiServerSeconds"`
	SLOsCreatedSeconds     float64       `json:"slosCreatedSeconds"`
	HistorySamples         int           `json:"historySamples"`
	HistoryFileBytes       int64         `json:"historyFileBytes"`
	HistoryWriteSeconds    float64       `json:"historyWriteSeconds"`
	HistoryBackfillSeconds float64       `json:"historyBackfillSeconds"`
	PerSLOBackfillSample   *perSLOSample `json:"perSLOBackfillSample,omitempty"`
	RuleBackfillSeconds    float64       `json:"ruleBackfillSeconds"`
	RuleBackfillBlocks     int           `json:"ruleBackfillBlocks"`
	PrometheusStartSeconds float64       `json:"prometheusStartSeconds"`
	BackfillChecks         int           `json:"backfillChecks"`
	ManagerStartSeconds    float64       `json:"managerStartSeconds"`
	FirstRoundSeconds      float64       `json:"firstRoundSeconds"`
	CompactionSeconds      float64       `json:"compactionWaitSeconds"`
	PrometheusBlocks       float64       `json:"prometheusBlocksAfterCompaction"`
	TotalSeconds           float64       `json:"totalSeconds"`
}

// phase is one measured phase: raw or recorded.
type phase struct {
	Kind  string `json:"kind"`
	Round int    `json:"round"`
	// SwitchSeconds: from the switch until every SLO evaluated the phase's
	// way; then Warmup passed before the first interval.
	SwitchSeconds float64     `json:"switchSeconds"`
	Start         time.Time   `json:"start"`
	End           time.Time   `json:"end"`
	Intervals     []interval  `json:"intervals"`
	Summary       phaseTotals `json:"summary"`
}

// phaseTotals are a phase's intervals averaged per evaluation interval,
// and its evaluation lag over all of them.
type phaseTotals struct {
	Reconciles       float64            `json:"reconcilesPerInterval"`
	ManagerQueries   float64            `json:"managerQueriesPerInterval"`
	APIQueries       float64            `json:"prometheusApiQueriesPerInterval"`
	APIQuerySeconds  float64            `json:"prometheusApiQuerySecondsPerInterval"`
	EngineQueries    float64            `json:"engineQueriesPerInterval"`
	EngineSeconds    float64            `json:"engineSecondsPerInterval"`
	RuleEvalSeconds  float64            `json:"ruleEvaluationSecondsPerInterval"`
	RuleGroupSeconds float64            `json:"ruleGroupSecondsPerInterval"`
	RuleEvaluations  float64            `json:"ruleEvaluationsPerInterval"`
	RuleGroupsMissed float64            `json:"ruleGroupIterationsMissed"`
	RuleFailures     float64            `json:"ruleEvaluationFailures"`
	EvalMean         float64            `json:"evaluationMeanSeconds"`
	EvalP50          float64            `json:"evaluationP50Seconds"`
	EvalP99          float64            `json:"evaluationP99Seconds"`
	QueueWaitMean    float64            `json:"queueWaitMeanSeconds"`
	CPUSeconds       map[string]float64 `json:"cpuSecondsPerInterval"`
	OtherCores       float64            `json:"otherCores"`
	Load1Min         float64            `json:"loadAverage1mMin"`
	Load1Max         float64            `json:"loadAverage1mMax"`
	PromHeadSeries   float64            `json:"prometheusHeadSeriesAtEnd"`
	PromHeapBytes    float64            `json:"prometheusHeapInuseBytesAtEnd"`
	Lag              lagStats           `json:"lag"`
}

func totals(ivs []interval, lag lagStats, intervalLen time.Duration) phaseTotals {
	t := phaseTotals{CPUSeconds: map[string]float64{}, Lag: lag, Load1Min: math.Inf(1)}
	secs := 0.0
	var evalMean, evalP50, evalP99, queue, other float64
	for _, iv := range ivs {
		secs += iv.Seconds
		t.Reconciles += iv.Reconciles
		t.ManagerQueries += iv.ManagerQueries
		t.APIQueries += iv.APIQueries
		t.APIQuerySeconds += iv.APIQuerySeconds
		t.EngineQueries += iv.EngineQueries
		t.EngineSeconds += iv.EngineSeconds
		t.RuleEvalSeconds += iv.RuleEvalSeconds
		t.RuleGroupSeconds += iv.RuleGroupSeconds
		t.RuleEvaluations += iv.RuleEvaluations
		t.RuleGroupsMissed += iv.RuleGroupsMissed
		t.RuleFailures += iv.RuleFailures
		for k, v := range iv.CPUSeconds {
			t.CPUSeconds[k] += v
		}
		evalMean += iv.EvalMean
		evalP50 += iv.EvalP50
		evalP99 = max(evalP99, iv.EvalP99)
		queue += iv.QueueWaitMean
		other += iv.OtherCores * iv.Seconds
		t.Load1Min, t.Load1Max = min(t.Load1Min, iv.Load1), max(t.Load1Max, iv.Load1)
	}
	if secs == 0 {
		return t
	}
	t.PromHeadSeries, t.PromHeapBytes = ivs[len(ivs)-1].PromHeadSeries, ivs[len(ivs)-1].PromHeapBytes
	per := intervalLen.Seconds() / secs
	n := float64(len(ivs))
	for _, p := range []*float64{&t.Reconciles, &t.ManagerQueries, &t.APIQueries, &t.APIQuerySeconds, &t.EngineQueries,
		&t.EngineSeconds, &t.RuleEvalSeconds, &t.RuleGroupSeconds, &t.RuleEvaluations} {
		*p = round3(*p * per)
	}
	for k, v := range t.CPUSeconds {
		t.CPUSeconds[k] = round3(v * per)
	}
	t.EvalMean, t.EvalP50, t.EvalP99 = round3(evalMean/n), round3(evalP50/n), evalP99
	t.QueueWaitMean = round3(queue / n)
	t.OtherCores = round3(other / secs)
	return t
}

// comparison is recorded ÷ raw for one pair of phases (or all of them).
type comparison struct {
	Pair            string  `json:"pair"`
	ManagerQueries  float64 `json:"managerQueries"`
	APIQuerySeconds float64 `json:"prometheusApiQuerySeconds"`
	EngineSeconds   float64 `json:"engineSeconds"`
	PrometheusCPU   float64 `json:"prometheusCpu"`
	ManagerCPU      float64 `json:"managerCpu"`
	LagP50          float64 `json:"lagP50"`
	LagP99          float64 `json:"lagP99"`
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0 // undefined; JSON has no NaN
	}
	return math.Round(a/b*1000) / 1000
}

func compare(name string, raw, rec phaseTotals) comparison {
	return comparison{
		Pair:            name,
		ManagerQueries:  ratio(rec.ManagerQueries, raw.ManagerQueries),
		APIQuerySeconds: ratio(rec.APIQuerySeconds, raw.APIQuerySeconds),
		EngineSeconds:   ratio(rec.EngineSeconds, raw.EngineSeconds),
		PrometheusCPU:   ratio(rec.CPUSeconds[procPrometheus], raw.CPUSeconds[procPrometheus]),
		ManagerCPU:      ratio(rec.CPUSeconds[procManager], raw.CPUSeconds[procManager]),
		LagP50:          ratio(rec.Lag.LagP50, raw.Lag.LagP50),
		LagP99:          ratio(rec.Lag.LagP99, raw.Lag.LagP99),
	}
}

// comparisons pairs each recorded phase with the last phase of each raw
// kind before it (ABC ABC: raw 1 and raw-rules 1 with recorded 1, ...), then
// all phases of a kind with all recorded ones.
func comparisons(phases []*phase, intervalLen time.Duration) []comparison {
	var out []comparison
	last := map[string]*phase{}
	all := map[string][]interval{}
	for _, p := range phases {
		all[p.Kind] = append(all[p.Kind], p.Intervals...)
		if p.Kind != kindRecorded {
			last[p.Kind] = p
			continue
		}
		for _, k := range []string{kindRaw, kindRawRules} {
			if r := last[k]; r != nil {
				out = append(out, compare(fmt.Sprintf("%s %d → recorded %d", k, r.Round, p.Round), r.Summary, p.Summary))
			}
		}
	}
	if len(out) > 2 || (len(out) > 1 && (len(all[kindRaw]) == 0 || len(all[kindRawRules]) == 0)) {
		rec := totals(all[kindRecorded], meanLag(phases, kindRecorded), intervalLen)
		for _, k := range []string{kindRaw, kindRawRules} {
			if len(all[k]) > 0 {
				out = append(out, compare("all "+k+" → all recorded", totals(all[k], meanLag(phases, k), intervalLen), rec))
			}
		}
	}
	return out
}

// meanLag averages the lag percentiles of the phases of a kind (each
// phase's percentiles are over its own evaluations).
func meanLag(phases []*phase, kind string) lagStats {
	var l lagStats
	n := 0.0
	for _, p := range phases {
		if p.Kind != kind {
			continue
		}
		n++
		l.LagP50 += p.Summary.Lag.LagP50
		l.LagP99 += p.Summary.Lag.LagP99
	}
	if n > 0 {
		l.LagP50, l.LagP99 = round3(l.LagP50/n), round3(l.LagP99/n)
	}
	return l
}

func (r *report) print(w io.Writer) {
	fmt.Fprintf(w, "\nbench-evaluation: %d SLOs (%s, %s window, evaluated every %s), Prometheus rules every %s, samples every %s\n",
		r.Config.SLOs, r.Config.Target, r.Config.Window, r.Config.EvaluationInterval, r.Config.RuleInterval, r.Config.SampleInterval)
	fmt.Fprintf(w, "machine: %s, %d CPUs, %s %s; commit %s (dirty %v); %v\n",
		r.Machine.Host, r.Machine.CPUs, r.Machine.OSArch, r.Machine.GoVersion, r.Machine.Commit, r.Machine.Dirty, r.Versions)
	s := r.Setup
	fmt.Fprintf(w, "\nsetup: %.0fs in all — history %d samples written in %.1fs, backfilled in %.1fs; base-window counts backfilled in %.1fs (%d blocks); "+
		"Prometheus compaction waited %.1fs; first round of evaluations %.1fs\n",
		s.TotalSeconds, s.HistorySamples, s.HistoryWriteSeconds, s.HistoryBackfillSeconds, s.RuleBackfillSeconds, s.RuleBackfillBlocks,
		s.CompactionSeconds, s.FirstRoundSeconds)
	if p := s.PerSLOBackfillSample; p != nil {
		fmt.Fprintf(w, "per-SLO rule backfill sample: %d SLOs (%d rules) in %.1fs, %d blocks → about %.0fs and %d blocks for %d SLOs\n",
			p.SLOs, p.Rules, p.Seconds, p.Blocks, p.ExtrapolatedSeconds, p.ExtrapolatedBlocks, r.Config.SLOs)
	}
	fmt.Fprintf(w, "\nper evaluation interval (%s), averaged over each phase's %d intervals:\n\n", r.Config.EvaluationInterval, r.Config.MeasuredIntervals)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "phase\tevaluations\tqueries (manager)\tAPI queries (Prometheus)\tAPI query s\trule eval s\tengine s\tlag p50 s\tlag p99 s\tgap p99 s\teval p50 s\teval p99 s\tmanager CPU s\tPrometheus CPU s\tapiserver+etcd CPU s\tother cores\tload\t")
	for _, p := range r.Phases {
		t := p.Summary
		fmt.Fprintf(tw, "%s %d\t%.0f\t%.0f\t%.0f\t%.2f\t%.2f\t%.2f\t%.3f\t%.3f\t%.0f\t%.3f\t%.3f\t%.2f\t%.2f\t%.2f\t%.2f\t%.1f–%.1f\t\n",
			p.Kind, p.Round, float64(t.Lag.Evaluations)/float64(max(1, len(p.Intervals))), t.ManagerQueries, t.APIQueries, t.APIQuerySeconds, t.RuleEvalSeconds, t.EngineSeconds,
			t.Lag.LagP50, t.Lag.LagP99, t.Lag.GapP99, t.EvalP50, t.EvalP99,
			t.CPUSeconds[procManager], t.CPUSeconds[procPrometheus], t.CPUSeconds[procAPIServer]+t.CPUSeconds[procEtcd], t.OtherCores, t.Load1Min, t.Load1Max)
	}
	_ = tw.Flush()
	if len(r.Comparison) > 0 {
		fmt.Fprintf(w, "\nrecorded ÷ raw:\n\n")
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "pair\tqueries\tAPI query s\tengine s\tPrometheus CPU\tmanager CPU\tlag p50\tlag p99\t")
		for _, c := range r.Comparison {
			fmt.Fprintf(tw, "%s\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t\n", c.Pair, c.ManagerQueries, c.APIQuerySeconds, c.EngineSeconds,
				c.PrometheusCPU, c.ManagerCPU, c.LagP50, c.LagP99)
		}
		_ = tw.Flush()
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
}

func writeJSON(dir string, r *report) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	path := filepath.Join(dir, "evaluation-"+r.StartedAt.UTC().Format("20060102-150405")+".json")
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return "", err
	}
	return path, os.WriteFile(path, append(data, '\n'), 0o644)
}
