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
# How it works: directories already complete are kept (reruns are instant).
# Otherwise it first tries the release download (GitHub; skipped with
# OFFLINE=1) and falls back to building from the Go module proxy in a throwaway
# module under bin/.build/node-* (the Go build cache makes rebuilds take
# seconds):
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

here=$(cd "$(dirname "$0")/.." && pwd)
# Pins from hack/versions.env; a variable already set in the environment wins.
while IFS='=' read -r key val; do
  case $key in [A-Z]*) [ -n "${!key:-}" ] || printf -v "$key" '%s' "$val" ;; esac
done <"$here/hack/versions.env"

dest=${1:-$here/bin/node}
mkdir -p "$dest"
dest=$(cd "$dest" && pwd)
work="$here/bin/.build"
os=$(go env GOOS) arch=$(go env GOARCH)
goversion=$(go env GOVERSION | sed 's/^go//; s/\.[0-9]*$//')
log() { printf '==> %s\n' "$*" >&2; }

RUNC_DIR=$dest/runc-$RUNC_VERSION-$os-$arch
CONTAINERD_DIR=$dest/containerd-$CONTAINERD_VERSION-$os-$arch
CNI_DIR=$dest/cni-plugins-$CNI_PLUGINS_VERSION-$os-$arch
CNI_PLUGINS=(bridge host-local loopback portmap)

# complete DIR FILE...: every FILE is an executable in DIR.
complete() {
  local d=$1 f
  shift
  for f in "$@"; do [ -x "$d/$f" ] || return 1; done
}

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
    apt-get update -q >&2
    apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
  fi
}

# download URL FILE: the fast path; fails at once without the internet.
download() {
  [ "${OFFLINE:-}" = 1 ] && return 1
  log "trying $1"
  curl -fsSL --connect-timeout 5 --max-time 300 -o "$2" "$1" 2>/dev/null
}

