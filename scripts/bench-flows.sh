#!/usr/bin/env bash
# What measuring the mission's traffic costs the emulation (issue #12): iridium.yaml run
# twice side by side in one kernel, without flows and with 100 flows (200-byte payloads,
# 1,000 datagrams/s each by default) between its stations and satellites. Prints for each
# run the apply time per tick (p50, p99) from its telemetry, and for the run with flows
# what they measured: datagrams sent against planned, delivery, measured - model one-way
# delay (the timestamp error) and the ticks flagged beyond the per-traversal cost. On this
# host if its kernel has netem, else in the VM (2 vCPUs, TCG: every datagram costs the
# emulated CPU).
#
#   scripts/bench-flows.sh [SECONDS PER RUN, default 60] [DATAGRAMS/S PER FLOW, default 1000]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
secs=${1:-60}
rate=${2:-1000}
bin="${CARGO_TARGET_DIR:-target}/release/orbitnet"

# Inside (the VM, or this host with netem): both runs.
if [ -n "${ORBITNET_BENCH_FLOWS:-}" ]; then
  ulimit -n "$(ulimit -Hn)"
  work=$(mktemp -d "${TMPDIR:-/tmp}/orbitnet-flows.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  sed 's/^metadata: {name: iridium}/metadata: {name: bench-plain}/' scenarios/iridium.yaml > "$work/plain.yaml"
  {
    sed 's/^metadata: {name: iridium}/metadata: {name: bench-flows}/' scenarios/iridium.yaml
    echo "  traffic:"
    stations=(tempe svalbard fairbanks punta-arenas)
    for i in $(seq 0 99); do
      from=${stations[$((i % 4))]}
      if [ $((i % 2)) = 0 ]; then to=${stations[$(((i / 4 + i + 1) % 4))]}; else to="iridium-$((i % 6))-$((i % 11))"; fi
      [ "$from" = "$to" ] && to=${stations[$(((i + 2) % 4))]}
      echo "  - {name: f$i, from: $from, to: $to, packetsPerSecond: $rate, sizeBytes: 200}"
    done
  } > "$work/flows.yaml"
  for run in plain flows; do
    echo "=== iridium.yaml, $run (100 flows x $rate datagrams/s in the second), ${secs} s at real time, kernel $(uname -r)"
    "$bin" run "$work/$run.yaml" --quiet --duration "${secs}s" --workdir "$work/w-$run" \
      --telemetry "$work/$run.jsonl" >/dev/null
    "$bin" report "$work/$run.jsonl" --out-dir "$work" | grep -E '^(apply per tick|a shaped|stopped)'
    if [ $run = flows ]; then
      "$bin" report "$work/$run.jsonl" --out-dir "$work" | grep -E '^flow ' |
        PLANNED=$((100 * secs * rate)) python3 -c "$(cat <<'PY'
import os, re, statistics, sys
planned = int(os.environ["PLANNED"])
got = sent = flagged = 0
med, p99 = [], []
for line in sys.stdin:
    if m := re.search(r": (\d+) of (\d+) datagrams delivered", line):
        got += int(m[1]); sent += int(m[2])
    if m := re.search(r"median ([-+0-9.]+) ms, p99 ([-+0-9.]+) ms; (\d+) ticks flagged", line):
        med.append(float(m[1])); p99.append(float(m[2])); flagged += int(m[3])
print(f"{len(med)} flows: sent {sent} of {planned} planned ({100 * sent / planned:.1f} %), "
      f"{got} delivered ({100 * got / max(sent, 1):.2f} %); measured - model per flow: "
      f"median of medians {statistics.median(med):+.3f} ms (min {min(med):+.3f}, max {max(med):+.3f}), "
      f"median of p99s {statistics.median(p99):+.3f} ms (max {max(p99):+.3f}); {flagged} ticks flagged")
PY
)"
    fi
  done
  exit 0
fi

[ "$(id -u)" = 0 ] || { echo "bench-flows needs root (orbitnet run)" >&2; exit 2; }
cargo build --release --locked -q -p orbitnet
if host_has_netem; then
  ORBITNET_BENCH_FLOWS=1 exec "$0" "$secs" "$rate"
fi
echo "bench-flows: no netem in kernel $(uname -r); running in the VM" >&2
scripts/vm.sh --mem 2G --smp 2 --timeout 1800 -- env ORBITNET_BENCH_FLOWS=1 CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-}" bash "$0" "$secs" "$rate"
