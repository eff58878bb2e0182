#!/usr/bin/env bash
# The analysis benchmark (issues 6 and 12): records a synthetic run of N chunk rows (default
# 10 million) into a fresh database, then times `ceiling analyze` on it and reports its peak
# memory, and times SQLite's own read of the same chunks (the floor of any pipeline over this
# store: one aggregate query over the request rows' chunk arrays the analysis loads, schema v11,
# nothing parsed or returned).
#
#   scripts/bench_analysis.sh [CHUNKS] [DB]
#
# With DB, the recording is kept there and reused by later runs with the same DB (a 10 M
# recording takes about 15 s to write, 100 M about 3 min); without, it goes to a temporary
# directory and is deleted. Prints the recording's size, `analyze: S s wall, C s CPU, M MiB
# peak RSS, load average L` and the SQLite read time. Uses the release build of
# $CARGO_TARGET_DIR (default ~/.cache/ceiling-target), built first; needs sqlite3 on PATH for the
# SQLite lines.
set -euo pipefail
cd "$(dirname "$0")/.."
chunks=${1:-10000000}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ceiling-target}"
cargo build --release --quiet
bin="$CARGO_TARGET_DIR/release/ceiling"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
db=${2:-$work/bench.db}

if [[ ! -e $db ]]; then
    start=$(date +%s.%N)
    "$bin" --db "$db" __synth-run --chunks "$chunks"
    end=$(date +%s.%N)
    printf 'recorded in %.1f s; database %s\n' "$(echo "$end - $start" | bc)" "$(du -h "$db" | cut -f1)"
else
    printf 'reusing %s (%s)\n' "$db" "$(du -h "$db" | cut -f1)"
fi

/usr/bin/time -f '%e %U %S %M' -o "$work/time" "$bin" --db "$db" analyze latest --json > "$work/analysis.json"
read -r secs user sys kib < "$work/time"
printf 'analyze: %s s wall, %s s CPU (user %s + sys %s), %d MiB peak RSS, load average %s\n' \
    "$secs" "$(echo "$user + $sys" | bc)" "$user" "$sys" "$((kib / 1024))" "$(cut -d' ' -f1 /proc/loadavg)"
python3 -c "import json,sys; a=json.load(open(sys.argv[1])); print('steps', len(a['steps']), 'requests', sum(s['requests'] for s in a['steps']), 'fit b', a['fit']['b_s_per_seq'])" "$work/analysis.json"

if command -v sqlite3 > /dev/null; then
    start=$(date +%s.%N)
    sqlite3 "$db" "SELECT count(*), sum(length(chunk_t_s)), sum(length(chunk_tokens)),
        sum(length(chunk_kinds)), sum(step_idx) FROM requests
        WHERE run_id = (SELECT max(id) FROM runs)" > /dev/null
    end=$(date +%s.%N)
    printf 'sqlite read of the chunk arrays: %.2f s\n' "$(echo "$end - $start" | bc)"
fi
