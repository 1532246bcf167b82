# shellcheck shell=bash
# Narration helpers shared by the demo stories (hack/demo.sh on the local kwok
# cluster, hack/incluster-demo.sh on kind); source it after lib.sh, do not run it.
# The sourcing script sets up its cluster, then sets STORY_INTRO (how the
# checkout service runs there), LOGS_HINT (where the operator logs), and
# WAIT_LOGS_HINT (where to look when the SLO does not change in time), defines
# set_error_rate RATE and rollout DEPLOYMENT WHAT, and calls tell_story.
# The demo policy and SLO live in test/demo/story.

STORY_DIR=$ROOT/test/demo/story

story_start() {
  demo_start=$(now)
  step_no=0
}
heading() {
  step_no=$((step_no + 1))
  printf '\n%s━━━ %d. %s ━━━%s  %s(t+%ss)%s\n' "$B" "$step_no" "$*" "$N" "$C" "$(($(now) - demo_start))" "$N"
}
say() { printf '%s\n' "$*" | fold -s -w 100 | sed 's/^/    /'; }
# shown ARGS: ARGS as a reader would type them, single-quoting where the shell needs it.
shown() {
  local a out=()
  for a in "$@"; do
    if [[ $a =~ ^[][A-Za-z0-9_./:=@,+%-]+$ ]]; then out+=("$a"); else out+=("'$a'"); fi
  done
  printf '%s' "${out[*]}"
}
# kc ARGS: shows and runs kubectl ARGS (against the story's cluster).
kc() {
  printf '%s$ kubectl %s%s\n' "$B" "$(shown "$@")" "$N"
  k "$@" 2>&1 | sed 's/^/    /'
  return "${PIPESTATUS[0]}"
}
# kc_denied ARGS: shows kubectl ARGS, which budgetgate must deny, and its message.
kc_denied() {
  printf '%s$ kubectl %s%s\n' "$B" "$(shown "$@")" "$N"
  local out
  if out=$(k "$@" 2>&1); then
    printf '%s\n' "$out" | sed 's/^/    /'
    die "kubectl $* was admitted, but budgetgate should have denied it. $LOGS_HINT"
  fi
  printf '%s\n' "$out" | fold -s -w 110 | sed "s/^/    $R│$N /"
  grep -q 'budgetgate' <<<"$out" || die "kubectl $* failed, but not with budgetgate's denial (see above)"
}
slo_table() { kc get slo -n shop; }
slo_field() { k get slo -n shop checkout-availability -o "jsonpath={$1}" 2>/dev/null; }

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
      die "timed out after ${timeout}s waiting for $what. $WAIT_LOGS_HINT"
    fi
    if [ $(($(now) - last)) -ge 10 ]; then
      last=$(now)
      printf '    %s+%3ss%s  %s\n' "$C" "$((last - start))" "$N" "$(k get slo -n shop checkout-availability --no-headers 2>/dev/null)"
    fi
    sleep 2
  done
}
frozen() { [ "$(slo_field .status.freeze.active)" = "true" ]; }
rules_written() { [ "$(slo_field '.status.conditions[?(@.type=="RulesWritten")].status')" = "True" ]; }
page_firing() { alerts_firing | grep -q '^SLOFastBurn page$'; }
not_frozen() { [ "$(slo_field .status.freeze.active)" = "false" ]; }
evaluated() { [ -n "$(slo_field .status.errorBudget.remainingPercent)" ] && [ -n "$(slo_field .status.fastBurn)" ]; }
deployment_annotated() { [ "$(k get deploy -n shop checkout -o jsonpath='{.metadata.annotations.budgetgate\.dev/frozen}')" = "true" ]; }
deployment_unannotated() { [ -z "$(k get deploy -n shop checkout -o jsonpath='{.metadata.annotations.budgetgate\.dev/frozen}')" ]; }

