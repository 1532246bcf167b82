##@ Benchmarks

# make bench-admission: what budgetgate's release gate adds to a Deployment
# update through a real kube-apiserver (test/bench/admission,
# docs/performance.md "Admission through the API server"). It uses a kwok
# cluster of its own (BENCH_ADMISSION_CLUSTER, state in BENCH_ADMISSION_STATE),
# brought up with hack/cluster-up.sh when it is not up and deleted afterwards
# unless BENCH_ADMISSION_KEEP=1; a cluster that was already up is left up.
# The generator runs the manager (bin/bench/manager) itself, as the e2e suite
# does, and writes bin/bench/admission-<time>.json, .svg and .png.
# BENCH_ADMISSION_ARGS passes flags, e.g.
#   make bench-admission BENCH_ADMISSION_ARGS="--rounds 5 --profile"
#   make bench-admission BENCH_ADMISSION_ARGS="--manager http1=bin/bench/manager \
#     --manager 'h2=bin/bench/manager --enable-http2'"
# On a shared machine, hold the measurement lock so that other benchmarks do
# not run at the same time: flock /tmp/budgetgate-measure.lock make bench-admission
BENCH_ADMISSION_CLUSTER ?= budgetgate-bench
BENCH_ADMISSION_STATE ?= $(shell pwd)/.cluster/bench
BENCH_ADMISSION_ARGS ?=
BENCH_ADMISSION_KEEP ?=

.PHONY: bench-admission
bench-admission: ## Admission latency through the local kwok cluster's API server: release webhook on/off (interleaved), deny, rollback, hotfix; JSON and chart in bin/bench.
	@mkdir -p "$(LOCALBIN)/bench"
	go build -o "$(LOCALBIN)/bench/manager" ./cmd
	go build -o "$(LOCALBIN)/bench/local-webhook" ./hack/local-webhook
	go build -o "$(LOCALBIN)/bench/admission" ./test/bench/admission
	@export CLUSTER_NAME="$(BENCH_ADMISSION_CLUSTER)" BUDGETGATE_STATE="$(BENCH_ADMISSION_STATE)"; \
	started=; if ! (. hack/lib.sh && cluster_healthy); then started=1; fi; \
	hack/cluster-up.sh; \
	rc=0; "$(LOCALBIN)/bench/admission" --kubeconfig "$(BENCH_ADMISSION_STATE)/kubeconfig" $(BENCH_ADMISSION_ARGS) || rc=$$?; \
	if [ -n "$$started" ] && [ -z "$(BENCH_ADMISSION_KEEP)" ]; then hack/cluster-down.sh; \
	elif [ -n "$$started" ]; then echo "==> BENCH_ADMISSION_KEEP: cluster $(BENCH_ADMISSION_CLUSTER) left up (KUBECONFIG=$(BENCH_ADMISSION_STATE)/kubeconfig)"; fi; \
	exit $$rc
