package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// phaseResult is one phase's measurement.
type phaseResult struct {
	Phase   phase     `json:"phase"`
	Group   string    `json:"group"`
	Started time.Time `json:"started"`
	// Latency is each request's own time, from sending to the answer.
	Latency Summary `json:"latency"`
	// FromDue adds the time a request waited for a free worker after it was
	// due (open-loop: what a client wanting to send then would have seen).
	FromDue Summary `json:"latencyFromDue"`
	// Late counts requests that left more than one interval (1/rate) after
	// they were due: the workers could not keep up.
	Late int `json:"late"`
	// Rate is the achieved rate of sending.
	Rate   float64    `json:"achievedRate"`
	Counts counts     `json:"counts"`
	Errors []string   `json:"errors,omitempty"`
	Server ServerView `json:"server"`
	CPU    CPUUse     `json:"cpu"`
	// Conns are the API server's connections into the webhook server called.
	Conns ConnUse `json:"webhookConnections"`
	// Profiles are the CPU profiles taken during the phase.
	Profiles []string `json:"profiles,omitempty"`

	latencies, fromDue []time.Duration
}

// add records the samples of the measured requests.
func (r *phaseResult) add(samples []sample, rate float64) {
	r.Group = r.Phase.group()
	interval := time.Duration(float64(time.Second) / rate)
	seen := map[string]bool{}
	for _, s := range samples {
		r.latencies = append(r.latencies, s.Latency())
		r.fromDue = append(r.fromDue, s.FromDue())
		if s.Delay() > interval {
			r.Late++
		}
		r.Counts.add(s.Outcome)
		if s.Outcome != outcomeOK && !seen[s.Err] && len(r.Errors) < 5 {
			seen[s.Err] = true
			r.Errors = append(r.Errors, fmt.Sprintf("%s: %s", s.Outcome, s.Err))
		}
	}
	r.Latency = summarize(r.latencies)
	r.FromDue = summarize(r.fromDue)
	r.Rate = achievedRate(samples)
}

func (r phaseResult) line() string {
	s := fmt.Sprintf("%s: p50 %.2f p90 %.2f p99 %.2f max %.2f ms, %.0f/s, %d late; %s; %s",
		r.Phase, r.Latency.P50, r.Latency.P90, r.Latency.P99, r.Latency.Max, r.Rate, r.Late, countsText(r.Counts), r.Server)
	if r.Phase.Kind != kindNoWebhook {
		s += fmt.Sprintf("; %d connections into the webhook, %d new", r.Conns.Open, r.Conns.New)
	}
	return s
}

func countsText(c counts) string {
	return fmt.Sprintf("ok %d, fail-open %d, unexpected deny %d, errors %d", c.OK, c.FailOpen, c.UnexpectedDeny, c.Errors)
}

// groupResult pools the phases of one group over the rounds.
type groupResult struct {
	Group   string  `json:"group"`
	Kind    kind    `json:"kind"`
	Variant string  `json:"variant,omitempty"`
	Phases  int     `json:"phases"`
	Latency Summary `json:"latency"`
	FromDue Summary `json:"latencyFromDue"`
	Late    int     `json:"late"`
	Counts  counts  `json:"counts"`
	// Server and CPU are the means over the phases.
	Server ServerView `json:"server"`
	CPU    CPUUse     `json:"cpu"`
	// Conns: the most connections open at a phase's end, and all new ones.
	Conns ConnUse `json:"webhookConnections"`

	latencies, fromDue []time.Duration
}

// ratioResult compares a group with the no-webhook group.
type ratioResult struct {
	Group string `json:"group"`
	// Pooled is the ratio of the pooled percentiles.
	Pooled Ratio `json:"pooled"`
	// PairP50 and PairP99 spread the ratios of each webhook phase and the
	// no-webhook phase measured next to it (webhook groups only).
	PairP50 Spread `json:"pairP50,omitzero"`
	PairP99 Spread `json:"pairP99,omitzero"`
}

// machine describes where the numbers were taken.
type machine struct {
	CPUs           int      `json:"cpus"`
	Model          string   `json:"cpuModel"`
	Kernel         string   `json:"kernel"`
	Go             string   `json:"go"`
	Commit         string   `json:"commit"`
	Modified       []string `json:"modified,omitempty"`
	LoadAvgStart   string   `json:"loadAvgStart"`
	LoadAvgEnd     string   `json:"loadAvgEnd"`
	KubeAPIVersion string   `json:"kubeApiserver,omitempty"`
}

