#!/usr/bin/env bash
# netem changes per second: orbitnet's netlink path against tc, side by side in one run
# (DESIGN.md section 7). Runs on this host if its kernel has netem, else in the VM.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "bench-dataplane needs root" >&2; exit 2; }
. scripts/lib.sh
bin=$(cargo_executable bench --locked -q -p orbitnet-benches --bench netem)
[ -n "$bin" ] || { echo "cannot build the netem benchmark" >&2; exit 1; }
if host_has_netem; then
  exec "$bin" --bench
fi
echo "bench-dataplane: no netem in kernel $(uname -r); running in the VM (TCG: both paths are emulated alike)" >&2
scripts/vm.sh --mem 768M -- "$bin" --bench
