#!/usr/bin/env bash
# tests/integration/daemon/backup_boot.sh: `corral backup verify --boot` (docs/backup.md "Proven to
# boot"). A real corrald and the project's guest (tools/guest-image) on the emulated engine (QEMU
# TCG): a backup of a good VM boots (the verdict and its time in backup list/show and the API); a
# backup of a VM whose root file system was damaged before the backup fails, naming the reason
# (its console's last lines); the throwaway VM and its volumes are gone after both; a throwaway VM
# left by a killed corrald is removed at the next start; bad input is a 400 naming the field.
# Exit status: 0 all passed, 1 a check failed, 77 skipped. Ends with "N passed, N failed".
set -uo pipefail
script=$(readlink -f "${BASH_SOURCE[0]}")
repo=$(cd "$(dirname "$script")/../../.." && pwd)
build_dir="${CORRAL_BUILD_DIR:-$repo/build}"
command -v qemu-io >/dev/null || { echo "skip: qemu-io is needed (qemu-utils)"; exit 77; }
# shellcheck source=../../lib/guest.sh
. "$repo/tests/lib/guest.sh"
guest_image
# shellcheck source=../../lib/corrald.sh
. "$repo/tests/lib/corrald.sh"
corral_bin="$build_dir/src/cli/corral"
cleanup() {
  # A throwaway VM of a check that was running when the test ended: killed by its pid.
  if [ -n "$corrald_pid" ]; then
    api GET /api/v1/vms
    for pid in $(jq -r '.[] | select(.name | startswith("corral-bootcheck-")) | .pid // empty' <<<"$body"); do
      kill -KILL "$pid" 2>/dev/null
    done
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
field_is() { [ "$code" = "$1" ] && [ "$(jqb .error.field)" = "$2" ] || { echo "  $code $body"; false; }; }
# No throwaway VM, and no volume of one, is left.
no_throwaway() {
  api GET /api/v1/vms
  [ "$(jqb '[.[] | select(.name | startswith("corral-bootcheck-"))] | length')" = 0 ] || { echo "  VMs: $body"; return 1; }
  api GET /api/v1/volumes
  [ "$(jqb '[.[] | select(.name | startswith("corral-bootcheck-"))] | length')" = 0 ] || { echo "  volumes: $body"; return 1; }
}

corrald_start || exit 1
api POST /api/v1/images "$(jq -n --arg k "$kernel" --arg i "$initrd" --arg r "$rootfs" \
  '{name: "debian", kernel: $k, initrd: $i, root: $r}')"
wait_task "$(jqb .task)" 120
check "image imported" test "$(jqb .status)" = succeeded
corral_run 0 vm create good --image debian --memory 256M
check "VM good defined (stopped)" true
# The image's command line ends in a shell (corral.then=shell), where a guest whose root failed
# would sit until the timeout; powering off instead ends the check as soon as the root failed.
corral_run 0 vm create bad --image debian --memory 256M --cmdline corral.then=poweroff
check "VM bad defined (stopped)" true
# The damage: the first 4 MiB of bad's root disk zeroed (its ext4 superblock), before the backup.
api GET /api/v1/volumes/default/bad-root
qemu-io -f qcow2 -c "write -z 0 4M" "$(jqb .path)" >/dev/null
check "bad's root file system damaged (qemu-io)" test $? = 0
corral_run 0 backup repo create main --path "$state/repos/main"
corral_run 0 backup create good
corral_run 0 backup create bad
api GET "/api/v1/backups?vm=good"
good=$(jqb '.[0].id')
api GET "/api/v1/backups?vm=bad"
bad=$(jqb '.[0].id')
check "both backed up ($good, $bad)" test -n "$good" -a -n "$bad" -a "$good" != null -a "$bad" != null

echo "== bad input"
api POST "/api/v1/backups/$good/verify" '{"boot":"yes"}'
check "boot of the wrong type: 400 naming boot" field_is 400 boot
api POST "/api/v1/backups/$good/verify" '{"boot":true,"timeout_s":"60"}'
check "timeout_s of the wrong type: 400 naming timeout_s" field_is 400 timeout_s
api POST "/api/v1/backups/$good/verify" '{"boot":true,"timeout_s":5}'
check "timeout_s 5: 400 naming timeout_s" field_is 400 timeout_s
check "  ... saying the allowed range" grep -qF "10 to 3600" <<<"$(jqb .error.message)"
api POST "/api/v1/backups/$good/verify" '{"boot":true,"timeout_s":3601}'
check "timeout_s 3601: 400 naming timeout_s" field_is 400 timeout_s
api POST "/api/v1/backups/$good/verify" '{"boot":true,"ready":"(unclosed"}'
check "a ready pattern that is no regular expression: 400 naming ready" field_is 400 ready
api POST "/api/v1/backups/$good/verify" '{"timeout_s":60}'
check "timeout_s without boot: 400 naming timeout_s" field_is 400 timeout_s
api POST /api/v1/vms '{"name":"corral-bootcheck-mine"}'
check "a VM name with the boot checks' prefix is reserved: 400 naming name" field_is 400 name
api POST "/api/v1/backups/$good/restore" '{"as":"corral-bootcheck-mine"}'
check "  ... for restore --as too: 400 naming as" field_is 400 as
check "no task or VM was made by any of these" no_throwaway

echo "== a good backup boots"
corral_run 0 backup verify "$good" --boot --timeout 300
check "backup verify --boot of good passes" says "backup $good boots"
echo "  ($out)"
check "  ... naming the ready pattern it saw" says "'CORRAL-INIT: up|login: *\$'"
check "the throwaway VM and its volumes are gone" no_throwaway
api GET "/api/v1/backups/$good"
check "GET /backups/ID: boot.state passed" test "$(jqb .boot.state)" = passed
check "  ... with when and how long" test "$(jqb .boot.at)" != null -a "$(jqb '.boot.seconds > 0')" = true
corral_run 0 backup list good
check "backup list shows it booted" grep -qE "^$good .*passed 20" <<<"$out"

echo "== a backup of a damaged root disk does not"
corral_run 4 backup verify "$bad" --boot --timeout 300
check "backup verify --boot of bad fails (exit 4)" says "backup $bad did not boot"
echo "  ($out)"
check "  ... because the root file system could not be mounted (the console's last lines)" says "CORRAL-INIT: root /dev/vda failed"
check "  ... and the VM stopped without the ready pattern" says "without the ready pattern"
check "the throwaway VM and its volumes are gone" no_throwaway
corral_run 0 backup show "$bad"
shows() { grep -qE -- "$1" <<<"$out" || { echo "  expected /$1/ in: $out"; false; }; }
check "backup show: booted failed, with the reason" shows "booted: +failed 20.*: .*root /dev/vda failed"
api GET "/api/v1/backups?vm=bad"
check "GET /backups: boot.state failed" test "$(jqb '.[0].boot.state')" = failed -a "$(jqb '.[0].boot.seconds')" = null

echo "== a cancelled check removes its VM and records nothing"
api POST "/api/v1/backups/$good/verify" '{"boot":true,"timeout_s":300,"ready":"^never printed$"}'
task=$(jqb .task)
wait_until 120 bash -c "curl -s --unix-socket '$sock' http://corral/api/v1/tasks/$task | jq -e '.message | startswith(\"waiting\")' >/dev/null"
check "a check with a pattern the guest never prints reached its wait" test $? = 0
api POST "/api/v1/tasks/$task/cancel"
wait_task "$task" 120
check "  ... cancelled" test "$(jqb .status)" = cancelled
check "  ... its throwaway VM and volumes are gone" no_throwaway
api GET "/api/v1/backups/$good"
check "  ... and the backup's verdict is still the last real one" test "$(jqb .boot.state)" = passed

echo "== a throwaway VM left by a killed corrald goes at the next start"
api POST "/api/v1/backups/$good/verify" '{"boot":true,"timeout_s":300}'
task=$(jqb .task)
wait_until 120 bash -c "curl -s --unix-socket '$sock' http://corral/api/v1/tasks/$task | jq -e '.message | startswith(\"waiting\")' >/dev/null"
check "a second check reached its wait" test $? = 0
kill -KILL "$corrald_pid"
wait "$corrald_pid" 2>/dev/null
corrald_pid=""
corrald_start || exit 1
wait_until 60 no_throwaway
check "the restarted corrald removed the throwaway VM and its volumes" no_throwaway
api GET "/api/v1/tasks"
check "  ... in a backup.boot-cleanup task" test "$(jqb '[.[] | select(.kind == "backup.boot-cleanup" and .status == "succeeded")] | length')" = 1

[ "$failed" -gt 0 ] && corrald_failure_report
check_summary
