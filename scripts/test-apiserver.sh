#!/usr/bin/env bash
# The apiserver test tier (DESIGN.md §7, tiers 2 and 5), in two parts:
#  - the operator's tests (operator/controller/tests/apiserver.rs) against a real etcd +
#    kube-apiserver + kube-controller-manager 1.20.2 from Debian's packages (scripts/k8s.sh;
#    built once as root and cached, ~5 min the first time);
#  - the CRD's tests (operator/api/tests/crd_current.rs) against Kubernetes 1.36's CRD
#    server from Debian sid, where CEL rules run (scripts/modern-apiserver.sh; built once and
#    cached, ~7 min the first time, no root needed).
# Exits non-zero if a test fails. A part that cannot run here is skipped, saying why; the tier
# then exits 0 only if ORBITNET_ALLOW_SKIP=1.
#
#   scripts/test-apiserver.sh [TEST FILTER]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

skipped=()
bin=${ORBITNET_CACHE:-$HOME/.cache/orbitnet}/k8s-1.20.2/bin
old=1
if [ ! -x "$bin/kube-apiserver" ] || [ ! -x "$bin/kubectl" ]; then
  if ! command -v apt-get >/dev/null; then
    skipped+=("the operator's tests: kube-apiserver 1.20 is not built and there is no apt-get to build it")
    old=0
  elif [ "$(id -u)" != 0 ]; then
    skipped+=("the operator's tests: building kube-apiserver 1.20 installs Debian packages: run as root once")
    old=0
  fi
fi
[ $old = 0 ] || scripts/k8s.sh build
# kube-scheduler too (the cluster tier's build, cached alike), for the placement test.
[ $old = 0 ] || scripts/k8s.sh build-node
# The tests run kubectl as users do: the machine's, else the one built with the server.
command -v kubectl >/dev/null || export PATH=$bin:$PATH

current=1
log=$(mktemp "${TMPDIR:-/tmp}/orbitnet-modern-build.XXXXXX")
scripts/modern-apiserver.sh build 2>&1 | tee "$log" >&2 || status=${PIPESTATUS[0]}
if [ "${status:-0}" = 75 ]; then
  skipped+=("the CRD's tests on Kubernetes 1.36: $(sed -n 's/^modern-apiserver: cannot build here: //p' "$log")")
  current=0
elif [ "${status:-0}" != 0 ]; then
  rm -f "$log"
  exit 1
fi
rm -f "$log"

# Build the tests before the servers start: the build is the slow part.
cargo test --locked -q -p orbitnet-controller --test apiserver --no-run
cargo test --locked -q -p orbitnet-api --test crd_current --no-run

run=$(mktemp -d "${TMPDIR:-/tmp}/orbitnet-apiserver.XXXXXX")
run_current=$(mktemp -d "${TMPDIR:-/tmp}/orbitnet-current.XXXXXX")
trap 'scripts/k8s.sh down "$run"; scripts/modern-apiserver.sh down "$run_current"' EXIT
failed=()
if [ $old = 1 ]; then
  scripts/k8s.sh up "$run"
  # The tests bind their pods themselves, except the placement test, which needs the real
  # scheduler: it runs last, alone, with kube-scheduler started for it (a scheduler running
  # meanwhile would bind the other tests' pods before they do).
  placement='test(placement_groups_keep_cross_node_links_few_under_the_real_scheduler)'
  ORBITNET_TEST_KUBECONFIG=$run/admin.kubeconfig \
    cargo nextest run --locked -p orbitnet-controller --test apiserver --run-ignored all --no-fail-fast \
      --no-tests=warn -E "not $placement" ${1:+"$1"} || {
    echo "the operator's tests failed on Kubernetes 1.20; the control plane's logs:" >&2
    tail -n 20 "$run"/logs/*.log >&2
    failed+=(1.20)
  }
  "$bin/kube-scheduler" --kubeconfig="$run/admin.kubeconfig" --bind-address=127.0.0.1 --port=0 \
    --leader-elect=false >"$run/logs/kube-scheduler.log" 2>&1 &
  scheduler=$!
  ORBITNET_TEST_KUBECONFIG=$run/admin.kubeconfig ORBITNET_TEST_SCHEDULER=1 \
    cargo nextest run --locked -p orbitnet-controller --test apiserver --run-ignored all --no-fail-fast \
      --no-tests=warn -E "$placement" ${1:+"$1"} || {
    echo "the placement test failed on Kubernetes 1.20; the scheduler's log:" >&2
    tail -n 20 "$run/logs/kube-scheduler.log" >&2
    failed+=(1.20)
  }
  kill "$scheduler" 2>/dev/null || true
  wait "$scheduler" 2>/dev/null || true
  scripts/k8s.sh down "$run"
fi
if [ $current = 1 ]; then
  scripts/modern-apiserver.sh up "$run_current"
  ORBITNET_TEST_CURRENT_KUBECONFIG=$run_current/kubeconfig ORBITNET_TEST_CURRENT_KUBECTL=$run_current/kubectl \
    cargo nextest run --locked -p orbitnet-api --test crd_current --run-ignored all --no-fail-fast ${1:+"$1"} || {
    echo "the CRD's tests failed on Kubernetes 1.36; the server's logs:" >&2
    tail -n 20 "$run_current"/logs/*.log >&2
    failed+=(1.36)
  }
fi
[ ${#failed[@]} = 0 ] || { echo "apiserver tier failed on Kubernetes ${failed[*]}" >&2; exit 1; }
if [ ${#skipped[@]} -gt 0 ]; then
  reasons=$(printf '%s; ' "${skipped[@]}")
  skip_tier apiserver "${reasons%; }"
fi
