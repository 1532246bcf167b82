#!/usr/bin/env bash
# `make demo`: budgetgate's whole story on a laptop, from a fresh machine.
#
# How it works: it brings up the local kwok cluster (hack/cluster-up.sh, which
# gets or builds every binary into bin/), builds the operator (bin/manager) and
# the demo "checkout" service (bin/demo-app), and starts three local processes
# with logs and pid files in .cluster/: the demo service (it serves
# http_requests_total{code} and generates its own traffic), a real Prometheus
# scraping it every second (test/demo/prometheus.yml, data in .cluster/), and
# the operator (kubeconfig .cluster/kubeconfig, webhook on https://127.0.0.1
# with a certificate made by hack/local-webhook, which also turns
# config/webhook/*.yaml into URL webhook configurations the local API server
# can call). It installs the CRDs, webhooks and the release-during-freeze
# ClusterRole, deploys the checkout Deployment (run by kwok's fake nodes) with
# users dev (edit) and alice (edit + release-during-freeze), applies a
# checkout SLO (99% over 1h) with a demo policy whose windows are minutes, and
# narrates: healthy traffic → errors injected → burn rate crosses the policy →
# freeze → a routine release denied → rollback and scaling pass → an
# authorised hotfix passes → errors stop → freeze lifts → the routine release
# goes through. Every wait has a timeout and names the log to read. Everything
# is left running; `make demo-down` removes it all. Ports default to 9090
# (Prometheus), 8099 (demo app), 9443 (webhook), 8080/8081 (operator metrics/
# probes); busy ones are replaced by free ones, recorded in .cluster/ports.env.
# Knobs: MANAGER=path runs a prebuilt operator instead of building ./cmd;
# DEMO_ERROR_RATE (0.3), DEMO_FREEZE_TIMEOUT (240) and DEMO_LIFT_TIMEOUT (300);
# DEMO_SETUP_ONLY=1 stops after the setup, without telling the story
# (hack/gitops-check.sh tells its own on the same setup).
set -euo pipefail
# shellcheck source=hack/lib.sh
. "$(dirname "$0")/lib.sh"

IMAGE=registry.example/shop/checkout
ERROR_RATE=${DEMO_ERROR_RATE:-0.3}
FREEZE_TIMEOUT=${DEMO_FREEZE_TIMEOUT:-240}
LIFT_TIMEOUT=${DEMO_LIFT_TIMEOUT:-300}
LOGS_HINT="See $S/manager.log and $S/kwok/clusters/$CLUSTER_NAME/logs/kube-apiserver.log"
WAIT_LOGS_HINT="See $S/manager.log (operator), $S/prometheus.log and $S/demo-app.log"
STORY_INTRO="checkout runs 1.5.0 on kwok's fake nodes; the real process answering /checkout is bin/demo-app on this machine, sending itself 50 requests/s. Prometheus scrapes http_requests_total{job=\"checkout\",code} every second."
# shellcheck source=hack/story.sh
. "$(dirname "$0")/story.sh"
story_start
rollout() { # DEPLOYMENT WHAT: waits for a rollout in shop
  k -n shop rollout status "deployment/$1" --timeout=60s >/dev/null ||
    die "$2 did not roll out; see $S/kwok/clusters/$CLUSTER_NAME/logs/"
}
app() { curl -fsS --max-time 5 "$@"; }
set_error_rate() {
  printf '%s$ curl -X POST "http://127.0.0.1:%s/admin/error-rate?value=%s"%s\n' "$B" "$DEMO_APP_PORT" "$1" "$N"
  app -X POST "http://127.0.0.1:$DEMO_APP_PORT/admin/error-rate?value=$1" | sed 's/^/    error rate now /'
}
# load_rules SLO: loads the PrometheusRule the operator wrote for SLO into the
# demo's Prometheus, as the Prometheus Operator would (its spec is a rule file:
# JSON is YAML), and has Prometheus reload.
load_rules() {
  k -n shop get prometheusrule "budgetgate-$1" -o jsonpath='{.spec}' >"$STATE/rules/$1.json" &&
    app -X POST "$PROM_URL/-/reload" >/dev/null
}
# kb ARGS: shows and runs the kubectl plugin, `kubectl budgetgate ARGS`.
kb() {
  printf '%s$ kubectl budgetgate %s%s\n' "$B" "$(shown "$@")" "$N"
  "$ROOT/bin/kubectl-budgetgate" --kubeconfig "$KUBECONFIG_FILE" "$@" 2>&1 | sed 's/^/    /'
  return "${PIPESTATUS[0]}"
}
# simulate_story: replays the demo policy over the story's own history.
simulate_story() {
  kb simulate checkout-availability -n shop --prometheus "$PROM_URL" --since "$1" --step 10s --width 90 ||
    die "kubectl budgetgate simulate failed"
  "$ROOT/bin/kubectl-budgetgate" --kubeconfig "$KUBECONFIG_FILE" simulate checkout-availability -n shop \
    --prometheus "$PROM_URL" --since "$1" --step 10s -o svg --file "$STATE/simulate.svg" | sed 's/^/    /'
}
# alerts_firing: the SLO alerts Prometheus fires, one "name severity" per line.
alerts_firing() {
  app -G "$PROM_URL/api/v1/query" --data-urlencode 'query=ALERTS{alertstate="firing",sloth_slo="checkout-availability"}' |
    grep -o '"alertname":"[^"]*"\|"severity":"[^"]*"' | cut -d'"' -f4 | paste -d' ' - - || true
}


