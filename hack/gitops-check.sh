#!/usr/bin/env bash
# `make test-gitops`: real Flux and real Argo CD against the local kwok cluster
# with budgetgate, telling the story of docs/gitops.md with assertions: it
# fails when the behaviour that page documents does not happen.
#
# How it works: it gets Flux's source-controller and kustomize-controller
# (hack/flux.sh) and Argo CD (hack/argocd.sh) into bin/, built from the Go
# module proxy, and needs redis-server (Debian: apt-get install redis-server)
# for Argo CD. It brings up the demo's setup on a cluster of its own
# (DEMO_SETUP_ONLY=1 hack/demo.sh with CLUSTER_NAME=budgetgate-gitops and
# state in .cluster/gitops: kwok cluster, Prometheus, the checkout service whose
# error rate decides the freeze, the operator and its webhooks). It serves a git
# repository over smart HTTP (hack/gitserver, `git http-backend`), and runs as
# local processes, each as its own ServiceAccount (bound to cluster-admin, as
# Flux's and Argo CD's install manifests bind theirs): source-controller and
# kustomize-controller (Kustomization web → namespace web-flux), Argo CD's repo
# server and application controller with a loopback redis (Application web,
# syncPolicy.retry with limit 20 → namespace web-argo; Application
# web-noretry, no syncPolicy.retry → web-argo-noretry). Argo CD reaches the
# cluster through a cluster Secret (it runs outside the cluster, so its
# in-cluster destination does not work); timeout.reconciliation is 15s
# (ARGOCD_RECONCILIATION_TIMEOUT) so that it sees commits quickly. The
# repository's app/ holds a Deployment web, a ConfigMap web-config and the SLO
# web-availability (selecting web, measured on the checkout service); each
# tool applies it into its namespace. The story, with what it asserts:
#
#   1. 1.0.0, then 1.1.0, sync everywhere (no freeze); the SLO is Healthy in Argo CD
#   2. errors start: the three SLOs freeze; Argo CD shows the SLO and the
#      application Degraded (config/gitops/argocd-cm.yaml, merged into
#      argocd-cm with the command docs/gitops.md gives)
#   3. commit 1.2.0: denied everywhere. Flux: Ready=False with the denial
#      from its dry run, nothing of the commit applied, no ReleaseDenied Event;
#      Argo CD: operation retrying, the ConfigMap of the commit applied, a
#      ReleaseDenied Event
#   4. git revert of 1.2.0 and 1.1.0: Flux rolls back to 1.0.0 at once; both
#      Argo CD applications keep retrying the denied commit, web-noretry until
#      Argo CD's default 5 retries run out, then it rolls back by itself; web
#      (limit 20) only once its operation is terminated (what `argocd app
#      terminate-op` does)
#   5. a hotfix commit (release-class hotfix): admitted everywhere, the
#      controllers being cluster-admin, which includes release-during-freeze
#   6. commit 1.2.0 again (the hotfix claim left in place): denied; web-noretry
#      gives up after its 5 retries
#   7. errors stop, the freeze lifts: Flux and web land 1.2.0 by themselves
#      (measured); web-noretry does not until synced by hand
#
# The transcript (everything on stdout) goes to GITOPS_TRANSCRIPT
# (docs/gitops-transcript.txt); docs/gitops.md quotes it. Everything is torn
# down at the end (hack/demo-down.sh) unless GITOPS_KEEP=1; then remove it with
#   CLUSTER_NAME=budgetgate-gitops BUDGETGATE_STATE=$PWD/.cluster/gitops hack/demo-down.sh
# Knobs: GITOPS_FREEZE_TIMEOUT (300), GITOPS_LIFT_TIMEOUT (360) seconds.
set -euo pipefail
ROOT_DIR=$(cd "$(dirname "$0")/.." && pwd)
export CLUSTER_NAME=${CLUSTER_NAME:-budgetgate-gitops}
export BUDGETGATE_STATE=${BUDGETGATE_STATE:-$ROOT_DIR/.cluster/gitops}
# shellcheck source=hack/lib.sh
. "$ROOT_DIR/hack/lib.sh"
# shellcheck source=hack/story.sh
. "$ROOT/hack/story.sh"

TRANSCRIPT=${GITOPS_TRANSCRIPT:-$ROOT/docs/gitops-transcript.txt}
FREEZE_TIMEOUT=${GITOPS_FREEZE_TIMEOUT:-300}
LIFT_TIMEOUT=${GITOPS_LIFT_TIMEOUT:-360}
FLUX_BIN=$ROOT/bin/flux
ARGOCD_BIN=$ROOT/bin/argocd
GIT_ROOT=$STATE/git      # bare repositories, served over HTTP
WORK=$STATE/git-work     # the clone that commits
GBIN=$STATE/gitops-bin   # argocd-* names for the one argocd binary
IMAGE=registry.example/shop/web
NAMESPACES=(web-flux web-argo web-argo-noretry)
GIT_PORT=${GIT_PORT:-} # picked in main, with the other ports

# ---- output helpers (stdout is the transcript; lib.sh logs go to stderr) ----
check() { printf '  ✓ %s\n' "$*"; }
fail() {
  printf 'FAILED: %s\n' "$*"
  die "$*"
}
note() { printf '    %s\n' "$*"; }
gitc() { # shows and runs git ARGS in the working clone
  printf '$ git %s\n' "$(shown "$@")"
  git -C "$WORK" "$@" 2>&1 | sed 's/^/    /'
  return "${PIPESTATUS[0]}"
}
fluxk() { k -n flux-system "$@"; }
argok() { k -n argocd "$@"; }
# yaml_of KIND NAME NS SECTION...: `kubectl get -o yaml` of the object, only
# the given top-level keys of .status (two-space indented in kubectl's output).
yaml_of() {
  local kind=$1 name=$2 ns=$3
  shift 3
  local keys
  keys=$(printf '%s|' "$@")
  printf '$ kubectl -n %s get %s %s -o yaml   # status: %s\n' "$ns" "$kind" "$name" "$(printf '%s ' "$@")"
  k -n "$ns" get "$kind" "$name" -o yaml | awk -v keys="|${keys}" '
    /^status:/ { in_status = 1; next }
    in_status && /^[^ ]/ { in_status = 0 }
    in_status && /^  [A-Za-z]/ { key = $1; sub(/:.*/, "", key); show = index(keys, "|" key "|") > 0 }
    in_status && show { print "    " $0 }'
}

