#!/usr/bin/env bash
# tests/integration/daemon/balloon.sh: the memory balloon with a real corrald, curl, the CLI and
# a real QEMU process (the emulated engine) running the project's test guest.
#
# Checks: a 256 MiB guest prints its MemFree every second; `corral vm balloon VM 128M` (the memory
# the guest keeps) inflates the balloon by 128 MiB and the guest's own MemFree drops by about
# that (110-150 MiB); GET /balloon and `vm show` give the target, the actual size and the guest's
# statistics; the metrics carry the guest's memory; bad targets are 400s naming target_mib.
# The target is kept with the VM: stopped, the VM shows it (`--clear` removes it, a new one is
# kept), and its next start inflates the balloon again (the guest's MemFree drops as much); a
# corrald restart that adopts the VM still shows it; `corral vm balloon VM --clear` deflates the
# balloon and the free memory comes back. Exit 0 all passed, 1 a check failed, 77 skipped.
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
cleanup() {
  corrald_failure_report balloon
  if [ -n "$corrald_pid" ]; then
    api PUT /api/v1/vms/balloon/state '{"action":"kill"}'
    sleep 1
  fi
  corrald_stop
  rm -rf -- "$state"
}
trap cleanup EXIT
export CORRAL_SOCKET="$sock"
says() { grep -qF -- "$1" <<<"$body" || { echo "  body: $body"; return 1; }; }

# The guest's free memory in KiB, from the last line its loop printed ("CORRAL-MEM free=N").
guest_free_kib() { console_since_start balloon 400 | sed -n 's/^CORRAL-MEM free=\([0-9]*\).*/\1/p' | tail -n 1; }
lines_printed() { console_since_start balloon 400 | grep -c '^CORRAL-MEM free='; }
# free_is TEST-OP NUMBER: the last printed MemFree compares so ("-le 1000").
free_is() { local f; f=$(guest_free_kib); [ -n "$f" ] && [ "$f" "$@" ]; }

corrald_start --metrics-interval 1 || exit 1
import_guest_image debian

run=$("$repo/tools/guest-image" encode-run \
  'while :; do set -- $(grep -E "^(MemFree|MemTotal):" /proc/meminfo); echo "CORRAL-MEM free=$5 total=$2"; sleep 1; done')
"$corral" vm create balloon --image debian --memory 256M --nic none --cmdline "$run" >/dev/null 2>&1
"$corral" vm start balloon >/dev/null 2>&1
printed_lines() { [ "$(lines_printed)" -ge "$1" ]; }
check "the guest prints its free memory" wait_until 120 printed_lines 3
before=$(guest_free_kib)
echo "  the guest's MemFree before: $before KiB"

echo "== bad targets"
api PUT /api/v1/vms/balloon/balloon '{"target_mib": 0}'
check "target_mib 0: 400 naming target_mib ($code)" bash -c "[ $code = 400 ] && [ '$(jqb .error.field)' = target_mib ]"
check "  ... saying what is allowed" says "target_mib must be from 1 to 256 MiB"
api PUT /api/v1/vms/balloon/balloon '{"target_mib": 257}'
check "target_mib 257 (more than the VM's 256 MiB): 400 ($code)" test "$code" = 400
api PUT /api/v1/vms/balloon/balloon '{"target_mib": "half"}'
check "target_mib \"half\": 400 naming it ($code)" bash -c "[ $code = 400 ] && [ '$(jqb .error.field)' = target_mib ]"
api PUT /api/v1/vms/balloon/balloon '{}'
check "no target_mib: 400 ($code)" bash -c "[ $code = 400 ] && [ '$(jqb .error.field)' = target_mib ]"
"$corral" vm balloon balloon 1G >"$state/out" 2>&1
rc=$?
check "corral vm balloon balloon 1G: refused (exit $rc) with the range" \
  bash -c "[ $rc != 0 ] && grep -q 'target_mib must be from 1 to 256 MiB' '$state/out'"

echo "== inflate by 128 MiB"
"$corral" vm balloon balloon 128M >"$state/out" 2>&1
rc=$?
check "corral vm balloon balloon 128M: exit 0 ($rc), target shown, kept" \
  bash -c "[ $rc = 0 ] && grep -q '^balloon: *target 128M, .*, kept$' '$state/out' || { cat '$state/out'; false; }"
