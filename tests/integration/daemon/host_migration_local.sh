#!/usr/bin/env bash
# tests/integration/daemon/host_migration_local.sh: `corral vm migrate` of a VM whose disk is on a
# LOCAL pool: two real corralds (one machine), each with a pool "local" on a folder of its own, the
# emulated engine (real QEMU). The disk is copied while the guest runs (a block mirror over the
# TLS API): a marker the guest wrote on its disk before, and one written during the copy, are read
# back from the disk at the destination; the destination's volume passes `qemu-img check`; the
# source's volume is gone. Refusals: too little room in the destination's pool, the native engine
# (nothing left behind).
# Fault: the destination corrald killed during the disk copy: the source runs on, its disk intact.
# Exit status: 0 all passed, 1 a check failed, 77 skipped. Ends with "N passed, N failed".
set -uo pipefail
script=$(readlink -f "${BASH_SOURCE[0]}")
repo=$(cd "$(dirname "$script")/../../.." && pwd)
build_dir="${CORRAL_BUILD_DIR:-$repo/build}"
corral="$build_dir/src/cli/corral"
command -v qemu-system-x86_64 >/dev/null || { echo "SKIP: qemu-system-x86_64 is not installed"; exit 77; }
kernel="" initrd=""
eval "$("$repo/tools/guest-image" 2>/dev/null | grep -E '^(kernel|initrd)=')"
[ -n "$kernel" ] && [ -n "$initrd" ] || { echo "SKIP: tools/guest-image gave no kernel and initrd"; exit 77; }

. "$repo/tests/lib/corrald.sh"
. "$repo/tests/lib/two_corralds.sh"
cleanup() {
  two_corralds_cleanup
  rm -rf -- "$scratch"
}
trap cleanup EXIT
runs_on_a() { api GET /api/v1/vms/mover; [ "$(jqb .state)" = running ] || { echo "  state $(jqb .state)"; false; }; }
copying() {   # A's migration task is in its disk copy
  api GET /api/v1/tasks
  jq -e '.[] | select(.kind == "vm.migrate" and .status == "running") | .message | test("copying disks: [1-9][0-9]* of")' \
    <<<"$body" >/dev/null
}
# The guest reads 16 bytes at sector N of its disk (NULs dropped), between two marks.
# The guest reads its 8-byte marker at sector N of its disk (the rest of the sector is the base's data).
read_marker() { type_into mover "echo R$1=\$(dd if=/dev/vda bs=512 skip=$1 count=1 2>/dev/null | head -c 8)=
"; }
start_b() {
  start_listening B 127.0.0.1
  dest="https://$listen"
  dest_fingerprint=$fingerprint
}

scratch=$(mktemp -d "${TMPDIR:-/tmp}/corral-scratch.XXXXXX")
# 48 MiB of data under the VM's disk (its base): at 8 MiB/s the copy lasts long enough to write
# into it and to kill the destination during it.
head -c 48M /dev/urandom >"$scratch/root.raw"
image_json=$(jq -n --arg k "$kernel" --arg i "$initrd" --arg r "$scratch/root.raw" \
  '{name: "tiny", kernel: $k, initrd: $i, root: $r, cmdline: "console=ttyS0 panic=-1"}')

echo "== two corralds, each with its own folder for pool local"
start_b
api POST /api/v1/tokens '{"name":"migrations"}'
export CORRAL_DEST_TOKEN
CORRAL_DEST_TOKEN=$(jqb .token)
mkdir -p "$state/local-b"
api POST /api/v1/pools "$(jq -n --arg p "$state/local-b" '{name: "local", path: $p}')"
check "B: pool local on B's folder" test "$code" = 201
b_local="$state/local-b"
api POST /api/v1/images "$image_json"
wait_task "$(jqb .task)" 60
check "B: image tiny" test "$(jqb .status)" = succeeded
start_side A
mkdir -p "$state/local-a"
a_local="$state/local-a"
api POST /api/v1/pools "$(jq -n --arg p "$a_local" '{name: "local", path: $p}')"
check "A: pool local on A's folder" test "$code" = 201
api POST /api/v1/images "$(jq '.pool = "local"' <<<"$image_json")"
wait_task "$(jqb .task)" 60
check "A: image tiny, its root volume in pool local" test "$(jqb .status)" = succeeded
api POST /api/v1/vms '{"name":"mover","image":"tiny","memory_mib":128,"cmdline":"corral.then=shell corral.shutdown=graceful","nics":[]}'
check "A: VM mover defined" test "$code" = 201
disk=$(jqb '.disks[0].volume')
a_disk="$a_local/$disk.qcow2"
check "  ... its disk is a file in A's folder" test -f "$a_disk"
"$corral" vm start mover >/dev/null 2>&1
check "A: mover boots to its shell" wait_console mover 'corral:~#' 120
type_into mover 'echo BEFORE$((6*7)) | dd of=/dev/vda bs=512 seek=100 conv=fsync 2>/dev/null; echo W1-$((6*7))
'
check "A: the guest wrote a marker on its disk" wait_console mover 'W1-42' 30

echo "== refused before anything moves: too little room in B's pool"
on B
tls_api "$CORRAL_DEST_TOKEN" POST /api/v1/migrations "$(jq -n --arg v "$disk" '{name: "mover", image: "tiny",
  nics: [], disks: [{pool: "local", volume: $v}], migration: {origin: "a",
  pools: [{name: "local", identity: "00000000000000000000000000000000"}],
  disks: [{pool: "local", volume: $v, size_bytes: 70368744177664}]}}')"
