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

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// PolicyMode says whether a policy enforces freezes or only reports them.
// +kubebuilder:validation:Enum=Enforce;DryRun
type PolicyMode string

const (
	// ModeEnforce denies gated releases during a freeze.
	ModeEnforce PolicyMode = "Enforce"
	// ModeDryRun admits them with a warning, an Event and a would-deny metric.
	ModeDryRun PolicyMode = "DryRun"
)

// RuleAction is what a firing rule does.
// +kubebuilder:validation:Enum=Freeze;Warn
type RuleAction string

const (
	// ActionFreeze freezes releases while the rule fires.
	ActionFreeze RuleAction = "Freeze"
	// ActionWarn only reports the rule in status and metrics.
	ActionWarn RuleAction = "Warn"
)

// MissingDataAction is what a rule does once its data has been missing for staleHold.
// +kubebuilder:validation:Enum=Release;Hold
type MissingDataAction string

const (
	// MissingDataRelease stops counting a rule without data as firing.
	MissingDataRelease MissingDataAction = "Release"
	// MissingDataHold keeps the last decision of a rule without data until data returns.
	MissingDataHold MissingDataAction = "Hold"
)

// DefaultPolicyName is the policy SLOs without a policyRef use when it exists.
const DefaultPolicyName = "default"

// BuiltInPolicyName is reported in SLO status when no ErrorBudgetPolicy applies.
const BuiltInPolicyName = "built-in"

// ErrorBudgetPolicySpec says when to freeze, for how long, and who may still release.
// +kubebuilder:validation:XValidation:rule=`!has(self.alerting) || !has(self.alerting.severities) || self.alerting.severities.all(k, self.rules.exists(r, r.name == k))`,message=`alerting.severities names a rule this policy does not have: its keys are the names in rules`
type ErrorBudgetPolicySpec struct {
	// Mode: Enforce denies gated releases during a freeze; DryRun admits them
	// with a warning.
	// +kubebuilder:default=Enforce
	// +optional
	Mode PolicyMode `json:"mode,omitempty"`

	// Rules are evaluated together: a rule fires when its condition holds (for
	// burn rules: over both of its windows); the SLO freezes while any Freeze rule fires.
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:XValidation:rule=`size(self) > 0`,message=`a policy needs at least one rule, e.g. {name: budget-exhausted, budgetRemainingBelow: "0"}`
	// +required
	Rules []PolicyRule `json:"rules"`

	// Freeze says how long freezes hold and when they lift.
	// +kubebuilder:default={}
	// +optional
	Freeze FreezeSettings `json:"freeze,omitempty,omitzero"`

	// ExemptReleaseClasses are the release classes (pod template annotation
	// budgetgate.dev/release-class) that may release during a freeze, if the
	// requester may "release-during-freeze" servicelevelobjectives in the namespace.
	// +kubebuilder:default={hotfix,security}
	// +listType=set
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MaxLength=63
	// +optional
	ExemptReleaseClasses []string `json:"exemptReleaseClasses,omitempty"`

	// OnMissingData is what a rule without data does after staleHold: Release
	// (stop counting it as firing) or Hold (keep its last decision).
	// +kubebuilder:default=Release
	// +optional
	OnMissingData MissingDataAction `json:"onMissingData,omitempty"`

	// StaleHold is how long a rule without data keeps its last decision.
	// +kubebuilder:default="30m"
	// +optional
	StaleHold Duration `json:"staleHold,omitempty"`

	// MinEvents: a window with fewer events than this has no data (low-traffic
	// guard). Unset: the fewest events for which one bad event alone cannot
	// reach the lowest burn threshold of the policy's Freeze rules (167 at
	// 99.9% under the built-in policy). 0 disables the guard.
	// +kubebuilder:validation:XValidation:rule=`self >= 0`,message=`minEvents must be 0 or more: 0 turns the low-traffic guard off; leave minEvents out for the automatic guard`
	// +optional
	MinEvents *int64 `json:"minEvents,omitempty"`

	// MaxExceptionDuration bounds how far in the future a FreezeException may expire.
	// +kubebuilder:default="24h"
	// +optional
	MaxExceptionDuration Duration `json:"maxExceptionDuration,omitempty"`

	// RequireExceptionApproval: a FreezeException is honoured for the SLOs
	// under this policy only once a second person, who may "approve"
	// freezeexceptions in the namespace, has approved it.
	// +optional
	RequireExceptionApproval bool `json:"requireExceptionApproval,omitempty"`

	// Alerting says whether the SLOs under this policy get their Prometheus
	// recording and alert rules written (a PrometheusRule per SLO, where the
	// Prometheus Operator's CRD is installed), and at which severities the
	// rules alert. An SLO may turn it on or off for itself
	// (spec.alerting.enabled).
	// +optional
	Alerting *PolicyAlerting `json:"alerting,omitempty"`
}

