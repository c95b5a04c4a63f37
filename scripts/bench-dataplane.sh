#!/usr/bin/env bash
# netem changes per second: orbitnet's netlink path against tc, side by side in one run
# (DESIGN.md section 7). Runs on this host if its kernel has netem, else in the VM.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "bench-dataplane needs root" >&2; exit 2; }
bin=$(cargo bench --locked -q -p orbitnet-benches --bench netem --no-run --message-format=json 2>/dev/null \
      | python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "netem":
        print(m["executable"])')
[ -n "$bin" ] || { echo "cannot build the netem benchmark" >&2; exit 1; }
if unshare -n tc qdisc add dev lo root netem delay 1ms 2>/dev/null; then
  exec "$bin" --bench
fi
echo "bench-dataplane: no netem in kernel $(uname -r); running in the VM (TCG: both paths are emulated alike)" >&2
scripts/vm.sh --mem 768M -- "$bin" --bench
