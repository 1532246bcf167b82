package freeze

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// richTemplate is a realistic pod template: two containers with env, ports,
// resources and probes, as a Deployment's template looks after defaulting.
func richTemplate(image string) *corev1.PodTemplateSpec {
	probe := &corev1.Probe{
		ProbeHandler:   corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt32(8080), Scheme: corev1.URISchemeHTTP}},
		TimeoutSeconds: 1, PeriodSeconds: 10, SuccessThreshold: 1, FailureThreshold: 3,
	}
	res := corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m"), corev1.ResourceMemory: resource.MustParse("256Mi")},
		Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("512Mi")},
	}
	t := &corev1.PodTemplateSpec{}
	t.Labels = map[string]string{"app": "checkout", "tier": "frontend", "version": "stable"}
	t.Annotations = map[string]string{"prometheus.io/scrape": "true", "prometheus.io/port": "9090"}
	t.Spec = corev1.PodSpec{
		Containers: []corev1.Container{
			{
				Name: "app", Image: "registry.example/checkout:" + image,
				Ports:                  []corev1.ContainerPort{{Name: "http", ContainerPort: 8080, Protocol: corev1.ProtocolTCP}},
				Env:                    []corev1.EnvVar{{Name: "LOG_LEVEL", Value: "info"}, {Name: "REGION", Value: "eu-west-1"}, {Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.name"}}}},
				Resources:              res,
				LivenessProbe:          probe,
				ReadinessProbe:         probe,
				TerminationMessagePath: "/dev/termination-log", TerminationMessagePolicy: corev1.TerminationMessageReadFile,
				ImagePullPolicy: corev1.PullIfNotPresent,
			},
			{
				Name: "proxy", Image: "registry.example/envoy:1.30",
				Ports:                  []corev1.ContainerPort{{Name: "admin", ContainerPort: 9901, Protocol: corev1.ProtocolTCP}},
				Resources:              res,
				TerminationMessagePath: "/dev/termination-log", TerminationMessagePolicy: corev1.TerminationMessageReadFile,
				ImagePullPolicy: corev1.PullIfNotPresent,
			},
		},
		RestartPolicy: corev1.RestartPolicyAlways, DNSPolicy: corev1.DNSClusterFirst,
		ServiceAccountName: "checkout", SchedulerName: "default-scheduler",
		SecurityContext: &corev1.PodSecurityContext{},
	}
	return t
}

func BenchmarkDecide(b *testing.B) {
	ctx := context.Background()
	wl := func(image string) *Workload {
		return &Workload{Kind: "Deployment", Namespace: "shop", Name: "checkout", Labels: map[string]string{"app": "checkout", "tier": "frontend"}, Template: richTemplate(image)}
	}
	revisions := make([]corev1.PodTemplateSpec, 0, 10)
	for i := range 10 {
		t := richTemplate(fmt.Sprintf("v0.%d", i))
		t.Labels[PodTemplateHashLabel] = fmt.Sprintf("hash%d", i)
		revisions = append(revisions, *t)
	}
	envRevisions := make([]corev1.PodTemplateSpec, 0, 10)
	for i := range 10 {
		t := richTemplate("v1")
		t.Labels[PodTemplateHashLabel] = fmt.Sprintf("hash%d", i)
		t.Spec.Containers[0].Env[0].Value = fmt.Sprintf("debug%d", i)
		envRevisions = append(envRevisions, *t)
	}
	envChange := wl("v1")
	envChange.Template.Spec.Containers[0].Env[1].Value = "us-east-1"
	others := []FrozenSLO{sloOtherApp, sloOtherNS, sloEverying, {Namespace: "shop", Name: "search", Selector: sel("app=search,tier=frontend"), Policy: "default"}}
	exceptions := []Exception{fexOther, fexExpired}

	cases := []struct {
		name    string
		req     Request
		frozen  []FrozenSLO
		lookups *fakeLookups
		want    Class
	}{
		{"not-frozen", update(wl("v1"), wl("v2"), alice), others, &fakeLookups{}, ClassNotFrozen},
		{"frozen-scale", update(wl("v1"), wl("v1"), alice), append([]FrozenSLO{sloAvail}, others...), &fakeLookups{}, ClassScaleOrMetadata},
		{"frozen-deny-10-revisions", update(wl("v1"), wl("v2"), alice), append([]FrozenSLO{sloAvail}, others...), &fakeLookups{history: revisions}, ClassTemplateChange},
		{"frozen-deny-10-revisions-same-image", update(wl("v1"), envChange, alice), append([]FrozenSLO{sloAvail}, others...), &fakeLookups{history: envRevisions}, ClassTemplateChange},
		{"frozen-rollback-10th-revision", update(wl("v1"), wl("v0.9"), alice), append([]FrozenSLO{sloAvail}, others...), &fakeLookups{history: revisions}, ClassRollback},
	}
	for _, bc := range cases {
		b.Run(bc.name, func(b *testing.B) {
			if r := Decide(ctx, bc.req, bc.frozen, exceptions, bc.lookups, now); r.Class != bc.want {
				b.Fatalf("Class = %s, want %s: %s", r.Class, bc.want, r.Message)
			}
			b.ReportAllocs()
			for b.Loop() {
				bc.lookups.calls = bc.lookups.calls[:0]
				Decide(ctx, bc.req, bc.frozen, exceptions, bc.lookups, now)
			}
		})
	}
}

// FuzzDecide builds random workloads, templates, selectors and exceptions and
// checks that Decide never panics, never modifies its input, and returns a
// consistent Result.
func FuzzDecide(f *testing.F) {
	f.Add(uint8(1), "v1", "v2", "checkout", "checkout", "app=checkout", "", "", "", uint16(0))
	f.Add(uint8(0), "", "v1", "", "checkout", "app in (checkout)", "", "2026", "hotfix", uint16(0xffff))
	f.Add(uint8(1), "v1", "v1", "a", "b", "app!=x", "x", "y", "", uint16(0x0f0f))
	f.Add(uint8(2), "v1", "", "checkout", "", "", "", "", "security", uint16(3))
	f.Add(uint8(1), "v0", "v0", "checkout", "checkout", "app", "", "", "\n\x00\xff", uint16(0x155))
	f.Fuzz(func(t *testing.T, op uint8, oldImage, newImage, oldApp, newApp, selector, oldRestart, newRestart, class string, flags uint16) {
		bit := func(i uint) bool { return flags&(1<<i) != 0 }
		mk := func(image, app, restart, class string, nilTemplate, nilLabels bool) *Workload {
			w := &Workload{Kind: "Deployment", Namespace: "shop", Name: "checkout"}
			if !nilLabels {
				w.Labels = map[string]string{"app": app}
			}
			if nilTemplate {
				return w
			}
			t := &corev1.PodTemplateSpec{}
			t.Labels = map[string]string{"app": app}
			if image != "" {
				t.Spec.Containers = []corev1.Container{{Name: "app", Image: image}}
			}
			if restart != "" {
				t.Annotations = map[string]string{RestartedAtAnnotation: restart}
			}
			if class != "" {
				if t.Annotations == nil {
					t.Annotations = map[string]string{}
				}
				t.Annotations[ReleaseClassAnnotation] = class
			}
			w.Template = t
			return w
		}
		req := Request{Operation: []Operation{Create, Update, Delete, "CONNECT", ""}[int(op)%5], User: alice}
		if !bit(0) {
			req.Old = mk(oldImage, oldApp, oldRestart, "", bit(1), bit(2))
		}
		if !bit(3) {
			req.New = mk(newImage, newApp, newRestart, class, bit(4), bit(5))
		}
		var s labels.Selector
		if parsed, err := labels.Parse(selector); err == nil && !bit(6) {
			s = parsed
		}
		frozen := []FrozenSLO{{Namespace: "shop", Name: "a", Selector: s, DryRun: bit(7), Policy: class, Rule: selector, Reason: newImage,
			Since: since, HoldUntil: hold, ExemptReleaseClasses: []string{class, "hotfix"}}}
		if bit(8) {
			frozen = append(frozen, FrozenSLO{Namespace: "shop", Name: "b", Selector: s, DryRun: bit(9), ExemptReleaseClasses: []string{"security"}})
		}
		var exceptions []Exception
		if bit(10) {
			exceptions = append(exceptions, Exception{Namespace: "shop", Name: "x", Reason: oldImage, Selector: s,
				Workloads: []WorkloadRef{{Kind: "Deployment", Name: oldApp}}, ExpiresAt: now.Add(time.Duration(int(flags>>12)-8) * time.Minute)})
		}
		var lk Lookups
		fake := &fakeLookups{allowed: bit(11)}
		if !bit(12) {
			lk = fake
			if req.Old != nil && req.Old.Template != nil {
				fake.history = []corev1.PodTemplateSpec{*req.Old.Template.DeepCopy(), {}}
			}
			if bit(13) {
				fake.historyErr, fake.sarErr = errors.New("boom\nboom"), errors.New("denied")
			}
		}
		var before []*Workload
		for _, w := range []*Workload{req.Old, req.New} {
			if w != nil {
				before = append(before, deepCopy(w))
			}
		}

		got := Decide(context.Background(), req, frozen, exceptions, lk, now)

		checkInvariants(t, got, fake.calls)
		var after []*Workload
		for _, w := range []*Workload{req.Old, req.New} {
			if w != nil {
				after = append(after, w)
			}
		}
		if diff := cmp.Diff(before, after); diff != "" {
			t.Errorf("Decide modified its input (-before +after):\n%s", diff)
		}
		if req.Operation != Create && req.Operation != Update && (got.Decision != Allow || got.Class != ClassScaleOrMetadata) {
			t.Errorf("%q: %s %s", req.Operation, got.Decision, got.Class)
		}
		if enforced := !bit(7) || (bit(8) && !bit(9)); got.Decision == Deny && !enforced {
			t.Errorf("Deny without an Enforce SLO: %s", got.Message)
		}
	})
}
