#!/usr/bin/env bash
# The nightly regression benchmark (issue 16): records N noise-only nights (default 30) of the
# simulated engine, judges every night that has 3 or more baseline runs with `ceiling regress`
# at the defaults and prints the false-positive rate (target 0); then, on copies of that
# history, plants one night each with the step time scaled by 1 %, 2 %, … 10 % and prints the
# smallest change flagged at every batch size (target ≤ 5 %).
#
#   scripts/bench_nightly.sh [NIGHTS] [BIN]
#
# BIN defaults to the debug build of $CARGO_TARGET_DIR (default ~/.cache/ceiling-target),
# built first. A night is bs 4 and 16, 16 in / 16 out, one wave, on a profile with
# t_fwd = 60 ms + 2 ms × bs (about 3 s a night), as tests/it/nightly.rs. Needs jq.
set -euo pipefail
cd "$(dirname "$0")/.."
nights=${1:-30}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ceiling-target}"
if [[ -n ${2:-} ]]; then
    bin=$2
else
    cargo build --quiet
    bin="$CARGO_TARGET_DIR/debug/ceiling"
fi
work=$(mktemp -d)
sim_pid=
cleanup() {
    if [[ -n $sim_pid ]]; then kill "$sim_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

cat >"$work/profile.toml" <<'EOF'
name = "nightly-bench"
model = "sim-tiny"
max_model_len = 4096
vocab_size = 32000
t0_s = 0.06
k_seq_s = 0.002
k_ctx_s = 0.0
k_prefill_s = 0.0000005
prefill_chunk_tokens = 4096
max_num_seqs = 4096
kv_blocks = 65536
block_size = 16
eos_probability = 0.0
EOF
port=$((20000 + RANDOM % 20000))

# Starts the simulator with extra flags on $port, waiting until it listens.
start_sim() {
    "$bin" sim --profile-file "$work/profile.toml" --port "$port" "$@" >"$work/sim.log" 2>&1 &
    sim_pid=$!
    for _ in $(seq 50); do
        grep -q listening "$work/sim.log" && return 0
        sleep 0.1
    done
    echo "the simulator did not start: $(cat "$work/sim.log")" >&2
    exit 1
}
stop_sim() {
    kill "$sim_pid"
    wait "$sim_pid" 2>/dev/null || true
    sim_pid=
}
night() {
    "$bin" --db "$1" probe --url "http://127.0.0.1:$port" --batch-sizes 4,16 --input-len 16 \
        --output-len 16 --waves 1 --warmup 0 --gpu-source "dcgm:http://127.0.0.1:$port/dcgm" \
        --gpu-interval 50ms --scrape-interval 100ms >/dev/null 2>&1
}

db="$work/noise.db"
start_sim
for _ in $(seq "$nights"); do night "$db"; done
stop_sim

judged=0
flagged=0
for run in $(seq 4 "$nights"); do
    n=$("$bin" --db "$db" regress "$run" --json | jq '[.verdicts[] | select(.verdict == "regression")] | length')
    judged=$((judged + 1))
    if [[ $n -gt 0 ]]; then flagged=$((flagged + 1)); fi
done
echo "noise-only nights judged: $judged, flagged: $flagged (false-positive rate $(jq -n "$flagged / $judged * 100 | . * 10 | round / 10") %)"

smallest=none
for pct in 1 2 3 4 5 6 7 8 9 10; do
    cp "$db" "$work/planted.db"
    start_sim --step-scale "$(jq -n "1 + $pct / 100")"
    night "$work/planted.db"
    stop_sim
    out=$("$bin" --db "$work/planted.db" regress latest --json)
    sizes=$(jq '[.verdicts[] | select(.metric == "t_fwd_s")] | length' <<<"$out")
    hit=$(jq '[.verdicts[] | select(.metric == "t_fwd_s" and .verdict == "regression")] | length' <<<"$out")
    change=$(jq -r '[.verdicts[] | select(.metric == "t_fwd_s") | .change_rel * 1000 | round / 10 | tostring + " %"] | join(", ")' <<<"$out")
    echo "planted +$pct %: t_fwd_s flagged at $hit of $sizes batch sizes (measured $change)"
    if [[ $smallest == none && $hit -eq $sizes && $sizes -gt 0 ]]; then smallest="$pct %"; fi
done
echo "smallest step-time change flagged at every batch size: $smallest"
