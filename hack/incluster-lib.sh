# shellcheck shell=bash
# shellcheck disable=SC2034 # settings used by the scripts that source this file
# What the in-cluster paths share (hack/kind.sh on kind, hack/real.sh on the
# local cluster with a real node): budgetgate installed from an install.yaml,
# with Prometheus and the demo checkout service (test/demo/kind) beside it in
# the cluster. Source it after hack/lib.sh, with KUBECONFIG_FILE pointing at the
# cluster and OPERATOR_LOGS_HINT set; do not run it.

OPERATOR_NS=budgetgate-system
OPERATOR_DEPLOY=deployment/budgetgate-controller-manager
OPERATOR_PODS=control-plane=controller-manager

# The images the workloads of the e2e suite (test/e2e/e2e_test.go) and of the
# demo story name. They come from no registry: on kwok's fake nodes no image is
# pulled, but kind and the real node run real containers, so each name is a tag
# of the demo service image, loaded into the node. (Their tags are not
# "latest", so imagePullPolicy defaults to IfNotPresent and nothing is pulled.)
# A workload image missing here leaves its pods in ErrImagePull and makes
# `kubectl rollout status` time out.
SHOP_IMAGES=(
  # e2e suite
  registry.example/shop/checkout:v1
  registry.example/shop/checkout:v2
  registry.example/shop/checkout:v3
  registry.example/shop/checkout:v1-hotfix
  registry.example/shop/checkout:v1-hotfix-dev
  registry.example/shop/ledger:v1
  registry.example/shop/ledger:v2
  registry.example/shop/ledger:v2-while-down
  # demo story
  registry.example/shop/checkout:1.4.0
  registry.example/shop/checkout:1.5.0
  registry.example/shop/checkout:1.5.1-hotfix
  registry.example/shop/checkout:1.6.0
)

# The demo service's admin endpoint, through the API server's service proxy
# (the API server reaches pod IPs; `kubectl create --raw` POSTs).
ERROR_RATE_PATH=/api/v1/namespaces/demo/services/checkout-traffic:http/proxy/admin/error-rate
PROMETHEUS_PROXY=/api/v1/namespaces/monitoring/services/prometheus-operated:web/proxy

# post_error_rate RATE: sets the demo service's error rate; prints the new rate.
post_error_rate() { k create --raw "$ERROR_RATE_PATH?value=$1" -f - </dev/null; }

# checkout_scraped: Prometheus has scraped the demo service (up{job="checkout"} == 1).
checkout_scraped() {
  local out
  out=$(k get --raw "$PROMETHEUS_PROXY/api/v1/query?query=up%7Bjob%3D%22checkout%22%7D") &&
    grep -q '"value":\[[^]]*,"1"\]' <<<"$out"
}

# webhook_reachable: a server-side dry run of an ErrorBudgetPolicy passes, which
# its fail-closed webhook allows only when the API server reaches a replica.
webhook_reachable() { k apply --dry-run=server -f "$ROOT/test/demo/kind/webhook-probe.yaml"; }

# operator_logs [TAIL]: the manager replicas' logs.
operator_logs() { k -n "$OPERATOR_NS" logs -l "$OPERATOR_PODS" --prefix --tail="${1:-80}" --max-log-requests=10; }

# wait_rollout NAMESPACE DEPLOYMENT TIMEOUT: waits until every replica is
# Ready; on timeout shows the pods and the last events.
wait_rollout() {
  local ns=$1 deploy=$2 timeout=$3
  log "waiting for $ns/${deploy#deployment/} to be Ready"
  if ! k -n "$ns" rollout status "$deploy" --timeout="${timeout}s" >&2; then
    k -n "$ns" get pods -o wide >&2 || true
    k -n "$ns" get events --sort-by=.lastTimestamp 2>/dev/null | tail -15 >&2 || true
    die "$ns/${deploy#deployment/} is not Ready after ${timeout}s (pods and events above)"
  fi
}

# incluster_install MANIFESTS INSTALL_YAML TIMEOUT FIELD_MANAGER: applies the
# output of the function MANIFESTS (Prometheus and the demo service) and
# INSTALL_YAML, then waits until everything is Ready, the API server reaches
# budgetgate's webhook and Prometheus scrapes the demo service.
incluster_install() {
  local manifests=$1 install=$2 timeout=$3 manager=$4
  [ -f "$install" ] || die "no $install"
  # Prometheus and the demo service first: their start overlaps with the
  # manager's. The workload webhook fails open, so the order is safe.
  log "deploying Prometheus (monitoring/prometheus, Service prometheus-operated) and the demo service (demo/checkout-traffic)"
  "$manifests" | k apply --server-side --force-conflicts --field-manager="$manager" -f - >/dev/null ||
    die "applying the Prometheus and demo service manifests failed (see above)"

  log "installing budgetgate from ${install#"$ROOT"/}"
  k apply --server-side --force-conflicts --field-manager="$manager" -f "$install" >/dev/null ||
    die "applying $install failed (see above)"
  k wait --for=condition=Established --timeout=60s crd/servicelevelobjectives.slo.budgetgate.dev \
    crd/errorbudgetpolicies.slo.budgetgate.dev crd/freezeexceptions.slo.budgetgate.dev >/dev/null ||
    die "budgetgate's CRDs are not Established"

  wait_rollout "$OPERATOR_NS" "$OPERATOR_DEPLOY" "$timeout"
  wait_rollout monitoring deployment/prometheus "$timeout"
  wait_rollout demo deployment/checkout-traffic "$timeout"
  wait_for 120 "the API server to reach budgetgate's webhook (Service $OPERATOR_NS/budgetgate-webhook-service)" \
    "$OPERATOR_LOGS_HINT" webhook_reachable
  ok "budgetgate is installed and its webhook answers"
  wait_for 120 "Prometheus to scrape the demo service (up{job=\"checkout\"})" \
    "See: kubectl --kubeconfig $KUBECONFIG_FILE get --raw '$PROMETHEUS_PROXY/api/v1/targets'" checkout_scraped
  ok "Prometheus scrapes the demo service every second"
}

# installer_for IMAGE PROMETHEUS_ADDRESS: prints the committed dist/install.yaml
# with the manager image replaced by IMAGE and, when given, the manager's
# --prometheus-address by PROMETHEUS_ADDRESS. The image's tag must not be
# "latest", so that the kubelet uses the loaded image and never pulls.
installer_for() {
  local image=$1 prometheus=$2 src=$ROOT/dist/install.yaml
  [ "$(grep -c '^ *image: ' "$src")" = 1 ] || die "dist/install.yaml no longer runs exactly one image: update installer_for in hack/incluster-lib.sh"
  case $image in *:latest) die "image $image: use a tag other than latest, or the kubelet pulls it" ;; esac
  if [ -n "$prometheus" ]; then
    sed -e "s|^\( *\)image: .*\$|\1image: $image|" \
      -e "s|--prometheus-address=http://prometheus-operated.monitoring.svc:9090|--prometheus-address=$prometheus|" "$src"
  else
    sed -e "s|^\( *\)image: .*\$|\1image: $image|" "$src"
  fi
}
