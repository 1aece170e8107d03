#!/usr/bin/env bash
# tests/integration/daemon/native_live_backup_incremental.sh: incremental backups of a RUNNING VM
# on the native engine (issue 14, docs/backup.md "Incremental"). corral-vmm keeps the disk's
# generation bitmap in its memory; at a backup's instant it hands the old generation's bits back
# in its disk_snapshot answer and starts the next one, which it stores at its clean close.
#
# The guest is guests/tiny/blk_writer.S: after the virtio guest's block test (sector 1 with byte
# i = (i & 0xff) ^ 0x5a) it waits on COM1, and each digit d writes the byte d over the sector at
# (d + 1) MiB. A real corrald runs it on corral-vmm (KVM: here when /dev/kvm opens, otherwise
# inside the nested lab). Its disk never had a bitmap: the first backup of the running VM is a
# full read and starts the first generation (the bitmaps header extension is added at the
# close, beside the backing file's name). The guest writes two sectors; the second backup of
# the still running VM is incremental and reads only those two 64 KiB granules; the guest
# writes one more and stops; the disk checks clean with the generation stored, not in use; a
# third backup, of the stopped VM, reads only that granule. Each point restored equals the
# disk as the guest left it (qemu-img compare against images built here).
# Exit 0 all passed, 1 a check failed, 77 skipped.
set -uo pipefail
script=$(readlink -f "${BASH_SOURCE[0]}")
repo=$(cd "$(dirname "$script")/../../.." && pwd)
build_dir="${CORRAL_BUILD_DIR:-$repo/build}"
corral="$build_dir/src/cli/corral"
guest="$build_dir/guests/tiny/blk_writer.elf"
[ -f "$guest" ] || { echo "FAIL: no tiny guest at $guest (build the tiny_guests target)"; exit 1; }
if ! command -v qemu-io >/dev/null || ! command -v qemu-img >/dev/null || ! qemu-img bitmap --help >/dev/null 2>&1 ||
  ! command -v python3 >/dev/null; then
  echo "skip: qemu-img (with bitmap, QEMU 5.1 or later), qemu-io and python3 are needed"
  exit 77
fi

# shellcheck source=../../lib/lab.sh
. "$repo/tests/lib/lab.sh"
lab_reexec_unless_kvm_opens 900

# shellcheck source=../../lib/corrald.sh
. "$repo/tests/lib/corrald.sh"
cleanup() {
  corrald_failure_report live
  if [ -n "$corrald_pid" ]; then
    api PUT /api/v1/vms/live/state '{"action":"kill"}'
    sleep 1
  fi
  corrald_stop
  rm -rf -- "$state"
}
trap cleanup EXIT
export CORRAL_SOCKET="$sock"

corral_run() {
  local expected=$1; shift
  "$corral" "$@" >"$state/out" 2>&1
  local rc=$?
  out=$(cat "$state/out")
  [ "$rc" -eq "$expected" ] || { echo "  corral $* exited $rc, expected $expected: $out"; return 1; }
}
type_into() { printf '%s' "$2" | timeout 20 "$corral" vm console "$1" >/dev/null 2>&1; }
# bitmaps DISK: each bitmap of DISK as "NAME FLAGS...", one a line.
bitmaps() {
  qemu-img info -U --output=json "$1" | python3 -c 'import json,sys
for b in json.load(sys.stdin).get("format-specific",{}).get("data",{}).get("bitmaps",[]): print(b["name"], *b["flags"])'
}
# backup_of VM: backs VM up (a task, waited for); the new backup's id in $id and its record in $body.
backup_of() {
  corral_run 0 backup create "$1" || return 1
  id=$(grep -o "backup $1-[^ :]*" <<<"$out" | head -1 | cut -d' ' -f2)
  api GET "/api/v1/backups/$id"
  [ "$code" = 200 ] || { echo "  GET /backups/$id: $code $body"; return 1; }
}
# restored_equals ID AS FILE: restores backup ID as VM AS and compares its disk with FILE.
restored_equals() {
  corral_run 0 backup restore "$1" --as "$2" || return 1
  api GET "/api/v1/volumes/default/$2-root"
  qemu-img compare -q -f raw "$3" "$(jqb .path)"
}
# expect FILE [OFFSET BYTE]...: FILE is the previous expectation with 512 bytes of BYTE at each OFFSET.
expect() {
  local file=$1; shift
  python3 - "$file" "$@" <<'PY'
import sys
path, rest = sys.argv[1], sys.argv[2:]
with open(path, "r+b") as f:
    for offset, byte in zip(rest[::2], rest[1::2]):
        f.seek(int(offset))
        f.write(bytes([int(byte, 0)]) * 512)
PY
}
mib=$((1 << 20))

