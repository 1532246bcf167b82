#!/usr/bin/env bash
# Gets Flux's source-controller and kustomize-controller and their CRDs into
# DIR, offline. `make test-gitops` (hack/gitops-check.sh) runs them as local
# processes against the local cluster.
#
#   hack/flux.sh DIR
#
# It puts, at FLUX_SOURCE_CONTROLLER_VERSION and
# FLUX_KUSTOMIZE_CONTROLLER_VERSION (hack/versions.env):
#   DIR/source-controller      through get_or_build (hack/get.sh): already
#   DIR/kustomize-controller   there, else built from the Go module proxy
#                              (github.com/fluxcd/source-controller and
#                              github.com/fluxcd/kustomize-controller, package
#                              ".", CGO_ENABLED=0). Flux publishes the
#                              controllers only as images, so there is no
#                              download to try. The build runs inside the
#                              module's directory so that its replace
#                              directives hold, with one change: both modules
#                              replace their api module with ./api, a nested
#                              module that the module zip leaves out, so the
#                              build uses a copy of go.mod (-modfile) whose
#                              replace points at the api module of the same
#                              version from the proxy instead. The proxy
#                              here does not serve every dependency version:
#                              source-controller v1.9.6 requires
#                              github.com/fluxcd/pkg/artifact v0.18.3, which it
#                              refuses (403), so the copy also replaces it with
#                              FLUX_ARTIFACT_VERSION (v0.18.0, a patch release
#                              older); its go.sum lines come from
#                              `go mod download -json` (checked against
#                              sum.golang.org through the proxy).
#   DIR/crds/                  config/crd/bases/*.yaml of both modules.
set -euo pipefail
# shellcheck source=hack/lib.sh
. "$(dirname "$0")/lib.sh"

dest=${1:?usage: $0 DIR}

# module_dir MODULE@VERSION: its directory in the Go module cache (downloaded
# from the proxy when it is not there yet).
module_dir() {
  local dir
  dir=$(cd "$ROOT" && go mod download -json "$1" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  if [ -z "$dir" ] || [ ! -d "$dir" ]; then
    log "flux: go mod download $1 found no module directory"
    return 1
  fi
  printf '%s\n' "$dir"
}

# build MODULE VERSION OUT [DEP@VERSION...]: the controller of MODULE (its
# main package is the module root), its ./api replaced by the proxy's
# MODULE/api at VERSION, each DEP by DEP@VERSION.
build() {
  local module=$1 version=$2 out=$3 dir api scratch sub json
  shift 3
  dir=$(module_dir "$module@$version") || return 1
  api=$(module_dir "$module/api@$version") || return 1
  scratch=$(dirname "$out")
  cp "$dir/go.mod" "$scratch/go.mod" && cp "$dir/go.sum" "$scratch/go.sum" && chmod u+w "$scratch/go.mod" "$scratch/go.sum" || return 1
  (cd "$dir" && go mod edit -modfile="$scratch/go.mod" -replace "$module/api=$api") || return 1
  for sub in "$@"; do
    log "flux: $module $version: using ${sub%@*} ${sub#*@} (the proxy does not serve the version go.mod requires)"
    json=$(cd "$ROOT" && go mod download -json "$sub") || return 1
    (cd "$dir" && go mod edit -modfile="$scratch/go.mod" -replace "${sub%@*}=$sub") || return 1
    printf '%s %s %s\n%s %s/go.mod %s\n' \
      "${sub%@*}" "${sub#*@}" "$(sed -n 's/^[[:space:]]*"Sum": "\([^"]*\)".*/\1/p' <<<"$json")" \
      "${sub%@*}" "${sub#*@}" "$(sed -n 's/^[[:space:]]*"GoModSum": "\([^"]*\)".*/\1/p' <<<"$json")" >>"$scratch/go.sum"
  done
  (cd "$dir" && CGO_ENABLED=0 GOFLAGS="-mod=readonly -buildvcs=false" go build -modfile="$scratch/go.mod" -trimpath \
    -ldflags "-s -w" -o "$out" .)
}
build_source() {
  build github.com/fluxcd/source-controller "$FLUX_SOURCE_CONTROLLER_VERSION" "$1" \
    "github.com/fluxcd/pkg/artifact@$FLUX_ARTIFACT_VERSION"
}
build_kustomize() { build github.com/fluxcd/kustomize-controller "$FLUX_KUSTOMIZE_CONTROLLER_VERSION" "$1"; }

get_or_build source-controller "$dest/source-controller" "$FLUX_SOURCE_CONTROLLER_VERSION" \
  --build build_source --time "about 3 minutes on 2 cores the first time"
get_or_build kustomize-controller "$dest/kustomize-controller" "$FLUX_KUSTOMIZE_CONTROLLER_VERSION" \
  --build build_kustomize --time "about 2 minutes after source-controller the first time"

want="source-controller $FLUX_SOURCE_CONTROLLER_VERSION, kustomize-controller $FLUX_KUSTOMIZE_CONTROLLER_VERSION"
if [ "$(cat "$dest/crds/.version" 2>/dev/null)" != "$want" ]; then
  src=$(module_dir "github.com/fluxcd/source-controller@$FLUX_SOURCE_CONTROLLER_VERSION")
  kus=$(module_dir "github.com/fluxcd/kustomize-controller@$FLUX_KUSTOMIZE_CONTROLLER_VERSION")
  rm -rf "$dest/crds"
  mkdir -p "$dest/crds"
  cp "$src"/config/crd/bases/*.yaml "$kus"/config/crd/bases/*.yaml "$dest/crds/"
  chmod -R u+w "$dest/crds"
  printf '%s\n' "$want" >"$dest/crds/.version"
  log "flux: CRDs of $want copied into ${dest#"$ROOT"/}/crds"
fi
