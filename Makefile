# Every pin of hack/versions.env (K8S_VERSION, KUSTOMIZE_VERSION, HELM_VERSION,
# ...) as a make variable, unless the environment or the command line sets it,
# as in the scripts (hack/get.sh load_versions). The pins live only there.
$(foreach pin,$(shell sed -n 's/^\([A-Z][A-Z0-9_]*=[^[:space:]]*\)$$/\1/p' hack/versions.env),$(eval $(subst =, ?= ,$(pin))))

# The manager image dist/install.yaml runs: the one `make release` publishes
# (mk/release.mk); `make image` builds it without Docker (mk/image.mk).
IMG ?= ghcr.io/budgetgate/manager:v0.1.0
# PROMETHEUS is the Prometheus `make run` measures SLOs in.
PROMETHEUS ?= http://localhost:9090
# YEAR is the year in the boilerplate header of generated code: the project's
# first year, so that regenerating in a later year changes nothing.
YEAR ?= 2026

# Get the currently used golang install path (in GOPATH/bin, unless GOBIN is set)
ifeq (,$(shell go env GOBIN))
GOBIN=$(shell go env GOPATH)/bin
else
GOBIN=$(shell go env GOBIN)
endif

# CONTAINER_TOOL defines the container tool to be used for building images.
# Be aware that the target commands are only tested with Docker which is
# scaffolded by default. However, you might want to replace it to use other
# tools. (i.e. podman)
CONTAINER_TOOL ?= docker

# Setting SHELL to bash allows bash commands to be executed by recipes.
# Options are set to exit when a recipe line exits non-zero or a piped command fails.
SHELL = /usr/bin/env bash -o pipefail
.SHELLFLAGS = -ec

.PHONY: all
all: build

##@ General

# The help target prints out all targets with their descriptions organized
# beneath their categories. The categories are represented by '##@' and the
# target descriptions by '##'. The awk command is responsible for reading the
# entire set of makefiles included in this invocation, looking for lines of the
# file as xyz: ## something, and then pretty-format the target and help. Then,
# if there's a line with ##@ something, that gets pretty-printed as a category.
# More info on the usage of ANSI control characters for terminal formatting:
# https://en.wikipedia.org/wiki/ANSI_escape_code#SGR_parameters
# More info on the awk command:
# http://linuxcommand.org/lc3_adv_awk.php

.PHONY: help
help: ## Display this help.
	@awk 'BEGIN {FS = ":.*##"; printf "\nUsage:\n  make \033[36m<target>\033[0m\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-15s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) } ' $(MAKEFILE_LIST)

##@ Development

.PHONY: manifests
manifests: controller-gen ## Generate WebhookConfiguration, ClusterRole and CustomResourceDefinition objects.
	"$(CONTROLLER_GEN)" rbac:roleName=manager-role webhook paths="./..."
	"$(CONTROLLER_GEN)" crd paths="./api/..." output:crd:artifacts:config=config/crd/bases

.PHONY: generate
generate: controller-gen ## Generate code containing DeepCopy, DeepCopyInto, and DeepCopyObject method implementations.
	"$(CONTROLLER_GEN)" object:headerFile="hack/boilerplate.go.txt",year=$(YEAR) paths="./..."

.PHONY: dashboards
dashboards: ## Generate the Grafana dashboard and its sidecar ConfigMap (config/grafana/) from internal/dashboard.
	go run ./hack/dashboard

.PHONY: fmt
fmt: ## Run go fmt against code.
	go fmt ./...

.PHONY: vet
vet: ## Run go vet against code.
	go vet ./...

.PHONY: test
test: verify test-envtest test-chart test-e2e test-e2e-real ## Run every test: generated files up to date; unit, real Prometheus, envtest; the Helm chart against config/; e2e on kwok; e2e in-cluster on a real node (skipped with a notice where the machine cannot run one).

.PHONY: verify
verify: controller-gen kustomize ## Fail if generating (CRDs, RBAC, webhooks, deepcopy, dist/install.yaml, the Grafana dashboard) or go fmt would change a file.
	@CONTROLLER_GEN="$(CONTROLLER_GEN)" KUSTOMIZE="$(KUSTOMIZE)" IMG="$(IMG)" YEAR="$(YEAR)" hack/verify-generated.sh

.PHONY: test-envtest
test-envtest: vet envtest-binaries prometheus ## Run unit, real-Prometheus and envtest suites (no cluster needed).
	KUBEBUILDER_ASSETS="$(ENVTEST_ASSETS)" BUDGETGATE_REQUIRE_PROMETHEUS=1 BUDGETGATE_REQUIRE_KUBECTL=1 \
		go test $$(go list ./... | grep -v /test/e2e) -coverprofile cover.out

