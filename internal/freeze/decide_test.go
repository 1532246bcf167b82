package freeze

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	slov1alpha1 "github.com/budgetgate/budgetgate/api/v1alpha1"
)

var (
	now      = time.Date(2026, 5, 1, 10, 30, 0, 0, time.UTC)
	since    = time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	hold     = time.Date(2026, 5, 1, 11, 0, 0, 0, time.UTC)
	alice    = authenticationv1.UserInfo{Username: "alice", Groups: []string{"team-checkout"}}
	mallory  = authenticationv1.UserInfo{Username: "mallory"}
	errBoom  = errors.New("connection refused")
	checkout = map[string]string{"app": "checkout", "tier": "frontend"}
)

// ---- fixtures ----

type tplOpt func(*corev1.PodTemplateSpec)

func tpl(image string, opts ...tplOpt) *corev1.PodTemplateSpec {
	t := &corev1.PodTemplateSpec{}
	t.Labels = map[string]string{"app": "checkout"}
	t.Spec.Containers = []corev1.Container{{Name: "app", Image: "registry.example/checkout:" + image}}
	for _, o := range opts {
		o(t)
	}
	return t
}

func annotated(k, v string) tplOpt {
	return func(t *corev1.PodTemplateSpec) {
		if t.Annotations == nil {
			t.Annotations = map[string]string{}
		}
		t.Annotations[k] = v
	}
}

func labelled(k, v string) tplOpt {
	return func(t *corev1.PodTemplateSpec) { t.Labels[k] = v }
}

func restartedAt(v string) tplOpt  { return annotated(RestartedAtAnnotation, v) }
func releaseClass(c string) tplOpt { return annotated(ReleaseClassAnnotation, c) }
func hashed(h string) tplOpt       { return labelled(PodTemplateHashLabel, h) }
func withEnv(k, v string) tplOpt {
	return func(t *corev1.PodTemplateSpec) {
		t.Spec.Containers[0].Env = append(t.Spec.Containers[0].Env, corev1.EnvVar{Name: k, Value: v})
	}
}
func cpu(q string) tplOpt {
	return func(t *corev1.PodTemplateSpec) {
		t.Spec.Containers[0].Resources.Requests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(q)}
	}
}

func deploy(l map[string]string, t *corev1.PodTemplateSpec) *Workload {
	return &Workload{Kind: "Deployment", Namespace: "shop", Name: "checkout", Labels: l, Template: t}
}

func update(old, new *Workload, user authenticationv1.UserInfo) Request {
	return Request{Operation: Update, Old: old, New: new, User: user}
}

func create(new *Workload, user authenticationv1.UserInfo) Request {
	return Request{Operation: Create, New: new, User: user}
}

func sel(s string) labels.Selector {
	l, err := labels.Parse(s)
	if err != nil {
		panic(err)
	}
	return l
}

var (
	sloAvail = FrozenSLO{
		Namespace: "shop", Name: "checkout-availability", Selector: sel("app=checkout"),
		Policy: "default", Rule: "fast-burn",
		Reason: "fast-burn: burn rate 15.10x over 1h and 16.00x over 5m ≥ 14.40x; budget 62.3% left",
		Since:  since, HoldUntil: hold, ExemptReleaseClasses: []string{"hotfix", "security"},
	}
	sloLatency = FrozenSLO{
		Namespace: "shop", Name: "checkout-latency", Selector: sel("tier=frontend"),
		Policy: "strict", Rule: "budget-exhausted", Reason: "budget 3.2% over spent",
		Since:     time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC),
		HoldUntil: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC), ExemptReleaseClasses: []string{"security"},
	}
	sloDry = FrozenSLO{
		Namespace: "shop", Name: "checkout-errors", Selector: sel("app=checkout"), DryRun: true,
		Policy: "observe", Rule: "slow-burn",
		Reason: "slow-burn: burn rate 7.00x over 6h and 8.00x over 30m ≥ 6.00x; budget 80.0% left",
		Since:  since, HoldUntil: now.Add(-time.Minute), ExemptReleaseClasses: []string{"hotfix", "security"},
	}
	sloDryStrict = FrozenSLO{
		Namespace: "shop", Name: "checkout-saturation", Selector: sel("tier=frontend"), DryRun: true,
		Rule: "budget-exhausted", ExemptReleaseClasses: nil,
	}
	sloOtherNS  = FrozenSLO{Namespace: "payments", Name: "api", Selector: sel("app=checkout"), Policy: "default", Rule: "fast-burn", Since: since, HoldUntil: hold}
	sloEverying = FrozenSLO{Namespace: "shop", Name: "observe-all", Selector: labels.Everything(), Policy: "default", Rule: "fast-burn", Since: since, HoldUntil: hold}
	sloNilSel   = FrozenSLO{Namespace: "shop", Name: "no-selector", Policy: "default", Rule: "fast-burn", Since: since, HoldUntil: hold}
	sloOtherApp = FrozenSLO{Namespace: "shop", Name: "cart", Selector: sel("app=cart"), Policy: "default", Rule: "fast-burn", Since: since, HoldUntil: hold}

	fexActive   = Exception{Namespace: "shop", Name: "checkout-hotfix", Reason: "INC-4711 payment outage fix", Selector: sel("app=checkout"), ExpiresAt: now.Add(2 * time.Hour)}
	fexByRef    = Exception{Namespace: "shop", Name: "by-ref", Reason: "INC-4711 payment outage fix", Workloads: []WorkloadRef{{Kind: "Deployment", Name: "checkout"}}, ExpiresAt: now.Add(time.Hour)}
	fexExpired  = Exception{Namespace: "shop", Name: "old", Reason: "INC-4000 old incident", Selector: sel("app=checkout"), ExpiresAt: now}
	fexOther    = Exception{Namespace: "shop", Name: "cart-fix", Reason: "INC-4712 cart broken", Selector: sel("app=cart"), Workloads: []WorkloadRef{{Kind: "StatefulSet", Name: "checkout"}, {Kind: "Deployment", Name: "cart"}}, ExpiresAt: now.Add(time.Hour)}
	fexOtherNS  = Exception{Namespace: "payments", Name: "checkout-fix", Reason: "INC-4711 payment outage fix", Selector: sel("app=checkout"), ExpiresAt: now.Add(time.Hour)}
	fexEmptySel = Exception{Namespace: "shop", Name: "everything", Reason: "INC-4711 payment outage fix", Selector: labels.Everything(), ExpiresAt: now.Add(time.Hour)}
)

// ---- fake lookups ----

type fakeLookups struct {
	history    []corev1.PodTemplateSpec
	historyErr error
	allowed    bool
	mayLift    bool
	sarErr     error
	calls      []string
}

// Revisions walks the history like the webhook does: until fn says stop, then
// the error (a history error after the whole history, as a list that fails on
// its last page).
func (f *fakeLookups) Revisions(_ context.Context, w *Workload, fn func(*corev1.PodTemplateSpec) bool) error {
	f.calls = append(f.calls, "Revisions "+w.Kind+" "+w.Namespace+"/"+w.Name)
	for i := range f.history {
		if !fn(&f.history[i]) {
			return nil
		}
	}
	return f.historyErr
}

func (f *fakeLookups) Authorized(_ context.Context, u authenticationv1.UserInfo, ns, verb string) (bool, error) {
	f.calls = append(f.calls, "Authorized "+u.Username+" "+ns+" "+verb)
	if verb == LiftFreezeVerb {
		return f.mayLift && u.Username == "alice", f.sarErr
	}
	return f.allowed && u.Username == "alice", f.sarErr
}

func history(ts ...*corev1.PodTemplateSpec) []corev1.PodTemplateSpec {
	out := make([]corev1.PodTemplateSpec, len(ts))
	for i, t := range ts {
		out[i] = *t
	}
	return out
}

// ---- golden message parts ----

