#!/usr/bin/env bash
# tests/e2e/console_limits.sh: what a guest's console can cost the host, with a real corrald, a
# real QEMU guest (the emulated engine) that prints without end, and the real CLI.
#
# Checks: the console log stays bounded (rotated to console.log.1) while the guest prints; the
# log and the VM's disk are private (0600); a paste of MiBs into the console of a paused guest is
# dropped (the client is told) while `GET /vms/NAME` and a new console session still answer; a
# new corrald adopting the VM with a console log of hundreds of MiB reads only its tail (its peak
# RSS stays far below the log's size). Exit 0 all passed, 1 a check failed, 77 skipped.
set -uo pipefail
script=$(readlink -f "${BASH_SOURCE[0]}")
repo=$(cd "$(dirname "$script")/../.." && pwd)
build_dir="${CORRAL_BUILD_DIR:-$repo/build}"
corral="$build_dir/src/cli/corral"
# shellcheck source=../lib/guest.sh
. "$repo/tests/lib/guest.sh"
guest_image

# shellcheck source=../lib/corrald.sh
. "$repo/tests/lib/corrald.sh"
paste_pid=""
cleanup() {
  [ -n "$paste_pid" ] && kill "$paste_pid" 2>/dev/null
  if [ -n "$corrald_pid" ]; then api PUT /api/v1/vms/flood/state '{"action":"kill"}'; sleep 1; fi
  corrald_stop
  [ -n "${vm_pid:-}" ] && kill -KILL "$vm_pid" 2>/dev/null
  rm -rf -- "$state"
}
trap cleanup EXIT
export CORRAL_SOCKET="$sock"
boot_wait=${CORRAL_BOOT_WAIT:-300}   # seconds; TCG on a busy 2-core host
max_log=$((2 * 1024 * 1024))   # engine/console_log.h k_console_log_max_bytes
slack=$((256 * 1024))          # corrald checks the log every 64 KiB it relays
mode_of() { stat -c %a "$1"; }
size_of() { stat -c %s "$1" 2>/dev/null || echo 0; }

corrald_start || exit 1
import_guest_image debian
# Each line also carries an OSC 52 sequence (a hostile guest setting the operator's clipboard).
run_param=$("$repo/tools/guest-image" encode-run \
  "while :; do printf 'corral-flood-line \\033]52;c;cm0gLXJmIH4K\\007 with some text to fill the console\\n'; done")
"$corral" vm create flood --image debian --memory 256M --cmdline "$run_param" >"$state/out" 2>&1
check "corral vm create flood (a guest that prints forever)" test $? = 0
"$corral" vm start flood >"$state/out" 2>&1
check "corral vm start flood" test $? = 0
api GET /api/v1/vms/flood
vm_pid=$(jqb .pid)
run_dir="$state/run/flood"
log="$run_dir/console.log"

echo "== the console log stays bounded"
check "the guest prints" wait_console flood 'corral-flood-line' "$boot_wait"
deadline=$((SECONDS + boot_wait)) largest=0
while ((SECONDS < deadline)) && [ ! -e "$log.1" ]; do
  s=$(size_of "$log"); ((s > largest)) && largest=$s
  sleep 0.5
done
check "the log was rotated to console.log.1" test -e "$log.1"
for ((i = 0; i < 20; i++)); do s=$(size_of "$log"); ((s > largest)) && largest=$s; sleep 0.5; done
check "console.log never grew past $max_log bytes (+ $slack): largest seen $largest" test "$largest" -le $((max_log + slack))
check "console.log.1 holds at most $max_log bytes ($(size_of "$log.1"))" test "$(size_of "$log.1")" -le "$max_log"
check "the console log is private (0600, was $(mode_of "$log"))" test "$(mode_of "$log")" = 600
check "the rotated log is private (0600, was $(mode_of "$log.1"))" test "$(mode_of "$log.1")" = 600
api GET /api/v1/volumes/default/flood-root
check "the VM's disk is private (0600, was $(mode_of "$(jqb .path)"))" test "$(mode_of "$(jqb .path)")" = 600

echo "== guest control sequences reach the operator's terminal inert"
"$corral" vm console flood --tail 5 >"$state/tail.out" 2>&1
check "corral vm console --tail shows the OSC 52 escaped (^[]52;...^G)" grep -qF '^[]52;c;cm0gLXJmIH4K^G' "$state/tail.out"
check "  ... and prints no ESC or BEL byte" bash -c "! grep -q \$'[\x1b\x07]' '$state/tail.out'"
"$corral" vm show flood >"$state/show.out" 2>&1
check "corral vm show escapes them too" grep -qF '^[]52;c;cm0gLXJmIH4K^G' "$state/show.out"
check "  ... no ESC or BEL byte" bash -c "! grep -q \$'[\x1b\x07]' '$state/show.out'"
"$corral" vm console flood --tail 5 --raw >"$state/raw.out" 2>&1
check "--raw prints the guest's bytes as they are" grep -q $'\x1b]52;c;cm0gLXJmIH4K\x07' "$state/raw.out"

