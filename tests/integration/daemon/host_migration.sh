#!/usr/bin/env bash
# tests/integration/daemon/host_migration.sh: `corral vm migrate VM --to https://HOST:PORT` between
# two real corralds (separate state folders, one machine), both with a directory pool on one shared
# folder, on the emulated engine (real QEMU). A shell guest keeps a value set before the move and
# answers on the destination's console after it; the source no longer lists the VM and cleaned its
# run folder; the disk file is kept. Refusals before anything moves (unreachable, bad token, bad
# fingerprint, a taken name, a missing pool, a pool that is not shared, too little memory), each
# leaving the VM running at the source; the destination's incoming QEMU killed mid-way: the source
# runs on and the destination keeps no record; the source's corrald stopped (SIGSTOP) mid-stream:
# the destination discards its half after 30 s without a byte, and the source, continued, runs on; the
# destination refusing the finish once the whole stream arrived (its token revoked mid-stream): the
# source, which kept its QEMU paused, runs on, and the destination discards its half 30 s after the
# stream's end. Pre-flights whose stream never comes: their
# incoming QEMUs go on a DELETE, after the stream's wait (60 s) and at the destination corrald's stop.
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
shared=$(mktemp -d "${TMPDIR:-/tmp}/corral-shared.XXXXXX")
cleanup() {
  two_corralds_cleanup
  rm -rf -- "$shared" "$scratch"
}
trap cleanup EXIT
migrate() {   # migrate ARGS...: corral vm migrate on A; output in $out, exit code in $rc
  out=$("$corral" vm migrate "$@" 2>&1)
  rc=$?
}
runs_on_a() { api GET /api/v1/vms/mover; [ "$(jqb .state)" = running ] || { echo "  state $(jqb .state)"; false; }; }

scratch=$(mktemp -d "${TMPDIR:-/tmp}/corral-scratch.XXXXXX")
truncate -s 1M "$scratch/root.raw"   # an image needs a root volume; this guest never mounts it
# The image by the same name on both hosts (its kernel boots nothing at the destination: the
# migration brings the running guest); A's root volume, which the VM's disk is a clone of, is on
# the shared pool.
image_json=$(jq -n --arg k "$kernel" --arg i "$initrd" --arg r "$scratch/root.raw" \
  '{name: "tiny", kernel: $k, initrd: $i, root: $r, cmdline: "console=ttyS0 panic=-1"}')

echo "== two corralds, one shared pool folder"
start_listening B 127.0.0.1
dest="https://$listen"
dest_fingerprint=$fingerprint
api POST /api/v1/tokens '{"name":"migrations"}'
export CORRAL_DEST_TOKEN
CORRAL_DEST_TOKEN=$(jqb .token)
api POST /api/v1/pools "$(jq -n --arg p "$shared" '{name: "shared", path: $p}')"
check "B: pool shared on the shared folder" test "$code" = 201
api POST /api/v1/images "$image_json"
wait_task "$(jqb .task)" 60
check "B: image tiny" test "$(jqb .status)" = succeeded
start_side A
api POST /api/v1/pools "$(jq -n --arg p "$shared" '{name: "shared", path: $p}')"
check "A: pool shared on the same folder" test "$code" = 201
api POST /api/v1/images "$(jq '.pool = "shared"' <<<"$image_json")"
wait_task "$(jqb .task)" 60
check "A: image tiny, its root volume in the shared pool" test "$(jqb .status)" = succeeded

api POST /api/v1/vms '{"name":"mover","image":"tiny","memory_mib":256,"cmdline":"corral.then=shell","nics":[]}'
check "A: VM mover defined" test "$code" = 201
disk=$(jqb '.disks[0].volume')
disk_file="$shared/$disk.qcow2"
check "  ... its root disk is a file in the shared folder" test -f "$disk_file"
"$corral" vm start mover >/dev/null 2>&1
check "A: mover boots to its shell" wait_console mover 'corral:~#' 120
type_into mover 'X=kept$((6*7)); echo SET-$X
'
check "A: a value set in the guest's shell" wait_console mover 'SET-kept42' 30

