package main

import (
	"fmt"
	"net"
	"net/url"
	"strings"
)

// checkLocal refuses a cluster whose API server is not on this machine: the
// benchmark creates 10,000 Deployments and 1,000 SLOs and runs a freeze, which
// nobody wants on a shared or production cluster by mistake. allowRemote (the
// --allow-remote flag) lets it run anyway. server is the kubeconfig's server
// URL, e.g. https://127.0.0.1:32771.
func checkLocal(server string, allowRemote bool) error {
	if allowRemote {
		return nil
	}
	u, err := url.Parse(server)
	if err != nil || u.Host == "" {
		return fmt.Errorf("cannot tell where the API server %q runs: refusing to run without --allow-remote", server)
	}
	host := u.Hostname()
	if strings.EqualFold(host, "localhost") {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("the API server %s is not on this machine (want 127.0.0.1, ::1 or localhost, as a local kwok "+
		"cluster has): the benchmark writes 10,000 Deployments and freezes releases; pass --allow-remote to run it there anyway",
		server)
}

// kwokNodeAnnotation marks the fake nodes the kwok controller runs.
const kwokNodeAnnotation = "kwok.x-k8s.io/node"

// checkKwok refuses a local cluster that is not the benchmark's own kwok
// cluster: the kubeconfig's current context must be kwokctl's for the cluster
// name (kwok-NAME), so that a kubeconfig of another local cluster (the e2e
// suite's budgetgate-e2e, the demo's budgetgate) given by mistake is not
// filled with 10,000 Deployments; and every node must be a kwok fake node, so
// that the local cluster with a real node is refused. nodes maps each node's
// name to whether it carries kwokNodeAnnotation. allowRemote (--allow-remote)
// lets any cluster pass.
func checkKwok(currentContext, clusterName string, nodes map[string]bool, allowRemote bool) error {
	if allowRemote {
		return nil
	}
	if want := "kwok-" + clusterName; currentContext != want {
		return fmt.Errorf("the kubeconfig's current context is %q, not %q: not the kwok cluster %s this benchmark "+
			"brings up (--cluster-name); pass --allow-remote to run on it anyway", currentContext, want, clusterName)
	}
	for name, fake := range nodes {
		if !fake {
			return fmt.Errorf("node %s is not a kwok fake node (no %s annotation): refusing to run on a cluster with "+
				"real nodes without --allow-remote", name, kwokNodeAnnotation)
		}
	}
	return nil
}