echo "== a paste into a paused guest"
"$corral" vm pause flood >/dev/null 2>&1
api GET /api/v1/vms/flood
check "paused" test "$(jqb .state)" = paused
head -c $((8 * 1024 * 1024)) /dev/zero | tr '\0' 'p' >"$state/paste"
timeout 120 "$corral" vm console flood <"$state/paste" >"$state/paste.out" 2>"$state/paste.err" &
paste_pid=$!
# The paste is under way once corrald drops its input; before the fix its send blocked here.
for ((i = 0; i < 100; i++)); do grep -qs 'console input dropped' "$state/paste.err" && break; sleep 0.3; done
check "the pasting client is told its input was dropped" grep -q 'console input dropped' "$state/paste.err"
code=$(curl -s --max-time 60 --unix-socket "$sock" -o "$state/body" -w '%{http_code}' http://corral/api/v1/vms/flood)
check "GET /vms/flood still answers during the paste ($code)" test "$code" = 200
timeout 60 "$corral" vm console flood </dev/null >"$state/second.out" 2>&1
check "a new console session still opens (exit $?)" test $? = 0
wait "$paste_pid"; paste_pid=""
"$corral" vm resume flood >/dev/null 2>&1
api GET /api/v1/vms/flood
check "resumed" test "$(jqb .state)" = running

echo "== adoption reads only the tail of a huge log"
# Paused, so that no new output pushes the log's tail out of the 64 KiB scroll-back before we look.
"$corral" vm pause flood >/dev/null 2>&1
corrald_stop
check "stopping corrald left the VM running" kill -0 "$vm_pid"
# 400 MiB while no corrald watched (sparse: no need to write it), then the guest's own lines.
truncate -s $((400 * 1024 * 1024)) "$log"
printf 'corral-adoption-tail-marker\n' >>"$log"
corrald_start || exit 1
api GET /api/v1/vms/flood
check "the new corrald adopted it (paused)" test "$(jqb .state)" = paused -a "$(jqb .pid)" = "$vm_pid"
check "  ... with the log's tail in the console history" console_has flood 'corral-adoption-tail-marker'
hwm_kib=$(awk '/^VmHWM:/ { print $2 }' "/proc/$corrald_pid/status")
check "corrald's peak RSS stayed far below the 400 MiB log (${hwm_kib} KiB)" test "$hwm_kib" -lt $((100 * 1024))
log_bounded_soon() {
  local i
  for ((i = 0; i < 60; i++)); do (($(size_of "$log") <= max_log + slack)) && return 0; sleep 0.5; done
  return 1
}
check "  ... and the log is bounded again" log_bounded_soon

"$corral" vm resume flood >/dev/null 2>&1

echo "== actions are idempotent while in flight"
api PUT /api/v1/vms/flood/state '{"action":"stop","timeout":20}'
first_code=$code first_task=$(jqb .task)
api PUT /api/v1/vms/flood/state '{"action":"stop","timeout":20}'
check "a second stop while stopping answers 202 ($code) with the same task ($(jqb .task) = $first_task)" \
  test "$first_code" = 202 -a "$code" = 202 -a "$(jqb .task)" = "$first_task"
wait_task "$first_task" 120
check "  ... which ends the VM ($(jqb .status): $(jqb .message))" test "$(jqb .status)" = succeeded
api GET /api/v1/tasks
check "  ... and only one vm.stop task was made" test "$(jq '[.[] | select(.kind == "vm.stop" and .target == "flood")] | length' <<<"$body")" = 1
vm_pid=""
api PUT /api/v1/vms/flood/state '{"action":"start"}'
start_task=$(jqb .task)
api PUT /api/v1/vms/flood/state '{"action":"start"}'
check "start while starting: 409 naming the state ($code: $(jqb .error.message))" \
  bash -c "test '$code' = 409 && grep -q 'flood is \(starting\|running\)' <<<'$(jqb .error.message)'"
wait_task "$start_task" 120
api GET /api/v1/vms/flood
vm_pid=$(jqb .pid)
"$corral" vm stop flood --force >/dev/null 2>&1
vm_pid=""
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
