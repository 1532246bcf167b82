package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	slov1alpha1 "github.com/budgetgate/budgetgate/api/v1alpha1"
)

type releaseOptions struct {
	class, reason string
	images        []string
	dryRun        bool
}

func (r *root) releaseCommand() *cobra.Command {
	o := &releaseOptions{}
	cmd := &cobra.Command{
		Use:   "release KIND/NAME --class CLASS --reason TEXT --image CONTAINER=IMAGE... [-n NAMESPACE]",
		Short: "Release during a freeze by claiming a release class, correctly, for one release",
		Long: `Release a new pod template during a freeze by claiming an exempt release
class (hotfix, security), the way budgetgate counts a claim: the claim and a
new budgetgate.dev/release-reason go in the same update as the change, so the
claim covers this release only (re-applying the same reason releases nothing).
It first asks the API server whether you may release-during-freeze in the
namespace, and stops with what to do if not; --dry-run=server asks
budgetgate's admission without changing anything.`,
		Example: `  kubectl budgetgate release deployment/checkout -n shop --class hotfix --reason "INC-4821 payment timeouts" --image checkout=registry.example/shop/checkout:1.5.1`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if ctx == nil {
				ctx = context.Background()
			}
			c, ns, err := r.cluster()
			if err != nil {
				return err
			}
			msg, err := Release(ctx, c, ns, args[0], o.class, o.reason, o.images, o.dryRun, time.Now())
			if err != nil {
				return err
			}
			fmt.Fprintln(r.streams.Out, msg)
			return nil
		},
	}
	cmd.Flags().StringVar(&o.class, "class", "hotfix", "the release class to claim (one of the policy's exemptReleaseClasses)")
	cmd.Flags().StringVar(&o.reason, "reason", "", "why this release must ship during the freeze, e.g. the incident; recorded")
	cmd.Flags().StringArrayVar(&o.images, "image", nil, "CONTAINER=IMAGE: the change this release makes (repeatable)")
	cmd.Flags().BoolVar(&o.dryRun, "dry-run", false, "ask the API server and budgetgate's admission, change nothing (--dry-run=server)")
	_ = cmd.MarkFlagRequired("reason")
	_ = cmd.MarkFlagRequired("image")
	return cmd
}

// Release patches the workload's pod template with the images, the claimed
// class and a release reason that no earlier release of it carries, in one
// update, after asking the API server whether the user may claim a class.
func Release(ctx context.Context, c client.Client, ns, ref, class, reason string, images []string, dryRun bool, now time.Time) (string, error) {
	kind, name, err := parseRef(ref)
	if err != nil {
		return "", err
	}
	if strings.TrimSpace(reason) == "" {
		return "", fmt.Errorf("--reason: say why this release must ship during the freeze")
	}
	ok, err := allowed(ctx, c, ns, slov1alpha1.VerbReleaseDuringFreeze, "servicelevelobjectives")
	if err != nil {
		return "", err
	}
	if !ok {
		return "", fmt.Errorf("you may not claim a release class in %s: kubectl auth can-i %s servicelevelobjectives.slo.budgetgate.dev -n %s says no. "+
			"Ask someone who may (the on-call engineer), or for a FreezeException (kubectl budgetgate except %s -n %s --for 2h --reason ...)",
			ns, slov1alpha1.VerbReleaseDuringFreeze, ns, ref, ns)
	}
	w, err := kind.Get(ctx, c, ns, name)
	if err != nil {
		return "", fmt.Errorf("%s %s in namespace %s: %w", kind.GVK.Kind, name, ns, err)
	}
	// The claim counts for the release that changes the reason with it: a
	// reason the template already carries is made new.
	if w.Spec.Template.Annotations[slov1alpha1.ReleaseReasonAnnotation] == reason {
		reason = fmt.Sprintf("%s (%s)", reason, now.UTC().Format(time.RFC3339))
	}
	var containers []map[string]any
	for _, img := range images {
		cname, image, ok := strings.Cut(img, "=")
		if !ok || cname == "" || image == "" {
			return "", fmt.Errorf("--image %q: write CONTAINER=IMAGE, e.g. checkout=registry.example/shop/checkout:1.5.1", img)
		}
		found := false
		for _, ct := range w.Spec.Template.Spec.Containers {
			found = found || ct.Name == cname
		}
		if !found {
			return "", fmt.Errorf("--image %s: %s %s has no container %q", img, kind.GVK.Kind, name, cname)
		}
		containers = append(containers, map[string]any{"name": cname, "image": image})
	}
	patch := map[string]any{"spec": map[string]any{"template": map[string]any{
		"metadata": map[string]any{"annotations": map[string]string{
			slov1alpha1.ReleaseClassAnnotation:  class,
			slov1alpha1.ReleaseReasonAnnotation: reason,
		}},
		"spec": map[string]any{"containers": containers},
	}}}
	data, err := json.Marshal(patch)
	if err != nil {
		return "", err
	}
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(kind.GVK)
	u.SetNamespace(ns)
	u.SetName(name)
	opts := []client.PatchOption{}
	if dryRun {
		opts = append(opts, client.DryRunAll)
	}
	// A strategic merge patch merges containers by name (a Rollout, a custom
	// resource, takes a merge patch of the whole list instead).
	pt := types.StrategicMergePatchType
	if kind.Optional {
		pt = types.MergePatchType
	}
	if err := c.Patch(ctx, u, client.RawPatch(pt, data), opts...); err != nil {
		return "", err
	}
	what := "released"
	if dryRun {
		what = "would be released (dry run: budgetgate's admission said yes)"
	}
	return fmt.Sprintf("%s %s/%s %s as class %s, reason %q: %s. The claim covers this release only.",
		kind.GVK.Kind, ns, name, what, class, reason, strings.Join(images, ", ")), nil
}
