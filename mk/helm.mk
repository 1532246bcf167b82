##@ Helm chart

# charts/budgetgate is the Helm chart of what config/default (dist/install.yaml)
# installs. It must not drift from config/: test/chart renders it with default
# values and compares it, object by object, with dist/install.yaml and a fresh
# kustomize build of config/default, and its other modes with kustomize builds
# of config/ plus the matching components (cert-manager, fail-closed,
# prometheus, network-policy); its crds/ must be byte copies of
# config/crd/bases (make chart-crds).
#
# bin/helm: hack/helm.sh, through hack/get.sh: the release download first
# (checked against its .sha256sum), else built from the Go module proxy
# (helm.sh/helm/v3, CGO_ENABLED=0; about 1.5 minutes with empty Go caches on 2
# cores, under a minute with a warm build cache), with the ldflags of Helm's
# own Makefile: its version, and the Kubernetes version of its client-go as the
# default for `helm template` and `helm lint` (left unset it is 1.20, below the
# chart's kubeVersion). OFFLINE=1 skips the download. HELM_VERSION is pinned in
# hack/versions.env (the environment wins).
HELM ?= $(LOCALBIN)/helm
CHART_DIR ?= charts/budgetgate
# The release test/chart compares with dist/install.yaml: kustomize's
# namePrefix "budgetgate-" and namespace "budgetgate-system".
CHART_RELEASE ?= budgetgate
CHART_NAMESPACE ?= budgetgate-system
# Where chart-template writes its renderings.
CHART_OUT ?= $(LOCALBIN)/chart

.PHONY: helm
helm: ## Get helm into bin/helm (HELM_VERSION): release download, else built from the Go module proxy.
	@hack/helm.sh "$(HELM)"

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
