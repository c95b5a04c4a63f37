#!/usr/bin/env bash
# The local runner at scale (issue #4, DESIGN.md section 7): Starlink shell 1 and 100
# stations (1,684 nodes) brought up, then run with 1 s ticks and with 100 ms ticks, each in a
# fresh kernel. Prints for each: time to be up (by stage), memory per node, and apply latency
# per tick (p50, p99) from the run's own telemetry. On this host if its kernel has netem, else
# in the VM (2 vCPUs, 3 GiB). Under the VM's emulation (TCG) every kernel operation is several
# times slower than on hardware: the route benchmark runs on both, side by side, to say how
# much.
#
#   scripts/bench-scale.sh [SECONDS PER RUN, default 120]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
wall=${1:-120}
bin="${CARGO_TARGET_DIR:-target}/release/orbitnet"

# Inside (the VM, or this host with netem): one run at tick $ORBITNET_BENCH_TICK.
if [ -n "${ORBITNET_BENCH_TICK:-}" ]; then
  ulimit -n "$(ulimit -Hn)"
  tick=$ORBITNET_BENCH_TICK
  work=$(mktemp -d "${TMPDIR:-/tmp}/orbitnet-scale.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  name="scale-${tick}"
  sed -e "s/^metadata: {name: starlink-shell1}/metadata: {name: $name}/" \
      -e "s/^  tick: 1s/  tick: $tick/" scenarios/starlink-shell1.yaml > "$work/$name.yaml"
  echo "=== Starlink shell 1 + 100 stations, tick $tick, ${wall} s at real time, kernel $(uname -r)"
  "$bin" run "$work/$name.yaml" --quiet --duration "${wall}s" --workdir "$work/w" \
    --telemetry "$work/$name.jsonl" >/dev/null
  "$bin" report "$work/$name.jsonl" --out-dir "$work" | grep -v '^plot:'
  exit 0
fi

[ "$(id -u)" = 0 ] || { echo "bench-scale needs root (network namespaces, qdiscs)" >&2; exit 2; }
cargo build --release --locked -q -p orbitnet
routes=$(cargo_executable bench --locked -q -p orbitnet-benches --bench routes)
[ -n "$routes" ] || { echo "cannot build the routes benchmark" >&2; exit 1; }

if host_has_netem; then
  "$routes" --bench
  for tick in 1s 100ms; do ORBITNET_BENCH_TICK=$tick "$0" "$wall"; done
  exit 0
fi
echo "bench-scale: no netem in kernel $(uname -r); running in the VM (2 vCPUs under TCG)" >&2
echo "--- route replaces on this host's kernel (no netem needed), then in the VM"
"$routes" --bench
scripts/vm.sh --mem 1G --smp 2 -- "$routes" --bench
for tick in 1s 100ms; do
  scripts/vm.sh --mem 3G --smp 2 --timeout $((wall * 2 + 900)) -- \
    env ORBITNET_BENCH_TICK=$tick "$0" "$wall"
done
