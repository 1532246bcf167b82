#!/usr/bin/env bash
# Checks that the machine is as it was before `make cluster-up-real`, after
# `make cluster-down-real` (which runs this). Exit 0 when clean; 1 listing
# every leftover otherwise.
#
#   hack/real-node-check-clean.sh
#
# What it checks, against what hack/real-node-up.sh recorded before it changed
# anything (.cluster/real-node-host-before.txt and
# .cluster/real-node-host-paths-before.txt, kept by down):
#   - processes: nothing runs from bin/node (containerd, shims, runc), no
#     kubelet or kube-proxy of bin/k8s, nothing in a kubepods cgroup, no control
#     plane process of the cluster's kwok workdir;
#   - mounts: none under .cluster/real, /var/lib/kubelet, /run/containerd,
#     /run/netns, no overlay or nsfs mount of the cluster anywhere;
#   - network: no bridge bgbr0, no veth left on it, no node address
#     (198.51.100.250 by default) and no route to the pod or Service range
#     (198.51.100.0/25, 198.51.100.128/26); no KUBE-*, CNI-* or BUDGETGATE-*
#     chain in any table of iptables/ip6tables (nft and legacy) that was not
#     there before;
#   - sysctls: every recorded one has its old value again;
#   - cgroups: no kubepods in any hierarchy;
#   - paths: every path outside the work dir that did not exist before (the
#     recorded list plus a 3-level listing of /etc /opt /run /var /srv
#     /usr/local /root /home) is gone.
set -uo pipefail
# shellcheck source=hack/real-node-lib.sh
. "$(dirname "$0")/real-node-lib.sh"

HS=$HOST_BEFORE
LISTING=$STATE/real-node-host-paths-before.txt
SHIM_DIR=/run/budgetgate-s-$(printf '%s' "$RS" | sha256sum | cut -c1-8)
fail=0
bad() {
  printf '%s  ✗%s %s\n' "$R" "$N" "$*" >&2
  fail=1
}

log "checking that the real node left nothing behind"
[ -f "$HS" ] || warn "no record of the host before up ($HS): checking processes, mounts, links, chains and cgroups only"

# Processes.
pids=$(node_pids)
for p in $(pgrep -f "^$KWOK_WORKDIR/clusters/$CLUSTER_NAME/bin/" 2>/dev/null || true); do pids+=" $p"; done
if [ -n "${pids// /}" ]; then
  for p in $pids; do bad "process $p still runs: $(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | cut -c1-120)"; done
else
  ok "no node or control-plane processes"
fi

# Mounts.
m=$(mounts_under "$RS" /var/lib/kubelet /run/containerd /run/netns "$SHIM_DIR")
m+=$(awk -v rs="$RS" '($3 == "nsfs" || $3 == "overlay") && index($2, rs) == 1 {print "\n" $2}' /proc/self/mounts)
if [ -n "${m//$'\n'/}" ]; then
  while read -r x; do [ -n "$x" ] && bad "mount left: $x"; done <<<"$m"
else
  ok "no mounts left"
fi

# Network.
if ip link show "$BRIDGE" >/dev/null 2>&1; then bad "link $BRIDGE still exists"; else ok "no bridge $BRIDGE"; fi
v=$(ip -o link show type veth 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1 | grep -E '^veth' || true)
[ -z "$v" ] || bad "veth links left: $(tr '\n' ' ' <<<"$v")"
ip -4 -o addr show | grep -q " inet $NODE_IP/" && bad "the address $NODE_IP is still on $(ip -4 -o addr show | awk -v a="$NODE_IP/" 'index($4, a) == 1 {print $2}')"
for cidr in "$POD_CIDR" "$SERVICE_CIDR"; do
  r=$(ip -4 route show root "$cidr" 2>/dev/null)
  [ -z "$r" ] || bad "route left: $r"
done
chains_left=0
for cmd in $(iptables_cmds); do
  while read -r t c; do
    [ -n "$c" ] || continue
    grep -qx "chain $cmd $t $c" "$HS" 2>/dev/null && continue
    bad "$cmd: chain $c left in table $t"
    chains_left=1
  done <<<"$(node_chains "$cmd")"
  for t in filter nat mangle raw; do
    while read -r rule; do
      [ -n "$rule" ] || continue
      target=$(sed -n 's/.* -j \([^ ]*\).*/\1/p' <<<"$rule")
      grep -qx "chain $cmd $t $target" "$HS" 2>/dev/null && continue
      bad "$cmd -t $t: rule left: $rule"
      chains_left=1
    done <<<"$("$cmd" -w 5 -t "$t" -S 2>/dev/null | grep -E -- "-j (KUBE-|CNI-|$FW_CHAIN)")"
  done
done
[ "$chains_left" = 1 ] || ok "no KUBE-*, CNI-*, $FW_CHAIN chains or jumps ($(iptables_cmds | tr '\n' ' '))"

# Sysctls.
if [ -f "$HS" ]; then
  diffs=0
  while read -r kind key val; do
    [ "$kind" = sysctl ] || continue
    cur=$(sysctl -n "$key" 2>/dev/null | tr '\t' ' ')
    if [ "$cur" != "$val" ]; then bad "sysctl $key is $cur, was $val"; diffs=1; fi
  done <"$HS"
  [ "$diffs" = 1 ] || ok "sysctls as before ($(grep -c '^sysctl ' "$HS") checked)"
fi

# cgroups.
cg=""
for root in $(cgroup_roots); do [ -d "$root/kubepods" ] && cg+=" $root/kubepods"; done
if [ -n "$cg" ]; then bad "cgroups left:$cg"; else ok "no kubepods cgroups"; fi

# Paths outside the work dir.
if [ -f "$HS" ]; then
  new=()
  while read -r kind p existed; do
    [ "$kind" = path ] && [ "$existed" = 0 ] && [ -e "$p" ] && new+=("$p")
  done <"$HS"
  [ -e "$SHIM_DIR" ] && new+=("$SHIM_DIR")
  if [ -f "$LISTING" ]; then
    while read -r p; do new+=("$p"); done < <(LC_ALL=C comm -13 <(LC_ALL=C sort -u "$LISTING") <(host_fs_listing))
  fi
  if [ ${#new[@]} -gt 0 ]; then
    while read -r p; do bad "path created outside the work dir: $p"; done < <(printf '%s\n' "${new[@]}" | LC_ALL=C sort -u)
  else
    ok "no new paths outside the work dir$([ -f "$LISTING" ] && echo " ($(wc -l <"$LISTING") listed before)")"
  fi
fi

if [ "$fail" = 0 ]; then
  printf '%sThe machine is clean.%s\n' "$G" "$N"
else
  printf '%sLeftovers found (above).%s New paths can also come from other work on this machine while\n' "$R" "$N"
  printf 'the cluster ran (e.g. ~/.kube/cache from kubectl talking to a kwok cluster); check their times.\n'
fi
exit "$fail"