# gomodule DIR MODULE VERSION PKG...: a throwaway module in DIR requiring
# MODULE@VERSION, with a tools.go importing PKG... so `go mod tidy` resolves
# exactly what the commands need.
gomodule() {
  local dir=$1 mod=$2 ver=$3 p
  shift 3
  mkdir -p "$dir"
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

get_runc() {
  complete "$RUNC_DIR" runc && return 0
  mkdir -p "$RUNC_DIR"
  if download "https://github.com/opencontainers/runc/releases/download/$RUNC_VERSION/runc.$arch" "$RUNC_DIR/runc.tmp"; then
    chmod +x "$RUNC_DIR/runc.tmp" && mv "$RUNC_DIR/runc.tmp" "$RUNC_DIR/runc"
  else
    rm -f "$RUNC_DIR/runc.tmp"
    log "runc: no download; building $RUNC_VERSION from the Go module proxy (cgo, seccomp; about a minute)"
    debian_packages gcc libc6-dev pkg-config libseccomp-dev
    local dir=$work/node-runc-$RUNC_VERSION
    gomodule "$dir" github.com/opencontainers/runc "$RUNC_VERSION" github.com/opencontainers/runc
    (cd "$dir" && CGO_ENABLED=1 go build -mod=mod -trimpath -tags "seccomp urfave_cli_no_docs" \
      -ldflags "-s -w" -o "$RUNC_DIR/runc.tmp" github.com/opencontainers/runc)
    mv "$RUNC_DIR/runc.tmp" "$RUNC_DIR/runc"
  fi
  log "runc: ready at $RUNC_DIR/runc ($("$RUNC_DIR/runc" --version | head -1))"
}

get_containerd() {
  local bins=(containerd containerd-shim-runc-v2 ctr) b
  complete "$CONTAINERD_DIR" "${bins[@]}" && return 0
  mkdir -p "$CONTAINERD_DIR"
  local tmp
  tmp=$(mktemp -d)
  if download "https://github.com/containerd/containerd/releases/download/$CONTAINERD_VERSION/containerd-static-${CONTAINERD_VERSION#v}-$os-$arch.tar.gz" "$tmp/c.tgz" &&
    tar -xzf "$tmp/c.tgz" -C "$tmp"; then
    for b in "${bins[@]}"; do install -m 0755 "$tmp/bin/$b" "$CONTAINERD_DIR/$b"; done
  else
    log "containerd: no download; building $CONTAINERD_VERSION from the Go module proxy (static; about 3 minutes the first time)"
    local dir=$work/node-containerd-$CONTAINERD_VERSION m=github.com/containerd/containerd/v2
    gomodule "$dir" "$m" "$CONTAINERD_VERSION" "$m/cmd/containerd" "$m/cmd/ctr" "$m/cmd/containerd-shim-runc-v2"
    local ld="-s -w -X $m/version.Version=$CONTAINERD_VERSION -X $m/version.Package=github.com/containerd/containerd/v2"
    for b in "${bins[@]}"; do
      log "containerd: building $b"
      local tags="no_btrfs no_devmapper no_zfs urfave_cli_no_docs osusergo netgo"
      [ "$b" = containerd-shim-runc-v2 ] && tags="$tags no_grpc"
      (cd "$dir" && CGO_ENABLED=0 go build -mod=mod -trimpath -tags "$tags" -ldflags "$ld" \
        -o "$tmp/$b" "$m/cmd/$b")
    done
    for b in "${bins[@]}"; do mv "$tmp/$b" "$CONTAINERD_DIR/$b"; done
  fi
  rm -rf "$tmp"
  log "containerd: ready in $CONTAINERD_DIR ($("$CONTAINERD_DIR/containerd" --version))"
}

get_cni() {
  complete "$CNI_DIR" "${CNI_PLUGINS[@]}" && return 0
  mkdir -p "$CNI_DIR"
  local tmp p
  tmp=$(mktemp -d)
  if download "https://github.com/containernetworking/plugins/releases/download/$CNI_PLUGINS_VERSION/cni-plugins-$os-$arch-$CNI_PLUGINS_VERSION.tgz" "$tmp/c.tgz" &&
    tar -xzf "$tmp/c.tgz" -C "$tmp"; then
    for p in "${CNI_PLUGINS[@]}"; do install -m 0755 "$tmp/$p" "$CNI_DIR/$p"; done
  else
    log "CNI plugins: no download; building $CNI_PLUGINS_VERSION from the Go module proxy (static; under a minute)"
    local dir=$work/node-cni-plugins-$CNI_PLUGINS_VERSION m=github.com/containernetworking/plugins
    local pkgs=("$m/plugins/main/bridge" "$m/plugins/ipam/host-local" "$m/plugins/main/loopback" "$m/plugins/meta/portmap")
    gomodule "$dir" "$m" "$CNI_PLUGINS_VERSION" "${pkgs[@]}"
    for p in "${pkgs[@]}"; do
      (cd "$dir" && CGO_ENABLED=0 go build -mod=mod -trimpath \
        -ldflags "-s -w -X $m/pkg/utils/buildversion.BuildVersion=$CNI_PLUGINS_VERSION" \
        -o "$tmp/$(basename "$p")" "$p")
    done
    for p in "${CNI_PLUGINS[@]}"; do mv "$tmp/$p" "$CNI_DIR/$p"; done
  fi
  rm -rf "$tmp"
  log "CNI plugins: ready in $CNI_DIR (${CNI_PLUGINS[*]})"
}

# What kubelet, kube-proxy and the bridge plugin call on the host.
debian_packages iptables conntrack socat ||
  log "WARNING: the real node needs iptables, conntrack and socat"
get_runc
get_containerd
get_cni
printf 'RUNC_DIR=%s\nCONTAINERD_DIR=%s\nCNI_DIR=%s\n' "$RUNC_DIR" "$CONTAINERD_DIR" "$CNI_DIR"