// PolicyAlerting configures the alerts generated from a policy's rules.
type PolicyAlerting struct {
	// Enabled: write the rules of every SLO under this policy. Default false.
	// +optional
	Enabled bool `json:"enabled,omitempty"`

	// Severities maps a rule's name to the severity label of its alert.
	// Rules not named here page ("page") when they freeze and open a ticket
	// ("ticket") when they warn.
	// +kubebuilder:validation:MaxProperties=16
	// +optional
	Severities map[string]Severity `json:"severities,omitempty"`
}

// Severity is the value of an alert's severity label, e.g. page, ticket or critical.
// +kubebuilder:validation:MaxLength=63
// +kubebuilder:validation:Pattern=`^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$`
type Severity string

// PolicyRule is one rule: exactly one of burnRate and budgetRemainingBelow.
// +kubebuilder:validation:XValidation:rule="has(self.burnRate) != has(self.budgetRemainingBelow)",message="a rule has exactly one of burnRate or budgetRemainingBelow"
type PolicyRule struct {
	// Name identifies the rule in status, messages and metrics: lower-case
	// letters, digits and "-" (a DNS label).
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:XValidation:rule=`self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')`,message=`rule names are lower-case letters, digits and "-", e.g. "fast-burn"`,messageExpression=`[self.lowerAscii().replace('_', '-').replace(' ', '-').replace('.', '-')].map(n, n.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$') ? 'rule names are lower-case letters, digits and "-": write "' + n + '"' : 'rule names are lower-case letters, digits and "-", starting and ending with a letter or digit, e.g. "fast-burn"')[0]`
	// +required
	Name string `json:"name"`

	// BurnRate fires when the burn rate is at or above the threshold over both windows.
	// +optional
	BurnRate *BurnRateCondition `json:"burnRate,omitempty"`

	// BudgetRemainingBelow fires when the remaining fraction of the error budget
	// is at or below this value; "0" means the budget is exhausted. A
	// fraction below 1: at 1 or more the rule would always fire.
	// +kubebuilder:validation:XValidation:rule=`!self.matches('^-?[0-9]{1,18}([.][0-9]{1,12})?$') || double(self) < 1.0`,message=`budgetRemainingBelow is a fraction of the budget below 1, e.g. "0" (spent) or "0.1" (10% left)`,messageExpression=`self.matches('^[0-9]{1,2}$') ? 'budgetRemainingBelow is a fraction of the budget, not a percentage: for ' + self + '% write "' + (self.size() == 1 ? '0.0' + self : self.endsWith('0') ? '0.' + self.substring(0, 1) : '0.' + self) + '"' : 'budgetRemainingBelow is a fraction of the budget below 1, e.g. "0.1" for 10%'`
	// +optional
	BudgetRemainingBelow *Decimal `json:"budgetRemainingBelow,omitempty"`

	// Action: Freeze or Warn.
	// +kubebuilder:default=Freeze
	// +optional
	Action RuleAction `json:"action,omitempty"`
}

