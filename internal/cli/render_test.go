package cli_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/budgetgate/budgetgate/internal/cli"
	"github.com/budgetgate/budgetgate/internal/simulate"
)

// The text of why, fixed data and clock: frozen, with a claim allowed and an
// exception in force; and not frozen.
func TestWhyTextGolden(t *testing.T) {
	sums := cli.Summaries(statusSLOs(), statusNow)
	frozen := &cli.Explanation{Kind: "Deployment", Namespace: "shop", Name: "checkout", Frozen: true,
		FrozenBy: sums[1:2], Selecting: sums[1:2],
		Rollbacks: []cli.RollbackTarget{
			{Revision: "7", Images: []string{"checkout=registry.example/shop/checkout:1.4.0"}, Created: statusNow.Add(-26 * time.Hour),
				Command: "kubectl rollout undo deployment/checkout -n shop --to-revision=7"},
			{Revision: "6", Images: []string{"checkout=registry.example/shop/checkout:1.3.2"}, Created: statusNow.Add(-9 * 24 * time.Hour),
				Command: "kubectl rollout undo deployment/checkout -n shop --to-revision=6"},
		},
		MayClaim: true, Classes: []string{"hotfix", "security"}, MayExcept: true,
		Exceptions: []cli.ExceptionInForce{{Name: "checkout-9xk2", Reason: "INC-4821 payment retry", RequestedBy: "alice", ApprovedBy: "bob",
			ExpiresAt: statusNow.Add(90 * time.Minute), InForce: true}},
		Commands: map[string]string{
			"see":    "kubectl describe slo -n shop checkout-availability",
			"claim":  "kubectl budgetgate release deployment/checkout -n shop --class hotfix --reason INCIDENT --image CONTAINER=IMAGE",
			"canI":   "kubectl auth can-i release-during-freeze servicelevelobjectives.slo.budgetgate.dev -n shop",
			"except": "kubectl budgetgate except deployment/checkout -n shop --for 2h --reason INCIDENT",
		}}
	var buf bytes.Buffer
	if err := frozen.Render(&buf, statusNow); err != nil {
		t.Fatal(err)
	}
	golden(t, "testdata/why/frozen.golden", buf.String())

	notFrozen := &cli.Explanation{Kind: "Deployment", Namespace: "payments", Name: "api", Selecting: sums[0:1],
		Closest: &cli.Closeness{SLO: "api-latency", Rule: "fast-burn", Value: "3.6x", Threshold: "14.4x", Share: 0.25}}
	buf.Reset()
	if err := notFrozen.Render(&buf, statusNow); err != nil {
		t.Fatal(err)
	}
	golden(t, "testdata/why/not-frozen.golden", buf.String())
}

// The text of simulate, fixed data: the replay worked out by hand in
// internal/simulate.
func TestSimulateTextGolden(t *testing.T) {
	day := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	at := func(h, m int) time.Time { return day.Add(time.Duration(h)*time.Hour + time.Duration(m)*time.Minute) }
	sim := &cli.Simulation{Namespace: "shop", SLO: "checkout-availability", Policy: "fast", Target: "99.9", Window: "30d",
		From: at(9, 0), To: at(12, 0), Step: "5m", Evaluations: 37, Took: "12ms",
		Freezes:     []simulate.Period{{From: at(10, 0), To: at(10, 55), Rule: "fast-burn"}},
		FrozenHours: 55.0 / 60, Pages: []simulate.Period{{From: at(10, 0), To: at(10, 30), Rule: "fast-burn"}},
		Releases: 3, Denied: []simulate.Release{{At: at(10, 20), Workload: "Deployment/checkout", Revision: "checkout-7d9f"}}}
	var buf bytes.Buffer
	if err := sim.RenderText(&buf); err != nil {
		t.Fatal(err)
	}
	golden(t, "testdata/simulate/summary.golden", buf.String())
}
