package importer

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/big"
	"reflect"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// format is what a document is, from its apiVersion and kind (or Sloth's version).
type format int

const (
	formatUnknown format = iota
	formatSlothK8s
	formatSlothCLI
	formatSlothWindows
	formatPyrra
	formatOpenSLO
)

// API versions and kinds read.
const (
	slothAPIVersion   = "sloth.slok.dev/v1"
	slothKind         = "PrometheusServiceLevel"
	slothWindowsKind  = "AlertWindows"
	slothSpecVersion  = "prometheus/v1"
	pyrraAPIVersion   = "pyrra.dev/v1alpha1"
	pyrraKind         = "ServiceLevelObjective"
	openSLOAPIVersion = "openslo/v1"
)

var openSLOKinds = []string{"SLO", "SLI", "AlertPolicy", "AlertCondition", "DataSource", "Service", "AlertNotificationTarget"}

// document is one YAML document of an input (or one item of a List).
type document struct {
	input string
	index int // position among the input's documents, from 1
	item  int // position in a List's items, from 1; 0 when not an item
	line  int
	node  *yaml.Node // the mapping at its root

	apiVersion, kind, version string
}

func (d *document) kindText() string {
	switch {
	case d.version != "" && d.apiVersion == "":
		return "version " + d.version
	case d.kind == "":
		return ""
	case d.apiVersion == "":
		return d.kind
	}
	return d.apiVersion + " " + d.kind
}

// where names the document in messages: "sloth.yaml, document 2" or
// "list.yaml, document 1, item 3".
func (d *document) where() string {
	s := fmt.Sprintf("%s, document %d", d.input, d.index)
	if d.item > 0 {
		s += fmt.Sprintf(", item %d", d.item)
	}
	return s
}

func (d *document) format() format {
	switch {
	case d.apiVersion == slothAPIVersion && d.kind == slothKind:
		return formatSlothK8s
	case d.apiVersion == slothAPIVersion && d.kind == slothWindowsKind:
		return formatSlothWindows
	case d.apiVersion == "" && d.version == slothSpecVersion:
		return formatSlothCLI
	case d.apiVersion == pyrraAPIVersion && d.kind == pyrraKind:
		return formatPyrra
	case d.apiVersion == openSLOAPIVersion && contains(openSLOKinds, d.kind):
		return formatOpenSLO
	}
	return formatUnknown
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

const readable = "import reads Sloth (sloth.slok.dev/v1 PrometheusServiceLevel and AlertWindows, and Sloth's `version: prometheus/v1` files), " +
	"Pyrra (pyrra.dev/v1alpha1 ServiceLevelObjective) and OpenSLO v1 (openslo/v1 " + "SLO, SLI, AlertPolicy, AlertCondition, DataSource, Service, AlertNotificationTarget)"

func (d *document) unknownError() error {
	switch {
	case d.apiVersion == "" && d.kind == "" && d.version == "":
		return fmt.Errorf("%w: the document has no apiVersion and kind (nor Sloth's version: prometheus/v1); %s", ErrUnknownKind, readable)
	case d.apiVersion == "" && d.version != "":
		return fmt.Errorf("%w: Sloth spec version %q: only %q is read; %s", ErrUnknownKind, d.version, slothSpecVersion, readable)
	case strings.HasPrefix(d.apiVersion, "openslo/") && d.apiVersion != openSLOAPIVersion:
		return fmt.Errorf("%w: %s %s: only OpenSLO %s is read (convert older documents with oslo convert); %s", ErrUnknownKind, d.apiVersion, d.kind, openSLOAPIVersion, readable)
	case d.apiVersion == "slo.budgetgate.dev/v1alpha1":
		return fmt.Errorf("%w: %s %s is already budgetgate's: apply it as it is", ErrUnknownKind, d.apiVersion, d.kind)
	}
	return fmt.Errorf("%w: apiVersion %q, kind %q; %s", ErrUnknownKind, d.apiVersion, d.kind, readable)
}

// readAll splits every input into documents. Empty documents are skipped;
// the items of a v1 List are documents of their own.
func readAll(inputs []Input) ([]*document, error) {
	var docs []*document
	var errs []error
	for _, in := range inputs {
		dec := yaml.NewDecoder(bytes.NewReader(in.Data))
		for i := 1; ; i++ {
			var n yaml.Node
			err := dec.Decode(&n)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				errs = append(errs, &DocumentError{Input: in.Name, Document: i, Err: fmt.Errorf("not valid YAML: %w", err)})
				break
			}
			root := &n
			if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
				root = root.Content[0]
			}
			if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
				continue // an empty document, e.g. after a trailing ---
			}
			d := &document{input: in.Name, index: i, line: root.Line, node: root}
			if root.Kind != yaml.MappingNode {
				errs = append(errs, &DocumentError{Input: in.Name, Document: i, Line: root.Line, Err: errors.New("not a YAML mapping (an object with apiVersion and kind)")})
				continue
			}
			d.apiVersion, d.kind, d.version = scalar(root, "apiVersion"), scalar(root, "kind"), scalar(root, "version")
			if d.apiVersion == "v1" && d.kind == "List" {
				items, err := listItems(d)
				if err != nil {
					errs = append(errs, err)
				}
				docs = append(docs, items...)
				continue
			}
			docs = append(docs, d)
		}
	}
	return docs, errors.Join(errs...)
}

