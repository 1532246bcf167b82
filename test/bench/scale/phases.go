package main

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	slov1alpha1 "github.com/budgetgate/budgetgate/api/v1alpha1"
	"github.com/budgetgate/budgetgate/test/utils"
)

// createWorkloads applies the namespaces and Deployments, then waits until
// kube-controller-manager has caught up with them: every Deployment observed
// at its generation, and so its ReplicaSet written (the revision history the
// release gate reads when it denies), before anything is measured.
func (b *bench) createWorkloads(ctx context.Context) error {
	l := b.cfg.layout
	objs := make([]*unstructured.Unstructured, 0, l.namespaces)
	for i := range l.namespaces {
		objs = append(objs, namespaceObject(namespaceName(i)))
	}
	if err := applyAll(ctx, b.c, objs, b.cfg.workers); err != nil {
		return err
	}
	objs = make([]*unstructured.Unstructured, 0, l.workloads())
	// Namespace by namespace would make every worker write to one namespace;
	// interleaving spreads them.
	for j := range l.perNamespace {
		for i := range l.namespaces {
			objs = append(objs, deploymentObject(namespaceName(i), workloadName(j),
				map[string]string{groupLabel: groupOf(j % l.slosPerNamespace)}))
		}
	}
	logf("applying %d Deployments in %d namespaces (%d at a time, server-side apply)", len(objs), l.namespaces, b.cfg.workers)
	t := time.Now()
	if err := applyAll(ctx, b.c, objs, b.cfg.workers); err != nil {
		return err
	}
	b.rep.Setup.WorkloadsSeconds = since(t)
	b.rep.Setup.WorkloadsPerSecond = round3(float64(len(objs)) / time.Since(t).Seconds())
	logf("applied %d Deployments in %.1fs; waiting for kube-controller-manager to catch up",
		len(objs), b.rep.Setup.WorkloadsSeconds)
	t = time.Now()
	if err := b.waitSettled(ctx, "", groupLabel, len(objs)); err != nil {
		return err
	}
	b.rep.Setup.ControllerSeconds = since(t)
	logf("kube-controller-manager caught up after %.0fs", b.rep.Setup.ControllerSeconds)
	return nil
}

// waitSettled waits until want Deployments with label in namespace ("" for
// all) have been observed by the Deployment controller at their generation.
// It lists them as protobuf, a page of 2,000 at a time.
func (b *bench) waitSettled(ctx context.Context, namespace, label string, want int) error {
	return utils.Poll(ctx, 15*time.Minute, 10*time.Second, "the Deployment controller to observe every Deployment",
		func(ctx context.Context) (bool, error) {
			settled, total, cont := 0, 0, ""
			for {
				list, err := b.proto.AppsV1().Deployments(namespace).List(ctx,
					metav1.ListOptions{LabelSelector: label, Limit: 2000, Continue: cont})
				if err != nil {
					return false, err
				}
				for i := range list.Items {
					total++
					if list.Items[i].Status.ObservedGeneration >= list.Items[i].Generation {
						settled++
					}
				}
				if cont = list.Continue; cont == "" {
					break
				}
			}
			logf("  %d/%d Deployments observed by the Deployment controller", settled, want)
			return total >= want && settled >= want, nil
		})
}

// createSLOs applies the SLOs (through budgetgate's SLO webhook) and waits for
// the first round of evaluations: every SLO evaluated, exactly the burning
// ones frozen.
func (b *bench) createSLOs(ctx context.Context) error {
	l := b.cfg.layout
	objs := make([]*unstructured.Unstructured, 0, l.slos())
	for s := range l.slosPerNamespace {
		for i := range l.namespaces {
			objs = append(objs, sloObject(namespaceName(i), sloName(s), "1m", map[string]string{groupLabel: groupOf(s)}))
		}
	}
	logf("applying %d SLOs", len(objs))
	t := time.Now()
	if err := applyAll(ctx, b.c, objs, b.cfg.workers); err != nil {
		return err
	}
	b.rep.Setup.SLOsSeconds = since(t)
	err := utils.Poll(ctx, 10*time.Minute, 5*time.Second, "the first evaluation of every SLO", func(ctx context.Context) (bool, error) {
		st, err := b.sloStates(ctx)
		if err != nil {
			return false, err
		}
		logf("  %d/%d SLOs evaluated, %d/%d frozen as intended, %d frozen unexpectedly", st.evaluated, l.slos(),
			st.frozenAsIntended, l.frozenSLOs(), st.frozenUnexpectedly)
		return st.evaluated >= l.slos() && st.frozenAsIntended == l.frozenSLOs() && st.frozenUnexpectedly == 0, nil
	})
	if err != nil {
		return err
	}
	b.rep.Setup.FirstRoundSeconds = since(t)
	return nil
}

