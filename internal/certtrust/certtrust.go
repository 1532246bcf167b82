// Package certtrust keeps the API server trusting every replica's webhook
// certificate while the built-in rotation (open-policy-agent/cert-controller
// v0.16) replaces it, and keeps the rotation working when its Secret is gone.
//
// Left to itself, the rotation has two gaps:
//
//   - When it issues a new CA (the Secret was emptied, or the CA is near
//     expiry), it writes the new CA alone into the webhook configurations.
//     Until every replica has loaded the new certificate, the API server
//     trusts only the new CA while replicas still serve certificates of the
//     old one; and a replica that loads the new certificate before the
//     configurations carry its CA is not trusted either. Either way admission
//     requests fail, and the release gate fails open.
//   - It never creates its Secret. Deleted, the Secret stays gone: nothing is
//     re-issued, and every replica that starts afterwards exits ("could not
//     refresh cert on startup"), so the next restart takes the webhook down
//     for good.
//
// Trust closes both. Its Manager gives the rotation a client that, when the
// rotation writes a new CA into the Secret, keeps the CAs the webhook
// configurations trust now after it in ca.crt (the rotation injects ca.crt
// whole, and signs with its first certificate); that injects each
// configuration from the Secret as it is now, not from the rotation's cache,
// which may lag. Trusted tells internal/certsync whether the configurations
// trust a certificate yet, so a replica switches only then. And as a runnable
// on every replica, Trust recreates a deleted Secret (empty: the rotation
// fills it) and, once Overlap has passed, drops the replaced CAs from ca.crt
// (and so from the configurations).
package certtrust

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"
)

const (
	// CAKey is the Secret's CA bundle: the current CA first, then the CAs it
	// replaced while they are still trusted.
	CAKey = "ca.crt"
	// OverlapUntilAnnotation on the Secret is when the replaced CAs in ca.crt
	// stop being trusted.
	OverlapUntilAnnotation = "budgetgate.dev/ca-overlap-until"
	// RecreatedAnnotation marks a Secret that Trust created because it was missing.
	RecreatedAnnotation = "budgetgate.dev/recreated-at"
	// MaxReplaced is how many replaced CAs stay trusted next to the current
	// one: rotations in quick succession do not grow the bundles without end.
	MaxReplaced = 2
)

// Webhook names a webhook configuration that trusts the certificate.
type Webhook struct {
	Name     string
	Mutating bool
}

// Trust keeps the webhook certificate trusted across rotations; see the package documentation.
type Trust struct {
	// Secret is the rotation's Secret.
	Secret types.NamespacedName
	// Webhooks are the configurations the rotation injects the CA into.
	Webhooks []Webhook
	// Reader reads uncached (mgr.GetAPIReader()): the Secret and the
	// configurations as they are now.
	Reader client.Reader
	// Client reads the Secret from the manager's cache and writes it.
	Client client.Client
	// Overlap is how long the CAs a new CA replaced stay trusted. Replicas
	// switch to the new certificate within seconds; Overlap covers one that
	// is slow to see the new Secret.
	Overlap time.Duration
	// Interval is how often the runnable looks at the Secret; 2s by default.
	Interval time.Duration
	// Now is the clock; time.Now by default.
	Now func() time.Time
}

func (t *Trust) now() time.Time {
	if t.Now != nil {
		return t.Now()
	}
	return time.Now()
}

// Manager returns mgr with its client wrapped for the rotation: pass it to
// rotator.AddRotator, which writes through mgr.GetClient().
func (t *Trust) Manager(mgr manager.Manager) manager.Manager {
	return rotatorManager{Manager: mgr, c: &rotatorClient{Client: mgr.GetClient(), t: t}}
}

type rotatorManager struct {
	manager.Manager
	c client.Client
}

func (m rotatorManager) GetClient() client.Client { return m.c }

// rotatorClient is the rotation's client: its writes of the Secret keep the
// trusted CAs, its writes of the configurations carry the live Secret's CAs.
type rotatorClient struct {
	client.Client
	t *Trust
}

func (c *rotatorClient) Update(ctx context.Context, obj client.Object, opts ...client.UpdateOption) error {
	switch o := obj.(type) {
	case *corev1.Secret:
		if client.ObjectKeyFromObject(o) == c.t.Secret {
			if err := c.t.keepTrusted(ctx, o); err != nil {
				return err
			}
		}
	case *unstructured.Unstructured:
		if c.t.isWebhook(o) {
			if err := c.t.injectLive(ctx, o); err != nil {
				return err
			}
		}
	}
	return c.Client.Update(ctx, obj, opts...)
}

