package importer

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Objects are the objects to write: the policies, then the SLOs that refer
// to them.
func (r *Result) Objects() []client.Object {
	var out []client.Object
	for _, p := range r.Policies {
		out = append(out, p.Object)
	}
	for _, s := range r.SLOs {
		out = append(out, s.Object)
	}
	return out
}

// commentWidth is where comments wrap.
const commentWidth = 100

// YAML writes the result as YAML documents for kubectl apply -f, each
// preceded by comments that say where it came from and what it does not
// keep of its source.
func (r *Result) YAML() ([]byte, error) {
	var b bytes.Buffer
	b.WriteString("# Converted by kubectl budgetgate import. Lines starting \"differs:\" are what budgetgate does not keep\n")
	b.WriteString("# of the source, or keeps with another meaning; \"note:\" lines are for information.\n")
	comment(&b, observeOnly, "")
	for _, p := range r.Policies {
		b.WriteString("---\n")
		comment(&b, fmt.Sprintf("ErrorBudgetPolicy for %s; used by %s.", p.From, strings.Join(p.UsedBy, ", ")), "")
		findings(&b, p.Findings)
		if err := writeObject(&b, p.Object); err != nil {
			return nil, err
		}
	}
	for _, s := range r.SLOs {
		b.WriteString("---\n")
		comment(&b, "From "+s.From+".", "")
		findings(&b, s.Findings)
		if err := writeObject(&b, s.Object); err != nil {
			return nil, err
		}
	}
	return b.Bytes(), nil
}

func findings(b *bytes.Buffer, fs []Finding) {
	for _, sev := range []Severity{Difference, Note} {
		for _, f := range fs {
			if f.Severity == sev {
				comment(b, f.String(), sev.String()+": ")
			}
		}
	}
}

// comment writes text as comment lines of at most commentWidth, the first
// starting with prefix and the others indented under it.
func comment(b *bytes.Buffer, text, prefix string) {
	indent := strings.Repeat(" ", len(prefix))
	line := "# " + prefix
	empty := true
	for _, w := range strings.Fields(text) {
		if !empty && len(line)+1+len(w) > commentWidth {
			b.WriteString(line + "\n")
			line, empty = "# "+indent, true
		}
		if !empty {
			line += " "
		}
		line += w
		empty = false
	}
	b.WriteString(line + "\n")
}

// writeObject writes an API object as YAML in the order of its Go fields
// (apiVersion, kind, metadata, spec), as people write manifests.
func writeObject(b *bytes.Buffer, obj client.Object) error {
	j, err := json.Marshal(obj)
	if err != nil {
		return err
	}
	var n yaml.Node
	if err := yaml.Unmarshal(j, &n); err != nil {
		return err
	}
	root := n.Content[0]
	// TypeMeta marshals kind first; manifests start with apiVersion.
	if len(root.Content) >= 4 && root.Content[0].Value == "kind" && root.Content[2].Value == "apiVersion" {
		root.Content[0], root.Content[1], root.Content[2], root.Content[3] = root.Content[2], root.Content[3], root.Content[0], root.Content[1]
	}
	drop(root, "status")
	drop(lookup(root, "metadata"), "creationTimestamp")
	plain(root)
	enc := yaml.NewEncoder(b)
	enc.SetIndent(2)
	if err := enc.Encode(root); err != nil {
		return err
	}
	return enc.Close()
}

// drop removes key from a mapping node.
func drop(m *yaml.Node, key string) {
	if m == nil {
		return
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			m.Content = append(m.Content[:i], m.Content[i+2:]...)
			return
		}
	}
}

// plain writes JSON's quoted strings and flow collections the way YAML is
// written by hand: block style, quotes only where YAML needs them, and
// multi-line strings (queries) as literal blocks.
func plain(n *yaml.Node) {
	n.Style = 0
	if n.Kind == yaml.ScalarNode && n.Tag == "!!str" && strings.Contains(strings.TrimRight(n.Value, "\n"), "\n") {
		n.Style = yaml.LiteralStyle
	}
	for _, c := range n.Content {
		plain(c)
	}
}
