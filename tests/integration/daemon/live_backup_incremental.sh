#!/usr/bin/env bash
# tests/integration/daemon/live_backup_incremental.sh: incremental backups of a RUNNING VM (issue 14,
# docs/backup.md "Incremental"). A real corrald, the project's guest on the emulated engine (QEMU
# TCG) with its root ext4 on a qcow2 disk. A full backup of the running VM; the guest writes 4 MiB
# through its console; the next backup of the still running VM is incremental since the first
# (QEMU's live bitmap, copied out at the backup's instant) and reads far less than the disk; the
# restore of it holds the guest's data (md5 as the guest computed it) and checks clean; the VM's
# disk checks clean with qemu-img once the VM stops (its bitmap written back). Exit 0 all passed,
# 1 a check failed, 77 skipped.
set -uo pipefail
script=$(readlink -f "${BASH_SOURCE[0]}")
repo=$(cd "$(dirname "$script")/../../.." && pwd)
build_dir="${CORRAL_BUILD_DIR:-$repo/build}"
corral="$build_dir/src/cli/corral"
for tool in qemu-img debugfs jq; do
  command -v "$tool" >/dev/null || { echo "SKIP: $tool is not installed"; exit 77; }
done
# shellcheck source=../../lib/guest.sh
. "$repo/tests/lib/guest.sh"
guest_image

# shellcheck source=../../lib/corrald.sh
. "$repo/tests/lib/corrald.sh"
cleanup() {
  [ "$failed" -gt 0 ] && corrald_failure_report live
  [ -n "${corrald_pid:-}" ] && api PUT /api/v1/vms/live/state '{"action":"kill"}' && sleep 1
  corrald_stop
  rm -rf -- "$state"
}
trap cleanup EXIT
export CORRAL_SOCKET="$sock"

type_line() { printf '%s\n' "$2" | timeout 30 "$corral" vm console "$1" >/dev/null 2>&1; }
# backup_of VM: a backup of VM (a task, waited for); its record in $body, its message in $out.
backup_of() {
  out=$("$corral" backup create "$1" 2>&1) || { echo "  corral backup create $1: $out"; return 1; }
  id=$(grep -o "backup $1-[^ :]*" <<<"$out" | head -1 | cut -d' ' -f2)
  api GET "/api/v1/backups/$id"
  [ "$code" = 200 ] || { echo "  GET /backups/$id: $code $body"; return 1; }
}

corrald_start || exit 1
import_guest_image guest "console=ttyS0 panic=-1"
api POST /api/v1/vms '{"name": "live", "image": "guest", "engine": "emulated", "memory_mib": 256, "nics": [],
  "cmdline": "corral.root=/dev/vda corral.shutdown=graceful corral.then=shell"}'
check "VM live defined" test "$code" = 201
api GET "/api/v1/volumes/default/$(jqb '.disks[0].volume')"
disk=$(jqb .path)
"$corral" vm start live >/dev/null
check "live reaches its shell" wait_console live 'corral:~# ' 240
"$corral" backup repo create main --path "$state/repos/main" >/dev/null

echo "== a full backup of the running VM"
backup_of live
first=$id
check "it is a full read, saying why" \
  test "$(jqb .read.mode)" = full -a "$(jqb .read.full_reason)" = "disk $(jqb '.disks[0].name'): no previous backup of live in this repository"
echo "  (it read $(jqb .read.bytes) bytes of a $(jqb .logical_bytes)-byte disk)"

echo "== the guest writes 4 MiB; the next backup of the running VM reads only what changed"
type_line live 'dd if=/dev/urandom of=/data bs=1M count=4 2>/dev/null; sync; echo "SUM $(md5sum </data | cut -c1-32)"'
check "the guest wrote /data" wait_console live "SUM " 120
sum=$(console_since_start live | sed -n 's/^SUM \([0-9a-f]\{32\}\).*/\1/p' | tail -n1)
backup_of live
second=$id
check "the second backup is incremental since the first" \
  test "$(jqb .read.mode)" = incremental -a "$(jqb .read.base)" = "$first"
read_bytes=$(jqb .read.bytes) logical=$(jqb .logical_bytes)
echo "  (it read $read_bytes bytes of a $logical-byte disk)"
check "  ... reading at least the 4 MiB written and less than a quarter of the disk" \
  test "$read_bytes" -ge $((4 << 20)) -a "$read_bytes" -lt $((logical / 4))
check "  ... and the task said so" grep -qF "incremental since $first" <<<"$out"
api GET /api/v1/vms/live
check "live runs on" test "$(jqb .state)" = running

echo "== the incremental restores the guest's data; the disk checks clean once the VM stops"
"$corral" backup restore "$second" --as copy >/dev/null
api GET /api/v1/vms/copy
api GET "/api/v1/volumes/default/$(jqb '.disks[0].volume')"
copy_disk=$(jqb .path)
check "qemu-img check of the restored disk is clean" qemu-img check -q "$copy_disk"
qemu-img convert -O raw "$copy_disk" "$state/copy.raw"
got=$(debugfs -R "cat /data" "$state/copy.raw" 2>/dev/null | md5sum | cut -c1-32)
check "the restored /data has the guest's md5 ($sum)" test -n "$sum" -a "$got" = "$sum"
"$corral" vm stop live --timeout 60 >/dev/null
check "live stopped" wait_state live stopped 60
check "its disk carries the second backup's generation bitmap, alone" \
  test "$(qemu-img info --output=json "$disk" | jq -r '[."format-specific".data.bitmaps[]?.name] | join(" ")')" \
  = "corral-gen-$second"
check "qemu-img check of the VM's disk is clean" qemu-img check -q "$disk"
# corral-img check (our qcow2 code) agrees with qemu-img check: the bitmap's clusters are no leaks.
checks=$(for tool in qemu-img "$build_dir/src/storage/corral-img"; do
  "$tool" check --output=json "$disk" | jq -c "{corruptions: (.corruptions // 0), leaks: (.leaks // 0)}"; done | sort -u)
check "  ... and corral-img check agrees: no leaks, no corruptions" test "$checks" = '{"corruptions":0,"leaks":0}' ||
  echo "  $checks"

check_summary
