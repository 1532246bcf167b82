# shellcheck shell=bash
# shellcheck disable=SC2034 # the settings are used by the scripts that source this file
# Shared settings and helpers of the real-node cluster (hack/real-node-up.sh,
# hack/real-node-down.sh, hack/real-node-check-clean.sh, hack/real-node-load.sh);
# source it, do not run it. It sources hack/lib.sh (paths, logging, start_bg...).
#
# What lives where:
#   .cluster/kubeconfig           admin kubeconfig (as in kwok mode)
#   .cluster/kwok/                the control plane (kwokctl --runtime binary, no kwok-controller)
#   .cluster/real/                everything of the node: pki/, containerd/ (config, root, state,
#                                 socket), kubelet/ (root dir, config), kube-proxy/, cni/ (conf,
#                                 IPAM state), log/pods/, logs/ (component logs), pid files,
#                                 host-state.txt (what the host looked like before `up`)
#   .cluster/real-node-host-before.txt   the last host-state.txt, kept by `down` for the check
#
# Addresses: all in one documentation range, RFC 5737 TEST-NET-2
# (198.51.100.0/24); nothing is routed out of the machine (docs/real-node.md):
#   pods     198.51.100.0/25, gateway 198.51.100.1 on the bridge
#   services 198.51.100.128/26 (kubernetes = .129; test/demo/real's Prometheus
#            and demo service = .160 and .161, the 32nd and 33rd address),
#            routed to the bridge
#   node     198.51.100.250/32 on the same bridge (InternalIP; kubelet,
#            NodePorts, API server advertise)
# Not TEST-NET-1 (192.0.2.0/24) nor TEST-NET-3 (203.0.113.0/24): this sandbox's
# LAN is 192.0.2.0/24 (eth0, default gateway 192.0.2.1) and the Go module proxy
# resolves to 203.0.113.80, which a Service route there would cut off. The
# REAL_NODE_IP, REAL_POD_CIDR and REAL_SERVICE_CIDR overrides move them;
# preflight (hack/real-node-up.sh) refuses ranges that collide with the host.

# shellcheck source=hack/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# kubectl's discovery cache would land in ~/.kube/cache: keep it in the state dir.
export KUBECACHEDIR=$STATE/kube-cache

# The pins of hack/versions.env (RUNC_VERSION, CONTAINERD_VERSION, ...) are
# loaded by hack/lib.sh.

