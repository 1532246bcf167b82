package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"
)

// kcmArgs are the kwokctl flags of the scale cluster. kube-controller-manager's
// client defaults to 20 requests/s (burst 30): the Deployment controller then
// needs about 25 minutes to write the ReplicaSets and statuses of 10,000
// Deployments; 1,000/s lets the API server set the pace. The API server and
// etcd keep their defaults (priority and fairness on), as a real cluster has.
var kcmArgs = []string{
	"--extra-args", "kube-controller-manager=kube-api-qps=1000",
	"--extra-args", "kube-controller-manager=kube-api-burst=2000",
}

// clusterEnv is the environment of hack/cluster-up.sh and cluster-down.sh for
// the scale cluster.
func (b *bench) clusterEnv() []string {
	return append(os.Environ(),
		"CLUSTER_NAME="+b.cfg.clusterName,
		"BUDGETGATE_STATE="+b.cfg.state,
		"NODES="+fmt.Sprint(b.cfg.nodes),
		"KWOKCTL_CREATE_ARGS="+strings.Join(kcmArgs, " "),
	)
}

// runScript runs a hack/ script with its output on ours.
func (b *bench) runScript(ctx context.Context, name string) error {
	cmd := exec.CommandContext(ctx, filepath.Join(b.cfg.root, "hack", name))
	cmd.Dir = b.cfg.root
	cmd.Env = b.clusterEnv()
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("hack/%s: %w", name, err)
	}
	return nil
}

// kubectl runs the cluster's kubectl with the admin kubeconfig.
func (b *bench) kubectl(ctx context.Context, stdin string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, b.cfg.kubectl, append([]string{"--kubeconfig", b.cfg.kubeconfig}, args...)...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, out.String())
	}
	return out.String(), nil
}

// documentsOfKinds keeps the documents of a multi-document YAML whose kind is
// in kinds.
func documentsOfKinds(data []byte, kinds ...string) (string, error) {
	want := map[string]bool{}
	for _, k := range kinds {
		want[k] = true
	}
	var keep []string
	for doc := range strings.SplitSeq(string(data), "\n---") {
		var meta struct {
			Kind string `json:"kind"`
		}
		if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
			return "", err
		}
		if want[meta.Kind] {
			keep = append(keep, strings.TrimPrefix(doc, "\n"))
		}
	}
	return strings.Join(keep, "\n---\n"), nil
}

// documentNames lists the metadata.name of every document.
func documentNames(data []byte) ([]string, error) {
	var names []string
	for doc := range strings.SplitSeq(string(data), "\n---") {
		var meta struct {
			Metadata struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
			return nil, err
		}
		if meta.Metadata.Name != "" {
			names = append(names, meta.Metadata.Name)
		}
	}
	return names, nil
}

// install applies the CRDs, the namespace and the RBAC of dist/install.yaml,
// as the e2e suite does: the manager then runs as its ServiceAccount.
func (b *bench) install(ctx context.Context) error {
	data, err := os.ReadFile(filepath.Join(b.cfg.root, "dist", "install.yaml"))
	if err != nil {
		return err
	}
	docs, err := documentsOfKinds(data, "Namespace", "CustomResourceDefinition", "ServiceAccount",
		"ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")
	if err != nil {
		return err
	}
	if _, err := b.kubectl(ctx, docs, "apply", "--server-side", "--force-conflicts", "--field-manager="+fieldManager, "-f", "-"); err != nil {
		return err
	}
	_, err = b.kubectl(ctx, "", "wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
	return err
}

// impersonatingKubeconfig writes a copy of the admin kubeconfig whose users
// impersonate the operator's ServiceAccount, so that the manager has exactly
// the rights dist/install.yaml gives it.
func impersonatingKubeconfig(src, dst, user string, groups ...string) error {
	cfg, err := clientcmd.LoadFromFile(src)
	if err != nil {
		return err
	}
	for _, ai := range cfg.AuthInfos {
		ai.Impersonate = user
		ai.ImpersonateGroups = groups
	}
	return clientcmd.WriteToFile(*cfg, dst)
}
