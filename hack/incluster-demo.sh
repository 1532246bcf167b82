#!/usr/bin/env bash
# The demo story with budgetgate running in the cluster, from its own image:
#
#   hack/incluster-demo.sh real   `make demo CLUSTER=real`: the local cluster with
#                                 a real node (hack/real.sh; docs/real-node.md)
#   hack/incluster-demo.sh kind   `make demo-kind`: a kind cluster, for machines
#                                 with Docker (hack/kind.sh; docs/kind.md; written
#                                 without a Docker engine and never run here)
#
# The same story as `make demo` (hack/demo.sh), with everything inside the
# cluster instead of local processes: `hack/<real|kind>.sh up load installer
# install` brings up the cluster, builds and loads the images, and installs
# dist/install.yaml (two manager replicas in budgetgate-system, running as
# their ServiceAccount, rotating their own webhook certificate) next to a real
# Prometheus (monitoring/prometheus) scraping the demo service
# (demo/checkout-traffic, 50 requests/s of its own traffic) every second. Then
# it creates namespace shop (test/demo/kind/story/shop.yaml: the checkout
# Deployment, whose pods really run, and users dev and alice), applies the demo
# policy and the checkout SLO (test/demo/story/, shared with hack/demo.sh), and
# tells the story of hack/story.sh: healthy traffic → errors injected (through
# the API server's service proxy to the demo service) → burn rate crosses the
# policy → freeze → a routine release denied → rollback and scaling pass → an
# authorised hotfix passes → errors stop → freeze lifts → the routine release
# goes through. Everything is left running; `make demo-down CLUSTER=real` (or
# `make demo-kind-down`) removes it. Knobs: DEMO_ERROR_RATE (0.3),
# DEMO_FREEZE_TIMEOUT (240), DEMO_LIFT_TIMEOUT (300).
set -euo pipefail
PLATFORM=${1:?usage: $0 real|kind}
case $PLATFORM in
  real)
    # shellcheck source=hack/real-node-lib.sh
    . "$(dirname "$0")/real-node-lib.sh"
    # shellcheck source=hack/incluster-lib.sh
    . "$(dirname "$0")/incluster-lib.sh"
    OPERATOR_LOGS_HINT="See: kubectl --kubeconfig $KUBECONFIG_FILE -n $OPERATOR_NS logs -l $OPERATOR_PODS --prefix"
    WHERE="on the real node"
    DOWN="make demo-down CLUSTER=real"
    ;;
  kind)
    # shellcheck source=hack/kind-lib.sh
    . "$(dirname "$0")/kind-lib.sh"
    WHERE="in kind cluster $KIND_CLUSTER_NAME"
    DOWN="make demo-kind-down"
    ;;
  *) echo "usage: $0 real|kind" >&2 && exit 2 ;;
esac

IMAGE=registry.example/shop/checkout
ERROR_RATE=${DEMO_ERROR_RATE:-0.3}
FREEZE_TIMEOUT=${DEMO_FREEZE_TIMEOUT:-240}
LIFT_TIMEOUT=${DEMO_LIFT_TIMEOUT:-300}
LOGS_HINT=$OPERATOR_LOGS_HINT
WAIT_LOGS_HINT="$OPERATOR_LOGS_HINT; also kubectl -n monitoring logs deployment/prometheus"
STORY_INTRO="checkout runs 1.5.0 $WHERE (its image is a tag of the demo service image). The traffic Prometheus measures comes from demo/checkout-traffic, the same program sending itself 50 requests/s; Prometheus scrapes its http_requests_total{job=\"checkout\",code} every second."
# shellcheck source=hack/story.sh
. "$(dirname "$0")/story.sh"
story_start
set_error_rate() {
  printf '%s$ kubectl create --raw %s -f - </dev/null%s\n' "$B" "'$ERROR_RATE_PATH?value=$1'" "$N"
  local out
  out=$(post_error_rate "$1") || die "setting the error rate failed (see above). See also: kubectl -n demo logs deployment/checkout-traffic"
  printf '    error rate now %s\n' "$out"
}

rollout() { # DEPLOYMENT WHAT: waits for a rollout in shop
  k -n shop rollout status "deployment/$1" --timeout=120s >/dev/null ||
    die "$2 did not roll out; see: kubectl --kubeconfig $KUBECONFIG_FILE -n shop get pods,events"
}

heading "Setting up: $PLATFORM cluster, images, budgetgate, Prometheus and the checkout service"
"$ROOT/hack/$PLATFORM.sh" up load installer install

# A rerun starts the story afresh: no namespace shop, and Prometheus and the
# demo service restarted, so that no earlier incident is in the hour's window.
if k get namespace shop >/dev/null 2>&1; then
  log "removing the previous run's namespace shop; restarting Prometheus and the demo service"
  k delete namespace shop --wait=true --timeout=120s >/dev/null || die "could not delete namespace shop"
  k -n monitoring rollout restart deployment/prometheus >/dev/null || die "could not restart Prometheus"
  k -n demo rollout restart deployment/checkout-traffic >/dev/null || die "could not restart the demo service"
  k -n monitoring rollout status deployment/prometheus --timeout=180s >/dev/null || die "Prometheus did not restart"
  k -n demo rollout status deployment/checkout-traffic --timeout=180s >/dev/null || die "the demo service did not restart"
  wait_for 120 "Prometheus to scrape the demo service again" "See: kubectl -n monitoring logs deployment/prometheus" checkout_scraped
fi
post_error_rate 0 >/dev/null || die "could not reset the demo service's error rate"

log "namespace shop: Deployment checkout, users dev (edit) and alice (edit + release-during-freeze)"
k create -f "$ROOT/test/demo/kind/story/shop.yaml" >/dev/null || die "creating namespace shop failed (see above)"
rollout checkout "Deployment checkout"
# Release 1.5.0 is what runs when the story starts; 1.4.0 is in the history to roll back to.
k -n shop set image deployment/checkout checkout=$IMAGE:1.5.0 >/dev/null
rollout checkout "Deployment checkout 1.5.0"
ok "setup done in $(($(now) - demo_start))s"

tell_story

cat <<EOF

${B}Look around${N} (everything is still running $WHERE; ${B}$DOWN${N} removes it):
  export KUBECONFIG=$KUBECONFIG_FILE PATH=$(dirname "$KUBECTL"):\$PATH
  kubectl get slo -n shop -o yaml              # budget, burn rates, rules, freeze
  kubectl describe deployment -n shop checkout
  kubectl -n $OPERATOR_NS logs -l $OPERATOR_PODS --prefix
  kubectl create --raw '$ERROR_RATE_PATH?value=0.3' -f - </dev/null   # start another incident
  kubectl -n monitoring port-forward svc/prometheus-operated 9090   # then http://localhost:9090 (Prometheus UI)
EOF
