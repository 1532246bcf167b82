#!/usr/bin/env bash
# Brings up the local cluster with one REAL node that runs containers
# (`make cluster-up-real`; docs/real-node.md).
#
#   hack/real-node-up.sh           bring it up (idempotent: a healthy cluster is only re-checked)
#   hack/real-node-up.sh --check   only say whether this machine can run it (exit 0 or 3)
#
# Exit status: 0 up and proven; 3 this machine cannot run a real node (not
# root, no usable cgroups, a kernel feature or an address range missing: the
# caller should fall back to the kwok cluster, `make cluster-up`); 1 anything
# else (see the logs it names).
#
# The addresses below are the defaults (hack/real-node-lib.sh; REAL_NODE_IP,
# REAL_POD_CIDR and REAL_SERVICE_CIDR move them).
#
# How it works, in order (every step prints what it does):
#  1. preflight: root, capabilities, cgroups (v1 or v2, writable), overlayfs,
#     namespaces, veth and bridge links, iptables, br_netfilter, ports, and the
#     addresses: the node address, pod range and Service range must be
#     well-formed and disjoint, lie in no route of this host but the default
#     one (not in its LAN), and hold none of the addresses the host needs while
#     the cluster is up (the GOPROXY and GOSUMDB hosts, the nameservers, the
#     default gateways); fails with exit 3 before touching anything.
#  2. binaries, built from the Go module proxy when they cannot be downloaded,
#     cached in bin/: the control plane and kubectl (hack/k8s-binaries.sh, as in
#     kwok mode) plus kubelet and kube-proxy; runc, containerd, its shim, ctr
#     and the CNI plugins (hack/node-binaries.sh, which also apt-gets iptables,
#     conntrack, socat and libseccomp-dev); the images (make image-pause
#     image-demo-app image-netcheck, hack/image) when bin/images lacks them.
#  3. records the host settings it is about to change (sysctls, which paths
#     outside the work dir exist, which iptables chains exist) in
#     .cluster/real/host-state.txt, for `down` to restore.
#  4. network: a bridge (bgbr0) holding the node address 198.51.100.250/32 and
#     the pod gateway 198.51.100.1/25, a route for the Service range
#     198.51.100.128/26 to it (source 198.51.100.250), ip_forward and
#     bridge-nf-call-iptables on, and a FORWARD guard chain (BUDGETGATE-FWD)
#     that drops anything forwarded into or out of the bridge from elsewhere,
#     so no packet of the cluster leaves the machine (pods have no default
#     route either; no masquerading).
#  5. control plane: kwokctl --runtime binary (etcd, kube-apiserver,
#     kube-controller-manager, kube-scheduler as local processes) with the
#     kwok controller disabled (it would take over the real node), the Service
#     range 198.51.100.128/26, advertise address 198.51.100.250, cert SANs for
#     it and the kubernetes Service (198.51.100.129), and a kubelet client
#     certificate (kwok's admin cert) so `kubectl logs` and `exec` reach the
#     kubelet by its InternalIP.
#  6. node certificates from the cluster CA (openssl): kubelet client
#     (system:node:NAME), kubelet serving (IP 198.51.100.250), kube-proxy client
#     (system:kube-proxy).
#  7. CNI: bridge + host-local (198.51.100.0/25; routes only to the Service
#     range and the node address, no default route) + portmap, in .cluster/real/cni.
#  8. containerd with root, state, socket, runc state and netns mounts under
#     .cluster/real (shim sockets in /run/budgetgate-s-HASH: their path must be
#     short), restrict_oom_score_adj (no CAP_SYS_RESOURCE here), the locally
#     built pause image as sandbox image; then every bin/images/*.tar is
#     imported (hack/real-node-load.sh), pinned so image GC never drops it.
#  9. kubelet (cgroupfs driver, cgroup v1 allowed, swap allowed, root dir and
#     pod logs under .cluster/real) and waits for the node to be Ready.
# 10. kube-proxy in iptables mode: Services for pods and for host processes
#     (the API server calls webhook Services by ClusterIP from the host).
# 11. proof: a 3-replica Deployment of the demo-app image to Ready, reached
#     through its Service ClusterIP from a pod (netcheck image), from the host
#     (the API server's path to webhooks) and through the API server's service
#     proxy; `kubectl logs` and `exec` work. REAL_SMOKE=0 skips it.
#
# State: .cluster/real (see hack/real-node-lib.sh); logs: .cluster/real/logs.
# `make cluster-down-real` (hack/real-node-down.sh) undoes all of it.
set -euo pipefail
# shellcheck source=hack/real-node-lib.sh
. "$(dirname "$0")/real-node-lib.sh"

CHECK_ONLY=0
[ "${1:-}" = --check ] && CHECK_ONLY=1
TIMEOUT=${CLUSTER_TIMEOUT:-180}
start=$(now)

# ---------------------------------------------------------------- preflight