type sloState struct {
	// evaluated counts the SLOs evaluated since this run's manager started
	// (an SLO kept from an earlier run may carry an older evaluation).
	evaluated, frozenAsIntended, frozenUnexpectedly int
	// ages are the seconds since each SLO's last evaluation.
	ages []float64
}

// sloStates reads the benchmark's SLOs (not the fan-out one).
func (b *bench) sloStates(ctx context.Context) (sloState, error) {
	var st sloState
	list := &slov1alpha1.ServiceLevelObjectiveList{}
	if err := b.c.List(ctx, list); err != nil {
		return st, err
	}
	now := time.Now()
	for i := range list.Items {
		s := &list.Items[i]
		if s.Namespace == fanoutNamespace {
			continue
		}
		if t := s.Status.LastEvaluationTime; t != nil {
			// lastEvaluationTime has a resolution of one second.
			if !t.Add(time.Second).Before(b.mgr.started) {
				st.evaluated++
			}
			st.ages = append(st.ages, now.Sub(t.Time).Seconds())
		}
		var idx int
		_, _ = fmt.Sscanf(s.Name, "slo-%d", &idx)
		switch {
		case s.Status.Freeze.Active && b.cfg.layout.burns(idx):
			st.frozenAsIntended++
		case s.Status.Freeze.Active:
			st.frozenUnexpectedly++
		}
	}
	return st, nil
}

var (
	sloController = map[string]string{"controller": "servicelevelobjective"}
	sloQueue      = map[string]string{"name": "servicelevelobjective"}
)