const (
	headUpdate  = "budgetgate: release of Deployment shop/checkout blocked "
	headCreate  = "budgetgate: creation of Deployment shop/checkout blocked "
	descAvail   = "SLO shop/checkout-availability, frozen since 2026-05-01T10:00:00Z (rule fast-burn: burn rate 15.10x over 1h and 16.00x over 5m ≥ 14.40x; budget 62.3% left)"
	descAvailU  = "SLO shop/checkout-availability, frozen since 2026-05-01T10:00:00Z until at least 2026-05-01T11:00:00Z (rule fast-burn: burn rate 15.10x over 1h and 16.00x over 5m ≥ 14.40x; budget 62.3% left)"
	descLatU    = "SLO shop/checkout-latency, frozen since 2026-05-01T09:00:00Z until at least 2026-05-01T12:00:00Z (rule budget-exhausted: budget 3.2% over spent)"
	descDry     = "SLO shop/checkout-errors, frozen in DryRun mode since 2026-05-01T10:00:00Z (rule slow-burn: burn rate 7.00x over 6h and 8.00x over 30m ≥ 6.00x; budget 80.0% left)"
	descDryU    = "SLO shop/checkout-errors, frozen in DryRun mode since 2026-05-01T10:00:00Z until the error budget recovers (rule slow-burn: burn rate 7.00x over 6h and 8.00x over 30m ≥ 6.00x; budget 80.0% left)"
	descDryStr  = "SLO shop/checkout-saturation, frozen in DryRun mode (rule budget-exhausted)"
	descDryStrU = "SLO shop/checkout-saturation, frozen in DryRun mode until the error budget recovers (rule budget-exhausted)"
	byAvail     = "until at least 2026-05-01T11:00:00Z by " + descAvail + "."
	byDry       = "until the error budget recovers by " + descDry + "."
	byDryStr    = "until the error budget recovers by " + descDryStr + "."
	stillUpd    = "Still allowed: rollback (kubectl rollout undo deployment/checkout -n shop; under GitOps a git revert counts), scaling, restarts."
	hotfixHot   = "Hotfix: if kubectl auth can-i release-during-freeze servicelevelobjectives.slo.budgetgate.dev -n shop says yes, set pod template annotations budgetgate.dev/release-class: hotfix and budgetgate.dev/release-reason: <incident>, new per release."
	hotfixSec   = "Hotfix: if kubectl auth can-i release-during-freeze servicelevelobjectives.slo.budgetgate.dev -n shop says yes, set pod template annotations budgetgate.dev/release-class: security and budgetgate.dev/release-reason: <incident>, new per release."
	allowedHot  = stillUpd + "\n" + hotfixHot
	allowedSec  = stillUpd + "\n" + hotfixSec
	help        = "Exceptions and help: your platform team (kubectl get fex -n shop)"
	tailAvail   = "See the freeze: kubectl describe slo checkout-availability -n shop\n" + help
	tailDry     = "See the freeze: kubectl describe slo checkout-errors -n shop\n" + help
	histCall    = "Revisions Deployment shop/checkout"
	sarAlice    = "Authorized alice shop release-during-freeze"
	sarMallory  = "Authorized mallory shop release-during-freeze"
	liftAlice   = "Authorized alice shop lift-freeze"

	relabelHead    = "budgetgate: label change of Deployment shop/checkout blocked until at least 2026-05-01T11:00:00Z: the new labels would leave the selection of "
	relabelHeadDry = "budgetgate: label change of Deployment shop/checkout blocked until the error budget recovers: the new labels would leave the selection of "
	relabelTail    = "Change the labels after the freeze lifts, or ask someone for whom kubectl auth can-i lift-freeze servicelevelobjectives.slo.budgetgate.dev -n shop says yes.\n" + tailAvail
	relabelTailDry = "Change the labels after the freeze lifts, or ask someone for whom kubectl auth can-i lift-freeze servicelevelobjectives.slo.budgetgate.dev -n shop says yes.\n" + tailDry
)

// lines joins the lines of a message; a part may hold several lines.
func lines(l ...string) string { return strings.Join(l, "\n") }

// oneLine is the admission warning of a DryRun message.
func oneLine(msg string) []string { return []string{strings.ReplaceAll(msg, "\n", " | ")} }

// The one deny message spelled out in full, as a user sees it (no --contact).
const denyAvailFull = `budgetgate: release of Deployment shop/checkout blocked until at least 2026-05-01T11:00:00Z by SLO shop/checkout-availability, frozen since 2026-05-01T10:00:00Z (rule fast-burn: burn rate 15.10x over 1h and 16.00x over 5m ≥ 14.40x; budget 62.3% left).
Still allowed: rollback (kubectl rollout undo deployment/checkout -n shop; under GitOps a git revert counts), scaling, restarts.
Hotfix: if kubectl auth can-i release-during-freeze servicelevelobjectives.slo.budgetgate.dev -n shop says yes, set pod template annotations budgetgate.dev/release-class: hotfix and budgetgate.dev/release-reason: <incident>, new per release.
See the freeze: kubectl describe slo checkout-availability -n shop
Exceptions and help: your platform team (kubectl get fex -n shop)`

// honouredForEnforce: a class one SLO exempts, the other does not.
const honouredForEnforce = "DryRun: would deny: " + headUpdate + byDryStr + "\n" +
	"Release class \"hotfix\" was honoured for SLO shop/checkout-availability.\n" +
	stillUpd + "\n" +
	"See the freeze: kubectl describe slo checkout-saturation -n shop\n" + help

// twoDry is the DryRun warning of two DryRun SLOs that share no exempt class.
const twoDry = "DryRun: would deny: " + headUpdate + "until their error budgets recover by 2 frozen SLOs:\n" +
	"- " + descDryU + ";\n" +
	"- " + descDryStrU + ".\n" +
	stillUpd + "\n" +
	"See the freeze: kubectl describe slo checkout-errors checkout-saturation -n shop\n" + help

type decideCase struct {
	name       string
	req        Request
	frozen     []FrozenSLO
	exceptions []Exception
	lookups    *fakeLookups // nil: a nil Lookups
	want       Result
	wantCalls  []string
}

