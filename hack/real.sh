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
#     install    apply Prometheus + the demo service (test/demo/real; their
#                fixed ClusterIPs moved into REAL_SERVICE_CIDR when that is set)
#                and the installer; wait until all are Ready, the API server
#                reaches the webhook through its Service and Prometheus scrapes
#                the demo service
#     helm       swap the installer for the Helm chart (charts/budgetgate): delete
#                what install.yaml created except its Namespace and CRDs (webhook
#                configurations first), `helm install` the chart with the loaded
#                image, wait until the API server reaches its webhook
#     helm-uninstall  `helm uninstall`, then check that no budgetgate webhook is
#                left and that the CRDs and every SLO are still there
#     e2e        up load installer, run the e2e suite with E2E_CLUSTER=real (its
#                environment runs `install` and checks what only a real cluster
#                shows), then helm, the install checks again against the chart's
#                release (E2E_INSTALLED_BY=helm), helm-uninstall, and down unless
#                REAL_KEEP=1
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
PROMETHEUS_IMAGE=prom/prometheus:v$PROMETHEUS_RELEASE # the name test/demo/kind uses (internal/testbin checks it)
# test/demo/real gives the Prometheus and demo Services fixed ClusterIPs (no
# DNS in this cluster): the 32nd and 33rd address of the default Service range.
# A cluster with another range (REAL_SERVICE_CIDR) gets the same places in its
# own, substituted in the kustomize output (real_manifests).
DEMO_PROMETHEUS_IP=$(cidr_nth "$DEFAULT_SERVICE_CIDR" 32)
DEMO_SERVICE_IP=$(cidr_nth "$DEFAULT_SERVICE_CIDR" 33)
PROMETHEUS_SERVICE_IP=$(cidr_nth "$SERVICE_CIDR" 32 || true)
CHECKOUT_SERVICE_IP=$(cidr_nth "$SERVICE_CIDR" 33 || true)
INSTALL_YAML=${INSTALL_YAML:-$RS/install.yaml}
HELM=${HELM:-$ROOT/bin/helm}
CHART_DIR=$ROOT/charts/budgetgate
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

# service_ips: the Service range holds the fixed ClusterIPs.
service_ips() {
  if [ -z "$PROMETHEUS_SERVICE_IP" ] || [ -z "$CHECKOUT_SERVICE_IP" ]; then
    die "the Service range $SERVICE_CIDR (REAL_SERVICE_CIDR) is too small for the fixed ClusterIPs of test/demo/real (its 32nd and 33rd address): use a /26 or larger"
  fi
}

step_installer() {
  service_ips
  mkdir -p "$RS"
  installer_for "$MANAGER_IMAGE" "http://$PROMETHEUS_SERVICE_IP:9090" >"$INSTALL_YAML" || die "writing $INSTALL_YAML failed"
  ok "installer for image $MANAGER_IMAGE: ${INSTALL_YAML#"$ROOT"/}"
}

# real_manifests: test/demo/real, its fixed ClusterIPs (and Prometheus's
# scrape target) moved from the default Service range into SERVICE_CIDR.
real_manifests() {
  local out
  service_ips
  out=$(k kustomize "$ROOT/test/demo/real") || die "kubectl kustomize test/demo/real failed"
  if ! grep -q "clusterIP: $DEMO_PROMETHEUS_IP\$" <<<"$out" || ! grep -q "clusterIP: $DEMO_SERVICE_IP\$" <<<"$out" ||
    ! grep -q "$DEMO_SERVICE_IP:8099" <<<"$out"; then
    die "test/demo/real no longer gives Prometheus $DEMO_PROMETHEUS_IP and the demo service $DEMO_SERVICE_IP (scrape target $DEMO_SERVICE_IP:8099): update it or hack/real.sh"
  fi
  sed -e "s/\b${DEMO_PROMETHEUS_IP//./\\.}\b/$PROMETHEUS_SERVICE_IP/g" \
    -e "s/\b${DEMO_SERVICE_IP//./\\.}\b/$CHECKOUT_SERVICE_IP/g" <<<"$out"
}

step_install() {
  [ -f "$KUBECONFIG_FILE" ] || die "no kubeconfig at $KUBECONFIG_FILE: run hack/real.sh up first"
  [ -f "$INSTALL_YAML" ] || die "no $INSTALL_YAML: run hack/real.sh installer first"
  incluster_install real_manifests "$INSTALL_YAML" "$TIMEOUT" budgetgate-real
}

HELM_RELEASE=budgetgate

helm_() { "$HELM" --kubeconfig "$KUBECONFIG_FILE" "$@"; }

# install_objects: KIND/NAME NAMESPACE of every object in install.yaml, as the
# API server names them.
install_objects() {
  k get -f "$INSTALL_YAML" --ignore-not-found \
    -o jsonpath='{range .items[*]}{.kind}/{.metadata.name} {.metadata.namespace}{"\n"}{end}'
}