.PHONY: test-unit
test-unit: ## Run only the pure packages' tests (no binaries needed).
	go test ./internal/budget/... ./internal/sli/... ./internal/freeze/... ./internal/policy/...

.PHONY: fuzz
fuzz: ## Run every fuzz target for FUZZTIME each (default 20s).
	@for p in ./internal/budget/ ./internal/sli/ ./internal/freeze/ ./internal/webhook/; do \
		for t in $$(go test -list 'Fuzz.*' $$p | grep ^Fuzz); do \
			go test -run XXX -fuzz "^$$t$$" -fuzztime $(FUZZTIME) $$p || exit 1; \
		done; \
	done

.PHONY: bench
bench: ## Run the Go benchmarks.
	go test -run XXX -bench . -benchmem ./internal/...

.PHONY: lint
lint: golangci-lint ## Run golangci-lint linter
	"$(GOLANGCI_LINT)" run

.PHONY: lint-fix
lint-fix: golangci-lint ## Run golangci-lint linter and perform fixes
	"$(GOLANGCI_LINT)" run --fix

.PHONY: lint-config
lint-config: golangci-lint ## Verify golangci-lint linter configuration
	"$(GOLANGCI_LINT)" config verify

##@ Build

.PHONY: build
build: manifests generate fmt vet ## Build manager binary.
	go build -o bin/manager ./cmd

.PHONY: run
run: manifests generate fmt vet ## Run the manager from your host against the current kubeconfig, measuring in $(PROMETHEUS).
	go run ./cmd --prometheus-address=$(PROMETHEUS) --webhook-port=-1 --metrics-bind-address=:8080 --metrics-secure=false

# If you wish to build the manager image targeting other platforms you can use the --platform flag.
# (i.e. docker build --platform linux/arm64). However, you must enable docker buildKit for it.
# More info: https://docs.docker.com/develop/develop-images/build_enhancements/
# Override BASE_IMAGE to build from another registry, e.g.
# make docker-build IMG=<img> BASE_IMAGE=docker.io/library/golang:1.26
.PHONY: docker-build
docker-build: ## Build docker image with the manager.
	$(CONTAINER_TOOL) build $(if $(BASE_IMAGE),--build-arg BASE_IMAGE=$(BASE_IMAGE)) -t ${IMG} .

.PHONY: docker-push
docker-push: ## Push docker image with the manager.
	$(CONTAINER_TOOL) push ${IMG}

# PLATFORMS defines the target platforms for the manager image be built to provide support to multiple
# architectures. (i.e. make docker-buildx IMG=myregistry/mypoperator:0.0.1). To use this option you need to:
# - be able to use docker buildx. More info: https://docs.docker.com/build/buildx/
# - have enabled BuildKit. More info: https://docs.docker.com/develop/develop-images/build_enhancements/
# - be able to push the image to your registry (i.e. if you do not set a valid value via IMG=<myregistry/image:<tag>> then the export will fail)
# To adequately provide solutions that are compatible with multiple platforms, you should consider using this option.
PLATFORMS ?= linux/arm64,linux/amd64,linux/s390x,linux/ppc64le
.PHONY: docker-buildx
docker-buildx: ## Build and push docker image for the manager for cross-platform support
	# copy existing Dockerfile and insert --platform=${BUILDPLATFORM} into Dockerfile.cross, and preserve the original Dockerfile
	sed -e '1 s/\(^FROM\)/FROM --platform=\$$\{BUILDPLATFORM\}/; t' -e ' 1,// s//FROM --platform=\$$\{BUILDPLATFORM\}/' Dockerfile > Dockerfile.cross
	- $(CONTAINER_TOOL) buildx create --name budgetgate-builder
	$(CONTAINER_TOOL) buildx use budgetgate-builder
	- $(CONTAINER_TOOL) buildx build --push --platform=$(PLATFORMS) $(if $(BASE_IMAGE),--build-arg BASE_IMAGE=$(BASE_IMAGE)) --tag ${IMG} -f Dockerfile.cross .
	- $(CONTAINER_TOOL) buildx rm budgetgate-builder
	rm Dockerfile.cross

.PHONY: build-installer
build-installer: manifests generate kustomize ## Generate a consolidated YAML with CRDs and deployment.
	mkdir -p dist
	cd config/manager && "$(KUSTOMIZE)" edit set image controller=${IMG}
	"$(KUSTOMIZE)" build config/default > dist/install.yaml

##@ Deployment

ifndef ignore-not-found
  ignore-not-found = false
endif

.PHONY: install
install: manifests kustomize ## Install CRDs into the K8s cluster specified in ~/.kube/config.
	@out="$$( "$(KUSTOMIZE)" build config/crd 2>/dev/null || true )"; \
	if [ -n "$$out" ]; then echo "$$out" | "$(KUBECTL)" apply -f -; else echo "No CRDs to install; skipping."; fi

