package certsync

import (
	"context"
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
