package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"github.com/spf13/cobra"
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	slov1alpha1 "github.com/budgetgate/budgetgate/api/v1alpha1"
	"github.com/budgetgate/budgetgate/internal/budget"
	"github.com/budgetgate/budgetgate/internal/policy"
	"github.com/budgetgate/budgetgate/internal/simulate"
	"github.com/budgetgate/budgetgate/internal/sli"
	"github.com/budgetgate/budgetgate/internal/sloview"
	"github.com/budgetgate/budgetgate/internal/workload"
)

type simulateOptions struct {
	prometheus string
	since      time.Duration
	until      string
	step       time.Duration
	policy     string
	target     string
	window     string
	output     string
	file       string
	width      int
}

func (r *root) simulateCommand() *cobra.Command {
	o := &simulateOptions{}
	cmd := &cobra.Command{
		Use:   "simulate SLO [-n NAMESPACE] --prometheus URL",
		Short: "When would this policy have frozen us? Replay it over Prometheus history",
		Long: `Replay an SLO's policy over its Prometheus history with range queries,
through the very evaluation code of budgetgate's controller: every --step it
evaluates what the controller would have measured then, carrying the freeze
state from one step to the next, and reports when the policy would have
frozen, paged (a Freeze rule firing), opened a ticket (a Warn rule firing)
and lifted, the time frozen, and the releases (ReplicaSets or
ControllerRevisions of the workloads the SLO gates) a freeze would have
denied.

What-ifs: --policy another ErrorBudgetPolicy (a name, "built-in", or a file),
--target and --window another objective. Output: a terminal chart and the
periods (default), -o json|yaml for scripts, -o svg|png for the chart as a
file (--file, default <slo>-simulate.<format>).

Prometheus must be reachable from here (e.g. kubectl port-forward) and keep
the history: --since plus the SLO window (default --since is the SLO window).`,
		Example: `  kubectl -n monitoring port-forward svc/prometheus-operated 9090 &
  kubectl budgetgate simulate checkout-availability -n shop --prometheus http://localhost:9090
  kubectl budgetgate simulate checkout-availability -n shop --prometheus http://localhost:9090 --policy strict --target 99.95 -o svg`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: r.completeSLOs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return r.runSimulate(cmd, o, args[0])
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.prometheus, "prometheus", os.Getenv("BUDGETGATE_PROMETHEUS_URL"), "base URL of the Prometheus HTTP API holding the SLO's history ($BUDGETGATE_PROMETHEUS_URL)")
	f.DurationVar(&o.since, "since", 0, "how far back to replay (default: the SLO window), e.g. 720h")
	f.StringVar(&o.until, "until", "", "the end of the replay, RFC 3339 (default: now)")
	f.DurationVar(&o.step, "step", 5*time.Minute, "evaluate every step (the controller evaluates every evaluationInterval, 1m by default)")
	f.StringVar(&o.policy, "policy", "", "what if: this ErrorBudgetPolicy (a name in the cluster, built-in, or a file) instead of the SLO's")
	f.StringVar(&o.target, "target", "", `what if: this target instead of the SLO's, e.g. "99.5"`)
	f.StringVar(&o.window, "window", "", "what if: this SLO window instead of the SLO's, e.g. 28d")
	f.StringVarP(&o.output, "output", "o", "", "output: empty for text with a terminal chart, json, yaml, svg or png")
	f.StringVar(&o.file, "file", "", "where -o svg|png writes the chart (default <slo>-simulate.<format>)")
	f.IntVar(&o.width, "width", 72, "the terminal chart's width")
	return cmd
}

// Simulation is what simulate reports (the -o json|yaml document).
type Simulation struct {
	Namespace   string               `json:"namespace"`
	SLO         string               `json:"slo"`
	Policy      string               `json:"policy"`
	Target      string               `json:"target"`
	Window      string               `json:"window"`
	From        time.Time            `json:"from"`
	To          time.Time            `json:"to"`
	Step        string               `json:"step"`
	Evaluations int                  `json:"evaluations"`
	Freezes     []simulate.Period    `json:"freezes"`
	FrozenHours float64              `json:"frozenHours"`
	Pages       []simulate.Period    `json:"pages"`
	Tickets     []simulate.Period    `json:"tickets"`
	Releases    int                  `json:"releases"`
	Denied      []simulate.Release   `json:"deniedReleases"`
	BudgetLeft  *float64             `json:"budgetLeftAtEnd,omitempty"`
	Thresholds  []simulate.Threshold `json:"thresholds"`
	Took        string               `json:"took"`

	result simulate.Result
}