step_helm() {
  [ -f "$KUBECONFIG_FILE" ] || die "no kubeconfig at $KUBECONFIG_FILE: run hack/real.sh up first"
  [ -f "$INSTALL_YAML" ] || die "no $INSTALL_YAML: run hack/real.sh installer first"
  service_ips
  "${MAKE:-make}" -C "$ROOT" --no-print-directory helm >&2 || die "getting bin/helm failed (see above)"
  local objects kind_name ns start
  start=$(date +%s)
  objects=$(install_objects) || die "listing the objects of $INSTALL_YAML failed"
  # The switch docs/install.md describes: webhook configurations first, so that
  # nothing calls a webhook that is going away; the Namespace (with its pod
  # security label) and the CRDs (with every SLO) stay.
  log "removing the install of ${INSTALL_YAML#"$ROOT"/} but its Namespace and CRDs, webhook configurations first"
  # Then the Deployment, waiting for its pods to end before their RBAC goes:
  # a leader that can no longer write its Lease cannot hand it over, and the
  # next leader waits out the lease duration.
  for pass in webhooks manager rest; do
    while read -r kind_name ns; do
      [ -n "$kind_name" ] || continue
      case ${kind_name%%/*} in
        Namespace | CustomResourceDefinition) continue ;;
        ValidatingWebhookConfiguration | MutatingWebhookConfiguration) [ "$pass" = webhooks ] || continue ;;
        Deployment) [ "$pass" = manager ] || continue ;;
        *) [ "$pass" = rest ] || continue ;;
      esac
      k delete "$kind_name" ${ns:+-n "$ns"} --ignore-not-found --wait=false >/dev/null ||
        die "deleting $kind_name${ns:+ in $ns} failed"
    done <<<"$objects"
    if [ "$pass" = manager ]; then
      k -n "$OPERATOR_NS" wait --for=delete pod -l "$OPERATOR_PODS" --timeout=120s >/dev/null ||
        die "the installer's manager pods are still there after 120s"
    fi
  done
  # Cluster-scoped leftovers would make Helm refuse to own them.
  if k get validatingwebhookconfigurations,mutatingwebhookconfigurations -o name | grep -q budgetgate; then
    die "budgetgate webhook configurations are left after removing the installer"
  fi

  local repo=${MANAGER_IMAGE%:*} tag=${MANAGER_IMAGE##*:}
  log "helm install $HELM_RELEASE ${CHART_DIR#"$ROOT"/} -n $OPERATOR_NS (image $MANAGER_IMAGE, Prometheus http://$PROMETHEUS_SERVICE_IP:9090)"
  helm_ install "$HELM_RELEASE" "$CHART_DIR" -n "$OPERATOR_NS" \
    --set image.repository="$(full "$repo")" --set image.tag="$tag" \
    --set prometheus.address="http://$PROMETHEUS_SERVICE_IP:9090" \
    --wait --timeout "${TIMEOUT}s" >&2 || {
    k -n "$OPERATOR_NS" get pods -o wide >&2 || true
    die "helm install failed (pods above). $OPERATOR_LOGS_HINT"
  }
  wait_for 120 "the API server to reach the chart's webhook (Service $OPERATOR_NS/budgetgate-webhook-service)" \
    "$OPERATOR_LOGS_HINT" webhook_reachable
  ok "budgetgate installed by Helm in $(($(date +%s) - start))s, from removing the installer to the webhook answering"
}

step_helm_uninstall() {
  local slos_before slos_after
  slos_before=$(k get slo -A -o name | sort) || die "listing SLOs failed"
  log "helm uninstall $HELM_RELEASE -n $OPERATOR_NS"
  helm_ uninstall "$HELM_RELEASE" -n "$OPERATOR_NS" --wait --timeout "${TIMEOUT}s" >&2 || die "helm uninstall failed"
  if k get validatingwebhookconfigurations,mutatingwebhookconfigurations -o name | grep budgetgate >&2; then
    die "budgetgate webhook configurations are left after helm uninstall (above)"
  fi
  k get crd servicelevelobjectives.slo.budgetgate.dev errorbudgetpolicies.slo.budgetgate.dev \
    freezeexceptions.slo.budgetgate.dev >/dev/null || die "helm uninstall removed budgetgate's CRDs"
  slos_after=$(k get slo -A -o name | sort) || die "listing SLOs failed"
  [ "$slos_before" = "$slos_after" ] || die "helm uninstall changed the SLOs: before [$slos_before], after [$slos_after]"
  ok "helm uninstall left no webhook behind and kept the CRDs and all $(grep -c . <<<"$slos_after") SLOs"
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
  if [ "$rc" -eq 0 ]; then
    "$ROOT/hack/real.sh" helm || rc=$?
  fi
  if [ "$rc" -eq 0 ]; then
    log "running the install checks again, against the Helm release (E2E_INSTALLED_BY=helm)"
    (cd "$ROOT" && E2E_CLUSTER=real E2E_INSTALLED_BY=helm E2E_KUBECONFIG="$KUBECONFIG_FILE" E2E_KUBECTL="$KUBECTL" \
      E2E_STATE="$RS/run-helm" go test -tags=e2e ./test/e2e/ -v -count=1 -timeout 15m -ginkgo.v \
      -ginkgo.focus "as installed") || rc=$?
  fi
  if [ "$rc" -eq 0 ]; then
    "$ROOT/hack/real.sh" helm-uninstall || rc=$?
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

USAGE="usage: $0 up|load|installer|install|helm|helm-uninstall|e2e|down ..."
[ $# -gt 0 ] || die "$USAGE"
for step in "$@"; do
  case $step in
    up | load | installer | install | helm | helm-uninstall | e2e | down) "step_${step//-/_}" ;;
    *) die "unknown step $step; $USAGE" ;;
  esac
done
