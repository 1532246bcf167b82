//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// simulateStep is the replay's step: the SLO's evaluationInterval, as the
// controller evaluates.
const simulateStep = 10 * time.Second

// specSimulateStory replays the e2e policy over the story's own history in
// Prometheus with kubectl budgetgate simulate and compares the freeze it
// finds with the one the controller decided live: one freeze, started and
// lifted within two steps of the live decisions. Live, the controller
// evaluates on its own phase of the interval and the replay on the grid of
// its range queries, so each may see the same change up to a step apart;
// the story's Prometheus outage, operator restarts and failovers lie inside
// the freeze and must not split it in either.
func specSimulateStory() {
	promURL, err := environ.PrometheusURL()
	if err != nil {
		Skip("no Prometheus with the story's history: " + err.Error())
	}
	Expect(liveFrozen.IsZero() || liveLifted.IsZero()).To(BeFalse(),
		"the freeze and lift specs record when the controller froze and lifted")
	// Status times are whole seconds: one more second of slack.
	tolerance := 2*simulateStep + time.Second
	// The replay ends at now truncated to its step, and a lift within the
	// tolerance must lie inside it: the lift spec and the Rollout's release
	// after it may take only seconds, so wait until it would.
	if wait := time.Until(liveLifted.Add(tolerance + simulateStep)); wait > 0 {
		By(fmt.Sprintf("waiting %s, until a replay lifting %s after the controller would end inside the history", wait.Round(time.Second), tolerance))
		time.Sleep(wait)
	}
	since := time.Since(storyStart).Truncate(time.Second) + 30*time.Second
	out, err := exec.Command(bin("kubectl-budgetgate"), "--kubeconfig", kubectl.Kubeconfig,
		"simulate", "checkout-availability", "-n", shopNamespace, "--prometheus", promURL,
		"--since", since.String(), "--step", simulateStep.String(), "-o", "json").Output()
	Expect(err).NotTo(HaveOccurred(), "kubectl budgetgate simulate: %s", stderrOf(err))

	var res struct {
		Evaluations int `json:"evaluations"`
		Freezes     []struct {
			From, To time.Time
			Open     bool
			Rule     string
		} `json:"freezes"`
		Pages []struct {
			From time.Time
		} `json:"pages"`
	}
	Expect(json.Unmarshal(out, &res)).To(Succeed(), string(out))
	Expect(res.Freezes).To(HaveLen(1), "one freeze over the story, as live:\n%s", out)
	f := res.Freezes[0]
	Expect(f.Rule).To(Equal("fast-burn"))
	Expect(f.Open).To(BeFalse(), "the replay lifts the freeze before its end (the controller lifted at %s):\n%s", liveLifted.Format(time.RFC3339), out)
	Expect(res.Pages).NotTo(BeEmpty())
	Expect(res.Pages[0].From).To(Equal(f.From), "the freeze starts when its rule first pages")

	fmt.Fprintf(GinkgoWriter, "live froze %s, replay %s (%+v); live lifted %s, replay %s (%+v); %d evaluations\n",
		liveFrozen.Format(time.RFC3339), f.From.Format(time.RFC3339), f.From.Sub(liveFrozen),
		liveLifted.Format(time.RFC3339), f.To.Format(time.RFC3339), f.To.Sub(liveLifted), res.Evaluations)
	Expect(f.From).To(BeTemporally("~", liveFrozen, tolerance), "the replay froze at %s, the controller at %s", f.From, liveFrozen)
	Expect(f.To).To(BeTemporally("~", liveLifted, tolerance), "the replay lifted at %s, the controller at %s", f.To, liveLifted)
}

func stderrOf(err error) string {
	if ee, ok := err.(*exec.ExitError); ok {
		return string(ee.Stderr)
	}
	return ""
}
