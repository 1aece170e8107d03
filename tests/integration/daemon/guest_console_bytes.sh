#!/usr/bin/env bash
# tests/integration/daemon/guest_console_bytes.sh: a hostile guest cannot stop corrald through its
# console (issue 9). A real guest on the emulated engine (QEMU TCG: the project's test kernel and
# initramfs, no root disk) prints every byte value 0-255 on its serial console; then GET
# /vms/NAME (its last console lines go into JSON), `corral vm show`, the console's text tail, and
# a crash (QEMU killed) while `corral events` watches: the vm.crashed event carries the same
# lines. corrald must stay alive and every answer and event must be valid JSON (UTF-8).
# Exit 0 all passed, 1 a check failed, 77 skipped (no QEMU or no guest image).
set -uo pipefail
script=$(readlink -f "${BASH_SOURCE[0]}")
repo=$(cd "$(dirname "$script")/../../.." && pwd)
build_dir="${CORRAL_BUILD_DIR:-$repo/build}"
corral="$build_dir/src/cli/corral"
command -v qemu-system-x86_64 >/dev/null || { echo "SKIP: qemu-system-x86_64 is not installed"; exit 77; }
kernel="" initrd=""
eval "$("$repo/tools/guest-image" 2>/dev/null | grep -E '^(kernel|initrd)=')"
[ -n "$kernel" ] && [ -n "$initrd" ] || { echo "SKIP: tools/guest-image gave no kernel and initrd"; exit 77; }

# shellcheck source=../../lib/corrald.sh
. "$repo/tests/lib/corrald.sh"
events_pid="" vm_pid=""
cleanup() {
  [ -n "$events_pid" ] && kill "$events_pid" 2>/dev/null
  [ -n "$vm_pid" ] && kill -KILL "$vm_pid" 2>/dev/null
  corrald_stop
  rm -rf -- "$state"
}
trap cleanup EXIT
export CORRAL_SOCKET="$sock"
alive() { kill -0 "$corrald_pid" 2>/dev/null && api GET /api/v1/host && [ "$code" = 200 ]; }

corrald_start --default-engine emulated || exit 1
"$corral" events --json >"$state/events.log" 2>&1 &
events_pid=$!

# The guest's command: every byte from 0 to 255 (busybox printf with octal escapes), between markers.
run=$("$repo/tools/guest-image" encode-run \
  'echo BYTES-BEGIN; i=0; while [ $i -lt 256 ]; do printf "\\$(printf %o $i)"; i=$((i+1)); done; echo; echo BYTES-END')
truncate -s 1M "$state/root.raw"   # an image needs a root volume; this guest never mounts it
api POST /api/v1/images "$(jq -n --arg k "$kernel" --arg i "$initrd" --arg r "$state/root.raw" \
  '{name: "bytes", kernel: $k, initrd: $i, root: $r, cmdline: "console=ttyS0 panic=-1"}')"
wait_task "$(jqb .task)" 60
check "image imported" test "$(jqb .status)" = succeeded
api POST /api/v1/vms "$(jq -n --arg c "$run corral.then=halt" '{name: "noisy", image: "bytes", memory_mib: 256, cmdline: $c}')"
check "VM created" test "$code" = 201
"$corral" vm start noisy >"$state/out" 2>&1
check "corral vm start noisy" test $? = 0
api GET /api/v1/vms/noisy
vm_pid=$(jqb .pid)
check "the guest printed every byte value" wait_console noisy 'BYTES-END' 120 2>/dev/null

api GET /api/v1/vms/noisy
check "GET /vms/noisy: 200" test "$code" = 200
check "  ... valid JSON (UTF-8) with the last console lines" jq -e '.last_console | test("BYTES-BEGIN")' "$state/body"
# (jq 1.6's contains() stops at the NUL the guest printed: compare code points instead.)
check "  ... where the invalid bytes became U+FFFD (128 of them)" \
  jq -e '[.last_console | explode[] | select(. == 65533)] | length == 128' "$state/body"
check "  ... and the valid ones stayed (0x01-0x7f)" jq -e '.last_console | explode | index([1, 2, 3]) != null' "$state/body"
check "corrald is alive after GET /vms/noisy" alive
"$corral" vm show noisy >"$state/show.out" 2>&1
check "corral vm show noisy exits 0" test $? = 0
check "corrald is alive after corral vm show" alive
api GET "/api/v1/vms/noisy/console?tail=20" 2>/dev/null
check "the console's text tail is valid UTF-8" iconv -f UTF-8 -t UTF-8 "$state/body" -o /dev/null

kill -KILL "$vm_pid"
vm_pid=""
check "the killed guest is seen as crashed" wait_state noisy crashed 30
check "corrald is alive after the crash" alive
for ((i = 0; i < 20; i++)); do grep -q '"kind":"vm.crashed"' "$state/events.log" && break; sleep 0.5; done
check "corral events streamed vm.crashed" grep -q '"kind":"vm.crashed"' "$state/events.log"
crashed_event_ok() {
  local line
  line=$(grep -m1 '"kind":"vm.crashed"' "$state/events.log") || return 1
  jq -e '.last_console | explode | index([66, 89, 84, 69, 83, 45, 69, 78, 68]) != null' <<<"$line"  # "BYTES-END"
}
check "  ... with the guest's last lines in valid JSON" crashed_event_ok
check "corral events is still connected" kill -0 "$events_pid"
if ! alive; then echo "corrald's log (last lines):"; tail -20 "$state/corrald.log"; fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
