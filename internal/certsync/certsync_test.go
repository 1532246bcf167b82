package certsync

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
)

func TestSync(t *testing.T) {
	key := types.NamespacedName{Namespace: "budgetgate-system", Name: "cert"}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name}}
	c := fake.NewClientBuilder().WithObjects(secret).Build()
	dir := filepath.Join(t.TempDir(), "certs")
	s := &Syncer{Reader: c, Secret: key, Dir: dir}
	ctx := context.Background()

	// Empty, as shipped: nothing written yet.
	if changed, err := s.Sync(ctx); err != nil || changed {
		t.Fatalf("empty Secret: changed %v, %v", changed, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "tls.crt")); !os.IsNotExist(err) {
		t.Fatalf("tls.crt written from an empty Secret: %v", err)
	}
	// Issued: all three files, once.
	secret.Data = map[string][]byte{"tls.crt": []byte("cert-1"), "tls.key": []byte("key-1"), "ca.crt": []byte("ca-1"), "ca.key": []byte("never")}
	if err := c.Update(ctx, secret); err != nil {
		t.Fatal(err)
	}
	if changed, err := s.Sync(ctx); err != nil || !changed {
		t.Fatalf("issued: changed %v, %v", changed, err)
	}
	if changed, err := s.Sync(ctx); err != nil || changed {
		t.Fatalf("unchanged: changed %v, %v", changed, err)
	}
	// Rotated: the new certificate replaces the old.
	secret.Data["tls.crt"], secret.Data["tls.key"] = []byte("cert-2"), []byte("key-2")
	if err := c.Update(ctx, secret); err != nil {
		t.Fatal(err)
	}
	if changed, err := s.Sync(ctx); err != nil || !changed {
		t.Fatalf("rotated: changed %v, %v", changed, err)
	}
	for f, want := range map[string]string{"tls.crt": "cert-2", "tls.key": "key-2", "ca.crt": "ca-1"} {
		got, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil || string(got) != want {
			t.Errorf("%s = %q, %v; want %q", f, got, err, want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "ca.key")); !os.IsNotExist(err) {
		t.Errorf("the CA key must never be written to disk")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 3 {
		t.Errorf("files left in %s: %v", dir, entries)
	}
}

// A replica keeps its certificate until Trusted accepts the new one.
func TestSyncWaitsForTrust(t *testing.T) {
	key := types.NamespacedName{Namespace: "budgetgate-system", Name: "cert"}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name},
		Data: map[string][]byte{"tls.crt": []byte("cert-1"), "tls.key": []byte("key-1"), "ca.crt": []byte("ca-1")}}
	c := fake.NewClientBuilder().WithObjects(secret).Build()
	dir := filepath.Join(t.TempDir(), "certs")
	trusted := "cert-1"
	asked := 0
	s := &Syncer{Reader: c, Secret: key, Dir: dir, Trusted: func(_ context.Context, data map[string][]byte) error {
		asked++
		if string(data["tls.crt"]) != trusted {
			return errors.New("CA not in the caBundle")
		}
		return nil
	}}
	ctx := context.Background()
	if changed, err := s.Sync(ctx); err != nil || !changed {
		t.Fatalf("first certificate, trusted: changed %v, %v", changed, err)
	}
	if changed, err := s.Sync(ctx); err != nil || changed || asked != 1 {
		t.Fatalf("unchanged: changed %v, %v, Trusted asked %d times (want once: not for what is served)", changed, err, asked)
	}
	secret.Data = map[string][]byte{"tls.crt": []byte("cert-2"), "tls.key": []byte("key-2"), "ca.crt": []byte("ca-2")}
	if err := c.Update(ctx, secret); err != nil {
		t.Fatal(err)
	}
	changed, err := s.Sync(ctx)
	if changed || !errors.Is(err, errNotTrusted) {
		t.Fatalf("new certificate, not trusted yet: changed %v, %v", changed, err)
	}
	for f, want := range map[string]string{"tls.crt": "cert-1", "tls.key": "key-1", "ca.crt": "ca-1"} {
		if got, _ := os.ReadFile(filepath.Join(dir, f)); string(got) != want {
			t.Errorf("%s = %q while the new certificate is not trusted, want %q", f, got, want)
		}
	}
	trusted = "cert-2"
	if changed, err := s.Sync(ctx); err != nil || !changed {
		t.Fatalf("new certificate, trusted: changed %v, %v", changed, err)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "tls.crt")); string(got) != "cert-2" {
		t.Errorf("tls.crt = %q, want cert-2", got)
	}
}
