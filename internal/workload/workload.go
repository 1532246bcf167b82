// Package workload is the one registry of the kinds budgetgate gates: their
// group, version and kind, how to read their revision history, who writes that
// history, and how to mark them. The release webhook, the history webhook and
// the SLO controller all go through it, so adding a gated kind touches only
// this package (and the webhook configuration and RBAC that name its
// resource).
//
// Every gated kind keeps the shape of apps/v1 Deployment where budgetgate
// reads it: metadata, spec.selector, spec.template; so budgetgate reads all of
// them unstructured, and needs no Go types of a kind defined by a CRD (Argo
// Rollouts). Such a kind is Optional: its API exists only where its CRD is
// installed, and Discovery (discovery.go) tells the registry when it is served.
package workload

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// KubeControllerManager is the identity of kube-controller-manager when it runs
// without --use-service-account-credentials: then every built-in controller
// writes as this user.
const KubeControllerManager = "system:kube-controller-manager"

// HistoryKind is the kind of object that holds a workload's revisions.
type HistoryKind string

const (
	// ReplicaSets hold the revisions of Deployments (and Argo Rollouts).
	ReplicaSets HistoryKind = "ReplicaSet"
	// ControllerRevisions hold the revisions of StatefulSets and DaemonSets.
	ControllerRevisions HistoryKind = "ControllerRevision"
)

// Kind is a gated workload kind.
type Kind struct {
	// GVK of the workload, e.g. apps/v1 Deployment.
	GVK schema.GroupVersionKind
	// Resource is its plural resource name, e.g. "deployments".
	Resource string
	// History is the kind of its revisions.
	History HistoryKind
	// Writers are the users (as the API server authenticates them) of the
	// controllers that write its revisions. Only they may add a revision to a
	// frozen workload's history.
	Writers []string
	// HashLabel is the label its controller adds to the pod template of every
	// revision (pod-template-hash, rollouts-pod-template-hash). EachRevision
	// removes it, so that a revision's template is the template released.
	HashLabel string
	// Optional kinds are defined by a CRD: served only where it is installed.
	// The SLO controller lists them only while Discovery finds them served;
	// the webhooks gate them whenever the API server sends one (which it does
	// only while it serves them).
	Optional bool
}

// String is the kind's name, e.g. "Deployment".
func (k Kind) String() string { return k.GVK.Kind }

// MayWriteHistory reports whether user is one of the kind's history writers.
func (k Kind) MayWriteHistory(user string) bool { return slices.Contains(k.Writers, user) }

func serviceAccount(ns, name string) string { return "system:serviceaccount:" + ns + ":" + name }

// The built-in kinds. kube-controller-manager's controllers use these service
// accounts with --use-service-account-credentials (kubeadm, kind and most
// distributions), else KubeControllerManager.
var (
	Deployment = Kind{
		GVK: appsv1.SchemeGroupVersion.WithKind("Deployment"), Resource: "deployments", History: ReplicaSets,
		Writers:   []string{serviceAccount("kube-system", "deployment-controller"), KubeControllerManager},
		HashLabel: appsv1.DefaultDeploymentUniqueLabelKey,
	}
	StatefulSet = Kind{
		GVK: appsv1.SchemeGroupVersion.WithKind("StatefulSet"), Resource: "statefulsets", History: ControllerRevisions,
		Writers: []string{serviceAccount("kube-system", "statefulset-controller"), KubeControllerManager},
	}
	DaemonSet = Kind{
		GVK: appsv1.SchemeGroupVersion.WithKind("DaemonSet"), Resource: "daemonsets", History: ControllerRevisions,
		Writers: []string{serviceAccount("kube-system", "daemon-set-controller"), KubeControllerManager},
	}
)

// Argo Rollouts' API group and the label its controller adds to the templates
// (and selectors) of a Rollout's ReplicaSets.
const (
	RolloutsGroup    = "argoproj.io"
	RolloutHashLabel = "rollouts-pod-template-hash"
)