has_cap() { # bit number
  local eff
  eff=$(awk '/^CapEff:/ {print $2}' /proc/self/status)
  (((16#$eff >> $1) & 1))
}

# What to tell the user when an address does not fit.
ADDR_HINT="choose free addresses with REAL_NODE_IP, REAL_POD_CIDR and REAL_SERVICE_CIDR (defaults $DEFAULT_NODE_IP, $DEFAULT_POD_CIDR, $DEFAULT_SERVICE_CIDR)"

# url_host URL: the host name of URL (scheme, user, port and path dropped);
# empty for an IPv6 literal.
url_host() {
  local h=${1#*://}
  h=${h%%/*}
  h=${h##*@}
  [[ $h == \[* ]] || echo "${h%%:*}"
}

# needed_addresses: "ADDRESS|NAME|WHAT" lines for every IPv4 address this
# host must still reach while the cluster is up, which sends the node address,
# the pod range and the Service range to the bridge: the hosts of GOPROXY and
# of the checksum database (go builds run while the cluster is up:
# hack/real.sh load and helm), the nameservers, the default gateways. A name
# that does not resolve gives "-|NAME|WHAT".
needed_addresses() {
  local e h a found name key url why="go builds run while the cluster is up: hack/real.sh load and helm"
  local -a entries=() hosts=()
  IFS=',|' read -ra entries <<<"$(go env GOPROXY 2>/dev/null || true)"
  for e in "${entries[@]}"; do
    case $e in "" | direct | off | file:*) continue ;; esac
    h=$(url_host "$e")
    [ -z "$h" ] || hosts+=("$h GOPROXY")
  done
  e=$(go env GOSUMDB 2>/dev/null || true)
  if [ "${e:-off}" != off ]; then
    read -r key url _ <<<"$e" # NAME[+KEY] [URL]; without a URL, go asks https://NAME
    name=${key%%+*}
    h=$(url_host "${url:-$name}")
    [ -z "$h" ] || hosts+=("$h GOSUMDB")
  fi
  for e in "${hosts[@]}"; do
    h=${e% *}
    found=0
    for a in $(timeout 10 getent ahostsv4 "$h" 2>/dev/null | awk '{print $1}' | sort -u); do
      echo "$a|$h|the address of $h (${e#* }; $why)"
      found=1
    done
    [ "$found" = 1 ] || echo "-|$h|$h (${e#* })"
  done
  awk '$1 == "nameserver" && $2 !~ /:/ {print $2 "|nameserver|a nameserver of /etc/resolv.conf"}' /etc/resolv.conf 2>/dev/null || true
  ip -4 route show table all 2>/dev/null | awk '$1 == "default" {
    gw = ""; dev = ""
    for (i = 2; i < NF; i++) { if ($i == "via") gw = $(i + 1); if ($i == "dev") dev = $(i + 1) }
    if (gw != "") print gw "|default gateway|the default gateway (dev " dev ")"
  }' | sort -u
}

# routes_over PREFIX: the host's routes (every table) that cover PREFIX or lie
# inside it, other than default routes and the bridge's own.
routes_over() {
  {
    ip -4 route show table all match "$1" 2>/dev/null
    ip -4 route show table all root "$1" 2>/dev/null
  } | grep -v -e '^default ' -e '^[a-z]* default ' -e " dev $BRIDGE " | sed 's/ *$//' | sort -u || true
}

# check_addresses: the node address and both ranges are well-formed, apart
# from each other, not in use on this host, and clear of every address the
# host needs (needed_addresses); exit 3 otherwise. Sets NEEDED (for the
# summary).
check_addresses() {
  local -A var=([node]="REAL_NODE_IP=$NODE_IP" [pods]="REAL_POD_CIDR=$POD_CIDR" [services]="REAL_SERVICE_CIDR=$SERVICE_CIDR")
  local -A net=([node]="$NODE_IP" [pods]="$POD_CIDR" [services]="$SERVICE_CIDR")
  local w x r a name what
  local -A verb=([node]=is [pods]=contains [services]=contains) lies=([node]="lies in" [pods]=overlaps [services]=overlaps)
  if [[ $NODE_IP == */* ]] || ! cidr_bounds "$NODE_IP" >/dev/null; then
    unsupported "${var[node]} is not an IPv4 address; $ADDR_HINT"
  fi
  for w in pods services; do
    if [[ ${net[$w]} != */* ]] || ! cidr_bounds "${net[$w]}" >/dev/null; then
      unsupported "${var[$w]} is not an IPv4 prefix A.B.C.D/LEN without host bits; $ADDR_HINT"
    fi
  done
  [ "${POD_CIDR#*/}" -le 28 ] || unsupported "${var[pods]} is too small: the pods need at least a /28; $ADDR_HINT"
  # hack/real.sh gives Prometheus and the demo service the 32nd and 33rd
  # address of the Service range (test/demo/real).
  [ "${SERVICE_CIDR#*/}" -le 26 ] ||
    unsupported "${var[services]} is too small: the Services need at least a /26 (test/demo/real's fixed ClusterIPs are its 32nd and 33rd address); $ADDR_HINT"
  if [ -z "$POD_GW" ] || [ -z "$API_SERVICE_IP" ]; then
    unsupported "no pod gateway or kubernetes Service address (REAL_POD_GW, REAL_API_SERVICE_IP); $ADDR_HINT"
  fi

  # Apart from each other.
  for w in node:pods node:services pods:services; do
    x=${w#*:}
    w=${w%:*}
    if cidrs_overlap "${net[$w]}" "${net[$x]}"; then
      unsupported "${var[$w]} and ${var[$x]} overlap: the node address, the pod range and the Service range must be disjoint; $ADDR_HINT"
    fi
  done

  # Not in use on this host: no route other than the default one (say, the
  # connected subnet of the host's LAN) covers them or lies inside them.
  for w in node pods services; do
    r=$(routes_over "${net[$w]}" | paste -sd ';' | sed 's/;/; /g')
    [ -z "$r" ] || unsupported "${var[$w]} ${lies[$w]} a network this host already reaches through another interface (route: $r; only the default route may cover it): on $BRIDGE it would cut the host off from those addresses or clash with a machine there; $ADDR_HINT"
  done
  if ip -4 -o addr show | grep -v " $BRIDGE " | grep -q " inet $NODE_IP/"; then
    unsupported "${var[node]} is already on another interface; $ADDR_HINT"
  fi
  if ip -4 route show table all | grep -q "via $NODE_IP "; then
    unsupported "${var[node]} is a gateway of this host ($(ip -4 route show table all | grep "via $NODE_IP " | head -1)); $ADDR_HINT"
  fi
  if ip neigh show to "$NODE_IP" 2>/dev/null | grep -q lladdr; then
    unsupported "another machine answers at ${var[node]} (ip neigh); $ADDR_HINT"
  fi

  # Clear of what the host needs.
  NEEDED=()
  while IFS='|' read -r a name what; do
    [ -n "$a" ] || continue
    if [ "$a" = - ]; then
      NEEDED+=("$name (does not resolve here)")
      continue
    fi
    NEEDED+=("$name $a")
    for w in node pods services; do
      cidr_contains "${net[$w]}" "$a" || continue
      unsupported "${var[$w]} ${verb[$w]} $a, $what: while the cluster is up this host would send that traffic to $BRIDGE and could no longer reach it; $ADDR_HINT"
    done
  done < <(needed_addresses)
}

preflight() {
  local probe=bgprobe$$
  [ "$(uname -s)" = Linux ] || unsupported "a real node needs Linux (this is $(uname -s))"
  [ "$(id -u)" = 0 ] || unsupported "a real node needs root (containerd, runc, the kubelet and the network setup do); run it as root"
  has_cap 21 || unsupported "CAP_SYS_ADMIN is missing (mounts, namespaces)"
  has_cap 12 || unsupported "CAP_NET_ADMIN is missing (bridge, veth, iptables)"
  has_cap 24 || ok "no CAP_SYS_RESOURCE: containerd gets restrict_oom_score_adj, kubelet and kube-proxy oomScoreAdj 0"

  # cgroups: v1 with the controllers the kubelet needs, or v2; writable.
  local cg
  if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
    CGROUP_VERSION=2
    for c in cpu memory pids; do
      grep -qw "$c" /sys/fs/cgroup/cgroup.controllers ||
        unsupported "cgroup v2 without the $c controller (/sys/fs/cgroup/cgroup.controllers: $(cat /sys/fs/cgroup/cgroup.controllers))"
    done
    cg=/sys/fs/cgroup
  else
    CGROUP_VERSION=1
    for c in cpu cpuacct cpuset memory pids devices freezer; do
      awk '$3 == "cgroup"' /proc/mounts | grep -qE "[ ,]${c}[ ,]" ||
        unsupported "cgroup v1 without the $c controller mounted (see /proc/mounts)"
    done
    cg=$(awk '$3 == "cgroup" && $4 ~ /(^|,)memory(,|$)/ {print $2; exit}' /proc/mounts)
  fi
  if ! mkdir "$cg/budgetgate-probe-$$" 2>/dev/null; then
    unsupported "cannot create cgroups under $cg (read-only cgroup filesystem?)"
  fi
  rmdir "$cg/budgetgate-probe-$$"

  grep -qw overlay /proc/filesystems || unsupported "the kernel has no overlay filesystem (containerd's overlayfs snapshotter)"
  grep -q '^Seccomp:' /proc/self/status || unsupported "the kernel has no seccomp"
  for ns in -n -m -p -u -i; do
    unshare "$ns" -f true 2>/dev/null || unsupported "cannot create namespaces (unshare $ns failed)"
  done
  ip link add "${probe}a" type veth peer name "${probe}b" 2>/dev/null ||
    unsupported "cannot create veth links (kernel without CONFIG_VETH?)"
  ip link del "${probe}a"
  ip link add "${probe}c" type bridge 2>/dev/null || unsupported "cannot create bridge links (kernel without CONFIG_BRIDGE?)"
  ip link del "${probe}c"
  if [ ! -d /proc/sys/net/bridge ]; then
    if command -v modprobe >/dev/null; then modprobe br_netfilter 2>/dev/null || true; fi
    [ -d /proc/sys/net/bridge ] || unsupported "no br_netfilter (/proc/sys/net/bridge): Services would not work between pods on the bridge"
  fi
  if command -v iptables >/dev/null; then
    iptables -w 5 -t nat -S >/dev/null 2>&1 || unsupported "iptables does not work here: $(iptables -w 5 -t nat -S 2>&1 | head -1)"
  fi

  # Address ranges: ours, or free.
  local alias
  reclaim_stale_bridge
  alias=$(bridge_alias)
  if ip link show "$BRIDGE" >/dev/null 2>&1 && [ "$alias" != "budgetgate $RS" ]; then
    unsupported "a link named $BRIDGE exists and is not this cluster's (alias '${alias:-none}'); another real-node cluster (state elsewhere) may be up: run its make cluster-down-real"
  fi
  check_addresses
  if [ -z "$alias" ]; then
    local p
    for p in 10250 10248 10249 10256; do
      ss -Hltn "sport = :$p" 2>/dev/null | grep -q . && unsupported "port $p (kubelet/kube-proxy) is in use: $(ss -Hltnp "sport = :$p" | head -1)"
    done
  fi
  return 0
}


log "preflight: can this machine run a real node?"
preflight
ok "root, cgroup v$CGROUP_VERSION, overlayfs, namespaces, veth, bridge, br_netfilter, iptables, free address ranges"
ok "node $NODE_IP, pods $POD_CIDR, Services $SERVICE_CIDR: disjoint, not routed elsewhere, and clear of what the host needs: $(printf '%s, ' "${NEEDED[@]}" | sed 's/, $//')"
if [ "$CHECK_ONLY" = 1 ]; then
  printf '%sThis machine can run the real-node cluster.%s\n' "$G" "$N"
  exit 0
fi
# Whatever fails from here on: say how to clean up.
# shellcheck disable=SC2154 # rc is assigned in the trap
trap 'rc=$?; [ $rc = 0 ] || [ $rc = '"$EXIT_UNSUPPORTED"' ] || printf "%sreal-node-up failed (exit %s).%s Logs: %s/logs/. Undo what it did: make cluster-down-real\n" "$R" "$rc" "$N" "$RSS" >&2' EXIT

# ---------------------------------------------------------------- binaries

log "binaries (bin/k8s, bin/kwok, bin/node; built from the Go module proxy when they cannot be downloaded)"
ensure_binaries
"$ROOT/hack/k8s-binaries.sh" "$K8S_BIN" kubelet kube-proxy
"$ROOT/hack/node-binaries.sh" "$ROOT/bin/node" >/dev/null
for c in iptables conntrack; do command -v "$c" >/dev/null || unsupported "$c is missing and could not be installed (apt-get install $c)"; done
missing=()
for i in pause demo-app netcheck; do [ -f "$IMAGES_DIR/$i.tar" ] || missing+=("image-$i"); done
if [ ${#missing[@]} -gt 0 ]; then
  log "images: make ${missing[*]} (hack/image; no Docker needed)"
  make -s -C "$ROOT" "${missing[@]}" >&2
fi
PAUSE_IMAGE=$(tar -xOf "$IMAGES_DIR/pause.tar" index.json | sed -n 's/.*"io.containerd.image.name": *"\([^"]*\)".*/\1/p' | head -1)
DEMO_IMAGE=$(tar -xOf "$IMAGES_DIR/demo-app.tar" index.json | sed -n 's/.*"io.containerd.image.name": *"\([^"]*\)".*/\1/p' | head -1)
NETCHECK_IMAGE=$(tar -xOf "$IMAGES_DIR/netcheck.tar" index.json | sed -n 's/.*"io.containerd.image.name": *"\([^"]*\)".*/\1/p' | head -1)
if [ -z "$PAUSE_IMAGE" ] || [ -z "$DEMO_IMAGE" ] || [ -z "$NETCHECK_IMAGE" ]; then
  die "cannot read the image names in $IMAGES_DIR/*.tar (index.json)"
fi
t_bins=$(now)
ok "binaries and images ready ($((t_bins - start))s)"

mkdir -p "$RS"/{logs,pki,containerd,kubelet,kube-proxy,cni/net.d,cni/ipam,log/pods}
SHIM_DIR=/run/budgetgate-s-$(printf '%s' "$RS" | sha256sum | cut -c1-8)

node_ready() {
  [ "$(k get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ]
}

already_up=0
if cluster_healthy && running real-containerd && running real-kubelet && running real-kube-proxy && node_ready; then
  already_up=1
  ok "the real-node cluster is already up (node $NODE_NAME Ready); re-checking it"
fi

# ------------------------------------------------------- host state, network

record_host_state() {
  local f=$RS/host-state.txt k p c
  [ -f "$f" ] && return 0 # recorded by an earlier, unfinished up: keep the original
  log "recording the host settings the node changes ($RSS/host-state.txt)"
  {
    echo "# host state before hack/real-node-up.sh, $(date -u +%FT%TZ)"
    for k in "${SYSCTLS[@]}"; do
      sysctl -n "$k" >/dev/null 2>&1 && printf 'sysctl %s %s\n' "$k" "$(sysctl -n "$k" | tr '\t' ' ')"
    done
    for p in "${HOST_PATHS[@]}"; do
      if [ -e "$p" ]; then echo "path $p 1"; else echo "path $p 0"; fi
    done
    for c in $(iptables_cmds); do
      node_chains "$c" | while read -r t ch; do echo "chain $c $t $ch"; done
    done
    echo "forward_policy $(iptables -w 5 -S FORWARD 2>/dev/null | awk '$1 == "-P" {print $3}')"
  } >"$f.tmp"
  mv "$f.tmp" "$f"
  cp "$f" "$HOST_BEFORE"
  # What exists outside the work dir, for hack/real-node-check-clean.sh.
  host_fs_listing >"$STATE/real-node-host-paths-before.txt"
}

setup_network() {
  log "network: bridge $BRIDGE ($NODE_IP/32, pod gateway $POD_GW), Service route $SERVICE_CIDR, guard chain $FW_CHAIN"
  if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    ip link add "$BRIDGE" type bridge
    ip link set "$BRIDGE" alias "budgetgate $RS"
  fi
  ip addr replace "$NODE_IP/32" dev "$BRIDGE"
  ip addr replace "$POD_GW/${POD_CIDR#*/}" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  ip route replace "$SERVICE_CIDR" dev "$BRIDGE" src "$NODE_IP"
  sysctl -qw net.ipv4.ip_forward=1
  sysctl -qw net.bridge.bridge-nf-call-iptables=1
  local fwd_before policy
  fwd_before=$(awk '$1 == "sysctl" && $2 == "net.ipv4.ip_forward" {print $3}' "$RS/host-state.txt")
  policy=$(awk '$1 == "forward_policy" {print $2}' "$RS/host-state.txt")
  iptables -w 5 -N "$FW_CHAIN" 2>/dev/null || iptables -w 5 -F "$FW_CHAIN"
  # Pod to pod (bridged, or routed through a Service DNAT): allowed.
  if [ "$policy" = DROP ]; then
    iptables -w 5 -A "$FW_CHAIN" -i "$BRIDGE" -o "$BRIDGE" -j ACCEPT
  else
    iptables -w 5 -A "$FW_CHAIN" -i "$BRIDGE" -o "$BRIDGE" -j RETURN
  fi
  # Nothing from the pods out of the machine, nothing from elsewhere to the pods.
  iptables -w 5 -A "$FW_CHAIN" -i "$BRIDGE" -j DROP
  iptables -w 5 -A "$FW_CHAIN" -o "$BRIDGE" -j DROP
  # The host did not forward before: it still forwards nothing else.
  [ "$fwd_before" = 1 ] || iptables -w 5 -A "$FW_CHAIN" -j DROP
  iptables -w 5 -C FORWARD -j "$FW_CHAIN" 2>/dev/null || iptables -w 5 -I FORWARD 1 -j "$FW_CHAIN"
}

# ------------------------------------------------------------ control plane

control_plane() {
  kwokctl() { "$KWOK_BIN/kwokctl" --name "$CLUSTER_NAME" "$@"; }
  if "$KWOK_BIN/kwokctl" get clusters 2>/dev/null | grep -qx "$CLUSTER_NAME" && cluster_healthy; then
    ok "control plane $CLUSTER_NAME is already up"
    return
  fi
  if "$KWOK_BIN/kwokctl" get clusters 2>/dev/null | grep -qx "$CLUSTER_NAME"; then
    warn "cluster $CLUSTER_NAME exists but its API server does not answer; recreating it"
    kwokctl delete cluster >>"$RS/logs/control-plane.log" 2>&1 || true
  fi
  log "control plane: kwokctl --runtime binary, kwok-controller disabled (log: $RSS/logs/control-plane.log)"
  # The controller manager's flags live here rather than in --extra-args:
  # kwokctl v0.8.0 indexes --extra-args of a second component wrongly and
  # panics when that component gets more than one.
  # use-service-account-credentials: each controller acts as its own
  # ServiceAccount, as on kubeadm, kind and managed clusters; budgetgate's
  # history gate knows the workload controllers by these identities.
  cat >"$RS/kwokctl.yaml" <<EOF
apiVersion: config.kwok.x-k8s.io/v1alpha1
kind: KwokctlConfiguration
options:
  kubeApiserverCertSANs:
  - $NODE_IP
  - $API_SERVICE_IP
componentsPatches:
- name: kube-controller-manager
  extraArgs:
  - key: service-cluster-ip-range
    value: $SERVICE_CIDR
  - key: use-service-account-credentials
    value: "true"
EOF
  rm -f "$KUBECONFIG_FILE"
  local a=kube-apiserver
  if ! KWOK_KUBE_VERSION=$K8S_VERSION KWOK_KUBECTL_BINARY=$KUBECTL kwokctl --config "$RS/kwokctl.yaml" create cluster \
    --runtime binary \
    --disable kwok-controller \
    --etcd-binary "$K8S_BIN/etcd" \
    --kube-apiserver-binary "$K8S_BIN/kube-apiserver" \
    --kube-controller-manager-binary "$K8S_BIN/kube-controller-manager" \
    --kube-scheduler-binary "$K8S_BIN/kube-scheduler" \
    --kwok-controller-binary "$KWOK_BIN/kwok" \
    --extra-args "$a=service-cluster-ip-range=$SERVICE_CIDR" \
    --extra-args "$a=advertise-address=$NODE_IP" \
    --extra-args "$a=kubelet-client-certificate=$KWOK_PKI/admin.crt" \
    --extra-args "$a=kubelet-client-key=$KWOK_PKI/admin.key" \
    --extra-args "$a=kubelet-certificate-authority=$KWOK_PKI/ca.crt" \
    --extra-args "$a=kubelet-preferred-address-types=InternalIP" \
    --kubeconfig "$KUBECONFIG_FILE" \
    --wait "${TIMEOUT}s" \
    --timeout "${TIMEOUT}s" >>"$RS/logs/control-plane.log" 2>&1; then
    tail -20 "$RS/logs/control-plane.log" >&2
    die "kwokctl create cluster failed. See $RSS/logs/control-plane.log and $S/kwok/clusters/$CLUSTER_NAME/logs/"
  fi
  ok "API server up ($(k config view --minify -o jsonpath='{.clusters[0].cluster.server}'))"
}

# ------------------------------------------------------------- certificates

# cert NAME CN ORG USAGE [SAN]: NAME.crt/.key in .cluster/real/pki, signed by the cluster CA.
cert() {
  local name=$1 cn=$2 org=$3 usage=$4 san=${5:-} pki=$RS/pki subj
  [ -s "$pki/$name.crt" ] && openssl verify -CAfile "$KWOK_PKI/ca.crt" "$pki/$name.crt" >/dev/null 2>&1 && return 0
  subj="/CN=$cn"
  [ -n "$org" ] && subj="/O=$org$subj"
  {
    echo "basicConstraints=critical,CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=$usage"
    [ -n "$san" ] && echo "subjectAltName=$san"
  } >"$pki/$name.ext"
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$pki/$name.key" \
    -subj "$subj" -out "$pki/$name.csr" 2>/dev/null
  openssl x509 -req -in "$pki/$name.csr" -CA "$KWOK_PKI/ca.crt" -CAkey "$KWOK_PKI/ca.key" -set_serial "0x$(openssl rand -hex 16)" \
    -days 30 -extfile "$pki/$name.ext" -out "$pki/$name.crt" 2>/dev/null
  rm -f "$pki/$name.csr" "$pki/$name.ext"
  chmod 600 "$pki/$name.key"
}

kubeconfig() { # FILE CERT-NAME USER
  local server
  server=$(k config view --minify -o jsonpath='{.clusters[0].cluster.server}')
  cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: $CLUSTER_NAME
  cluster:
    server: $server
    certificate-authority: $KWOK_PKI/ca.crt
users:
- name: $3
  user:
    client-certificate: $RS/pki/$2.crt
    client-key: $RS/pki/$2.key
contexts:
- name: $3@$CLUSTER_NAME
  context: {cluster: $CLUSTER_NAME, user: $3}
current-context: $3@$CLUSTER_NAME
EOF
}

node_certs() {
  log "node certificates from the cluster CA (kubelet client and serving, kube-proxy client)"
  cert kubelet-client "system:node:$NODE_NAME" system:nodes clientAuth
  cert kubelet-serving "system:node:$NODE_NAME" system:nodes serverAuth "IP:$NODE_IP,DNS:$NODE_NAME"
  cert kube-proxy system:kube-proxy "" clientAuth
  kubeconfig "$RS/kubelet/kubeconfig" kubelet-client "system:node:$NODE_NAME"
  kubeconfig "$RS/kube-proxy/kubeconfig" kube-proxy system:kube-proxy
}

# ---------------------------------------------------------------- containerd

containerd_up() {
  local c=$RS/containerd
  mkdir -p "$c"/{root,state,tmp,runc,opt,image-verifier}
  cat >"$c/config.toml" <<EOF
# containerd for the budgetgate real node (hack/real-node-up.sh). Everything
# under $RSS except the shim sockets, whose directory must be short.
version = 4
root = '$c/root'
state = '$c/state'
temp = '$c/tmp'
imports = []

[plugins]
  [plugins.'io.containerd.server.v1.grpc']
    address = '$CONTAINERD_SOCK'
  [plugins.'io.containerd.server.v1.ttrpc']
    address = '$CONTAINERD_SOCK.ttrpc'
  [plugins.'io.containerd.server.v1.debug']
    address = ''
  [plugins.'io.containerd.shim.v1.manager']
    socket_dir = '$SHIM_DIR'
  [plugins.'io.containerd.internal.v1.opt']
    path = '$c/opt'
  [plugins.'io.containerd.image-verifier.v1.bindir']
    bin_dir = '$c/image-verifier'
  [plugins.'io.containerd.nri.v1.nri']
    disable = true
  [plugins.'io.containerd.cri.v1.images']
    snapshotter = 'overlayfs'
    [plugins.'io.containerd.cri.v1.images'.pinned_images]
      sandbox = '$PAUSE_IMAGE'
  [plugins.'io.containerd.cri.v1.runtime']
    # This sandbox lacks CAP_SYS_RESOURCE: lowering oom_score_adj fails, so
    # keep containers at or above containerd's own.
    restrict_oom_score_adj = true
    netns_mounts_under_state_dir = true
    cdi_spec_dirs = []
    [plugins.'io.containerd.cri.v1.runtime'.containerd]
      default_runtime_name = 'runc'
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
        runtime_type = 'io.containerd.runc.v2'
        [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
          BinaryName = '$RUNC_DIR/runc'
          Root = '$c/runc'
          SystemdCgroup = false
    [plugins.'io.containerd.cri.v1.runtime'.cni]
      bin_dirs = ['$CNI_DIR']
      conf_dir = '$RS/cni/net.d'
      max_conf_num = 1
  [plugins.'io.containerd.grpc.v1.cri']
    stream_server_address = '127.0.0.1'
    stream_server_port = '0'
EOF
  if running real-containerd && ctr_ version >/dev/null 2>&1; then
    ok "containerd is already running"
  else
    log "containerd $CONTAINERD_VERSION (root, state and socket in $RSS/containerd; log: $RSS/logs/containerd.log)"
    PATH="$CONTAINERD_DIR:$RUNC_DIR:$PATH" start_bg real-containerd \
      "$CONTAINERD_DIR/containerd" --config "$c/config.toml" --log-level info
    ln -sf "$STATE/real-containerd.log" "$RS/logs/containerd.log"
    wait_for 60 "containerd to answer on $CONTAINERD_SOCK" "See $RSS/logs/containerd.log" ctr_ version
  fi
  log "images: importing bin/images/*.tar into containerd (namespace k8s.io, pinned)"
  "$ROOT/hack/real-node-load.sh" "$IMAGES_DIR"/*.tar
}

# ----------------------------------------------------------------------- CNI

# isGateway is false: the bridge plugin allows a single IPv4 address on a
# gateway bridge and would refuse (or, with forceAddress, delete) the node
# address; setup_network already put the pod gateway (POD_GW) on the bridge
# and turned on forwarding.
cni_config() {
  cat >"$RS/cni/net.d/10-budgetgate.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "budgetgate",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$BRIDGE",
      "isGateway": false,
      "isDefaultGateway": false,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$RS/cni/ipam",
        "ranges": [[{"subnet": "$POD_CIDR", "gateway": "$POD_GW"}]],
        "routes": [
          {"dst": "$SERVICE_CIDR", "gw": "$POD_GW"},
          {"dst": "$NODE_IP/32", "gw": "$POD_GW"}
        ]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}, "snat": false}
  ]
}
EOF
}

# ------------------------------------------------------------------- kubelet

kubelet_up() {
  local kc=$RS/kubelet
  cat >"$kc/config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_IP
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $KWOK_PKI/ca.crt}
authorization: {mode: Webhook}
tlsCertFile: $RS/pki/kubelet-serving.crt
tlsPrivateKeyFile: $RS/pki/kubelet-serving.key
rotateCertificates: false
serverTLSBootstrap: false
containerRuntimeEndpoint: unix://$CONTAINERD_SOCK
# This kernel mounts cgroup v1 only; the kubelet refuses it unless told.
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: /
failSwapOn: false
# No CAP_SYS_RESOURCE: the kubelet could not lower its own oom_score_adj.
oomScoreAdj: 0
podLogsDirectory: $RS/log/pods
# No cluster DNS; pods get no resolver (they could not reach one anyway).
resolvConf: ""
clusterDomain: cluster.local
# Images here cannot be pulled again: never garbage-collect them, and keep
# eviction out of the way of a busy disk.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard:
  memory.available: 100Mi
  nodefs.available: 1%
  nodefs.inodesFree: 1%
  imagefs.available: 1%
serializeImagePulls: false
maxPods: 110
EOF
  if running real-kubelet; then
    ok "kubelet is already running"
    return
  fi
  log "kubelet $K8S_VERSION as node $NODE_NAME ($NODE_IP; log: $RSS/logs/kubelet.log)"
  t_kubelet=$(now)
  PATH="$CONTAINERD_DIR:$RUNC_DIR:$PATH" start_bg real-kubelet "$K8S_BIN/kubelet" \
    --config "$kc/config.yaml" \
    --kubeconfig "$kc/kubeconfig" \
    --root-dir "$kc/root" \
    --cert-dir "$kc/pki" \
    --hostname-override "$NODE_NAME" \
    --node-ip "$NODE_IP" \
    --node-labels "budgetgate.dev/real-node=true" \
    --v 2
  ln -sf "$STATE/real-kubelet.log" "$RS/logs/kubelet.log"
}

# ---------------------------------------------------------------- kube-proxy

# Services: kube-proxy in iptables mode. The alternatives were worse here: the
# API server's aggregator routing (--enable-aggregator-routing) lets the API
# server call webhook endpoints directly but does nothing for pods calling
# Services; a hand-written iptables DNAT would re-implement kube-proxy. kube-proxy
# is built from the same module as the kubelet, handles pods (PREROUTING) and host
# processes such as the API server (OUTPUT) alike, and only adds KUBE-* chains,
# which `down` removes. No clusterCIDR: it does not masquerade traffic to
# Services (the host reaches pods with source NODE_IP, which pods route back
# to), only a pod's hairpin call to itself, on the bridge.
kube_proxy_up() {
  cat >"$RS/kube-proxy/config.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clientConnection:
  kubeconfig: $RS/kube-proxy/kubeconfig
hostnameOverride: $NODE_NAME
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
nodePortAddresses: ["$NODE_IP/32"]
oomScoreAdj: 0
# Leave the host's conntrack settings alone.
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
  udpTimeout: 0s
  udpStreamTimeout: 0s
iptables:
  localhostNodePorts: false
  masqueradeAll: false
  syncPeriod: 30s
  minSyncPeriod: 1s
EOF
  if running real-kube-proxy; then
    ok "kube-proxy is already running"
    return
  fi
  log "kube-proxy $K8S_VERSION, iptables mode (log: $RSS/logs/kube-proxy.log)"
  start_bg real-kube-proxy "$K8S_BIN/kube-proxy" --config "$RS/kube-proxy/config.yaml" --v 2
  ln -sf "$STATE/real-kube-proxy.log" "$RS/logs/kube-proxy.log"
  wait_for 60 "kube-proxy to program iptables (KUBE-SERVICES)" "See $RSS/logs/kube-proxy.log" \
    iptables -w 5 -t nat -S KUBE-SERVICES
}

# --------------------------------------------------------------------- proof

smoke() {
  local ns=real-smoke ip
  log "proof: 3-replica Deployment of $DEMO_IMAGE, Service, reached from a pod, from the host and via the API server"
  k delete namespace "$ns" --ignore-not-found --timeout=90s >/dev/null
  k apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Namespace
metadata:
  name: $ns
  labels:
    pod-security.kubernetes.io/enforce: restricted
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: demo, namespace: $ns}
spec:
  replicas: 3
  selector: {matchLabels: {app: demo}}
  template:
    metadata: {labels: {app: demo}}
    spec:
      securityContext: {runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}}
      terminationGracePeriodSeconds: 5
      containers:
      - name: demo
        image: $DEMO_IMAGE
        imagePullPolicy: Never
        args: ["--listen=:8099", "--rps=0"]
        ports: [{name: http, containerPort: 8099}]
        readinessProbe: {httpGet: {path: /healthz, port: 8099}, periodSeconds: 2}
        securityContext:
          allowPrivilegeEscalation: false
          readOnlyRootFilesystem: true
          capabilities: {drop: ["ALL"]}
---
apiVersion: v1
kind: Service
metadata: {name: demo, namespace: $ns}
spec:
  # A fixed ClusterIP low in the range, where the API server hands out none
  # by itself (it starts above the 16th address): the proof's Service never
  # takes test/demo/real's fixed addresses (the 32nd and 33rd).
  clusterIP: $(cidr_nth "$SERVICE_CIDR" 2)
  selector: {app: demo}
  ports: [{name: http, port: 8099, targetPort: http}]
EOF
  if ! k -n "$ns" rollout status deployment/demo --timeout=120s >/dev/null; then
    k -n "$ns" get pods -o wide >&2 || true
    k -n "$ns" describe pods >&2 | tail -40 || true
    die "the demo Deployment did not become Ready in 120s. See $RSS/logs/kubelet.log and containerd.log"
  fi
  k -n "$ns" get pods -o wide >&2
  ok "3/3 demo pods Ready ($(k -n "$ns" get pods -o jsonpath='{.items[*].status.podIP}'))"
  ip=$(k -n "$ns" get service demo -o jsonpath='{.spec.clusterIP}')

  # From a pod: the netcheck image GETs the ClusterIP.
  k -n "$ns" apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Pod
metadata: {name: netcheck, namespace: $ns}
spec:
  restartPolicy: Never
  securityContext: {runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}}
  containers:
  - name: netcheck
    image: $NETCHECK_IMAGE
    imagePullPolicy: Never
    args: ["--count=6", "--timeout=60s", "http://$ip:8099/healthz", "https://$API_SERVICE_IP:443/livez"]
    securityContext: {allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {drop: ["ALL"]}}
EOF
  wait_for 90 "the netcheck pod to finish" "See: kubectl -n $ns logs netcheck" \
    bash -c "p=\$('$KUBECTL' --kubeconfig '$KUBECONFIG_FILE' -n $ns get pod netcheck -o jsonpath='{.status.phase}'); [ \"\$p\" = Succeeded ] || [ \"\$p\" = Failed ]"
  if [ "$(k -n "$ns" get pod netcheck -o jsonpath='{.status.phase}')" != Succeeded ]; then
    k -n "$ns" logs netcheck >&2 || true
    die "a pod could not reach the Service ClusterIP $ip:8099 (logs above; kube-proxy log: $RSS/logs/kube-proxy.log)"
  fi
  k -n "$ns" logs netcheck | sed 's/^/    pod: /' >&2
  ok "pod → Service ClusterIP $ip:8099 (kube-proxy) works"

  # From the host, as the API server calls a webhook Service (by ClusterIP).
  curl -fsS --max-time 5 "http://$ip:8099/healthz" >/dev/null ||
    die "the host could not reach the Service ClusterIP $ip:8099 (kube-proxy OUTPUT rules)"
  ok "host (API server's path to webhook Services) → ClusterIP $ip:8099 works"
  [ "$(k get --raw "/api/v1/namespaces/$ns/services/http:demo:8099/proxy/healthz")" = ok ] ||
    die "the API server service proxy to demo failed"
  ok "API server service proxy → demo pods works"
  local pod
  pod=$(k -n "$ns" get pods -l app=demo -o jsonpath='{.items[0].metadata.name}')
  k -n "$ns" logs "$pod" | grep -q 'demo-app: serving' || die "kubectl logs $pod did not show the demo app's log"
  k -n "$ns" exec "$pod" -- /demo-app -h >/dev/null 2>&1 || die "kubectl exec into $pod failed"
  ok "kubectl logs and exec reach the kubelet ($NODE_IP:10250)"
  if [ "${REAL_SMOKE_KEEP:-}" != 1 ]; then
    k delete namespace "$ns" --wait=false >/dev/null
  fi
}

# --------------------------------------------------------------------- main

if [ "$already_up" = 0 ]; then
  record_host_state
  setup_network
  control_plane
  node_certs
  cni_config
  containerd_up
  kubelet_up
  wait_for "$TIMEOUT" "node $NODE_NAME to be Ready" "See $RSS/logs/kubelet.log" node_ready
  t_ready=$(now)
  ok "node $NODE_NAME Ready: $((t_ready - start))s after start, $((t_ready - t_bins)) s after the binaries were ready$([ -n "${t_kubelet:-}" ] && echo ", $((t_ready - t_kubelet))s after the kubelet started")"
  printf 'up_total=%s\nup_after_binaries=%s\nready_after_kubelet=%s\n' "$((t_ready - start))" "$((t_ready - t_bins))" "$((t_ready - ${t_kubelet:-$t_ready}))" >"$RS/timings.env"
  kube_proxy_up
else
  "$ROOT/hack/real-node-load.sh" "$IMAGES_DIR"/*.tar
fi
k get nodes -o wide >&2
[ "${REAL_SMOKE:-1}" = 0 ] || smoke

cat >"$RS/cluster.env" <<EOF
# The real-node cluster (hack/real-node-up.sh); source it.
KUBECONFIG=$KUBECONFIG_FILE
REAL_NODE_NAME=$NODE_NAME
REAL_NODE_IP=$NODE_IP
REAL_POD_CIDR=$POD_CIDR
REAL_SERVICE_CIDR=$SERVICE_CIDR
REAL_CONTAINERD_SOCK=$CONTAINERD_SOCK
REAL_CTR="$CONTAINERD_DIR/ctr --address $CONTAINERD_SOCK -n k8s.io"
REAL_LOAD_IMAGE="$ROOT/hack/real-node-load.sh"
EOF
envs=""
[ "$CLUSTER_NAME" = budgetgate ] || envs+="CLUSTER_NAME=$CLUSTER_NAME "
[ "$STATE" = "$ROOT/.cluster" ] || envs+="BUDGETGATE_STATE=$STATE "
printf '\n%sReal-node cluster %s is up%s (%ss). Use it with:\n  export KUBECONFIG=%s\n  %s get nodes\nLoad an image: %shack/real-node-load.sh bin/images/NAME.tar (pods: imagePullPolicy: Never)\nDown: %smake cluster-down-real\n' \
  "$B" "$CLUSTER_NAME" "$N" "$(($(now) - start))" "$KUBECONFIG_FILE" "$KUBECTL" "$envs" "$envs"