heading "Setting up: cluster, Prometheus, the checkout service and the operator"
"$ROOT/hack/cluster-up.sh"

# MANAGER=path runs a prebuilt operator instead of building ./cmd.
MANAGER=${MANAGER:-}
if [ -z "$MANAGER" ]; then
  log "building bin/manager"
  (cd "$ROOT" && go build -o bin/manager ./cmd) || die "go build ./cmd failed (see above)"
  MANAGER=$ROOT/bin/manager
fi
log "building bin/demo-app"
(cd "$ROOT" && go build -o bin/demo-app ./cmd/demo-app) || die "go build ./cmd/demo-app failed (see above)"
(cd "$ROOT" && go build -o bin/kubectl-budgetgate ./cmd/kubectl-budgetgate) || die "go build ./cmd/kubectl-budgetgate failed (see above)"
"$ROOT/hack/prometheus.sh" "$PROM_BIN"

# A rerun starts the story afresh: stop what an earlier run started.
for p in manager demo-app prometheus; do stop_bg "$p"; done
if k get namespace shop >/dev/null 2>&1; then
  log "removing the previous run's namespace shop"
  k delete namespace shop --wait=true --timeout=60s >/dev/null || die "could not delete namespace shop"
fi

pick_port PROMETHEUS_PORT 9090
pick_port DEMO_APP_PORT 8099
pick_port WEBHOOK_PORT 9443
pick_port METRICS_PORT 8080
pick_port PROBE_PORT 8081
save_ports PROMETHEUS_PORT DEMO_APP_PORT WEBHOOK_PORT METRICS_PORT PROBE_PORT
PROM_URL=http://127.0.0.1:$PROMETHEUS_PORT

log "starting the checkout service on 127.0.0.1:$DEMO_APP_PORT (50 requests/s of its own traffic; log $S/demo-app.log)"
start_bg demo-app "$ROOT/bin/demo-app" --listen "127.0.0.1:$DEMO_APP_PORT" --error-rate 0 --rps 50
wait_for 30 "the demo app to answer" "See $S/demo-app.log" app "http://127.0.0.1:$DEMO_APP_PORT/healthz"

log "starting Prometheus on $PROM_URL (scrapes the checkout service every 1s; log $S/prometheus.log)"
rm -rf "$STATE/prometheus-data" "$STATE/rules"
mkdir -p "$STATE/rules"
sed -e "s/127.0.0.1:8099/127.0.0.1:$DEMO_APP_PORT/" -e "s/127.0.0.1:8080/127.0.0.1:$METRICS_PORT/" \
  "$ROOT/test/demo/prometheus.yml" >"$STATE/prometheus.yml"
start_bg prometheus "$PROM_BIN/prometheus" --config.file="$STATE/prometheus.yml" \
  --storage.tsdb.path="$STATE/prometheus-data" --web.listen-address="127.0.0.1:$PROMETHEUS_PORT" \
  --storage.tsdb.retention.time=1d --web.enable-lifecycle
wait_for 60 "Prometheus to be ready" "See $S/prometheus.log" app "$PROM_URL/-/ready"
checkout_scraped() { app "$PROM_URL/api/v1/query?query=up%7Bjob%3D%22checkout%22%7D" | grep -q '"value":\[[^]]*,"1"\]'; }
wait_for 60 "Prometheus to scrape the checkout service" "See $S/prometheus.log and $PROM_URL/api/v1/targets" checkout_scraped

log "installing CRDs (budgetgate's, and the Prometheus Operator's PrometheusRule), the release-during-freeze ClusterRole and read access to SLOs for view/edit/admin"
k apply --server-side --force-conflicts -f "$ROOT/config/crd/bases/slo.budgetgate.dev_servicelevelobjectives.yaml" \
  -f "$ROOT/config/crd/bases/slo.budgetgate.dev_errorbudgetpolicies.yaml" \
  -f "$ROOT/config/crd/bases/slo.budgetgate.dev_freezeexceptions.yaml" \
  -f "$ROOT/config/crd/bases/slo.budgetgate.dev_errorbudgetpolicybindings.yaml" \
  -f "$ROOT/test/crds/prometheus-operator/monitoring.coreos.com_prometheusrules.yaml" >/dev/null
k wait --for=condition=Established --timeout=60s crd/servicelevelobjectives.slo.budgetgate.dev \
  crd/errorbudgetpolicies.slo.budgetgate.dev crd/freezeexceptions.slo.budgetgate.dev \
  crd/errorbudgetpolicybindings.slo.budgetgate.dev crd/prometheusrules.monitoring.coreos.com >/dev/null ||
  die "CRDs not established; see $S/kwok/clusters/$CLUSTER_NAME/logs/kube-apiserver.log"
