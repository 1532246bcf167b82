package freeze

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// Decide decides an admission request for a workload. Rules, cheapest first:
//
//  1. Anything but CREATE and UPDATE, or no new pod template: Allow, scale-or-metadata.
//  2. No frozen SLO selects the workload (by its new or its old labels): Allow, not-frozen.
//  3. A FreezeException covers the workload by its old and its new labels (or by
//     name), within the workload's break-glass bound: Allow, exception.
//  4. UPDATE whose new labels take the workload out of a frozen SLO's selection:
//     the user must be allowed to lift-freeze, else Deny (Warn under DryRun), relabel.
//  5. UPDATE with a semantically equal template: Allow, scale-or-metadata
//     (relabel when rule 4 let new labels through).
//  6. UPDATE changing only kubectl.kubernetes.io/restartedAt: Allow, restart.
//  7. An exempt release class claimed by this release (on CREATE, or added or
//     changed, or with a changed release reason) by a user allowed to
//     release-during-freeze: Allow, exempt-class.
//  8. UPDATE back to a previous revision's template: Allow, rollback.
//  9. Only DryRun SLOs left: Warn, dry-run.
//  10. Deny, template-change (UPDATE) or create (CREATE).
//
// Lookups is called only in rules 4, 7 and 8, and only as far as needed. A
// lookup that fails, or that the context's deadline cuts short, never allows
// anything: the deny message says what could not be verified. Decide never
// panics on nil workloads, templates, labels, selectors or lookups.
func Decide(ctx context.Context, req Request, frozen []FrozenSLO, exceptions []Exception, lookups Lookups, now time.Time) Result {
	if ctx == nil {
		ctx = context.Background()
	}
	op := req.Operation
	if op != Create && op != Update {
		return Result{Decision: Allow, Class: ClassScaleOrMetadata, Message: "budgetgate: only creations and pod template changes are gated"}
	}
	w := req.New
	if w == nil || w.Template == nil {
		return Result{Decision: Allow, Class: ClassScaleOrMetadata, Message: "budgetgate: no pod template to release"}
	}
	var old *Workload
	if op == Update {
		old = req.Old
	}

	// Rule 2: the frozen SLOs selecting the workload, sorted by namespace/name.
	selecting := selectingSLOs(frozen, w, old)
	if len(selecting) == 0 {
		return Result{Decision: Allow, Class: ClassNotFrozen, Message: "budgetgate: no frozen SLO selects " + workloadName(w)}
	}
	res := Result{SLOs: sloNames(selecting)}
	frozenBy := strings.Join(res.SLOs, ",")

	// Rule 3: an exception covering the workload before and after the change.
	var notes []string
	ex, exNote := usableException(exceptions, w, old, selecting, now)
	if ex != nil {
		allowException(&res, req.User, w, ex, frozenBy)
		return res
	}
	if exNote != "" {
		notes = append(notes, exNote)
	}

	// Rule 4: labels that take the workload out of a frozen SLO's selection.
	var lifted map[string]string
	if leaving := leavingSLOs(selecting, w, old); len(leaving) > 0 {
		ok, note := mayLift(ctx, lookups, req.User, w.Namespace)
		if !ok {
			relabelDenied(&res, w, leaving, append(notes, note), req.Contact, now)
			return res
		}
		lifted = map[string]string{AuditUser: req.User.Username, AuditLifted: strings.Join(sloNames(leaving), ",")}
	}

	// Rules 5 and 6: same template, or a restart.
	var oldTemplate *corev1.PodTemplateSpec
	if old != nil {
		oldTemplate = old.Template
	}
	if allowUnchangedOrRestart(&res, oldTemplate, w) {
		if lifted != nil {
			relabelAllowed(&res, req.User, w, lifted)
		}
		return res
	}

	// From here on the freeze would deny (or, in DryRun, would deny): lookups allowed.

	// Rule 7: a claimed exempt release class.
	blocking, classNotes, released := applyReleaseClass(ctx, &res, req.User, w, oldTemplate, selecting, lookups, frozenBy)
	notes = append(notes, classNotes...)
	if released {
		mergeAudit(&res, lifted)
		return res
	}

	// Rule 8: a rollback to a previous revision.
	if op == Update && oldTemplate != nil {
		rollback, note := recogniseRollback(ctx, lookups, w)
		if rollback {
			res.Decision, res.Class = Allow, ClassRollback
			res.Message = "budgetgate: rollback of " + workloadName(w) + " to a previous revision during the freeze of " + sloList(res.SLOs)
			res.ReleaseClass, res.AuditAnnotations = "", nil
			mergeAudit(&res, lifted)
			return res
		}
		if note != "" {
			notes = append(notes, note)
		}
	}

	// Rules 9 and 10.
	warnOrDeny(&res, op, w, blocking, notes, req.Contact, now)
	return res
}

