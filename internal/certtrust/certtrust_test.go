package certtrust

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"math/big"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
)

var now = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

type keyPair struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func issue(t *testing.T, name string, notAfter time.Time, ca *keyPair) keyPair {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: now.Add(-time.Hour), NotAfter: notAfter, DNSNames: []string{name}}
	parent, signer := tmpl, key
	if ca == nil {
		tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
		tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature
	} else {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		parent, signer = ca.cert, ca.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, signer)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return keyPair{cert: c, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

var (
	secretKey = types.NamespacedName{Namespace: "budgetgate-system", Name: "budgetgate-webhook-server-cert"}
	webhooks  = []Webhook{{Name: "budgetgate-workload-release-gate"}, {Name: "budgetgate-mutating-webhook-configuration", Mutating: true}}
)

// cluster holds the two configurations, trusting bundle.
func cluster(t *testing.T, bundle []byte, objs ...client.Object) (client.Client, *Trust) {
	t.Helper()
	objs = append(objs,
		&admissionregistrationv1.ValidatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: webhooks[0].Name},
			Webhooks: []admissionregistrationv1.ValidatingWebhook{
				{Name: "a.budgetgate.dev", ClientConfig: admissionregistrationv1.WebhookClientConfig{CABundle: bundle}},
				{Name: "b.budgetgate.dev", ClientConfig: admissionregistrationv1.WebhookClientConfig{CABundle: bundle}}}},
		&admissionregistrationv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: webhooks[1].Name},
			Webhooks: []admissionregistrationv1.MutatingWebhook{
				{Name: "c.budgetgate.dev", ClientConfig: admissionregistrationv1.WebhookClientConfig{CABundle: bundle}}}},
	)
	c := fake.NewClientBuilder().WithObjects(objs...).Build()
	return c, &Trust{Secret: secretKey, Webhooks: webhooks, Reader: c, Client: c, Overlap: 10 * time.Minute,
		Now: func() time.Time { return now }}
}

func certsOf(t *testing.T, data []byte) []*x509.Certificate {
	t.Helper()
	cs, err := parseCerts(data)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

func TestKeepTrusted(t *testing.T) {
	ctx := context.Background()
	ca1 := issue(t, "budgetgate-ca", now.AddDate(10, 0, 0), nil)
	ca2 := issue(t, "budgetgate-ca", now.AddDate(10, 0, 0), nil)
	expired := issue(t, "budgetgate-ca", now.Add(-time.Minute), nil)
	secret := func(ca ...[]byte) *corev1.Secret {
		var b []byte
		for _, c := range ca {
			b = append(b, c...)
		}
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: secretKey.Namespace, Name: secretKey.Name},
			Data: map[string][]byte{CAKey: b}}
	}

	t.Run("a new CA keeps the trusted one after it", func(t *testing.T) {
		_, tr := cluster(t, append(append([]byte{}, ca1.pem...), expired.pem...))
		s := secret(ca2.pem)
		if err := tr.keepTrusted(ctx, s); err != nil {
			t.Fatal(err)
		}
		got := certsOf(t, s.Data[CAKey])
		if len(got) != 2 || !got[0].Equal(ca2.cert) || !got[1].Equal(ca1.cert) {
			t.Fatalf("ca.crt holds %d CAs, want the new one then the trusted one (the expired one dropped)", len(got))
		}
		if want := now.Add(10 * time.Minute).Format(time.RFC3339); s.Annotations[OverlapUntilAnnotation] != want {
			t.Errorf("overlap until %q, want %q", s.Annotations[OverlapUntilAnnotation], want)
		}
	})
	t.Run("at most two replaced CAs stay", func(t *testing.T) {
		ca0 := issue(t, "budgetgate-ca", now.AddDate(10, 0, 0), nil)
		ca3 := issue(t, "budgetgate-ca", now.AddDate(10, 0, 0), nil)
		_, tr := cluster(t, append(append(append([]byte{}, ca2.pem...), ca1.pem...), ca0.pem...))
		s := secret(ca3.pem)
		if err := tr.keepTrusted(ctx, s); err != nil {
			t.Fatal(err)
		}
		got := certsOf(t, s.Data[CAKey])
		if len(got) != 3 || !got[0].Equal(ca3.cert) || !got[1].Equal(ca2.cert) || !got[2].Equal(ca1.cert) {
			t.Fatalf("ca.crt holds %d CAs, want the new one and the two newest it replaced", len(got))
		}
	})
	t.Run("a renewed server certificate under the same CA changes nothing", func(t *testing.T) {
		_, tr := cluster(t, ca1.pem)
		s := secret(ca1.pem)
		if err := tr.keepTrusted(ctx, s); err != nil {
			t.Fatal(err)
		}
		if string(s.Data[CAKey]) != string(ca1.pem) || s.Annotations != nil {
			t.Errorf("ca.crt or annotations changed: %d CAs, %v", len(certsOf(t, s.Data[CAKey])), s.Annotations)
		}
	})
	t.Run("the first CA of a fresh install has nothing to keep", func(t *testing.T) {
		_, tr := cluster(t, nil)
		s := secret(ca1.pem)
		if err := tr.keepTrusted(ctx, s); err != nil {
			t.Fatal(err)
		}
		if string(s.Data[CAKey]) != string(ca1.pem) || s.Annotations != nil {
			t.Errorf("ca.crt or annotations changed on a fresh install")
		}
	})
	t.Run("through the rotation's client", func(t *testing.T) {
		c, tr := cluster(t, ca1.pem, secret(ca1.pem))
		s := &corev1.Secret{}
		if err := c.Get(ctx, secretKey, s); err != nil {
			t.Fatal(err)
		}
		s.Data[CAKey] = ca2.pem
		rc := &rotatorClient{Client: c, t: tr}
		if err := rc.Update(ctx, s); err != nil {
			t.Fatal(err)
		}
		if err := c.Get(ctx, secretKey, s); err != nil {
			t.Fatal(err)
		}
		if got := certsOf(t, s.Data[CAKey]); len(got) != 2 {
			t.Errorf("the Secret written holds %d CAs, want 2", len(got))
		}
	})
}

