#!/usr/bin/env bash
# The first run on a real GPU (issue 14): what no test on a GPU-less machine can see.
#
#   scripts/gpu_check.sh [SECONDS]          # default 20 s of load per probe
#
# Needs an NVIDIA driver (nvidia-smi, libnvidia-ml) and python3; a known GPU load comes from
# PyTorch (a bf16 matmul loop on every counted GPU) where `import torch` works, else the load
# checks are skipped. Prints one verdict per check (PASS / FAIL / SKIP) and exits 1 on a FAIL.
#
# 1. `ceiling gpus --json`: every inventory and reading field non-null on a data-centre GPU,
#    and name, UUID, driver, memory, power limit and max SM clock equal to what
#    `nvidia-smi --query-gpu=...` prints.
# 2. A probe against `ceiling sim` with NVML sampling at 100 ms while the load runs: samples
#    per GPU ≈ duration / interval (±15 %), instants increasing, power from the energy counter
#    within 5 % of the mean power readings.
# 3. The same with NVML sampling off and an nvidia-smi log (`-lms 100`) imported with
#    `ceiling import-gpu`: mean power and utilisation within 10 % of the NVML run's.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-20}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ceiling-target}"
cargo build --release --quiet
bin="$CARGO_TARGET_DIR/release/ceiling"
work=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"' EXIT
export CEILING_DB="$work/check.db"
fail=0
verdict() { echo "$1: $2"; [ "$1" != FAIL ] || fail=1; }

command -v nvidia-smi >/dev/null || { verdict FAIL "nvidia-smi not found: no NVIDIA driver here"; exit 1; }

# 1. The inventory and one reading, against nvidia-smi.
"$bin" gpus --json > "$work/gpus.json"
nvidia-smi --query-gpu=index,name,uuid,driver_version,memory.total,power.limit,clocks.max.sm \
  --format=csv,noheader,nounits > "$work/smi_inventory.csv"
python3 - "$work" <<'EOF' || fail=1
import csv, json, sys
work = sys.argv[1]
r = json.load(open(f"{work}/gpus.json"))
if not r["works"]:
    print(f"FAIL: ceiling gpus: NVML does not work: {r['error']}"); sys.exit(1)
bad = 0
want_null_ok = {"serial", "counted", "mig", "pcie_tx_bytes_s", "pcie_rx_bytes_s", "mig_instance",
                "gr_engine_active", "sm_active", "sm_occupancy", "dram_active", "tensor_active"}
for g in r["gpus"] + r["sample"]:
    nulls = [k for k, v in g.items() if v is None and k not in want_null_ok]
    if nulls:
        bad += 1
        print(f"FAIL: ceiling gpus: GPU {g.get('index', g.get('gpu_index'))} has no {', '.join(nulls)}")
smi = {int(row[0]): [c.strip() for c in row] for row in csv.reader(open(f"{work}/smi_inventory.csv"))}
for g in r["gpus"]:
    s = smi.get(g["index"])
    if s is None:
        bad += 1; print(f"FAIL: nvidia-smi has no GPU {g['index']}"); continue
    checks = [("name", g["name"], s[1]), ("uuid", g["uuid"], s[2]), ("driver", g["driver"], s[3]),
              ("memory MiB", round((g["mem_total_bytes"] or 0) / 2**20), round(float(s[4]))),
              ("power limit W", round(g["power_limit_w"] or 0), round(float(s[5]))),
              ("max SM MHz", g["max_sm_clock_mhz"], int(float(s[6])))]
    for what, ours, theirs in checks:
        if str(ours) != str(theirs):
            bad += 1; print(f"FAIL: GPU {g['index']} {what}: ceiling {ours}, nvidia-smi {theirs}")
print(("PASS" if bad == 0 else "FAIL") + f": ceiling gpus against nvidia-smi ({len(r['gpus'])} GPU(s))")
sys.exit(1 if bad else 0)
EOF

# The simulator: the probe's engine (its load is on the CPU; the GPU load comes from torch).
"$bin" sim --time-scale 1 --port 0 > "$work/sim.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do grep -q 'listening on' "$work/sim.log" && break; sleep 0.1; done
base=$(grep -o 'http://[0-9.]*:[0-9]*' "$work/sim.log" | head -1)

