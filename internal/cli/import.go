package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/budgetgate/budgetgate/internal/importer"
)

type importOptions struct {
	files        []string
	policyPrefix string
	strict       bool
	slothPeriod  string
	output       string
}

func (r *root) importCommand() *cobra.Command {
	o := &importOptions{}
	cmd := &cobra.Command{
		Use:   "import [FILE...] [-f FILE]...",
		Short: "Convert Sloth, Pyrra and OpenSLO SLOs into budgetgate ServiceLevelObjectives",
		Long: `Convert SLOs into budgetgate ServiceLevelObjectives, and their alerting into
ErrorBudgetPolicies where it maps to burn-rate rules, printed as YAML for
kubectl apply -f:

  Sloth     sloth.slok.dev/v1 PrometheusServiceLevel and AlertWindows, and
            Sloth's CLI files (version: prometheus/v1)
  Pyrra     pyrra.dev/v1alpha1 ServiceLevelObjective
  OpenSLO   openslo/v1 SLO, SLI, AlertPolicy, AlertCondition, DataSource,
            Service, AlertNotificationTarget (inline or referred to by name
            within the files given)

What budgetgate does not keep of a source, or keeps with another meaning, is
listed on stderr and in comments above each object ("differs:"); --strict
fails instead of printing. "note:" comments are for information.

FILE is a file, a directory (its .yaml, .yml and .json files) or - for stdin.
The output has the sources' namespaces; -n sets one for every SLO.`,
		Example: `  # Convert a Sloth file and apply it
  kubectl budgetgate import slos.yaml | kubectl apply -f -

  # Convert the Pyrra SLOs of a cluster into the namespace "shop"
  kubectl get servicelevelobjectives.pyrra.dev -n shop -o yaml | kubectl budgetgate import - -n shop

  # Fail when anything of the sources would be lost
  kubectl budgetgate import --strict openslo/`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return r.runImport(cmd, o, append(args, o.files...))
		},
	}
	cmd.Flags().StringArrayVarP(&o.files, "filename", "f", nil, "a file or directory to import (repeatable; - for stdin)")
	cmd.Flags().BoolVar(&o.strict, "strict", false, "fail, printing nothing, when the output differs from the sources in anything")
	cmd.Flags().StringVar(&o.policyPrefix, "policy-prefix", "", "start the names of the ErrorBudgetPolicies written with this, e.g. team-a- (policies are cluster-scoped)")
	cmd.Flags().StringVar(&o.slothPeriod, "sloth-period", "", "the SLO period of Sloth SLOs, Sloth's --default-slo-period (default: the sloPeriod of the AlertWindows given, else 30d)")
	addOutputFlag(cmd, &o.output, outputYAML, "output format: yaml (with comments) or json (a v1 List)")
	return cmd
}

func (r *root) runImport(cmd *cobra.Command, o *importOptions, paths []string) error {
	if err := checkOutput(o.output, outputYAML, outputJSON); err != nil {
		return err
	}
	if len(paths) == 0 {
		return errors.New("no file to import: kubectl budgetgate import FILE... (- reads stdin)")
	}
	inputs, err := readInputs(paths, r.streams.In)
	if err != nil {
		return err
	}
	opts := importer.Options{SlothPeriod: o.slothPeriod, PolicyPrefix: o.policyPrefix}
	if cmd.Flags().Changed("namespace") && r.config.Namespace != nil {
		opts.Namespace = *r.config.Namespace
	}
	res, err := importer.Import(inputs, opts)
	if err != nil {
		return importError(err)
	}
	if len(res.SLOs) == 0 {
		return fmt.Errorf("no SLO in %s (%s read)", strings.Join(paths, ", "), plural(res.Documents, "document", "documents"))
	}
	report(r.streams.ErrOut, res)
	if d := res.Differences(); o.strict && d > 0 {
		return fmt.Errorf("--strict: the output differs from the sources in %s (listed above); nothing written", plural(d, "way", "ways"))
	}
	var out []byte
	if o.output == outputJSON {
		out, err = listJSON(res)
	} else {
		out, err = res.YAML()
	}
	if err != nil {
		return err
	}
	_, err = r.streams.Out.Write(out)
	return err
}

// importError lists every document that could not be converted.
func importError(err error) error {
	var docs []string
	for _, e := range unjoin(err) {
		docs = append(docs, "  "+strings.ReplaceAll(e.Error(), "\n", "\n  "))
	}
	if len(docs) == 1 {
		return err
	}
	return fmt.Errorf("%d documents could not be converted:\n%s", len(docs), strings.Join(docs, "\n"))
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, unjoin(e)...)
		}
		return out
	}
	return []error{err}
}

// report writes to stderr, per object, what the output does not keep of
// its source, then a summary.
func report(w io.Writer, res *importer.Result) {
	section := func(title string, fs []importer.Finding) {
		first := true
		for _, f := range fs {
			if f.Severity != importer.Difference {
				continue
			}
			if first {
				_, _ = fmt.Fprintln(w, title)
				first = false
			}
			_, _ = fmt.Fprintf(w, "  differs: %s\n", f)
		}
	}
	notes := 0
	for _, p := range res.Policies {
		section(fmt.Sprintf("ErrorBudgetPolicy %s (for %s):", p.Object.Name, p.From), p.Findings)
		notes += len(p.Findings)
	}
	for _, s := range res.SLOs {
		key := s.Object.Name
		if s.Object.Namespace != "" {
			key = s.Object.Namespace + "/" + key
		}
		section(fmt.Sprintf("ServiceLevelObjective %s (from %s):", key, s.From), s.Findings)
		notes += len(s.Findings)
	}
	d := res.Differences()
	notes -= d
	_, _ = fmt.Fprintf(w, "Converted %s into %s and %s: %s, %s (in the comments of the YAML output).\n",
		plural(res.Documents, "document", "documents"),
		plural(len(res.SLOs), "ServiceLevelObjective", "ServiceLevelObjectives"),
		plural(len(res.Policies), "ErrorBudgetPolicy", "ErrorBudgetPolicies"),
		plural(d, "difference", "differences"), plural(notes, "note", "notes"))
}

// listJSON is the objects as a v1 List, as kubectl get -o json prints several.
func listJSON(res *importer.Result) ([]byte, error) {
	list := &metav1.List{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "List"}}
	for _, o := range res.Objects() {
		raw, err := json.Marshal(o)
		if err != nil {
			return nil, err
		}
		list.Items = append(list.Items, runtime.RawExtension{Raw: raw})
	}
	return marshalJSON(list)
}
