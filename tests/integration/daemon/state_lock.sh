#!/usr/bin/env bash
# tests/integration/daemon/state_lock.sh: a second corrald started by mistake on a state folder a
# running corrald uses must leave everything alone: it exits with a message naming the first one,
# and the first one's VM keeps its process and its state reason (issue 18). A real corrald, a real
# VM on the emulated engine (QEMU), curl. Exit 0 all passed, 1 a check failed, 77 skipped.
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
second_pid=""
cleanup() {
  [ -n "$second_pid" ] && kill -KILL "$second_pid" 2>/dev/null
  if [ -n "$corrald_pid" ]; then api PUT /api/v1/vms/lock1/state '{"action":"kill"}'; sleep 1; fi
  corrald_stop
  [ -n "${vm_pid:-}" ] && kill -KILL "$vm_pid" 2>/dev/null
  rm -rf -- "$state"
}
trap cleanup EXIT
export CORRAL_SOCKET="$sock"

corrald_start || exit 1
import_guest_image debian
"$corral" vm create lock1 --image debian --memory 256M --engine emulated >"$state/out" 2>&1
check "vm create lock1" test $? = 0
"$corral" vm start lock1 >"$state/out" 2>&1
check "vm start lock1" test $? = 0
api GET /api/v1/vms/lock1
vm_pid=$(jqb .pid)
reason_before=$(jqb .state_reason)
check "lock1 runs (pid $vm_pid, reason '$reason_before')" test "$(jqb .state)" = running

# The second corrald: same state folder, same (default) socket: the mistake the issue describes.
"$build_dir/src/daemon/corrald" --state-dir "$state" >"$state/second.log" 2>&1 &
second_pid=$!
wait "$second_pid"
second_rc=$?
second_pid=""
check "the second corrald exits non-zero (exit $second_rc)" test "$second_rc" -ne 0
check "it says another corrald (pid $corrald_pid) uses the state folder: $(tail -1 "$state/second.log")" \
  grep -q "another corrald (pid $corrald_pid) is already using the state folder" "$state/second.log"
check "it adopted nothing" bash -c "! grep -qi adopt '$state/second.log'"
api GET /api/v1/vms/lock1
check "the first corrald still answers, lock1 still running" test "$(jqb .state)" = running
check "lock1's state reason is unchanged ('$(jqb .state_reason)')" test "$(jqb .state_reason)" = "$reason_before"
check "lock1's process is the same one" test "$(jqb .pid)" = "$vm_pid"
check "and it lives" kill -0 "$vm_pid"

echo "passed $passed, failed $failed"
[ "$failed" -eq 0 ]
