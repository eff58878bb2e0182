#!/usr/bin/env bash
# The soak (issue 19): a closed loop of STREAMS streams for MINUTES minutes against `ceiling sim`
# with faults injected (5 % HTTP 500, 2 % dropped streams, 1 % of streams stalled 2 s once).
#
#   scripts/soak.sh [MINUTES] [STREAMS]        # default 30 and 1000
#   SOAK_PROFILE=debug scripts/soak.sh 2 200   # the debug build (no release build on the box)
#
# Printed: the probe's RSS every 5 s; at the end every request by outcome beside the simulator's
# own counts (`/sim/truth`: faults injected, requests finished and aborted) with each comparison
# marked ok or MISMATCH, and how many injected stalls the client saw as a gap between chunks;
# RSS from warm-up to the end of the loop (flat or not) and at the probe's closing analysis; the
# wall time of `ceiling analyze` over the whole recording. Exits 1 on a mismatch or on a probe
# that hung (past MINUTES min + 190 s with no CPU used for 30 s). A benchmark script: not run
# in CI.
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-30}
streams=${2:-1000}
profile=${SOAK_PROFILE:-release}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ceiling-target}"
if [ "$profile" = release ]; then
  cargo build --release --quiet
else
  cargo build --quiet
fi
bin="$CARGO_TARGET_DIR/$profile/ceiling"
work=$(mktemp -d)
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
stall_ms=2000

# Every step 10 ms whatever the batch: the load is the probe's, not the cost model's.
"$bin" sim --profile-file fixtures/sim-profiles/flat-10ms.toml --port 0 \
  --fault-http-500 0.05 --fault-drop 0.02 --fault-stall "0.01:$stall_ms" > "$work/sim.log" 2>&1 &
