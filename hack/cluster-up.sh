#!/usr/bin/env bash
# Brings up the local kwok cluster "budgetgate" (`make cluster-up`).
#
# How it works: it gets etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler and kubectl (hack/k8s-binaries.sh) and kwok/kwokctl
# (hack/kwok.sh) into bin/ (downloads where that works, otherwise builds from
# the Go module proxy; cached, so only the first run is slow), then runs
# `kwokctl create cluster --runtime binary` on those binaries: every control
# plane component and the kwok controller run as local processes, with the
# kwok workdir (pki, etcd data, component logs) in .cluster/kwok and the admin
# kubeconfig in .cluster/kubeconfig. It adds $NODES fake nodes (kwok makes pods
# on them Running without a container runtime), then proves Deployments work by
# rolling out a throwaway Deployment and waiting for it to be Available. As the
# API server is a local process, it reaches webhooks served on this machine
# (https://127.0.0.1:PORT) directly. Rerunning it on a healthy cluster only
# re-checks it; a broken leftover cluster is deleted and created again.
# KWOKCTL_CREATE_ARGS adds flags to `kwokctl create cluster` (whitespace-split),
# e.g. --extra-args for a component: `make bench-scale` raises
# kube-controller-manager's client QPS with it.
set -euo pipefail
# shellcheck source=hack/lib.sh
. "$(dirname "$0")/lib.sh"

NODES=${NODES:-3}
TIMEOUT=${CLUSTER_TIMEOUT:-180}
read -r -a CREATE_ARGS <<<"${KWOKCTL_CREATE_ARGS:-}"
start=$(now)

log "cluster binaries (bin/k8s, bin/kwok; built from the Go module proxy when they cannot be downloaded)"
ensure_binaries
mkdir -p "$STATE"

kwokctl() { "$KWOK_BIN/kwokctl" --name "$CLUSTER_NAME" "$@"; }
cluster_exists() { "$KWOK_BIN/kwokctl" get clusters 2>/dev/null | grep -qx "$CLUSTER_NAME"; }
port_taken() { grep -qs 'bind: address already in use' "$STATE"/kwok/clusters/"$CLUSTER_NAME"/logs/*.log; }

if cluster_exists && cluster_healthy; then
  ok "cluster $CLUSTER_NAME is already up"
else
  if cluster_exists; then
    warn "cluster $CLUSTER_NAME exists but its API server does not answer; recreating it"
    kwokctl delete cluster >>"$STATE/cluster-up.log" 2>&1 || true
  fi
  # kwokctl picks free ports when it creates the cluster, and a component
  # binds its port only when it starts: on a machine where other clusters come
  # up at the same time, one can take the port first. The component then exits
  # ("bind: address already in use") and the cluster looks up but never
  # schedules; recreate it, with new ports.
  for attempt in 1 2 3; do
    log "creating kwok cluster $CLUSTER_NAME (kwokctl --runtime binary; log: $S/cluster-up.log)"
    rm -f "$KUBECONFIG_FILE"
    # KWOK_KUBE_VERSION tells kwokctl which flags our binaries take;
    # KWOK_KUBECTL_BINARY keeps `kwokctl kubectl` off the network.
    # use-service-account-credentials: each controller acts as its own
    # ServiceAccount, as on kubeadm, kind and managed clusters (kwokctl would
    # otherwise run them all as its admin user); budgetgate's history gate knows
    # the workload controllers by these identities.
    if ! KWOK_KUBE_VERSION=$K8S_VERSION KWOK_KUBECTL_BINARY=$KUBECTL kwokctl create cluster \
      --runtime binary \
      --etcd-binary "$K8S_BIN/etcd" \
      --kube-apiserver-binary "$K8S_BIN/kube-apiserver" \
      --kube-controller-manager-binary "$K8S_BIN/kube-controller-manager" \
      --kube-scheduler-binary "$K8S_BIN/kube-scheduler" \
      --kwok-controller-binary "$KWOK_BIN/kwok" \
      --extra-args kube-controller-manager=use-service-account-credentials=true \
      "${CREATE_ARGS[@]}" \
      --kubeconfig "$KUBECONFIG_FILE" \
      --wait "${TIMEOUT}s" \
      --timeout "${TIMEOUT}s" >>"$STATE/cluster-up.log" 2>&1; then
      tail -20 "$STATE/cluster-up.log" >&2
      die "kwokctl create cluster failed. See $S/cluster-up.log and the component logs: $S/kwok/clusters/$CLUSTER_NAME/logs/"
    fi
    sleep 2 # a component that lost its port exits at once
    port_taken || break
    [ "$attempt" -lt 3 ] || die "a component of cluster $CLUSTER_NAME found its port taken three times; see $S/kwok/clusters/$CLUSTER_NAME/logs/"
    warn "a component of cluster $CLUSTER_NAME found its port taken ($(grep -ls 'bind: address already in use' "$STATE"/kwok/clusters/"$CLUSTER_NAME"/logs/*.log | xargs -n1 basename | tr '\n' ' ')); recreating the cluster"
    kwokctl delete cluster >>"$STATE/cluster-up.log" 2>&1 || true
    rm -rf "$STATE/kwok/clusters/$CLUSTER_NAME" # its logs, which port_taken reads
  done
  ok "API server up ($(k config view --minify -o jsonpath='{.clusters[0].cluster.server}'))"
fi

have=$(k get nodes -o name 2>/dev/null | wc -l)
if [ "$have" -lt "$NODES" ]; then
  log "adding fake nodes ($have → $NODES)"
  kwokctl scale node --replicas "$NODES" >>"$STATE/cluster-up.log" 2>&1 ||
    die "kwokctl scale node failed; see $S/cluster-up.log"
fi
wait_for 60 "$NODES Ready nodes" "See $S/kwok/clusters/$CLUSTER_NAME/logs/kwok-controller.log" \
  bash -c "[ \"\$('$KUBECTL' --kubeconfig '$KUBECONFIG_FILE' get nodes --no-headers 2>/dev/null | grep -cw Ready)\" -ge $NODES ]"
ok "$NODES fake nodes Ready"

log "checking that Deployments roll out (throwaway Deployment in namespace kwok-smoke)"
k delete namespace kwok-smoke --ignore-not-found --timeout=60s >/dev/null # an earlier run's, maybe still terminating
k create namespace kwok-smoke >/dev/null
k -n kwok-smoke create deployment smoke --image=registry.example/smoke:1 --replicas=2 >/dev/null
if ! k -n kwok-smoke rollout status deployment/smoke --timeout=90s >/dev/null; then
  k -n kwok-smoke get deployment,replicaset,pods -o wide >&2 || true
  if port_taken; then
    grep -hs 'bind: address already in use' "$STATE"/kwok/clusters/"$CLUSTER_NAME"/logs/*.log | tail -2 >&2
    die "a component of cluster $CLUSTER_NAME exited because another process took its port; run make cluster-down, then this again"
  fi
  die "the smoke Deployment did not become Available within 90s. See $S/kwok/clusters/$CLUSTER_NAME/logs/ (kube-controller-manager.log, kube-scheduler.log, kwok-controller.log)"
fi
k delete namespace kwok-smoke --wait=false >/dev/null
ok "Deployments, ReplicaSets and pods work"

printf '\n%sCluster %s is up%s (%ss). Use it with:\n  export KUBECONFIG=%s\n  %s get nodes\n' \
  "$B" "$CLUSTER_NAME" "$N" "$(($(now) - start))" "$KUBECONFIG_FILE" "$KUBECTL"
