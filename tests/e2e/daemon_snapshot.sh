#!/usr/bin/env bash
# tests/e2e/daemon_snapshot.sh: VM snapshots through a real corrald on the emulated engine (QEMU
# TCG), with the project's guest image (Debian kernel, busybox root on a qcow2 linked clone).
#
# The guest proves each step: a shell variable (memory) and a file on its root disk (disk) are
# set, a snapshot of the running VM is taken, both are changed, the snapshot is restored, and the
# shell (which did not boot again) prints the variable and the file as they were. Then a disk-only
# snapshot of the stopped VM, reverted after the disk changed, and one of the running VM (read back
# with qemu-img convert and e2fsck/debugfs); the snapshots' tree (parent, current) as the API and
# `corral vm snapshots` show it. qemu-img (the oracle) lists the
# internal snapshots and finds the volume consistent after each step; the errors a user meets
# (name taken 409, unknown 404, restore while running 409, a raw disk 409) and delete (the
# snapshot is gone from the disk and the list; deleting the VM removes its snapshots).
# Exit 0 all passed, 1 a check failed, 77 skipped.
set -uo pipefail
script=$(readlink -f "${BASH_SOURCE[0]}")
repo=$(cd "$(dirname "$script")/../.." && pwd)
build_dir="${CORRAL_BUILD_DIR:-$repo/build}"
corral="$build_dir/src/cli/corral"
command -v qemu-system-x86_64 >/dev/null || { echo "SKIP: qemu-system-x86_64 is not installed"; exit 77; }
command -v qemu-img >/dev/null || { echo "SKIP: qemu-img is not installed"; exit 77; }
kernel="" initrd="" rootfs=""
eval "$("$repo/tools/guest-image" | grep -E '^(kernel|initrd|rootfs)=')"
[ -n "$rootfs" ] || { echo "FAIL: tools/guest-image did not build rootfs.img"; exit 1; }

# shellcheck source=../lib/corrald.sh
. "$repo/tests/lib/corrald.sh"
cleanup() {
  corrald_failure_report snap1
  if [ -n "$corrald_pid" ]; then api PUT /api/v1/vms/snap1/state '{"action":"kill"}'; sleep 1; fi
  corrald_stop
  [ -n "${vm_pid:-}" ] && kill -KILL "$vm_pid" 2>/dev/null
  rm -rf -- "$state"
}
trap cleanup EXIT
export CORRAL_SOCKET="$sock"
boot_wait=300   # seconds; TCG on a busy 2-core host

type_line() { printf '%s\n' "$1" | timeout 30 "$corral" vm console snap1 >/dev/null 2>&1; }
# A graceful stop: QEMU ends normally, with its qcow2 caches flushed. (A SIGKILL is a pulled plug:
# QEMU writes refcounts before the tables that use them, so a kill may leave leaked clusters,
# harmless but reported by qemu-img check.)
stopped() {
  "$corral" vm stop snap1 --timeout 120 >/dev/null 2>&1
  api GET /api/v1/vms/snap1
  vm_pid=""
  [ "$(jqb .state)" = stopped ]
}
not_booted() { ! console_has snap1 'CORRAL-INIT: root'; }
qcheck() { qemu-img check -q "$root_path"; }
snapshots_in_volume() { qemu-img snapshot -U -l "$root_path" | awk 'NR > 2 { print $2 }' | sort | tr '\n' ' '; }

corrald_start --default-engine emulated || exit 1

echo "== image and VM"
import_guest_image debian
"$corral" vm create snap1 --image debian --engine emulated --cpus 1 --memory 256M >"$state/out" 2>&1
check "corral vm create snap1 --engine emulated" test $? = 0 || cat "$state/out"
api GET /api/v1/volumes/default/snap1-root
root_path=$(jqb .path)
check "its root disk is a qcow2 volume ($root_path)" test "$(jqb .format)" = qcow2

echo "== a snapshot of the running VM: memory and disk"
"$corral" vm start snap1 >"$state/out" 2>&1
check "corral vm start snap1" test $? = 0
api GET /api/v1/vms/snap1
vm_pid=$(jqb .pid)
check "the guest reaches its shell prompt" wait_console snap1 'corral:~# ' "$boot_wait"
type_line 'MARK=memory-one; echo disk-one >/marker; sync; echo set-$((20+1))'
check "the guest set its variable and wrote /marker" wait_console snap1 'set-21' 60
t0=$(date +%s%N)
"$corral" vm snapshot create snap1 s1 --description "before the change" >"$state/out" 2>&1
check "corral vm snapshot create snap1 s1 (waits for its task)" test $? = 0 || cat "$state/out"
echo "   measured: savevm of the 256 MiB guest took $(( ($(date +%s%N) - t0) / 1000000 )) ms through the CLI"
check "  ... says it was taken" grep -q "snapshot s1 of snap1 taken" "$state/out"
api GET /api/v1/vms/snap1/snapshots/s1
check "GET the snapshot: kind memory, ready, on the emulated engine, with its description" \
  test "$(jqb '[.kind, .status, .engine, .description] | join(",")')" = "memory,ready,emulated,before the change"
