# Shell helpers the scripts share; they source it from the repository root: . scripts/lib.sh

# Builds a test or bench target without running it and prints its executable:
#   cargo_executable test --locked -p orbitnet --test kernel
cargo_executable() {
  cargo "$@" --no-run --message-format=json 2>/dev/null | python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["profile"]["test"]:
        print(m["executable"])'
}

# Whether this host's kernel runs netem (in a throwaway network namespace).
host_has_netem() {
  unshare -n tc qdisc add dev lo root netem delay 1ms 2>/dev/null
}

# Says why a test tier cannot run here and stops: with ORBITNET_ALLOW_SKIP=1 (`make test`)
# as a pass, else as a failure:  skip_tier kernel "it needs root"
skip_tier() {
  local tier=$1; shift
  echo "SKIPPED $tier tier: $*" >&2
  [ "${ORBITNET_ALLOW_SKIP:-0}" = 1 ] && exit 0
  exit 1
}

# Starts a server in the background with its output in RUN/logs/NAME.log and its pid in
# RUN/pids/NAME (both directories made by the caller):  start_logged RUN NAME COMMAND...
start_logged() {
  local run=$1 name=$2
  shift 2
  "$@" >"$run/logs/$name.log" 2>&1 &
  echo $! >"$run/pids/$name"
}

# Stops the servers start_logged started in RUN, in the order named (SIGTERM, then SIGKILL
# after 5 s), and removes RUN:  stop_logged RUN NAME...
stop_logged() {
  local run=$1 name pid
  shift
  [ -d "$run/pids" ] || { rm -rf "$run"; return 0; }
  for name in "$@"; do
    [ -f "$run/pids/$name" ] || continue
    pid=$(cat "$run/pids/$name")
    kill "$pid" 2>/dev/null || continue
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  done
  rm -rf "$run"
}

# Cargo's target directory (CARGO_TARGET_DIR or the workspace's target/).
cargo_target_dir() {
  cargo metadata --format-version 1 --no-deps | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])'
}
