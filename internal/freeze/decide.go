package freeze

import (
	"context"
	"reflect"
	"slices"
	"strings"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/labels"
)

// Decide decides an admission request for a workload. Rules, cheapest first:
//
//  1. Anything but CREATE and UPDATE, or no new pod template: Allow, scale-or-metadata.
//  2. No frozen SLO selects the workload (by its new or its old labels): Allow, not-frozen.
//  3. UPDATE with a semantically equal template: Allow, scale-or-metadata.
//  4. UPDATE changing only kubectl.kubernetes.io/restartedAt: Allow, restart.
//  5. An unexpired FreezeException covers the workload: Allow, exception.
//  6. An exempt release class claimed by an authorised user: Allow, exempt-class.
//  7. UPDATE back to a previous revision's template: Allow, rollback.
//  8. Only DryRun SLOs left: Warn, dry-run.
//  9. Deny, template-change (UPDATE) or create (CREATE).
//
// Lookups is called only in rules 6 and 7, and only as far as needed. Decide never
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
	res := Result{SLOs: make([]string, len(selecting))}
	for i, s := range selecting {
		res.SLOs[i] = s.Namespace + "/" + s.Name
	}
	frozenBy := strings.Join(res.SLOs, ",")

	// Rules 3 and 4: same template, or a restart.
	var oldTemplate *corev1.PodTemplateSpec
	if old != nil {
		oldTemplate = old.Template
	}
	if allowUnchangedOrRestart(&res, oldTemplate, w) {
		return res
	}

	// Rule 5: an active FreezeException.
	if ex := coveringException(exceptions, w, now); ex != nil {
		allowException(&res, req.User, w, ex, frozenBy)
		return res
	}

	// From here on the freeze would deny (or, in DryRun, would deny): lookups allowed.

	// Rule 6: a claimed exempt release class.
	blocking, notes, released := applyReleaseClass(ctx, &res, req.User, w, selecting, lookups, frozenBy)
	if released {
		return res
	}

	// Rule 7: a rollback to a previous revision.
	if op == Update && oldTemplate != nil {
		rollback, note := recogniseRollback(ctx, lookups, w)
		if rollback {
			res.Decision, res.Class = Allow, ClassRollback
			res.Message = "budgetgate: rollback of " + workloadName(w) + " to a previous revision during the freeze of " + sloList(res.SLOs)
			return res
		}
		if note != "" {
			notes = append(notes, note)
		}
	}

	// Rules 8 and 9.
	warnOrDeny(&res, op, w, blocking, notes, now)
	return res
}