func decideCases() []decideCase {
	v1, v2 := tpl("v1"), tpl("v2")
	prevHistory := func() *fakeLookups {
		return &fakeLookups{history: history(tpl("v0", hashed("5d4c")), tpl("v1", hashed("6f7a")))}
	}
	notFrozen := Result{Decision: Allow, Class: ClassNotFrozen, Message: "budgetgate: no frozen SLO selects Deployment shop/checkout"}
	scaleMsg := "budgetgate: pod template of Deployment shop/checkout unchanged"
	restartMsg := "budgetgate: restart of Deployment shop/checkout (only kubectl.kubernetes.io/restartedAt changed)"
	availOnly := []string{"shop/checkout-availability"}
	denyAvail := Result{Decision: Deny, Class: ClassTemplateChange, SLOs: availOnly, Message: denyAvailFull}
	exceptionMsg := "budgetgate: Deployment shop/checkout released during the freeze of SLO shop/checkout-availability under FreezeException shop/checkout-hotfix (reason: \"INC-4711 payment outage fix\"; expires 2026-05-01T12:30:00Z)"
	exceptionResult := func(slos ...string) Result {
		return Result{
			Decision: Allow, Class: ClassException, SLOs: slos, Exception: "checkout-hotfix",
			Message:  exceptionMsg,
			Warnings: []string{exceptionMsg},
			AuditAnnotations: map[string]string{
				"user": "alice", "exception": "checkout-hotfix", "reason": "INC-4711 payment outage fix", "frozen-by": strings.Join(slos, ","),
			},
		}
	}
	hotfixMsg := "budgetgate: Deployment shop/checkout released during the freeze of SLO shop/checkout-availability as release class \"hotfix\" by \"alice\", who may release-during-freeze"
	notAuthorised := "Release class \"hotfix\" was not honoured: user \"mallory\" may not release-during-freeze on servicelevelobjectives.slo.budgetgate.dev in namespace shop."

	return []decideCase{
		// ---- never gated ----
		{
			name:    "delete is never gated",
			req:     Request{Operation: Delete, Old: deploy(checkout, v1), User: alice},
			frozen:  []FrozenSLO{sloAvail},
			lookups: &fakeLookups{},
			want:    Result{Decision: Allow, Class: ClassScaleOrMetadata, Message: "budgetgate: only creations and pod template changes are gated"},
		},
		{
			name:    "connect is never gated",
			req:     Request{Operation: "CONNECT", New: deploy(checkout, v2), User: alice},
			frozen:  []FrozenSLO{sloAvail},
			lookups: &fakeLookups{},
			want:    Result{Decision: Allow, Class: ClassScaleOrMetadata, Message: "budgetgate: only creations and pod template changes are gated"},
		},
		{
			name:    "no template on either side",
			req:     update(deploy(checkout, nil), deploy(checkout, nil), alice),
			frozen:  []FrozenSLO{sloAvail},
			lookups: &fakeLookups{},
			want:    Result{Decision: Allow, Class: ClassScaleOrMetadata, Message: "budgetgate: no pod template to release"},
		},
		{
			name:    "nil new workload",
			req:     update(deploy(checkout, v1), nil, alice),
			frozen:  []FrozenSLO{sloAvail},
			lookups: &fakeLookups{},
			want:    Result{Decision: Allow, Class: ClassScaleOrMetadata, Message: "budgetgate: no pod template to release"},
		},

		// ---- not frozen ----
		{
			name:    "image change, nothing frozen",
			req:     update(deploy(checkout, v1), deploy(checkout, v2), alice),
			lookups: &fakeLookups{},
			want:    notFrozen,
		},
		{
			name:    "image change, frozen SLO selects other workloads",
			req:     update(deploy(checkout, v1), deploy(checkout, v2), alice),
			frozen:  []FrozenSLO{sloOtherApp, sloOtherNS},
			lookups: &fakeLookups{},
			want:    notFrozen,
		},
		{
			name:    "empty and nil selectors gate nothing",
			req:     update(deploy(checkout, v1), deploy(checkout, v2), alice),
			frozen:  []FrozenSLO{sloEverying, sloNilSel},
			lookups: &fakeLookups{},
			want:    notFrozen,
		},
		{
			name:    "create, nothing frozen",
			req:     create(deploy(checkout, v1), alice),
			frozen:  []FrozenSLO{sloOtherApp},
			lookups: &fakeLookups{},
			want:    notFrozen,
		},
		{
			name:    "workload with nil labels",
			req:     update(deploy(nil, v1), deploy(nil, v2), alice),
			frozen:  []FrozenSLO{sloAvail},
			lookups: &fakeLookups{},
			want:    notFrozen,
		},

		// ---- frozen, but not a release ----
		{
			name:    "replicas only (template unchanged)",
			req:     update(deploy(checkout, v1), deploy(checkout, tpl("v1")), alice),
			frozen:  []FrozenSLO{sloAvail},
			lookups: &fakeLookups{},
			want:    Result{Decision: Allow, Class: ClassScaleOrMetadata, SLOs: availOnly, Message: scaleMsg},
		},
		{
			name:    "label-only metadata edit",
			req:     update(deploy(checkout, v1), deploy(map[string]string{"app": "checkout", "tier": "frontend", "team": "pay"}, tpl("v1")), alice),
			frozen:  []FrozenSLO{sloAvail, sloLatency},
			lookups: &fakeLookups{},
			want:    Result{Decision: Allow, Class: ClassScaleOrMetadata, SLOs: []string{"shop/checkout-availability", "shop/checkout-latency"}, Message: scaleMsg},
		},
		{
			name:    "empty and nil template maps are semantically equal",
			req:     update(deploy(checkout, tpl("v1", annotated("a", "b"), func(t *corev1.PodTemplateSpec) { t.Annotations = map[string]string{} })), deploy(checkout, v1), alice),
			frozen:  []FrozenSLO{sloAvail},
			lookups: &fakeLookups{},
			want:    Result{Decision: Allow, Class: ClassScaleOrMetadata, SLOs: availOnly, Message: scaleMsg},
		},
		{
			name:    "restart adds restartedAt",
			req:     update(deploy(checkout, v1), deploy(checkout, tpl("v1", restartedAt("2026-05-01T10:29:00Z"))), alice),
			frozen:  []FrozenSLO{sloAvail},
			lookups: &fakeLookups{},
			want:    Result{Decision: Allow, Class: ClassRestart, SLOs: availOnly, Message: restartMsg},
		},
		{
			name:    "restart changes restartedAt, DryRun",
			req:     update(deploy(checkout, tpl("v1", restartedAt("2026-04-01T00:00:00Z"))), deploy(checkout, tpl("v1", restartedAt("2026-05-01T10:29:00Z"))), alice),
			frozen:  []FrozenSLO{sloDry},
			lookups: &fakeLookups{},
			want:    Result{Decision: Allow, Class: ClassRestart, SLOs: []string{"shop/checkout-errors"}, Message: restartMsg},
		},
		{
			name:      "restart together with an image change is a release",
			req:       update(deploy(checkout, v1), deploy(checkout, tpl("v2", restartedAt("2026-05-01T10:29:00Z"))), alice),
			frozen:    []FrozenSLO{sloAvail},
			lookups:   &fakeLookups{},
			want:      denyAvail,
			wantCalls: []string{histCall},
		},
		{
			name:      "removing restartedAt is a release",
			req:       update(deploy(checkout, tpl("v1", restartedAt("2026-04-01T00:00:00Z"))), deploy(checkout, v1), alice),
			frozen:    []FrozenSLO{sloAvail},
			lookups:   &fakeLookups{},
			want:      denyAvail,
			wantCalls: []string{histCall},
		},

		// ---- image change while frozen ----
		{
			name:      "image change, Enforce: deny",
			req:       update(deploy(checkout, v1), deploy(checkout, v2), alice),
			frozen:    []FrozenSLO{sloAvail, sloOtherApp, sloOtherNS},
			lookups:   prevHistory(),
			want:      denyAvail,
			wantCalls: []string{histCall},
		},
		{
			name:      "env change, Enforce: deny",
			req:       update(deploy(checkout, v1), deploy(checkout, tpl("v1", withEnv("FEATURE", "on"))), alice),
			frozen:    []FrozenSLO{sloAvail},
			lookups:   prevHistory(),
			want:      denyAvail,
			wantCalls: []string{histCall},
		},
		{
			name:    "image change, DryRun: warn",
			req:     update(deploy(checkout, v1), deploy(checkout, v2), alice),
			frozen:  []FrozenSLO{sloDry},
			lookups: prevHistory(),
			want: Result{
				Decision: Warn, Class: ClassDryRun, SLOs: []string{"shop/checkout-errors"},
				Message:  lines("DryRun: would deny: "+headUpdate+byDry, allowedHot, tailDry),
				Warnings: oneLine(lines("DryRun: would deny: "+headUpdate+byDry, allowedHot, tailDry)),
			},
			wantCalls: []string{histCall},
		},
		{
			name:    "image change, Enforce and DryRun: only Enforce denies",
			req:     update(deploy(checkout, v1), deploy(checkout, v2), alice),
			frozen:  []FrozenSLO{sloDry, sloAvail},
			lookups: prevHistory(),
			want: Result{
				Decision: Deny, Class: ClassTemplateChange, SLOs: []string{"shop/checkout-availability", "shop/checkout-errors"},
				Message: lines(
					headUpdate+byAvail,
					"Also frozen in DryRun mode (would deny too): SLO shop/checkout-errors.",
					allowedHot,
					tailAvail),
			},
			wantCalls: []string{histCall},
		},
		{
			name:    "image change, several SLOs: each listed, common exempt classes",
			req:     update(deploy(checkout, v1), deploy(checkout, v2), alice),
			frozen:  []FrozenSLO{sloLatency, sloAvail},
			lookups: prevHistory(),
			want: Result{
				Decision: Deny, Class: ClassTemplateChange, SLOs: []string{"shop/checkout-availability", "shop/checkout-latency"},
				Message: lines(
					headUpdate+"until at least 2026-05-01T12:00:00Z by 2 frozen SLOs:",
					"- "+descAvailU+";",
					"- "+descLatU+".",
					allowedSec,
					"See the freeze: kubectl describe slo checkout-availability checkout-latency -n shop",
					help),
			},
			wantCalls: []string{histCall},
		},
		{
			name:    "several DryRun SLOs: warn lists each",
			req:     update(deploy(checkout, v1), deploy(checkout, v2), alice),
			frozen:  []FrozenSLO{sloDryStrict, sloDry},
			lookups: prevHistory(),
			want: Result{
				Decision: Warn, Class: ClassDryRun, SLOs: []string{"shop/checkout-errors", "shop/checkout-saturation"},
				Message:  twoDry,
				Warnings: oneLine(twoDry),
			},
			wantCalls: []string{histCall},
		},
		{
			name:    "relabel to escape the selector with a release: denied as a relabel",
			req:     update(deploy(checkout, v1), deploy(map[string]string{"app": "checkout-v2"}, v2), alice),
			frozen:  []FrozenSLO{sloAvail},
			lookups: prevHistory(),
			want: Result{
				Decision: Deny, Class: ClassRelabel, SLOs: availOnly,
				Message: lines(relabelHead+descAvail+".", `User "alice" may not lift-freeze on servicelevelobjectives.slo.budgetgate.dev in namespace shop.`, relabelTail),
			},
			wantCalls: []string{liftAlice},
		},
		{
			// The first step of the two-step escape: labels only, template unchanged.
			name:    "relabel out of a frozen selector, template unchanged: denied",
			req:     update(deploy(checkout, v1), deploy(map[string]string{"app": "checkout-v2"}, tpl("v1")), mallory),
			frozen:  []FrozenSLO{sloAvail},
			lookups: &fakeLookups{mayLift: true},
			want: Result{
				Decision: Deny, Class: ClassRelabel, SLOs: availOnly,
				Message: lines(relabelHead+descAvail+".", `User "mallory" may not lift-freeze on servicelevelobjectives.slo.budgetgate.dev in namespace shop.`, relabelTail),
			},
			wantCalls: []string{"Authorized mallory shop lift-freeze"},
		},
		{
			name:    "relabel out of a frozen selector by a user who may lift-freeze: admitted and recorded",
			req:     update(deploy(checkout, v1), deploy(map[string]string{"app": "checkout-v2"}, tpl("v1")), alice),
			frozen:  []FrozenSLO{sloAvail},
			lookups: &fakeLookups{mayLift: true},
			want: Result{
				Decision: Allow, Class: ClassRelabel, SLOs: availOnly,
				Message:          `budgetgate: Deployment shop/checkout relabelled out of the freeze of SLO shop/checkout-availability by "alice", who may lift-freeze`,
				Warnings:         []string{`budgetgate: Deployment shop/checkout relabelled out of the freeze of SLO shop/checkout-availability by "alice", who may lift-freeze`},
				AuditAnnotations: map[string]string{"user": "alice", "left-freeze-of": "shop/checkout-availability"},
			},
			wantCalls: []string{liftAlice},
		},
		{
			name:    "relabel out of a DryRun freeze: warn",
			req:     update(deploy(checkout, v1), deploy(map[string]string{"app": "checkout-v2"}, tpl("v1")), alice),
			frozen:  []FrozenSLO{sloDry},
			lookups: &fakeLookups{},
			want: Result{
				Decision: Warn, Class: ClassDryRun, SLOs: []string{"shop/checkout-errors"},
				Message:  lines("DryRun: would deny: "+relabelHeadDry+descDry+".", `User "alice" may not lift-freeze on servicelevelobjectives.slo.budgetgate.dev in namespace shop.`, relabelTailDry),
				Warnings: oneLine(lines("DryRun: would deny: "+relabelHeadDry+descDry+".", `User "alice" may not lift-freeze on servicelevelobjectives.slo.budgetgate.dev in namespace shop.`, relabelTailDry)),
			},
			wantCalls: []string{liftAlice},
		},
		{
			name:    "relabel that stays selected by the frozen SLO is not gated",
			req:     update(deploy(checkout, v1), deploy(map[string]string{"app": "checkout", "team": "pay"}, tpl("v1")), mallory),
			frozen:  []FrozenSLO{sloAvail},
			lookups: &fakeLookups{},
			want:    Result{Decision: Allow, Class: ClassScaleOrMetadata, SLOs: availOnly, Message: scaleMsg},
		},
		{
			name:    "lift-freeze check fails: deny says so",
			req:     update(deploy(checkout, v1), deploy(map[string]string{"app": "checkout-v2"}, tpl("v1")), alice),
			frozen:  []FrozenSLO{sloAvail},
			lookups: &fakeLookups{sarErr: context.DeadlineExceeded},
			want: Result{
				Decision: Deny, Class: ClassRelabel, SLOs: availOnly,
				Message: lines(relabelHead+descAvail+".", `Could not check whether "alice" may lift-freeze: budgetgate's deadline for this decision passed before the API server answered.`, relabelTail),
			},
			wantCalls: []string{liftAlice},
		},
		{
			name:      "relabel into a frozen selector: new labels select",
			req:       update(deploy(map[string]string{"app": "checkout-v2"}, v1), deploy(checkout, v2), alice),
			frozen:    []FrozenSLO{sloAvail},
			lookups:   prevHistory(),
			want:      denyAvail,
			wantCalls: []string{histCall},
		},
		{
			name:    "nil lookups: no history, deny says so",
			req:     update(deploy(checkout, v1), deploy(checkout, v2), alice),
			frozen:  []FrozenSLO{sloAvail},
			lookups: nil,
			want: Result{
				Decision: Deny, Class: ClassTemplateChange, SLOs: availOnly,
				Message: lines(headUpdate+byAvail, "No revision history was available to recognise a rollback.", allowedHot, tailAvail),
			},
		},
		{
			name:    "history lookup error: deny says so",
			req:     update(deploy(checkout, v1), deploy(checkout, v2), alice),
			frozen:  []FrozenSLO{sloAvail},
			lookups: &fakeLookups{historyErr: errBoom},
			want: Result{
				Decision: Deny, Class: ClassTemplateChange, SLOs: availOnly,
				Message: lines(headUpdate+byAvail, "Could not verify a rollback: reading the revision history failed (connection refused); if this is a rollback, retry it.", allowedHot, tailAvail),
			},
			wantCalls: []string{histCall},
		},
		{
			name:    "history lookup past the deadline: deny says the rollback could not be verified",
			req:     update(deploy(checkout, v1), deploy(checkout, v2), alice),
			frozen:  []FrozenSLO{sloAvail},
			lookups: &fakeLookups{historyErr: fmt.Errorf("listing ReplicaSets: %w", context.DeadlineExceeded)},
			want: Result{
				Decision: Deny, Class: ClassTemplateChange, SLOs: availOnly,
				Message: lines(headUpdate+byAvail, "Could not verify a rollback: reading the revision history failed (budgetgate's deadline for this decision passed before the API server answered); if this is a rollback, retry it.", allowedHot, tailAvail),
			},
			wantCalls: []string{histCall},
		},
		{
			name:      "rollback found before a later history error: admitted",
			req:       update(deploy(checkout, v1), deploy(checkout, tpl("v0")), alice),
			frozen:    []FrozenSLO{sloAvail},
			lookups:   &fakeLookups{history: history(tpl("v0", hashed("5d4c"))), historyErr: errBoom},
			want:      Result{Decision: Allow, Class: ClassRollback, SLOs: availOnly, Message: "budgetgate: rollback of Deployment shop/checkout to a previous revision during the freeze of SLO shop/checkout-availability"},
			wantCalls: []string{histCall},
		},
		{
			name:    "old workload missing on update: treated as a release without history",
			req:     update(nil, deploy(checkout, v2), alice),
			frozen:  []FrozenSLO{sloAvail},
			lookups: prevHistory(),
			want:    denyAvail,
		},

		// ---- rollback ----
		{
			name:      "rollback to previous revision (ReplicaSet template with pod-template-hash)",
			req:       update(deploy(checkout, v1), deploy(checkout, tpl("v0")), alice),
			frozen:    []FrozenSLO{sloAvail},
			lookups:   prevHistory(),
			want:      Result{Decision: Allow, Class: ClassRollback, SLOs: availOnly, Message: "budgetgate: rollback of Deployment shop/checkout to a previous revision during the freeze of SLO shop/checkout-availability"},
			wantCalls: []string{histCall},
		},
		{
			name:   "rollback modulo restartedAt",
			req:    update(deploy(checkout, tpl("v1", restartedAt("2026-05-01T09:00:00Z"))), deploy(checkout, tpl("v0", restartedAt("2026-05-01T09:00:00Z"))), alice),
			frozen: []FrozenSLO{sloAvail},
			lookups: &fakeLookups{history: history(
				tpl("v0", hashed("5d4c"), restartedAt("2026-04-20T08:00:00Z")),
				tpl("v1", hashed("6f7a"), restartedAt("2026-05-01T09:00:00Z")))},
			want:      Result{Decision: Allow, Class: ClassRollback, SLOs: availOnly, Message: "budgetgate: rollback of Deployment shop/checkout to a previous revision during the freeze of SLO shop/checkout-availability"},
			wantCalls: []string{histCall},
		},
		{
			name:      "rollback, DryRun: allowed without warning",
			req:       update(deploy(checkout, v1), deploy(checkout, tpl("v0")), alice),
			frozen:    []FrozenSLO{sloDry},
			lookups:   prevHistory(),
			want:      Result{Decision: Allow, Class: ClassRollback, SLOs: []string{"shop/checkout-errors"}, Message: "budgetgate: rollback of Deployment shop/checkout to a previous revision during the freeze of SLO shop/checkout-errors"},
			wantCalls: []string{histCall},
		},
		{
			name:      "new template only similar to history (other env): deny",
			req:       update(deploy(checkout, v1), deploy(checkout, tpl("v0", withEnv("X", "1"))), alice),
			frozen:    []FrozenSLO{sloAvail},
			lookups:   prevHistory(),
			want:      denyAvail,
			wantCalls: []string{histCall},
		},
		{
			name:    "create equal to some history is not a rollback",
			req:     create(deploy(checkout, tpl("v0")), alice),
			frozen:  []FrozenSLO{sloAvail},
			lookups: prevHistory(),
			want: Result{
				Decision: Deny, Class: ClassCreate, SLOs: availOnly,
				Message: lines(headCreate+byAvail, hotfixHot, tailAvail),
			},
		},

		// ---- create ----
		{
			name:    "create, DryRun: warn",
			req:     create(deploy(checkout, v1), alice),
			frozen:  []FrozenSLO{sloDry},
			lookups: prevHistory(),
			want: Result{
				Decision: Warn, Class: ClassDryRun, SLOs: []string{"shop/checkout-errors"},
				Message:  lines("DryRun: would deny: "+headCreate+byDry, hotfixHot, tailDry),
				Warnings: oneLine(lines("DryRun: would deny: "+headCreate+byDry, hotfixHot, tailDry)),
			},
		},
		{
			name:    "create with hotfix by authorised user",
			req:     create(deploy(checkout, tpl("v1", releaseClass("hotfix"))), alice),
			frozen:  []FrozenSLO{sloAvail},
			lookups: &fakeLookups{allowed: true},
			want: Result{
				Decision: Allow, Class: ClassExemptClass, SLOs: availOnly, ReleaseClass: "hotfix",
				Message: hotfixMsg, Warnings: []string{hotfixMsg},
				AuditAnnotations: map[string]string{"user": "alice", "release-class": "hotfix", "frozen-by": "shop/checkout-availability"},
			},
			wantCalls: []string{sarAlice},
		},
		{
			name:       "create under exception",
			req:        create(deploy(checkout, v1), alice),
			frozen:     []FrozenSLO{sloAvail},
			exceptions: []Exception{fexActive},
			lookups:    &fakeLookups{},
			want:       exceptionResult("shop/checkout-availability"),
		},

		// ---- exempt release class ----
		{
			name:    "hotfix by authorised user, Enforce",
			req:     update(deploy(checkout, v1), deploy(checkout, tpl("v2", releaseClass("hotfix"))), alice),
			frozen:  []FrozenSLO{sloAvail},
			lookups: &fakeLookups{allowed: true},
			want: Result{
				Decision: Allow, Class: ClassExemptClass, SLOs: availOnly, ReleaseClass: "hotfix",
				Message: hotfixMsg, Warnings: []string{hotfixMsg},
				AuditAnnotations: map[string]string{"user": "alice", "release-class": "hotfix", "frozen-by": "shop/checkout-availability"},
			},
			wantCalls: []string{sarAlice},
		},
		{
			name:    "hotfix by unauthorised user: deny says why",
			req:     update(deploy(checkout, v1), deploy(checkout, tpl("v2", releaseClass("hotfix"))), mallory),
			frozen:  []FrozenSLO{sloAvail},
			lookups: &fakeLookups{allowed: true, history: history(tpl("v0"))},
			want: Result{
				Decision: Deny, Class: ClassTemplateChange, SLOs: availOnly,
				Message: lines(headUpdate+byAvail, notAuthorised, allowedHot, tailAvail),
			},
			wantCalls: []string{sarMallory, histCall},
		},
		{
			name:    "hotfix, permission check fails: deny says so",
			req:     update(deploy(checkout, v1), deploy(checkout, tpl("v2", releaseClass("hotfix"))), alice),
			frozen:  []FrozenSLO{sloAvail},
			lookups: &fakeLookups{allowed: true, sarErr: errBoom},
			want: Result{
				Decision: Deny, Class: ClassTemplateChange, SLOs: availOnly,
				Message: lines(headUpdate+byAvail,
					"Release class \"hotfix\" was not honoured: could not check whether \"alice\" may release-during-freeze: connection refused.",
					allowedHot, tailAvail),
			},
			wantCalls: []string{sarAlice, histCall},
		},
		{
			name:    "hotfix with nil lookups: not allowed",
			req:     update(deploy(checkout, v1), deploy(checkout, tpl("v2", releaseClass("hotfix"))), alice),
			frozen:  []FrozenSLO{sloAvail},
			lookups: nil,
			want: Result{
				Decision: Deny, Class: ClassTemplateChange, SLOs: availOnly,
				Message: lines(headUpdate+byAvail,
					"Release class \"hotfix\" was not honoured: no authoriser is available to check release-during-freeze.",
					"No revision history was available to recognise a rollback.",
					allowedHot, tailAvail),
			},
		},
		{
			name:    "class not in policy: no permission check, deny says why",
			req:     update(deploy(checkout, v1), deploy(checkout, tpl("v2", releaseClass("feature"))), alice),
			frozen:  []FrozenSLO{sloAvail},
			lookups: &fakeLookups{allowed: true},
			want: Result{
				Decision: Deny, Class: ClassTemplateChange, SLOs: availOnly,
				Message: lines(headUpdate+byAvail,
					"Release class \"feature\" was not honoured: it is not exempt under policy default of SLO shop/checkout-availability (exempt: hotfix, security).",
					allowedHot, tailAvail),
			},
			wantCalls: []string{histCall},
		},
		{
			name:    "class exempt under one of several SLOs: deny names the other",
			req:     update(deploy(checkout, v1), deploy(checkout, tpl("v2", releaseClass("hotfix"))), alice),
			frozen:  []FrozenSLO{sloAvail, sloLatency},
			lookups: &fakeLookups{allowed: true},
			want: Result{
				Decision: Deny, Class: ClassTemplateChange, SLOs: []string{"shop/checkout-availability", "shop/checkout-latency"},
				Message: lines(headUpdate+"until at least 2026-05-01T12:00:00Z by 2 frozen SLOs:", "- "+descAvailU+";", "- "+descLatU+".",
					"Release class \"hotfix\" was not honoured: it is not exempt under policy strict of SLO shop/checkout-latency (exempt: security).",
					allowedSec, "See the freeze: kubectl describe slo checkout-availability checkout-latency -n shop", help),
			},
			wantCalls: []string{histCall},
		},
		{
			name:    "class exempt under all of several SLOs",
			req:     update(deploy(checkout, v1), deploy(checkout, tpl("v2", releaseClass("security"))), alice),
			frozen:  []FrozenSLO{sloAvail, sloLatency},
			lookups: &fakeLookups{allowed: true},
			want: Result{
				Decision: Allow, Class: ClassExemptClass, SLOs: []string{"shop/checkout-availability", "shop/checkout-latency"}, ReleaseClass: "security",
				Message:          "budgetgate: Deployment shop/checkout released during the freeze of SLOs shop/checkout-availability, shop/checkout-latency as release class \"security\" by \"alice\", who may release-during-freeze",
				Warnings:         []string{"budgetgate: Deployment shop/checkout released during the freeze of SLOs shop/checkout-availability, shop/checkout-latency as release class \"security\" by \"alice\", who may release-during-freeze"},
				AuditAnnotations: map[string]string{"user": "alice", "release-class": "security", "frozen-by": "shop/checkout-availability,shop/checkout-latency"},
			},
			wantCalls: []string{sarAlice},
		},
		{
			name:    "hotfix by authorised user, DryRun",
			req:     update(deploy(checkout, v1), deploy(checkout, tpl("v2", releaseClass("hotfix"))), alice),
			frozen:  []FrozenSLO{sloDry},
			lookups: &fakeLookups{allowed: true},
			want: Result{
				Decision: Allow, Class: ClassExemptClass, SLOs: []string{"shop/checkout-errors"}, ReleaseClass: "hotfix",
				Message:          "budgetgate: Deployment shop/checkout released during the freeze of SLO shop/checkout-errors as release class \"hotfix\" by \"alice\", who may release-during-freeze",
				Warnings:         []string{"budgetgate: Deployment shop/checkout released during the freeze of SLO shop/checkout-errors as release class \"hotfix\" by \"alice\", who may release-during-freeze"},
				AuditAnnotations: map[string]string{"user": "alice", "release-class": "hotfix", "frozen-by": "shop/checkout-errors"},
			},
			wantCalls: []string{sarAlice},
		},
		{
			name:    "hotfix by unauthorised user, DryRun: warn says why",
			req:     update(deploy(checkout, v1), deploy(checkout, tpl("v2", releaseClass("hotfix"))), mallory),
			frozen:  []FrozenSLO{sloDry},
			lookups: &fakeLookups{allowed: true},
			want: Result{
				Decision: Warn, Class: ClassDryRun, SLOs: []string{"shop/checkout-errors"},
				Message:  lines("DryRun: would deny: "+headUpdate+byDry, notAuthorised, allowedHot, tailDry),
				Warnings: oneLine(lines("DryRun: would deny: "+headUpdate+byDry, notAuthorised, allowedHot, tailDry)),
			},
			wantCalls: []string{sarMallory, histCall},
		},
		{
			name:    "hotfix honoured by the Enforce SLO, not by a DryRun SLO: warn, class recorded",
			req:     update(deploy(checkout, v1), deploy(checkout, tpl("v2", releaseClass("hotfix"))), alice),
			frozen:  []FrozenSLO{sloAvail, sloDryStrict},
			lookups: &fakeLookups{allowed: true},
			want: Result{
				Decision: Warn, Class: ClassDryRun, SLOs: []string{"shop/checkout-availability", "shop/checkout-saturation"}, ReleaseClass: "hotfix",
				Message:          honouredForEnforce,
				Warnings:         oneLine(honouredForEnforce),
				AuditAnnotations: map[string]string{"user": "alice", "release-class": "hotfix", "frozen-by": "shop/checkout-availability,shop/checkout-saturation"},
			},
			wantCalls: []string{sarAlice, histCall},
		},
		{
			name:    "hotfix exempt by the Enforce SLO, user unauthorised, mixed modes: deny",
			req:     update(deploy(checkout, v1), deploy(checkout, tpl("v2", releaseClass("hotfix"))), mallory),
			frozen:  []FrozenSLO{sloAvail, sloDryStrict},
			lookups: &fakeLookups{allowed: true},
			want: Result{
				Decision: Deny, Class: ClassTemplateChange, SLOs: []string{"shop/checkout-availability", "shop/checkout-saturation"},
				Message: lines(headUpdate+byAvail,
					"Also frozen in DryRun mode (would deny too): SLO shop/checkout-saturation.",
					notAuthorised, allowedHot, tailAvail),
			},
			wantCalls: []string{sarMallory, histCall},
		},
		{
			name:      "release class label on the workload (not the pod template) is ignored",
			req:       update(deploy(checkout, v1), deploy(map[string]string{"app": "checkout", ReleaseClassAnnotation: "hotfix"}, v2), alice),
			frozen:    []FrozenSLO{sloAvail},
			lookups:   &fakeLookups{allowed: true},
			want:      denyAvail,
			wantCalls: []string{histCall},
		},
		{
			name:    "hostile class value is quoted and truncated",
			req:     update(deploy(checkout, v1), deploy(checkout, tpl("v2", releaseClass("x\ny"+strings.Repeat("z", 100)))), alice),
			frozen:  []FrozenSLO{sloAvail},
			lookups: &fakeLookups{allowed: true},
			want: Result{
				Decision: Deny, Class: ClassTemplateChange, SLOs: availOnly,
				Message: lines(headUpdate+byAvail,
					"Release class \"x\\ny"+strings.Repeat("z", 60)+"…\" was not honoured: it is not exempt under policy default of SLO shop/checkout-availability (exempt: hotfix, security).",
					allowedHot, tailAvail),
			},
			wantCalls: []string{histCall},
		},

		// ---- exceptions ----
		{
			name:       "active exception by selector, Enforce",
			req:        update(deploy(checkout, v1), deploy(checkout, v2), alice),
			frozen:     []FrozenSLO{sloAvail},
			exceptions: []Exception{fexExpired, fexActive, fexOther},
			lookups:    &fakeLookups{allowed: true},
			want:       exceptionResult("shop/checkout-availability"),
		},
		{
			name:       "active exception, several SLOs and DryRun",
			req:        update(deploy(checkout, v1), deploy(checkout, v2), alice),
			frozen:     []FrozenSLO{sloDry, sloAvail},
			exceptions: []Exception{fexActive},
			lookups:    &fakeLookups{},
			want: func() Result {
				msg := "budgetgate: Deployment shop/checkout released during the freeze of SLOs shop/checkout-availability, shop/checkout-errors under FreezeException shop/checkout-hotfix (reason: \"INC-4711 payment outage fix\"; expires 2026-05-01T12:30:00Z)"
				r := exceptionResult("shop/checkout-availability", "shop/checkout-errors")
				r.Message, r.Warnings = msg, []string{msg}
				return r
			}(),
		},
		{
			name:       "active exception by workload ref wins over a class claim",
			req:        update(deploy(checkout, v1), deploy(checkout, tpl("v2", releaseClass("hotfix"))), mallory),
			frozen:     []FrozenSLO{sloAvail},
			exceptions: []Exception{fexByRef},
			lookups:    &fakeLookups{allowed: true},
			want: Result{
				Decision: Allow, Class: ClassException, SLOs: availOnly, Exception: "by-ref",
				Message:          "budgetgate: Deployment shop/checkout released during the freeze of SLO shop/checkout-availability under FreezeException shop/by-ref (reason: \"INC-4711 payment outage fix\"; expires 2026-05-01T11:30:00Z)",
				Warnings:         []string{"budgetgate: Deployment shop/checkout released during the freeze of SLO shop/checkout-availability under FreezeException shop/by-ref (reason: \"INC-4711 payment outage fix\"; expires 2026-05-01T11:30:00Z)"},
				AuditAnnotations: map[string]string{"user": "mallory", "exception": "by-ref", "reason": "INC-4711 payment outage fix", "frozen-by": "shop/checkout-availability"},
			},
		},
		{
			name:       "several exceptions cover: smallest name used",
			req:        update(deploy(checkout, v1), deploy(checkout, v2), alice),
			frozen:     []FrozenSLO{sloAvail},
			exceptions: []Exception{fexActive, fexByRef},
			lookups:    &fakeLookups{},
			want: Result{
				Decision: Allow, Class: ClassException, SLOs: availOnly, Exception: "by-ref",
				Message:          "budgetgate: Deployment shop/checkout released during the freeze of SLO shop/checkout-availability under FreezeException shop/by-ref (reason: \"INC-4711 payment outage fix\"; expires 2026-05-01T11:30:00Z)",
				Warnings:         []string{"budgetgate: Deployment shop/checkout released during the freeze of SLO shop/checkout-availability under FreezeException shop/by-ref (reason: \"INC-4711 payment outage fix\"; expires 2026-05-01T11:30:00Z)"},
				AuditAnnotations: map[string]string{"user": "alice", "exception": "by-ref", "reason": "INC-4711 payment outage fix", "frozen-by": "shop/checkout-availability"},
			},
		},
		{
			name:       "expired exception (now == expiresAt): deny",
			req:        update(deploy(checkout, v1), deploy(checkout, v2), alice),
			frozen:     []FrozenSLO{sloAvail},
			exceptions: []Exception{fexExpired},
			lookups:    prevHistory(),
			want: Result{Decision: Deny, Class: ClassTemplateChange, SLOs: availOnly,
				Message: lines(headUpdate+byAvail, "FreezeException shop/old expired at 2026-05-01T10:30:00Z.", allowedHot, tailAvail)},
			wantCalls: []string{histCall},
		},
		{
			name:       "exception for another workload, kind, or namespace: deny",
			req:        update(deploy(checkout, v1), deploy(checkout, v2), alice),
			frozen:     []FrozenSLO{sloAvail},
			exceptions: []Exception{fexOther, fexOtherNS},
			lookups:    prevHistory(),
			want:       denyAvail,
			wantCalls:  []string{histCall},
		},
		{
			name:       "exception with an empty selector covers nothing: deny",
			req:        update(deploy(checkout, v1), deploy(checkout, v2), alice),
			frozen:     []FrozenSLO{sloAvail},
			exceptions: []Exception{fexEmptySel},
			lookups:    prevHistory(),
			want:       denyAvail,
			wantCalls:  []string{histCall},
		},
		{
			name:       "expired exception, DryRun: warn",
			req:        update(deploy(checkout, v1), deploy(checkout, v2), alice),
			frozen:     []FrozenSLO{sloDry},
			exceptions: []Exception{fexExpired},
			lookups:    &fakeLookups{},
			want: Result{
				Decision: Warn, Class: ClassDryRun, SLOs: []string{"shop/checkout-errors"},
				Message:  lines("DryRun: would deny: "+headUpdate+byDry, "FreezeException shop/old expired at 2026-05-01T10:30:00Z.", allowedHot, tailDry),
				Warnings: oneLine(lines("DryRun: would deny: "+headUpdate+byDry, "FreezeException shop/old expired at 2026-05-01T10:30:00Z.", allowedHot, tailDry)),
			},
			wantCalls: []string{histCall},
		},
		{
			name:       "exception reason with control characters: warning stays on one line",
			req:        update(deploy(checkout, v1), deploy(checkout, v2), alice),
			frozen:     []FrozenSLO{sloAvail},
			exceptions: []Exception{{Namespace: "shop", Name: "x", Reason: "line one\nline two", Selector: sel("app=checkout"), ExpiresAt: hold}},
			lookups:    &fakeLookups{},
			want: Result{
				Decision: Allow, Class: ClassException, SLOs: availOnly, Exception: "x",
				Message:          "budgetgate: Deployment shop/checkout released during the freeze of SLO shop/checkout-availability under FreezeException shop/x (reason: \"line one\\nline two\"; expires 2026-05-01T11:00:00Z)",
				Warnings:         []string{"budgetgate: Deployment shop/checkout released during the freeze of SLO shop/checkout-availability under FreezeException shop/x (reason: \"line one\\nline two\"; expires 2026-05-01T11:00:00Z)"},
				AuditAnnotations: map[string]string{"user": "alice", "exception": "x", "reason": "line one\nline two", "frozen-by": "shop/checkout-availability"},
			},
		},

		// ---- other kinds and odd SLO data ----
		{
			name: "StatefulSet, SLO without times, reason without rule prefix",
			req: update(
				&Workload{Kind: "StatefulSet", Namespace: "db", Name: "pg", Labels: map[string]string{"app": "pg"}, Template: tpl("v1")},
				&Workload{Kind: "StatefulSet", Namespace: "db", Name: "pg", Labels: map[string]string{"app": "pg"}, Template: tpl("v2")},
				alice),
			frozen:  []FrozenSLO{{Namespace: "db", Name: "pg", Selector: sel("app in (pg)"), Rule: "slow-burn", Reason: "burn rate 7.00x\nover 6h"}},
			lookups: &fakeLookups{},
			want: Result{
				Decision: Deny, Class: ClassTemplateChange, SLOs: []string{"db/pg"},
				Message: lines(
					"budgetgate: release of StatefulSet db/pg blocked until the error budget recovers by SLO db/pg, frozen (rule slow-burn: burn rate 7.00x over 6h).",
					"Still allowed: rollback (kubectl rollout undo statefulset/pg -n db; under GitOps a git revert counts), scaling, restarts.",
					"See the freeze: kubectl describe slo pg -n db",
					"Exceptions and help: your platform team (kubectl get fex -n db)"),
			},
			wantCalls: []string{"Revisions StatefulSet db/pg"},
		},
	}
}

