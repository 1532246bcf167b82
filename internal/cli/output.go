package cli

import (
	"bytes"
	"encoding/json"
	"strings"

	"go.yaml.in/yaml/v3"
)

// clean is an object as a map without what the API server fills in and
// an object written by hand does not carry: a null creationTimestamp, an
// empty status.
func clean(obj any) (any, error) {
	raw, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	var m any
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, err
	}
	var walk func(v any)
	walk = func(v any) {
		switch t := v.(type) {
		case map[string]any:
			if md, ok := t["metadata"].(map[string]any); ok {
				if ts, ok := md["creationTimestamp"]; ok && ts == nil {
					delete(md, "creationTimestamp")
				}
			}
			if st, ok := t["status"].(map[string]any); ok && len(st) == 0 {
				delete(t, "status")
			}
			if items, ok := t["items"].([]any); ok {
				for _, it := range items {
					walk(it)
				}
			}
		}
	}
	walk(m)
	return m, nil
}

func marshalJSON(obj any) ([]byte, error) {
	m, err := clean(obj)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "    ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(m); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// marshalYAML writes an object as kubectl get -o yaml does (keys sorted),
// without folding long lines (PromQL stays on one line) and with multi-line
// strings as literal blocks.
func marshalYAML(obj any) ([]byte, error) {
	m, err := clean(obj)
	if err != nil {
		return nil, err
	}
	j, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	var n yaml.Node
	if err := yaml.Unmarshal(j, &n); err != nil {
		return nil, err
	}
	plain(&n)
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(&n); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// plain sets the styles of a node decoded from JSON to the block style of
// hand-written YAML: quotes only where needed, literal multi-line strings.
func plain(n *yaml.Node) {
	n.Style = 0
	if n.Kind == yaml.ScalarNode && n.Tag == "!!str" && strings.Contains(strings.TrimRight(n.Value, "\n"), "\n") {
		n.Style = yaml.LiteralStyle
	}
	for _, c := range n.Content {
		plain(c)
	}
}
