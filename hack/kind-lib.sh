# shellcheck shell=bash
# shellcheck disable=SC2034 # settings used by the scripts that source this file
# Shared settings and helpers of the kind path (hack/kind.sh, hack/incluster-demo.sh);
# source it, do not run it. It sources hack/lib.sh (logging, wait_for, k) and
# points `k` at the kind cluster's kubeconfig.
#
# NOTE: the kind path was written on a machine without a Docker engine and has
# never been run there; see docs/kind.md.
#
# Knobs (environment):
#   KIND_CLUSTER_NAME  kind cluster name (budgetgate; the e2e suite uses budgetgate-e2e)
#   KIND_VERSION       kind release `go install`ed into bin/ (hack/versions.env)
#   KIND_BIN           a kind binary to use instead of bin/kind
#   KIND_NODE_IMAGE    node image (default: the one of the kind release, kindest/node:v1.37.0)
#   KIND_IMG           manager image built from Dockerfile (budgetgate:e2e)
#   DEMO_APP_IMAGE     demo service image built from Dockerfile.demo-app (budgetgate-demo-app:e2e)
#   PROMETHEUS_IMAGE   Prometheus image, pulled by the nodes (prom/prometheus:v$PROMETHEUS_RELEASE)
#   BASE_IMAGE         Go builder image of both Dockerfiles (golang:1.26)
#   INSTALL_YAML       the installer to apply (.cluster/kind/NAME/install.yaml: dist/install.yaml with KIND_IMG)
#   KIND_KUBECONFIG    kubeconfig of the cluster (.cluster/kind/NAME/kubeconfig)
#   KIND_KUBECTL       kubectl to use ($K8S_BIN/kubectl, bin/k8s/<K8S_VERSION>-OS-ARCH, fetched or built)

# shellcheck source=hack/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

KIND_CLUSTER_NAME=${KIND_CLUSTER_NAME:-budgetgate}
# Empty: kind's own default for its release. kind v0.33.0 defaults to
# kindest/node:v1.37.0 (pinned by digest in its source), the Kubernetes minor
# this repository targets (K8S_VERSION elsewhere, a later patch). No kindest/node
# image of that patch is known here (its list lives in kind's release notes,
# which this machine cannot read); build one with `kind build node-image` if
# you need the exact patch.
KIND_NODE_IMAGE=${KIND_NODE_IMAGE:-}
KIND_BIN=${KIND_BIN:-$ROOT/bin/kind}
KIND_STATE=${KIND_STATE:-$STATE/kind/$KIND_CLUSTER_NAME}
KIND_KUBECONFIG=${KIND_KUBECONFIG:-$KIND_STATE/kubeconfig}
# lib.sh's k() runs kubectl with $KUBECONFIG_FILE: the kind cluster here.
KUBECONFIG_FILE=$KIND_KUBECONFIG
KUBECTL=${KIND_KUBECTL:-$KUBECTL}
KIND_IMG=${KIND_IMG:-budgetgate:e2e}
DEMO_APP_IMAGE=${DEMO_APP_IMAGE:-budgetgate-demo-app:e2e}
# The image test/demo/kind/prometheus.yaml names (replaced when overridden);
# internal/testbin's tests check that it follows hack/versions.env.
DEFAULT_PROMETHEUS_IMAGE=prom/prometheus:v$PROMETHEUS_RELEASE
PROMETHEUS_IMAGE=${PROMETHEUS_IMAGE:-$DEFAULT_PROMETHEUS_IMAGE}
INSTALL_YAML=${INSTALL_YAML:-$KIND_STATE/install.yaml}
CONTAINER_TOOL=${CONTAINER_TOOL:-docker}

# kind runs the pinned kind binary.
kind() { "$KIND_BIN" "$@"; }

# need_docker: fails with a clear message unless a container engine answers.
need_docker() {
  command -v "$CONTAINER_TOOL" >/dev/null 2>&1 ||
    die "the kind path needs Docker ('$CONTAINER_TOOL' not found). Without Docker use the local kwok cluster: make demo / make test-e2e"
  "$CONTAINER_TOOL" info >/dev/null 2>&1 ||
    die "the kind path needs a running Docker engine ('$CONTAINER_TOOL info' failed). Without one use the local kwok cluster: make demo / make test-e2e"
}

# ensure_kind: bin/kind at KIND_VERSION (get_or_build: go install from the Go
# module proxy), unless KIND_BIN names another binary.
ensure_kind() {
  if [ "$KIND_BIN" != "$ROOT/bin/kind" ]; then
    [ -x "$KIND_BIN" ] || command -v "$KIND_BIN" >/dev/null 2>&1 || die "KIND_BIN=$KIND_BIN is not executable"
    return
  fi
  get_or_build kind "$KIND_BIN" "$KIND_VERSION" --go-pkg "sigs.k8s.io/kind@$KIND_VERSION" ||
    die "getting kind $KIND_VERSION failed (see above)"
}

# ensure_kubectl: kubectl K8S_VERSION in bin/k8s (downloaded, else built).
ensure_kubectl() {
  if [ -n "${KIND_KUBECTL:-}" ]; then
    [ -x "$KUBECTL" ] || die "KIND_KUBECTL=$KUBECTL is not executable"
    return
  fi
  "$ROOT/hack/k8s-binaries.sh" "$K8S_BIN" kubectl
}

kind_cluster_exists() { kind get clusters 2>/dev/null | grep -qx "$KIND_CLUSTER_NAME"; }

# shellcheck source=hack/incluster-lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/incluster-lib.sh"
OPERATOR_LOGS_HINT="See: kubectl --kubeconfig $KIND_KUBECONFIG -n $OPERATOR_NS logs -l $OPERATOR_PODS --prefix"
