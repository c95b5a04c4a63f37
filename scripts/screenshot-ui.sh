#!/usr/bin/env bash
# The README's picture of the browser view: backbone.yaml at t = 200 s (a satellite lost),
# the path from thule to vandenberg selected, taken by Debian's headless Chromium (driven by
# chromedriver, in real time) from `orbitnet plan --ui`. Regenerate it after a change to the
# page:
#
#   scripts/screenshot-ui.sh [OUT.png [FRAGMENT [SCENARIO]]]   (default docs/img/view.png)
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(realpath -m "${1:-docs/img/view.png}")
fragment=${2:-t=200&a=thule&b=vandenberg}
scenario=${3:-scenarios/backbone.yaml}
bin=${CARGO_TARGET_DIR:-target}/release/orbitnet
cargo build --release --locked -q -p orbitnet
for p in chromium chromedriver; do
  command -v $p >/dev/null || { echo "screenshot-ui: needs $p (apt-get install chromium chromium-driver)" >&2; exit 1; }
done

run=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; rm -rf "$run"' EXIT
"$bin" plan "$scenario" --ui 127.0.0.1:0 >"$run/plan.log" &
pids+=($!)
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
chromedriver --port="$port" >/dev/null 2>&1 &
pids+=($!)
for _ in $(seq 100); do
  grep -q http "$run/plan.log" && curl -sf "http://127.0.0.1:$port/status" >/dev/null && break
  sleep 0.1
done
url="$(grep -o 'http://[^ ]*' "$run/plan.log")#$fragment"

wd() { curl -sf -X "$1" -H 'Content-Type: application/json' "http://127.0.0.1:$port$2" ${3:+-d "$3"}; }
value() { python3 -c "import json, sys; v = json.load(sys.stdin)['value']; print(v$1)"; }
caps='{"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
  "binary": "/usr/bin/chromium",
  "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1400,820"]}}}}'
session=$(wd POST /session "$caps" | value "['sessionId']")
wd POST "/session/$session/url" "{\"url\": \"$url\"}" >/dev/null
# Ready, drawn at the time asked for, and the path (if one was asked for) shown.
for _ in $(seq 300); do
  done=$(wd POST "/session/$session/execute/sync" '{"args": [], "script":
    "const o = window.orbitnet, h = new URLSearchParams(location.hash.slice(1));
     return !!(o && o.ready && (!h.has(\"t\") || o.frame().t === Number(h.get(\"t\"))) && (!h.has(\"b\") || (o.path() && o.path().t === o.frame().t)));"}' | value "")
  [ "$done" = True ] && break
  sleep 0.1
done
[ "$done" = True ] || { echo "screenshot-ui: the page did not draw $url within 30 s" >&2; exit 1; }
mkdir -p "$(dirname "$out")"
wd GET "/session/$session/screenshot" | value "" | base64 -d >"$out"
wd DELETE "/session/$session" >/dev/null
echo "screenshot-ui: $out ($url)"