func TestDecide(t *testing.T) {
	for _, tc := range decideCases() {
		t.Run(tc.name, func(t *testing.T) {
			var lk Lookups
			if tc.lookups != nil {
				lk = tc.lookups
			}
			got := Decide(context.Background(), tc.req, tc.frozen, tc.exceptions, lk, now)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Decide() mismatch (-want +got):\n%s", diff)
			}
			var calls []string
			if tc.lookups != nil {
				calls = tc.lookups.calls
			}
			if diff := cmp.Diff(tc.wantCalls, calls); diff != "" {
				t.Errorf("lookups calls mismatch (-want +got):\n%s", diff)
			}
			checkInvariants(t, got, calls)
		})
	}
}

// checkInvariants holds for every result: the fuzz target checks them too.
func checkInvariants(t *testing.T, r Result, calls []string) {
	t.Helper()
	switch r.Decision {
	case Allow, Deny, Warn:
	default:
		t.Fatalf("Decision %q is not Allow, Deny or Warn", r.Decision)
	}
	if !slices.Contains(Classes, r.Class) {
		t.Errorf("Class %q is not a known class", r.Class)
	}
	if r.Message == "" {
		t.Errorf("empty Message")
	}
	switch r.Class {
	case ClassNotFrozen, ClassScaleOrMetadata, ClassRestart, ClassException:
		if len(calls) != 0 {
			t.Errorf("class %s made lookups: %v", r.Class, calls)
		}
	}
	if (r.Decision == Deny) != (r.Class == ClassTemplateChange || r.Class == ClassCreate || r.Class == ClassRelabel && r.AuditAnnotations == nil) {
		t.Errorf("Decision %s with Class %s", r.Decision, r.Class)
	}
	if (r.Decision == Warn) != (r.Class == ClassDryRun) {
		t.Errorf("Decision %s with Class %s", r.Decision, r.Class)
	}
	if r.Decision != Allow && len(r.SLOs) == 0 {
		t.Errorf("%s without SLOs", r.Decision)
	}
	for _, w := range r.Warnings {
		for _, c := range w {
			if c < 0x20 || c == 0x7f {
				t.Errorf("warning contains control character %q: %q", c, w)
				break
			}
		}
	}
	if r.Decision == Warn && (len(r.Warnings) != 1 || !strings.HasPrefix(r.Warnings[0], "DryRun: would deny: ")) {
		t.Errorf("Warn without a DryRun warning: %q", r.Warnings)
	}
}

