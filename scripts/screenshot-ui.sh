#!/usr/bin/env bash
# The README's picture of the browser view: backbone.yaml at t = 200 s (a satellite lost),
# the path from thule to vandenberg selected, taken by Debian's headless Chromium from
# `orbitnet plan --ui`. Regenerate it after a change to the page:
#
#   scripts/screenshot-ui.sh [OUT.png] [FRAGMENT]      (default docs/img/view.png)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-docs/img/view.png}
fragment=${2:-t=200&a=thule&b=vandenberg}
bin=${CARGO_TARGET_DIR:-target}/release/orbitnet
cargo build --release --locked -q -p orbitnet
command -v chromium >/dev/null || { echo "screenshot-ui: needs chromium (apt-get install chromium)" >&2; exit 1; }

log=$(mktemp)
"$bin" plan scenarios/backbone.yaml --ui 127.0.0.1:0 >"$log" &
server=$!
trap 'kill $server 2>/dev/null; rm -f "$log"' EXIT
for _ in $(seq 100); do grep -q http "$log" && break; sleep 0.1; done
url=$(grep -o 'http://[^ ]*' "$log")
mkdir -p "$(dirname "$out")"
# Virtual time lets the page load its frame and path before the picture is taken.
chromium --headless=new --no-sandbox --disable-gpu --hide-scrollbars --window-size=1400,820 \
  --virtual-time-budget=10000 --screenshot="$PWD/$out" "$url#$fragment" 2>/dev/null
echo "screenshot-ui: $out ($url#$fragment)"
