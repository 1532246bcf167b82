package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	slov1alpha1 "github.com/budgetgate/budgetgate/api/v1alpha1"
)

// memReader is the part of a cluster that resolving an SLO's policy reads
// (policy.ResolveBinding: ErrorBudgetPolicies by name, the
// ErrorBudgetPolicyBindings, a namespace's labels), held in memory from
// manifests, so that `rules -f` resolves offline exactly as the controller
// does in a cluster that holds those objects.
type memReader struct {
	policies   map[string]*slov1alpha1.ErrorBudgetPolicy
	bindings   []slov1alpha1.ErrorBudgetPolicyBinding
	namespaces map[string]*corev1.Namespace
}

var _ client.Reader = &memReader{}

func (m *memReader) Get(_ context.Context, key client.ObjectKey, obj client.Object, _ ...client.GetOption) error {
	switch o := obj.(type) {
	case *slov1alpha1.ErrorBudgetPolicy:
		p, ok := m.policies[key.Name]
		if !ok {
			return apierrors.NewNotFound(slov1alpha1.GroupVersion.WithResource("errorbudgetpolicies").GroupResource(), key.Name)
		}
		p.DeepCopyInto(o)
		return nil
	case *metav1.PartialObjectMetadata:
		if o.GroupVersionKind() == corev1.SchemeGroupVersion.WithKind("Namespace") {
			ns, ok := m.namespaces[key.Name]
			if !ok {
				return apierrors.NewNotFound(corev1.Resource("namespaces"), key.Name)
			}
			ns.ObjectMeta.DeepCopyInto(&o.ObjectMeta)
			return nil
		}
	}
	return fmt.Errorf("offline: reading %T is not supported", obj)
}

func (m *memReader) List(_ context.Context, list client.ObjectList, _ ...client.ListOption) error {
	if l, ok := list.(*slov1alpha1.ErrorBudgetPolicyBindingList); ok {
		l.Items = nil
		for i := range m.bindings {
			l.Items = append(l.Items, *m.bindings[i].DeepCopy())
		}
		return nil
	}
	return fmt.Errorf("offline: listing %T is not supported", list)
}

// offline reads SLOs, policies, bindings and namespaces from manifests.
func (r *root) offline(cmd *cobra.Command, files []string, name string) (*memReader, []*slov1alpha1.ServiceLevelObjective, error) {
	inputs, err := readInputs(files, r.streams.In)
	if err != nil {
		return nil, nil, err
	}
	defaultNS := "default"
	if cmd.Flags().Changed("namespace") && r.config.Namespace != nil {
		defaultNS = *r.config.Namespace
	} else if ns, _, err := r.config.ToRawKubeConfigLoader().Namespace(); err == nil && ns != "" {
		defaultNS = ns
	}
	m := &memReader{policies: map[string]*slov1alpha1.ErrorBudgetPolicy{}, namespaces: map[string]*corev1.Namespace{}}
	var slos []*slov1alpha1.ServiceLevelObjective
	var errs []error
	ignored := 0
	for _, in := range inputs {
		docs := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(in.Data)))
		for i := 1; ; i++ {
			doc, err := docs.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: document %d: %w", in.Name, i, err))
				break
			}
			objs, err := manifests(doc)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: document %d: %w", in.Name, i, err))
				continue
			}
			for _, raw := range objs {
				n, err := m.add(raw, defaultNS, &slos)
				if err != nil {
					errs = append(errs, fmt.Errorf("%s: document %d: %w", in.Name, i, err))
				}
				ignored += n
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, nil, err
	}
	if ignored > 0 {
		_, _ = fmt.Fprintf(r.streams.ErrOut, "%s of other kinds ignored\n", plural(ignored, "object", "objects"))
	}
	if name != "" {
		slos = filterName(slos, name)
		if len(slos) == 0 {
			return nil, nil, fmt.Errorf("no ServiceLevelObjective named %q in the files given", name)
		}
	}
	if len(slos) == 0 {
		return nil, nil, errors.New("no ServiceLevelObjective in the files given")
	}
	sortSLOs(slos)
	return m, slos, nil
}

func filterName(slos []*slov1alpha1.ServiceLevelObjective, name string) []*slov1alpha1.ServiceLevelObjective {
	var out []*slov1alpha1.ServiceLevelObjective
	for _, s := range slos {
		if s.Name == name {
			out = append(out, s)
		}
	}
	return out
}

// manifests are the objects of a YAML document as JSON: the document, or
// the items of a v1 List. Empty documents have none.
func manifests(doc []byte) ([]json.RawMessage, error) {
	j, err := yaml.YAMLToJSON(doc)
	if err != nil {
		return nil, err
	}
	if bytes.Equal(bytes.TrimSpace(j), []byte("null")) {
		return nil, nil
	}
	var tm metav1.TypeMeta
	if err := json.Unmarshal(j, &tm); err != nil {
		return nil, fmt.Errorf("not a Kubernetes object: %w", err)
	}
	if tm.APIVersion == "v1" && tm.Kind == "List" {
		var list struct {
			Items []json.RawMessage `json:"items"`
		}
		if err := json.Unmarshal(j, &list); err != nil {
			return nil, err
		}
		return list.Items, nil
	}
	return []json.RawMessage{j}, nil
}

// add reads one object: 1 when its kind is not one that rules reads.
func (m *memReader) add(raw json.RawMessage, defaultNS string, slos *[]*slov1alpha1.ServiceLevelObjective) (int, error) {
	var tm metav1.TypeMeta
	if err := json.Unmarshal(raw, &tm); err != nil {
		return 0, err
	}
	gvk := schema.FromAPIVersionAndKind(tm.APIVersion, tm.Kind)
	strict := func(v any) error {
		if err := yaml.UnmarshalStrict(raw, v); err != nil {
			return fmt.Errorf("%s: %w", tm.Kind, err)
		}
		return nil
	}
	switch {
	case gvk.GroupVersion() == slov1alpha1.GroupVersion && gvk.Kind == "ServiceLevelObjective":
		slo := &slov1alpha1.ServiceLevelObjective{}
		if err := strict(slo); err != nil {
			return 0, err
		}
		if slo.Namespace == "" {
			slo.Namespace = defaultNS
		}
		*slos = append(*slos, slo)
	case gvk.GroupVersion() == slov1alpha1.GroupVersion && gvk.Kind == "ErrorBudgetPolicy":
		p := &slov1alpha1.ErrorBudgetPolicy{}
		if err := strict(p); err != nil {
			return 0, err
		}
		if _, dup := m.policies[p.Name]; dup {
			return 0, fmt.Errorf("a second ErrorBudgetPolicy %q", p.Name)
		}
		m.policies[p.Name] = p
	case gvk.GroupVersion() == slov1alpha1.GroupVersion && gvk.Kind == "ErrorBudgetPolicyBinding":
		b := slov1alpha1.ErrorBudgetPolicyBinding{}
		if err := strict(&b); err != nil {
			return 0, err
		}
		m.bindings = append(m.bindings, b)
	case gvk == corev1.SchemeGroupVersion.WithKind("Namespace"):
		ns := &corev1.Namespace{}
		if err := json.Unmarshal(raw, ns); err != nil {
			return 0, err
		}
		// The API server labels every namespace with its name.
		if ns.Labels == nil {
			ns.Labels = map[string]string{}
		}
		ns.Labels[corev1.LabelMetadataName] = ns.Name
		m.namespaces[ns.Name] = ns
	default:
		return 1, nil
	}
	return 0, nil
}
