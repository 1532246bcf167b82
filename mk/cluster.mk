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

.PHONY: cluster-up
cluster-up: ## Start the local kwok cluster (kubeconfig: .cluster/kubeconfig); idempotent.
	@hack/cluster-up.sh

.PHONY: cluster-down
cluster-down: ## Delete the local kwok cluster.
	@hack/cluster-down.sh

.PHONY: demo
demo: ## The whole story on a local cluster with a real Prometheus: burn, freeze, denial, hotfix, lift.
	@hack/demo.sh

.PHONY: demo-down
demo-down: ## Stop everything `make demo` started and delete the cluster and .cluster/.
	@hack/demo-down.sh
