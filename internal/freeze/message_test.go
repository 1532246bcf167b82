package freeze

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files in testdata/ from what the code says now (read the diff before committing)")

// contact is a platform's --contact in the golden messages.
const contact = "https://runbooks.example/budgetgate"

// denyKinds are the gated kinds whose deny messages are pinned in
// testdata/deny/<kind>.golden. A kind added to the registry of gated kinds
// (internal/workload) gets a row here: run
//
//	go test ./internal/freeze/ -run TestDenyMessageByKind -update
//
// and read the new file: it is what that kind's users will see.
var denyKinds = []struct {
	kind, name string
	// history is the kind of object that holds the kind's revisions.
	history string
}{
	{kind: "Deployment", name: "checkout", history: "ReplicaSet"},
	{kind: "StatefulSet", name: "ledger", history: "ControllerRevision"},
	{kind: "DaemonSet", name: "log-agent", history: "ControllerRevision"},
}

// TestDenyMessageByKind renders, for each gated kind, every message a person
// whose change is held back can meet: a routine release with and without a
// platform contact, a claim that does not count, a creation, a DryRun
// warning, a relabelling and a forged revision. The golden files are the
// reference for docs/enforcement.md.
func TestDenyMessageByKind(t *testing.T) {
	for _, k := range denyKinds {
		t.Run(k.kind, func(t *testing.T) {
			got := renderDenials(t, k.kind, k.name, k.history)
			path := filepath.Join("testdata", "deny", strings.ToLower(k.kind)+".golden")
			if *updateGolden {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (write it with -update, then read it)", err)
			}
			if diff := cmp.Diff(string(want), got); diff != "" {
				t.Errorf("%s messages differ from %s (-want +got):\n%s", k.kind, path, diff)
			}
		})
	}
}

func renderDenials(t *testing.T, kind, name, history string) string {
	t.Helper()
	wl := func(l map[string]string, image string, opts ...tplOpt) *Workload {
		return &Workload{Kind: kind, Namespace: "shop", Name: name, Labels: l, Template: tpl(image, opts...)}
	}
	withContact := func(r Request) Request { r.Contact = contact; return r }
	hotfixed := []tplOpt{releaseClass("hotfix"), annotated(ReleaseReasonAnnotation, "INC-4821 payment timeouts")}
	cases := []struct {
		title  string
		req    Request
		frozen []FrozenSLO
		lk     *fakeLookups
	}{
		{"routine release, Enforce, with --contact", withContact(update(wl(checkout, "v1"), wl(checkout, "v2"), mallory)), []FrozenSLO{sloAvail}, &fakeLookups{}},
		{"routine release, Enforce, no --contact", update(wl(checkout, "v1"), wl(checkout, "v2"), mallory), []FrozenSLO{sloAvail}, &fakeLookups{}},
		{"hotfix claimed by someone who may not release-during-freeze", withContact(update(wl(checkout, "v1"), wl(checkout, "v2", hotfixed...), mallory)), []FrozenSLO{sloAvail}, &fakeLookups{}},
		{"release on top of a hotfix, the class left on the template", withContact(update(wl(checkout, "v1", hotfixed...), wl(checkout, "v2", hotfixed...), alice)), []FrozenSLO{sloAvail}, &fakeLookups{allowed: true}},
		{"rollback not verified: the history read ran out of time", withContact(update(wl(checkout, "v1"), wl(checkout, "v0"), mallory)), []FrozenSLO{sloAvail}, &fakeLookups{historyErr: context.DeadlineExceeded}},
		{"two SLOs frozen", withContact(update(wl(checkout, "v1"), wl(checkout, "v2"), mallory)), []FrozenSLO{sloAvail, sloLatency}, &fakeLookups{}},
		{"creation", withContact(create(wl(checkout, "v1"), mallory)), []FrozenSLO{sloAvail}, &fakeLookups{}},
		{"routine release, DryRun (the warning)", withContact(update(wl(checkout, "v1"), wl(checkout, "v2"), mallory)), []FrozenSLO{sloDry}, &fakeLookups{}},
		{"labels that leave the frozen SLO's selection", withContact(update(wl(checkout, "v1"), wl(map[string]string{"app": "checkout-v2"}, "v1"), mallory)), []FrozenSLO{sloAvail}, &fakeLookups{}},
	}
	var b strings.Builder
	for _, c := range cases {
		r := Decide(context.Background(), c.req, c.frozen, nil, c.lk, now)
		b.WriteString("== " + c.title + ": " + string(r.Decision) + " " + string(r.Class) + "\n")
		if r.Decision == Warn {
			b.WriteString(strings.Join(r.Warnings, "\n") + "\n\n")
			continue
		}
		if r.Decision != Deny {
			t.Errorf("%s: %s %s, want Deny", c.title, r.Decision, r.Class)
		}
		b.WriteString(r.Message + "\n\n")
	}
	owner := wl(checkout, "v1")
	ref := &OwnerRef{Kind: kind, Name: name, UID: "uid-checkout"} // the UID the fake knows
	r := DecideHistory(context.Background(), HistoryRequest{
		Operation: Create, Kind: history, Namespace: "shop", Name: name + "-forged", User: mallory, NewController: ref, Contact: contact,
	}, []FrozenSLO{sloAvail}, &fakeHistoryLookups{owner: owner})
	b.WriteString("== a forged revision (" + history + "): " + string(r.Decision) + " " + string(r.Class) + "\n" + r.Message + "\n")
	return b.String()
}