// mergeAudit adds extra audit annotations to res.
func mergeAudit(res *Result, extra map[string]string) {
	if len(extra) == 0 {
		return
	}
	if res.AuditAnnotations == nil {
		res.AuditAnnotations = map[string]string{}
	}
	for k, v := range extra {
		res.AuditAnnotations[k] = v
	}
}

// leavingSLOs are the SLOs of selecting that select old but not w: the update's
// labels take the workload out of their freeze.
func leavingSLOs(selecting []*FrozenSLO, w, old *Workload) []*FrozenSLO {
	if old == nil {
		return nil
	}
	var out []*FrozenSLO
	for _, s := range selecting {
		if Selects(*s, old) && !Selects(*s, w) {
			out = append(out, s)
		}
	}
	return out
}

// mayLift asks whether user may lift-freeze in namespace; when not, it returns
// the note saying why.
func mayLift(ctx context.Context, lookups Lookups, user authenticationv1.UserInfo, namespace string) (bool, string) {
	if lookups == nil {
		return false, "No authoriser is available to check " + LiftFreezeVerb + "."
	}
	ok, err := lookups.Authorized(ctx, user, namespace, LiftFreezeVerb)
	switch {
	case err != nil:
		return false, "Could not check whether " + quote(user.Username, maxUserRunes) + " may " + LiftFreezeVerb + ": " + lookupError(err) + "."
	case !ok:
		return false, "User " + quote(user.Username, maxUserRunes) + " may not " + LiftFreezeVerb + " on " +
			SLOResource + "." + SLOGroup + " in namespace " + namespace + "."
	}
	return true, ""
}

// relabelDenied fills res with the decision on labels that would take w out of
// the freeze of leaving without permission: Deny, or Warn when only DryRun SLOs
// are left.
func relabelDenied(res *Result, w *Workload, leaving []*FrozenSLO, notes []string, contact string, now time.Time) {
	decisive := decisiveSLOs(leaving)
	lines := blockedBy("budgetgate: label change of "+workloadName(w)+" blocked "+until(decisive, now)+
		": the new labels would leave the selection of", " ", decisive, now)
	lines = append(lines, notes...)
	lines = append(lines, "Change the labels after the freeze lifts, or ask someone for whom "+
		CanI(LiftFreezeVerb, "", w.Namespace)+" says yes.",
		SeeFreezeLine(w.Namespace, sloNames(decisive)...), HelpLine(contact, w.Namespace))
	res.Class = ClassRelabel
	res.AuditAnnotations = nil
	if len(enforcing(leaving)) == 0 {
		res.Decision, res.Class = Warn, ClassDryRun
		lines[0] = "DryRun: would deny: " + lines[0]
		res.Message = strings.Join(lines, "\n")
		res.Warnings = []string{warning(strings.Join(lines, warningSeparator))}
		return
	}
	res.Decision = Deny
	res.Message = strings.Join(lines, "\n")
}

// relabelAllowed turns an Allow of an unchanged template into the record of an
// authorised relabelling out of a freeze.
func relabelAllowed(res *Result, user authenticationv1.UserInfo, w *Workload, lifted map[string]string) {
	res.AuditAnnotations = lifted
	if res.Class != ClassScaleOrMetadata {
		return
	}
	res.Class = ClassRelabel
	res.Message = "budgetgate: " + workloadName(w) + " relabelled out of the freeze of " +
		sloList(strings.Split(lifted[AuditLifted], ",")) + " by " + quote(user.Username, maxUserRunes) + ", who may " + LiftFreezeVerb
	res.Warnings = []string{warning(res.Message)}
}

func sloNames(slos []*FrozenSLO) []string {
	out := make([]string, len(slos))
	for i, s := range slos {
		out[i] = s.Namespace + "/" + s.Name
	}
	return out
}

