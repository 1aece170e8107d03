#!/usr/bin/env bash
# tests/e2e/network_vms.sh: VMs on corrald's managed networks, with real Linux guests (the default
# image, which configures its NIC by DHCP: corral.net=dhcp), real dnsmasq and real nft. The script
# re-runs itself under `unshare --net --mount` with a sysfs of that namespace: corrald's bridges,
# dnsmasq and nftables tables are made there, never in the host's namespace. A namespace "uplink"
# (192.0.2.2, with no route back to the VMs' subnets) stands for the outside world.
#
# Checks: the default network exists from the first start; two VMs created without --nic are put
# on it, `corral vm list` and `vm show` show their fixed addresses, they get them by DHCP, resolve each other by name over the network's DNS and
# ping each other, and reach the uplink through NAT; a security group put on the running a2 lets a1's
# nc reach its port 22 and not 80, a rule added live opens 80, and `corral network trace` names the
# rule that decides; a VM on an isolated network gets a lease but
# cannot reach the uplink; deleting a network in use is a 409; dnsmasq killed is started again
# and the leases survive; a corrald restart with the VMs up keeps them connected and the nftables
# ruleset byte-identical.
# The guest image is built into a cache folder of its own (its init differs from other
# branches'), seeded with hard links to the .deb files of the shared cache.
# Needs root, unshare, ip, nft, dnsmasq, qemu-system-x86_64, jq, curl. Exit 0/1/77.
set -uo pipefail
script=$(readlink -f "${BASH_SOURCE[0]}")
repo=$(cd "$(dirname "$script")/../.." && pwd)
build_dir="${CORRAL_BUILD_DIR:-$repo/build}"
corral="$build_dir/src/cli/corral"

# shellcheck source=../lib/netns.sh
. "$repo/tests/lib/netns.sh"
if ! in_own_netns "$script"; then
  [ "$(id -u)" = 0 ] || { echo "SKIP: needs root (network namespaces, bridges, taps, nftables)"; exit 77; }
  for tool in unshare ip nft dnsmasq jq curl qemu-system-x86_64; do
    command -v "$tool" >/dev/null || { echo "SKIP: $tool is not installed"; exit 77; }
  done
  unshare --net --mount true 2>/dev/null || { echo "SKIP: unshare --net --mount is not permitted here"; exit 77; }
  for bin in "$build_dir/src/daemon/corrald" "$corral"; do
    [ -x "$bin" ] || { echo "FAIL: $bin is not built"; exit 1; }
  done
  shared="${CORRAL_CACHE:-$HOME/.cache/corral}/guest"
  own="${CORRAL_CACHE:-$HOME/.cache/corral}/guest-$(sha256sum <"$repo/guests/initramfs/init" | cut -c1-12)"
  if [ -d "$shared/debs" ] && [ ! -d "$own/debs" ]; then
    mkdir -p "$own/debs" && cp -al "$shared/debs/." "$own/debs/" 2>/dev/null
  fi
  kernel="" initrd="" rootfs=""
  eval "$("$repo/tools/guest-image" --cache "$own" | grep -E '^(kernel|initrd|rootfs)=')"
  [ -n "$rootfs" ] || { echo "FAIL: tools/guest-image did not build rootfs.img"; exit 1; }
  export kernel initrd rootfs
fi
enter_own_netns "$script" "$@"
# ---- inside the new network and mount namespaces (lo is up, /sys is theirs)
mkdir -p /run/netns && mount -t tmpfs tmpfs /run/netns || { echo "FAIL: cannot mount /run/netns"; exit 1; }
[ -c /dev/net/tun ] || { echo "SKIP: no /dev/net/tun"; exit 77; }
ip netns add uplink || { echo "SKIP: cannot make the uplink namespace"; exit 77; }
ip link add up0 type veth peer name eth0 netns uplink
ip addr add 192.0.2.1/24 dev up0 && ip link set up0 up
ip -n uplink addr add 192.0.2.2/24 dev eth0 && ip -n uplink link set eth0 up && ip -n uplink link set lo up
ip route add default via 192.0.2.2
sysctl -qw net.ipv4.ip_forward=1

