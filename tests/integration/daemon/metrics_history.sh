#!/usr/bin/env bash
# tests/integration/daemon/metrics_history.sh: corrald's metrics history (issue 15) with a real
# corrald sampling every second: the host's series grows, has CPU and memory numbers and honours
# ?step; a VM's history route answers a defined VM (empty before it ever ran), 404 for an unknown
# one, 400 naming a bad since or step; without since/step the VM route is unchanged (live numbers).
# The series of a running VM is checked in a browser by tests/e2e/web_ui.sh (its charts).
# Exit status: 0 all passed, 1 a check failed. Ends with "N passed, N failed".
set -uo pipefail
script=$(readlink -f "${BASH_SOURCE[0]}")
repo=$(cd "$(dirname "$script")/../../.." && pwd)
build_dir="${CORRAL_BUILD_DIR:-$repo/build}"
# shellcheck source=../../lib/corrald.sh
. "$repo/tests/lib/corrald.sh"
trap 'corrald_stop; rm -rf -- "$state"' EXIT

corrald_start --metrics-interval 1 || exit 1
since=$(($(date +%s) - 60))

echo "== the host's series"
points=0
for _ in $(seq 50); do
  api GET "/api/v1/host/metrics?since=$since"
  points=$(jqb '.time | length')
  [ "$points" -ge 3 ] && break
  sleep 0.5
done
check "GET /host/metrics: points every second ($points after a few seconds)" test "$points" -ge 3
check "  ... sampled at the interval asked (--metrics-interval 1)" test "$(jqb .interval_seconds)" = 1
check "  ... columns of equal length" test "$(jqb '[.time, .cpu, .memory_bytes] | map(length) | unique | length')" = 1
# (clock ticks are 1/100 s: a tenth of a CPU of slack for a reading that straddles one)
check "  ... CPU busy between 0 and the host's CPUs" \
  test "$(jqb '.cpus as $n | [.cpu[] | select(. != null and . >= 0 and . <= $n + 0.1)] | length')" = "$points"
check "  ... memory used between 0 and the total" \
  test "$(jqb '. as $s | [.memory_bytes[] | select(. > 0 and . <= $s.memory_total_bytes)] | length')" = "$points"
check "  ... times increase, after since" test "$(jqb "[.time[] | select(. >= $since)] == (.time | sort) and (.time | length) > 0")" = true
sleep 2.5
api GET "/api/v1/host/metrics?since=$since&step=2"
check "?step=2: points at least 2 s apart" \
  test "$(jqb '[.time as $t | range(1; $t | length) | $t[.] - $t[. - 1] | select(. < 1.5)] | length')" = 0
check "  ... step_seconds says so" test "$(jqb .step_seconds)" = 2
api GET "/api/v1/host/metrics?step=6"
check "?step=6 reads the coarse ring (one sample in 6)" test "$(jqb .interval_seconds)" = 6
api GET "/api/v1/host/metrics?step=0"
check "?step=0: 400 naming step" test "$code/$(jqb .error.field)" = 400/step
api GET "/api/v1/host/metrics?since=-5"
check "?since=-5: 400 naming since" test "$code/$(jqb .error.field)" = 400/since

echo "== a VM's history"
api POST /api/v1/vms '{"name":"quiet","memory_mib":128,"nics":[]}'
check "a VM defined (never started)" test "$code" = 201
api GET "/api/v1/vms/quiet/metrics?since=$since"
check "its history: 200, empty columns" test "$code/$(jqb '.vm + ":" + (.time | length | tostring)')" = 200/quiet:0
check "  ... with the disk and network columns" test "$(jqb '[.disk_read_bytes_per_second, .net_tx_bytes_per_second] | map(length) | add')" = 0
api GET "/api/v1/vms/nosuch/metrics?since=$since"
check "an unknown VM: 404 naming name" test "$code/$(jqb .error.field)" = 404/name
api GET "/api/v1/vms/quiet/metrics?step=x"
check "?step=x: 400 naming step" test "$code/$(jqb .error.field)" = 400/step
api GET /api/v1/vms/quiet/metrics
check "without since or step: the live numbers, as before" test "$code/$(jqb 'has("cpu_seconds") and (has("time") | not)')" = 200/true

corrald_failure_report
check_summary
