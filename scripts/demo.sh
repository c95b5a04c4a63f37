#!/usr/bin/env bash
# `make demo`: the backbone scenario in the local runner, ten minutes of orbit in one minute
# of wall time, with the live view of link state, paths and faults. Runs on this host if its
# kernel has sch_netem, else the same command inside the VM of scripts/vm.sh.
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
run=(run "$scenario" --duration 10m --time-scale 10 --workdir /run/orbitnet-demo "$@")

if host_has_netem; then
  exec "$bin" "${run[@]}"
fi
echo "demo: kernel $(uname -r) has no sch_netem; running the same command in a VM with Debian's generic kernel (scripts/vm.sh, ~3 s to boot)" >&2
exec scripts/vm.sh --mem 1G -- "$bin" "${run[@]}"