type report struct {
	Started time.Time     `json:"started"`
	Machine machine       `json:"machine"`
	Options options       `json:"options"`
	Plan    []phase       `json:"plan"`
	Phases  []phaseResult `json:"phases"`
	Groups  []groupResult `json:"groups"`
	Ratios  []ratioResult `json:"ratios"`
	Targets []target      `json:"targets"`
}

// target is one of the design's performance targets, as measured: reported,
// never asserted.
type target struct {
	Name  string `json:"name"`
	Value string `json:"value"`
	Met   bool   `json:"met"`
}

// finish pools the phases into groups (leaving out profiled ones), takes the
// ratios and checks the targets.
func (r *report) finish() {
	r.Groups = pool(r.Phases)
	r.Ratios = ratios(r.Phases, r.Groups)
	r.Targets = targets(r.Groups, r.Ratios, r.Phases)
}

func pool(phases []phaseResult) []groupResult {
	var out []groupResult
	index := map[string]int{}
	for _, p := range phases {
		if p.Phase.Profiled {
			continue
		}
		i, ok := index[p.Group]
		if !ok {
			i = len(out)
			index[p.Group] = i
			out = append(out, groupResult{Group: p.Group, Kind: p.Phase.Kind, Variant: p.Phase.Variant,
				CPU: CPUUse{Cores: map[string]float64{}}, Server: ServerView{Decisions: map[string]float64{}}})
		}
		g := &out[i]
		g.Phases++
		g.latencies = append(g.latencies, p.latencies...)
		g.fromDue = append(g.fromDue, p.fromDue...)
		g.Late += p.Late
		g.Counts.merge(p.Counts)
		addServer(&g.Server, p.Server)
		addCPU(&g.CPU, p.CPU)
		g.Conns.Open = max(g.Conns.Open, p.Conns.Open)
		g.Conns.New += p.Conns.New
	}
	for i := range out {
		g := &out[i]
		g.Latency = summarize(g.latencies)
		g.FromDue = summarize(g.fromDue)
		n := float64(g.Phases)
		scaleServer(&g.Server, n)
		g.CPU.Other /= n
		g.CPU.Machine /= n
		for k := range g.CPU.Cores {
			g.CPU.Cores[k] /= n
		}
	}
	return out
}

func addServer(a *ServerView, b ServerView) {
	a.PatchMeanMs += b.PatchMeanMs
	a.WebhookCalls += b.WebhookCalls
	a.WebhookMeanMs += b.WebhookMeanMs
	a.MatchMeanMs += b.MatchMeanMs
	a.HistoryLists += b.HistoryLists
	a.HistoryListMeanMs += b.HistoryListMeanMs
	a.SARs += b.SARs
	a.SARMeanMs += b.SARMeanMs
	a.HandlerMeanMs += b.HandlerMeanMs
	a.HandlerRequests += b.HandlerRequests
	a.FailOpen += b.FailOpen
	for k, v := range b.Decisions {
		a.Decisions[k] += v
	}
}

// scaleServer turns sums over n phases into means, except the counts
// (calls, requests, fail-open, decisions), which stay totals.
func scaleServer(a *ServerView, n float64) {
	a.PatchMeanMs /= n
	a.WebhookMeanMs /= n
	a.MatchMeanMs /= n
	a.HistoryListMeanMs /= n
	a.SARMeanMs /= n
	a.HandlerMeanMs /= n
}

func addCPU(a *CPUUse, b CPUUse) {
	for k, v := range b.Cores {
		a.Cores[k] += v
	}
	a.Other += b.Other
	a.Machine += b.Machine
}

func ratios(phases []phaseResult, groups []groupResult) []ratioResult {
	var none *groupResult
	for i := range groups {
		if groups[i].Kind == kindNoWebhook {
			none = &groups[i]
		}
	}
	if none == nil {
		return nil
	}
	ps := make([]phase, len(phases))
	for i, p := range phases {
		ps[i] = p.Phase
	}
	pairP50, pairP99 := map[string][]float64{}, map[string][]float64{}
	for _, pr := range pairs(ps) {
		a, b := phases[pr.Webhook], phases[pr.NoWebhook]
		rr := ratio(a.Latency, b.Latency)
		pairP50[a.Group] = append(pairP50[a.Group], rr.P50)
		pairP99[a.Group] = append(pairP99[a.Group], rr.P99)
	}
	var out []ratioResult
	for _, g := range groups {
		if g.Kind == kindNoWebhook {
			continue
		}
		out = append(out, ratioResult{Group: g.Group, Pooled: ratio(g.Latency, none.Latency),
			PairP50: spread(pairP50[g.Group]), PairP99: spread(pairP99[g.Group])})
	}
	return out
}

