#!/usr/bin/env bash
# Gets Argo CD (the one argocd binary) and its CRDs into DIR, offline.
# `make test-gitops` (hack/gitops-check.sh) runs its application controller
# and repo server as local processes against the local cluster.
#
#   hack/argocd.sh DIR
#
# It puts, at ARGOCD_VERSION (hack/versions.env):
#   DIR/argocd      through get_or_build (hack/get.sh): already there, else
#                   built from the Go module proxy: ./cmd of
#                   github.com/argoproj/argo-cd/v3, CGO_ENABLED=0, inside the
#                   module itself so that its replace directives hold, with the
#                   version stamped as upstream's Makefile does. No download is
#                   tried: the release binaries are the CLI only, the
#                   controllers ship as an image. The binary is every Argo CD
#                   component: it picks one by its name (argv[0]) or
#                   ARGOCD_BINARY_NAME (argocd-application-controller,
#                   argocd-repo-server, ...). The web UI is not built (the
#                   module carries no UI assets); the check does not need it.
#   DIR/crds/       manifests/crds/*.yaml of the same module (Application,
#                   ApplicationSet, AppProject).
# Why this version: see hack/versions.env.
set -euo pipefail
# shellcheck source=hack/lib.sh
. "$(dirname "$0")/lib.sh"

dest=${1:?usage: $0 DIR}
ARGOCD_MODULE=github.com/argoproj/argo-cd/v3

module_dir() {
  local dir
  dir=$(cd "$ROOT" && go mod download -json "$ARGOCD_MODULE@$ARGOCD_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  if [ -z "$dir" ] || [ ! -d "$dir" ]; then
    log "argocd: go mod download $ARGOCD_MODULE@$ARGOCD_VERSION found no module directory"
    return 1
  fi
  printf '%s\n' "$dir"
}

build() {
  local out=$1 dir pkg=$ARGOCD_MODULE/common
  dir=$(module_dir) || return 1
  (cd "$dir" && CGO_ENABLED=0 GOFLAGS="-mod=readonly -buildvcs=false" go build -trimpath \
    -ldflags "-s -w -X $pkg.version=${ARGOCD_VERSION#v} -X $pkg.gitTag=$ARGOCD_VERSION -X $pkg.gitTreeState=clean" \
    -o "$out" ./cmd)
}

get_or_build argocd "$dest/argocd" "$ARGOCD_VERSION" \
  --build build --time "about 5 minutes on 2 cores the first time"

if [ "$(cat "$dest/crds/.version" 2>/dev/null)" != "$ARGOCD_VERSION" ]; then
  dir=$(module_dir)
  rm -rf "$dest/crds"
  mkdir -p "$dest/crds"
  cp "$dir"/manifests/crds/*-crd.yaml "$dest/crds/"
  chmod -R u+w "$dest/crds"
  printf '%s\n' "$ARGOCD_VERSION" >"$dest/crds/.version"
  log "argocd $ARGOCD_VERSION: CRDs copied from $ARGOCD_MODULE@$ARGOCD_VERSION into ${dest#"$ROOT"/}/crds"
fi
