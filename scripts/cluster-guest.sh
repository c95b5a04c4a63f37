#!/bin/bash
# Runs inside the VM of scripts/cluster.sh (a writable overlay root; nothing reaches the host):
# brings a cluster up, deploys orbitnet from manifests/ with the imported images, then runs
# the cluster test (`test`) or times each scenario to Ready (`bringup FILE...`). With
# ORBITNET_CLUSTER_NODES=2 this VM is the first of two machines on a wire (eth0, 10.99.0.0/24,
# 5 ms of netem each way): the control plane and a kubelet; the second VM runs `worker`: a
# kubelet and kube-proxy that join it, until the first machine stops it (or the host does).
# Times are from the start of this script.
#
#   cluster-guest.sh test | bringup SCENARIO... | worker
set -euo pipefail
# No silent end: set -e and set -u stop the script without a word of their own, and the
# failing command's own stderr may have gone to /dev/null. The console, kept aside, hears why.
exec {console}>&2
trap 'rc=$?; case $rc:$BASH_COMMAND in 0:* | *:exit\ *) ;; *) echo "cluster-guest.sh: exit $rc: $BASH_COMMAND" >&$console ;; esac' EXIT
: "${ORBITNET_CLUSTER_IMAGES:?set by scripts/cluster.sh}"
mode=$1; shift
export ORBITNET_CACHE=${ORBITNET_CLUSTER_IMAGES%/*}
BIN=$ORBITNET_CACHE/k8s-1.20.2/bin
R=/var/lib/orbitnet-cluster; mkdir -p $R/logs
NODES=${ORBITNET_CLUSTER_NODES:-1}
# Each machine: its node name, address and pod range. The underlay's one-way delay.
CONTROL_IP=10.99.0.1 UNDERLAY_DELAY=5ms
if [ "$mode" = worker ]; then
  NODE=orbitnet-node-2 NODE_IP=10.99.0.2 POD_CIDR=10.244.1.0/24 PEER_IP=10.99.0.1 PEER_PODS=10.244.0.0/24
else
  NODE=orbitnet-node NODE_IP=$CONTROL_IP POD_CIDR=10.244.0.0/24 PEER_IP=10.99.0.2 PEER_PODS=10.244.1.0/24
fi
T0=$(date +%s.%N); log() { echo "[$NODE +$(echo "$(date +%s.%N) - $T0" | bc | xargs printf %.1f)s] $*"; }
for m in overlay bridge br_netfilter veth nf_conntrack iptable_filter iptable_nat ip_tables x_tables \
         xt_conntrack xt_MASQUERADE xt_addrtype xt_comment xt_mark xt_nat xt_tcpudp nf_nat ipt_REJECT xt_statistic \
         nft_compat nf_tables nft_chain_nat; do
  modprobe -d "$ORBITNET_VM_KERNEL" $m 2>/dev/null || echo "no module $m"
done
ip link set lo up
if [ "$NODES" = 2 ]; then
  ip addr add $NODE_IP/24 dev eth0; ip link set eth0 up
  tc qdisc add dev eth0 root netem delay $UNDERLAY_DELAY
  # The other machine's pods, and the Service range (kube-proxy DNATs it; any route will do
  # for the first lookup, one with an address the other machine can answer).
  ip route add $PEER_PODS via $PEER_IP
  ip route add 10.96.0.0/24 dev eth0
else
  # The VM has no network but loopback: a route for the Service range, so host-network pods
  # (the link agent) reach the API server's Service address (kube-proxy DNATs it to NODE_IP).
  ip addr add $NODE_IP/32 dev lo
  ip route add 10.96.0.0/24 dev lo
fi
sysctl -qw net.ipv4.ip_forward=1 net.bridge.bridge-nf-call-iptables=1
mount -t cgroup2 none /sys/fs/cgroup 2>/dev/null || true
log "modules, cgroup2, network"
if [ "$mode" = worker ]; then
  scripts/k8s.sh kubeconfig "$ORBITNET_K8S_CREDS" $R $CONTROL_IP
  export KUBECONFIG=$R/admin.kubeconfig
  for i in $(seq 600); do $BIN/kubectl get --raw /readyz >/dev/null 2>&1 && break; sleep 1; done
  log "the control plane answers at $CONTROL_IP"
else
  ORBITNET_K8S_NODE_IP=$NODE_IP scripts/k8s.sh up $R/cp 2>&1 | tail -1
  export KUBECONFIG=$R/cp/admin.kubeconfig
  log "control plane"
fi
mkdir -p $R/cni/net.d $R/cni/ipam /etc/cni/net.d /var/lib/kubelet $R/containerd
# overlayfs cannot have its upper directory on an overlayfs (the VM's root): a tmpfs.
mount -t tmpfs tmpfs $R/containerd
cat > $R/cni/net.d/10-bridge.conflist <<EOF2
{"cniVersion":"0.4.0","name":"orbitnet","plugins":[
 {"type":"bridge","bridge":"cni0","isGateway":true,"ipMasq":true,"hairpinMode":true,
  "ipam":{"type":"host-local","dataDir":"$R/cni/ipam","ranges":[[{"subnet":"$POD_CIDR"}]],
          "routes":[{"dst":"0.0.0.0/0"}]}},
 {"type":"portmap","capabilities":{"portMappings":true}}]}
EOF2
cat > $R/containerd.toml <<EOF2
version = 2
root = "$R/containerd"
state = "/run/containerd"
[grpc]
  address = "/run/containerd/containerd.sock"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "k8s.gcr.io/pause:3.2"
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$R/cni/net.d"
EOF2
containerd --config $R/containerd.toml > $R/logs/containerd.log 2>&1 &
for i in $(seq 60); do ctr version >/dev/null 2>&1 && break; sleep 0.5; done
log "containerd"
for image in pause orbitnet; do ctr -n k8s.io images import $ORBITNET_CLUSTER_IMAGES/$image.tar >/dev/null; done
log "images imported"
cat > $R/kubelet.yaml <<EOF2
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_IP
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
authentication: {anonymous: {enabled: true}, webhook: {enabled: false}}
authorization: {mode: AlwaysAllow}
cgroupDriver: cgroupfs
failSwapOn: false
podCIDR: $POD_CIDR
clusterDomain: cluster.local
imageGCHighThresholdPercent: 100
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%"}
EOF2
# The kubelet from a script of its own: the two-node test stops and starts the second's.
cat > $R/kubelet.sh <<EOF2
#!/bin/bash
exec $BIN/kubelet --config=$R/kubelet.yaml --kubeconfig=$KUBECONFIG \\
  --container-runtime=remote --container-runtime-endpoint=unix:///run/containerd/containerd.sock \\
  --hostname-override=$NODE --node-ip=$NODE_IP --root-dir=/var/lib/kubelet --v=1 >> $R/logs/kubelet.log 2>&1
EOF2
chmod +x $R/kubelet.sh
$R/kubelet.sh &
[ "$mode" = worker ] || $BIN/kube-scheduler --kubeconfig=$KUBECONFIG --bind-address=127.0.0.1 --port=0 --leader-elect=false > $R/logs/scheduler.log 2>&1 &
export PATH=$BIN:$PATH
node_ready() {
  kubectl get node "$1" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null | grep -qx True
}
# The second machine's clock set to this one's, as NTP keeps a real cluster's: each agent
# applies tick k at startedAt + k ticks by its own clock. The offset is measured over the
# control channel (the best of five round trips; the answer is read before and after, on
# a wire with the same delay both ways), then stepped, until under 2 ms.
ask_worker() {  # COMMAND [ARG]: its answer's first line; fails if the channel does not answer
  local answer= rc=0
  exec 3<>/dev/tcp/$PEER_IP/7001 || return 1
  { read -r _ <&3 && echo "$*" >&3 && read -r answer <&3; } || rc=1
  exec 3<&-
  echo "$answer"
  return $rc
}
worker_offset() {  # "offset_us round_trip_us", from the quickest of ten round trips
  local best= t0 t1 tw
  for _ in $(seq 10); do
    exec 3<>/dev/tcp/$PEER_IP/7001 && read -r _ <&3 || return 1
    t0=${EPOCHREALTIME/./}; echo time >&3; read -r tw <&3; t1=${EPOCHREALTIME/./}
    exec 3<&-
    if [ -z "$best" ] || [ $((t1 - t0)) -lt "${best#* }" ]; then best="$(( ${tw/./} - (t0 + t1) / 2 )) $((t1 - t0))"; fi
  done
  echo "$best"
}
# The second machine's clock stepped onto this one's. A reading is only as good as its round
# trip's time beyond the wire's (the underlay's delay both ways): either way's share of that
# is unknown, so the offset is known to within half of it. Steps stop once the offset is
# within that (or 2 ms): stepping on noise would only move the clock about.
sync_clock() {
  local offset= rtt= within= answer= wire_us=$(( ${UNDERLAY_DELAY%ms} * 2000 ))
  for _ in $(seq 100); do ask_worker none >/dev/null 2>&1 && break; sleep 1; done
  for step in 0 1 2 3 4 5 6; do
    # Not < <(...): the VM's minimal /dev has no /dev/fd.
    read -r offset rtt <<<"$(worker_offset)" || true
    [ -n "$offset" ] || { echo "the second machine's control channel does not answer"; exit 1; }
    within=$(( (rtt - wire_us) / 2 )); [ $within -ge 2000 ] || within=2000
    [ "${offset#-}" -le $within ] || [ $step = 6 ] && break
    answer=$(ask_worker clock-step $((-offset)))
    [ "$answer" = stepped ] || { echo "the second machine's clock step failed: $answer"; exit 1; }
  done
  log "the second machine's clock: $offset us from this one's, known to +-$within us, after $step steps (round trip $rtt us, the wire's $wire_us us)"
}
for i in $(seq 240); do node_ready $NODE && break; sleep 0.5; done
kubectl get node $NODE >/dev/null || { tail -20 $R/logs/kubelet.log; exit 1; }
log "node Ready: $(kubectl get node $NODE --no-headers 2>&1)"
# Services: kube-proxy (iptables), so pods reach the API server at 10.96.0.1.
$BIN/kube-proxy --kubeconfig=$KUBECONFIG --hostname-override=$NODE --proxy-mode=iptables \
  --cluster-cidr=10.244.0.0/16 --metrics-bind-address=127.0.0.1:10249 > $R/logs/kube-proxy.log 2>&1 &
if [ "$mode" = worker ]; then
  # A control channel for the first machine, on the wire (TCP port 7001): one command a
  # connection, after a line "ready"; its answer back. Used by the clock sync below and by
  # the two-node test (operator/agent/tests/cluster.rs, `worker()`).
  { echo "#!/bin/bash"; echo "R=$R"; cat <<'EOF2'; } > $R/control.sh
echo ready
read -r command arg
case $command in
  # bash's own clock reading: no process started between the question and the answer.
  time) echo "$EPOCHREALTIME" ;;
  # By ARG microseconds, the clock read and set again within one process, back to back:
  # `date -s "now + X seconds"` lands 8-30 ms late in a TCG guest (its parsing runs between
  # the reading and the setting), python3's clock_settime within 1 ms (measured).
  clock-step) python3 -c 'import sys, time
r = time.CLOCK_REALTIME
time.clock_settime_ns(r, time.clock_gettime_ns(r) + int(sys.argv[1]) * 1000)' "$arg" 2>&1 && echo stepped ;;
  kubelet-stop) pkill -x kubelet; while pgrep -x kubelet >/dev/null; do sleep 0.1; done; echo stopped ;;
  kubelet-start) setsid $R/kubelet.sh </dev/null >/dev/null 2>&1 & echo started ;;
  links) ip -o link show ;;
  # This machine's part is over: the script below ends, and with it the VM.
  stop) touch $R/stop; echo stopping ;;
  # in-pod UID COMMAND: COMMAND in the network namespace of the pod with UID, with this
  # machine's iproute2 and iputils (the pod image has busybox's).
  in-pod) uid=${arg%% *} cmd=${arg#* }
    pid=$(grep -lE "pod(${uid}|${uid//-/_})" /proc/[0-9]*/cgroup 2>/dev/null | head -1 | cut -d/ -f3)
    if [ -z "$pid" ]; then echo "no process of pod $uid here"; else nsenter -t "$pid" -n sh -c "$cmd" 2>&1; fi ;;
  *) echo "unknown command: $command" ;;
