#!/usr/bin/env bash
# tests/e2e/daemon_bridge.sh: a VM's bridge NIC through corrald, with a real Linux guest, in a
# network namespace of its own. The script re-runs itself under `unshare --net --mount`, mounts
# a sysfs of that namespace on /sys and makes bridge br0 (10.77.0.1/24) there; the host's own
# network is never touched. A real corrald (temporary state folder) imports the project's guest
# image and runs VM web1 on the host's default engine (QEMU TCG here) with `--nic bridge=br0`
# and a fixed MAC.
#
# Checks: `corral vm show` and the API report the NIC (bridge, MAC), the metrics API names its
# tap (crlXXXXXXXXn0); on the host the tap exists, is UP and enslaved to br0; in the guest
# (commands typed through `corral vm console`) eth0 has that MAC and pings 10.77.0.1; the host
# pings 10.77.0.2 and its bridge learned the guest's MAC on the tap; the VM's metrics count rx
# and tx bytes on the tap; a corrald restarted while the VM runs adopts it and still removes
# the tap when the VM stops; a VM that died while corrald was down has its tap removed by the
# next corrald and starts again; after stop and delete no tap is left. Errors: `--nic bridge=nosuchbr`
# is refused with 400 naming nics[0].bridge and creates nothing; a VM whose bridge vanished
# before start fails to start with a reason naming the bridge and leaves no tap behind.
# Needs root, unshare (util-linux), ip (iproute2), qemu-system-x86_64, jq, curl.
# Exit 0 all passed, 1 a check failed, 77 skipped (reason printed).
set -uo pipefail
script=$(readlink -f "${BASH_SOURCE[0]}")
repo=$(cd "$(dirname "$script")/../.." && pwd)
build_dir="${CORRAL_BUILD_DIR:-$repo/build}"
corral="$build_dir/src/cli/corral"

# shellcheck source=../lib/netns.sh
. "$repo/tests/lib/netns.sh"
if ! in_own_netns "$script"; then
  [ "$(id -u)" = 0 ] || { echo "SKIP: needs root (a network namespace, a bridge, taps)"; exit 77; }
  for tool in unshare ip jq curl qemu-system-x86_64; do
    command -v "$tool" >/dev/null || { echo "SKIP: $tool is not installed"; exit 77; }
  done
  unshare --net --mount true 2>/dev/null || { echo "SKIP: unshare --net --mount is not permitted here"; exit 77; }
  for bin in "$build_dir/src/daemon/corrald" "$corral"; do
    [ -x "$bin" ] || { echo "FAIL: $bin is not built"; exit 1; }
  done
  # The guest image is built (or found in the cache) out here: the new namespace has no network.
  kernel="" initrd="" rootfs=""
  eval "$("$repo/tools/guest-image" | grep -E '^(kernel|initrd|rootfs)=')"
  [ -n "$rootfs" ] || { echo "FAIL: tools/guest-image did not build rootfs.img"; exit 1; }
  export kernel initrd rootfs
fi
enter_own_netns "$script" "$@"
# ---- inside the new network and mount namespaces (lo is up, /sys is theirs)
ip link add br0 type bridge && ip addr add 10.77.0.1/24 dev br0 && ip link set br0 up ||
  { echo "SKIP: cannot create bridge br0 in the namespace (bridge module?)"; exit 77; }
[ -c /dev/net/tun ] || { echo "SKIP: no /dev/net/tun"; exit 77; }

# shellcheck source=../lib/corrald.sh
. "$repo/tests/lib/corrald.sh"
vm_pid=""
cleanup() {
  if [ -n "$corrald_pid" ]; then
    for vm in web1 lost; do api PUT "/api/v1/vms/$vm/state" '{"action":"kill"}'; done
    sleep 1
  fi
  corrald_stop
  [ -n "$vm_pid" ] && kill -KILL "$vm_pid" 2>/dev/null
  rm -rf -- "$state"
}
trap cleanup EXIT
export CORRAL_SOCKET="$sock"
boot_wait=150   # seconds; TCG on a busy 2-core host
mac=52:54:00:77:00:02

