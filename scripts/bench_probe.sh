#!/usr/bin/env bash
# The probe benchmark (issue 4): the release probe against `ceiling sim` with a known step time.
#
#   scripts/bench_probe.sh [BATCH_SIZES] [OUTPUT_LEN]     # default 1,100,1000,4096 and 64
#
# The simulator runs the `bench` profile below: every engine step takes exactly 10 ms whatever
# the batch (no per-sequence, context or prefill cost), so the true inter-token time is the
# simulator's realised step time (`/sim/truth`), and its own TTFT histogram (sum / count) is
# the engine-side TTFT. The probe runs as its own process (wave pattern, 1 warm-up + 2 waves per
# batch size). Printed per batch size: requests ok/failed, chunks/s over the step, ITL error
# (client ITL p50/p99 − true step time), TTFT error (client mean − engine mean), the client's
# lateness p99; and for the whole probe process its CPU seconds per million tokens and peak RSS.
set -euo pipefail
cd "$(dirname "$0")/.."
batch_sizes=${1:-1,100,1000,4096}
output_len=${2:-64}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ceiling-target}"
cargo build --release --quiet
bin="$CARGO_TARGET_DIR/release/ceiling"
work=$(mktemp -d)
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

cat > "$work/bench.toml" <<'EOF'
name = "bench"
model = "sim-bench"
max_model_len = 4096
vocab_size = 32000
t0_s = 0.010
k_seq_s = 0.0
k_ctx_s = 0.0
k_prefill_s = 0.0
prefill_chunk_tokens = 1048576
max_num_seqs = 8192
kv_blocks = 1048576
block_size = 16
reasoning_tokens = 0
prefix_cache = false
eos_probability = 0.0
seed = 1
EOF

"$bin" sim --profile-file "$work/bench.toml" --port 0 > "$work/sim.log" 2>&1 &
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
# The simulator's own CPU time (utime + stime, in clock ticks), to tell who set the pace.
awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f\n", ($14 + $15) / hz }' "/proc/$sim_pid/stat" > "$work/sim_cpu"

python3 - "$work" <<'PY'
import json, sqlite3, sys
work = sys.argv[1]
probe = json.load(open(f"{work}/probe.json"))
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

def engine_ttft(start, end):
    """Δsum / Δcount of the engine's TTFT histogram between the scrapes bracketing the step."""
    def at(t, before):
        op, order = ("<=", "DESC") if before else (">=", "ASC")
        row = db.execute(f"SELECT seq FROM scrapes WHERE run_id=? AND t_s {op} ? ORDER BY t_s {order} LIMIT 1", (run, t)).fetchone()
        vals = dict(db.execute("SELECT name, SUM(value) FROM engine_samples WHERE run_id=? AND scrape_seq=? AND name IN ('vllm:time_to_first_token_seconds_sum','vllm:time_to_first_token_seconds_count') GROUP BY name", (run, row[0])).fetchall())
        return vals["vllm:time_to_first_token_seconds_sum"], vals["vllm:time_to_first_token_seconds_count"]
    s0, c0 = at(start, True)
    s1, c1 = at(end, False)
    return (s1 - s0) / (c1 - c0)

print(f"probe run {run}: {probe['status']}, {probe['requests_ok']} ok / {probe['requests_failed']} failed; "
      f"true step time {true_step*1e3:.3f} ms")
timings = {t["step_idx"]: t for t in probe["analysis"]["timings"]}
print("| streams | chunks | chunks/s | ITL p50 error ms | ITL p99 error ms | TTFT mean error ms | client lateness p99 ms | step time error ms |")
print("|---:|---:|---:|---:|---:|---:|---:|---:|")
for idx, bs, start, end in db.execute("SELECT idx, batch_size, start_t_s, end_t_s FROM steps WHERE run_id=? ORDER BY idx", (run,)).fetchall():
    gaps, n, last = [], 0, {}
    for req, t in db.execute("SELECT c.request_id, c.t_s FROM chunks c JOIN requests r ON r.id = c.request_id WHERE r.run_id=? AND r.step_idx=? ORDER BY c.request_id, c.seq", (run, idx)):
        n += 1
        if req in last:
            gaps.append(t - last[req])
        last[req] = t
    ttfts = [f - s for s, f in db.execute("SELECT sent_t_s, first_token_t_s FROM requests WHERE run_id=? AND step_idx=? AND outcome='ok'", (run, idx))]
    late = [l for (l,) in db.execute("SELECT late_s FROM client_ticks WHERE run_id=? AND step_idx=?", (run, idx))]
    ttft_err = sum(ttfts) / len(ttfts) - engine_ttft(start, end)
    # The analysis's client step time (each request's span in the window) against the truth.
    client = timings.get(idx, {}).get("t_fwd_client_s")
    step_err = f"{(client - true_step)*1e3:+.3f}" if client is not None else "-"
    print(f"| {bs} | {n:,} | {n / (end - start):,.0f} | {(pct(gaps, 50) - true_step)*1e3:+.3f} | "
          f"{(pct(gaps, 99) - true_step)*1e3:+.3f} | {ttft_err*1e3:+.3f} | {pct(late, 99)*1e3 if late else float('nan'):.2f} | {step_err} |")
tokens = truth["totals"]["generation_tokens"]
cpu = float(user) + float(sys_s)
print(f"probe process: {cpu:.2f} CPU-s ({user} user + {sys_s} sys) for {tokens:,} generated tokens = "
      f"{cpu / tokens * 1e6:.1f} CPU-s per million tokens; peak RSS {int(rss_kib)//1024} MiB")
print(f"simulator process (same machine): {float(open(f'{work}/sim_cpu').read()):.2f} CPU-s")
PY
