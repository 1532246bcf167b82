package main

import (
	"context"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// The admission burst is a small measurement of its own: no shared admission
// load generator existed in the repository when it was written. It is
// open-loop: updates start on a fixed schedule whatever the latency, and each
// latency counts from the scheduled start, so a slow webhook cannot slow the
// load down and hide itself (coordinated omission).

type workloadRef struct{ namespace, name string }

// admissionTargets picks n distinct Deployments, interleaving namespaces:
// frozen ones (gated by a burning SLO) or not.
func admissionTargets(l layout, frozen bool, n int) []workloadRef {
	var out []workloadRef
	for j := 0; j < l.perNamespace && len(out) < n; j++ {
		if l.burns(j%l.slosPerNamespace) != frozen {
			continue
		}
		for i := 0; i < l.namespaces && len(out) < n; i++ {
			out = append(out, workloadRef{namespaceName(i), workloadName(j)})
		}
	}
	return out
}

// admissionBursts runs, at each rate of --admission-rate, one burst on
// workloads no frozen SLO gates (the allow path) and one on frozen workloads
// (the deny path, which reads the revision history).
func (b *bench) admissionBursts(ctx context.Context) error {
	for _, rate := range b.cfg.admissionRates {
		n := int(math.Round(rate * b.cfg.admissionDuration.Seconds()))
		for _, sc := range []struct {
			name   string
			frozen bool
		}{{"allow-not-frozen", false}, {"deny-frozen", true}} {
			targets := admissionTargets(b.cfg.layout, sc.frozen, n)
			if len(targets) < n {
				b.rep.Notes = append(b.rep.Notes, fmt.Sprintf("admission %s at %g/s: only %d distinct workloads for %d updates",
					sc.name, rate, len(targets), n))
			}
			a, err := b.admissionBurst(ctx, sc.name, rate, targets)
			if err != nil {
				return err
			}
			b.rep.Admission = append(b.rep.Admission, a)
			// Let the Deployment controller write the new ReplicaSets before the next burst.
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(5 * time.Second):
			}
		}
	}
	return nil
}

var (
	releaseWebhook = map[string]string{"name": "releases.budgetgate.dev", "operation": "UPDATE"}
	managerWebhook = map[string]string{"webhook": "/validate-apps-v1-workloads"}
	releaseGate    = map[string]string{"name": "releases.budgetgate.dev"}
)

func (b *bench) admissionBurst(ctx context.Context, name string, rate float64, targets []workloadRef) (admission, error) {
	a := admission{Scenario: name, Source: "test/bench/scale (own open-loop burst)", TargetRate: rate}
	logf("admission %s: %d pod-template updates at %g/s", name, len(targets), rate)
	as0, err := b.apiserverMetrics(ctx)
	if err != nil {
		return a, err
	}
	ms0, err := b.mgr.scrape(ctx)
	if err != nil {
		return a, err
	}
	run := time.Now().UnixNano()
	var (
		mu        sync.Mutex
		latencies = make([]time.Duration, 0, len(targets))
		wg        sync.WaitGroup
	)
	interval := time.Duration(float64(time.Second) / rate)
	start := time.Now()
	for k, t := range targets {
		at := start.Add(time.Duration(k) * interval)
		if d := time.Until(at); d > 0 {
			time.Sleep(d)
		}
		wg.Go(func() {
			patch := fmt.Appendf(nil, `{"spec":{"template":{"metadata":{"annotations":{%q:"%d-%d"}}}}}`, releaseAnnotation, run, k)
			_, err := b.cs.AppsV1().Deployments(t.namespace).Patch(ctx, t.name, types.MergePatchType, patch,
				metav1.PatchOptions{FieldManager: fieldManager})
			lat := time.Since(at)
			mu.Lock()
			defer mu.Unlock()
			latencies = append(latencies, lat)
			switch {
			case err == nil:
				a.Allowed++
			case apierrors.IsForbidden(err) && strings.Contains(err.Error(), "budgetgate"):
				a.Denied++
			default:
				a.Errors++
				if a.FirstError == "" {
					a.FirstError = err.Error()
				}
			}
		})
	}
	sent := time.Since(start)
	wg.Wait()
	a.Requests = len(targets)
	if sent > 0 && len(targets) > 1 {
		a.AchievedRate = round3(float64(len(targets)-1) / sent.Seconds())
	}
	a.Client = summarize(latencies)
	as1, err := b.apiserverMetrics(ctx)
	if err != nil {
		return a, err
	}
	ms1, err := b.mgr.scrape(ctx)
	if err != nil {
		return a, err
	}
	// With failurePolicy Ignore, a call the API server could not complete
	// (timeoutSeconds passed, connection failed) lets the update through.
	a.FailedOpen = int(as1.value("apiserver_admission_webhook_fail_open_count", releaseGate) -
		as0.value("apiserver_admission_webhook_fail_open_count", releaseGate))
	h := as1.histogram("apiserver_admission_webhook_admission_duration_seconds", releaseWebhook).
		sub(as0.histogram("apiserver_admission_webhook_admission_duration_seconds", releaseWebhook))
	a.APIServerP99 = round3(finite(h.quantile(0.99)))
	lo, hi := h.bucketOf(0.99)
	a.APIServerBucket = fmt.Sprintf("in the bucket %g–%g s (%d calls)", lo, hi, int(h.count))
	mh := ms1.histogram("controller_runtime_webhook_latency_seconds", managerWebhook).
		sub(ms0.histogram("controller_runtime_webhook_latency_seconds", managerWebhook))
	a.ManagerP50, a.ManagerP99 = round3(finite(mh.quantile(0.5))), round3(finite(mh.quantile(0.99)))
	lo, hi = mh.bucketOf(0.99)
	a.ManagerBucket = fmt.Sprintf("in the bucket %g–%g s (%d calls)", lo, hi, int(mh.count))
	return a, nil
}