actual_at_most() { api GET /api/v1/vms/balloon/balloon; [ "$code" = 200 ] && [ "$(jqb .actual_mib)" -le "$1" ]; }
check "the balloon reaches its target (actual at most 130 MiB)" wait_until 90 actual_at_most 130
check "the guest's free memory drops by at least 110 MiB" wait_until 30 free_is -le $((before - 110 * 1024))
after=$(guest_free_kib)
drop=$(((before - after) / 1024))
echo "  MemFree after: $after KiB, $drop MiB less"
check "  ... and by about 128 MiB: $drop MiB (110-150)" bash -c "[ $drop -ge 110 ] && [ $drop -le 150 ]"
guest_stats() { api GET /api/v1/vms/balloon/balloon; [ "$(jqb .guest_memory_total_bytes)" != null ]; }
check "GET /balloon: the guest's statistics arrive" wait_until 30 guest_stats
check "  ... target 128, inflated $(jqb .inflated_mib) MiB, guest free < total" \
  bash -c "[ '$(jqb .target_mib)' = 128 ] && [ '$(jqb .inflated_mib)' -ge 126 ] && [ '$(jqb .guest_memory_free_bytes)' -lt '$(jqb .guest_memory_total_bytes)' ]"
"$corral" vm show balloon >"$state/out" 2>&1
check "corral vm show: the balloon and the guest's memory" \
  bash -c "grep -q '^balloon: *target 128M,' '$state/out' && grep -q '^guest: *free .* of ' '$state/out' || { cat '$state/out'; false; }"
api GET /api/v1/vms/balloon/metrics
check "GET /metrics: the guest's total memory ($(jqb .guest_memory_total_bytes))" \
  bash -c "[ '$(jqb .guest_memory_total_bytes)' -gt 0 ]"
api GET /metrics
check "Prometheus /metrics: corral_vm_guest_memory_free_bytes of the VM" grep -q '^corral_vm_guest_memory_free_bytes{vm="balloon"} [0-9]' <<<"$body"
metrics_history() { api GET "/api/v1/vms/balloon/metrics?since=0"; [ "$(jqb '[.guest_memory_free_bytes[] | select(. != null)] | length')" -gt 0 ]; }
check "the metrics history has the guest's free memory" wait_until 30 metrics_history

echo "== kept: stopped, started again"
"$corral" vm stop balloon --timeout 5 >/dev/null 2>&1
wait_state balloon stopped 60
api GET /api/v1/vms/balloon
check "GET /vms/balloon of the stopped VM: balloon_target_mib 128 ($(jqb .balloon_target_mib))" test "$(jqb .balloon_target_mib)" = 128
"$corral" vm balloon balloon --clear >/dev/null 2>&1
api GET /api/v1/vms/balloon/balloon
check "stopped, --clear: GET /balloon 200, nothing kept, no balloon size ($code)" \
  bash -c "[ $code = 200 ] && [ '$(jqb .kept)' = false ] && [ '$(jqb .target_mib)' = 256 ] && [ '$(jqb .actual_mib)' = null ]"
"$corral" vm balloon balloon 128M >"$state/out" 2>&1
check "stopped, corral vm balloon balloon 128M: kept for the start" \
  bash -c "grep -q '^balloon: *target 128M, kept, applied at start$' '$state/out' || { cat '$state/out'; false; }"
"$corral" vm show balloon >"$state/out" 2>&1
check "  ... vm show says so" grep -q '^balloon: *target 128M, kept, applied at start$' "$state/out"
"$corral" vm start balloon >/dev/null 2>&1
check "started again: the guest prints its free memory" wait_until 120 printed_lines 3
check "  ... the balloon reaches the kept target (actual at most 130 MiB)" wait_until 90 actual_at_most 130
check "  ... the guest's free memory is at least 110 MiB below the first boot's" \
  wait_until 30 free_is -le $((before - 110 * 1024))
echo "  MemFree: $(guest_free_kib) KiB"

echo "== corrald restarted: the VM adopted, its target still kept"
corrald_stop
corrald_start --metrics-interval 1 || exit 1
api GET /api/v1/vms/balloon/balloon
check "GET /balloon after the restart: target 128, kept, actual at most 130 ($(jqb .actual_mib))" \
  bash -c "[ '$(jqb .target_mib)' = 128 ] && [ '$(jqb .kept)' = true ] && [ '$(jqb .actual_mib)' -le 130 ]"

echo "== deflate: --clear"
"$corral" vm balloon balloon --clear >"$state/out" 2>&1
rc=$?
check "corral vm balloon balloon --clear: exit 0 ($rc), nothing kept" \
  bash -c "[ $rc = 0 ] && grep -q '^balloon: *target 256M, actual .*)$' '$state/out' || { cat '$state/out'; false; }"
check "the guest's free memory comes back (within 20 MiB of before)" wait_until 60 free_is -ge $((before - 20 * 1024))
api GET /api/v1/vms/balloon
check "GET /vms/balloon: balloon_target_mib null" test "$(jqb .balloon_target_mib)" = null

check_summary
