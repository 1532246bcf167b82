package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	slov1alpha1 "github.com/budgetgate/budgetgate/api/v1alpha1"
)

type statusOptions struct {
	allNamespaces bool
	output        string
	watch         bool
	interval      time.Duration
	color         string
}

func (r *root) statusCommand() *cobra.Command {
	o := &statusOptions{}
	cmd := &cobra.Command{
		Use:   "status [SLO] [-n NAMESPACE | -A]",
		Short: "Every SLO's budget, burn against its thresholds, freeze and time to exhaustion",
		Long: `Show the ServiceLevelObjectives of the namespace (-A: of every namespace): the
budget left as a bar, when it runs out at the current burn, each rule's value
against its threshold (▲ when it fires), the freeze (since when, until when at
least, by which rule) and the workloads it gates. --watch redraws. Colour only
on a terminal (--color=always|never to choose).`,
		Example: `  kubectl budgetgate status -n shop
  kubectl budgetgate status -A --watch
  kubectl budgetgate status checkout-availability -n shop -o json`,
		Args:              cobra.MaximumNArgs(1),
		ValidArgsFunction: r.completeSLOs,
		RunE: func(cmd *cobra.Command, args []string) error {
			name := ""
			if len(args) == 1 {
				name = args[0]
			}
			return r.runStatus(cmd, o, name)
		},
	}
	cmd.Flags().BoolVarP(&o.allNamespaces, "all-namespaces", "A", false, "the SLOs of every namespace")
	cmd.Flags().BoolVarP(&o.watch, "watch", "w", false, "redraw every --interval")
	cmd.Flags().DurationVar(&o.interval, "interval", 5*time.Second, "how often --watch redraws")
	cmd.Flags().StringVar(&o.color, "color", "auto", "auto (on a terminal), always or never")
	addOutputFlag(cmd, &o.output, "", "output format: empty for the table, yaml or json for scripts")
	return cmd
}

func (r *root) runStatus(cmd *cobra.Command, o *statusOptions, name string) error {
	if o.output != "" {
		if err := checkOutput(o.output, outputYAML, outputJSON); err != nil {
			return err
		}
		if o.watch {
			return fmt.Errorf("--watch draws the table; -o %s prints once", o.output)
		}
	}
	color, err := useColor(o.color, r.streams.Out)
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	for {
		_, slos, err := r.live(ctx, name, o.allNamespaces)
		if err != nil {
			return err
		}
		now := time.Now()
		if o.output != "" {
			return WriteStructured(r.streams.Out, o.output, Summaries(slos, now))
		}
		if o.watch && color {
			fmt.Fprint(r.streams.Out, "\x1b[H\x1b[2J") // home, clear: redraw in place
		}
		if err := RenderStatus(r.streams.Out, slos, now, StatusStyle{AllNamespaces: o.allNamespaces, Color: color}); err != nil {
			return err
		}
		if !o.watch {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(o.interval):
		}
	}
}

// useColor decides colour: always, never, or auto (when w is a terminal and
// NO_COLOR is unset).
func useColor(mode string, w io.Writer) (bool, error) {
	switch mode {
	case "always":
		return true, nil
	case "never":
		return false, nil
	case "auto":
		if os.Getenv("NO_COLOR") != "" {
			return false, nil
		}
		f, ok := w.(*os.File)
		if !ok {
			return false, nil
		}
		fi, err := f.Stat()
		return err == nil && fi.Mode()&os.ModeCharDevice != 0, nil
	}
	return false, fmt.Errorf("--color %s: auto, always or never", mode)
}

// StatusStyle says how RenderStatus draws.
type StatusStyle struct {
	AllNamespaces bool
	Color         bool
}

const (
	ansiRed    = "\x1b[31m"
	ansiYellow = "\x1b[33m"
	ansiGreen  = "\x1b[32m"
	ansiBold   = "\x1b[1m"
	ansiReset  = "\x1b[0m"
)

