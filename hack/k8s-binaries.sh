#!/usr/bin/env bash
# Gets Kubernetes control-plane binaries into bin/, offline when it must.
#
#   hack/k8s-binaries.sh DIR [COMPONENT...]
#
# COMPONENT is any of: etcd kube-apiserver kube-controller-manager kube-scheduler kubectl
# kubelet kube-proxy (the last two for the real-node cluster, hack/real-node-up.sh).
# DIR receives the binaries (e.g. bin/k8s/1.37.2-linux-amd64, the layout setup-envtest
# uses, so KUBEBUILDER_ASSETS can point straight at it). Versions: hack/versions.env
# (ETCD_VERSION, K8S_VERSION; the environment overrides them).
#
# For each missing binary it first tries the fast path, the release download
# (github.com/etcd-io for etcd, dl.k8s.io for the others; skipped with OFFLINE=1,
# which `make envtest-binaries` sets after setup-envtest failed), and falls back
# to building from the Go module proxy, which works without the internet:
#   - etcd:   a two-line main calling go.etcd.io/etcd/server/v3/etcdmain.Main
#   - kube-*, kubectl, kubelet: a throwaway module requiring k8s.io/kubernetes and
#             replacing every staging module with its v0.x twin. The list of staging
#             modules is derived from k8s.io/kubernetes's own go.mod (its
#             `k8s.io/x => ./staging/src/k8s.io/x` replaces, read from the module
#             cache), so modules a release adds (1.37: k8s.io/cri-streaming, which
#             the kubelet needs) are never missed. All are built with CGO_ENABLED=0
#             (static; the kubelet needs no cgo: cadvisor, DNS and user lookups have
#             pure-Go paths, and hack/real-node-up.sh runs it).
# Builds happen in bin/.build so the Go build cache makes reruns take seconds; the
# throwaway module is regenerated when the staging list or the set of commands
# changes (a stamp file records both).
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
# Pins from hack/versions.env; a variable already set in the environment wins.
while IFS='=' read -r key val; do
  case $key in [A-Z]*) [ -n "${!key:-}" ] || printf -v "$key" '%s' "$val" ;; esac
done <"$here/hack/versions.env"
STAGING_VERSION=v0${K8S_VERSION#v1}   # v1.37.2 -> v0.37.2

dest=${1:?usage: $0 DIR [COMPONENT...]}
shift
components=("$@")
[ ${#components[@]} -gt 0 ] || components=(etcd kube-apiserver)
mkdir -p "$dest"
dest=$(cd "$dest" && pwd)
work="$here/bin/.build"
mkdir -p "$work"
os=$(go env GOOS) arch=$(go env GOARCH)

log() { printf '==> %s\n' "$*" >&2; }

try_download() { # name url
  local name=$1 url=$2
  [ "${OFFLINE:-}" = "1" ] && return 1
  log "$name: trying $url"
  if curl -fsSL --connect-timeout 5 --max-time 120 -o "$dest/$name.tmp" "$url" 2>/dev/null; then
    chmod +x "$dest/$name.tmp" && mv "$dest/$name.tmp" "$dest/$name"
    return 0
  fi
  rm -f "$dest/$name.tmp"
  log "$name: download failed, building from the Go module proxy instead"
  return 1
}

build_etcd() {
  local dir="$work/etcd-$ETCD_VERSION"
  mkdir -p "$dir"
  cat >"$dir/main.go" <<'GO'
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
  if [ ! -f "$dir/go.sum" ]; then
    (cd "$dir" && rm -f go.mod && go mod init budgetgate.local/etcd >/dev/null 2>&1 &&
      go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" >&2 && go mod tidy >&2)
  fi
  log "etcd: building $ETCD_VERSION (about a minute the first time)"
  (cd "$dir" && CGO_ENABLED=0 go build -o "$dest/etcd" .)
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
  staging=$(staging_modules)
  [ -n "$staging" ] || { echo "found no staging replaces in k8s.io/kubernetes@$K8S_VERSION's go.mod" >&2; return 1; }
  stamp="$(printf '%s\n' "$K8S_VERSION" "${KUBE_COMMANDS[@]}" "$staging" | sha256sum | cut -c1-16)"
  if [ -f "$dir/go.sum" ] && [ "$(cat "$dir/.inputs" 2>/dev/null)" = "$stamp" ]; then return 0; fi
  mkdir -p "$dir"
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
  (cd "$dir" && go mod tidy >&2)
  echo "$stamp" >"$dir/.inputs"
}

build_kube() { # component
  local comp=$1 dir="$work/kubernetes-$K8S_VERSION"
  kube_module "$dir"
  local minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
  local ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION"
  log "$comp: building $K8S_VERSION from the Go module proxy (about 5 minutes on 2 cores the first time)"
  (cd "$dir" && CGO_ENABLED=0 go build -mod=mod -ldflags "$ldflags" -o "$dest/$comp.tmp" "k8s.io/kubernetes/cmd/$comp")
  mv "$dest/$comp.tmp" "$dest/$comp"
}

for c in "${components[@]}"; do
  if [ -x "$dest/$c" ]; then continue; fi
  case $c in
    etcd)
      try_download etcd-archive.tar.gz "https://github.com/etcd-io/etcd/releases/download/$ETCD_VERSION/etcd-$ETCD_VERSION-$os-$arch.tar.gz" &&
        tar -xzf "$dest/etcd-archive.tar.gz" -C "$dest" --strip-components=1 "etcd-$ETCD_VERSION-$os-$arch/etcd" && rm -f "$dest/etcd-archive.tar.gz" ||
        build_etcd
      ;;
    kube-apiserver | kube-controller-manager | kube-scheduler | kubectl | kubelet | kube-proxy)
      try_download "$c" "https://dl.k8s.io/release/$K8S_VERSION/bin/$os/$arch/$c" || build_kube "$c"
      ;;
    *) echo "unknown component $c" >&2; exit 2 ;;
  esac
  log "$c: ready at $dest/$c"
done
