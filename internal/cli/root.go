// Package cli is budgetgate's kubectl plugin, `kubectl budgetgate`:
// cmd/kubectl-budgetgate is a thin main over NewCommand.
//
// Commands:
//
//   - status, why, simulate and except: what gates whom, why, what passes,
//     and what a policy would have done (internal/simulate replays the
//     engine itself);
//   - import: converts Sloth, Pyrra and OpenSLO SLOs into budgetgate's
//     ServiceLevelObjectives and ErrorBudgetPolicies (internal/importer);
//   - rules: prints the Prometheus rules of SLOs, from the cluster or from
//     manifests, under the policy the controller resolves for them
//     (internal/policy, internal/rules).
//
// The cluster flags are kubectl's (k8s.io/cli-runtime's ConfigFlags):
// --kubeconfig, --context, -n and the others; `completion` writes shell
// completion scripts (cobra's).
package cli

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/budgetgate/budgetgate/internal/version"
)

// Name is how users call the plugin.
const Name = "kubectl budgetgate"

// Output formats of -o.
const (
	outputYAML = "yaml"
	outputJSON = "json"
)

// root holds what every command shares.
type root struct {
	streams genericiooptions.IOStreams
	config  *genericclioptions.ConfigFlags
}

// NewCommand is `kubectl budgetgate` with its commands, reading and writing
// streams.
func NewCommand(streams genericiooptions.IOStreams) *cobra.Command {
	r := &root{streams: streams, config: genericclioptions.NewConfigFlags(true)}
	cmd := &cobra.Command{
		Use:   "kubectl-budgetgate",
		Short: "budgetgate's kubectl plugin: why is this frozen, when would we have frozen, when does the budget run out",
		Long: `budgetgate's kubectl plugin.

  status   every SLO's budget, burn against its thresholds, freeze and time to exhaustion
  why      why a workload is frozen, until when, and what still passes for you
  simulate when a policy would have frozen, paged and lifted over Prometheus history, with charts
  except   request a FreezeException for one workload
  release  release during a freeze by claiming a release class, for one release
  import   convert Sloth, Pyrra and OpenSLO SLOs into budgetgate ServiceLevelObjectives
  rules    print the Prometheus recording and alert rules of ServiceLevelObjectives

Cluster flags (--kubeconfig, --context, -n, ...) are kubectl's. See docs/kubectl-plugin.md.`,
		Version:       version.String("kubectl plugin"),
		SilenceUsage:  true,
		SilenceErrors: true,
		Annotations:   map[string]string{cobra.CommandDisplayNameAnnotation: Name},
		// Without a command: the help, and an error exit.
		RunE: func(cmd *cobra.Command, _ []string) error {
			_ = cmd.Help()
			return errors.New("a command is required: status, why, simulate, except, release, import or rules")
		},
	}
	cmd.SetVersionTemplate("{{.Version}}\n")
	cmd.SetIn(streams.In)
	cmd.SetOut(streams.Out)
	cmd.SetErr(streams.ErrOut)
	r.config.AddFlags(cmd.PersistentFlags())
	cmd.AddCommand(r.statusCommand(), r.whyCommand(), r.simulateCommand(), r.exceptCommand(), r.releaseCommand(), r.importCommand(), r.rulesCommand())
	return cmd
}

// addOutputFlag adds -o with the formats the command writes.
func addOutputFlag(cmd *cobra.Command, output *string, def string, help string) {
	cmd.Flags().StringVarP(output, "output", "o", def, help)
	_ = cmd.RegisterFlagCompletionFunc("output", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return []string{outputYAML, outputJSON}, cobra.ShellCompDirectiveNoFileComp
	})
}

func checkOutput(output string, allowed ...string) error {
	for _, a := range allowed {
		if output == a {
			return nil
		}
	}
	return fmt.Errorf("-o %s: the formats are %s", output, strings.Join(allowed, " and "))
}

// plural writes "1 document", "2 documents".
func plural(n int, one, many string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, one)
	}
	return fmt.Sprintf("%d %s", n, many)
}
