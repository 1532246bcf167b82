# shellcheck shell=bash
# shellcheck disable=SC2034 # settings used by the scripts that source this file
# Shared settings and helpers of the kind path (hack/kind.sh, hack/kind-demo.sh);
# source it, do not run it. It sources hack/lib.sh (logging, wait_for, k) and
# points `k` at the kind cluster's kubeconfig.
#
# NOTE: the kind path was written on a machine without a Docker engine and has
# never been run there; see docs/kind.md.
#
# Knobs (environment):
#   KIND_CLUSTER_NAME  kind cluster name (budgetgate; the e2e suite uses budgetgate-e2e)
#   KIND_VERSION       kind release `go install`ed into bin/ (v0.33.0)
#   KIND_BIN           a kind binary to use instead of bin/kind
#   KIND_NODE_IMAGE    node image (default: the one of the kind release, kindest/node:v1.37.0)
#   KIND_IMG           manager image built from Dockerfile (budgetgate:e2e)
#   DEMO_APP_IMAGE     demo service image built from Dockerfile.demo-app (budgetgate-demo-app:e2e)
#   PROMETHEUS_IMAGE   Prometheus image, pulled by the nodes (prom/prometheus:v3.16.0)
#   BASE_IMAGE         Go builder image of both Dockerfiles (golang:1.26)
#   INSTALL_YAML       the installer to apply (dist/install.yaml)
#   KIND_KUBECONFIG    kubeconfig of the cluster (.cluster/kind/NAME/kubeconfig)
#   KIND_KUBECTL       kubectl to use (bin/k8s/1.37.2-OS-ARCH/kubectl, fetched or built)

# shellcheck source=hack/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

KIND_VERSION=${KIND_VERSION:-v0.33.0}
KIND_CLUSTER_NAME=${KIND_CLUSTER_NAME:-budgetgate}
# Empty: kind's own default for its release. kind v0.33.0 defaults to
# kindest/node:v1.37.0 (pinned by digest in its source), the Kubernetes minor
# this repository targets (v1.37.2 elsewhere). No kindest/node:v1.37.2 image is
# known here (its list lives in kind's release notes, which this machine cannot
# read); build one with `kind build node-image` if you need the exact patch.
KIND_NODE_IMAGE=${KIND_NODE_IMAGE:-}
KIND_BIN=${KIND_BIN:-$ROOT/bin/kind}
KIND_STATE=${KIND_STATE:-$STATE/kind/$KIND_CLUSTER_NAME}
KIND_KUBECONFIG=${KIND_KUBECONFIG:-$KIND_STATE/kubeconfig}
# lib.sh's k() runs kubectl with $KUBECONFIG_FILE: the kind cluster here.
KUBECONFIG_FILE=$KIND_KUBECONFIG
KUBECTL=${KIND_KUBECTL:-$KUBECTL}
KIND_IMG=${KIND_IMG:-budgetgate:e2e}
DEMO_APP_IMAGE=${DEMO_APP_IMAGE:-budgetgate-demo-app:e2e}
# Must match the image in test/demo/kind/prometheus.yaml (replaced when overridden).
DEFAULT_PROMETHEUS_IMAGE=prom/prometheus:v3.16.0
PROMETHEUS_IMAGE=${PROMETHEUS_IMAGE:-$DEFAULT_PROMETHEUS_IMAGE}
INSTALL_YAML=${INSTALL_YAML:-$ROOT/dist/install.yaml}
CONTAINER_TOOL=${CONTAINER_TOOL:-docker}

OPERATOR_NS=budgetgate-system
OPERATOR_DEPLOY=deployment/budgetgate-controller-manager
OPERATOR_PODS=control-plane=controller-manager

# The images the workloads of the e2e suite (test/e2e/e2e_test.go) and of the
# demo story (hack/kind-demo.sh) name. They come from no registry: on kwok's
# fake nodes no image is pulled, but kind runs real containers, so each name is
# a tag of the demo service image, loaded into the nodes. (Their tags are not
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

# kind runs the pinned kind binary.
kind() { "$KIND_BIN" "$@"; }

# need_docker: fails with a clear message unless a container engine answers.
need_docker() {
  command -v "$CONTAINER_TOOL" >/dev/null 2>&1 ||
    die "the kind path needs Docker ('$CONTAINER_TOOL' not found). Without Docker use the local kwok cluster: make demo / make test-e2e"
  "$CONTAINER_TOOL" info >/dev/null 2>&1 ||
    die "the kind path needs a running Docker engine ('$CONTAINER_TOOL info' failed). Without one use the local kwok cluster: make demo / make test-e2e"
}

# ensure_kind: bin/kind at KIND_VERSION (go install from the Go module proxy),
# unless KIND_BIN names another binary.
ensure_kind() {
  if [ "$KIND_BIN" != "$ROOT/bin/kind" ]; then
    [ -x "$KIND_BIN" ] || command -v "$KIND_BIN" >/dev/null 2>&1 || die "KIND_BIN=$KIND_BIN is not executable"
    return
  fi
  local versioned=$ROOT/bin/kind-$KIND_VERSION
  if [ ! -x "$versioned" ]; then
    log "kind: go install sigs.k8s.io/kind@$KIND_VERSION into bin/"
    mkdir -p "$ROOT/bin/.kind-$KIND_VERSION"
    GOBIN="$ROOT/bin/.kind-$KIND_VERSION" go install "sigs.k8s.io/kind@$KIND_VERSION" ||
      die "go install sigs.k8s.io/kind@$KIND_VERSION failed (see above)"
    mv "$ROOT/bin/.kind-$KIND_VERSION/kind" "$versioned"
    rmdir "$ROOT/bin/.kind-$KIND_VERSION"
  fi
  ln -sf "$versioned" "$ROOT/bin/kind"
}

# ensure_kubectl: kubectl v1.37.2 in bin/k8s (downloaded, else built).
ensure_kubectl() {
  if [ -n "${KIND_KUBECTL:-}" ]; then
    [ -x "$KUBECTL" ] || die "KIND_KUBECTL=$KUBECTL is not executable"
    return
  fi
  "$ROOT/hack/k8s-binaries.sh" "$K8S_BIN" kubectl
}

kind_cluster_exists() { kind get clusters 2>/dev/null | grep -qx "$KIND_CLUSTER_NAME"; }

# The demo service's admin endpoint, through the API server's service proxy
# (the API server reaches pod IPs in kind; `kubectl create --raw` POSTs).
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
OPERATOR_LOGS_HINT="See: kubectl --kubeconfig $KIND_KUBECONFIG -n $OPERATOR_NS logs -l $OPERATOR_PODS --prefix"
