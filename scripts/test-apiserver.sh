#!/usr/bin/env bash
# The apiserver test tier (DESIGN.md §6, tier 2): a real etcd + kube-apiserver +
# kube-controller-manager 1.20.2 from Debian's packages (scripts/k8s.sh; built once and
# cached, ~5 min the first time), and the operator's tests against it. Exits non-zero if a
# test fails. When the control plane cannot be had it says why, and exits 0 only if
# ORBITNET_ALLOW_SKIP=1.
#
#   scripts/test-apiserver.sh [TEST FILTER]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

bin=${ORBITNET_CACHE:-$HOME/.cache/orbitnet}/k8s-1.20.2/bin
if [ ! -x "$bin/kube-apiserver" ] || [ ! -x "$bin/kubectl" ]; then
  command -v apt-get >/dev/null || skip_tier apiserver "kube-apiserver is not built and there is no apt-get to build it"
  [ "$(id -u)" = 0 ] || skip_tier apiserver "building kube-apiserver installs Debian packages: run as root once"
fi
scripts/k8s.sh build
# The tests run kubectl as users do: the machine's, else the one built with the server.
command -v kubectl >/dev/null || export PATH=$bin:$PATH

# Build the tests before the control plane starts: the build is the slow part.
cargo test --locked -q -p orbitnet-controller --test apiserver --no-run

run=$(mktemp -d "${TMPDIR:-/tmp}/orbitnet-apiserver.XXXXXX")
trap 'scripts/k8s.sh down "$run"' EXIT
scripts/k8s.sh up "$run"
export ORBITNET_TEST_KUBECONFIG=$run/admin.kubeconfig
cargo nextest run --locked -p orbitnet-controller --test apiserver --no-fail-fast ${1:+"$1"} || {
  echo "apiserver tier failed; the control plane's logs:" >&2
  tail -n 20 "$run"/logs/*.log >&2
  exit 1
}
