package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"

	slov1alpha1 "github.com/budgetgate/budgetgate/api/v1alpha1"
	"github.com/budgetgate/budgetgate/internal/policy"
	"github.com/budgetgate/budgetgate/internal/rules"
)

type rulesOptions struct {
	files         []string
	allNamespaces bool
	output        string
}

func (r *root) rulesCommand() *cobra.Command {
	o := &rulesOptions{}
	cmd := &cobra.Command{
		Use:   "rules [SLO] [-n NAMESPACE | -A] [-f FILE]...",
		Short: "Print the Prometheus rules of ServiceLevelObjectives",
		Long: `Print the Prometheus recording and alert rules of ServiceLevelObjectives
(docs/alerting.md), under the policy budgetgate's controller resolves for
each: its policyRef, else the policy named "default", else the built-in
policy, as an ErrorBudgetPolicyBinding of its namespace allows.

Without -f, the SLOs and policies are read from the cluster: the SLO named,
or every SLO of the namespace (-A: of every namespace). With -f, they are
read from manifests, offline: the SLOs of the files (SLO names one), under
the ErrorBudgetPolicies, ErrorBudgetPolicyBindings and Namespaces of the
same files; an SLO without a namespace is in -n's (or the kubeconfig's).

The output is a Prometheus rule file (rule_files:, promtool check rules);
-o yaml or json prints a monitoring.coreos.com/v1 PrometheusRule per SLO
for the Prometheus Operator.`,
		Example: `  # The rules of an SLO in the cluster
  kubectl budgetgate rules checkout-availability -n shop

  # A rule file for every SLO of the cluster, for a Prometheus without the Operator
  kubectl budgetgate rules -A > budgetgate-rules.yaml

  # Offline, from manifests: the SLO and the policy it names
  kubectl budgetgate rules -f slo.yaml -f policy.yaml -o yaml`,
		Args:              cobra.MaximumNArgs(1),
		ValidArgsFunction: r.completeSLOs,
		RunE: func(cmd *cobra.Command, args []string) error {
			name := ""
			if len(args) == 1 {
				name = args[0]
			}
			return r.runRules(cmd, o, name)
		},
	}
	cmd.Flags().StringArrayVarP(&o.files, "filename", "f", nil, "read the SLOs (and policies, bindings, namespaces) from this file or directory instead of the cluster (repeatable; - for stdin)")
	cmd.Flags().BoolVarP(&o.allNamespaces, "all-namespaces", "A", false, "the SLOs of every namespace")
	addOutputFlag(cmd, &o.output, "", "output format: empty for a Prometheus rule file, yaml or json for PrometheusRules")
	return cmd
}

// sloRules is one SLO's rules and how its policy was chosen.
type sloRules struct {
	slo        *slov1alpha1.ServiceLevelObjective
	resolution policy.Resolution
	how        string
	groups     []monitoringv1.RuleGroup
}

func (r *root) runRules(cmd *cobra.Command, o *rulesOptions, name string) error {
	if err := checkOutput(o.output, "", outputYAML, outputJSON); err != nil {
		return err
	}
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	var (
		reader client.Reader
		slos   []*slov1alpha1.ServiceLevelObjective
		err    error
	)
	if len(o.files) > 0 {
		if o.allNamespaces {
			return errors.New("-A reads the cluster; with -f, every SLO of the files is printed (name one to print it alone)")
		}
		var mem *memReader
		mem, slos, err = r.offline(cmd, o.files, name)
		reader = mem
	} else {
		reader, slos, err = r.live(ctx, name, o.allNamespaces)
	}
	if err != nil {
		return err
	}
	var all []sloRules
	var errs []error
	for _, slo := range slos {
		sr, err := rulesOf(ctx, reader, slo, len(o.files) > 0)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		all = append(all, sr)
		_, _ = fmt.Fprintf(r.streams.ErrOut, "%s/%s: %s\n", slo.Namespace, slo.Name, sr.how)
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	var out []byte
	switch o.output {
	case "":
		var groups []monitoringv1.RuleGroup
		for _, sr := range all {
			groups = append(groups, sr.groups...)
		}
		out, err = rules.RuleFile(groups)
	case outputYAML, outputJSON:
		var obj any
		if len(all) == 1 {
			obj = rules.PrometheusRule(all[0].slo, all[0].groups, nil)
		} else {
			list := &metav1.List{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "List"}}
			for _, sr := range all {
				list.Items = append(list.Items, runtime.RawExtension{Object: rules.PrometheusRule(sr.slo, sr.groups, nil)})
			}
			obj = list
		}
		if o.output == outputYAML {
			out, err = marshalYAML(obj)
		} else {
			out, err = marshalJSON(obj)
		}
	}
	if err != nil {
		return err
	}
	_, err = r.streams.Out.Write(out)
	return err
}

