##@ Local cluster and demo

# A kwok cluster whose control plane runs as local processes (kwokctl --runtime
# binary), built from the Go module proxy when the binaries cannot be downloaded.
# State (kubeconfig, logs, pids, certificates) lives in .cluster/.

.PHONY: cluster-binaries
cluster-binaries: ## Get or build etcd, kube-*, kubectl, kwok and kwokctl into bin/.
	@. hack/lib.sh && ensure_binaries

.PHONY: kwok
kwok: ## Get kwok and kwokctl into bin/kwok: release download, else built from the Go module proxy.
	@hack/kwok.sh "$(LOCALBIN)/kwok"

# CLUSTER=real: the local cluster with one real node instead (mk/realnode.mk,
# docs/real-node.md): containers run for real, and budgetgate runs in-cluster
# from its own image. Where this machine cannot run a real node, cluster-up
# says why and falls back to kwok.
CLUSTER ?= kwok

.PHONY: cluster-up
cluster-up: ## Start the local cluster (kubeconfig: .cluster/kubeconfig); kwok, or CLUSTER=real for a real node (falls back to kwok); idempotent.
ifeq ($(CLUSTER),real)
	@rc=0; hack/real-node-up.sh || rc=$$?; \
	if [ $$rc -eq 3 ]; then echo "==> this machine cannot run a real node (see above): starting the kwok cluster instead"; hack/cluster-up.sh; \
	else exit $$rc; fi
else
	@hack/cluster-up.sh
endif

.PHONY: cluster-down
cluster-down: ## Delete the local cluster (CLUSTER=real: and restore the host, then check it).
ifeq ($(CLUSTER),real)
	@hack/real-node-down.sh
	@hack/real-node-check-clean.sh
else
	@hack/cluster-down.sh
endif

.PHONY: demo
demo: ## The whole story with a real Prometheus: burn, freeze, denial, hotfix, lift (CLUSTER=real: in-cluster on a real node).
ifeq ($(CLUSTER),real)
	@hack/incluster-demo.sh real
else
	@hack/demo.sh
endif

.PHONY: demo-down
demo-down: ## Stop everything `make demo` started and delete the cluster and .cluster/ (CLUSTER=real: restore the host too).
ifeq ($(CLUSTER),real)
	@hack/real.sh down
else
	@hack/demo-down.sh
endif
