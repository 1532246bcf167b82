package freeze_test

import (
	"context"
	"fmt"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/budgetgate/budgetgate/internal/freeze"
)

type noHistory struct{}

func (noHistory) Revisions(context.Context, *freeze.Workload, func(*corev1.PodTemplateSpec) bool) error {
	return nil
}

func (noHistory) Authorized(context.Context, authenticationv1.UserInfo, string, string) (bool, error) {
	return false, nil
}

func ExampleDecide() {
	template := func(image string) *corev1.PodTemplateSpec {
		return &corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: image}}}}
	}
	released := template("checkout:v2")
	released.Annotations = map[string]string{freeze.ReleaseClassAnnotation: "hotfix"}
	wl := func(t *corev1.PodTemplateSpec) *freeze.Workload {
		return &freeze.Workload{Kind: "Deployment", Namespace: "shop", Name: "checkout", Labels: map[string]string{"app": "checkout"}, Template: t}
	}
	slo := freeze.FrozenSLO{
		Namespace: "shop", Name: "checkout-availability", Selector: labels.SelectorFromSet(labels.Set{"app": "checkout"}),
		Policy: "default", Rule: "fast-burn",
		Reason:               "fast-burn: burn rate 15.10x over 1h and 16.00x over 5m ≥ 14.40x; budget 62.3% left",
		Since:                time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC),
		HoldUntil:            time.Date(2026, 5, 1, 11, 0, 0, 0, time.UTC),
		ExemptReleaseClasses: []string{"hotfix", "security"},
	}
	req := freeze.Request{
		Operation: freeze.Update,
		Old:       wl(template("checkout:v1")),
		New:       wl(released),
		User:      authenticationv1.UserInfo{Username: "bob"},
		// The platform's --contact: the message's last line.
		Contact: "https://runbooks.example/budgetgate",
	}
	r := freeze.Decide(context.Background(), req, []freeze.FrozenSLO{slo}, nil, noHistory{}, time.Date(2026, 5, 1, 10, 30, 0, 0, time.UTC))
	fmt.Println(r.Decision, r.Class, r.SLOs)
	fmt.Println(r.Message)
	// Output:
	// Deny template-change [shop/checkout-availability]
	// budgetgate: release of Deployment shop/checkout blocked until at least 2026-05-01T11:00:00Z by SLO shop/checkout-availability, frozen since 2026-05-01T10:00:00Z (rule fast-burn: burn rate 15.10x over 1h and 16.00x over 5m ≥ 14.40x; budget 62.3% left).
	// Release class "hotfix" was not honoured: user "bob" may not release-during-freeze on servicelevelobjectives.slo.budgetgate.dev in namespace shop.
	// Still allowed: rollback (kubectl rollout undo deployment/checkout -n shop; under GitOps a git revert counts), scaling, restarts.
	// Hotfix: if kubectl auth can-i release-during-freeze servicelevelobjectives.slo.budgetgate.dev -n shop says yes, set pod template annotations budgetgate.dev/release-class: hotfix and budgetgate.dev/release-reason: <incident>, new per release.
	// See the freeze: kubectl describe slo checkout-availability -n shop
	// Exceptions and help: https://runbooks.example/budgetgate
}