image_of() { k -n "$1" get deployment web -o jsonpath='{.spec.template.spec.containers[0].image}' 2>/dev/null; }
config_of() { k -n "$1" get configmap web-config -o jsonpath='{.data.release}' 2>/dev/null; }
slo_frozen() { [ "$(k -n "$1" get slo web-availability -o jsonpath='{.status.freeze.active}' 2>/dev/null)" = true ]; }
slo_lifted() { [ "$(k -n "$1" get slo web-availability -o jsonpath='{.status.freeze.active}' 2>/dev/null)" = false ]; }
all_frozen() { local ns; for ns in "${NAMESPACES[@]}"; do slo_frozen "$ns" || return 1; done; }
all_lifted() { local ns; for ns in "${NAMESPACES[@]}"; do slo_lifted "$ns" || return 1; done; }
rolled_out() { k -n "$1" rollout status deployment/web --timeout=2s >/dev/null 2>&1; }
has_image() { [ "$(image_of "$1")" = "$IMAGE:$2" ] && rolled_out "$1"; }

ks_field() { fluxk get kustomization web -o jsonpath="{$1}" 2>/dev/null; }
ks_ready() { ks_field '.status.conditions[?(@.type=="Ready")].status'; }
ks_message() { ks_field '.status.conditions[?(@.type=="Ready")].message'; }
# ks_applied SHA: the Kustomization is Ready at SHA.
ks_applied() { [ "$(ks_ready)" = True ] && [[ $(ks_field .status.lastAppliedRevision) == *"$1" ]]; }
ks_handled() { [ "$(ks_field .status.lastHandledReconcileAt)" = "$1" ]; }
# ks_denied SHA: it tried SHA and is not Ready with budgetgate's denial.
ks_denied() { [ "$(ks_ready)" = False ] && [[ $(ks_field .status.lastAttemptedRevision) == *"$1" ]] && [[ $(ks_message) == *budgetgate* ]]; }

app_field() { argok get application "$1" -o jsonpath="{$2}" 2>/dev/null; }
# app_synced APP SHA: the last operation succeeded at SHA and the app is Synced.
app_synced() {
  [ "$(app_field "$1" .status.operationState.phase)" = Succeeded ] &&
    [ "$(app_field "$1" .status.operationState.syncResult.revision)" = "$2" ] &&
    [ "$(app_field "$1" .status.sync.status)" = Synced ]
}
# app_failed APP SHA: the last operation, for SHA, failed with budgetgate's denial.
app_failed() {
  [ "$(app_field "$1" .status.operationState.phase)" = Failed ] &&
    [ "$(app_field "$1" .status.operationState.operation.sync.revision)" = "$2" ] &&
    [[ $(app_field "$1" .status.operationState.message) == *budgetgate* ]]
}
# app_retrying APP SHA: an operation for SHA is running, retrying after budgetgate's denial.
app_retrying() {
  [ "$(app_field "$1" .status.operationState.phase)" = Running ] &&
    [ "$(app_field "$1" .status.operationState.operation.sync.revision)" = "$2" ] &&
    [ "$(app_field "$1" .status.operationState.retryCount)" -ge 1 ] 2>/dev/null &&
    [[ $(app_field "$1" .status.operationState.message) == *budgetgate* ]]
}
# slo_health_is APP STATUS: Argo CD gives the app's SLO that health.
slo_health_is() {
  [ "$(argok get application "$1" -o jsonpath='{.status.resources[?(@.kind=="ServiceLevelObjective")].health.status}' 2>/dev/null)" = "$2" ]
}
# slo_resource APP: the SLO's entry in the application's status.resources.
slo_resource() {
  printf '$ kubectl -n argocd get application %s -o yaml   # the SLO in status.resources\n' "$1"
  argok get application "$1" -o yaml |
    awk '/^  resources:/ { r = 1; next } r && /^  [a-z]/ { r = 0 } r' |
    awk '/^  - / { if (blk ~ /ServiceLevelObjective/) printf "%s", blk; blk = "" } { blk = blk "    " $0 "\n" } END { if (blk ~ /ServiceLevelObjective/) printf "%s", blk }'
}
# op_events APP: the application's last failed and last successful
# OperationCompleted Events, each on one line, long ones cut in the middle.
op_events() {
  printf '$ kubectl -n argocd get events --field-selector involvedObject.name=%s,reason=OperationCompleted\n' "$1"
  argok get events --field-selector "involvedObject.name=$1,reason=OperationCompleted" --sort-by=.lastTimestamp \
    -o jsonpath='{range .items[*]}{.message}{"@@"}{end}' | tr '\n' ' ' | sed 's/@@/\n/g' |
    awk '/^Sync operation/ { if (/ failed: /) f = $0; else o = $0 } END { if (f != "") print f; if (o != "") print o }' |
    awk '{ if (length($0) > 200) print substr($0, 1, 150) " ... " substr($0, length($0) - 40); else print }' | sed 's/^/    /'
}
kc_apps() {
  kc -n argocd get applications -o custom-columns='NAME:.metadata.name,SYNC:.status.sync.status,HEALTH:.status.health.status,OPERATION:.status.operationState.phase,RETRIES:.status.operationState.retryCount,OPERATION-REVISION:.status.operationState.operation.sync.revision,IMAGE:.status.summary.images[0]'
}
app_has_condition() { [[ " $(app_field "$1" '.status.conditions[*].type') " == *" $2 "* ]]; }
app_health_is() { [ "$(app_field "$1" .status.health.status)" = "$2" ]; }
template_claims_hotfix() {
  [ -n "$(k -n "$1" get deployment web -o jsonpath='{.spec.template.metadata.annotations.budgetgate\.dev/release-class}' 2>/dev/null)" ]
}