// Rollout is Argo Rollouts' argoproj.io/v1alpha1 Rollout, gated like a Deployment
// wherever its CRD is installed:
//   - its revisions are the ReplicaSets it controls; the Argo Rollouts
//     controller writes them with the Rollout's template plus the label
//     rollouts-pod-template-hash, and numbers them with the annotation
//     rollout.argoproj.io/revision (which budgetgate does not need: any
//     revision still kept is a rollback target);
//   - `kubectl argo rollouts undo` writes an earlier ReplicaSet's template,
//     without that label, back into spec.template: a rollback;
//   - `kubectl argo rollouts restart` sets spec.restartAt, and promote, abort,
//     retry and pause write spec.paused or status: none changes the pod
//     template, so none reaches the release gate;
//   - a Rollout that takes its template from a Deployment (spec.workloadRef)
//     has no spec.template: its releases are that Deployment's, gated as a
//     Deployment when an SLO selects it.
//
// Writers is the controller's ServiceAccount in Argo Rollouts' own install
// manifests (namespace argo-rollouts); --history-writer Rollout=USER adds the
// identity of an installation elsewhere.
var Rollout = Kind{
	GVK: schema.GroupVersionKind{Group: RolloutsGroup, Version: "v1alpha1", Kind: "Rollout"}, Resource: "rollouts", History: ReplicaSets,
	Writers:   []string{serviceAccount("argo-rollouts", "argo-rollouts")},
	HashLabel: RolloutHashLabel,
	Optional:  true,
}

// Registry is a set of gated kinds; the zero value is empty. It is safe for
// concurrent use: Discovery marks optional kinds served while the manager runs.
type Registry struct {
	mu    sync.RWMutex
	kinds []Kind
	// served holds the optional kinds Discovery last found served.
	served map[schema.GroupKind]bool
}

// NewRegistry returns a registry of kinds.
func NewRegistry(kinds ...Kind) *Registry {
	r := &Registry{}
	for _, k := range kinds {
		r.Add(k)
	}
	return r
}

// Default returns a registry of every kind budgetgate gates: Deployments,
// StatefulSets and DaemonSets, and Argo Rollouts where their CRD is installed.
func Default() *Registry { return NewRegistry(Deployment, StatefulSet, DaemonSet, Rollout) }

// Add registers k, replacing a kind of the same group and kind.
func (r *Registry) Add(k Kind) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.kinds = slices.DeleteFunc(r.kinds, func(o Kind) bool { return o.GVK.GroupKind() == k.GVK.GroupKind() })
	r.kinds = append(r.kinds, k)
}

// AddWriters adds history writers to a registered kind (e.g. from a flag, for
// a cluster whose controllers run under other names).
func (r *Registry) AddWriters(kind string, users ...string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range r.kinds {
		if r.kinds[i].GVK.Kind == kind {
			r.kinds[i].Writers = append(slices.Clone(r.kinds[i].Writers), users...)
			return nil
		}
	}
	return fmt.Errorf("%s is not a gated kind", kind)
}

// All returns the registered kinds, served or not: what the webhooks gate.
func (r *Registry) All() []Kind {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return slices.Clone(r.kinds)
}

// Served returns the kinds the API server serves as far as the registry
// knows: every kind that is not optional, and the optional kinds Discovery
// last found served. The SLO controller lists these: listing a kind that is
// not served fails, and costs the RESTMapper a full discovery each time.
func (r *Registry) Served() []Kind {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var out []Kind
	for _, k := range r.kinds {
		if !k.Optional || r.served[k.GVK.GroupKind()] {
			out = append(out, k)
		}
	}
	return out
}

// SetServed records whether the optional kind gk is served, and reports
// whether that changed. Kinds that are not optional are always served.
func (r *Registry) SetServed(gk schema.GroupKind, served bool) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.served == nil {
		r.served = map[schema.GroupKind]bool{}
	}
	changed := r.served[gk] != served
	r.served[gk] = served
	return changed
}

// Lookup finds a kind by group and kind (the version does not matter: the
// API server may send any version it serves).
func (r *Registry) Lookup(gk schema.GroupKind) (Kind, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, k := range r.kinds {
		if k.GVK.GroupKind() == gk {
			return k, true
		}
	}
	return Kind{}, false
}

