#!/usr/bin/env bash
# tests/integration/daemon/native_vm.sh: corrald's native engine (corral-vmm) end to end, with a
# tiny test guest on KVM: here when /dev/kvm opens, otherwise inside the nested lab (tools/lab).
#
# The guest is guests/tiny/echo.S: it prints "echo ready" on its serial port, then echoes every
# byte it receives. A real corrald (temporary state folder) imports it as an image and runs it
# on the native engine; every step is proved by what the console and the API show:
# start; console output; typed bytes come back; pause (the guest stops echoing, state paused) and
# resume (the bytes typed while paused come back); corral-vmm's device counters and CPU time in
# the VM's metrics; reboot that times out into a reset and reset (same process, the guest boots
# again); graceful stop that times out into a kill (the tiny guest ignores ACPI); start
# again; kill; delete; corral-vmm runs with no_new_privs and no capability. Exit 0 all passed, 1 a check failed, 77 skipped.
set -uo pipefail
script=$(readlink -f "${BASH_SOURCE[0]}")
repo=$(cd "$(dirname "$script")/../../.." && pwd)
build_dir="${CORRAL_BUILD_DIR:-$repo/build}"
corral="$build_dir/src/cli/corral"
echo_guest="$build_dir/guests/tiny/echo.elf"
[ -f "$echo_guest" ] || { echo "FAIL: no tiny guest at $echo_guest (build the tiny_guests target)"; exit 1; }

# shellcheck source=../../lib/lab.sh
. "$repo/tests/lib/lab.sh"
lab_reexec_unless_kvm_opens 900

# shellcheck source=../../lib/corrald.sh
. "$repo/tests/lib/corrald.sh"
cleanup() {
  if [ -n "$corrald_pid" ]; then api PUT /api/v1/vms/tiny/state '{"action":"kill"}'; sleep 1; fi
  corrald_stop
  [ -n "${vm_pid:-}" ] && kill -KILL "$vm_pid" 2>/dev/null
  rm -rf -- "$state"
}
trap cleanup EXIT
export CORRAL_SOCKET="$sock"

type_into() { printf '%s' "$1" | timeout 20 "$corral" vm console tiny >/dev/null 2>&1; }

corrald_start || exit 1

echo "== host"
api GET /api/v1/host
echo "   calibration: $(jqb '.calibration | tostring')"
check "the native engine is available ($(jqb .engines.native.reason))" test "$(jqb .engines.native.available)" = true

echo "== image and VM"
truncate -s 1M "$state/blank.raw"
api POST /api/v1/images "$(jq -n --arg k "$echo_guest" --arg r "$state/blank.raw" \
  '{name: "tiny", kernel: $k, root: $r, cmdline: "console=ttyS0"}')"
check "image import accepted (202)" test "$code" = 202
wait_task "$(jqb .task)" 60
check "image import task succeeded" test "$(jqb .status)" = succeeded
"$corral" vm create tiny --image tiny --engine native --cpus 1 --memory 64M >"$state/out" 2>&1
check "corral vm create tiny --engine native" test $? = 0 || cat "$state/out"

echo "== start and console"
"$corral" vm start tiny >"$state/out" 2>&1
check "corral vm start tiny" test $? = 0 || cat "$state/out"
api GET /api/v1/vms/tiny
check "running on the native engine" test "$(jqb .state)/$(jqb .engine)" = running/native
vm_pid=$(jqb .pid)
check "the corral-vmm process runs (pid $vm_pid)" kill -0 "$vm_pid"
status_of() { awk -v key="$1:" '$1 == key { print $2; exit }' "/proc/$vm_pid/status"; }
check "  ... with no_new_privs" test "$(status_of NoNewPrivs)" = 1
check "  ... and no capability (effective, permitted, bounding)" \
  test "$(status_of CapEff) $(status_of CapPrm) $(status_of CapBnd)" = "0000000000000000 0000000000000000 0000000000000000"
check "the console shows the guest's banner" wait_console tiny 'echo ready' 30
type_into xyz
check "bytes typed through corral vm console come back" wait_console tiny 'xyz' 30

