#!/usr/bin/env bash
# RUSTC_WRAPPER for scripts/fuzz.sh: compiles the polars crates without libFuzzer's coverage
# pass. cargo-fuzz instruments every crate (`-Cpasses=sancov-module` and its
# `-sanitizer-coverage-*` options); each execution then clears and scans the coverage counters
# of all of them, and polars' are most of the `peer_import` target's (callgrind: ~65 % of an
# execution on small inputs, docs/RELIABILITY.md). The importers' own code, serde_json and the
# rest keep their coverage; polars is a dependency we call, not a parser of ours to explore.
# No sanitizer is built (`-s none`), so instrumented and plain crates link as one.
set -euo pipefail
rustc=$1
shift
name=
prev=
for a in "$@"; do
  [ "$prev" = --crate-name ] && name=$a
  prev=$a
done
case "$name" in
  polars*) ;;
  *) exec "$rustc" "$@" ;;
esac
# Both spellings: `-Cpasses=…` and `-C passes=…`.
out=()
args=("$@")
n=${#args[@]}
i=0
while [ "$i" -lt "$n" ]; do
  a=${args[$i]}
  case "$a" in
    -Cpasses=sancov-module | -Cllvm-args=-sanitizer-coverage*)
      i=$((i + 1))
      continue
      ;;
    -C)
      case "${args[$((i + 1))]:-}" in
        passes=sancov-module | llvm-args=-sanitizer-coverage*)
          i=$((i + 2))
          continue
          ;;
      esac
      ;;
  esac
  out+=("$a")
  i=$((i + 1))
done
exec "$rustc" "${out[@]}"
