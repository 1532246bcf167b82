package promconn

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	slov1alpha1 "github.com/budgetgate/budgetgate/api/v1alpha1"
)

const example = `
connections:
- name: default
  url: http://prometheus-operated.monitoring.svc:9090
- name: mimir-shop
  url: https://mimir.example/prometheus
  namespace_selector: team in (shop, checkout)
  http_client_config:
    basic_auth: {username: shop, password_file: secrets/mimir/password}
    tls_config: {ca_file: /etc/ca.crt}
    http_headers:
      X-Scope-OrgID: {values: [shop]}
    proxy_url: http://proxy.example:3128
`

func TestParse(t *testing.T) {
	s, err := Parse([]byte(example), "/etc/budgetgate/prometheus")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(s.Names(), ","); got != "default,mimir-shop" {
		t.Errorf("Names() = %s", got)
	}
	c, ok := s.Get("mimir-shop")
	if !ok {
		t.Fatal("mimir-shop missing")
	}
	h := c.HTTPClientConfig
	if h.BasicAuth == nil || h.BasicAuth.PasswordFile != "/etc/budgetgate/prometheus/secrets/mimir/password" {
		t.Errorf("a relative password_file is relative to the file's directory: %+v", h.BasicAuth)
	}
	if h.TLSConfig.CAFile != "/etc/ca.crt" || h.HTTPHeaders == nil || h.HTTPHeaders.Headers["X-Scope-OrgID"].Values[0] != "shop" ||
		h.ProxyURL.URL == nil || h.ProxyURL.Host != "proxy.example:3128" {
		t.Errorf("http_client_config not read whole: %+v", h)
	}
}

// Every mistake a platform could make in the file stops the manager with a
// message that names the connection and the field, rather than sending
// requests without the credentials it meant.
func TestParseRejects(t *testing.T) {
	for _, tc := range []struct{ name, file, want string }{
		{"empty", ``, "no connections"},
		{"misspelt credentials field", `
connections:
- name: default
  url: http://p:9090
  http_client_config:
    authorization: {credential_file: /token}`, "field credential_file not found"},
		{"unknown connection field", `
connections:
- name: default
  address: http://p:9090`, "field address not found"},
		{"not a URL", `
connections:
- name: default
  url: prometheus:9090`, `connection "default": url "prometheus:9090" is not an http(s) URL`},
		{"credentials in the URL", `
connections:
- name: default
  url: http://user:pw@p:9090`, "url carries credentials"},
		{"twice", `
connections:
- {name: a, url: "http://p:9090"}
- {name: a, url: "http://q:9090"}`, `connection "a" is defined twice`},
		{"bad name", `
connections:
- {name: Mimir_Shop, url: "http://p:9090"}`, `name "Mimir_Shop"`},
		{"bad selector", `
connections:
- {name: a, url: "http://p:9090", namespace_selector: "team in shop"}`, `connection "a": namespace_selector`},
		{"two kinds of credentials", `
connections:
- name: a
  url: http://p:9090
  http_client_config:
    basic_auth: {username: u, password_file: /p}
    authorization: {credentials_file: /t}`, `connections[0] (a): at most one of basic_auth, oauth2 & authorization`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.file), "/")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Parse = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "connections.yaml")
	if err := os.WriteFile(path, []byte(example), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if c, _ := s.Get("mimir-shop"); c.HTTPClientConfig.BasicAuth.PasswordFile != filepath.Join(dir, "secrets/mimir/password") {
		t.Errorf("password_file %s, want it under %s", c.HTTPClientConfig.BasicAuth.PasswordFile, dir)
	}
	if _, err := Load(filepath.Join(dir, "missing.yaml")); err == nil {
		t.Error("a missing file loads")
	}
}

