#!/usr/bin/env bash
# Gets prometheus and promtool into DIR, offline when it must.
#
#   hack/prometheus.sh DIR
#
# Tries the release download first; falls back to building both commands from the
# Go module proxy (github.com/prometheus/prometheus), which works without the
# internet. The HTTP API works without the embedded UI assets.
set -euo pipefail

PROMETHEUS_VERSION=${PROMETHEUS_VERSION:-v0.316.0}       # Go module version
PROMETHEUS_RELEASE=${PROMETHEUS_RELEASE:-3.16.0}         # matching release tag

here=$(cd "$(dirname "$0")/.." && pwd)
dest=${1:?usage: $0 DIR}
mkdir -p "$dest"
dest=$(cd "$dest" && pwd)
work="$here/bin/.build/prometheus-$PROMETHEUS_VERSION"
os=$(go env GOOS) arch=$(go env GOARCH)
log() { printf '==> %s\n' "$*" >&2; }

if [ -x "$dest/prometheus" ] && [ -x "$dest/promtool" ]; then exit 0; fi

if [ "${OFFLINE:-}" != "1" ]; then
  url="https://github.com/prometheus/prometheus/releases/download/v$PROMETHEUS_RELEASE/prometheus-$PROMETHEUS_RELEASE.$os-$arch.tar.gz"
  log "prometheus: trying $url"
  tmp=$(mktemp -d)
  if curl -fsSL --connect-timeout 5 --max-time 300 -o "$tmp/p.tgz" "$url" 2>/dev/null &&
    tar -xzf "$tmp/p.tgz" -C "$tmp" --strip-components=1; then
    install -m 0755 "$tmp/prometheus" "$tmp/promtool" "$dest/"
    rm -rf "$tmp"
    log "prometheus: ready at $dest"
    exit 0
  fi
  rm -rf "$tmp"
  log "prometheus: download failed, building from the Go module proxy instead"
fi

mkdir -p "$work"
if [ ! -f "$work/go.sum" ]; then
  cat >"$work/go.mod" <<GOMOD
module budgetgate.local/prometheus

go $(go env GOVERSION | sed 's/^go//; s/\.[0-9]*$//')

require github.com/prometheus/prometheus $PROMETHEUS_VERSION
GOMOD
  cat >"$work/tools.go" <<'GO'
//go:build tools

package tools

import (
	_ "github.com/prometheus/prometheus/cmd/prometheus"
	_ "github.com/prometheus/prometheus/cmd/promtool"
)
GO
  log "prometheus: resolving $PROMETHEUS_VERSION modules"
  (cd "$work" && go mod tidy -e >&2 || true)
fi
for cmd in prometheus promtool; do
  log "$cmd: building $PROMETHEUS_VERSION (about 4 minutes on 2 cores the first time)"
  (cd "$work" && CGO_ENABLED=0 go build -mod=mod -o "$dest/$cmd" "github.com/prometheus/prometheus/cmd/$cmd")
done
log "prometheus: ready at $dest"
