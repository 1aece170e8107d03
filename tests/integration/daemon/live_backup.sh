#!/usr/bin/env bash
# tests/integration/daemon/live_backup.sh: `corral backup create` of a RUNNING VM (issue 14,
# docs/backup.md "Running VMs"). A real corrald, a real guest on the emulated engine (QEMU TCG)
# with its root file system (ext4) on a qcow2 disk, writing known data and then writing on in a
# loop while the backup runs (and once more paused). The restored disk must be one instant:
# qemu-img check clean, the ext4 consistent (e2fsck after its journal replay, as a crash leaves
# it), the known data whole. The VM runs on, its disk keeps no corral-backup-* snapshot (nor a
# stale one an interrupted backup left), the reserved snapshot name is refused, a running VM
# with a writable raw disk is refused saying what to do; a live backup cancelled mid-way leaves
# nothing, and one whose VM is killed mid-way ends (whole, or failed) without a snapshot left in
# the disks. A live backup adds the disk's generation bitmap at its instant (QMP transaction): once
# the VM is stopped the next backup is incremental since it, and so is the next live one (paused). Exit 0 all passed, 1 a check failed, 77
# skipped.
set -uo pipefail
script=$(readlink -f "${BASH_SOURCE[0]}")
repo=$(cd "$(dirname "$script")/../../.." && pwd)
build_dir="${CORRAL_BUILD_DIR:-$repo/build}"
corral_bin="$build_dir/src/cli/corral"
for tool in qemu-img e2fsck debugfs; do
  command -v "$tool" >/dev/null || { echo "SKIP: $tool is not installed"; exit 77; }
done
# shellcheck source=../../lib/guest.sh
. "$repo/tests/lib/guest.sh"
guest_image

# shellcheck source=../../lib/corrald.sh
. "$repo/tests/lib/corrald.sh"
cleanup() {
  if [ -n "${corrald_pid:-}" ]; then
    for vm in live rawvm big; do api PUT "/api/v1/vms/$vm/state" '{"action":"kill"}'; done
    sleep 1
  fi
  corrald_stop
  rm -rf -- "$state"
}
trap cleanup EXIT

corral_run() {   # corral_run EXPECTED_EXIT ARGS...: output in $out
  local expected=$1; shift
  "$corral_bin" --socket "$sock" "$@" >"$state/out" 2>&1
  local rc=$?
  out=$(cat "$state/out")
  [ "$rc" -eq "$expected" ] || { echo "  corral $* exited $rc, expected $expected: $out"; return 1; }
}
says() { grep -qF -- "$1" <<<"$out" || { echo "  expected '$1' in: $out"; false; }; }
last_tick() { console_since_start live 200 | sed -n 's/^TICK \([0-9]*\).*/\1/p' | tail -n1; }
tick_past() { local t; t=$(last_tick); [ -n "$t" ] && [ "$t" -gt "$1" ]; }

corrald_start || exit 1
import_guest_image guest "console=ttyS0 panic=-1"

echo "== a running VM that wrote known data and writes on"
# 4 MiB of random data and its checksum, synced; then a loop that rewrites files with fsync and
# says TICK every 10 rounds, until the VM is killed.
run=$("$repo/tools/guest-image" encode-run \
  'dd if=/dev/urandom of=/known bs=64k count=64 2>/dev/null && md5sum /known >/known.md5 && sync && echo KNOWN-WRITTEN
i=0; while :; do i=$((i+1)); dd if=/dev/urandom of=/churn.$((i%4)) bs=64k count=8 conv=fsync 2>/dev/null; echo $i >/counter.new; mv /counter.new /counter; case $i in *0) echo TICK $i;; esac; done')
api POST /api/v1/vms "$(jq -n --arg c "corral.root=/dev/vda corral.shutdown=graceful $run corral.then=halt" \
  '{name: "live", image: "guest", engine: "emulated", memory_mib: 256, cmdline: $c, nics: []}')"
check "VM live defined" test "$code" = 201
volume=$(jqb '.disks[0].volume')
api GET "/api/v1/volumes/default/$volume"
disk=$(jqb .path)
check "its root disk $volume is qcow2" test "$(jqb .format)" = qcow2
# What a backup killed mid-way leaves behind: its snapshot in the disk.
qemu-img snapshot -c corral-backup-stale "$disk"
check "a stale corral-backup-stale snapshot is in the disk" bash -c "qemu-img snapshot -l '$disk' | grep -q corral-backup-stale"
corral_run 0 vm start live
check "corral vm start live" says "live"
check "the guest wrote its known data" wait_console live KNOWN-WRITTEN 180
check "the guest writes on (TICK 10)" wait_until 120 tick_past 9
api GET /api/v1/vms/live/snapshots
check "corral-backup-stale is no user snapshot" test "$(jqb length)" = 0