// Names lists the registered kinds' names, e.g. for messages.
func (r *Registry) Names() []string {
	var out []string
	for _, k := range r.All() {
		out = append(out, k.GVK.Kind)
	}
	return out
}

// Object is a gated workload reduced to what budgetgate reads: every gated
// kind has metadata, spec.selector and spec.template.
type Object struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              Spec `json:"spec"`
}

// Spec is the part of a workload's spec that budgetgate reads.
type Spec struct {
	Selector *metav1.LabelSelector  `json:"selector,omitempty"`
	Template corev1.PodTemplateSpec `json:"template"`
}

// Decode reads a workload of any gated kind from JSON; nil for empty input
// (no old object on CREATE, no new one on DELETE).
func Decode(raw []byte) (*Object, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	w := &Object{}
	if err := json.Unmarshal(raw, w); err != nil {
		return nil, err
	}
	return w, nil
}

// Selector is the workload's own pod selector.
func (w *Object) Selector() (labels.Selector, error) {
	if w.Spec.Selector == nil {
		return nil, fmt.Errorf("%s has no spec.selector", w.Name)
	}
	return metav1.LabelSelectorAsSelector(w.Spec.Selector)
}

// Revision is one revision of a workload's history.
type Revision struct {
	// Name of the ReplicaSet or ControllerRevision.
	Name string
	// Created is when the API server created it.
	Created time.Time
	// Template is the pod template of the revision, without the kind's
	// HashLabel.
	Template corev1.PodTemplateSpec
}

// DefaultPageSize is how many history objects one list call returns.
const DefaultPageSize = 100

// EachRevision calls fn for every revision of w that w controls (an owner
// reference with controller: true and w's UID), reading its history in pages
// of pageSize (DefaultPageSize when ≤ 0) with w's selector in w's namespace,
// until fn returns false or the history ends. It reads nothing for a workload
// without a UID (one being created has no history). The context bounds the
// whole walk.
func (k Kind) EachRevision(ctx context.Context, c client.Reader, w *Object, pageSize int64, fn func(Revision) bool) error {
	if w == nil || w.UID == "" {
		return nil
	}
	sel, err := w.Selector()
	if err != nil {
		return err
	}
	if pageSize <= 0 {
		pageSize = DefaultPageSize
	}
	opts := []client.ListOption{client.InNamespace(w.Namespace), client.MatchingLabelsSelector{Selector: sel}, client.Limit(pageSize)}
	cont := ""
	for {
		page := append(slices.Clone(opts), client.Continue(cont))
		var more bool
		switch k.History {
		case ReplicaSets:
			list := &appsv1.ReplicaSetList{}
			if err := c.List(ctx, list, page...); err != nil {
				return fmt.Errorf("listing ReplicaSets of %s %s/%s: %w", k, w.Namespace, w.Name, err)
			}
			for i := range list.Items {
				rs := &list.Items[i]
				if ControlledBy(rs.OwnerReferences, w.UID) &&
					!fn(Revision{Name: rs.Name, Created: rs.CreationTimestamp.Time, Template: k.withoutHash(rs.Spec.Template)}) {
					return nil
				}
			}
			cont, more = list.Continue, list.Continue != ""
		case ControllerRevisions:
			list := &appsv1.ControllerRevisionList{}
			if err := c.List(ctx, list, page...); err != nil {
				return fmt.Errorf("listing ControllerRevisions of %s %s/%s: %w", k, w.Namespace, w.Name, err)
			}
			for i := range list.Items {
				cr := &list.Items[i]
				if !ControlledBy(cr.OwnerReferences, w.UID) {
					continue
				}
				t, ok := RevisionTemplate(cr)
				if ok && !fn(Revision{Name: cr.Name, Created: cr.CreationTimestamp.Time, Template: t}) {
					return nil
				}
			}
			cont, more = list.Continue, list.Continue != ""
		default:
			return fmt.Errorf("%s: unknown history kind %q", k, k.History)
		}
		if !more {
			return nil
		}
	}
}

