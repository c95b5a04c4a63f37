#!/usr/bin/env bash
# Runs a command as root inside a small VM booted from Debian's generic kernel (which has
# sch_netem, veth, vxlan as modules), with this host's / shared read-only over virtio-9p:
# the guest runs the binaries just built here. Exit status = the command's.
#
#   scripts/vm.sh [--mem 512M] [--timeout 600] [--smp N] [--writable] [--virtual-time]
#                 [--link LOCAL_PORT:PEER_PORT:MAC] -- COMMAND [ARGS...]
#
# One-time setup installs qemu-system-x86 and kmod from Debian and extracts the kernel and
# busybox (not installed) into ~/.cache/orbitnet/vm/<kernel package version>/.
# Inside the guest: / is the host's root (read-only), /run is a tmpfs (/run/netns, TMPDIR),
# /proc /sys /dev are the guest's. With --writable, / is an overlay of the host's root and a
# tmpfs (up to 70% of the guest's memory): writes stay in the guest, for programs such as
# containerd and kubelet that write under /var and /etc. Guest scripts find the guest
# kernel's modules with: modprobe -d "$ORBITNET_VM_KERNEL" MODULE.
# With --link, the guest has an eth0 (virtio-net, that MAC, no address): an Ethernet wire to
# one other VM, carried as UDP datagrams between two ports of the host's loopback (qemu's
# socket netdev; each VM sends to the other's port). Two VMs started with mirrored ports,
# 5001:5002 and 5002:5001, are a two-machine network (the two-node cluster tier).
# With --virtual-time (TCG only; ignored under KVM), the guest's clocks follow qemu's
# instruction counter (-icount shift=0,sleep=off: one instruction per virtual ns, idle time
# skipped), not the host's: a busy host slows the guest down but cannot make its packets
# late: each netem-shaped traversal measured inside costs ~0.006 ms beyond its delay,
# whatever the host's load. It suits tests that time packets with one vCPU; not benchmarks
# (their seconds are not real).
# Pitfalls learned the hard way: qemu-system-x86 replaces the preinstalled qemu-utils (fine);
# Debian's cloud kernel lacks 9p (use the generic one); run depmod on the extracted tree;
# do not mount a tmpfs over /tmp; under TCG a boot rarely hangs: time out and retry once.
set -euo pipefail

mem=512M
timeout_s=600
smp=$(nproc)
writable=0
virtual_time=0
nic=(-nic none)
while [ $# -gt 0 ]; do
  case "$1" in
    --link)
      # The last name takes the rest, colons and all: the MAC.
      IFS=: read -r lport pport mac <<<"$2"
      [[ "$lport" =~ ^[0-9]+$ && "$pport" =~ ^[0-9]+$ && "$mac" =~ ^([0-9a-f]{2}:){5}[0-9a-f]{2}$ ]] \
        || { echo "vm.sh: --link LOCAL_PORT:PEER_PORT:MAC, e.g. 5001:5002:52:54:00:00:00:01 (got $2)" >&2; exit 2; }
      nic=(-netdev "socket,id=link,udp=127.0.0.1:$pport,localaddr=127.0.0.1:$lport"
           -device "virtio-net-pci,netdev=link,mac=$mac,romfile=")
      shift 2 ;;
    --writable) writable=1; shift ;;
    --virtual-time) virtual_time=1; shift ;;
    --mem) mem=$2; shift 2 ;;
    --timeout) timeout_s=$2; shift 2 ;;
    --smp) smp=$2; shift 2 ;;
    --) shift; break ;;
    *) echo "usage: $0 [--mem SIZE] [--timeout SECONDS] [--smp CPUS] [--writable] [--virtual-time] [--link LOCAL_PORT:PEER_PORT:MAC] -- COMMAND [ARGS...]" >&2; exit 2 ;;
  esac
