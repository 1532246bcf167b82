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

// Command local-webhook lets a kube-apiserver running on this machine call the
// operator's webhook server running on this machine too, without openssl:
//
//	go run ./hack/local-webhook --cert-dir .cluster/certs --url https://127.0.0.1:9443 \
//	    config/webhook/manifests.yaml config/webhook/workloads.yaml > .cluster/webhooks.yaml
//
// How it works: it makes (or reuses, while valid for another day) a self-signed
// CA and a serving certificate for 127.0.0.1, ::1 and localhost in --cert-dir
// (ca.crt, tls.crt, tls.key: the names the manager's --webhook-cert-path
// expects), then reads the webhook configurations given as arguments and writes
// them to stdout with every service clientConfig replaced by a URL clientConfig
// (--url + the service path) that carries the CA as its caBundle. Everything
// else (rules, matchConditions, failurePolicy, namespaceSelector, timeouts) is
// kept as written. Documents that are not webhook configurations (kustomize
// files, Services) are dropped.
package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"sigs.k8s.io/yaml"
)

func main() {
	certDir := flag.String("cert-dir", ".cluster/certs", "Directory for ca.crt, tls.crt and tls.key.")
	url := flag.String("url", "https://127.0.0.1:9443", "Base URL the API server reaches the webhook server at.")
	validFor := flag.Duration("valid-for", 365*24*time.Hour, "Validity of newly made certificates.")
	flag.Parse()
	if err := run(*certDir, *url, *validFor, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "local-webhook:", err)
		os.Exit(1)
	}
}

func run(certDir, url string, validFor time.Duration, files []string) error {
	hosts := []string{"127.0.0.1", "::1", "localhost"}
	caPEM, err := ensureCerts(certDir, hosts, validFor, time.Now())
	if err != nil {
		return err
	}
	var out bytes.Buffer
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		docs, err := render(data, strings.TrimSuffix(url, "/"), caPEM)
		if err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		for _, d := range docs {
			out.WriteString("---\n")
			out.Write(d)
		}
	}
	_, err = os.Stdout.Write(out.Bytes())
	return err
}

var docSeparator = regexp.MustCompile(`(?m)^---[ \t]*$`)

// render turns the webhook configurations in a multi-document YAML file into
// URL-based ones trusting caPEM.
func render(data []byte, baseURL string, caPEM []byte) ([][]byte, error) {
	var out [][]byte
	for _, doc := range docSeparator.Split(string(data), -1) {
		var obj map[string]any
		if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
			return nil, err
		}
		kind, _ := obj["kind"].(string)
		if kind != "ValidatingWebhookConfiguration" && kind != "MutatingWebhookConfiguration" {
			continue
		}
		webhooks, _ := obj["webhooks"].([]any)
		for i, w := range webhooks {
			wh, ok := w.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("webhook %d is not an object", i)
			}
			cc, _ := wh["clientConfig"].(map[string]any)
			path := ""
			if svc, ok := cc["service"].(map[string]any); ok {
				path, _ = svc["path"].(string)
			} else if u, ok := cc["url"].(string); ok {
				// Already a URL: keep its path, point it here.
				if i := strings.Index(strings.TrimPrefix(u, "https://"), "/"); i >= 0 {
					path = strings.TrimPrefix(u, "https://")[i:]
				}
			}
			if path == "" {
				return nil, fmt.Errorf("webhook %v has no service path", wh["name"])
			}
			wh["clientConfig"] = map[string]any{"url": baseURL + path, "caBundle": caPEM}
		}
		y, err := yaml.Marshal(obj)
		if err != nil {
			return nil, err
		}
		out = append(out, y)
	}
	return out, nil
}

// ensureCerts returns the CA certificate in dir, making a CA and a serving
// certificate for hosts unless valid ones for those hosts exist.
func ensureCerts(dir string, hosts []string, validFor time.Duration, now time.Time) ([]byte, error) {
	caFile, crtFile, keyFile := filepath.Join(dir, "ca.crt"), filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	if caPEM, err := os.ReadFile(caFile); err == nil && usable(caPEM, crtFile, keyFile, hosts, now) {
		return caPEM, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	notBefore := now.Add(-time.Hour)
	ca := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "budgetgate local webhook CA"},
		NotBefore:             notBefore,
		NotAfter:              now.Add(validFor),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	leaf := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: "budgetgate-webhook"},
		NotBefore:    notBefore,
		NotAfter:     now.Add(validFor),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			leaf.IPAddresses = append(leaf.IPAddresses, ip)
		} else {
			leaf.DNSNames = append(leaf.DNSNames, h)
		}
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &key.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	// Key first, then the certificate: the manager's certificate watcher reloads
	// on change, and a pair is only complete once both are written.
	for _, f := range []struct {
		name string
		data []byte
		mode os.FileMode
	}{
		{keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600},
		{crtFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER}), 0o644},
		{caFile, caPEM, 0o644},
	} {
		if err := os.WriteFile(f.name, f.data, f.mode); err != nil {
			return nil, err
		}
	}
	return caPEM, nil
}

// usable says whether the serving pair in crtFile/keyFile is signed by caPEM,
// covers hosts and stays valid for at least another day.
func usable(caPEM []byte, crtFile, keyFile string, hosts []string, now time.Time) bool {
	pair, err := tls.LoadX509KeyPair(crtFile, keyFile)
	if err != nil {
		return false
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return false
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return false
	}
	for _, h := range hosts {
		if _, err := leaf.Verify(x509.VerifyOptions{
			DNSName: h, Roots: pool, CurrentTime: now.Add(24 * time.Hour),
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		}); err != nil {
			return false
		}
	}
	return true
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126))
	if err != nil {
		panic(errors.Join(errors.New("no randomness"), err))
	}
	return n
}
