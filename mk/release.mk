##@ Release

# make release VERSION=vX.Y.Z writes a release into dist/release/VERSION/
# (git-ignored), reproducibly: two runs from the same commit with the same Go
# toolchain give byte-identical files (docs/release.md):
#
#   manager.oci.tar, demo-app.oci.tar     multi-platform OCI image layouts (make image)
#   manager.digest, demo-app.digest       their image index digests (sha256:...)
#   install.yaml                          config/default, manager pinned by digest
#   budgetgate-X.Y.Z.tgz                  the chart, version/appVersion set, image.digest in its values
#                                         (only when charts/budgetgate and bin/helm exist)
#   NAME.OS-ARCH.cdx.json                 CycloneDX SBOM per image and platform (cyclonedx-gomod app)
#   kubectl-budgetgate_VERSION_OS_ARCH.tar.gz (.zip on Windows)
#                                         the kubectl plugin per RELEASE_PLUGIN_PLATFORMS, with LICENSE
#   budgetgate.krew.yaml                  plugins/krew/budgetgate.yaml rendered with those archives' sha256
#   release-notes.md                      the CHANGELOG.md section "## [X.Y.Z]", then the artifacts
#   SHA256SUMS                            over every other file (sha256sum -c SHA256SUMS)
#
# Every timestamp is the commit's time (SOURCE_DATE_EPOCH = git log -1 --format=%ct);
# the binaries are stamped with VERSION and the commit (internal/version). The
# release workflow (.github/workflows/release.yaml) runs make release, then
# make release-publish. hack/release (Go) does the checking and assembling.
RELEASE_REPO ?= ghcr.io/budgetgate
RELEASE_CHART_REPO ?= oci://$(RELEASE_REPO)/charts
RELEASE_DIR ?= dist/release/$(VERSION)
RELEASE_CHANGELOG ?= CHANGELOG.md
# NAME=MAIN_PACKAGE of each image; NAME must have an image-NAME target (mk/image.mk).
RELEASE_IMAGES ?= manager=cmd,demo-app=cmd/demo-app
RELEASE_PLATFORMS ?= $(IMAGE_PLATFORMS)
# OS/ARCH of the kubectl plugin's archives: the platforms of its krew manifest.
RELEASE_PLUGIN_PLATFORMS ?= linux/amd64,linux/arm64,darwin/amd64,darwin/arm64,windows/amd64
# Scratch space of make image for the release (bin/images stays untouched).
RELEASE_BUILD_DIR ?= $(LOCALBIN)/release/$(VERSION)
RELEASE_COMMIT ?= $(shell git rev-parse HEAD 2>/dev/null)
RELEASE_SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null)
RELEASE_LDFLAGS = -X github.com/budgetgate/budgetgate/internal/version.Version=$(VERSION) \
	-X github.com/budgetgate/budgetgate/internal/version.Commit=$(RELEASE_COMMIT)
# Non-empty: fail on a working tree that differs from the commit (the release
# workflow sets it; locally the difference is only reported).
RELEASE_REQUIRE_CLEAN ?=
# Non-empty: fail instead of skipping the chart when charts/budgetgate or
# bin/helm is missing (the release workflow sets it).
RELEASE_REQUIRE_CHART ?=
RELEASE_HELM ?= $(or $(HELM),$(LOCALBIN)/helm)
RELEASE_CHART_DIR ?= $(or $(CHART_DIR),charts/budgetgate)
# Extra flags of helm push, e.g. --plain-http for a local test registry.
RELEASE_HELM_PUSH_FLAGS ?=
# hack/release, built once per make invocation.
RELEASE_TOOL ?= $(LOCALBIN)/hack-release

# Versions: CYCLONEDX_GOMOD_VERSION, ACTIONLINT_VERSION and
# GO_CONTAINERREGISTRY_VERSION of hack/versions.env (make variables, see the
# top of the Makefile).
CYCLONEDX_GOMOD ?= $(LOCALBIN)/cyclonedx-gomod
ACTIONLINT ?= $(LOCALBIN)/actionlint
CRANE ?= go run github.com/google/go-containerregistry/cmd/crane@$(GO_CONTAINERREGISTRY_VERSION)
# actionlint runs shellcheck on the workflows' run: scripts when it is installed
# (Debian: apt-get install shellcheck); empty turns that off.
SHELLCHECK ?= $(shell command -v shellcheck 2>/dev/null)

