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

// ServiceLevelObjectiveSpec declares an objective, how to measure it, and which
// workloads it protects.
type ServiceLevelObjectiveSpec struct {
	// Description says in words what the objective promises, e.g. "successful purchase completion".
	// +optional
	// +kubebuilder:validation:MaxLength=256
	Description string `json:"description,omitempty"`

	// Target is the objective in percent of good events, at least 50 and
	// below 100, e.g. "99.9". The floor catches a fraction written for a
	// percentage ("0.999" for 99.9%): below 50 an objective would allow more
	// failed events than good ones, and no multi-window burn rule above 2x
	// could ever fire.
	// +kubebuilder:validation:XValidation:rule=`!self.matches('^-?[0-9]{1,18}([.][0-9]{1,12})?$') || double(self) < 100.0`,message=`target must be below 100: a 100% objective leaves no error budget to spend; write e.g. "99.9" or "99.99"`
	// +kubebuilder:validation:XValidation:rule=`!self.matches('^-?[0-9]{1,18}([.][0-9]{1,12})?$') || double(self) >= 50.0`,message=`target is a percentage of good events, at least 50, e.g. "99.9"`,messageExpression=`self.matches('^0?[.][0-9]+$') && double(self) >= 0.5 ? [[self.substring(self.indexOf('.') + 1)].map(d, d.size() == 1 ? d + '0' : d.size() == 2 ? d : d.substring(0, 2) + '.' + d.substring(2))[0]].map(p, 'target is a percentage, not a fraction: for ' + p + '% write "' + p + '"')[0] : 'target is a percentage of good events, at least 50, e.g. "99.9": below 50 the objective would allow more failed events than good ones'`
	// +required
	Target Decimal `json:"target"`

	// Window is the rolling window the objective is measured over, e.g. "30d", "28d" or "7d".
	// +kubebuilder:default="30d"
	// +optional
	Window Duration `json:"window,omitempty"`

	// Indicator says how to measure good and bad events in Prometheus.
	// +required
	Indicator Indicator `json:"indicator"`

	// WorkloadSelector selects the Deployments, StatefulSets and DaemonSets (and
	// Argo Rollouts, where installed) in this namespace whose releases this SLO
	// gates, by their own labels. Unset: observe only, gate nothing.
	// +optional
	WorkloadSelector *metav1.LabelSelector `json:"workloadSelector,omitempty"`

	// PolicyRef names the ErrorBudgetPolicy to apply. Unset: the policy named
	// "default" if it exists, else the built-in SRE Workbook policy.
	// +optional
	PolicyRef *PolicyReference `json:"policyRef,omitempty"`

	// Prometheus says which of the Prometheus connections the platform
	// configured for the operator measures this SLO. Unset: the connection
	// named "default".
	// +optional
	Prometheus *PrometheusSource `json:"prometheus,omitempty"`

	// Alerting turns the SLO's generated Prometheus rules (recording rules,
	// and an alert per policy rule: see docs/alerting.md) on or off, and
	// labels its alerts. Unset: as its policy says.
	// +optional
	Alerting *SLOAlerting `json:"alerting,omitempty"`

	// EvaluationInterval is how often the SLO is evaluated; at least 10s.
	// +kubebuilder:default="1m"
	// +kubebuilder:validation:XValidation:rule=`!self.matches('^[1-9][0-9]{0,5}(ms|s|m|h|d|w|y)$') || (!self.endsWith('ms') && (!self.endsWith('s') || int(self.substring(0, self.size() - 1)) >= 10))`,message=`evaluationInterval must be at least 10s, e.g. 30s or 1m`
	// +optional
	EvaluationInterval Duration `json:"evaluationInterval,omitempty"`
}

