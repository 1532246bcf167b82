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
	}
	r := freeze.Decide(context.Background(), req, []freeze.FrozenSLO{slo}, nil, noHistory{}, time.Date(2026, 5, 1, 10, 30, 0, 0, time.UTC))
	fmt.Println(r.Decision, r.Class, r.SLOs)
	fmt.Println(r.Message)
	// Output:
	// Deny template-change [shop/checkout-availability]
	// budgetgate: Deployment shop/checkout may not release a new pod template: releases are frozen by SLO shop/checkout-availability (policy default, rule fast-burn: burn rate 15.10x over 1h and 16.00x over 5m ≥ 14.40x; budget 62.3% left), since 2026-05-01T10:00:00Z until at least 2026-05-01T11:00:00Z.
	// Release class "hotfix" was not honoured: user "bob" may not release-during-freeze on servicelevelobjectives.slo.budgetgate.dev in namespace shop.
	// Still allowed during the freeze: rollback to a previous revision (kubectl rollout undo deployment/checkout -n shop), scaling, restart with an unchanged template (kubectl rollout restart deployment/checkout -n shop) and a pod template annotated budgetgate.dev/release-class: hotfix or security, applied by a user allowed to release-during-freeze.
	// To release anyway, ask a platform admin for a FreezeException (kind FreezeException, short name fex) in namespace shop with spec.workloads [{kind: Deployment, name: checkout}] or a matching spec.workloadSelector, a spec.reason and a spec.expiresAt (kubectl create -f <file>; kubectl get fex -n shop).
}
