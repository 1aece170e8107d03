#!/usr/bin/env bash
# tests/e2e/vm_limits.sh: VM limits enforced by the kernel, with a real corrald, real QEMU guests
# (the emulated engine) and this host's real cgroups (v1 or v2, whichever it has).
#
# Checks: `host info` names the cgroup version; limits out of range are refused naming the field;
# a guest that burns CPU, created with a cap of half a CPU, uses about half of one CPU as its
# cgroup's own counters measure it (cpuacct.usage on v1, cpu.stat usage_usec on v2) and is
# throttled; the cap changed live with `vm edit` is written at once and the usage follows it;
# other settings of a running VM are refused; a guest that fills its memory past its memory cap is
# killed by the kernel and its state says so; the groups go when the VMs end.
# The bands are generous: they tell "capped" from "not capped", not a precise share.
# CORRAL_LIMITS_ENGINE=native runs the VMs on corral-vmm instead (tests/e2e/vm_limits_v2.sh does,
# inside the nested lab on cgroup v2).
# Exit 0 all passed, 1 a check failed, 77 skipped.
set -uo pipefail
script=$(readlink -f "${BASH_SOURCE[0]}")
repo=$(cd "$(dirname "$script")/../.." && pwd)
build_dir="${CORRAL_BUILD_DIR:-$repo/build}"
corral="$build_dir/src/cli/corral"
[ "$(id -u)" = 0 ] || { echo "SKIP: cgroups need root"; exit 77; }
# shellcheck source=../lib/guest.sh
. "$repo/tests/lib/guest.sh"
guest_image

# shellcheck source=../lib/corrald.sh
. "$repo/tests/lib/corrald.sh"
parent="corral-test-$$"   # this test's own cgroup parent: no other corrald's VMs in it
cleanup() {
  corrald_failure_report burn hog
  if [ -n "$corrald_pid" ]; then
    api PUT /api/v1/vms/burn/state '{"action":"kill"}'
    api PUT /api/v1/vms/hog/state '{"action":"kill"}'
    sleep 2
  fi
  corrald_stop
  # The parent folders corrald made (empty once the VMs ended; rmdir never removes a used group).
  [ -n "${parents:-}" ] && for dir in $parents; do rmdir "$dir" 2>/dev/null; done
  rm -rf -- "$state"
}
trap cleanup EXIT
export CORRAL_SOCKET="$sock"
boot_wait=${CORRAL_BOOT_WAIT:-400}   # seconds; TCG under a CPU cap on a busy 2-core host
engine=${CORRAL_LIMITS_ENGINE:-}   # empty: the host's default (the emulated engine where KVM is slow)
engine_args=()
[ -n "$engine" ] && engine_args=(--engine "$engine")
# vCPU 0's thread: QEMU names it (-name ...,debug-threads=on), and so does corral-vmm.
vcpu0_comm="CPU 0/TCG"
[ "$engine" = native ] && vcpu0_comm=vcpu0

corrald_start --cgroup-parent "$parent" || exit 1

echo "== host"
api GET /api/v1/host
version=$(jqb .cgroups.version)
parents=$(jqb '.cgroups.parents[]')
check "GET /host says which cgroup version holds VM limits ($version)" test "$version" = v1 -o "$version" = v2
"$corral" host info >"$state/out" 2>&1
check "corral host info prints it" grep -q "^cgroups: *$version" "$state/out"
[ "$version" = none ] && { echo "SKIP: no usable cgroups: $(jqb .cgroups.note)"; exit 77; }
cpu_parent=$(jqb '.cgroups.parents.cpu // .cgroups.parents.unified')
acct_parent=$(jqb '.cgroups.parents.cpuacct // .cgroups.parents.unified')

# CPU time of a VM's group in microseconds, from the group's own counters.
cpu_usec() {
  if [ "$version" = v1 ]; then echo $(($(cat "$acct_parent/$1/cpuacct.usage") / 1000))
  else awk '$1 == "usage_usec" { print $2 }' "$acct_parent/$1/cpu.stat"; fi
}
throttled() { awk '$1 == "nr_throttled" { print $2 }' "$cpu_parent/$1/cpu.stat"; }
# The share of one CPU the VM used over $2 seconds, as a decimal ("0.48").
cpu_share() {
  local before after
  before=$(cpu_usec "$1"); sleep "$2"; after=$(cpu_usec "$1")
  awk -v a="$before" -v b="$after" -v s="$2" 'BEGIN { printf "%.2f", (b - a) / (s * 1e6) }'
}
# refused STATUS WHAT TEXT: the last answer was STATUS and its body names TEXT.
refused() {
  check "$2: $1 (got $code)" test "$code" = "$1"
  check "  ... the error says: $3" grep -qF -- "$3" <<<"$body"
}
between() { awk -v v="$1" -v lo="$2" -v hi="$3" 'BEGIN { exit !(v >= lo && v <= hi) }'; }

