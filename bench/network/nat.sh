#!/usr/bin/env bash
# bench/network/nat.sh: guest to uplink TCP throughput and ping RTT through corrald's default NAT
# network, against libvirt's default NAT network, with the same guest under the same QEMU, in the
# same run (issue 11, "Benchmarks").
#
# Everything runs in network and mount namespaces this script makes (the host's interfaces,
# routes, firewall rules and libvirt, if any, are never touched):
#   its own namespace (enter_own_netns)  holds the named namespaces below;
#   crl-u-PID  "the world": 203.0.113.1 on its lo (the receiver), veth eth0 192.0.2.2/24 to
#              corrald's host and eth1 198.51.100.2/24 to libvirt's; NO route back to either
#              NAT subnet, so an answer from it proves masquerade;
#   crl-h-PID  corrald's host (emulated engine): its default network (bridge corral0, dnsmasq,
#              nftables masquerade, 10.0.100.0/24), uplink up0 192.0.2.1/24;
#   crl-l-PID  libvirt's host: libvirtd runs there in a mount namespace of its own (tmpfs on /run,
#              /var/lib, /var/cache, /var/log; a private /etc/libvirt), with libvirt's own
#              default network (default.xml: virbr0, 192.168.122.0/24, dnsmasq DHCP, iptables
#              NAT), uplink up0 198.51.100.1/24.
# The guest, the same on both sides: the test kernel and initramfs (tools/guest-image) with
# bench/virtio/guest_io.c appended, booted from the initramfs, 1 vCPU, 256 MiB, QEMU TCG, machine
# pc, cpu max, one virtio-net-pci NIC on a tap without vhost; the same kernel command line
# (corral.net=dhcp and corral.run: wait for the lease and a first answer from the world, then
# PINGS busybox pings -i 0.2 in two halves for RTT min/avg/max, then RUNS x guest_io tcpsend of
# MIB MiB to 203.0.113.1:5001, each timed by a python3 receiver in the world from accept to EOF).
# Both guests are up at once and take turns: before each step a guest waits at a gate (a TCP
# connection to the world that a controller there closes when it is that guest's turn), one guest
# works at a time, and who goes first swaps every step; so a burst of the machine's other load
# falls on both sides alike, and neither guest's idle ticks overlap the other's runs more.
# Prints per side the median (and each) TCP MiB/s and ping min/avg/max, and corral/libvirt ratios.
# Nothing here fails on a number. About 2 minutes with the defaults (two TCG boots in parallel).
# Usage: bench/network/nat.sh [--runs N] [--mib N] [--pings N] [--only corral|libvirt]
#   (defaults 9, 32, 30). Needs root, qemu-system-x86_64, gcc, cpio, dnsmasq, nft, python3, jq,
#   curl; installs libvirt-daemon, libvirt-daemon-driver-qemu, libvirt-clients and iptables
#   (--no-install-recommends) when missing, and takes libvirt's default.xml from the
#   libvirt-daemon-config-network package without installing it (its postinst would define the
#   network in the host's /etc/libvirt).
set -uo pipefail
script=$(readlink -f "${BASH_SOURCE[0]}")
repo=$(cd "$(dirname "$script")/../.." && pwd)
build_dir="${CORRAL_BUILD_DIR:-$repo/build}"
corral="$build_dir/src/cli/corral"
real_corrald="$build_dir/src/daemon/corrald"
runs=9 mib=32 pings=30 only=''
args=("$@")
# shellcheck source=../lib/options.sh
. "$repo/bench/lib/options.sh"
bench_options '[--runs N] [--mib N] [--pings N] [--only corral|libvirt]' \
  --runs=runs --mib=mib --pings=pings --only=only -- "$@"
[ "$(id -u)" = 0 ] || { echo "bench: needs root"; exit 77; }
for tool in qemu-system-x86_64 gcc cpio dnsmasq nft python3 jq curl nsenter; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is missing"; exit 77; }
done
[ -x "$real_corrald" ] && [ -x "$corral" ] || { echo "bench: build corrald and corral first (ninja -C $build_dir corrald corral)"; exit 1; }