func TestResolve(t *testing.T) {
	s, err := Parse([]byte(example), "/")
	if err != nil {
		t.Fatal(err)
	}
	shop := map[string]string{"team": "shop"}
	if c, err := s.Resolve("mimir-shop", "shop", shop); err != nil || c.Name != "mimir-shop" {
		t.Errorf("mimir-shop in a shop namespace: %v, %v", c, err)
	}
	if !s.NeedsNamespaceLabels("mimir-shop") || s.NeedsNamespaceLabels("default") || s.NeedsNamespaceLabels("nope") {
		t.Error("NeedsNamespaceLabels: only a connection with a selector needs them")
	}
	// Another team cannot read the shop tenant, nor borrow its Prometheus.
	_, err = s.Resolve("mimir-shop", "payments", map[string]string{"team": "payments"})
	if !errors.Is(err, ErrNotAllowed) || !strings.Contains(err.Error(), `"team in (shop, checkout)"`) || !strings.Contains(err.Error(), "namespace payments") {
		t.Errorf("mimir-shop in payments: %v", err)
	}
	_, err = s.Resolve("mimir-shop", "payments", nil)
	if !errors.Is(err, ErrNotAllowed) {
		t.Errorf("mimir-shop in an unlabelled namespace: %v", err)
	}
	_, err = s.Resolve("thanos", "shop", shop)
	if !errors.Is(err, ErrUnknown) || !strings.Contains(err.Error(), "name one of default, mimir-shop") {
		t.Errorf("unknown: %v", err)
	}
	noDefault, err := FromAddresses(map[string]string{"a": "http://a:9090", "b": "http://b:9090"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = noDefault.Resolve(DefaultName, "shop", nil)
	if !errors.Is(err, ErrUnknown) || !strings.Contains(err.Error(), "there is no default connection: set spec.prometheus.connection to one of a, b") {
		t.Errorf("default without one: %v", err)
	}
	var none *Set
	if _, err := none.Resolve(DefaultName, "shop", nil); !errors.Is(err, ErrUnknown) {
		t.Errorf("nil set: %v", err)
	}
}

func TestNameOf(t *testing.T) {
	spec := &slov1alpha1.ServiceLevelObjectiveSpec{}
	if NameOf(spec) != DefaultName {
		t.Error("no spec.prometheus: default")
	}
	spec.Prometheus = &slov1alpha1.PrometheusSource{}
	if NameOf(spec) != DefaultName {
		t.Error("empty connection: default")
	}
	spec.Prometheus.Connection = "mimir-shop"
	if NameOf(spec) != "mimir-shop" {
		t.Error("named")
	}
}

func TestMergeAndFromAddress(t *testing.T) {
	s, err := Parse([]byte("connections: [{name: thanos, url: 'http://thanos:9090'}]"), "/")
	if err != nil {
		t.Fatal(err)
	}
	def, err := FromAddress("http://localhost:9090")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Merge(def); err != nil || s.Len() != 2 {
		t.Fatalf("Merge: %v, %d connections", err, s.Len())
	}
	if err := s.Merge(def); err == nil {
		t.Error("merging a second default passed")
	}
	if _, err := FromAddress("localhost:9090"); err == nil || !strings.Contains(err.Error(), "--prometheus-address") {
		t.Errorf("FromAddress of a non-URL: %v", err)
	}
}

// The connection's queries in flight never exceed its bound, whatever the
// number of callers; a caller whose context ends while waiting gives up.
func TestLimited(t *testing.T) {
	var inFlight, peak atomic.Int32
	release := make(chan struct{})
	next := roundTripFunc(func(*http.Request) (*http.Response, error) {
		n := inFlight.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		<-release
		inFlight.Add(-1)
		return &http.Response{StatusCode: 200, Body: http.NoBody}, nil
	})
	l := &limited{next: next, slots: make(chan struct{}, 3)}
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			req, _ := http.NewRequest("GET", "http://p/api/v1/query", nil)
			if _, err := l.RoundTrip(req); err != nil {
				t.Error(err)
			}
		})
	}
	for inFlight.Load() < 3 {
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://p/api/v1/query", nil)
	if _, err := l.RoundTrip(req); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a request waiting past its deadline: %v", err)
	}
	close(release)
	wg.Wait()
	if peak.Load() != 3 {
		t.Errorf("peak in flight %d, want 3", peak.Load())
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