done
[ $# -gt 0 ] || { echo "vm.sh: no command given" >&2; exit 2; }
# Measured: with two vCPUs, qemu 7.2's instruction counter did not boot the guest in 40 min.
[ "$virtual_time" = 0 ] || [ "$smp" = 1 ] || { echo "vm.sh: --virtual-time needs --smp 1" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "vm.sh: run as root (qemu's 9p export of / and apt need it)" >&2; exit 2; }

say() { printf 'vm: %s\n' "$*" >&2; }
caller_dir=$PWD

if ! command -v qemu-system-x86_64 >/dev/null || ! command -v depmod >/dev/null || ! command -v ping >/dev/null; then
  say "installing qemu-system-x86, kmod, iputils-ping, iproute2 from Debian"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    qemu-system-x86 kmod xz-utils iproute2 iputils-ping busybox-static >/dev/null
fi

pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-/{print $2; exit}')
[ -n "$pkg" ] || { say "cannot find Debian's linux-image-amd64 (is the Debian archive in apt's sources?)"; exit 2; }
cache="${ORBITNET_CACHE:-$HOME/.cache/orbitnet}/vm/$pkg"
mkdir -p "$cache"
cd "$cache"
# Two VMs starting at once (the two-node cluster tier) set the cache up one after the other.
exec 9>"$cache/setup.lock"
flock 9

if [ ! -d kernel ]; then
  say "fetching $pkg and busybox-static into $cache"
  rm -rf dl kernel.tmp bb && mkdir dl
  (cd dl && apt-get download "$pkg" busybox-static >/dev/null 2>&1)
  dpkg -x dl/"$pkg"_*.deb kernel.tmp
  dpkg -x dl/busybox-static_*.deb bb
  rm -rf dl && mv kernel.tmp kernel
fi
kver=$(ls kernel/lib/modules)
grep -q '^CONFIG_NET_SCH_NETEM=[ym]' "kernel/boot/config-$kver" || { say "$pkg has no netem"; exit 2; }

if [ ! -f vmlinux ]; then
  # The uncompressed ELF boots via PVH and skips a slow XZ unpack under TCG.
  z="kernel/boot/vmlinuz-$kver"
  off=$(LC_ALL=C grep -abo $'\xfd7zXZ' "$z" | head -1 | cut -d: -f1)
  tail -c +$((off + 1)) "$z" > vmlinux.xz
  xz -dc --single-stream vmlinux.xz > vmlinux.tmp && mv vmlinux.tmp vmlinux && rm vmlinux.xz
fi

modules="virtio_pci 9pnet_virtio 9p virtio_net veth sch_netem vxlan dummy overlay"
if [ ! -f initrd.cpio ] || [ "$(cat initrd.modules 2>/dev/null)" != "$modules" ]; then
  depmod -b kernel "$kver"
  rm -rf ir && mkdir -p ir/bin ir/mods ir/host ir/proc ir/sys ir/dev
  cp bb/bin/busybox ir/bin/
  for m in $modules; do
    modprobe -d "$cache/kernel" -S "$kver" --show-depends "$m" | awk '/^insmod/{print $2}'
  done | awk '!seen[$0]++' | while read -r f; do cp "$f" ir/mods/; basename "$f" >> ir/mods/order; done
  cat > ir/init <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
for m in $(cat /mods/order); do insmod /mods/$m || echo "insmod $m failed"; done
for a in $(cat /proc/cmdline); do case $a in orbitnet.run=*) T=${a#*=};; orbitnet.writable=1) W=1;; esac; done
if [ "$W" = 1 ]; then
  mkdir -p /lower /upper
  mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,ro,cache=loose hostroot /lower \
    || { echo "9p mount failed"; poweroff -f; }
  mount -t tmpfs -o size=70% tmpfs /upper; mkdir -p /upper/u /upper/w
  mount -t overlay overlay -o lowerdir=/lower,upperdir=/upper/u,workdir=/upper/w /host \
    || { echo "overlay mount failed"; poweroff -f; }
else
  mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,ro,cache=loose hostroot /host \
    || { echo "9p mount failed"; poweroff -f; }
fi
for d in proc sys dev; do mount --bind /$d /host/$d; done
mount -t tmpfs tmpfs /host/run; mkdir -p /host/run/tmp
echo "ORBITNET-VM-BOOTED uptime=$(cut -d' ' -f1 /proc/uptime)s"
TMPDIR=/run/tmp HOME=/run/tmp chroot /host /bin/bash "$T"
echo "ORBITNET-VM-RESULT=$?"
poweroff -f
INIT
  chmod +x ir/init
  (cd ir && find . | "$cache/bb/bin/busybox" cpio -o -H newc 2>/dev/null) > initrd.cpio
  echo "$modules" > initrd.modules
fi

exec 9>&-

# The guest runs this script (the host's file, seen through 9p).
job=$(mktemp "$cache/job.XXXXXX.sh")
log="$job.log"
trap 'rm -f "$job" "$log"' EXIT
{
  echo '#!/bin/bash'
  echo "export ORBITNET_VM_KERNEL=$(printf '%q' "$cache/kernel")"
  # Loopback up, as on any booted system (servers and browsers in the guest talk over it).
  echo 'ip link set lo up'
  echo "cd $(printf '%q' "$caller_dir")"
  printf '%q ' "$@"; echo
} > "$job"

accel=(-accel tcg,thread=multi -cpu max) accel_name=tcg
if grep -qwE 'vmx|svm' /proc/cpuinfo && [ -w /dev/kvm ]; then
  accel=(-accel kvm -cpu host) accel_name=kvm
elif [ "$virtual_time" = 1 ]; then
  accel=(-accel tcg,thread=single -cpu max -icount shift=0,sleep=off) accel_name="tcg, virtual time"
fi

for attempt in 1 2; do
  start=$(date +%s%N)
  rc=0
  timeout "$timeout_s" qemu-system-x86_64 "${accel[@]}" -m "$mem" -smp "$smp" \
    -nographic -no-reboot -kernel vmlinux -initrd initrd.cpio \
    -append "console=ttyS0 quiet loglevel=3 panic=-1 ${ORBITNET_VM_APPEND:-} orbitnet.writable=$writable orbitnet.run=$job" \
    -virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
    "${nic[@]}" </dev/null 2>&1 | tee "$log" \
    | grep --line-buffered -avE '^ORBITNET-VM-|SeaBIOS|Booting from ROM|reboot: Power down' || rc=$?
  say "qemu ran $(( ($(date +%s%N) - start) / 1000000 )) ms ($kver, $accel_name)"
  if grep -q 'ORBITNET-VM-BOOTED' "$log"; then break; fi
  say "the guest did not boot (pipeline status $rc); its console said:"
  tail -n 15 "$log" | sed 's/^/vm:   | /' >&2
  [ "$attempt" = 1 ] && say "retrying once"
done
result=$(sed -n 's/.*ORBITNET-VM-RESULT=\([0-9]*\).*/\1/p' "$log" | tail -1)
[ -n "$result" ] || { say "the guest never reported a result (timeout after ${timeout_s}s?)"; exit 124; }
exit "$result"