// Indicator measures the error ratio of a service. Exactly one of ratio,
// latency and query is set.
// +kubebuilder:validation:XValidation:rule="(has(self.ratio) ? 1 : 0) + (has(self.latency) ? 1 : 0) + (has(self.query) ? 1 : 0) == 1",message="exactly one of ratio, latency or query must be set"
// +kubebuilder:validation:XValidation:rule="!has(self.queryEvents) || has(self.query)",message="queryEvents goes with query; ratio and latency indicators count their events themselves"
type Indicator struct {
	// Ratio counts bad events against all events with two counter selectors.
	// +optional
	Ratio *RatioIndicator `json:"ratio,omitempty"`
	// Latency counts requests slower than a histogram bucket as bad.
	// +optional
	Latency *LatencyIndicator `json:"latency,omitempty"`
	// Query is an escape hatch: a PromQL expression of the error ratio (0..1)
	// that contains $window, e.g.
	// `sum(rate(errors[$window])) / sum(rate(requests[$window]))`.
	// +optional
	// +kubebuilder:validation:MaxLength=4096
	// +kubebuilder:validation:XValidation:rule="self.contains('$window')",message="query must contain $window where a range goes, e.g. rate(http_requests_total[$window]): budgetgate puts each window it measures there"
	Query string `json:"query,omitempty"`
	// QueryEvents, with query, is a PromQL expression of the number of events
	// over $window, e.g. `sum(increase(requests[$window]))`. Without it the
	// policy's low-traffic guard (minEvents) cannot apply to a query indicator.
	// +optional
	// +kubebuilder:validation:MaxLength=4096
	// +kubebuilder:validation:XValidation:rule="self.contains('$window')",message="queryEvents must contain $window where a range goes, e.g. increase(http_requests_total[$window]): budgetgate puts each window it measures there"
	QueryEvents string `json:"queryEvents,omitempty"`
}

// RatioIndicator: error ratio = increase(errors) ÷ increase(total) over a window.
type RatioIndicator struct {
	// Errors selects the counters of bad events, e.g. `http_requests_total{job="checkout",code=~"5.."}`.
	// +kubebuilder:validation:XValidation:rule=`self.trim() != ""`,message=`errors selects the counters of failed events, e.g. http_requests_total{job="checkout",code=~"5.."}`
	// +kubebuilder:validation:MaxLength=1024
	// +required
	Errors string `json:"errors"`
	// Total selects the counters of all events, e.g. `http_requests_total{job="checkout"}`.
	// +kubebuilder:validation:XValidation:rule=`self.trim() != ""`,message=`total selects the counters of all events, e.g. http_requests_total{job="checkout"}`
	// +kubebuilder:validation:MaxLength=1024
	// +required
	Total string `json:"total"`
}

// LatencyIndicator: error ratio = 1 − increase(success bucket) ÷ increase(total count).
type LatencyIndicator struct {
	// Success selects the histogram bucket of fast-enough requests, with an le matcher,
	// e.g. `http_request_duration_seconds_bucket{job="checkout",le="0.3"}`.
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:XValidation:rule=`self.contains('le=')`,message=`success selects the histogram bucket of fast-enough requests with an le matcher, e.g. http_request_duration_seconds_bucket{job="checkout",le="0.3"}`
	// +required
	Success string `json:"success"`
	// Total selects the matching histogram count, e.g. `http_request_duration_seconds_count{job="checkout"}`.
	// +kubebuilder:validation:XValidation:rule=`self.trim() != ""`,message=`total selects the histogram count of all requests, e.g. http_request_duration_seconds_count{job="checkout"}`
	// +kubebuilder:validation:MaxLength=1024
	// +required
	Total string `json:"total"`
}

// PolicyReference names a cluster-scoped ErrorBudgetPolicy.
type PolicyReference struct {
	// Name of the ErrorBudgetPolicy: "built-in" for the built-in policy.
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule=`!format.dns1123Subdomain().validate(self).hasValue()`,message=`not the name of an ErrorBudgetPolicy: names are lower-case letters, digits, "-" and ".", e.g. "default"`,messageExpression=`self != "" && !format.dns1123Subdomain().validate(self.lowerAscii()).hasValue() ? 'ErrorBudgetPolicy names are lower case: write "' + self.lowerAscii() + '"' : 'not the name of an ErrorBudgetPolicy: names are lower-case letters, digits, "-" and ".", e.g. "default"'`
	// +required
	Name string `json:"name"`
}

