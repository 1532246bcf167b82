// kubectl-budgetgate is budgetgate's kubectl plugin: on the PATH, kubectl
// runs it as `kubectl budgetgate` (docs/kubectl-plugin.md). The commands
// live in internal/cli.
package main

import (
	"fmt"
	"os"

	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/budgetgate/budgetgate/internal/cli"
)

func main() {
	cmd := cli.NewCommand(genericiooptions.IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr})
	if err := cmd.Execute(); err != nil {
		_, _ = fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}
