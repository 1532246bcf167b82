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

// FreezeExceptionSpec is a break-glass permission to release selected workloads
// during a freeze, until it expires.
// +kubebuilder:validation:XValidation:rule="has(self.workloadSelector) || (has(self.workloads) && size(self.workloads) > 0)",fieldPath=`.workloads`,message=`list the workloads the exception covers, e.g. [{kind: Deployment, name: checkout}], or select them with workloadSelector`
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.requestedBy) || (has(self.requestedBy) && self.requestedBy == oldSelf.requestedBy)",message="requestedBy is set by budgetgate when the exception is created and cannot change"
// +kubebuilder:validation:XValidation:rule="has(self.approvedBy) == has(self.approvedAt)",message="approvedBy and approvedAt are set together, by budgetgate, when someone approves"
type FreezeExceptionSpec struct {
	// WorkloadSelector selects the workloads in this namespace the exception covers.
	// +optional
	WorkloadSelector *metav1.LabelSelector `json:"workloadSelector,omitempty"`

	// Workloads names the workloads in this namespace the exception covers.
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=32
	// +optional
	Workloads []WorkloadReference `json:"workloads,omitempty"`

	// Reason says why releasing during the freeze is needed; it is recorded with every use.
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:XValidation:rule=`size(self.trim()) >= 10`,message=`reason says why the release cannot wait for the freeze to lift, in 10 characters or more, e.g. "Roll back the payment client (INC-4821)"`
	// +required
	Reason string `json:"reason"`

	// ExpiresAt is when the exception stops applying; at most the policy's
	// maxExceptionDuration after its creation.
	// +required
	ExpiresAt metav1.Time `json:"expiresAt"`

	// RequestedBy is the user who created the exception, as the API server
	// authenticated them. budgetgate's admission webhook sets it on creation
	// (whatever the manifest says) and it never changes.
	// +optional
	// +kubebuilder:validation:MaxLength=512
	RequestedBy string `json:"requestedBy,omitempty"`

	// ApprovedBy is the user who approved the exception, for policies with
	// requireExceptionApproval. Approve with
	// `kubectl annotate fex NAME budgetgate.dev/approve=true`: budgetgate's
	// webhook records who you are, checks that you may "approve"
	// freezeexceptions here and that you are not the requester. A change of
	// what the exception covers or of its expiry clears the approval.
	// +optional
	// +kubebuilder:validation:MaxLength=512
	ApprovedBy string `json:"approvedBy,omitempty"`

	// ApprovedAt is when ApprovedBy approved.
	// +optional
	ApprovedAt *metav1.Time `json:"approvedAt,omitempty"`
}

// WorkloadReference names a workload in the exception's namespace.
type WorkloadReference struct {
	// Kind: Deployment, StatefulSet, DaemonSet or Rollout (Argo Rollouts).
	// +kubebuilder:validation:Enum=Deployment;StatefulSet;DaemonSet;Rollout
	// +required
	Kind string `json:"kind"`
	// Name of the workload.
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule=`!format.dns1123Subdomain().validate(self).hasValue()`,message=`not the name of a workload: names are lower-case letters, digits, "-" and ".", e.g. "checkout"`,messageExpression=`self != "" && !format.dns1123Subdomain().validate(self.lowerAscii()).hasValue() ? 'workload names are lower case: write "' + self.lowerAscii() + '"' : 'not the name of a workload: names are lower-case letters, digits, "-" and ".", e.g. "checkout"'`
	// +required
	Name string `json:"name"`
}

// FreezeExceptionStatus says whether the exception applies, and how often it was used.
type FreezeExceptionStatus struct {
	// ObservedGeneration is the generation last validated.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Conditions: Valid and Active.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// Active is true while the exception is valid and not expired.
	// +optional
	Active bool `json:"active,omitempty"`
	// Uses counts the releases admitted under this exception.
	// +optional
	Uses int64 `json:"uses,omitempty"`
	// LastUsedTime is when a release was last admitted under this exception.
	// +optional
	LastUsedTime *metav1.Time `json:"lastUsedTime,omitempty"`
}

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=fex,categories=budgetgate
// +kubebuilder:printcolumn:name="Active",type=boolean,JSONPath=`.status.active`
// +kubebuilder:printcolumn:name="Expires",type=string,JSONPath=`.spec.expiresAt`
// +kubebuilder:printcolumn:name="Uses",type=integer,JSONPath=`.status.uses`
// +kubebuilder:printcolumn:name="Requester",type=string,JSONPath=`.spec.requestedBy`,priority=1
// +kubebuilder:printcolumn:name="Approver",type=string,JSONPath=`.spec.approvedBy`,priority=1
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.spec.reason`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`

// FreezeException lets selected workloads release during a freeze until it expires.
type FreezeException struct {
	metav1.TypeMeta `json:",inline"`

	// +optional
	metav1.ObjectMeta `json:"metadata,omitzero"`

	// +required
	Spec FreezeExceptionSpec `json:"spec"`

	// +optional
	Status FreezeExceptionStatus `json:"status,omitzero"`
}

// +kubebuilder:object:root=true

// FreezeExceptionList contains a list of FreezeException.
type FreezeExceptionList struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ListMeta `json:"metadata,omitzero"`
	Items           []FreezeException `json:"items"`
}

func init() {
	SchemeBuilder.Register(func(s *runtime.Scheme) error {
		s.AddKnownTypes(SchemeGroupVersion, &FreezeException{}, &FreezeExceptionList{})
		return nil
	})
}