type_in_console() {   # type_in_console LINE: types LINE (and Enter) on web1's console
  printf '%s\n' "$1" | timeout 30 "$corral" vm console web1 >>"$state/console.out" 2>&1
}
link_json() { ip -j link show "$1" 2>/dev/null | jq -c '.[0]'; }
tap_up_on_br0() {
  local link; link=$(link_json "$tap")
  [ "$(jq -r .master <<<"$link")" = br0 ] && jq -e '.flags | index("UP")' <<<"$link" >/dev/null
}
no_link() { ! ip link show "$1" >/dev/null 2>&1; }
crl_links() { ip -j link show | jq -r '[.[].ifname | select(startswith("crl"))] | join(" ")'; }
host_ping() {   # the host's ping, else the busybox tools/guest-image fetched
  local bb; bb="$(dirname "$(dirname "$kernel")")/busybox/busybox"
  if command -v ping >/dev/null; then ping -c 3 -W 5 "$1"; elif [ -x "$bb" ]; then "$bb" ping -c 3 -W 5 "$1"; else return 2; fi
}
started=$SECONDS

corrald_start || exit 1

echo "== image and VM on bridge br0"
import_guest_image debian

echo "== errors: a bridge that does not exist"
"$corral" vm create bad --image debian --nic bridge=nosuchbr >"$state/out" 2>&1
status=$?
check "corral vm create bad --nic bridge=nosuchbr fails (exit $status)" test "$status" -ne 0
check "  ... saying which field and which bridge: $(head -n1 "$state/out")" \
  grep -q 'nics\[0\].bridge.*nosuchbr' "$state/out"
api POST /api/v1/vms '{"name":"bad","image":"debian","nics":[{"bridge":"nosuchbr"}]}'
check "POST /vms with nics[0].bridge nosuchbr: 400 ($code)" test "$code" = 400
check "  ... the error names the field ($(jqb .error.field))" test "$(jqb .error.field)" = 'nics[0].bridge'
api GET /api/v1/vms/bad
check "  ... no VM was created ($code)" test "$code" = 404
api GET /api/v1/volumes/default/bad-root
check "  ... nor its root volume ($code)" test "$code" = 404
"$corral" vm create web1 --image debian --cpus 1 --memory 256M --nic "bridge=br0,mac=$mac" >"$state/out" 2>&1
check "corral vm create web1 --nic bridge=br0,mac=$mac" test $? = 0
"$corral" vm show web1 >"$state/show" 2>&1
check "corral vm show web1 lists the NIC (bridge=br0,mac=$mac)" grep -qF "bridge=br0,mac=$mac" "$state/show"
api GET /api/v1/vms/web1
check "the API reports the NIC: $(jq -c .nics <<<"$body")" test "$(jqb '.nics[0].bridge + " " + .nics[0].mac')" = "br0 $mac"
check "  ... no tap exists before the VM starts" test -z "$(crl_links)"

echo "== start and console"
"$corral" vm start web1 >"$state/out" 2>&1
check "corral vm start web1" test $? = 0
api GET /api/v1/vms/web1
check "state running on the $(jqb .engine) engine" test "$(jqb .state)" = running
vm_pid=$(jqb .pid)
api GET /api/v1/vms/web1/metrics
tap=$(jqb '.nics[0].tap')
check "the metrics API names the NIC's tap ($tap)" grep -qE '^crl[0-9a-f]{8}n0$' <<<"$tap"
check "on the host, $tap exists, is UP and its master is br0 ($(link_json "$tap" | jq -c '{master, flags}'))" tap_up_on_br0
check "the console reaches a shell prompt" wait_console web1 'corral:~# ' "$boot_wait"
echo "   (booted in $((SECONDS - started)) s since corrald started)"

echo "== traffic across br0"
# The markers are computed in the guest so the echo of the typed line cannot match them.
type_in_console 'echo GUEST-MAC=$(cat /sys/class/net/eth0/address); ip link set eth0 up; ip addr add 10.77.0.2/24 dev eth0; ping -c 3 -W 5 10.77.0.1 && echo PING-OK-$((40+2))'
check "the guest's eth0 has MAC $mac" wait_console web1 "GUEST-MAC=$mac" 60
check "the guest pings 10.77.0.1 (3 replies)" wait_console web1 '3 packets transmitted, 3 packets received' 60
check "  ... and prints the marker" wait_console web1 'PING-OK-42' 10
host_ping 10.77.0.2 >"$state/ping" 2>&1
status=$?
if [ "$status" = 2 ]; then
  echo "NOTE: no ping on the host (and no cached busybox): host -> guest ping not checked"
else
  check "the host pings 10.77.0.2" test "$status" = 0