// observe watches the steady state for --observe: the reconcile rate, the
// queue depth every 2s, the time since each SLO's last evaluation every 10s,
// and the Prometheus queries, from the manager's metrics and the fake
// Prometheus.
func (b *bench) observe(ctx context.Context) error {
	logf("observing evaluations for %s", b.cfg.observe)
	m0, err := b.mgr.scrape(ctx)
	if err != nil {
		return err
	}
	q0, per0, bad0 := b.prom.counts()
	start := time.Now()
	var depths, ages, loads []float64
	nextAges := start
	for time.Since(start) < b.cfg.observe {
		m, err := b.mgr.scrape(ctx)
		if err != nil {
			return err
		}
		depths = append(depths, m.value("workqueue_depth", sloQueue))
		if l, err := readLoadAverage(); err == nil {
			loads = append(loads, l)
		}
		if !time.Now().Before(nextAges) {
			st, err := b.sloStates(ctx)
			if err != nil {
				return err
			}
			ages = append(ages, st.ages...)
			nextAges = nextAges.Add(10 * time.Second)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Second):
		}
	}
	window := time.Since(start)
	m1, err := b.mgr.scrape(ctx)
	if err != nil {
		return err
	}
	q1, per1, bad1 := b.prom.counts()

	e := evaluation{WindowSeconds: round3(window.Seconds())}
	e.Reconciles = m1.value("controller_runtime_reconcile_total", sloController) - m0.value("controller_runtime_reconcile_total", sloController)
	e.ReconcilesPerMinute = round3(perMinute(e.Reconciles, window))
	e.ReconcileErrors = m1.value("controller_runtime_reconcile_errors_total", sloController) -
		m0.value("controller_runtime_reconcile_errors_total", sloController)
	e.QueueDepth = gaugeSummary(depths)
	wait := m1.histogram("workqueue_queue_duration_seconds", sloQueue).sub(m0.histogram("workqueue_queue_duration_seconds", sloQueue))
	// The workqueue's buckets grow tenfold: only the mean is exact.
	e.QueueWaitMean = round3(finite(wait.mean()))
	lo, hi := wait.bucketOf(0.99)
	e.QueueWaitP99Bucket = fmt.Sprintf("in %g–%g s", lo, hi)
	e.LoadAverage = gaugeSummary(loads)
	e.LoadAverage.Mean = round3(e.LoadAverage.Mean)
	rec := m1.histogram("controller_runtime_reconcile_time_seconds", sloController).
		sub(m0.histogram("controller_runtime_reconcile_time_seconds", sloController))
	e.ReconcileP50, e.ReconcileP99 = round3(finite(rec.quantile(0.5))), round3(finite(rec.quantile(0.99)))
	ev := m1.histogram("budgetgate_slo_evaluation_duration_seconds", nil).sub(m0.histogram("budgetgate_slo_evaluation_duration_seconds", nil))
	e.EvaluationP99 = round3(finite(ev.quantile(0.99)))
	e.Staleness = gaugeSummary(ages)
	e.Staleness.Mean, e.Staleness.Max = round3(e.Staleness.Mean), round3(e.Staleness.Max)
	e.AllWithinInterval = withinInterval(time.Duration(e.Staleness.Max*float64(time.Second)), time.Minute)
	e.Evaluations = ev.count
	e.Queries = q1 - q0
	if ev.count > 0 {
		e.QueriesPerEvaluation = round3(float64(e.Queries) / ev.count)
	}
	e.QueryErrors = bad1 - bad0
	e.QueriesPerSLOPerInterval = round3(queriesPerSLOPerInterval(float64(e.Queries), b.cfg.layout.slos(), window, time.Minute))
	for k, v := range per1 {
		e.MaxQueriesPerSLO = max(e.MaxQueriesPerSLO, v-per0[k])
	}
	cpu := m1.value("process_cpu_seconds_total", nil) - m0.value("process_cpu_seconds_total", nil)
	e.ManagerCPUSeconds = round3(cpu)
	e.ManagerCPUCores = round3(cpu / window.Seconds())
	b.rep.Evaluation = e
	logf("observed %.0f reconciles in %.0fs, queue depth max %.0f", e.Reconciles, window.Seconds(), e.QueueDepth.Max)
	return nil
}

// memory reads the manager's memory from /proc and from its metrics.
func (b *bench) memory(ctx context.Context) (memory, error) {
	pm, err := readProcMemory(b.mgr.pid())
	if err != nil {
		return memory{}, err
	}
	m, err := b.mgr.scrape(ctx)
	if err != nil {
		return memory{}, err
	}
	out := memory{
		Proc:            pm,
		ProcessResident: m.value("process_resident_memory_bytes", nil),
		HeapInuse:       m.value("go_memstats_heap_inuse_bytes", nil),
		HeapAlloc:       m.value("go_memstats_heap_alloc_bytes", nil),
		Sys:             m.value("go_memstats_sys_bytes", nil),
		Goroutines:      m.value("go_goroutines", nil),
	}
	out.MiB = round3(float64(pm.RSS) / mib)
	out.PeakMiB = round3(float64(pm.PeakRSS) / mib)
	out.HeapInuseMiB = round3(out.HeapInuse / mib)
	return out, nil
}

// apiserverMetrics scrapes the kube-apiserver's /metrics as admin.
func (b *bench) apiserverMetrics(ctx context.Context) (metrics, error) {
	raw, err := b.cs.Discovery().RESTClient().Get().AbsPath("/metrics").Stream(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading the API server's metrics: %w", err)
	}
	defer func() { _ = raw.Close() }()
	return parseMetrics(raw)
}

// apiserverWatches counts the open WATCH requests per resource.
func (b *bench) apiserverWatches(ctx context.Context) (map[string]float64, error) {
	m, err := b.apiserverMetrics(ctx)
	if err != nil {
		return nil, err
	}
	return m.byLabel("apiserver_longrunning_requests", "resource", map[string]string{"verb": "WATCH"}), nil
}

