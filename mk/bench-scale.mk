# (Listed under "Benchmarks", the heading of mk/bench-admission.mk.)
#
# make bench-scale: budgetgate at the scale of the design's targets
# (test/bench/scale, docs/performance.md "Scale: 10,000 workloads, 1,000
# SLOs"). A kwok cluster of its own (BENCH_SCALE_CLUSTER, state in
# BENCH_SCALE_STATE), brought up with hack/cluster-up.sh when it is not up,
# gets 10,000 Deployments (replicas 0) in 100 namespaces and 1,000 SLOs; the
# manager runs as a local process against a fake Prometheus. The report is
# printed and written to bin/bench/scale-<time>.json. The run stops the manager
# and deletes the cluster it brought up; BENCH_SCALE_KEEP=1 keeps it (then
# make bench-scale-down); a cluster that was already up is left up. A cluster
# left up loses budgetgate's webhook configurations (they would point at the
# stopped manager). The tool refuses any cluster but its own local kwok
# cluster unless given --allow-remote.
# BENCH_SCALE_ARGS passes flags (bin/bench/scale -h), e.g.
#   make bench-scale BENCH_SCALE_ARGS="--observe 5m --prom-delay 20ms"
#   make bench-scale BENCH_SCALE_ARGS="--namespaces 10 --admission-rate 200,50"
# On a shared machine, hold the measurement lock so that other benchmarks do
# not run at the same time: flock /tmp/budgetgate-measure.lock make bench-scale
BENCH_SCALE_CLUSTER ?= budgetgate-scale
BENCH_SCALE_STATE ?= $(shell pwd)/.cluster/scale
BENCH_SCALE_ARGS ?=
BENCH_SCALE_KEEP ?=

.PHONY: bench-scale
bench-scale: ## 10,000 Deployments and 1,000 SLOs on a kwok cluster: manager RSS and heap, reconcile rate, queue depth, freeze fan-out, admission p99; JSON in bin/bench.
	@mkdir -p "$(LOCALBIN)/bench"
	go build -o "$(LOCALBIN)/bench/scale-manager" ./cmd
	go build -o "$(LOCALBIN)/bench/scale-local-webhook" ./hack/local-webhook
	go build -o "$(LOCALBIN)/bench/scale" ./test/bench/scale
	"$(LOCALBIN)/bench/scale" --state "$(BENCH_SCALE_STATE)" --cluster-name "$(BENCH_SCALE_CLUSTER)" \
		--manager "$(LOCALBIN)/bench/scale-manager" --local-webhook "$(LOCALBIN)/bench/scale-local-webhook" \
		--out "$(LOCALBIN)/bench" $(if $(BENCH_SCALE_KEEP),--keep) $(BENCH_SCALE_ARGS)

.PHONY: bench-scale-down
bench-scale-down: ## Delete the kwok cluster that make bench-scale BENCH_SCALE_KEEP=1 kept.
	@CLUSTER_NAME="$(BENCH_SCALE_CLUSTER)" BUDGETGATE_STATE="$(BENCH_SCALE_STATE)" hack/cluster-down.sh
