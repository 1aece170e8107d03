#!/usr/bin/env bash
# bench/contention/run.sh: CPU shares between VMs that contend for one host CPU, measured from
# their cgroups' own counters, against the ideal the weights promise.
#
# Two VMs (emulated engine, 1 vCPU, a guest that burns CPU) pinned to the same host CPU
# (limits.host_cpus), first with equal weights (the kernel's default: the control), then with
# cpu_weight 100 and 300 (1:3; ideal shares 25% / 75%). After both guests run their loop, CPU
# time is read from each VM's group (cpuacct.usage on cgroup v1, cpu.stat usage_usec on v2) over
# --seconds. Prints each VM's share, the ideal and the error in percentage points.
# Usage: bench/contention/run.sh [--seconds N] [--cpu N]   (defaults 30 and the last host CPU)
# Needs root (cgroups) and qemu-system-x86_64. Nothing here fails on a number.
set -uo pipefail
script=$(readlink -f "${BASH_SOURCE[0]}")
repo=$(cd "$(dirname "$script")/../.." && pwd)
build_dir="${CORRAL_BUILD_DIR:-$repo/build}"
corral="$build_dir/src/cli/corral"
seconds=30 cpu=$(($(nproc) - 1))
# shellcheck source=../lib/options.sh
. "$repo/bench/lib/options.sh"
bench_options '[--seconds N] [--cpu N]' --seconds=seconds --cpu=cpu -- "$@"
[ "$(id -u)" = 0 ] || { echo "bench: needs root (cgroups)"; exit 77; }
# shellcheck source=../../tests/lib/guest.sh
. "$repo/tests/lib/guest.sh"
guest_image
# shellcheck source=../../tests/lib/corrald.sh
. "$repo/tests/lib/corrald.sh"
cleanup() {
  if [ -n "$corrald_pid" ]; then
    for vm in light heavy; do api PUT "/api/v1/vms/$vm/state" '{"action":"kill"}'; done
    sleep 2
  fi
  corrald_stop
  for dir in ${parents:-}; do rmdir "$dir" 2>/dev/null; done
  rm -rf -- "$state"
}
trap cleanup EXIT
export CORRAL_SOCKET="$sock"

corrald_start --cgroup-parent "corral-bench-$$" || exit 1
api GET /api/v1/host
version=$(jqb .cgroups.version)
parents=$(jqb '.cgroups.parents[]')
acct=$(jqb '.cgroups.parents.cpuacct // .cgroups.parents.unified')
[ "$version" = none ] && { echo "bench: no usable cgroups: $(jqb .cgroups.note)"; exit 77; }
cpu_usec() {
  if [ "$version" = v1 ]; then echo $(($(cat "$acct/$1/cpuacct.usage") / 1000))
  else awk '$1 == "usage_usec" { print $2 }' "$acct/$1/cpu.stat"; fi
}
api POST /api/v1/images "$(jq -n --arg k "$kernel" --arg i "$initrd" --arg r "$rootfs" \
  '{name: "debian", kernel: $k, initrd: $i, root: $r}')"
wait_task "$(jqb .task)" 120 >/dev/null
burn=$("$repo/tools/guest-image" encode-run 'echo burn-start; while :; do :; done')
for vm in light heavy; do
  "$corral" vm create "$vm" --image debian --cpus 1 --memory 256M --host-cpus "$cpu" --cmdline "$burn" >/dev/null || exit 1
done

# run LIGHT_WEIGHT HEAVY_WEIGHT: prints "light_share heavy_share" (fractions of their sum)
run() {
  "$corral" vm edit light --cpu-weight "$1" >/dev/null && "$corral" vm edit heavy --cpu-weight "$2" >/dev/null || return 1
  local vm
  for vm in light heavy; do "$corral" vm start "$vm" >/dev/null || return 1; done
  for vm in light heavy; do wait_console "$vm" burn-start 900 || { echo "bench: $vm did not boot" >&2; return 1; }; done
  sleep 5   # both in their loop
  local l0 h0 l1 h1
  l0=$(cpu_usec light) h0=$(cpu_usec heavy)
  sleep "$seconds"
  l1=$(cpu_usec light) h1=$(cpu_usec heavy)
  for vm in light heavy; do "$corral" vm kill "$vm" >/dev/null; done
  awk -v l=$((l1 - l0)) -v h=$((h1 - h0)) -v s="$seconds" \
    'BEGIN { printf "%.3f %.3f %.2f\n", l / (l + h), h / (l + h), (l + h) / (s * 1e6) }'
}

echo "bench: two CPU-bound VMs on host CPU $cpu, cgroup $version, ${seconds} s each"
printf '%-16s %-8s %-8s %-8s %-8s %-10s %s\n' weights light heavy ideal "error" "cpus used" ""
for weights in "100 100" "100 300"; do
  read -r lw hw <<<"$weights"
  result=$(run "$lw" "$hw") || exit 1
  read -r ls hs used <<<"$result"
  ideal=$(awk -v l="$lw" -v h="$hw" 'BEGIN { printf "%.3f", l / (l + h) }')
  error=$(awk -v m="$ls" -v i="$ideal" 'BEGIN { d = (m - i) * 100; if (d < 0) d = -d; printf "%.1f pp", d }')
  printf '%-16s %-8s %-8s %-8s %-8s %-10s\n' "$lw:$hw" "$ls" "$hs" "$ideal" "$error" "$used"
done
