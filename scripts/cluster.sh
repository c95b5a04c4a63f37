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
#   scripts/cluster.sh                                   the test (make test-cluster)
#   scripts/cluster.sh --bringup scenarios/iridium.yaml  bring-up times (make bench-cluster)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

[ "$(id -u)" = 0 ] || skip_tier cluster "it needs root (packages, qemu, containerd in the VM); run: sudo make test-cluster"
mode=test scenarios=()
if [ "${1:-}" = --bringup ]; then
  mode=bringup; shift
  scenarios=("$@")
  [ ${#scenarios[@]} -gt 0 ] || { echo "usage: $0 --bringup SCENARIO.yaml..." >&2; exit 2; }
fi

cache=${ORBITNET_CACHE:-$HOME/.cache/orbitnet}
bin=$cache/k8s-1.20.2/bin
images=$cache/cluster-images
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
say() { printf 'cluster: %s\n' "$*" >&2; }

need=()
for p in containerd runc containernetworking-plugins iptables conntrack busybox-static bc; do
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
# same root filesystem: the orbitnet binary and the libraries it links, busybox for a shell,
# ping and ip in the nodes).
mkdir -p "$images"
stamp=$(sha256sum "$bin/pause" /bin/busybox "$orbitnet" scripts/oci-image.sh scripts/cluster.sh | sha256sum | cut -c1-16)
if [ "$(cat "$images/stamp" 2>/dev/null)" != "$stamp" ]; then
  say "writing the images"
  work=$(mktemp -d)
  mkdir -p "$work/pause" "$work/orb"/{bin,usr/local/bin,tmp,etc,proc,sys,dev}
  cp "$bin/pause" "$work/pause/"
  cp "$orbitnet" "$work/orb/usr/local/bin/orbitnet"
  for lib in $(ldd "$orbitnet" | grep -o '/[^ ]*'); do
    mkdir -p "$work/orb$(dirname "$lib")"; cp -L "$lib" "$work/orb$lib"
  done
  cp /bin/busybox "$work/orb/bin/"
  for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -sf busybox "$work/orb/bin/$a"; done
  printf 'root:x:0:0:root:/root:/bin/sh\nnonroot:x:65532:65532::/tmp:/bin/sh\n' >"$work/orb/etc/passwd"
  chmod 1777 "$work/orb/tmp"
  scripts/oci-image.sh "$work/pause" k8s.gcr.io/pause:3.2 "$images/pause.tar" '["/pause"]' null
  scripts/oci-image.sh "$work/orb" "docker.io/orbitnet/node:$version" "$images/node.tar" \
    '["/usr/local/bin/orbitnet","node"]' null
  scripts/oci-image.sh "$work/orb" "docker.io/orbitnet/operator:$version" "$images/operator.tar" \
    '["/usr/local/bin/orbitnet"]' null
  rm -rf "$work"
  echo "$stamp" >"$images/stamp"
fi

mem=4G
[ $mode = bringup ] && mem=8G
scripts/vm.sh --writable --mem $mem --smp 2 --timeout 2400 -- \
  env ORBITNET_CLUSTER_IMAGES="$images" ORBITNET_CLUSTER_TEST="$test_bin" ORBITNET_BIN="$(realpath "$orbitnet")" \
  bash scripts/cluster-guest.sh $mode "${scenarios[@]}"