release_comma := ,
release_image_names = $(foreach i,$(subst $(release_comma), ,$(RELEASE_IMAGES)),$(firstword $(subst =, ,$(i))))

.PHONY: release-tool
release-tool: $(LOCALBIN)
	@go build -o "$(RELEASE_TOOL)" ./hack/release

.PHONY: release-preflight
release-preflight: release-tool ## Check VERSION (vX.Y.Z) and its CHANGELOG.md entry, and report the commit and working tree; builds nothing.
	@"$(RELEASE_TOOL)" preflight --version "$(VERSION)" --changelog "$(RELEASE_CHANGELOG)" \
		$(if $(RELEASE_REQUIRE_CLEAN),--require-clean)

.PHONY: release
release: release-preflight kustomize cyclonedx-gomod ## Build release VERSION=vX.Y.Z into dist/release/VERSION: images, install.yaml and chart pinned by digest, SBOMs, notes, SHA256SUMS.
	@start=$$(date +%s); \
	rm -rf "$(RELEASE_BUILD_DIR)"; \
	SOURCE_DATE_EPOCH="$(RELEASE_SOURCE_DATE_EPOCH)" $(MAKE) --no-print-directory \
		$(addprefix image-,$(release_image_names)) \
		IMAGE_TAG="$(VERSION)" IMAGE_REPO="$(RELEASE_REPO)" IMAGE_PLATFORMS="$(RELEASE_PLATFORMS)" \
		IMAGES_DIR="$(RELEASE_BUILD_DIR)/images" IMAGE_REVISION="$(RELEASE_COMMIT)" \
		IMAGE_LDFLAGS="$(RELEASE_LDFLAGS)"; \
	"$(RELEASE_TOOL)" assemble --version "$(VERSION)" --repo "$(RELEASE_REPO)" --images "$(RELEASE_IMAGES)" \
		--images-dir "$(RELEASE_BUILD_DIR)/images" --out "$(RELEASE_DIR)" \
		--kustomize "$(KUSTOMIZE)" --config config --install-image manager --stamped manager \
		--helm "$(RELEASE_HELM)" --chart "$(RELEASE_CHART_DIR)" $(if $(RELEASE_REQUIRE_CHART),--require-chart) \
		--chart-repo "$(RELEASE_CHART_REPO)" --cyclonedx-gomod "$(CYCLONEDX_GOMOD)" \
		--changelog "$(RELEASE_CHANGELOG)" --commit "$(RELEASE_COMMIT)" \
		--source-date-epoch "$(RELEASE_SOURCE_DATE_EPOCH)" --source-url "$(IMAGE_SOURCE)" \
		--plugin ./cmd/kubectl-budgetgate --plugin-platforms "$(RELEASE_PLUGIN_PLATFORMS)" --krew-manifest plugins/krew/budgetgate.yaml; \
	echo "==> release $(VERSION) in $(RELEASE_DIR) ($$(( $$(date +%s) - start ))s)"

