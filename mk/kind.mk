##@ kind (needs Docker; written without a Docker engine and never run here, see docs/kind.md)

# The kind path: a kind cluster of Docker containers, budgetgate built into an
# image and installed from dist/install.yaml, Prometheus and the demo service
# in-cluster. hack/kind.sh does the work; hack/kind-lib.sh lists its knobs
# (KIND_VERSION, KIND_NODE_IMAGE, KIND_IMG, PROMETHEUS_IMAGE, BASE_IMAGE, ...).
KIND_E2E_CLUSTER_NAME ?= budgetgate-e2e

.PHONY: kind-up
kind-up: ## kind cluster "budgetgate" with budgetgate (image built and loaded, dist/install.yaml), Prometheus and the demo service.
	@hack/kind.sh up load installer install

.PHONY: test-e2e-kind
test-e2e-kind: ## The e2e suite on a fresh kind cluster, everything in-cluster; deleted after (KIND_KEEP=1 keeps it).
	@KIND_CLUSTER_NAME=$(KIND_E2E_CLUSTER_NAME) E2E_TIMEOUT=$(E2E_TIMEOUT) hack/kind.sh e2e

.PHONY: demo-kind
demo-kind: ## The demo story (as make demo) on a kind cluster; leaves it running.
	@hack/incluster-demo.sh kind

.PHONY: demo-kind-down
demo-kind-down: ## Delete the kind cluster of make demo-kind (and .cluster/kind/budgetgate).
	@hack/kind.sh down