# shellcheck source=../../tests/lib/netns.sh
. "$repo/tests/lib/netns.sh"
if ! in_own_netns "$script"; then
  # Outside the namespaces: the packages (the host's network), the guest image (may build).
  need=()
  command -v libvirtd >/dev/null || need+=(libvirt-daemon)
  [ -f /usr/lib/x86_64-linux-gnu/libvirt/connection-driver/libvirt_driver_qemu.so ] || need+=(libvirt-daemon-driver-qemu)
  command -v virsh >/dev/null || need+=(libvirt-clients)
  command -v iptables >/dev/null || need+=(iptables)
  if [ ${#need[@]} -gt 0 ]; then
    echo "bench: installing ${need[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need[@]}" >/dev/null ||
      { echo "bench: apt-get install ${need[*]} failed"; exit 1; }
  fi
  cache="${CORRAL_CACHE:-$HOME/.cache/corral}/libvirt-default-network"
  if [ ! -f /usr/share/libvirt/networks/default.xml ] && [ ! -f "$cache/default.xml" ]; then
    mkdir -p "$cache" && (cd "$cache" && apt-get download libvirt-daemon-config-network >/dev/null 2>&1 &&
      dpkg-deb --fsys-tarfile libvirt-daemon-config-network_*.deb |
      tar -xO ./usr/share/libvirt/networks/default.xml >default.xml && rm -f ./*.deb) ||
      { echo "bench: cannot get libvirt's default.xml (apt-get download libvirt-daemon-config-network)"; exit 1; }
  fi
  "$repo/tools/guest-image" >/dev/null || exit 1
  enter_own_netns "$script" "${args[@]}"
fi
enter_own_netns "$script" "${args[@]}"
default_xml=/usr/share/libvirt/networks/default.xml
[ -f "$default_xml" ] || default_xml="${CORRAL_CACHE:-$HOME/.cache/corral}/libvirt-default-network/default.xml"

# shellcheck source=../../tests/lib/guest.sh
. "$repo/tests/lib/guest.sh"
guest_image
# shellcheck source=../../tests/lib/corrald.sh
. "$repo/tests/lib/corrald.sh"
work=$(mktemp -d "${TMPDIR:-/tmp}/nat-bench.XXXXXX")
chmod 755 "$work"
hostns='' upns='' lvns="crl-l-$$" libvirtd_pid='' receiver_pid=''
cleanup() {
  [ -n "$corrald_pid" ] && api PUT /api/v1/vms/natbench/state '{"action":"kill"}'
  corrald_stop
  for pid_file in "$state"/networks/*/dnsmasq.pid; do
    [ -f "$pid_file" ] && kill "$(cat "$pid_file")" 2>/dev/null
  done
  if [ -n "$libvirtd_pid" ]; then
    virsh destroy natbench >/dev/null 2>&1
    virsh net-destroy default >/dev/null 2>&1   # ends libvirt's dnsmasq
    kill "$libvirtd_pid" 2>/dev/null
    wait "$libvirtd_pid" 2>/dev/null
  fi
  [ -n "$receiver_pid" ] && kill "$receiver_pid" 2>/dev/null
  for ns in "$lvns" "$upns" "$hostns"; do [ -n "$ns" ] && ip netns del "$ns" 2>/dev/null; done
  rm -rf -- "$state" "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
export CORRAL_SOCKET="$sock"

# ------------------------------------------------------------------ the guest
# guest_io in an extra newc archive after the test initrd (the kernel unpacks both).
mkdir -p "$work/extra/bench"
gcc -static -O2 -pthread -o "$work/extra/bench/guest_io" "$repo/bench/virtio/guest_io.c" || exit 1
cat >"$work/extra/bench/nat.sh" <<'EOF'
#!/bin/sh
# In the guest: wait for the DHCP lease and a way out; then each step (the ping, each TCP run)
# waits at the gate (the world's controller closes it when it is this guest's turn).
target=$1 pings=$2 runs=$3 mib=$4
i=0
until ping -c 1 -W 2 "$target" >/dev/null 2>&1; do
  i=$((i + 1)); [ $i -lt 300 ] || { echo "BENCH-ERROR: $target unreachable"; echo BENCH-DONE; exit 1; }; sleep 1
done
gate() {
  i=0
  until /bench/guest_io tcprecv "$target" 5002 >/dev/null 2>&1; do
    i=$((i + 1)); [ $i -lt 300 ] || { echo "BENCH-ERROR: no gate"; echo BENCH-DONE; exit 1; }; sleep 1
  done
}
# The pings in two halves, so that each side is once first (the controller swaps the order).
for half in 1 2; do
  gate
  echo "BENCH-PING: $(ping -c $(( (pings + 1) / 2 )) -i 0.2 -W 5 "$target" 2>&1 | tail -n 1)"
done
r=1
while [ $r -le "$runs" ]; do
  gate
  /bench/guest_io tcpsend "$target" 5001 "$mib" >/dev/null || echo "BENCH-ERROR: tcpsend $r"
  r=$((r + 1))
done
gate
echo "BENCH-DONE"
EOF
chmod +x "$work/extra/bench/nat.sh"
cp "$initrd" "$work/initrd.img"
size=$(stat -c %s "$work/initrd.img")
truncate -s $(( (size + 511) / 512 * 512 )) "$work/initrd.img"
(cd "$work/extra" && find bench | cpio -o -H newc --quiet) >>"$work/initrd.img" || exit 1
cp "$kernel" "$work/vmlinuz"
chmod 644 "$work/vmlinuz" "$work/initrd.img"
target=203.0.113.1
base_cmdline="console=ttyS0 quiet corral.net=dhcp corral.then=poweroff"
run_arg=$("$repo/tools/guest-image" encode-run "/bench/nat.sh $target $pings $runs $mib")
memory_mib=256

# ------------------------------------------------------------------ namespaces
netns_corrald_host
netns_uplink
ip netns add "$lvns" || { echo "bench: cannot make network namespaces"; exit 77; }
inl() { ip netns exec "$lvns" "$@"; }
inl ip link set lo up
ip link add "lv0-$$" type veth peer name "lv1-$$"
ip link set "lv0-$$" netns "$lvns"
ip link set "lv1-$$" netns "$upns"
inl ip link set "lv0-$$" name up0
inu ip link set "lv1-$$" name eth1
inl ip link set up0 up
inu ip link set eth1 up
inh ip addr add 192.0.2.1/24 dev up0
inu ip addr add 192.0.2.2/24 dev eth0
inh ip route add default via 192.0.2.2
inl ip addr add 198.51.100.1/24 dev up0
inu ip addr add 198.51.100.2/24 dev eth1
inl ip route add default via 198.51.100.2
inu ip addr add "$target/32" dev lo
inh sysctl -qw net.ipv4.ip_forward=1
inl sysctl -qw net.ipv4.ip_forward=1

# The controller, in the world. Data (:5001): each connection timed from accept to EOF, a line
# "RECV SOURCE MIBPS BYTES". Gates (:5002): a guest connects before each step and goes on when
# the controller closes the connection; the controller lets one guest at a time do a step (the
# two halves of the pings, then each TCP run), only once every side is at its first gate (both
# booted), the sides taking turns and swapping who goes first every step, so that the machine's
# load (other builds here) weighs on both alike. A side is dropped when
# $work/SIDE.failed appears or it does not come to its gate within 600 s.
cat >"$work/controller.py" <<'PY'
import os, socket, sys, threading, time
ip, work, steps = sys.argv[1], sys.argv[2], int(sys.argv[3])
sides = dict(arg.split("=") for arg in sys.argv[4:])   # source address -> side
def listener(port):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((ip, port)); s.listen(8); return s
data, gates = listener(5001), listener(5002)
def receive():
    while True:
        conn, peer = data.accept(); conn.settimeout(300)
        start, got = time.monotonic(), 0
        try:
            while True:
                chunk = conn.recv(1 << 20)
                if not chunk: break
                got += len(chunk)
        except OSError:
            pass
        elapsed = time.monotonic() - start
        conn.close()
        print(f"RECV {peer[0]} {got / elapsed / 1048576:.2f} {got}", flush=True)
threading.Thread(target=receive, daemon=True).start()
waiting = {}   # side -> its gate connection
gates.settimeout(1)
def at_gate(side):
    deadline = time.monotonic() + 600
    while side not in waiting:
        if os.path.exists(f"{work}/{side}.failed") or time.monotonic() > deadline: return None
        try:
            conn, peer = gates.accept()
        except socket.timeout:
            continue
        if peer[0] in sides: waiting[sides[peer[0]]] = conn
        else: conn.close()
    return waiting.pop(side)
order, live = list(sides.values()), set(sides.values())
for side in order:   # every guest booted and at its first gate before anyone starts
    conn = at_gate(side)
    if conn is None: print(f"GATE {side} dropped at boot", flush=True); live.discard(side)
    else: waiting[side] = conn
for step in range(steps + 1):
    for side in (order if step % 2 == 0 else order[::-1]):
        if side not in live: continue
        conn = at_gate(side)
        if conn is None:
            print(f"GATE {side} dropped at step {step}", flush=True); live.discard(side); continue
        conn.close()
        # The step is over when the guest is at its next gate (after the last: nothing to wait for).
        if step < steps:
            conn = at_gate(side)
            if conn is None:
                print(f"GATE {side} dropped after step {step}", flush=True); live.discard(side); continue
            waiting[side] = conn
print("CONTROLLER-DONE", flush=True)
PY

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR == 0) print ""; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
# collect SIDE CONSOLE_FILE SOURCE: parse a finished boot into $work/SIDE.{tcp,ping}
collect() {
  grep -a 'BENCH-ERROR' "$2" | tr -d '\r' | sed "s/^/bench: $1: /"
  # The two halves: min of the mins, mean of the averages (the same count each), max of the maxes.
  grep -a 'BENCH-PING:' "$2" | tr -d '\r' | sed -n 's|.*= \([0-9.]*\)/\([0-9.]*\)/\([0-9.]*\) ms.*|\1 \2 \3|p' |
    awk '{ if (NR == 1 || $1 < lo) lo = $1; if ($3 > hi) hi = $3; sum += $2 }
         END { if (NR == 2) printf "%.3f %.3f %.3f\n", lo, sum / NR, hi; else if (NR) print "BENCH-ERROR: " NR " ping halves" > "/dev/stderr" }' >"$work/$1.ping"
  awk -v src="$3" '$1 == "RECV" && $2 == src && $4 == '"$((mib << 20))"' { print $3 }' "$work/recv.log" >"$work/$1.tcp"
}

# qemu_args SIDE PATTERN: the running guest QEMU's accelerator, machine, CPU, memory and NIC, to show that
# both sides run the same (read from /proc: libvirt builds its own command line).
qemu_args() {
  local pid i
  for ((i = 0; i < 40; i++)); do
    pid=$(pgrep -f "qemu-system-x86_64 .*-name $2" | head -n 1)
    [ -n "$pid" ] && break
    sleep 0.5
  done
  [ -n "$pid" ] || return 0
  tr '\0' '\n' <"/proc/$pid/cmdline" |
    awk 'want { printf " %s %s", flag, $0; want = 0 } /^-(accel|M|machine|cpu|smp|m|netdev)$/ { flag = $0; want = 1 } /virtio-net-pci/ { printf " -device %s", $0 }' \
    >"$work/$1.qemu"
}

# ------------------------------------------------------------------ corral
start_corral() {
  corrald_start --default-engine emulated || return 1
  api GET /api/v1/networks/default
  echo "bench: corral: network default = $(jqb .kind) bridge $(jqb .bridge) $(jqb .subnet4)"
  api POST /api/v1/images "$(jq -n --arg k "$work/vmlinuz" --arg i "$work/initrd.img" --arg r "$rootfs" \
    --arg c "$base_cmdline" '{name: "natbench", kernel: $k, initrd: $i, root: $r, cmdline: $c}')"
  wait_task "$(jqb .task)" 120 >/dev/null || { echo "bench: corral: image import failed: $body"; return 1; }
  "$corral" vm create natbench --image natbench --cpus 1 --memory "${memory_mib}M" --cmdline "$run_arg" >/dev/null || return 1
  "$corral" vm start natbench >/dev/null || return 1
  qemu_args corral 'natbench,'
  echo "bench: corral: QEMU:$(cat "$work/corral.qemu" 2>/dev/null)"
}
finish_corral() {
  wait_console natbench BENCH-DONE 120 || echo "bench: corral: no BENCH-DONE"
  console_since_start natbench >"$work/corral.console"
  "$corral" vm kill natbench >/dev/null 2>&1
  wait_state natbench stopped 60
  collect corral "$work/corral.console" 192.0.2.1
}

# ------------------------------------------------------------------ libvirt
virsh() { nsenter --target "$libvirtd_pid" --mount --net -- virsh -q -c qemu:///system "$@"; }
start_libvirt() {
  # A private /etc/libvirt: QEMU as root without a security driver, cgroups or a /dev namespace
  # (none of them exists in the namespaces here), its output in a file (no virtlogd).
  mkdir -p "$work/etc-libvirt"
  cp -a /etc/libvirt/. "$work/etc-libvirt/"
  cat >"$work/etc-libvirt/libvirtd.conf" <<'EOF'
unix_sock_group = "root"
unix_sock_rw_perms = "0700"
auth_unix_rw = "none"
log_outputs = "3:stderr"
EOF
  cat >"$work/etc-libvirt/qemu.conf" <<'EOF'
user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
cgroup_controllers = [ ]
namespaces = [ ]
stdio_handler = "file"
EOF
  # libvirtd needs the users libvirt-daemon-system makes (libvirt-qemu: its built-in QEMU user,
  # looked up before qemu.conf is read; libvirt-dnsmasq: its dnsmasq drops to it): a private
  # /etc/passwd and /etc/group with them, when the host has none.
  local user_binds='' user uid=64055
  cp /etc/passwd "$work/passwd"; cp /etc/group "$work/group"
  for user in libvirt-qemu libvirt-dnsmasq; do
    getent passwd "$user" >/dev/null && continue
    while getent passwd "$uid" >/dev/null || getent group "$uid" >/dev/null; do uid=$((uid + 1)); done
    echo "$user:x:$uid:$uid::/var/lib/libvirt:/usr/sbin/nologin" >>"$work/passwd"
    echo "$user:x:$uid:" >>"$work/group"
    uid=$((uid + 1))
    user_binds="mount --bind $work/passwd /etc/passwd && mount --bind $work/group /etc/group &&"
  done
  # Not through inl (a function: & would fork a subshell): $! must be libvirtd itself.
  ip netns exec "$lvns" unshare --mount --propagation private -- sh -c "
    for d in /run /var/lib /var/cache /var/log; do mount -t tmpfs -o mode=755 tmpfs \$d || exit 1; done
    mkdir -p /run/libvirt /var/lib/libvirt /var/cache/libvirt /var/log/libvirt/qemu &&
    mount --bind '$work/etc-libvirt' /etc/libvirt && $user_binds
    exec libvirtd" >"$work/libvirtd.log" 2>&1 &
  libvirtd_pid=$!
  local i
  for ((i = 0; i < 120; i++)); do
    virsh version >/dev/null 2>&1 && break
    kill -0 "$libvirtd_pid" 2>/dev/null || break
    sleep 0.5
  done
  virsh version >"$work/virsh.err" 2>&1 || { echo "bench: libvirt: libvirtd did not come up (virsh: $(tail -n 2 "$work/virsh.err")); its log:"; tail -n 20 "$work/libvirtd.log"; return 1; }
  echo "bench: libvirt: $(virsh version 2>/dev/null | grep -i 'running hypervisor\|using library' | tr -s ' ' | paste -sd ';')"
  virsh net-define "$default_xml" >/dev/null && virsh net-start default >/dev/null ||
    { echo "bench: libvirt: the default network did not start; libvirtd's log:"; tail -n 20 "$work/libvirtd.log"; return 1; }
  cat >"$work/domain.xml" <<EOF
<domain type='qemu'>
  <name>natbench</name>
  <memory unit='MiB'>$memory_mib</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>$work/vmlinuz</kernel>
    <initrd>$work/initrd.img</initrd>
    <cmdline>$base_cmdline $run_arg</cmdline>
  </os>
  <features><acpi/></features>
  <cpu mode='maximum'/>
  <clock offset='utc'/>
  <on_poweroff>destroy</on_poweroff>
  <devices>
    <emulator>$(command -v qemu-system-x86_64)</emulator>
    <interface type='network'>
      <source network='default'/>
      <model type='virtio'/>
      <driver name='qemu'/>
    </interface>
    <serial type='file'><source path='$work/libvirt.console'/><target port='0'/></serial>
    <rng model='virtio'><backend model='random'>/dev/urandom</backend></rng>
    <!-- corrald's balloon, as its emulated engine asks for it (free page reporting, stats
         polled every 2 s): the same guest devices on both sides -->
    <memballoon model='virtio' autodeflate='on' freePageReporting='on'><stats period='2'/></memballoon>
    <video><model type='none'/></video>
  </devices>
</domain>
EOF
  virsh create "$work/domain.xml" >/dev/null ||
    { echo "bench: libvirt: the domain did not start; libvirtd's log:"; tail -n 20 "$work/libvirtd.log"; return 1; }
  qemu_args libvirt 'guest=natbench,'
  echo "bench: libvirt: network default = $(virsh net-dumpxml default | grep -o "bridge name='[^']*'\|ip address='[^']*'" | paste -sd ' '); its firewall: $(inl iptables-save 2>/dev/null | grep -c '^-A LIBVIRT_') iptables rules in LIBVIRT_* chains"
  echo "bench: libvirt: QEMU:$(cat "$work/libvirt.qemu" 2>/dev/null)"
}
finish_libvirt() {
  local i
  for ((i = 0; i < 120; i++)); do
    grep -aq BENCH-DONE "$work/libvirt.console" 2>/dev/null && break
    sleep 1
  done
  grep -aq BENCH-DONE "$work/libvirt.console" 2>/dev/null || echo "bench: libvirt: no BENCH-DONE"
  virsh destroy natbench >/dev/null 2>&1
  collect libvirt "$work/libvirt.console" 198.51.100.1
}

: >"$work/corral.tcp"; : >"$work/libvirt.tcp"; : >"$work/corral.ping"; : >"$work/libvirt.ping"
echo "bench: guest -> $target through NAT: $runs x $mib MiB TCP (guest_io tcpsend), ping -c $pings -i 0.2; 1 vCPU, ${memory_mib} MiB, QEMU TCG"
sides=()
[ "$only" = libvirt ] || sides+=(192.0.2.1=corral)
[ "$only" = corral ] || sides+=(198.51.100.1=libvirt)
t0=$SECONDS
# Not through inu (a function): $! must be python3 itself.
ip netns exec "$upns" python3 "$work/controller.py" "$target" "$work" "$((runs + 2))" "${sides[@]}" >"$work/recv.log" 2>&1 &
receiver_pid=$!
# Both guests boot now (the second while libvirtd starts); the controller takes them in turns.
if [ "$only" != libvirt ]; then start_corral || { echo "bench: corral: no figures"; : >"$work/corral.failed"; }; fi
if [ "$only" != corral ]; then start_libvirt || { echo "bench: libvirt: no figures"; : >"$work/libvirt.failed"; }; fi
for ((i = 0; i < 900; i++)); do
  grep -q CONTROLLER-DONE "$work/recv.log" && break
  kill -0 "$receiver_pid" 2>/dev/null || break
  sleep 1
done
grep GATE "$work/recv.log" | sed 's/^/bench: /'
grep -q CONTROLLER-DONE "$work/recv.log" || { echo "bench: the controller did not finish; its output:"; tail -n 5 "$work/recv.log"; }
echo "bench: boots and measurements took $((SECONDS - t0)) s"
[ -e "$work/corral.failed" ] || [ "$only" = libvirt ] || finish_corral
[ -e "$work/libvirt.failed" ] || [ "$only" = corral ] || finish_libvirt

# ------------------------------------------------------------------ report
printf '\n%-8s %10s %22s  %s\n' '' 'TCP MiB/s' 'ping min/avg/max ms' 'TCP, each run'
for side in corral libvirt; do
  tcp=$(median <"$work/$side.tcp") ping=$(cat "$work/$side.ping")
  printf '%-8s %10s %22s  %s\n' "$side" "${tcp:--}" "$(tr ' ' / <<<"${ping:--}")" "$(paste -sd ' ' "$work/$side.tcp")"
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b == 0) print "-"; else printf "%.2f", a / b }'; }
ct=$(median <"$work/corral.tcp" 2>/dev/null) lt=$(median <"$work/libvirt.tcp" 2>/dev/null)
read -r cmin cavg cmax <"$work/corral.ping" 2>/dev/null
read -r lmin lavg lmax <"$work/libvirt.ping" 2>/dev/null
echo "corral/libvirt: TCP $(ratio "$ct" "$lt")x (higher is better); RTT min $(ratio "${cmin:-}" "${lmin:-}")x avg $(ratio "${cavg:-}" "${lavg:-}")x max $(ratio "${cmax:-}" "${lmax:-}")x (lower is better)"
