#!/usr/bin/env bash
# Opens a report in headless Chromium (Debian's `chromium`) and checks what a person would see:
# the page loads with no console message (no errors, nothing fetched that is missing), every
# inline SVG chart is laid out with a non-zero size, and a screenshot is written.
#
#   scripts/check_html.sh REPORT.html OUT.png
#
# Prints `console: N` and `charts: WxH WxH ...`; exits non-zero when Chromium is missing, when
# the page logged anything to the console, when a chart has no size, or when no screenshot came.
# The size check runs on a copy of the page with a small script appended (the report itself has
# no JavaScript); that copy never replaces the report.
set -euo pipefail

if [ $# -ne 2 ]; then
  echo "usage: $0 REPORT.html OUT.png" >&2
  exit 2
fi
report=$(realpath "$1")
out=$(realpath -m "$2")
chromium=${CHROMIUM:-chromium}
command -v "$chromium" >/dev/null || {
  echo "check_html: '$chromium' not found; install it: apt-get install -y --no-install-recommends chromium" >&2
  exit 3
}
[ -f "$report" ] || { echo "check_html: no such file: $report" >&2; exit 2; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
size=1280,2000

run_chromium() {
  # No sandbox: CI runs as root. Everything that would reach the network is off.
  "$chromium" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --disable-default-apps --disable-extensions --mute-audio --hide-scrollbars \
    --user-data-dir="$work/profile-$1" --window-size="$size" \
    --enable-logging=stderr --v=0 "${@:2}"
}

# 1. The report as it is: screenshot and console.
rm -f "$out"
run_chromium shot --screenshot="$out" "file://$report" >"$work/shot.out" 2>"$work/shot.err" || {
  echo "check_html: chromium failed on $report:" >&2
  cat "$work/shot.err" >&2
  exit 1
}
console=$(grep -E 'CONSOLE|Uncaught' "$work/shot.err" || true)
console_count=$(printf '%s' "$console" | grep -c . || true)
echo "console: $console_count"
if [ "$console_count" -ne 0 ]; then
  echo "check_html: the page logged to the console:" >&2
  printf '%s\n' "$console" >&2
  exit 1
fi
[ -s "$out" ] || { echo "check_html: no screenshot written to $out" >&2; cat "$work/shot.err" >&2; exit 1; }

# 2. Chart sizes as laid out: a copy with a measuring script, its DOM dumped after load.
probe="$work/probe.html"
cp "$report" "$probe"
cat >>"$probe" <<'JS'
<script>
document.body.setAttribute('data-chart-sizes', Array.from(document.querySelectorAll('figure svg'))
  .map(function (s) { var r = s.getBoundingClientRect(); return Math.round(r.width) + 'x' + Math.round(r.height); })
  .join(' '));
</script>
JS
run_chromium dom --dump-dom "file://$probe" >"$work/dom.html" 2>"$work/dom.err" || {
  echo "check_html: chromium --dump-dom failed:" >&2
  cat "$work/dom.err" >&2
  exit 1
}
sizes=$(grep -o 'data-chart-sizes="[^"]*"' "$work/dom.html" | head -n1 | sed -e 's/^data-chart-sizes="//' -e 's/"$//' || true)
figures=$(grep -o '<figure>' "$report" | wc -l)
echo "charts: $sizes"
measured=$(printf '%s' "$sizes" | wc -w)
if [ "$measured" -ne "$figures" ]; then
  echo "check_html: $figures figures in the report, $measured charts laid out" >&2
  exit 1
fi
for s in $sizes; do
  case "$s" in
    0x* | *x0) echo "check_html: a chart has no size ($s)" >&2; exit 1 ;;
  esac
done