// applyReleaseClass applies rule 7, a claimed exempt release class. A class
// counts only for the release that claims it: on CREATE, or when this update
// adds or changes the class, or changes the release reason with it. The claim
// must be exempt under every SLO that decides (the Enforce ones if any, else
// the DryRun ones) and the user must hold release-during-freeze; SLOs exempting
// the class then stop blocking. It returns the SLOs still blocking, the notes
// explaining the outcome for the deny message, and whether res now holds the
// final Allow (exempt-class) decision. A honoured class records the release
// class and the audit annotations in res even when other SLOs still block.
func applyReleaseClass(ctx context.Context, res *Result, user authenticationv1.UserInfo, w *Workload, oldTemplate *corev1.PodTemplateSpec,
	selecting []*FrozenSLO, lookups Lookups, frozenBy string) (blocking []*FrozenSLO, notes []string, released bool) {
	blocking = selecting
	class := w.Template.Annotations[ReleaseClassAnnotation]
	if class == "" {
		return blocking, nil, false
	}
	reason := w.Template.Annotations[ReleaseReasonAnnotation]
	if oldTemplate != nil && oldTemplate.Annotations[ReleaseClassAnnotation] == class &&
		oldTemplate.Annotations[ReleaseReasonAnnotation] == reason {
		return blocking, []string{"Release class " + quote(class, maxClassRunes) + " was claimed by an earlier release and counts only for that one; " +
			"to claim it for this release, change " + ReleaseReasonAnnotation + " (e.g. to the incident) in the same change."}, false
	}
	if notExempt := notExempting(decisiveSLOs(blocking), class); len(notExempt) > 0 {
		return blocking, []string{notExemptNote(class, notExempt)}, false
	}
	ok, note := mayRelease(ctx, lookups, user, w.Namespace, class)
	if !ok {
		return blocking, []string{note}, false
	}
	res.ReleaseClass = class
	res.AuditAnnotations = map[string]string{
		AuditUser:         user.Username,
		AuditReleaseClass: class,
		AuditFrozenBy:     frozenBy,
	}
	if reason != "" {
		res.AuditAnnotations[AuditReleaseReason] = sanitize(reason, maxReasonRunes)
	}
	rest := notExempting(blocking, class)
	if len(rest) == 0 {
		res.Decision, res.Class = Allow, ClassExemptClass
		res.Message = "budgetgate: " + workloadName(w) + " released during the freeze of " + sloList(res.SLOs) +
			" as release class " + quote(class, maxClassRunes) + " by " + quote(user.Username, maxUserRunes) +
			", who may " + ReleaseDuringFreezeVerb
		res.Warnings = []string{warning(res.Message)}
		return blocking, nil, true
	}
	return rest, []string{"Release class " + quote(class, maxClassRunes) + " was honoured for " + sloList(names(selecting, class)) + "."}, false
}

// mayRelease asks lookups whether user may release-during-freeze in namespace; when
// not, it returns the note explaining why the claimed class was not honoured.
func mayRelease(ctx context.Context, lookups Lookups, user authenticationv1.UserInfo, namespace, class string) (bool, string) {
	prefix := "Release class " + quote(class, maxClassRunes) + " was not honoured: "
	if lookups == nil {
		return false, prefix + "no authoriser is available to check " + ReleaseDuringFreezeVerb + "."
	}
	ok, err := lookups.Authorized(ctx, user, namespace, ReleaseDuringFreezeVerb)
	switch {
	case err != nil:
		return false, prefix + "could not check whether " + quote(user.Username, maxUserRunes) + " may " +
			ReleaseDuringFreezeVerb + ": " + lookupError(err) + "."
	case !ok:
		return false, prefix + "user " + quote(user.Username, maxUserRunes) + " may not " + ReleaseDuringFreezeVerb +
			" on " + SLOResource + "." + SLOGroup + " in namespace " + namespace + "."
	}
	return true, ""
}

// recogniseRollback applies rule 8: it reports whether w's template is a
// previous revision's, stopping at the first match. When the revision history
// could not be read in full it returns the note saying so for the deny message.
func recogniseRollback(ctx context.Context, lookups Lookups, w *Workload) (bool, string) {
	if lookups == nil {
		return false, "No revision history was available to recognise a rollback."
	}
	found := false
	err := lookups.Revisions(ctx, w, func(t *corev1.PodTemplateSpec) bool {
		found = SameRevision(w.Template, t)
		return !found
	})
	switch {
	case found:
		return true, ""
	case err != nil:
		return false, "Could not verify a rollback: reading the revision history failed (" + lookupError(err) +
			"); if this is a rollback, retry it."
	}
	return false, ""
}

// SameRevision reports whether releasing template t restores revision r:
// equal ignoring pod-template-hash and kubectl.kubernetes.io/restartedAt.
func SameRevision(t, r *corev1.PodTemplateSpec) bool {
	if t == nil || r == nil {
		return t == r
	}
	return equalIgnoring(t, r, PodTemplateHashLabel, RestartedAtAnnotation)
}

