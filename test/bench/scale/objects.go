package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Names and labels of what the benchmark creates.
const (
	fieldManager = "bench-scale"
	// benchLabel marks every namespace the benchmark creates.
	benchLabel = "bench.budgetgate.dev/scale"
	// groupLabel splits a namespace's workloads among its SLOs.
	groupLabel = "bench.budgetgate.dev/group"
	// fanoutLabel marks the workloads of the fan-out SLO.
	fanoutLabel     = "bench.budgetgate.dev/fanout"
	fanoutNamespace = "scale-fanout"
	fanoutSLO       = "fanout"
	// releaseAnnotation is what the admission burst changes in pod templates.
	releaseAnnotation = "bench.budgetgate.dev/release"
)

func namespaceName(i int) string { return fmt.Sprintf("scale-%03d", i) }
func workloadName(i int) string  { return fmt.Sprintf("w-%04d", i) }
func sloName(i int) string       { return fmt.Sprintf("slo-%d", i) }
func groupOf(i int) string       { return "g" + strconv.Itoa(i) }

// sloKey is how the fake Prometheus knows an SLO: NAMESPACE/NAME.
func sloKey(namespace, name string) string { return namespace + "/" + name }

// layout is how workloads and SLOs are spread: per namespace, workload j
// belongs to group j mod slosPerNamespace and SLO i selects group i, so each
// SLO gates perNamespace/slosPerNamespace workloads. SLO i of every namespace
// burns when i is a multiple of frozenEvery (a tenth with 10 per namespace).
type layout struct {
	namespaces, perNamespace, slosPerNamespace, frozenEvery int
}

func (l layout) workloads() int { return l.namespaces * l.perNamespace }
func (l layout) slos() int      { return l.namespaces * l.slosPerNamespace }

// burns reports whether SLO i of a namespace is meant to freeze.
func (l layout) burns(i int) bool { return l.frozenEvery > 0 && i%l.frozenEvery == 0 }

// frozenSLOs is how many SLOs are meant to freeze.
func (l layout) frozenSLOs() int {
	n := 0
	for i := range l.slosPerNamespace {
		if l.burns(i) {
			n++
		}
	}
	return n * l.namespaces
}

// frozenWorkloads is how many workloads the burning SLOs gate.
func (l layout) frozenWorkloads() int {
	n := 0
	for j := range l.perNamespace {
		if l.burns(j % l.slosPerNamespace) {
			n++
		}
	}
	return n * l.namespaces
}

func namespaceObject(name string) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "Namespace",
		"metadata": map[string]any{"name": name, "labels": map[string]any{benchLabel: "true"}},
	}}
}

// deploymentObject is a Deployment with replicas 0: the operator reads only
// metadata and the webhook only the pod template, so pods would only cost the
// control plane (10,000 pods, 100 fake nodes), never budgetgate.
//
// It is created as the Deployment controller leaves it (revision annotation
// "1") and without a progress deadline. Otherwise that controller's first sync
// of a new Deployment writes its status twice from one copy, the second write
// fails with a conflict, and the retries pass its workqueue's rate limiter (10
// a second for all Deployments): 10,000 new Deployments then take about 17
// minutes to settle, with those retries loading the API server during the
// measurements. Neither field is read by budgetgate.
func deploymentObject(namespace, name string, labels map[string]string) *unstructured.Unstructured {
	lbls := map[string]any{"app.kubernetes.io/name": name}
	for k, v := range labels {
		lbls[k] = v
	}
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apps/v1", "kind": "Deployment",
		"metadata": map[string]any{"name": name, "namespace": namespace, "labels": lbls,
			"annotations": map[string]any{"deployment.kubernetes.io/revision": "1"}},
		"spec": map[string]any{
			"replicas":                int64(0),
			"progressDeadlineSeconds": int64(math.MaxInt32),
			"selector":                map[string]any{"matchLabels": map[string]any{"app.kubernetes.io/name": name}},
			"template": map[string]any{
				"metadata": map[string]any{"labels": map[string]any{"app.kubernetes.io/name": name}},
				"spec": map[string]any{
					"containers": []any{map[string]any{
						"name": "app", "image": "registry.example/" + name + ":1",
						"ports": []any{map[string]any{"containerPort": int64(8080), "name": "http"}},
						"env":   []any{map[string]any{"name": "WORKLOAD", "value": name}},
						"resources": map[string]any{
							"requests": map[string]any{"cpu": "10m", "memory": "32Mi"},
							"limits":   map[string]any{"memory": "64Mi"},
						},
					}},
				},
			},
		},
	}}
}

// sloObject is a 99.9%/30d ratio SLO under the built-in policy, selecting
// workloads by one label; its queries carry slo="NAMESPACE/NAME" for the fake
// Prometheus.
func sloObject(namespace, name, interval string, selector map[string]string) *unstructured.Unstructured {
	key := sloKey(namespace, name)
	sel := map[string]any{}
	for k, v := range selector {
		sel[k] = v
	}
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "slo.budgetgate.dev/v1alpha1", "kind": "ServiceLevelObjective",
		"metadata": map[string]any{"name": name, "namespace": namespace},
		"spec": map[string]any{
			"target": "99.9", "window": "30d", "evaluationInterval": interval,
			"indicator": map[string]any{"ratio": map[string]any{
				"errors": fmt.Sprintf(`bench_requests_total{slo=%q,code="500"}`, key),
				"total":  fmt.Sprintf(`bench_requests_total{slo=%q}`, key),
			}},
			"workloadSelector": map[string]any{"matchLabels": sel},
		},
	}}
}

// applyAll server-side applies objects with up to workers requests in flight,
// retrying what the API server asks to retry (429, 5xx, timeouts) up to 5
// times. It returns the first errors it could not get past.
func applyAll(ctx context.Context, c client.Client, objs []*unstructured.Unstructured, workers int) error {
	jobs := make(chan *unstructured.Unstructured)
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		errs   []error
		failed atomic.Int64
	)
	for range workers {
		wg.Go(func() {
			for o := range jobs {
				if err := applyOne(ctx, c, o); err != nil {
					failed.Add(1)
					mu.Lock()
					if len(errs) < 5 {
						errs = append(errs, fmt.Errorf("%s %s/%s: %w", o.GetKind(), o.GetNamespace(), o.GetName(), err))
					}
					mu.Unlock()
				}
			}
		})
	}
	for _, o := range objs {
		select {
		case jobs <- o:
		case <-ctx.Done():
		}
	}
	close(jobs)
	wg.Wait()
	if n := failed.Load(); n > 0 {
		return fmt.Errorf("%d of %d objects failed: %w", n, len(objs), errors.Join(errs...))
	}
	return ctx.Err()
}

func applyOne(ctx context.Context, c client.Client, o *unstructured.Unstructured) error {
	var err error
	for attempt := range 5 {
		err = c.Apply(ctx, client.ApplyConfigurationFromUnstructured(o.DeepCopy()),
			client.FieldOwner(fieldManager), client.ForceOwnership)
		if err == nil || !retriable(err) {
			return err
		}
		time.Sleep(time.Duration(attempt+1) * 200 * time.Millisecond)
	}
	return err
}

func retriable(err error) bool {
	return apierrors.IsTooManyRequests(err) || apierrors.IsServerTimeout(err) || apierrors.IsTimeout(err) ||
		apierrors.IsInternalError(err) || apierrors.IsServiceUnavailable(err) || apierrors.IsConflict(err)
}