// SLOAlerting configures an SLO's generated rules.
type SLOAlerting struct {
	// Enabled: write this SLO's rules. Unset: as its policy's
	// spec.alerting.enabled says (off under the built-in policy).
	// +optional
	Enabled *bool `json:"enabled,omitempty"`

	// Labels are added to every alert of the SLO, e.g. {team: checkout} for
	// Alertmanager's routing. They cannot replace the labels budgetgate sets
	// (severity, sloth_*, budgetgate_*).
	// +kubebuilder:validation:MaxProperties=16
	// +kubebuilder:validation:XValidation:rule=`self.all(k, !(k in ['severity', 'alertname']) && !k.startsWith('sloth_') && !k.startsWith('budgetgate_'))`,message=`alerting.labels cannot set severity, alertname, sloth_* or budgetgate_* labels: budgetgate sets them`
	// +optional
	Labels map[string]string `json:"labels,omitempty"`
}

// PrometheusSource says where to query.
type PrometheusSource struct {
	// Connection names a Prometheus connection of the operator's
	// (--prometheus-connections, Helm prometheus.connections): the platform
	// decides the addresses and credentials, and which namespaces may use
	// each; an SLO only picks one. Unset: "default".
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:XValidation:rule=`!format.dns1123Label().validate(self).hasValue()`,message=`connection is the name of a Prometheus connection of the operator, lower-case letters, digits and "-", e.g. "default"; addresses are not accepted here: the platform configures them`
	// +optional
	Connection string `json:"connection,omitempty"`
}

// ServiceLevelObjectiveStatus is the result of the last evaluation. Decimals are strings.
type ServiceLevelObjectiveStatus struct {
	// ObservedGeneration is the generation the status was computed for.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Conditions: Ready, Frozen, DataAvailable, PolicyBound and, when
	// alerting is on, RulesWritten.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// LastEvaluationTime is when the SLO was last evaluated.
	// +optional
	LastEvaluationTime *metav1.Time `json:"lastEvaluationTime,omitempty"`

	// Policy is the policy in force: the name of an ErrorBudgetPolicy, or "built-in".
	// +optional
	Policy string `json:"policy,omitempty"`

	// PolicyBinding is the ErrorBudgetPolicyBinding that decided the policy
	// in force, when one selects the SLO's namespace; the PolicyBound
	// condition says how (its policy, or the SLO's policyRef it allows).
	// +optional
	PolicyBinding string `json:"policyBinding,omitempty"`

	// SLI is the good-event ratio over the SLO window, e.g. "0.99942".
	// +optional
	SLI Decimal `json:"sli,omitempty"`

	// ErrorBudget over the SLO window.
	// +optional
	ErrorBudget *ErrorBudgetStatus `json:"errorBudget,omitempty"`

	// FastBurn is the burn rate over the shortest long window of the policy's burn
	// rules, formatted for people, e.g. "15.1x".
	// +optional
	FastBurn string `json:"fastBurn,omitempty"`

	// BurnRates holds the burn rate over every window the policy uses: at
	// most the SLO window and two windows for each of a policy's 16 rules.
	// (The bound also keeps the CEL cost of its Decimal fields within what
	// the API server accepts.)
	// +listType=map
	// +listMapKey=window
	// +kubebuilder:validation:MaxItems=33
	// +optional
	BurnRates []WindowBurnRate `json:"burnRates,omitempty"`

	// Rules holds the state of every policy rule (at most 16, as a policy).
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=16
	// +optional
	Rules []RuleStatus `json:"rules,omitempty"`

	// Freeze is the freeze state. It lives in status so that it survives restarts
	// and every webhook replica reads the same truth.
	// +optional
	Freeze FreezeStatus `json:"freeze,omitempty"`

	// ConsecutiveQueryFailures counts the evaluations in a row whose Prometheus
	// queries failed; 0 after a successful one.
	// +optional
	ConsecutiveQueryFailures int32 `json:"consecutiveQueryFailures,omitempty"`

	// GatedWorkloads counts the workloads this SLO selects.
	// +optional
	GatedWorkloads int32 `json:"gatedWorkloads,omitempty"`

	// SLISource says where the last evaluation read each window: the SLO's
	// recorded series or raw queries.
	// +optional
	SLISource *SLISourceStatus `json:"sliSource,omitempty"`

	// PrometheusRule is what budgetgate wrote of the SLO's Prometheus rules,
	// while its alerting is on (condition RulesWritten).
	// +optional
	PrometheusRule *PrometheusRuleStatus `json:"prometheusRule,omitempty"`

	// Warnings about the SLO and its policy, e.g. rules that can never fire for this target.
	// +optional
	Warnings []string `json:"warnings,omitempty"`
}

