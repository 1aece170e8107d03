#!/usr/bin/env bash
# tests/integration/daemon/snapshot_clone.sh: `corral vm clone VM NEW --from-snapshot S` (issue 12,
# docs/api.md "Clones from a snapshot"). A real corrald, the project's guest on the emulated engine (QEMU
# TCG) with a NIC on a bridge, in a network namespace of the test's own. The guest's shell sets a
# variable; a snapshot of the running VM is taken and aged 20 s; two clones start from it. Each
# clone's shell still has the variable (memory), its NIC shows the clone's new MAC (not the
# original's: the guest probed a fresh device), its /dev/urandom gives other bytes than the other
# clone's (the RNG was reseeded: a new VM generation ID), its clock was stepped to the host's
# (within 5 s, though the snapshot is 20 s old); the original runs on with its own MAC; a file
# written in a clone is not in the original's disk; a revert of the original steps its clock too,
# also after a backup left its disk a dirty bitmap (which QEMU's -loadvm refuses: corrald drops it).
# Refusals: unknown VM (404 vm), unknown
# snapshot (404 snapshot), a taken name (409 name), a disk-only snapshot (409), nothing left of
# them; a clone that fails (from a snapshot of the guest's first seconds, whose NIC it does not
# release) leaves no process, record, disk or run folder. Exit 0 all passed, 1 a check failed, 77 skipped.
set -uo pipefail
script=$(readlink -f "${BASH_SOURCE[0]}")
repo=$(cd "$(dirname "$script")/../../.." && pwd)
build_dir="${CORRAL_BUILD_DIR:-$repo/build}"
corral="$build_dir/src/cli/corral"

# shellcheck source=../../lib/netns.sh
. "$repo/tests/lib/netns.sh"
if ! in_own_netns "$script"; then
  for tool in unshare ip jq curl qemu-img; do
    command -v "$tool" >/dev/null || { echo "SKIP: $tool is not installed"; exit 77; }
  done
  # The guest image is built (or found in the cache) out here: the new namespace has no network.
  # shellcheck source=../../lib/guest.sh
  . "$repo/tests/lib/guest.sh"
  guest_image
  export kernel initrd rootfs
fi
enter_own_netns "$script" "$@"
# ---- inside the new network and mount namespaces
ip link add br0 type bridge && ip link set br0 up ||
  { echo "SKIP: cannot create bridge br0 in the namespace (bridge module?)"; exit 77; }
[ -c /dev/net/tun ] || { echo "SKIP: no /dev/net/tun"; exit 77; }

# shellcheck source=../../lib/corrald.sh
. "$repo/tests/lib/corrald.sh"
cleanup() {
  [ "$failed" -gt 0 ] && corrald_failure_report orig c1 c2
  if [ -n "$corrald_pid" ]; then
    for vm in orig c1 c2 x0; do api PUT "/api/v1/vms/$vm/state" '{"action":"kill"}'; done
    sleep 1
  fi
  corrald_stop
  rm -rf -- "$state"
}
trap cleanup EXIT
export CORRAL_SOCKET="$sock"

type_line() { printf '%s\n' "$2" | timeout 30 "$corral" vm console "$1" >/dev/null 2>&1; }
# The value a guest printed as "TAG: VALUE" on its console since its start.
said() { console_since_start "$1" | sed -n "s/^$2: //p" | tail -n1; }

corrald_start --default-engine emulated || exit 1
import_guest_image guest "console=ttyS0 panic=-1"
# on-failure: a clone takes its source's restart policy, and a failed clone must not come back.
api POST /api/v1/vms '{"name": "orig", "image": "guest", "memory_mib": 256, "restart_policy": "on-failure",
  "cmdline": "corral.root=/dev/vda corral.then=shell", "nics": [{"bridge": "br0"}]}'
check "VM orig defined with a NIC on br0" test "$code" = 201
orig_mac=$(jqb '.nics[0].mac')

echo "== a clone that fails leaves nothing: from a snapshot of the guest's first seconds"
"$corral" vm start orig >/dev/null 2>&1
# Its kernel has not set up PCI hot-unplug yet: the clone's guest does not release its NIC, and
# the clone fails after 60 s (docs/api.md), while orig boots on.
api POST /api/v1/vms/orig/snapshots '{"name": "s0"}'
wait_task "$(jqb .task)" 60
check "a snapshot s0 of orig in its first seconds" test "$(jqb .status)" = succeeded
api POST /api/v1/vms/orig/snapshots/s0/clone '{"name": "x0"}'
x0_task=$(jqb .task)
check "  ... a clone x0 of it starts: 202" test "$code" = 202
check "orig reaches its shell" wait_console orig 'corral:~# ' 240
wait_task "$x0_task" 180
check "x0's task failed: its guest did not release nic0" \
  bash -c '[ "$1" = failed ] && grep -q "did not release nic0" <<<"$2"' _ "$(jqb .status)" "$(jqb .error)" ||
  echo "$body"
check "  ... no process of x0's is left" test -z "$(pgrep -af -- "$state/run/x0"; corrald_processes | grep '^vm x0 ')"
api GET /api/v1/vms/x0
check "  ... x0 is not listed" test "$code" = 404
api GET /api/v1/volumes
check "  ... its disk copies are gone, and its run folder" \
  test "$(jqb '[.[] | select(.name | startswith("x0"))] | length')" = 0 -a ! -e "$state/run/x0"
