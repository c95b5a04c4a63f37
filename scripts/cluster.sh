#!/usr/bin/env bash
# A real single-node Kubernetes 1.20.2 cluster (etcd, apiserver, controller-manager,
# scheduler, kubelet, containerd, runc, bridge CNI) from Debian's packages, inside the
# kernel-tier VM (scripts/vm.sh --writable: Debian's generic kernel, which has netem), with
# images imported from OCI layouts, no registry. The cluster tier of issue #6 grows from this;
# today it brings the node up, runs a pod in it, and prints how long each step took.
#
#   scripts/cluster.sh
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "cluster.sh: run as root (packages, qemu)" >&2; exit 2; }

cache=${ORBITNET_CACHE:-$HOME/.cache/orbitnet}
bin=$cache/k8s-1.20.2/bin
images=$cache/cluster-images
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

# Images, rebuilt when their inputs change.
mkdir -p "$images"
stamp=$(sha256sum "$bin/pause" /bin/busybox scripts/oci-image.sh | sha256sum | cut -c1-16)
if [ "$(cat "$images/stamp" 2>/dev/null)" != "$stamp" ]; then
  work=$(mktemp -d)
  mkdir -p "$work/pause" "$work/bb"/{bin,tmp,etc,proc,sys,dev}
  cp "$bin/pause" "$work/pause/"
  cp /bin/busybox "$work/bb/bin/"
  for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -sf busybox "$work/bb/bin/$a"; done
  echo 'root:x:0:0:root:/root:/bin/sh' >"$work/bb/etc/passwd"
  chmod 1777 "$work/bb/tmp"
  scripts/oci-image.sh "$work/pause" k8s.gcr.io/pause:3.2 "$images/pause.tar" '["/pause"]' null
  scripts/oci-image.sh "$work/bb" docker.io/local/busybox:1 "$images/busybox.tar" null '["sh"]'
  rm -rf "$work"
  echo "$stamp" >"$images/stamp"
fi

scripts/vm.sh --writable --mem 4G --smp 2 --timeout 900 -- \
  env ORBITNET_CLUSTER_IMAGES="$images" bash scripts/cluster-guest.sh
