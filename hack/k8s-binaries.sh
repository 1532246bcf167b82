#!/usr/bin/env bash
# Gets Kubernetes binaries into DIR, offline when it must.
#
#   hack/k8s-binaries.sh [--setup-envtest] DIR [COMPONENT...]
#
# COMPONENT is any of: etcd kube-apiserver kube-controller-manager kube-scheduler kubectl
# kubelet kube-proxy (the last two for the real-node cluster, hack/real-node-up.sh);
# default: etcd kube-apiserver. DIR receives the binaries (bin/k8s/<K8S_VERSION
# without v>-<os>-<arch>, the layout setup-envtest uses, so KUBEBUILDER_ASSETS can
# point straight at it). Versions: K8S_VERSION and ETCD_VERSION of hack/versions.env.
#
# Each binary goes through get_or_build (hack/get.sh): already there at its
# pinned version, else the fast path, else a build from the Go module proxy,
# moved into place atomically. The fast path (skipped with OFFLINE=1) is the
# release download, checked against upstream's checksums (GitHub's SHA256SUMS
# for etcd, dl.k8s.io's .sha256 files for the others), or with --setup-envtest
# (make envtest-binaries) setup-envtest's envtest release instead (its etcd is
# the one that release bundles). The builds:
#   - etcd:   a two-line main calling go.etcd.io/etcd/server/v3/etcdmain.Main
#   - kube-*, kubectl, kubelet: a throwaway module requiring k8s.io/kubernetes and
#             replacing every staging module with its v0.x twin. The list of staging
#             modules is derived from k8s.io/kubernetes's own go.mod (its
#             `k8s.io/x => ./staging/src/k8s.io/x` replaces, read from the module
#             cache), so modules a release adds (1.37: k8s.io/cri-streaming, which
#             the kubelet needs) are never missed. All are built with CGO_ENABLED=0
#             (static; the kubelet needs no cgo: cadvisor, DNS and user lookups have
#             pure-Go paths, and hack/real-node-up.sh runs it), with the version
#             stamped into k8s.io/component-base/version (else they report v0.0.0).
# The build modules live in bin/.build so the Go build cache makes rebuilds take
# seconds; the kubernetes module is regenerated when the staging list or the set
# of commands changes (a stamp file records both).
set -euo pipefail
# shellcheck source=hack/lib.sh
. "$(dirname "$0")/lib.sh"

fast=release
if [ "${1:-}" = --setup-envtest ]; then
  fast=setup-envtest
  shift
