#!/usr/bin/env bash
# The probe benchmark (issues 4 and 18): the release probe against `ceiling sim` with a known
# step time, the probe and the simulator pinned to different cores.
#
#   scripts/bench_probe.sh [BATCH_SIZES] [OUTPUT_LEN]     # default 1,8,100,1000,4096 and 64
#
#   PROBE_CORE / SIM_CORE   the cores `taskset` pins them to (default 0 and 1)
#   SCRAPE_INTERVAL         the probe's --scrape-interval (default 1s; 0s: no scrape at all, so
#                           the CPU is the streaming client's alone, not the metrics' reader's)
#   CEILING_BIN             a release binary to measure instead of building this checkout's
#   SIM_BIN                 the binary whose `ceiling sim` serves (default: the measured one); an
#                           older probe measured against today's simulator
#   REPEAT                  runs every batch size's short/long pair this many times in turn (default
#                           1) and prints the CPU per token as the median, with the range: on a
#                           shared VM one run's CPU time moves ±15 %; the accuracy columns stay the
#                           first repetition's
#   FLOOR=1                 also measure the floor: scripts/floor_client.c (built with `cc -O2`)
#                           holding the same number of streams for the same requests, one epoll
#                           loop and one recv per ready socket, nothing parsed or recorded: the
#                           CPU per output token of receiving the bytes at all on this machine;
#                           and the same on tokio (examples/floor_tokio.rs, the probe's runtime:
#                           its scheduler and reactor, one task a stream, nothing parsed): what
#                           the runtime's wake-ups cost a chunk before the probe does anything
#   CALLGRIND=1             also count the probe's instructions per output token under
#                           `valgrind --tool=callgrind` (batch sizes up to 8 only: valgrind runs
#                           the client ~50x slower, and a client that falls behind reads several
#                           chunks per wake-up, which would flatter it)
#
# The simulator runs the `bench` profile below: every engine step takes exactly 10 ms whatever
# the batch (no per-sequence, context or prefill cost), so the true inter-token time is the
# simulator's realised step time (`/sim/truth`); `/sim/requests` gives each response's
# server-side TTFT (arrival to the write of its first token), joined to the probe's requests on
# the response id. Each batch size is probed twice as its own process (wave pattern, 1 warm-up
# wave each): a short run of 1 measured wave and a long run of W. The probe's CPU per output
# token is the marginal one, (CPU of the long run − CPU of the short) / (tokens of the long −
# tokens of the short), so start-up, the warm-up wave and the fixed part of the final analysis
# cancel; CPU is user + sys of the whole process (wait4's rusage). Printed per batch size from
# the long run: chunks/s over the step, ITL error (client ITL p50/p99 − true step time); the
# ITL the simulator wrote (`/sim/requests`' `writes_s`: when it handed each token chunk to its
# connection; its p99 − the step is the simulator's own spread of writes within a step), the
# client's ITL p99 against that written p99, and the paired error (p99 of |client gap − written
# gap| over the same two chunks of a request): the client's error alone; TTFT error p50/p99
# (client − server, per request, the server's from its handler), the server's socket wait p99
# (`socket_wait_s`: the kernel's receipt of the request to its handler) and the TTFT error p99
# against the server's from that receipt (the client's own error), the client's lateness p99, the analysis's client step time
# against the true one, and the probe's peak RSS.
set -euo pipefail
cd "$(dirname "$0")/.."
batch_sizes=${1:-1,8,100,1000,4096}
output_len=${2:-64}
probe_core=${PROBE_CORE:-0}
sim_core=${SIM_CORE:-1}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ceiling-target}"
bin=${CEILING_BIN:-}
if [ -z "$bin" ]; then
  cargo build --release --quiet
  bin="$CARGO_TARGET_DIR/release/ceiling"
fi
work=$(mktemp -d)
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

taskset -c "$sim_core" "${SIM_BIN:-$bin}" sim --profile-file fixtures/sim-profiles/flat-10ms.toml --port 0 > "$work/sim.log" 2>&1 &
sim_pid=$!
trap 'kill $sim_pid 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 100); do
  grep -q 'listening on' "$work/sim.log" && break
  sleep 0.1
done
base=$(grep -o 'http://[0-9.]*:[0-9]*' "$work/sim.log" | head -1)
[ -n "$base" ] || { echo "the simulator did not start: $(cat "$work/sim.log")" >&2; exit 1; }

