package faults_test

import (
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	slov1alpha1 "github.com/budgetgate/budgetgate/api/v1alpha1"
)

// expected is what a fault does, one character per evaluation and | between
// the phases: warmUp evaluations with Prometheus answering, faulty ones with
// the fault, recovery ones with Prometheus answering that the service is
// healthy again.
type expected struct {
	// data: DataAvailable's reason (A AllWindowsPresent, Q QueryFailed, N NoData, P PartialData).
	data string
	// ready: Ready's reason (E Evaluated and True, Q QueryFailed and False).
	ready string
	// failures: status.consecutiveQueryFailures.
	failures string
	// dataMessage and readyMessage match DataAvailable's and Ready's messages
	// at the first faulty evaluation.
	dataMessage, readyMessage string
	// budget: status.errorBudget (b measured, c carried from the last answer, - none).
	budget map[sloState]string
	// frozen: the Frozen condition's reason (. WithinBudget, B BudgetBurning,
	// H HeldWithoutData) per frozen state and onMissingData; a healthy SLO
	// never freezes.
	frozen map[variant]string
}

var (
	hold    = slov1alpha1.MissingDataHold
	release = slov1alpha1.MissingDataRelease
)

// Recurring lines. A freeze that holds through the fault lifts minDuration
// (3 evaluations) after its last firing, in recovery.
const (
	neverFrozen    = "..|........|....."
	heldThrough    = "BB|HHHHHHHH|BB..."
	budgetHolds    = "BB|BBBBBBBB|BB..."
	releasedAfter4 = "BB|HHH.....|....."
	allMeasured    = "bb|bbbbbbbb|bbbbb"
)

// Messages at the first faulty evaluation.
const (
	stale     = "; rules without data keep their last decision for the policy's staleHold, then follow onMissingData"
	refused   = `Post "http://127\.0\.0\.1:\d+/api/v1/query": dial tcp 127\.0\.0\.1:\d+: connect: connection refused`
	status503 = `server_error: server error: 503`
	timedOut  = `Post "http://127\.0\.0\.1:\d+/api/v1/query": context deadline exceeded`
	noData    = `^Prometheus returned no data for any window \(no series, NaN or infinite values, or fewer events than the policy's minEvents\)` + stale + `$`
	evaluated = `^Evaluated against policy "faults-[a-z0-9]+"(: SLI [0-9.]+%, budget -?[0-9.]+% left)?$`
)

// failed is the error of every window's query failing with err, longest window first.
func failed(err string) string {
	return `sli: window 30d: query .+: ` + err + `\nsli: window 1h: query .+: ` + err + `\nsli: window 5m: query .+: ` + err
}

// Failed queries carry the SLO window's last answer: budget rules go on
// deciding on it. Empty and NaN answers leave the budget unknown.
var (
	carriedBudget = map[sloState]string{
		healthy: "bb|cccccccc|bbbbb", burning: "bb|cccccccc|bbbbb", exhausted: "bb|cccccccc|bbbbb"}
	carriedFreezes = map[variant]string{
		{burning, hold}: heldThrough, {burning, release}: releasedAfter4,
		{exhausted, hold}: budgetHolds, {exhausted, release}: budgetHolds,
	}
	noBudget = map[sloState]string{
		healthy: "bb|--------|bbbbb", burning: "bb|--------|bbbbb", exhausted: "bb|--------|bbbbb"}
	staleFreezes = map[variant]string{
		{burning, hold}: heldThrough, {burning, release}: releasedAfter4,
		{exhausted, hold}: heldThrough, {exhausted, release}: releasedAfter4,
	}
)

