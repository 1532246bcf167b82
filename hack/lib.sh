# shellcheck shell=bash
# Shared helpers of the scripts in hack/ (the local cluster, the demo, the
# scripts that get binaries); source it, do not run it.
#
# How it works: it fixes where everything lives (binaries under bin/, all run
# state under .cluster/: the kwok workdir, the kubeconfig, certificates, logs,
# pid files and the ports in use, recorded in .cluster/ports.env so that later
# scripts and `make demo-down` find what earlier ones started), and offers
# small tools: logging, waiting with a timeout and a message that points at the
# logs, starting a background process with a pid file and stopping it again
# (checking the pid still belongs to that program), and picking free ports.
# It also loads every version pin of hack/versions.env (the environment wins)
# and get_or_build, the one way to get a binary (both from hack/get.sh).

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=hack/get.sh
. "$ROOT/hack/get.sh"
load_versions
K8S_BIN=${K8S_BIN:-$ROOT/bin/k8s/${K8S_VERSION#v}-$(go env GOOS)-$(go env GOARCH)}
KWOK_BIN=${KWOK_BIN:-$ROOT/bin/kwok}
PROM_BIN=${PROM_BIN:-$ROOT/bin/prometheus}
STATE=${BUDGETGATE_STATE:-$ROOT/.cluster}
CLUSTER_NAME=${CLUSTER_NAME:-budgetgate}
# shellcheck disable=SC2034 # used by the scripts that source this file
S=${STATE#"$ROOT"/} # for messages: .cluster unless moved
KUBECONFIG_FILE=$STATE/kubeconfig
KUBECTL=$K8S_BIN/kubectl
export KWOK_WORKDIR=$STATE/kwok

# shellcheck disable=SC2034 # colours, used by the scripts that source this file
if [ -t 1 ]; then
  B=$'\033[1m' G=$'\033[32m' R=$'\033[31m' Y=$'\033[33m' C=$'\033[36m' N=$'\033[0m'
else
  B='' G='' R='' Y='' C='' N=''
fi

log() { printf '%s==>%s %s %s(%ss)%s\n' "$C" "$N" "$*" "$C" "$SECONDS" "$N" >&2; }
ok() { printf '%s  ✓%s %s\n' "$G" "$N" "$*" >&2; }
warn() { printf '%s  !%s %s\n' "$Y" "$N" "$*" >&2; }
die() {
  printf '%sERROR:%s %s\n' "$R" "$N" "$*" >&2
  exit 1
}

# now prints seconds since the epoch.
now() { date +%s; }

# wait_for SECONDS WHAT HINT CMD...: runs CMD every 2 seconds until it succeeds;
# after SECONDS, fails with WHAT and HINT (which logs to read).
wait_for() {
  local timeout=$1 what=$2 hint=$3
  shift 3
  local deadline=$(($(now) + timeout))
  until "$@" >/dev/null 2>&1; do
    if [ "$(now)" -ge "$deadline" ]; then
      die "timed out after ${timeout}s waiting for $what. $hint"
    fi
    sleep 2
  done
}

k() { "$KUBECTL" --kubeconfig "$KUBECONFIG_FILE" "$@"; }

# port_free PORT: nothing listens on 127.0.0.1:PORT.
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# pick_port VAR DEFAULT: keeps VAR if set (from the environment or ports.env),
# else DEFAULT if free, else the next free port above it.
pick_port() {
  local var=$1 p=${!1:-}
  if [ -n "$p" ]; then PICKED_PORTS+=" $p "; return; fi
  p=$2
  # Free, and not already picked for another component of this run: two
  # busy defaults in a row would otherwise give both the same next port.
  while ! port_free "$p" || [[ ${PICKED_PORTS:-} == *" $p "* ]]; do p=$((p + 1)); done
  PICKED_PORTS+=" $p "
  printf -v "$var" '%s' "$p"
}

# save_ports VAR...: records ports in .cluster/ports.env.
save_ports() {
  mkdir -p "$STATE"
  : >"$STATE/ports.env.tmp"
  local v
  for v in "$@"; do printf '%s=%s\n' "$v" "${!v}" >>"$STATE/ports.env.tmp"; done
  mv "$STATE/ports.env.tmp" "$STATE/ports.env"
}

load_ports() {
  # shellcheck disable=SC1091
  if [ -f "$STATE/ports.env" ]; then . "$STATE/ports.env"; fi
}

# start_bg NAME CMD...: starts CMD in its own session, output in
# .cluster/NAME.log, pid in .cluster/NAME.pid.
start_bg() {
  local name=$1
  shift
  mkdir -p "$STATE"
  stop_bg "$name"
  setsid "$@" >"$STATE/$name.log" 2>&1 </dev/null &
  echo $! >"$STATE/$name.pid"
  printf '%s\n' "$1" >"$STATE/$name.cmd"
}

# running NAME: the process of .cluster/NAME.pid is alive and still the program
# that was started (its command line mentions the pid file's program).
running() {
  local pidfile=$STATE/$1.pid pid
  [ -f "$pidfile" ] || return 1
  pid=$(cat "$pidfile")
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  [ -r "/proc/$pid/cmdline" ] || return 0
  [ -f "$STATE/$1.cmd" ] || return 0
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$(basename "$(cat "$STATE/$1.cmd")")"
}

# stop_bg NAME: stops the process started by start_bg NAME, by its pid only.
stop_bg() {
  local name=$1 pidfile=$STATE/$1.pid pid
  [ -f "$pidfile" ] || return 0
  pid=$(cat "$pidfile")
  if [ -n "$pid" ] && running "$name"; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.2
    done
    if kill -0 "$pid" 2>/dev/null; then
      warn "$name (pid $pid) did not stop within 10s; killing it"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$pidfile" "$STATE/$name.cmd"
}

# ensure_binaries: gets every binary the local cluster needs into bin/,
# building what cannot be downloaded.
ensure_binaries() {
  "$ROOT/hack/k8s-binaries.sh" "$K8S_BIN" etcd kube-apiserver kube-controller-manager kube-scheduler kubectl
  "$ROOT/hack/kwok.sh" "$KWOK_BIN"
}

# cluster_healthy: the API server of the local cluster answers.
cluster_healthy() {
  [ -f "$KUBECONFIG_FILE" ] && k get --raw /readyz >/dev/null 2>&1
}
