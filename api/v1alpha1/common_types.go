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
// server compare windows with CEL. A value that is not one says what to write
// instead: "1h30m" → 90m, "1.5h" → 90m, "030m" → 30m, "30D" or "30 days" → 30d.
// At most 6 digits (999999s is about 11.6 days; use a larger unit beyond).
// +kubebuilder:validation:MaxLength=16
// +kubebuilder:validation:XValidation:rule=`self.matches('^[1-9][0-9]{0,5}(ms|s|m|h|d|w|y)$')`,message=`not a duration: write a whole number and one unit (ms, s, m, h, d, w or y), e.g. 5m, 1h or 30d`,messageExpression=`[self.matches('^([0-9]{1,6}y)?([0-9]{1,6}w)?([0-9]{1,6}d)?([0-9]{1,6}h)?([0-9]{1,6}m)?([0-9]{1,6}s)?([0-9]{1,6}ms)?$') ? (self.find('[0-9]+y') == "" ? 0 : int(self.find('[0-9]+y').find('^[0-9]+')) * 31536000000) + (self.find('[0-9]+w') == "" ? 0 : int(self.find('[0-9]+w').find('^[0-9]+')) * 604800000) + (self.find('[0-9]+d') == "" ? 0 : int(self.find('[0-9]+d').find('^[0-9]+')) * 86400000) + (self.find('[0-9]+h') == "" ? 0 : int(self.find('[0-9]+h').find('^[0-9]+')) * 3600000) + (self.find('[0-9]+m([0-9]|$)') == "" ? 0 : int(self.find('[0-9]+m([0-9]|$)').find('^[0-9]+')) * 60000) + (self.find('[0-9]+s') == "" ? 0 : int(self.find('[0-9]+s').find('^[0-9]+')) * 1000) + (self.find('[0-9]+ms') == "" ? 0 : int(self.find('[0-9]+ms').find('^[0-9]+')) * 1) : self.matches('^[0-9]{1,6}[.][0-9]{1,6}(ms|s|m|h|d|w|y)$') ? int(double(self.find('^[0-9.]+')) * (self.endsWith('ms') ? 1.0 : self.endsWith('y') ? 31536000000.0 : self.endsWith('w') ? 604800000.0 : self.endsWith('d') ? 86400000.0 : self.endsWith('h') ? 3600000.0 : self.endsWith('m') ? 60000.0 : 1000.0) + 0.5) : -1].map(t, t > 0 ? '%s: write %s%s'.format([self.contains('.') ? 'not a whole number of one unit' : self.matches('^[0-9]+(ms|[ywdhms])$') ? 'no leading zeros' : 'not a single-unit duration', string(t % 31536000000 == 0 ? t / 31536000000 : t % 604800000 == 0 ? t / 604800000 : t % 86400000 == 0 ? t / 86400000 : t % 3600000 == 0 ? t / 3600000 : t % 60000 == 0 ? t / 60000 : t % 1000 == 0 ? t / 1000 : t), t % 31536000000 == 0 ? 'y' : t % 604800000 == 0 ? 'w' : t % 86400000 == 0 ? 'd' : t % 3600000 == 0 ? 'h' : t % 60000 == 0 ? 'm' : t % 1000 == 0 ? 's' : 'ms']) : self == "" ? 'empty: write a duration such as 30d, 1h or 5m' : self.matches('^0+(ms|s|m|h|d|w|y)?$') ? 'must be above zero, e.g. 5m' : self.matches('^[0-9]{1,6}$') ? 'no unit: write e.g. %ss, %sm, %sh or %sd'.format([string(int(self)), string(int(self)), string(int(self)), string(int(self))]) : self.lowerAscii().matches('^[0-9]{1,6} ?(ms|s|m|h|d|w|y|milliseconds?|seconds?|secs?|minutes?|mins?|hours?|hrs?|days?|weeks?|years?)$') ? [self.lowerAscii().find('[a-z]+')].map(u, 'units are ms, s, m, h, d, w and y: write %s%s'.format([string(int(self.find('[0-9]+'))), u == 'ms' || u.startsWith('milli') ? 'ms' : u.startsWith('mi') ? 'm' : u.substring(0, 1)]))[0] : 'not a duration: write a whole number and one unit (ms, s, m, h, d, w or y), e.g. 5m, 1h or 30d')[0]`
type Duration string