# shellcheck source=../lib/corrald.sh
. "$repo/tests/lib/corrald.sh"
vms=(a1 a2 b1)
cleanup() {
  if [ -n "$corrald_pid" ]; then
    for vm in "${vms[@]}"; do api PUT "/api/v1/vms/$vm/state" '{"action":"kill"}'; done
    sleep 1
  fi
  corrald_stop
  for pid_file in "$state"/networks/*/dnsmasq.pid; do
    [ -f "$pid_file" ] && kill "$(cat "$pid_file")" 2>/dev/null
  done
  corrald_hosts_lists_cleanup
  rm -rf -- "$state"
}
trap cleanup EXIT
export CORRAL_SOCKET="$sock" CORRALD_DEFAULT_NETWORK=1
boot_wait=240   # seconds; TCG on a busy 2-core host, two guests at once

type_in() {   # type_in VM LINE: types LINE (and Enter) on VM's console
  printf '%s\n' "$2" | timeout 30 "$corral" vm console "$1" >>"$state/console-$1.out" 2>&1
}

corrald_start || exit 1
api GET /api/v1/networks/default
check "the default network exists from the first start ($(jqb .subnet4) on $(jqb .bridge))" test "$code" = 200

import_guest_image debian

echo "== two VMs on the default network"
for vm in a1 a2; do
  "$corral" vm create "$vm" --image debian --memory 256M >"$state/out" 2>&1
  check "corral vm create $vm (no --nic)" test $? = 0 || cat "$state/out"
done
api GET /api/v1/networks/default
check "  ... both are on the default network" test "$(jqb '.vms | join(",")')" = a1,a2
"$corral" vm list >"$state/list" 2>&1
check "corral vm list shows their addresses (10.0.100.2, 10.0.100.3)" \
  bash -c "grep -Eq '^a1 .* 10\.0\.100\.2\$' '$state/list' && grep -Eq '^a2 .* 10\.0\.100\.3\$' '$state/list'" || cat "$state/list"
"$corral" vm show a1 >"$state/show" 2>&1
check "corral vm show a1 names its NIC's network and address" grep -q 'network=default,mac=52:54:00:[0-9a-f:]*,ipv4=10.0.100.2' "$state/show" \
  || cat "$state/show"
api DELETE /api/v1/networks/default
check "deleting the default network while VMs use it: 409 ($(jqb .error.message))" test "$code" = 409
starts=()
for vm in a1 a2; do "$corral" vm start "$vm" >/dev/null 2>&1 & starts+=($!); done
wait "${starts[@]}"   # not a bare wait: corrald is a background job of this shell too
check "a1 got 10.0.100.2 by DHCP" wait_console a1 'CORRAL-NET: eth0 10.0.100.2/24' "$boot_wait"
check "a2 got 10.0.100.3 by DHCP" wait_console a2 'CORRAL-NET: eth0 10.0.100.3/24' "$boot_wait"
check "  ... a shell on a1" wait_console a1 'corral:~# ' 60
type_in a1 'ping -c 2 -W 5 a2 && echo PING-NAME-$((40+2))'
check "a1 pings a2 by name" wait_console a1 'PING-NAME-42' 60
type_in a1 'ping -c 2 -W 5 192.0.2.2 && echo PING-UPLINK-$((40+3))'
check "a1 reaches the uplink through NAT" wait_console a1 'PING-UPLINK-43' 60
api GET /api/v1/networks/default/leases
check "GET /networks/default/leases lists both ($(jqb '[.[].ipv4] | join(" ")'))" \
  test "$(jqb '[.[].ipv4] | join(" ")')" = "10.0.100.2 10.0.100.3"

echo "== a security group between the two guests, changed live"
"$corral" sg create ssh >/dev/null 2>&1 && "$corral" sg rule-add ssh --protocol tcp --port 22 >"$state/out" 2>&1
check "corral sg create ssh; rule-add ssh --protocol tcp --port 22" test $? = 0 || cat "$state/out"
"$corral" sg set-nic a2 ssh >"$state/out" 2>&1
check "corral sg set-nic a2 ssh, a2 running" test $? = 0 || cat "$state/out"
check "  ... a shell on a2" wait_console a2 'corral:~# ' 60
type_in a2 'busybox nc -ll -p 22 -e /bin/true & busybox nc -ll -p 80 -e /bin/true & echo LISTENING-$((40+10))'
check "  ... a2 listens on 22 and 80 (busybox nc)" wait_console a2 'LISTENING-50' 60
type_in a1 'busybox nc -w 3 10.0.100.3 22 </dev/null && echo NC22-OPEN-$((40+11)); busybox nc -w 3 10.0.100.3 80 </dev/null || echo NC80-SHUT-$((40+12))'
check "a1's nc reaches a2's port 22 (group ssh allows it)" wait_console a1 'NC22-OPEN-51' 60
check "  ... and not its port 80" wait_console a1 'NC80-SHUT-52' 60
out=$("$corral" network trace default --from a1 --to a2 --port 80/tcp 2>&1)
check "corral network trace: 80/tcp dropped, and by what ($out)" bash -c '[[ "$1" == *dropped*in_ssh* ]]' _ "$out"
"$corral" sg rule-add ssh --protocol tcp --port 80 >/dev/null 2>&1
type_in a1 'busybox nc -w 3 10.0.100.3 80 </dev/null && echo NC80-OPEN-$((40+13))'
check "a rule added live: a1 reaches a2's port 80 at once" wait_console a1 'NC80-OPEN-53' 60
out=$("$corral" network trace default --from a1 --to a2 --port 80/tcp 2>&1)
check "  ... and trace names that rule ($out)" bash -c '[[ "$1" == *allowed*"group ssh rule 1"* ]]' _ "$out"
# a2 keeps the group: the restart below must give the same ruleset with groups in it.

echo "== an isolated network"
"$corral" network create iso --kind isolated --subnet 10.0.130.0/24 >"$state/out" 2>&1
check "corral network create iso --kind isolated" test $? = 0 || cat "$state/out"
"$corral" vm create b1 --image debian --memory 256M --nic network=iso >"$state/out" 2>&1
check "corral vm create b1 --nic network=iso" test $? = 0 || cat "$state/out"
"$corral" vm start b1 >/dev/null 2>&1
check "b1 got 10.0.130.2 by DHCP" wait_console b1 'CORRAL-NET: eth0 10.0.130.2/24' "$boot_wait"
check "  ... a shell on b1" wait_console b1 'corral:~# ' 60
type_in b1 'nslookup b1 10.0.130.1 | grep -q 10.0.130.2 && echo DNS-OK-$((40+4)); ip route add default via 10.0.130.1; ping -c 2 -W 3 192.0.2.2 || echo NO-UPLINK-$((40+5))'
check "b1's name resolves on the isolated network's DNS" wait_console b1 'DNS-OK-44' 60
check "  ... but not the uplink, even with a route" wait_console b1 'NO-UPLINK-45' 60

echo "== dnsmasq killed"
api GET /api/v1/networks/default
old=$(jqb .status.dnsmasq.pid)
kill -9 "$old"
sleep 2
api GET /api/v1/networks/default
check "a new dnsmasq runs ($old -> $(jqb .status.dnsmasq.pid))" test "$(jqb .status.dnsmasq.pid)" != "$old"
api GET /api/v1/networks/default/leases
check "  ... the leases survived" test "$(jqb length)" = 2

echo "== corrald restarted with the VMs up"
nft list ruleset >"$state/ruleset.before"
corrald_stop
corrald_start || exit 1
nft list ruleset >"$state/ruleset.after"
check "the nftables ruleset is byte-identical" cmp -s "$state/ruleset.before" "$state/ruleset.after" \
  || diff "$state/ruleset.before" "$state/ruleset.after" | head
type_in a2 'ping -c 2 -W 5 a1 && echo PING-AFTER-$((40+6))'
check "a2 still pings a1 by name" wait_console a2 'PING-AFTER-46' 60

echo "passed: $passed, failed: $failed"
[ "$failed" = 0 ]
