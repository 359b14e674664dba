#!/usr/bin/env bash
# tierflow's benchmarks (see BENCHMARKS.md):
#
#   hack/bench.sh          full run: N=300 namespaces (BENCH_NAMESPACES), 100 samples per hot
#                          path, a 60 s idle window, criterion at its default measurement times
#   hack/bench.sh quick    N=50, 50 samples, 15 s idle window, short criterion runs (< 2 min
#                          once built)
#
# It builds the operator in release mode, runs the criterion micro benchmarks
# (cargo bench --bench micro) and the cache-memory measurement (cargo bench --bench memory),
# starts a control plane of its own in target/bench-cluster (never
# the developers' target/cluster), runs the end-to-end bench (cargo bench --bench e2e), and
# stops that control plane again. Results: target/bench/results.{json,md} (+ details.json).
#
# Environment: BENCH_NAMESPACES, BENCH_SAMPLES, BENCH_IDLE_SECS, BENCH_RAW_CONCURRENCY (4,8,16),
# BENCH_OPERATOR_LOG (RUST_LOG of the operator, default warn), BENCH_SKIP_MICRO=1,
# BENCH_KEEP_CLUSTER=1 (leave the bench control plane running afterwards), BENCH_PERF=1 (record
# a perf profile of the operator during cold convergence into target/bench/perf-cold.data; this
# perturbs the numbers, so use it for profiling runs only).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
CARGO="${CARGO:-cargo}"
MODE="${1:-full}"
OUT="$ROOT/target/bench"
# The Makefile exports TIERFLOW_CLUSTER_DIR=target/cluster for every recipe: the bench never
# uses it, only its own directory.
BENCH_CLUSTER_DIR="${BENCH_CLUSTER_DIR:-$ROOT/target/bench-cluster}"
mkdir -p "$BENCH_CLUSTER_DIR" "$OUT"
if [[ "$(cd "$BENCH_CLUSTER_DIR" && pwd -P)" == "$(cd "$ROOT/target" && pwd -P)/cluster" ]]; then
  echo "bench: refusing to use the developers' control plane ($BENCH_CLUSTER_DIR)" >&2
  exit 2
fi

case "$MODE" in
  full)
    export BENCH_NAMESPACES="${BENCH_NAMESPACES:-300}"
    export BENCH_SAMPLES="${BENCH_SAMPLES:-100}"
    export BENCH_IDLE_SECS="${BENCH_IDLE_SECS:-60}"
    CRITERION_ARGS=()
    ;;
  quick)
    export BENCH_NAMESPACES="${BENCH_NAMESPACES:-50}"
    export BENCH_SAMPLES="${BENCH_SAMPLES:-50}"
    export BENCH_IDLE_SECS="${BENCH_IDLE_SECS:-15}"
    CRITERION_ARGS=(--warm-up-time 0.5 --measurement-time 1.5 --sample-size 20)
    ;;
  *) echo "usage: $0 [full|quick]" >&2; exit 2 ;;
esac
export BENCH_MODE="$MODE"

log() { printf '[bench %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
cluster() { TIERFLOW_CLUSTER_DIR="$BENCH_CLUSTER_DIR" "$ROOT/hack/cluster.sh" "$@"; }

cleanup() {
  local pid_file="$OUT/operator.pid"
  # The operator the bench started, if an interrupted run left it behind (by its PID only).
  if [[ -f "$pid_file" ]]; then
    local pid; pid=$(cat "$pid_file")
    if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null && grep -q tierflow "/proc/$pid/cmdline" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
    fi
    rm -f "$pid_file"
  fi
  if [[ "${BENCH_KEEP_CLUSTER:-}" != "1" ]]; then
    cluster down >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT

log "building (release)"
"$CARGO" build --release --locked --bin tierflow
"$CARGO" bench --locked --no-run --bench micro --bench memory --bench e2e

if [[ "${BENCH_SKIP_MICRO:-}" != "1" ]]; then
  rm -f "$OUT/micro.json"
  log "micro benchmarks (criterion) — load: $(cut -d' ' -f1-3 /proc/loadavg)"
  "$CARGO" bench --locked --bench micro -- "${CRITERION_ARGS[@]}"
  "$CARGO" bench --locked --bench memory
fi

log "fresh control plane in $BENCH_CLUSTER_DIR"
cluster down >/dev/null 2>&1 || true
cluster up
export BENCH_KUBECONFIG="$BENCH_CLUSTER_DIR/kubeconfig"
"$CARGO" bench --locked --bench e2e

# Keep a copy per mode and size, so a quick or 1,000-namespace run does not hide the last full one.
RUN_DIR="$OUT/runs/$MODE-n$BENCH_NAMESPACES"
mkdir -p "$RUN_DIR"
cp "$OUT/results.json" "$OUT/results.md" "$OUT/details.json" "$OUT/operator.log" "$RUN_DIR/"
log "results: $OUT/results.json, $OUT/results.md (details: $OUT/details.json; a copy in $RUN_DIR)"
cat "$OUT/results.md"