esac
EOF2
  chmod +x $R/control.sh
  busybox nc -ll -p 7001 -e $R/control.sh &
  log "control channel on $NODE_IP:7001"
  # Until the first machine is done with this one (`stop`), or the host stops this VM.
  until [ -e $R/stop ]; do sleep 2; done
  log "stopped by the first machine"
  exit 0
fi
if [ "$NODES" = 2 ]; then
  for i in $(seq 600); do node_ready orbitnet-node-2 && break; sleep 1; done
  node_ready orbitnet-node-2 || { echo "the second machine's node never became Ready"; kubectl get nodes -o wide; exit 1; }
  log "both nodes Ready: $(kubectl get nodes --no-headers | awk '{print $1, $2}' | paste -sd' ')"
  sync_clock
fi

# orbitnet from manifests/, as `make deploy` does. kubectl 1.20's kustomize cannot take
# ../crds as a directory: the same kustomization, over a flat copy of the files.
deploy=$(mktemp -d); cp manifests/*.yaml crds/constellation.yaml $deploy/
sed 's#^- \.\./crds$#- constellation.yaml#' manifests/kustomization.yaml > $deploy/kustomization.yaml
# kubectl before 1.23 rejects the CRD's CEL rules (x-kubernetes-validations) on the spec
# itself when it validates on the client; the 1.20 server ignores them.
kubectl apply --validate=false -k $deploy >/dev/null
for ds in deployment/orbitnet-operator daemonset/orbitnet-agent; do
  kubectl -n orbitnet-system rollout status $ds --timeout=300s >/dev/null || {
    kubectl -n orbitnet-system get pods -o wide; kubectl -n orbitnet-system describe $ds | tail -20
    tail -20 $R/logs/kubelet.log; exit 1; }
done
log "orbitnet deployed: $(kubectl -n orbitnet-system get pods --no-headers | awk '{print $1, $3}' | paste -sd' ')"

status=0
case $mode in
  test)
    # On two nodes, the two-node tests first; then the second machine stops and leaves the
    # cluster, and the single-node tests run on this node alone, with the whole host's CPU
    # (an idle kubelet under TCG costs a busy host a good part of a core). The two-node test
    # makes every check of a_constellation_on_a_real_cluster, across two nodes: that one runs
    # there only when --only names it. Each list is narrowed by --only.
    names=$("$ORBITNET_CLUSTER_TEST" --list --include-ignored | sed -n 's/: test$//p' | grep -F -- "$ORBITNET_CLUSTER_ONLY" || true)
    single=$(grep -v two_nodes <<<"$names" || true) double=
    if [ "$NODES" = 2 ]; then
      double=$(grep two_nodes <<<"$names" || true)
      [ -n "$ORBITNET_CLUSTER_ONLY" ] || single=$(grep -vx a_constellation_on_a_real_cluster <<<"$single" || true)
    fi
    [ -n "$single$double" ] || { echo "no cluster test on $NODES node(s) has \"$ORBITNET_CLUSTER_ONLY\" in its name"; exit 1; }
    tests() {
      ORBITNET_CLUSTER=1 "$ORBITNET_CLUSTER_TEST" --include-ignored --nocapture --test-threads=1 --exact "$@" || status=1
    }
    if [ -n "$double" ]; then
      tests $double
      log "two-node tests done"
    fi
    if [ "$NODES" = 2 ] && [ -n "$single" ]; then
      # A failed test leaves its constellation behind: gone first. Then the second machine
      # powered off (its kubelet would register the node again) and its node deleted.
      kubectl delete constellations --all --timeout=300s >/dev/null 2>&1 || true
      kubectl wait --for=delete pod -l orbitnet.dev/constellation --timeout=300s >/dev/null 2>&1 || true
      ask_worker stop >/dev/null 2>&1 || true
      for i in $(seq 120); do ping -c 1 -W 1 $PEER_IP >/dev/null 2>&1 || break; sleep 1; done
      kubectl delete node orbitnet-node-2 >/dev/null
      log "the second machine stopped, its node deleted: $(kubectl get nodes --no-headers | awk '{print $1, $2}' | paste -sd' ')"
    fi
    if [ -n "$single" ]; then
      tests $single
      log "single-node tests done"
    fi ;;
  bringup)
    for f in "$@"; do
      name=$(sed -n 's/^metadata: *{ *name: *\([a-z0-9-]*\).*/\1/p; s/^  name: *\([a-z0-9-]*\)$/\1/p' "$f" | head -1)
      t0=$(date +%s.%N)
      kubectl apply -f "$f" >/dev/null
      kubectl wait --for=condition=Ready constellation/$name --timeout=1800s >/dev/null || status=1
      t1=$(date +%s.%N)
      log "BRINGUP $f: $(kubectl get constellation $name --no-headers) Ready in $(echo "$t1 - $t0" | bc | xargs printf %.1f) s"
      kubectl get constellation $name -o jsonpath='{.status.agents}'; echo
      kubectl delete constellation $name --timeout=600s >/dev/null
      kubectl wait --for=delete pod -l orbitnet.dev/constellation=$name --timeout=600s >/dev/null 2>&1 || true
      log "deleted $name"
    done ;;
esac
if [ $status != 0 ]; then
  echo "--- agent log"; kubectl -n orbitnet-system logs -l app.kubernetes.io/name=orbitnet-agent --tail=40 || true
  echo "--- operator log"; kubectl -n orbitnet-system logs -l app.kubernetes.io/name=orbitnet-operator --tail=20 || true
fi
free -m | head -2
exit $status
