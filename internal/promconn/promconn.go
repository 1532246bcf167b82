// Package promconn holds the Prometheus connections the platform configures
// for the operator: a name, the URL of a Prometheus HTTP API (or of anything
// that answers its query API: Thanos, Mimir, Cortex, VictoriaMetrics), which
// namespaces' SLOs may use it, and how to reach it, in prometheus/common's HTTP
// client configuration (bearer token or basic auth read from files, TLS CA and
// client certificates, headers such as X-Scope-OrgID, a proxy).
//
// An SLO names a connection (spec.prometheus.connection, "default" when
// unset); it can no longer give the operator an address to call. The file
// the manager reads (--prometheus-connections) is
//
//	connections:
//	- name: default
//	  url: https://mimir.monitoring.svc:8080/prometheus
//	  namespace_selector: "tenant in (shop, payments)"   # optional: who may name it
//	  http_client_config:                                # prometheus/common's HTTPClientConfig
//	    authorization: {credentials_file: /etc/budgetgate/prometheus/secrets/mimir/token}
//	    http_headers: {X-Scope-OrgID: {values: [shop]}}
//
// Credentials are files (mounted Secrets of the operator's namespace), read at
// every request, so a rotated Secret takes effect without a restart.
package promconn

import (
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/prometheus/common/config"
	"go.yaml.in/yaml/v2"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"

	slov1alpha1 "github.com/budgetgate/budgetgate/api/v1alpha1"
	"github.com/budgetgate/budgetgate/internal/sli"
)

// DefaultName is the connection of SLOs that name none.
const DefaultName = "default"

// DefaultMaxConcurrentQueries bounds the queries in flight to one connection
// unless it says otherwise: the SLO controller's 8 workers at
// sli.MaxConcurrentQueries each could otherwise send 32 at once.
const DefaultMaxConcurrentQueries = 16

// Connection is one named Prometheus.
type Connection struct {
	// Name is what SLOs write in spec.prometheus.connection: a DNS label.
	Name string `yaml:"name"`
	// URL is the base URL of the Prometheus HTTP API (without /api/v1).
	URL string `yaml:"url"`
	// NamespaceSelector, a label selector in kubectl's syntax ("team=shop",
	// "tenant in (a,b)"), limits the connection to SLOs in namespaces whose
	// labels it matches. Empty: every namespace.
	NamespaceSelector string `yaml:"namespace_selector,omitempty"`
	// HTTPClientConfig is how to reach it.
	HTTPClientConfig config.HTTPClientConfig `yaml:"http_client_config,omitempty"`
	// MaxConcurrentQueries bounds the queries in flight to it from all SLOs
	// together; more wait, within their evaluation's deadline.
	// 0: DefaultMaxConcurrentQueries.
	MaxConcurrentQueries int `yaml:"max_concurrent_queries,omitempty"`

	selector labels.Selector
}

// Set is the connections the operator knows, by name. The zero value and nil
// know none.
type Set struct {
	byName map[string]*Connection
}

// FromAddress is the Set of one connection named "default" to address,
// without authentication: the manager's --prometheus-address.
func FromAddress(address string) (*Set, error) {
	s, err := FromAddresses(map[string]string{DefaultName: address})
	if err != nil {
		return nil, fmt.Errorf("--prometheus-address: %w", err)
	}
	return s, nil
}

