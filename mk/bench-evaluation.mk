# (Listed under "Benchmarks", the heading of mk/bench-admission.mk.)
#
# make bench-evaluation: what evaluating 1,000 SLOs costs in a real Prometheus,
# raw queries against recorded series in one run (test/bench/evaluation,
# docs/performance.md "Evaluation at 1,000 SLOs"). A
# Prometheus backfilled with 8 days of 1,000 synthetic services and their
# base-window counts (promtool), envtest's kube-apiserver and etcd, and the
# manager built from ./cmd; phases raw and recorded alternate (ABAB). Needs
# bin/prometheus (make prometheus) and the envtest binaries (make
# envtest-binaries); about 55 minutes on 2 cores (40 with --phases
# raw,recorded,raw,recorded) and 3 GB of disk under
# BENCH_EVALUATION_STATE while it runs. The report is printed and written to
# bin/bench/evaluation-<time>.json. Not part of make test.
# BENCH_EVALUATION_ARGS passes flags (bin/bench/evaluation -h), e.g.
#   make bench-evaluation BENCH_EVALUATION_ARGS="--slos 100 --phases raw,recorded --measure 2"
#   make bench-evaluation BENCH_EVALUATION_ARGS="--rule-interval 30s"
# On a shared machine, hold the measurement lock so that other benchmarks do
# not run at the same time: flock /tmp/budgetgate-measure.lock make bench-evaluation
BENCH_EVALUATION_STATE ?= $(shell pwd)/.cluster/evaluation
BENCH_EVALUATION_ARGS ?=

.PHONY: bench-evaluation
bench-evaluation: envtest-binaries prometheus ## 1,000 SLOs in a real Prometheus, raw queries vs recorded series (ABAB): queries, Prometheus query and rule seconds, evaluation lag, CPU; JSON in bin/bench.
	@mkdir -p "$(LOCALBIN)/bench"
	go build -o "$(LOCALBIN)/bench/evaluation-manager" ./cmd
	go build -o "$(LOCALBIN)/bench/evaluation" ./test/bench/evaluation
	"$(LOCALBIN)/bench/evaluation" --state "$(BENCH_EVALUATION_STATE)" \
		--manager "$(LOCALBIN)/bench/evaluation-manager" --out "$(LOCALBIN)/bench" $(BENCH_EVALUATION_ARGS)