func TestInjectLive(t *testing.T) {
	ctx := context.Background()
	ca1 := issue(t, "budgetgate-ca", now.AddDate(10, 0, 0), nil)
	ca2 := issue(t, "budgetgate-ca", now.AddDate(10, 0, 0), nil)
	live := append(append([]byte{}, ca2.pem...), ca1.pem...)
	c, tr := cluster(t, ca1.pem, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: secretKey.Namespace, Name: secretKey.Name},
		Data: map[string][]byte{CAKey: live}})
	// The rotation injects what its cache holds: the old CA.
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(admissionregistrationv1.SchemeGroupVersion.WithKind("ValidatingWebhookConfiguration"))
	if err := c.Get(ctx, types.NamespacedName{Name: webhooks[0].Name}, u); err != nil {
		t.Fatal(err)
	}
	rc := &rotatorClient{Client: c, t: tr}
	if err := rc.Update(ctx, u); err != nil {
		t.Fatal(err)
	}
	got := &admissionregistrationv1.ValidatingWebhookConfiguration{}
	if err := c.Get(ctx, types.NamespacedName{Name: webhooks[0].Name}, got); err != nil {
		t.Fatal(err)
	}
	for _, h := range got.Webhooks {
		if string(h.ClientConfig.CABundle) != string(live) {
			t.Errorf("webhook %s trusts %d CAs, want the live Secret's 2", h.Name, len(certsOf(t, h.ClientConfig.CABundle)))
		}
	}
	// Not one of budgetgate's: left alone.
	other := &unstructured.Unstructured{}
	other.SetGroupVersionKind(admissionregistrationv1.SchemeGroupVersion.WithKind("ValidatingWebhookConfiguration"))
	other.SetName("someone-else")
	_ = unstructured.SetNestedSlice(other.Object, []any{map[string]any{"name": "x.example.com",
		"clientConfig": map[string]any{"caBundle": base64.StdEncoding.EncodeToString(ca1.pem)}}}, "webhooks")
	if tr.isWebhook(other) {
		t.Error("someone else's webhook configuration taken for budgetgate's")
	}
}

