#!/usr/bin/env bash
# The probe benchmark (issue 4): the release probe against `ceiling sim` with a known step time.
#
#   scripts/bench_probe.sh [BATCH_SIZES] [OUTPUT_LEN]     # default 1,100,1000,4096 and 64
#
# The simulator runs the `bench` profile below: every engine step takes exactly 10 ms whatever
# the batch (no per-sequence, context or prefill cost), so the true inter-token time is the
# simulator's realised step time (`/sim/truth`); `/sim/requests` gives each response's
# server-side TTFT (arrival to the write of its first token), joined to the probe's requests on
# the response id. The probe runs as its own process (wave pattern, 1 warm-up + 2 waves per
# batch size). Printed per batch size: chunks and chunks/s over the step, ITL error (client ITL
# p50/p99 − true step time), TTFT error p50/p99 (client − server, per request), the client's
# lateness p99, and the analysis's client step time against the true one; for the whole probe
# process its CPU seconds per million tokens and peak RSS, and the simulator's CPU seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
batch_sizes=${1:-1,100,1000,4096}
output_len=${2:-64}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ceiling-target}"
cargo build --release --quiet
bin="$CARGO_TARGET_DIR/release/ceiling"
work=$(mktemp -d)
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

"$bin" sim --profile-file fixtures/sim-profiles/flat-10ms.toml --port 0 > "$work/sim.log" 2>&1 &
sim_pid=$!
trap 'kill $sim_pid 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 100); do
  grep -q 'listening on' "$work/sim.log" && break
  sleep 0.1
done
base=$(grep -o 'http://[0-9.]*:[0-9]*' "$work/sim.log" | head -1)
[ -n "$base" ] || { echo "the simulator did not start: $(cat "$work/sim.log")" >&2; exit 1; }

/usr/bin/time -f '%U %S %M' -o "$work/time" \
  "$bin" --db "$work/bench.db" probe --url "$base" --batch-sizes "$batch_sizes" \
  --input-len 16 --output-len "$output_len" --waves 2 --warmup 1 --gpu-interval 0s \
  --scrape-interval 1s --request-timeout 120s --json > "$work/probe.json"
curl -s "$base/sim/truth" > "$work/truth.json"
curl -s "$base/sim/requests" > "$work/served.json"
# The simulator's own CPU time (utime + stime, in clock ticks), to tell who set the pace.
awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f\n", ($14 + $15) / hz }' "/proc/$sim_pid/stat" > "$work/sim_cpu"

python3 - "$work" <<'PY'
import json, sqlite3, sys
work = sys.argv[1]
probe = json.load(open(f"{work}/probe.json"))
served = {r["id"]: r["ttft_s"] for r in json.load(open(f"{work}/served.json"))}
truth = json.load(open(f"{work}/truth.json"))
user, sys_s, rss_kib = open(f"{work}/time").read().split()
db = sqlite3.connect(f"{work}/bench.db")
run = probe["run_id"]
steps = [*truth["decode_steps"], *truth["mixed_steps"]]
true_step = sum(s["mean_s"] * s["count"] for s in steps) / sum(s["count"] for s in steps)

def pct(v, p):
    v = sorted(v)
    h = (len(v) - 1) * p / 100
    lo = int(h)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (h - lo) * (v[hi] - v[lo])

print(f"probe run {run}: {probe['status']}, {probe['requests_ok']} ok / {probe['requests_failed']} failed; "
      f"true step time {true_step*1e3:.3f} ms")
timings = {t["step_idx"]: t for t in probe["analysis"]["timings"]}
print("| streams | chunks | chunks/s | ITL p50 error ms | ITL p99 error ms | TTFT p50 error ms | TTFT p99 error ms | client lateness p99 ms | step time error ms |")
print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for idx, bs, start, end in db.execute("SELECT idx, batch_size, start_t_s, end_t_s FROM steps WHERE run_id=? ORDER BY idx", (run,)).fetchall():
    gaps, n, last = [], 0, {}
    for req, t in db.execute("SELECT c.request_id, c.t_s FROM chunks c JOIN requests r ON r.id = c.request_id WHERE r.run_id=? AND r.step_idx=? ORDER BY c.request_id, c.seq", (run, idx)):
        n += 1
        if req in last:
            gaps.append(t - last[req])
        last[req] = t
    # Per measured request (warm-up waves open the connections): the client's TTFT less the
    # simulator's (arrival to the write of the first token), joined on the response id.
    ttft_errs = [f - s - served[rid] for s, f, rid in db.execute("SELECT sent_t_s, first_token_t_s, response_id FROM requests WHERE run_id=? AND step_idx=? AND outcome='ok' AND warmup=0", (run, idx)) if rid in served]
    late = [l for (l,) in db.execute("SELECT late_s FROM client_ticks WHERE run_id=? AND step_idx=?", (run, idx))]
    # The analysis's client step time (each request's span in the window) against the truth.
    client = timings.get(idx, {}).get("t_fwd_client_s")
    step_err = f"{(client - true_step)*1e3:+.3f}" if client is not None else "-"
    print(f"| {bs} | {n:,} | {n / (end - start):,.0f} | {(pct(gaps, 50) - true_step)*1e3:+.3f} | "
          f"{(pct(gaps, 99) - true_step)*1e3:+.3f} | {pct(ttft_errs, 50)*1e3:+.3f} | {pct(ttft_errs, 99)*1e3:+.3f} | {pct(late, 99)*1e3 if late else float('nan'):.2f} | {step_err} |")
tokens = truth["totals"]["generation_tokens"]
cpu = float(user) + float(sys_s)
print(f"probe process: {cpu:.2f} CPU-s ({user} user + {sys_s} sys) for {tokens:,} generated tokens = "
      f"{cpu / tokens * 1e6:.1f} CPU-s per million tokens; peak RSS {int(rss_kib)//1024} MiB")
print(f"simulator process (same machine): {float(open(f'{work}/sim_cpu').read()):.2f} CPU-s")
PY
