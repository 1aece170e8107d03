#!/usr/bin/env bash
# tests/integration/daemon/noisy_neighbour.sh: the noisy-neighbour event (issue 17) with a real
# corrald sampling every second and two real QEMU guests (the emulated engine) whose vCPU threads
# are pinned to the same host CPU: `hog` (two vCPUs, both spinning) and `victim` (one vCPU,
# spinning). The victim's vCPU waits for that CPU most of the time while the hog uses most of it:
# `corral events` shows vm.noisy_neighbour for the victim naming the hog, with its run delay and
# the hog's CPUs, and vm.noisy_neighbour.cleared once it is killed.
# Exit 0 all passed, 1 a check failed, 77 skipped (no QEMU, one host CPU).
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
events_pid=""
cleanup() {
  corrald_failure_report victim
  [ -n "$events_pid" ] && kill "$events_pid" 2>/dev/null
  if [ -n "$corrald_pid" ]; then
    for vm in hog victim; do api PUT "/api/v1/vms/$vm/state" '{"action":"kill"}'; done
    sleep 1
  fi
  corrald_stop
  rm -rf -- "$state"
}
trap cleanup EXIT
export CORRAL_SOCKET="$sock"
boot_wait=${CORRAL_BOOT_WAIT:-400}   # seconds; TCG on a busy 2-core host

corrald_start --metrics-interval 1 --default-engine emulated || exit 1
api POST /api/v1/images "$(jq -n --arg k "$kernel" --arg i "$initrd" --arg r "$rootfs" \
  '{name: "debian", kernel: $k, initrd: $i, root: $r}')"
wait_task "$(jqb .task)" 120
check "image imported" test "$(jqb .status)" = succeeded

# Every vCPU spins in the guest's shell once it is up (one loop per vCPU).
spin_one=$("$repo/tools/guest-image" encode-run 'echo spinning; while :; do :; done')
spin_two=$("$repo/tools/guest-image" encode-run 'echo spinning; (while :; do :; done) & while :; do :; done')
"$corral" vm create hog --image debian --memory 256M --nic none --vcpus 2 --vcpu-pins 0,0 --cmdline "$spin_two" \
  >"$state/out" 2>&1
check "corral vm create hog --vcpus 2 --vcpu-pins 0,0" test $? = 0 || cat "$state/out"
"$corral" vm create victim --image debian --memory 256M --nic none --vcpu-pins 0 --cmdline "$spin_one" \
  >"$state/out" 2>&1
check "corral vm create victim --vcpu-pins 0" test $? = 0 || cat "$state/out"

"$corral" events --json >"$state/events" 2>&1 &
events_pid=$!
"$corral" vm start hog >"$state/out" 2>&1 && "$corral" vm start victim >>"$state/out" 2>&1
check "both started" test $? = 0 || cat "$state/out"
check "the hog spins" wait_console hog spinning "$boot_wait"
check "the victim spins" wait_console victim spinning "$boot_wait"
raised() { jq -e -c 'select(.kind == "vm.noisy_neighbour" and .target == "victim")' "$state/events" >/dev/null 2>&1; }
check "corral events: vm.noisy_neighbour for the victim" wait_until 180 raised
event=$(jq -c 'select(.kind == "vm.noisy_neighbour" and .target == "victim")' "$state/events" 2>/dev/null | head -1)
echo "   $event"
check "  ... naming the hog as its neighbour" test "$(jq -r .neighbour <<<"$event")" = hog
check "  ... with its run delay (above 10% of its vCPU's time) and the hog's CPUs (a quarter or more)" \
  test "$(jq '.run_delay >= 0.1 and .run_delay <= 1 and .neighbour_cpus >= 0.25' <<<"$event")" = true
check "  ... and a message with the fix" grep -q 'victim waited for a host CPU .* while hog used .* pin them apart' \
  <<<"$(jq -r .message <<<"$event")"
check "corrald's log says it too" grep -q 'victim waited for a host CPU' "$state/corrald.log"
"$corral" vm kill victim >"$state/out" 2>&1
cleared() { jq -e -c 'select(.kind == "vm.noisy_neighbour.cleared" and .target == "victim")' "$state/events" >/dev/null 2>&1; }
check "killed: vm.noisy_neighbour.cleared for the victim" wait_until 30 cleared
check_summary