type_line orig 'SECRET=kept-$((40+2)); echo "MAC: $(cat /sys/class/net/eth0/address)"'
check "orig's guest shows its MAC $orig_mac" wait_until 60 test "$(said orig MAC)" = "$orig_mac"
"$corral" vm snapshot create orig s1 >"$state/out" 2>&1
check "corral vm snapshot create orig s1" test $? = 0 || cat "$state/out"
api POST /api/v1/vms/orig/snapshots '{"name": "d1", "disk_only": true}'
wait_task "$(jqb .task)" 60
check "a disk-only snapshot d1 too" test "$(jqb .status)" = succeeded
sleep 20   # the snapshot's clock falls 20 s behind the host's

echo "== refusals"
api POST /api/v1/vms/nope/snapshots/s1/clone '{"name": "x1"}'
check "an unknown VM: 404 naming vm" test "$code,$(jqb .error.field)" = 404,vm
api POST /api/v1/vms/orig/snapshots/nope/clone '{"name": "x1"}'
check "an unknown snapshot: 404 naming snapshot" test "$code,$(jqb .error.field)" = 404,snapshot
api POST /api/v1/vms/orig/snapshots/s1/clone '{"name": "orig"}'
check "a taken name: 409 naming name" test "$code,$(jqb .error.field)" = 409,name
api POST /api/v1/vms/orig/snapshots/d1/clone '{"name": "x1"}'
check "a disk-only snapshot: 409 saying there is no memory state" \
  bash -c '[ "$1" = 409 ] && grep -q "no memory state to clone from" <<<"$2"' _ "$code" "$body"
api GET /api/v1/vms/x1
check "  ... and no VM x1 was made" test "$code" = 404

echo "== two clones"
t0=$(date +%s%N)
"$corral" vm clone orig c1 --from-snapshot s1 >"$state/out" 2>&1
check "corral vm clone orig c1 --from-snapshot s1" test $? = 0 || cat "$state/out"
echo "   measured: the clone (copy, -loadvm, NIC replaced) took $(( ($(date +%s%N) - t0) / 1000000 )) ms through the CLI"
check "  ... says what it did" grep -q "c1 is running, cloned from snapshot s1 of orig" "$state/out" || cat "$state/out"
api POST /api/v1/vms/orig/snapshots/s1/clone '{"name": "c2"}'
check "POST .../s1/clone {name: c2}: 202 with a task" test "$code" = 202
wait_task "$(jqb .task)" 120
check "  ... the task succeeded" test "$(jqb .status)" = succeeded || echo "$body"
for vm in c1 c2; do
  api GET "/api/v1/vms/$vm"
  mac=$(jqb '.nics[0].mac')
  check "$vm runs with a MAC of its own ($mac)" test "$(jqb .state)" = running -a "$mac" != "$orig_mac"
  check "  ... its guest was stepped to the host's clock" wait_console "$vm" 'CORRAL-INIT: clock stepped by' 30
  type_line "$vm" 'echo "VAR: $SECRET"; echo "MAC: $(cat /sys/class/net/eth*/address)"; echo "NOW: $(date +%s)"; echo "RAND: $(head -c 16 /dev/urandom | od -An -tx1 | tr -d " \n")"'
  check "  ... its shell has the variable set before the snapshot" wait_until 60 test "$(said "$vm" VAR)" = kept-42
  check "  ... its guest's NIC has the new MAC" test "$(said "$vm" MAC)" = "$mac"
  skew=$(( $(said "$vm" NOW) - $(date +%s) ))
  check "  ... its clock is the host's (off by $skew s)" test "${skew#-}" -le 5
done
check "the two clones read different bytes from /dev/urandom" test "$(said c1 RAND)" != "$(said c2 RAND)"
api GET /api/v1/vms/c1/snapshots
check "a clone has no snapshots of its own" test "$(jqb length)" = 0

echo "== the original, and independent disks"
type_line c1 'echo from-c1 >/marker; sync; echo "WROTE: yes"'
check "c1 wrote /marker" wait_until 60 test "$(said c1 WROTE)" = yes
type_line orig 'echo "ORIG: $SECRET $(cat /sys/class/net/eth0/address) $(cat /marker 2>/dev/null || echo no-marker)"'
check "orig runs on, with its MAC, and c1's file is not on its disk" \
  wait_until 60 test "$(said orig ORIG)" = "kept-42 $orig_mac no-marker"

echo "== a revert steps the clock too"
api PUT /api/v1/vms/orig/state '{"action": "kill"}'
wait_task "$(jqb .task)" 60
# A backup of the stopped VM leaves its disk a dirty bitmap (docs/backup.md "Incremental"), with
# which QEMU's -loadvm refuses the disk: corrald removes it before loading the snapshot.
api GET /api/v1/vms/orig
api GET "/api/v1/volumes/$(jqb '.disks[0].pool')/$(jqb '.disks[0].volume')"
orig_disk=$(jqb .path)
"$corral" backup repo create main --path "$state/repos/main" >/dev/null &&
  "$corral" backup create orig >"$state/out" 2>&1
check "a backup of the stopped orig leaves its disk a generation bitmap" \
  grep -q corral-gen-orig- <<<"$(qemu-img info -U "$orig_disk")" || cat "$state/out"
"$corral" vm snapshot revert orig s1 >"$state/out" 2>&1
check "corral vm snapshot revert orig s1 (the snapshot is older still)" test $? = 0 || cat "$state/out"
check "  ... the backup's bitmap went first" test -z "$(qemu-img info -U "$orig_disk" | grep corral-gen-)"
check "  ... the guest was stepped to the host's clock" wait_console orig 'CORRAL-INIT: clock stepped by' 30
type_line orig 'echo "NOW: $(date +%s)"'
check "  ... and reads it" wait_until 60 test -n "$(said orig NOW)"
skew=$(( $(said orig NOW) - $(date +%s) ))
check "  ... within 5 s of the host's (off by $skew s)" test "${skew#-}" -le 5

check_summary
