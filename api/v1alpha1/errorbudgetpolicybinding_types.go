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

// OverrideMode says which policyRef an SLO in a bound namespace may write.
// +kubebuilder:validation:Enum=None;Stricter;Any
type OverrideMode string

const (
	// OverrideNone: SLOs use the binding's policy; a policyRef may only name it.
	OverrideNone OverrideMode = "None"
	// OverrideStricter: a policyRef may name a policy at least as strict as the
	// binding's (see docs/api.md, "Stricter"); without one the binding's applies.
	OverrideStricter OverrideMode = "Stricter"
	// OverrideAny: a policyRef may name any policy; without one the binding's applies.
	OverrideAny OverrideMode = "Any"
)

// ErrorBudgetPolicyBindingSpec binds a policy to the namespaces a selector matches.
type ErrorBudgetPolicyBindingSpec struct {
	// NamespaceSelector selects the namespaces, by their labels, whose SLOs
	// this binding governs. {} selects every namespace (a cluster-wide
	// binding, e.g. the audit-first DryRun start).
	// +kubebuilder:validation:XValidation:rule=`!has(self.matchExpressions) || self.matchExpressions.all(e, e.operator in ['In', 'NotIn', 'Exists', 'DoesNotExist'])`,message=`matchExpressions operators are In, NotIn, Exists and DoesNotExist`
	// +kubebuilder:validation:XValidation:rule=`!has(self.matchExpressions) || self.matchExpressions.all(e, e.operator in ['Exists', 'DoesNotExist'] ? !has(e.values) || size(e.values) == 0 : has(e.values) && size(e.values) > 0)`,message=`In and NotIn need values; Exists and DoesNotExist take none`
	// +required
	NamespaceSelector metav1.LabelSelector `json:"namespaceSelector"`

	// PolicyRef names the ErrorBudgetPolicy of the SLOs in those namespaces
	// ("built-in" for the built-in policy): the policy of SLOs without a
	// policyRef, and the bound that allowOverride holds their policyRef to.
	// +required
	PolicyRef PolicyReference `json:"policyRef"`

	// AllowOverride says which policyRef SLOs in those namespaces may write:
	// None (only the binding's policy), Stricter (a policy at least as strict
	// as the binding's) or Any. An SLO whose policyRef the binding does not
	// allow is rejected when it is written; one written before the binding is
	// evaluated against the binding's policy, and its status says so.
	// +kubebuilder:default=None
	// +optional
	AllowOverride OverrideMode `json:"allowOverride,omitempty"`

	// Priority decides between bindings that select the same namespace: the
	// highest applies; among equal priorities, the binding whose name sorts
	// first. Give a narrower binding a higher priority than a cluster-wide
	// one, e.g. 10 for "enforce in the namespaces labelled for it" over 0 for
	// "audit everywhere".
	// +kubebuilder:default=0
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=1000
	// +optional
	Priority int32 `json:"priority,omitempty"`
}

// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,shortName=ebpb,categories=budgetgate
// +kubebuilder:printcolumn:name="Policy",type=string,JSONPath=`.spec.policyRef.name`
// +kubebuilder:printcolumn:name="Override",type=string,JSONPath=`.spec.allowOverride`
// +kubebuilder:printcolumn:name="Priority",type=integer,JSONPath=`.spec.priority`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`

// ErrorBudgetPolicyBinding lets the platform decide the ErrorBudgetPolicy of
// the SLOs in the namespaces it selects, and whether they may choose another.
// It is cluster-scoped and written by the platform only: no role budgetgate
// ships aggregates write access to it into the built-in roles. An SLO's
// status.policy and status.policyBinding say which policy applies to it and
// through which binding, in the SLO's own namespace.
type ErrorBudgetPolicyBinding struct {
	metav1.TypeMeta `json:",inline"`

	// +optional
	metav1.ObjectMeta `json:"metadata,omitzero"`

	// +required
	Spec ErrorBudgetPolicyBindingSpec `json:"spec"`
}

// +kubebuilder:object:root=true

// ErrorBudgetPolicyBindingList contains a list of ErrorBudgetPolicyBinding.
type ErrorBudgetPolicyBindingList struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ListMeta `json:"metadata,omitzero"`
	Items           []ErrorBudgetPolicyBinding `json:"items"`
}

func init() {
	SchemeBuilder.Register(func(s *runtime.Scheme) error {
		s.AddKnownTypes(SchemeGroupVersion, &ErrorBudgetPolicyBinding{}, &ErrorBudgetPolicyBindingList{})
		return nil
	})
}
