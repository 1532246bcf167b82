##@ GitOps

# Real Flux (source-controller, kustomize-controller) and real Argo CD
# (application controller, repo server) against budgetgate on a local kwok
# cluster of its own (budgetgate-gitops, state in .cluster/gitops), as local
# processes built from the Go module proxy (hack/flux.sh, hack/argocd.sh). It
# tells the story of docs/gitops.md with assertions and rewrites its transcript,
# docs/gitops-transcript.txt. Not part of `make test`: see docs/gitops.md for
# how long it takes. GITOPS_KEEP=1 leaves everything running.
.PHONY: test-gitops
test-gitops: prometheus ## Run real Flux and Argo CD against budgetgate on a local kwok cluster: docs/gitops.md's story with assertions (not in make test).
	@hack/gitops-check.sh
