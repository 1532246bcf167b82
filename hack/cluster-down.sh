#!/usr/bin/env bash
# Deletes the local kwok cluster "budgetgate" (`make cluster-down`).
#
# How it works: `kwokctl delete cluster` stops the control-plane processes that
# `kwokctl create cluster --runtime binary` started (it keeps their pids in
# .cluster/kwok/clusters/budgetgate/pids) and removes that cluster's workdir
# (pki, etcd data, logs); then the kubeconfig and the rest of .cluster/kwok go.
# Processes started by `make demo` (operator, Prometheus, demo app) are stopped
# by `make demo-down`, which calls this script. Safe to run when nothing is up.
set -euo pipefail
# shellcheck source=hack/lib.sh
. "$(dirname "$0")/lib.sh"

if [ -x "$KWOK_BIN/kwokctl" ] && "$KWOK_BIN/kwokctl" get clusters 2>/dev/null | grep -qx "$CLUSTER_NAME"; then
  log "deleting kwok cluster $CLUSTER_NAME"
  "$KWOK_BIN/kwokctl" --name "$CLUSTER_NAME" delete cluster >>"$STATE/cluster-down.log" 2>&1 ||
    die "kwokctl delete cluster failed; see $S/cluster-down.log"
  ok "cluster $CLUSTER_NAME deleted"
else
  ok "no cluster $CLUSTER_NAME to delete"
fi
# Anything still running from the cluster's workdir (e.g. after a failed create)
# is ours: stop it by pid.
for pid in $(pgrep -f "^$KWOK_WORKDIR/clusters/$CLUSTER_NAME/bin/" 2>/dev/null || true); do
  warn "stopping leftover cluster process $pid ($(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | cut -c1-80))"
  kill -TERM "$pid" 2>/dev/null || true
done
rm -rf "$KWOK_WORKDIR" "$KUBECONFIG_FILE" "$STATE/cluster-up.log" "$STATE/cluster-down.log"