echo "== refusals"
api POST /api/v1/vms '{"name": "bad", "limits": {"cpu_max_percent": 100000}}'
refused 400 "a cap beyond the host's CPUs" 'limits.cpu_max_percent must be from 0 to'
api POST /api/v1/vms '{"name": "bad", "limits": {"host_cpus": "0,999"}}'
refused 400 "a CPU the host lacks" "limits.host_cpus: CPU 999 is not one of this host's CPUs"
api POST /api/v1/vms '{"name": "bad", "limits": {"memory_overhead_mib": 4}}'
refused 400 "a memory overhead below 16 MiB" 'limits.memory_overhead_mib must be 0 (no memory limit) or from 16'
api POST /api/v1/vms '{"name": "bad", "limits": {"cpu_wieght": 5}}'
refused 400 "an unknown limit" 'limits.cpu_wieght'
api POST /api/v1/vms '{"name": "bad", "vcpus": 1, "limits": {"vcpu_pins": "0,1"}}'
refused 400 "two vCPU pins for one vCPU" "limits.vcpu_pins '0,1' names 2 host CPUs for 1 vCPUs"
api GET /api/v1/vms/bad
check "  ... and nothing was created ($code)" test "$code" = 404

import_guest_image debian

echo "== a CPU cap"
burn=$("$repo/tools/guest-image" encode-run 'echo burn-start; while :; do :; done')
"$corral" vm create burn "${engine_args[@]}" --image debian --memory 256M --cpu-max 50% --cpu-weight 200 --vcpu-pins 1 \
  --cmdline "$burn" >"$state/out" 2>&1
check "corral vm create burn --cpu-max 50% --cpu-weight 200 --vcpu-pins 1" test $? = 0
"$corral" vm show burn >"$state/out" 2>&1
check "vm show: limits: cpu weight 200, cpu max 50%, vcpu pins 1" \
  grep -q '^limits: *cpu weight 200, cpu max 50%, vcpu pins 1$' "$state/out"
"$corral" vm start burn >"$state/out" 2>&1
check "corral vm start burn" test $? = 0
api GET /api/v1/vms/burn
vm_pid=$(jqb .pid)
check "the VM's process is in its group ($cpu_parent/burn)" grep -qx "$vm_pid" "$cpu_parent/burn/cgroup.procs"
if [ "$version" = v1 ]; then
  check "cpu.cfs_quota_us is half a period (50000)" test "$(cat "$cpu_parent/burn/cpu.cfs_quota_us")" = 50000
  check "cpu.shares is 2048 (weight 200)" test "$(cat "$cpu_parent/burn/cpu.shares")" = 2048
else
  check "cpu.max is half a period (50000 100000)" test "$(cat "$cpu_parent/burn/cpu.max")" = "50000 100000"
  check "cpu.weight is 200" test "$(cat "$cpu_parent/burn/cpu.weight")" = 200
