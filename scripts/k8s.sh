#!/usr/bin/env bash
# A real Kubernetes control plane from Debian's packages, for the apiserver test tier and for
# trying the operator by hand (no kind, no Docker, no registry needed).
#
#   scripts/k8s.sh build      build kube-apiserver, kube-controller-manager and kubectl 1.20.2
#                             from Debian's `kubernetes` source package, once (cached, ~6 min)
#   scripts/k8s.sh build-node kubelet, kube-scheduler, kube-proxy and pause, for the cluster tier
#   scripts/k8s.sh up DIR     etcd + kube-apiserver + kube-controller-manager on loopback, all
#                             state under DIR; writes DIR/admin.kubeconfig; returns when ready
#   scripts/k8s.sh down DIR   stops them and removes DIR
#   scripts/k8s.sh creds DIR  certificates, keys and tokens for a control plane that machines
#                             other than its own join (`up` takes them from ORBITNET_K8S_CREDS)
#   scripts/k8s.sh kubeconfig CREDS_DIR OUT_DIR SERVER
#                             OUT_DIR/admin.kubeconfig for the API server at SERVER
#
# Ports (loopback only): ORBITNET_K8S_PORT (default 16443) for the API server, and the next
# two ports above 23790 for etcd. Needs root only to install packages.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

K8S_VERSION=1.20.2
CACHE=${ORBITNET_CACHE:-$HOME/.cache/orbitnet}/k8s-$K8S_VERSION
BIN=$CACHE/bin
# kubectl too: the tests check what users see through it, and Debian's (kubernetes-client)
# would replace a newer one a machine may have.
COMPONENTS=(kube-apiserver kube-controller-manager kubectl)
# What a node adds (the cluster tier): kubelet, the scheduler, kube-proxy, the pause program.
NODE_COMPONENTS=(kubelet kube-scheduler kube-proxy pause)
API_PORT=${ORBITNET_K8S_PORT:-16443}
# Set for a control plane that a kubelet and pods use (the cluster tier, inside its VM): the
# API server listens on all addresses and advertises this one, and every controller runs.
NODE_IP=${ORBITNET_K8S_NODE_IP:-}
ETCD_PORT=${ORBITNET_ETCD_PORT:-23790}

