package promconn_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/budgetgate/budgetgate/internal/promconn"
	"github.com/budgetgate/budgetgate/internal/sli"
	prometheustest "github.com/budgetgate/budgetgate/test/prometheus"
)

// TestBehindAuthenticatingProxy puts a real Prometheus behind a reverse proxy
// that authenticates the way Mimir, Cortex and Thanos gateways are fronted
// (bearer token, basic auth, client certificates, a tenant header), and a
// forward proxy in front of it. Each connection of a connections file, read
// by the manager's own loader, measures the SLI with the right credentials,
// fails with a message naming the refusal with wrong ones, and picks up a
// rotated credential file without a new client.
func TestBehindAuthenticatingProxy(t *testing.T) {
	bins := prometheustest.Require(t)
	end := time.Now().Truncate(time.Minute).Add(-5 * time.Minute)
	var total, errs []prometheustest.Sample
	for i := 0; i <= 120; i++ { // 2 hours, 1,000 requests a minute, 1% errors
		at := end.Add(time.Duration(i-120) * time.Minute)
		total = append(total, prometheustest.Sample{T: at, V: float64(990 * i)})
		errs = append(errs, prometheustest.Sample{T: at, V: float64(10 * i)})
	}
	dataDir := t.TempDir()
	bins.Backfill(t, dataDir, prometheustest.Family{Name: "http_requests", Type: "counter", Series: []prometheustest.Series{
		{Metric: `http_requests_total{job="checkout",code="200"}`, Samples: total},
		{Metric: `http_requests_total{job="checkout",code="500"}`, Samples: errs},
	}})
	prom := bins.Start(t, prometheustest.Options{DataDir: dataDir})
	target, err := url.Parse(prom.URL)
	if err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	ca := newCA(t)
	write := func(name, content string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("ca.crt", ca.certPEM)
	clientCert, clientKey := ca.issue(t, "budgetgate", x509.ExtKeyUsageClientAuth)
	write("client.crt", clientCert)
	write("client.key", clientKey)
	strangerCA := newCA(t)
	strangerCert, strangerKey := strangerCA.issue(t, "stranger", x509.ExtKeyUsageClientAuth)
	write("stranger.crt", strangerCert)
	write("stranger.key", strangerKey)
	write("token", "token-1\n")
	write("wrong-token", "token-0\n")
	write("password", "pw-1")
	write("wrong-password", "pw-0")

	// The gateway: each path prefix asks for one kind of credential, then
	// forwards to Prometheus.
	forward := httputil.NewSingleHostReverseProxy(target)
	gatewayHits := map[string]*atomic.Int64{}
	authorized := map[string]func(*http.Request) bool{
		"/bearer": func(r *http.Request) bool { return r.Header.Get("Authorization") == "Bearer token-1" },
		"/basic": func(r *http.Request) bool {
			u, p, ok := r.BasicAuth()
			return ok && u == "shop" && p == "pw-1"
		},
		"/mtls": func(r *http.Request) bool {
			return r.TLS != nil && len(r.TLS.VerifiedChains) > 0 && r.TLS.PeerCertificates[0].Subject.CommonName == "budgetgate"
		},
		"/tenant": func(r *http.Request) bool {
			return r.Header.Get("X-Scope-OrgID") == "shop" && r.Header.Get("Authorization") == "Bearer token-1"
		},
	}
	for prefix := range authorized {
		gatewayHits[prefix] = &atomic.Int64{}
	}
	gateway := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for prefix, ok := range authorized {
			if rest, found := strings.CutPrefix(r.URL.Path, prefix+"/"); found {
				gatewayHits[prefix].Add(1)
				if !ok(r) {
					http.Error(w, "401 Unauthorized", http.StatusUnauthorized)
					return
				}
				r.URL.Path = "/" + rest
				forward.ServeHTTP(w, r)
				return
			}
		}
		http.NotFound(w, r)
	}))
	serverCert, serverKey := ca.issue(t, "127.0.0.1", x509.ExtKeyUsageServerAuth)
	pair, err := tls.X509KeyPair([]byte(serverCert), []byte(serverKey))
	if err != nil {
		t.Fatal(err)
	}
	gateway.TLS = &tls.Config{Certificates: []tls.Certificate{pair}, ClientAuth: tls.VerifyClientCertIfGiven, ClientCAs: ca.pool}
	gateway.StartTLS()
	t.Cleanup(gateway.Close)

	// A forward proxy (proxy_url) for plain HTTP, as a corporate egress proxy.
	var proxied atomic.Int64
	egress := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proxied.Add(1)
		out := r.Clone(r.Context())
		out.RequestURI = ""
		resp, err := http.DefaultTransport.RoundTrip(out)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
	}))
	t.Cleanup(egress.Close)

	g := gateway.URL
	write("connections.yaml", `
connections:
- name: bearer
  url: `+g+`/bearer
  http_client_config:
    authorization: {credentials_file: token}
    tls_config: {ca_file: ca.crt}
- name: bearer-wrong
  url: `+g+`/bearer
  http_client_config:
    authorization: {credentials_file: wrong-token}
    tls_config: {ca_file: ca.crt}
- name: basic
  url: `+g+`/basic
  http_client_config:
    basic_auth: {username: shop, password_file: password}
    tls_config: {ca_file: ca.crt}
- name: basic-wrong
  url: `+g+`/basic
  http_client_config:
    basic_auth: {username: shop, password_file: wrong-password}
    tls_config: {ca_file: ca.crt}
- name: mtls
  url: `+g+`/mtls
  http_client_config:
    tls_config: {ca_file: ca.crt, cert_file: client.crt, key_file: client.key}
- name: mtls-stranger
  url: `+g+`/mtls
  http_client_config:
    tls_config: {ca_file: ca.crt, cert_file: stranger.crt, key_file: stranger.key}
- name: tenant
  url: `+g+`/tenant
  http_client_config:
    authorization: {credentials_file: token}
    tls_config: {ca_file: ca.crt}
    http_headers:
      X-Scope-OrgID: {values: [shop]}
- name: tenant-missing
  url: `+g+`/tenant
  http_client_config:
    authorization: {credentials_file: token}
    tls_config: {ca_file: ca.crt}
- name: untrusted-server
  url: `+g+`/bearer
  http_client_config:
    authorization: {credentials_file: token}
- name: via-proxy
  url: `+prom.URL+`
  http_client_config:
    proxy_url: `+egress.URL+`
`)
	conns, err := promconn.Load(filepath.Join(dir, "connections.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	ind := sli.Indicator{Ratio: &sli.Ratio{
		Errors: `http_requests_total{job="checkout",code=~"5.."}`,
		Total:  `http_requests_total{job="checkout"}`,
	}}
	measure := func(name string) (float64, error) {
		t.Helper()
		c, ok := conns.Get(name)
		if !ok {
			t.Fatalf("no connection %s", name)
		}
		src, err := c.Source(sli.WithClock(func() time.Time { return end }), sli.WithTimeout(5*time.Second))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got, err := src.Measure(context.Background(), ind, []time.Duration{time.Hour})
		return got[time.Hour].ErrorRatio, err
	}

	for _, name := range []string{"bearer", "basic", "mtls", "tenant", "via-proxy"} {
		ratio, err := measure(name)
		if err != nil {
			t.Errorf("%s: %v", name, err)
		} else if math.Abs(ratio-0.01) > 1e-9 {
			t.Errorf("%s: error ratio %v, want 0.01", name, ratio)
		}
	}
	if proxied.Load() == 0 {
		t.Error("via-proxy did not go through proxy_url")
	}
	for _, tc := range []struct{ name, want string }{
		{"bearer-wrong", "401 Unauthorized"},
		{"basic-wrong", "401 Unauthorized"},
		{"mtls-stranger", "tls: unknown certificate authority"},
		{"tenant-missing", "401 Unauthorized"},
		{"untrusted-server", "certificate signed by unknown authority"},
	} {
		_, err := measure(tc.name)
		var refused *sli.RefusedError
		if strings.HasPrefix(tc.want, "401") && !errors.As(err, &refused) {
			t.Errorf("%s: %v is not a RefusedError", tc.name, err)
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error saying %q", tc.name, err, tc.want)
		} else {
			t.Logf("%s: %v", tc.name, err)
		}
	}

	// A rotated Secret (the mounted file changes) takes effect on the next
	// query of the same client.
	c, _ := conns.Get("bearer-wrong")
	src, err := c.Source(sli.WithClock(func() time.Time { return end }))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := src.Measure(context.Background(), ind, []time.Duration{time.Hour}); err == nil {
		t.Fatal("wrong token accepted")
	}
	write("wrong-token", "token-1\n")
	if _, err := src.Measure(context.Background(), ind, []time.Duration{time.Hour}); err != nil {
		t.Errorf("after the token file was rotated: %v", err)
	}
}

type testCA struct {
	cert    *x509.Certificate
	key     *ecdsa.PrivateKey
	certPEM string
	pool    *x509.CertPool
}

func newCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool,
		certPEM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))}
}

// issue returns a certificate for cn (an IP address is also its SAN) and its key, in PEM.
func (ca *testCA) issue(t *testing.T, cn string, usage x509.ExtKeyUsage) (certPEM, keyPEM string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
	}
	if ip := net.ParseIP(cn); ip != nil {
		tmpl.IPAddresses = []net.IP{ip}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}))
}