fi
dest=${1:?usage: $0 [--setup-envtest] DIR [COMPONENT...]}
shift
components=("$@")
[ ${#components[@]} -gt 0 ] || components=(etcd kube-apiserver)
mkdir -p "$dest"
dest=$(cd "$dest" && pwd)
work="$ROOT/bin/.build"
mkdir -p "$work"
os=$(go env GOOS) arch=$(go env GOARCH)
STAGING_VERSION=v0${K8S_VERSION#v1} # v1.MINOR.PATCH -> v0.MINOR.PATCH

# build_etcd OUT
build_etcd() {
  local out=$1 dir="$work/etcd-$ETCD_VERSION"
  mkdir -p "$dir" || return 1
  cat >"$dir/main.go" <<'GO' || return 1
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
  if [ ! -f "$dir/go.sum" ]; then
    (cd "$dir" && rm -f go.mod && go mod init budgetgate.local/etcd >/dev/null 2>&1 &&
      go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" >&2 && go mod tidy >&2) || return 1
  fi
  (cd "$dir" && CGO_ENABLED=0 go build -o "$out" .)
}

# The commands the throwaway kubernetes module resolves (tools.go); building any
# of them then needs no further module resolution.
KUBE_COMMANDS=(kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet kube-proxy)

# staging_modules: the k8s.io modules that k8s.io/kubernetes@K8S_VERSION replaces
# with ./staging/src/... in its go.mod, one a line.
staging_modules() {
  local gomod
  gomod=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",*$/\1/p')
  [ -f "$gomod" ] || { echo "cannot read the go.mod of k8s.io/kubernetes@$K8S_VERSION" >&2; return 1; }
  sed -n 's#^[[:space:]]*\(replace[[:space:]]\{1,\}\)\{0,1\}\(k8s\.io/[^[:space:]]*\)[[:space:]]*=>[[:space:]]*\./staging/.*#\2#p' "$gomod" | sort -u
}

kube_module() { # prepares bin/.build/kubernetes-$K8S_VERSION
  local dir=$1 staging c stamp
  staging=$(staging_modules) || return 1
  [ -n "$staging" ] || { echo "found no staging replaces in k8s.io/kubernetes@$K8S_VERSION's go.mod" >&2; return 1; }
  stamp="$(printf '%s\n' "$K8S_VERSION" "${KUBE_COMMANDS[@]}" "$staging" | sha256sum | cut -c1-16)"
  if [ -f "$dir/go.sum" ] && [ "$(cat "$dir/.inputs" 2>/dev/null)" = "$stamp" ]; then return 0; fi
  mkdir -p "$dir" || return 1
  log "kubernetes: module for $K8S_VERSION with $(wc -l <<<"$staging") staging replaces from its go.mod ($(tr '\n' ' ' <<<"$staging" | sed 's#k8s.io/##g'))"
  {
    echo "module budgetgate.local/kubernetes"
    echo
    echo "go $(go env GOVERSION | sed 's/^go//; s/\.[0-9]*$//')"
    echo
    echo "require k8s.io/kubernetes $K8S_VERSION"
    echo
    while read -r m; do echo "replace $m => $m $STAGING_VERSION"; done <<<"$staging"
  } >"$dir/go.mod"
  {
    printf '//go:build tools\n\npackage tools\n\nimport (\n'
    for c in "${KUBE_COMMANDS[@]}"; do printf '\t_ "k8s.io/kubernetes/cmd/%s"\n' "$c"; done
    printf ')\n'
  } >"$dir/tools.go"
  log "kubernetes: resolving $K8S_VERSION modules"
  (cd "$dir" && go mod tidy >&2) || return 1
  echo "$stamp" >"$dir/.inputs"
}

# build_kube COMPONENT OUT
build_kube() {
  local comp=$1 out=$2 dir="$work/kubernetes-$K8S_VERSION"
  kube_module "$dir" || return 1
  local minor=${K8S_VERSION#v1.}
  minor=${minor%%.*}
  local ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION"
  (cd "$dir" && CGO_ENABLED=0 go build -mod=mod -ldflags "$ldflags" -o "$out" "k8s.io/kubernetes/cmd/$comp")
}

# fetch_envtest COMPONENT OUT: the component from setup-envtest's envtest
# release of K8S_VERSION (etcd, kube-apiserver and kubectl), kept in its own
# store, bin/.build/setup-envtest. setup-envtest comes from `make envtest`; a
# failure is remembered, so the other components do not try again.
envtest_dir='' envtest_failed=''
fetch_envtest() {
  local comp=$1 out=$2
  if [ -z "$envtest_dir" ]; then
    [ -z "$envtest_failed" ] || return 1
    log "setup-envtest: trying the envtest release of ${K8S_VERSION#v}"
    envtest_failed=1
    "${MAKE:-make}" -C "$ROOT" -s --no-print-directory envtest >&2 || return 1
    if ! envtest_dir=$(timeout 120 "${ENVTEST:-$ROOT/bin/setup-envtest}" use "${K8S_VERSION#v}" \
      --bin-dir "$work/setup-envtest" -p path 2>/dev/null) || [ -z "$envtest_dir" ]; then
      envtest_dir=''
      log "setup-envtest could not download the envtest release"
      return 1
    fi
    envtest_failed=''
  fi
  [ -f "$envtest_dir/$comp" ] || { log "setup-envtest's release has no $comp"; return 1; }
  cp "$envtest_dir/$comp" "$out"
}

for c in "${components[@]}"; do
  case $c in
    etcd)
      args=(--module go.etcd.io/etcd/server/v3 --build build_etcd --time "about a minute the first time")
      if [ "$fast" = setup-envtest ]; then
        args+=(--fetch "fetch_envtest etcd")
      else
        base="https://github.com/etcd-io/etcd/releases/download/$ETCD_VERSION"
        args+=(--url "$base/etcd-$ETCD_VERSION-$os-$arch.tar.gz" --member "etcd-$ETCD_VERSION-$os-$arch/etcd"
          --sha256-url "$base/SHA256SUMS")
      fi
      get_or_build etcd "$dest/etcd" "$ETCD_VERSION" "${args[@]}"
      ;;
    kube-apiserver | kube-controller-manager | kube-scheduler | kubectl | kubelet | kube-proxy)
      args=(--module k8s.io/kubernetes --build "build_kube $c" --time "about 5 minutes on 2 cores the first time, seconds for each further command")
      if [ "$fast" = setup-envtest ]; then
        args+=(--fetch "fetch_envtest $c")
      else
        url="https://dl.k8s.io/release/$K8S_VERSION/bin/$os/$arch/$c"
        args+=(--url "$url" --sha256-url "$url.sha256")
      fi
      get_or_build "$c" "$dest/$c" "$K8S_VERSION" "${args[@]}"
      ;;
    *)
      echo "unknown component $c" >&2
      exit 2
      ;;
  esac
done
