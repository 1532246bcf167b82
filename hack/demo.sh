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
# DEMO_ERROR_RATE (0.3), DEMO_FREEZE_TIMEOUT (240) and DEMO_LIFT_TIMEOUT (300).
set -euo pipefail
# shellcheck source=hack/lib.sh
. "$(dirname "$0")/lib.sh"

IMAGE=registry.example/shop/checkout
ERROR_RATE=${DEMO_ERROR_RATE:-0.3}
FREEZE_TIMEOUT=${DEMO_FREEZE_TIMEOUT:-240}
LIFT_TIMEOUT=${DEMO_LIFT_TIMEOUT:-300}
DENIAL_LOGS_HINT="See $S/manager.log and $S/kwok/clusters/$CLUSTER_NAME/logs/kube-apiserver.log"
# shellcheck source=hack/story.sh
. "$(dirname "$0")/story.sh"
story_start
app() { curl -fsS --max-time 5 "$@"; }
set_error_rate() {
  printf '%s$ curl -X POST "http://127.0.0.1:%s/admin/error-rate?value=%s"%s\n' "$B" "$DEMO_APP_PORT" "$1" "$N"
  app -X POST "http://127.0.0.1:$DEMO_APP_PORT/admin/error-rate?value=$1" | sed 's/^/    error rate now /'
}

# watch_slo SECONDS WHAT CMD...: prints the SLO's row every 10s until CMD succeeds.
watch_slo() {
  local timeout=$1 what=$2
  shift 2
  local start last=0 deadline
  start=$(now)
  deadline=$((start + timeout))
  until "$@"; do
    if [ "$(now)" -ge "$deadline" ]; then
      slo_table
      k get slo -n shop checkout-availability -o jsonpath='{range .status.rules[*]}    rule {.name}: {.message}{"\n"}{end}' || true
      die "timed out after ${timeout}s waiting for $what. See $S/manager.log (operator), $S/prometheus.log and $S/demo-app.log"
    fi
    if [ $(($(now) - last)) -ge 10 ]; then
      last=$(now)
      printf '    %s+%3ss%s  %s\n' "$C" "$((last - start))" "$N" "$(k get slo -n shop checkout-availability --no-headers 2>/dev/null)"
    fi
    sleep 2
  done
}
frozen() { [ "$(slo_field .status.freeze.active)" = "true" ]; }
not_frozen() { [ "$(slo_field .status.freeze.active)" = "false" ]; }
evaluated() { [ -n "$(slo_field .status.errorBudget.remainingPercent)" ] && [ -n "$(slo_field .status.fastBurn)" ]; }
deployment_annotated() { [ "$(k get deploy -n shop checkout -o jsonpath='{.metadata.annotations.budgetgate\.dev/frozen}')" = "true" ]; }
deployment_unannotated() { [ -z "$(k get deploy -n shop checkout -o jsonpath='{.metadata.annotations.budgetgate\.dev/frozen}')" ]; }

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
rm -rf "$STATE/prometheus-data"
sed -e "s/127.0.0.1:8099/127.0.0.1:$DEMO_APP_PORT/" -e "s/127.0.0.1:8080/127.0.0.1:$METRICS_PORT/" \
  "$ROOT/test/demo/prometheus.yml" >"$STATE/prometheus.yml"
start_bg prometheus "$PROM_BIN/prometheus" --config.file="$STATE/prometheus.yml" \
  --storage.tsdb.path="$STATE/prometheus-data" --web.listen-address="127.0.0.1:$PROMETHEUS_PORT" \
  --storage.tsdb.retention.time=1d
wait_for 60 "Prometheus to be ready" "See $S/prometheus.log" app "$PROM_URL/-/ready"
checkout_scraped() { app "$PROM_URL/api/v1/query?query=up%7Bjob%3D%22checkout%22%7D" | grep -q '"value":\[[^]]*,"1"\]'; }
wait_for 60 "Prometheus to scrape the checkout service" "See $S/prometheus.log and $PROM_URL/api/v1/targets" checkout_scraped

log "installing CRDs and the release-during-freeze ClusterRole"
k apply --server-side --force-conflicts -f "$ROOT/config/crd/bases/slo.budgetgate.dev_servicelevelobjectives.yaml" \
  -f "$ROOT/config/crd/bases/slo.budgetgate.dev_errorbudgetpolicies.yaml" \
  -f "$ROOT/config/crd/bases/slo.budgetgate.dev_freezeexceptions.yaml" >/dev/null
k wait --for=condition=Established --timeout=60s crd/servicelevelobjectives.slo.budgetgate.dev \
  crd/errorbudgetpolicies.slo.budgetgate.dev crd/freezeexceptions.slo.budgetgate.dev >/dev/null ||
  die "CRDs not established; see $S/kwok/clusters/$CLUSTER_NAME/logs/kube-apiserver.log"