echo "== backup create of the running VM"
corral_run 0 backup repo create main --path "$state/repos/main"
before=$(last_tick)
corral_run 0 backup create live
check "backup create live succeeds" says "backup live-"
check "  ... saying it was taken while it ran, and when" says "taken while it ran, as of 20"
after=$(last_tick)
echo "  ($(tail -n1 <<<"$out"))"
echo "  (the guest's TICK was $before when the backup started, $after when it ended)"
api GET /api/v1/vms/live
check "live still runs" test "$(jqb .state)" = running
check "  ... and writes on after the backup" wait_until 120 tick_past "$after"
api GET "/api/v1/backups?vm=live"
id=$(jqb '.[0].id')
api GET "/api/v1/backups/$id"
check "the backup records that the VM was running" test "$(jqb .config.taken.vm_state)" = running -a "$(jqb .config.taken.live)" = true
check "  ... and the instant" test "$(jqb .config.taken.at | cut -c1-2)" = 20
read_why=$(jqb .read.full_reason)
check "  ... read in full, saying why (the first backup of the VM)" \
  test "$(jqb .read.mode)" = full -a "${read_why#*no previous backup of live}" != "$read_why"
check "no corral-backup-* snapshot is left in the disk (the stale one too)" \
  bash -c "! qemu-img snapshot -l -U '$disk' | grep -q corral-backup"
api GET /api/v1/vms/live/snapshots
check "  ... and no snapshot is listed for the VM" test "$(jqb length)" = 0

echo "== a paused VM"
corral_run 0 vm pause live
corral_run 0 backup create live
check "backup create of the paused VM says it was taken while it was paused" says "taken while it was paused, as of"
api GET "/api/v1/backups?vm=live"
api GET "/api/v1/backups/$(jq -r --arg first "$id" '[.[] | select(.id != $first)][0].id' <<<"$body")"
check "  ... its record says the VM was paused" test "$(jqb .config.taken.vm_state)" = paused
check "  ... and it read incrementally since the running VM's backup (QEMU's live bitmap)" \
  test "$(jqb .read.mode)" = incremental -a "$(jqb .read.base)" = "$id"
api GET /api/v1/vms/live
check "  ... and the VM stays paused" test "$(jqb .state)" = paused
corral_run 0 vm resume live
check "no corral-backup-* snapshot is left after it" bash -c "! qemu-img snapshot -l -U '$disk' | grep -q corral-backup"

echo "== the restored disk is one instant"
corral_run 0 backup restore "$id" --as copy
check "backup restore --as copy" says "as VM copy"
api GET /api/v1/vms/copy
api GET "/api/v1/volumes/default/$(jqb '.disks[0].volume')"
copy_disk=$(jqb .path)
check "qemu-img check of the restored disk is clean" qemu-img check -q "$copy_disk"
qemu-img convert -O raw "$copy_disk" "$state/copy.raw"
# As after a power cut: the journal is replayed, then the file system must be consistent.
e2fsck -E journal_only -y "$state/copy.raw" >"$state/fsck1" 2>&1
check "e2fsck -fn after the journal replay: the ext4 is clean (exit 0)" \
  bash -c 'e2fsck -fn "$1" >"$2" 2>&1 || { cat "$2"; false; }' _ "$state/copy.raw" "$state/fsck2"
known_sum=$(debugfs -R "cat /known" "$state/copy.raw" 2>/dev/null | md5sum | cut -d' ' -f1)
check "the known data written before the backup is whole (md5 $known_sum)" \
  bash -c "debugfs -R 'cat /known.md5' '$state/copy.raw' 2>/dev/null | grep -q '^$known_sum '"
counter=$(debugfs -R "cat /counter" "$state/copy.raw" 2>/dev/null)
check "the writing loop's counter is in it (at $counter)" test "${counter:-0}" -ge 1

echo "== once the VM is down, the next backup reads only what changed since the last live one"
api GET "/api/v1/backups?vm=live"
last_live=$(jqb '.[-1].id')
corral_run 0 vm stop live --timeout 60
check "live stops (ACPI: QEMU closes its disks, writing their bitmaps)" says "live"
check "its disk carries the generation bitmap added at the last live backup's instant, alone" \
  test "$(qemu-img info --output=json "$disk" | jq -r '[."format-specific".data.bitmaps[]?.name] | join(" ")')" = "corral-gen-$last_live"
corral_run 0 backup create live
api GET "/api/v1/backups?vm=live"
check "the backup of the stopped VM is incremental since the live one" \
  test "$(jqb '.[-1].read.mode')" = incremental -a "$(jqb '.[-1].read.base')" = "$last_live"
echo "  (it read $(jqb '.[-1].read.bytes') bytes of a $(jqb '.[-1].logical_bytes')-byte disk)"

