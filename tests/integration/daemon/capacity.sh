#!/usr/bin/env bash
# tests/integration/daemon/capacity.sh: the host's overcommit policy with a real corrald, curl,
# the CLI and real QEMU processes (the emulated engine; the guests need not finish booting).
#
# Checks: the defaults (4 vCPUs per host CPU, 90% of memory); PATCH /host/capacity validates each
# field and keeps the policy across a corrald restart (<state>/capacity.json); a running VM's vCPUs
# and memory show as allocated; a start past the policy is a 409 naming the resource and the
# numbers, through curl and the CLI (exit 1), and starts again once the room is there; a broken
# policy file stops corrald with its name. The capacity plan (POST /host/capacity/plan, `corral
# capacity plan`) of a host with a running VM: its measured use, the policy's answer for a shape,
# what-ifs that add and remove, bad input at its field. Exit 0 all passed, 1 a check failed, 77
# skipped.
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
  corrald_failure_report
  if [ -n "$corrald_pid" ]; then
    for vm in big small; do api PUT "/api/v1/vms/$vm/state" '{"action":"kill"}'; done
    sleep 2
  fi
  corrald_stop
  rm -rf -- "$state"
}
trap cleanup EXIT
export CORRAL_SOCKET="$sock"
says() { grep -qF -- "$1" <<<"$body" || { echo "  body: $body"; return 1; }; }

corrald_start || exit 1
api GET /api/v1/host
cpus=$(jqb .cpus) memory=$(jqb .memory_mib)

echo "== the defaults"
api GET /api/v1/host/capacity
check "GET /host/capacity: 200" test "$code" = 200
check "default policy: 4 vCPUs per host CPU, 90% of memory" \
  test "$(jqb '.policy.vcpus_per_cpu'),$(jqb '.policy.memory_percent')" = "4,90"
check "allowed vCPUs = $cpus host CPUs x 4" test "$(jqb .vcpus.allowed)" = $((cpus * 4))
check "allowed memory = 90% of $memory MiB" test "$(jqb .memory_mib.allowed)" = $((memory * 90 / 100))
check "nothing allocated, all free" test "$(jqb .vcpus.allocated),$(jqb .vcpus.free)" = "0,$((cpus * 4))"
check "the host's memory in use is measured" test "$(jqb .memory_mib.used)" -gt 0
"$corral" host capacity >"$state/out" 2>&1
check "corral host capacity prints the table and the policy" \
  bash -c "grep -q '^vcpus ' '$state/out' && grep -q '^memory ' '$state/out' && grep -q 'policy: 4 vCPUs per host CPU, 90%' '$state/out'"

echo "== the policy is validated and kept"
api PATCH /api/v1/host/capacity '{"vcpus_per_cpu": 0}'
check "vcpus_per_cpu 0: 400 ($code)" test "$code" = 400
check "  ... naming it and the range" says "vcpus_per_cpu must be from 1 to 64 vCPUs per host CPU"
api PATCH /api/v1/host/capacity '{"memory_percent": 5000}'
check "memory_percent 5000: 400 ($code)" test "$code" = 400
check "  ... naming it and the range" says "memory_percent must be from 10 to 1000 percent of the host's memory"
api PATCH /api/v1/host/capacity '{"cpu_ratio": 2}'
check "an unknown field: 400 ($code)" test "$code" = 400
"$corral" host set-capacity --vcpus-per-cpu 1 --memory-percent 50 >"$state/out" 2>&1
check "corral host set-capacity --vcpus-per-cpu 1 --memory-percent 50" test $? = 0
check "the policy file holds it" test "$(jq -c . "$state/capacity.json")" = '{"memory_percent":50,"vcpus_per_cpu":1}'
corrald_stop
corrald_start --metrics-interval 1 || exit 1   # samples every second: the plan below has a history
api GET /api/v1/host/capacity
check "a new corrald keeps the policy" test "$(jqb .policy.vcpus_per_cpu),$(jqb .policy.memory_percent)" = "1,50"

echo "== admission"
import_guest_image debian
"$corral" vm create big --image debian --cpus "$cpus" --memory 128M --cmdline corral.then=halt >/dev/null 2>&1
"$corral" vm create small --image debian --cpus 1 --memory 128M --cmdline corral.then=halt >/dev/null 2>&1
"$corral" vm start big >"$state/out" 2>&1
check "big ($cpus vCPUs, all of the $cpus allowed) starts" test $? = 0
api GET /api/v1/host/capacity
check "its vCPUs and memory are allocated ($(jqb .vcpus.allocated) vCPUs, $(jqb .memory_mib.allocated) MiB)" \
  test "$(jqb .vcpus.allocated),$(jqb .memory_mib.allocated),$(jqb .vcpus.free)" = "$cpus,128,0"
api PUT /api/v1/vms/small/state '{"action":"start"}'
check "starting small now: 409 ($code)" test "$code" = 409
check "  ... naming the resource and the numbers" \
  says "starting small would exceed this host's vCPU capacity: it needs 1 vCPUs, $cpus are allocated to running VMs, and $cpus are allowed ($cpus host CPUs x vcpus_per_cpu 1); 0 are free"
api GET /api/v1/vms/small
check "  ... and small is still stopped" test "$(jqb .state)" = stopped
"$corral" vm start small >"$state/out" 2>&1
rc=$?
check "corral vm start small: exit 1 with the reason (exit $rc)" \
  bash -c "[ $rc = 1 ] && grep -q \"would exceed this host's vCPU capacity\" '$state/out'"