// listItems are the items of a v1 List (kubectl get -o yaml of several objects).
func listItems(list *document) ([]*document, error) {
	items := lookup(list.node, "items")
	if items == nil {
		return nil, nil
	}
	if items.Kind != yaml.SequenceNode {
		return nil, &DocumentError{Input: list.input, Document: list.index, Line: items.Line, Kind: "v1 List", Err: errors.New("items is not a list")}
	}
	var out []*document
	for j, it := range items.Content {
		if it.Kind != yaml.MappingNode {
			return out, &DocumentError{Input: list.input, Document: list.index, Line: it.Line, Kind: "v1 List", Err: fmt.Errorf("items[%d] is not an object", j)}
		}
		d := &document{input: list.input, index: list.index, item: j + 1, line: it.Line, node: it}
		d.apiVersion, d.kind, d.version = scalar(it, "apiVersion"), scalar(it, "kind"), scalar(it, "version")
		out = append(out, d)
	}
	return out, nil
}

// lookup returns the value of key in a mapping node, or nil.
func lookup(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

func scalar(m *yaml.Node, key string) string {
	if v := lookup(m, key); v != nil && v.Kind == yaml.ScalarNode {
		return v.Value
	}
	return ""
}

// decode reads a node into v, and returns the paths of the fields v has no
// place for (aliases maps a field's yaml tag to the key the document spells
// it with, for Sloth's snake_case CLI spec).
func decode(n *yaml.Node, v any, aliases map[string]string) (unknown []string, err error) {
	unknown = unknownFields(n, reflect.TypeOf(v), "", aliases)
	if len(aliases) > 0 {
		n = renameKeys(n, aliases)
	}
	if err := n.Decode(v); err != nil {
		return nil, err
	}
	return unknown, nil
}

// renameKeys is a copy of n with the keys spelt as aliases says renamed to
// the tags of the Go types.
func renameKeys(n *yaml.Node, aliases map[string]string) *yaml.Node {
	reverse := map[string]string{}
	for tag, key := range aliases {
		reverse[key] = tag
	}
	var walk func(n *yaml.Node) *yaml.Node
	walk = func(n *yaml.Node) *yaml.Node {
		c := *n
		c.Content = make([]*yaml.Node, len(n.Content))
		for i, k := range n.Content {
			if n.Kind == yaml.MappingNode && i%2 == 0 {
				if tag, ok := reverse[k.Value]; ok {
					kc := *k
					kc.Value = tag
					c.Content[i] = &kc
					continue
				}
			}
			c.Content[i] = walk(k)
		}
		return &c
	}
	return walk(n)
}

var unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()

// unknownFields walks n along type t and returns the paths of mapping keys
// that t has no field for.
func unknownFields(n *yaml.Node, t reflect.Type, path string, aliases map[string]string) []string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n == nil || reflect.PointerTo(t).Implements(unmarshalerType) {
		return nil
	}
	join := func(key string) string {
		if path == "" {
			return key
		}
		return path + "." + key
	}
	var out []string
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return nil // Decode reports the type error
		}
		fields := map[string]reflect.Type{}
		open := false
		var collect func(t reflect.Type)
		collect = func(t reflect.Type) {
			for i := range t.NumField() {
				f := t.Field(i)
				name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
				if name == "-" {
					continue
				}
				if strings.Contains(opts, "inline") {
					if f.Type.Kind() == reflect.Map {
						open = true
					} else {
						collect(f.Type)
					}
					continue
				}
				if name == "" {
					name = strings.ToLower(f.Name)
				}
				if a, ok := aliases[name]; ok {
					name = a
				}
				fields[name] = f.Type
			}
		}
		collect(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			key := n.Content[i].Value
			ft, ok := fields[key]
			if !ok {
				if !open {
					out = append(out, join(key))
				}
				continue
			}
			out = append(out, unknownFields(n.Content[i+1], ft, join(key), aliases)...)
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return nil
		}
		for i, item := range n.Content {
			out = append(out, unknownFields(item, t.Elem(), fmt.Sprintf("%s[%d]", path, i), aliases)...)
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return nil
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			out = append(out, unknownFields(n.Content[i+1], t.Elem(), join(n.Content[i].Value), aliases)...)
		}
	}
	return out
}