k apply -f "$ROOT/config/rbac/release_during_freeze_role.yaml" >/dev/null

log "starting the operator (webhook https://127.0.0.1:$WEBHOOK_PORT; log $S/manager.log)"
(cd "$ROOT" && go run ./hack/local-webhook --cert-dir "$STATE/certs" --url "https://127.0.0.1:$WEBHOOK_PORT" \
  config/webhook/manifests.yaml config/webhook/workloads.yaml) >"$STATE/webhooks.yaml" ||
  die "hack/local-webhook failed (see above)"
start_bg manager "$MANAGER" --kubeconfig "$KUBECONFIG_FILE" \
  --prometheus-address "$PROM_URL" \
  --webhook-port "$WEBHOOK_PORT" --webhook-cert-path "$STATE/certs" \
  --metrics-bind-address "127.0.0.1:$METRICS_PORT" --metrics-secure=false \
  --health-probe-bind-address "127.0.0.1:$PROBE_PORT" --leader-elect=false
wait_for 60 "the operator to be ready" "See $S/manager.log" app "http://127.0.0.1:$PROBE_PORT/readyz"
k apply -f "$STATE/webhooks.yaml" >/dev/null
# The policy webhook fails closed: a server-side dry run only passes once the
# API server reaches the operator's webhook over TLS.
cat >"$STATE/demo-policy.yaml" <<'YAML'
# The demo policy: windows of minutes instead of hours, so the story fits in a
# coffee break. fast-burn freezes when the burn rate is at least 5x over both
# the last 2 minutes and the last 30 seconds; a freeze holds at least 1 minute
# and lifts once fast-burn has not fired for a minute.
apiVersion: slo.budgetgate.dev/v1alpha1
kind: ErrorBudgetPolicy
metadata:
  name: demo
spec:
  mode: Enforce
  rules:
    - name: fast-burn
      burnRate: {longWindow: 2m, shortWindow: 30s, factor: "5"}
      action: Freeze
    # The default policy also freezes while the budget is exhausted; a 1h
    # budget cannot recover within a demo, so here it only warns.
    - name: budget-exhausted
      budgetRemainingBelow: "0"
      action: Warn
  freeze:
    minDuration: 1m
  exemptReleaseClasses: [hotfix, security]
YAML
webhook_reachable() { k apply --dry-run=server -f "$STATE/demo-policy.yaml"; }
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

heading "The checkout service is healthy"
say "checkout runs 1.5.0 on kwok's fake nodes; the real process answering /checkout is bin/demo-app on this machine, sending itself 50 requests/s. Prometheus scrapes http_requests_total{job=\"checkout\",code} every second."
kc -n shop get deployment checkout -o wide
say "The team's SLO: 99% of checkouts succeed over a rolling hour, measured in Prometheus, gating every workload labelled app.kubernetes.io/part-of=checkout, under the demo policy:"
sed -n '/^apiVersion/,$p' "$STATE/demo-policy.yaml" | sed 's/^/      /'
k apply -f "$STATE/demo-policy.yaml" >/dev/null
k apply -f - >/dev/null <<'YAML'
apiVersion: slo.budgetgate.dev/v1alpha1
kind: ServiceLevelObjective
metadata:
  name: checkout-availability
  namespace: shop
spec:
  description: successful purchase completion
  target: "99"
  window: 1h
  indicator:
    ratio:
      errors: http_requests_total{job="checkout",code=~"5.."}
      total: http_requests_total{job="checkout"}
  workloadSelector:
    matchLabels:
      app.kubernetes.io/part-of: checkout
  policyRef:
    name: demo
  evaluationInterval: 10s
YAML
printf '%s$ kubectl apply -f checkout-slo.yaml%s   (target 99, window 1h, policyRef demo, evaluationInterval 10s)\n' "$B" "$N"
watch_slo 90 "the SLO's first evaluation" evaluated
# Let a little healthy history build up before the incident.
sleep 15
slo_table

heading "Errors: the payment provider starts failing $(awk "BEGIN{print $ERROR_RATE*100}")% of checkouts"
set_error_rate "$ERROR_RATE"
t_inject=$(now)
say "A ${ERROR_RATE} error ratio against a 1% budget burns it $(awk "BEGIN{print $ERROR_RATE/0.01}")x too fast. Watching the SLO (the operator evaluates it every 10s):"

heading "The burn rate crosses the policy: releases freeze"
watch_slo "$FREEZE_TIMEOUT" "the freeze (.status.freeze.active)" frozen
t_freeze=$(now)
wait_for 30 "the operator to mark Deployment checkout frozen" "See $S/manager.log" deployment_annotated
ok "frozen $((t_freeze - t_inject))s after the errors started"
slo_table
say "Reason: $(slo_field .status.freeze.reason)"
printf '%s$ kubectl -n shop get deployment checkout -o yaml | grep budgetgate.dev/%s\n' "$B" "$N"
# shellcheck disable=SC2016 # a Go template, not shell
k -n shop get deployment checkout -o go-template='{{range $k, $v := .metadata.annotations}}{{$k}}: {{$v}}{{"\n"}}{{end}}' | grep '^budgetgate.dev/' | sed 's/^/    /'