sim_pid=$!
probe_pid=
cleanup() {
  [ -n "$probe_pid" ] && kill "$probe_pid" 2>/dev/null
  kill "$sim_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
for _ in $(seq 100); do
  grep -q 'listening on' "$work/sim.log" && break
  sleep 0.1
done
base=$(grep -o 'http://[0-9.]*:[0-9]*' "$work/sim.log" | head -1)
[ -n "$base" ] || { echo "the simulator did not start: $(cat "$work/sim.log")" >&2; exit 1; }

echo "soak: $streams streams, closed loop, ${minutes} min (+10 s warm-up), $profile build, $base"
start=$(date +%s.%N)
"$bin" --db "$work/soak.db" probe --url "$base" --pattern closed-loop \
  --batch-sizes "$streams" --warmup 10s --duration "${minutes}m" \
  --input-len 16 --output-len 64 --gpu-interval 0s --scrape-interval 1s \
  --request-timeout 60s --json > "$work/probe.json" 2> "$work/probe.err" &
probe_pid=$!
# Past the loop's end (+ 190 s) the probe is analysing the whole recording (at 1,000 streams
# ~85,000 chunk rows a second of loop: minutes for a 30-minute soak); it is hung only if it
# burns no CPU for 30 s there.
deadline=$(( $(date +%s) + minutes * 60 + 190 ))
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$probe_pid/stat" 2>/dev/null || echo 0; }
idle_since=
last_cpu=$(cpu_ticks)
echo "t_s rss_mib"
while kill -0 "$probe_pid" 2>/dev/null; do
  rss=$(awk '/^VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$probe_pid/status" 2>/dev/null || true)
  [ -n "$rss" ] && printf '%.0f %s\n' "$(echo "$(date +%s.%N) - $start" | bc)" "$rss" | tee -a "$work/rss"
  cpu=$(cpu_ticks)
  if [ "$(date +%s)" -gt "$deadline" ]; then
    if [ "$cpu" -gt "$last_cpu" ]; then
      idle_since=
    elif [ -z "$idle_since" ]; then
      idle_since=$(date +%s)
    elif [ $(( $(date +%s) - idle_since )) -ge 30 ]; then
      echo "HANG: the probe has not ended ${minutes} min + 190 s in and used no CPU for 30 s" >&2
      exit 1
    fi
  fi
  last_cpu=$cpu
  sleep 5
done
probe_rc=0
wait "$probe_pid" || probe_rc=$?
probe_pid=
probe_wall=$(echo "$(date +%s.%N) - $start" | bc)
echo "probe exit $probe_rc after ${probe_wall} s"
curl -s "$base/sim/truth" > "$work/truth.json"
run=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["run_id"])' "$work/probe.json")
/usr/bin/time -f '%e %M' -o "$work/analyze_time" \
  "$bin" --db "$work/soak.db" analyze "$run" --json > "$work/analysis.json"

python3 - "$work" "$stall_ms" "$minutes" <<'PY'
import json, sqlite3, sys
work, stall_ms, minutes = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
truth = json.load(open(f"{work}/truth.json"))
db = sqlite3.connect(f"{work}/soak.db")
by = dict(db.execute("SELECT outcome, COUNT(*) FROM requests GROUP BY outcome"))
total = sum(by.values())
http500 = db.execute("SELECT COUNT(*) FROM requests WHERE http_status = 500").fetchone()[0]
# A stall is a gap between two chunks of one request of at least 90 % of the pause.
stalled = db.execute(
    """SELECT COUNT(DISTINCT request_id) FROM (
         SELECT request_id, t_s - LAG(t_s) OVER (PARTITION BY request_id ORDER BY t_s) AS gap
         FROM chunk_rows) WHERE gap >= ?""", (0.9 * stall_ms / 1000,)).fetchone()[0]
inj, tot = truth["faults_injected"], truth["totals"]
print(f"requests recorded: {total}  " + "  ".join(f"{k} {v}" for k, v in sorted(by.items())))
print(f"simulator: finished {tot['requests_finished']}  aborted {tot['requests_aborted']}  "
      f"injected http_500 {inj['http_500']}  drop {inj['drop']}  stall {inj['stall']}")
sent = tot["requests_finished"] + tot["requests_aborted"] + inj["http_500"] + inj["http_429"]
checks = [
    ("HTTP 500: probe http_error with status 500 = simulator's injected", http500, inj["http_500"]),
    ("dropped: probe stream_cut = simulator's injected drops", by.get("stream_cut", 0), inj["drop"]),
    ("every request: probe total = simulator finished + aborted + 500 + 429", total, sent),
]
bad = 0
for name, probe, sim in checks:
    ok = probe == sim
    bad += not ok
    print(f"  {'ok      ' if ok else 'MISMATCH'} {name}: {probe} vs {sim}")
# Not a check: a client already behind the server (chunks queued in its socket) drains the queue
# during a stall, so the gap it sees is shorter than the pause; a stall before the first token
# shows in TTFT, not between chunks.
print(f"  seen     stalled: probe requests with a chunk gap >= 0.9 x {stall_ms} ms: {stalled} "
      f"of {inj['stall']} injected")
rss = [tuple(map(float, l.split())) for l in open(f"{work}/rss") if l.strip()]
loop_end = 10 + 60 * minutes
after = [r for t, r in rss if 30 <= t <= loop_end]
if after:
    print(f"RSS in the loop after warm-up (30 s to {loop_end:.0f} s): first {after[0]:.1f} MiB, "
          f"max {max(after):.1f} MiB, last {after[-1]:.1f} MiB ({len(after)} samples); "
          f"the probe's closing analysis: peak {max(r for _, r in rss):.1f} MiB")
wall, peak_kib = open(f"{work}/analyze_time").read().split()
rows = db.execute("SELECT COUNT(*) FROM chunk_rows").fetchone()[0]
print(f"analyze over the recording: {float(wall):.2f} s wall, peak RSS {int(peak_kib) / 1024:.0f} MiB "
      f"({total} requests, {rows} chunk rows)")
sys.exit(1 if bad else 0)
PY
