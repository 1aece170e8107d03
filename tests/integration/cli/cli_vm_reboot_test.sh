#!/usr/bin/env bash
# `corral vm reboot`, `vm reset` and what `vm show` says after an automatic restart (issue 18), with
# a real corrald and a real guest on the emulated engine (QEMU TCG):
# - reboot asks the guest (its init prints "CORRAL-INIT: shutdown requested"), which shuts down; the
#   VM starts again in a new process and boots afresh; the state reason says so;
# - a guest that does not shut down within --timeout is reset, and the reason says that instead;
# - reset resets at once (same process);
# - kill -9 of the QEMU process with restart policy on-failure: `vm show` lists 1 restart, the crash's
#   reason, and an uptime counted from the restart.
# Exit 0 all passed, 1 a check failed, 77 skipped.
set -uo pipefail
script=$(readlink -f "${BASH_SOURCE[0]}")
repo=$(cd "$(dirname "$script")/../../.." && pwd)
build_dir="${CORRAL_BUILD_DIR:-$repo/build}"
corral="$build_dir/src/cli/corral"
command -v qemu-system-x86_64 >/dev/null || { echo "SKIP: qemu-system-x86_64 is not installed"; exit 77; }
kernel="" initrd="" rootfs=""
eval "$("$repo/tools/guest-image" | grep -E '^(kernel|initrd|rootfs)=')"
[ -n "$rootfs" ] || { echo "FAIL: tools/guest-image did not build rootfs.img"; exit 1; }

# shellcheck source=../../lib/corrald.sh
. "$repo/tests/lib/corrald.sh"
cleanup() {
  corrald_failure_report rb1
  if [ -n "$corrald_pid" ]; then api PUT /api/v1/vms/rb1/state '{"action":"kill"}'; sleep 1; fi
  corrald_stop
  rm -rf -- "$state"
}
trap cleanup EXIT
export CORRAL_SOCKET="$sock"

# The console since the VM's current process started (the run folder's log, new at each start).
console_log() { cat "$state/run/rb1/console.log" 2>/dev/null; }
# Waits until the guest's init is up in the current process (up to $1 seconds).
wait_up() {
  local deadline=$((SECONDS + $1))
  while ((SECONDS < deadline)); do
    console_log | grep -q "CORRAL-INIT: up" && return 0
    sleep 0.5
  done
  return 1
}
pid_of() { api GET /api/v1/vms/rb1; jqb .pid; }

corrald_start || exit 1
api POST /api/v1/images "$(jq -n --arg k "$kernel" --arg i "$initrd" --arg r "$rootfs" \
  '{name: "debian", kernel: $k, initrd: $i, root: $r}')"
wait_task "$(jqb .task)" 120
check "image imported" test "$(jqb .status)" = succeeded
"$corral" vm create rb1 --image debian --memory 256M --engine emulated --restart on-failure >"$state/out" 2>&1
check "vm create rb1" test $? = 0
"$corral" vm start rb1 >"$state/out" 2>&1
check "vm start rb1" test $? = 0
check "the guest is up" wait_up 180

echo "== vm reboot: the guest is asked, shuts down, and the VM boots again in a new process"
first_pid=$(pid_of)
"$corral" vm reboot rb1 --timeout 120 >"$state/out" 2>"$state/err"
check "vm reboot rb1 exits 0" test $? = 0
check "its last line says the guest shut down: $(cat "$state/out")" grep -qx "rb1 rebooted (the guest shut down)" "$state/out"
second_pid=$(pid_of)
check "a new QEMU process ($first_pid -> $second_pid)" test -n "$second_pid" -a "$second_pid" != null -a "$second_pid" != "$first_pid"
api GET /api/v1/vms/rb1
check "running, reason 'rebooted (the guest shut down)': $(jqb .state) ($(jqb .state_reason))" \
  test "$(jqb .state)" = running -a "$(jqb .state_reason)" = "rebooted (the guest shut down)"
api GET "/api/v1/vms/rb1/console?tail=2000"
check "the guest's init was asked to shut down (console)" grep -q "CORRAL-INIT: shutdown requested" <<<"$body"
check "and the VM boots afresh: its new console starts with a new boot" wait_up 180
check "  ... in which no shutdown was requested yet" bash -c "! grep -q 'shutdown requested' '$state/run/rb1/console.log'"

echo "== vm reset: at once, same process"
"$corral" vm reset rb1 >"$state/out" 2>&1
check "vm reset rb1: $(cat "$state/out")" grep -qx "rb1 reset" "$state/out"
api GET /api/v1/vms/rb1
check "same process, reason 'reset on request': $(jqb .pid) ($(jqb .state_reason))" \
  test "$(jqb .pid)" = "$second_pid" -a "$(jqb .state_reason)" = "reset on request"

echo "== vm reboot of a guest that does not shut down in time: reset"
# Right after the reset the guest is booting again and cannot act on the power button yet.
"$corral" vm reboot rb1 --timeout 1 >"$state/out" 2>"$state/err"
check "vm reboot --timeout 1 exits 0" test $? = 0
check "its last line says it was reset: $(cat "$state/out")" \
  grep -qx "rb1 reset (the guest did not shut down in 1 s)" "$state/out"
api GET /api/v1/vms/rb1
check "running in the same process, the reason says so: $(jqb .state_reason)" \
  test "$(jqb .state)" = running -a "$(jqb .pid)" = "$second_pid" \
  -a "$(jqb .state_reason)" = "reset (the guest did not shut down in 1 s)"
"$corral" vm show rb1 >"$state/show" 2>&1
check "vm show: no restarts yet: $(grep '^restart:' "$state/show")" grep -qE "^restart: +on-failure, restarted 0 times$" "$state/show"

echo "== kill -9 of QEMU with restart policy on-failure: vm show lists the restart and why"
qemu_pid=$(pid_of)
check "the API names the QEMU process ($qemu_pid)" grep -q qemu "/proc/$qemu_pid/cmdline"
killed_at=$(date -u +%Y-%m-%dT%H:%M:%SZ)
kill -9 "$qemu_pid"
restarted=no
for _ in $(seq 120); do
  api GET /api/v1/vms/rb1
  if [ "$(jqb .state)" = running ] && [ "$(jqb .restarts)" = 1 ]; then restarted=yes; break; fi
  sleep 0.5
done
check "restarted by its policy (restarts $(jqb .restarts), $(jqb .state))" test "$restarted" = yes
check "last_crash names the kill: $(jqb .last_crash)" test "$(jqb .last_crash)" = "killed by signal 9 (SIGKILL)"
check "a new process ($(jqb .pid))" test "$(jqb .pid)" != "$qemu_pid"
check "started_at $(jqb .started_at) is not before the kill ($killed_at): uptime counts from the restart" \
  test ! "$(jqb .started_at)" \< "$killed_at"
check "uptime_seconds is a number ($(jqb .uptime_seconds))" test "$(jqb '.uptime_seconds | type')" = number
"$corral" vm show rb1 >"$state/show" 2>&1
check "vm show lists 1 restart and the crash's reason: $(grep '^restart:' "$state/show")" \
  grep -qE "^restart: +on-failure, restarted 1 time \(last crash: killed by signal 9 \(SIGKILL\)\)$" "$state/show"
check "vm show lists the uptime since the restart: $(grep '^uptime' "$state/show")" \
  grep -qE "^uptime: +[0-9]+ (s|min [0-9]+ s) \(since $(jqb .started_at)\)$" "$state/show"

echo "passed $passed, failed $failed"
[ "$failed" -eq 0 ]
