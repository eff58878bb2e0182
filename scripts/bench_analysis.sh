#!/usr/bin/env bash
# The analysis benchmark (issues 6 and 12): records a synthetic run of N chunk rows (default
# 10 million) into a fresh database, then times `ceiling analyze` on it and reports its peak
# memory, and times SQLite's own read of the same chunk rows (the floor of any pipeline over
# this store: one aggregate query over every chunk column the analysis loads, nothing returned).
#
#   scripts/bench_analysis.sh [CHUNKS]
#
# Prints the recording's size, `analyze: S s wall, M MiB peak RSS` and `sqlite read of the
# chunk rows: S s`. Uses the release build; needs sqlite3 on PATH for the last line.
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

if command -v sqlite3 > /dev/null; then
    /usr/bin/time -f '%e' -o "$work/sqlite_time" sqlite3 "$db" \
        "SELECT count(*), sum(c.t_s), sum(c.tokens), sum(c.kind = 'reasoning'), sum(q.step_idx)
         FROM chunks c JOIN requests q ON q.id = c.request_id
         WHERE q.run_id = (SELECT max(id) FROM runs)" > /dev/null
    printf 'sqlite read of the chunk rows: %s s\n' "$(cat "$work/sqlite_time")"
fi
