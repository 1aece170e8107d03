#!/usr/bin/env bash
# tests/e2e/daemon_vm.sh: the whole daemon flow with a real Linux guest. A real corrald (temporary
# state folder) imports the project's guest image (Debian kernel, busybox root on a qcow2 linked
# clone), runs a VM on the host's default engine (the emulated one, QEMU TCG, on hosts whose KVM
# cannot run guest kernels at speed), and the guest proves each step by what its console shows.
#
# Checks: start; the console reaches a shell prompt and runs a command typed through
# `corral vm console`; pause/resume; metrics; a VM process killed behind corrald's back is seen
# as crashed (event with its last console lines) and restarted by its on-failure policy;
# stopping corrald leaves the VM running and a new corrald adopts it; a graceful stop reaches
# the guest's init; delete with volumes. Exit 0 all passed, 1 a check failed, 77 skipped.
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
events_pid=""
cleanup() {
  [ -n "$events_pid" ] && kill "$events_pid" 2>/dev/null
  # Stop what this test started: the VM (through the API while corrald runs), then corrald.
  if [ -n "$corrald_pid" ]; then api PUT /api/v1/vms/web1/state '{"action":"kill"}'; sleep 1; fi
  corrald_stop
  [ -n "${vm_pid:-}" ] && kill -KILL "$vm_pid" 2>/dev/null
  rm -rf -- "$state"
}
trap cleanup EXIT
export CORRAL_SOCKET="$sock"
boot_wait=300   # seconds; TCG on a busy 2-core host

corrald_start || exit 1
"$corral" events --json >"$state/events.log" 2>&1 &
events_pid=$!

echo "== image and VM"
import_guest_image debian
"$corral" vm create web1 --image debian --cpus 2 --memory 512M --restart on-failure >"$state/out" 2>&1
check "corral vm create web1" test $? = 0
api GET /api/v1/volumes/default/web1-root
check "its root disk is a linked clone of the image's root volume" test "$(jqb .backing.volume)" = img-debian

echo "== start and console"
"$corral" vm start web1 >"$state/out" 2>&1
check "corral vm start web1 (waits for its task)" test $? = 0
api GET /api/v1/vms/web1
check "state running on the $(jqb .engine) engine" test "$(jqb .state)" = running
vm_pid=$(jqb .pid)
check "the VM process runs (pid $vm_pid)" kill -0 "$vm_pid"
check "the guest's root is the virtio disk" wait_console web1 'CORRAL-INIT: root /dev/vda' "$boot_wait"
check "the console reaches a shell prompt" wait_console web1 'corral:~# ' "$boot_wait"
printf 'echo answer-$((6*7))\n' | timeout 30 "$corral" vm console web1 >"$state/console.out" 2>&1
check "a command typed through corral vm console runs in the guest" wait_console web1 'answer-42' 60
check "  ... and corral vm console showed its output" grep -q 'answer-42' "$state/console.out"

echo "== pause, resume, metrics"
"$corral" vm pause web1 >/dev/null 2>&1
api GET /api/v1/vms/web1
check "paused" test "$(jqb .state)" = paused
"$corral" vm resume web1 >/dev/null 2>&1
api GET /api/v1/vms/web1
check "resumed" test "$(jqb .state)" = running
api GET /api/v1/vms/web1/metrics
check "metrics: CPU time used" awk -v v="$(jqb .cpu_seconds)" 'BEGIN { exit !(v > 0) }'
check "metrics: the guest read its disk" test "$(jqb '.disks[0].read_bytes')" -gt 0
api GET /metrics
check "Prometheus metrics list the VM as up" grep -q 'corral_vm_up{vm="web1",state="running"} 1' <<<"$body"

echo "== crash and restart policy"
kill -KILL "$vm_pid"
# Right after the kill the VM may still read "running" (old pid) or be between runs (no pid):
# wait for a running VM on another process.
restarted() {
  api GET /api/v1/vms/web1
  new_pid=$(jqb .pid)
  [ "$(jqb .state)" = running ] && [ "$new_pid" != "$vm_pid" ] && [ "$new_pid" != null ]
}
check "the killed VM is restarted (on-failure) as a new process" wait_until 60 restarted
vm_pid=$new_pid
check "a vm.crashed event was streamed with the reason" grep -q '"kind":"vm.crashed"' "$state/events.log"
crash_says_signal_9() { grep '"kind":"vm.crashed"' "$state/events.log" | grep -q 'signal 9'; }
check "  ... saying it was killed by signal 9" crash_says_signal_9
check "the restarted guest boots again to its shell prompt" wait_console web1 'corral:~# ' "$boot_wait"

echo "== corrald restarts, the VM stays"
kill "$events_pid" 2>/dev/null; events_pid=""
corrald_stop
check "stopping corrald left the VM running" kill -0 "$vm_pid"
corrald_start || exit 1
api GET /api/v1/vms/web1
check "the new corrald adopted it (running)" test "$(jqb .state)" = running -a "$(jqb .pid)" = "$vm_pid"
check "  ... and says so" grep -q adopted <<<"$(jqb .state_reason)"
check "  ... with the console's history" console_has web1 'CORRAL-INIT: up' 

echo "== graceful stop and delete"
"$corral" vm stop web1 --timeout 120 >"$state/out" 2>&1
check "corral vm stop web1" test $? = 0
api GET /api/v1/vms/web1
check "stopped on request ($(jqb .state): $(jqb .state_reason))" test "$(jqb .state)" = stopped -a "$(jqb .state_reason)" = "stopped on request"
check "the guest's init saw the shutdown request" console_has web1 'CORRAL-INIT: shutdown requested'
check "the VM process is gone" bash -c "! kill -0 $vm_pid 2>/dev/null"
vm_pid=""
"$corral" vm start web1 >"$state/out" 2>&1
check "corral vm start web1 again" test $? = 0
api GET /api/v1/vms/web1
vm_pid=$(jqb .pid)
check "  ... it boots from the same disk to its prompt" wait_console web1 'corral:~# ' "$boot_wait"
"$corral" vm stop web1 --force >"$state/out" 2>&1
check "corral vm stop --force kills it at once" test $? = 0
api GET /api/v1/vms/web1
check "  ... stopped (killed on request)" test "$(jqb .state)" = stopped -a "$(jqb .state_reason)" = "killed on request"
vm_pid=""
"$corral" vm delete web1 --volumes >"$state/out" 2>&1
check "corral vm delete web1 --volumes" test $? = 0
api GET /api/v1/volumes/default/web1-root
check "its root volume is gone" test "$code" = 404
api GET /api/v1/volumes/default/img-debian
check "the image's root volume stays" test "$code" = 200

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
