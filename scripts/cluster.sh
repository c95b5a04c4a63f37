#!/usr/bin/env bash
# The cluster tier (issue #6): a real single-node Kubernetes 1.20.2 cluster (etcd, apiserver,
# controller-manager, scheduler, kubelet, kube-proxy, containerd, runc, bridge CNI) from
# Debian's packages, inside the kernel-tier VM (scripts/vm.sh --writable: Debian's generic
# kernel, which has netem), with orbitnet's images written as OCI layouts and imported
# without a registry; orbitnet deployed from manifests/. Then either the cluster test
# (operator/agent/tests/cluster.rs), or, with --bringup, each scenario applied and timed to
# Ready and deleted again. Exits non-zero if a test fails; when the tier cannot run here it
# says why, and exits 0 only if ORBITNET_ALLOW_SKIP=1.
#
#   scripts/cluster.sh                                   the tests (make test-cluster)
#   scripts/cluster.sh --only routing                    the tests whose name has "routing"
#   scripts/cluster.sh --bringup scenarios/iridium.yaml  bring-up times (make bench-cluster)
#   scripts/cluster.sh --nodes 2 [...]                   on two VMs, each a Kubernetes node,
#                                                        joined by a wire with 5 ms each way
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

[ "$(id -u)" = 0 ] || skip_tier cluster "it needs root (packages, qemu, containerd in the VM); run: sudo make test-cluster"
mode=test scenarios=() only= nodes=1
while [ $# -gt 0 ]; do
  case "$1" in
    --only) only=${2:?--only needs a part of a test name}; shift 2 ;;
    --nodes) nodes=${2:-}; shift 2
      [ "$nodes" = 1 ] || [ "$nodes" = 2 ] || { echo "$0: --nodes is 1 or 2" >&2; exit 2; } ;;
    --bringup) mode=bringup; shift
      scenarios=("$@"); shift $#
      [ ${#scenarios[@]} -gt 0 ] || { echo "usage: $0 [--nodes N] --bringup SCENARIO.yaml..." >&2; exit 2; } ;;
    *) echo "usage: $0 [--nodes 1|2] [--only NAME | --bringup SCENARIO.yaml...]" >&2; exit 2 ;;
  esac
done

cache=${ORBITNET_CACHE:-$HOME/.cache/orbitnet}
bin=$cache/k8s-1.20.2/bin
images=$cache/cluster-images
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
say() { printf 'cluster: %s\n' "$*" >&2; }

need=()
for p in containerd runc containernetworking-plugins iptables conntrack busybox-static bc frr bird2; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  say "installing ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
scripts/k8s.sh build
scripts/k8s.sh build-node

# orbitnet as users deploy it (release), and the test.
cargo build --release --locked -q -p orbitnet
orbitnet=${CARGO_TARGET_DIR:-target}/release/orbitnet
test_bin=
if [ $mode = test ]; then
  test_bin=$(cargo_executable test --locked -q -p orbitnet-agent --test cluster)
  [ -n "$test_bin" ] || { echo "cannot build orbitnet-agent --test cluster" >&2; exit 1; }
fi

# Images, rebuilt when their inputs change: pause (the sandbox), and orbitnet's two (the
# same root filesystem: the orbitnet binary, busybox for a shell, ping and ip in the nodes,
# and what node-image/Dockerfile installs for the routing containers: Debian's FRR and
# BIRD 2 and bash; each with the libraries it links).
mkdir -p "$images"
stamp=$( (sha256sum "$bin/pause" /bin/busybox /bin/bash "$orbitnet" scripts/oci-image.sh scripts/cluster.sh
          dpkg-query -W frr bird2) | sha256sum | cut -c1-16)
if [ "$(cat "$images/stamp" 2>/dev/null)" != "$stamp" ]; then
  say "writing the images"
  work=$(mktemp -d)
  mkdir -p "$work/pause" "$work/orb"/{bin,usr/local/bin,tmp,var/tmp,run,etc,proc,sys,dev}
  cp "$bin/pause" "$work/pause/"
  # Its debug sections compressed (line tables kept for backtraces): 131 MB becomes 50, which
  # each VM hashes and unpacks on import.
  objcopy --compress-debug-sections=zlib "$orbitnet" "$work/orb/usr/local/bin/orbitnet"
  cp /bin/busybox "$work/orb/bin/"
  for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -sf busybox "$work/orb/bin/$a"; done
  files=$(dpkg -L frr bird2 | grep -v '^/usr/share/\(doc\|man\|lintian\)/' | while read -r f; do if [ -f "$f" ]; then echo "$f"; fi; done)
  for f in $files /bin/bash; do mkdir -p "$work/orb$(dirname "$f")"; cp -a "$f" "$work/orb$f"; done
  for f in "$orbitnet" $files /bin/bash; do
    [ "$(head -c 4 "$f" | tail -c 3)" = ELF ] || continue
    for lib in $(ldd "$f" | grep -o '/[^ ]*'); do
      [ -e "$work/orb$lib" ] || { mkdir -p "$work/orb$(dirname "$lib")"; cp -L "$lib" "$work/orb$lib"; }
    done
  done
  { printf 'root:x:0:0:root:/root:/bin/sh\nnonroot:x:65532:65532::/tmp:/bin/sh\n'; grep -E '^(frr|bird):' /etc/passwd; } >"$work/orb/etc/passwd"
  { echo 'root:x:0:'; grep -E '^(frr|frrvty|bird):' /etc/group; } >"$work/orb/etc/group"
  chmod 1777 "$work/orb/tmp" "$work/orb/var/tmp"
  ln -s ../run "$work/orb/var/run"
  # As node-image/Dockerfile: vtysh, run by root in the routing container, without PAM.
  printf 'service integrated-vtysh-config\nusername root nopassword\n' >"$work/orb/etc/frr/vtysh.conf"
  scripts/oci-image.sh "$work/pause" k8s.gcr.io/pause:3.2 "$images/pause.tar" '["/pause"]' null
  # Both of orbitnet's images in one tar, their one layer once.
  rm -f "$images/node.tar" "$images/operator.tar"
  scripts/oci-image.sh "$work/orb" "docker.io/orbitnet/node:$version" "$images/orbitnet.tar" \
    '["/usr/local/bin/orbitnet","node"]' null "docker.io/orbitnet/operator:$version" '["/usr/local/bin/orbitnet"]' null
  rm -rf "$work"
  echo "$stamp" >"$images/stamp"
fi

mem=4G
[ $mode = bringup ] && mem=8G
# The VMs stand for machines of their own: their qemu runs ahead of whatever else loads the
# host (nice -10; CI's neighbours, or stress-ng in a loaded run), so the host's load shows up
# neither as packet delay in the guests' timers nor as starved routing daemons. They still
# share the host's cores with each other. (The kernel tier gets the same from virtual time.)
vm=(nice -n -10 scripts/vm.sh)
guest_env=(ORBITNET_CLUSTER_IMAGES="$images" ORBITNET_CLUSTER_ONLY="$only" ORBITNET_CLUSTER_TEST="$test_bin"
           ORBITNET_BIN="$(realpath "$orbitnet")" ORBITNET_CLUSTER_NODES=$nodes)
first_link=()
worker=
if [ "$nodes" = 2 ]; then
  # The second machine: its own VM, with the credentials to join (made here, where both
  # VMs can read them), on a wire to the first (UDP between two loopback ports).
  run=$(mktemp -d "${TMPDIR:-/tmp}/orbitnet-cluster.XXXXXX")
  # The whole session setsid gave it: vm.sh's `timeout` puts qemu in a process group of its own.
  trap '[ -z "$worker" ] || pkill -TERM -s "$worker" || true; rm -rf "$run"' EXIT
  ORBITNET_K8S_NODE_IP=10.99.0.1 scripts/k8s.sh creds "$run/creds"
  guest_env+=(ORBITNET_K8S_CREDS="$run/creds")
  port=${ORBITNET_CLUSTER_PORT:-5101}
  first_link=(--link "$port:$((port + 1)):52:54:00:00:99:01")
  setsid "${vm[@]}" --writable --mem 2G --smp 1 --timeout 3000 --link "$((port + 1)):$port:52:54:00:00:99:02" -- \
    env "${guest_env[@]}" bash scripts/cluster-guest.sh worker >"$run/worker.log" 2>&1 &
  worker=$!
  say "the second machine is starting (its console: $run/worker.log)"
fi
status=0
"${vm[@]}" --writable --mem $mem --smp 2 --timeout 2400 "${first_link[@]}" -- \
  env "${guest_env[@]}" bash scripts/cluster-guest.sh $mode "${scenarios[@]}" || status=$?
if [ -n "$worker" ]; then
  say "the second machine's console, last lines:"
  tail -n 15 "$run/worker.log" | sed 's/^/cluster:   | /' >&2
fi
exit $status
