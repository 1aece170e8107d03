#!/usr/bin/env bash
# tests/integration/daemon/slow_panel.sh: the "why is it slow" figures and verdicts (issue 15) with
# a real corrald sampling every second, a real QEMU guest (the emulated engine) and this host's
# real cgroups. A guest started with a CPU cap of 10% of a CPU is throttled while it boots: its
# history's cpu_throttled is above 0 (fractions all in 0..1) and the diagnosis names the cap and
# the `vm edit --cpu-max` fix, and so does `corral vm why-slow`. With the cap removed live (the
# fix), it boots, writes a file with fsync to its root disk, and its history shows disk write (and
# read) latency above 0 ms, which the diagnosis reports; the cap's verdict then says it has none;
# /metrics has the disk's operation and service-time counters.
# Exit 0 all passed, 1 a check failed, 77 skipped (not root, no cgroups, no QEMU).
set -uo pipefail
script=$(readlink -f "${BASH_SOURCE[0]}")
repo=$(cd "$(dirname "$script")/../../.." && pwd)
build_dir="${CORRAL_BUILD_DIR:-$repo/build}"
corral="$build_dir/src/cli/corral"
[ "$(id -u)" = 0 ] || { echo "SKIP: cgroups need root"; exit 77; }
# shellcheck source=../../lib/guest.sh
. "$repo/tests/lib/guest.sh"
guest_image
# shellcheck source=../../lib/corrald.sh
. "$repo/tests/lib/corrald.sh"
parent="corral-test-$$"   # this test's own cgroup parent
cleanup() {
  corrald_failure_report slow
  if [ -n "$corrald_pid" ]; then
    api PUT /api/v1/vms/slow/state '{"action":"kill"}'
    [ "$code" = 202 ] && wait_task "$(jqb .task)" 60
  fi
  corrald_stop
  [ -n "${parents:-}" ] && for dir in $parents; do rmdir "$dir" 2>/dev/null; done
  rm -rf -- "$state"
}
trap cleanup EXIT
export CORRAL_SOCKET="$sock"
boot_wait=${CORRAL_BOOT_WAIT:-400}   # seconds; TCG on a busy 2-core host

corrald_start --metrics-interval 1 --default-engine emulated --cgroup-parent "$parent" || exit 1
api GET /api/v1/host
parents=$(jqb '.cgroups.parents[]')
[ "$(jqb .cgroups.version)" = none ] && { echo "SKIP: no usable cgroups: $(jqb .cgroups.note)"; exit 77; }
import_guest_image debian

since=$(($(date +%s) - 5))
series() { api GET "/api/v1/vms/slow/metrics?since=$since"; }
cause() { jqb ".diagnosis.causes[] | select(.cause == \"$1\") | $2"; }
# The column's numbers are all in 0..1 and at least one is above 0.
fraction_seen() {
  series
  [ "$(jqb "[.$1[] | select(. != null)] | all(. >= 0 and . <= 1) and any(. > 0)")" = true ]
}
latency_seen() {
  series
  [ "$(jqb "[.$1[] | select(. != null)] | any(. > 0)")" = true ] && [ "$(cause "$2" .value)" != null ]
}

echo "== held back by a CPU cap"
writer=$("$repo/tools/guest-image" encode-run \
  'echo slow-boot; dd if=/dev/zero of=/slow-writes bs=64k count=128 conv=fsync 2>/dev/null; echo slow-wrote')
"$corral" vm create slow --image debian --memory 256M --nic none --cpu-max 10% --cmdline "$writer" >"$state/out" 2>&1
check "corral vm create slow --cpu-max 10%" test $? = 0
"$corral" vm start slow >"$state/out" 2>&1
check "corral vm start slow" test $? = 0
check "its history shows time held back by the cap (cpu_throttled > 0, all in 0..1)" \
  wait_until 120 fraction_seen cpu_throttled
check "  ... its run delay column is in 0..1 too" \
  test "$(jqb '[.vcpu_run_delay[] | select(. != null)] | all(. >= 0 and . <= 1)')" = true
check "  ... columns of equal length" \
  test "$(jqb '[.time, .cpu_throttled, .vcpu_run_delay, .disk_read_latency_ms, .disk_write_latency_ms] | map(length) | unique | length')" = 1
echo "   cpu_cap: $(cause cpu_cap '.level + ": " + .verdict + " / " + .fix')"
check "the diagnosis blames the cap (level warning or problem)" \
  grep -qE '^(warning|problem)$' <<<"$(cause cpu_cap .level)"
check "  ... its verdict names the cap" grep -q 'held back by its CPU cap (cpu_max 10%' <<<"$(cause cpu_cap .verdict)"
check "  ... its fix is raising it" grep -qF 'corral vm edit slow --cpu-max 20%' <<<"$(cause cpu_cap .fix)"
"$corral" vm why-slow slow >"$state/why" 2>&1
sed 's/^/   /' "$state/why"
check "corral vm why-slow slow: the cap's verdict as a warning or problem" \
  grep -qE '^  (warning|problem) +held back by its CPU cap \(cpu_max 10%' "$state/why"
check "  ... with the fix under it" grep -qE '^ +fix: raise cpu_max \(corral vm edit slow --cpu-max 20%\)$' "$state/why"
check "  ... and it judges the last 5 minutes, with all four causes" \
  test "$(jqb '[.diagnosis.window_seconds, (.diagnosis.causes | map(.cause) | join(","))] | join(" ")')" \
  = "300 cpu_wait,cpu_cap,disk_read,disk_write"

echo "== disk latency"
"$corral" vm edit slow --cpu-max 0 >"$state/out" 2>&1
check "the fix applied live: corral vm edit slow --cpu-max 0" test $? = 0
check "the guest boots and writes its file with fsync" wait_console slow 'slow-wrote' "$boot_wait"
check "its history shows disk write latency > 0 ms" wait_until 30 latency_seen disk_write_latency_ms disk_write
echo "   disk_write: $(cause disk_write '.level + ": " + .verdict')"
echo "   disk_read: $(cause disk_read '.level + ": " + .verdict')"
check "  ... and read latency > 0 ms (it read its root disk)" \
  test "$(jqb '[.disk_read_latency_ms[] | select(. != null)] | any(. > 0)')" = true
check "the diagnosis gives the write latency in ms" grep -qE '^disk writes take [0-9.e+-]+ ms' <<<"$(cause disk_write .verdict)"
check "  ... and the cap's verdict says there is none now" test "$(cause cpu_cap .verdict)" = "it has no CPU cap"
curl -s --unix-socket "$sock" http://corral/metrics >"$state/prom"
check "Prometheus: corral_vm_disk_writes_total{vm=\"slow\",disk=...} above 0" \
  awk '$1 ~ /^corral_vm_disk_writes_total\{vm="slow",/ && $2 > 0 { found = 1 } END { exit !found }' "$state/prom"
check "  ... and corral_vm_disk_write_seconds_total above 0" \
  awk '$1 ~ /^corral_vm_disk_write_seconds_total\{vm="slow",/ && $2 > 0 { found = 1 } END { exit !found }' "$state/prom"

corrald_failure_report slow
check_summary