// keepTrusted runs before the rotation writes the Secret. When ca.crt starts
// with a CA the configurations do not trust yet, the CAs they trust now (and
// that have not expired) follow it, until Overlap from now.
func (t *Trust) keepTrusted(ctx context.Context, s *corev1.Secret) error {
	cas, err := parseCerts(s.Data[CAKey])
	if err != nil || len(cas) == 0 {
		return nil // the rotation's own business
	}
	trusted, err := t.trustedCAs(ctx)
	if err != nil {
		return fmt.Errorf("reading the CAs budgetgate's webhook configurations trust before replacing the CA: %w", err)
	}
	current := cas[0]
	if containsCert(trusted, current) {
		return nil // not a new CA
	}
	now := t.now()
	keep := []*x509.Certificate{current}
	// Newest first: ca.crt and each caBundle list the current CA, then those it replaced.
	for _, c := range append(append([]*x509.Certificate{}, cas[1:]...), trusted...) {
		if len(keep) > MaxReplaced {
			break
		}
		if now.Before(c.NotAfter) && !containsCert(keep, c) {
			keep = append(keep, c)
		}
	}
	if len(keep) == 1 {
		return nil // the first CA (nothing trusted yet), or only expired ones to keep
	}
	s.Data[CAKey] = encodeCerts(keep)
	if s.Annotations == nil {
		s.Annotations = map[string]string{}
	}
	s.Annotations[OverlapUntilAnnotation] = now.Add(t.Overlap).UTC().Format(time.RFC3339)
	ctrl.LoggerFrom(ctx).WithName("certtrust").Info("Keeping the replaced CAs trusted next to the new one",
		"secret", t.Secret.String(), "newCA", current.Subject.String(), "notBefore", current.NotBefore,
		"keptCAs", len(keep)-1, "until", s.Annotations[OverlapUntilAnnotation])
	return nil
}

// injectLive sets every caBundle of a configuration the rotation is about to
// write to the Secret's ca.crt as the API server has it now. The rotation
// injects from its own cache, which can lag behind a CA rotation another
// replica just wrote, and would then take the new CA away again.
func (t *Trust) injectLive(ctx context.Context, u *unstructured.Unstructured) error {
	s := &corev1.Secret{}
	if err := t.Reader.Get(ctx, t.Secret, s); err != nil {
		return fmt.Errorf("reading Secret %s before injecting its CA: %w", t.Secret, err)
	}
	bundle := s.Data[CAKey]
	if cas, err := parseCerts(bundle); err != nil || len(cas) == 0 {
		return nil // nothing better to inject than what the rotation has
	}
	hooks, found, err := unstructured.NestedSlice(u.Object, "webhooks")
	if err != nil || !found {
		return err
	}
	encoded := base64.StdEncoding.EncodeToString(bundle)
	for i := range hooks {
		h, ok := hooks[i].(map[string]any)
		if !ok {
			continue
		}
		if err := unstructured.SetNestedField(h, encoded, "clientConfig", "caBundle"); err != nil {
			return err
		}
	}
	return unstructured.SetNestedSlice(u.Object, hooks, "webhooks")
}

func (t *Trust) isWebhook(u *unstructured.Unstructured) bool {
	gvk := u.GroupVersionKind()
	if gvk.Group != admissionregistrationv1.GroupName {
		return false
	}
	for _, w := range t.Webhooks {
		kind := "ValidatingWebhookConfiguration"
		if w.Mutating {
			kind = "MutatingWebhookConfiguration"
		}
		if gvk.Kind == kind && u.GetName() == w.Name {
			return true
		}
	}
	return false
}

// bundles returns the caBundle of every webhook of every configuration that exists.
func (t *Trust) bundles(ctx context.Context) ([][]byte, error) {
	var out [][]byte
	for _, w := range t.Webhooks {
		key := types.NamespacedName{Name: w.Name}
		var err error
		if w.Mutating {
			c := &admissionregistrationv1.MutatingWebhookConfiguration{}
			if err = t.Reader.Get(ctx, key, c); err == nil {
				for _, h := range c.Webhooks {
					out = append(out, h.ClientConfig.CABundle)
				}
			}
		} else {
			c := &admissionregistrationv1.ValidatingWebhookConfiguration{}
			if err = t.Reader.Get(ctx, key, c); err == nil {
				for _, h := range c.Webhooks {
					out = append(out, h.ClientConfig.CABundle)
				}
			}
		}
		if err != nil && !apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("reading webhook configuration %s: %w", w.Name, err)
		}
	}
	return out, nil
}

// trustedCAs are the certificates in any caBundle of the configurations.
func (t *Trust) trustedCAs(ctx context.Context) ([]*x509.Certificate, error) {
	bundles, err := t.bundles(ctx)
	if err != nil {
		return nil, err
	}
	var out []*x509.Certificate
	for _, b := range bundles {
		certs, _ := parseCerts(b)
		for _, c := range certs {
			if !containsCert(out, c) {
				out = append(out, c)
			}
		}
	}
	return out, nil
}

