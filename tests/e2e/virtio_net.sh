#!/usr/bin/env bash
# tests/e2e/virtio_net.sh: virtio-net over a host tap, with the stock kernel.
#
# 1. One guest on tap ctap0 (host side 10.99.0.1/24, a private range inside the lab VM only),
#    rate-limited to 100000 bytes/s each way (--net ...,bps=100000): the guest brings eth0 up
#    as 10.99.0.2, checks its MAC is the one given with --net (52:54:00:12:34:56) and that
#    Linux's virtio_net negotiated mergeable receive buffers (feature 15), pings the
#    host 3 times, then sends 400000 bytes to the host over TCP and receives 400000 from it.
#    Each transfer arrives whole and takes at least (400000 - one second's burst) / 100000 s
#    less 20%, and corral-vmm reports frames held back in both directions; the host's tap
#    counts the guest's frames; corral-vmm exits 0 after the guest powers off.
# 2. Two guests on taps ctap1/ctap2 enslaved to bridge cbr0: guest A (10.99.1.2) pings
#    guest B (10.99.1.3), which waits meanwhile; both exit 0.
# Needs root, python3 (the host end of the transfers), tun and bridge (loaded from the guest
# kernel's modules tree when missing).
# Where /dev/kvm runs guest kernel code at speed the boots run directly; otherwise the whole
# script re-runs itself inside the nested lab (tools/lab).
# Exit status: 0 all passed, 1 a check failed, 77 skipped (reason printed).
# Ends with the line "N passed, N failed".
set -uo pipefail

script=$(readlink -f "${BASH_SOURCE[0]}")
repo=$(cd "$(dirname "$script")/../.." && pwd)
build_dir="${CORRAL_BUILD_DIR:-$repo/build}"

if [[ ${1:-} == -h || ${1:-} == --help ]]; then
  sed -n '2,/^set -uo/{/^set -uo/d;s/^# \{0,1\}//;p}' "$script"
  exit 0
fi

# shellcheck source=../lib/lab.sh
. "$repo/tests/lib/lab.sh"
lab_vmm_begin 1500

if [ "$(id -u)" != 0 ]; then echo "SKIP: needs root to create taps and a bridge"; exit 77; fi
if ! command -v ip >/dev/null 2>&1; then echo "SKIP: no ip (iproute2) command"; exit 77; fi

# tun and bridge: built in, loaded already, or insmod'ed from the guest kernel's tree (the lab
# runs that kernel; elsewhere modprobe finds the host's own).
load_module() {   # load_module NAME RELATIVE_PATH
  [ -d "/sys/module/$1" ] && return 0
  modprobe "$1" 2>/dev/null && return 0
  [ -f "$modules/$2" ] && [ "$(uname -r)" = "$(basename "$modules")" ] && insmod "$modules/$2"
}
for m in "tun kernel/drivers/net/tun.ko" "llc kernel/net/llc/llc.ko" "stp kernel/net/802/stp.ko" \
         "bridge kernel/net/bridge/bridge.ko"; do
  # shellcheck disable=SC2086
  load_module $m || { echo "SKIP: cannot load kernel module ${m%% *}"; exit 77; }
done
[ -c /dev/net/tun ] || { mkdir -p /dev/net && mknod /dev/net/tun c 10 200; }

work=$(mktemp -d "${TMPDIR:-/tmp}/virtio-net-e2e.XXXXXX")
cleanup() {
  for l in ctap0 ctap1 ctap2 cbr0; do ip link del "$l" 2>/dev/null; done
  rm -rf -- "$work"
}
trap cleanup EXIT

# shellcheck source=../lib/check.sh
. "$repo/tests/lib/check.sh"
has() { tr -d '\r' <"$work/$1" | grep -q -- "$2"; }

boot() {   # boot NAME GUEST_COMMAND [corral-vmm args...]: output in $work/NAME, status in $work/NAME.rc
  local name=$1 run; run=$("$repo/tools/guest-image" encode-run "$2"); shift 2
  local status=0
  timeout 900 "$vmm" --kernel "$kernel" --initrd "$initrd" --memory 512M --cpus 1 \
    --cmdline "console=ttyS0 quiet $run corral.then=poweroff" "$@" >"$work/$name" 2>&1 </dev/null || status=$?
  echo "$status" >"$work/$name.rc"
  sed "s/^/  $name| /" "$work/$name" | tr -d '\r' |
    grep -E 'CORRAL|GUEST|bytes from|packet|transmitted|corral-vmm: (warning|error)|Kernel panic|BUG|Oops' || true
  # A monitor that failed: all of its last lines (a boot that ended early prints little else).
  if [ "$status" != 0 ]; then
    echo "  $name| corral-vmm exited $status; its last lines:"
    tail -n 20 "$work/$name" | tr -d '\r' | sed "s/^/  $name|   /"
  fi
}

echo "== 1: one guest on tap ctap0 limited to 100000 bytes/s, pinging the host, then TCP both ways"
ip tuntap add dev ctap0 mode tap
ip addr add 10.99.0.1/24 dev ctap0
ip link set ctap0 up
rate=100000 bytes=400000
# The host's ends of the transfers (listening before the guest boots): port 5001 takes the
# guest's bytes; port 5002 sends bytes to the guest and waits for it to close (it has them all).
python3 - "$bytes" >"$work/host-transfers" 2>&1 <<'PY' &
import socket, sys, time
size = int(sys.argv[1])
def listener(port):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("10.99.0.1", port)); s.listen(1); s.settimeout(900); return s
tx_listener, rx_listener = listener(5001), listener(5002)
conn, _ = tx_listener.accept(); conn.settimeout(300)
got, start = 0, None
while got < size:
    data = conn.recv(65536)
    if not data: break
    start = start or time.monotonic(); got += len(data)
