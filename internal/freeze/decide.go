package freeze

import (
	"reflect"
	"slices"
	"strings"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/labels"
)

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

// allowUnchangedOrRestart applies rules 5 and 6: when w's template equals
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

// allowException applies rule 3: it fills res with the Allow decision under the
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
	if ex.RequestedBy != "" {
		res.AuditAnnotations[AuditRequestedBy] = ex.RequestedBy
	}
	if ex.ApprovedBy != "" {
		res.AuditAnnotations[AuditApprovedBy] = ex.ApprovedBy
	}
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

// warnOrDeny applies rules 9 and 10: Warn (dry-run) when no blocking SLO enforces,
// else Deny, template-change (UPDATE) or create (CREATE).
func warnOrDeny(res *Result, op Operation, w *Workload, blocking []*FrozenSLO, notes []string, contact string, now time.Time) {
	lines := denyLines(op, w, blocking, notes, contact, now)
	if len(enforcing(blocking)) == 0 {
		res.Decision, res.Class = Warn, ClassDryRun
		lines[0] = "DryRun: would deny: " + lines[0]
		res.Message = strings.Join(lines, "\n")
		res.Warnings = []string{warning(strings.Join(lines, warningSeparator))}
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