func TestDecideNilContextAndInputsUnchanged(t *testing.T) {
	old := deploy(checkout, tpl("v1", restartedAt("a"), hashed("x")))
	nw := deploy(checkout, tpl("v0", restartedAt("b"), hashed("y"), releaseClass("security")))
	lk := &fakeLookups{history: history(tpl("v2"), tpl("v0", hashed("5d4c"), releaseClass("security")))}
	before := []*Workload{deepCopy(old), deepCopy(nw)}
	frozen := []FrozenSLO{sloLatency, sloAvail}
	var nilCtx context.Context // a nil context must not panic
	got := Decide(nilCtx, update(old, nw, mallory), frozen, nil, lk, now)
	if got.Class != ClassRollback {
		t.Errorf("Class = %s, want rollback (message %q)", got.Class, got.Message)
	}
	if diff := cmp.Diff(before, []*Workload{old, nw}); diff != "" {
		t.Errorf("Decide modified its input (-before +after):\n%s", diff)
	}
	if frozen[0].Name != "checkout-latency" {
		t.Errorf("Decide reordered the frozen SLOs")
	}
	if diff := cmp.Diff([]string{sarMallory, histCall}, lk.calls); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
}

func deepCopy(w *Workload) *Workload {
	c := *w
	if w.Labels != nil {
		c.Labels = make(map[string]string, len(w.Labels))
		maps.Copy(c.Labels, w.Labels)
	}
	c.Template = w.Template.DeepCopy()
	return &c
}