echo "== refusals: nothing moves, mover runs on at A"
migrate mover --to https://127.0.0.1:1 --dest-fingerprint "$dest_fingerprint"
check "unreachable destination: exit 4" test "$rc" = 4
check "  ... saying nothing moved" says "nothing moved, mover runs on here"
check "  ... mover runs on" runs_on_a
CORRAL_DEST_TOKEN=corral_not-a-token migrate mover --to "$dest" --dest-fingerprint "$dest_fingerprint"
check "a bad token: refused" says "nothing moved"
check "  ... naming the token" grep -qi "token" <<<"$out"
migrate mover --to "$dest" --dest-fingerprint "$(tr '0-9A-F' '1-9A-F0' <<<"$dest_fingerprint")"
check "a wrong fingerprint: refused" says "nothing moved"
check "  ... showing the certificate's real one" says "$dest_fingerprint"
on B
api POST /api/v1/vms '{"name":"mover","image":"tiny","memory_mib":64,"nics":[]}'
on A
migrate mover --to "$dest" --dest-fingerprint "$dest_fingerprint"
check "a name taken at the destination: refused" says "a VM named mover already exists on"
check "  ... mover runs on" runs_on_a
on B
api DELETE "/api/v1/vms/mover?volumes=true"
on A

echo "== the destination's pre-flight, as the source's corrald calls it (TLS, token)"
on B
prep() { tls_api "$CORRAL_DEST_TOKEN" POST /api/v1/migrations "$1"; }
prep '{"name":"x","image":"tiny","nics":[],"disks":[{"pool":"lonely","volume":"v"}],"migration":{"origin":"a"}}'
check "a pool missing at the destination: 400 naming disks[0].pool" \
  test "$code" = 400 -a "$(jqb .error.field)" = "disks[0].pool"
prep "$(jq -n --arg v "$disk" '{name: "x", image: "tiny", nics: [], disks: [{pool: "shared", volume: $v}], migration: {origin: "a", pools: [{name: "shared", identity: "00000000000000000000000000000000"}]}}')"
check "a pool that is another folder: 400" test "$code" = 400 -a "$(jqb .error.field)" = disks
check "  ... saying h2 does not share it" grep -qF "does not share with a" <<<"$(jqb .error.message)"
prep '{"name":"x","image":"tiny","nics":[],"memory_mib":999999999,"migration":{"origin":"a"}}'
check "more memory than the destination has: 400 naming memory_mib" test "$code" = 400 -a "$(jqb .error.field)" = memory_mib
prep '{"name":"x","image":"tiny","nics":[],"migration":{"origin":7}}'
check "migration.origin of the wrong type: 400 naming it" test "$code" = 400 -a "$(jqb .error.field)" = migration.origin
api GET /api/v1/vms
check "  ... and no VM was made at the destination" test "$(jqb length)" = 0
# Pre-flights whose stream never comes (a source gone, or a client that only sends this): each
# incoming QEMU goes on a DELETE, after the stream's wait (60 s; w2 is checked at the end, the
# migrations between overlap the wait), and at corrald's stop (w3, at the end).
has_qemu() { corrald_processes | grep "^vm $1 " >/dev/null; }   # (grep -q would cut the pipe)
no_qemu() { ! has_qemu "$1"; }
waiter() { prep "{\"name\":\"$1\",\"image\":\"tiny\",\"nics\":[],\"disks\":[],\"memory_mib\":64,\"migration\":{\"origin\":\"a\"}}"; }
waiter w1
check "a pre-flight with no stream after it: 201, w1 migrating-in" test "$code,$(jqb .state)" = 201,migrating-in
w1_id=$(jqb .id)
check "  ... its QEMU waits" has_qemu w1
tls_api "$CORRAL_DEST_TOKEN" DELETE "/api/v1/migrations/$w1_id"
check "DELETE /migrations/$w1_id: 200 discarding w1" test "$code,$(jqb .discarded)" = 200,w1
check "  ... its QEMU is gone" no_qemu w1
check "  ... and its record and run folder" eval 'api GET /api/v1/vms/w1; [ "$code" = 404 ] && [ ! -e "$state/run/w1" ]'
waiter w2
check "w2 waits for its stream too" test "$code" = 201
on A