// RenderStatus writes the table of SLOs as of now. Colour is put on after
// the columns are aligned, so that escape sequences do not count as width.
func RenderStatus(w io.Writer, slos []*slov1alpha1.ServiceLevelObjective, now time.Time, style StatusStyle) error {
	type span struct{ text, code string }
	var paints [][]span
	var table strings.Builder
	tw := tabwriter.NewWriter(&table, 0, 4, 2, ' ', 0)
	header := "SLO\tBUDGET LEFT\tEXHAUSTED IN\tRULES (value/threshold)\tFREEZE\tGATED"
	if style.AllNamespaces {
		header = "NAMESPACE\t" + header
	}
	fmt.Fprintln(tw, header)
	for _, s := range slos {
		sum := Summary(s, now)
		var row []span
		var cols []string
		if style.AllNamespaces {
			cols = append(cols, s.Namespace)
		}
		budgetCol := "no data yet"
		if sum.BudgetLeft != nil {
			code := ansiGreen
			switch {
			case *sum.BudgetLeft <= 0:
				code = ansiRed
			case *sum.BudgetLeft < 0.25:
				code = ansiYellow
			}
			b := bar(*sum.BudgetLeft, 16)
			row = append(row, span{b, code})
			budgetCol = b + " " + percent(*sum.BudgetLeft)
		}
		var rules []string
		for _, ru := range sum.Rules {
			text := fmt.Sprintf("%s %s/%s", ru.Name, ru.Value, ru.Threshold)
			switch {
			case ru.Firing && ru.Action == string(slov1alpha1.ActionFreeze):
				text += " ▲"
				row = append(row, span{text, ansiRed + ansiBold})
			case ru.Firing:
				text += " ▲"
				row = append(row, span{text, ansiYellow})
			}
			rules = append(rules, text)
		}
		freezeCol := "-"
		if f := sum.Freeze; f != nil {
			freezeCol = f.Describe(now)
			row = append(row, span{freezeCol, ansiRed + ansiBold})
		}
		exhausted := sum.ExhaustedIn
		if exhausted == "" {
			exhausted = "-"
		}
		cols = append(cols, s.Name, budgetCol, exhausted, strings.Join(rules, "  "), freezeCol, strconv.Itoa(int(s.Status.GatedWorkloads)))
		fmt.Fprintln(tw, strings.Join(cols, "\t"))
		paints = append(paints, row)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	lines := strings.SplitAfter(table.String(), "\n")
	for i, line := range lines {
		if style.Color && i > 0 && i-1 < len(paints) {
			for _, sp := range paints[i-1] {
				line = strings.Replace(line, sp.text, sp.code+sp.text+ansiReset, 1)
			}
		}
		if _, err := io.WriteString(w, line); err != nil {
			return err
		}
	}
	return nil
}

// SLOSummary is what status says of one SLO (the -o json|yaml document).
type SLOSummary struct {
	Namespace      string        `json:"namespace"`
	Name           string        `json:"name"`
	Policy         string        `json:"policy,omitempty"`
	BudgetLeft     *float64      `json:"budgetLeft,omitempty"`
	ExhaustedIn    string        `json:"exhaustedIn,omitempty"`
	ExhaustsAt     *time.Time    `json:"exhaustsAt,omitempty"`
	Rules          []RuleSummary `json:"rules,omitempty"`
	Freeze         *FreezeInfo   `json:"freeze,omitempty"`
	GatedWorkloads int32         `json:"gatedWorkloads"`
	Evaluated      *time.Time    `json:"lastEvaluated,omitempty"`
}

// RuleSummary is one rule's value against its threshold.
type RuleSummary struct {
	Name      string `json:"name"`
	Action    string `json:"action"`
	Firing    bool   `json:"firing"`
	Value     string `json:"value"`
	Threshold string `json:"threshold"`
	Message   string `json:"message,omitempty"`
}

// FreezeInfo is an SLO's freeze.
type FreezeInfo struct {
	Mode      string     `json:"mode"`
	Since     *time.Time `json:"since,omitempty"`
	HoldUntil *time.Time `json:"holdUntil,omitempty"`
	Rule      string     `json:"rule,omitempty"`
	Reason    string     `json:"reason,omitempty"`
}

// Describe is the freeze in a few words: "frozen 41m (fast-burn), until ≥ 11:00Z".
func (f *FreezeInfo) Describe(now time.Time) string {
	word := "frozen"
	if f.Mode == string(slov1alpha1.ModeDryRun) {
		word = "frozen (DryRun)"
	}
	s := word
	if f.Since != nil {
		s += " " + shortDuration(now.Sub(*f.Since))
	}
	if f.Rule != "" {
		s += " (" + f.Rule + ")"
	}
	if f.HoldUntil != nil {
		if f.HoldUntil.After(now) {
			s += ", until ≥ " + f.HoldUntil.UTC().Format("15:04Z")
		} else {
			s += ", lifts when no Freeze rule fires"
		}
	}
	return s
}

// Summary is the summary of one SLO's status as of now.
func Summary(s *slov1alpha1.ServiceLevelObjective, now time.Time) SLOSummary {
	st := s.Status
	out := SLOSummary{Namespace: s.Namespace, Name: s.Name, Policy: st.Policy, GatedWorkloads: st.GatedWorkloads}
	if st.LastEvaluationTime != nil {
		t := st.LastEvaluationTime.UTC()
		out.Evaluated = &t
	}
	if eb := st.ErrorBudget; eb != nil {
		if v, err := strconv.ParseFloat(string(eb.Remaining), 64); err == nil {
			out.BudgetLeft = &v
		}
		out.ExhaustedIn = eb.ExhaustedIn
		if eb.ExhaustsAt != nil {
			t := eb.ExhaustsAt.UTC()
			out.ExhaustsAt = &t
		}
	}
	for _, r := range st.Rules {
		value, threshold := string(r.Value), string(r.Threshold)
		if isBurn(r, st) {
			value, threshold = times(value), times(threshold)
		} else {
			value, threshold = percentText(value), percentText(threshold)
		}
		out.Rules = append(out.Rules, RuleSummary{Name: r.Name, Action: string(r.Action), Firing: r.Firing, Value: value, Threshold: threshold, Message: r.Message})
	}
	if f := st.Freeze; f.Active {
		fi := &FreezeInfo{Mode: string(f.Mode), Rule: f.Rule, Reason: f.Reason}
		if fi.Mode == "" {
			fi.Mode = string(slov1alpha1.ModeEnforce)
		}
		if f.Since != nil {
			t := f.Since.UTC()
			fi.Since = &t
		}
		if f.HoldUntil != nil {
			t := f.HoldUntil.UTC()
			fi.HoldUntil = &t
		}
		out.Freeze = fi
	}
	return out
}

// Summaries are the summaries of slos.
func Summaries(slos []*slov1alpha1.ServiceLevelObjective, now time.Time) []SLOSummary {
	out := make([]SLOSummary, 0, len(slos))
	for _, s := range slos {
		out = append(out, Summary(s, now))
	}
	return out
}

// isBurn says whether a rule's value is a burn rate (else a budget): its
// message names a burn rate, or its threshold is above 1 (a budget bound is
// at most 1).
func isBurn(r slov1alpha1.RuleStatus, _ slov1alpha1.ServiceLevelObjectiveStatus) bool {
	if strings.Contains(r.Message, "burn rate") {
		return true
	}
	if strings.Contains(r.Message, "budget") {
		return false
	}
	t, err := strconv.ParseFloat(string(r.Threshold), 64)
	return err == nil && t > 1
}

func times(v string) string {
	if v == "" {
		return "-"
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return v
	}
	return trimNumber(f) + "x"
}

func percentText(v string) string {
	if v == "" {
		return "-"
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return v
	}
	return percent(f)
}

func percent(f float64) string { return strconv.FormatFloat(100*f, 'f', 1, 64) + "%" }

func trimNumber(f float64) string {
	s := strconv.FormatFloat(f, 'f', 2, 64)
	return strings.TrimSuffix(strings.TrimRight(strings.TrimRight(s, "0"), "."), ".")
}

// bar draws a fraction as width cells: █ spent budget is shown empty (░).
func bar(frac float64, width int) string {
	n := int(math.Round(math.Max(0, math.Min(1, frac)) * float64(width)))
	return strings.Repeat("█", n) + strings.Repeat("░", width-n)
}

// shortDuration is "41m", "3h12m", "2d4h".
func shortDuration(d time.Duration) string {
	d = d.Round(time.Minute)
	switch {
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd%dh", int(d.Hours())/24, int(d.Hours())%24)
}

// WriteStructured writes v as YAML or JSON.
func WriteStructured(w io.Writer, format string, v any) error {
	if format == outputJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	b, err := yaml.Marshal(v)
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}