RS=${REAL_STATE:-$STATE/real}
RSS=${RS#"$ROOT"/} # for messages
NODE_NAME=${REAL_NODE_NAME:-$CLUSTER_NAME-node}

# IPv4 arithmetic in bash (no python, no ipcalc).
# ip_int A.B.C.D: the address as an integer; fails on anything else.
ip_int() {
  local a b c d x
  [[ $1 =~ ^[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}$ ]] || return 1
  IFS=. read -r a b c d <<<"$1"
  for x in "$a" "$b" "$c" "$d"; do ((10#$x <= 255)) || return 1; done
  echo $(((10#$a << 24) | (10#$b << 16) | (10#$c << 8) | 10#$d))
}
# int_ip N: the integer as A.B.C.D.
int_ip() { echo "$(($1 >> 24 & 255)).$(($1 >> 16 & 255)).$(($1 >> 8 & 255)).$(($1 & 255))"; }
# cidr_bounds CIDR: "FIRST LAST" as integers (an address alone is a /32);
# fails unless CIDR is an IPv4 prefix without host bits.
cidr_bounds() {
  local len=32 n size
  [[ $1 == */* ]] && len=${1#*/}
  [[ $len =~ ^[0-9]{1,2}$ ]] && ((10#$len <= 32)) || return 1
  n=$(ip_int "${1%/*}") || return 1
  size=$((1 << (32 - 10#$len)))
  ((n % size == 0)) || return 1
  echo "$n $((n + size - 1))"
}
# cidr_contains CIDR ADDR: ADDR lies in CIDR.
cidr_contains() {
  local b n
  b=$(cidr_bounds "$1") && n=$(ip_int "$2") || return 1
  ((n >= ${b% *} && n <= ${b#* }))
}
# cidrs_overlap A B: the two prefixes (or addresses) share an address.
cidrs_overlap() {
  local a b
  a=$(cidr_bounds "$1") && b=$(cidr_bounds "$2") || return 1
  ((${a% *} <= ${b#* } && ${b% *} <= ${a#* }))
}
# cidr_nth CIDR N: the address N places after the start of CIDR (0 = the
# network address); fails when CIDR has no such address.
cidr_nth() {
  local b
  b=$(cidr_bounds "$1") && [[ $2 =~ ^[0-9]{1,10}$ ]] || return 1
  ((10#$2 <= ${b#* } - ${b% *})) || return 1
  int_ip $((${b% *} + 10#$2))
}

DEFAULT_NODE_IP=198.51.100.250
DEFAULT_POD_CIDR=198.51.100.0/25
DEFAULT_SERVICE_CIDR=198.51.100.128/26
NODE_IP=${REAL_NODE_IP:-$DEFAULT_NODE_IP}
POD_CIDR=${REAL_POD_CIDR:-$DEFAULT_POD_CIDR}
SERVICE_CIDR=${REAL_SERVICE_CIDR:-$DEFAULT_SERVICE_CIDR}
# The first address of each range: the pod gateway, the kubernetes Service
# (empty when a range is malformed: preflight says so).
POD_GW=${REAL_POD_GW:-$(cidr_nth "$POD_CIDR" 1 || true)}
API_SERVICE_IP=${REAL_API_SERVICE_IP:-$(cidr_nth "$SERVICE_CIDR" 1 || true)}
BRIDGE=${REAL_BRIDGE:-bgbr0}
FW_CHAIN=BUDGETGATE-FWD
HOST_BEFORE=$STATE/real-node-host-before.txt
IMAGES_DIR=${IMAGES_DIR:-$ROOT/bin/images}
EXIT_UNSUPPORTED=3

os_arch=$(go env GOOS)-$(go env GOARCH)
RUNC_DIR=$ROOT/bin/node/runc-$RUNC_VERSION-$os_arch
CONTAINERD_DIR=$ROOT/bin/node/containerd-$CONTAINERD_VERSION-$os_arch
CNI_DIR=$ROOT/bin/node/cni-plugins-$CNI_PLUGINS_VERSION-$os_arch
CONTAINERD_SOCK=$RS/containerd/containerd.sock
KWOK_PKI=$KWOK_WORKDIR/clusters/$CLUSTER_NAME/pki

# Host settings the node changes, restored by `down`: the bridge plugin and
# kube-proxy need forwarding and bridged traffic through iptables; the kubelet
# (protectKernelDefaults: false) sets the vm./kernel. tunables it wants.
SYSCTLS=(
  net.ipv4.ip_forward
  net.ipv4.conf.all.forwarding
  net.bridge.bridge-nf-call-iptables
  net.bridge.bridge-nf-call-ip6tables
  net.bridge.bridge-nf-call-arptables
  net.ipv4.conf.all.route_localnet
  vm.overcommit_memory
  vm.panic_on_oom
  kernel.panic
  kernel.panic_on_oops
  kernel.keys.root_maxkeys
  kernel.keys.root_maxbytes
  net.netfilter.nf_conntrack_max
  net.netfilter.nf_conntrack_tcp_timeout_established
  net.netfilter.nf_conntrack_tcp_timeout_close_wait
)

# Paths outside the work dir that containerd, runc, the kubelet or the CNI
# plugins may create even when told to keep their state under .cluster/real
# (hard-coded locations: the kubelet's /var/log/containers symlinks, the CNI
# result cache in /var/lib/cni, the shim socket dir /run/containerd/s, ...).
# `up` records which exist; `down` removes those that did not.
HOST_PATHS=(
  /var/lib/kubelet /var/log/containers /var/log/pods
  /run/containerd /var/lib/containerd /etc/containerd /opt/containerd
  /var/lib/cni /etc/cni /opt/cni /run/netns /run/runc
  /run/nri /opt/nri /etc/nri /run/cdi /etc/cdi
  /etc/kubernetes /var/lib/kube-proxy /run/kubernetes /var/lib/calico
)

# host_fs_listing: the paths, three levels deep, of the host directories the
# node could write to (outside the work dir), minus those that change on their
# own (package caches, journals) and /run/mount, util-linux's libmount state,
# which the first mount(8) or umount(8) on a freshly booted machine creates and
# every later one shares (down's unmounts may be that first one: a CI run on a
# fresh machine failed on it). `up` keeps one listing, the check compares.
host_fs_listing() {
  {
    find /etc /opt /run /var /srv /usr/local /root /home -xdev -maxdepth 3 \
      \( -path /root/go -o -path /root/.cache -o -path /var/cache -o -path /var/lib/apt \
      -o -path /var/lib/dpkg -o -path /var/log -o -path /run/user -o -path /var/tmp -o -path /var/mail \
      -o -path /run/sshd -o -path /run/mount -o -path /root/.bash_history -o -path /root/.lesshst -o -path /root/.viminfo \
      -o -path /root/.npm -o -path /root/.pyenv -o -path /root/.cargo -o -path /root/.rustup \) -prune -o -print 2>/dev/null || true
    # /var/log holds the kubelet's /var/log/containers and /var/log/pods: list them.
    find /var/log/containers /var/log/pods -maxdepth 0 2>/dev/null || true
  } | LC_ALL=C sort -u
}

# Processes of the node, started with start_bg (pid files in .cluster/).
NODE_PROCS=(real-kube-proxy real-kubelet real-containerd)

ctr_() { "$CONTAINERD_DIR/ctr" --address "$CONTAINERD_SOCK" -n k8s.io "$@"; }

# unsupported MESSAGE: this machine cannot run the real node; exit 3 so the
# caller can fall back to the kwok cluster.
unsupported() {
  printf '%sREAL NODE UNSUPPORTED:%s %s\n' "$Y" "$N" "$*" >&2
  printf '  (exit %s: use the kwok cluster instead: make cluster-up)\n' "$EXIT_UNSUPPORTED" >&2
  exit "$EXIT_UNSUPPORTED"
}

# iptables_cmds: the iptables front-ends to clean and check: iptables and
# ip6tables (what the kubelet and kube-proxy call; nft on Debian 12), plus the
# legacy backend only when the kernel already has legacy tables in use
# (/proc/net/ip_tables_names): merely listing a legacy table would register it.
iptables_cmds() {
  local c
  for c in iptables ip6tables; do
    command -v "$c" >/dev/null 2>&1 && echo "$c"
  done
  if [ -n "$(cat /proc/net/ip_tables_names 2>/dev/null)" ] && command -v iptables-legacy >/dev/null &&
    ! iptables -V 2>/dev/null | grep -q legacy; then
    echo iptables-legacy
  fi
  if [ -n "$(cat /proc/net/ip6_tables_names 2>/dev/null)" ] && command -v ip6tables-legacy >/dev/null &&
    ! ip6tables -V 2>/dev/null | grep -q legacy; then
    echo ip6tables-legacy
  fi
}

# our_chain NAME: chains the node creates (kube-proxy, kubelet, portmap, ours).
our_chain() { [[ $1 == KUBE-* || $1 == CNI-* || $1 == "$FW_CHAIN" ]]; }

# node_chains CMD: "table chain" lines of our chains present in CMD's tables.
node_chains() {
  local cmd=$1 t
  for t in filter nat mangle raw; do
    "$cmd" -w 5 -t "$t" -S 2>/dev/null | awk -v t="$t" '$1 == "-N" {print t, $2}'
  done | while read -r t c; do our_chain "$c" && echo "$t $c"; done
}

# cgroup_roots: the mounted cgroup hierarchies (v1: one per controller; v2: one).
cgroup_roots() {
  awk '$3 == "cgroup" || $3 == "cgroup2" {print $2}' /proc/mounts | sort -u
}

# mounts_under PREFIX...: mount points at or below any PREFIX, deepest first.
mounts_under() {
  local p
  awk '{print $2}' /proc/self/mounts | sed 's/\\040/ /g' | while read -r m; do
    for p in "$@"; do
      if [ "$m" = "$p" ] || [[ $m == "$p"/* ]]; then echo "$m"; break; fi
    done
  done | awk '{print length, $0}' | sort -rn | cut -d' ' -f2- | awk '!seen[$0]++'
}

# A bridge named $BRIDGE carries the alias "budgetgate <state dir>" of the cluster
# that made it. One whose cluster no longer runs (its state dir is gone, or no
# kubelet, kube-proxy or containerd runs anywhere on this machine) is stale: a
# cluster left behind by a killed run, or a machine image taken while one was up.
# bridge_alias prints the alias of the bridge (empty when none or no alias).
bridge_alias() {
  ip -o link show "$BRIDGE" 2>/dev/null | sed -n 's/.* alias \(.*\)$/\1/p' || true
}
# bridge_owner_runs ALIAS: does the cluster that made the bridge still run?
bridge_owner_runs() {
  local dir=${1#budgetgate }
  [ "$dir" != "$1" ] || return 0 # not ours to judge: some other software's link
  [ -d "$dir" ] || return 1
  local pid comm
  for pid in /proc/[0-9]*; do
    comm=$(cat "$pid/comm" 2>/dev/null) || continue
    case $comm in kubelet | kube-proxy | containerd) return 0 ;; esac
  done
  return 1
}
# reclaim_stale_bridge: delete the bridge, its veths and the route to the Service
# range when they belong to a budgetgate cluster that no longer runs.
reclaim_stale_bridge() {
  local alias v
  ip link show "$BRIDGE" >/dev/null 2>&1 || return 0
  alias=$(bridge_alias)
  [ -n "$alias" ] && [ "$alias" != "budgetgate $RS" ] || return 0
  bridge_owner_runs "$alias" && return 0
  warn "$BRIDGE was left by a cluster that no longer runs (alias '$alias'): removing it, its veths and its routes"
  for v in $(ip -o link show master "$BRIDGE" 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1); do
    ip link del "$v" 2>/dev/null || true
  done
  ip link del "$BRIDGE" 2>/dev/null || true
  ip route del "$SERVICE_CIDR" 2>/dev/null || true
}

# node_pids: processes of the node (by executable under bin/node or the
# kubelet/kube-proxy of bin/k8s, or a shim/pause/container whose cgroup is
# under kubepods), excluding this shell.
node_pids() {
  local pid exe
  for pid in /proc/[0-9]*; do
    pid=${pid#/proc/}
    [ "$pid" = $$ ] && continue
    exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || continue
    case $exe in
      "$ROOT"/bin/node/* | "$K8S_BIN"/kubelet | "$K8S_BIN"/kube-proxy) echo "$pid"; continue ;;
    esac
    grep -qs ':/kubepods' "/proc/$pid/cgroup" && echo "$pid"
  done
}
