#!/usr/bin/env bash
# The findings' false-alarm and miss rates (issue 13): the grid of simulated engines in
# tests/it/grid.rs (three flavors × two profiles × wave and closed loop × bs 1…512 × input
# 16…8,192 × output 16…1,024 × DP 1 and 2 × speculative decoding, chat with reasoning, chunked
# prefill and prefix cache each off once), every cell once healthy and once with a fault
# (HTTP 500s, a sequence cap below the batch, a KV cache too small, a warm prefix, reasoning
# longer than the output). Each warn/error finding is checked against /sim/truth; one nothing
# explains is a false alarm, a fault whose finding does not come is a miss.
#
#   scripts/bench_grid.sh [CELLS] [SEED]     # default: 120 cells drawn with seed 13; 0 = all
#   GRID_FILTER='Llamacpp|ClosedLoop|bs 8 ' scripts/bench_grid.sh 3   # the first 3 cells whose
#                                            # line holds every |-separated part, drawn with SEED
#   GRID_KEEP=/tmp/cells scripts/bench_grid.sh   # also keep each cell's recording there
#                                            # (ceiling analyze --db /tmp/cells/<cell>.db)
#
# The test profile's build (a release build of the test binary recompiles polars). Long cells
# run faster than real time (`--time-scale`, up to 20×); those still over 20 s are left out.
# Prints one line per cell (on stderr), the cells that alarmed or missed, and the two rates
# (targets: 0 %).
set -euo pipefail
cd "$(dirname "$0")/.."
cells=${1:-120}
seed=${2:-13}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ceiling-target}"
if [ "$cells" != 0 ]; then
  export GRID_CELLS="$cells"
fi
export GRID_SEED="$seed"
cargo test --locked --test it grid::full_grid -- --ignored --nocapture --test-threads 1
