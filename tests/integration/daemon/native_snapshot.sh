#!/usr/bin/env bash
# tests/integration/daemon/native_snapshot.sh: VM snapshots through corrald on the native engine
# (corral-vmm on KVM: here when /dev/kvm opens, otherwise inside the nested lab (tools/lab)).
#
# The guest is guests/tiny/counter.S: it prints `count N ok` about ten times a second, checking
# before each line that its counter's copy in memory and a 4 KiB area's checksum are unchanged
# (`count N BAD` otherwise). A real corrald runs it; the VM is paused at count N, snapshotted
# (memory, devices, and a copy of its disk, taken while corral-vmm holds it paused), resumed and
# left counting; then killed, its disk overwritten behind corrald's back, and the snapshot
# restored: the counter goes on from N with `ok`, and the disk is byte for byte what it was.
# Then a guest reset of the restored VM boots its kernel again in the same corral-vmm. Also: a
# disk-only snapshot of the running VM (a disk copy, no saved state) and of the stopped VM (an
# internal qcow2 snapshot that qemu-img lists), the snapshots' tree (parent, current), the errors
# a user meets, delete (the snapshot's folder goes), and deleting the VM.
# Exit 0 all passed, 1 a check failed, 77 skipped.
set -uo pipefail
script=$(readlink -f "${BASH_SOURCE[0]}")
repo=$(cd "$(dirname "$script")/../../.." && pwd)
build_dir="${CORRAL_BUILD_DIR:-$repo/build}"
corral="$build_dir/src/cli/corral"
counter_guest="$build_dir/guests/tiny/counter.elf"
[ -f "$counter_guest" ] || { echo "FAIL: no tiny guest at $counter_guest (build the tiny_guests target)"; exit 1; }
command -v qemu-img >/dev/null && command -v qemu-io >/dev/null || { echo "SKIP: qemu-img/qemu-io missing (qemu-utils)"; exit 77; }

# shellcheck source=../../lib/lab.sh
. "$repo/tests/lib/lab.sh"
lab_reexec_unless_kvm_opens 900

# shellcheck source=../../lib/corrald.sh
. "$repo/tests/lib/corrald.sh"
cleanup() {
  corrald_failure_report ctr
  if [ -n "$corrald_pid" ]; then api PUT /api/v1/vms/ctr/state '{"action":"kill"}'; sleep 1; fi
  corrald_stop
  [ -n "${vm_pid:-}" ] && kill -KILL "$vm_pid" 2>/dev/null
  rm -rf -- "$state"
}
trap cleanup EXIT
export CORRAL_SOCKET="$sock"

# The console since the VM's last start, as corrald keeps it.
console_now() { console_since_start ctr; }
last_count() { console_now | grep -oE '^count [0-9]+ ok$' | tail -n1 | awk '{ print $2 }'; }
first_count() { console_now | grep -oE '^count [0-9]+ (ok|BAD)$' | head -n1; }
counted_past() { local n; n=$(last_count); [ -n "$n" ] && [ "$n" -ge "$1" ]; }
killed() {
  "$corral" vm kill ctr >/dev/null 2>&1
  vm_pid=""
  wait_state ctr stopped 20
}

corrald_start || exit 1

echo "== image and VM"
api GET /api/v1/host
check "the native engine is available ($(jqb .engines.native.reason))" test "$(jqb .engines.native.available)" = true
truncate -s 1M "$state/blank.raw"
api POST /api/v1/images "$(jq -n --arg k "$counter_guest" --arg r "$state/blank.raw" \
  '{name: "counter", kernel: $k, root: $r, cmdline: "console=ttyS0"}')"
wait_task "$(jqb .task)" 60
check "image import task succeeded" test "$(jqb .status)" = succeeded
"$corral" vm create ctr --image counter --engine native --cpus 1 --memory 64M >"$state/out" 2>&1
check "corral vm create ctr --engine native" test $? = 0 || cat "$state/out"
api GET /api/v1/volumes/default/ctr-root
root_path=$(jqb .path)
qemu-io -f qcow2 -c "write -P 0x11 0 64k" "$root_path" >/dev/null
check "its root disk is qcow2, with a pattern written into it" test "$(jqb .format)" = qcow2

echo "== a snapshot of the paused VM"
"$corral" vm start ctr >"$state/out" 2>&1
check "corral vm start ctr" test $? = 0 || cat "$state/out"
api GET /api/v1/vms/ctr
vm_pid=$(jqb .pid)
check "the guest counts" wait_until 30 counted_past 5
"$corral" vm pause ctr >/dev/null 2>&1
sleep 0.5
at_snapshot=$(last_count)
check "paused at count $at_snapshot" test -n "$at_snapshot"
t0=$(date +%s%N)
"$corral" vm snapshot create ctr s1 -d "paused at $at_snapshot" >"$state/out" 2>&1
check "corral vm snapshot create ctr s1" test $? = 0 || cat "$state/out"
echo "   measured: the snapshot took $(( ($(date +%s%N) - t0) / 1000000 )) ms through the CLI"
api GET /api/v1/vms/ctr/snapshots/s1
check "  ... kind memory, ready, on the native engine" test "$(jqb '[.kind, .status, .engine] | join(",")')" = "memory,ready,native"
check "  ... its size is counted ($(jqb .size_bytes) bytes for 64 MiB of RAM and its disk)" test "$(jqb .size_bytes)" -gt 0
snapdir="$state/snapshots/ctr/s1"
check "its folder holds corral-vmm's state and the disk's copy" test -d "$snapdir/state" -a -f "$snapdir/disk0"
check "corral-vmm --inspect-snapshot finds the state valid" "$build_dir/src/vmm/corral-vmm" --inspect-snapshot "$snapdir/state"
api GET /api/v1/vms/ctr
check "the VM stays paused after the snapshot (same process)" test "$(jqb .state)" = paused -a "$(jqb .pid)" = "$vm_pid"
check "  ... and printed nothing since" test "$(last_count)" = "$at_snapshot"
qemu-img convert -U -O raw "$root_path" "$state/root-at-s1.raw"   # what the guest's disk held
"$corral" vm resume ctr >/dev/null 2>&1
check "resumed, it counts on" wait_until 30 counted_past $((at_snapshot + 10))