.PHONY: uninstall
uninstall: manifests kustomize ## Uninstall CRDs from the K8s cluster specified in ~/.kube/config. Call with ignore-not-found=true to ignore resource not found errors during deletion.
	@out="$$( "$(KUSTOMIZE)" build config/crd 2>/dev/null || true )"; \
	if [ -n "$$out" ]; then echo "$$out" | "$(KUBECTL)" delete --ignore-not-found=$(ignore-not-found) -f -; else echo "No CRDs to delete; skipping."; fi

.PHONY: deploy
deploy: manifests kustomize ## Deploy controller to the K8s cluster specified in ~/.kube/config.
	cd config/manager && "$(KUSTOMIZE)" edit set image controller=${IMG}
	"$(KUSTOMIZE)" build config/default | "$(KUBECTL)" apply -f -

.PHONY: undeploy
undeploy: kustomize ## Undeploy controller from the K8s cluster specified in ~/.kube/config. Call with ignore-not-found=true to ignore resource not found errors during deletion.
	"$(KUSTOMIZE)" build config/default | "$(KUBECTL)" delete --ignore-not-found=$(ignore-not-found) -f -

##@ Dependencies

## Location to install dependencies to
LOCALBIN ?= $(shell pwd)/bin
$(LOCALBIN):
	mkdir -p "$(LOCALBIN)"

## Tool Binaries
KUBECTL ?= kubectl
KIND ?= kind
KUSTOMIZE ?= $(LOCALBIN)/kustomize
CONTROLLER_GEN ?= $(LOCALBIN)/controller-gen
ENVTEST ?= $(LOCALBIN)/setup-envtest
GOLANGCI_LINT = $(LOCALBIN)/golangci-lint

## Tool Versions: hack/versions.env (loaded at the top of this file).
# ENVTEST_K8S_VERSION is the Kubernetes version of the envtest control plane:
# K8S_VERSION without its v (override K8S_VERSION to change it).
ENVTEST_K8S_VERSION = $(K8S_VERSION:v%=%)
ENVTEST_ASSETS ?= $(LOCALBIN)/k8s/$(ENVTEST_K8S_VERSION)-$(shell go env GOOS)-$(shell go env GOARCH)
FUZZTIME ?= 20s

# Every tool target runs hack/get.sh, which says "already there" when the
# pinned version is in bin/ (and gets it again when the pin moves), so they are
# phony rather than file targets.
.PHONY: kustomize
kustomize: ## Get kustomize into bin/ (KUSTOMIZE_VERSION).
	$(call go-install-tool,$(KUSTOMIZE),sigs.k8s.io/kustomize/kustomize/v5,$(KUSTOMIZE_VERSION))

.PHONY: controller-gen
controller-gen: ## Get controller-gen into bin/ (CONTROLLER_TOOLS_VERSION).
	$(call go-install-tool,$(CONTROLLER_GEN),sigs.k8s.io/controller-tools/cmd/controller-gen,$(CONTROLLER_TOOLS_VERSION))

.PHONY: envtest-binaries
# kubectl too: test/badinput applies part of its catalogue with it, to pin
# the messages as kubectl prints them.
envtest-binaries: ## Get etcd, kube-apiserver and kubectl for envtest: setup-envtest's download, else built from the Go module proxy.
	@hack/k8s-binaries.sh --setup-envtest "$(ENVTEST_ASSETS)" etcd kube-apiserver kubectl

.PHONY: prometheus
prometheus: ## Get prometheus and promtool into bin/prometheus: release download, else built from the Go module proxy.
	@hack/prometheus.sh "$(LOCALBIN)/prometheus"

.PHONY: envtest
envtest: ## Get setup-envtest into bin/ (SETUP_ENVTEST_VERSION).
	$(call go-install-tool,$(ENVTEST),sigs.k8s.io/controller-runtime/tools/setup-envtest,$(SETUP_ENVTEST_VERSION))

.PHONY: golangci-lint
golangci-lint: ## Get golangci-lint into bin/ (GOLANGCI_LINT_VERSION).
	$(call go-install-tool,$(GOLANGCI_LINT),github.com/golangci/golangci-lint/v2/cmd/golangci-lint,$(GOLANGCI_LINT_VERSION))

# go-install-tool PATH,PACKAGE,VERSION: PATH is `go install PACKAGE@VERSION`,
# through hack/get.sh (already there at VERSION, else built from the Go module
# proxy into a scratch GOBIN and moved into place).
define go-install-tool
@hack/get.sh "$(notdir $(1))" "$(1)" "$(3)" --go-pkg "$(2)@$(3)"
endef

include mk/*.mk
