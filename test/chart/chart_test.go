// Package chart_test keeps the Helm chart charts/budgetgate from drifting from
// config/: rendered with default values as the release budgetgate in the
// namespace budgetgate-system, the chart must equal `kustomize build
// config/default` (dist/install.yaml) object by object, and its other modes
// must equal kustomize builds of config/ with the matching components. Its
// crds/ must be byte copies of config/crd/bases.
//
// Only what Helm necessarily adds is ignored: Helm's labels (helm.sh/chart,
// app.kubernetes.io/{managed-by,instance,version}; config/'s
// app.kubernetes.io/managed-by: kustomize is its counterpart), the Namespace
// object kustomize emits and a chart does not, and the CRDs, compared on their
// own. The image tag is a build parameter on both sides (IMG of make
// build-installer, image.tag of the chart): the chart is rendered with the tag
// of the kustomize output it is compared with, and everything else, the
// repository included, must match.
//
// The tests need bin/helm (make helm) and, for the kustomize builds,
// bin/kustomize (make kustomize). Without them they skip, unless
// BUDGETGATE_REQUIRE_HELM is set (make test-chart sets it): then they fail.
package chart_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/budgetgate/budgetgate/internal/promconn"
	"sigs.k8s.io/yaml"
)

const (
	chartDir = "charts/budgetgate"
	// release and namespace give the chart the names kustomize's namePrefix
	// "budgetgate-" and namespace "budgetgate-system" give config/default.
	release   = "budgetgate"
	namespace = "budgetgate-system"
)

// helmOnlyLabels are the labels Helm's conventions add to every object, and
// config/'s counterpart of app.kubernetes.io/managed-by (kustomize).
var helmOnlyLabels = []string{
	"helm.sh/chart",
	"app.kubernetes.io/managed-by",
	"app.kubernetes.io/instance",
	"app.kubernetes.io/version",
}

// helmOnlyAnnotations are the ownership annotations Helm writes at install
// time (not in `helm template` output; dropped in case a rendering has them).
var helmOnlyAnnotations = []string{
	"meta.helm.sh/release-name",
	"meta.helm.sh/release-namespace",
}

// The names the manager injects the webhook CA into (cmd/main.go): its
// --webhook-configuration-prefix (default "budgetgate-") and these suffixes.
var webhookConfigurations = map[string]string{
	"validating-webhook-configuration": "ValidatingWebhookConfiguration",
	"workload-release-gate":            "ValidatingWebhookConfiguration",
	"mutating-webhook-configuration":   "MutatingWebhookConfiguration",
}

// injectedNames are the webhook configuration names the manager of this
// Deployment injects its CA into, by name → kind; none when it does not rotate
// its certificate (cert-manager injects by annotation then).
func injectedNames(deployment object) map[string]string {
	prefix := "budgetgate-"
	for _, a := range managerArgs(deployment) {
		if a == "--webhook-cert-rotation=false" {
			return nil
		}
		if v, ok := strings.CutPrefix(a, "--webhook-configuration-prefix="); ok {
			prefix = v
		}
	}
	out := map[string]string{}
	for suffix, kind := range webhookConfigurations {
		out[prefix+suffix] = kind
	}
	return out
}

// managerArgs are the args of the Deployment's first container.
func managerArgs(deployment object) []string {
	spec, _ := deployment["spec"].(map[string]any)
	tpl, _ := spec["template"].(map[string]any)
	pod, _ := tpl["spec"].(map[string]any)
	containers, _ := pod["containers"].([]any)
	if len(containers) == 0 {
		return nil
	}
	args, _ := containers[0].(map[string]any)["args"].([]any)
	out := make([]string, 0, len(args))
	for _, a := range args {
		out = append(out, fmt.Sprint(a))
	}
	return out
}

// root is the repository's top directory.
var root = func() string {
	dir, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		panic(err)
	}
	return dir
}()

type object = map[string]any

// plainKey is a map key fieldPath writes as .key rather than ["key"].
var plainKey = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// tool returns bin/NAME, or skips (fails under BUDGETGATE_REQUIRE_HELM) when
// it is missing.
func tool(t *testing.T, name string) string {
	t.Helper()
	path := filepath.Join(root, "bin", name)
	if info, err := os.Stat(path); err == nil && !info.IsDir() && info.Mode()&0o111 != 0 {
		return path
	}
	if os.Getenv("BUDGETGATE_REQUIRE_HELM") != "" {
		t.Fatalf("bin/%s is missing and BUDGETGATE_REQUIRE_HELM is set: run `make %s` (make test-chart does)", name, name)
	}
	t.Skipf("bin/%s is missing, skipping the chart drift test: run `make test-chart` "+
		"(or `make %s`; set BUDGETGATE_REQUIRE_HELM=1 to fail instead of skipping)", name, name)
	return ""
}

func run(t *testing.T, dir, name string, args ...string) ([]byte, error) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w\n%s", filepath.Base(name), strings.Join(args, " "), err, stderr.String())
	}
	return out, nil
}

// helmTemplate renders the chart; args are more `helm template` flags.
func helmTemplate(t *testing.T, releaseName, ns string, args ...string) ([]byte, error) {
	t.Helper()
	helm := tool(t, "helm")
	return run(t, root, helm, append([]string{"template", releaseName, chartDir, "-n", ns}, args...)...)
}