check "  ... its size is the saved VM state ($(jqb .size_bytes) bytes, over 1 MiB)" test "$(jqb .size_bytes)" -gt 1048576
api GET /api/v1/vms/snap1
check "the VM runs on after the snapshot (same process)" test "$(jqb .state)" = running -a "$(jqb .pid)" = "$vm_pid"
check "qemu-img snapshot -l lists s1 in the root volume" test "$(snapshots_in_volume)" = "s1 "
"$corral" vm snapshots snap1 >"$state/out" 2>&1
check "corral vm snapshots snap1: a table with s1, the current one" grep -qE '^s1 \(current\) +memory +ready' "$state/out" ||
  cat "$state/out"

echo "== errors"
api POST /api/v1/vms/snap1/snapshots '{"name":"s1"}'
check "the same name again: 409 naming name" test "$code" = 409 -a "$(jqb .error.field)" = name
api GET /api/v1/vms/snap1/snapshots/nope
check "an unknown snapshot: 404" test "$code" = 404
api POST /api/v1/vms/snap1/snapshots/nope/restore
check "restoring an unknown snapshot: 404" test "$code" = 404
api GET /api/v1/vms/nope/snapshots
check "the snapshots of an unknown VM: 404" test "$code" = 404
api POST /api/v1/vms/snap1/snapshots '{"name":"Bad Name"}'
check "a bad name: 400 naming name" test "$code" = 400 -a "$(jqb .error.field)" = name
"$corral" vm snapshot revert snap1 s1 >"$state/out" 2>&1
rc=$?
check "revert while the VM runs: exit 1" test "$rc" = 1
check "  ... saying to stop it first" grep -q "stop it before restoring a snapshot" "$state/out" || cat "$state/out"

echo "== change memory and disk, then restore"
type_line 'MARK=memory-two; echo disk-two >/marker; sync; echo changed-$((30+1))'
check "the guest changed its variable and /marker" wait_console snap1 'changed-31' 60
check "the VM is stopped" stopped
t0=$(date +%s%N)
"$corral" vm snapshot revert snap1 s1 >"$state/out" 2>&1
check "corral vm snapshot revert snap1 s1" test $? = 0 || cat "$state/out"
echo "   measured: the restore (QEMU -loadvm) took $(( ($(date +%s%N) - t0) / 1000000 )) ms through the CLI"
api GET /api/v1/vms/snap1
vm_pid=$(jqb .pid)
check "the VM runs again (restored, not booted)" test "$(jqb .state)" = running
type_line 'echo "back: $MARK $(cat /marker) $((40+2))"'
check "the shell still has the variable from the snapshot and /marker its content then" \
  wait_console snap1 'back: memory-one disk-one 42' 60
check "  ... and the kernel did not boot again" not_booted

echo "== a disk-only snapshot of the stopped VM"
check "the VM is stopped" stopped
check "qemu-img check: the volume is consistent" qcheck
"$corral" vm snapshot create snap1 d1 >"$state/out" 2>&1
check "corral vm snapshot create snap1 d1" test $? = 0 || cat "$state/out"
api GET /api/v1/vms/snap1/snapshots/d1
check "  ... kind disk, ready" test "$(jqb .kind),$(jqb .status)" = disk,ready
check "qemu-img lists s1 and d1" test "$(snapshots_in_volume)" = "d1 s1 "
check "qemu-img check after the disk snapshot" qcheck
"$corral" vm start snap1 >/dev/null 2>&1
check "the guest boots to its prompt" wait_console snap1 'corral:~# ' "$boot_wait"
type_line 'echo disk-three >/marker; sync; echo wrote-$((50+1))'
check "the guest wrote disk-three" wait_console snap1 'wrote-51' 60
check "the VM is stopped" stopped
"$corral" vm snapshot revert snap1 d1 >"$state/out" 2>&1
check "corral vm snapshot revert snap1 d1" test $? = 0 || cat "$state/out"
api GET /api/v1/vms/snap1
check "  ... the VM stays stopped (a disk snapshot has no memory)" test "$(jqb .state)" = stopped
check "qemu-img check after the revert" qcheck
"$corral" vm start snap1 >/dev/null 2>&1
check "the guest boots again" wait_console snap1 'corral:~# ' "$boot_wait"
type_line 'echo "marker now: $(cat /marker)"'
check "  ... and /marker is back at disk-one" wait_console snap1 'marker now: disk-one' 60

