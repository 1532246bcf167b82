##@ Local cluster with a real node (root, Linux; docs/real-node.md)

# The kwok cluster's control plane (kwokctl --runtime binary, kwok controller
# off) plus ONE real node on this machine: containerd + runc, the kubelet,
# kube-proxy and the CNI bridge, all built from the Go module proxy, pods from
# the images of `make image` (imported, never pulled). Network in one
# documentation range, TEST-NET-2: pods 198.51.100.0/25, Services
# 198.51.100.128/26, node 198.51.100.250 (REAL_POD_CIDR, REAL_SERVICE_CIDR,
# REAL_NODE_IP override them; preflight refuses addresses of the host's LAN or
# ones it needs, such as the Go module proxy's); nothing leaves the machine.
# State in .cluster/real (and .cluster/kubeconfig, as in kwok mode).
# `cluster-up-real` exits 3 when the machine cannot run it (not root, no usable
# cgroups, an address that collides, ...): fall back to `make cluster-up` then.
# `cluster-down-real` restores the host and checks it.

.PHONY: node-binaries
node-binaries: ## Get or build runc, containerd (+shim, ctr) and the CNI plugins into bin/node; kubelet and kube-proxy into bin/k8s.
	@hack/node-binaries.sh "$(LOCALBIN)/node"
	@. hack/lib.sh && hack/k8s-binaries.sh "$$K8S_BIN" kubelet kube-proxy

.PHONY: cluster-check-real
cluster-check-real: ## Say whether this machine can run the real-node cluster (exit 0, or 3 when it cannot).
	@hack/real-node-up.sh --check

.PHONY: cluster-up-real
cluster-up-real: ## Start the local cluster with one real node and prove it (3-replica Deployment behind a Service); exit 3 if unsupported.
	@hack/real-node-up.sh

.PHONY: cluster-down-real
cluster-down-real: ## Stop the real-node cluster, restore the host (mounts, links, iptables, sysctls, cgroups, paths) and check it is clean.
	@hack/real-node-down.sh
	@hack/real-node-check-clean.sh

.PHONY: cluster-load-real
cluster-load-real: ## Load images into the real node: make cluster-load-real IMAGES="bin/images/manager.tar ..." (default: bin/images/*.tar).
	@hack/real-node-load.sh $(or $(IMAGES),$(wildcard $(LOCALBIN)/images/*.tar))
