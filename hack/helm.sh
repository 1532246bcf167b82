#!/usr/bin/env bash
# Gets helm into DEST (bin/helm; make helm), offline when it must.
#
#   hack/helm.sh DEST
#
# Through get_or_build (hack/get.sh) at HELM_VERSION (hack/versions.env):
# already there, else the release download (get.helm.sh, checked against its
# .sha256sum; skipped with OFFLINE=1), else built from the Go module proxy:
# go install helm.sh/helm/v3/cmd/helm (CGO_ENABLED=0, -trimpath; about 1.5
# minutes with empty Go caches on 2 cores) with the ldflags of Helm's own
# Makefile: its version, and the Kubernetes version of its client-go as the
# default for `helm template` and `helm lint` (left unset it is 1.20, below the
# chart's kubeVersion).
set -euo pipefail
# shellcheck source=hack/lib.sh
. "$(dirname "$0")/lib.sh"

dest=${1:?usage: $0 DEST}
os=$(go env GOOS) arch=$(go env GOARCH)

# build_helm OUT
build_helm() {
  local out=$1 gomod cgo minor ldflags p gobin
  gobin=$(dirname "$out")/gobin
  gomod=$(cd "$(dirname "$out")" && go mod download -json "helm.sh/helm/v3@$HELM_VERSION" |
    sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",*$/\1/p') || return 1
  cgo=$(awk '$1 == "k8s.io/client-go" { print $2; exit }' "$gomod")
  minor=$(echo "$cgo" | cut -d. -f2)
  [ -n "$minor" ] || { log "helm: cannot read k8s.io/client-go from $gomod"; return 1; }
  ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
  for p in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
    ldflags="$ldflags -X $p.k8sVersionMajor=1 -X $p.k8sVersionMinor=$minor"
  done
  (cd "$(dirname "$out")" && CGO_ENABLED=0 GOBIN="$gobin" go install -trimpath -ldflags "$ldflags" \
    "helm.sh/helm/v3/cmd/helm@$HELM_VERSION") && mv "$gobin/helm" "$out"
}

get_or_build helm "$dest" "$HELM_VERSION" \
  --url "https://get.helm.sh/helm-$HELM_VERSION-$os-$arch.tar.gz" --member "$os-$arch/helm" \
  --sha256-url "https://get.helm.sh/helm-$HELM_VERSION-$os-$arch.tar.gz.sha256sum" \
  --module helm.sh/helm/v3 --build build_helm --time "about 1.5 minutes with empty Go caches"
