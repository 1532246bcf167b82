package workload

import (
	"context"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
)

// DefaultDiscoveryInterval is how often Discovery looks whether the optional
// kinds are served: a CRD installed (or removed) while the manager runs is
// seen within this time.
const DefaultDiscoveryInterval = 30 * time.Second

// Discovery keeps the registry's record of which optional kinds (Argo
// Rollouts) the API server serves, so that the manager starts without their
// CRDs and gates them once the CRDs appear. It is a manager Runnable: it
// looks when it starts, then every Interval, with one discovery request per
// optional kind (GET /apis/GROUP/VERSION; a 404 says not served), never a
// watch or a cache of CRDs.
//
// Only the SLO controller depends on it (it lists and marks the workloads of
// the served kinds); the webhooks gate an optional kind whenever the API
// server sends one, which it does only while it serves the kind, so a
// Rollout is gated from the moment its CRD exists.
type Discovery struct {
	Kinds *Registry
	// Client is the API server's discovery (*discovery.DiscoveryClient).
	Client ResourceDiscoverer
	// Interval between looks; DefaultDiscoveryInterval when 0.
	Interval time.Duration
}

// ResourceDiscoverer is the part of client-go's discovery client Discovery uses.
type ResourceDiscoverer interface {
	ServerResourcesForGroupVersionWithContext(ctx context.Context, groupVersion string) (*metav1.APIResourceList, error)
}

// Start looks now and then every Interval until ctx ends.
func (d *Discovery) Start(ctx context.Context) error {
	interval := d.Interval
	if interval <= 0 {
		interval = DefaultDiscoveryInterval
	}
	d.Refresh(ctx)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			d.Refresh(ctx)
		}
	}
}

// NeedLeaderElection: only the leader lists workloads, so only it needs to know.
func (d *Discovery) NeedLeaderElection() bool { return true }

// Refresh asks once whether each optional kind is served and records the
// answers, logging every change. A failed request leaves the kind's record as
// it was.
func (d *Discovery) Refresh(ctx context.Context) {
	log := logf.FromContext(ctx).WithName("kinds")
	for _, k := range d.Kinds.All() {
		if !k.Optional {
			continue
		}
		served, err := d.served(ctx, k)
		if err != nil {
			log.Error(err, "Failed to discover whether a gated kind is served; keeping what was known", "kind", k.String())
			continue
		}
		if !d.Kinds.SetServed(k.GVK.GroupKind(), served) {
			continue
		}
		if served {
			log.Info("Gating "+k.String()+"s: the API server serves them", "resource", k.Resource+"."+k.GVK.Group, "version", k.GVK.Version)
		} else {
			log.V(1).Info("Not listing "+k.String()+"s: the API server does not serve them", "resource", k.Resource+"."+k.GVK.Group, "version", k.GVK.Version)
		}
	}
}

func (d *Discovery) served(ctx context.Context, k Kind) (bool, error) {
	gv := k.GVK.GroupVersion().String()
	list, err := d.Client.ServerResourcesForGroupVersionWithContext(ctx, gv)
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("discovering %s: %w", gv, err)
	}
	for _, r := range list.APIResources {
		if r.Name == k.Resource {
			return true, nil
		}
	}
	return false, nil
}