# commit MESSAGE: commits everything in the working clone and pushes it to the
# served repository; SHA is the new commit.
commit() {
  git -C "$WORK" add -A
  gitc commit -q -a -m "$1"
  push
}
push() {
  gitc push -q origin main
  SHA=$(git -C "$WORK" rev-parse HEAD)
  note "HEAD is now ${SHA:0:7} ($(git -C "$WORK" log -1 --format=%s))"
}
set_image() { sed -i "s|image: $IMAGE:.*|image: $IMAGE:$1|" "$WORK/app/deployment.yaml"; }
set_release() { sed -i "s|release: .*|release: \"$1\"|" "$WORK/app/configmap.yaml"; }

# wait_until SECONDS WHAT CMD...: like wait_for, but the failure goes into the transcript.
wait_until() {
  local timeout=$1 what=$2
  shift 2
  local deadline=$(($(now) + timeout))
  until "$@" >/dev/null 2>&1; do
    [ "$(now)" -lt "$deadline" ] || fail "timed out after ${timeout}s waiting for $what. Logs: $S/*.log (kept in bin/gitops-logs/ after the teardown)"
    sleep 2
  done
}

cleanup() {
  local rc=$?
  if [ "${GITOPS_KEEP:-}" = 1 ]; then
    warn "GITOPS_KEEP=1: everything is still running. Remove it with: CLUSTER_NAME=$CLUSTER_NAME BUDGETGATE_STATE=$STATE hack/demo-down.sh"
    return
  fi
  if [ "$rc" -ne 0 ] && [ -d "$STATE" ]; then
    rm -rf "$ROOT/bin/gitops-logs"
    mkdir -p "$ROOT/bin/gitops-logs"
    cp "$STATE"/*.log "$ROOT/bin/gitops-logs/" 2>/dev/null || true
    cp -r "$STATE/kwok/clusters/$CLUSTER_NAME/logs" "$ROOT/bin/gitops-logs/cluster" 2>/dev/null || true
    warn "the run failed: its logs are kept in bin/gitops-logs/"
  fi
  log "tearing down (hack/demo-down.sh: controllers, redis, git server, operator, Prometheus, cluster, $S/)"
  "$ROOT/hack/demo-down.sh" >&2 || warn "hack/demo-down.sh failed; see above"
  return "$rc"
}

start_git_server() {
  rm -rf "$GIT_ROOT" "$WORK"
  mkdir -p "$GIT_ROOT"
  git init -q --bare -b main "$GIT_ROOT/shop.git"
  git clone -q "$GIT_ROOT/shop.git" "$WORK" 2>/dev/null
  git -C "$WORK" config user.name "Dev"
  git -C "$WORK" config user.email "dev@shop.example"
  (cd "$ROOT" && go build -o "$ROOT/bin/gitserver" ./hack/gitserver) || die "go build ./hack/gitserver failed"
  start_bg gitserver "$ROOT/bin/gitserver" --root "$GIT_ROOT" --listen "127.0.0.1:$GIT_PORT"
  wait_for 30 "the git server" "See $S/gitserver.log" git ls-remote "$REPO_URL"
}

# sa_kubeconfig NAMESPACE NAME FILE: ServiceAccount NAMESPACE/NAME bound to
# cluster-admin, and a kubeconfig for it (a 24h token) in FILE.
sa_kubeconfig() {
  local ns=$1 sa=$2 file=$3 token admin
  k create serviceaccount -n "$ns" "$sa" --dry-run=client -o yaml | k apply -f - >/dev/null
  k create clusterrolebinding "gitops-$sa" --clusterrole=cluster-admin --serviceaccount="$ns:$sa" \
    --dry-run=client -o yaml | k apply -f - >/dev/null
  token=$(k create token -n "$ns" "$sa" --duration=24h) || die "kubectl create token $ns/$sa failed"
  admin=$(k config view -o jsonpath='{.contexts[0].context.user}')
  cp "$KUBECONFIG_FILE" "$file"
  chmod 600 "$file"
  KUBECONFIG=$file "$KUBECTL" config set-credentials "$sa" --token="$token" >/dev/null
  KUBECONFIG=$file "$KUBECTL" config set-context --current --user="$sa" --namespace="$ns" >/dev/null
  KUBECONFIG=$file "$KUBECTL" config unset "users.$admin" >/dev/null
}

start_flux() {
  k create namespace flux-system --dry-run=client -o yaml | k apply -f - >/dev/null
  k apply --server-side -f "$FLUX_BIN/crds/" >/dev/null
  wait_for 60 "Flux's CRDs" "See $S/kwok/clusters/$CLUSTER_NAME/logs/kube-apiserver.log" \
    k wait --for=condition=Established --timeout=10s crd/gitrepositories.source.toolkit.fluxcd.io \
    crd/kustomizations.kustomize.toolkit.fluxcd.io
  sa_kubeconfig flux-system source-controller "$STATE/source-controller.kubeconfig"
  sa_kubeconfig flux-system kustomize-controller "$STATE/kustomize-controller.kubeconfig"
  mkdir -p "$STATE/flux-storage"
  # The Flux controllers take their kubeconfig from KUBECONFIG only.
  KUBECONFIG=$STATE/source-controller.kubeconfig RUNTIME_NAMESPACE=flux-system start_bg source-controller "$FLUX_BIN/source-controller" \
    --storage-path "$STATE/flux-storage" --storage-addr "127.0.0.1:$FLUX_STORAGE_PORT" \
    --storage-adv-addr "127.0.0.1:$FLUX_STORAGE_PORT" \
    --metrics-addr "127.0.0.1:$SC_METRICS_PORT" --health-addr "127.0.0.1:$SC_HEALTH_PORT" \
    --enable-leader-election=false --log-encoding=console
  KUBECONFIG=$STATE/kustomize-controller.kubeconfig RUNTIME_NAMESPACE=flux-system start_bg kustomize-controller "$FLUX_BIN/kustomize-controller" \
    --metrics-addr "127.0.0.1:$KC_METRICS_PORT" --health-addr "127.0.0.1:$KC_HEALTH_PORT" \
    --enable-leader-election=false --log-encoding=console
  wait_for 60 "source-controller to be ready" "See $S/source-controller.log" curl -fsS "http://127.0.0.1:$SC_HEALTH_PORT/readyz"
  wait_for 60 "kustomize-controller to be ready" "See $S/kustomize-controller.log" curl -fsS "http://127.0.0.1:$KC_HEALTH_PORT/readyz"
}

start_argocd() {
  mkdir -p "$GBIN"
  local c server ca token
  for c in argocd-application-controller argocd-repo-server argocd-git-ask-pass; do
    ln -sf "$ARGOCD_BIN/argocd" "$GBIN/$c"
  done
  k create namespace argocd --dry-run=client -o yaml | k apply -f - >/dev/null
  k apply --server-side -f "$ARGOCD_BIN/crds/" >/dev/null
  wait_for 60 "Argo CD's CRDs" "See $S/kwok/clusters/$CLUSTER_NAME/logs/kube-apiserver.log" \
    k wait --for=condition=Established --timeout=10s crd/applications.argoproj.io crd/appprojects.argoproj.io
  sa_kubeconfig argocd argocd-application-controller "$STATE/argocd-application-controller.kubeconfig"
  # The controller runs outside the cluster, where Argo CD's in-cluster
  # destination (https://kubernetes.default.svc) has no service account to
  # use: register the cluster by its address, with the controller's token.
  server=$(k config view --minify -o jsonpath='{.clusters[0].cluster.server}')
  ca=$(base64 -w0 <"$(k config view --minify -o jsonpath='{.clusters[0].cluster.certificate-authority}')")
  token=$(KUBECONFIG=$STATE/argocd-application-controller.kubeconfig "$KUBECTL" config view --raw --minify -o jsonpath='{.users[0].user.token}')
  CLUSTER_SERVER=$server
  k apply -f - >/dev/null <<YAML
apiVersion: v1
kind: ConfigMap
metadata:
  name: argocd-cm
  namespace: argocd
  labels: {app.kubernetes.io/name: argocd-cm, app.kubernetes.io/part-of: argocd}
data:
  timeout.reconciliation: 15s
---
apiVersion: v1
kind: Secret
metadata:
  name: argocd-secret
  namespace: argocd
  labels: {app.kubernetes.io/name: argocd-secret, app.kubernetes.io/part-of: argocd}
---
apiVersion: v1
kind: Secret
metadata:
  name: cluster-local
  namespace: argocd
  labels: {argocd.argoproj.io/secret-type: cluster}
stringData:
  name: local
  server: $server
  config: '{"bearerToken":"$token","tlsClientConfig":{"caData":"$ca"}}'
---
apiVersion: argoproj.io/v1alpha1
kind: AppProject
metadata:
  name: default
  namespace: argocd
spec:
  sourceRepos: ["*"]
  destinations: [{server: "*", namespace: "*"}]
  clusterResourceWhitelist: [{group: "*", kind: "*"}]
YAML
  start_bg argocd-redis redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no
  wait_for 30 "redis" "See $S/argocd-redis.log" bash -c "exec 3<>/dev/tcp/127.0.0.1/$REDIS_PORT"
  # ARGOCD_RECONCILIATION_TIMEOUT is argocd-cm's timeout.reconciliation, which
  # Argo CD's manifests pass to both as that variable: how often the repo
  # server resolves the branch again and the controller compares (default 120s).
  PATH=$GBIN:$PATH ARGOCD_GPG_ENABLED=false ARGOCD_RECONCILIATION_TIMEOUT=15s \
    start_bg argocd-repo-server "$GBIN/argocd-repo-server" \
    --address 127.0.0.1 --port "$REPO_SERVER_PORT" \
    --metrics-address 127.0.0.1 --metrics-port "$REPO_SERVER_METRICS_PORT" \
    --redis "127.0.0.1:$REDIS_PORT" --logformat text
  # --persist-resource-health: Argo CD 3 keeps resource health out of the
  # Application's status.resources unless asked (argocd-cmd-params-cm
  # controller.resource.health.persist); the check reads it there.
  PATH=$GBIN:$PATH ARGOCD_RECONCILIATION_TIMEOUT=15s ARGOCD_RECONCILIATION_JITTER=0 \
    start_bg argocd-application-controller "$GBIN/argocd-application-controller" \
    --kubeconfig "$STATE/argocd-application-controller.kubeconfig" --namespace argocd \
    --repo-server "127.0.0.1:$REPO_SERVER_PORT" --redis "127.0.0.1:$REDIS_PORT" \
    --metrics-port "$ARGOCD_METRICS_PORT" --persist-resource-health --logformat text
  wait_for 60 "the Argo CD application controller" "See $S/argocd-application-controller.log" \
    curl -fsS "http://127.0.0.1:$ARGOCD_METRICS_PORT/metrics"
}

write_app() {
  mkdir -p "$WORK/app"
  cat >"$WORK/app/deployment.yaml" <<YAML
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels:
    app.kubernetes.io/name: web
    app.kubernetes.io/part-of: web
spec:
  replicas: 2
  revisionHistoryLimit: 10
  selector:
    matchLabels:
      app.kubernetes.io/name: web
  template:
    metadata:
      labels:
        app.kubernetes.io/name: web
        app.kubernetes.io/part-of: web
    spec:
      containers:
        - name: web
          image: $IMAGE:1.0.0
YAML
  cat >"$WORK/app/configmap.yaml" <<YAML
apiVersion: v1
kind: ConfigMap
metadata:
  name: web-config
data:
  release: "1.0.0"
YAML
  cat >"$WORK/app/slo.yaml" <<YAML
# The team's SLO, in git with the app. It measures the demo's checkout
# service, whose error rate the check sets.
apiVersion: slo.budgetgate.dev/v1alpha1
kind: ServiceLevelObjective
metadata:
  name: web-availability
spec:
  target: "99"
  window: 1h
  indicator:
    ratio:
      errors: http_requests_total{job="checkout",code=~"5.."}
      total: http_requests_total{job="checkout"}
  workloadSelector:
    matchLabels:
      app.kubernetes.io/part-of: web
  policyRef:
    name: demo
  evaluationInterval: 10s
YAML
}

apply_gitops_objects() {
  k apply -f - >/dev/null <<YAML
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata:
  name: shop
  namespace: flux-system
spec:
  interval: 15s
  url: $REPO_URL
  ref:
    branch: main
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: web
  namespace: flux-system
spec:
  interval: 1m
  retryInterval: 30s
  timeout: 1m
  path: ./app
  prune: true
  wait: true
  targetNamespace: web-flux
  sourceRef:
    kind: GitRepository
    name: shop
---
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: web
  namespace: argocd
spec:
  project: default
  source:
    repoURL: $REPO_URL
    targetRevision: main
    path: app
  destination:
    server: $CLUSTER_SERVER
    namespace: web-argo
  syncPolicy:
    automated:
      selfHeal: true
    syncOptions: [CreateNamespace=true]
    retry:
      limit: 20
      backoff:
        duration: 10s
        factor: 2
        maxDuration: 1m
---
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: web-noretry
  namespace: argocd
spec:
  project: default
  source:
    repoURL: $REPO_URL
    targetRevision: main
    path: app
  destination:
    server: $CLUSTER_SERVER
    namespace: web-argo-noretry
  syncPolicy:
    automated:
      selfHeal: true
    syncOptions: [CreateNamespace=true]
YAML
}

set_error_rate() {
  printf '$ curl -X POST "http://127.0.0.1:%s/admin/error-rate?value=%s"   # the checkout service the SLOs measure\n' "$DEMO_APP_PORT" "$1"
  curl -fsS --max-time 5 -X POST "http://127.0.0.1:$DEMO_APP_PORT/admin/error-rate?value=$1" >/dev/null ||
    fail "could not set the demo app's error rate"
}

show_state() { # a compact view of the three namespaces
  local ns
  printf '    %-18s %-40s %-11s %s\n' NAMESPACE IMAGE WEB-CONFIG FROZEN
  for ns in "${NAMESPACES[@]}"; do
    printf '    %-18s %-40s %-11s %s\n' "$ns" "$(image_of "$ns")" "$(config_of "$ns")" \
      "$(k -n "$ns" get slo web-availability -o jsonpath='{.status.freeze.active}' 2>/dev/null)"
  done
}

main() {
  printf 'budgetgate under GitOps: real Flux and real Argo CD on the local kwok cluster (hack/gitops-check.sh)\n'
  printf 'Run %s UTC; Flux source-controller %s, kustomize-controller %s; Argo CD %s; Kubernetes %s; %s.\n' \
    "$(date -u +%Y-%m-%dT%H:%MZ)" "$FLUX_SOURCE_CONTROLLER_VERSION" "$FLUX_KUSTOMIZE_CONTROLLER_VERSION" \
    "$ARGOCD_VERSION" "$K8S_VERSION" "$(go version | cut -d' ' -f3)"
  story_start

  # ---- setup (logs on stderr, not in the transcript) ----
  local t0
  t0=$(now)
  command -v redis-server >/dev/null || die "Argo CD needs redis-server (Debian/Ubuntu: apt-get install redis-server)"
  command -v git >/dev/null || die "needs git"
  log "Flux and Argo CD binaries (bin/flux, bin/argocd; built from the Go module proxy the first time)"
  "$ROOT/hack/flux.sh" "$FLUX_BIN" >&2
  "$ROOT/hack/argocd.sh" "$ARGOCD_BIN" >&2
  local t_bins=$(($(now) - t0))
  log "the demo's setup on cluster $CLUSTER_NAME ($S): DEMO_SETUP_ONLY=1 hack/demo.sh"
  DEMO_SETUP_ONLY=1 "$ROOT/hack/demo.sh" >&2 || die "hack/demo.sh failed (see above)"
  load_ports
  pick_port GIT_PORT 8090
  pick_port FLUX_STORAGE_PORT 9790
  pick_port SC_METRICS_PORT 9800
  pick_port SC_HEALTH_PORT 9810
  pick_port KC_METRICS_PORT 9820
  pick_port KC_HEALTH_PORT 9830
  pick_port REDIS_PORT 6379
  pick_port REPO_SERVER_PORT 8281
  pick_port REPO_SERVER_METRICS_PORT 8284
  pick_port ARGOCD_METRICS_PORT 8282
  save_ports PROMETHEUS_PORT DEMO_APP_PORT WEBHOOK_PORT METRICS_PORT PROBE_PORT GIT_PORT FLUX_STORAGE_PORT \
    SC_METRICS_PORT SC_HEALTH_PORT KC_METRICS_PORT KC_HEALTH_PORT REDIS_PORT REPO_SERVER_PORT \
    REPO_SERVER_METRICS_PORT ARGOCD_METRICS_PORT
  REPO_URL=http://127.0.0.1:$GIT_PORT/shop.git
  k apply -f "$STORY_DIR/demo-policy.yaml" >/dev/null
  log "git server ($REPO_URL), Flux, Argo CD"
  start_git_server
  start_flux
  start_argocd
  local t_setup=$(($(now) - t0))
  ok "setup done in ${t_setup}s (binaries ${t_bins}s)"

  heading "Setup"
  say "A git repository served over smart HTTP at $REPO_URL (git http-backend). Flux's source-controller and kustomize-controller, and Argo CD's repo server and application controller (with redis), run as local processes, each as its own ServiceAccount bound to cluster-admin, as their install manifests bind them. Argo CD reaches the cluster through a cluster Secret with its ServiceAccount's token, and argocd-cm has timeout.reconciliation: 15s (default 120s), so it sees a commit within about 15s. budgetgate's operator runs with the demo's policy (fast-burn: 5x over 2m and 30s; a freeze holds at least 1m)."
  kc get serviceaccounts -A --field-selector metadata.namespace!=kube-system,metadata.name!=default
  say "Argo CD health for SLOs, merged into argocd-cm exactly as docs/gitops.md says:"
  printf '$ kubectl -n argocd patch configmap argocd-cm --type merge --patch-file config/gitops/argocd-cm.yaml\n'
  (cd "$ROOT" && k -n argocd patch configmap argocd-cm --type merge --patch-file config/gitops/argocd-cm.yaml) 2>&1 | sed 's/^/    /'
  [ -n "$(argok get configmap argocd-cm -o jsonpath='{.data.resource\.customizations\.health\.slo\.budgetgate\.dev_ServiceLevelObjective}')" ] ||
    fail "argocd-cm has no health check for SLOs after the patch"

  heading "1.0.0, then 1.1.0, sync everywhere (no freeze)"
  write_app
  say "app/ holds deployment.yaml (web, image $IMAGE:1.0.0, 2 replicas), configmap.yaml (web-config, release: \"1.0.0\") and slo.yaml (web-availability: 99% over 1h of the checkout service's requests, policy demo, selecting app.kubernetes.io/part-of: web)."
  local c0 c1 c2 c3 c4 c5
  commit "web 1.0.0 with its SLO"
  c0=$SHA
  k create namespace web-flux >/dev/null
  apply_gitops_objects
  say "Flux: GitRepository shop (interval 15s) and Kustomization web (path ./app, interval 1m, retryInterval 30s, wait: true, targetNamespace web-flux). Argo CD: Application web (automated with selfHeal, syncPolicy.retry limit 20, backoff 10s ×2 up to 1m, → web-argo) and Application web-noretry (the same without syncPolicy.retry, → web-argo-noretry)."
  wait_until 180 "Flux to apply ${c0:0:7}" ks_applied "$c0"
  wait_until 180 "Argo CD to sync web to ${c0:0:7}" app_synced web "$c0"
  wait_until 180 "Argo CD to sync web-noretry to ${c0:0:7}" app_synced web-noretry "$c0"
  for ns in "${NAMESPACES[@]}"; do wait_until 120 "1.0.0 to roll out in $ns" has_image "$ns" 1.0.0; done
  set_image 1.1.0
  set_release 1.1.0
  commit "release 1.1.0"
  c1=$SHA
  local t_c1
  t_c1=$(now)
  wait_until 180 "Flux to apply ${c1:0:7}" ks_applied "$c1"
  wait_until 180 "Argo CD to sync web to ${c1:0:7}" app_synced web "$c1"
  wait_until 180 "Argo CD to sync web-noretry to ${c1:0:7}" app_synced web-noretry "$c1"
  for ns in "${NAMESPACES[@]}"; do wait_until 120 "1.1.0 to roll out in $ns" has_image "$ns" 1.1.0; done
  check "1.1.0 rolled out in all three namespaces $(($(now) - t_c1))s after the commit"
  kc -n flux-system get gitrepository,kustomization
  kc -n argocd get applications
  wait_until 120 "the SLOs' first evaluation" all_lifted
  wait_until 120 "Argo CD to see the SLO Healthy" slo_health_is web Healthy
  slo_resource web
  show_state

  heading "Errors start: the three SLOs freeze"
  set_error_rate 0.3
  local t_inject t_freeze
  t_inject=$(now)
  wait_until "$FREEZE_TIMEOUT" "the three SLOs to freeze" all_frozen
  t_freeze=$(now)
  check "frozen $((t_freeze - t_inject))s after the errors started"
  kc get slo -A
  wait_until 60 "Argo CD to show the SLO Degraded" slo_health_is web Degraded
  wait_until 60 "Argo CD to show the application Degraded" app_health_is web Degraded
  check "Argo CD: SLO web-availability Degraded (config/gitops/argocd-cm.yaml), so application web Degraded"
  kc -n argocd get applications
  slo_resource web
  say "Flux health-checks what it applies (wait: true). A frozen SLO is Ready, so Flux counts it healthy; asking for a reconciliation now, as flux reconcile kustomization web does:"
  local asked
  asked=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  kc -n flux-system annotate --overwrite kustomization web "reconcile.fluxcd.io/requestedAt=$asked"
  wait_until 90 "Flux to reconcile on request" ks_handled "$asked"
  [ "$(ks_ready)" = True ] || fail "the Kustomization is not Ready with the SLO frozen: $(ks_message)"
  [ "$(ks_field '.status.conditions[?(@.type=="Healthy")].status')" = True ] || fail "Flux's health check fails with the SLO frozen"
  check "Flux: Ready and Healthy with the SLO frozen"
  yaml_of kustomization web flux-system conditions

  heading "1.2.0 is committed while frozen: denied"
  set_image 1.2.0
  set_release 1.2.0
  commit "release 1.2.0"
  c2=$SHA
  say "The commit changes the Deployment's image and the ConfigMap web-config."
  wait_until 180 "Flux to be denied at ${c2:0:7}" ks_denied "$c2"
  wait_until 180 "Argo CD web to retry ${c2:0:7}" app_retrying web "$c2"
  wait_until 180 "Argo CD web-noretry to retry ${c2:0:7}" app_retrying web-noretry "$c2"
  say "Flux:"
  kc -n flux-system get kustomization web
  yaml_of kustomization web flux-system conditions lastAppliedRevision lastAttemptedRevision
  printf '$ kubectl -n flux-system get events --field-selector involvedObject.name=web   # the latest\n'
  fluxk get events --field-selector involvedObject.name=web --sort-by=.lastTimestamp \
    -o jsonpath='{range .items[-1:]}{.type}  {.reason}  {.involvedObject.kind}/{.involvedObject.name}  from {.source.component}{"\n"}{.message}{"\n"}{end}' |
    sed 's/^/    /'
  say "Argo CD (both applications look the same; web-noretry shown):"
  kc -n argocd get applications
  yaml_of application web-noretry argocd operationState sync
  say "What each applied of the commit:"
  show_state
  [ "$(image_of web-flux)" = "$IMAGE:1.1.0" ] || fail "web-flux runs $(image_of web-flux), not 1.1.0"
  [ "$(image_of web-argo)" = "$IMAGE:1.1.0" ] || fail "web-argo runs $(image_of web-argo), not 1.1.0"
  [ "$(image_of web-argo-noretry)" = "$IMAGE:1.1.0" ] || fail "web-argo-noretry runs $(image_of web-argo-noretry), not 1.1.0"
  [ "$(config_of web-flux)" = 1.1.0 ] || fail "Flux applied web-config $(config_of web-flux) of the denied commit"
  [ "$(config_of web-argo-noretry)" = 1.2.0 ] || fail "Argo CD did not apply web-config of the denied commit: $(config_of web-argo-noretry)"
  check "Flux applied nothing of ${c2:0:7} (its server-side dry run of the whole set failed); Argo CD applied web-config and not the Deployment"
  printf '$ kubectl get events -A --field-selector reason=ReleaseDenied\n'
  k get events -A --field-selector reason=ReleaseDenied -o custom-columns=NAMESPACE:.metadata.namespace,OBJECT:.involvedObject.name,MESSAGE:.message | cut -c1-200 | sed 's/^/    /'
  [ -z "$(k -n web-flux get events --field-selector reason=ReleaseDenied -o name)" ] || fail "a ReleaseDenied Event in web-flux: Flux's denial was not only a dry run"
  [ -n "$(k -n web-argo-noretry get events --field-selector reason=ReleaseDenied -o name)" ] || fail "no ReleaseDenied Event in web-argo-noretry"
  check "ReleaseDenied Events for Argo CD's applies; none for Flux, whose denial came from a dry run"

  heading "git revert of 1.2.0 and 1.1.0 (back to 1.0.0) while frozen"
  gitc revert --no-edit "$c2" "$c1"
  push
  c3=$SHA
  gitc log --oneline -5
  local t_revert
  t_revert=$(now)
  wait_until 180 "Flux to apply the revert ${c3:0:7}" ks_applied "$c3"
  wait_until 120 "1.0.0 in web-flux" has_image web-flux 1.0.0
  check "Flux rolled web-flux back to 1.0.0 $(($(now) - t_revert))s after the revert (admitted as a rollback: 1.0.0's ReplicaSet is in the history)"
  kc -n flux-system get kustomization web
  sleep 20
  say "Argo CD: both applications are still in their sync operation for ${c2:0:7}, retrying it; an automated sync to a newer commit waits until that operation ends:"
  app_retrying web "$c2" || fail "web is not retrying ${c2:0:7}: $(app_field web .status.operationState.phase)"
  app_retrying web-noretry "$c2" || fail "web-noretry is not retrying ${c2:0:7}: $(app_field web-noretry .status.operationState.phase)"
  if [ "$(image_of web-argo)" != "$IMAGE:1.1.0" ] || [ "$(image_of web-argo-noretry)" != "$IMAGE:1.1.0" ]; then
    fail "Argo CD applied the revert while retrying"
  fi
  kc_apps
  check "both Argo CD applications still retry ${c2:0:7} and run 1.1.0, $(($(now) - t_revert))s after the revert"
  say "web-noretry has no syncPolicy.retry, but Argo CD gives every automated sync 5 retries (backoff 5s ×2, 3m at most: the n-th retry waits 5s×2^n). Once they have run out, it syncs the revert by itself:"
  wait_until 420 "web-noretry to sync the revert ${c3:0:7}" app_synced web-noretry "$c3"
  wait_until 120 "1.0.0 in web-argo-noretry" has_image web-argo-noretry 1.0.0
  check "web-noretry rolled back to 1.0.0 $(($(now) - t_revert))s after the revert"
  op_events web-noretry
  app_retrying web "$c2" || fail "web stopped retrying ${c2:0:7} by itself"
  say "web would go on retrying ${c2:0:7} until its 20 retries run out, about 19 minutes after the first failure. Ending its operation, as argocd app terminate-op web does (the CLI asks argocd-server, which writes this), lets it sync the revert:"
  printf "\$ kubectl -n argocd patch application web --type merge -p '{\"status\":{\"operationState\":{\"phase\":\"Terminating\"}}}'\n"
  argok patch application web --type merge -p '{"status":{"operationState":{"phase":"Terminating"}}}' 2>&1 | sed 's/^/    /'
  wait_until 120 "web to sync the revert ${c3:0:7}" app_synced web "$c3"
  wait_until 120 "1.0.0 in web-argo" has_image web-argo 1.0.0
  check "web rolled back to 1.0.0 once its operation was terminated"
  op_events web
  show_state

  heading "A hotfix committed while frozen (release-class hotfix)"
  set_image 1.0.1-hotfix
  awk '{ print } /^  template:/ { t = 1 } t && /^    metadata:/ { print "      annotations:\n        budgetgate.dev/release-class: hotfix\n        budgetgate.dev/release-reason: INC-7 checkout errors"; t = 0 }' \
    "$WORK/app/deployment.yaml" >"$WORK/app/deployment.yaml.new" && mv "$WORK/app/deployment.yaml.new" "$WORK/app/deployment.yaml"
  commit "hotfix 1.0.1 for INC-7"
  c4=$SHA
  gitc show --format='%h %s' HEAD -- app/deployment.yaml
  wait_until 180 "Flux to apply the hotfix ${c4:0:7}" ks_applied "$c4"
  wait_until 180 "Argo CD web to sync the hotfix ${c4:0:7}" app_synced web "$c4"
  wait_until 180 "Argo CD web-noretry to sync the hotfix ${c4:0:7}" app_synced web-noretry "$c4"
  for ns in "${NAMESPACES[@]}"; do wait_until 120 "the hotfix in $ns" has_image "$ns" 1.0.1-hotfix; done
  check "the hotfix passed everywhere: the applying identity is the controller's ServiceAccount, and cluster-admin includes release-during-freeze"
  kc auth can-i release-during-freeze servicelevelobjectives.slo.budgetgate.dev -n web-flux \
    --as=system:serviceaccount:flux-system:kustomize-controller || true
  kc auth can-i release-during-freeze servicelevelobjectives.slo.budgetgate.dev -n web-argo \
    --as=system:serviceaccount:argocd:argocd-application-controller || true
  printf '$ kubectl get events -A --field-selector reason=ReleaseExempted\n'
  k get events -A --field-selector reason=ReleaseExempted -o custom-columns=NAMESPACE:.metadata.namespace,MESSAGE:.message | sed 's/^/    /'
  [ "$(k get events -A --field-selector reason=ReleaseExempted -o name | wc -l)" -ge 3 ] || fail "fewer than three ReleaseExempted Events"

  heading "1.2.0 again, the hotfix claim left in the template: denied"
  set_image 1.2.0
  set_release 1.2.0
  commit "release 1.2.0 again"
  c5=$SHA
  say "(image 1.2.0 and web-config 1.2.0; the template keeps release-class: hotfix with the same release-reason)"
  wait_until 180 "Flux to be denied at ${c5:0:7}" ks_denied "$c5"
  wait_until 180 "Argo CD web to retry ${c5:0:7}" app_retrying web "$c5"
  wait_until 180 "Argo CD web-noretry to retry ${c5:0:7}" app_retrying web-noretry "$c5"
  [[ $(ks_message) == *'Release class "hotfix" was claimed by an earlier release'* ]] || fail "Flux's message does not explain the spent claim: $(ks_message)"
  check "denied: a hotfix claim counts for the release that makes it, and budgetgate's message says so"
  printf '$ kubectl -n flux-system get kustomization web -o jsonpath='"'"'{.status.conditions[?(@.type=="Ready")].message}'"'"'\n'
  ks_message | sed 's/^/    /'
  say "web-noretry gives up after its 5 retries (about 5 minutes); web (limit 20) goes on:"
  wait_until 420 "web-noretry to give up on ${c5:0:7}" app_failed web-noretry "$c5"
  wait_until 60 "web-noretry's SyncError condition" app_has_condition web-noretry SyncError
  check "web-noretry: Failed after $(app_field web-noretry .status.operationState.retryCount) retries"
  kc_apps
  yaml_of application web-noretry argocd conditions
  show_state

  heading "The errors stop; the freeze lifts; the releases land"
  set_error_rate 0
  local t_stop t_lift
  t_stop=$(now)
  local lifted='' land_flux='' land_argo='' deadline=$((t_stop + LIFT_TIMEOUT)) last=0
  # Poll every 2s: when the SLOs lift, when each namespace runs 1.2.0.
  while :; do
    [ -n "$lifted" ] || { all_lifted && lifted=$(now); }
    [ -n "$land_flux" ] || { has_image web-flux 1.2.0 && land_flux=$(now); }
    [ -n "$land_argo" ] || { has_image web-argo 1.2.0 && land_argo=$(now); }
    if [ -n "$lifted" ] && [ -n "$land_flux" ] && [ -n "$land_argo" ]; then break; fi
    if [ "$(now)" -ge "$deadline" ]; then
      show_state
      fail "timed out after ${LIFT_TIMEOUT}s: lifted=${lifted:-no} web-flux=${land_flux:-no} web-argo=${land_argo:-no}"
    fi
    if [ $(($(now) - last)) -ge 15 ]; then
      last=$(now)
      printf '    +%3ss  SLOs frozen: %s  images: %s\n' "$((last - t_stop))" \
        "$(for ns in "${NAMESPACES[@]}"; do k -n "$ns" get slo web-availability -o jsonpath='{.status.freeze.active} ' 2>/dev/null; done)" \
        "$(for ns in "${NAMESPACES[@]}"; do printf '%s ' "$(image_of "$ns" | sed 's|.*:||')"; done)"
    fi
    sleep 2
  done
  t_lift=$lifted
  GITOPS_FLUX_LAND=$((land_flux - t_lift))
  GITOPS_ARGO_LAND=$((land_argo - t_lift))
  check "the freeze lifted $((t_lift - t_stop))s after the errors stopped"
  check "Flux: 1.2.0 rolled out ${GITOPS_FLUX_LAND}s after the lift (retryInterval 30s)"
  check "Argo CD web (retry): 1.2.0 rolled out ${GITOPS_ARGO_LAND}s after the lift (backoff at most 1m)"
  wait_until 60 "web to be Synced at ${c5:0:7}" app_synced web "$c5"
  kc -n flux-system get kustomization web
  kc_apps
  say "web-noretry stays where it was: its automated sync will not try ${c5:0:7} again."
  sleep 60
  app_failed web-noretry "$c5" || fail "web-noretry changed by itself: $(app_field web-noretry .status.operationState.phase) at $(app_field web-noretry .status.operationState.syncResult.revision)"
  [ "$(image_of web-argo-noretry)" = "$IMAGE:1.0.1-hotfix" ] || fail "web-argo-noretry runs $(image_of web-argo-noretry)"
  check "web-noretry still runs the hotfix $(($(now) - t_lift))s after the lift; its last sync Failed"
  say "A sync by hand releases it (the UI's Sync button and argocd app sync web-noretry write this operation through argocd-server):"
  printf "\$ kubectl -n argocd patch application web-noretry --type merge -p '{\"operation\":{\"initiatedBy\":{\"username\":\"oncall\"},\"sync\":{\"revision\":\"main\"}}}'\n"
  argok patch application web-noretry --type merge \
    -p '{"operation":{"initiatedBy":{"username":"oncall"},"sync":{"revision":"main"}}}' 2>&1 | sed 's/^/    /'
  wait_until 120 "web-noretry to sync ${c5:0:7} by hand" app_synced web-noretry "$c5"
  wait_until 120 "1.2.0 in web-argo-noretry" has_image web-argo-noretry 1.2.0
  check "web-noretry synced by hand: 1.2.0 rolled out"
  kc_apps
  show_state
  printf '$ kubectl -n web-flux get replicasets   # the history Flux wrote, oldest first\n'
  k -n web-flux get replicasets --sort-by=.metadata.creationTimestamp \
    -o custom-columns='REVISION:.metadata.annotations.deployment\.kubernetes\.io/revision,IMAGE:.spec.template.spec.containers[0].image,RELEASE-CLASS:.spec.template.metadata.annotations.budgetgate\.dev/release-class,REPLICAS:.spec.replicas' | sed 's/^/    /'

  local total=$(($(now) - demo_start))
  printf '\nDone in %dm%02ds (setup %ss, of which getting the binaries %ss). Froze %ss after the errors started, lifted %ss after they stopped; after the lift Flux released in %ss, Argo CD with syncPolicy.retry in %ss; Argo CD without it not until synced by hand.\n' \
    $((total / 60)) $((total % 60)) "$t_setup" "$t_bins" "$((t_freeze - t_inject))" "$((t_lift - t_stop))" "$GITOPS_FLUX_LAND" "$GITOPS_ARGO_LAND"
}

mkdir -p "$(dirname "$TRANSCRIPT")"
trap cleanup EXIT
if main "$@" | tee "$TRANSCRIPT.tmp"; then
  mv "$TRANSCRIPT.tmp" "$TRANSCRIPT"
  ok "transcript: ${TRANSCRIPT#"$ROOT"/}"
else
  mv "$TRANSCRIPT.tmp" "$TRANSCRIPT.failed"
  die "the GitOps check failed; its transcript: ${TRANSCRIPT#"$ROOT"/}.failed"
fi
