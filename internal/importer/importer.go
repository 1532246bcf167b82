// Package importer converts the SLO specifications of other tools into
// budgetgate's ServiceLevelObjectives, and their alerting into
// ErrorBudgetPolicies where it maps to burn-rate rules:
//
//   - Sloth: sloth.slok.dev/v1 PrometheusServiceLevel, the Sloth CLI spec
//     (version: prometheus/v1), and sloth.slok.dev/v1 AlertWindows (Sloth's
//     custom page and ticket windows);
//   - Pyrra: pyrra.dev/v1alpha1 ServiceLevelObjective;
//   - OpenSLO v1: openslo/v1 SLO, SLI, AlertPolicy, AlertCondition,
//     DataSource, Service and AlertNotificationTarget, inline or referenced
//     by name within the same input.
//
// It is pure: no client, no clock, no I/O; the kubectl plugin
// (internal/cli) reads the files and writes the result.
//
// What a conversion cannot carry over is said, never dropped silently. Every
// object comes with Findings: a Difference is something of the source the
// output does not keep, or keeps with another meaning (an alert's `for`, a
// calendar-aligned window, timeslice budgeting); a Note is something to know
// that changes nothing the source specified (the indicator written as a
// query indicator that measures what the source measured). An input that
// cannot become an SLO budgetgate can measure (a threshold metric, a Sloth
// SLI plugin, an unknown kind) is an error: Import returns every such error
// and no result, so that a partial conversion is never applied by accident.
package importer

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"

	slov1alpha1 "github.com/budgetgate/budgetgate/api/v1alpha1"
)

// Input is one file (or stdin) holding YAML documents.
type Input struct {
	// Name says where the data came from in messages, e.g. "sloth.yaml" or "-".
	Name string
	Data []byte
}

// Options adjust a conversion.
type Options struct {
	// Namespace, when set, is the namespace of every SLO written; unset, an
	// SLO keeps its source's namespace (Sloth's and Pyrra's Kubernetes
	// objects) or has none (kubectl apply puts it in the current namespace).
	Namespace string
	// SlothPeriod is the SLO period of Sloth SLOs (Sloth's
	// --default-slo-period), e.g. "28d". Unset: the sloPeriod of the
	// AlertWindows in the input when they all have the same one, else 30d
	// (Sloth's default).
	SlothPeriod string
	// PolicyPrefix starts the name of every ErrorBudgetPolicy written
	// ("team-a-" gives "team-a-sloth"): policies are cluster-scoped, and
	// two imports that write a policy of the same name overwrite each other.
	PolicyPrefix string
}

// Severity tells a Difference from a Note.
type Severity int

const (
	// Note is something to know that changes nothing the source specified.
	Note Severity = iota
	// Difference is something of the source the output does not keep, or
	// keeps with another meaning. `kubectl budgetgate import --strict` fails
	// on any.
	Difference
)

func (s Severity) String() string {
	if s == Difference {
		return "differs"
	}
	return "note"
}

// Finding is one thing the conversion has to say about an object.
type Finding struct {
	Severity Severity
	// Field is the field of the source it is about, e.g.
	// "slos[0].alerting.pageAlert.labels"; empty for the object as a whole.
	Field   string
	Message string
}

func (f Finding) String() string {
	if f.Field == "" {
		return f.Message
	}
	return f.Field + ": " + f.Message
}

// SLO is one ServiceLevelObjective written, and what the conversion says about it.
type SLO struct {
	Object *slov1alpha1.ServiceLevelObjective
	// From names its source, e.g. `sloth.yaml, document 1: Sloth
	// PrometheusServiceLevel default/myservice, SLO "requests-availability"`.
	From     string
	Findings []Finding
}

// Policy is one ErrorBudgetPolicy written for the alerting of one or more sources.
type Policy struct {
	Object *slov1alpha1.ErrorBudgetPolicy
	// From says what alerting it stands for.
	From     string
	Findings []Finding
	// UsedBy are the SLOs (namespace/name, or name without a namespace) whose policyRef names it.
	UsedBy []string
}

// Result is a conversion: the policies and SLOs to write, in the order of
// their sources.
type Result struct {
	Policies []*Policy
	SLOs     []*SLO
	// Documents counts the documents read, of any kind.
	Documents int
}

// Differences counts the Differences of every object.
func (r *Result) Differences() int {
	n := 0
	for _, p := range r.Policies {
		n += count(p.Findings, Difference)
	}
	for _, s := range r.SLOs {
		n += count(s.Findings, Difference)
	}
	return n
}

func count(fs []Finding, sev Severity) int {
	n := 0
	for _, f := range fs {
		if f.Severity == sev {
			n++
		}
	}
	return n
}

// DocumentError is an input document that could not be converted. It names
// the document: the input, its position among the input's documents (from
// 1), the line it starts on, and its kind when it has one.
type DocumentError struct {
	Input    string
	Document int
	Line     int
	Kind     string
	Err      error
}

func (e *DocumentError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: document %d", e.Input, e.Document)
	if e.Line > 0 {
		fmt.Fprintf(&b, " (line %d)", e.Line)
	}
	if e.Kind != "" {
		b.WriteString(", " + e.Kind)
	}
	b.WriteString(": " + e.Err.Error())
	return b.String()
}

