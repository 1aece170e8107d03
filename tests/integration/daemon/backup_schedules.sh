#!/usr/bin/env bash
# tests/integration/daemon/backup_schedules.sh: backup schedules that corrald runs (docs/backup.md
# "Schedules"): create (the next run shown, in the host's local time), list, run now (a backup made,
# the keep rules applied, the outcome recorded on the schedule), a run missed while corrald was
# down runs once at its next start, a running VM with a raw disk (no live backup) gives a failed
# run with the reason, delete; bad
# input (25:00, an unknown day, keep 0) is a 400 naming the field; a schedule with --verify-boot
# proves its backup boots. A real corrald, real QEMU for
# the running VM (the project's guest on the emulated engine).
# Exit status: 0 all passed, 1 a check failed, 77 skipped. Ends with "N passed, N failed".
set -uo pipefail
script=$(readlink -f "${BASH_SOURCE[0]}")
repo=$(cd "$(dirname "$script")/../../.." && pwd)
build_dir="${CORRAL_BUILD_DIR:-$repo/build}"
# shellcheck source=../../lib/guest.sh
. "$repo/tests/lib/guest.sh"
guest_image
# shellcheck source=../../lib/corrald.sh
. "$repo/tests/lib/corrald.sh"
corral_bin="$build_dir/src/cli/corral"
cleanup() {
  if [ -n "$corrald_pid" ]; then api GET /api/v1/vms/live; [ "$(jqb .pid)" != null ] && kill -KILL "$(jqb .pid)" 2>/dev/null; fi
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
field_is() { [ "$code" = "$1" ] && [ "$(jqb .error.field)" = "$2" ] || { echo "  $code $body"; false; }; }
backups_of() { api GET "/api/v1/backups?vm=$1"; jqb length; }

corrald_start || exit 1
api POST /api/v1/volumes '{"name":"web-root","size":"16M"}'
qemu-io -f qcow2 -c "write -P 0x5a 0 4M" "$(jqb .path)" >/dev/null 2>&1
api POST /api/v1/vms '{"name":"web","memory_mib":128,"disks":[{"pool":"default","volume":"web-root"}],"nics":[]}'
check "VM web defined (stopped)" test "$code" = 201
corral_run 0 backup repo create main --path "$state/repos/main"

echo "== bad input"
api POST /api/v1/backup-schedules '{"vm":"web","time":"25:00"}'
check "time 25:00: 400 naming time" field_is 400 time
check "  ... saying what is allowed" grep -qF "HH:MM, 00:00 to 23:59" <<<"$(jqb .error.message)"
api POST /api/v1/backup-schedules '{"vm":"web","time":"02:00","day":"funday"}'
check "an unknown day: 400 naming day" field_is 400 day
api POST /api/v1/backup-schedules '{"vm":"web","time":"02:00","keep_last":0}'
check "keep_last 0: 400 naming keep_last" field_is 400 keep_last
api POST /api/v1/backup-schedules '{"vm":"web","time":"02:00","verify_boot":"yes"}'
check "verify_boot of the wrong type: 400 naming verify_boot" field_is 400 verify_boot
api POST /api/v1/backup-schedules '{"vm":"ghost","time":"02:00"}'
check "an unknown VM: 404 naming vm" field_is 404 vm
corral_run 2 backup schedule create web --daily 2:00
check "corral backup schedule create --daily 2:00 says what is allowed" says "HH:MM"
api GET /api/v1/backup-schedules
check "nothing was made" test "$(jqb length)" = 0

echo "== create, list"
corral_run 0 backup schedule create web --daily 02:00 --keep-last 1
check "schedule create web --daily 02:00 --keep-last 1" says "daily 02:00"
api GET /api/v1/backup-schedules
id=$(jqb '.[0].id')
next=$(jqb '.[0].next_run')
check "listed with its next run ($next)" test "$next" != null
check "  ... at 02:00 local time, within a day" bash -c '
  t=$(date -d "$1" +%s) && [ "$(date -d "@$t" +%H:%M)" = 02:00 ] && [ "$t" -gt "$(date +%s)" ] && [ "$t" -le $(( $(date +%s) + 86400 )) ]' _ "$next"
corral_run 0 backup schedule list
check "schedule list shows it" says "$id"

echo "== run now, twice: a backup each time, keep-last 1 leaves one"
corral_run 0 backup schedule run "$id"
check "schedule run: a backup" says "backup web-"
check "  ... pruned" says "prune: 1 kept, 0 removed"
corral_run 0 backup schedule run "$id"
check "the second run pruned the first backup" says "prune: 1 kept, 1 removed"
check "web has one backup" test "$(backups_of web)" = 1
api GET "/api/v1/backup-schedules/$id"
check "the schedule records the run: succeeded, its backup" test "$(jqb .last_result)" = succeeded -a "$(jqb .last_backup)" != null -a "$(jqb .last_run)" != null
check "  ... its next run unchanged" test "$(jqb .next_run)" = "$next"

echo "== a run missed while corrald was down runs once at its next start"
corrald_stop
jq '.[0].next_run = 1000' "$state/backup-schedules.json" >"$state/s.json" && mv "$state/s.json" "$state/backup-schedules.json"
corrald_start || exit 1
wait_until 60 bash -c "curl -s --unix-socket '$sock' http://corral/api/v1/backup-schedules/$id | jq -e '.last_result == \"succeeded\" and .last_backup != \"$(jqb .last_backup)\"' >/dev/null"
missed=$?
[ "$missed" = 0 ] || { api GET "/api/v1/backup-schedules/$id"; echo "  the schedule: $body"; }
check "the missed run ran at the start" test "$missed" = 0
api GET "/api/v1/backup-schedules/$id"
check "  ... and the next run is in the future again" bash -c '[ "$(date -d "$1" +%s)" -gt "$(date +%s)" ]' _ "$(jqb .next_run)"
api GET /api/v1/tasks
check "  ... once (three runs in all, two of them by hand)" test "$(jqb '[.[] | select(.kind == "backup.schedule")] | length')" = 3

echo "== a running VM that cannot be backed up live: a failed run with the reason"
api POST /api/v1/images "$(jq -n --arg k "$kernel" --arg i "$initrd" --arg r "$rootfs" '{name: "debian", kernel: $k, initrd: $i, root: $r}')"
wait_task "$(jqb .task)" 120
# A writable raw disk cannot hold the snapshot a live backup reads (docs/backup.md "Running VMs").
api POST /api/v1/volumes '{"name":"live-raw","size":"8M","format":"raw"}'
corral_run 0 vm create live --image debian --memory 256M --engine emulated --disk default/live-raw
corral_run 0 vm start live
corral_run 0 backup schedule create live --daily 03:30 --weekly sunday
check "a weekly schedule" says "sunday 03:30"
api GET /api/v1/backup-schedules
live_id=$(jqb '.[] | select(.vm == "live") | .id')
corral_run 4 backup schedule run "$live_id"
check "its run fails saying the running VM's raw disk cannot be read live" says "is raw"
api GET "/api/v1/backup-schedules/$live_id"
check "  ... recorded on the schedule" test "$(jqb .last_result)" = failed
check "  ... with the reason and what to do" grep -qF "stop the VM first" <<<"$(jqb .last_message)"
corral_run 0 backup schedule list
check "schedule list shows the failure" says "failed: VM live is running"
api PUT /api/v1/vms/live/state '{"action":"kill"}'

echo "== --verify-boot: the run proves its backup boots"
wait_state live stopped 60
check "live is stopped now" test "$(jqb .state)" = stopped
corral_run 0 backup schedule create live --daily 04:00 --keep-last 2 --verify-boot
api GET /api/v1/backup-schedules
boot_id=$(jqb '.[] | select(.vm == "live" and .verify_boot) | .id')
corral_run 0 backup schedule run "$boot_id"
check "the run backed up, pruned and booted the backup" says "boots: its console showed the ready pattern"
api GET "/api/v1/backup-schedules/$boot_id"
api GET "/api/v1/backups/$(jqb .last_backup)"
check "  ... the backup's verdict: passed" test "$(jqb .boot.state)" = passed

echo "== delete"
corral_run 0 backup schedule delete "$id"
check "schedule delete" says "deleted backup schedule $id"
api GET "/api/v1/backup-schedules/$id"
check "  ... gone: 404 naming id" field_is 404 id
check "  ... its backup stays" test "$(backups_of web)" = 1

[ "$failed" -gt 0 ] && corrald_failure_report
check_summary
