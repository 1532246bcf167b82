package main

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// kwokNodeAnnotation marks the fake nodes the kwok controller runs.
const kwokNodeAnnotation = "kwok.x-k8s.io/node"

// clusterFacts is what the guard looks at.
type clusterFacts struct {
	// Root is the repository's root directory.
	Root string
	// Kubeconfig is the kubeconfig's absolute path, symlinks resolved.
	Kubeconfig string
	Config     *clientcmdapi.Config
	// KwokConfig reads a file of the cluster's kwok workdir (os.ReadFile).
	KwokConfig func(path string) ([]byte, error)
	// Nodes are the cluster's nodes: name → whether kwok runs it (fake).
	Nodes map[string]bool
}

var apiserverPort = regexp.MustCompile(`(?m)^\s*kubeApiserverPort:\s*(\d+)\s*$`)
var kwokControllerComponent = regexp.MustCompile(`(?m)^\s*-?\s*name:\s*kwok-controller\s*$`)

// checkLocalKwok refuses every cluster but a local kwok cluster of this
// repository, made by hack/cluster-up.sh: the benchmark writes thousands of
// template updates, freezes releases and installs webhook configurations that
// point at this machine, which nobody wants on a shared or real cluster by
// mistake. It holds when
//
//   - the kubeconfig is STATE/kubeconfig with STATE under ROOT/.cluster/, the
//     file cluster-up.sh writes ($BUDGETGATE_STATE/kubeconfig);
//   - its current context is kwok-NAME and STATE/kwok/clusters/NAME/kwok.yaml
//     (kwokctl's record of the cluster it made, KWOK_WORKDIR=$STATE/kwok)
//     exists, runs a kwok controller, and names the port the context's server
//     uses;
//   - that server is on a loopback address;
//   - the cluster has nodes and kwok runs all of them: the local cluster with a
//     real node (hack/real-node-up.sh) has the same control plane and is
//     refused.
//
// It returns the cluster's name and state directory.
func checkLocalKwok(f clusterFacts) (name, state string, err error) {
	clusterDir := filepath.Join(f.Root, ".cluster") + string(filepath.Separator)
	if filepath.Base(f.Kubeconfig) != "kubeconfig" || !strings.HasPrefix(f.Kubeconfig, clusterDir) {
		return "", "", fmt.Errorf("kubeconfig %s is not one hack/cluster-up.sh writes (%sSTATE/kubeconfig)",
			f.Kubeconfig, clusterDir)
	}
	state = filepath.Dir(f.Kubeconfig)
	if f.Config == nil {
		return "", "", errors.New("no kubeconfig")
	}
	ctxName := f.Config.CurrentContext
	name, ok := strings.CutPrefix(ctxName, "kwok-")
	if !ok || name == "" {
		return "", "", fmt.Errorf("current context %q is not a kwok cluster's (kwok-NAME)", ctxName)
	}
	kctx := f.Config.Contexts[ctxName]
	if kctx == nil || f.Config.Clusters[kctx.Cluster] == nil {
		return "", "", fmt.Errorf("current context %q has no cluster", ctxName)
	}
	server := f.Config.Clusters[kctx.Cluster].Server
	u, err := url.Parse(server)
	if err != nil || u.Host == "" {
		return "", "", fmt.Errorf("cannot tell where the API server %q of context %q runs", server, ctxName)
	}
	if ip := net.ParseIP(u.Hostname()); (ip == nil || !ip.IsLoopback()) && !strings.EqualFold(u.Hostname(), "localhost") {
		return "", "", fmt.Errorf("the API server %s is not on this machine "+
			"(want a loopback address, as a local kwok cluster has)", u.Host)
	}
	kwokYAML := filepath.Join(state, "kwok", "clusters", name, "kwok.yaml")
	data, err := f.KwokConfig(kwokYAML)
	if err != nil {
		return "", "", fmt.Errorf("no kwok cluster %s made from this repository: %w", name, err)
	}
	if !kwokControllerComponent.Match(data) {
		return "", "", fmt.Errorf("%s runs no kwok controller: not a kwok cluster of fake nodes", kwokYAML)
	}
	m := apiserverPort.FindSubmatch(data)
	if m == nil {
		return "", "", fmt.Errorf("%s names no kubeApiserverPort", kwokYAML)
	}
	if port, _ := strconv.Atoi(string(m[1])); strconv.Itoa(port) != u.Port() {
		return "", "", fmt.Errorf("the kubeconfig's server %s is not kwok cluster %s's API server (port %d)",
			u.Host, name, port)
	}
	if len(f.Nodes) == 0 {
		return "", "", fmt.Errorf("cluster %s has no nodes: want kwok's fake nodes", name)
	}
	for node, fake := range f.Nodes {
		if !fake {
			return "", "", fmt.Errorf("node %s of cluster %s is not a kwok fake node (no %s annotation): "+
				"a real node, not the kwok cluster", node, name, kwokNodeAnnotation)
		}
	}
	return name, state, nil
}

// resolvePath makes path absolute with symlinks resolved.
func resolvePath(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	return filepath.EvalSymlinks(abs)
}

// repoRoot finds the directory holding budgetgate's go.mod, from dir upwards.
func repoRoot(dir string) (string, error) {
	for d := dir; ; d = filepath.Dir(d) {
		data, err := os.ReadFile(filepath.Join(d, "go.mod"))
		if err == nil && strings.HasPrefix(string(data), "module github.com/budgetgate/budgetgate\n") {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no budgetgate go.mod in %s or above", dir)
		}
	}
}
