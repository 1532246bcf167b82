package main

import (
	"fmt"
	"slices"
)

// kind is what a phase measures.
type kind string

const (
	// kindWebhook (a): not frozen, the release gate installed: the allow path.
	kindWebhook kind = "webhook"
	// kindNoWebhook (b): the same updates with the release gate removed.
	kindNoWebhook kind = "no-webhook"
	// kindDeny (c): frozen, a routine release: denied.
	kindDeny kind = "deny"
	// kindRollback (d): frozen, back to an earlier revision: admitted.
	kindRollback kind = "rollback"
	// kindExempt (e): frozen, a hotfix claimed by a user who may
	// release-during-freeze: admitted.
	kindExempt kind = "exempt"
)

func (k kind) expect() expectation {
	switch k {
	case kindDeny:
		return expectDeny
	case kindExempt:
		return expectExempt
	}
	return expectAllow
}

// phase is one stretch of load: a kind, through one manager variant (none for
// kindNoWebhook), in one round.
type phase struct {
	Kind    kind   `json:"kind"`
	Variant string `json:"variant,omitempty"`
	Round   int    `json:"round"`
	// Profiled phases run while CPU profiles are taken; they are reported
	// apart and left out of the pooled numbers.
	Profiled bool `json:"profiled,omitempty"`
}

// group is the phase without its round: phases of one group are pooled.
func (p phase) group() string {
	if p.Variant == "" {
		return string(p.Kind)
	}
	return fmt.Sprintf("%s[%s]", p.Kind, p.Variant)
}

func (p phase) String() string {
	s := fmt.Sprintf("round %d %s", p.Round+1, p.group())
	if p.Profiled {
		s += " (profiled)"
	}
	return s
}

// plan orders the phases of a run. Each round measures, for every manager
// variant and every allow-only webhook (the null webhook), the allow path
// with the release gate next to the same load without it (ABAB…), then the
// frozen paths (deny, rollback, exempt) through every manager variant. Every
// other round runs in reverse order, so that neither side of a comparison
// always comes first (warmer caches, a drift in the machine's load). With
// profile, one more round, profiled, comes last.
func plan(rounds int, variants, allowOnly []string, profile bool) []phase {
	var out []phase
	one := func(r int, profiled bool) []phase {
		open := make([]phase, 0, 2*(len(variants)+len(allowOnly)))
		frozen := make([]phase, 0, 3*len(variants))
		for _, v := range append(slices.Clone(variants), allowOnly...) {
			open = append(open, phase{Kind: kindWebhook, Variant: v, Round: r, Profiled: profiled},
				phase{Kind: kindNoWebhook, Round: r, Profiled: profiled})
		}
		for _, v := range variants {
			for _, k := range []kind{kindDeny, kindRollback, kindExempt} {
				frozen = append(frozen, phase{Kind: k, Variant: v, Round: r, Profiled: profiled})
			}
		}
		if r%2 == 1 {
			slices.Reverse(open)
			slices.Reverse(frozen)
		}
		return append(open, frozen...)
	}
	for r := range rounds {
		out = append(out, one(r, false)...)
	}
	if profile {
		out = append(out, one(rounds, true)...)
	}
	return out
}

// pair is a webhook phase and the no-webhook phase measured next to it.
type pair struct{ Webhook, NoWebhook int }

// pairs finds, in a plan, each webhook phase's no-webhook phase of the same
// round, measured right after it (right before it in a reversed round), so
// that ratios can be taken between phases measured side by side.
func pairs(ps []phase) []pair {
	var out []pair
	used := map[int]bool{}
	for i, p := range ps {
		if p.Kind != kindWebhook || p.Profiled {
			continue
		}
		next := []int{i + 1, i - 1}
		if p.Round%2 == 1 {
			next = []int{i - 1, i + 1}
		}
		for _, j := range next {
			if j >= 0 && j < len(ps) && !used[j] && ps[j].Kind == kindNoWebhook && ps[j].Round == p.Round {
				out = append(out, pair{Webhook: i, NoWebhook: j})
				used[j] = true
				break
			}
		}
	}
	return out
}
