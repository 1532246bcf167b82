##@ kubectl plugin

# make plugin builds budgetgate's kubectl plugin (cmd/kubectl-budgetgate,
# docs/kubectl-plugin.md) into bin/kubectl-budgetgate, and puts beside it
# bin/kubectl_complete-budgetgate, the script kubectl (1.26 and later) runs
# to complete the plugin's arguments. With bin/ on the PATH (or both files
# copied onto it), `kubectl budgetgate` runs it. The binary carries the
# commit it was built from, and VERSION when given, as make release stamps
# the manager (internal/version): make plugin VERSION=v0.2.0.
# plugins/krew/budgetgate.yaml is the krew manifest of a release (a
# krew-release-bot template); the release does not build its archives yet
# (docs/kubectl-plugin.md, "krew").
PLUGIN ?= $(LOCALBIN)/kubectl-budgetgate
PLUGIN_COMMIT ?= $(shell git rev-parse HEAD 2>/dev/null)
PLUGIN_LDFLAGS = -X github.com/budgetgate/budgetgate/internal/version.Commit=$(PLUGIN_COMMIT) \
	$(if $(VERSION),-X github.com/budgetgate/budgetgate/internal/version.Version=$(VERSION))

.PHONY: plugin
plugin: $(LOCALBIN) ## Build the kubectl plugin into bin/kubectl-budgetgate, with its completion helper (VERSION=vX.Y.Z stamps a version).
	go build -ldflags "$(PLUGIN_LDFLAGS)" -o "$(PLUGIN)" ./cmd/kubectl-budgetgate
	install -m 0755 plugins/kubectl_complete-budgetgate "$(dir $(PLUGIN))kubectl_complete-budgetgate"
	@"$(PLUGIN)" --version