func (r *root) runSimulate(cmd *cobra.Command, o *simulateOptions, name string) error {
	switch o.output {
	case "", outputJSON, outputYAML, "svg", "png":
	default:
		return fmt.Errorf("-o %s: the formats are text (empty), json, yaml, svg and png", o.output)
	}
	if o.prometheus == "" {
		return errors.New("--prometheus: give the URL of the Prometheus that holds the SLO's history (or set $BUDGETGATE_PROMETHEUS_URL); kubectl port-forward reaches one in the cluster")
	}
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	c, ns, err := r.cluster()
	if err != nil {
		return err
	}
	until := time.Now()
	if o.until != "" {
		if until, err = time.Parse(time.RFC3339, o.until); err != nil {
			return fmt.Errorf("--until %q: write an RFC 3339 time, e.g. 2026-12-01T00:00:00Z", o.until)
		}
	}
	src, err := sli.NewPrometheus(o.prometheus, sli.WithTimeout(30*time.Second))
	if err != nil {
		return fmt.Errorf("--prometheus: %w", err)
	}
	sim, err := Simulate(ctx, c, src, SimulateRequest{Namespace: ns, SLO: name, Policy: o.policy, Target: o.target, Window: o.window,
		Since: o.since, Until: until, Step: o.step})
	if err != nil {
		return err
	}
	switch o.output {
	case outputJSON, outputYAML:
		return WriteStructured(r.streams.Out, o.output, sim)
	case "svg", "png":
		path := o.file
		if path == "" {
			path = name + "-simulate." + o.output
		}
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		frozenFor := shortDuration(time.Duration(sim.FrozenHours * float64(time.Hour)))
		title := fmt.Sprintf("%s/%s under policy %s: %s, %s frozen", ns, name, sim.Policy, countOf(len(sim.Freezes), "freeze"), frozenFor)
		if err := errors.Join(simulate.Chart(f, title, sim.result, sim.Thresholds, simulate.ChartFormat(o.output)), f.Close()); err != nil {
			return err
		}
		fmt.Fprintf(r.streams.Out, "wrote %s: %s, %s frozen, %d of %d releases denied\n", path, countOf(len(sim.Freezes), "freeze"),
			frozenFor, len(sim.Denied), sim.Releases)
		return nil
	}
	return sim.Render(r.streams.Out, o.width)
}

// SimulateRequest is what to replay.
type SimulateRequest struct {
	Namespace, SLO         string
	Policy, Target, Window string
	Since                  time.Duration
	Until                  time.Time
	Step                   time.Duration
}

