#!/usr/bin/env bash
# Gets the container runtime and the network plugins of the real-node cluster
# into bin/node/, offline when it must.
#
#   hack/node-binaries.sh [DIR]      (DIR defaults to bin/node)
#
# It fills, each directory named after its pinned version (hack/versions.env):
#   DIR/runc-$RUNC_VERSION-linux-ARCH/runc
#   DIR/containerd-$CONTAINERD_VERSION-linux-ARCH/{containerd,containerd-shim-runc-v2,ctr}
#   DIR/cni-plugins-$CNI_PLUGINS_VERSION-linux-ARCH/{bridge,host-local,loopback,portmap}
# and prints each directory's path on stdout as KEY=path lines (RUNC_DIR,
# CONTAINERD_DIR, CNI_DIR), so callers can `eval` them.
#
# How it works: each binary goes through get_or_build (hack/get.sh) at its pin:
# already there, else the release download (GitHub, checked against the
# checksums each project publishes; skipped with OFFLINE=1), else a build from
# the Go module proxy in a throwaway module under bin/.build/node-* (the Go
# build cache makes rebuilds take seconds), moved into place atomically:
#   - runc:       github.com/opencontainers/runc, cgo with -tags seccomp (needs
#                 gcc and libseccomp-dev; without the libpathrs tag, which would
#                 need the Rust libpathrs library);
#   - containerd: github.com/containerd/containerd/v2 cmd/containerd, cmd/ctr and
#                 cmd/containerd-shim-runc-v2, static (CGO_ENABLED=0), with
#                 -tags "no_btrfs no_devmapper no_zfs" (no snapshotters we
#                 do not use, no cgo libraries);
#   - CNI:        github.com/containernetworking/plugins, static.
# The Debian packages the build and the node need (gcc, pkg-config,
# libseccomp-dev to build runc; iptables, conntrack, socat for kubelet and
# kube-proxy) are installed with apt-get when missing (root only; otherwise it
# says which to install). NO_APT=1 skips that.
set -euo pipefail
# shellcheck source=hack/lib.sh
. "$(dirname "$0")/lib.sh"

dest=${1:-$ROOT/bin/node}
mkdir -p "$dest"
dest=$(cd "$dest" && pwd)
work="$ROOT/bin/.build"
os=$(go env GOOS) arch=$(go env GOARCH)
goversion=$(go env GOVERSION | sed 's/^go//; s/\.[0-9]*$//')

RUNC_DIR=$dest/runc-$RUNC_VERSION-$os-$arch
CONTAINERD_DIR=$dest/containerd-$CONTAINERD_VERSION-$os-$arch
CNI_DIR=$dest/cni-plugins-$CNI_PLUGINS_VERSION-$os-$arch

# debian_packages PKG...: installs the Debian packages that are missing.
debian_packages() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -gt 0 ] || return 0
  if [ "${NO_APT:-}" = 1 ] || [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    log "missing Debian packages: ${missing[*]} (install them: apt-get install ${missing[*]})"
    return 1
  fi
  log "installing Debian packages: ${missing[*]} (apt-get, non-interactive)"
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y -q --no-install-recommends "${missing[@]}" >&2; then
    log "apt-get install failed; refreshing the package lists and retrying"
    apt-get update -q >&2 || return 1
    apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
  fi
}

# gomodule DIR MODULE VERSION PKG...: a throwaway module in DIR requiring
# MODULE@VERSION, with a tools.go importing PKG... so `go mod tidy` resolves
# exactly what the commands need.
gomodule() {
  local dir=$1 mod=$2 ver=$3 p
  shift 3
  mkdir -p "$dir" || return 1
  [ -f "$dir/go.sum" ] && return 0
  printf 'module budgetgate.local/%s\n\ngo %s\n\nrequire %s %s\n' "$(basename "$dir")" "$goversion" "$mod" "$ver" >"$dir/go.mod"
  {
    printf '//go:build tools\n\npackage tools\n\nimport (\n'
    for p in "$@"; do printf '\t_ "%s"\n' "$p"; done
    printf ')\n'
  } >"$dir/tools.go"
  log "resolving $mod@$ver modules"
  (cd "$dir" && go mod tidy >&2)
}

