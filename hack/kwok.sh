#!/usr/bin/env bash
# Gets kwok and kwokctl into DIR, offline when it must.
#
#   hack/kwok.sh DIR
#
# How it works: each of kwok (the controller that fakes nodes and pods) and
# kwokctl (the CLI that runs a cluster from local binaries) goes through
# get_or_build (hack/get.sh) at KWOK_VERSION (hack/versions.env): already
# there, else the GitHub release binary (which fails fast without the internet;
# kwok publishes no checksums to check it against; skipped with OFFLINE=1),
# else `go install sigs.k8s.io/kwok/cmd/<name>@$KWOK_VERSION` from the Go module
# proxy (CGO_ENABLED=0, -ldflags "-s -w"; about 3 minutes on 2 cores the first
# time, seconds from the Go build cache) into a scratch GOBIN, moved into place
# so that an interrupted build leaves nothing behind.
set -euo pipefail
# shellcheck source=hack/lib.sh
. "$(dirname "$0")/lib.sh"

dest=${1:?usage: $0 DIR}
os=$(go env GOOS) arch=$(go env GOARCH)

for name in kwok kwokctl; do
  get_or_build "$name" "$dest/$name" "$KWOK_VERSION" \
    --url "https://github.com/kubernetes-sigs/kwok/releases/download/$KWOK_VERSION/$name-$os-$arch" \
    --go-pkg "sigs.k8s.io/kwok/cmd/$name@$KWOK_VERSION" --ldflags "-s -w" \
    --env CGO_ENABLED=0 --env GOFLAGS=-mod=mod \
    --time "about 3 minutes on 2 cores the first time"
done
