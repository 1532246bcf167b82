package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	slov1alpha1 "github.com/budgetgate/budgetgate/api/v1alpha1"
	"github.com/budgetgate/budgetgate/test/utils"
)

// fanout measures how long one freeze takes to reach the workloads it gates:
// an SLO that selects --fanout workloads (in a namespace of their own) starts
// to burn, and a watch records when each workload gets budgetgate.dev/frozen.
// The SLO is evaluated every 10s (the minimum), so that the burn is seen
// soon; the spread from the first to the last annotation is the fan-out.
func (b *bench) fanout(ctx context.Context) error {
	n := b.cfg.fanout
	key := sloKey(fanoutNamespace, fanoutSLO)
	t := time.Now()
	objs := []*unstructured.Unstructured{namespaceObject(fanoutNamespace)}
	for j := range n {
		objs = append(objs, deploymentObject(fanoutNamespace, workloadName(j), map[string]string{fanoutLabel: "true"}))
	}
	logf("fan-out: applying %d Deployments in %s", n, fanoutNamespace)
	if err := applyAll(ctx, b.c, objs[:1], 1); err != nil {
		return err
	}
	if err := applyAll(ctx, b.c, objs[1:], b.cfg.workers); err != nil {
		return err
	}
	if err := b.waitSettled(ctx, fanoutNamespace, fanoutLabel, n); err != nil {
		return err
	}

	// A frozen SLO left by an earlier run (--keep) would hold its freeze for an
	// hour: start from a new one.
	old := &slov1alpha1.ServiceLevelObjective{}
	old.Namespace, old.Name = fanoutNamespace, fanoutSLO
	if err := b.c.Delete(ctx, old); err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	err := utils.Poll(ctx, 2*time.Minute, time.Second, "the old fan-out SLO to go", func(ctx context.Context) (bool, error) {
		err := b.c.Get(ctx, client.ObjectKeyFromObject(old), &slov1alpha1.ServiceLevelObjective{})
		return apierrors.IsNotFound(err), client.IgnoreNotFound(err)
	})
	if err != nil {
		return err
	}
	b.prom.setBurning(key, false)
	slo := sloObject(fanoutNamespace, fanoutSLO, "10s", map[string]string{fanoutLabel: "true"})
	if err := applyAll(ctx, b.c, []*unstructured.Unstructured{slo}, 1); err != nil {
		return err
	}
	err = utils.Poll(ctx, 2*time.Minute, time.Second, "the fan-out SLO to gate its workloads", func(ctx context.Context) (bool, error) {
		s := &slov1alpha1.ServiceLevelObjective{}
		if err := b.c.Get(ctx, client.ObjectKeyFromObject(old), s); err != nil {
			return false, err
		}
		return int(s.Status.GatedWorkloads) == n && s.Status.LastEvaluationTime != nil && !s.Status.Freeze.Active, nil
	})
	if err != nil {
		return err
	}
	f := &fanout{Workloads: n, SetupSeconds: since(t), Interval: "10s"}

	rec, err := b.watchFrozen(ctx, n)
	if err != nil {
		return err
	}
	defer rec.stop()
	as0, err := b.apiserverMetrics(ctx)
	if err != nil {
		return err
	}
	logf("fan-out: %s starts to burn", key)
	burn := time.Now()
	b.prom.setBurning(key, true)
	err = utils.Poll(ctx, 3*time.Minute, 100*time.Millisecond, fmt.Sprintf("the freeze annotations on %d workloads", n),
		func(context.Context) (bool, error) { return rec.count() >= n, rec.error() })
	first, last, count := rec.span()
	f.Annotated = count
	if count > 0 {
		f.DetectSeconds = round3(first.Sub(burn).Seconds())
		f.SpreadSeconds = round3(last.Sub(first).Seconds())
		f.TotalSeconds = round3(last.Sub(burn).Seconds())
	}
	b.rep.Fanout = f
	if err != nil {
		return err
	}
	// What each annotation write cost the API server (server-side apply of
	// a Deployment; the benchmark itself applies nothing meanwhile).
	as1, err := b.apiserverMetrics(ctx)
	if err != nil {
		return err
	}
	h := as1.histogram("apiserver_request_duration_seconds", applyDeployments).
		sub(as0.histogram("apiserver_request_duration_seconds", applyDeployments))
	f.APIServerApplies = int(h.count)
	f.APIServerApplyMean = round3(finite(h.mean()))
	lo, hi := h.bucketOf(0.99)
	f.APIServerApplyP99 = fmt.Sprintf("in %g–%g s", lo, hi)
	logf("fan-out: %d workloads annotated %.1fs after the first (%.1fs after the burn)", count, f.SpreadSeconds, f.TotalSeconds)
	return nil
}

var applyDeployments = map[string]string{"verb": "APPLY", "group": "apps", "resource": "deployments"}

// frozenRecorder remembers when each workload was first seen with the frozen
// annotation.
type frozenRecorder struct {
	mu     sync.Mutex
	seen   map[string]time.Time
	err    error
	cancel context.CancelFunc
}

func (r *frozenRecorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.seen)
}

func (r *frozenRecorder) error() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

func (r *frozenRecorder) span() (first, last time.Time, n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, t := range r.seen {
		if first.IsZero() || t.Before(first) {
			first = t
		}
		if t.After(last) {
			last = t
		}
	}
	return first, last, len(r.seen)
}

func (r *frozenRecorder) stop() { r.cancel() }

// watchFrozen watches the metadata of the fan-out namespace's Deployments.
func (b *bench) watchFrozen(ctx context.Context, n int) (*frozenRecorder, error) {
	ctx, cancel := context.WithCancel(ctx)
	r := &frozenRecorder{seen: make(map[string]time.Time, n), cancel: cancel}
	res := b.meta.Resource(deploymentsGVR).Namespace(fanoutNamespace)
	list, err := res.List(ctx, metav1.ListOptions{})
	if err != nil {
		cancel()
		return nil, err
	}
	for i := range list.Items {
		if list.Items[i].Annotations[slov1alpha1.FrozenAnnotation] == "true" {
			cancel()
			return nil, fmt.Errorf("%s/%s is already marked frozen", fanoutNamespace, list.Items[i].Name)
		}
	}
	w, err := res.Watch(ctx, metav1.ListOptions{ResourceVersion: list.ResourceVersion})
	if err != nil {
		cancel()
		return nil, err
	}
	go func() {
		defer w.Stop()
		for ev := range w.ResultChan() {
			now := time.Now()
			if ev.Type == watch.Error {
				r.mu.Lock()
				r.err = apierrors.FromObject(ev.Object)
				r.mu.Unlock()
				return
			}
			m, ok := ev.Object.(*metav1.PartialObjectMetadata)
			if !ok || m.Annotations[slov1alpha1.FrozenAnnotation] != "true" {
				continue
			}
			r.mu.Lock()
			if _, dup := r.seen[m.Name]; !dup {
				r.seen[m.Name] = now
			}
			r.mu.Unlock()
		}
	}()
	return r, nil
}
