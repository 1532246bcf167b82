package cli

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	slov1alpha1 "github.com/budgetgate/budgetgate/api/v1alpha1"
)

type exceptOptions struct {
	duration time.Duration
	reason   string
	name     string
	output   string
}

func (r *root) exceptCommand() *cobra.Command {
	o := &exceptOptions{}
	cmd := &cobra.Command{
		Use:   "except KIND/NAME --for DURATION --reason TEXT [-n NAMESPACE]",
		Short: "Request a FreezeException: let one workload release during the freeze, for a while",
		Long: `Create a FreezeException for one workload, expiring after --for, within the
bound its policy sets (maxExceptionDuration, per freeze): budgetgate's
admission refuses a longer one and says how long it may be. The API server
records who requested it (you, as it authenticates you, whatever a manifest
says); where the policy requires approval, someone else approves it with
kubectl annotate (docs/enforcement.md). Prints who requested it and when it
expires.`,
		Example: `  kubectl budgetgate except deployment/checkout -n shop --for 2h --reason "INC-4821: ship the payment retry fix"`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if ctx == nil {
				ctx = context.Background()
			}
			if o.output != "" {
				if err := checkOutput(o.output, outputYAML, outputJSON); err != nil {
					return err
				}
			}
			c, ns, err := r.cluster()
			if err != nil {
				return err
			}
			fex, err := RequestException(ctx, c, ns, args[0], o.name, o.reason, o.duration, time.Now())
			if err != nil {
				return err
			}
			if o.output != "" {
				return WriteStructured(r.streams.Out, o.output, fex)
			}
			approval := " kubectl describe fex " + fex.Name + " -n " + ns + " shows when it is in force (where its policy requires approval, once someone else approves it)."
			fmt.Fprintf(r.streams.Out, "freezeexception.slo.budgetgate.dev/%s created: %s %s may release until %s (in %s), requested by %s.%s\n",
				fex.Name, strings.Split(args[0], "/")[0], fex.Spec.Workloads[0].Name, fex.Spec.ExpiresAt.UTC().Format(time.RFC3339),
				shortDuration(time.Until(fex.Spec.ExpiresAt.Time)), orDash(fex.Spec.RequestedBy), approval)
			return nil
		},
	}
	cmd.Flags().DurationVar(&o.duration, "for", 0, "how long the exception lasts, e.g. 2h (within the policy's maxExceptionDuration)")
	cmd.Flags().StringVar(&o.reason, "reason", "", "why releasing during the freeze is needed (recorded with every use), e.g. an incident")
	cmd.Flags().StringVar(&o.name, "name", "", "the exception's name (default: the workload's name and a random suffix)")
	addOutputFlag(cmd, &o.output, "", "output format: empty for a line of text, yaml or json for the created FreezeException")
	_ = cmd.MarkFlagRequired("for")
	_ = cmd.MarkFlagRequired("reason")
	return cmd
}

// RequestException creates a FreezeException for the workload ref in ns,
// expiring d after now, and returns it as the API server stored it (with
// the requester its admission recorded).
func RequestException(ctx context.Context, c client.Client, ns, ref, name, reason string, d time.Duration, now time.Time) (*slov1alpha1.FreezeException, error) {
	kind, wname, err := parseRef(ref)
	if err != nil {
		return nil, err
	}
	if d <= 0 {
		return nil, fmt.Errorf("--for %s: give how long the exception lasts, e.g. 2h", d)
	}
	if strings.TrimSpace(reason) == "" {
		return nil, fmt.Errorf("--reason: say why, e.g. the incident")
	}
	if _, err := kind.Get(ctx, c, ns, wname); err != nil {
		return nil, fmt.Errorf("%s %s in namespace %s: %w", kind.GVK.Kind, wname, ns, err)
	}
	fex := &slov1alpha1.FreezeException{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: slov1alpha1.FreezeExceptionSpec{
			Workloads: []slov1alpha1.WorkloadReference{{Kind: kind.GVK.Kind, Name: wname}},
			Reason:    reason,
			ExpiresAt: metav1.NewTime(now.Add(d).Truncate(time.Second)),
		},
	}
	if name == "" {
		fex.GenerateName = wname + "-"
	}
	if err := c.Create(ctx, fex); err != nil {
		return nil, err
	}
	return fex, nil
}