// FromAddresses is the Set of connections by name to their URL, without
// authentication and open to every namespace.
func FromAddresses(urls map[string]string) (*Set, error) {
	s := &Set{}
	for _, name := range slices.Sorted(maps.Keys(urls)) {
		if err := s.add(&Connection{Name: name, URL: urls[name]}); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Load reads a connections file. Relative file names in it (credentials,
// certificates) are relative to the file's directory, as in Prometheus.
func Load(path string) (*Set, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading Prometheus connections: %w", err)
	}
	s, err := Parse(data, filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("Prometheus connections in %s: %w", path, err)
	}
	return s, nil
}

// Parse reads the connections file's content; dir resolves relative file
// names. Unknown fields are errors, so a misspelt credentials_file does not
// quietly send requests without credentials.
func Parse(data []byte, dir string) (*Set, error) {
	// Each connection is decoded on its own, so that an error names it.
	var f struct {
		Connections []yaml.MapSlice `yaml:"connections"`
	}
	if err := yaml.UnmarshalStrict(data, &f); err != nil {
		return nil, err
	}
	if len(f.Connections) == 0 {
		return nil, errors.New("no connections: write connections: [{name: default, url: http://prometheus.monitoring:9090}]")
	}
	s := &Set{}
	for i, raw := range f.Connections {
		where := fmt.Sprintf("connections[%d]", i)
		for _, item := range raw {
			if item.Key == "name" {
				where = fmt.Sprintf("connections[%d] (%v)", i, item.Value)
			}
		}
		one, err := yaml.Marshal(raw)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		c := &Connection{}
		if err := yaml.UnmarshalStrict(one, c); err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		c.HTTPClientConfig.SetDirectory(dir)
		if err := s.add(c); err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
	}
	return s, nil
}

// Merge adds the connections of o to s; a name in both is an error.
func (s *Set) Merge(o *Set) error {
	for _, name := range o.Names() {
		if err := s.add(o.byName[name]); err != nil {
			return err
		}
	}
	return nil
}

func (s *Set) add(c *Connection) error {
	if errs := validation.IsDNS1123Label(c.Name); len(errs) > 0 {
		return fmt.Errorf("name %q: %s", c.Name, strings.Join(errs, "; "))
	}
	if _, ok := s.byName[c.Name]; ok {
		return fmt.Errorf("connection %q is defined twice", c.Name)
	}
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("connection %q: url %q is not an http(s) URL, e.g. http://prometheus.monitoring:9090", c.Name, c.URL)
	}
	if u.User != nil {
		return fmt.Errorf("connection %q: url carries credentials: put them in http_client_config.basic_auth with password_file", c.Name)
	}
	if c.MaxConcurrentQueries < 0 {
		return fmt.Errorf("connection %q: max_concurrent_queries must be positive, or 0 for the default %d", c.Name, DefaultMaxConcurrentQueries)
	}
	if err := c.HTTPClientConfig.Validate(); err != nil {
		return fmt.Errorf("connection %q: http_client_config: %w", c.Name, err)
	}
	c.selector = labels.Everything()
	if c.NamespaceSelector != "" {
		sel, err := labels.Parse(c.NamespaceSelector)
		if err != nil {
			return fmt.Errorf("connection %q: namespace_selector: %w", c.Name, err)
		}
		c.selector = sel
	}
	if s.byName == nil {
		s.byName = map[string]*Connection{}
	}
	s.byName[c.Name] = c
	return nil
}

// Names lists the connections' names, sorted.
func (s *Set) Names() []string {
	if s == nil {
		return nil
	}
	names := make([]string, 0, len(s.byName))
	for n := range s.byName {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Len is the number of connections.
func (s *Set) Len() int {
	if s == nil {
		return 0
	}
	return len(s.byName)
}

// NameOf is the connection an SLO names: spec.prometheus.connection, else DefaultName.
func NameOf(spec *slov1alpha1.ServiceLevelObjectiveSpec) string {
	if spec.Prometheus != nil && spec.Prometheus.Connection != "" {
		return spec.Prometheus.Connection
	}
	return DefaultName
}

// ErrUnknown is wrapped by Resolve's error for a name no connection has.
var ErrUnknown = errors.New("unknown Prometheus connection")

// ErrNotAllowed is wrapped by Resolve's error for a connection the
// namespace may not use.
var ErrNotAllowed = errors.New("Prometheus connection not allowed in this namespace")

// NeedsNamespaceLabels says whether Resolve of name looks at the namespace's
// labels, so that callers fetch them only then.
func (s *Set) NeedsNamespaceLabels(name string) bool {
	c, ok := s.Get(name)
	return ok && c.NamespaceSelector != ""
}

// Get is the connection named name.
func (s *Set) Get(name string) (*Connection, bool) {
	if s == nil {
		return nil, false
	}
	c, ok := s.byName[name]
	return c, ok
}

// Resolve is the connection name for an SLO in namespace, whose labels are
// nsLabels. Its errors say what to write instead.
func (s *Set) Resolve(name, namespace string, nsLabels map[string]string) (*Connection, error) {
	c, ok := s.Get(name)
	if !ok {
		if s.Len() == 0 {
			return nil, fmt.Errorf("%w %q: the operator has no Prometheus connections (--prometheus-address or --prometheus-connections)", ErrUnknown, name)
		}
		hint := fmt.Sprintf("name one of %s", strings.Join(s.Names(), ", "))
		if name == DefaultName {
			hint = fmt.Sprintf("there is no default connection: set spec.prometheus.connection to one of %s", strings.Join(s.Names(), ", "))
		}
		return nil, fmt.Errorf("%w %q: %s (the platform configures connections)", ErrUnknown, name, hint)
	}
	if !c.selector.Matches(labels.Set(nsLabels)) {
		return nil, fmt.Errorf("%w: Prometheus connection %q is for namespaces matching %q, and namespace %s does not match; ask the platform team which connection serves it",
			ErrNotAllowed, name, c.NamespaceSelector, namespace)
	}
	return c, nil
}

// Source is an SLI source that queries the connection with its HTTP client
// configuration. Credential and certificate files are read again as they
// change, so one Source serves for the life of the manager.
func (c *Connection) Source(opts ...sli.Option) (sli.Source, error) {
	rt, err := config.NewRoundTripperFromConfig(c.HTTPClientConfig, "budgetgate-"+c.Name)
	if err != nil {
		return nil, fmt.Errorf("Prometheus connection %q: %w", c.Name, err)
	}
	limit := c.MaxConcurrentQueries
	if limit == 0 {
		limit = DefaultMaxConcurrentQueries
	}
	rt = &limited{next: rt, slots: make(chan struct{}, limit)}
	src, err := sli.NewPrometheus(c.URL, append(slices.Clip(opts), sli.WithRoundTripper(rt))...)
	if err != nil {
		return nil, fmt.Errorf("Prometheus connection %q: %w", c.Name, err)
	}
	return src, nil
}

// limited is a RoundTripper with at most cap(slots) requests in flight; a
// request waits for a slot until its context ends.
type limited struct {
	next  http.RoundTripper
	slots chan struct{}
}

func (l *limited) RoundTrip(req *http.Request) (*http.Response, error) {
	select {
	case l.slots <- struct{}{}:
	case <-req.Context().Done():
		return nil, fmt.Errorf("waiting for one of the %d query slots of the connection: %w", cap(l.slots), req.Context().Err())
	}
	defer func() { <-l.slots }()
	return l.next.RoundTrip(req)
}