echo "== pause and resume (corral-vmm's control socket)"
"$corral" vm pause tiny >"$state/out" 2>&1
check "corral vm pause tiny" test $? = 0 || cat "$state/out"
api GET /api/v1/vms/tiny
check "state paused" test "$(jqb .state)" = paused
type_into abc
sleep 3
console_has tiny abc && echoed_while_paused=yes || echoed_while_paused=no
check "a paused guest echoes nothing" test "$echoed_while_paused" = no
"$corral" vm resume tiny >"$state/out" 2>&1
check "corral vm resume tiny" test $? = 0 || cat "$state/out"
check "after resume, the bytes typed while paused come back" wait_console tiny 'abc' 30
api GET /api/v1/vms/tiny
check "state running" test "$(jqb .state)" = running

echo "== metrics"
api GET /api/v1/vms/tiny/metrics
check "CPU time is counted ($(jqb .cpu_seconds) s)" jq -e '.cpu_seconds > 0' <<<"$body" >/dev/null
check "the root disk's counters come from corral-vmm" jq -e '.disks | length >= 1' <<<"$body" >/dev/null

echo "== reboot (the guest ignores Ctrl-Alt-Del: reset after the timeout), reset"
# How often the banner shows since the VM's last start: a reset boots the guest again in the same
# corral-vmm process, so each one adds a banner.
banners() {
  api GET "/api/v1/vms/tiny/console?tail=5000"
  awk -v mark="[corrald] tiny started" 'index($0, mark) { n = 0; next } /echo ready/ { n++ } END { print n + 0 }' <<<"$body"
}
wait_banners() {   # wait_banners COUNT SECONDS
  local deadline=$((SECONDS + $2))
  while ((SECONDS < deadline)); do [ "$(banners)" -ge "$1" ] && return 0; sleep 0.5; done
  return 1
}
before=$(banners)
"$corral" vm reboot tiny --timeout 3 >"$state/out" 2>&1
check "corral vm reboot --timeout 3: $(cat "$state/out")" grep -qx "tiny reset (the guest did not shut down in 3 s)" "$state/out"
api GET /api/v1/vms/tiny
check "running in the same corral-vmm process, the reason says why: $(jqb .state_reason)" \
  test "$(jqb .state)/$(jqb .pid)/$(jqb .state_reason)" = "running/$vm_pid/reset (the guest did not shut down in 3 s)"
check "the guest booted again (banners $before -> at least $((before + 1)))" wait_banners $((before + 1)) 30
"$corral" vm reset tiny >"$state/out" 2>&1
check "corral vm reset: $(cat "$state/out")" grep -qx "tiny reset" "$state/out"
api GET /api/v1/vms/tiny
check "same process, reason 'reset on request': $(jqb .pid) ($(jqb .state_reason))" \
  test "$(jqb .state)/$(jqb .pid)/$(jqb .state_reason)" = "running/$vm_pid/reset on request"
check "the guest booted once more" wait_banners $((before + 2)) 30

echo "== stop, start again, kill, delete"
"$corral" vm stop tiny --timeout 3 >"$state/out" 2>&1
check "corral vm stop (the guest ignores ACPI: killed after 3 s)" test $? = 0 || cat "$state/out"
api GET /api/v1/vms/tiny
check "state stopped" test "$(jqb .state)" = stopped
check "the corral-vmm process is gone" bash -c "! kill -0 $vm_pid 2>/dev/null"
"$corral" vm start tiny >"$state/out" 2>&1
check "started again" test $? = 0 || cat "$state/out"
check "the banner again" wait_console tiny 'echo ready' 30
"$corral" vm kill tiny >"$state/out" 2>&1
check "corral vm kill" test $? = 0 || cat "$state/out"
check "state stopped after kill" wait_state tiny stopped 20
"$corral" vm delete tiny --volumes >"$state/out" 2>&1
check "corral vm delete --volumes" test $? = 0 || cat "$state/out"
api GET /api/v1/vms/tiny
check "gone (404)" test "$code" = 404

echo "native_vm: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
