#!/usr/bin/env bash
# Hypatia's workload (DESIGN.md section 7): Starlink shell 1 + 100 stations, 200 s at 100 ms
# steps (2,001 ticks), forwarding state for every satellite to every station. Target: <= 60 s
# on a 2-core machine. Runs it on one thread and on all cores, side by side.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${CARGO_TARGET_DIR:-target}/release/orbitnet"
[ -x "$bin" ] || cargo build --release --locked -p orbitnet
args=(plan scenarios/starlink-shell1.yaml --from 0 --to 200 --step 0.1 --routes --summary)
echo "\$ orbitnet ${args[*]} --threads 1"
"$bin" "${args[@]}" --threads 1
echo
echo "\$ orbitnet ${args[*]}   # one thread per core ($(nproc))"
"$bin" "${args[@]}"
