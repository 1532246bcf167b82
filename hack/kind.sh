#!/usr/bin/env bash
# The kind path, for machines with Docker (docs/kind.md):
#
#   hack/kind.sh STEP...     steps run in the order given:
#     up         create the kind cluster $KIND_CLUSTER_NAME (budgetgate) unless it
#                exists; write its kubeconfig to .cluster/kind/NAME/kubeconfig
#     load       docker build the manager (Dockerfile) and demo service
#                (Dockerfile.demo-app) images and `kind load` them, plus the
#                demo service image under every workload image name the e2e
#                suite and the demo use (SHOP_IMAGES in hack/kind-lib.sh)
#     installer  dist/install.yaml with the manager image $KIND_IMG, in .cluster/kind/NAME/install.yaml
#     install    apply Prometheus + the demo service (test/demo/kind) and
#                dist/install.yaml, unpatched; wait until all are Ready, the API
#                server reaches the webhook and Prometheus scrapes the demo service
#     e2e        up load installer, run the e2e suite with E2E_CLUSTER=kind (its
#                kind environment runs `install`), then down unless KIND_KEEP=1
#     down       delete the kind cluster and .cluster/kind/NAME
#     kubeconfig print the kubeconfig path
#
# How it works: kind (go install sigs.k8s.io/kind@$KIND_VERSION into bin/)
# creates a cluster of Docker containers from test/demo/kind/cluster.yaml; the
# images built here never leave the machine: `kind load docker-image` copies
# them into the nodes' containerd. budgetgate is installed exactly as a user
# would install it, from dist/install.yaml: its manager runs in
# budgetgate-system as its own ServiceAccount (so its RBAC is exercised for
# real), rotates its own webhook certificate, and finds Prometheus at its
# default address http://prometheus-operated.monitoring.svc:9090, which is the
# Service test/demo/kind deploys. Settings: hack/kind-lib.sh.
#
# NOTE: written on a machine without a Docker engine; never run there. See
# docs/kind.md.
set -euo pipefail
# shellcheck source=hack/kind-lib.sh
. "$(dirname "$0")/kind-lib.sh"

TIMEOUT=${KIND_TIMEOUT:-300}