func mustHelmTemplate(t *testing.T, releaseName, ns string, args ...string) []object {
	t.Helper()
	out, err := helmTemplate(t, releaseName, ns, args...)
	if err != nil {
		t.Fatal(err)
	}
	return parse(t, "helm template", out)
}

// parse splits a multi-document YAML stream into objects.
func parse(t *testing.T, what string, data []byte) []object {
	t.Helper()
	reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var objs []object
	for {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return objs
		}
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		var obj object
		if err := yaml.Unmarshal(doc, &obj); err != nil {
			t.Fatalf("%s: %v\n%s", what, err, doc)
		}
		if len(obj) > 0 {
			objs = append(objs, obj)
		}
	}
}

func str(obj object, path ...string) string {
	var cur any = obj
	for _, p := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return ""
		}
		cur = m[p]
	}
	s, _ := cur.(string)
	return s
}

func key(obj object) string {
	ns := str(obj, "metadata", "namespace")
	return fmt.Sprintf("%s %s/%s", str(obj, "kind"), ns, str(obj, "metadata", "name"))
}

// normalize drops what only Helm adds, and indexes the objects by kind,
// namespace and name. The Namespace and the CRDs are left out.
func normalize(t *testing.T, what string, objs []object) map[string]object {
	t.Helper()
	out := map[string]object{}
	for _, obj := range objs {
		switch str(obj, "kind") {
		case "Namespace", "CustomResourceDefinition":
			continue
		}
		obj = deepCopy(obj)
		if meta, ok := obj["metadata"].(map[string]any); ok {
			for field, drop := range map[string][]string{"labels": helmOnlyLabels, "annotations": helmOnlyAnnotations} {
				m, ok := meta[field].(map[string]any)
				if !ok {
					continue
				}
				for _, k := range drop {
					delete(m, k)
				}
				if len(m) == 0 {
					delete(meta, field)
				}
			}
		}
		k := key(obj)
		if _, dup := out[k]; dup {
			t.Fatalf("%s: %s twice", what, k)
		}
		out[k] = obj
	}
	return out
}

func deepCopy(obj object) object {
	b, err := json.Marshal(obj)
	if err != nil {
		panic(err)
	}
	var c object
	if err := json.Unmarshal(b, &c); err != nil {
		panic(err)
	}
	return c
}

// fieldDiffs is a cmp.Reporter that names each differing field by its path.
type fieldDiffs struct {
	path  cmp.Path
	lines []string
}

func (r *fieldDiffs) PushStep(s cmp.PathStep) { r.path = append(r.path, s) }
func (r *fieldDiffs) PopStep()                { r.path = r.path[:len(r.path)-1] }
func (r *fieldDiffs) Report(res cmp.Result) {
	if res.Equal() {
		return
	}
	x, y := r.path.Last().Values()
	r.lines = append(r.lines, fmt.Sprintf("    %s: kustomize %s, chart %s", fieldPath(r.path), show(x), show(y)))
}

func fieldPath(p cmp.Path) string {
	var b strings.Builder
	for _, step := range p {
		switch s := step.(type) {
		case cmp.MapIndex:
			k := fmt.Sprint(s.Key().Interface())
			if plainKey.MatchString(k) {
				b.WriteString("." + k)
			} else {
				fmt.Fprintf(&b, "[%q]", k)
			}
		case cmp.SliceIndex:
			kx, ky := s.SplitKeys()
			switch {
			case kx == ky:
				fmt.Fprintf(&b, "[%d]", kx)
			case kx < 0:
				fmt.Fprintf(&b, "[chart only: %d]", ky)
			case ky < 0:
				fmt.Fprintf(&b, "[kustomize only: %d]", kx)
			default:
				fmt.Fprintf(&b, "[%d→%d]", kx, ky)
			}
		}
	}
	return strings.TrimPrefix(b.String(), ".")
}

func show(v reflect.Value) string {
	if !v.IsValid() {
		return "(absent)"
	}
	b, err := json.Marshal(v.Interface())
	if err != nil {
		return fmt.Sprint(v.Interface())
	}
	if len(b) > 300 {
		return string(b[:300]) + "…"
	}
	return string(b)
}

// compare reports every object only on one side, and every differing field.
func compare(t *testing.T, want, got map[string]object) {
	t.Helper()
	keys := map[string]bool{}
	for k := range want {
		keys[k] = true
	}
	for k := range got {
		keys[k] = true
	}
	for _, k := range slices.Sorted(maps.Keys(keys)) {
		w, inWant := want[k]
		g, inGot := got[k]
		switch {
		case !inGot:
			t.Errorf("%s: kustomize has it, the chart does not", k)
		case !inWant:
			t.Errorf("%s: the chart has it, kustomize does not", k)
		default:
			var r fieldDiffs
			if !cmp.Equal(w, g, cmp.Reporter(&r)) {
				t.Errorf("%s differs:\n%s\n  diff (-kustomize +chart):\n%s",
					k, strings.Join(r.lines, "\n"), cmp.Diff(w, g))
			}
		}
	}
}