fi
check "br0 learned the guest's MAC on $tap" \
  bash -c "bridge -j fdb show br br0 | jq -e --arg m '$mac' --arg t '$tap' 'any(.[]; .mac == \$m and .ifname == \$t)' >/dev/null"
api GET /api/v1/vms/web1/metrics
nic=$(jq -c '.nics[0]' <<<"$body")
check "metrics on $tap: rx_bytes $(jq .rx_bytes <<<"$nic") > 0, tx_bytes $(jq .tx_bytes <<<"$nic") > 0" \
  bash -c "jq -e '.rx_bytes > 0 and .tx_bytes > 0 and .rx_packets > 0 and .tx_packets > 0' <<<'$nic' >/dev/null"

echo "== corrald restarts while the VM runs; the VM's stop still removes its tap"
corrald_stop
check "stopping corrald left the VM running and $tap in place" bash -c "kill -0 $vm_pid && ip link show $tap >/dev/null"
corrald_start || exit 1
api GET /api/v1/vms/web1
check "the new corrald adopted it ($(jqb .state): $(jqb .state_reason))" test "$(jqb .state)" = running -a "$(jqb .pid)" = "$vm_pid"
"$corral" vm stop web1 --timeout 60 >"$state/out" 2>&1
check "corral vm stop web1" test $? = 0
api GET /api/v1/vms/web1
check "  ... stopped ($(jqb .state): $(jqb .state_reason))" test "$(jqb .state)" = stopped
check "  ... the VM process is gone" bash -c "! kill -0 $vm_pid 2>/dev/null"
vm_pid=""
check "  ... and its tap $tap is gone" no_link "$tap"
echo "== the VM dies while corrald is down; the next corrald removes its tap and it starts again"
"$corral" vm start web1 >"$state/out" 2>&1
check "corral vm start web1 (no boot wait)" test $? = 0
api GET /api/v1/vms/web1
vm_pid=$(jqb .pid)
corrald_stop
kill -KILL "$vm_pid"
for ((i = 0; i < 50; i++)); do kill -0 "$vm_pid" 2>/dev/null || break; sleep 0.2; done
sleep 1   # its shim writes exit.json
vm_pid=""
check "the killed VM's tap outlived it while corrald was down" bash -c "ip link show $tap >/dev/null"
corrald_start || exit 1
api GET /api/v1/vms/web1
check "the new corrald sees it ended ($(jqb .state): $(jqb .state_reason))" test "$(jqb .state)" = crashed
check "  ... and removed its tap" no_link "$tap"
"$corral" vm start web1 >"$state/out" 2>&1
check "  ... so it starts again: $(head -n1 "$state/out")" test $? = 0
api GET /api/v1/vms/web1
vm_pid=$(jqb .pid)
check "  ... with its tap on br0 again" tap_up_on_br0
"$corral" vm stop web1 --force >"$state/out" 2>&1
check "corral vm stop web1 --force" test $? = 0
vm_pid=""
check "  ... its tap is gone" no_link "$tap"
"$corral" vm delete web1 --volumes >"$state/out" 2>&1
check "corral vm delete web1 --volumes" test $? = 0
check "no crl* link is left (found: '$(crl_links)')" test -z "$(crl_links)"

echo "== errors: the bridge vanished between create and start"
ip link add br1 type bridge && ip link set br1 up
"$corral" vm create lost --image debian --memory 128M --nic bridge=br1 >"$state/out" 2>&1
check "corral vm create lost --nic bridge=br1" test $? = 0
ip link del br1
before=$(crl_links)
"$corral" vm start lost >"$state/out" 2>&1
status=$?
check "corral vm start lost fails (exit $status): $(tr '\n' ' ' <"$state/out" | cut -c1-160)" test "$status" -ne 0
api GET /api/v1/vms/lost
check "  ... state failed, the reason names br1 ($(jqb .state): $(jqb .state_reason))" \
  bash -c "[ '$(jqb .state)' = failed ] && grep -q br1 <<<'$(jqb .state_reason)'"
check "  ... no VM process ($(jqb .pid))" test "$(jqb .pid)" = null
check "  ... and no half-created tap is left (crl* links: '$(crl_links)')" test "$(crl_links)" = "$before"
"$corral" vm delete lost --volumes >"$state/out" 2>&1
check "corral vm delete lost --volumes" test $? = 0

echo "$passed passed, $failed failed ($((SECONDS - started)) s)"
[ "$failed" -eq 0 ]