print(f"HOST-GOT: {got} bytes in {time.monotonic() - (start or 0):.2f} s", flush=True); conn.close()
conn, _ = rx_listener.accept(); conn.settimeout(300)
start = time.monotonic(); conn.sendall(bytes(size)); conn.shutdown(socket.SHUT_WR)
while conn.recv(4096): pass
print(f"HOST-SENT: {size} bytes in {time.monotonic() - start:.2f} s", flush=True)
PY
host_pid=$!
# shellcheck disable=SC2016  # expanded by the guest's shell
boot single '
echo "GUEST-MAC: $(cat /sys/class/net/eth0/address)"
echo "GUEST-DRIVER: $(basename "$(readlink /sys/class/net/eth0/device/driver)")"
echo "GUEST-MRG-RXBUF: $(cut -c16 /sys/class/net/eth0/device/features)"
ip link set eth0 up && ip addr add 10.99.0.2/24 dev eth0 && ping -c 3 -W 5 10.99.0.1 || exit 1
head -c '"$bytes"' /dev/zero | nc 10.99.0.1 5001
echo "GUEST-RECEIVED: $(nc 10.99.0.1 5002 | wc -c) bytes"
' --net "tap=ctap0,mac=52:54:00:12:34:56,bps=$rate"
kill "$host_pid" 2>/dev/null; wait "$host_pid" 2>/dev/null
sed 's/^/  host| /' "$work/host-transfers"
grep 'rate limit held back' "$work/single" | tr -d '\r' | sed 's/^/  single| /'
check "eth0 has the MAC given with --net" has single 'GUEST-MAC: 52:54:00:12:34:56'
check "eth0 is driven by virtio_net" has single 'GUEST-DRIVER: virtio_net'
check "the driver negotiated VIRTIO_NET_F_MRG_RXBUF" has single 'GUEST-MRG-RXBUF: 1'
check "the guest got 3 ping replies from 10.99.0.1" has single '3 packets transmitted, 3 packets received'
check "the guest command succeeded" has single 'CORRAL-EXIT: 0'
check "corral-vmm exited 0" test "$(cat "$work/single.rc")" = 0
min_seconds=$(( (bytes - rate) * 8 / rate / 10 ))   # (bytes - one second's burst) / rate, less 20%
seconds() { sed -n "s/^$1: $bytes bytes in \([0-9]*\)\..*/\1/p" "$work/host-transfers"; }
tx_s=$(seconds HOST-GOT) rx_s=$(seconds HOST-SENT)
check "the host got all $bytes bytes the guest sent" test -n "$tx_s"
check "sending them took at least $min_seconds s at bps=$rate (took ${tx_s:-?} s)" test "${tx_s:-0}" -ge "$min_seconds"
check "the guest received all $bytes bytes" has single "GUEST-RECEIVED: $bytes bytes"
check "receiving them took at least $min_seconds s (took ${rx_s:-?} s)" test "${rx_s:-0}" -ge "$min_seconds"
held=$(tr -d '\r' <"$work/single" | sed -n 's/.*rate limit held back \([0-9]*\) received and \([0-9]*\) sent frames.*/\1 \2/p')
read -r held_rx held_tx <<<"${held:-0 0}"
check "the monitor says the limit held frames back both ways (received $held_rx, sent $held_tx)" \
  test "$held_rx" -gt 0 -a "$held_tx" -gt 0
# (The neighbour entry is flushed when the tap loses its carrier at exit: count frames instead.)
check "the host's ctap0 received the guest's frames" test "$(cat /sys/class/net/ctap0/statistics/rx_packets)" -gt 0
ip -s link show ctap0 | sed 's/^/  host| /'

echo "== 2: two guests on bridge cbr0"
ip link add cbr0 type bridge
ip link set cbr0 up
for t in ctap1 ctap2; do
  ip tuntap add dev "$t" mode tap
  ip link set "$t" master cbr0
  ip link set "$t" up
done
# B stays up until it can reach A (so it outlives A's pings), then a little more.
boot guest_b '
ip link set eth0 up && ip addr add 10.99.1.3/24 dev eth0 && echo GUEST-B-UP || exit 1
for i in $(seq 600); do ping -c 1 -W 1 10.99.1.2 >/dev/null 2>&1 && { echo GUEST-B-SAW-A; sleep 20; exit 0; }; done
exit 1
' --net tap=ctap2,mac=52:54:00:00:01:03 &
b_pid=$!
for _ in $(seq 300); do has guest_b GUEST-B-UP 2>/dev/null && break; sleep 1; done
boot guest_a '
ip link set eth0 up && ip addr add 10.99.1.2/24 dev eth0 && sleep 3 && ping -c 3 -W 5 10.99.1.3
' --net tap=ctap1
wait "$b_pid"
check "guest B came up" has guest_b 'GUEST-B-UP'
check "guest B reached guest A too" has guest_b 'GUEST-B-SAW-A'
check "guest A got 3 ping replies from guest B" has guest_a '3 packets transmitted, 3 packets received'
check "guest A's command succeeded" has guest_a 'CORRAL-EXIT: 0'
check "guest B's command succeeded" has guest_b 'CORRAL-EXIT: 0'
check "corral-vmm of guest A exited 0" test "$(cat "$work/guest_a.rc")" = 0
check "corral-vmm of guest B exited 0" test "$(cat "$work/guest_b.rc")" = 0

check_summary
