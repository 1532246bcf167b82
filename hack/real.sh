#!/usr/bin/env bash
# budgetgate for real on the local cluster with a real node (docs/real-node.md):
# its own images, installed from dist/install.yaml, beside an in-cluster
# Prometheus scraping the demo service.
#
#   hack/real.sh STEP...     steps run in the order given:
#     up         the cluster with one real node (hack/real-node-up.sh); exit 3
#                when this machine cannot run one
#     load       build the manager, demo service and Prometheus images without
#                Docker (make image-manager image-demo-app image-prometheus, for
#                this machine's platform) and import them into the node, the
#                demo service image also under every workload image name the
#                e2e suite and the demo use (SHOP_IMAGES)
#     installer  dist/install.yaml with the loaded manager image and the
#                Prometheus Service's fixed ClusterIP (the cluster runs no DNS),
#                in .cluster/.../real/install.yaml
#     install    apply Prometheus + the demo service (test/demo/real) and the
#                installer; wait until all are Ready, the API server reaches the
#                webhook through its Service and Prometheus scrapes the demo service
#     e2e        up load installer, run the e2e suite with E2E_CLUSTER=real (its
#                environment runs `install` and checks what only a real cluster
#                shows), then down unless REAL_KEEP=1
#     down       stop the cluster and restore the host (hack/real-node-down.sh),
#                then check the host is as it was (hack/real-node-check-clean.sh)
#
# State under $BUDGETGATE_STATE (.cluster by default; the e2e suite uses
# .cluster/e2e-real); settings in hack/real-node-lib.sh.
set -euo pipefail
# shellcheck source=hack/real-node-lib.sh
. "$(dirname "$0")/real-node-lib.sh"
# shellcheck source=hack/incluster-lib.sh
. "$(dirname "$0")/incluster-lib.sh"

TIMEOUT=${REAL_TIMEOUT:-300}
MANAGER_IMAGE=budgetgate:e2e
DEMO_APP_IMAGE=budgetgate-demo-app:e2e
PROMETHEUS_IMAGE=prom/prometheus:v3.16.0 # the name test/demo/kind uses
PROMETHEUS_SERVICE_IP=203.0.113.90       # test/demo/real
INSTALL_YAML=${INSTALL_YAML:-$RS/install.yaml}
OPERATOR_LOGS_HINT="See: kubectl --kubeconfig $KUBECONFIG_FILE -n $OPERATOR_NS logs -l $OPERATOR_PODS --prefix"

# full NAME: the reference containerd stores for an image name the kubelet is given.
full() {
  case $1 in
    *.*/* | localhost/*) echo "$1" ;;
    */*) echo "docker.io/$1" ;;
    *) echo "docker.io/library/$1" ;;
  esac
}

# tag SOURCE TARGET...: more names for a loaded image, pinned like it.
tag() {
  local src t
  src=$(full "$1")
  shift
  for t in "$@"; do
    ctr_ images tag --force "$src" "$(full "$t")" >/dev/null || die "ctr images tag $src $t failed"
    ctr_ images label "$(full "$t")" io.cri-containerd.pinned=pinned >/dev/null || true
  done
}

step_up() { "$ROOT/hack/real-node-up.sh"; }

step_load() {
  [ -S "$CONTAINERD_SOCK" ] || die "the real node is not up ($CONTAINERD_SOCK); run hack/real.sh up first"
  local platform
  platform=linux/$(go env GOARCH)
  log "building the manager, demo service and Prometheus images for $platform (hack/image, no Docker)"
  "${MAKE:-make}" -C "$ROOT" --no-print-directory image-manager image-demo-app image-prometheus \
    IMAGE_PLATFORMS="$platform" >&2 || die "building the images failed (see above)"
  "$ROOT/hack/real-node-load.sh" "$IMAGES_DIR/manager.tar" "$IMAGES_DIR/demo-app.tar" "$IMAGES_DIR/prometheus.tar"
  local tag_version repo
  tag_version=$(sed -n 's/^IMAGE_TAG ?= //p' "$ROOT/mk/image.mk")
  repo=$(sed -n 's/^IMAGE_REPO ?= //p' "$ROOT/mk/image.mk")
  tag "$repo/manager:$tag_version" "$MANAGER_IMAGE"
  tag "$repo/demo-app:$tag_version" "$DEMO_APP_IMAGE" "${SHOP_IMAGES[@]}"
  tag "$repo/prometheus:v$PROMETHEUS_RELEASE" "$PROMETHEUS_IMAGE"
  ok "images loaded: $MANAGER_IMAGE, $DEMO_APP_IMAGE (also as ${#SHOP_IMAGES[@]} registry.example/shop/* tags), $PROMETHEUS_IMAGE"
}

step_installer() {
  mkdir -p "$RS"
  installer_for "$MANAGER_IMAGE" "http://$PROMETHEUS_SERVICE_IP:9090" >"$INSTALL_YAML" || die "writing $INSTALL_YAML failed"
  ok "installer for image $MANAGER_IMAGE: ${INSTALL_YAML#"$ROOT"/}"
}

real_manifests() { k kustomize "$ROOT/test/demo/real"; }

step_install() {
  [ -f "$KUBECONFIG_FILE" ] || die "no kubeconfig at $KUBECONFIG_FILE: run hack/real.sh up first"
  [ -f "$INSTALL_YAML" ] || die "no $INSTALL_YAML: run hack/real.sh installer first"
  incluster_install real_manifests "$INSTALL_YAML" "$TIMEOUT" budgetgate-real
}

step_e2e() {
  local rc=0
  "$ROOT/hack/real.sh" up load installer || rc=$?
  if [ "$rc" -eq 0 ]; then
    log "running the e2e suite against the real node (E2E_CLUSTER=real; the suite runs hack/real.sh install)"
    (cd "$ROOT" && E2E_CLUSTER=real E2E_KUBECONFIG="$KUBECONFIG_FILE" E2E_KUBECTL="$KUBECTL" \
      E2E_STATE="$RS/run" E2E_INSTALL_YAML="$INSTALL_YAML" \
      go test -tags=e2e ./test/e2e/ -v -count=1 -timeout "${E2E_TIMEOUT:-40m}" -ginkgo.v) || rc=$?
  fi
  if [ "${REAL_KEEP:-}" = 1 ]; then
    warn "REAL_KEEP=1: leaving the cluster up (kubeconfig $KUBECONFIG_FILE); hack/real.sh down stops it"
  else
    step_down || rc=$?
  fi
  return "$rc"
}

step_down() {
  "$ROOT/hack/real-node-down.sh"
  "$ROOT/hack/real-node-check-clean.sh"
}

[ $# -gt 0 ] || die "usage: $0 up|load|installer|install|e2e|down ..."
for step in "$@"; do
  case $step in
    up | load | installer | install | e2e | down) "step_$step" ;;
    *) die "unknown step $step; usage: $0 up|load|installer|install|e2e|down ..." ;;
  esac
done