// lookupError describes a failed lookup for a message; a passed deadline says so.
func lookupError(err error) string {
	if errors.Is(err, context.DeadlineExceeded) {
		return "budgetgate's deadline for this decision passed before the API server answered"
	}
	return sanitize(err.Error(), maxErrorRunes)
}

// usableException returns the exception that lets w (changed from old) release
// during the freeze of selecting, or nil and, when an exception covers w but
// may not be used, the note saying why.
//
// An exception covers a workload in its namespace when its non-empty selector
// matches the workload's labels or its workloads name it; it must cover w and
// old. Of the covering exceptions that could have been used in this freeze
// (created by now, expiring after the freeze began, approved where a policy of
// selecting requires approval), the first to count starts the workload's
// break-glass clock: the later of its creation and the freeze's start. An
// exception is honoured while it is not deleted, not expired and the clock is
// within the strictest MaxExceptionDuration of selecting; of several, the one
// with the smallest name.
func usableException(exceptions []Exception, w, old *Workload, selecting []*FrozenSLO, now time.Time) (*Exception, string) {
	var covering []*Exception
	for i := range exceptions {
		e := &exceptions[i]
		if e.Namespace == w.Namespace && covers(e, w) && (old == nil || covers(e, old)) {
			covering = append(covering, e)
		}
	}
	if len(covering) == 0 {
		return nil, ""
	}
	freezeStart, maxDur, approval := now, time.Duration(0), false
	for _, s := range selecting {
		if !s.Since.IsZero() && s.Since.Before(freezeStart) {
			freezeStart = s.Since
		}
		d := s.MaxExceptionDuration
		if d <= 0 {
			d = DefaultMaxExceptionDuration
		}
		if maxDur == 0 || d < maxDur {
			maxDur = d
		}
		approval = approval || s.RequireExceptionApproval
	}
	var clock time.Time // when break-glass began for w in this freeze
	for _, e := range covering {
		if e.CreatedAt.After(now) || !e.ExpiresAt.After(freezeStart) || approval && e.ApprovedBy == "" {
			continue
		}
		start := e.CreatedAt
		if start.Before(freezeStart) {
			start = freezeStart
		}
		if clock.IsZero() || start.Before(clock) {
			clock = start
		}
	}
	slices.SortFunc(covering, func(a, b *Exception) int { return strings.Compare(a.Name, b.Name) })
	var notes, deleted []string
	for _, e := range covering {
		name := "FreezeException " + e.Namespace + "/" + e.Name
		switch {
		case e.Terminating:
			deleted = append(deleted, name+" was deleted.")
		case !now.Before(e.ExpiresAt):
			notes = append(notes, name+" expired at "+rfc3339(e.ExpiresAt)+".")
		case approval && e.ApprovedBy == "":
			notes = append(notes, name+" is not approved yet, and the policy of "+sloList(sloNames(selecting))+" requires approval by a second person "+
				"(kubectl annotate fex "+e.Name+" -n "+e.Namespace+" "+approveAnnotation+"=true).")
		case !clock.IsZero() && !now.Before(clock.Add(maxDur)):
			notes = append(notes, name+" is not honoured: exceptions have let this workload release since "+rfc3339(clock)+
				" in this freeze, and break-glass is bounded by maxExceptionDuration "+formatHours(maxDur)+" per freeze.")
		default:
			return e, "" // the first by name
		}
	}
	if len(notes) == 0 {
		notes = deleted // say a deleted one no longer counts only when nothing else explains
	}
	return nil, strings.Join(notes, " ")
}

// approveAnnotation is api/v1alpha1.ApproveAnnotation (freeze imports nothing
// of the project; TestNamesMatchAPI keeps them equal).
const approveAnnotation = "budgetgate.dev/approve"

func covers(e *Exception, w *Workload) bool {
	if w == nil {
		return false
	}
	if e.Selector != nil && !e.Selector.Empty() && e.Selector.Matches(labels.Set(w.Labels)) {
		return true
	}
	for _, r := range e.Workloads {
		if r.Name == w.Name && strings.EqualFold(r.Kind, w.Kind) {
			return true
		}
	}
	return false
}

// formatHours formats a duration such as 24h0m0s as "24h".
func formatHours(d time.Duration) string {
	s := d.String()
	s = strings.TrimSuffix(s, "0s")
	return strings.TrimSuffix(s, "0m")
}
