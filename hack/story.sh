# shellcheck shell=bash
# Narration helpers shared by the demo stories (hack/demo.sh on the local kwok
# cluster, hack/kind-demo.sh on kind); source it after lib.sh, do not run it.
# The sourcing script sets DENIAL_LOGS_HINT (where to look when a release that
# budgetgate should deny is admitted) and calls story_start.

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
    die "kubectl $* was admitted, but budgetgate should have denied it. $DENIAL_LOGS_HINT"
  fi
  printf '%s\n' "$out" | fold -s -w 110 | sed "s/^/    $R│$N /"
  grep -q 'budgetgate' <<<"$out" || die "kubectl $* failed, but not with budgetgate's denial (see above)"
}
slo_table() { kc get slo -n shop; }
slo_field() { k get slo -n shop checkout-availability -o "jsonpath={$1}" 2>/dev/null; }
