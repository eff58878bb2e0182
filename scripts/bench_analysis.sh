#!/usr/bin/env bash
# The analysis benchmark (issues 6 and 12): records a synthetic run of N chunk rows (default
# 10 million) into a fresh database, then times `ceiling analyze` on it and reports its peak
# memory, and times SQLite's own read of the same chunk rows (the floor of any pipeline over
# this store: one aggregate query over every chunk column the analysis loads, nothing returned),
# once on one connection and once split in two halves read at the same time on two connections,
# as `Store::load_recording` reads them.
#
#   scripts/bench_analysis.sh [CHUNKS] [DB]
#
# With DB, the recording is kept there and reused by later runs with the same DB (a 10 M
# recording takes about 15 s to write, 100 M about 3 min); without, it goes to a temporary
# directory and is deleted. Prints the recording's size, `analyze: S s wall, C s CPU, M MiB
# peak RSS, load average L` and the two SQLite read times. Uses the release build of
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
    run="(SELECT max(id) FROM runs)"
    read_rows() { # the chunk rows of the run's requests with ids in [$1, $2]
        sqlite3 "$db" "SELECT count(*), sum(c.t_s), sum(c.tokens), sum(c.kind = 'reasoning'),
            sum(q.step_idx) FROM requests q CROSS JOIN chunks c ON c.request_id = q.id
            WHERE q.id BETWEEN $1 AND $2 AND +q.run_id = $run" > /dev/null
    }
    read -r first last < <(sqlite3 -separator ' ' "$db" \
        "SELECT min(id), max(id) FROM requests WHERE run_id = $run")
    # The loader's split: where the requests' completion tokens reach half the run's.
    split=$(sqlite3 "$db" "SELECT id FROM (SELECT id, sum(completion_tokens_requested)
        OVER (ORDER BY id) AS below, sum(completion_tokens_requested) OVER () AS total
        FROM requests WHERE run_id = $run) WHERE below >= total / 2 LIMIT 1")
    start=$(date +%s.%N)
    read_rows "$first" "$last"
    end=$(date +%s.%N)
    printf 'sqlite read of the chunk rows, one connection: %.2f s\n' "$(echo "$end - $start" | bc)"
    start=$(date +%s.%N)
    read_rows "$first" "$split" &
    read_rows "$((split + 1))" "$last"
    wait
    end=$(date +%s.%N)
    printf 'sqlite read of the chunk rows, two connections: %.2f s\n' "$(echo "$end - $start" | bc)"
fi