// Decimal is a decimal number written as a string, e.g. "99.9" or "0.02":
// at most 18 digits before the decimal point and 12 after it. CRDs carry no
// floats; the controller parses decimals with strconv.ParseFloat. A value
// with a % sign, an x (as in "14.4x") or a decimal comma is answered with the
// number to write instead.
// +kubebuilder:validation:MaxLength=32
// +kubebuilder:validation:XValidation:rule=`self.matches('^-?[0-9]{1,18}([.][0-9]{1,12})?$')`,message=`not a decimal number: write digits with an optional decimal point, in quotes, e.g. "99.9" or "0.05"`,messageExpression=`[self.trim()].map(s, s.endsWith('%') && s.substring(0, s.size() - 1).trim().matches('^-?[0-9]{1,18}([.][0-9]{1,12})?$') ? 'write the number without the % sign: "' + s.substring(0, s.size() - 1).trim() + '"' : s.lowerAscii().endsWith('x') && s.substring(0, s.size() - 1).trim().matches('^-?[0-9]{1,18}([.][0-9]{1,12})?$') ? 'write the number without the x: "' + s.substring(0, s.size() - 1).trim() + '"' : s.replace(',', '.').matches('^-?[0-9]{1,18}([.][0-9]{1,12})?$') ? 'write a decimal point, not a comma: "' + s.replace(',', '.') + '"' : s.matches('^-?[0-9]{1,18}([.][0-9]{1,12})?$') ? 'no spaces: write "' + s + '"' : s.matches('^-?[0-9]+([.][0-9]+)?$') ? 'too many digits: at most 18 before the decimal point and 12 after it' : 'not a decimal number: write digits with an optional decimal point, in quotes, e.g. "99.9" or "0.05"')[0]`
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
	// ConditionPolicyBound is True when an ErrorBudgetPolicyBinding decides
	// the SLO's policy (reasons PolicyBound, PolicyRefAllowed,
	// PolicyRefNotAllowed), False when none selects its namespace (NotBound).
	ConditionPolicyBound = "PolicyBound"
	// ConditionRulesWritten is True when the SLO's PrometheusRule holds its
	// current rules (reason RulesWritten), False when alerting is on but they
	// could not be written (PrometheusRuleCRDMissing, RulesFailed); absent
	// while alerting is off.
	ConditionRulesWritten = "RulesWritten"
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
	// ReasonPolicyBound: the SLO uses its binding's policy.
	ReasonPolicyBound = "PolicyBound"
	// ReasonPolicyRefAllowed: the SLO uses the policy its policyRef names,
	// which its binding allows.
	ReasonPolicyRefAllowed = "PolicyRefAllowed"
	// ReasonPolicyRefNotAllowed: the SLO's policyRef names a policy its
	// binding does not allow, so the binding's policy applies instead.
	ReasonPolicyRefNotAllowed = "PolicyRefNotAllowed"
	// ReasonNotBound: no binding selects the SLO's namespace.
	ReasonNotBound = "NotBound"
	// ReasonInvalidBinding: the binding that selects the namespace cannot be used.
	ReasonInvalidBinding = "InvalidBinding"
	// ReasonRulesWritten: the PrometheusRule holds the SLO's current rules.
	ReasonRulesWritten = "RulesWritten"
	// ReasonPrometheusRuleCRDMissing: alerting is on, but the cluster does not
	// serve monitoring.coreos.com/v1 PrometheusRules.
	ReasonPrometheusRuleCRDMissing = "PrometheusRuleCRDMissing"
	// ReasonRulesFailed: the rules could not be generated or written.
	ReasonRulesFailed = "RulesFailed"
)
