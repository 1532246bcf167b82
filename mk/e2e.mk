##@ End-to-end

# The e2e suite (test/e2e) runs against a real cluster: by default a fresh local
# kwok cluster of its own (state in .cluster/e2e), torn down afterwards. The
# suite starts the demo service, Prometheus and the operator itself, as local
# processes, so that it can stop and restart them mid-test.
E2E_CLUSTER_NAME ?= budgetgate-e2e
E2E_STATE ?= $(shell pwd)/.cluster/e2e
E2E_TIMEOUT ?= 40m
# E2E_FOCUS='REGEXP' (environment) runs only the specs whose text matches, in
# test-e2e and test-e2e-real alike, e.g. the failover and rotation specs:
#   make test-e2e E2E_FOCUS='freezes when|fails over|lost its lease|certificate|CA near'
export E2E_FOCUS

.PHONY: e2e-binaries
e2e-binaries: prometheus argo-rollouts ## Build what the e2e suite runs: manager, demo app, local-webhook (it installs the committed dist/install.yaml), the kubectl plugin, the Argo Rollouts controller.
	go build -o bin/manager ./cmd
	go build -o bin/demo-app ./cmd/demo-app
	go build -o bin/local-webhook ./hack/local-webhook
	go build -o bin/kubectl-budgetgate ./cmd/kubectl-budgetgate

# The Argo Rollouts controller the suite runs beside the cluster
# (test/e2e/rollout_test.go), with Argo's CRDs and ClusterRole of the same
# version (ARGO_ROLLOUTS_VERSION): taken out of the release image when
# quay.io answers, else built from the Go module proxy (hack/argo-rollouts.sh).
.PHONY: argo-rollouts
argo-rollouts: ## Get the Argo Rollouts controller, its CRDs and ClusterRole into bin/argo-rollouts: release image, else built from the Go module proxy.
	@hack/argo-rollouts.sh "$(LOCALBIN)/argo-rollouts"

# E2E_CLUSTER=kind runs the same suite on a kind cluster instead (mk/kind.mk,
# docs/kind.md; needs Docker).
ifeq ($(E2E_CLUSTER),kind)
.PHONY: test-e2e
test-e2e: test-e2e-kind
else
.PHONY: test-e2e
test-e2e: e2e-binaries ## Run the e2e suite on a fresh local kwok cluster with a real Prometheus, then tear it down.
	@CLUSTER_NAME=$(E2E_CLUSTER_NAME) BUDGETGATE_STATE=$(E2E_STATE) hack/cluster-up.sh
	@rc=0; E2E_KUBECONFIG=$(E2E_STATE)/kubeconfig E2E_STATE=$(E2E_STATE)/run \
		go test -tags=e2e ./test/e2e/ -v -count=1 -timeout $(E2E_TIMEOUT) -ginkgo.v || rc=$$?; \
		CLUSTER_NAME=$(E2E_CLUSTER_NAME) BUDGETGATE_STATE=$(E2E_STATE) hack/cluster-down.sh; exit $$rc
endif

# The same suite on the local cluster with a real node (hack/real.sh,
# docs/real-node.md): budgetgate's own images, built without Docker, installed
# in-cluster from dist/install.yaml, beside an in-cluster Prometheus; plus the
# checks of test/e2e/install_test.go. Where this machine cannot run a real node
# (not root, no usable cgroups, ...) it says so and is skipped.
REAL_E2E_STATE ?= $(shell pwd)/.cluster/e2e-real

# One real-node cluster per machine (fixed bridge and addresses): a second
# run waits for the first instead of finding the bridge taken and skipping.
REAL_NODE_LOCK ?= /tmp/budgetgate-real-node.lock

.PHONY: test-e2e-real
test-e2e-real: e2e-binaries ## Run the e2e suite on a fresh local cluster with a real node, budgetgate in-cluster; skipped with a notice where unsupported.
	@rc=0; lock=; if command -v flock >/dev/null; then lock="flock $(REAL_NODE_LOCK)"; echo "==> waiting for the real node ($(REAL_NODE_LOCK))"; fi; \
	BUDGETGATE_STATE=$(REAL_E2E_STATE) CLUSTER_NAME=budgetgate-e2e-real E2E_TIMEOUT=$(E2E_TIMEOUT) $$lock hack/real.sh e2e || rc=$$?; \
	if [ $$rc -eq 3 ]; then echo "==> NOTICE: this machine cannot run a real node (see above): the real-node e2e environment was SKIPPED"; exit 0; fi; \
	exit $$rc