// The design's targets (DESIGN.md, "Performance targets"; issue 9).
const (
	targetAddedP50  = 0.10 // added p50 at most 10% over no webhook
	targetP99Millis = 25.0 // webhook p99 at most 25 ms
)

func targets(groups []groupResult, rs []ratioResult, phases []phaseResult) []target {
	var out []target
	for _, r := range rs {
		g := groupByName(groups, r.Group)
		if g.Kind == kindWebhook {
			out = append(out, target{
				Name:  fmt.Sprintf("%s: added p50 ≤ %.0f%% over no webhook", r.Group, targetAddedP50*100),
				Value: fmt.Sprintf("+%.1f%% (%.2f ms)", (r.Pooled.P50-1)*100, r.Pooled.AddedP50Ms),
				Met:   r.Pooled.P50 <= 1+targetAddedP50,
			})
		}
		out = append(out, target{Name: fmt.Sprintf("%s: p99 ≤ %.0f ms", r.Group, targetP99Millis),
			Value: fmt.Sprintf("%.2f ms", g.Latency.P99), Met: g.Latency.P99 <= targetP99Millis})
	}
	var c counts
	var apiFailOpen float64
	for _, p := range phases {
		c.merge(p.Counts)
		apiFailOpen += p.Server.FailOpen
	}
	out = append(out, target{Name: "no request failing open",
		Value: fmt.Sprintf("%d seen by the client, %g counted by the API server "+
			"(apiserver_admission_webhook_fail_open_count)", c.FailOpen, apiFailOpen),
		Met: c.FailOpen == 0 && apiFailOpen == 0})
	out = append(out, target{Name: "no errors",
		Value: fmt.Sprintf("%d errors, %d unexpected denials", c.Errors, c.UnexpectedDeny),
		Met:   c.Errors == 0 && c.UnexpectedDeny == 0})
	return out
}

func groupByName(groups []groupResult, name string) groupResult {
	for _, g := range groups {
		if g.Group == name {
			return g
		}
	}
	return groupResult{}
}