// Simulate reads the SLO and its policy from the cluster (or the what-ifs),
// its history from src, and replays it.
func Simulate(ctx context.Context, c client.Client, src *sli.Prometheus, req SimulateRequest) (*Simulation, error) {
	started := time.Now()
	slo := &slov1alpha1.ServiceLevelObjective{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: req.Namespace, Name: req.SLO}, slo); err != nil {
		return nil, fmt.Errorf("ServiceLevelObjective %s/%s: %w", req.Namespace, req.SLO, err)
	}
	if req.Target != "" {
		slo.Spec.Target = slov1alpha1.Decimal(req.Target)
	}
	if req.Window != "" {
		slo.Spec.Window = slov1alpha1.Duration(req.Window)
	}
	o, err := policy.Objective(&slo.Spec)
	if err != nil {
		return nil, err
	}
	ind, err := policy.Indicator(&slo.Spec.Indicator)
	if err != nil {
		return nil, err
	}
	p, err := simulatedPolicy(ctx, c, slo, req.Policy)
	if err != nil {
		return nil, err
	}
	if err := policy.CheckWindows(o, string(slo.Spec.Window), p.Budget); err != nil {
		return nil, fmt.Errorf("policy %q does not fit window %s: %w", p.Name, slo.Spec.Window, err)
	}
	since := req.Since
	if since <= 0 {
		since = o.Window
	}
	if req.Step <= 0 {
		return nil, errors.New("--step must be positive")
	}
	end := req.Until.Truncate(req.Step)
	start := end.Add(-since)
	windows := budget.Windows(o, p.Budget)
	series, err := src.MeasureRange(ctx, ind, windows, start, end, req.Step)
	if err != nil {
		return nil, fmt.Errorf("reading the history: %w", err)
	}
	history := simulate.History{}
	for w, s := range series {
		for at, res := range s {
			if history[at] == nil {
				history[at] = budget.Measurements{}
			}
			history[at][w] = budget.Measurement{ErrorRatio: res.ErrorRatio, Events: res.Events, OK: true}
		}
	}
	releases, err := releasesOf(ctx, c, slo, start, end)
	if err != nil {
		return nil, err
	}
	res, err := simulate.Replay(simulate.Input{Objective: o, Policy: p.Budget, Start: start, End: end, Step: req.Step,
		History: history, Releases: releases})
	if err != nil {
		return nil, err
	}
	sim := &Simulation{Namespace: slo.Namespace, SLO: slo.Name, Policy: p.Name, Target: string(slo.Spec.Target), Window: string(slo.Spec.Window),
		From: start.UTC(), To: end.UTC(), Step: model.Duration(req.Step).String(), Evaluations: len(res.Points),
		Freezes: res.Freezes, FrozenHours: res.FrozenFor.Hours(), Pages: res.Pages, Tickets: res.Tickets,
		Releases: len(releases), Denied: res.Denied, Thresholds: simulate.Thresholds(o, p.Budget), result: res}
	if last := res.Points[len(res.Points)-1]; last.HasBudget {
		v := last.Remaining
		sim.BudgetLeft = &v
	}
	for _, list := range [][]simulate.Period{sim.Freezes, sim.Pages, sim.Tickets} {
		for i := range list {
			list[i].From, list[i].To = list[i].From.UTC(), list[i].To.UTC()
		}
	}
	if sim.Freezes == nil {
		sim.Freezes = []simulate.Period{}
	}
	if sim.Denied == nil {
		sim.Denied = []simulate.Release{}
	}
	sim.Took = time.Since(started).Round(time.Millisecond).String()
	return sim, nil
}

