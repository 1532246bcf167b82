#!/usr/bin/env bash
# Gets prometheus and promtool into DIR, offline when it must.
#
#   hack/prometheus.sh DIR
#
# Each goes through get_or_build (hack/get.sh) at PROMETHEUS_VERSION
# (hack/versions.env): already there, else the release tarball of
# PROMETHEUS_RELEASE (checked against its sha256sums.txt; skipped with
# OFFLINE=1), else built from the Go module proxy: cmd/prometheus and
# cmd/promtool of github.com/prometheus/prometheus in a throwaway module under
# bin/.build/prometheus-$PROMETHEUS_VERSION, which works without the internet.
# The HTTP API works without the embedded UI assets.
set -euo pipefail
# shellcheck source=hack/lib.sh
. "$(dirname "$0")/lib.sh"

dest=${1:?usage: $0 DIR}
work="$ROOT/bin/.build/prometheus-$PROMETHEUS_VERSION"
os=$(go env GOOS) arch=$(go env GOARCH)

# build_prometheus CMD OUT
build_prometheus() {
  local cmd=$1 out=$2
  if [ ! -f "$work/go.sum" ]; then
    mkdir -p "$work" || return 1
    cat >"$work/go.mod" <<GOMOD || return 1
module budgetgate.local/prometheus

go $(go env GOVERSION | sed 's/^go//; s/\.[0-9]*$//')

require github.com/prometheus/prometheus $PROMETHEUS_VERSION
GOMOD
    cat >"$work/tools.go" <<'GO' || return 1
//go:build tools

package tools

import (
	_ "github.com/prometheus/prometheus/cmd/prometheus"
	_ "github.com/prometheus/prometheus/cmd/promtool"
)
GO
    log "prometheus: resolving $PROMETHEUS_VERSION modules"
    (cd "$work" && { go mod tidy -e >&2 || true; })
  fi
  # remove_all_sd leaves out the service discoveries (AWS, Azure, GCE,
  # Kubernetes, ...): every configuration budgetgate runs uses static targets,
  # and their SDKs are most of a cold build. The release download keeps them all.
  (cd "$work" && CGO_ENABLED=0 go build -mod=mod -tags remove_all_sd -o "$out" "github.com/prometheus/prometheus/cmd/$cmd")
}

release="https://github.com/prometheus/prometheus/releases/download/v$PROMETHEUS_RELEASE"
for cmd in prometheus promtool; do
  get_or_build "$cmd" "$dest/$cmd" "$PROMETHEUS_VERSION" \
    --url "$release/prometheus-$PROMETHEUS_RELEASE.$os-$arch.tar.gz" \
    --member "prometheus-$PROMETHEUS_RELEASE.$os-$arch/$cmd" \
    --sha256-url "$release/sha256sums.txt" \
    --module github.com/prometheus/prometheus --build "build_prometheus $cmd" \
    --time "about 4 minutes on 2 cores the first time"
done
