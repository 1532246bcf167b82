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
	// The platform's contact: one line, a URL or a channel.
	maxContactRunes = 200
)

// Every deny message has one shape, so that the person who reads it (often in
// a CI log or a GitOps tool's sync status, after the API server's prefix
// `admission webhook "..." denied the request: `) finds the next step at a
// glance:
//
//  1. what was blocked, by which SLO and rule, and until when;
//  2. notes, when there are any: why a claim, an exception or a rollback did
//     not count;
//  3. next steps, one per line, each starting with a label: what still
//     passes, how to claim a hotfix (and check the right to), how to see the
//     freeze;
//  4. where to get help and exceptions: the platform's contact (--contact).
//
// Commands are written out with the real names and end their line without a
// full stop, so that they can be copied.

// Labels of the next-step lines.
const (
	stillAllowedLabel = "Still allowed: "
	hotfixLabel       = "Hotfix: "
	seeFreezeLabel    = "See the freeze: "
	helpLabel         = "Exceptions and help: "
)

// warningSeparator joins the lines of a message into one admission warning
// (DryRun), which must fit on one line.
const warningSeparator = " | "

// denyLines builds the deny message of a release (UPDATE) or creation (CREATE)
// of w that the blocking SLOs hold back.
func denyLines(op Operation, w *Workload, blocking []*FrozenSLO, notes []string, contact string, now time.Time) []string {
	decisive := decisiveSLOs(blocking)
	what := "release of " + workloadName(w)
	if op == Create {
		what = "creation of " + workloadName(w)
	}
	lines := blockedBy("budgetgate: "+what+" blocked "+until(decisive, now), " by ", decisive, now)
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
	if op == Update {
		lines = append(lines, stillAllowedLabel+"rollback ("+rollbackCommand(w)+
			"; under GitOps a git revert counts), scaling, restarts.")
	}
	if classes := commonExemptClasses(decisive); len(classes) > 0 {
		lines = append(lines, hotfixLine(classes, w.Namespace))
	}
	lines = append(lines, SeeFreezeLine(w.Namespace, sloNames(decisive)...), HelpLine(contact, w.Namespace))
	return lines
}

// blockedBy finishes head with the SLOs that block: for one SLO on the same
// line (head + sep + the SLO), for several one line each.
func blockedBy(head, sep string, slos []*FrozenSLO, now time.Time) []string {
	if len(slos) == 1 {
		return []string{head + sep + describeSLO(slos[0], now, false) + "."}
	}
	lines := []string{head + sep + strconv.Itoa(len(slos)) + " frozen SLOs:"}
	for i, s := range slos {
		end := ";"
		if i == len(slos)-1 {
			end = "."
		}
		lines = append(lines, "- "+describeSLO(s, now, true)+end)
	}
	return lines
}

// until says how long the SLOs hold a release back: until at least the latest
// holdUntil still ahead, else until the budget recovers.
func until(slos []*FrozenSLO, now time.Time) string {
	var latest time.Time
	for _, s := range slos {
		if s.HoldUntil.After(now) && s.HoldUntil.After(latest) {
			latest = s.HoldUntil
		}
	}
	switch {
	case !latest.IsZero():
		return "until at least " + rfc3339(latest)
	case len(slos) > 1:
		return "until their error budgets recover"
	}
	return "until the error budget recovers"
}

// describeSLO: `SLO ns/name, frozen [in DryRun mode ][since S][ until ...] (rule r: reason)`;
// withUntil adds the SLO's own hold (when several SLOs block).
func describeSLO(s *FrozenSLO, now time.Time, withUntil bool) string {
	var b strings.Builder
	b.WriteString("SLO " + s.Namespace + "/" + s.Name + ", frozen")
	if s.DryRun {
		b.WriteString(" in DryRun mode")
	}
	if !s.Since.IsZero() {
		b.WriteString(" since " + rfc3339(s.Since))
	}
	if withUntil {
		b.WriteString(" " + until([]*FrozenSLO{s}, now))
	}
	if r := ruleText(s); r != "" {
		b.WriteString(" (" + r + ")")
	}
	return b.String()
}

// rollbackCommand is the command that rolls w back to its previous revision.
func rollbackCommand(w *Workload) string {
	if w.Kind == "Rollout" {
		// Argo Rollouts: kubectl rollout does not know the kind; its plugin does.
		return "kubectl argo rollouts undo " + w.Name + " -n " + w.Namespace
	}
	return "kubectl rollout undo " + strings.ToLower(kindOrWorkload(w.Kind)) + "/" + w.Name + " -n " + w.Namespace
}

// hotfixLine says how to claim an exempt class for one release, and how to
// check the right to first: the very SubjectAccessReview the gate asks
// (namespace-wide, no SLO name: a role limited to named SLOs would make
// `can-i .../NAME` say yes while the gate says no). It names the first class
// every deciding policy exempts (usually hotfix).
func hotfixLine(classes []string, namespace string) string {
	return hotfixLabel + "if " + CanI(ReleaseDuringFreezeVerb, "", namespace) + " says yes, set pod template annotations " +
		ReleaseClassAnnotation + ": " + classes[0] + " and " + ReleaseReasonAnnotation + ": <incident>, new per release."
}

// CanI is the kubectl command that checks verb on servicelevelobjectives in
// namespace, on the SLO named name when it is not empty.
func CanI(verb, name, namespace string) string {
	resource := SLOResource + "." + SLOGroup
	if name != "" {
		resource += "/" + name
	}
	return "kubectl auth can-i " + verb + " " + resource + " -n " + namespace
}

// SeeFreezeLine is the next-step line that shows the freeze of the named SLOs
// in namespace: their status (since, holdUntil, rule, reason, burn rates) and
// Events.
func SeeFreezeLine(namespace string, slos ...string) string {
	names := make([]string, 0, len(slos))
	for _, s := range slos {
		if _, name, ok := strings.Cut(s, "/"); ok {
			s = name
		}
		names = append(names, s)
	}
	return seeFreezeLabel + "kubectl describe slo " + strings.Join(names, " ") + " -n " + namespace
}

// HelpLine is the last line of every deny message: where the platform
// (--contact) takes questions and requests for a FreezeException, or, when it
// did not say, who to ask.
func HelpLine(contact, namespace string) string {
	if c := sanitize(strings.TrimSpace(contact), maxContactRunes); c != "" {
		return helpLabel + c
	}
	return helpLabel + "your platform team (kubectl get fex -n " + namespace + ")"
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
