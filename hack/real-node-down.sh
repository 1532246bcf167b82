#!/usr/bin/env bash
# Takes the real-node cluster down and leaves the machine as it was found
# (`make cluster-down-real`; docs/real-node.md). Safe to run when nothing is up,
# and after a failed or interrupted up.
#
# How it works, in order:
#  1. drains the node gracefully while the API server and kubelet still run: a
#     NoExecute taint makes the kubelet stop every pod through containerd, which
#     runs the CNI DEL (veths, IPAM, portmap rules) for each (up to 60s);
#  2. stops kube-proxy and the kubelet (by pid file), then kills and deletes
#     whatever containers remain through ctr, and stops containerd; any
#     process still running from bin/node (shims, runc) or in a kubepods
#     cgroup is stopped by pid;
#  3. deletes the control plane (hack/cluster-down.sh: kwokctl delete cluster);
#  4. unmounts everything mounted under .cluster/real (overlay rootfs, shm,
#     volumes, network namespaces), under /var/lib/kubelet, /run/containerd,
#     /run/netns and the shim socket dir;
#  5. network: deletes the veths left on the bridge, the bridge (and so its
#     addresses and the Service route), the FORWARD guard chain, every KUBE-*
#     and CNI-* chain and the rules jumping to them in the filter, nat, mangle
#     and raw tables of iptables and ip6tables (both the nft and the legacy
#     backend), except chains that existed before up; deletes conntrack
#     entries of the pod and Service ranges;
#  6. restores every sysctl recorded by up (ip_forward, bridge-nf-call-*,
#     the kubelet's vm./kernel. tunables, ...) to its old value;
#  7. removes the kubepods cgroups (every hierarchy), the paths outside the
#     work dir that did not exist before up (/var/log/containers,
#     /var/lib/cni, /run/containerd, ...), and .cluster/real except its logs.
# The host-state record is kept as .cluster/real-node-host-before.txt for
# hack/real-node-check-clean.sh, which `make cluster-down-real` runs after this.
set -uo pipefail
# shellcheck source=hack/real-node-lib.sh
. "$(dirname "$0")/real-node-lib.sh"

start=$(now)
SHIM_DIR=/run/budgetgate-s-$(printf '%s' "$RS" | sha256sum | cut -c1-8)
HS=$RS/host-state.txt
[ -f "$HS" ] || HS=$HOST_BEFORE
[ -f "$HS" ] || HS=/dev/null
mkdir -p "$RS/logs"
DLOG=$RS/logs/down.log
: >"$DLOG"

# 1. Drain.
if cluster_healthy && k get node "$NODE_NAME" >/dev/null 2>&1 && running real-kubelet; then
  log "draining node $NODE_NAME (NoExecute taint; the kubelet stops every pod through containerd and CNI)"
  k taint node "$NODE_NAME" budgetgate.dev/teardown=:NoExecute --overwrite >>"$DLOG" 2>&1
  # Static and mirror pods aside, nothing tolerates that taint; wait for the
  # kubelet to report the pods gone and for their sandboxes to be stopped.
  deadline=$(($(now) + 60))
  while [ "$(now)" -lt "$deadline" ]; do
    n=$(k get pods -A --field-selector "spec.nodeName=$NODE_NAME" --no-headers 2>/dev/null | wc -l)
    s=$(ctr_ tasks ls -q 2>/dev/null | wc -l)
    [ "$n" = 0 ] && [ "$s" = 0 ] && break
    sleep 2
  done
  if [ "$n" = 0 ] && [ "$s" = 0 ]; then
    ok "node drained"
  else
    warn "still $n pods / $s containers after 60s; removing them forcibly"
  fi
fi

# 2. Node processes.
for p in "${NODE_PROCS[@]}"; do
  if [ "$p" = real-containerd ] && running real-containerd; then
    ids=$(ctr_ tasks ls -q 2>/dev/null || true)
    if [ -n "$ids" ]; then
      log "killing $(wc -w <<<"$ids") remaining containers"
      for id in $ids; do ctr_ tasks kill -s SIGKILL "$id" >>"$DLOG" 2>&1 || true; done
      sleep 1
      for id in $ids; do ctr_ tasks delete -f "$id" >>"$DLOG" 2>&1 || true; done
    fi
    for id in $(ctr_ containers ls -q 2>/dev/null || true); do ctr_ containers delete "$id" >>"$DLOG" 2>&1 || true; done
  fi
  if running "$p"; then
    log "stopping ${p#real-}"
    stop_bg "$p"
  fi
  rm -f "$STATE/$p.pid" "$STATE/$p.cmd"
  [ -f "$STATE/$p.log" ] && mv -f "$STATE/$p.log" "$RS/logs/${p#real-}.log"
done
left=$(node_pids)
if [ -n "$left" ]; then
  log "stopping leftover node processes: $(for p in $left; do printf '%s(%s) ' "$p" "$(basename "$(readlink "/proc/$p/exe" 2>/dev/null)")"; done)"
  for p in $left; do kill -TERM "$p" 2>/dev/null; done
  sleep 2
  for p in $(node_pids); do kill -KILL "$p" 2>/dev/null; done
  sleep 1
fi

# 3. Control plane.
"$ROOT/hack/cluster-down.sh"

