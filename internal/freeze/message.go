package freeze

import (
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Limits on user-controlled text quoted in messages and warnings.
const (
	maxClassRunes  = 63
	maxUserRunes   = 128
	maxReasonRunes = 200
	maxErrorRunes  = 300
	maxSLORunes    = 400
)

// denyLines builds the deny message, one sentence or list item per line: what is
// frozen and by what, why claims were not honoured, what still passes, and how to
// get an exception.
func denyLines(op Operation, w *Workload, blocking []*FrozenSLO, notes []string, now time.Time) []string {
	decisive := decisiveSLOs(blocking)
	var lines []string

	head := "budgetgate: " + workloadName(w) + " may not release a new pod template: releases are frozen by "
	if op == Create {
		head = "budgetgate: " + workloadName(w) + " may not be created: releases are frozen by "
	}
	if len(decisive) == 1 {
		lines = append(lines, head+describeSLO(decisive[0], now)+".")
	} else {
		lines = append(lines, head+strconv.Itoa(len(decisive))+" SLOs:")
		for i, s := range decisive {
			end := ";"
			if i == len(decisive)-1 {
				end = "."
			}
			lines = append(lines, "- "+describeSLO(s, now)+end)
		}
	}
	if len(decisive) < len(blocking) {
		var dry []string
		for _, s := range blocking {
			if s.DryRun {
				dry = append(dry, s.Namespace+"/"+s.Name)
			}
		}
		lines = append(lines, "Also frozen in DryRun mode (would deny too): "+sloList(dry)+".")
	}
	lines = append(lines, notes...)

	classes := commonExemptClasses(decisive)
	kubectlRef := strings.ToLower(kindOrWorkload(w.Kind)) + "/" + w.Name + " -n " + w.Namespace
	var allowed []string
	if op == Update {
		allowed = append(allowed,
			"rollback to a previous revision (kubectl rollout undo "+kubectlRef+")",
			"scaling",
			"restart with an unchanged template (kubectl rollout restart "+kubectlRef+")")
	}
	if len(classes) > 0 {
		allowed = append(allowed, "a pod template annotated "+ReleaseClassAnnotation+": "+
			strings.Join(classes, " or ")+", applied by a user allowed to "+ReleaseDuringFreezeVerb)
	}
	if len(allowed) > 0 {
		lines = append(lines, "Still allowed during the freeze: "+joinAnd(allowed)+".")
	}
	lines = append(lines, "To release anyway, ask a platform admin for a FreezeException (kind FreezeException, short name fex) in namespace "+
		w.Namespace+" with spec.workloads [{kind: "+kindOrWorkload(w.Kind)+", name: "+w.Name+
		"}] or a matching spec.workloadSelector, a spec.reason and a spec.expiresAt (kubectl create -f <file>; kubectl get fex -n "+
		w.Namespace+").")
	return lines
}

// describeSLO: `SLO ns/name (policy p, rule r: reason), since S until at least H`.
func describeSLO(s *FrozenSLO, now time.Time) string {
	var b strings.Builder
	b.WriteString("SLO " + s.Namespace + "/" + s.Name + " (" + policyName(s))
	if s.DryRun {
		b.WriteString(" in DryRun mode")
	}
	if r := ruleText(s); r != "" {
		b.WriteString(", " + r)
	}
	b.WriteString(")")
	if !s.Since.IsZero() {
		b.WriteString(", since " + rfc3339(s.Since))
	}
	if s.HoldUntil.After(now) {
		b.WriteString(" until at least " + rfc3339(s.HoldUntil))
	} else {
		b.WriteString(" until the error budget recovers")
	}
	return b.String()
}

func ruleText(s *FrozenSLO) string {
	rule := sanitize(s.Rule, maxClassRunes)
	reason := sanitize(s.Reason, maxSLORunes)
	switch {
	case rule == "" && reason == "":
		return ""
	case rule == "":
		return reason
	case reason == "":
		return "rule " + rule
	case reason == rule || strings.HasPrefix(reason, rule+":"):
		return "rule " + reason
	}
	return "rule " + rule + ": " + reason
}

func policyName(s *FrozenSLO) string {
	if s.Policy == "" {
		return "the built-in policy"
	}
	return "policy " + sanitize(s.Policy, maxClassRunes)
}

// commonExemptClasses are the classes exempt under every one of slos, in the
// order of the first.
func commonExemptClasses(slos []*FrozenSLO) []string {
	if len(slos) == 0 {
		return nil
	}
	var out []string
next:
	for _, c := range slos[0].ExemptReleaseClasses {
		if c == "" || slices.Contains(out, c) {
			continue
		}
		for _, s := range slos[1:] {
			if !slices.Contains(s.ExemptReleaseClasses, c) {
				continue next
			}
		}
		out = append(out, c)
	}
	return out
}

func joinAnd(items []string) string {
	switch len(items) {
	case 0:
		return ""
	case 1:
		return items[0]
	}
	return strings.Join(items[:len(items)-1], ", ") + " and " + items[len(items)-1]
}

func workloadName(w *Workload) string {
	return kindOrWorkload(w.Kind) + " " + w.Namespace + "/" + w.Name
}

func kindOrWorkload(kind string) string {
	if kind == "" {
		return "workload"
	}
	return kind
}

// sloList: "SLO ns/a" or "SLOs ns/a, ns/b".
func sloList(names []string) string {
	if len(names) == 1 {
		return "SLO " + names[0]
	}
	return "SLOs " + strings.Join(names, ", ")
}

func rfc3339(t time.Time) string {
	return t.UTC().Format(time.RFC3339)
}

// quote truncates s to max runes and quotes it, escaping control characters.
func quote(s string, max int) string {
	return strconv.Quote(truncate(s, max))
}

// sanitize truncates s to max runes (max ≤ 0: no limit) and replaces control
// characters and invalid UTF-8 with spaces, so the text fits on one line and in an
// HTTP Warning header.
func sanitize(s string, max int) string {
	if max > 0 {
		s = truncate(s, max)
	}
	clean := true
	for _, r := range s {
		if r == utf8.RuneError || unicode.IsControl(r) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	return strings.Map(func(r rune) rune {
		if r == utf8.RuneError || unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
}

// warning makes an admission warning of s: one line, no control characters.
func warning(s string) string {
	return sanitize(s, 0)
}

func truncate(s string, max int) string {
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	return string([]rune(s)[:max]) + "…"
}
