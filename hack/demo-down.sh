#!/usr/bin/env bash
# `make demo-down`: removes everything `make demo` (and `make cluster-up`) started.
# With CLUSTER_NAME=budgetgate-gitops BUDGETGATE_STATE=$PWD/.cluster/gitops it
# removes what `make test-gitops` (hack/gitops-check.sh) left running with
# GITOPS_KEEP=1, its Flux and Argo CD processes and git server included.
#
# How it works: it stops the operator, the demo app and Prometheus by the pids
# recorded in .cluster/*.pid (checking each pid still runs that program, so a
# recycled pid is never hit), deletes the kwok cluster with hack/cluster-down.sh
# (which stops the control-plane processes), then removes .cluster/ entirely:
# kubeconfig, certificates, Prometheus data, logs. bin/ (the cached binaries)
# stays, so the next `make demo` starts in seconds.
set -euo pipefail
# shellcheck source=hack/lib.sh
. "$(dirname "$0")/lib.sh"

for p in argocd-application-controller argocd-repo-server argocd-redis kustomize-controller source-controller \
  gitserver manager demo-app prometheus; do
  if running "$p"; then
    log "stopping $p (pid $(cat "$STATE/$p.pid"))"
  fi
  stop_bg "$p"
done
"$ROOT/hack/cluster-down.sh"
case $STATE in
  / | "$ROOT" | "$HOME" | "") die "refusing to delete $STATE" ;;
esac
rm -rf "$STATE"
ok "demo removed ($S/ deleted; cached binaries stay in bin/)"