// ErrNotTrusted is wrapped by Trusted's error when a configuration does not
// trust the certificate (yet).
var ErrNotTrusted = errors.New("not trusted by budgetgate's webhook configurations yet")

// Trusted returns nil when every webhook of every configuration that exists
// trusts the serving certificate in data (the Secret's tls.crt): the API
// server will accept it from a replica. internal/certsync asks before it
// switches a replica to a new certificate.
func (t *Trust) Trusted(ctx context.Context, data map[string][]byte) error {
	leaf, err := parseCerts(data[corev1.TLSCertKey])
	if err != nil || len(leaf) == 0 {
		return fmt.Errorf("parsing tls.crt: %w", errors.Join(err, errors.New("no certificate")))
	}
	bundles, err := t.bundles(ctx)
	if err != nil {
		return err
	}
	for _, b := range bundles {
		roots := x509.NewCertPool()
		if !roots.AppendCertsFromPEM(b) {
			return fmt.Errorf("certificate %q: %w (a webhook has no CA)", leaf[0].Subject, ErrNotTrusted)
		}
		if _, err := leaf[0].Verify(x509.VerifyOptions{Roots: roots, CurrentTime: t.now(),
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
			return fmt.Errorf("certificate issued by %q: %w", leaf[0].Issuer, ErrNotTrusted)
		}
	}
	return nil
}

// NeedLeaderElection is false: the rotation runs on every replica, and so
// must its Secret.
func (t *Trust) NeedLeaderElection() bool { return false }

// Start recreates the Secret when it is missing and drops the replaced CAs
// once their overlap ends, until ctx ends.
func (t *Trust) Start(ctx context.Context) error {
	interval := t.Interval
	if interval <= 0 {
		interval = 2 * time.Second
	}
	log := ctrl.LoggerFrom(ctx).WithName("certtrust").WithValues("secret", t.Secret.String())
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		if err := t.Tend(ctx); err != nil && !apierrors.IsConflict(err) {
			log.Error(err, "Failed to tend the webhook certificate Secret")
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// Tend makes one pass: the Secret exists, and holds no CA past its overlap.
func (t *Trust) Tend(ctx context.Context) error {
	s := &corev1.Secret{}
	err := t.Client.Get(ctx, t.Secret, s)
	if apierrors.IsNotFound(err) {
		return t.Ensure(ctx)
	}
	if err != nil {
		return err
	}
	until, ok := s.Annotations[OverlapUntilAnnotation]
	if !ok {
		return nil
	}
	end, err := time.Parse(time.RFC3339, until)
	if err == nil && t.now().Before(end) {
		return nil
	}
	cas, _ := parseCerts(s.Data[CAKey])
	s = s.DeepCopy()
	delete(s.Annotations, OverlapUntilAnnotation)
	if len(cas) > 1 {
		s.Data[CAKey] = encodeCerts(cas[:1])
	}
	if err := t.Client.Update(ctx, s); err != nil {
		return fmt.Errorf("dropping the replaced CAs from Secret %s: %w", t.Secret, err)
	}
	ctrl.LoggerFrom(ctx).WithName("certtrust").Info("Dropped the replaced CAs: their overlap ended",
		"secret", t.Secret.String(), "dropped", len(cas)-1)
	return nil
}

// Ensure creates the Secret, empty, when it does not exist; the rotation
// then issues a CA and certificate into it. main.go calls it before the
// manager starts too: the rotation cannot start without its Secret.
func (t *Trust) Ensure(ctx context.Context) error {
	err := t.Reader.Get(ctx, t.Secret, &corev1.Secret{})
	if !apierrors.IsNotFound(err) {
		return err
	}
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{
		Namespace:   t.Secret.Namespace,
		Name:        t.Secret.Name,
		Labels:      map[string]string{"app.kubernetes.io/name": "budgetgate"},
		Annotations: map[string]string{RecreatedAnnotation: t.now().UTC().Format(time.RFC3339)},
	}}
	err = t.Client.Create(ctx, s)
	if apierrors.IsAlreadyExists(err) {
		return nil // another replica was first
	}
	if err != nil {
		return fmt.Errorf("creating the missing webhook certificate Secret %s: %w", t.Secret, err)
	}
	ctrl.LoggerFrom(ctx).WithName("certtrust").Info("Created the missing webhook certificate Secret; the rotation issues a new CA and certificate into it",
		"secret", t.Secret.String())
	return nil
}

func parseCerts(data []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return out, nil
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return out, err
		}
		out = append(out, c)
	}
}

func encodeCerts(certs []*x509.Certificate) []byte {
	var b bytes.Buffer
	for _, c := range certs {
		_ = pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	return b.Bytes()
}

func containsCert(list []*x509.Certificate, c *x509.Certificate) bool {
	for _, l := range list {
		if l.Equal(c) {
			return true
		}
	}
	return false
}