// withoutHash is t without the kind's HashLabel (t's labels are copied, not
// changed).
func (k Kind) withoutHash(t corev1.PodTemplateSpec) corev1.PodTemplateSpec {
	if _, ok := t.Labels[k.HashLabel]; !ok || k.HashLabel == "" {
		return t
	}
	lbls := make(map[string]string, len(t.Labels)-1)
	for key, v := range t.Labels {
		if key != k.HashLabel {
			lbls[key] = v
		}
	}
	t.Labels = lbls
	return t
}

// RevisionTemplate is the pod template a StatefulSet or DaemonSet
// ControllerRevision restores: its data is a patch that replaces spec.template.
func RevisionTemplate(cr *appsv1.ControllerRevision) (corev1.PodTemplateSpec, bool) {
	var rev struct {
		Spec struct {
			Template corev1.PodTemplateSpec `json:"template"`
		} `json:"spec"`
	}
	if err := json.Unmarshal(cr.Data.Raw, &rev); err != nil {
		return corev1.PodTemplateSpec{}, false
	}
	return rev.Spec.Template, true
}

// Controller returns the owner reference with controller: true, or nil.
func Controller(refs []metav1.OwnerReference) *metav1.OwnerReference {
	for i := range refs {
		if refs[i].Controller != nil && *refs[i].Controller {
			return &refs[i]
		}
	}
	return nil
}

// ControlledBy reports whether refs hold a controller reference to uid.
func ControlledBy(refs []metav1.OwnerReference, uid types.UID) bool {
	c := Controller(refs)
	return c != nil && c.UID == uid
}

// ListMeta lists the metadata of every workload of this kind in a namespace
// (uncached, one call per page; the operator caches no workloads). An
// optional kind that is not served (its CRD was removed since Discovery last
// looked) has no workloads.
func (k Kind) ListMeta(ctx context.Context, c client.Reader, namespace string, opts ...client.ListOption) ([]metav1.PartialObjectMetadata, error) {
	var out []metav1.PartialObjectMetadata
	cont := ""
	for {
		list := &metav1.PartialObjectMetadataList{}
		list.SetGroupVersionKind(k.GVK.GroupVersion().WithKind(k.GVK.Kind + "List"))
		all := append([]client.ListOption{client.InNamespace(namespace), client.Limit(500), client.Continue(cont)}, opts...)
		if err := c.List(ctx, list, all...); err != nil {
			if k.Optional && NotServed(err) {
				return nil, nil
			}
			return nil, fmt.Errorf("listing %ss in %s: %w", k, namespace, err)
		}
		for i := range list.Items {
			list.Items[i].SetGroupVersionKind(k.GVK)
			out = append(out, list.Items[i])
		}
		if cont = list.Continue; cont == "" {
			return out, nil
		}
	}
}

// NotServed reports whether err says that the API server does not serve the
// kind: no REST mapping for it (meta.NoKindMatchError), or a 404 for the
// whole resource after its CRD was deleted.
func NotServed(err error) bool {
	if meta.IsNoMatchError(err) {
		return true
	}
	var status apierrors.APIStatus
	if !errors.As(err, &status) || !apierrors.IsNotFound(err) {
		return false
	}
	// A 404 for a resource carries its name in details; one for the whole
	// path (no such resource) carries no name.
	d := status.Status().Details
	return d == nil || d.Name == ""
}

// Get reads one workload of this kind, uncached, as an Object.
func (k Kind) Get(ctx context.Context, c client.Reader, namespace, name string) (*Object, error) {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(k.GVK)
	if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, u); err != nil {
		return nil, err
	}
	raw, err := u.MarshalJSON()
	if err != nil {
		return nil, err
	}
	return Decode(raw)
}

// ApplyAnnotations is the server-side apply configuration that sets exactly
// these annotations (under the caller's field manager) on a workload of this
// kind; with no annotations it removes the ones that manager owned.
func (k Kind) ApplyAnnotations(namespace, name string, annotations map[string]string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(k.GVK)
	u.SetNamespace(namespace)
	u.SetName(name)
	if len(annotations) > 0 {
		u.SetAnnotations(annotations)
	}
	return u
}

// Ref formats a workload for messages: "Deployment shop/checkout".
func Ref(kind, namespace, name string) string {
	return strings.TrimSpace(kind + " " + namespace + "/" + name)
}
