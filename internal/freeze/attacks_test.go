package freeze

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// The attacks of docs/security.md on the pure decision, by a user with the
// namespace's edit role (mallory) and by one who may also release during a
// freeze (alice). The envtest suite repeats them through a real API server.

func named(name string, l map[string]string, image string, opts ...tplOpt) *Workload {
	return &Workload{Kind: "Deployment", Namespace: "shop", Name: name, Labels: l, Template: tpl(image, opts...)}
}

func TestAttackExceptionReuseByRelabelling(t *testing.T) {
	// A's exception selects app=checkout. Workload "cart" (app=cart) takes A's
	// labels and a new image in one update: the exception must cover it by its
	// old labels too, and does not.
	cartOld := named("cart", map[string]string{"app": "cart"}, "v1")
	cartNew := named("cart", map[string]string{"app": "checkout"}, "v2")
	got := Decide(context.Background(), update(cartOld, cartNew, mallory), []FrozenSLO{sloAvail}, []Exception{fexActive}, &fakeLookups{}, now)
	if got.Decision != Deny || got.Class != ClassTemplateChange || got.Exception != "" {
		t.Fatalf("relabelled into an exception's selector: %s %s (exception %q)", got.Decision, got.Class, got.Exception)
	}
	// The same exception still covers a workload it selected before and after.
	got = Decide(context.Background(), update(deploy(checkout, tpl("v1")), deploy(checkout, tpl("v2")), mallory),
		[]FrozenSLO{sloAvail}, []Exception{fexActive}, &fakeLookups{}, now)
	if got.Decision != Allow || got.Class != ClassException {
		t.Fatalf("covered workload: %s %s", got.Decision, got.Class)
	}
	// An exception naming the workload covers it whatever its labels.
	got = Decide(context.Background(), update(deploy(checkout, tpl("v1")), deploy(map[string]string{"app": "checkout", "x": "y"}, tpl("v2")), mallory),
		[]FrozenSLO{sloAvail}, []Exception{fexByRef}, &fakeLookups{}, now)
	if got.Decision != Allow || got.Class != ClassException {
		t.Fatalf("named workload: %s %s", got.Decision, got.Class)
	}
}

func TestAttackStickyReleaseClass(t *testing.T) {
	hotfixed := tpl("v1-hotfix", releaseClass("hotfix"), annotated(ReleaseReasonAnnotation, "INC-1 null deref"))
	leftOver := `Release class "hotfix" was claimed by an earlier release and counts only for that one; ` +
		`to claim it for this release, change budgetgate.dev/release-reason (e.g. to the incident) in the same change.`

	t.Run("a routine release on top of a hotfix does not inherit its claim", func(t *testing.T) {
		lk := &fakeLookups{allowed: true}
		next := tpl("v2", releaseClass("hotfix"), annotated(ReleaseReasonAnnotation, "INC-1 null deref"))
		got := Decide(context.Background(), update(deploy(checkout, hotfixed), deploy(checkout, next), alice), []FrozenSLO{sloAvail}, nil, lk, now)
		want := Result{Decision: Deny, Class: ClassTemplateChange, SLOs: []string{"shop/checkout-availability"},
			Message: lines(headUpdate+byAvail, leftOver, allowedHot, tailAvail)}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
		// No SubjectAccessReview: nothing was claimed.
		if diff := cmp.Diff([]string{histCall}, lk.calls); diff != "" {
			t.Errorf("calls (-want +got):\n%s", diff)
		}
	})
	t.Run("a new reason renews the claim for this release", func(t *testing.T) {
		next := tpl("v2", releaseClass("hotfix"), annotated(ReleaseReasonAnnotation, "INC-2 payment timeouts"))
		got := Decide(context.Background(), update(deploy(checkout, hotfixed), deploy(checkout, next), alice), []FrozenSLO{sloAvail}, nil,
			&fakeLookups{allowed: true}, now)
		if got.Decision != Allow || got.Class != ClassExemptClass ||
			got.AuditAnnotations[AuditReleaseReason] != "INC-2 payment timeouts" || got.AuditAnnotations[AuditUser] != "alice" {
			t.Errorf("renewed claim: %+v", got)
		}
	})
	t.Run("adding the class is a claim", func(t *testing.T) {
		got := Decide(context.Background(), update(deploy(checkout, tpl("v1")), deploy(checkout, tpl("v2", releaseClass("hotfix"))), alice),
			[]FrozenSLO{sloAvail}, nil, &fakeLookups{allowed: true}, now)
		if got.Decision != Allow || got.Class != ClassExemptClass {
			t.Errorf("added class: %s %s %q", got.Decision, got.Class, got.Message)
		}
	})
	t.Run("a renewed claim still needs release-during-freeze", func(t *testing.T) {
		next := tpl("v2", releaseClass("hotfix"), annotated(ReleaseReasonAnnotation, "INC-2"))
		got := Decide(context.Background(), update(deploy(checkout, hotfixed), deploy(checkout, next), mallory), []FrozenSLO{sloAvail}, nil,
			&fakeLookups{allowed: true}, now)
		if got.Decision != Deny {
			t.Errorf("mallory's renewed claim: %s", got.Decision)
		}
	})
	t.Run("rolling back to the hotfix passes as a rollback", func(t *testing.T) {
		got := Decide(context.Background(), update(deploy(checkout, tpl("v2")), deploy(checkout, hotfixed), mallory), []FrozenSLO{sloAvail}, nil,
			&fakeLookups{history: history(hotfixed)}, now)
		if got.Decision != Allow || got.Class != ClassRollback {
			t.Errorf("rollback to the hotfix: %s %s", got.Decision, got.Class)
		}
	})
}