echo "== the destination's QEMU killed mid-way"
# At 1 MiB/s a guest that rewrites 16 MiB over and over (1 ms downtime allowed) never converges:
# once A's task has sent a MiB the stream is surely in flight, and it stays so until the kill.
type_into mover 'while :; do dd if=/dev/urandom of=/dev/shm/churn bs=1M count=16 2>/dev/null; done &
'
kill_out="$state/kill.out"
"$corral" vm migrate mover --to "$dest" --dest-fingerprint "$dest_fingerprint" --downtime-ms 1 --bandwidth-mib 1 \
  >"$kill_out" 2>&1 &
migrate_pid=$!
in_flight() {
  api GET /api/v1/tasks
  jq -e '.[] | select(.kind == "vm.migrate" and .status == "running") | .message | test("[1-9][0-9]* MiB sent")' \
    <<<"$body" >/dev/null
}
check "A: the stream is in flight (a MiB sent, at 1 MiB/s)" wait_until 60 in_flight
on B
api GET /api/v1/vms/mover
incoming_pid=$(jqb .pid)
check "B: mover is there in state migrating-in" test "$(jqb .state)" = migrating-in
kill -KILL "$incoming_pid" 2>/dev/null
wait "$migrate_pid"
rc=$?
out=$(cat "$kill_out")
on A
check "the migration failed: exit 4" test "$rc" = 4
check "  ... saying the VM runs on here" says "the VM runs on here"
check "  ... mover runs on at A" runs_on_a
on B
check "B discarded its half (no record)" wait_until 20 eval 'api GET /api/v1/vms/mover; [ "$code" = 404 ]'
on A
type_into mover 'kill %1; echo STILL-$X
'
check "A: the guest goes on, its value kept" wait_console mover 'STILL-kept42' 30

echo "== the source stalls mid-stream (its corrald stopped): the destination gives up its half"
type_into mover 'while :; do dd if=/dev/urandom of=/dev/shm/churn bs=1M count=16 2>/dev/null; done &
'
"$corral" vm migrate mover --to "$dest" --dest-fingerprint "$dest_fingerprint" --downtime-ms 1 --bandwidth-mib 1 \
  >"$kill_out" 2>&1 &
migrate_pid=$!
check "A: the stream is in flight again" wait_until 60 in_flight
kill -STOP "$corrald_pid"   # A's corrald (this test's): its relay sends nothing more
on B
check "B: mover is there in state migrating-in" eval 'api GET /api/v1/vms/mover; [ "$(jqb .state)" = migrating-in ]'
incoming_pid=$(jqb .pid)
# 30 s with no byte on its streams (MigrationService::k_stream_stall_wait), checked each second.
check "B discarded its half once its stream stalled (no record)" \
  wait_until 60 eval 'api GET /api/v1/vms/mover; [ "$code" = 404 ]'
check "  ... its QEMU gone" eval '! kill -0 "$incoming_pid" 2>/dev/null'
check "  ... saying why" grep -qF "VM mover: its migration stream from" "$state/corrald.log"
on A
kill -CONT "$corrald_pid"
wait "$migrate_pid"
rc=$?
out=$(cat "$kill_out")
check "A, going on: the migration failed (exit 4)" test "$rc" = 4
check "  ... mover runs on at A" runs_on_a
type_into mover 'kill %1; echo AGAIN-$X
'
check "A: the guest goes on, its value kept" wait_console mover 'AGAIN-kept42' 30

echo "== B cannot run it once the whole stream arrived: the source kept its paused copy, which runs on"
# The source keeps its QEMU, paused, until B says the guest runs there. Here B refuses the
# finish: the token this migration uses is revoked at B while the stream is in flight (80 MiB
# the guest wrote, at 8 MiB/s: 10 s), so the stream, let in when it opened, goes to its end and
# then B answers the finish 401. A resumes its copy; B discards its half once no finish came.
on B
api POST /api/v1/tokens '{"name":"one-move"}'
one_move_token=$(jqb .token)
on A
type_into mover 'yes corral | head -c 80M >/dev/shm/fill; echo FILLED
'
api GET /api/v1/vms/mover
pid_at_a=$(jqb .pid)
check "A: the guest filled 80 MiB of its memory" wait_console mover 'FILLED' 120
qemus_at_a=$(corrald_processes | grep -c '^vm mover ')   # its QEMU (and its shim)
CORRAL_DEST_TOKEN=$one_move_token "$corral" vm migrate mover --to "$dest" --dest-fingerprint "$dest_fingerprint" \
  --bandwidth-mib 8 >"$kill_out" 2>&1 &