// The deny message of a routine release is kept short, and shaped so that
// the next step is found at a glance: the first line says what was blocked,
// by which SLO and rule, until when; every other line starts with a label.
// (Issue 10: it was 126 words, the next step buried in the third sentence.)
func TestDenyMessageShape(t *testing.T) {
	req := update(deploy(checkout, tpl("v1")), deploy(checkout, tpl("v2")), mallory)
	req.Contact = contact
	got := Decide(context.Background(), req, []FrozenSLO{sloAvail}, nil, &fakeLookups{}, now)
	// Words as wc -w counts them: runs of non-space.
	if n := len(strings.Fields(got.Message)); n > 90 {
		t.Errorf("the deny message has %d words, more than 90:\n%s", n, got.Message)
	}
	lines := strings.Split(got.Message, "\n")
	for _, want := range []string{"release of Deployment shop/checkout blocked", "until at least 2026-05-01T11:00:00Z", "SLO shop/checkout-availability", "rule fast-burn"} {
		if !strings.Contains(lines[0], want) {
			t.Errorf("first line lacks %q: %s", want, lines[0])
		}
	}
	labels := []string{stillAllowedLabel, hotfixLabel, seeFreezeLabel, helpLabel}
	if len(lines) != 1+len(labels) {
		t.Fatalf("%d lines, want the first and one per label %q:\n%s", len(lines), labels, got.Message)
	}
	for i, label := range labels {
		if !strings.HasPrefix(lines[i+1], label) {
			t.Errorf("line %d = %q, want it to start with %q", i+2, lines[i+1], label)
		}
	}
	if !strings.HasSuffix(got.Message, contact) {
		t.Errorf("the message does not end with the platform's contact:\n%s", got.Message)
	}
}

func TestHelpLine(t *testing.T) {
	for _, tc := range []struct{ contact, want string }{
		{"", "Exceptions and help: your platform team (kubectl get fex -n shop)"},
		{"  https://runbooks.example/budgetgate ", "Exceptions and help: https://runbooks.example/budgetgate"},
		{"#platform-oncall\non Slack", "Exceptions and help: #platform-oncall on Slack"},
		{strings.Repeat("x", 300), "Exceptions and help: " + strings.Repeat("x", 200) + "…"},
	} {
		if got := HelpLine(tc.contact, "shop"); got != tc.want {
			t.Errorf("HelpLine(%q) = %q, want %q", tc.contact, got, tc.want)
		}
	}
}

func TestRollbackCommand(t *testing.T) {
	for kind, want := range map[string]string{
		"Deployment":  "kubectl rollout undo deployment/checkout -n shop",
		"StatefulSet": "kubectl rollout undo statefulset/checkout -n shop",
		"DaemonSet":   "kubectl rollout undo daemonset/checkout -n shop",
		"Rollout":     "kubectl argo rollouts undo checkout -n shop",
		"":            "kubectl rollout undo workload/checkout -n shop",
	} {
		if got := rollbackCommand(&Workload{Kind: kind, Namespace: "shop", Name: "checkout"}); got != want {
			t.Errorf("rollbackCommand(%q) = %q, want %q", kind, got, want)
		}
	}
}