# build_runc OUT
build_runc() {
  local dir=$work/node-runc-$RUNC_VERSION
  debian_packages gcc libc6-dev pkg-config libseccomp-dev || return 1
  gomodule "$dir" github.com/opencontainers/runc "$RUNC_VERSION" github.com/opencontainers/runc || return 1
  (cd "$dir" && CGO_ENABLED=1 go build -mod=mod -trimpath -tags "seccomp urfave_cli_no_docs" \
    -ldflags "-s -w" -o "$1" github.com/opencontainers/runc)
}

# build_containerd BINARY OUT
build_containerd() {
  local dir=$work/node-containerd-$CONTAINERD_VERSION m=github.com/containerd/containerd/v2
  gomodule "$dir" "$m" "$CONTAINERD_VERSION" "$m/cmd/containerd" "$m/cmd/ctr" "$m/cmd/containerd-shim-runc-v2" || return 1
  local ld="-s -w -X $m/version.Version=$CONTAINERD_VERSION -X $m/version.Package=github.com/containerd/containerd/v2"
  local tags="no_btrfs no_devmapper no_zfs urfave_cli_no_docs osusergo netgo"
  [ "$1" = containerd-shim-runc-v2 ] && tags="$tags no_grpc"
  (cd "$dir" && CGO_ENABLED=0 go build -mod=mod -trimpath -tags "$tags" -ldflags "$ld" -o "$2" "$m/cmd/$1")
}

# build_cni PACKAGE OUT
build_cni() {
  local dir=$work/node-cni-plugins-$CNI_PLUGINS_VERSION m=github.com/containernetworking/plugins
  gomodule "$dir" "$m" "$CNI_PLUGINS_VERSION" "$m/plugins/main/bridge" "$m/plugins/ipam/host-local" \
    "$m/plugins/main/loopback" "$m/plugins/meta/portmap" || return 1
  (cd "$dir" && CGO_ENABLED=0 go build -mod=mod -trimpath \
    -ldflags "-s -w -X $m/pkg/utils/buildversion.BuildVersion=$CNI_PLUGINS_VERSION" -o "$2" "$m/$1")
}

get_runc() {
  local base=https://github.com/opencontainers/runc/releases/download/$RUNC_VERSION
  get_or_build runc "$RUNC_DIR/runc" "$RUNC_VERSION" \
    --url "$base/runc.$arch" --sha256-url "$base/runc.sha256sum" \
    --module github.com/opencontainers/runc --build build_runc --time "cgo, seccomp; about a minute"
}

get_containerd() {
  local b base=https://github.com/containerd/containerd/releases/download/$CONTAINERD_VERSION
  local asset=containerd-static-${CONTAINERD_VERSION#v}-$os-$arch.tar.gz
  for b in containerd containerd-shim-runc-v2 ctr; do
    get_or_build "$b" "$CONTAINERD_DIR/$b" "$CONTAINERD_VERSION" \
      --url "$base/$asset" --member "bin/$b" --sha256-url "$base/$asset.sha256sum" \
      --module github.com/containerd/containerd/v2 --build "build_containerd $b" \
      --time "static; about 3 minutes for the first"
  done
}

get_cni() {
  local p base=https://github.com/containernetworking/plugins/releases/download/$CNI_PLUGINS_VERSION
  local asset=cni-plugins-$os-$arch-$CNI_PLUGINS_VERSION.tgz
  for p in plugins/main/bridge plugins/ipam/host-local plugins/main/loopback plugins/meta/portmap; do
    get_or_build "${p##*/}" "$CNI_DIR/${p##*/}" "$CNI_PLUGINS_VERSION" \
      --url "$base/$asset" --member "${p##*/}" --sha256-url "$base/$asset.sha256" \
      --module github.com/containernetworking/plugins --build "build_cni $p" \
      --time "static; under a minute for the first"
  done
}

# What kubelet, kube-proxy and the bridge plugin call on the host.
debian_packages iptables conntrack socat ||
  log "WARNING: the real node needs iptables, conntrack and socat"
get_runc
get_containerd
get_cni
printf 'RUNC_DIR=%s\nCONTAINERD_DIR=%s\nCNI_DIR=%s\n' "$RUNC_DIR" "$CONTAINERD_DIR" "$CNI_DIR"