func (e *DocumentError) Unwrap() error { return e.Err }

// ErrUnknownKind is wrapped by the error about a document of a kind no
// converter reads.
var ErrUnknownKind = errors.New("unknown kind")

// ErrUnsupported is wrapped by the errors about sources budgetgate cannot
// measure (a threshold metric, an SLI plugin, a non-Prometheus data source).
var ErrUnsupported = errors.New("no budgetgate equivalent")

// Import converts every document of the inputs. On any error it returns
// them all (errors.Join of *DocumentError) and no result.
func Import(inputs []Input, opts Options) (*Result, error) {
	if p := opts.PolicyPrefix; p != "" {
		if errs := validation.IsDNS1123Label(p + "x"); len(errs) > 0 || strings.HasSuffix(p, "--") {
			return nil, fmt.Errorf("the policy prefix %q: policy names are lower-case letters, digits and -, e.g. \"team-a-\"", p)
		}
	}
	docs, err := readAll(inputs)
	if err != nil {
		return nil, err
	}
	c := &converter{opts: opts, res: &Result{Documents: len(docs)}, policies: map[string]*Policy{}}
	var errs []error
	fail := func(d *document, err error) {
		errs = append(errs, &DocumentError{Input: d.input, Document: d.index, Line: d.line, Kind: d.kindText(), Err: err})
	}
	// Kinds that only hold definitions others refer to are read first, so
	// that the order of documents does not matter (OpenSLO's references,
	// Sloth's AlertWindows).
	var slothWindows []*document
	for _, d := range docs {
		switch d.format() {
		case formatSlothWindows:
			slothWindows = append(slothWindows, d)
		case formatOpenSLO:
			if err := c.openslo.add(d); err != nil {
				fail(d, err)
			}
		case formatUnknown:
			fail(d, d.unknownError())
		}
	}
	if err := c.readSlothWindows(slothWindows); err != nil {
		errs = append(errs, err)
	}
	for _, d := range docs {
		var err error
		switch d.format() {
		case formatSlothK8s, formatSlothCLI:
			err = c.sloth(d)
		case formatPyrra:
			err = c.pyrra(d)
		case formatOpenSLO:
			err = c.opensloDocument(d)
		default:
			continue
		}
		if err != nil {
			fail(d, err)
		}
	}
	if err := c.checkNames(); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return c.res, nil
}

// converter holds what converting the documents of one Import builds up.
type converter struct {
	opts     Options
	res      *Result
	policies map[string]*Policy
	openslo  openSLOIndex
	// slothWindows are the AlertWindows of the input by sloPeriod; slothPeriod
	// is the SLO period of Sloth SLOs.
	slothWindows map[string]*slothWindowSet
	slothPeriod  string
}

// addSLO records an SLO converted from a source.
func (c *converter) addSLO(s *SLO) { c.res.SLOs = append(c.res.SLOs, s) }

// usePolicy records that slo uses policy p, written once however many SLOs
// use it. Two sources that want different policies under the same name are
// an error.
func (c *converter) usePolicy(s *SLO, p *Policy) error {
	// Sources whose alerting differs but would give the same name get
	// name-2, name-3...
	base := c.opts.PolicyPrefix + p.Object.Name
	name := base
	for k := 2; ; k++ {
		have, ok := c.policies[name]
		if !ok {
			p.Object.Name = name
			if name != base {
				p.Findings = append(p.Findings, note("", "named %s: the policy %s written for other SLOs of the input differs from this one", name, base))
			}
			c.policies[name] = p
			c.res.Policies = append(c.res.Policies, p)
			break
		}
		if samePolicy(have.Object, p.Object) {
			p = have
			break
		}
		name = fmt.Sprintf("%s-%d", base, k)
	}
	s.Object.Spec.PolicyRef = &slov1alpha1.PolicyReference{Name: name}
	p.UsedBy = append(p.UsedBy, objectKey(s.Object.Namespace, s.Object.Name))
	return nil
}

func objectKey(namespace, name string) string {
	if namespace == "" {
		return name
	}
	return namespace + "/" + name
}

// checkNames fails when two SLOs would be the same object.
func (c *converter) checkNames() error {
	seen := map[string]*SLO{}
	var errs []error
	for _, s := range c.res.SLOs {
		key := objectKey(s.Object.Namespace, s.Object.Name)
		if first, dup := seen[key]; dup {
			errs = append(errs, fmt.Errorf("ServiceLevelObjective %s would be written twice: for %s and for %s; rename one of them (or import them into different namespaces with -n)",
				key, first.From, s.From))
			continue
		}
		seen[key] = s
	}
	return errors.Join(errs...)
}

// finding helpers
func differs(field, format string, args ...any) Finding {
	return Finding{Severity: Difference, Field: field, Message: fmt.Sprintf(format, args...)}
}

func note(field, format string, args ...any) Finding {
	return Finding{Severity: Note, Field: field, Message: fmt.Sprintf(format, args...)}
}

// sortedKeys returns the keys of a map in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