corrald_start || exit 1

echo "== a native VM whose guest writes its disk on command, running; a full backup"
api GET /api/v1/host
check "the native engine is available ($(jqb .engines.native.reason))" test "$(jqb .engines.native.available)" = true
truncate -s 64M "$state/blank.raw"
api POST /api/v1/images "$(jq -n --arg k "$guest" --arg r "$state/blank.raw" \
  '{name: "writer", kernel: $k, root: $r, cmdline: "console=ttyS0"}')"
wait_task "$(jqb .task)" 60
check "image import task succeeded" test "$(jqb .status)" = succeeded
corral_run 0 vm create live --image writer --engine native --cpus 1 --memory 64M
check "corral vm create live --engine native" test $? = 0
api GET /api/v1/volumes/default/live-root
root=$(jqb .path)
check "its root disk is qcow2 (over the image: a backing file)" test "$(jqb .format)" = qcow2
qemu-io -f qcow2 -c "write -q -P 0x11 8M 8M" "$root" >/dev/null
check "the disk has no bitmap yet" test -z "$(bitmaps "$root")"
backing() { qemu-img info -U --output=json "$1" | jq -r '."backing-filename"'; }
base=$(backing "$root")
# What the disk holds once the guest wrote sector 1, as the guest's pattern says.
python3 - "$state/point1.raw" <<'PY'
import sys
data = bytearray(64 << 20)
data[8 << 20:16 << 20] = b"\x11" * (8 << 20)
data[512:1024] = bytes((i & 0xff) ^ 0x5a for i in range(512))
open(sys.argv[1], "wb").write(data)
PY
corral_run 0 vm start live
check "corral vm start live" test $? = 0
check "the guest wrote sector 1 and waits for commands" wait_console live 'blk commands ready' 60
corral_run 0 backup repo create main --path "$state/repos/main"
backup_of live
first=$id
check "the first backup of the running VM is a full read, saying why" \
  test "$(jqb .read.mode)" = full -a "$(jqb .read.full_reason)" = "disk live-root: no previous backup of live in this repository"
check "  ... taken while it ran" test "$(jqb .config.taken.live)" = true
api GET /api/v1/vms/live
check "the VM runs on" test "$(jqb .state)" = running

echo "== the guest writes 2 sectors; the next backup of the still running VM reads only them"
type_into live 37
check "the guest wrote at 4 MiB and 8 MiB" wait_console live 'blk wrote 7' 30
cp "$state/point1.raw" "$state/point2.raw"
expect "$state/point2.raw" $((4 * mib)) 0x33 $((8 * mib)) 0x37
backup_of live
second=$id
check "the second backup is incremental since the first" \
  test "$(jqb .read.mode)" = incremental -a "$(jqb .read.base)" = "$first"
check "  ... with no disk read in full" test -z "$(jqb '.read.full_reason // ""')"
check "  ... having read only the two 64 KiB granules the guest wrote, of a 64 MiB disk" \
  test "$(jqb .read.bytes)" = $((2 * 65536))
check "  ... and stored only those chunks" test "$(jqb .new_chunks)" = 2
api GET /api/v1/vms/live
check "the VM runs on" test "$(jqb .state)" = running

echo "== the guest writes once more and stops: its disk stores the generation; a third backup"
type_into live 5q
check "the guest wrote at 6 MiB" wait_console live 'blk wrote 5' 30
check "the guest powered off" wait_state live stopped 60
cp "$state/point2.raw" "$state/point3.raw"
expect "$state/point3.raw" $((6 * mib)) 0x35
check "qemu-img check finds the disk clean" qemu-img check -q "$root"
check "the disk carries the second backup's generation, stored, not in use" \
  test "$(bitmaps "$root")" = "corral-gen-$second auto"
check "the header still names the backing file ($base), moved behind the new extension" test "$(backing "$root")" = "$base"
backup_of live
third=$id
check "the third backup (stopped) is incremental since the second" \
  test "$(jqb .read.mode)" = incremental -a "$(jqb .read.base)" = "$second"
check "  ... having read only the granule written since" test "$(jqb .read.bytes)" = 65536
check "the disk's generation is now the third's, alone" test "$(bitmaps "$root")" = "corral-gen-$third auto"

echo "== each point restored equals the disk as the guest left it"
check "the first backup restores the disk as at its instant" restored_equals "$first" one "$state/point1.raw"
check "the second (incremental, running) restores the two writes" restored_equals "$second" two "$state/point2.raw"
check "the third (incremental, stopped) restores the last write" restored_equals "$third" three "$state/point3.raw"
check "the VM's disk itself holds the same" qemu-img compare -q -f raw -F qcow2 "$state/point3.raw" "$root"

check_summary