// simulatedPolicy is the SLO's policy as the controller resolves it, or the
// what-if: a policy named in the cluster, built-in, or a file.
func simulatedPolicy(ctx context.Context, c client.Reader, slo *slov1alpha1.ServiceLevelObjective, what string) (policy.Policy, error) {
	switch {
	case what == "":
		res, err := policy.ResolveBinding(ctx, c, slo)
		if err != nil {
			return policy.Policy{}, fmt.Errorf("resolving the SLO's policy: %w", err)
		}
		return res.Policy, nil
	case what == slov1alpha1.BuiltInPolicyName:
		return policy.Builtin(), nil
	case strings.ContainsAny(what, "/.") || fileExists(what):
		data, err := os.ReadFile(what)
		if err != nil {
			return policy.Policy{}, fmt.Errorf("--policy: %w", err)
		}
		ebp := &slov1alpha1.ErrorBudgetPolicy{}
		if err := yaml.UnmarshalStrict(data, ebp); err != nil {
			return policy.Policy{}, fmt.Errorf("--policy %s: not an ErrorBudgetPolicy: %w", what, err)
		}
		if ebp.Kind != "ErrorBudgetPolicy" {
			return policy.Policy{}, fmt.Errorf("--policy %s: kind %q, want ErrorBudgetPolicy", what, ebp.Kind)
		}
		return policy.FromSpec(ebp.Name, &ebp.Spec)
	}
	ebp := &slov1alpha1.ErrorBudgetPolicy{}
	if err := c.Get(ctx, client.ObjectKey{Name: what}, ebp); err != nil {
		return policy.Policy{}, fmt.Errorf("--policy %s: %w", what, err)
	}
	return policy.FromSpec(ebp.Name, &ebp.Spec)
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// releasesOf lists the releases of the workloads the SLO selects between
// start and end: their ReplicaSets or ControllerRevisions created then.
func releasesOf(ctx context.Context, c client.Reader, slo *slov1alpha1.ServiceLevelObjective, start, end time.Time) ([]simulate.Release, error) {
	sel := sloview.Selector(slo)
	if sel == nil {
		return nil, nil
	}
	var out []simulate.Release
	for _, kind := range workload.Default().All() {
		metas, err := kind.ListMeta(ctx, c, slo.Namespace, client.MatchingLabelsSelector{Selector: sel})
		if err != nil {
			if workload.NotServed(err) {
				continue
			}
			return nil, fmt.Errorf("listing %ss: %w", kind.GVK.Kind, err)
		}
		for _, m := range metas {
			uid := m.UID
			ref := kind.GVK.Kind + "/" + m.Name
			within := func(t time.Time) bool { return !t.Before(start) && !t.After(end) }
			if kind.History == workload.ReplicaSets {
				list := &appsv1.ReplicaSetList{}
				if err := c.List(ctx, list, client.InNamespace(slo.Namespace)); err != nil {
					return nil, err
				}
				for _, rs := range list.Items {
					if workload.ControlledBy(rs.OwnerReferences, uid) && within(rs.CreationTimestamp.Time) {
						out = append(out, simulate.Release{At: rs.CreationTimestamp.UTC(), Workload: ref, Revision: rs.Name})
					}
				}
				continue
			}
			list := &appsv1.ControllerRevisionList{}
			if err := c.List(ctx, list, client.InNamespace(slo.Namespace), client.MatchingLabelsSelector{Selector: labels.Everything()}); err != nil {
				return nil, err
			}
			for _, cr := range list.Items {
				if workload.ControlledBy(cr.OwnerReferences, uid) && within(cr.CreationTimestamp.Time) {
					out = append(out, simulate.Release{At: cr.CreationTimestamp.UTC(), Workload: ref, Revision: cr.Name})
				}
			}
		}
	}
	return out, nil
}

// Render writes the simulation for a person: the periods and a terminal chart.
func (s *Simulation) Render(w io.Writer, width int) error {
	if err := s.RenderText(w); err != nil {
		return err
	}
	return simulate.Terminal(w, s.result, width, 10)
}

// RenderText writes the periods of the simulation, without the chart.
func (s *Simulation) RenderText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Policy %q over %s/%s (target %s%% over %s), %s → %s, every %s (%d evaluations, %s):\n",
		s.Policy, s.Namespace, s.SLO, s.Target, s.Window, s.From.Format("2006-01-02 15:04Z"), s.To.Format("2006-01-02 15:04Z"), s.Step, s.Evaluations, s.Took)
	span := s.To.Sub(s.From).Hours()
	fmt.Fprintf(&b, "  %s, %s frozen in all (%.1f%% of the time)\n", countOf(len(s.Freezes), "freeze"), shortDuration(time.Duration(s.FrozenHours*float64(time.Hour))), 100*s.FrozenHours/span)
	for _, f := range s.Freezes {
		open := ""
		if f.Open {
			open = " (still frozen)"
		}
		fmt.Fprintf(&b, "    %s → %s  %-8s %s%s\n", f.From.Format("2006-01-02 15:04"), f.To.Format("2006-01-02 15:04"), shortDuration(f.Duration()), f.Rule, open)
	}
	fmt.Fprintf(&b, "  pages %d, tickets %d\n", len(s.Pages), len(s.Tickets))
	for _, p := range s.Pages {
		fmt.Fprintf(&b, "    page    %s → %s  %s\n", p.From.Format("2006-01-02 15:04"), p.To.Format("2006-01-02 15:04"), p.Rule)
	}
	for _, p := range s.Tickets {
		fmt.Fprintf(&b, "    ticket  %s → %s  %s\n", p.From.Format("2006-01-02 15:04"), p.To.Format("2006-01-02 15:04"), p.Rule)
	}
	fmt.Fprintf(&b, "  releases that would have been denied: %d of %d\n", len(s.Denied), s.Releases)
	for _, r := range s.Denied {
		fmt.Fprintf(&b, "    %s  %s (%s)\n", r.At.Format("2006-01-02 15:04"), r.Workload, r.Revision)
	}
	if s.BudgetLeft != nil {
		fmt.Fprintf(&b, "  budget left at the end: %s\n", percent(*s.BudgetLeft))
	}
	b.WriteString("\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// countOf is "1 freeze", "2 freezes".
func countOf(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ses", n, noun)
}