k apply -f "$ROOT/config/rbac/release_during_freeze_role.yaml" -f "$ROOT/config/rbac/aggregate_to_view_role.yaml" >/dev/null

log "starting the operator (webhook https://127.0.0.1:$WEBHOOK_PORT; log $S/manager.log)"
(cd "$ROOT" && go run ./hack/local-webhook --cert-dir "$STATE/certs" --url "https://127.0.0.1:$WEBHOOK_PORT" \
  config/webhook/manifests.yaml config/webhook/workloads.yaml) >"$STATE/webhooks.yaml" ||
  die "hack/local-webhook failed (see above)"
start_bg manager "$MANAGER" --kubeconfig "$KUBECONFIG_FILE" \
  --prometheus-address "$PROM_URL" \
  --webhook-port "$WEBHOOK_PORT" --webhook-cert-path "$STATE/certs" \
  --metrics-bind-address "127.0.0.1:$METRICS_PORT" --metrics-secure=false \
  --health-probe-bind-address "127.0.0.1:$PROBE_PORT" --leader-elect=false \
  --contact "https://runbooks.example/budgetgate (the demo's --contact)"
wait_for 60 "the operator to be ready" "See $S/manager.log" app "http://127.0.0.1:$PROBE_PORT/readyz"
k apply -f "$STATE/webhooks.yaml" >/dev/null
# The policy webhook fails closed: a server-side dry run only passes once the
# API server reaches the operator's webhook over TLS.
webhook_reachable() { k apply --dry-run=server -f "$STORY_DIR/demo-policy.yaml"; }
wait_for 60 "the API server to reach the operator's webhook at https://127.0.0.1:$WEBHOOK_PORT" \
  "See $S/manager.log and $S/kwok/clusters/$CLUSTER_NAME/logs/kube-apiserver.log" webhook_reachable
ok "the API server calls the operator's webhooks on https://127.0.0.1:$WEBHOOK_PORT"

log "namespace shop: Deployment checkout, users dev (edit) and alice (edit + release-during-freeze)"
k create namespace shop >/dev/null
# create, not apply: kubectl rollout undo warns about apply-managed objects.
k create -f - >/dev/null <<YAML
apiVersion: apps/v1
kind: Deployment
metadata:
  name: checkout
  namespace: shop
  labels:
    app.kubernetes.io/name: checkout
    app.kubernetes.io/part-of: checkout
spec:
  replicas: 3
  revisionHistoryLimit: 10
  selector:
    matchLabels: {app.kubernetes.io/name: checkout}
  template:
    metadata:
      labels:
        app.kubernetes.io/name: checkout
        app.kubernetes.io/part-of: checkout
    spec:
      containers:
        - name: checkout
          image: $IMAGE:1.4.0
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: developers-edit
  namespace: shop
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: edit}
subjects:
  - {apiGroup: rbac.authorization.k8s.io, kind: User, name: dev}
  - {apiGroup: rbac.authorization.k8s.io, kind: User, name: alice}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: oncall-release-during-freeze
  namespace: shop
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: release-during-freeze}
subjects:
  - {apiGroup: rbac.authorization.k8s.io, kind: User, name: alice}
YAML
k -n shop rollout status deployment/checkout --timeout=90s >/dev/null ||
  die "Deployment checkout did not roll out; see $S/kwok/clusters/$CLUSTER_NAME/logs/"
# Release 1.5.0 is what runs when the story starts; 1.4.0 is in the history to roll back to.
k -n shop set image deployment/checkout checkout=$IMAGE:1.5.0 >/dev/null
k -n shop rollout status deployment/checkout --timeout=90s >/dev/null ||
  die "Deployment checkout did not roll out 1.5.0; see $S/kwok/clusters/$CLUSTER_NAME/logs/"
ok "setup done in $(($(now) - demo_start))s"
if [ "${DEMO_SETUP_ONLY:-}" = 1 ]; then exit 0; fi

tell_story

cat <<EOF

${B}Look around${N} (everything is still running; ${B}make demo-down${N} removes it all):
  export KUBECONFIG=$KUBECONFIG_FILE PATH=$K8S_BIN:\$PATH
  kubectl get slo -n shop -o yaml              # budget, burn rates, rules, freeze
  kubectl describe deployment -n shop checkout
  curl -X POST "http://127.0.0.1:$DEMO_APP_PORT/admin/error-rate?value=0.3"   # start another incident
  curl -sG $PROM_URL/api/v1/query --data-urlencode 'query=sum by (code) (rate(http_requests_total{job="checkout"}[1m]))'
  Prometheus API: $PROM_URL   (no web UI assets in the offline build)
  Logs: $S/manager.log  $S/prometheus.log  $S/demo-app.log  $S/kwok/clusters/$CLUSTER_NAME/logs/
EOF