.PHONY: release-check
release-check: release-tool kustomize actionlint ## Check the release machinery without building images (seconds): VERSION parsing, CHANGELOG.md, install.yaml and chart pinning on a fake digest, actionlint.
	@start=$$(date +%s); \
	echo "==> go test ./hack/release/"; \
	go test ./hack/release/; \
	echo "==> make release refuses versions that are not vX.Y.Z[-PRERELEASE], and a version without a CHANGELOG.md section"; \
	for bad in 0.2.0 v0.2 V0.2.0 v0.2.0+build.1 latest ""; do \
		if "$(RELEASE_TOOL)" preflight --version "$$bad" --changelog "$(RELEASE_CHANGELOG)" 2>/dev/null; then \
			echo "release-check: VERSION=\"$$bad\" was accepted" >&2; exit 1; \
		fi; \
	done; \
	if out=$$("$(RELEASE_TOOL)" preflight --version v999.0.0 --changelog "$(RELEASE_CHANGELOG)" 2>&1); then \
		echo "release-check: VERSION=v999.0.0 was accepted without a CHANGELOG.md section" >&2; exit 1; \
	fi; \
	case "$$out" in *'has no "## [999.0.0]" section'*) ;; \
		*) echo "release-check: unexpected message for a missing CHANGELOG.md section: $$out" >&2; exit 1;; esac; \
	"$(RELEASE_TOOL)" check --changelog "$(RELEASE_CHANGELOG)" --kustomize "$(KUSTOMIZE)" --config config \
		--helm "$(RELEASE_HELM)" --chart "$(RELEASE_CHART_DIR)" --repo "$(RELEASE_REPO)"; \
	echo "==> actionlint $(ACTIONLINT_VERSION) .github/workflows ($(if $(SHELLCHECK),with shellcheck $(SHELLCHECK),without shellcheck: not installed))"; \
	"$(ACTIONLINT)" -shellcheck="$(SHELLCHECK)" -pyflakes= ; \
	echo "==> release-check passed ($$(( $$(date +%s) - start ))s)"

# make test checks the release machinery too: it is fast and builds no images.
test: release-check

.PHONY: release-publish
release-publish: ## Push dist/release/VERSION: images with crane (digests checked), chart with helm push. Needs registry logins (the release workflow).
	@set -e; dir="$(RELEASE_DIR)"; \
	[ -n "$(VERSION)" ] && [ -f "$$dir/SHA256SUMS" ] || { echo "no $$dir/SHA256SUMS: make release VERSION=$(VERSION) first" >&2; exit 1; }; \
	(cd "$$dir" && sha256sum -c --quiet SHA256SUMS); \
	tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	for name in $(release_image_names); do \
		want=$$(cat "$$dir/$$name.digest"); \
		mkdir "$$tmp/$$name"; tar -xf "$$dir/$$name.oci.tar" -C "$$tmp/$$name"; \
		got=$$($(CRANE) push "$$tmp/$$name" "$(RELEASE_REPO)/$$name:$(VERSION)"); \
		[ "$${got#*@}" = "$$want" ] || { echo "pushed $$got, but $$name.digest says $$want" >&2; exit 1; }; \
		echo "==> pushed $$got"; \
	done; \
	chart=$$(ls "$$dir"/budgetgate-*.tgz 2>/dev/null || true); \
	if [ -n "$$chart" ]; then \
		"$(RELEASE_HELM)" push "$$chart" "$(RELEASE_CHART_REPO)" $(RELEASE_HELM_PUSH_FLAGS); \
	elif [ -n "$(RELEASE_REQUIRE_CHART)" ]; then \
		echo "no chart in $$dir" >&2; exit 1; \
	else \
		echo "==> no chart in $$dir: none pushed"; \
	fi

.PHONY: cyclonedx-gomod
cyclonedx-gomod: ## Get cyclonedx-gomod into bin/: release download (checked against its checksums), else built from the Go module proxy.
	@v="$(CYCLONEDX_GOMOD_VERSION)"; os=$$(go env GOOS); arch=$$(go env GOARCH); \
	base="https://github.com/CycloneDX/cyclonedx-gomod/releases/download/$$v"; \
	hack/get.sh cyclonedx-gomod "$(CYCLONEDX_GOMOD)" "$$v" \
		--url "$$base/cyclonedx-gomod_$${v#v}_$${os}_$${arch}.tar.gz" --member cyclonedx-gomod \
		--sha256-url "$$base/cyclonedx-gomod_$${v#v}_checksums.txt" \
		--go-pkg "github.com/CycloneDX/cyclonedx-gomod/cmd/cyclonedx-gomod@$$v" --env CGO_ENABLED=0 --trimpath

.PHONY: actionlint
actionlint: ## Build actionlint into bin/ from its Go module (ACTIONLINT_VERSION in hack/versions.env).
	$(call go-install-tool,$(ACTIONLINT),github.com/rhysd/actionlint/cmd/actionlint,$(ACTIONLINT_VERSION))