// PrometheusRuleStatus says what budgetgate wrote of an SLO's Prometheus rules.
type PrometheusRuleStatus struct {
	// Name of the PrometheusRule in the SLO's namespace, owned by the SLO.
	Name string `json:"name"`
	// RecordingRules and Alerts count its rules.
	RecordingRules int32 `json:"recordingRules"`
	Alerts         int32 `json:"alerts"`
	// Hash identifies the rules written (sha256 of the PrometheusRule's
	// spec); Generation is the PrometheusRule's generation after budgetgate
	// wrote it: another generation means someone changed it, and budgetgate
	// writes it again.
	Hash       string `json:"hash"`
	Generation int64  `json:"generation"`
	// RecordingHash identifies the recording rules (the SLI expressions and
	// windows), and RecordingSince is when budgetgate first wrote them: the
	// SLO window's recorded ratio, a sum over the window, is read only once
	// it has been recorded for the whole window.
	// +optional
	RecordingHash string `json:"recordingHash,omitempty"`
	// +optional
	RecordingSince *metav1.Time `json:"recordingSince,omitempty"`
}

// SLISourceStatus says where the last evaluation read each window.
type SLISourceStatus struct {
	// Recorded lists the windows read from the SLO's recorded series, all
	// in one query.
	// +optional
	Recorded []string `json:"recorded,omitempty"`
	// Raw lists the windows measured with a raw query each.
	// +optional
	Raw []string `json:"raw,omitempty"`
	// Message says why windows were measured raw.
	// +optional
	Message string `json:"message,omitempty"`
	// Queries is the number of Prometheus queries the evaluation sent.
	Queries int32 `json:"queries"`
}

// ErrorBudgetStatus is the budget over the SLO window.
type ErrorBudgetStatus struct {
	// Remaining is the fraction of the budget left; negative once overspent.
	Remaining Decimal `json:"remaining"`
	// Consumed is the fraction of the budget spent.
	Consumed Decimal `json:"consumed"`
	// RemainingPercent is Remaining for people, e.g. "87.3%".
	RemainingPercent string `json:"remainingPercent"`
	// ExhaustedIn is how long the budget lasts if the burn rate over
	// ForecastWindow held, e.g. "1d12h"; "exhausted" once spent; "never"
	// while nothing burns. A projection: the SLO window slides, and errors
	// that leave it give budget back. Unset without data over ForecastWindow.
	// +optional
	ExhaustedIn string `json:"exhaustedIn,omitempty"`
	// ExhaustsAt is when the budget runs out at that burn.
	// +optional
	ExhaustsAt *metav1.Time `json:"exhaustsAt,omitempty"`
	// ForecastWindow is the window whose burn rate the forecast holds: the
	// shortest long window of the policy's burn-rate rules, e.g. "1h".
	// +optional
	ForecastWindow string `json:"forecastWindow,omitempty"`
}

// WindowBurnRate is the measurement over one window.
type WindowBurnRate struct {
	// Window, e.g. "1h" or "1h30m".
	Window string `json:"window"`
	// BurnRate is the error ratio ÷ the error budget; unset without data.
	// +optional
	BurnRate Decimal `json:"burnRate,omitempty"`
	// ErrorRatio is bad ÷ all events; unset without data.
	// +optional
	ErrorRatio Decimal `json:"errorRatio,omitempty"`
	// Events counted in the window, when the indicator can tell.
	// +optional
	Events Decimal `json:"events,omitempty"`
	// DataAvailable is false when the window had no data.
	DataAvailable bool `json:"dataAvailable"`
	// CarriedFrom is set when Prometheus did not answer for this window (the
	// SLO window only): the values are the last ones measured, at this time, so
	// that a slow or unreachable Prometheus cannot lift a budget freeze.
	// +optional
	CarriedFrom *metav1.Time `json:"carriedFrom,omitempty"`
}

