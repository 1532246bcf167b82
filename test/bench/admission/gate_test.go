package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"sigs.k8s.io/yaml"
)

// renderedGate is config/webhook/workloads.yaml as hack/local-webhook writes
// it: every service clientConfig replaced by a URL on 127.0.0.1:9443.
func renderedGate(t *testing.T) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "..", "config", "webhook", "workloads.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := &admissionregistrationv1.ValidatingWebhookConfiguration{}
	if err := yaml.UnmarshalStrict(data, cfg); err != nil {
		t.Fatal(err)
	}
	for i := range cfg.Webhooks {
		cc := &cfg.Webhooks[i].ClientConfig
		u := "https://127.0.0.1:9443" + *cc.Service.Path
		cc.Service, cc.URL, cc.CABundle = nil, &u, []byte("CA")
	}
	out, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// A second document and a kustomize leftover, as in the real output.
	return []byte("---\n" + string(out) + "---\napiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n")
}

func TestParseConfigs(t *testing.T) {
	_, err := parseConfigs(renderedGate(t))
	if err == nil || !strings.Contains(err.Error(), "unexpected Namespace") {
		t.Errorf("parseConfigs accepted a Namespace among webhook configurations: %v", err)
	}
	data := renderedGate(t)
	data = data[:strings.LastIndex(string(data), "---")]
	got, err := parseConfigs(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Validating) != 1 || len(got.Mutating) != 0 || got.Validating[0].Name != gateConfig {
		t.Fatalf("parsed %d validating (%v) and %d mutating configurations, want only %s", len(got.Validating), got.Validating, len(got.Mutating), gateConfig)
	}
}

func TestWithReleaseGate(t *testing.T) {
	data := renderedGate(t)
	cfgs, err := parseConfigs(data[:strings.LastIndex(string(data), "---")])
	if err != nil {
		t.Fatal(err)
	}
	base := cfgs.Validating[0]
	base.ResourceVersion = "42"
	orig := base.DeepCopy()

	// Pointed at another manager: only the release webhook's URL port
	// changes. Rules, matchConditions, failurePolicy, namespaceSelector and
	// timeout stay as shipped: the benchmark measures the real gate.
	moved, err := withReleaseGate(base, 12345)
	if err != nil {
		t.Fatal(err)
	}
	want := orig.DeepCopy()
	want.ResourceVersion = ""
	u := "https://127.0.0.1:12345/validate-apps-v1-workloads"
	want.Webhooks[0].ClientConfig.URL = &u
	if want.Webhooks[0].Name != releaseWebhook {
		t.Fatalf("the first webhook of workloads.yaml is %s, want %s", want.Webhooks[0].Name, releaseWebhook)
	}
	if diff := cmp.Diff(want, moved); diff != "" {
		t.Errorf("withReleaseGate(12345) (-want +got):\n%s", diff)
	}
	if len(moved.Webhooks[0].MatchConditions) == 0 {
		t.Error("the release webhook lost its matchConditions")
	}

	// Removed: the history webhooks stay, unchanged.
	removed, err := withReleaseGate(base, 0)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(orig.Webhooks[1:], removed.Webhooks); diff != "" {
		t.Errorf("withReleaseGate(0) webhooks (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(orig, base); diff != "" {
		t.Errorf("withReleaseGate changed its input (-before +after):\n%s", diff)
	}

	noGate := base.DeepCopy()
	noGate.Webhooks = noGate.Webhooks[1:]
	if _, err := withReleaseGate(noGate, 1); err == nil || !strings.Contains(err.Error(), "has no webhook releases.budgetgate.dev") {
		t.Errorf("withReleaseGate without the release webhook: %v", err)
	}
	svc := base.DeepCopy()
	svc.Webhooks[0].ClientConfig.URL = nil
	if _, err := withReleaseGate(svc, 1); err == nil {
		t.Error("withReleaseGate moved a service clientConfig")
	}
}
