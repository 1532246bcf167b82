package webhook

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func TestCertificateExpiry(t *testing.T) {
	dir := t.TempDir()
	write := func(file string, notAfter time.Time) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: file}, NotBefore: time.Now().Add(-time.Hour), NotAfter: notAfter}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, file), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(CertificateExpiry{Dir: dir})
	gather := func() map[string]float64 {
		t.Helper()
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]float64{}
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				out[m.GetLabel()[0].GetValue()] = m.GetGauge().GetValue()
			}
		}
		return out
	}
	if got := gather(); len(got) != 0 {
		t.Errorf("no files yet: %v, want no series", got)
	}
	serving, ca := time.Unix(1800000000, 0), time.Unix(1900000000, 0)
	write("tls.crt", serving)
	write("ca.crt", ca)
	if got := gather(); got["serving"] != 1.8e9 || got["ca"] != 1.9e9 || len(got) != 2 {
		t.Errorf("got %v, want serving 1.8e9 and ca 1.9e9", got)
	}
	// A rotation writes new files: the next scrape reads them.
	write("tls.crt", serving.Add(24*time.Hour))
	if got := gather(); got["serving"] != 1.8e9+86400 {
		t.Errorf("after rotation: %v", got)
	}
	// A file that does not parse is left out.
	if err := os.WriteFile(filepath.Join(dir, "ca.crt"), []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := gather(); len(got) != 1 {
		t.Errorf("with a broken ca.crt: %v, want the serving certificate only", got)
	}
}