// RuleStatus is one policy rule's last evaluation.
type RuleStatus struct {
	// Name of the rule.
	Name string `json:"name"`
	// Action of the rule: Freeze or Warn.
	Action RuleAction `json:"action"`
	// Firing is the decision in force.
	Firing bool `json:"firing"`
	// Value compared against the threshold: the lower burn rate of the rule's two
	// windows, or the remaining budget.
	// +optional
	Value Decimal `json:"value,omitempty"`
	// Threshold is the burn factor scaled to the SLO window, or the budget bound.
	Threshold Decimal `json:"threshold"`
	// Message explains the result with numbers.
	// +optional
	Message string `json:"message,omitempty"`
	// LastDataTime is the last time the rule had data for all its windows; rules
	// without data keep their decision for the policy's staleHold after it.
	// +optional
	LastDataTime *metav1.Time `json:"lastDataTime,omitempty"`
}

// FreezeStatus is the freeze state of an SLO.
type FreezeStatus struct {
	// Active is true while releases of the selected workloads are frozen.
	Active bool `json:"active"`
	// Mode of the policy: in DryRun the webhook only warns.
	// +optional
	Mode PolicyMode `json:"mode,omitempty"`
	// Since is when the freeze started.
	// +optional
	Since *metav1.Time `json:"since,omitempty"`
	// HoldUntil is the earliest time the freeze may lift.
	// +optional
	HoldUntil *metav1.Time `json:"holdUntil,omitempty"`
	// Rule is the rule holding the freeze.
	// +optional
	Rule string `json:"rule,omitempty"`
	// Reason explains the freeze with numbers.
	// +optional
	Reason string `json:"reason,omitempty"`
	// LastFiringTime is the last time a Freeze rule fired.
	// +optional
	LastFiringTime *metav1.Time `json:"lastFiringTime,omitempty"`
}

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=slo;slos,categories=budgetgate
// +kubebuilder:printcolumn:name="Target",type=string,JSONPath=`.spec.target`
// +kubebuilder:printcolumn:name="Window",type=string,JSONPath=`.spec.window`
// +kubebuilder:printcolumn:name="Budget left",type=string,JSONPath=`.status.errorBudget.remainingPercent`
// +kubebuilder:printcolumn:name="Exhausted in",type=string,JSONPath=`.status.errorBudget.exhaustedIn`
// +kubebuilder:printcolumn:name="Fast burn",type=string,JSONPath=`.status.fastBurn`
// +kubebuilder:printcolumn:name="Frozen",type=boolean,JSONPath=`.status.freeze.active`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`,priority=1
// +kubebuilder:printcolumn:name="Policy",type=string,JSONPath=`.status.policy`,priority=1
// +kubebuilder:printcolumn:name="Binding",type=string,JSONPath=`.status.policyBinding`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`

// ServiceLevelObjective declares an objective for a service, measured in
// Prometheus; when its error budget burns too fast, releases of the workloads it
// selects are frozen.
type ServiceLevelObjective struct {
	metav1.TypeMeta `json:",inline"`

	// +optional
	metav1.ObjectMeta `json:"metadata,omitzero"`

	// +required
	Spec ServiceLevelObjectiveSpec `json:"spec"`

	// +optional
	Status ServiceLevelObjectiveStatus `json:"status,omitzero"`
}

// +kubebuilder:object:root=true

// ServiceLevelObjectiveList contains a list of ServiceLevelObjective.
type ServiceLevelObjectiveList struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ListMeta `json:"metadata,omitzero"`
	Items           []ServiceLevelObjective `json:"items"`
}

func init() {
	SchemeBuilder.Register(func(s *runtime.Scheme) error {
		s.AddKnownTypes(SchemeGroupVersion, &ServiceLevelObjective{}, &ServiceLevelObjectiveList{})
		return nil
	})
}