// selectingSLOs returns the frozen SLOs selecting w or old, sorted by namespace/name.
func selectingSLOs(frozen []FrozenSLO, w, old *Workload) []*FrozenSLO {
	var selecting []*FrozenSLO
	for i := range frozen {
		s := &frozen[i]
		if Selects(*s, w) || Selects(*s, old) {
			selecting = append(selecting, s)
		}
	}
	slices.SortFunc(selecting, func(a, b *FrozenSLO) int {
		if c := strings.Compare(a.Namespace, b.Namespace); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	return selecting
}

// allowUnchangedOrRestart applies rules 3 and 4: when w's template equals
// oldTemplate, or differs from it only by a restart, it fills res with the Allow
// decision and returns true. A nil oldTemplate (a CREATE) matches neither rule.
func allowUnchangedOrRestart(res *Result, oldTemplate *corev1.PodTemplateSpec, w *Workload) bool {
	if oldTemplate == nil {
		return false
	}
	if equalIgnoring(oldTemplate, w.Template, "", "") {
		res.Decision, res.Class = Allow, ClassScaleOrMetadata
		res.Message = "budgetgate: pod template of " + workloadName(w) + " unchanged"
		return true
	}
	if OnlyRestartChanged(oldTemplate, w.Template) {
		res.Decision, res.Class = Allow, ClassRestart
		res.Message = "budgetgate: restart of " + workloadName(w) + " (only " + RestartedAtAnnotation + " changed)"
		return true
	}
	return false
}

// allowException applies rule 5: it fills res with the Allow decision under the
// covering exception ex, with its warning and audit annotations.
func allowException(res *Result, user authenticationv1.UserInfo, w *Workload, ex *Exception, frozenBy string) {
	res.Decision, res.Class = Allow, ClassException
	res.Exception = ex.Name
	res.Message = "budgetgate: " + workloadName(w) + " released during the freeze of " + sloList(res.SLOs) +
		" under FreezeException " + ex.Namespace + "/" + ex.Name +
		" (reason: " + quote(ex.Reason, maxReasonRunes) + "; expires " + rfc3339(ex.ExpiresAt) + ")"
	res.Warnings = []string{warning(res.Message)}
	res.AuditAnnotations = map[string]string{
		AuditUser:      user.Username,
		AuditException: ex.Name,
		AuditReason:    ex.Reason,
		AuditFrozenBy:  frozenBy,
	}
}

// applyReleaseClass applies rule 6, a claimed exempt release class. The claim must
// be exempt under every SLO that decides (the Enforce ones if any, else the DryRun
// ones) and the user must hold release-during-freeze; SLOs exempting the class then
// stop blocking. It returns the SLOs still blocking, the notes explaining the
// outcome for the deny message, and whether res now holds the final Allow
// (exempt-class) decision. A honoured class records the release class and the audit
// annotations in res even when other SLOs still block.
func applyReleaseClass(ctx context.Context, res *Result, user authenticationv1.UserInfo, w *Workload,
	selecting []*FrozenSLO, lookups Lookups, frozenBy string) (blocking []*FrozenSLO, notes []string, released bool) {
	blocking = selecting
	class := w.Template.Annotations[ReleaseClassAnnotation]
	if class == "" {
		return blocking, nil, false
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

// notExempting returns the SLOs of slos that do not exempt class.
func notExempting(slos []*FrozenSLO, class string) []*FrozenSLO {
	var out []*FrozenSLO
	for _, s := range slos {
		if !slices.Contains(s.ExemptReleaseClasses, class) {
			out = append(out, s)
		}
	}
	return out
}

// recogniseRollback applies rule 7: it reports whether w's template is a previous
// revision's. When the revision history is unavailable it returns the note saying
// so for the deny message.
func recogniseRollback(ctx context.Context, lookups Lookups, w *Workload) (bool, string) {
	if lookups == nil {
		return false, "No revision history was available to recognise a rollback."
	}
	prev, err := lookups.PreviousTemplates(ctx, w)
	if err != nil {
		return false, "Could not read the revision history to recognise a rollback: " + sanitize(err.Error(), maxErrorRunes) + "."
	}
	return isRollback(w.Template, prev), ""
}

// warnOrDeny applies rules 8 and 9: Warn (dry-run) when no blocking SLO enforces,
// else Deny, template-change (UPDATE) or create (CREATE).
func warnOrDeny(res *Result, op Operation, w *Workload, blocking []*FrozenSLO, notes []string, now time.Time) {
	lines := denyLines(op, w, blocking, notes, now)
	if len(enforcing(blocking)) == 0 {
		res.Decision, res.Class = Warn, ClassDryRun
		lines[0] = "DryRun: would deny: " + lines[0]
		res.Message = strings.Join(lines, "\n")
		res.Warnings = []string{warning(strings.Join(lines, " "))}
		return
	}
	res.Decision, res.Class = Deny, ClassTemplateChange
	if op == Create {
		res.Class = ClassCreate
	}
	res.Message = strings.Join(lines, "\n")
	// A honoured class did not admit the request: nothing to audit.
	res.ReleaseClass, res.AuditAnnotations = "", nil
}

// Selects reports whether s gates w: same namespace and s's non-empty selector
// matches w's labels. A nil workload or a nil or empty selector selects nothing.
func Selects(s FrozenSLO, w *Workload) bool {
	if w == nil || s.Selector == nil || s.Selector.Empty() || s.Namespace != w.Namespace {
		return false
	}
	return s.Selector.Matches(labels.Set(w.Labels))
}

// TemplatesEqualIgnoringHash reports whether a and b are semantically equal once
// the pod-template-hash label is removed from both. Two nil templates are equal.
func TemplatesEqualIgnoringHash(a, b *corev1.PodTemplateSpec) bool {
	if a == nil || b == nil {
		return a == b
	}
	return equalIgnoring(a, b, PodTemplateHashLabel, "")
}

// OnlyRestartChanged reports whether new differs from old only by the
// kubectl.kubernetes.io/restartedAt annotation being added or changed, which is
// what `kubectl rollout restart` does.
func OnlyRestartChanged(old, new *corev1.PodTemplateSpec) bool {
	if old == nil || new == nil {
		return false
	}
	at, ok := new.Annotations[RestartedAtAnnotation]
	if !ok {
		return false
	}
	if before, had := old.Annotations[RestartedAtAnnotation]; had && before == at {
		return false
	}
	return equalIgnoring(old, new, "", RestartedAtAnnotation)
}

// isRollback reports whether t equals one of prev, ignoring pod-template-hash and
// kubectl.kubernetes.io/restartedAt on both sides.
func isRollback(t *corev1.PodTemplateSpec, prev []corev1.PodTemplateSpec) bool {
	for i := range prev {
		if equalIgnoring(t, &prev[i], PodTemplateHashLabel, RestartedAtAnnotation) {
			return true
		}
	}
	return false
}

// equalIgnoring is equality.Semantic.DeepEqual(a, b) with one label and one
// annotation key ignored (empty: none). Cheap checks (container names and images,
// labels, annotations) run first so that different templates rarely reach the
// reflective comparison, and nothing is copied or modified.
func equalIgnoring(a, b *corev1.PodTemplateSpec, label, annotation string) bool {
	if !sameContainers(a.Spec.Containers, b.Spec.Containers) || !sameContainers(a.Spec.InitContainers, b.Spec.InitContainers) ||
		!mapsEqualIgnoring(a.Labels, b.Labels, label) || !mapsEqualIgnoring(a.Annotations, b.Annotations, annotation) {
		return false
	}
	x, y := a.ObjectMeta, b.ObjectMeta
	x.Labels, x.Annotations, y.Labels, y.Annotations = nil, nil, nil, nil
	// reflect.DeepEqual implies semantic equality and is several times cheaper;
	// only when it says no does the semantic comparison (nil vs. empty,
	// quantities) decide.
	return semanticEqual(&x, &y) && semanticEqual(&a.Spec, &b.Spec)
}

func semanticEqual[T any](a, b *T) bool {
	return reflect.DeepEqual(a, b) || equality.Semantic.DeepEqual(a, b)
}

// sameContainers is a necessary condition for semantic equality: same number of
// containers with the same names and images.
func sameContainers(a, b []corev1.Container) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Name != b[i].Name || a[i].Image != b[i].Image {
			return false
		}
	}
	return true
}

// mapsEqualIgnoring compares two string maps without key (empty: compare all);
// nil and empty maps are equal, as in equality.Semantic.
func mapsEqualIgnoring(a, b map[string]string, key string) bool {
	n := 0
	for k, v := range a {
		if k == key && key != "" {
			continue
		}
		if w, ok := b[k]; !ok || w != v {
			return false
		}
		n++
	}
	m := len(b)
	if _, ok := b[key]; ok && key != "" {
		m--
	}
	return n == m
}

// coveringException returns the unexpired exception in w's namespace whose
// non-empty selector matches w's labels or whose workloads name w; the one with
// the smallest name when several do.
func coveringException(exceptions []Exception, w *Workload, now time.Time) *Exception {
	var best *Exception
	for i := range exceptions {
		e := &exceptions[i]
		if e.Namespace != w.Namespace || !now.Before(e.ExpiresAt) || !covers(e, w) {
			continue
		}
		if best == nil || e.Name < best.Name {
			best = e
		}
	}
	return best
}

func covers(e *Exception, w *Workload) bool {
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

// mayRelease asks lookups whether user may release-during-freeze in namespace; when
// not, it returns the note explaining why the claimed class was not honoured.
func mayRelease(ctx context.Context, lookups Lookups, user authenticationv1.UserInfo, namespace, class string) (bool, string) {
	prefix := "Release class " + quote(class, maxClassRunes) + " was not honoured: "
	if lookups == nil {
		return false, prefix + "no authoriser is available to check " + ReleaseDuringFreezeVerb + "."
	}
	ok, err := lookups.MayReleaseDuringFreeze(ctx, user, namespace)
	switch {
	case err != nil:
		return false, prefix + "could not check whether " + quote(user.Username, maxUserRunes) + " may " +
			ReleaseDuringFreezeVerb + ": " + sanitize(err.Error(), maxErrorRunes) + "."
	case !ok:
		return false, prefix + "user " + quote(user.Username, maxUserRunes) + " may not " + ReleaseDuringFreezeVerb +
			" on " + SLOResource + "." + SLOGroup + " in namespace " + namespace + "."
	}
	return true, ""
}

func notExemptNote(class string, slos []*FrozenSLO) string {
	var b strings.Builder
	b.WriteString("Release class " + quote(class, maxClassRunes) + " was not honoured: it is not exempt under ")
	for i, s := range slos {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(policyName(s) + " of SLO " + s.Namespace + "/" + s.Name + " (exempt: ")
		if len(s.ExemptReleaseClasses) == 0 {
			b.WriteString("none")
		} else {
			b.WriteString(strings.Join(s.ExemptReleaseClasses, ", "))
		}
		b.WriteString(")")
	}
	b.WriteString(".")
	return b.String()
}

// decisiveSLOs are the SLOs that decide between Deny and Warn: the Enforce ones
// if any, else the DryRun ones.
func decisiveSLOs(slos []*FrozenSLO) []*FrozenSLO {
	if e := enforcing(slos); len(e) > 0 {
		return e
	}
	return slos
}

func enforcing(slos []*FrozenSLO) []*FrozenSLO {
	var out []*FrozenSLO
	for _, s := range slos {
		if !s.DryRun {
			out = append(out, s)
		}
	}
	return out
}

// names lists "ns/name" of the SLOs exempting class.
func names(slos []*FrozenSLO, class string) []string {
	var out []string
	for _, s := range slos {
		if slices.Contains(s.ExemptReleaseClasses, class) {
			out = append(out, s.Namespace+"/"+s.Name)
		}
	}
	return out
}
