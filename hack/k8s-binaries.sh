#!/usr/bin/env bash
# Gets Kubernetes control-plane binaries into bin/, offline when it must.
#
#   hack/k8s-binaries.sh DIR [COMPONENT...]
#
# COMPONENT is any of: etcd kube-apiserver kube-controller-manager kube-scheduler kubectl.
# DIR receives the binaries (e.g. bin/k8s/1.37.2-linux-amd64, the layout setup-envtest
# uses, so KUBEBUILDER_ASSETS can point straight at it).
#
# For each missing binary it first tries the fast path, the release download
# (github.com/etcd-io for etcd, dl.k8s.io for the others; skipped with OFFLINE=1,
# which `make envtest-binaries` sets after setup-envtest failed), and falls back
# to building from the Go module proxy, which works without the internet:
#   - etcd:   a two-line main calling go.etcd.io/etcd/server/v3/etcdmain.Main
#   - kube-*: a throwaway module requiring k8s.io/kubernetes and replacing every
#             staging module with its v0.x twin.
# Builds happen in bin/.build so the Go build cache makes reruns take seconds.
set -euo pipefail

ETCD_VERSION=${ETCD_VERSION:-v3.6.16}
K8S_VERSION=${K8S_VERSION:-v1.37.2}
STAGING_VERSION=v0${K8S_VERSION#v1}   # v1.37.2 -> v0.37.2

here=$(cd "$(dirname "$0")/.." && pwd)
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

build_kube() { # component
  local comp=$1 dir="$work/kubernetes-$K8S_VERSION"
  mkdir -p "$dir"
  if [ ! -f "$dir/go.sum" ]; then
    local staging=(api apiextensions-apiserver apimachinery apiserver cli-runtime client-go
      cloud-provider cluster-bootstrap code-generator component-base component-helpers
      controller-manager cri-api cri-client csi-translation-lib dynamic-resource-allocation
      endpointslice externaljwt kms kube-aggregator kube-controller-manager kube-proxy
      kube-scheduler kubectl kubelet metrics mount-utils pod-security-admission streaming
      sample-apiserver sample-cli-plugin sample-controller)
    {
      echo "module budgetgate.local/kubernetes"
      echo
      echo "go $(go env GOVERSION | sed 's/^go//; s/\.[0-9]*$//')"
      echo
      echo "require k8s.io/kubernetes $K8S_VERSION"
      echo
      for m in "${staging[@]}"; do echo "replace k8s.io/$m => k8s.io/$m $STAGING_VERSION"; done
    } >"$dir/go.mod"
    cat >"$dir/tools.go" <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO
    log "kubernetes: resolving $K8S_VERSION modules"
    (cd "$dir" && go mod tidy -e >&2 || true)
  fi
  local minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
  local ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION"
  log "$comp: building $K8S_VERSION from the Go module proxy (about 5 minutes on 2 cores the first time)"
  (cd "$dir" && CGO_ENABLED=0 go build -mod=mod -ldflags "$ldflags" -o "$dest/$comp" "k8s.io/kubernetes/cmd/$comp")
}

for c in "${components[@]}"; do
  if [ -x "$dest/$c" ]; then continue; fi
  case $c in
    etcd)
      try_download etcd-archive.tar.gz "https://github.com/etcd-io/etcd/releases/download/$ETCD_VERSION/etcd-$ETCD_VERSION-$os-$arch.tar.gz" &&
        tar -xzf "$dest/etcd-archive.tar.gz" -C "$dest" --strip-components=1 "etcd-$ETCD_VERSION-$os-$arch/etcd" && rm -f "$dest/etcd-archive.tar.gz" ||
        build_etcd
      ;;
    kube-apiserver | kube-controller-manager | kube-scheduler | kubectl)
      try_download "$c" "https://dl.k8s.io/release/$K8S_VERSION/bin/$os/$arch/$c" || build_kube "$c"
      ;;
    *) echo "unknown component $c" >&2; exit 2 ;;
  esac
  log "$c: ready at $dest/$c"
done
