// Package freeze is budgetgate's admission decision: given a change to a
// Deployment, StatefulSet or DaemonSet, the frozen SLOs, and the valid
// FreezeExceptions, it decides whether the change is allowed, denied, or admitted
// with a DryRun warning, and explains why.
//
// The package is pure: no Kubernetes client, no clock (time is a parameter). The
// only I/O goes through the Lookups interface, which Decide calls lazily and only
// when a freeze would otherwise deny the change: a SubjectAccessReview for a
// claimed exempt release class, and a read of the workload's own revision history
// to recognise a rollback.
package freeze

import (
	"context"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// Annotation, label and RBAC names the decision depends on.
const (
	// ReleaseClassAnnotation, on a pod template, claims a release class such as
	// "hotfix". Same value as api/v1alpha1.ReleaseClassAnnotation.
	ReleaseClassAnnotation = "budgetgate.dev/release-class"
	// RestartedAtAnnotation is set on the pod template by `kubectl rollout restart`.
	RestartedAtAnnotation = "kubectl.kubernetes.io/restartedAt"
	// PodTemplateHashLabel is added by the Deployment controller to the templates
	// of its ReplicaSets (appsv1.DefaultDeploymentUniqueLabelKey).
	PodTemplateHashLabel = "pod-template-hash"
	// ReleaseReasonAnnotation, on a pod template, renews a release-class claim:
	// a class already on the template counts only when this changes with it.
	ReleaseReasonAnnotation = "budgetgate.dev/release-reason"
	// ReleaseDuringFreezeVerb is the custom RBAC verb on
	// servicelevelobjectives.slo.budgetgate.dev that lets a user release an exempt
	// release class during a freeze.
	ReleaseDuringFreezeVerb = "release-during-freeze"
	// LiftFreezeVerb is the custom RBAC verb on
	// servicelevelobjectives.slo.budgetgate.dev that lets a user take a workload
	// out of a frozen SLO's selection (and change or delete a frozen SLO).
	LiftFreezeVerb = "lift-freeze"
	// DefaultMaxExceptionDuration bounds break-glass when a FrozenSLO says nothing.
	DefaultMaxExceptionDuration = 24 * time.Hour
	// SLOResource and SLOGroup name the resource the verb is checked on.
	SLOResource = "servicelevelobjectives"
	SLOGroup    = "slo.budgetgate.dev"
)

// Decision is the outcome of an admission request.
type Decision string

const (
	// Allow admits the request.
	Allow Decision = "Allow"
	// Deny rejects the request with Result.Message.
	Deny Decision = "Deny"
	// Warn admits the request and returns Result.Warnings (DryRun policies).
	Warn Decision = "Warn"
)

// Class says why a decision was taken. It is also a metric label, so its values
// are a small fixed set.
type Class string

const (
	ClassTemplateChange  Class = "template-change"
	ClassCreate          Class = "create"
	ClassRollback        Class = "rollback"
	ClassRestart         Class = "restart"
	ClassScaleOrMetadata Class = "scale-or-metadata"
	ClassExemptClass     Class = "exempt-class"
	ClassException       Class = "exception"
	ClassDryRun          Class = "dry-run"
	ClassNotFrozen       Class = "not-frozen"
	// ClassRelabel: labels that take a workload out of a frozen SLO's selection.
	ClassRelabel Class = "relabel"
)

// Classes lists every Class, e.g. to pre-register metric label values.
var Classes = []Class{
	ClassTemplateChange, ClassCreate, ClassRollback, ClassRestart, ClassScaleOrMetadata,
	ClassExemptClass, ClassException, ClassDryRun, ClassNotFrozen, ClassRelabel, ClassHistory,
}

// Operation is the admission operation; the webhook passes
// admission.Request.Operation unchanged.
type Operation = admissionv1.Operation

// The operations Decide distinguishes. Anything but Create and Update is allowed.
const (
	Create Operation = admissionv1.Create
	Update Operation = admissionv1.Update
	Delete Operation = admissionv1.Delete
)

// Workload is a Deployment, StatefulSet or DaemonSet reduced to what matters.
type Workload struct {
	Kind, Namespace, Name string
	Labels                map[string]string
	Template              *corev1.PodTemplateSpec
}

// Request is one admission request for a workload.
type Request struct {
	Operation Operation
	// Old is nil on CREATE; New is nil on DELETE.
	Old, New *Workload
	User     authenticationv1.UserInfo
	// Contact is where the platform takes questions and requests for
	// exceptions (the manager's --contact, e.g. a runbook URL): the last line
	// of a deny message. Empty: "ask your platform team".
	Contact string
}

// FrozenSLO is an SLO whose status says frozen, with its policy resolved.
type FrozenSLO struct {
	Namespace, Name string
	// Selector is the SLO's workloadSelector. Nil or empty selects nothing.
	Selector labels.Selector
	// DryRun is true when the policy's mode is DryRun.
	DryRun bool
	// Policy is the name of the ErrorBudgetPolicy.
	Policy string
	// Rule and Reason come from status.freeze, e.g. "fast-burn" and
	// "fast-burn: burn rate 15.10x over 1h and 16.00x over 5m ≥ 14.40x; budget 62.3% left".
	Rule, Reason     string
	Since, HoldUntil time.Time
	// ExemptReleaseClasses of the policy, defaults already applied.
	ExemptReleaseClasses []string
	// MaxExceptionDuration of the policy bounds a workload's break-glass within
	// one freeze (0: DefaultMaxExceptionDuration).
	MaxExceptionDuration time.Duration
	// RequireExceptionApproval: exceptions count only once approved.
	RequireExceptionApproval bool
}

// WorkloadRef names a workload explicitly in a FreezeException.
type WorkloadRef struct {
	Kind, Name string
}

// Exception is a FreezeException the exception controller found valid. Decide
// honours it for a workload it covers by the workload's old and new labels (or
// name) while it is not expired, not being deleted, approved where a policy
// requires it, and within the workload's break-glass bound: in one freeze, the
// exceptions covering a workload are honoured at most MaxExceptionDuration
// after the first of them began to count (its creation, or the freeze's start).
// Deleted exceptions are kept (Terminating) during the freeze they may have
// counted in, so that deleting and re-creating one cannot restart that clock.
type Exception struct {
	Namespace, Name, Reason string
	// Selector matches workload labels; nil or empty matches nothing.
	Selector  labels.Selector
	Workloads []WorkloadRef
	ExpiresAt time.Time
	// CreatedAt is the exception's creation time (zero: unknown, counts from
	// the freeze's start).
	CreatedAt time.Time
	// Terminating: deleted, kept only as a record of the break-glass it gave.
	Terminating bool
	// RequestedBy and ApprovedBy as recorded by budgetgate's admission webhook.
	RequestedBy, ApprovedBy string
}

// Lookups is implemented by the webhook. Decide calls it only when a freeze would
// otherwise deny (or, in DryRun, would deny) the request. A nil Lookups means no
// history and no permission. Both calls honour the context's deadline.
type Lookups interface {
	// Revisions calls fn with the pod template of each of the workload's
	// earlier revisions (ReplicaSets a Deployment controls; ControllerRevisions
	// of a StatefulSet or DaemonSet) until fn returns false.
	Revisions(ctx context.Context, w *Workload, fn func(*corev1.PodTemplateSpec) bool) error
	// Authorized runs a SubjectAccessReview for verb on
	// servicelevelobjectives.slo.budgetgate.dev in namespace.
	Authorized(ctx context.Context, user authenticationv1.UserInfo, namespace, verb string) (bool, error)
}

// Result is the decision with everything the webhook reports.
type Result struct {
	Decision Decision
	Class    Class
	// Message is the deny message, the DryRun warning text, or a short allow note.
	// It may span several lines; Warnings never do.
	Message string
	// Warnings are admission warnings for the client (single-line, no control characters).
	Warnings []string
	// SLOs are "namespace/name" of the frozen SLOs selecting the workload, sorted.
	SLOs []string
	// Exception is the name of the FreezeException used.
	Exception string
	// ReleaseClass is the release class honoured.
	ReleaseClass string
	// AuditAnnotations, for exempt-class and exception: "user", "release-class",
	// "exception", "reason", "frozen-by".
	AuditAnnotations map[string]string
}

// Audit annotation keys.
const (
	AuditUser          = "user"
	AuditReleaseClass  = "release-class"
	AuditReleaseReason = "release-reason"
	AuditException     = "exception"
	AuditRequestedBy   = "exception-requested-by"
	AuditApprovedBy    = "exception-approved-by"
	AuditReason        = "reason"
	AuditFrozenBy      = "frozen-by"
	AuditLifted        = "left-freeze-of"
)
