#!/usr/bin/env bash
# `make demo`: the backbone scenario in the local runner, ten minutes of orbit in one minute
# of wall time, with the live view of link state, paths, faults and the mission's flows, and
# at the end the verdict on its objectives (the exit status says it: 0 all passed). Runs on
# this host if its kernel has sch_netem, else the same command inside the VM of scripts/vm.sh.
#
#   scripts/demo.sh [SCENARIO] [EXTRA orbitnet run ARGUMENTS...]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

bin="${CARGO_TARGET_DIR:-target}/release/orbitnet"
[ -x "$bin" ] || { echo "demo: $bin is missing; run: make build" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "demo: orbitnet run needs root (network namespaces, qdiscs); run: sudo make demo" >&2; exit 1; }

scenario=${1:-scenarios/backbone.yaml}
shift $(( $# > 0 ? 1 : 0 ))
run=(run "$scenario" --time-scale 10 --workdir /run/orbitnet-demo)
# The spec's own duration if it has one, else ten minutes; a verdict if it has objectives.
grep -q '^  duration:' "$scenario" || run+=(--duration 10m)
grep -q '^  objectives:' "$scenario" && run+=(--check)
run+=("$@")

if host_has_netem; then
  exec "$bin" "${run[@]}"
fi
echo "demo: kernel $(uname -r) has no sch_netem; running the same command in a VM with Debian's generic kernel (scripts/vm.sh, ~3 s to boot)" >&2
exec scripts/vm.sh --mem 1G -- "$bin" "${run[@]}"