// imageTag returns the tag of the manager image in a kustomize output, which
// the chart is rendered with (see the package comment).
func imageTag(t *testing.T, objs map[string]object) string {
	t.Helper()
	for _, obj := range objs {
		if str(obj, "kind") != "Deployment" {
			continue
		}
		containers, _ := obj["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)["containers"].([]any)
		for _, c := range containers {
			c := c.(map[string]any)
			if c["name"] != "manager" {
				continue
			}
			image, _ := c["image"].(string)
			if strings.Contains(image, "@") {
				t.Fatalf("the kustomize output pins the manager image by digest (%s); compare with image.digest", image)
			}
			if i := strings.LastIndex(image, ":"); i > strings.LastIndex(image, "/") {
				return image[i+1:]
			}
			return "latest"
		}
	}
	t.Fatal("the kustomize output has no Deployment with a manager container")
	return ""
}

// kustomizeConfig builds a scratch copy of config/ whose config/default
// kustomization also lists the given components and resources (paths relative
// to config/default), the way config/default/kustomization.yaml says to
// enable them. The real tree is never touched.
func kustomizeConfig(t *testing.T, components, resources []string) []object {
	t.Helper()
	kustomize := tool(t, "kustomize")
	dir := t.TempDir()
	if err := os.CopyFS(filepath.Join(dir, "config"), os.DirFS(filepath.Join(root, "config"))); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "config", "default", "kustomization.yaml")
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var k map[string]any
	if err := yaml.Unmarshal(data, &k); err != nil {
		t.Fatal(err)
	}
	add := func(field string, items []string) {
		list, _ := k[field].([]any)
		for _, item := range items {
			list = append(list, item)
		}
		if len(list) > 0 {
			k[field] = list
		}
	}
	add("components", components)
	add("resources", resources)
	if data, err = yaml.Marshal(k); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := run(t, dir, kustomize, "build", "config/default")
	if err != nil {
		t.Fatal(err)
	}
	return parse(t, "kustomize build", out)
}

func readDist(t *testing.T) []object {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, "dist", "install.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return parse(t, "dist/install.yaml", data)
}

// webhookNetworkPolicy is the one object the chart adds on purpose: with
// networkPolicy.enabled, ingress to the webhook port from anywhere, without
// which config/network-policy cuts the API server off from the webhooks.
const webhookNetworkPolicy = `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  labels:
    app.kubernetes.io/name: budgetgate
  name: budgetgate-allow-webhook-traffic
  namespace: budgetgate-system
spec:
  podSelector:
    matchLabels:
      control-plane: controller-manager
      app.kubernetes.io/name: budgetgate
  policyTypes:
  - Ingress
  ingress:
  - ports:
    - port: 9443
      protocol: TCP
`

// TestChartMatchesKustomize renders the chart in each mode and compares it
// with what kustomize builds from config/ for the same choice.
func TestChartMatchesKustomize(t *testing.T) {
	cases := []struct {
		name string
		// kustomize returns the reference objects.
		kustomize func(t *testing.T) []object
		// helm is the `helm template` flags of the mode.
		helm []string
		// extra are objects only the chart has, on purpose.
		extra []string
	}{{
		name:      "default values vs dist/install.yaml",
		kustomize: readDist,
	}, {
		name: "default values vs kustomize build config/default",
		kustomize: func(t *testing.T) []object {
			return kustomizeConfig(t, nil, nil)
		},
	}, {
		name: "certificates.mode=certManager vs config/components/cert-manager",
		kustomize: func(t *testing.T) []object {
			return kustomizeConfig(t, []string{"../components/cert-manager"}, nil)
		},
		helm: []string{"--set", "certificates.mode=certManager"},
	}, {
		name: "failurePolicy Fail, ServiceMonitor, NetworkPolicy vs fail-closed, prometheus, network-policy",
		kustomize: func(t *testing.T) []object {
			return kustomizeConfig(t,
				[]string{"../webhook/fail-closed", "../prometheus"},
				[]string{"../network-policy"})
		},
		helm: []string{
			"--set", "webhook.releaseGate.failurePolicy=Fail",
			"--set", "serviceMonitor.enabled=true",
			"--set", "networkPolicy.enabled=true",
		},
		extra: []string{webhookNetworkPolicy},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tool(t, "helm")
			want := normalize(t, "kustomize", tc.kustomize(t))
			for _, extra := range tc.extra {
				var obj object
				if err := yaml.Unmarshal([]byte(extra), &obj); err != nil {
					t.Fatal(err)
				}
				want[key(obj)] = obj
			}
			// Guard against comparing nothing with nothing.
			for _, k := range []string{
				"Deployment budgetgate-system/budgetgate-controller-manager",
				"ValidatingWebhookConfiguration /budgetgate-workload-release-gate",
			} {
				if _, ok := want[k]; !ok {
					t.Fatalf("the kustomize output has no %s", k)
				}
			}
			args := append([]string{"--set-string", "image.tag=" + imageTag(t, want)}, tc.helm...)
			got := normalize(t, "chart", mustHelmTemplate(t, release, namespace, args...))
			compare(t, want, got)
			t.Logf("%d objects compared (%d in the chart)", len(want), len(got))
		})
	}
}