# 4. Mounts.
mnts=$(mounts_under "$RS" /var/lib/kubelet /run/containerd /run/netns "$SHIM_DIR")
if [ -n "$mnts" ]; then
  log "unmounting $(wc -l <<<"$mnts") mounts (rootfs, shm, volumes, network namespaces)"
  while read -r m; do
    umount "$m" 2>>"$DLOG" || umount -l "$m" 2>>"$DLOG" || warn "cannot unmount $m"
  done <<<"$mnts"
fi
# Network namespaces made by the CNI/containerd outside the state dir, if any.
for ns in /run/netns/cni-*; do
  [ -e "$ns" ] || continue
  umount "$ns" 2>/dev/null; rm -f "$ns"
done

# 5. Network.
reclaim_stale_bridge
if ip link show "$BRIDGE" >/dev/null 2>&1; then
  alias=$(ip -o link show "$BRIDGE" | sed -n 's/.* alias \(.*\)$/\1/p')
  if [ "$alias" = "budgetgate $RS" ]; then
    for v in $(ip -o link show master "$BRIDGE" 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1); do
      ip link del "$v" 2>>"$DLOG" || true
    done
    log "deleting bridge $BRIDGE (and with it $NODE_IP, $POD_GW and the route to $SERVICE_CIDR)"
    ip link del "$BRIDGE"
  else
    warn "$BRIDGE belongs to another cluster (alias '$alias'); left alone"
  fi
fi
ip route del "$SERVICE_CIDR" 2>/dev/null || true
pre_existing() { grep -qx "chain $1 $2 $3" "$HS" 2>/dev/null; }
for cmd in $(iptables_cmds); do
  chains=$(node_chains "$cmd")
  [ -n "$chains" ] || continue
  log "$cmd: removing $(wc -l <<<"$chains") chains ($(awk '{print $2}' <<<"$chains" | sort -u | tr '\n' ' ' | cut -c1-120)...)"
  for t in filter nat mangle raw; do
    # Rules in any chain that jump to one of ours (reverse order keeps rule specs valid).
    "$cmd" -w 5 -t "$t" -S 2>/dev/null | grep -E '^-A ' | grep -E -- "-j (KUBE-|CNI-|$FW_CHAIN)" | tac |
      while read -r rule; do
        ch=$(awk '{print $2}' <<<"$rule")
        our_chain "$ch" && ! pre_existing "$cmd" "$t" "$ch" && continue # flushed below
        target=$(sed -n 's/.* -j \([^ ]*\).*/\1/p' <<<"$rule")
        pre_existing "$cmd" "$t" "$target" && continue
        eval "\"$cmd\" -w 5 -t $t ${rule/-A/-D}" 2>>"$DLOG" || true
      done
  done
  while read -r t c; do
    pre_existing "$cmd" "$t" "$c" || "$cmd" -w 5 -t "$t" -F "$c" 2>>"$DLOG"
  done <<<"$chains"
  while read -r t c; do
    pre_existing "$cmd" "$t" "$c" || "$cmd" -w 5 -t "$t" -X "$c" 2>>"$DLOG" || warn "$cmd -t $t -X $c failed"
  done <<<"$chains"
done
if command -v conntrack >/dev/null; then
  for cidr in "$POD_CIDR" "$SERVICE_CIDR"; do
    conntrack -D -s "$cidr" >/dev/null 2>&1 || true
    conntrack -D -d "$cidr" >/dev/null 2>&1 || true
  done
  conntrack -D -s "$NODE_IP" >/dev/null 2>&1 || true
fi

# 6. Sysctls.
restored=()
while read -r kind key val; do
  [ "$kind" = sysctl ] || continue
  cur=$(sysctl -n "$key" 2>/dev/null | tr '\t' ' ') || continue
  if [ "$cur" != "$val" ]; then
    if sysctl -qw "$key=$val" 2>>"$DLOG"; then
      restored+=("$key=$val (was $cur)")
    else
      warn "cannot restore $key=$val"
    fi
  fi
done <"$HS"
[ ${#restored[@]} -eq 0 ] || log "restored sysctls: ${restored[*]}"

# 7. cgroups, paths, state.
for root in $(cgroup_roots); do
  [ -d "$root/kubepods" ] || continue
  find "$root/kubepods" -depth -type d -exec rmdir {} \; 2>>"$DLOG"
  [ -d "$root/kubepods" ] && warn "cannot remove $root/kubepods (processes left: $(find "$root/kubepods" -name tasks -exec cat {} + 2>/dev/null | tr '\n' ' '))"
done
removed=()
while read -r kind p existed; do
  if [ "$kind" != path ] || [ "$existed" != 0 ] || [ ! -e "$p" ]; then continue; fi
  left=$(mounts_under "$p")
  [ -z "$left" ] || { warn "$p still has mounts: $left"; continue; }
  rm -rf "$p" && removed+=("$p")
done <"$HS"
if [ -d "$SHIM_DIR" ]; then rm -rf "$SHIM_DIR" && removed+=("$SHIM_DIR"); fi
[ ${#removed[@]} -eq 0 ] || log "removed host paths: ${removed[*]}"

rm -rf "$STATE/kube-cache"
if [ -d "$RS" ]; then
  [ -f "$RS/host-state.txt" ] && cp "$RS/host-state.txt" "$HOST_BEFORE"
  left=$(mounts_under "$RS")
  if [ -n "$left" ]; then
    warn "mounts left under $RSS, keeping it: $left"
  else
    find "$RS" -mindepth 1 -maxdepth 1 ! -name logs -exec rm -rf {} +
  fi
fi
ok "real-node cluster down ($(($(now) - start))s); logs kept in $RSS/logs"
