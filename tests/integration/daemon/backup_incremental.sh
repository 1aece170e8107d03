#!/usr/bin/env bash
# tests/integration/daemon/backup_incremental.sh: incremental backups of a stopped VM through
# QEMU's persistent dirty bitmaps (docs/backup.md "Incremental"): a full backup leaves the disk a
# bitmap named for it; after qemu-io changes ~1% of the disk the next backup reads only the
# dirty clusters and stores only the chunk they are in; each point restored equals the disk as it was (qemu-img
# compare); a removed bitmap, one flagged in use (a crash), one of a deleted backup and one our
# own qcow2 writer left stale each give a full read saying why. A real corrald, qemu-img and
# qemu-io; no VM is booted.
# Exit status: 0 all passed, 1 a check failed, 77 skipped. Ends with "N passed, N failed".
set -uo pipefail
script=$(readlink -f "${BASH_SOURCE[0]}")
repo=$(cd "$(dirname "$script")/../../.." && pwd)
build_dir="${CORRAL_BUILD_DIR:-$repo/build}"
if ! command -v qemu-io >/dev/null || ! command -v qemu-img >/dev/null || ! qemu-img bitmap --help >/dev/null 2>&1 ||
  ! command -v python3 >/dev/null; then
  echo "skip: qemu-img (with bitmap, QEMU 5.1 or later), qemu-io and python3 are needed"
  exit 77
fi
# shellcheck source=../../lib/corrald.sh
. "$repo/tests/lib/corrald.sh"
corral_bin="$build_dir/src/cli/corral"
cleanup() {
  corrald_stop
  rm -rf -- "$state"
}
trap cleanup EXIT

corral_run() {
  local expected=$1; shift
  "$corral_bin" --socket "$sock" "$@" >"$state/out" 2>&1
  local rc=$?
  out=$(cat "$state/out")
  [ "$rc" -eq "$expected" ] || { echo "  corral $* exited $rc, expected $expected: $out"; return 1; }
}
says() { grep -qF -- "$1" <<<"$out" || { echo "  expected '$1' in: $out"; false; }; }
# bitmaps DISK: the names of the disk's bitmaps, one a line.
bitmaps() { qemu-img info -U --output=json "$1" | python3 -c 'import json,sys; [print(b["name"]) for b in json.load(sys.stdin).get("format-specific",{}).get("data",{}).get("bitmaps",[])]'; }
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
  qemu-img compare -q "$3" "$(jqb .path)"
}
mib=$((1 << 20))

corrald_start || exit 1

echo "== a stopped VM with known data, a full backup"
api POST /api/v1/volumes '{"name":"web-root","size":"256M"}'
disk=$(jqb .path)
qemu-io -f qcow2 -c "write -P 0x11 32M 16M" -c "write -P 0x22 100M 8M" "$disk" >/dev/null
api POST /api/v1/vms '{"name":"web","vcpus":1,"memory_mib":128,"disks":[{"pool":"default","volume":"web-root"}],"nics":[]}'
check "VM web defined" test "$code" = 201
corral_run 0 backup repo create main --path "$state/repos/main"
backup_of web
full=$id
check "the first backup is a full read" test "$(jqb .read.mode)" = full
check "  ... saying why" test "$(jqb .read.full_reason)" = "disk web-root: no previous backup of web in this repository"
check "  ... having read all the data (24 MiB)" test "$(jqb .read.bytes)" = $((24 * mib))
check "  ... and the task said so" says "full read (disk web-root: no previous backup"
check "the disk now carries the bitmap of that backup" test "$(bitmaps "$disk")" = "corral-gen-$full"
cp --sparse=always "$disk" "$state/point1.qcow2"