echo "== a disk-only snapshot of the running VM, and the tree"
api GET /api/v1/vms/snap1
vm_pid=$(jqb .pid)
type_line 'echo disk-four >/marker; sync; echo wrote-$((60+1))'
check "the guest wrote disk-four" wait_console snap1 'wrote-61' 60
"$corral" vm snapshot create snap1 d2 --disk-only >"$state/out" 2>&1
check "corral vm snapshot create snap1 d2 --disk-only" test $? = 0 || cat "$state/out"
api GET /api/v1/vms/snap1/snapshots/d2
check "  ... kind disk, ready" test "$(jqb .kind),$(jqb .status)" = disk,ready
api GET /api/v1/vms/snap1
check "  ... the VM ran on (same process, running)" test "$(jqb .state),$(jqb .pid)" = "running,$vm_pid"
check "qemu-img lists d1, d2 and s1" test "$(snapshots_in_volume)" = "d1 d2 s1 "
# The oracle for "one instant of the running disk": the snapshot as its own image, its journal
# replayed by e2fsck (as a boot would), holds what the guest had written and synced.
qemu-img convert -U -l snapshot.name=d2 -O raw "$root_path" "$state/d2.raw" >"$state/out" 2>&1
check "qemu-img convert -l snapshot.name=d2 reads the snapshot" test $? = 0 || cat "$state/out"
e2fsck -fy "$state/d2.raw" >"$state/fsck.out" 2>&1
rc=$?
check "  ... e2fsck finds a consistent file system in it (exit $rc: 0 clean, 1 journal replayed)" test "$rc" -le 1 ||
  cat "$state/fsck.out"
check "  ... whose /marker is disk-four" test "$(debugfs -R 'cat /marker' "$state/d2.raw" 2>/dev/null)" = disk-four
rm -f "$state/d2.raw"
# s1 was taken first; reverting to it made it current, d1 branched from it, reverting to d1 made
# that current, and d2 hangs from d1.
api GET /api/v1/vms/snap1/snapshots
check "the tree: s1 a root, d1 from s1, d2 from d1 and current" \
  test "$(jqb '[.[] | "\(.name)<\(.parent // "-")\(if .current then "*" else "" end)"] | join(" ")')" = "s1<- d1<s1 d2<d1*"
"$corral" vm snapshots snap1 >"$state/out" 2>&1
check "corral vm snapshots draws it: d2 under d1 under s1, marked current" \
  grep -qE '^  `- d2 \(current\) +disk' "$state/out" || cat "$state/out"

echo "== delete"
check "the VM is stopped" stopped
"$corral" vm snapshot delete snap1 s1 >"$state/out" 2>&1
check "corral vm snapshot delete snap1 s1" test $? = 0 || cat "$state/out"
check "qemu-img no longer lists s1" test "$(snapshots_in_volume)" = "d1 d2 "
api GET /api/v1/vms/snap1/snapshots/d1
check "  ... d1, its child, is a root now" test "$(jqb .parent)" = null
check "qemu-img check after deleting a snapshot with memory" qcheck
api GET /api/v1/vms/snap1/snapshots/s1
check "GET s1: 404" test "$code" = 404
api DELETE /api/v1/vms/snap1/snapshots/s1
check "DELETE s1 again: 404" test "$code" = 404

echo "== a raw disk cannot keep a snapshot"
api POST /api/v1/volumes '{"name":"rawdata","size":"4M","format":"raw"}'
api POST /api/v1/vms '{"name":"rawvm","memory_mib":128,"engine":"emulated","disks":[{"volume":"rawdata"}]}'
api POST /api/v1/vms/rawvm/snapshots '{"name":"r1"}'
check "snapshot of a VM with a writable raw disk: 409 saying why" \
  test "$code" = 409 -a -n "$(jqb .error.message | grep 'snapshots need qcow2')"
api GET /api/v1/vms/rawvm/snapshots
check "  ... and nothing is listed" test "$(jqb length)" = 0

echo "== deleting the VM deletes its snapshots"
"$corral" vm delete snap1 >"$state/out" 2>&1
check "corral vm delete snap1 (keeping its volume)" test $? = 0 || cat "$state/out"
check "qemu-img: no snapshot is left in the volume" test -z "$(snapshots_in_volume)"
check "qemu-img check after the VM went" qcheck
sqlite3 "$state/inventory.db" 'SELECT count(*) FROM snapshots' >"$state/out" 2>&1
check "the inventory holds no snapshot row" test "$(cat "$state/out")" = 0

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