say() { printf 'k8s: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

apt_install() {
  local missing=() p
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  [ "$(id -u)" = 0 ] || die "needs root to install: ${missing[*]}"
  say "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

# Debian's source packages, without touching the system's apt configuration: a private
# deb-src list derived from the system's own mirrors, with its own package lists.
fetch_source() {
  local into=$1 apt=$CACHE/apt
  mkdir -p "$apt/lists/partial" "$apt/sources"
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    # Only files with binary entries: a source list someone added already would repeat them.
    grep -Eq '^Types:(.* )?deb( |$)' "$f" 2>/dev/null || continue
    sed -E 's/^Types:.*/Types: deb-src/' "$f"
    echo
  done >"$apt/sources/debian-src.sources"
  grep -hs '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list | sed 's/^deb /deb-src /' \
    >"$apt/sources/debian-src.list" || true
  [ -s "$apt/sources/debian-src.sources" ] || rm -f "$apt/sources/debian-src.sources"
  [ -s "$apt/sources/debian-src.list" ] || rm -f "$apt/sources/debian-src.list"
  local opts=(-o "Dir::Etc::SourceList=/dev/null" -o "Dir::Etc::SourceParts=$apt/sources"
    -o "Dir::State::Lists=$apt/lists" -o "Dir::Cache::archives=$apt/archives" -o "APT::Sandbox::User=root")
  say "fetching Debian's kubernetes source package"
  apt-get "${opts[@]}" update -qq
  (cd "$into" && apt-get "${opts[@]}" source -qq kubernetes >/dev/null)
}

# Builds the named components (and `pause`, the sandbox program, from the same source) that
# are not in the cache yet, with one make.
build() {
  local what missing=()
  for what in "$@"; do [ -x "$BIN/$what" ] || missing+=("$what"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  apt_install golang-go rsync make etcd-server golang-github-modern-go-reflect2-dev dpkg-dev openssl gcc libc6-dev
  local work=$CACHE/src
  rm -rf "$work"
  mkdir -p "$work" "$BIN"
  fetch_source "$work"
  local src
  src=$(find "$work" -maxdepth 1 -mindepth 1 -type d -name 'kubernetes-*' | head -1)
  [ -n "$src" ] || die "no kubernetes-* directory after apt-get source in $work"
  # reflect2 1.0.1 (vendored) panics under Go >= 1.18 when the API server encodes a map;
  # Debian's 1.0.2 does not.
  rm -rf "$src/vendor/github.com/modern-go/reflect2"
  cp -r /usr/share/gocode/src/github.com/modern-go/reflect2 "$src/vendor/github.com/modern-go/reflect2"
  local t0=$SECONDS targets=()
  for what in "${missing[@]}"; do
    if [ "$what" = pause ]; then
      gcc -Os -Wall -Werror -static -DVERSION=v3.2-orbitnet -o "$BIN/pause" "$src/build/pause/linux/pause.c"
    else
      targets+=("cmd/$what")
    fi
  done
  if [ ${#targets[@]} -gt 0 ]; then
    say "building ${targets[*]#cmd/} $K8S_VERSION (~4-6 min on 2 cores)"
    (
      cd "$src"
      export GOPATH=$src/.go GOCACHE=$CACHE/gocache CGO_ENABLED=0 HOME=$CACHE/home
      mkdir -p .go/src/k8s.io "$HOME"
      ln -sfn ../../.. .go/src/k8s.io/kubernetes
      make WHAT="${targets[*]}" >"$CACHE/build.log" 2>&1
    ) || die "building ${targets[*]} failed; see $CACHE/build.log"
    for what in "${targets[@]#cmd/}"; do cp "$src/_output/local/bin/linux/amd64/$what" "$BIN/"; done
  fi
  say "built in $((SECONDS - t0)) s into $BIN"
  # The tree is 1.5 GB once built; the binaries are what is worth keeping.
  rm -rf "$work"
}

wait_for() {
  local what=$1 tries=$2 i
  shift 2
  for ((i = 0; i < tries; i++)); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.5
  done
  die "timed out waiting for $what"
}

pki() {
  local dir=$1
  mkdir -p "$dir"
  (
    cd "$dir"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 365 \
      -subj /CN=orbitnet-test-ca 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -keyout apiserver.key -out apiserver.csr \
      -subj /CN=kube-apiserver 2>/dev/null
    # A file, not <(...): a minimal /dev (the test VM's) has no /dev/fd.
    printf '%s\n' "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes.default.svc${NODE_IP:+,IP:$NODE_IP,IP:10.96.0.1}" \
      'extendedKeyUsage=serverAuth' >apiserver.ext
    openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 365 \
      -out apiserver.crt -extfile apiserver.ext 2>/dev/null
    openssl genrsa -out sa.key 2048 2>/dev/null
    openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
  )
}

# The certificates and keys, and a token each for the admin and the controller manager.
creds() {
  local dir=$1
  pki "$dir"
  printf '%s,admin,admin,"system:masters"\n%s,system:kube-controller-manager,kcm\n' \
    "$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')" "$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')" \
    >"$dir/tokens.csv"
}

token_of() {
  awk -F, -v user="$1" '$3 == user {print $1}' "$2/tokens.csv"
}

# DIR/USER.kubeconfig with USER's token, for the API server at SERVER (default loopback),
# trusting the CA in DIR/pki (or CA_FILE).
kubeconfig() {
  local run=$1 user=$2 token=$3 server=${4:-127.0.0.1} ca=${5:-$1/pki/ca.crt}
  cat >"$run/$user.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: orbitnet-test
  cluster:
    server: https://$server:$API_PORT
    certificate-authority-data: $(base64 -w0 <"$ca")
users:
- name: $user
  user:
    token: $token
contexts:
- name: orbitnet-test
  context: {cluster: orbitnet-test, user: $user}
current-context: orbitnet-test
EOF
}

up() {
  local run=${1:?usage: k8s.sh up DIR}
  build "${COMPONENTS[@]}"
  [ -e "$run/pids" ] && die "$run holds a control plane already; run: scripts/k8s.sh down $run"
  command -v etcd >/dev/null || apt_install etcd-server
  mkdir -p "$run/logs" "$run/pids"
  run=$(cd "$run" && pwd)
  if [ -n "${ORBITNET_K8S_CREDS:-}" ]; then
    mkdir -p "$run/pki" && cp "$ORBITNET_K8S_CREDS"/* "$run/pki/"
  else
    creds "$run/pki"
  fi
  kubeconfig "$run" admin "$(token_of admin "$run/pki")"
  kubeconfig "$run" kcm "$(token_of kcm "$run/pki")"
  local t0=$SECONDS bind=127.0.0.1 controllers=garbagecollector,namespace,serviceaccount,serviceaccount-token
  if [ -n "$NODE_IP" ]; then bind=0.0.0.0 controllers='*'; fi
  start_logged "$run" etcd etcd --name orbitnet-test --data-dir "$run/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$((ETCD_PORT + 1))" \
    --initial-advertise-peer-urls "http://127.0.0.1:$((ETCD_PORT + 1))" \
    --initial-cluster "orbitnet-test=http://127.0.0.1:$((ETCD_PORT + 1))" --logger=zap --log-level=warn
  start_logged "$run" kube-apiserver "$BIN/kube-apiserver" --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
    --bind-address="$bind" --advertise-address="${NODE_IP:-127.0.0.1}" \
    --secure-port="$API_PORT" --insecure-port=0 --allow-privileged=true \
    --kubelet-preferred-address-types=InternalIP \
    --tls-cert-file="$run/pki/apiserver.crt" --tls-private-key-file="$run/pki/apiserver.key" \
    --client-ca-file="$run/pki/ca.crt" --token-auth-file="$run/pki/tokens.csv" \
    --authorization-mode=RBAC --service-cluster-ip-range=10.96.0.0/24 \
    --service-account-key-file="$run/pki/sa.pub" --service-account-signing-key-file="$run/pki/sa.key" \
    --service-account-issuer=https://kubernetes.default.svc
  # kube-controller-manager exits ("forbidden") if it starts before RBAC is bootstrapped.
  wait_for "the API server to be ready" 240 "$KUBECTL" --kubeconfig "$run/admin.kubeconfig" get --raw /readyz
  # Garbage collection (ownerReferences), namespace deletion and the default ServiceAccount
  # are what the tests rely on; no scheduler, no kubelet: pods stay Pending. Each controller
  # runs as its own ServiceAccount, as in a real cluster: the garbage collector's has the
  # rights to delete.
  start_logged "$run" kube-controller-manager "$BIN/kube-controller-manager" \
    --kubeconfig="$run/kcm.kubeconfig" --bind-address=127.0.0.1 --port=0 --secure-port=0 \
    --leader-elect=false --use-service-account-credentials=true \
    --controllers="$controllers" \
    --service-account-private-key-file="$run/pki/sa.key" --root-ca-file="$run/pki/ca.crt"
  wait_for "the default ServiceAccount" 120 "$KUBECTL" --kubeconfig "$run/admin.kubeconfig" get sa default
  say "control plane up in $((SECONDS - t0)) s: export KUBECONFIG=$run/admin.kubeconfig"
}

down() {
  stop_logged "${1:?usage: k8s.sh down DIR}" kube-controller-manager kube-apiserver etcd
}

# The machine's kubectl if it has one, else ours.
KUBECTL=$(command -v kubectl || echo "$BIN/kubectl")

case ${1:-} in
  build) build "${COMPONENTS[@]}" ;;
  build-node) build "${NODE_COMPONENTS[@]}" ;;
  up) up "${2:-}" ;;
  creds) creds "${2:?usage: k8s.sh creds DIR}" ;;
  kubeconfig)
    creds_dir=${2:?usage: k8s.sh kubeconfig CREDS_DIR OUT_DIR SERVER}
    kubeconfig "${3:?}" admin "$(token_of admin "$creds_dir")" "${4:?}" "$creds_dir/ca.crt" ;;
  down) down "${2:-}" ;;
  *) die "usage: $0 build | build-node | up DIR | down DIR | creds DIR | kubeconfig CREDS_DIR OUT_DIR SERVER" ;;
esac