"$corral" vm kill big >/dev/null 2>&1
"$corral" vm start small >"$state/out" 2>&1
check "once big is killed, small starts" test $? = 0

echo "== the capacity plan (small runs; policy 1 vCPU per host CPU, 50% of memory)"
plan() { api POST /api/v1/host/capacity/plan "$1"; }
small_p95() { jq -r '.vms[] | select(.name == "small") | .cpu_p95' <<<"$body"; }
for _ in $(seq 30); do
  plan '{"shape": {"vcpus": 1, "memory_mib": 128}}'
  [ "$code" = 200 ] && [ "$(small_p95)" != null ] && break
  sleep 1
done
check "POST /host/capacity/plan: 200 ($code)" test "$code" = 200
check "  ... small's measured CPU at its 95th percentile ($(small_p95))" test "$(small_p95)" != null
check "  ... from a history of $(jqb .history.samples) samples" test "$(jqb .history.samples)" -gt 0
cpu_fits() { jq -r '.resources[] | select(.resource == "cpu") | .fits_by_policy' <<<"$body"; }
check "  ... by the policy $((cpus - 1)) more 1-vCPU VMs fit beside small ($(cpu_fits))" test "$(cpu_fits)" = $((cpus - 1))
check "  ... the answer is the smallest of the four ($(jqb .fits): $(jqb .summary))" \
  test "$(jqb .fits)" = "$(jq '[.resources[] | .fits_by_use, .fits_by_policy] | min' <<<"$body")"
check "  ... in a sentence" grep -qE '^[0-9]+ more VMs? of 1 vCPU / 128 MiB fits?; (cpu|memory) runs out first, by the (measured use|overcommit policy)$' <<<"$(jqb .summary)"
plan '{"shape": {"vcpus": 1, "memory_mib": 128}, "what_if": [{"remove": "small"}]}'
check "what if small were removed: $cpus fit by the policy ($(cpu_fits))" test "$(cpu_fits)" = "$cpus"
plan '{"shape": {"vcpus": 1, "memory_mib": 128}, "what_if": [{"add": 1}]}'
more=$((cpus - 2)); [ "$more" -lt 0 ] && more=0
check "what if one more were added: $more fit by the policy ($(cpu_fits))" test "$(cpu_fits)" = "$more"
plan '{"what_if": [{"remove": "nope"}]}'
check "removing a VM the host lacks: 404 ($code)" test "$code" = 404
check "  ... naming it" says "what-if: no VM named nope to remove"
plan '{"shape": {"vcpus": "two"}}'
check "shape.vcpus \"two\": 400 naming shape.vcpus ($code)" bash -c "[ $code = 400 ] && [ '$(jqb .error.field)' = shape.vcpus ]"
plan '{"what_if": [{"add": 2, "remove": "small"}]}'
check "a what-if that adds and removes: 400 ($code)" test "$code" = 400
check "  ... saying what a what-if is" says "what_if[0] wants either add (a count of VMs"
"$corral" capacity plan --shape 1cpu/128M --what-if "remove small" >"$state/out" 2>&1
check "corral capacity plan --shape 1cpu/128M --what-if 'remove small': a row per resource, the answer, the VMs" \
  bash -c "grep -q '^cpu ' '$state/out' && grep -q '^memory ' '$state/out' && grep -q 'of 1 vCPU / 128 MiB fit' '$state/out' && grep -q '^what if: remove small' '$state/out' && grep -q '^small ' '$state/out'"
"$corral" capacity plan --shape 2cpus >"$state/out" 2>&1
rc=$?
check "corral capacity plan --shape 2cpus: refused (exit $rc), saying what a shape is" \
  bash -c "[ $rc != 0 ] && grep -q \"'2cpus' is not a VM shape: a VM shape is VCPUScpu/MEMORY\" '$state/out'"
"$corral" capacity plan --what-if "grow 3" >"$state/out" 2>&1
rc=$?
check "corral capacity plan --what-if 'grow 3': refused (exit $rc), saying what a what-if is" \
  bash -c "[ $rc != 0 ] && grep -q \"'grow 3' is not a what-if\" '$state/out'"
"$corral" vm kill small >/dev/null 2>&1

api POST /api/v1/vms "$(jq -n --argjson m $((memory * 50 / 100 + 64)) '{name: "huge", image: "debian", memory_mib: $m}')"
api PUT /api/v1/vms/huge/state '{"action":"start"}'
check "a VM with more memory than 50% of the host: 409 ($code)" test "$code" = 409
check "  ... naming memory and the numbers" \
  says "starting huge would exceed this host's memory capacity: it needs $((memory * 50 / 100 + 64)) MiB, 0 MiB are allocated to running VMs, and $((memory * 50 / 100)) MiB are allowed (memory_percent 50% of $memory MiB)"

echo "== a broken policy file"
corrald_stop
echo '{"vcpus_per_cpu": "many"}' >"$state/capacity.json"
timeout 60 "$corrald_bin" --state-dir "$state" --no-default-network >"$state/broken.log" 2>&1
rc=$?
check "corrald refuses to start (exit $rc) naming the file" \
  bash -c "[ $rc != 0 ] && [ $rc != 124 ] && grep -q 'capacity.json is not a capacity policy' '$state/broken.log'"

check_summary