# Runs a command pinned to the probe's core and writes its rusage (user s, sys s, peak RSS KiB)
# to $1 — microsecond CPU times, where /usr/bin/time rounds to 10 ms.
timed() {
  local out=$1
  shift
  taskset -c "$probe_core" python3 -c '
import os, sys
out, cmd = sys.argv[1], sys.argv[2:]
pid = os.fork()
if pid == 0:
    os.execvp(cmd[0], cmd)
_, status, ru = os.wait4(pid, 0)
open(out, "w").write(f"{ru.ru_utime} {ru.ru_stime} {ru.ru_maxrss}\n")
sys.exit(os.waitstatus_to_exitcode(status))
' "$out" "$@"
}

# Measured waves of the long run: enough tokens that the marginal CPU is well above the noise.
long_waves() {
  if [ "$1" -le 8 ]; then echo 33; elif [ "$1" -le 100 ]; then echo 9; else echo 3; fi
}

IFS=, read -ra sizes <<< "$batch_sizes"
repeat=${REPEAT:-1}
for rep in $(seq "$repeat"); do
for bs in "${sizes[@]}"; do
  for run in short long; do
    waves=1
    [ "$run" = long ] && waves=$(long_waves "$bs")
    # The first repetition's files carry no suffix: its long run gives the accuracy columns.
    tag="$bs-$run"
    [ "$rep" -gt 1 ] && tag="$bs-$run-r$rep"
    args=(--db "$work/$tag.db" probe --url "$base" --batch-sizes "$bs" --input-len 16
      --output-len "$output_len" --waves "$waves" --warmup 1 --gpu-interval 0s
      --scrape-interval "${SCRAPE_INTERVAL:-1s}" --request-timeout 120s --json)
    timed "$work/$tag.time" "$bin" "${args[@]}" > "$work/$tag.json"
    if [ "${CALLGRIND:-0}" = 1 ] && [ "$bs" -le 8 ] && [ "$rep" = 1 ]; then
      rm -f "$work/$bs-$run-cg.db"*
      args[1]="$work/$bs-$run-cg.db"
      taskset -c "$probe_core" valgrind --tool=callgrind --callgrind-out-file="$work/$bs-$run.cg" \
        "$bin" "${args[@]}" > /dev/null 2> "$work/$bs-$run.cg.log"
      grep -m1 '^summary:' "$work/$bs-$run.cg" | awk '{ print $2 }' > "$work/$bs-$run.instr"
    fi
  done