echo "== errors"
api POST /api/v1/vms/ctr/snapshots '{"name":"s1"}'
check "the same name again: 409" test "$code" = 409
api POST /api/v1/vms/ctr/snapshots/s1/restore
check "restore while it runs: 409 saying to stop it" \
  test "$code" = 409 -a -n "$(jqb .error.message | grep 'stop it before restoring')"
api GET /api/v1/vms/ctr/snapshots/s9
check "an unknown snapshot: 404" test "$code" = 404

echo "== kill, change the disk, restore"
check "the VM is killed" killed
qemu-io -f qcow2 -c "write -P 0x22 0 64k" "$root_path" >/dev/null
check "the disk changed behind corrald's back" bash -c "! qemu-img compare -q '$root_path' '$state/root-at-s1.raw'"
t0=$(date +%s%N)
"$corral" vm snapshot revert ctr s1 >"$state/out" 2>&1
check "corral vm snapshot revert ctr s1" test $? = 0 || cat "$state/out"
echo "   measured: the restore (disk copied back, corral-vmm started) took $(( ($(date +%s%N) - t0) / 1000000 )) ms through the CLI"
api GET /api/v1/vms/ctr
vm_pid=$(jqb .pid)
check "the VM runs (restored)" test "$(jqb .state)" = running
check "it counts again" wait_until 30 counted_past $((at_snapshot + 5))
first=$(first_count)
check "the first count after the restore ($first) goes on from $at_snapshot" \
  bash -c "[ '$first' = 'count $at_snapshot ok' ] || [ '$first' = 'count $((at_snapshot + 1)) ok' ]"
check "  ... and no count says BAD (memory and registers as saved)" bash -c "! grep -q BAD <<<'$(console_now)'"
check "the disk is back to its content at the snapshot (qemu-img compare)" \
  qemu-img compare -U -q "$root_path" "$state/root-at-s1.raw"

echo "== a guest reset after the restore boots the kernel again"
"$corral" vm reset ctr >"$state/out" 2>&1
check "corral vm reset ctr" test $? = 0 || cat "$state/out"
booted_again() { console_now | grep -q 'counter ready'; }
check "the guest boots again (its 'counter ready' banner, which a restore never prints)" wait_until 60 booted_again
api GET /api/v1/vms/ctr
check "  ... in the same corral-vmm, running" test "$(jqb .state),$(jqb .pid)" = "running,$vm_pid"

echo "== a disk-only snapshot of the running VM"
"$corral" vm snapshot create ctr d0 --disk-only >"$state/out" 2>&1
check "corral vm snapshot create ctr d0 --disk-only" test $? = 0 || cat "$state/out"
api GET /api/v1/vms/ctr/snapshots/d0
check "  ... kind disk, ready, from s1 (the snapshot restored last)" \
  test "$(jqb .kind),$(jqb .status),$(jqb .parent)" = "disk,ready,s1"
d0_dir="$(dirname "$snapdir")/d0"
check "  ... its folder holds the disk copy and no saved state" test -f "$d0_dir/disk0" -a ! -e "$d0_dir/state"
api GET /api/v1/vms/ctr
check "  ... the VM runs on in the same process" test "$(jqb .state),$(jqb .pid)" = "running,$vm_pid"

echo "== a disk-only snapshot of the stopped VM"
check "the VM is killed" killed
"$corral" vm snapshot create ctr d1 >"$state/out" 2>&1
check "corral vm snapshot create ctr d1" test $? = 0 || cat "$state/out"
api GET /api/v1/vms/ctr/snapshots/d1
check "  ... kind disk" test "$(jqb .kind)" = disk
check "qemu-img lists d1 in the volume" bash -c "qemu-img snapshot -l '$root_path' | grep -qw d1"
qemu-io -f qcow2 -c "write -P 0x33 0 64k" "$root_path" >/dev/null
"$corral" vm snapshot revert ctr d1 >"$state/out" 2>&1
check "corral vm snapshot revert ctr d1" test $? = 0 || cat "$state/out"
check "  ... the disk is back (qemu-img compare)" qemu-img compare -q "$root_path" "$state/root-at-s1.raw"
check "qemu-img check: consistent" qemu-img check -q "$root_path"

echo "== delete"
"$corral" vm snapshot delete ctr s1 >"$state/out" 2>&1
check "corral vm snapshot delete ctr s1" test $? = 0 || cat "$state/out"
check "  ... its folder is gone (space freed)" test ! -e "$snapdir"
api GET /api/v1/vms/ctr/snapshots
check "d0 and d1 are left, d0 a root now, d1 its child and current" \
  test "$(jqb '[.[] | "\(.name)<\(.parent // "-")\(if .current then "*" else "" end)"] | join(" ")')" = "d0<- d1<d0*"
"$corral" vm delete ctr >"$state/out" 2>&1
check "corral vm delete ctr" test $? = 0 || cat "$state/out"
check "  ... its disk snapshot went with it" bash -c "! qemu-img snapshot -l '$root_path' | grep -qw d1"
check "qemu-img check after the VM went" qemu-img check -q "$root_path"

echo "native_snapshot: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
