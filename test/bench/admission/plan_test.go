package main

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestPlan(t *testing.T) {
	got := plan(2, []string{"a"}, nil, false)
	want := []phase{
		{Kind: kindWebhook, Variant: "a", Round: 0},
		{Kind: kindNoWebhook, Round: 0},
		{Kind: kindDeny, Variant: "a", Round: 0},
		{Kind: kindRollback, Variant: "a", Round: 0},
		{Kind: kindExempt, Variant: "a", Round: 0},
		// The second round runs backwards.
		{Kind: kindNoWebhook, Round: 1},
		{Kind: kindWebhook, Variant: "a", Round: 1},
		{Kind: kindExempt, Variant: "a", Round: 1},
		{Kind: kindRollback, Variant: "a", Round: 1},
		{Kind: kindDeny, Variant: "a", Round: 1},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("plan (-want +got):\n%s", diff)
	}
}

func TestPlanVariantsAndProfile(t *testing.T) {
	got := plan(1, []string{"old", "new"}, nil, true)
	want := []phase{
		{Kind: kindWebhook, Variant: "old", Round: 0},
		{Kind: kindNoWebhook, Round: 0},
		{Kind: kindWebhook, Variant: "new", Round: 0},
		{Kind: kindNoWebhook, Round: 0},
		{Kind: kindDeny, Variant: "old", Round: 0},
		{Kind: kindRollback, Variant: "old", Round: 0},
		{Kind: kindExempt, Variant: "old", Round: 0},
		{Kind: kindDeny, Variant: "new", Round: 0},
		{Kind: kindRollback, Variant: "new", Round: 0},
		{Kind: kindExempt, Variant: "new", Round: 0},
		// The profiled round is round 2 (index 1): reversed, and apart.
		{Kind: kindNoWebhook, Round: 1, Profiled: true},
		{Kind: kindWebhook, Variant: "new", Round: 1, Profiled: true},
		{Kind: kindNoWebhook, Round: 1, Profiled: true},
		{Kind: kindWebhook, Variant: "old", Round: 1, Profiled: true},
		{Kind: kindExempt, Variant: "new", Round: 1, Profiled: true},
		{Kind: kindRollback, Variant: "new", Round: 1, Profiled: true},
		{Kind: kindDeny, Variant: "new", Round: 1, Profiled: true},
		{Kind: kindExempt, Variant: "old", Round: 1, Profiled: true},
		{Kind: kindRollback, Variant: "old", Round: 1, Profiled: true},
		{Kind: kindDeny, Variant: "old", Round: 1, Profiled: true},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("plan (-want +got):\n%s", diff)
	}
}

func TestPlanAllowOnly(t *testing.T) {
	// The null webhook answers every request allowed: it is measured on the
	// allow path only.
	got := plan(1, []string{"m"}, []string{"null"}, false)
	want := []phase{
		{Kind: kindWebhook, Variant: "m", Round: 0},
		{Kind: kindNoWebhook, Round: 0},
		{Kind: kindWebhook, Variant: "null", Round: 0},
		{Kind: kindNoWebhook, Round: 0},
		{Kind: kindDeny, Variant: "m", Round: 0},
		{Kind: kindRollback, Variant: "m", Round: 0},
		{Kind: kindExempt, Variant: "m", Round: 0},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("plan (-want +got):\n%s", diff)
	}
}

func TestPairs(t *testing.T) {
	// Round 0: [A-old B A-new B] + 6 frozen; round 1: [B A-new B A-old] + 6.
	ps := plan(2, []string{"old", "new"}, nil, true)
	got := pairs(ps)
	want := []pair{
		{Webhook: 0, NoWebhook: 1},   // old, then B
		{Webhook: 2, NoWebhook: 3},   // new, then B
		{Webhook: 11, NoWebhook: 10}, // reversed round: B, then new
		{Webhook: 13, NoWebhook: 12}, // B, then old
		// The profiled round (from index 20) is left out.
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("pairs (-want +got):\n%s", diff)
	}
	for _, p := range got {
		if ps[p.Webhook].Round != ps[p.NoWebhook].Round {
			t.Errorf("pair %+v spans rounds", p)
		}
	}
}

func TestPhaseNames(t *testing.T) {
	for _, tc := range []struct {
		p            phase
		group, label string
	}{
		{phase{Kind: kindNoWebhook, Round: 2}, "no-webhook", "round 3 no-webhook"},
		{phase{Kind: kindDeny, Variant: "h2", Round: 0}, "deny[h2]", "round 1 deny[h2]"},
		{phase{Kind: kindWebhook, Variant: "http1", Round: 3, Profiled: true}, "webhook[http1]", "round 4 webhook[http1] (profiled)"},
	} {
		if g, s := tc.p.group(), tc.p.String(); g != tc.group || s != tc.label {
			t.Errorf("%+v: group %q, String %q; want %q, %q", tc.p, g, s, tc.group, tc.label)
		}
	}
	for k, want := range map[kind]expectation{kindWebhook: expectAllow, kindNoWebhook: expectAllow, kindDeny: expectDeny,
		kindRollback: expectAllow, kindExempt: expectExempt} {
		if k.expect() != want {
			t.Errorf("%s expects %v, want %v", k, k.expect(), want)
		}
	}
}