migrate_pid=$!
check "A: the stream is in flight" wait_until 60 in_flight
on B
api DELETE /api/v1/tokens/one-move
check "B: the migration's token revoked mid-stream" test "$code" = 200
api GET /api/v1/vms/mover
incoming_pid=$(jqb .pid)
on A
wait "$migrate_pid"
rc=$?
out=$(cat "$kill_out")
check "the migration failed: exit 4" test "$rc" = 4
check "  ... after the whole stream went: B did not run it" says "whole stream went to $dest, but $dest did not run it"
check "  ... saying mover runs on here" says "mover runs on here"
check "  ... mover runs on at A" runs_on_a
check "  ... its own QEMU, no other" test "$(corrald_processes | grep -c '^vm mover ')" = "$qemus_at_a"
api GET /api/v1/vms/mover
check "  ... the one it had" test "$(jqb .pid)" = "$pid_at_a"
type_into mover 'rm /dev/shm/fill; echo SWITCH-$X
'
check "A: the guest goes on, its value kept" wait_console mover 'SWITCH-kept42' 30
on B
# 30 s after the stream's end with no finish (MigrationService::k_switch_wait), checked each second.
check "B discarded its half (no record)" wait_until 60 eval 'api GET /api/v1/vms/mover; [ "$code" = 404 ]'
check "  ... its QEMU gone" eval '! kill -0 "$incoming_pid" 2>/dev/null && no_qemu mover'
check "  ... saying why" grep -qE "VM mover: .+ sent its whole stream but no finish within 30 s" "$state/corrald.log"
on A

echo "== the migration"
sum_before=$(sha256sum <"$disk_file")
migrate mover --to "$dest" --dest-fingerprint "$dest_fingerprint"
check "corral vm migrate mover --to $dest: exit 0" test "$rc" = 0
check "  ... with the measured figures" says "ms downtime"
echo "  $out"
# Each corrald logs what its side of the relay carried (bytes and an FNV-1a of them, in order).
# B logs its side when its WebSocket ends, which may be just after A's task.
relayed() { grep -o "stream relayed $1: [^(]*" "$2/corrald.log" | tail -n 1 | cut -d: -f2-; }
sent=$(relayed out "$state")
same_at_b() { [ -n "$sent" ] && [ "$(relayed in "${saved_state[B]}")" = "$sent" ]; }
check "the stream arrived whole: what A's relay took from QEMU is what B's gave its QEMU ($sent)" \
  wait_until 10 same_at_b
api GET /api/v1/vms/mover
check "A no longer lists mover" test "$code" = 404
check "A removed mover's run folder" test ! -e "$state/run/mover"
on B
api GET /api/v1/vms/mover
check "B runs mover" test "$(jqb .state)" = running
check "  ... migrated in from A" grep -qF "migrated in from" <<<"$(jqb .state_reason)"
type_into mover 'echo GOT-$X
'
check "B's console answers, the value set at A kept" wait_console mover 'GOT-kept42' 30
"$corral" vm stop mover --force >/dev/null 2>&1
check "B stops mover" wait_state mover stopped 30
check "the disk file is still there" test -f "$disk_file"
check "  ... unchanged" test "$(sha256sum <"$disk_file")" = "$sum_before"

echo "== incoming migrations whose stream never came"
on B
check "w2 was discarded after the stream's wait, its QEMU gone" \
  wait_until 90 eval 'api GET /api/v1/vms/w2; [ "$code" = 404 ] && no_qemu w2'
check "  ... saying why" grep -qF "VM w2: no migration stream from a within 60 s" "$state/corrald.log"
waiter w3
check "w3 waits for its stream" test "$code" = 201
check "  ... its QEMU waits while corrald runs" has_qemu w3
corrald_stop
check "B stopped: w3's QEMU did not outlive it" no_qemu w3
check "  ... nor any QEMU of B's" test -z "$(corrald_processes)"
on A

[ "$failed" -gt 0 ] && { on B; corrald_failure_report mover; on A; corrald_failure_report mover; }
check_summary
