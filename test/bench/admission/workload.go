package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	slov1alpha1 "github.com/budgetgate/budgetgate/api/v1alpha1"
)

// The benchmark's namespaces: one whose SLO is healthy (the allow path), one
// whose SLO is frozen.
const (
	nsOpen   = "bench-open"
	nsFrozen = "bench-frozen"
	partOf   = "bench"
	sloName  = "bench"
	// hotfixUser may release-during-freeze in nsFrozen (and edit).
	hotfixUser = "bench-hotfixer"
	imageRepo  = "registry.example/bench/app"
	// The labels the Deployments' selectors and the SLOs' selector use.
	labelName   = "app.kubernetes.io/name"
	labelPartOf = "app.kubernetes.io/part-of"
)

func depName(i int) string { return fmt.Sprintf("bench-%03d", i) }

// podTemplate is a realistic pod template, as a Deployment of a small web
// service carries it: an app and a proxy container with ports, environment,
// resources and probes, plus labels and annotations, so that the API server
// encodes, and the webhook decodes, an object of the usual size.
func podTemplate(i int, image string, annotations map[string]string) corev1.PodTemplateSpec {
	ann := map[string]string{"prometheus.io/scrape": "true", "prometheus.io/port": "9090"}
	maps.Copy(ann, annotations)
	list := func(cpu, mem string) corev1.ResourceList {
		return corev1.ResourceList{
			corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse(mem),
		}
	}
	res := func(cpuReq, memReq, cpuLim, memLim string) corev1.ResourceRequirements {
		return corev1.ResourceRequirements{Requests: list(cpuReq, memReq), Limits: list(cpuLim, memLim)}
	}
	probe := func(path string) *corev1.Probe {
		return &corev1.Probe{
			ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: intstr.FromString("http")}},
			PeriodSeconds: 5, TimeoutSeconds: 2, FailureThreshold: 3,
		}
	}
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{
			Labels: map[string]string{
				labelName:                     depName(i),
				labelPartOf:                   partOf,
				"app.kubernetes.io/component": "api",
			},
			Annotations: ann,
		},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{
				Name:  "app",
				Image: image,
				Args:  []string{"--listen=:8080", "--metrics-listen=:9090", "--log-format=json"},
				Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}, {Name: "metrics", ContainerPort: 9090}},
				Env: []corev1.EnvVar{
					{Name: "LOG_LEVEL", Value: "info"},
					{Name: "DB_HOST", Value: "postgres.bench.svc.cluster.local"},
					{Name: "DB_POOL_SIZE", Value: "20"},
					{Name: "FEATURE_FLAGS", Value: "new-checkout,fast-cart,async-receipts"},
					{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{
						FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
				},
				Resources:      res("100m", "128Mi", "1", "256Mi"),
				ReadinessProbe: probe("/ready"),
				LivenessProbe:  probe("/healthz"),
			}, {
				Name:      "proxy",
				Image:     "registry.example/bench/proxy:2.1.0",
				Args:      []string{"--upstream=127.0.0.1:8080", "--admin=:15000"},
				Ports:     []corev1.ContainerPort{{Name: "proxy", ContainerPort: 8443}, {Name: "admin", ContainerPort: 15000}},
				Resources: res("50m", "64Mi", "500m", "128Mi"),
			}},
			TerminationGracePeriodSeconds: ptr.To[int64](30),
		},
	}
}

// deployment is benchmark Deployment i with the given template: no replicas
// (the admission path does not depend on pods), selected by the namespace's
// SLO through app.kubernetes.io/part-of.
func deployment(namespace string, i int, tmpl corev1.PodTemplateSpec) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{
			Name: depName(i), Namespace: namespace,
			Labels: map[string]string{labelName: depName(i), labelPartOf: partOf},
		},
		Spec: appsv1.DeploymentSpec{
			Replicas:             ptr.To[int32](0),
			RevisionHistoryLimit: ptr.To[int32](10),
			Selector:             &metav1.LabelSelector{MatchLabels: map[string]string{labelName: depName(i)}},
			Template:             tmpl,
		},
	}
}

// The two releases every Deployment has in its history before the freeze:
// rollbacks go back to one of them.
var historyImages = [2]string{imageRepo + ":1.0.0", imageRepo + ":1.1.0"}

// templatePatch is a JSON patch that replaces the whole pod template: exact
// (no merging with annotations an earlier phase left), and of the same size
// for every phase.
func templatePatch(t corev1.PodTemplateSpec) ([]byte, error) {
	return json.Marshal([]map[string]any{{"op": "replace", "path": "/spec/template", "value": t}})
}

// updates makes the template update of request i of a phase.
type updates struct {
	deployments int
	seq         atomic.Int64
	mu          sync.Mutex
	// current is the history release (0 or 1) each frozen Deployment's
	// template is at, or -1 for another template.
	current []int
}

func newUpdates(deployments int) *updates {
	u := &updates{deployments: deployments, current: make([]int, deployments)}
	for i := range u.current {
		u.current[i] = 1 // setup leaves every Deployment at the second release
	}
	return u
}

// update is one request: which Deployment in which namespace gets which
// template, and what to record when it is admitted.
type update struct {
	namespace string
	index     int
	template  corev1.PodTemplateSpec
	// onAdmit records the template the Deployment is at once admitted.
	onAdmit func()
}

// next returns request i of a phase of kind k. Request i goes to Deployment
// i mod deployments, so while there are more Deployments than workers no two
// requests in flight touch the same one.
func (u *updates) next(k kind, i int) update {
	d := i % u.deployments
	n := u.seq.Add(1)
	switch k {
	case kindWebhook, kindNoWebhook:
		return update{namespace: nsOpen, index: d, template: podTemplate(d, fmt.Sprintf("%s:2.%d", imageRepo, n), nil)}
	case kindDeny:
		return update{namespace: nsFrozen, index: d, template: podTemplate(d, fmt.Sprintf("%s:2.%d", imageRepo, n), nil)}
	case kindRollback:
		u.mu.Lock()
		target := 0
		if u.current[d] == 0 {
			target = 1
		}
		u.mu.Unlock()
		return update{namespace: nsFrozen, index: d, template: podTemplate(d, historyImages[target], nil),
			onAdmit: func() { u.set(d, target) }}
	case kindExempt:
		return update{namespace: nsFrozen, index: d,
			template: podTemplate(d, fmt.Sprintf("%s:hotfix-%d", imageRepo, n), map[string]string{
				slov1alpha1.ReleaseClassAnnotation:  "hotfix",
				slov1alpha1.ReleaseReasonAnnotation: fmt.Sprintf("INC-%d", n),
			}),
			onAdmit: func() { u.set(d, -1) }}
	}
	panic("unknown phase kind " + string(k))
}

func (u *updates) set(d, release int) {
	u.mu.Lock()
	u.current[d] = release
	u.mu.Unlock()
}
