#!/usr/bin/env bash
# Fails when generating would change a committed file: the CRDs, the manager's
# RBAC and webhook configurations (controller-gen), the deepcopy code,
# dist/install.yaml (kustomize) and the Grafana dashboard in config/grafana
# (hack/dashboard), or when go fmt would reformat a Go file.
#
#   hack/verify-generated.sh        (make verify; part of make test)
#
# How it works: it copies the sources git knows about (committed or not,
# ignored files excluded) to a scratch directory, runs the same generators
# `make manifests generate build-installer dashboards` run there, and diffs
# the result against the working tree, so it never rewrites anything itself.
# Fix a failure with `make manifests generate build-installer dashboards fmt`
# and commit.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
: "${CONTROLLER_GEN:?set CONTROLLER_GEN}" "${KUSTOMIZE:?set KUSTOMIZE}" "${IMG:?set IMG}" "${YEAR:?set YEAR}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cd "$root"
git ls-files -co --exclude-standard -z | xargs -0 cp --parents -t "$tmp" 2>/dev/null || true
cd "$tmp"
"$CONTROLLER_GEN" rbac:roleName=manager-role webhook paths="./..."
"$CONTROLLER_GEN" crd paths="./api/..." output:crd:artifacts:config=config/crd/bases
"$CONTROLLER_GEN" object:headerFile="hack/boilerplate.go.txt",year="$YEAR" paths="./..."
(cd config/manager && "$KUSTOMIZE" edit set image controller="$IMG")
mkdir -p dist
"$KUSTOMIZE" build config/default >dist/install.yaml
go run ./hack/dashboard >/dev/null

status=0
for path in config api dist/install.yaml; do
  if ! diff -ru "$root/$path" "$tmp/$path" >"$tmp/diff" 2>&1; then
    echo "==> generated files in $path are out of date (make manifests generate build-installer dashboards, then commit):" >&2
    head -60 "$tmp/diff" >&2
    status=1
  fi
done
unformatted=$(cd "$root" && git ls-files -co --exclude-standard '*.go' | xargs gofmt -l)
if [ -n "$unformatted" ]; then
  echo "==> go fmt would change these files (make fmt, then commit):" >&2
  echo "$unformatted" >&2
  status=1
fi
[ "$status" -eq 0 ] && echo "==> generated files and formatting are up to date" >&2
exit "$status"