// TestDashboardMatchesConfig checks that the chart ships the dashboard of
// config/grafana byte for byte, and renders it for the sidecar.
func TestDashboardMatchesConfig(t *testing.T) {
	want, err := os.ReadFile(filepath.Join(root, "config", "grafana", "budgetgate-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(root, chartDir, "files", "budgetgate-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(want, got) {
		t.Fatalf("%s/files/budgetgate-dashboard.json differs from config/grafana/budgetgate-dashboard.json: cp config/grafana/budgetgate-dashboard.json %s/files/", chartDir, chartDir)
	}
	tool(t, "helm")
	var cm object
	for _, obj := range mustHelmTemplate(t, release, namespace, "--set", "grafanaDashboard.enabled=true", "--set", "grafanaDashboard.namespace=monitoring") {
		if key(obj) == "ConfigMap monitoring/budgetgate-dashboard" {
			cm = obj
		}
	}
	if cm == nil {
		t.Fatal("no ConfigMap monitoring/budgetgate-dashboard rendered")
	}
	if str(cm, "metadata", "labels", "grafana_dashboard") != "1" {
		t.Errorf("the ConfigMap lacks the sidecar's label: %v", cm["metadata"])
	}
	if data := cm["data"].(map[string]any)["budgetgate-dashboard.json"]; strings.TrimSpace(data.(string)) != strings.TrimSpace(string(want)) {
		t.Error("the rendered dashboard differs from config/grafana's")
	}
}

// TestCRDsMatchConfig checks that charts/budgetgate/crds holds exactly the
// files of config/crd/bases, byte for byte, and that dist/install.yaml
// installs the same CRDs.
func TestCRDsMatchConfig(t *testing.T) {
	bases := filepath.Join(root, "config", "crd", "bases")
	crds := filepath.Join(root, chartDir, "crds")
	list := func(dir string) map[string][]byte {
		files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		out := map[string][]byte{}
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			out[filepath.Base(f)] = data
		}
		return out
	}
	want, got := list(bases), list(crds)
	if len(want) == 0 {
		t.Fatal("config/crd/bases has no CRDs")
	}
	names := map[string]bool{}
	for n := range want {
		names[n] = true
	}
	for n := range got {
		names[n] = true
	}
	for _, n := range slices.Sorted(maps.Keys(names)) {
		w, inWant := want[n]
		g, inGot := got[n]
		switch {
		case !inGot:
			t.Errorf("%s/crds/%s is missing (config/crd/bases has it): run make chart-crds", chartDir, n)
		case !inWant:
			t.Errorf("%s/crds/%s is not in config/crd/bases: run make chart-crds", chartDir, n)
		case !bytes.Equal(w, g):
			t.Errorf("%s/crds/%s differs from config/crd/bases/%s: run make chart-crds\n  diff (-config +chart):\n%s",
				chartDir, n, n, cmp.Diff(strings.Split(string(w), "\n"), strings.Split(string(g), "\n")))
		}
	}

	// dist/install.yaml's CRDs are the same objects.
	wantObjs := map[string]object{}
	for _, data := range want {
		for _, obj := range parse(t, "config/crd/bases", data) {
			wantObjs[key(obj)] = obj
		}
	}
	gotObjs := map[string]object{}
	for _, obj := range readDist(t) {
		if str(obj, "kind") == "CustomResourceDefinition" {
			gotObjs[key(obj)] = obj
		}
	}
	for k, w := range wantObjs {
		if g, ok := gotObjs[k]; !ok {
			t.Errorf("dist/install.yaml lacks %s: make build-installer", k)
		} else if d := cmp.Diff(w, g); d != "" {
			t.Errorf("dist/install.yaml's %s differs from config/crd/bases (-config +dist): make build-installer\n%s", k, d)
		}
	}
	for k := range gotObjs {
		if _, ok := wantObjs[k]; !ok {
			t.Errorf("dist/install.yaml has %s, config/crd/bases does not", k)
		}
	}
}

// TestReferencesResolve renders the chart under another release name and
// namespace, in each mode and with every toggle on, and checks that what the
// objects refer to exists under the templated names.
func TestReferencesResolve(t *testing.T) {
	cases := []struct {
		name, release, namespace string
		args                     []string
	}{
		{"defaults", release, namespace, nil},
		{"other release and namespace", "bg", "platform", nil},
		{"other release, certManager", "bg", "platform", []string{"--set", "certificates.mode=certManager"}},
		{"every toggle on", "bg", "platform", []string{"-f", filepath.Join(chartDir, "ci", "all-toggles-values.yaml")}},
		{"fullnameOverride, given ServiceAccount", "x", "ops", []string{
			"--set", "fullnameOverride=gate", "--set", "serviceAccount.create=false", "--set", "serviceAccount.name=gate-sa",
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			objs := mustHelmTemplate(t, tc.release, tc.namespace, tc.args...)
			checkReferences(t, tc.release, tc.namespace, objs)
		})
	}
}

// rendered indexes a rendering by kind, namespace and name.
type rendered struct {
	objs  []object
	byKey map[string]object
}

func (r rendered) has(kind, namespace, name string) bool {
	_, ok := r.byKey[fmt.Sprintf("%s %s/%s", kind, namespace, name)]
	return ok
}

func checkReferences(t *testing.T, releaseName, ns string, objs []object) {
	t.Helper()
	r := rendered{objs: objs, byKey: map[string]object{}}
	for _, obj := range objs {
		r.byKey[key(obj)] = obj
	}
	var deployment object
	for _, obj := range objs {
		if str(obj, "kind") == "Deployment" {
			deployment = obj
		}
	}
	if deployment == nil {
		t.Fatal("no Deployment rendered")
	}
	injected := injectedNames(deployment)
	seenConfigs := map[string]bool{}
	for _, obj := range objs {
		checkScope(t, obj, ns)
		if want, ok := injected[str(obj, "metadata", "name")]; ok {
			if str(obj, "kind") != want {
				t.Errorf("%s: want kind %s", key(obj), want)
			}
			seenConfigs[str(obj, "metadata", "name")] = true
		}
		switch str(obj, "kind") {
		case "Deployment":
		case "RoleBinding", "ClusterRoleBinding":
			checkBinding(t, r, obj, ns)
		case "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration":
			checkWebhookConfiguration(t, r, obj, ns)
		case "Certificate":
			ref := obj["spec"].(map[string]any)["issuerRef"].(map[string]any)
			if ref["kind"] == "Issuer" && ref["group"] == nil && !r.has("Issuer", ns, ref["name"].(string)) {
				t.Errorf("%s: issuerRef Issuer %s is not rendered", key(obj), ref["name"])
			}
		}
	}
	for name := range injected {
		if !seenConfigs[name] {
			t.Errorf("the webhook configuration %s (the name the manager injects the CA into) is not rendered", name)
		}
	}
	checkManager(t, r, deployment, releaseName, ns)
}

// checkScope checks that namespaced objects are in the release namespace and
// cluster-scoped ones have none.
func checkScope(t *testing.T, obj object, ns string) {
	t.Helper()
	objNS := str(obj, "metadata", "namespace")
	switch str(obj, "kind") {
	case "ClusterRole", "ClusterRoleBinding", "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration":
		if objNS != "" {
			t.Errorf("%s: a cluster-scoped object with a namespace", key(obj))
		}
	default:
		// The dashboard goes where Grafana's sidecar watches (grafanaDashboard.namespace).
		if objNS != ns && !strings.HasSuffix(str(obj, "metadata", "name"), "-dashboard") {
			t.Errorf("%s: namespace %q, want the release namespace %q", key(obj), objNS, ns)
		}
	}
	if str(obj, "kind") == "Service" && len(str(obj, "metadata", "name")) > 63 {
		t.Errorf("%s: a Service name longer than 63 characters", key(obj))
	}
}

func checkBinding(t *testing.T, r rendered, obj object, ns string) {
	t.Helper()
	ref := obj["roleRef"].(map[string]any)
	refNS := str(obj, "metadata", "namespace")
	if ref["kind"] == "ClusterRole" {
		refNS = ""
	}
	if !r.has(ref["kind"].(string), refNS, ref["name"].(string)) {
		t.Errorf("%s: roleRef %s %s is not rendered", key(obj), ref["kind"], ref["name"])
	}
	for _, s := range obj["subjects"].([]any) {
		s := s.(map[string]any)
		if strings.HasSuffix(str(obj, "metadata", "name"), "-metrics-reader-prometheus") {
			// The scraping Prometheus, in its own namespace (serviceMonitor.prometheusServiceAccount).
			if s["kind"] != "ServiceAccount" || s["name"] == "" || s["namespace"] == "" {
				t.Errorf("%s: subject %v, want the Prometheus ServiceAccount", key(obj), s)
			}
			continue
		}
		if s["kind"] != "ServiceAccount" || s["namespace"] != ns {
			t.Errorf("%s: subject %v, want a ServiceAccount in %s", key(obj), s, ns)
		}
	}
}

func checkWebhookConfiguration(t *testing.T, r rendered, obj object, ns string) {
	t.Helper()
	for _, w := range obj["webhooks"].([]any) {
		w := w.(map[string]any)
		svc := w["clientConfig"].(map[string]any)["service"].(map[string]any)
		if !r.has("Service", svc["namespace"].(string), svc["name"].(string)) {
			t.Errorf("%s: webhook %s calls Service %s/%s, which is not rendered",
				key(obj), w["name"], svc["namespace"], svc["name"])
		}
		if sel, ok := w["namespaceSelector"].(map[string]any); ok {
			values := sel["matchExpressions"].([]any)[0].(map[string]any)["values"].([]any)
			if !contains(values, ns) {
				t.Errorf("%s: webhook %s does not exclude the release namespace %s: %v", key(obj), w["name"], ns, values)
			}
		}
	}
	if from := str(obj, "metadata", "annotations", "cert-manager.io/inject-ca-from"); from != "" {
		certNS, certName, _ := strings.Cut(from, "/")
		if !r.has("Certificate", certNS, certName) {
			t.Errorf("%s: inject-ca-from %s names no rendered Certificate", key(obj), from)
		}
	}
}

// checkManager checks what refers to the manager pods, and what the manager
// is told about the templated names.
func checkManager(t *testing.T, r rendered, deployment object, releaseName, ns string) {
	t.Helper()
	template := deployment["spec"].(map[string]any)["template"].(map[string]any)
	podSpec := template["spec"].(map[string]any)
	podLabels := template["metadata"].(map[string]any)["labels"].(map[string]any)
	if sa := podSpec["serviceAccountName"].(string); !r.has("ServiceAccount", ns, sa) {
		// A ServiceAccount the chart does not create must be what the bindings name.
		for _, obj := range r.objs {
			if k := str(obj, "kind"); k == "RoleBinding" || k == "ClusterRoleBinding" {
				if s := obj["subjects"].([]any)[0].(map[string]any); s["name"] != sa {
					t.Errorf("%s binds %s, the Deployment runs as %s", key(obj), s["name"], sa)
				}
			}
		}
	}
	webhookService, certSecret := checkSelectorsAndCertificate(t, r, podLabels, ns)
	args := map[string]string{}
	for _, a := range podSpec["containers"].([]any)[0].(map[string]any)["args"].([]any) {
		k, v, _ := strings.Cut(a.(string), "=")
		args[k] = v
	}
	// The manager must be told the templated names, unless they are its defaults.
	if webhookService != "budgetgate-webhook-service" && args["--webhook-service"] != webhookService {
		t.Errorf("the manager's --webhook-service is %q, the Service is %s", args["--webhook-service"], webhookService)
	}
	if releaseName != release {
		if _, ok := args["--webhook-service"]; !ok {
			t.Errorf("release %s: the manager is not told --webhook-service", releaseName)
		}
	}
	if _, certManager := args["--webhook-cert-path"]; certManager {
		var mounted string
		for _, v := range podSpec["volumes"].([]any) {
			if s, ok := v.(map[string]any)["secret"].(map[string]any); ok && v.(map[string]any)["name"] == "webhook-certs" {
				mounted = s["secretName"].(string)
			}
		}
		if mounted == "" || mounted != certSecret {
			t.Errorf("the manager mounts Secret %q, the Certificate writes %q", mounted, certSecret)
		}
		return
	}
	secret := strings.TrimSuffix(webhookService, "-webhook-service") + "-webhook-server-cert"
	if secret != "budgetgate-webhook-server-cert" && args["--webhook-cert-secret"] != secret {
		t.Errorf("the manager's --webhook-cert-secret is %q, want %s", args["--webhook-cert-secret"], secret)
	}
}

// checkSelectorsAndCertificate checks that every selector of the manager pods
// selects them and that the Certificate, if any, is for the webhook Service.
// It returns the webhook Service's name and the Certificate's Secret.
func checkSelectorsAndCertificate(t *testing.T, r rendered, podLabels map[string]any, ns string) (webhookService, certSecret string) {
	t.Helper()
	selects := func(obj object, selector any) {
		sel, _ := selector.(map[string]any)
		for k, v := range sel {
			if podLabels[k] != v {
				sel = nil
				break
			}
		}
		if len(sel) == 0 {
			t.Errorf("%s: selector %v does not select the manager pods %v", key(obj), selector, podLabels)
		}
	}
	var cert object
	for _, obj := range r.objs {
		spec, _ := obj["spec"].(map[string]any)
		switch str(obj, "kind") {
		case "Service":
			selects(obj, spec["selector"])
			if strings.HasSuffix(str(obj, "metadata", "name"), "-webhook-service") {
				webhookService = str(obj, "metadata", "name")
			}
		case "PodDisruptionBudget", "ServiceMonitor":
			selects(obj, spec["selector"].(map[string]any)["matchLabels"])
		case "NetworkPolicy":
			selects(obj, spec["podSelector"].(map[string]any)["matchLabels"])
		case "Certificate":
			cert = obj
		}
	}
	if webhookService == "" {
		t.Fatal("no webhook Service rendered")
	}
	if cert != nil {
		spec := cert["spec"].(map[string]any)
		certSecret, _ = spec["secretName"].(string)
		want := []any{webhookService + "." + ns + ".svc", webhookService + "." + ns + ".svc.cluster.local"}
		if !reflect.DeepEqual(spec["dnsNames"], want) {
			t.Errorf("%s: dnsNames %v, want %v", key(cert), spec["dnsNames"], want)
		}
	}
	return webhookService, certSecret
}

func contains(list []any, s string) bool {
	return slices.Contains(list, any(s))
}

// TestValues checks the values the templates validate or compute.
func TestValues(t *testing.T) {
	digest := "sha256:" + strings.Repeat("ab", 32)
	cases := []struct {
		name    string
		args    []string
		wantErr string
		check   func(t *testing.T, objs map[string]object)
	}{{
		name:    "failurePolicy other than Ignore or Fail",
		args:    []string{"--set", "webhook.releaseGate.failurePolicy=Sometimes"},
		wantErr: `webhook.releaseGate.failurePolicy must be Ignore or Fail, not "Sometimes"`,
	}, {
		name:    "unknown certificates.mode",
		args:    []string{"--set", "certificates.mode=vault"},
		wantErr: `certificates.mode must be builtin or certManager, not "vault"`,
	}, {
		name:    "several replicas without leader election",
		args:    []string{"--set", "replicaCount=3", "--set", "leaderElection.enabled=false"},
		wantErr: "leaderElection.enabled must be true",
	}, {
		name:    "malformed digest",
		args:    []string{"--set", "image.digest=sha256:xyz"},
		wantErr: "image.digest",
	}, {
		name:    "malformed decisionDeadline",
		args:    []string{"--set", "decisionDeadline=2 seconds"},
		wantErr: "decisionDeadline",
	}, {
		name: "failurePolicy Fail: the release gate only",
		args: []string{"--set", "webhook.releaseGate.failurePolicy=Fail"},
		check: func(t *testing.T, objs map[string]object) {
			gate := objs["ValidatingWebhookConfiguration /budgetgate-workload-release-gate"]
			webhooks := gate["webhooks"].([]any)
			got := make([]string, 0, len(webhooks))
			for _, w := range webhooks {
				got = append(got, fmt.Sprint(w.(map[string]any)["failurePolicy"]))
			}
			if want := []string{"Fail", "Ignore", "Ignore"}; !reflect.DeepEqual(got, want) {
				t.Errorf("failurePolicy of the release gate's webhooks: %v, want %v", got, want)
			}
		},
	}, {
		name: "digest wins over tag",
		args: []string{"--set", "image.repository=registry.example/budgetgate", "--set", "image.tag=v9", "--set", "image.digest=" + digest},
		check: func(t *testing.T, objs map[string]object) {
			if got, want := managerContainer(t, objs)["image"], "registry.example/budgetgate@"+digest; got != want {
				t.Errorf("image %v, want %v", got, want)
			}
		},
	}, {
		name: "tag defaults to appVersion",
		check: func(t *testing.T, objs map[string]object) {
			if got, want := managerContainer(t, objs)["image"], "ghcr.io/budgetgate/manager:"+appVersion(t); got != want {
				t.Errorf("image %v, want %v", got, want)
			}
		},
	}, {
		name: "release namespace excluded once, after the listed ones",
		args: []string{"--set", "webhook.excludedNamespaces={kube-system,budgetgate-system,istio-system}"},
		check: func(t *testing.T, objs map[string]object) {
			gate := objs["ValidatingWebhookConfiguration /budgetgate-workload-release-gate"]
			for _, w := range gate["webhooks"].([]any) {
				sel := w.(map[string]any)["namespaceSelector"].(map[string]any)
				got := sel["matchExpressions"].([]any)[0].(map[string]any)["values"]
				if want := []any{"kube-system", "budgetgate-system", "istio-system"}; !reflect.DeepEqual(got, want) {
					t.Errorf("%s excludes %v, want %v", w.(map[string]any)["name"], got, want)
				}
			}
		},
	}, {
		name: "manager flags from values",
		args: []string{
			"--set", "prometheus.address=https://prom.example:9091/x",
			"--set", "decisionDeadline=1500ms",
			"--set", "contact=https://runbooks.example/budgetgate",
			"--set", "extraArgs={--query-timeout=20s,--zap-log-level=debug}",
			"--set", "leaderElection.enabled=false", "--set", "replicaCount=1",
			"--set", "metrics.enabled=false",
		},
		check: func(t *testing.T, objs map[string]object) {
			got := managerContainer(t, objs)["args"]
			want := []any{
				"--metrics-bind-address=0", "--health-probe-bind-address=:8081",
				"--prometheus-address=https://prom.example:9091/x", "--decision-deadline=1500ms",
				"--contact=https://runbooks.example/budgetgate",
				"--query-timeout=20s", "--zap-log-level=debug",
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("args %v, want %v", got, want)
			}
			for k := range objs {
				if strings.Contains(k, "metrics") || strings.Contains(k, "leader-election") {
					t.Errorf("%s rendered although metrics and leader election are off", k)
				}
			}
		},
	}, {
		name:    "no Prometheus at all",
		args:    []string{"--set", "prometheus.address="},
		wantErr: "prometheus.address or prometheus.connections is required",
	}, {
		name: "Prometheus connections: a ConfigMap the manager parses, its Secrets mounted, pods rolled on change",
		args: []string{
			"--set", "prometheus.address=",
			"--set-json", `prometheus.connections=[{"name":"default","url":"https://mimir.example/prometheus",` +
				`"namespace_selector":"team in (shop)","http_client_config":{"basic_auth":{"username":"shop",` +
				`"password_file":"/etc/budgetgate/prometheus-secrets/mimir/password"},"http_headers":{"X-Scope-OrgID":{"values":["shop"]}}}}]`,
			"--set", "prometheus.secrets={mimir}",
			"--set", "prometheusRules.labels.release=kube-prometheus-stack",
		},
		check: func(t *testing.T, objs map[string]object) {
			cm := objs["ConfigMap budgetgate-system/budgetgate-prometheus-connections"]
			if cm == nil {
				t.Fatal("no ConfigMap budgetgate-prometheus-connections rendered")
			}
			file := cm["data"].(map[string]any)["connections.yaml"].(string)
			conns, err := promconn.Parse([]byte(file), "/etc/budgetgate/prometheus")
			if err != nil {
				t.Fatalf("the manager would refuse the rendered connections file: %v\n%s", err, file)
			}
			c, ok := conns.Get("default")
			if !ok || c.URL != "https://mimir.example/prometheus" || c.NamespaceSelector != "team in (shop)" ||
				c.HTTPClientConfig.BasicAuth == nil || c.HTTPClientConfig.BasicAuth.PasswordFile != "/etc/budgetgate/prometheus-secrets/mimir/password" {
				t.Errorf("connection default = %+v, want the values' connection", c)
			}
			container := managerContainer(t, objs)
			args := fmt.Sprint(container["args"])
			if !strings.Contains(args, "--prometheus-rule-labels=release=kube-prometheus-stack") {
				t.Errorf("args %s, want --prometheus-rule-labels=release=kube-prometheus-stack", args)
			}
			if !strings.Contains(args, "--prometheus-connections=/etc/budgetgate/prometheus/connections.yaml") || strings.Contains(args, "--prometheus-address") {
				t.Errorf("args %s, want --prometheus-connections and no --prometheus-address", args)
			}
			mounts := fmt.Sprint(container["volumeMounts"])
			for _, want := range []string{"/etc/budgetgate/prometheus ", "/etc/budgetgate/prometheus-secrets/mimir"} {
				if !strings.Contains(mounts+" ", want) {
					t.Errorf("volumeMounts %s: nothing at %s", mounts, want)
				}
			}
			for _, obj := range objs {
				if str(obj, "kind") != "Deployment" {
					continue
				}
				meta := obj["spec"].(map[string]any)["template"].(map[string]any)["metadata"].(map[string]any)
				if _, ok := meta["annotations"].(map[string]any)["checksum/prometheus-connections"]; !ok {
					t.Error("the pod template has no checksum of the connections: changing them would not roll the pods")
				}
			}
		},
	}, {
		name: "toggles off",
		args: []string{"--set", "podDisruptionBudget.enabled=false", "--set", "rbac.kindRoles.enabled=false", "--set", "rbac.aggregateToBuiltinRoles=false"},
		check: func(t *testing.T, objs map[string]object) {
			for k := range objs {
				if strings.HasPrefix(k, "PodDisruptionBudget ") || regexp.MustCompile(`-(admin|editor|viewer)-role$|-aggregate-to-view$`).MatchString(k) {
					t.Errorf("%s rendered although its toggle is off", k)
				}
			}
			for _, name := range []string{"release-during-freeze", "lift-freeze", "freeze-exception-requester", "freeze-exception-approver"} {
				if _, ok := objs["ClusterRole /budgetgate-"+name]; !ok {
					t.Errorf("the platform ClusterRole budgetgate-%s is missing", name)
				}
			}
		},
	}, {
		name: "ServiceMonitor release label",
		args: []string{"--set", "serviceMonitor.enabled=true", "--set", "serviceMonitor.release=kube-prometheus-stack"},
		check: func(t *testing.T, objs map[string]object) {
			sm := objs["ServiceMonitor budgetgate-system/budgetgate-controller-manager-metrics-monitor"]
			if got := str(sm, "metadata", "labels", "release"); got != "kube-prometheus-stack" {
				t.Errorf("ServiceMonitor label release=%q, want kube-prometheus-stack", got)
			}
		},
	}, {
		name: "certManager with a given ClusterIssuer",
		args: []string{"--set", "certificates.mode=certManager", "--set", "certificates.certManager.issuerRef.name=corp-ca",
			"--set", "certificates.certManager.issuerRef.kind=ClusterIssuer"},
		check: func(t *testing.T, objs map[string]object) {
			for k := range objs {
				if strings.HasPrefix(k, "Issuer ") {
					t.Errorf("%s rendered although issuerRef names an issuer", k)
				}
			}
			cert := objs["Certificate budgetgate-system/budgetgate-serving-cert"]
			got := cert["spec"].(map[string]any)["issuerRef"]
			if want := map[string]any{"kind": "ClusterIssuer", "name": "corp-ca"}; !reflect.DeepEqual(got, want) {
				t.Errorf("issuerRef %v, want %v", got, want)
			}
		},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, err := helmTemplate(t, release, namespace, tc.args...)
			if tc.wantErr != "" {
				if err == nil {
					t.Fatalf("helm template %v succeeded, want an error containing %q", tc.args, tc.wantErr)
				}
				if !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("helm template %v: %v\nwant an error containing %q", tc.args, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			objs := map[string]object{}
			for _, obj := range parse(t, "helm template", out) {
				objs[key(obj)] = obj
			}
			tc.check(t, objs)
		})
	}
}

func appVersion(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, chartDir, "Chart.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var chart struct {
		AppVersion string `json:"appVersion"`
	}
	if err := yaml.Unmarshal(data, &chart); err != nil || chart.AppVersion == "" {
		t.Fatalf("Chart.yaml: no appVersion (%v)", err)
	}
	return chart.AppVersion
}

func managerContainer(t *testing.T, objs map[string]object) map[string]any {
	t.Helper()
	for _, obj := range objs {
		if str(obj, "kind") == "Deployment" {
			spec := obj["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)
			return spec["containers"].([]any)[0].(map[string]any)
		}
	}
	t.Fatal("no Deployment rendered")
	return nil
}

// TestReadmeDocumentsEveryValue checks that the chart's README names every
// value of values.yaml.
func TestReadmeDocumentsEveryValue(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(root, chartDir, "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var values map[string]any
	if err := yaml.Unmarshal(data, &values); err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(root, chartDir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		if m, ok := v.(map[string]any); ok && len(m) > 0 && !isFreeForm(prefix) {
			for k, child := range m {
				walk(strings.TrimPrefix(prefix+"."+k, "."), child)
			}
			return
		}
		if !bytes.Contains(readme, []byte("| `"+prefix+"` |")) {
			t.Errorf("%s/README.md has no row for the value `%s`", chartDir, prefix)
		}
	}
	walk("", values)
}

// isFreeForm reports whether a value is a Kubernetes object passed through
// whole (documented as one row), not a map of chart settings.
func isFreeForm(path string) bool {
	switch path {
	case "strategy", "podSecurityContext", "securityContext", "resources", "livenessProbe", "readinessProbe", "grafanaDashboard.labels":
		return true
	}
	return false
}