load() {
  python3 - "$1" <<'EOF' &
import sys, time
import torch
end = time.time() + float(sys.argv[1])
devs = [torch.device(f"cuda:{i}") for i in range(torch.cuda.device_count())]
a = [torch.randn(8192, 8192, device=d, dtype=torch.bfloat16) for d in devs]
while time.time() < end:
    for x in a:
        x @ x
    torch.cuda.synchronize()
EOF
  pids+=($!)
}
probe() {
  "$bin" probe --url "$base" --batch-sizes 4 --output-len 64 --pattern closed-loop \
    --duration "${secs}s" --gpu-interval "$1" --json > "$work/probe_$2.json"
  python3 -c "import json; print(json.load(open('$work/probe_$2.json'))['run_id'])"
}
if ! python3 -c 'import torch; assert torch.cuda.is_available()' 2>/dev/null; then
  verdict SKIP "probe under a known load: no PyTorch with CUDA here (pip install torch)"
  exit $fail
fi

# 2. NVML at 100 ms under the load.
load "$((secs + 5))"; sleep 3
run_nvml=$(probe 100ms nvml)
python3 - "$CEILING_DB" "$run_nvml" <<'EOF' || fail=1
import sqlite3, sys
db, run = sys.argv[1], int(sys.argv[2])
c = sqlite3.connect(db)
bad = 0
for (gpu,) in c.execute("SELECT DISTINCT gpu_index FROM gpu_samples WHERE run_id=?", (run,)):
    rows = c.execute("SELECT t_s, power_w, energy_j FROM gpu_samples WHERE run_id=? AND gpu_index=? "
                     "AND mig_instance IS NULL ORDER BY rowid", (run, gpu)).fetchall()
    t = [r[0] for r in rows]
    span = t[-1] - t[0]
    want = span / 0.1 + 1
    ok_n = abs(len(t) - want) / want <= 0.15
    ok_inc = all(b > a for a, b in zip(t, t[1:]))
    p = [r[1] for r in rows if r[1] is not None]
    e = [(r[0], r[2]) for r in rows if r[2] is not None]
    mean_p = sum(p) / len(p) if p else None
    e_p = (e[-1][1] - e[0][1]) / (e[-1][0] - e[0][0]) if len(e) > 1 else None
    ok_e = mean_p and e_p and abs(e_p - mean_p) / mean_p <= 0.05
    for ok, what in [(ok_n, f"{len(t)} samples over {span:.1f} s (≈ {want:.0f} expected)"),
                     (ok_inc, "instants increasing"),
                     (ok_e, f"energy-based power {e_p and round(e_p, 1)} W vs mean power {mean_p and round(mean_p, 1)} W")]:
        print(("PASS" if ok else "FAIL") + f": NVML GPU {gpu}: {what}")
        bad += not ok
sys.exit(1 if bad else 0)
EOF

# 3. The same load, NVML off, an nvidia-smi log imported.
load "$((secs + 5))"; sleep 3
nvidia-smi --query-gpu=timestamp,index,utilization.gpu,power.draw,clocks.sm,memory.used \
  --format=csv -lms 100 > "$work/smi.csv" &
smi_pid=$!; pids+=($smi_pid)
run_smi=$(probe 0s smi)
kill "$smi_pid" 2>/dev/null || true
offset=$(date +%:z)
"$bin" import-gpu "$work/smi.csv" --run "$run_smi" --utc-offset "$offset" > "$work/import.txt"
python3 - "$CEILING_DB" "$run_nvml" "$run_smi" <<'EOF' || fail=1
import sqlite3, sys
db, a, b = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
c = sqlite3.connect(db)
q = "SELECT gpu_index, avg(power_w), avg(util_gpu_pct), count(*) FROM gpu_samples WHERE run_id=? GROUP BY gpu_index"
nv = {r[0]: r[1:] for r in c.execute(q, (a,))}
sm = {r[0]: r[1:] for r in c.execute(q, (b,))}
bad = 0
for gpu, (p, u, n) in sorted(nv.items()):
    if gpu not in sm:
        print(f"FAIL: nvidia-smi import has no GPU {gpu}"); bad += 1; continue
    p2, u2, n2 = sm[gpu]
    for what, x, y in [("mean power W", p, p2), ("mean util %", u, u2)]:
        ok = x and y and abs(x - y) / max(x, y) <= 0.10
        print(("PASS" if ok else "FAIL") + f": GPU {gpu} {what}: NVML {x and round(x, 1)} ({n} samples), nvidia-smi {y and round(y, 1)} ({n2} rows)")
        bad += not ok
sys.exit(1 if bad else 0)
EOF
exit $fail
