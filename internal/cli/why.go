package cli

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"

	slov1alpha1 "github.com/budgetgate/budgetgate/api/v1alpha1"
	"github.com/budgetgate/budgetgate/internal/sloview"
	"github.com/budgetgate/budgetgate/internal/workload"
)

type whyOptions struct {
	output string
}

func (r *root) whyCommand() *cobra.Command {
	o := &whyOptions{}
	cmd := &cobra.Command{
		Use:   "why KIND/NAME [-n NAMESPACE]",
		Short: "Why a workload's releases are frozen, until when, and what still passes for you",
		Long: `Explain the freeze of a Deployment, StatefulSet, DaemonSet or Argo Rollout:
which SLOs freeze it and which of their rules fired with their numbers, since
when and until when at least, and what lifts it; then what still passes for
you: the rollback targets with the exact command, whether you may claim a
release class (asked of the API server for your identity, not guessed), and
the FreezeExceptions in force with who requested them. For a workload that is
not frozen, it says so and how close its SLOs are to freezing it.`,
		Example: `  kubectl budgetgate why deployment/checkout -n shop
  kubectl budgetgate why statefulset/ledger -n payments -o json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.output != "" {
				if err := checkOutput(o.output, outputYAML, outputJSON); err != nil {
					return err
				}
			}
			ctx := cmd.Context()
			if ctx == nil {
				ctx = context.Background()
			}
			c, ns, err := r.cluster()
			if err != nil {
				return err
			}
			ex, err := Explain(ctx, c, ns, args[0], time.Now())
			if err != nil {
				return err
			}
			if o.output != "" {
				return WriteStructured(r.streams.Out, o.output, ex)
			}
			return ex.Render(r.streams.Out, time.Now())
		},
	}
	addOutputFlag(cmd, &o.output, "", "output format: empty for text, yaml or json for scripts")
	return cmd
}

// cluster is a client of the kubeconfig's cluster and the namespace of -n
// (or the context's).
func (r *root) cluster() (client.Client, string, error) {
	cfg, err := r.config.ToRESTConfig()
	if err != nil {
		return nil, "", err
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme()})
	if err != nil {
		return nil, "", err
	}
	ns, _, err := r.config.ToRawKubeConfigLoader().Namespace()
	return c, ns, err
}

// Explanation is what why says of one workload.
type Explanation struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	Frozen    bool   `json:"frozen"`
	// FrozenBy are the frozen SLOs that select the workload; Selecting are
	// all SLOs that do, frozen or not.
	FrozenBy  []SLOSummary `json:"frozenBy,omitempty"`
	Selecting []SLOSummary `json:"selecting,omitempty"`
	// Closest is, for a workload not frozen, the highest share of a Freeze
	// threshold any of its SLOs' rules reaches (0.25 = a quarter of the way).
	Closest    *Closeness         `json:"closest,omitempty"`
	Rollbacks  []RollbackTarget   `json:"rollbackTargets,omitempty"`
	MayClaim   bool               `json:"mayClaimReleaseClass"`
	Classes    []string           `json:"exemptReleaseClasses,omitempty"`
	MayExcept  bool               `json:"mayRequestException"`
	Exceptions []ExceptionInForce `json:"exceptions,omitempty"`
	Commands   map[string]string  `json:"commands,omitempty"`
}

// Closeness is how close an SLO's rule is to its threshold.
type Closeness struct {
	SLO       string  `json:"slo"`
	Rule      string  `json:"rule"`
	Value     string  `json:"value"`
	Threshold string  `json:"threshold"`
	Share     float64 `json:"share"`
}

// RollbackTarget is a revision a rollback may restore during the freeze.
type RollbackTarget struct {
	Revision string    `json:"revision"`
	Images   []string  `json:"images"`
	Created  time.Time `json:"created"`
	Current  bool      `json:"current,omitempty"`
	Command  string    `json:"command"`
}

// ExceptionInForce is a FreezeException that covers the workload now.
type ExceptionInForce struct {
	Name        string    `json:"name"`
	Reason      string    `json:"reason"`
	RequestedBy string    `json:"requestedBy,omitempty"`
	ApprovedBy  string    `json:"approvedBy,omitempty"`
	ExpiresAt   time.Time `json:"expiresAt"`
	// InForce: budgetgate's exception controller found it valid (within
	// its policy's bound, approved where approval is required).
	InForce bool `json:"inForce"`
}

// Explain reads what why needs from the cluster, as the user of c.
func Explain(ctx context.Context, c client.Client, ns, ref string, now time.Time) (*Explanation, error) {
	kind, name, err := parseRef(ref)
	if err != nil {
		return nil, err
	}
	w, err := kind.Get(ctx, c, ns, name)
	if err != nil {
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("%s %s not found in namespace %s", kind.GVK.Kind, name, ns)
		}
		return nil, err
	}
	ex := &Explanation{Kind: kind.GVK.Kind, Namespace: ns, Name: name, Commands: map[string]string{}}
	slos := &slov1alpha1.ServiceLevelObjectiveList{}
	if err := c.List(ctx, slos, client.InNamespace(ns)); err != nil {
		return nil, fmt.Errorf("listing the SLOs of %s: %w", ns, err)
	}
	var since time.Time
	for i := range slos.Items {
		s := &slos.Items[i]
		if !sloview.Selects(s, ns, w.Labels) {
			continue
		}
		sum := Summary(s, now)
		ex.Selecting = append(ex.Selecting, sum)
		if s.Status.Freeze.Active {
			ex.FrozenBy = append(ex.FrozenBy, sum)
			if s.Status.Freeze.Mode != slov1alpha1.ModeDryRun {
				ex.Frozen = true
			}
			if t := sloview.TimeOf(s.Status.Freeze.Since); since.IsZero() || (!t.IsZero() && t.Before(since)) {
				since = t
			}
		}
		for _, ru := range s.Status.Rules {
			if ru.Action != slov1alpha1.ActionFreeze {
				continue
			}
			v, e1 := strconv.ParseFloat(string(ru.Value), 64)
			th, e2 := strconv.ParseFloat(string(ru.Threshold), 64)
			if e1 != nil || e2 != nil || !isBurn(ru, s.Status) || th <= 0 {
				continue
			}
			if share := v / th; ex.Closest == nil || share > ex.Closest.Share {
				ex.Closest = &Closeness{SLO: s.Name, Rule: ru.Name, Value: times(string(ru.Value)), Threshold: times(string(ru.Threshold)), Share: share}
			}
		}
	}
	ref = strings.ToLower(kind.GVK.Kind) + "/" + name
	ex.Commands["see"] = fmt.Sprintf("kubectl describe slo -n %s %s", ns, sloNames(ex.FrozenBy, ex.Selecting))
	if len(ex.FrozenBy) == 0 {
		return ex, nil
	}
	if ex.Rollbacks, err = rollbackTargets(ctx, c, kind, w, since); err != nil {
		return nil, err
	}
	ok, err := allowed(ctx, c, ns, slov1alpha1.VerbReleaseDuringFreeze, "servicelevelobjectives")
	if err != nil {
		return nil, err
	}
	ex.MayClaim = ok
	ex.Classes = []string{"hotfix", "security"}
	if ex.MayExcept, err = allowed(ctx, c, ns, "create", "freezeexceptions"); err != nil {
		return nil, err
	}
	fexes := &slov1alpha1.FreezeExceptionList{}
	if err := c.List(ctx, fexes, client.InNamespace(ns)); err != nil && !apierrors.IsForbidden(err) {
		return nil, err
	}
	for i := range fexes.Items {
		f := &fexes.Items[i]
		if f.DeletionTimestamp != nil || !f.Spec.ExpiresAt.After(now) || !covers(f, kind.GVK.Kind, name, w.Labels) {
			continue
		}
		ex.Exceptions = append(ex.Exceptions, ExceptionInForce{Name: f.Name, Reason: f.Spec.Reason, RequestedBy: f.Spec.RequestedBy,
			ApprovedBy: f.Spec.ApprovedBy, ExpiresAt: f.Spec.ExpiresAt.UTC(), InForce: sloview.ExceptionValid(f) && f.Status.Active})
	}
	ex.Commands["claim"] = fmt.Sprintf("kubectl budgetgate release %s -n %s --class hotfix --reason INCIDENT --image CONTAINER=IMAGE", ref, ns)
	ex.Commands["canI"] = fmt.Sprintf("kubectl auth can-i %s servicelevelobjectives.slo.budgetgate.dev -n %s", slov1alpha1.VerbReleaseDuringFreeze, ns)
	ex.Commands["except"] = fmt.Sprintf("kubectl budgetgate except %s -n %s --for 2h --reason INCIDENT", ref, ns)
	return ex, nil
}

func sloNames(frozen, selecting []SLOSummary) string {
	list := frozen
	if len(list) == 0 {
		list = selecting
	}
	var names []string
	for _, s := range list {
		names = append(names, s.Name)
	}
	if len(names) == 0 {
		return "NAME"
	}
	return strings.Join(names, " ")
}

// parseRef reads "deployment/checkout", "deploy/checkout", "rollout/x".
func parseRef(ref string) (workload.Kind, string, error) {
	k, name, ok := strings.Cut(ref, "/")
	if !ok || name == "" {
		return workload.Kind{}, "", fmt.Errorf("%q: name a workload as KIND/NAME, e.g. deployment/checkout", ref)
	}
	aliases := map[string]string{"deploy": "deployment", "deployments": "deployment", "sts": "statefulset", "statefulsets": "statefulset",
		"ds": "daemonset", "daemonsets": "daemonset", "ro": "rollout", "rollouts": "rollout"}
	k = strings.ToLower(k)
	if a, ok := aliases[k]; ok {
		k = a
	}
	for _, kind := range workload.Default().All() {
		if strings.ToLower(kind.GVK.Kind) == k {
			return kind, name, nil
		}
	}
	return workload.Kind{}, "", fmt.Errorf("%q: budgetgate gates deployment, statefulset, daemonset and rollout, not %s", ref, k)
}

// rollbackTargets are the revisions a rollback may restore: those written
// before the freeze began (the history gate admits a return to them), the
// newest first, with the command that restores each.
func rollbackTargets(ctx context.Context, c client.Reader, kind workload.Kind, w *workload.Object, since time.Time) ([]RollbackTarget, error) {
	var out []RollbackTarget
	undo := func(rev string) string {
		if kind.GVK.Kind == "Rollout" {
			return fmt.Sprintf("kubectl argo rollouts undo %s -n %s --to-revision=%s", w.Name, w.Namespace, rev)
		}
		return fmt.Sprintf("kubectl rollout undo %s/%s -n %s --to-revision=%s", strings.ToLower(kind.GVK.Kind), w.Name, w.Namespace, rev)
	}
	sel, err := w.Selector()
	if err != nil {
		return nil, err
	}
	current := ""
	switch kind.History {
	case workload.ReplicaSets:
		list := &appsv1.ReplicaSetList{}
		if err := c.List(ctx, list, client.InNamespace(w.Namespace), client.MatchingLabelsSelector{Selector: sel}); err != nil {
			return nil, err
		}
		revKey := "deployment.kubernetes.io/revision"
		if kind.GVK.Kind == "Rollout" {
			revKey = "rollout.argoproj.io/revision"
		}
		current = w.Annotations[revKey]
		for _, rs := range list.Items {
			if !workload.ControlledBy(rs.OwnerReferences, w.UID) || !rs.CreationTimestamp.Time.Before(sinceOr(since)) {
				continue
			}
			rev := rs.Annotations[revKey]
			out = append(out, RollbackTarget{Revision: rev, Images: images(rs.Spec.Template.Spec.Containers), Created: rs.CreationTimestamp.UTC(),
				Current: rev == current, Command: undo(rev)})
		}
	default:
		list := &appsv1.ControllerRevisionList{}
		if err := c.List(ctx, list, client.InNamespace(w.Namespace), client.MatchingLabelsSelector{Selector: labels.Everything()}); err != nil {
			return nil, err
		}
		newest := int64(0)
		for _, cr := range list.Items {
			if workload.ControlledBy(cr.OwnerReferences, w.UID) && cr.Revision > newest {
				newest = cr.Revision
			}
		}
		current = strconv.FormatInt(newest, 10)
		for i := range list.Items {
			cr := &list.Items[i]
			if !workload.ControlledBy(cr.OwnerReferences, w.UID) || !cr.CreationTimestamp.Time.Before(sinceOr(since)) {
				continue
			}
			rev := strconv.FormatInt(cr.Revision, 10)
			var imgs []string
			if t, ok := workload.RevisionTemplate(cr); ok {
				imgs = images(t.Spec.Containers)
			}
			out = append(out, RollbackTarget{Revision: rev, Images: imgs, Created: cr.CreationTimestamp.UTC(), Current: rev == current, Command: undo(rev)})
		}
	}
	slices.SortFunc(out, func(a, b RollbackTarget) int {
		ai, _ := strconv.Atoi(a.Revision)
		bi, _ := strconv.Atoi(b.Revision)
		return bi - ai
	})
	// The current revision is no rollback.
	out = slices.DeleteFunc(out, func(t RollbackTarget) bool { return t.Current })
	return out, nil
}

func sinceOr(t time.Time) time.Time {
	if t.IsZero() {
		return time.Now()
	}
	return t
}

func images(cs []corev1.Container) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Name+"="+c.Image)
	}
	return out
}

// allowed asks the API server whether the user may verb resource in ns.
func allowed(ctx context.Context, c client.Client, ns, verb, resource string) (bool, error) {
	ssar := &authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{
		ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: ns, Verb: verb, Group: slov1alpha1.GroupVersion.Group, Resource: resource},
	}}
	if err := c.Create(ctx, ssar); err != nil {
		return false, fmt.Errorf("asking the API server whether you may %s %s: %w", verb, resource, err)
	}
	return ssar.Status.Allowed, nil
}

// covers says whether an exception names or selects the workload.
func covers(f *slov1alpha1.FreezeException, kind, name string, lbls map[string]string) bool {
	for _, ref := range f.Spec.Workloads {
		if ref.Name == name && (ref.Kind == "" || ref.Kind == kind) {
			return true
		}
	}
	if f.Spec.WorkloadSelector != nil {
		if sel, err := metav1.LabelSelectorAsSelector(f.Spec.WorkloadSelector); err == nil && !sel.Empty() && sel.Matches(labels.Set(lbls)) {
			return true
		}
	}
	return false
}

// Render writes the explanation for a person, as of now.
func (ex *Explanation) Render(w io.Writer, now time.Time) error {
	var b strings.Builder
	ref := fmt.Sprintf("%s %s/%s", ex.Kind, ex.Namespace, ex.Name)
	if len(ex.FrozenBy) == 0 {
		fmt.Fprintf(&b, "%s is not frozen: releases pass.\n", ref)
		switch {
		case len(ex.Selecting) == 0:
			fmt.Fprintf(&b, "No SLO of namespace %s selects it: budgetgate does not gate it.\n", ex.Namespace)
		case ex.Closest != nil:
			fmt.Fprintf(&b, "Closest to a freeze: SLO %s, rule %s at %s of %s (%.0f%% of the way).\n",
				ex.Closest.SLO, ex.Closest.Rule, ex.Closest.Value, ex.Closest.Threshold, 100*ex.Closest.Share)
		}
		for _, s := range ex.Selecting {
			fmt.Fprintf(&b, "  SLO %s: budget %s left, %s\n", s.Name, budgetText(s), exhaustionText(s.ExhaustedIn))
		}
		_, err := io.WriteString(w, b.String())
		return err
	}
	word := "frozen"
	if !ex.Frozen {
		word = "frozen in DryRun only (releases pass with a warning)"
	}
	fmt.Fprintf(&b, "%s is %s.\n\n", ref, word)
	for _, s := range ex.FrozenBy {
		fmt.Fprintf(&b, "SLO %s (policy %s): %s\n", s.Name, s.Policy, s.Freeze.Describe(now))
		if s.Freeze.Reason != "" {
			fmt.Fprintf(&b, "  why:    %s\n", s.Freeze.Reason)
		}
		for _, ru := range s.Rules {
			if ru.Firing {
				fmt.Fprintf(&b, "  firing: %s (%s) %s, threshold %s\n", ru.Name, ru.Action, ru.Value, ru.Threshold)
			}
		}
		fmt.Fprintf(&b, "  budget: %s left, %s\n", budgetText(s), exhaustionText(s.ExhaustedIn))
		lift := "at the first evaluation after"
		if s.Freeze.HoldUntil != nil {
			lift += " " + s.Freeze.HoldUntil.Format(time.RFC3339) + " (minDuration) at which"
		}
		fmt.Fprintf(&b, "  lifts:  %s no Freeze rule fires (a budget rule: once the budget is back above the policy's release margin)\n\n", lift)
	}
	fmt.Fprintf(&b, "What still passes for you:\n")
	if len(ex.Rollbacks) == 0 {
		fmt.Fprintf(&b, "  rollback: no revision from before the freeze in the history\n")
	}
	for i, t := range ex.Rollbacks {
		if i == 3 {
			fmt.Fprintf(&b, "            (%d more)\n", len(ex.Rollbacks)-3)
			break
		}
		fmt.Fprintf(&b, "  rollback to revision %s (%s): %s\n", t.Revision, strings.Join(t.Images, ", "), t.Command)
	}
	fmt.Fprintf(&b, "  scaling and restarts: always\n")
	if ex.MayClaim {
		fmt.Fprintf(&b, "  a release claiming class %s: you may (release-during-freeze), one release per claim: %s\n",
			strings.Join(ex.Classes, " or "), ex.Commands["claim"])
	} else {
		fmt.Fprintf(&b, "  a release claiming class %s: you may not (%s says no); ask someone who may, or the platform team\n",
			strings.Join(ex.Classes, " or "), ex.Commands["canI"])
	}
	for _, f := range ex.Exceptions {
		state := "in force"
		if !f.InForce {
			state = "not in force yet (being validated, or awaiting approval: kubectl describe fex " + f.Name + ")"
		}
		fmt.Fprintf(&b, "  exception %s, %s, until %s: %q, requested by %s", f.Name, state, f.ExpiresAt.Format(time.RFC3339), f.Reason, orDash(f.RequestedBy))
		if f.ApprovedBy != "" {
			fmt.Fprintf(&b, ", approved by %s", f.ApprovedBy)
		}
		fmt.Fprintln(&b)
	}
	if len(ex.Exceptions) == 0 {
		if ex.MayExcept {
			fmt.Fprintf(&b, "  an exception: you may request one: %s\n", ex.Commands["except"])
		} else {
			fmt.Fprintf(&b, "  an exception: none in force, and you may not request one\n")
		}
	}
	fmt.Fprintf(&b, "\nSee the freeze: %s\n", ex.Commands["see"])
	_, err := io.WriteString(w, b.String())
	return err
}

// exhaustionText is status.errorBudget.exhaustedIn for a sentence.
func exhaustionText(in string) string {
	switch in {
	case "":
		return "no forecast yet"
	case "exhausted":
		return "exhausted"
	case "never":
		return "not burning"
	}
	return "exhausted in " + in + " at the current burn"
}

func budgetText(s SLOSummary) string {
	if s.BudgetLeft == nil {
		return "unknown"
	}
	return percent(*s.BudgetLeft)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