// rulesOf resolves an SLO's policy as the controller does, and generates its rules.
func rulesOf(ctx context.Context, c client.Reader, slo *slov1alpha1.ServiceLevelObjective, offline bool) (sloRules, error) {
	sr := sloRules{slo: slo}
	res, err := policy.ResolveBinding(ctx, c, slo)
	switch {
	case err == nil:
		sr.resolution = res
		sr.how = describeResolution(slo, res, offline)
	case apierrors.IsForbidden(err) && slo.Status.Policy != "":
		// A user who may read SLOs but not what resolution needs (the
		// namespace's labels, the bindings): the controller's own choice,
		// recorded in status.
		p, perr := policy.ByName(ctx, c, slo.Status.Policy)
		if perr != nil {
			return sr, fmt.Errorf("ServiceLevelObjective %s/%s: %w (and reading the policy its status names: %w)", slo.Namespace, slo.Name, err, perr)
		}
		sr.resolution = policy.Resolution{Policy: p, Requested: policy.NameOf(slo)}
		sr.how = fmt.Sprintf("policy %q, as its status says (resolving it here was forbidden: %v)", p.Name, err)
	default:
		hint := ""
		if offline && policy.IsNotFound(err) {
			hint = " (offline: give the file that defines it with -f)"
		}
		return sr, fmt.Errorf("ServiceLevelObjective %s/%s: %w%s", slo.Namespace, slo.Name, err, hint)
	}
	sr.groups, err = rules.Generate(slo, sr.resolution.Policy, rules.OptionsFor(slo, sr.resolution.Policy))
	return sr, err
}

// describeResolution says which policy applies and why, for stderr.
func describeResolution(slo *slov1alpha1.ServiceLevelObjective, res policy.Resolution, offline bool) string {
	name := res.Policy.Name
	switch {
	case res.Binding != nil && len(res.NotAllowed) > 0:
		return fmt.Sprintf("policy %q of ErrorBudgetPolicyBinding %q; its policyRef %q is not allowed (%s)", name, res.Binding.Name, res.Requested, strings.Join(res.NotAllowed, "; "))
	case res.Binding != nil && name == res.BoundName():
		return fmt.Sprintf("policy %q of ErrorBudgetPolicyBinding %q", name, res.Binding.Name)
	case res.Binding != nil:
		return fmt.Sprintf("policy %q (its policyRef, which ErrorBudgetPolicyBinding %q allows)", name, res.Binding.Name)
	case slo.Spec.PolicyRef != nil && slo.Spec.PolicyRef.Name != "":
		return fmt.Sprintf("policy %q (its policyRef)", name)
	case name == slov1alpha1.BuiltInPolicyName && offline:
		return fmt.Sprintf("the built-in policy: no ErrorBudgetPolicy %q among the files (offline; a cluster's %q would apply)", slov1alpha1.DefaultPolicyName, slov1alpha1.DefaultPolicyName)
	case name == slov1alpha1.BuiltInPolicyName:
		return fmt.Sprintf("the built-in policy (no ErrorBudgetPolicy %q)", slov1alpha1.DefaultPolicyName)
	}
	return fmt.Sprintf("policy %q (the policy SLOs without a policyRef use)", name)
}

func scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s)) // core, apps, authorization: why reads workloads and asks SelfSubjectAccessReviews
	utilruntime.Must(slov1alpha1.AddToScheme(s))
	return s
}

// live reads the SLOs from the cluster.
func (r *root) live(ctx context.Context, name string, all bool) (client.Reader, []*slov1alpha1.ServiceLevelObjective, error) {
	if raw, err := r.config.ToRawKubeConfigLoader().RawConfig(); err == nil && len(raw.Clusters) == 0 &&
		(r.config.APIServer == nil || *r.config.APIServer == "") && os.Getenv("KUBERNETES_SERVICE_HOST") == "" {
		return nil, nil, errors.New("no cluster to read: no kubeconfig (--kubeconfig, $KUBECONFIG, ~/.kube/config) names one; give manifests with -f to work offline")
	}
	cfg, err := r.config.ToRESTConfig()
	if err != nil {
		return nil, nil, err
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme()})
	if err != nil {
		return nil, nil, err
	}
	ns, _, err := r.config.ToRawKubeConfigLoader().Namespace()
	if err != nil {
		return nil, nil, err
	}
	if name != "" {
		if all {
			return nil, nil, errors.New("-A lists every SLO; name an SLO with -n NAMESPACE instead")
		}
		slo := &slov1alpha1.ServiceLevelObjective{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, slo); err != nil {
			if apierrors.IsNotFound(err) {
				return nil, nil, fmt.Errorf("ServiceLevelObjective %q not found in namespace %s", name, ns)
			}
			return nil, nil, err
		}
		return c, []*slov1alpha1.ServiceLevelObjective{slo}, nil
	}
	list := &slov1alpha1.ServiceLevelObjectiveList{}
	var opts []client.ListOption
	where := "in the cluster"
	if !all {
		opts = append(opts, client.InNamespace(ns))
		where = "in namespace " + ns
	}
	if err := c.List(ctx, list, opts...); err != nil {
		return nil, nil, err
	}
	if len(list.Items) == 0 {
		return nil, nil, fmt.Errorf("no ServiceLevelObjectives %s", where)
	}
	slos := make([]*slov1alpha1.ServiceLevelObjective, len(list.Items))
	for i := range list.Items {
		slos[i] = &list.Items[i]
	}
	sortSLOs(slos)
	return c, slos, nil
}

func sortSLOs(slos []*slov1alpha1.ServiceLevelObjective) {
	slices.SortFunc(slos, func(a, b *slov1alpha1.ServiceLevelObjective) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
}

// completeSLOs completes the SLO argument with the SLOs of the namespace.
func (r *root) completeSLOs(cmd *cobra.Command, args []string, prefix string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	_, slos, err := r.live(ctx, "", false)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var names []string
	for _, s := range slos {
		if strings.HasPrefix(s.Name, prefix) {
			names = append(names, s.Name)
		}
	}
	return names, cobra.ShellCompDirectiveNoFileComp
}
