#!/usr/bin/env bash
# Coverage-guided fuzzing (issue 19): builds the cargo-fuzz targets of fuzz/ and runs each for
# SECONDS (default 30), seeded from the project's fixtures. Prints per target the executions,
# the seconds, the corpus size and whether it crashed; a crash leaves its input under
# fuzz/artifacts/TARGET/ and makes the script exit 1.
#
#   scripts/fuzz.sh [SECONDS] [TARGET…]        # all targets when none is named
#   FUZZ_DEV=1 scripts/fuzz.sh 10              # unoptimized build (CI's short runs: a faster
#                                              # cold build, fewer executions per second)
#
# Needs `cargo install cargo-fuzz`. Stable toolchain: RUSTC_BOOTSTRAP=1 lets cargo-fuzz pass its
# flags; no sanitizer (`-s none`): the parsers are safe Rust (`unsafe_code = "forbid"`), so
# AddressSanitizer would find nothing libFuzzer's panics and its RSS limit do not, and it doubles
# the build. Debug assertions and overflow checks are on (cargo-fuzz's default).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-30}
shift || true
export RUSTC_BOOTSTRAP=1
# polars built without the coverage pass (scripts/fuzz-rustc.sh says why).
export RUSTC_WRAPPER="$PWD/scripts/fuzz-rustc.sh"
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-$PWD/fuzz/target}"
# One polars thread: an input is a few KB, and two threads handing it between them cost a
# quarter more CPU an execution (peer_import, docs/RELIABILITY.md).
export POLARS_MAX_THREADS=1
targets=("$@")
profile=()
if [ "${FUZZ_DEV:-0}" = 1 ]; then
  profile=(--dev)
fi
if [ ${#targets[@]} -eq 0 ]; then
  targets=(prometheus dcgm nvidia_smi llamacpp_props model_config peer_import dataset tokenizer sse http1)
fi

# seed TARGET PREFIX FILE…: copies each fixture into the target's corpus, PREFIX (printf
# escapes) before its bytes, where the target reads a leading selector byte; SEED_TAG goes into
# the copy's name, to seed one file under two selectors.
seed() {
  local target=$1 prefix=$2
  shift 2
  mkdir -p "fuzz/corpus/$target"
  for f in "$@"; do
    [ -f "$f" ] || continue
    local dest
    dest="fuzz/corpus/$target/seed${SEED_TAG:-}-$(basename "$f")"
    [ -e "$dest" ] || { printf "$prefix"; cat "$f"; } > "$dest"
  done
}
mapfile -t peer < <(find fixtures/peer-formats fixtures/peer-results -type f ! -name '*.md' ! -name '*.db' -size -512k)
seed prometheus '' fixtures/expositions/*.prom
seed dcgm '' fixtures/expositions/dcgm*.prom
seed nvidia_smi '' fixtures/nvidia-smi/*.csv
seed llamacpp_props '' fixtures/llamacpp/*.json
seed model_config '' fixtures/model-configs/*.json
seed peer_import '\377' "${peer[@]}"
SEED_TAG=-records seed peer_import '\376' fixtures/peer-results/aiperf/artifacts/profile_export.jsonl
seed dataset '' fixtures/datasets/*
seed tokenizer '' fixtures/tokenizers/*.json
seed sse '' fuzz/seeds/sse/*
seed http1 '' fuzz/seeds/http1/*

start=$(date +%s)
(cd fuzz && cargo fuzz build -s none "${profile[@]}")
echo "build: $(( $(date +%s) - start )) s"

failed=0
printf '%-16s %12s %8s %8s %8s %s\n' target executions seconds exec/s corpus result
for t in "${targets[@]}"; do
  log=$(mktemp)
  rc=0
  (cd fuzz && cargo fuzz run -s none "${profile[@]}" "$t" "corpus/$t" -- \
      -max_total_time="$seconds" -max_len=262144 -rss_limit_mb=2048 -timeout=20 \
      -print_final_stats=1) > "$log" 2>&1 || rc=$?
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')
  rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')
  result=ok
  if [ "$rc" -ne 0 ]; then
    result="CRASH (rc $rc): $(grep -m1 -E 'panicked|ERROR: libFuzzer' "$log" || true)"
    failed=1
    tail -30 "$log" >&2
  fi
  printf '%-16s %12s %8s %8s %8s %s\n' "$t" "$runs" "$seconds" "$rate" "$(ls "fuzz/corpus/$t" | wc -l)" "$result"
  rm -f "$log"
done
exit "$failed"
