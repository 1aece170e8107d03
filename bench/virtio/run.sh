#!/usr/bin/env bash
# bench/virtio/run.sh: virtio-blk and virtio-net data paths, corral-vmm against QEMU
# (-enable-kvm) with the same guest (stock Debian kernel + test initramfs, 1 vCPU, 512 MiB),
# the same scratch disk image and a tap each, in the same run. Prints each figure, QEMU's beside
# it, and the ratio corral/QEMU.
#
#   disk (virtio-blk, /dev/vda = a fresh, fully written raw scratch image on tmpfs):
#     sequential write and read, MiB/s: busybox dd, bs=1M, O_DIRECT in the guest (no fsync),
#       timed in the guest;
#     4 KiB random read IOPS at queue depth 1 (and 8): bench/virtio/guest_io.c, O_DIRECT preads
#       of fixed-seed random 4 KiB-aligned offsets for a fixed time, one thread per request in
#       flight;
#   network (virtio-net, guest PREFIX.2 on a tap whose host side is PREFIX.1/24):
#     ping round trip guest -> host, ms: busybox ping -c 20 -i 0.2 (after one warm-up ping), avg;
#     TCP throughput guest -> host and host -> guest, MiB/s: guest_io tcpsend/tcprecv (256 KiB
#       writes/reads) against a python3 receiver/sender on the host, timed on the host;
#     small packets guest -> host and host -> guest, datagrams/s: 64-byte UDP datagrams sent
#       as fast as the sender's socket takes them for 5 s (guest_io udpsend/udpserve), counted
#       by the receiver (guest_io udpsink on the host, udprecv in the guest).
#
# QEMU: -M microvm with PCIe (virtio-blk-pci and virtio-net-pci, like corral-vmm's virtio-pci),
# -cpu host, -drive ...,cache=writeback,aio=threads, -netdev tap,...,vhost=off: both monitors
# move every request and frame through user space. Where /dev/vhost-net can be had, a third
# column runs QEMU with vhost=on (network only). Why cache=writeback and not cache=none: the
# scratch image is on tmpfs, which has no O_DIRECT before Linux 6.6 (QEMU cannot open it with
# cache=none in the lab), and corral-vmm's raw engine does buffered pread/pwrite, which is what
# cache=writeback does; on tmpfs both end in the same page cache memory.
#
# Runs directly where /dev/kvm runs guest kernels at speed, else inside the nested lab
# (tools/lab, everything inside one lab VM: the taps, the scratch image on its tmpfs /tmp, both
# monitors): absolute figures there are far below hardware, the ratios are what to read.
# Usage: bench/virtio/run.sh [--runs N] [--quick] [--no-vhost] [--net-only]
#   --runs N    boots per monitor (default 3; medians are printed)
#   --quick     1 run, 64 MiB disk, 3 s random reads, 10 pings, 16 MiB TCP (~5 min in the lab)
#   --no-vhost  skip the QEMU vhost-net column
#   --net-only  skip the disk figures (every boot measures the network only)
# Environment: CORRAL_BUILD_DIR (default build), CORRAL_BENCH_QEMU_MACHINE (default
# microvm,pcie=on,...; q35 works too), CORRAL_BENCH_QEMU_CACHE (default writeback),
# CORRAL_BENCH_KEEP=DIR (copy each boot's console, host-side output and parsed figures there;
# in the lab DIR must be under the writable share, e.g. the checkout).
set -uo pipefail

script=$(readlink -f "${BASH_SOURCE[0]}")
here=$(dirname "$script")
repo=$(cd "$here/../.." && pwd)
build_dir="${CORRAL_BUILD_DIR:-$repo/build}"

runs=3 quick=0 vhost=1 net_only=0
args=("$@")
# shellcheck source=../lib/options.sh
. "$repo/bench/lib/options.sh"
bench_options '[--runs N] [--quick] [--no-vhost] [--net-only]' \
  --runs=runs '--quick:quick=1 runs=1' --no-vhost:vhost=0 --net-only:net_only=1 -- "$@"