fi
check "the guest runs its CPU burner" wait_console burn 'burn-start' "$boot_wait"
# The vCPU thread by its name (QEMU -name ...,debug-threads=on), and the CPUs it may run on.
vcpu_affinity() {
  local task
  for task in /proc/"$vm_pid"/task/*; do
    [ "$(cat "$task/comm" 2>/dev/null)" = "$vcpu0_comm" ] && awk '/^Cpus_allowed_list/ { print $2 }' "$task/status"
  done
}
check "vCPU 0 runs only on host CPU 1 (Cpus_allowed_list $(vcpu_affinity))" test "$(vcpu_affinity)" = 1
throttled_before=$(throttled burn)
share=$(cpu_share burn 10)
echo "   measured: $share of one CPU over 10 s (cap 0.50)"
check "capped at half a CPU, it used about half ($share of one CPU; band 0.25-0.65)" between "$share" 0.25 0.65
check "  ... and its group was throttled ($throttled_before -> $(throttled burn) periods)" \
  test "$(throttled burn)" -gt "$throttled_before"

api GET /api/v1/vms/burn/metrics
echo "   metrics: cpu_throttled_seconds $(jqb .cpu_throttled_seconds), vcpu_run_delay_seconds $(jqb .vcpu_run_delay_seconds)"
check "metrics: time throttled by the cap ($(jqb .cpu_throttled_seconds) s) as its cgroup counts it" \
  awk -v v="$(jqb .cpu_throttled_seconds)" 'BEGIN { exit !(v > 0) }'
check "metrics: its vCPU waited for a host CPU ($(jqb .vcpu_run_delay_seconds) s run delay)" \
  awk -v v="$(jqb .vcpu_run_delay_seconds)" 'BEGIN { exit !(v > 0) }'
curl -s --unix-socket "$sock" http://corral/metrics >"$state/prom"
check "Prometheus: corral_vm_cpu_throttled_seconds_total{vm=\"burn\"}" grep -q '^corral_vm_cpu_throttled_seconds_total{vm="burn"} [0-9]' "$state/prom"
check "Prometheus: corral_vm_vcpu_run_delay_seconds_total{vm=\"burn\"}" grep -q '^corral_vm_vcpu_run_delay_seconds_total{vm="burn"} [0-9]' "$state/prom"

echo "== the cap changed live"
"$corral" vm edit burn --cpu-max 20% >"$state/out" 2>&1
check "corral vm edit burn --cpu-max 20% on the running VM" test $? = 0
if [ "$version" = v1 ]; then
  check "cpu.cfs_quota_us is 20000 at once" test "$(cat "$cpu_parent/burn/cpu.cfs_quota_us")" = 20000
else
  check "cpu.max is 20000 100000 at once" test "$(cat "$cpu_parent/burn/cpu.max")" = "20000 100000"
fi
share=$(cpu_share burn 10)
echo "   measured: $share of one CPU over 10 s (cap 0.20)"
check "capped at a fifth, it used about a fifth ($share; band 0.08-0.32)" between "$share" 0.08 0.32
"$corral" vm edit burn --vcpu-pins 0 >"$state/out" 2>&1
check "vm edit --vcpu-pins 0 moves the running vCPU to host CPU 0 ($(vcpu_affinity))" test "$(vcpu_affinity)" = 0
"$corral" vm edit burn --memory 512M >"$state/out" 2>&1
rc=$?
check "vm edit --memory on the running VM is refused (exit $rc), naming the setting" \
  bash -c "[ $rc != 0 ] && grep -q 'stop it before changing memory_mib' '$state/out'"
"$corral" vm edit burn --cpu-max 0 >"$state/out" 2>&1
if [ "$version" = v1 ]; then
  check "--cpu-max 0 removes the cap (cpu.cfs_quota_us -1)" test "$(cat "$cpu_parent/burn/cpu.cfs_quota_us")" = -1
else
  check "--cpu-max 0 removes the cap (cpu.max max 100000)" test "$(cat "$cpu_parent/burn/cpu.max")" = "max 100000"
fi
api PUT /api/v1/vms/burn/state '{"action":"kill"}'
wait_task "$(jqb .task)" 60
check "burn killed" test "$(jqb .status)" = succeeded
check "its groups went with it" test ! -e "$cpu_parent/burn"

echo "== a memory cap"
# 180 MiB of files in a tmpfs: guest memory QEMU must back, far past 256M + 16M with QEMU's own.
hog=$("$repo/tools/guest-image" encode-run \
  'echo hog-start; mkdir -p /hog; mount -t tmpfs -o size=220m none /hog; dd if=/dev/zero of=/hog/f bs=1M count=200; echo hog-survived')
"$corral" vm create hog "${engine_args[@]}" --image debian --memory 256M --memory-overhead 16M --cmdline "$hog" >"$state/out" 2>&1
check "corral vm create hog --memory 256M --memory-overhead 16M" test $? = 0
"$corral" vm show hog >"$state/out" 2>&1
check "vm show: limits: memory max 272M (256M + 16M overhead)" grep -q 'memory max 272M (256M + 16M overhead)' "$state/out"
"$corral" vm start hog >"$state/out" 2>&1
check "corral vm start hog" test $? = 0
mem_parent=$(curl -s --unix-socket "$sock" http://corral/api/v1/host | jq -r '.cgroups.parents.memory // .cgroups.parents.unified')
mem_max_file=memory.max
[ "$version" = v1 ] && mem_max_file=memory.limit_in_bytes
check "the group's $mem_max_file is 272 MiB ($(cat "$mem_parent/hog/$mem_max_file" 2>/dev/null))" \
  test "$(cat "$mem_parent/hog/$mem_max_file" 2>/dev/null)" = $((272 * 1024 * 1024))
if [ "$engine" = native ]; then
  # corral-vmm's own memory is a few MiB: the guest filling its RAM stays inside RAM + 16M, as it
  # should. The cap is lowered below what the guest is about to write, as a tighter limit would be,
  # so that the kernel's OOM kill at a group's limit and corrald's report of it are seen here too.
  echo $((96 * 1024 * 1024)) >"$mem_parent/hog/$mem_max_file"
fi
check "over its memory cap, the VM is killed (crashed)" wait_state hog crashed "$boot_wait"
reason=$(jqb .state_reason)
echo "   state_reason: $reason"
check "  ... and its state says the OOM killer ended it at its memory limit" grep -q "OOM killer ended it at its memory limit" <<<"$reason"
check "  ... the guest never got past its memory" bash -c "! '$corral' vm console hog --tail 200 | grep -q hog-survived"
check "its groups went with it" test ! -e "$mem_parent/hog"

corrald_failure_report burn hog
check_summary