// BurnRateCondition is a multi-window burn-rate condition. The threshold is
// either an explicit factor or a share of the budget, which budgetgate scales to
// the SLO window (budgetPercent × SLO window ÷ longWindow): 2% over 1h is 14.4x
// for a 30d SLO and 3.36x for a 7d one.
// +kubebuilder:validation:XValidation:rule="has(self.factor) != has(self.budgetPercent)",message="set exactly one of factor or budgetPercent"
// +kubebuilder:validation:XValidation:rule=`!self.shortWindow.matches('^[1-9][0-9]{0,5}(ms|s|m|h|d|w|y)$') || !self.longWindow.matches('^[1-9][0-9]{0,5}(ms|s|m|h|d|w|y)$') || int(self.shortWindow.substring(0, self.shortWindow.size() - (self.shortWindow.endsWith('ms') ? 2 : 1))) * (self.shortWindow.endsWith('ms') ? 1 : self.shortWindow.endsWith('s') ? 1000 : self.shortWindow.endsWith('m') ? 60000 : self.shortWindow.endsWith('h') ? 3600000 : self.shortWindow.endsWith('d') ? 86400000 : self.shortWindow.endsWith('w') ? 604800000 : 31536000000) < int(self.longWindow.substring(0, self.longWindow.size() - (self.longWindow.endsWith('ms') ? 2 : 1))) * (self.longWindow.endsWith('ms') ? 1 : self.longWindow.endsWith('s') ? 1000 : self.longWindow.endsWith('m') ? 60000 : self.longWindow.endsWith('h') ? 3600000 : self.longWindow.endsWith('d') ? 86400000 : self.longWindow.endsWith('w') ? 604800000 : 31536000000)`,fieldPath=`.shortWindow`,message=`shortWindow must be shorter than longWindow`,messageExpression=`int(self.shortWindow.substring(0, self.shortWindow.size() - (self.shortWindow.endsWith('ms') ? 2 : 1))) * (self.shortWindow.endsWith('ms') ? 1 : self.shortWindow.endsWith('s') ? 1000 : self.shortWindow.endsWith('m') ? 60000 : self.shortWindow.endsWith('h') ? 3600000 : self.shortWindow.endsWith('d') ? 86400000 : self.shortWindow.endsWith('w') ? 604800000 : 31536000000) > int(self.longWindow.substring(0, self.longWindow.size() - (self.longWindow.endsWith('ms') ? 2 : 1))) * (self.longWindow.endsWith('ms') ? 1 : self.longWindow.endsWith('s') ? 1000 : self.longWindow.endsWith('m') ? 60000 : self.longWindow.endsWith('h') ? 3600000 : self.longWindow.endsWith('d') ? 86400000 : self.longWindow.endsWith('w') ? 604800000 : 31536000000) ? 'shortWindow ' + self.shortWindow + ' is longer than longWindow ' + self.longWindow + ': swap them' : 'shortWindow must be shorter than longWindow ' + self.longWindow + ': about a twelfth of it, e.g. 5m with 1h'`
type BurnRateCondition struct {
	// LongWindow, e.g. "1h".
	// +required
	LongWindow Duration `json:"longWindow"`
	// ShortWindow, e.g. "5m"; it makes the rule stop firing soon after the burn stops.
	// +required
	ShortWindow Duration `json:"shortWindow"`
	// Factor is the burn-rate threshold, e.g. "14.4".
	// +kubebuilder:validation:XValidation:rule=`!self.matches('^-?[0-9]{1,18}([.][0-9]{1,12})?$') || double(self) > 0.0`,message=`factor must be above 0: the burn rate at which the rule fires, e.g. "14.4"`
	// +optional
	Factor *Decimal `json:"factor,omitempty"`
	// BudgetPercent is the percentage of the whole budget that burning at the
	// threshold for longWindow consumes, e.g. "2".
	// +kubebuilder:validation:XValidation:rule=`!self.matches('^-?[0-9]{1,18}([.][0-9]{1,12})?$') || (double(self) > 0.0 && double(self) <= 100.0)`,message=`budgetPercent must be above 0 and at most 100: the percentage of the whole error budget that burning at the threshold for longWindow spends, e.g. "2"`
	// +optional
	BudgetPercent *Decimal `json:"budgetPercent,omitempty"`
}