var _ = Describe("Prometheus faults", func() {
	DescribeTable("an SLO evaluated through a fault",
		func(f fault, want expected) {
			for _, o := range runVariants(f, []sloState{healthy, burning, exhausted}, nil) {
				check(f, o, want)
			}
		},
		Entry("Prometheus down: connection refused", down, expected{
			data:         "AA|QQQQQQQQ|AAAAA",
			ready:        "EE|QQQQQQQQ|EEEEE",
			failures:     "00|12345678|00000",
			dataMessage:  `^1 consecutive evaluations failed: ` + failed(refused) + stale + `$`,
			readyMessage: `^No window could be measured: ` + failed(refused) + `$`,
			budget:       carriedBudget,
			frozen:       carriedFreezes,
		}),
		Entry("5xx: 503 Service Unavailable", serverError, expected{
			data:         "AA|QQQQQQQQ|AAAAA",
			ready:        "EE|QQQQQQQQ|EEEEE",
			failures:     "00|12345678|00000",
			dataMessage:  `^1 consecutive evaluations failed: ` + failed(status503) + stale + `$`,
			readyMessage: `^No window could be measured: ` + failed(status503) + `$`,
			budget:       carriedBudget,
			frozen:       carriedFreezes,
		}),
		Entry("slow: no answer within the query timeout", slow, expected{
			data:         "AA|QQQQQQQQ|AAAAA",
			ready:        "EE|QQQQQQQQ|EEEEE",
			failures:     "00|12345678|00000",
			dataMessage:  `^1 consecutive evaluations failed: ` + failed(timedOut) + stale + `$`,
			readyMessage: `^No window could be measured: ` + failed(timedOut) + `$`,
			budget:       carriedBudget,
			frozen:       carriedFreezes,
		}),
		Entry("empty result: no series for any window", empty, expected{
			data:         "AA|NNNNNNNN|AAAAA",
			ready:        "EE|EEEEEEEE|EEEEE",
			failures:     "00|00000000|00000",
			dataMessage:  noData,
			readyMessage: evaluated,
			budget:       noBudget,
			frozen:       staleFreezes,
		}),
		Entry("NaN: the error ratio of every window is NaN", nan, expected{
			data:         "AA|NNNNNNNN|AAAAA",
			ready:        "EE|EEEEEEEE|EEEEE",
			failures:     "00|00000000|00000",
			dataMessage:  noData,
			readyMessage: evaluated,
			budget:       noBudget,
			frozen:       staleFreezes,
		}),
		Entry("series gone: the 5m window empty, 1h and 30d still answer", gone, expected{
			data:         "AA|PPPPPPPP|AAAAA",
			ready:        "EE|EEEEEEEE|EEEEE",
			failures:     "00|00000000|00000",
			dataMessage:  `^No data over 5m` + stale + `$`,
			readyMessage: evaluated,
			budget:       map[sloState]string{healthy: allMeasured, burning: allMeasured, exhausted: allMeasured},
			frozen: map[variant]string{
				{burning, hold}: heldThrough, {burning, release}: releasedAfter4,
				{exhausted, hold}: budgetHolds, {exhausted, release}: budgetHolds,
			},
		}),
		Entry("flapping: 503 and good answers alternate", flapping, expected{
			data:         "AA|QAQAQAQA|AAAAA",
			ready:        "EE|QEQEQEQE|EEEEE",
			failures:     "00|10101010|00000",
			dataMessage:  `^1 consecutive evaluations failed: ` + failed(status503) + stale + `$`,
			readyMessage: `^No window could be measured: ` + failed(status503) + `$`,
			budget:       map[sloState]string{healthy: "bb|cbcbcbcb|bbbbb", burning: "bb|cbcbcbcb|bbbbb", exhausted: "bb|cbcbcbcb|bbbbb"},
			frozen: map[variant]string{
				{burning, hold}: "BB|HBHBHBHB|BB...", {burning, release}: "BB|HBHBHBHB|BB...",
				{exhausted, hold}: budgetHolds, {exhausted, release}: budgetHolds,
			},
		}),
	)

	It("keeps decisions through one failed evaluation of a flapping Prometheus when staleHold is shorter than the interval", func() {
		// staleHold 30s < evaluationInterval 1m: every failed evaluation is
		// past staleHold. minDuration 1m holds a freeze no longer than one
		// evaluation, so only the rules' decisions keep it.
		short := func(p *slov1alpha1.ErrorBudgetPolicySpec) {
			p.StaleHold, p.Freeze.MinDuration = "30s", "1m"
		}
		want := expected{
			data:         "AA|QAQAQAQA|AAAAA",
			ready:        "EE|QEQEQEQE|EEEEE",
			failures:     "00|10101010|00000",
			dataMessage:  `^1 consecutive evaluations failed: ` + failed(status503) + stale + `$`,
			readyMessage: `^No window could be measured: ` + failed(status503) + `$`,
			budget:       map[sloState]string{healthy: "bb|cbcbcbcb|bbbbb", burning: "bb|cbcbcbcb|bbbbb", exhausted: "bb|cbcbcbcb|bbbbb"},
			frozen: map[variant]string{
				{burning, hold}: "BB|HBHBHBHB|.....", {burning, release}: "BB|HBHBHBHB|.....",
				{exhausted, hold}: "BB|BBBBBBBB|.....", {exhausted, release}: "BB|BBBBBBBB|.....",
			},
		}
		for _, o := range runVariants(flapping, []sloState{healthy, burning, exhausted}, short) {
			check(flapping, o, want)
		}
	})

	It("keeps evaluating other SLOs while a Prometheus is too slow to answer", func() {
		const measure = 2 * time.Second
		for _, n := range []int{1, 8} {
			healthyEvals, slowEvals, err := evaluationCounts(ctx, n, measure)
			Expect(err).NotTo(HaveOccurred())
			fmt.Fprintf(GinkgoWriter, "\n=== slow Prometheus, %d slow SLOs and 1 healthy, 8 workers, query timeout %s, %s: healthy SLO evaluated %d times, slow SLOs %v times\n",
				n, queryTimeout, measure, healthyEvals, slowEvals)
			Expect(slowEvals).To(HaveLen(n))
			for _, e := range slowEvals {
				// Each slow evaluation takes one query timeout: the three
				// queries run together and time out together.
				Expect(e).To(BeNumerically("<=", int(measure/queryTimeout)))
				Expect(e).To(BeNumerically(">=", 2))
				if n == 1 {
					// With workers to spare, the healthy SLO is evaluated
					// many times for each slow evaluation.
					Expect(healthyEvals).To(BeNumerically(">=", 3*e), "healthy vs slow evaluations")
				} else {
					// With every worker waiting on the slow Prometheus, the
					// healthy SLO still gets its turn in each round.
					Expect(healthyEvals).To(BeNumerically(">=", e/2), "healthy vs slow evaluations")
				}
			}
		}
	})
})