# tell_story: steps 2–9, from the healthy service to the routine release after the lift.
tell_story() {
  heading "The checkout service is healthy"
  say "$STORY_INTRO"
  kc -n shop get deployment checkout -o wide
  say "The team's SLO: 99% of checkouts succeed over a rolling hour, measured in Prometheus, gating every workload labelled app.kubernetes.io/part-of=checkout, under the demo policy:"
  sed -n '/^apiVersion/,$p' "$STORY_DIR/demo-policy.yaml" | sed 's/^/      /'
  k apply -f "$STORY_DIR/demo-policy.yaml" >/dev/null
  k apply -f "$STORY_DIR/checkout-slo.yaml" >/dev/null
  printf '%s$ kubectl apply -f checkout-slo.yaml%s   (target 99, window 1h, policyRef demo, evaluationInterval 10s)\n' "$B" "$N"
  watch_slo 90 "the SLO's first evaluation" evaluated
  if declare -F load_rules >/dev/null; then
    say "The same SLO and policy give its pages: the operator wrote them as a PrometheusRule (status.prometheusRule), which the Prometheus Operator would load; here the demo loads it into Prometheus:"
    wait_for 60 "the operator to write the SLO's PrometheusRule" "$LOGS_HINT" rules_written
    kc -n shop get prometheusrule
    printf '    %s\n' "$(slo_field '.status.conditions[?(@.type=="RulesWritten")].message')"
    load_rules checkout-availability || die "loading the SLO's rules into Prometheus failed"
  fi
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
  wait_for 30 "the operator to mark Deployment checkout frozen" "$LOGS_HINT" deployment_annotated
  ok "frozen $((t_freeze - t_inject))s after the errors started"
  slo_table
  if declare -F alerts_firing >/dev/null; then
    wait_for 60 "the page (alert SLOFastBurn) to fire" "See $PROM_URL/api/v1/rules" page_firing
    say "The page fires with the freeze, from the same rule and the same numbers (Prometheus' ALERTS):"
    alerts_firing | sed 's/^/      firing: /'
  fi
  if declare -F kb >/dev/null; then
    say "The kubectl plugin shows every SLO of the namespace, its budget, how soon it runs out, and its rules against their thresholds:"
    kb status -n shop --color=never
  fi
  say "Reason: $(slo_field .status.freeze.reason)"
  printf '%s$ kubectl -n shop get deployment checkout -o yaml | grep budgetgate.dev/%s\n' "$B" "$N"
  # shellcheck disable=SC2016 # a Go template, not shell
  k -n shop get deployment checkout -o go-template='{{range $k, $v := .metadata.annotations}}{{$k}}: {{$v}}{{"\n"}}{{end}}' | grep '^budgetgate.dev/' | sed 's/^/    /'

  heading "A routine release is denied"
  say "dev ships the next feature release, as on any other day:"
  kc_denied --as=dev -n shop set image deployment/checkout checkout="$IMAGE:1.6.0"
  if declare -F kb >/dev/null; then
    say "dev asks why, and what may still pass for dev (the plugin asks the API server what dev may do):"
    kb --as=dev why deployment/checkout -n shop
  fi
  say "dev can read the freeze the message names (budgetgate's read access is aggregated into the built-in edit role), but not change it:"
  kc --as=dev -n shop get slo checkout-availability
  kc --as=dev -n shop auth can-i update servicelevelobjectives.slo.budgetgate.dev || true

  heading "Rolling back and scaling still pass"
  say "A freeze stops risk, not the people fixing the incident. Rolling back to 1.4.0 is always allowed:"
  kc --as=dev -n shop rollout undo deployment/checkout || die "rollout undo was denied. $LOGS_HINT"
  rollout checkout "the rollback"
  say "So is scaling out to take the load:"
  kc --as=dev -n shop scale deployment/checkout --replicas=5 || die "scaling was denied. $LOGS_HINT"
  kc -n shop get deployment checkout -o wide
  slo_table
  say "The errors come from the payment provider, not from 1.5.0, so the rollback does not help; the fix is a code change."

  heading "An authorised hotfix passes"
  say "Claiming the hotfix release class is not enough by itself; dev may not release during a freeze:"
  hotfix_patch='{"spec":{"template":{"metadata":{"annotations":{"budgetgate.dev/release-class":"hotfix","budgetgate.dev/release-reason":"INC-4821 payment provider timeouts"}},"spec":{"containers":[{"name":"checkout","image":"'$IMAGE':1.5.1-hotfix"}]}}}}'
  kc_denied --as=dev -n shop patch deployment checkout -p "$hotfix_patch"
  say "alice, on call, is bound to the release-during-freeze ClusterRole in shop; her hotfix goes through:"
  kc --as=alice -n shop patch deployment checkout -p "$hotfix_patch" || die "alice's hotfix was denied. $LOGS_HINT"
  rollout checkout "the hotfix"
  kc -n shop get deployment checkout -o wide
  slo_table

  heading "The hotfix works: errors stop"
  set_error_rate 0
  t_stop=$(now)
  say "Good requests pile up: the burn rate falls and the hour's budget climbs back. The freeze lifts once fast-burn has not fired for the policy's minDuration (1m): the 30s window clears first, then the hold runs out."
  watch_slo "$LIFT_TIMEOUT" "the freeze to lift" not_frozen
  t_lift=$(now)
  wait_for 30 "the operator to unmark Deployment checkout" "$LOGS_HINT" deployment_unannotated
  ok "freeze lifted $((t_lift - t_stop))s after the errors stopped"
  slo_table

  heading "The routine release goes through"
  say "The same command as in step 5. (The template still carries alice's release-class: hotfix, but a claim counts only for the release that makes it: this passes because the freeze lifted.)"
  kc --as=dev -n shop set image deployment/checkout checkout="$IMAGE:1.6.0" || die "the release was denied after the freeze lifted. $LOGS_HINT"
  rollout checkout "1.6.0"
  say "The rollout history, one ReplicaSet per pod template:"
  kc -n shop get replicasets --sort-by=.metadata.creationTimestamp -o custom-columns='REVISION:.metadata.annotations.deployment\.kubernetes\.io/revision,IMAGE:.spec.template.spec.containers[0].image,RELEASE-CLASS:.spec.template.metadata.annotations.budgetgate\.dev/release-class,REPLICAS:.spec.replicas'
  say "What budgetgate recorded:"
  printf '%s$ kubectl -n shop get events --field-selector reason!=ScalingReplicaSet,involvedObject.kind!=Pod,involvedObject.kind!=ReplicaSet%s\n' "$B" "$N"
  k -n shop get events --field-selector reason!=ScalingReplicaSet,involvedObject.kind!=Pod,involvedObject.kind!=ReplicaSet \
    --sort-by=.metadata.creationTimestamp -o custom-columns=OBJECT:.involvedObject.name,REASON:.reason,MESSAGE:.message |
    cut -c1-150 | sed 's/^/    /'
  slo_table

  if declare -F simulate_story >/dev/null; then
    heading "When would this policy have frozen us? Replaying it over the story's history"
    say "simulate replays the policy over Prometheus' history through the controller's own evaluation code: the freeze it finds is the one the story just lived through."
    sleep 20 # a little history after the lift
    simulate_story "$(($(now) - demo_start + 30))s"
  fi

  total=$(($(now) - demo_start))
  printf '\n%s━━━ Done in %dm%02ds ━━━%s  freeze started %ss after the errors did; lifted %ss after they stopped.\n' \
    "$B" $((total / 60)) $((total % 60)) "$N" "$((t_freeze - t_inject))" "$((t_lift - t_stop))"
}