echo "== ~1% of the disk changes; the next backup reads only that"
# 2 MiB inside the 4 MiB chunk at 40 MiB (0.8% of the disk): the rest of that chunk comes from
# the previous backup's chunk in the store.
qemu-io -f qcow2 -c "write -P 0x5a 41M 2M" "$disk" >/dev/null
backup_of web
incr=$id
check "the second backup is incremental" test "$(jqb .read.mode)" = incremental -a "$(jqb .read.base)" = "$full"
check "  ... with nothing read in full" test "$(jqb .read.full_reason)" = null
check "  ... having read only the 2 MiB that changed (of a 256 MiB disk)" test "$(jqb .read.bytes)" = $((2 * mib))
check "  ... and stored only that chunk" test "$(jqb .new_chunks)" = 1
check "  ... the task said so" says "incremental since $full"
corral_run 0 backup show "$incr"
check "backup show says incremental and what it read" says "incremental since $full: 2.0 MiB"
check "the disk's bitmap is now the new generation's, alone" test "$(bitmaps "$disk")" = "corral-gen-$incr"
backup_of web
check "an unchanged disk: incremental, nothing read, nothing stored" \
  test "$(jqb .read.mode)" = incremental -a "$(jqb .read.bytes)" = 0 -a "$(jqb .new_chunks)" = 0
unchanged=$id

echo "== each point restored equals the disk as it was"
check "the full backup restores the disk before the change" restored_equals "$full" one "$state/point1.qcow2"
check "the incremental restores the disk after it" restored_equals "$incr" two "$disk"
check "so does the one of the unchanged disk" restored_equals "$unchanged" three "$disk"
corral_run 0 backup verify "$incr"
check "the incremental verifies" says "is good"

echo "== a bitmap that cannot be trusted means a full read, saying why"
qemu-img bitmap --remove "$disk" "corral-gen-$unchanged"
backup_of web
check "a removed bitmap: full read" test "$(jqb .read.mode)" = full -a "$(jqb .read.full_reason)" = "disk web-root: no bitmap"
check "  ... of all the data" test "$(jqb .read.bytes)" = $((24 * mib))

# In use: what a QEMU that crashed with the disk open leaves (flags bit 0 of its directory entry).
python3 - "$disk" <<'PY'
import struct, sys
with open(sys.argv[1], "r+b") as f:
    head = f.read(65536)
    at = struct.unpack(">I", head[100:104])[0]
    while True:
        kind, length = struct.unpack(">II", head[at:at + 8])
        if kind == 0x23852875:
            directory = struct.unpack(">Q", head[at + 24:at + 32])[0]
            f.seek(directory + 12)
            flags = struct.unpack(">I", f.read(4))[0]
            f.seek(directory + 12)
            f.write(struct.pack(">I", flags | 1))
            break
        at += 8 + (length + 7) // 8 * 8
PY
check "qemu-img sees the bitmap in use" grep -q in-use <<<"$(qemu-img info "$disk")"
backup_of web
check "a bitmap in use at a crash: full read saying so" \
  test "$(jqb .read.full_reason)" = "disk web-root: the bitmap was in use at a crash (QEMU did not close the disk)"
check "  ... and the disk got a clean new generation" test "$(bitmaps "$disk")" = "corral-gen-$id"

corral_run 0 backup delete "$id"
backup_of web
check "the bitmap of a deleted backup: full read saying so" \
  grep -q "which was deleted, failed or is in another repository" <<<"$(jqb .read.full_reason)"

corral_run 0 volume resize web-root 320M
backup_of web
check "after a resize by corrald (which keeps no bitmaps): full read" test "$(jqb .read.mode)" = full
check "  ... saying why" grep -q "stale\|size changed" <<<"$(jqb .read.full_reason)"
check "  ... and the disk got a new generation, alone" test "$(bitmaps "$disk")" = "corral-gen-$id"
resized=$id
qemu-io -f qcow2 -c "write -P 0x66 300M 64k" "$disk" >/dev/null
backup_of web
check "the backup after it is incremental again, reading the 64 KiB" \
  test "$(jqb .read.mode)" = incremental -a "$(jqb .read.base)" = "$resized" -a "$(jqb .read.bytes)" = 65536
check "  ... and restores the disk as it is" restored_equals "$id" four "$disk"

[ "$failed" -gt 0 ] && corrald_failure_report
check_summary
