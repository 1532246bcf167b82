##@ Helm chart

# charts/budgetgate is the Helm chart of what config/default (dist/install.yaml)
# installs. It must not drift from config/: test/chart renders it with default
# values and compares it, object by object, with dist/install.yaml and a fresh
# kustomize build of config/default, and its other modes with kustomize builds
# of config/ plus the matching components (cert-manager, fail-closed,
# prometheus, network-policy); its crds/ must be byte copies of
# config/crd/bases (make chart-crds).
#
# bin/helm: the release download first (checked against its .sha256sum), else
# built from the Go module proxy (helm.sh/helm/v3, CGO_ENABLED=0; about 1.5
# minutes with empty Go caches on 2 cores, under a minute with a warm build
# cache), with the ldflags of Helm's own Makefile: its version, and the
# Kubernetes version of its client-go as the default for `helm template` and
# `helm lint` (left unset it is 1.20, below the chart's kubeVersion). Cached as
# bin/helm-$(HELM_VERSION), with bin/helm a link to it. OFFLINE=1 skips the
# download. The version pin lives in hack/versions.env (the environment wins).
HELM ?= $(LOCALBIN)/helm
HELM_VERSION ?= $(shell sed -n 's/^HELM_VERSION=//p' hack/versions.env)
CHART_DIR ?= charts/budgetgate
# The release test/chart compares with dist/install.yaml: kustomize's
# namePrefix "budgetgate-" and namespace "budgetgate-system".
CHART_RELEASE ?= budgetgate
CHART_NAMESPACE ?= budgetgate-system
# Where chart-template writes its renderings.
CHART_OUT ?= $(LOCALBIN)/chart

.PHONY: helm
helm: ## Get helm into bin/helm: release download, else built from the Go module proxy.
	@[ -n "$(HELM_VERSION)" ] || { echo "HELM_VERSION is not set (hack/versions.env)" >&2; exit 1; }
	@if [ -x "$(HELM)-$(HELM_VERSION)" ] && [ "$$(readlink -- "$(HELM)" 2>/dev/null)" = "$(HELM)-$(HELM_VERSION)" ]; then exit 0; fi; \
	set -e; mkdir -p "$(LOCALBIN)"; \
	os=$$(go env GOOS); arch=$$(go env GOARCH); \
	url="https://get.helm.sh/helm-$(HELM_VERSION)-$$os-$$arch.tar.gz"; \
	tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	if [ -x "$(HELM)-$(HELM_VERSION)" ]; then \
		:; \
	elif [ "$${OFFLINE:-}" != 1 ] && echo "==> helm: trying $$url" && \
		curl -fsSL --connect-timeout 5 --max-time 120 -o "$$tmp/helm.tgz" "$$url" 2>/dev/null && \
		curl -fsSL --connect-timeout 5 --max-time 30 -o "$$tmp/helm.sha256" "$$url.sha256sum" 2>/dev/null && \
		[ "$$(cut -d' ' -f1 "$$tmp/helm.sha256")" = "$$(sha256sum "$$tmp/helm.tgz" | cut -d' ' -f1)" ] && \
		tar -xzf "$$tmp/helm.tgz" -C "$$tmp" "$$os-$$arch/helm"; then \
		mv "$$tmp/$$os-$$arch/helm" "$(HELM)-$(HELM_VERSION)"; \
	else \
		echo "==> helm: no download; building helm.sh/helm/v3/cmd/helm@$(HELM_VERSION) from the Go module proxy (minutes the first time)"; \
		start=$$(date +%s); \
		gomod=$$(cd "$$tmp" && go mod download -json helm.sh/helm/v3@$(HELM_VERSION) | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",*$$/\1/p'); \
		cgo=$$(awk '$$1 == "k8s.io/client-go" { print $$2; exit }' "$$gomod"); \
		minor=$$(echo "$$cgo" | cut -d. -f2); \
		[ -n "$$minor" ] || { echo "helm: cannot read k8s.io/client-go from $$gomod" >&2; exit 1; }; \
		ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$(HELM_VERSION)"; \
		for p in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do \
			ldflags="$$ldflags -X $$p.k8sVersionMajor=1 -X $$p.k8sVersionMinor=$$minor"; \
		done; \
		(cd "$$tmp" && CGO_ENABLED=0 GOBIN="$$tmp/bin" go install -trimpath -ldflags "$$ldflags" helm.sh/helm/v3/cmd/helm@$(HELM_VERSION)); \
		mv "$$tmp/bin/helm" "$(HELM)-$(HELM_VERSION)"; \
		echo "==> helm: built in $$(( $$(date +%s) - start ))s"; \
	fi; \
	ln -sf "$$(realpath "$(HELM)-$(HELM_VERSION)")" "$(HELM)"; \
	"$(HELM)" version --short

.PHONY: chart-crds
chart-crds: ## Copy config/crd/bases/*.yaml into charts/budgetgate/crds/ (after make manifests); test/chart fails while they differ.
	@mkdir -p "$(CHART_DIR)/crds"
	@rm -f "$(CHART_DIR)"/crds/*.yaml
	cp config/crd/bases/*.yaml "$(CHART_DIR)/crds/"

.PHONY: chart-lint
chart-lint: helm ## helm lint --strict the chart, with default values and with every toggle on (ci/all-toggles-values.yaml).
	"$(HELM)" lint --strict "$(CHART_DIR)" --namespace $(CHART_NAMESPACE)
	"$(HELM)" lint --strict "$(CHART_DIR)" --namespace $(CHART_NAMESPACE) -f "$(CHART_DIR)/ci/all-toggles-values.yaml"

.PHONY: chart-template
chart-template: helm ## Render the chart (CRDs included) into bin/chart/: builtin.yaml (default values), cert-manager.yaml, all-toggles.yaml.
	@mkdir -p "$(CHART_OUT)"
	"$(HELM)" template $(CHART_RELEASE) "$(CHART_DIR)" -n $(CHART_NAMESPACE) --include-crds >"$(CHART_OUT)/builtin.yaml"
	"$(HELM)" template $(CHART_RELEASE) "$(CHART_DIR)" -n $(CHART_NAMESPACE) --include-crds \
		--set certificates.mode=certManager >"$(CHART_OUT)/cert-manager.yaml"
	"$(HELM)" template $(CHART_RELEASE) "$(CHART_DIR)" -n $(CHART_NAMESPACE) --include-crds \
		-f "$(CHART_DIR)/ci/all-toggles-values.yaml" >"$(CHART_OUT)/all-toggles.yaml"
	@for f in builtin cert-manager all-toggles; do \
		echo "==> $(CHART_OUT)/$$f.yaml: $$(grep -c '^kind:' "$(CHART_OUT)/$$f.yaml") objects"; \
	done

.PHONY: test-chart
test-chart: chart-lint chart-template kustomize ## Lint and render the chart, then check it against config/ and dist/install.yaml (go test ./test/chart/).
	BUDGETGATE_REQUIRE_HELM=1 go test ./test/chart/ -count=1
