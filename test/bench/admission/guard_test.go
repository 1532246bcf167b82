package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

const kwokYAML = `kind: KwokctlConfiguration
components:
- binary: /x/bin/kube-apiserver
  name: kube-apiserver
- binary: /x/bin/kwok-controller
  name: kwok-controller
options:
  kubeApiserverPort: 32759
`

// realNodeYAML is what kwokctl records for the real-node cluster: the same
// control plane, the kwok controller disabled.
const realNodeYAML = `kind: KwokctlConfiguration
components:
- binary: /x/bin/kube-apiserver
  name: kube-apiserver
options:
  disable:
  - kwok-controller
  kubeApiserverPort: 32759
`

func kubeconfig(context, server string) *clientcmdapi.Config {
	return &clientcmdapi.Config{
		CurrentContext: context,
		Contexts:       map[string]*clientcmdapi.Context{context: {Cluster: context, AuthInfo: context}},
		Clusters:       map[string]*clientcmdapi.Cluster{context: {Server: server}},
	}
}

func TestCheckLocalKwok(t *testing.T) {
	root := "/repo"
	good := filepath.Join(root, ".cluster", "bench", "kubeconfig")
	kwokFile := filepath.Join(root, ".cluster", "bench", "kwok", "clusters", "budgetgate-bench", "kwok.yaml")
	files := func(content string) func(string) ([]byte, error) {
		return func(p string) ([]byte, error) {
			if p == kwokFile {
				return []byte(content), nil
			}
			return nil, os.ErrNotExist
		}
	}
	fake := map[string]bool{"node-000000": true, "node-000001": true}
	for _, tc := range []struct {
		name       string
		kubeconfig string
		config     *clientcmdapi.Config
		kwok       string
		nodes      map[string]bool
		wantErr    string
	}{
		{name: "the bench cluster", kubeconfig: good, config: kubeconfig("kwok-budgetgate-bench", "https://127.0.0.1:32759"), kwok: kwokYAML, nodes: fake},
		{name: "localhost", kubeconfig: good, config: kubeconfig("kwok-budgetgate-bench", "https://localhost:32759"), kwok: kwokYAML, nodes: fake},
		{name: "IPv6 loopback", kubeconfig: good, config: kubeconfig("kwok-budgetgate-bench", "https://[::1]:32759"), kwok: kwokYAML, nodes: fake},
		{name: "a kubeconfig elsewhere", kubeconfig: "/home/me/.kube/config",
			config: kubeconfig("kwok-budgetgate-bench", "https://127.0.0.1:32759"), kwok: kwokYAML, nodes: fake,
			wantErr: "kubeconfig /home/me/.kube/config is not one hack/cluster-up.sh writes"},
		{name: "a file under .cluster not named kubeconfig", kubeconfig: filepath.Join(root, ".cluster", "bench", "operator.kubeconfig"),
			config: kubeconfig("kwok-budgetgate-bench", "https://127.0.0.1:32759"), kwok: kwokYAML, nodes: fake,
			wantErr: "is not one hack/cluster-up.sh writes"},
		{name: "another context", kubeconfig: good, config: kubeconfig("prod-eu", "https://127.0.0.1:32759"), kwok: kwokYAML, nodes: fake,
			wantErr: `current context "prod-eu" is not a kwok cluster's`},
		{name: "a remote server", kubeconfig: good, config: kubeconfig("kwok-budgetgate-bench", "https://10.1.2.3:6443"), kwok: kwokYAML, nodes: fake,
			wantErr: "the API server 10.1.2.3:6443 is not on this machine"},
		{name: "a host name", kubeconfig: good, config: kubeconfig("kwok-budgetgate-bench", "https://k8s.example.com:32759"), kwok: kwokYAML, nodes: fake,
			wantErr: "is not on this machine"},
		{name: "another local API server", kubeconfig: good, config: kubeconfig("kwok-budgetgate-bench", "https://127.0.0.1:6443"), kwok: kwokYAML, nodes: fake,
			wantErr: "is not kwok cluster budgetgate-bench's API server (port 32759)"},
		{name: "no kwok cluster of that name", kubeconfig: good, config: kubeconfig("kwok-other", "https://127.0.0.1:32759"), kwok: kwokYAML, nodes: fake,
			wantErr: "no kwok cluster other made from this repository"},
		{name: "the real-node cluster's control plane", kubeconfig: good, config: kubeconfig("kwok-budgetgate-bench", "https://127.0.0.1:32759"),
			kwok: realNodeYAML, nodes: fake, wantErr: "runs no kwok controller"},
		{name: "a real node", kubeconfig: good, config: kubeconfig("kwok-budgetgate-bench", "https://127.0.0.1:32759"), kwok: kwokYAML,
			nodes: map[string]bool{"node-000000": true, "realnode": false}, wantErr: "node realnode of cluster budgetgate-bench is not a kwok fake node"},
		{name: "no nodes", kubeconfig: good, config: kubeconfig("kwok-budgetgate-bench", "https://127.0.0.1:32759"), kwok: kwokYAML,
			wantErr: "has no nodes"},
		{name: "no context", kubeconfig: good, config: &clientcmdapi.Config{CurrentContext: "kwok-budgetgate-bench"}, kwok: kwokYAML, nodes: fake,
			wantErr: "has no cluster"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name, state, err := checkLocalKwok(clusterFacts{Root: root, Kubeconfig: tc.kubeconfig, Config: tc.config,
				KwokConfig: files(tc.kwok), Nodes: tc.nodes})
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if name != "budgetgate-bench" || state != filepath.Join(root, ".cluster", "bench") {
					t.Errorf("got cluster %q, state %q", name, state)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("got error %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestRepoRoot(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module github.com/budgetgate/budgetgate\n\ngo 1.26.0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(dir, "test", "bench")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	// A go.mod of another module on the way up is not the root.
	if err := os.WriteFile(filepath.Join(sub, "go.mod"), []byte("module example.com/other\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := repoRoot(sub); err != nil || got != dir {
		t.Errorf("repoRoot = %q, %v; want %q", got, err, dir)
	}
	if _, err := repoRoot(t.TempDir()); err == nil {
		t.Error("repoRoot found a root where there is none")
	}
}