echo "== refusals"
api POST /api/v1/vms/live/snapshots '{"name":"corral-backup-mine"}'
check "a user snapshot named corral-backup-*: 400 naming name" \
  test "$code" = 400 -a "$(jqb .error.field)" = name
api POST /api/v1/volumes '{"name":"scratch","size":"8M","format":"raw"}'
check "raw volume scratch" test "$code" = 201
api POST /api/v1/vms "$(jq -n '{name: "rawvm", image: "guest", engine: "emulated", memory_mib: 128,
  cmdline: "corral.then=halt", nics: [], disks: [{pool: "default", volume: "scratch"}]}')"
check "VM rawvm with a writable raw disk" test "$code" = 201
corral_run 0 vm start rawvm
corral_run 1 backup create rawvm
check "backup create of the running rawvm is refused" says "is raw, which cannot hold the snapshot"
check "  ... saying what to do" says "stop the VM first (corral vm stop rawvm)"
api GET "/api/v1/backups?vm=rawvm"
check "  ... and nothing is listed" test "$(jqb length)" = 0

echo "== a live backup cancelled, and one whose VM is killed mid-way"
# A second disk of 384 MiB of random data (nothing dedups or compresses it) keeps each backup busy
# for seconds: long enough to act while its task reads, which the test waits to see.
head -c 384M /dev/urandom >"$state/big.raw"
code=$(curl -s --unix-socket "$sock" -o "$state/body" -w '%{http_code}' -X PUT -T "$state/big.raw" \
  http://corral/api/v1/volumes/default/bigdata/content)
body=$(cat "$state/body")
check "a 384 MiB volume of random data uploaded" test "$code" = 201
[ "$code" = 201 ] && wait_task "$(jqb .task)" 120
rm -f "$state/big.raw"
api GET /api/v1/volumes/default/bigdata
big_disk=$(jqb .path)
idle=$("$repo/tools/guest-image" encode-run 'echo IDLE; while :; do sleep 1; done')
api POST /api/v1/vms "$(jq -n --arg c "$idle corral.then=halt" '{name: "big", image: "guest", engine: "emulated",
  memory_mib: 128, cmdline: $c, nics: [], disks: [{pool: "default", volume: "bigdata"}]}')"
check "VM big with the root disk of its image and the data disk" test "$code" = 201
corral_run 0 vm start big
check "  ... runs" wait_console big IDLE 120
reading() {   # reading TASK: the backup task has read part of the disks and not finished
  api GET "/api/v1/tasks/$1"
  [ "$(jqb .status)" = running ] && jq -e '.progress > 0 and .progress < 0.95' <<<"$body" >/dev/null
}
api POST /api/v1/backups '{"vm":"big"}'
task=$(jqb .task)
check "a backup of the running big started (a task)" test "$code" = 202
check "  ... and reads" wait_until 60 reading "$task"
api POST "/api/v1/tasks/$task/cancel"
wait_task "$task" 60
check "cancelled while it read: the task ends cancelled" test "$(jqb .status)" = cancelled
api GET "/api/v1/backups?vm=big"
check "  ... nothing is listed" test "$(jqb length)" = 0
check "  ... no corral-backup-* snapshot is left in its disks" \
  bash -c "! qemu-img snapshot -l -U '$big_disk' | grep -q corral-backup"
api GET /api/v1/vms/big
check "  ... the VM runs on" test "$(jqb .state)" = running

api POST /api/v1/backups '{"vm":"big"}'
task=$(jqb .task)
check "another backup of big reads" wait_until 60 reading "$task"
api PUT /api/v1/vms/big/state '{"action":"kill"}'
wait_task "$task" 120
# The snapshot it reads stays readable in the files after QEMU is gone: the backup may finish.
# Either way its snapshot goes, and what is listed is whole.
check "the VM killed while its backup read: the task ends (succeeded or failed, not stuck)" \
  bash -c '[ "$1" = succeeded ] || [ "$1" = failed ]' _ "$(jqb .status)"
echo "  (it ended $(jqb .status): $(jqb '.message // .error'))"
ended=$(jqb .status)
wait_state big stopped 60
check "  ... no corral-backup-* snapshot is left in the stopped VM's disks" \
  bash -c "! qemu-img snapshot -l '$big_disk' | grep -q corral-backup"
api GET "/api/v1/backups?vm=big"
listed=$(jqb length)
check "  ... a backup is listed only if the task succeeded" test "$listed" = "$([ "$ended" = succeeded ] && echo 1 || echo 0)"
if [ "$listed" = 1 ]; then
  corral_run 0 backup verify "$(jqb '.[0].id')"
  check "  ... and that one verifies" says "good"
fi
corral_run 0 backup create big
check "a backup of the stopped big after that works" says "backup big-"

[ "$failed" -gt 0 ] && corrald_failure_report
check_summary
