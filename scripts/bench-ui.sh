#!/usr/bin/env bash
# The browser view's benchmark: frame time (map, globe, and while playing), memory in
# Chromium and the stream's bytes per tick, for backbone.yaml and Starlink shell 1 + 100
# stations (1,684 nodes). Needs chromium and chromium-driver. Numbers in docs/performance.md.
#
#   scripts/bench-ui.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --release --locked -q -p orbitnet --test browser bench_ -- --ignored --nocapture --test-threads=1
