#!/usr/bin/env bash
# `corral vm stop` and Ctrl-C while corral waits for a task (issue 18), with a real corrald and a
# real guest on the emulated engine (QEMU TCG): Ctrl-C says the task goes on and how to wait for it
# again (exit 130); the stop's last line says whether the guest shut down or was killed.
# Exit 0 all passed, 1 a check failed, 77 skipped.
set -uo pipefail
script=$(readlink -f "${BASH_SOURCE[0]}")
repo=$(cd "$(dirname "$script")/../../.." && pwd)
build_dir="${CORRAL_BUILD_DIR:-$repo/build}"
corral="$build_dir/src/cli/corral"
# shellcheck source=../../lib/guest.sh
. "$repo/tests/lib/guest.sh"
guest_image

# shellcheck source=../../lib/corrald.sh
. "$repo/tests/lib/corrald.sh"
stop_pid=""
cleanup() {
  [ -n "$stop_pid" ] && kill "$stop_pid" 2>/dev/null
  if [ -n "$corrald_pid" ]; then api PUT /api/v1/vms/wait1/state '{"action":"kill"}'; sleep 1; fi
  corrald_stop
  rm -rf -- "$state"
}
trap cleanup EXIT
export CORRAL_SOCKET="$sock"

corrald_start || exit 1
api POST /api/v1/images "$(jq -n --arg k "$kernel" --arg i "$initrd" --arg r "$rootfs" \
  '{name: "debian", kernel: $k, initrd: $i, root: $r}')"
wait_task "$(jqb .task)" 120
check "image imported" test "$(jqb .status)" = succeeded
"$corral" vm create wait1 --image debian --memory 256M --engine emulated >"$state/out" 2>&1
check "vm create wait1" test $? = 0

echo "== Ctrl-C while waiting for vm stop"
"$corral" vm start wait1 >"$state/out" 2>&1
check "vm start wait1" test $? = 0
# Right after its start the guest is still booting and cannot act on the shutdown request yet: the
# stop task waits (up to 120 s), which is when Ctrl-C comes.
# Job control on: a background job of a script starts with SIGINT ignored, a job of its own does not.
set -m
"$corral" vm stop wait1 --timeout 60 >"$state/stop.out" 2>"$state/stop.err" &
stop_pid=$!
set +m
task=""
for _ in $(seq 100); do
  api GET /api/v1/tasks
  task=$(jq -r '[.[] | select(.kind == "vm.stop" and .status == "running")][0].id // empty' <<<"$body")
  [ -n "$task" ] && break
  sleep 0.2
done
check "the stop task runs ($task)" test -n "$task"
kill -INT "$stop_pid"
wait "$stop_pid"
rc=$?
stop_pid=""
check "Ctrl-C ends the wait with exit 130 (got $rc)" test "$rc" = 130
check "and says the task goes on and how to wait again: $(tail -1 "$state/stop.err")" \
  grep -q "task $task goes on in corrald. Wait for it again with: corral task wait $task" "$state/stop.err"
api GET "/api/v1/tasks/$task"
check "the task did go on (status $(jqb .status))" bash -c "[ '$(jqb .status)' = running ] || [ '$(jqb .status)' = succeeded ]"
"$corral" task wait "$task" >"$state/out" 2>&1
check "corral task wait $task: $(cat "$state/out")" test $? = 0
wait_state wait1 stopped 60
check "wait1 stopped" test "$(jqb .state)" = stopped

echo "== a second console client is told it is read-only"
"$corral" vm start wait1 >"$state/out" 2>&1
check "vm start wait1 (for the consoles)" test $? = 0
# The first client types (a newline) and stays; the second one's input is then refused.
mkfifo "$state/first.in"
"$corral" vm console wait1 <"$state/first.in" >/dev/null 2>"$state/first.err" &
first_pid=$!
exec 7>"$state/first.in"   # held open: the first client stays attached until fd 7 closes
echo >&7
told=no
for _ in $(seq 40); do
  # The first client types again each time: while the VM's console is not connected yet (a slow
  # boot) its input is refused as "offline" and claims nothing, and the second one may claim it.
  echo >&7
  echo "id" | "$corral" vm console wait1 >/dev/null 2>"$state/second.err"
  if grep -q "read-only until it detaches" "$state/second.err"; then told=yes; break; fi
  sleep 0.5
done
exec 7>&-                  # its stdin ends: the first client detaches
wait "$first_pid" 2>/dev/null
check "the second client is told another one types: $(grep -o 'corrald: another client[^]]*' "$state/second.err" | head -1)" \
  test "$told" = yes
check "the live console says the VM runs" grep -q "wait1 is running; live console from here" "$state/second.err"
"$corral" vm kill wait1 >/dev/null 2>&1

echo "== the stop's last line says what happened"
"$corral" vm start wait1 >"$state/out" 2>&1
check "vm start wait1 again" test $? = 0
"$corral" vm stop wait1 --timeout 1 >"$state/out" 2>"$state/err"
check "vm stop --timeout 1 of a booting guest" test $? = 0
check "says it was killed and why: $(cat "$state/out")" \
  grep -qx "wait1 killed: its guest did not shut down within 1 s" "$state/out"
check "no 'wait1 stopped' that hides the kill" bash -c "! grep -q 'wait1 stopped' '$state/out'"

echo "passed $passed, failed $failed"
[ "$failed" -eq 0 ]
