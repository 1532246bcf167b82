#!/usr/bin/env bash
# Gets the Argo Rollouts controller, its CRDs and its ClusterRole into DIR,
# offline when it must. The e2e suite runs it against the local cluster
# (test/e2e/rollout_test.go).
#
#   hack/argo-rollouts.sh DIR
#
# It puts, at ARGO_ROLLOUTS_VERSION (hack/versions.env):
#   DIR/rollouts-controller   through get_or_build (hack/get.sh): already
#                             there, else taken from the release image
#                             quay.io/argoproj/argo-rollouts (Argo publishes the
#                             controller only as an image; /bin/rollouts-controller,
#                             pulled with crane of GO_CONTAINERREGISTRY_VERSION;
#                             skipped with OFFLINE=1 or when quay.io does not
#                             answer), else built from the Go module proxy:
#                             cmd/rollouts-controller of
#                             github.com/argoproj/argo-rollouts, CGO_ENABLED=0,
#                             inside the module itself so that its replace
#                             directives hold (3 minutes on 2 idle cores, 10 on busy ones,
#                             the first time, seconds from the Go build cache);
#   DIR/manifests/            manifests/crds/*.yaml (Rollout, Experiment,
#                             AnalysisRun, AnalysisTemplate,
#                             ClusterAnalysisTemplate: the controller waits for
#                             all of them), the controller's ClusterRole and
#                             the roles Argo aggregates into view, edit and
#                             admin, of the same module, copied from the Go
#                             module cache.
# v1.10.2 and v1.9.3 need Go 1.26.10, newer than this toolchain: the pin is
# the newest release that builds here.
set -euo pipefail
# shellcheck source=hack/lib.sh
. "$(dirname "$0")/lib.sh"

dest=${1:?usage: $0 DIR}
ARGO_MODULE=github.com/argoproj/argo-rollouts
ARGO_VERSION=$ARGO_ROLLOUTS_VERSION

# module_dir: the module's directory in the Go module cache (downloaded from
# the proxy when it is not there yet).
module_dir() {
  local dir
  dir=$(cd "$ROOT" && go mod download -json "$ARGO_MODULE@$ARGO_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [ -n "$dir" ] && [ -d "$dir" ] || {
    log "argo-rollouts: go mod download $ARGO_MODULE@$ARGO_VERSION found no module directory"
    return 1
  }
  printf '%s\n' "$dir"
}

# from_image OUT: /bin/rollouts-controller of the release image.
from_image() {
  local out=$1 image=quay.io/argoproj/argo-rollouts:$ARGO_VERSION
  if ! curl -sS --connect-timeout 5 --max-time 10 -o /dev/null https://quay.io/v2/ 2>/dev/null; then
    log "argo-rollouts: quay.io does not answer: not pulling $image"
    return 1
  fi
  log "argo-rollouts: pulling /bin/rollouts-controller out of $image"
  (cd "$ROOT" && go run "github.com/google/go-containerregistry/cmd/crane@$GO_CONTAINERREGISTRY_VERSION" \
    export --platform "$(go env GOOS)/$(go env GOARCH)" "$image" -) | tar -xOf - bin/rollouts-controller >"$out"
}

# build OUT: cmd/rollouts-controller, built inside the module from the proxy.
build() {
  local out=$1 dir
  dir=$(module_dir) || return 1
  (cd "$dir" && CGO_ENABLED=0 GOFLAGS=-mod=readonly go build -trimpath \
    -ldflags "-s -w -X $ARGO_MODULE/utils/version.version=${ARGO_VERSION#v} -X $ARGO_MODULE/utils/version.gitTag=$ARGO_VERSION" \
    -o "$out" ./cmd/rollouts-controller)
}

get_or_build rollouts-controller "$dest/rollouts-controller" "$ARGO_VERSION" \
  --fetch from_image --build build \
  --time "about 3 minutes on 2 idle cores the first time, 10 on busy ones"

if [ "$(cat "$dest/manifests/.version" 2>/dev/null)" != "$ARGO_VERSION" ]; then
  dir=$(module_dir)
  rm -rf "$dest/manifests"
  mkdir -p "$dest/manifests/crds" "$dest/manifests/role"
  cp "$dir"/manifests/crds/*-crd.yaml "$dest/manifests/crds/"
  cp "$dir"/manifests/role/argo-rollouts-clusterrole.yaml "$dir"/manifests/base/argo-rollouts-aggregate-roles.yaml "$dest/manifests/role/"
  chmod -R u+w "$dest/manifests"
  printf '%s\n' "$ARGO_VERSION" >"$dest/manifests/.version"
  log "argo-rollouts $ARGO_VERSION: CRDs and ClusterRole copied from $ARGO_MODULE@$ARGO_VERSION into ${dest#"$ROOT"/}/manifests"
fi