// runVariants runs the fault for each state under both onMissingData values,
// in parallel, each with its own manager, clock and Prometheus.
func runVariants(f fault, states []sloState, tune func(*slov1alpha1.ErrorBudgetPolicySpec)) []outcome {
	var variants []variant
	for _, s := range states {
		for _, m := range []slov1alpha1.MissingDataAction{hold, release} {
			variants = append(variants, variant{state: s, missing: m})
		}
	}
	outcomes := make([]outcome, len(variants))
	errs := make([]error, len(variants))
	var wg sync.WaitGroup
	for i, v := range variants {
		wg.Go(func() { outcomes[i], errs[i] = runScenario(ctx, v, scriptFor(f, v.state), tune) })
	}
	wg.Wait()
	for i := range variants {
		ExpectWithOffset(1, errs[i]).NotTo(HaveOccurred(), "%s", variants[i])
	}
	return outcomes
}

// check asserts the whole outcome of one variant, evaluation by evaluation.
func check(f fault, o outcome, want expected) {
	GinkgoHelper()
	v := o.variant
	report(f, o)
	st := o.statuses
	Expect(st).To(HaveLen(warmUp + faulty + recovery))
	for k := range st {
		Expect(st[k].LastEvaluationTime.UTC()).To(Equal(t0.Add(time.Duration(k)*interval)), "%s: evaluation %d", v, k)
	}
	assertLockstep(o, f)

	Expect(timeline(st, dataLine)).To(Equal(want.data), "%s: DataAvailable", v)
	Expect(timeline(st, readyLine)).To(Equal(want.ready), "%s: Ready", v)
	Expect(timeline(st, failuresLine)).To(Equal(want.failures), "%s: consecutiveQueryFailures", v)
	Expect(timeline(st, budgetLine)).To(Equal(want.budget[v.state]), "%s: errorBudget", v)
	first := &st[warmUp]
	Expect(cond(first, slov1alpha1.ConditionDataAvailable).Message).To(MatchRegexp(want.dataMessage), "%s: DataAvailable message", v)
	Expect(cond(first, slov1alpha1.ConditionReady).Message).To(MatchRegexp(want.readyMessage), "%s: Ready message", v)
	wantFrozen := neverFrozen
	if v.state != healthy {
		wantFrozen = want.frozen[v]
	}
	Expect(timeline(st, frozenLine)).To(Equal(wantFrozen), "%s: Frozen", v)
	for k := range st {
		Expect(st[k].Freeze.Active).To(Equal(cond(&st[k], slov1alpha1.ConditionFrozen).Status == metav1.ConditionTrue),
			"%s: evaluation %d: freeze.active and the Frozen condition disagree", v, k)
		for _, c := range st[k].Conditions {
			Expect(c.ObservedGeneration).To(Equal(int64(1)), "%s: evaluation %d: %s", v, k, c.Type)
		}
	}

	// Transitions: status, Events and metrics agree, at most one per minDuration.
	trs := freezeTransitions(st)
	var fromEvents []string
	for _, tr := range trs {
		fromEvents = append(fromEvents, map[bool]string{true: "FreezeStarted", false: "FreezeLifted"}[tr.started])
	}
	Expect(o.events).To(Equal(fromEvents), "%s: Events", v)
	for j := 1; j < len(trs); j++ {
		Expect(trs[j].at.Sub(trs[j-1].at)).To(BeNumerically(">=", o.minDuration),
			"%s: transitions at evaluations %d and %d", v, trs[j-1].eval, trs[j].eval)
	}
	Expect(o.frozenGauge).To(Equal(map[bool]float64{true: 1, false: 0}[st[len(st)-1].Freeze.Active]), "%s: budgetgate_slo_frozen", v)
	Expect(o.queryFailures).To(Equal(float64(strings.Count(want.data, "Q"))), "%s: evaluation errors QueryFailed", v)
}