// measureCacheCost sizes what a cluster-wide cache of Deployments or
// ReplicaSets would cost the manager: the objects' JSON as the API server
// serves them, and the Go heap they take when held decoded as an informer's
// store holds them (managedFields stripped, as the manager's cache transform
// does), in full and as metadata only.
func (b *bench) measureCacheCost(ctx context.Context) (cacheCost, error) {
	var cc cacheCost
	var err error
	if cc.Deployments, cc.DeploymentsBytes, err = b.listSize(ctx, "deployments"); err != nil {
		return cc, err
	}
	if cc.ReplicaSets, cc.ReplicaSetsBytes, err = b.listSize(ctx, "replicasets"); err != nil {
		return cc, err
	}
	if cc.DeploymentsHeap, err = heldHeap(func() (any, error) { return b.holdDeployments(ctx) }); err != nil {
		return cc, err
	}
	if cc.ReplicaSetsHeap, err = heldHeap(func() (any, error) { return b.holdReplicaSets(ctx) }); err != nil {
		return cc, err
	}
	if cc.DeploymentsMetaHeap, err = heldHeap(func() (any, error) { return b.holdMetadata(ctx, deploymentsGVR) }); err != nil {
		return cc, err
	}
	cc.ReplicaSetsMetaHeap, err = heldHeap(func() (any, error) { return b.holdMetadata(ctx, replicaSetsGVR) })
	return cc, err
}

var replicaSetsGVR = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "replicasets"}

// heldHeap returns how much the Go heap (live objects, after a collection)
// grows while the objects that list returns are held.
func heldHeap(list func() (any, error)) (int64, error) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	held, err := list()
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(held)
	return int64(after.HeapAlloc) - int64(before.HeapAlloc), err
}

func (b *bench) holdDeployments(ctx context.Context) ([]appsv1.Deployment, error) {
	var out []appsv1.Deployment
	cont := ""
	for {
		list, err := b.proto.AppsV1().Deployments("").List(ctx, metav1.ListOptions{Limit: 500, Continue: cont})
		if err != nil {
			return nil, err
		}
		for i := range list.Items {
			list.Items[i].ManagedFields = nil
		}
		out = append(out, list.Items...)
		if cont = list.Continue; cont == "" {
			return out, nil
		}
	}
}

func (b *bench) holdReplicaSets(ctx context.Context) ([]appsv1.ReplicaSet, error) {
	var out []appsv1.ReplicaSet
	cont := ""
	for {
		list, err := b.proto.AppsV1().ReplicaSets("").List(ctx, metav1.ListOptions{Limit: 500, Continue: cont})
		if err != nil {
			return nil, err
		}
		for i := range list.Items {
			list.Items[i].ManagedFields = nil
		}
		out = append(out, list.Items...)
		if cont = list.Continue; cont == "" {
			return out, nil
		}
	}
}

func (b *bench) holdMetadata(ctx context.Context, gvr schema.GroupVersionResource) ([]metav1.PartialObjectMetadata, error) {
	var out []metav1.PartialObjectMetadata
	cont := ""
	for {
		list, err := b.meta.Resource(gvr).List(ctx, metav1.ListOptions{Limit: 500, Continue: cont})
		if err != nil {
			return nil, err
		}
		for i := range list.Items {
			list.Items[i].ManagedFields = nil
		}
		out = append(out, list.Items...)
		if cont = list.Continue; cont == "" {
			return out, nil
		}
	}
}

func (b *bench) listSize(ctx context.Context, resource string) (int, int64, error) {
	n, size, cont := 0, int64(0), ""
	for {
		req := b.cs.AppsV1().RESTClient().Get().Resource(resource).Param("limit", "500")
		if cont != "" {
			req = req.Param("continue", cont)
		}
		raw, err := req.DoRaw(ctx)
		if err != nil {
			return 0, 0, fmt.Errorf("listing %s: %w", resource, err)
		}
		var list struct {
			Metadata metav1.ListMeta  `json:"metadata"`
			Items    []map[string]any `json:"items"`
		}
		if err := json.Unmarshal(raw, &list); err != nil {
			return 0, 0, err
		}
		for _, it := range list.Items {
			item, _ := json.Marshal(it)
			size += int64(len(item))
		}
		n += len(list.Items)
		if cont = list.Metadata.Continue; cont == "" {
			return n, size, nil
		}
	}
}