# --quick sets runs=1 unless --runs came after it.
for ((i = 0; i < ${#args[@]}; i++)); do [ "${args[i]}" = --runs ] && runs=${args[i + 1]}; done

if [ -z "${CORRAL_IN_LAB:-}" ] && { [ ! -c /dev/kvm ] || [ -d /sys/module/kvm_pvm ]; }; then
  "$repo/tools/guest-image" >/dev/null || exit 1
  echo "bench: running inside the nested lab"
  cd "$build_dir" || exit 1
  exec "$repo/tools/lab" --timeout 2400 --memory 4G -- env CORRAL_IN_LAB=1 \
    CORRAL_BUILD_DIR="$build_dir" CORRAL_CACHE="${CORRAL_CACHE:-$HOME/.cache/corral}" "$script" "${args[@]}"
fi

vmm="$build_dir/src/vmm/corral-vmm"
[ -x "$vmm" ] || { echo "bench: $vmm is not built (ninja -C $build_dir corral-vmm)"; exit 1; }
[ "$(id -u)" = 0 ] || { echo "bench: needs root (taps)"; exit 1; }
for tool in qemu-system-x86_64 gcc cpio ip; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is missing"; exit 1; }
done
python=$(command -v /usr/bin/python3 || command -v python3) || { echo "bench: python3 is missing"; exit 1; }
kernel='' initrd='' modules=''
eval "$("$repo/tools/guest-image" | grep -E '^(kernel|initrd|modules)=')"

if [ "$quick" = 1 ]; then
  disk_mb=64 rand_seconds=3 rand_qds="1 8" ping_count=10 tcp_mb=16 udp_seconds=3
else
  disk_mb=256 rand_seconds=10 rand_qds="1 8" ping_count=20 tcp_mb=64 udp_seconds=5
fi
udp_size=64
boot_limit=600   # seconds for one boot, its measurements and power-off
qemu_machine=${CORRAL_BENCH_QEMU_MACHINE:-microvm,pcie=on,isa-serial=on,rtc=on}
qemu_cache=${CORRAL_BENCH_QEMU_CACHE:-writeback}

# The scratch image lives on /tmp: tmpfs in the lab (memory; the same for both monitors).
work=$(mktemp -d /tmp/bench-virtio.XXXXXX)
taps=()
host_pid=''   # the running host side, if any (we started it; nothing else is killed)
udp_pids=()   # the running host-side UDP sink and server, if any (ours too)
cleanup() {
  local t
  if [ -n "${CORRAL_BENCH_KEEP:-}" ] && mkdir -p "$CORRAL_BENCH_KEEP"; then
    cp "$work"/*.out "$work"/*.host "$work"/*.res "$CORRAL_BENCH_KEEP"/ 2>/dev/null
  fi
  [ -n "$host_pid" ] && kill -KILL "$host_pid" 2>/dev/null
  for t in "${udp_pids[@]}"; do kill -KILL "$t" 2>/dev/null; done
  for t in "${taps[@]}"; do ip link del "$t" 2>/dev/null; done
  rm -rf -- "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ------------------------------------------------------------------ kernel modules
# tun (and vhost-net): built in, loaded already, or insmod'ed from the guest kernel's tree (the
# lab runs that kernel; elsewhere modprobe finds the host's own).
load_module() {   # load_module NAME RELATIVE_PATH
  [ -d "/sys/module/$1" ] && return 0
  modprobe "$1" 2>/dev/null && return 0
  [ -f "$modules/$2" ] && [ "$(uname -r)" = "$(basename "$modules")" ] && insmod "$modules/$2" 2>/dev/null
}
load_module tun kernel/drivers/net/tun.ko || { echo "bench: cannot load the tun module"; exit 1; }
[ -c /dev/net/tun ] || { mkdir -p /dev/net && mknod /dev/net/tun c 10 200; }
if [ "$vhost" = 1 ]; then
  for m in "vhost_iotlb kernel/drivers/vhost/vhost_iotlb.ko" "vhost kernel/drivers/vhost/vhost.ko" \
           "tap kernel/drivers/net/tap.ko" "vhost_net kernel/drivers/vhost/vhost_net.ko"; do
    # shellcheck disable=SC2086
    load_module $m || break
  done
  [ -c /dev/vhost-net ] || { echo "bench: no /dev/vhost-net here: no vhost-net column"; vhost=0; }
fi

# ------------------------------------------------------------------ guest side
# guest_io (static) + guest.sh + conf in a newc archive appended to the test initrd: the kernel
# unpacks concatenated archives; each must start 4-byte aligned (zero padding is skipped).
mkdir -p "$work/extra/bench"
gcc -static -O2 -pthread -o "$work/extra/bench/guest_io" "$here/guest_io.c" || { echo "bench: gcc failed"; exit 1; }
cp "$here/guest.sh" "$work/extra/bench/guest.sh"
cat >"$work/extra/bench/conf" <<EOF
DISK_MB=$disk_mb
RAND_SECONDS=$rand_seconds
RAND_QDS="$rand_qds"
PING_COUNT=$ping_count
TCP_MB=$tcp_mb
UDP_SIZE=$udp_size
UDP_SECONDS=$udp_seconds
STEP_LIMIT=180
EOF
cp "$initrd" "$work/initrd.img"
size=$(stat -c %s "$work/initrd.img")
truncate -s $(( (size + 511) / 512 * 512 )) "$work/initrd.img"
(cd "$work/extra" && find bench | cpio -o -H newc --quiet) >>"$work/initrd.img" || exit 1
scratch="$work/scratch.img"

# ------------------------------------------------------------------ host side
# One python3 process per boot: takes TCP_MB MiB from the guest on :5001, then sends TCP_MB MiB
# to it on :5002; prints "HOST NAME VALUE" lines. Every wait is bounded.
cat >"$work/host.py" <<'PY'
import socket, sys, time
ip, size, limit = sys.argv[1], int(sys.argv[2]) << 20, float(sys.argv[3])
def listener(port):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((ip, port)); s.listen(1); s.settimeout(limit); return s
g2h, h2g = listener(5001), listener(5002)
print("HOST-READY", flush=True)
conn, _ = g2h.accept(); conn.settimeout(120)
start, got = time.monotonic(), 0
while True:
    data = conn.recv(1 << 20)
    if not data: break
    got += len(data)
elapsed = time.monotonic() - start
conn.close()
if got == size: print(f"HOST tcp_g2h_MiBps {got / elapsed / 1048576:.1f}", flush=True)
else: print(f"HOST-ERROR: got {got} of {size} bytes from the guest", flush=True)
conn, _ = h2g.accept(); conn.settimeout(120)
chunk, sent, start = bytes(1 << 20), 0, time.monotonic()
while sent < size:
    conn.sendall(chunk); sent += len(chunk)
conn.shutdown(socket.SHUT_WR)
while conn.recv(65536): pass   # the guest closes once it has every byte
print(f"HOST tcp_h2g_MiBps {size / (time.monotonic() - start) / 1048576:.1f}", flush=True)
PY

# Monitors: corral, qemu, qemu-vhost (network only). Each has its own tap and /24.
declare -A net_index=([corral]=91 [qemu]=92 [qemu-vhost]=93)
monitors=(corral qemu)
[ "$vhost" = 1 ] && monitors+=(qemu-vhost)
for m in "${monitors[@]}"; do
  t="cbv${net_index[$m]}"
  ip link del "$t" 2>/dev/null
  ip tuntap add dev "$t" mode tap || { echo "bench: cannot create tap $t"; exit 1; }
  taps+=("$t")
  ip addr add "10.0.${net_index[$m]}.1/24" dev "$t" && ip link set "$t" up || exit 1
done

# boot MONITOR RUN: one boot that measures everything; raw console in $work/MONITOR.RUN.out
boot() {
  local mon=$1 run=$2 idx=${net_index[$1]} what=all
  local tap="cbv$idx" prefix="10.0.$idx" out="$work/$1.$2.out" host_out="$work/$1.$2.host"
  { [ "$mon" = qemu-vhost ] || [ "$net_only" = 1 ]; } && what=net
  if [ "$what" = all ]; then
    # A fresh, fully written image for every boot (tmpfs allocates the pages now).
    rm -f "$scratch"; dd if=/dev/zero of="$scratch" bs=1M count="$disk_mb" status=none || return 1
  fi
  local run_arg cmdline mac; run_arg=$("$repo/tools/guest-image" encode-run "sh /bench/guest.sh $prefix $what")
  cmdline="console=ttyS0 quiet $run_arg corral.then=poweroff"
  mac="52:54:00:00:00:$idx"
  timeout -k 5 "$boot_limit" "$python" "$work/host.py" "$prefix.1" "$tcp_mb" "$boot_limit" >"$host_out" 2>&1 &
  host_pid=$!
  local i; for i in $(seq 100); do grep -q HOST-READY "$host_out" && break; sleep 0.1; done
  # Small packets: the same guest_io on this side (a sink for the guest's datagrams, a server
  # that sends datagrams to the guest once it asks).
  timeout -k 5 "$boot_limit" "$work/extra/bench/guest_io" udpsink "$prefix.1" 5003 >"$host_out.udpsink" 2>&1 &
  udp_pids=($!)
  timeout -k 5 "$boot_limit" "$work/extra/bench/guest_io" udpserve "$prefix.1" 5004 "$udp_size" "$udp_seconds" \
    >"$host_out.udpserve" 2>&1 &
  udp_pids+=($!)
  local cmd
  case $mon in
    corral)
      cmd=("$vmm" --kernel "$kernel" --initrd "$work/initrd.img" --memory 512M --cpus 1 --cmdline "$cmdline"
           --net "tap=$tap,mac=$mac")
      [ "$what" = all ] && cmd+=(--disk "path=$scratch,format=raw") ;;
    qemu|qemu-vhost)
      local vh=off; [ "$mon" = qemu-vhost ] && vh=on
      cmd=(qemu-system-x86_64 -enable-kvm -cpu host -M "$qemu_machine" -m 512M -smp 1 -nodefaults
           -no-user-config -display none -serial stdio -no-reboot
           -kernel "$kernel" -initrd "$work/initrd.img" -append "$cmdline"
           -netdev "tap,id=n0,ifname=$tap,script=no,downscript=no,vhost=$vh"
           -device "virtio-net-pci,netdev=n0,mac=$mac")
      # shellcheck disable=SC2054  # commas inside QEMU option values
      [ "$what" = all ] && cmd+=(-drive "file=$scratch,if=none,id=d0,format=raw,cache=$qemu_cache,aio=threads"
                                 -device virtio-blk-pci,drive=d0) ;;
  esac
  # Frames the host's tap dropped toward the monitor (its queue was full): a diagnostic.
  local stat="/sys/class/net/$tap/statistics/tx_dropped" dropped0; dropped0=$(cat "$stat")
  local start; start=$(date +%s)
  timeout -k 5 "$boot_limit" "${cmd[@]}" >"$out" 2>&1 </dev/null
  local rc=$?
  echo "HOST tap_tx_dropped $(( $(cat "$stat") - dropped0 ))" >>"$host_out"
  # The host side ends on its own once the guest closed the second connection.
  for i in $(seq 100); do kill -0 "$host_pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$host_pid" 2>/dev/null; wait "$host_pid" 2>/dev/null; host_pid=''
  for i in "${udp_pids[@]}"; do kill -KILL "$i" 2>/dev/null; wait "$i" 2>/dev/null; done; udp_pids=()
  echo "HOST udp_g2h_pps $(sed -n 's/.* s, \([0-9]*\) pps$/\1/p' "$host_out.udpsink")" >>"$host_out"
  tr -d '\r' <"$out" | sed -n 's/^BENCH \([A-Za-z0-9_]*\) \(.*\)$/\1 \2/p' >"$work/$1.$2.res"
  sed -n 's/^HOST \([A-Za-z0-9_]*\) \(.*\)$/\1 \2/p' "$host_out" >>"$work/$1.$2.res"
  local line; line=$(tr '\n' ' ' <"$work/$1.$2.res")
  echo "  $mon run $run: $(( $(date +%s) - start )) s, exit $rc: $line"
  if ! tr -d '\r' <"$out" | grep -q '^BENCH-DONE'; then
    echo "  $mon run $run: no BENCH-DONE; the console's last lines:"; tr -d '\r' <"$out" | tail -n 15 | sed 's/^/    | /'
  fi
  tr -d '\r' <"$out" | grep -E '^BENCH-ERROR|corral-vmm: (warning|error)|qemu-system-x86_64:' | sed 's/^/    | /'
  grep HOST-ERROR "$host_out" | sed 's/^/    | /'
}

echo "== virtio-blk and virtio-net: corral-vmm vs QEMU $(qemu-system-x86_64 --version | sed -n '1s/.*version \([^ ]*\).*/\1/p') -M $qemu_machine, $runs run(s) each"
echo "   guest: $(basename "$kernel") + test initramfs, 1 vCPU, 512 MiB; disk: ${disk_mb} MiB raw on $(df -T /tmp | awk 'NR==2{print $2}') /tmp; QEMU cache=$qemu_cache,aio=threads, vhost=off"
for run in $(seq "$runs"); do
  for m in "${monitors[@]}"; do boot "$m" "$run"; done
done

# ------------------------------------------------------------------ table
median_of() {   # median_of MONITOR METRIC
  local f; for f in "$work/$1".*.res; do [ -f "$f" ] && awk -v k="$2" '$1 == k { print $2 }' "$f"; done |
    grep -E '^[0-9.]+$' | sort -n | awk '{a[NR]=$1} END { if (NR) print a[int((NR+1)/2)]; else print "n/a" }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a ~ /^[0-9.]+$/ && b ~ /^[0-9.]+$/ && b > 0) printf "%.2f", a / b; else print "n/a" }'; }
echo
echo "medians of $runs run(s); ratio = corral-vmm / QEMU (vhost=off); in the nested lab read ratios, not absolutes"
header="| metric | better | corral-vmm | QEMU vhost=off | ratio |"
sep="|---|---|---|---|---|"
[ "$vhost" = 1 ] && header="$header QEMU vhost=on | ratio corral/vhost |" && sep="$sep---|---|"
echo "$header"; echo "$sep"
row() {   # row METRIC LABEL BETTER
  local c q line; c=$(median_of corral "$1"); q=$(median_of qemu "$1")
  line="| $2 | $3 | $c | $q | $(ratio "$c" "$q") |"
  if [ "$vhost" = 1 ]; then
    case $1 in
      ping*|tcp*|udp*) local v; v=$(median_of qemu-vhost "$1"); line="$line $v | $(ratio "$c" "$v") |" ;;
      *) line="$line - | - |" ;;
    esac
  fi
  echo "$line"
}
if [ "$net_only" = 0 ]; then
  row seq_read_MiBps "blk sequential read, 1 MiB O_DIRECT (MiB/s)" higher
  row seq_write_MiBps "blk sequential write, 1 MiB O_DIRECT (MiB/s)" higher
  for qd in $rand_qds; do row "randread_qd${qd}_IOPS" "blk 4 KiB random read, QD $qd (IOPS)" higher; done
fi
row ping_avg_ms "net ping guest->host, avg RTT (ms)" lower
row tcp_g2h_MiBps "net TCP guest->host (MiB/s)" higher
row tcp_h2g_MiBps "net TCP host->guest (MiB/s)" higher
row udp_g2h_pps "net 64 B UDP guest->host (datagrams/s)" higher
row udp_h2g_pps "net 64 B UDP host->guest (datagrams/s)" higher