step_up() {
  need_docker
  ensure_kind
  ensure_kubectl
  mkdir -p "$KIND_STATE"
  if kind_cluster_exists; then
    ok "kind cluster $KIND_CLUSTER_NAME already exists"
  else
    local args=(create cluster --name "$KIND_CLUSTER_NAME" --config "$ROOT/test/demo/kind/cluster.yaml"
      --kubeconfig "$KIND_KUBECONFIG" --wait "${TIMEOUT}s")
    if [ -n "$KIND_NODE_IMAGE" ]; then args+=(--image "$KIND_NODE_IMAGE"); fi
    log "creating kind cluster $KIND_CLUSTER_NAME (node image ${KIND_NODE_IMAGE:-of kind $KIND_VERSION}; pulls it the first time)"
    kind "${args[@]}" || die "kind create cluster failed (see above)"
  fi
  # Always rewritten: `make demo-down` deletes .cluster/, not the kind cluster.
  kind get kubeconfig --name "$KIND_CLUSTER_NAME" >"$KIND_KUBECONFIG.tmp" ||
    die "kind get kubeconfig --name $KIND_CLUSTER_NAME failed"
  chmod 600 "$KIND_KUBECONFIG.tmp"
  mv "$KIND_KUBECONFIG.tmp" "$KIND_KUBECONFIG"
  k wait --for=condition=Ready nodes --all --timeout="${TIMEOUT}s" >/dev/null ||
    die "the nodes of kind cluster $KIND_CLUSTER_NAME are not Ready; see: kind export logs --name $KIND_CLUSTER_NAME"
  ok "kind cluster $KIND_CLUSTER_NAME: $(k get --raw /version | sed -n 's/.*"gitVersion": *"\([^"]*\)".*/\1/p'), $(k get nodes --no-headers | wc -l | tr -d ' ') nodes; kubeconfig ${KIND_KUBECONFIG#"$ROOT"/}"
}

step_load() {
  need_docker
  ensure_kind
  local build=("$CONTAINER_TOOL" build)
  if [ -n "${BASE_IMAGE:-}" ]; then build+=(--build-arg "BASE_IMAGE=$BASE_IMAGE"); fi
  # No provenance attestation where BuildKit would add one: with Docker's
  # containerd image store, images carrying attestation manifests are a known
  # source of `kind load docker-image` import failures.
  if "$CONTAINER_TOOL" build --help 2>/dev/null | grep -q -- '--provenance'; then build+=(--provenance=false); fi
  log "building the manager image $KIND_IMG (Dockerfile)"
  "${build[@]}" -t "$KIND_IMG" -f "$ROOT/Dockerfile" "$ROOT" || die "building $KIND_IMG failed (see above)"
  log "building the demo service image $DEMO_APP_IMAGE (Dockerfile.demo-app)"
  "${build[@]}" -t "$DEMO_APP_IMAGE" -f "$ROOT/Dockerfile.demo-app" "$ROOT" || die "building $DEMO_APP_IMAGE failed (see above)"
  local img
  for img in "${SHOP_IMAGES[@]}"; do "$CONTAINER_TOOL" tag "$DEMO_APP_IMAGE" "$img"; done
  log "loading the images into kind cluster $KIND_CLUSTER_NAME (the demo service image also as ${#SHOP_IMAGES[@]} registry.example/shop/* tags)"
  kind load docker-image --name "$KIND_CLUSTER_NAME" "$KIND_IMG" "$DEMO_APP_IMAGE" "${SHOP_IMAGES[@]}" ||
    die "kind load docker-image failed (see above)"
  ok "images loaded"
}

step_installer() {
  # The committed dist/install.yaml, with the manager image loaded into kind.
  mkdir -p "$KIND_STATE"
  installer_for "$KIND_IMG" "" >"$KIND_STATE/install.yaml" || die "writing $KIND_STATE/install.yaml failed"
  INSTALL_YAML=$KIND_STATE/install.yaml
  ok "installer for image $KIND_IMG: ${INSTALL_YAML#"$ROOT"/}"
}

# demo_manifests: test/demo/kind rendered, with PROMETHEUS_IMAGE and
# DEMO_APP_IMAGE in place of the defaults.
demo_manifests() {
  local out
  out=$(k kustomize "$ROOT/test/demo/kind") || die "kubectl kustomize test/demo/kind failed"
  grep -q "image: $DEFAULT_PROMETHEUS_IMAGE\$" <<<"$out" ||
    die "test/demo/kind does not use $DEFAULT_PROMETHEUS_IMAGE: set its image to PROMETHEUS_RELEASE of hack/versions.env"
  grep -q 'image: budgetgate-demo-app:e2e$' <<<"$out" ||
    die "test/demo/kind no longer uses budgetgate-demo-app:e2e: update hack/kind.sh"
  sed -e "s|image: $DEFAULT_PROMETHEUS_IMAGE\$|image: $PROMETHEUS_IMAGE|" \
    -e "s|image: budgetgate-demo-app:e2e\$|image: $DEMO_APP_IMAGE|" <<<"$out"
}

step_install() {
  ensure_kubectl
  [ -f "$KIND_KUBECONFIG" ] || die "no kubeconfig at $KIND_KUBECONFIG: run hack/kind.sh up first"
  [ -f "$INSTALL_YAML" ] || die "no $INSTALL_YAML: run hack/kind.sh installer first"
  grep -q "image: $KIND_IMG\$" "$INSTALL_YAML" ||
    warn "${INSTALL_YAML#"$ROOT"/} does not run image $KIND_IMG (rebuild it with: hack/kind.sh installer)"

  incluster_install demo_manifests "$INSTALL_YAML" "$TIMEOUT" budgetgate-kind
}

step_e2e() {
  local rc=0
  # The setup steps run as a child (with its own set -e and die), so that the
  # cluster is deleted below whatever failed.
  "$ROOT/hack/kind.sh" up load installer || rc=$?
  if [ "$rc" -eq 0 ]; then
    log "running the e2e suite against kind cluster $KIND_CLUSTER_NAME (E2E_CLUSTER=kind; the suite runs hack/kind.sh install)"
    (cd "$ROOT" && E2E_CLUSTER=kind E2E_KUBECONFIG="$KIND_KUBECONFIG" E2E_KUBECTL="$KUBECTL" \
      E2E_STATE="$KIND_STATE/run" E2E_INSTALL_YAML="$KIND_STATE/install.yaml" \
      go test -tags=e2e ./test/e2e/ -v -count=1 -timeout "${E2E_TIMEOUT:-40m}" -ginkgo.v) || rc=$?
  fi
  if [ "${KIND_KEEP:-}" = 1 ]; then
    warn "KIND_KEEP=1: leaving kind cluster $KIND_CLUSTER_NAME (kubeconfig $KIND_KUBECONFIG); hack/kind.sh down deletes it"
  else
    step_down
  fi
  return "$rc"
}

step_down() {
  if [ -x "$KIND_BIN" ] || command -v "$KIND_BIN" >/dev/null 2>&1; then
    if kind_cluster_exists; then
      log "deleting kind cluster $KIND_CLUSTER_NAME"
      kind delete cluster --name "$KIND_CLUSTER_NAME" || die "kind delete cluster failed (see above)"
      ok "kind cluster $KIND_CLUSTER_NAME deleted"
    else
      ok "no kind cluster $KIND_CLUSTER_NAME to delete"
    fi
  else
    warn "no kind binary at $KIND_BIN: nothing to delete with"
  fi
  case $KIND_STATE in
    / | "$ROOT" | "$HOME" | "") die "refusing to delete $KIND_STATE" ;;
  esac
  rm -rf "$KIND_STATE"
}

[ $# -gt 0 ] || die "usage: $0 up|load|installer|install|e2e|down|kubeconfig ..."
for step in "$@"; do
  case $step in
    up | load | installer | install | e2e | down) "step_$step" ;;
    kubeconfig) printf '%s\n' "$KIND_KUBECONFIG" ;;
    *) die "unknown step $step; usage: $0 up|load|installer|install|e2e|down|kubeconfig ..." ;;
  esac
done
