#!/usr/bin/env bash
# Runs one scenario in several routing modes on the same timeline and compares their
# convergence event by event (`orbitnet report a.jsonl b.jsonl ...`): central shortest
# paths, OSPF with FRR, OSPF with BIRD, IS-IS with BFD (FRR). In real time (the daemons'
# timers are real), on this host if its kernel has sch_netem, else in the VM of
# scripts/vm.sh. Telemetry, the comparison and its chart go to OUT_DIR.
#
#   scripts/compare-routing.sh [SCENARIO] [DURATION] [OUT_DIR] [MODE ...]
#   (defaults: scenarios/backbone.yaml 3m30s compare-routing central ospf-frr ospf-bird isis-bfd)
#
# RUN_ARGS adds options to every `orbitnet run`, e.g. RUN_ARGS='--convergence-every 1s': a
# read of every table costs about 0.5 s of the VM's CPU with FRR's routes on backbone, so
# the default 50 ms leaves the daemons too little.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

scenario=${1:-scenarios/backbone.yaml}
duration=${2:-3m30s}
out=$(realpath -m "${3:-compare-routing}")
[ "$(id -u)" = 0 ] || { echo "compare-routing: orbitnet run needs root; run: sudo $0" >&2; exit 1; }
command -v vtysh >/dev/null && command -v bird >/dev/null || {
  echo "compare-routing: installing frr and bird2 from Debian" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends frr bird2 >/dev/null
}
cargo build --release --locked -q -p orbitnet
bin=$(cargo_target_dir)/release/orbitnet
mkdir -p "$out"
work=$(mktemp -d "${TMPDIR:-/tmp}/orbitnet-compare.XXXXXX")
trap 'rm -rf "$work"' EXIT

# mode name -> the lines that replace `routing: ...` in the scenario
declare -A modes=(
  [central]="routing: shortestPath"
  [ospf-frr]="routing: ospf"
  [ospf-bird]="routing: ospf
  routingProtocol: {daemon: bird}"
  [isis-bfd]="routing: isis
  routingProtocol: {bfd: {enabled: true}}"
)
order=(central ospf-frr ospf-bird isis-bfd)
[ $# -gt 3 ] && order=("${@:4}")
for m in "${order[@]}"; do
  awk -v repl="${modes[$m]}" '/^  routing:/ { print "  " repl; next } { print }' "$scenario" > "$work/$m.yaml"
  grep -q "^  routing:" "$scenario" || printf '  %s\n' "${modes[$m]}" >> "$work/$m.yaml"
done

# One guest script runs every mode in turn and prints each telemetry file between markers.
guest="$work/guest.sh"
{
  echo 'set -u; cd "${TMPDIR:-/tmp}"'
  for m in "${order[@]}"; do
    printf 'echo "compare-routing: %s" >&2\n' "$m"
    printf '%q run %q --duration %q --telemetry %q --quiet --workdir %q %s >&2 || true\n' \
      "$bin" "$work/$m.yaml" "$duration" "$m.jsonl" "work-$m" "${RUN_ARGS:-}"
    printf 'echo "=== %s"; cat %q || echo "compare-routing: %s wrote no telemetry" >&2\n' "$m" "$m.jsonl" "$m"
  done
} > "$guest"

if host_has_netem; then
  bash "$guest" > "$work/all.txt"
else
  scripts/vm.sh --mem 4G --smp 2 --timeout 3600 -- bash "$guest" > "$work/all.txt" ||
    echo "compare-routing: the VM ended with status $?" >&2
fi
tr -d '\r' < "$work/all.txt" > "$out/console.txt"
# The guest's console ends lines with CR; only JSON lines are telemetry.
tr -d '\r' < "$work/all.txt" |
  awk -v out="$out" '/^=== / { f = out "/" $2 ".jsonl"; printf "" > f; next } f && /^[{]/ { print >> f }'
grep -v '^[{]' "$out/console.txt" | grep -E 'compare-routing|error|refus|cannot' >&2 || true
files=()
for m in "${order[@]}"; do files+=("$out/$m.jsonl"); done
"$bin" report "${files[@]}" --out-dir "$out" | tee "$out/comparison.txt"