// print writes the report's tables.
func (r *report) print(w io.Writer) {
	p := func(format string, args ...any) { _, _ = fmt.Fprintf(w, format, args...) }
	m := r.Machine
	p("\nAdmission through the API server: %d CPUs (%s), %s, kernel %s, commit %s\n",
		m.CPUs, m.Model, m.Go, m.Kernel, m.Commit)
	if len(m.Modified) > 0 {
		p("  modified in the working tree: %s\n", strings.Join(m.Modified, " "))
	}
	p("  %g updates/s, %d workers, %d measured updates per phase, %d rounds; load average %s → %s\n\n",
		r.Options.Rate, r.Options.Workers, r.Options.Updates, r.Options.Rounds, m.LoadAvgStart, m.LoadAvgEnd)

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	row := func(format string, args ...any) { _, _ = fmt.Fprintf(tw, format, args...) }
	row("phase\tn\tp50 ms\tp90 ms\tp99 ms\tmax ms\tp99 from due\tlate\tfail-open\terrors\t" +
		"PATCH (server) ms\twebhook call ms\thandler ms\t\n")
	for _, g := range r.Groups {
		row("%s\t%d\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%d\t%d\t%d\t%.2f\t%.2f\t%.2f\t\n", g.Group, g.Latency.Count,
			g.Latency.P50, g.Latency.P90, g.Latency.P99, g.Latency.Max, g.FromDue.P99, g.Late,
			g.Counts.FailOpen, g.Counts.Errors+g.Counts.UnexpectedDeny,
			g.Server.PatchMeanMs, g.Server.WebhookMeanMs, g.Server.HandlerMeanMs)
	}
	_ = tw.Flush()

	p("\nRatios to no-webhook (pooled; per side-by-side pair: min–median–max)\n")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	row("phase\tp50\tp90\tp99\tmax\tadded p50 ms\tpairs p50\tpairs p99\t\n")
	pairText := func(s Spread) string {
		if s.N == 0 {
			return "—"
		}
		return fmt.Sprintf("%.2f–%.2f–%.2f", s.Min, s.Median, s.Max)
	}
	for _, rr := range r.Ratios {
		row("%s\t%.2f\t%.2f\t%.2f\t%.2f\t%+.2f\t%s\t%s\t\n", rr.Group, rr.Pooled.P50, rr.Pooled.P90, rr.Pooled.P99,
			rr.Pooled.Max, rr.Pooled.AddedP50Ms, pairText(rr.PairP50), pairText(rr.PairP99))
	}
	_ = tw.Flush()

	p("\nCPU, cores used on average (2 cores = 2.0; other = the rest of the machine)\n")
	names := map[string]bool{}
	for _, g := range r.Groups {
		for k := range g.CPU.Cores {
			names[k] = true
		}
	}
	cols := slices.Sorted(maps.Keys(names))
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	row("phase\t%s\tother\tmachine\t\n", strings.Join(cols, "\t"))
	for _, g := range r.Groups {
		v := make([]string, 0, len(cols))
		for _, c := range cols {
			v = append(v, fmt.Sprintf("%.2f", g.CPU.Cores[c]))
		}
		row("%s\t%s\t%.2f\t%.2f\t\n", g.Group, strings.Join(v, "\t"), g.CPU.Other, g.CPU.Machine)
	}
	_ = tw.Flush()

	p("\nThe release gate's calls and decisions (measured requests)\n")
	for _, g := range r.Groups {
		keys := slices.Sorted(maps.Keys(g.Server.Decisions))
		parts := make([]string, 0, len(keys))
		for _, k := range keys {
			parts = append(parts, fmt.Sprintf("%s %g", k, g.Server.Decisions[k]))
		}
		p("  %-22s webhook calls %g, answered %g; %s", g.Group, g.Server.WebhookCalls, g.Server.HandlerRequests,
			strings.Join(parts, ", "))
		if g.Kind != kindNoWebhook {
			p("; connections into the webhook: %d open, %d new during the phases", g.Conns.Open, g.Conns.New)
		}
		if g.Server.HistoryLists > 0 {
			p("; ReplicaSet LIST %.2f ms (%g)", g.Server.HistoryListMeanMs, g.Server.HistoryLists)
		}
		if g.Server.SARs > 0 {
			p("; SubjectAccessReview %.2f ms (%g)", g.Server.SARMeanMs, g.Server.SARs)
		}
		p("\n")
	}

	p("\nTargets (reported, not asserted)\n")
	for _, t := range r.Targets {
		mark := "met"
		if !t.Met {
			mark = "NOT met"
		}
		p("  %-7s %s: %s\n", mark, t.Name, t.Value)
	}
	for _, ph := range r.Phases {
		if len(ph.Errors) > 0 {
			p("\n%s: first errors:\n  %s\n", ph.Phase, strings.Join(ph.Errors, "\n  "))
		}
		if len(ph.Profiles) > 0 {
			p("\n%s: profiles %s\n", ph.Phase, strings.Join(ph.Profiles, " "))
		}
	}
}

func (r *report) writeJSON(path string) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o644)
}

func machineInfo(root string) machine {
	m := machine{CPUs: runtime.NumCPU(), Go: runtime.Version(), LoadAvgStart: loadAvg()}
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(data), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.Model = strings.TrimSpace(v)
				break
			}
		}
	}
	if data, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(data))
	}
	git := func(args ...string) string {
		out, err := exec.Command("git", append([]string{"-C", root}, args...)...).Output()
		if err != nil {
			return ""
		}
		return strings.TrimSpace(string(out))
	}
	m.Commit = git("rev-parse", "--short", "HEAD")
	// What differs from the commit in the code the benchmark runs.
	paths := []string{"cmd", "internal", "api", "config/webhook", "test/bench/admission", "go.mod"}
	if out := git(append([]string{"status", "--porcelain", "--"}, paths...)...); out != "" {
		for l := range strings.SplitSeq(out, "\n") {
			m.Modified = append(m.Modified, strings.TrimSpace(l[2:]))
		}
	}
	return m
}

func loadAvg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}