func TestSelects(t *testing.T) {
	w := deploy(checkout, tpl("v1"))
	tests := []struct {
		name string
		slo  FrozenSLO
		w    *Workload
		want bool
	}{
		{"matching selector", sloAvail, w, true},
		{"set-based selector", FrozenSLO{Namespace: "shop", Selector: sel("tier in (frontend,edge),app")}, w, true},
		{"other labels", sloOtherApp, w, false},
		{"other namespace", sloOtherNS, w, false},
		{"empty selector selects nothing", sloEverying, w, false},
		{"nil selector selects nothing", sloNilSel, w, false},
		{"nil workload", sloAvail, nil, false},
		{"nil labels", sloAvail, deploy(nil, nil), false},
		{"negative selector and nil labels", FrozenSLO{Namespace: "shop", Selector: sel("app!=cart")}, deploy(nil, nil), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Selects(tc.slo, tc.w); got != tc.want {
				t.Errorf("Selects() = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestTemplatesEqualIgnoringHash(t *testing.T) {
	tests := []struct {
		name string
		a, b *corev1.PodTemplateSpec
		want bool
	}{
		{"both nil", nil, nil, true},
		{"one nil", tpl("v1"), nil, false},
		{"other nil", nil, tpl("v1"), false},
		{"equal", tpl("v1"), tpl("v1"), true},
		{"hash on one side", tpl("v1", hashed("abc")), tpl("v1"), true},
		{"different hashes", tpl("v1", hashed("abc")), tpl("v1", hashed("def")), true},
		{"hash only label vs nil labels", &corev1.PodTemplateSpec{ObjectMeta: metaLabels(PodTemplateHashLabel, "x")}, &corev1.PodTemplateSpec{}, true},
		{"other image", tpl("v1", hashed("abc")), tpl("v2"), false},
		{"other label", tpl("v1", labelled("track", "canary")), tpl("v1"), false},
		{"restartedAt is not ignored", tpl("v1", restartedAt("a")), tpl("v1"), false},
		{"equal quantities written differently", tpl("v1", cpu("1")), tpl("v1", hashed("x"), cpu("1000m")), true},
		{"different quantities", tpl("v1", cpu("1")), tpl("v1", cpu("999m")), false},
		{"nil and empty env", tpl("v1", func(t *corev1.PodTemplateSpec) { t.Spec.Containers[0].Env = []corev1.EnvVar{} }), tpl("v1"), true},
		{"other env", tpl("v1", withEnv("A", "1")), tpl("v1", withEnv("A", "2")), false},
		{"other template metadata", tpl("v1", func(t *corev1.PodTemplateSpec) { t.Name = "x" }), tpl("v1"), false},
		{"extra container", tpl("v1", func(t *corev1.PodTemplateSpec) {
			t.Spec.Containers = append(t.Spec.Containers, corev1.Container{Name: "b"})
		}), tpl("v1"), false},
		{"extra init container", tpl("v1", func(t *corev1.PodTemplateSpec) { t.Spec.InitContainers = []corev1.Container{{Name: "init"}} }), tpl("v1"), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := TemplatesEqualIgnoringHash(tc.a, tc.b); got != tc.want {
				t.Errorf("TemplatesEqualIgnoringHash() = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestOnlyRestartChanged(t *testing.T) {
	tests := []struct {
		name     string
		old, new *corev1.PodTemplateSpec
		want     bool
	}{
		{"nil old", nil, tpl("v1", restartedAt("a")), false},
		{"nil new", tpl("v1"), nil, false},
		{"added", tpl("v1"), tpl("v1", restartedAt("a")), true},
		{"changed", tpl("v1", restartedAt("a")), tpl("v1", restartedAt("b")), true},
		{"unchanged", tpl("v1", restartedAt("a")), tpl("v1", restartedAt("a")), false},
		{"removed", tpl("v1", restartedAt("a")), tpl("v1"), false},
		{"added with image change", tpl("v1"), tpl("v2", restartedAt("a")), false},
		{"added with other annotation", tpl("v1"), tpl("v1", restartedAt("a"), annotated("x", "y")), false},
		{"no change at all", tpl("v1"), tpl("v1"), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := OnlyRestartChanged(tc.old, tc.new); got != tc.want {
				t.Errorf("OnlyRestartChanged() = %v, want %v", got, tc.want)
			}
		})
	}
}

func metaLabels(kv ...string) (m metav1.ObjectMeta) {
	m.Labels = map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m.Labels[kv[i]] = kv[i+1]
	}
	return m
}

// TestNamesMatchAPI keeps the constants in step with the API package and Kubernetes.
func TestNamesMatchAPI(t *testing.T) {
	if ReleaseClassAnnotation != slov1alpha1.ReleaseClassAnnotation {
		t.Errorf("ReleaseClassAnnotation = %q, API says %q", ReleaseClassAnnotation, slov1alpha1.ReleaseClassAnnotation)
	}
	for _, pair := range [][2]string{
		{ReleaseReasonAnnotation, slov1alpha1.ReleaseReasonAnnotation},
		{approveAnnotation, slov1alpha1.ApproveAnnotation},
		{ReleaseDuringFreezeVerb, slov1alpha1.VerbReleaseDuringFreeze},
		{LiftFreezeVerb, slov1alpha1.VerbLiftFreeze},
	} {
		if pair[0] != pair[1] {
			t.Errorf("freeze says %q, API says %q", pair[0], pair[1])
		}
	}
	if SLOGroup != slov1alpha1.GroupVersion.Group {
		t.Errorf("SLOGroup = %q, API says %q", SLOGroup, slov1alpha1.GroupVersion.Group)
	}
	if PodTemplateHashLabel != appsv1.DefaultDeploymentUniqueLabelKey {
		t.Errorf("PodTemplateHashLabel = %q, apps/v1 says %q", PodTemplateHashLabel, appsv1.DefaultDeploymentUniqueLabelKey)
	}
	if got := fmt.Sprintf("%s %s %s", Create, Update, Delete); got != "CREATE UPDATE DELETE" {
		t.Errorf("operations = %s", got)
	}
}