// number is a YAML number kept as written ("99.9" stays "99.9", never
// 99.90000000000001), also when quoted.
type number struct {
	Text string
	rat  *big.Rat
}

func (n *number) UnmarshalYAML(v *yaml.Node) error {
	if v.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: expected a number", v.Line)
	}
	r, ok := new(big.Rat).SetString(strings.TrimSpace(v.Value))
	if !ok {
		return fmt.Errorf("line %d: %q is not a number", v.Line, v.Value)
	}
	n.Text, n.rat = strings.TrimSpace(v.Value), r
	return nil
}

func (n *number) set() bool { return n != nil && n.rat != nil }

// decimal writes r as a decimal with at most 12 digits after the point
// (budgetgate's Decimal), exact when r has such a form; ok is false when it
// does not.
func decimal(r *big.Rat) (text string, exact bool) {
	for prec := 0; prec <= 12; prec++ {
		s := r.FloatString(prec)
		if back, _ := new(big.Rat).SetString(s); back.Cmp(r) == 0 {
			return s, true
		}
	}
	return r.FloatString(12), false
}

// percentOf is a fraction in (0, 1) written as a percentage: 0.999 → "99.9".
func percentOf(fraction *big.Rat) (string, bool) {
	return decimal(new(big.Rat).Mul(fraction, big.NewRat(100, 1)))
}

// stringOrList is an OpenSLO label value: a string or a list of strings.
type stringOrList []string

func (s *stringOrList) UnmarshalYAML(v *yaml.Node) error {
	switch v.Kind {
	case yaml.ScalarNode:
		*s = []string{v.Value}
		return nil
	case yaml.SequenceNode:
		var list []string
		if err := v.Decode(&list); err != nil {
			return err
		}
		*s = list
		return nil
	}
	return fmt.Errorf("line %d: a label value is a string or a list of strings", v.Line)
}

// anything accepts any YAML value (plugin configuration, status, connection details).
type anything struct{ node *yaml.Node }

func (a *anything) UnmarshalYAML(v *yaml.Node) error { a.node = v; return nil }

func (a *anything) set() bool { return a != nil && a.node != nil }

// String is the value as YAML flow, for messages.
func (a *anything) String() string {
	if a == nil || a.node == nil {
		return ""
	}
	c := *a.node
	setFlow(&c)
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	if err := enc.Encode(&c); err != nil {
		return ""
	}
	_ = enc.Close()
	return strings.TrimSpace(b.String())
}

func setFlow(n *yaml.Node) {
	if n.Kind == yaml.MappingNode || n.Kind == yaml.SequenceNode {
		n.Style = yaml.FlowStyle
	}
	for i, c := range n.Content {
		cc := *c
		setFlow(&cc)
		n.Content[i] = &cc
	}
}

// flowMap writes a string map as YAML flow, sorted, for messages: {a: b, c: d}.
func flowMap(m map[string]string) string {
	var parts []string
	for _, k := range sortedKeys(m) {
		parts = append(parts, k+": "+quoteIfNeeded(m[k]))
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

func quoteIfNeeded(s string) string {
	if s == "" || strings.ContainsAny(s, ":{}[],#&*!|>'\"%@`") || strings.TrimSpace(s) != s {
		return strconv.Quote(s)
	}
	return s
}