// FreezeSettings say how long freezes hold and when they lift.
type FreezeSettings struct {
	// MinDuration: a freeze holds at least this long, and a burn freeze lifts
	// only when no Freeze rule has fired for this long.
	// +kubebuilder:default="1h"
	// +optional
	MinDuration Duration `json:"minDuration,omitempty"`
	// ReleaseWhen is the hysteresis of budget freezes.
	// +kubebuilder:default={}
	// +optional
	ReleaseWhen ReleaseWhen `json:"releaseWhen,omitempty,omitzero"`
}

// ReleaseWhen is the hysteresis of budget freezes.
type ReleaseWhen struct {
	// BudgetRemainingAbove: a budgetRemainingBelow Freeze rule that fired keeps
	// firing until the remaining budget fraction is above this margin
	// (hysteresis), so a budget hovering at its bound freezes once instead of
	// with every wobble. It never holds a freeze no budget rule joined. A
	// fraction below 1: at 1 or more a budget freeze could never lift.
	// +kubebuilder:default="0.05"
	// +kubebuilder:validation:XValidation:rule=`!self.matches('^-?[0-9]{1,18}([.][0-9]{1,12})?$') || double(self) < 1.0`,message=`budgetRemainingAbove is a fraction of the budget below 1, e.g. "0.05" for 5% back`,messageExpression=`self.matches('^[0-9]{1,2}$') ? 'budgetRemainingAbove is a fraction of the budget, not a percentage: for ' + self + '% write "' + (self.size() == 1 ? '0.0' + self : self.endsWith('0') ? '0.' + self.substring(0, 1) : '0.' + self) + '"' : 'budgetRemainingAbove is a fraction of the budget below 1, e.g. "0.1" for 10%'`
	// +optional
	BudgetRemainingAbove Decimal `json:"budgetRemainingAbove,omitempty"`
}

// ErrorBudgetPolicyStatus reports whether the policy is valid and who uses it.
type ErrorBudgetPolicyStatus struct {
	// ObservedGeneration is the generation last validated.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Conditions: Valid.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// ServiceLevelObjectives counts the SLOs using this policy.
	// +optional
	ServiceLevelObjectives int32 `json:"serviceLevelObjectives,omitempty"`
}

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=ebp,categories=budgetgate
// +kubebuilder:printcolumn:name="Mode",type=string,JSONPath=`.spec.mode`
// +kubebuilder:printcolumn:name="Valid",type=string,JSONPath=`.status.conditions[?(@.type=="Valid")].status`
// +kubebuilder:printcolumn:name="SLOs",type=integer,JSONPath=`.status.serviceLevelObjectives`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`

// ErrorBudgetPolicy says when SLOs freeze releases and who may still release.
// The name "built-in" is reserved for budgetgate's built-in policy: the
// validating webhook rejects it (CEL on metadata.name could only report the
// field as <nil>).
type ErrorBudgetPolicy struct {
	metav1.TypeMeta `json:",inline"`

	// +optional
	metav1.ObjectMeta `json:"metadata,omitzero"`

	// +required
	Spec ErrorBudgetPolicySpec `json:"spec"`

	// +optional
	Status ErrorBudgetPolicyStatus `json:"status,omitzero"`
}

// +kubebuilder:object:root=true

// ErrorBudgetPolicyList contains a list of ErrorBudgetPolicy.
type ErrorBudgetPolicyList struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ListMeta `json:"metadata,omitzero"`
	Items           []ErrorBudgetPolicy `json:"items"`
}

func init() {
	SchemeBuilder.Register(func(s *runtime.Scheme) error {
		s.AddKnownTypes(SchemeGroupVersion, &ErrorBudgetPolicy{}, &ErrorBudgetPolicyList{})
		return nil
	})
}
