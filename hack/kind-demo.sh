#!/usr/bin/env bash
# `make demo-kind`: budgetgate's whole story on a kind cluster, for machines
# with Docker. The same story as `make demo` (hack/demo.sh), with everything
# running inside the cluster instead of as local processes.
#
# How it works: hack/kind.sh up load installer install creates the kind
# cluster "budgetgate" (kubeconfig .cluster/kind/budgetgate/kubeconfig), builds
# the manager and demo service images and loads them into the nodes, writes
# dist/install.yaml (make build-installer IMG=budgetgate:e2e) and installs it
# unpatched (two manager replicas in budgetgate-system, running as their
# ServiceAccount, rotating their own webhook certificate), next to a real
# Prometheus (monitoring/prometheus, Service prometheus-operated: the
# manager's default address) scraping the demo service (demo/checkout-traffic,
# 50 requests/s of its own traffic) every second. Then it creates namespace
# shop (test/demo/kind/story/shop.yaml: the checkout Deployment, whose pods
# really run, and users dev and alice), applies the demo policy and the
# checkout SLO (test/demo/kind/story/, the same as hack/demo.sh's), and
# narrates: healthy traffic → errors injected (through the API server's
# service proxy to the demo service) → burn rate crosses the policy → freeze →
# a routine release denied → rollback and scaling pass → an authorised hotfix
# passes → errors stop → freeze lifts → the routine release goes through.
# Everything is left running; `make demo-kind-down` deletes the cluster.
# Knobs: DEMO_ERROR_RATE (0.3), DEMO_FREEZE_TIMEOUT (240), DEMO_LIFT_TIMEOUT
# (300), and those of hack/kind-lib.sh.
#
# NOTE: written on a machine without a Docker engine; never run there. See
# docs/kind.md.
set -euo pipefail
# shellcheck source=hack/kind-lib.sh
. "$(dirname "$0")/kind-lib.sh"

