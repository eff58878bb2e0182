#!/usr/bin/env bash
# The analysis benchmark (issue 6): records a synthetic run of N chunk rows (default 10 million)
# into a fresh database, then times `ceiling analyze` on it and reports its peak memory.
#
#   scripts/bench_analysis.sh [CHUNKS]
#
# Prints the recording's size and `analyze: S s wall, M MiB peak RSS`. Uses the release build.
set -euo pipefail
cd "$(dirname "$0")/.."
chunks=${1:-10000000}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ceiling-target}"
cargo build --release --quiet
bin="$CARGO_TARGET_DIR/release/ceiling"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
db="$work/bench.db"

start=$(date +%s.%N)
"$bin" --db "$db" __synth-run --chunks "$chunks"
end=$(date +%s.%N)
printf 'recorded in %.1f s; database %s\n' "$(echo "$end - $start" | bc)" "$(du -h "$db" | cut -f1)"

/usr/bin/time -f '%e %M' -o "$work/time" "$bin" --db "$db" analyze latest --json > "$work/analysis.json"
read -r secs kib < "$work/time"
printf 'analyze: %s s wall, %d MiB peak RSS\n' "$secs" "$((kib / 1024))"
python3 -c "import json,sys; a=json.load(open(sys.argv[1])); print('steps', len(a['steps']), 'requests', sum(s['requests'] for s in a['steps']), 'fit b', a['fit']['b_s_per_seq'])" "$work/analysis.json"
