#!/usr/bin/env bash
# Gets kwok and kwokctl into DIR, offline when it must.
#
#   hack/kwok.sh DIR
#
# How it works: for each of kwok (the controller that fakes nodes and pods) and
# kwokctl (the CLI that runs a cluster from local binaries), it first tries the
# GitHub release download, which fails fast without the internet, and falls back
# to `go install sigs.k8s.io/kwok/cmd/<name>@$KWOK_VERSION` from the Go module
# proxy with GOBIN=DIR (about 3 minutes on 2 cores the first time, seconds from
# the Go build cache). Existing binaries are kept, so reruns are instant.
# OFFLINE=1 skips the download attempt.
set -euo pipefail

KWOK_VERSION=${KWOK_VERSION:-v0.8.0}

dest=${1:?usage: $0 DIR}
mkdir -p "$dest"
dest=$(cd "$dest" && pwd)
os=$(go env GOOS) arch=$(go env GOARCH)
log() { printf '==> %s\n' "$*" >&2; }

for name in kwok kwokctl; do
  if [ -x "$dest/$name" ]; then continue; fi
  if [ "${OFFLINE:-}" != "1" ]; then
    url="https://github.com/kubernetes-sigs/kwok/releases/download/$KWOK_VERSION/$name-$os-$arch"
    log "$name: trying $url"
    if curl -fsSL --connect-timeout 5 --max-time 120 -o "$dest/$name.tmp" "$url" 2>/dev/null; then
      chmod +x "$dest/$name.tmp" && mv "$dest/$name.tmp" "$dest/$name"
      log "$name: ready at $dest/$name"
      continue
    fi
    rm -f "$dest/$name.tmp"
    log "$name: download failed, building from the Go module proxy instead"
  fi
  log "$name: go install sigs.k8s.io/kwok/cmd/$name@$KWOK_VERSION (about 3 minutes on 2 cores the first time)"
  tmp=$(mktemp -d)
  # Install into a scratch GOBIN and move into place, so an interrupted build
  # never leaves a half-written binary that later runs would trust.
  CGO_ENABLED=0 GOBIN="$tmp" GOFLAGS=-mod=mod go install \
    -ldflags "-s -w" \
    "sigs.k8s.io/kwok/cmd/$name@$KWOK_VERSION"
  mv "$tmp/$name" "$dest/$name"
  rm -rf "$tmp"
  log "$name: ready at $dest/$name"
done