func TestTrusted(t *testing.T) {
	ctx := context.Background()
	ca1 := issue(t, "budgetgate-ca", now.AddDate(10, 0, 0), nil)
	ca2 := issue(t, "budgetgate-ca", now.AddDate(10, 0, 0), nil)
	leaf2 := issue(t, "budgetgate-webhook-service.budgetgate-system.svc", now.AddDate(1, 0, 0), &ca2)
	data := map[string][]byte{corev1.TLSCertKey: leaf2.pem}

	_, tr := cluster(t, ca1.pem)
	if err := tr.Trusted(ctx, data); !errors.Is(err, ErrNotTrusted) {
		t.Errorf("certificate of a CA the configurations do not trust: %v, want ErrNotTrusted", err)
	}
	_, tr = cluster(t, append(append([]byte{}, ca1.pem...), ca2.pem...))
	if err := tr.Trusted(ctx, data); err != nil {
		t.Errorf("certificate of a CA in every bundle: %v", err)
	}
	_, tr = cluster(t, nil)
	if err := tr.Trusted(ctx, data); !errors.Is(err, ErrNotTrusted) {
		t.Errorf("configurations not injected yet: %v, want ErrNotTrusted", err)
	}
	empty := fake.NewClientBuilder().Build()
	tr = &Trust{Secret: secretKey, Webhooks: webhooks, Reader: empty, Client: empty}
	if err := tr.Trusted(ctx, data); err != nil {
		t.Errorf("no configuration exists (nothing calls the webhook): %v", err)
	}
}

func TestTend(t *testing.T) {
	ctx := context.Background()
	ca1 := issue(t, "budgetgate-ca", now.AddDate(10, 0, 0), nil)
	ca2 := issue(t, "budgetgate-ca", now.AddDate(10, 0, 0), nil)

	t.Run("a deleted Secret is created again, empty", func(t *testing.T) {
		c, tr := cluster(t, ca1.pem)
		if err := tr.Tend(ctx); err != nil {
			t.Fatal(err)
		}
		s := &corev1.Secret{}
		if err := c.Get(ctx, secretKey, s); err != nil {
			t.Fatalf("Secret not created: %v", err)
		}
		if len(s.Data) != 0 || s.Annotations[RecreatedAnnotation] == "" {
			t.Errorf("created Secret: data %v, annotations %v; want empty data and %s", s.Data, s.Annotations, RecreatedAnnotation)
		}
		if err := tr.Tend(ctx); err != nil {
			t.Errorf("second pass: %v", err)
		}
	})
	t.Run("the replaced CAs go when their overlap ends", func(t *testing.T) {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: secretKey.Namespace, Name: secretKey.Name,
			Annotations: map[string]string{OverlapUntilAnnotation: now.Add(time.Minute).Format(time.RFC3339)}},
			Data: map[string][]byte{CAKey: append(append([]byte{}, ca2.pem...), ca1.pem...), "tls.crt": []byte("x")}}
		c, tr := cluster(t, nil, s)
		if err := tr.Tend(ctx); err != nil {
			t.Fatal(err)
		}
		got := &corev1.Secret{}
		_ = c.Get(ctx, secretKey, got)
		if n := len(certsOf(t, got.Data[CAKey])); n != 2 {
			t.Fatalf("within the overlap: %d CAs, want 2", n)
		}
		tr.Now = func() time.Time { return now.Add(time.Minute) }
		if err := tr.Tend(ctx); err != nil {
			t.Fatal(err)
		}
		_ = c.Get(ctx, secretKey, got)
		cas := certsOf(t, got.Data[CAKey])
		if len(cas) != 1 || !cas[0].Equal(ca2.cert) || got.Annotations[OverlapUntilAnnotation] != "" || string(got.Data["tls.crt"]) != "x" {
			t.Errorf("after the overlap: %d CAs (want the current one only), annotation %q, tls.crt %q",
				len(cas), got.Annotations[OverlapUntilAnnotation], got.Data["tls.crt"])
		}
	})
	t.Run("Ensure leaves an existing Secret alone", func(t *testing.T) {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: secretKey.Namespace, Name: secretKey.Name},
			Data: map[string][]byte{CAKey: ca1.pem}}
		c, tr := cluster(t, nil, s)
		if err := tr.Ensure(ctx); err != nil {
			t.Fatal(err)
		}
		got := &corev1.Secret{}
		if err := c.Get(ctx, secretKey, got); err != nil || string(got.Data[CAKey]) != string(ca1.pem) {
			t.Errorf("existing Secret changed: %v", err)
		}
		if err := c.Delete(ctx, got); err != nil {
			t.Fatal(err)
		}
		if err := tr.Ensure(ctx); err != nil {
			t.Fatal(err)
		}
		if err := c.Get(ctx, secretKey, got); apierrors.IsNotFound(err) {
			t.Error("Ensure did not create the missing Secret")
		}
	})
}