check "a 64 TiB disk: 409 naming migration.disks" test "$code,$(jqb .error.field)" = "409,migration.disks"
check "  ... saying what the pool has free" grep -qF "pool local on" <<<"$(jqb .error.message)"
check "  ... and nothing was created in B's folder" test -z "$(ls "$b_local")"
tls_api "$CORRAL_DEST_TOKEN" POST /api/v1/migrations "$(jq -n --arg v "$disk" '{name: "mover", image: "tiny",
  engine: "native", nics: [], disks: [{pool: "local", volume: $v}], migration: {origin: "a",
  pools: [{name: "local", identity: "00000000000000000000000000000000"}],
  disks: [{pool: "local", volume: $v, size_bytes: 1048576}]}}')"
check "a VM on the native engine: 400 naming disks" test "$code,$(jqb .error.field)" = "400,disks"
check "  ... it needs a shared pool there" grep -qF "needs a shared pool on the native engine" <<<"$(jqb .error.message)"
check "  ... and the volume made for the copy is gone again" test -z "$(ls "$b_local")"

echo "== the destination corrald killed during the disk copy"
on A
kill_out="$state/kill.out"
"$corral" vm migrate mover --to "$dest" --dest-fingerprint "$dest_fingerprint" --bandwidth-mib 8 >"$kill_out" 2>&1 &
migrate_pid=$!
check "A: the disk copy is under way" wait_until 60 copying
on B
kill -KILL "$corrald_pid"
wait "$corrald_pid" 2>/dev/null
corrald_pid=""
on A
wait "$migrate_pid"
rc=$?
out=$(cat "$kill_out")
check "the migration failed: exit 4" test "$rc" = 4
check "  ... saying the VM runs on here" says "runs on here"
check "  ... mover runs on at A" runs_on_a
read_marker 100
check "A: the guest reads its marker back" wait_console mover 'R100=BEFORE42=' 30
# B's half: its incoming QEMU and the copy it served go when B's corrald comes back.
start_b
check "B, back: no record of mover" wait_until 20 eval 'api GET /api/v1/vms/mover; [ "$code" = 404 ]'
check "  ... nor its copy in B's folder" wait_until 20 eval '[ ! -e "$b_local/$disk.qcow2" ]'

echo "== the migration, its disk copied"
on A
mig_out="$state/migrate.out"
"$corral" vm migrate mover --to "$dest" --dest-fingerprint "$dest_fingerprint" --bandwidth-mib 8 >"$mig_out" 2>&1 &
migrate_pid=$!
check "A: the disk copy is under way" wait_until 60 copying
type_into mover 'echo DURING$((6*7)) | dd of=/dev/vda bs=512 seek=200 conv=fsync 2>/dev/null; echo W2-$((6*7))
'
check "A: the guest wrote a second marker" wait_console mover 'W2-42' 30
copying && echo "  (written during the disk copy)"
wait "$migrate_pid"
rc=$?
out=$(cat "$mig_out")
check "corral vm migrate mover: exit 0" test "$rc" = 0
check "  ... saying the disk was copied" says "disks copied, their volumes here deleted: local/$disk"
echo "  $out"
api GET /api/v1/vms/mover
check "A no longer lists mover" test "$code" = 404
check "A's volume is gone" test ! -e "$a_disk"
on B
api GET /api/v1/vms/mover
check "B runs mover" test "$(jqb .state)" = running
check "B's volume exists in its own folder" test -f "$b_local/$disk.qcow2"
read_marker 100
check "B: the guest reads the marker written before the move from its disk" wait_console mover 'R100=BEFORE42=' 30
read_marker 200
check "  ... and the one written during the copy" wait_console mover 'R200=DURING42=' 30
# A clean stop: a killed QEMU leaves its lazy refcounts for the next open to repair.
"$corral" vm stop mover >/dev/null 2>&1
check "B stops mover (the guest shuts down)" wait_state mover stopped 60
check "B's volume passes qemu-img check" qemu-img check -q "$b_local/$disk.qcow2"
check "  ... a flat qcow2 (no backing file)" eval '! qemu-img info "$b_local/$disk.qcow2" | grep -q "backing file"'

[ "$failed" -gt 0 ] && { on B; corrald_failure_report mover; on A; corrald_failure_report mover; }
check_summary