done
done
# The floor client (scripts/floor_client.c): N requests with BS in flight, each read to its end
# with one epoll loop and one recv per ready socket, nothing parsed or recorded.
floor() {
  local client=$1 bs=$2 n=$3 out=$4
  timed "$out.time" "$work/$client" "$host" "$port" "$bs" "$n" "$work/body.json" > "$out.events"
  echo $((n * output_len)) > "$out.tokens"
}
if [ "${FLOOR:-0}" = 1 ]; then
  cc -O2 -o "$work/floor_client" scripts/floor_client.c
  cargo build --release --quiet --example floor_tokio
  cp "$CARGO_TARGET_DIR/release/examples/floor_tokio" "$work/floor_tokio"
  model=$(curl -s "$base/v1/models" | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"][0]["id"])')
  printf '{"model":"%s","prompt":[%s],"max_tokens":%s,"ignore_eos":true,"stream":true,"stream_options":{"include_usage":true}}' \
    "$model" "$(seq -s, 16)" "$output_len" > "$work/body.json"
  hostport=${base#http://}
  host=${hostport%:*}
  port=${hostport##*:}
  for bs in "${sizes[@]}"; do
    for client in floor_client floor_tokio; do
      floor "$client" "$bs" $((bs * 2)) "$work/$bs-$client-short"
      floor "$client" "$bs" $((bs * (1 + $(long_waves "$bs")))) "$work/$bs-$client-long"
    done
  done
fi
curl -s "$base/sim/truth" > "$work/truth.json"
curl -s "$base/sim/requests" > "$work/served.json"
# The simulator's own CPU time (utime + stime, in clock ticks), to tell who set the pace.
awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f\n", ($14 + $15) / hz }' "/proc/$sim_pid/stat" > "$work/sim_cpu"

python3 - "$work" "$batch_sizes" "$output_len" "$repeat" <<'PY'
import json, os, sqlite3, statistics, sys
work, sizes, output_len = sys.argv[1], [int(s) for s in sys.argv[2].split(",")], int(sys.argv[3])
repeat = int(sys.argv[4])
served_rows = json.load(open(f"{work}/served.json"))
served = {r["id"]: r["ttft_s"] for r in served_rows}
# How long each request's last byte waited in the simulator's socket and threads before its
# handler (the kernel's receive stamp; absent where the kernel gave none).
socket_wait = {r["id"]: r["socket_wait_s"] for r in served_rows if "socket_wait_s" in r}
# Each response's token chunks as the simulator wrote them (seconds from its arrival).
written = {r["id"]: r["writes_s"] for r in served_rows if "writes_s" in r}
truth = json.load(open(f"{work}/truth.json"))
steps = [*truth["decode_steps"], *truth["mixed_steps"]]
true_step = sum(s["mean_s"] * s["count"] for s in steps) / sum(s["count"] for s in steps)

def pct(v, p):
    if not v:
        return float("nan")
    v = sorted(v)
    h = (len(v) - 1) * p / 100
    lo = int(h)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (h - lo) * (v[hi] - v[lo])

def tokens(db):
    (n,) = sqlite3.connect(db).execute("SELECT COALESCE(SUM(completion_tokens_reported), 0) FROM requests").fetchone()
    return n

def cpu(bs, run):
    user, sys_s, rss = open(f"{work}/{bs}-{run}.time").read().split()
    return float(user), float(sys_s), int(rss)

def instr_per_token(bs):
    try:
        i = [int(open(f"{work}/{bs}-{r}.instr").read()) for r in ("short", "long")]
        n = [tokens(f"{work}/{bs}-{r}-cg.db") for r in ("short", "long")]
    except (OSError, ValueError, sqlite3.Error):
        return "-"
    return f"{(i[1] - i[0]) / (n[1] - n[0]):,.0f}"

print(f"true step time {true_step*1e3:.3f} ms; output tokens per request as asked; one token per SSE chunk")
print("| streams | marginal tokens | CPU µs per output token (of which sys) | instructions per output token | chunks/s | ITL p50 error ms | ITL p99 error ms | written ITL p99 − step ms | ITL p99 error against the written ms | paired gap error p99 ms (responses paired) | TTFT p50 error ms | TTFT p99 error ms | server socket wait p99 ms | TTFT p99 error from the receipt ms | client lateness p99 ms | step time error ms | peak RSS MiB | requests ok/failed |")
print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
def us_per_token(short, long, ts, tl):
    """CPU and sys µs per output token between a short and a long run, from their rusage."""
    (us, ss, _), (ul, sl, _) = short, long
    return (ul + sl - us - ss) / (tl - ts) * 1e6, (sl - ss) / (tl - ts) * 1e6

def marginal(bs, suffix):
    """The probe's us_per_token over a repetition's short and long run."""
    ts, tl = tokens(f"{work}/{bs}-short{suffix}.db"), tokens(f"{work}/{bs}-long{suffix}.db")
    if tl <= ts:
        return None
    return us_per_token(cpu(bs, f"short{suffix}"), cpu(bs, f"long{suffix}"), ts, tl)

for bs in sizes:
    rss = cpu(bs, "long")[2]
    ts, tl = tokens(f"{work}/{bs}-short.db"), tokens(f"{work}/{bs}-long.db")
    reps = [m for m in (marginal(bs, "" if r == 1 else f"-r{r}") for r in range(1, repeat + 1)) if m]
    per_token = "-"
    if len(reps) == 1:
        per_token = f"{reps[0][0]:.1f} ({reps[0][1]:.1f} sys)"
    elif reps:
        cpu_us = [c for c, _ in reps]
        per_token = (f"{statistics.median(cpu_us):.1f} ({min(cpu_us):.1f}–{max(cpu_us):.1f} over {len(reps)}; "
                     f"{statistics.median([s for _, s in reps]):.1f} sys)")
    probe = json.load(open(f"{work}/{bs}-long.json"))
    run = probe["run_id"]
    db = sqlite3.connect(f"{work}/{bs}-long.db")
    # A recording from before a request's chunks and the lateness ticks were batched into rows
    # (an older CEILING_BIN): its tables, one row a chunk or a tick, are what the views give.
    if not db.execute("SELECT 1 FROM sqlite_master WHERE name='chunk_rows'").fetchone():
        db.execute("CREATE TEMP VIEW chunk_rows AS SELECT request_id, seq, t_s FROM chunks")
    if not db.execute("SELECT 1 FROM sqlite_master WHERE name='client_tick_rows'").fetchone():
        db.execute("CREATE TEMP VIEW client_tick_rows AS SELECT * FROM client_ticks")
    timings = {t["step_idx"]: t for t in probe["analysis"]["timings"]}
    (idx, start, end), = db.execute("SELECT idx, start_t_s, end_t_s FROM steps WHERE run_id=?", (run,)).fetchall()
    gaps, n, last = [], 0, {}
    for req, t in db.execute("SELECT c.request_id, c.t_s FROM requests r CROSS JOIN chunk_rows c ON c.request_id = r.id WHERE r.run_id=? AND r.step_idx=? ORDER BY c.request_id, c.seq", (run, idx)):
        n += 1
        if req in last:
            gaps.append(t - last[req])
        last[req] = t
    # Per measured request (warm-up waves open the connections): the client's TTFT less the
    # simulator's (arrival to the write of its first token), joined on the response id.
    measured = db.execute("SELECT sent_t_s, first_token_t_s, response_id FROM requests WHERE run_id=? AND step_idx=? AND outcome='ok' AND warmup=0", (run, idx)).fetchall()
    ttft_errs = [f - s - served[rid] for s, f, rid in measured if rid in served]
    # The same from the kernel's receipt of the request at the simulator: what the client's
    # TTFT includes and the handler's instant does not (the burst's wait to be read and routed)
    # is then on the server's side too, and the difference is the client's own error.
    waits = [socket_wait[rid] for _, _, rid in measured if rid in socket_wait]
    ttft_errs_rx = [f - s - served[rid] - socket_wait[rid] for s, f, rid in measured if rid in socket_wait]
    # Per measured request, each inter-token gap the client saw against the one the simulator
    # wrote (the gap between its writes of the same two chunks): the client's own error, with
    # the simulator's spread of writes within a step taken out.
    client_chunks = {}
    for rid, t in db.execute("SELECT r.response_id, c.t_s FROM requests r CROSS JOIN chunk_rows c ON c.request_id = r.id WHERE r.run_id=? AND r.step_idx=? AND r.outcome='ok' AND r.warmup=0 ORDER BY r.id, c.seq", (run, idx)):
        client_chunks.setdefault(rid, []).append(t)
    seen_gaps, wrote_gaps, paired, whole = [], [], [], 0
    for rid, cs in client_chunks.items():
        ws = written.get(rid)
        if ws is None or len(ws) != len(cs):
            continue
        whole += 1
        for i in range(1, len(cs)):
            c, w = cs[i] - cs[i - 1], ws[i] - ws[i - 1]
            seen_gaps.append(c)
            wrote_gaps.append(w)
            paired.append(abs(c - w))
    late = [l for (l,) in db.execute("SELECT late_s FROM client_tick_rows WHERE run_id=? AND step_idx=?", (run, idx))]
    # The analysis's client step time (each request's span in the window) against the truth.
    client = timings.get(idx, {}).get("t_fwd_client_s")
    step_err = f"{(client - true_step)*1e3:+.3f}" if client is not None else "-"
    print(f"| {bs} | {tl - ts:,} | {per_token} | {instr_per_token(bs)} | {n / (end - start):,.0f} | "
          f"{(pct(gaps, 50) - true_step)*1e3:+.3f} | {(pct(gaps, 99) - true_step)*1e3:+.3f} | "
          f"{(pct(wrote_gaps, 99) - true_step)*1e3:+.3f} | {(pct(seen_gaps, 99) - pct(wrote_gaps, 99))*1e3:+.3f} | "
          f"{pct(paired, 99)*1e3:.3f} ({whole:,} of {len(client_chunks):,} responses) | "
          f"{pct(ttft_errs, 50)*1e3:+.3f} | {pct(ttft_errs, 99)*1e3:+.3f} | {pct(waits, 99)*1e3:.3f} | "
          f"{pct(ttft_errs_rx, 99)*1e3:+.3f} | {pct(late, 99)*1e3:.2f} | "
          f"{step_err} | {rss // 1024} | {probe['requests_ok']}/{probe['requests_failed']} |")
floor = []
for bs in sizes:
    for client in ("floor_client", "floor_tokio"):
        try:
            cs, cl = (int(open(f"{work}/{bs}-{client}-{r}.tokens").read()) for r in ("short", "long"))
            us, ss = us_per_token(cpu(bs, f"{client}-short"), cpu(bs, f"{client}-long"), cs, cl)
            events = int(open(f"{work}/{bs}-{client}-long.events").read())
        except (OSError, ValueError):
            continue
        # Each response is its tokens' events, the usage event and [DONE].
        expected = cl // output_len * (output_len + 2)
        floor.append(f"| {bs} | {client} | {cl - cs:,} | {us:.1f} ({ss:.1f} sys) | {events:,}/{expected:,} |")
if floor:
    print()
    print("floors reading the same streams, nothing parsed: scripts/floor_client.c (one epoll loop, a recv per ready socket) and examples/floor_tokio.rs (tokio: a task a stream)")
    print("| streams | client | marginal tokens | CPU µs per output token (of which sys) | events read/sent (long run) |")
    print("|---:|---|---:|---:|---:|")
    print("\n".join(floor))
print(f"simulator process (own core): {float(open(f'{work}/sim_cpu').read()):.2f} CPU-s for "
      f"{truth['totals']['generation_tokens']:,} generated tokens")
PY
