/*
Copyright 2026.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package v1alpha1

// Duration is a Prometheus-style duration with a single unit, e.g. "5m", "1h",
// "30d", "4w". Single-unit durations keep manifests readable and let the API
// server compare windows with CEL.
// +kubebuilder:validation:Pattern=`^[1-9][0-9]{0,5}(ms|s|m|h|d|w|y)$`
// +kubebuilder:validation:MaxLength=8
type Duration string

// Decimal is a decimal number written as a string, e.g. "99.9" or "0.02".
// CRDs carry no floats; the controller parses decimals with strconv.ParseFloat.
// +kubebuilder:validation:Pattern=`^-?[0-9]{1,18}(\.[0-9]{1,12})?$`
// +kubebuilder:validation:MaxLength=32
type Decimal string

// Annotation and label keys shared by the operator, the webhook and users.
const (
	// AnnotationPrefix prefixes every annotation budgetgate reads or writes.
	AnnotationPrefix = "budgetgate.dev/"
	// ReleaseClassAnnotation, on a pod template, claims a release class such as "hotfix".
	ReleaseClassAnnotation = AnnotationPrefix + "release-class"
	// FrozenAnnotation marks a workload whose releases are frozen ("true").
	FrozenAnnotation = AnnotationPrefix + "frozen"
	// FrozenByAnnotation lists the SLOs freezing a workload, comma-separated.
	FrozenByAnnotation = AnnotationPrefix + "frozen-by"
	// FrozenSinceAnnotation is when the earliest current freeze of a workload started (RFC 3339).
	FrozenSinceAnnotation = AnnotationPrefix + "frozen-since"
	// ReleaseReasonAnnotation, on a pod template, says why this release claims
	// its release class (an incident or ticket). A class already on the
	// template counts again only when this changes with the release.
	ReleaseReasonAnnotation = AnnotationPrefix + "release-reason"
	// ApproveAnnotation, set on a FreezeException by `kubectl annotate`, asks
	// budgetgate to record the requester as its approver.
	ApproveAnnotation = AnnotationPrefix + "approve"

	// SLOFinalizer lets the operator remove a deleted SLO's freeze marks from
	// the workloads it selected.
	SLOFinalizer = "slo.budgetgate.dev/freeze-marks"
	// ExceptionFinalizer keeps a deleted FreezeException during the freeze it
	// was used in, so that deleting and re-creating it cannot restart its
	// break-glass clock.
	ExceptionFinalizer = "slo.budgetgate.dev/break-glass-record"
)

// Custom RBAC verbs on budgetgate's kinds (the Gardener-style pattern: a verb no
// built-in role grants, checked with a SubjectAccessReview).
const (
	// VerbReleaseDuringFreeze on servicelevelobjectives lets a claimed exempt
	// release class through a freeze.
	VerbReleaseDuringFreeze = "release-during-freeze"
	// VerbLiftFreeze on servicelevelobjectives lets a user change what a frozen
	// SLO measures or gates, delete it, or relabel a workload out of its freeze.
	VerbLiftFreeze = "lift-freeze"
	// VerbApprove on freezeexceptions lets a user approve another user's
	// FreezeException under a policy with requireExceptionApproval.
	VerbApprove = "approve"
)

// Condition types.
const (
	// ConditionReady is True when the last evaluation completed with a valid spec and policy.
	ConditionReady = "Ready"
	// ConditionFrozen is True while the SLO freezes releases of its workloads.
	ConditionFrozen = "Frozen"
	// ConditionDataAvailable is True when the SLI source answered for every window.
	ConditionDataAvailable = "DataAvailable"
	// ConditionValid is True when a policy or an exception is valid.
	ConditionValid = "Valid"
	// ConditionActive is True while a FreezeException is in force.
	ConditionActive = "Active"
)

// Condition reasons.
const (
	ReasonEvaluated         = "Evaluated"
	ReasonInvalidSpec       = "InvalidSpec"
	ReasonPolicyNotFound    = "PolicyNotFound"
	ReasonInvalidPolicy     = "InvalidPolicy"
	ReasonBudgetBurning     = "BudgetBurning"
	ReasonWithinBudget      = "WithinBudget"
	ReasonDryRun            = "DryRun"
	ReasonHeldWithoutData   = "HeldWithoutData"
	ReasonQueryFailed       = "QueryFailed"
	ReasonNoData            = "NoData"
	ReasonPartialData       = "PartialData"
	ReasonAllWindowsPresent = "AllWindowsPresent"
	ReasonValid             = "Valid"
	ReasonInvalid           = "Invalid"
	ReasonExpired           = "Expired"
	ReasonInForce           = "InForce"
	ReasonNotYetEvaluated   = "NotYetEvaluated"
)