heading "A routine release is denied"
say "dev ships the next feature release, as on any other day:"
kc_denied --as=dev -n shop set image deployment/checkout checkout=$IMAGE:1.6.0
slo_table

heading "Rolling back and scaling still pass"
say "A freeze stops risk, not the people fixing the incident. Rolling back to 1.4.0 is always allowed:"
kc --as=dev -n shop rollout undo deployment/checkout || die "rollout undo was denied; see $S/manager.log"
k -n shop rollout status deployment/checkout --timeout=60s >/dev/null || die "the rollback did not complete; see $S/kwok/clusters/$CLUSTER_NAME/logs/"
say "So is scaling out to take the load:"
kc --as=dev -n shop scale deployment/checkout --replicas=5 || die "scaling was denied; see $S/manager.log"
kc -n shop get deployment checkout -o wide
slo_table
say "The errors come from the payment provider, not from 1.5.0, so the rollback does not help; the fix is a code change."

heading "An authorised hotfix passes"
say "Claiming the hotfix release class is not enough by itself; dev may not release during a freeze:"
hotfix_patch='{"spec":{"template":{"metadata":{"annotations":{"budgetgate.dev/release-class":"hotfix"}},"spec":{"containers":[{"name":"checkout","image":"'$IMAGE':1.5.1-hotfix"}]}}}}'
kc_denied --as=dev -n shop patch deployment checkout -p "$hotfix_patch"
say "alice, on call, is bound to the release-during-freeze ClusterRole in shop; her hotfix goes through:"
kc --as=alice -n shop patch deployment checkout -p "$hotfix_patch" || die "alice's hotfix was denied; see $S/manager.log"
k -n shop rollout status deployment/checkout --timeout=60s >/dev/null || die "the hotfix did not roll out; see $S/kwok/clusters/$CLUSTER_NAME/logs/"
kc -n shop get deployment checkout -o wide
slo_table

heading "The hotfix works: errors stop"
set_error_rate 0
t_stop=$(now)
say "Good requests pile up: the burn rate falls and the hour's budget climbs back. The freeze lifts once fast-burn has not fired for the policy's minDuration (1m): the 30s window clears first, then the hold runs out."
watch_slo "$LIFT_TIMEOUT" "the freeze to lift" not_frozen
t_lift=$(now)
wait_for 30 "the operator to unmark Deployment checkout" "See $S/manager.log" deployment_unannotated
ok "freeze lifted $((t_lift - t_stop))s after the errors stopped"
slo_table

heading "The routine release goes through"
say "The same command as in step 5. (The template still carries alice's release-class: hotfix, which counts for nothing from dev, as step 7 showed: this passes because the freeze lifted.)"
kc --as=dev -n shop set image deployment/checkout checkout=$IMAGE:1.6.0 || die "the release was denied after the freeze lifted; see $S/manager.log"
k -n shop rollout status deployment/checkout --timeout=60s >/dev/null || die "1.6.0 did not roll out; see $S/kwok/clusters/$CLUSTER_NAME/logs/"
say "The rollout history, one ReplicaSet per pod template:"
kc -n shop get replicasets --sort-by=.metadata.creationTimestamp -o custom-columns='REVISION:.metadata.annotations.deployment\.kubernetes\.io/revision,IMAGE:.spec.template.spec.containers[0].image,RELEASE-CLASS:.spec.template.metadata.annotations.budgetgate\.dev/release-class,REPLICAS:.spec.replicas'
say "What budgetgate recorded:"
printf '%s$ kubectl -n shop get events --field-selector reason!=ScalingReplicaSet,involvedObject.kind!=Pod,involvedObject.kind!=ReplicaSet%s\n' "$B" "$N"
k -n shop get events --field-selector reason!=ScalingReplicaSet,involvedObject.kind!=Pod,involvedObject.kind!=ReplicaSet \
  --sort-by=.metadata.creationTimestamp -o custom-columns=OBJECT:.involvedObject.name,REASON:.reason,MESSAGE:.message |
  cut -c1-150 | sed 's/^/    /'
slo_table

total=$(($(now) - demo_start))
printf '\n%s━━━ Done in %dm%02ds ━━━%s  freeze started %ss after the errors did; lifted %ss after they stopped.\n' \
  "$B" $((total / 60)) $((total % 60)) "$N" "$((t_freeze - t_inject))" "$((t_lift - t_stop))"
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