// assertLockstep checks that the fake Prometheus saw each evaluation's
// queries at that evaluation's instant: three windows (5m, 1h, 30d) per
// evaluation it could be reached in.
func assertLockstep(o outcome, f fault) {
	GinkgoHelper()
	perEval := map[int]int{}
	for _, q := range o.queries {
		k := int(q.at.Sub(t0) / interval)
		Expect(t0.Add(time.Duration(k)*interval)).To(Equal(q.at), "%s: a query at %s", o.variant, q.at)
		perEval[k]++
	}
	for k := range warmUp + faulty + recovery {
		want := 3
		if f == down && k >= warmUp && k < warmUp+faulty {
			want = 0
		}
		Expect(perEval[k]).To(Equal(want), "%s: queries of evaluation %d", o.variant, k)
	}
}

// report prints what a scenario measured, for docs/reliability.md.
func report(f fault, o outcome) {
	st := o.statuses
	first := &st[warmUp]
	fmt.Fprintf(GinkgoWriter, "\n=== %s | %s (%s)\n", f, o.variant, o.slo)
	fmt.Fprintf(GinkgoWriter, "DataAvailable %s\nReady         %s\nFrozen        %s\nfailures      %s\nbudget        %s\n",
		timeline(st, dataLine), timeline(st, readyLine), timeline(st, frozenLine), timeline(st, failuresLine), timeline(st, budgetLine))
	for _, tr := range freezeTransitions(st) {
		fmt.Fprintf(GinkgoWriter, "transition: %s at evaluation %d (%s)\n", map[bool]string{true: "started", false: "lifted"}[tr.started], tr.eval, phaseOf(tr.eval))
	}
	fmt.Fprintf(GinkgoWriter, "events %v, QueryFailed errors %v, frozen gauge %v\n", o.events, o.queryFailures, o.frozenGauge)
	for _, c := range []string{slov1alpha1.ConditionDataAvailable, slov1alpha1.ConditionReady, slov1alpha1.ConditionFrozen} {
		cd := cond(first, c)
		fmt.Fprintf(GinkgoWriter, "first faulty evaluation: %s=%s %s: %s\n", c, cd.Status, cd.Reason, short(cd.Message))
	}
	for _, r := range []string{"fast-burn", "budget-exhausted"} {
		rs := rule(first, r)
		fmt.Fprintf(GinkgoWriter, "first faulty evaluation: rule %s firing=%v: %s\n", r, rs.Firing, rs.Message)
	}
}

// phaseOf names the evaluation k within its phase, counting from 1.
func phaseOf(k int) string {
	switch {
	case k < warmUp:
		return fmt.Sprintf("warm-up evaluation %d", k+1)
	case k < warmUp+faulty:
		return fmt.Sprintf("faulty evaluation %d", k-warmUp+1)
	}
	return fmt.Sprintf("recovery evaluation %d", k-warmUp-faulty+1)
}

// promQL is the query in a failed query's message.
var promQL = regexp.MustCompile(`query label_replace\(.*?"events", "", ""\): `)

// short is a message with its queries elided and its lines joined.
func short(m string) string {
	return strings.ReplaceAll(promQL.ReplaceAllString(m, "query …: "), "\n", " ⏎ ")
}