func TestBreakGlassBoundPerFreeze(t *testing.T) {
	slo := sloAvail
	slo.MaxExceptionDuration = 24 * time.Hour
	first := Exception{Namespace: "shop", Name: "first", Reason: "INC-1 outage fix", Selector: sel("app=checkout"),
		CreatedAt: since.Add(time.Hour), ExpiresAt: since.Add(25 * time.Hour)}
	req := update(deploy(checkout, tpl("v1")), deploy(checkout, tpl("v2")), mallory)
	decide := func(at time.Time, exceptions ...Exception) Result {
		return Decide(context.Background(), req, []FrozenSLO{slo}, exceptions, &fakeLookups{}, at)
	}
	if got := decide(since.Add(2*time.Hour), first); got.Class != ClassException {
		t.Fatalf("within its lifetime: %s %s", got.Class, got.Message)
	}
	// Deleted and re-created 20 hours in: the new one expires 24h after its
	// creation, but the workload's break-glass began with the first.
	deleted := first
	deleted.Terminating = true
	second := Exception{Namespace: "shop", Name: "second", Reason: "INC-1 outage fix", Selector: sel("app=checkout"),
		CreatedAt: since.Add(21 * time.Hour), ExpiresAt: since.Add(45 * time.Hour)}
	if got := decide(since.Add(22*time.Hour), deleted, second); got.Class != ClassException || got.Exception != "second" {
		t.Fatalf("second exception within the bound: %s %q", got.Class, got.Message)
	}
	got := decide(since.Add(25*time.Hour), deleted, second)
	if got.Decision != Deny {
		t.Fatalf("past 24h of break-glass in one freeze: %s %s", got.Decision, got.Class)
	}
	want := "FreezeException shop/second is not honoured: exceptions have let this workload release since 2026-05-01T11:00:00Z in this freeze, and break-glass is bounded by maxExceptionDuration 24h per freeze."
	if !strings.Contains(got.Message, "\n"+want+"\n") {
		t.Errorf("deny message lacks %q:\n%s", want, got.Message)
	}
	// The deleted exception alone is not honoured.
	if got := decide(since.Add(2*time.Hour), deleted); got.Decision != Deny || !strings.Contains(got.Message, "\nFreezeException shop/first was deleted.\n") {
		t.Errorf("deleted exception: %s %q", got.Decision, got.Message)
	}
	// An exception from before the freeze counts from the freeze's start.
	early := Exception{Namespace: "shop", Name: "early", Reason: "INC-0 prepared", Selector: sel("app=checkout"),
		CreatedAt: since.Add(-10 * time.Hour), ExpiresAt: since.Add(30 * time.Hour)}
	if got := decide(since.Add(23*time.Hour), early); got.Class != ClassException {
		t.Errorf("early exception 23h into the freeze: %s", got.Class)
	}
	if got := decide(since.Add(24*time.Hour), early); got.Decision != Deny {
		t.Errorf("early exception 24h into the freeze: %s", got.Decision)
	}
}

func TestExceptionApproval(t *testing.T) {
	slo := sloAvail
	slo.RequireExceptionApproval = true
	fex := fexActive
	fex.RequestedBy = "mallory"
	req := update(deploy(checkout, tpl("v1")), deploy(checkout, tpl("v2")), mallory)
	got := Decide(context.Background(), req, []FrozenSLO{slo}, []Exception{fex}, &fakeLookups{}, now)
	want := "FreezeException shop/checkout-hotfix is not approved yet, and the policy of SLO shop/checkout-availability requires approval by a second person (kubectl annotate fex checkout-hotfix -n shop budgetgate.dev/approve=true)."
	if got.Decision != Deny || !strings.Contains(got.Message, "\n"+want+"\n") {
		t.Errorf("unapproved: %s\n%s", got.Decision, got.Message)
	}
	fex.ApprovedBy = "alice"
	got = Decide(context.Background(), req, []FrozenSLO{slo}, []Exception{fex}, &fakeLookups{}, now)
	if got.Decision != Allow || got.AuditAnnotations[AuditRequestedBy] != "mallory" || got.AuditAnnotations[AuditApprovedBy] != "alice" {
		t.Errorf("approved: %s %v", got.Decision, got.AuditAnnotations)
	}
}
