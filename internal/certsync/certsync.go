// Package certsync keeps the webhook server's certificate files in step with
// the Secret that the built-in certificate rotation writes.
//
// The rotation (open-policy-agent/cert-controller) stores the CA and the
// serving certificate in a Secret and waits for the files to appear in the
// webhook server's certificate directory; it does not write them. Mounting the
// Secret as a volume would do it, but the kubelet refreshes Secret volumes only
// on its sync period (a minute or more), which delays every replica's first
// readiness and every rotation. Every replica runs Syncer instead: it reads
// the Secret from the manager's cache (which watches only that Secret) and
// writes tls.crt, tls.key and ca.crt atomically whenever they change, so a new
// certificate reaches each replica's webhook server (controller-runtime's
// certificate watcher reloads it) within a couple of seconds, without restart.
//
// A replica switches to a new certificate only once Trusted accepts it (the
// webhook configurations trust its CA, internal/certtrust): serving a
// certificate the API server does not trust yet fails every admission request
// that reaches the replica.
package certsync

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Files are the keys of the Secret written to the directory.
var Files = []string{"tls.crt", "tls.key", "ca.crt"}

// Syncer writes the certificate files of a Secret into a directory.
type Syncer struct {
	Reader   client.Reader
	Secret   types.NamespacedName
	Dir      string
	Interval time.Duration
	// Trusted, when set, must accept the Secret's data before a new
	// certificate is written; until then the replica keeps serving its
	// current one.
	Trusted func(ctx context.Context, data map[string][]byte) error
}

// NeedLeaderElection is false: every replica serves webhooks.
func (s *Syncer) NeedLeaderElection() bool { return false }

// Start syncs until ctx ends.
func (s *Syncer) Start(ctx context.Context) error {
	interval := s.Interval
	if interval <= 0 {
		interval = 2 * time.Second
	}
	log := ctrl.LoggerFrom(ctx).WithName("certsync").WithValues("secret", s.Secret.String(), "dir", s.Dir)
	t := time.NewTicker(interval)
	defer t.Stop()
	lastErr := ""
	for {
		changed, err := s.Sync(ctx)
		switch {
		case err != nil && err.Error() == lastErr:
			// Said already.
		case errors.Is(err, errNotTrusted):
			log.Info("Keeping the current webhook certificate until the new one is trusted", "reason", err.Error())
		case err != nil:
			log.Error(err, "Failed to write the webhook certificate files")
		case changed:
			log.Info("Wrote the webhook certificate files")
		}
		lastErr = ""
		if err != nil {
			lastErr = err.Error()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Sync writes the files that differ from the Secret's data, once the Secret
// holds all of them; it reports whether it wrote any.
func (s *Syncer) Sync(ctx context.Context) (bool, error) {
	secret := &corev1.Secret{}
	if err := s.Reader.Get(ctx, s.Secret, secret); err != nil {
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return false, fmt.Errorf("reading Secret %s: %w", s.Secret, err)
	}
	for _, f := range Files {
		if len(secret.Data[f]) == 0 {
			return false, nil // not issued yet
		}
	}
	if s.Trusted != nil && !s.serving(secret.Data) {
		if err := s.Trusted(ctx, secret.Data); err != nil {
			return false, fmt.Errorf("%w: %w", errNotTrusted, err)
		}
	}
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return false, err
	}
	changed := false
	// The key before the certificate: a reader that sees the new certificate
	// finds its key already in place.
	for _, f := range []string{"ca.crt", "tls.key", "tls.crt"} {
		path := filepath.Join(s.Dir, f)
		if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, secret.Data[f]) {
			continue
		}
		if err := writeAtomic(path, secret.Data[f]); err != nil {
			return changed, err
		}
		changed = true
	}
	return changed, nil
}

// errNotTrusted wraps Trusted's refusal.
var errNotTrusted = errors.New("not switching to the new webhook certificate")

// serving reports whether the directory already holds data's certificate and key.
func (s *Syncer) serving(data map[string][]byte) bool {
	for _, f := range []string{"tls.crt", "tls.key"} {
		old, err := os.ReadFile(filepath.Join(s.Dir, f))
		if err != nil || !bytes.Equal(old, data[f]) {
			return false
		}
	}
	return true
}

func writeAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		_ = tmp.Close()
		_ = os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		_ = os.Remove(tmp.Name())
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o600); err != nil {
		_ = os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), path)
}