IMAGE=registry.example/shop/checkout
STORY=$ROOT/test/demo/kind/story
ERROR_RATE=${DEMO_ERROR_RATE:-0.3}
FREEZE_TIMEOUT=${DEMO_FREEZE_TIMEOUT:-240}
LIFT_TIMEOUT=${DEMO_LIFT_TIMEOUT:-300}
DENIAL_LOGS_HINT=$OPERATOR_LOGS_HINT
# shellcheck source=hack/story.sh
. "$(dirname "$0")/story.sh"
story_start
set_error_rate() {
  printf '%s$ kubectl create --raw %s -f - </dev/null%s\n' "$B" "'$ERROR_RATE_PATH?value=$1'" "$N"
  local out
  out=$(post_error_rate "$1") || die "setting the error rate failed (see above). See also: kubectl -n demo logs deployment/checkout-traffic"
  printf '    error rate now %s\n' "$out"
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
      die "timed out after ${timeout}s waiting for $what. $OPERATOR_LOGS_HINT; also kubectl -n monitoring logs deployment/prometheus"
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
rollout() { # DEPLOYMENT WHAT: waits for a rollout in shop
  k -n shop rollout status "deployment/$1" --timeout=120s >/dev/null ||
    die "$2 did not roll out; see: kubectl --kubeconfig $KIND_KUBECONFIG -n shop get pods,events"
}

heading "Setting up: kind cluster, images, budgetgate, Prometheus and the checkout service"
"$ROOT/hack/kind.sh" up load installer install

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
k create -f "$STORY/shop.yaml" >/dev/null || die "creating namespace shop failed (see above)"
rollout checkout "Deployment checkout"
# Release 1.5.0 is what runs when the story starts; 1.4.0 is in the history to roll back to.
k -n shop set image deployment/checkout checkout=$IMAGE:1.5.0 >/dev/null
rollout checkout "Deployment checkout 1.5.0"
ok "setup done in $(($(now) - demo_start))s"

heading "The checkout service is healthy"
say "checkout runs 1.5.0 in kind (its image is a tag of the demo service image). The traffic Prometheus measures comes from demo/checkout-traffic, the same program sending itself 50 requests/s; Prometheus scrapes its http_requests_total{job=\"checkout\",code} every second."
kc -n shop get deployment checkout -o wide
say "The team's SLO: 99% of checkouts succeed over a rolling hour, measured in Prometheus, gating every workload labelled app.kubernetes.io/part-of=checkout, under the demo policy:"
sed -n '/^apiVersion/,$p' "$STORY/demo-policy.yaml" | sed 's/^/      /'
k apply -f "$STORY/demo-policy.yaml" >/dev/null
k apply -f "$STORY/checkout-slo.yaml" >/dev/null
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
wait_for 30 "the operator to mark Deployment checkout frozen" "$OPERATOR_LOGS_HINT" deployment_annotated
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
kc --as=dev -n shop rollout undo deployment/checkout || die "rollout undo was denied. $OPERATOR_LOGS_HINT"
rollout checkout "the rollback"
say "So is scaling out to take the load:"
kc --as=dev -n shop scale deployment/checkout --replicas=5 || die "scaling was denied. $OPERATOR_LOGS_HINT"
kc -n shop get deployment checkout -o wide
slo_table
say "The errors come from the payment provider, not from 1.5.0, so the rollback does not help; the fix is a code change."

heading "An authorised hotfix passes"
say "Claiming the hotfix release class is not enough by itself; dev may not release during a freeze:"
hotfix_patch='{"spec":{"template":{"metadata":{"annotations":{"budgetgate.dev/release-class":"hotfix"}},"spec":{"containers":[{"name":"checkout","image":"'$IMAGE':1.5.1-hotfix"}]}}}}'
kc_denied --as=dev -n shop patch deployment checkout -p "$hotfix_patch"
say "alice, on call, is bound to the release-during-freeze ClusterRole in shop; her hotfix goes through:"
kc --as=alice -n shop patch deployment checkout -p "$hotfix_patch" || die "alice's hotfix was denied. $OPERATOR_LOGS_HINT"
rollout checkout "the hotfix"
kc -n shop get deployment checkout -o wide
slo_table

heading "The hotfix works: errors stop"
set_error_rate 0
t_stop=$(now)
say "Good requests pile up: the burn rate falls and the hour's budget climbs back. The freeze lifts once fast-burn has not fired for the policy's minDuration (1m): the 30s window clears first, then the hold runs out."
watch_slo "$LIFT_TIMEOUT" "the freeze to lift" not_frozen
t_lift=$(now)
wait_for 30 "the operator to unmark Deployment checkout" "$OPERATOR_LOGS_HINT" deployment_unannotated
ok "freeze lifted $((t_lift - t_stop))s after the errors stopped"
slo_table

heading "The routine release goes through"
say "The same command as in step 5. (The template still carries alice's release-class: hotfix, which counts for nothing from dev, as step 7 showed: this passes because the freeze lifted.)"
kc --as=dev -n shop set image deployment/checkout checkout=$IMAGE:1.6.0 || die "the release was denied after the freeze lifted. $OPERATOR_LOGS_HINT"
rollout checkout "1.6.0"
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

${B}Look around${N} (everything is still running in kind cluster $KIND_CLUSTER_NAME; ${B}make demo-kind-down${N} deletes it):
  export KUBECONFIG=$KIND_KUBECONFIG PATH=$(dirname "$KUBECTL"):\$PATH
  kubectl get slo -n shop -o yaml              # budget, burn rates, rules, freeze
  kubectl describe deployment -n shop checkout
  kubectl -n $OPERATOR_NS logs -l $OPERATOR_PODS --prefix
  kubectl create --raw '$ERROR_RATE_PATH?value=0.3' -f - </dev/null   # start another incident
  kubectl -n monitoring port-forward svc/prometheus-operated 9090   # then http://localhost:9090 (Prometheus UI)
EOF
