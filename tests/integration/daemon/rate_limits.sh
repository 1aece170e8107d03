#!/usr/bin/env bash
# tests/integration/daemon/rate_limits.sh: a VM's disk and NIC rate limits (issue 17) through a
# real corrald on the emulated engine (QEMU), in a network namespace of its own:
#   1. refusals: a byte rate below 4096, a negative one, the wrong type, each naming the field;
#   2. a VM created with --nic-bps and started: its tap has a tbf qdisc at that rate (host to
#      guest) and an nftables limit chain (guest to host); `vm show` prints the limits;
#   3. the guest reads 8 MiB of its disk (O_DIRECT) unlimited, then --disk-bps 1M is set live
#      (`vm edit` on the running VM) and the next 8 MiB take at least 5 s (a lower bound, which
#      load cannot break: a limit only slows);
#   4. --nic-bps 0 live removes the tap's qdisc and chain; set again, then the VM stops: the
#      chain goes with the tap.
# Exit 0 all passed, 1 a check failed, 77 skipped.
set -uo pipefail
script=$(readlink -f "${BASH_SOURCE[0]}")
repo=$(cd "$(dirname "$script")/../../.." && pwd)
build_dir="${CORRAL_BUILD_DIR:-$repo/build}"
corral="$build_dir/src/cli/corral"
for tool in ip tc nft jq; do command -v "$tool" >/dev/null || { echo "SKIP: $tool is not installed"; exit 77; }; done
# shellcheck source=../../lib/netns.sh
. "$repo/tests/lib/netns.sh"
enter_own_netns "$script" "$@"
# shellcheck source=../../lib/guest.sh
. "$repo/tests/lib/guest.sh"
guest_image
# shellcheck source=../../lib/corrald.sh
. "$repo/tests/lib/corrald.sh"
cleanup() {
  corrald_failure_report disky
  [ -n "$corrald_pid" ] && api PUT /api/v1/vms/disky/state '{"action":"kill"}' && sleep 1
  corrald_stop
  rm -rf -- "$state"
}
trap cleanup EXIT
export CORRAL_SOCKET="$sock"
boot_wait=${CORRAL_BOOT_WAIT:-400}

ip link add br0 type bridge && ip link set br0 up || { echo "FAIL: cannot make a bridge in the namespace"; exit 1; }
corrald_start --default-engine emulated || exit 1
import_guest_image debian

echo "== 1: refusals"
refused() {   # refused FIELD JSON-VALUE TEXT: a create with limits.FIELD = VALUE is a 400 naming it
  api POST /api/v1/vms "{\"name\":\"bad\",\"image\":\"debian\",\"limits\":{\"$1\":$2}}"
  [ "$code" = 400 ] && [ "$(jqb .error.field)" = "limits.$1" ] && grep -q -- "$3" <<<"$(jqb .error.message)"
}
check "disk_bytes_per_s 100 is refused, naming the field and the range" refused disk_bytes_per_s 100 "from 4096"
check "nic_bytes_per_s \"10M\" (a string) is refused" refused nic_bytes_per_s '"10M"' "limits.nic_bytes_per_s"
check "disk_iops -1 is refused" refused disk_iops -1 "limits.disk_iops"
check "  ... and nothing was created" test "$(api GET /api/v1/vms/bad; echo "$code")" = 404
"$corral" vm create bad --image debian --disk-bps lots >"$state/out" 2>&1
check "corral --disk-bps lots is a usage error (exit 2)" test $? = 2 || cat "$state/out"

echo "== 2: a NIC limit from the start"
reader=$("$repo/tools/guest-image" encode-run 'echo reading-1; dd if=/dev/vda of=/dev/null bs=1M count=8 iflag=direct; echo read-1-done; sleep 20; echo reading-2; dd if=/dev/vda of=/dev/null bs=1M count=8 skip=8 iflag=direct; echo read-2-done; sleep 600')
"$corral" vm create disky --image debian --memory 256M --nic bridge=br0 --nic-bps 2M --cmdline "$reader" >"$state/out" 2>&1
check "corral vm create disky --nic-bps 2M" test $? = 0 || cat "$state/out"
"$corral" vm start disky >"$state/out" 2>&1
check "started" test $? = 0 || cat "$state/out"
tap=$(tap_of disky)
check "its tap $tap has a tbf qdisc at 2 MiB/s (host to guest)" bash -c "tc qdisc show dev $tap | grep -q 'tbf .*rate 16777Kbit'"
check "  ... and an nftables limit for what the guest sends" \
  bash -c "nft list chain netdev corral_rate $tap | grep -q 'limit rate over 2 mbytes/second'"
"$corral" vm show disky >"$state/show" 2>&1
check "vm show prints the limit (nic 2M/s)" grep -q 'nic 2M/s' "$state/show" || cat "$state/show"

echo "== 3: a disk limit set live"
check "the guest read 8 MiB unlimited" wait_console disky read-1-done "$boot_wait"
"$corral" vm edit disky --disk-bps 1M >"$state/out" 2>&1
check "corral vm edit disky --disk-bps 1M on the running VM" test $? = 0 || cat "$state/out"
check "  ... before the guest's second read began (it waits 20 s)" bash -c "! grep -q reading-2 <<<\"\$1\"" _ \
  "$(console_since_start disky)"
check "the guest starts its second read" wait_console disky reading-2 60
start=$SECONDS
check "  ... and finishes it" wait_console disky read-2-done 120
took=$((SECONDS - start))
check "  ... in at least 5 s at 1 MiB/s (took $took s)" test "$took" -ge 5
api GET /api/v1/vms/disky
check "GET /vms/disky: limits.disk_bytes_per_s 1048576" test "$(jqb .limits.disk_bytes_per_s)" = 1048576

echo "== 4: the NIC limit removed live, then set again and the VM stopped"
"$corral" vm edit disky --nic-bps 0 >"$state/out" 2>&1
check "corral vm edit disky --nic-bps 0" test $? = 0 || cat "$state/out"
check "  ... the tap's tbf qdisc is gone" bash -c "! tc qdisc show dev $tap | grep -q tbf"
check "  ... and its nftables chain" bash -c "! nft list chain netdev corral_rate $tap >/dev/null 2>&1"
"$corral" vm edit disky --nic-bps 1M >"$state/out" 2>&1
check "corral vm edit disky --nic-bps 1M: set again" \
  bash -c "nft list chain netdev corral_rate $tap | grep -q 'limit rate over 1 mbytes/second'"
"$corral" vm kill disky >"$state/out" 2>&1
check "killed" wait_state disky stopped 30
check "  ... its tap's chain went with the tap" bash -c "! nft list chain netdev corral_rate $tap >/dev/null 2>&1"
check_summary
