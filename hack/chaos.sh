#!/usr/bin/env bash
# tierflow's chaos scenarios (RELIABILITY.md), against a control plane of their own
# (target/chaos-cluster; never the developers' target/cluster):
#
#   hack/chaos.sh          every scenario, the slow ones included (make chaos; several minutes),
#                          then the bad-input properties with more cases (FUZZ_CASES, default
#                          20000) and their dry runs against the chaos control plane
#   hack/chaos.sh fast     only the fast scenarios (they also run in make test)
#   hack/chaos.sh down     stop the chaos control plane and remove its data
#
# The scenarios start the control plane when it is not running and leave it running for the next
# run. CHAOS_SEED replays a run's random choices (each scenario prints its seed);
# CHAOS_OPERATOR_BIN runs another operator build (say target/release/tierflow);
# CHAOS_STATUS_WAIT (seconds, default 120) bounds each wait of the oversized scenario. Operator
# logs are in target/chaos/<scenario>/; lines starting with CHAOS-REPORT carry the numbers.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
CARGO="${CARGO:-cargo}"
export TIERFLOW_CHAOS_CLUSTER_DIR="${TIERFLOW_CHAOS_CLUSTER_DIR:-$ROOT/target/chaos-cluster}"
if [[ "$(mkdir -p "$TIERFLOW_CHAOS_CLUSTER_DIR" && cd "$TIERFLOW_CHAOS_CLUSTER_DIR" && pwd -P)" == "$(cd "$ROOT/target" && pwd -P)/cluster" ]]; then
  echo "chaos: refusing to use the developers' control plane ($TIERFLOW_CHAOS_CLUSTER_DIR)" >&2
  exit 2
fi

case "${1:-all}" in
  all)
    "$CARGO" test --locked --test chaos -- --include-ignored --test-threads=1 --nocapture 2>&1 |
      tee target/chaos-report.log
    # The real-cluster property (server-side dry runs) on the chaos control plane, so `make chaos`
    # needs no other cluster.
    TIERFLOW_CLUSTER_DIR="$TIERFLOW_CHAOS_CLUSTER_DIR" FUZZ_CASES="${FUZZ_CASES:-20000}" \
      "$CARGO" test --locked --test fuzz -- --nocapture 2>&1 | tee -a target/chaos-report.log
    echo "chaos: numbers in target/chaos-report.log (grep CHAOS-REPORT; FUZZ-REPORT)" >&2
    ;;
  fast) "$CARGO" test --locked --test chaos -- --test-threads=1 ;;
  down) TIERFLOW_CLUSTER_DIR="$TIERFLOW_CHAOS_CLUSTER_DIR" "$ROOT/hack/cluster.sh" down ;;
  *) echo "usage: $0 [all|fast|down]" >&2; exit 2 ;;
esac
