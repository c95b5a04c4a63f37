#!/usr/bin/env bash
# What routing daemons cost, and how large a constellation runs in OSPF mode (issue #13):
# polar Walker constellations of growing size (4 ground stations) run for SECONDS each with
# `routing: ospf`, FRR or BIRD. For each: when every ground pair was first forwarded over
# shortest paths (the start's convergence), each daemon's memory (PSS and RSS, summed over
# nodes, sampled two thirds into the run) and CPU time over the run, and what reading the
# forwarding tables cost. On this host if its kernel has netem, else in the VM (4 GiB,
# 2 vCPUs, TCG: the emulated CPU is several times slower than this host's).
#
#   scripts/bench-routing.sh [SECONDS, default 120] [DAEMON:PLANESxSATS ...]
#   (default: frr:12x12 frr:16x16 frr:20x20 bird:20x20)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
secs=${1:-120}
shift $(( $# > 0 ? 1 : 0 ))
runs=("$@")
[ ${#runs[@]} -gt 0 ] || runs=(frr:12x12 frr:16x16 frr:20x20 bird:20x20)

if [ -n "${ORBITNET_BENCH_ROUTING:-}" ]; then
  bin=$ORBITNET_BENCH_ROUTING
  ulimit -n "$(ulimit -Hn)"
  work=$(mktemp -d "${TMPDIR:-/tmp}/orbitnet-routing.XXXXXX")
  # A constellation's routing daemons (the launchers' children), summed by daemon:
  #   daemons.py mem NAME   memory (PSS, RSS)     daemons.py cpu NAME SECONDS   CPU time so far
  cat > "$work/daemons.py" <<'PY'
import collections, os, sys
mode, state = sys.argv[1], ("/run/orbitnet/%s.routing" % sys.argv[2]).encode()
tck = os.sysconf("SC_CLK_TCK")
total = collections.defaultdict(lambda: [0, 0.0, 0.0])
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        cmd = open("/proc/%s/cmdline" % pid, "rb").read().split(b"\0")
        name = os.path.basename(cmd[0].decode())
        if not any(state in c for c in cmd) or name in ("unshare", "bash"):
            continue
        if mode == "mem":
            roll = dict(l.split(":", 1) for l in open("/proc/%s/smaps_rollup" % pid).read().splitlines()[1:])
            a, b = int(roll["Pss"].split()[0]) / 1024, int(roll["Rss"].split()[0]) / 1024
        else:
            f = open("/proc/%s/stat" % pid).read().rsplit(")", 1)[1].split()
            a, b = (int(f[11]) + int(f[12])) / tck, 0.0
    except (OSError, KeyError, IndexError, ValueError):
        continue
    t = total[name]
    t[0] += 1; t[1] += a; t[2] += b
for name, (n, a, b) in sorted(total.items()):
    if mode == "mem":
        print("  %-6s x%d: PSS %.1f MiB per node (%.0f MiB in all), RSS %.1f MiB per node" % (name, n, a / n, a, b / n))
    else:
        secs = int(sys.argv[3])
        print("  %-6s x%d: %.1f CPU s in all over ~%d s (%.1f %% of one CPU), %.3f CPU s per node" % (name, n, a, secs, a / secs * 100, a / n))
PY
  for r in "${runs[@]}"; do
    daemon=${r%%:*}; size=${r#*:}; planes=${size%x*}; sats=${size#*x}
    name="bench-$daemon-$planes-$sats"
    cat > "$work/$name.yaml" <<YAML
apiVersion: orbitnet.dev/v1alpha1
kind: Constellation
metadata: {name: $name}
spec:
  epoch: "2026-11-24T00:00:00Z"
  tick: 1s
  shells:
  - {name: s, walker: {type: star, planes: $planes, satsPerPlane: $sats, phasing: 1}, altitudeKm: 780, inclinationDeg: 86.4}
  groundStations:
  - {name: thule, latDeg: 76.5, lonDeg: -68.7}
  - {name: vandenberg, latDeg: 34.7, lonDeg: -120.6}
  - {name: diego-garcia, latDeg: -7.3, lonDeg: 72.4}
  - {name: guam, latDeg: 13.4, lonDeg: 144.8}
  groundLinks: {minElevationDeg: 10, policy: highestElevation, antennas: 1, hysteresisDeg: 2}
  routing: ospf
  routingProtocol: {daemon: $daemon}
YAML
    nodes=$((planes * sats + 4))
    echo "=== $daemon, $planes x $sats satellites + 4 stations = $nodes nodes, ${secs} s, kernel $(uname -r), $(nproc) CPUs"
    "$bin" run "$work/$name.yaml" --quiet --duration "${secs}s" --workdir "$work/w" \
      --telemetry "$work/$name.jsonl" >/dev/null 2>"$work/err" &
    run=$!
    sleep $((secs * 2 / 3))
    python3 "$work/daemons.py" mem "$name"
    # CPU time of the daemons so far, sampled near the end.
    sleep $((secs / 3 - 5))
    python3 "$work/daemons.py" cpu "$name" "$((secs - 5))"
    wait $run || { echo "  the run failed:"; tail -5 "$work/err"; }
    python3 - "$work/$name.jsonl" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r.get("type") == "convergence" and r.get("kind") == "start":
        print("  start: %s, every pair forwarded after %s s, shortest after %s s, %d snapshots" % (r["outcome"], r["forwardedS"], r["shortestS"], r["snapshots"]))
    if r.get("type") == "convergenceCost":
        print("  reading the forwarding tables: %d reads, %.1f ms each on average" % (r["reads"], r["ms"] / max(r["reads"], 1)))
PY
    rm -rf "$work/w"
  done
  exit 0
fi

[ "$(id -u)" = 0 ] || { echo "bench-routing: needs root; run: sudo $0" >&2; exit 1; }
cargo build --release --locked -q -p orbitnet
bin=$(cargo_target_dir)/release/orbitnet
if host_has_netem; then
  ORBITNET_BENCH_ROUTING=$bin exec "$0" "$secs" "${runs[@]}"
fi
exec scripts/vm.sh --mem 4G --smp 2 --timeout 3600 -- env ORBITNET_BENCH_ROUTING="$bin" bash "$PWD/$0" "$secs" "${runs[@]}"
