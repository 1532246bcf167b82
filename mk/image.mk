##@ Images (no Docker daemon)

# OCI images of the manager, the demo app and the real-node cluster's pause
# container, written by hack/image (go-containerregistry) without a container
# engine: each is one layer holding a static binary on an empty base, for
# every platform in IMAGE_PLATFORMS (cross-compiled with GOARCH, CGO_ENABLED=0),
# packed as an OCI image layout tar in bin/images/NAME.tar that
# `ctr -n k8s.io images import` and `docker load` accept. Reproducible: the
# binaries are built with -trimpath, no build id and no VCS stamp, and every
# timestamp in the image is SOURCE_DATE_EPOCH (default: 0), so the same sources
# give the same digest (printed, and kept in bin/images/NAME.digest).
IMAGE_TAG ?= v0.1.0
IMAGE_REPO ?= ghcr.io/budgetgate
IMAGE_PLATFORMS ?= linux/amd64,linux/arm64
IMAGE_SOURCE ?= https://github.com/budgetgate/budgetgate
IMAGE_REVISION ?= $(shell git rev-parse HEAD 2>/dev/null)
IMAGES_DIR ?= $(LOCALBIN)/images
# IMAGE_LDFLAGS: more -ldflags for the binaries, e.g. the version stamp of make
# release (-X .../internal/version.Version=v0.2.0 -X ...Commit=...); empty by
# default, which leaves -ldflags exactly "-s -w -buildid=".
IMAGE_LDFLAGS ?=
IMAGE_GOFLAGS ?= -trimpath -buildvcs=false -ldflags "-s -w -buildid=$(if $(IMAGE_LDFLAGS), $(IMAGE_LDFLAGS))"

# image-build NAME, PACKAGE, EXTRA hack/image FLAGS: cross-compiles PACKAGE for
# each platform into bin/images/build/NAME-OS-ARCH, then writes the image.
define image-build
	@echo "==> image $(1): go build $(2) for $(IMAGE_PLATFORMS)"
	@mkdir -p "$(IMAGES_DIR)/build"
	@for p in $$(echo "$(IMAGE_PLATFORMS)" | tr , ' '); do \
		os=$${p%%/*}; arch=$${p#*/}; arch=$${arch%%/*}; \
		CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch go build $(IMAGE_GOFLAGS) \
			-o "$(IMAGES_DIR)/build/$(1)-$$os-$$arch" $(2) || exit 1; \
	done
	@go run ./hack/image build --binary "$(IMAGES_DIR)/build/$(1)-{os}-{arch}" \
		--platform "$(IMAGE_PLATFORMS)" --name "$(IMAGE_REPO)/$(1)" --tag "$(IMAGE_TAG)" \
		--path /$(1) --source "$(IMAGE_SOURCE)" --revision "$(IMAGE_REVISION)" $(3) \
		--out "$(IMAGES_DIR)/$(1).tar" | tee "$(IMAGES_DIR)/$(1).digest"
endef

.PHONY: image
image: image-manager image-demo-app image-pause ## Build the manager, demo-app and pause images into bin/images/*.tar (OCI layout, multi-platform, no Docker).

.PHONY: image-manager
image-manager: ## Build bin/images/manager.tar (./cmd, ghcr.io/budgetgate/manager:$(IMAGE_TAG)).
	$(call image-build,manager,./cmd,--expose 9443/tcp --expose 8081/tcp)

.PHONY: image-demo-app
image-demo-app: ## Build bin/images/demo-app.tar (./cmd/demo-app; serves :8099, no self-load, like Dockerfile.demo-app).
	$(call image-build,demo-app,./cmd/demo-app,--expose 8099/tcp --cmd=--listen=:8099$(comma)--rps=0)

.PHONY: image-pause
image-pause: ## Build bin/images/pause.tar (hack/pause), the sandbox image of the real-node cluster.
	$(call image-build,pause,./hack/pause,)

.PHONY: image-netcheck
image-netcheck: ## Build bin/images/netcheck.tar (hack/netcheck), the client of the real-node smoke test.
	$(call image-build,netcheck,./hack/netcheck,)

comma := ,

.PHONY: image-prometheus
image-prometheus: prometheus ## Build bin/images/prometheus.tar from the Prometheus built from its Go module (linux/amd64: the in-cluster Prometheus of the real-node path).
	@mkdir -p "$(IMAGES_DIR)/build"
	@cp "$(LOCALBIN)/prometheus/prometheus" "$(IMAGES_DIR)/build/prometheus-linux-$$(go env GOARCH)"
	@go run ./hack/image build --binary "$(IMAGES_DIR)/build/prometheus-{os}-{arch}" \
		--platform "linux/$$(go env GOARCH)" --name "$(IMAGE_REPO)/prometheus" --tag "v$(PROMETHEUS_RELEASE)" \
		--path /bin/prometheus --user 65534:65534 --source https://github.com/prometheus/prometheus \
		--revision "$(PROMETHEUS_VERSION)" --expose 9090/tcp \
		--out "$(IMAGES_DIR)/prometheus.tar" | tee "$(IMAGES_DIR)/prometheus.digest"
