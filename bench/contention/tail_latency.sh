#!/usr/bin/env bash
# bench/contention/tail_latency.sh: a latency-sensitive VM beside an I/O-heavy one, with and
# without limits on the heavy one: the quiet VM's disk read latency percentiles (issue 17).
#
# Two VMs on the emulated engine (QEMU) through a real corrald, each with its own linked clone of
# the same image in the same pool (one host disk):
#   quiet  one 4 KiB O_DIRECT read at a random offset of its disk every 10 ms
#          (bench/virtio/guest_io.c `latency`: paced, so a slow read does not hide the next);
#   noisy  writes its disk as fast as it can (busybox dd, 1 MiB O_DIRECT writes, in a loop).
# Three runs of --seconds each: quiet alone (the baseline), beside noisy unlimited, and beside
# noisy limited (--disk-bps and --disk-iops, and --cpu-max 50% where cgroups allow: under TCG the
# heavy writer also takes CPU from its neighbour). Prints p50/p99/p99.9/max for each and the
# ratios to the baseline. The VMs boot from their initramfs (no corral.root), so both disks are
# raw block devices to them. Nothing here fails on a number.
# Usage: bench/contention/tail_latency.sh [--seconds N] [--disk-bps SIZE] [--disk-iops N]
#   (defaults 30, 8M, 200). Needs root and qemu-system-x86_64.
set -uo pipefail
script=$(readlink -f "${BASH_SOURCE[0]}")
repo=$(cd "$(dirname "$script")/../.." && pwd)
build_dir="${CORRAL_BUILD_DIR:-$repo/build}"
corral="$build_dir/src/cli/corral"
seconds=30 disk_bps=8M disk_iops=200
# shellcheck source=../lib/options.sh
. "$repo/bench/lib/options.sh"
bench_options '[--seconds N] [--disk-bps SIZE] [--disk-iops N]' \
  --seconds=seconds --disk-bps=disk_bps --disk-iops=disk_iops -- "$@"
[ "$(id -u)" = 0 ] || { echo "bench: needs root"; exit 77; }
command -v gcc >/dev/null && command -v cpio >/dev/null || { echo "bench: needs gcc and cpio"; exit 77; }
# shellcheck source=../../tests/lib/guest.sh
. "$repo/tests/lib/guest.sh"
guest_image
# shellcheck source=../../tests/lib/corrald.sh
. "$repo/tests/lib/corrald.sh"
work=$(mktemp -d "${TMPDIR:-/tmp}/tail-latency.XXXXXX")
cleanup() {
  if [ -n "$corrald_pid" ]; then
    for vm in quiet noisy; do api PUT "/api/v1/vms/$vm/state" '{"action":"kill"}'; done
    sleep 2
  fi
  corrald_stop
  rm -rf -- "$state" "$work"
}
trap cleanup EXIT
export CORRAL_SOCKET="$sock"

# guest_io in an extra newc archive after the test initrd (the kernel unpacks both).
mkdir -p "$work/extra/bench"
gcc -static -O2 -pthread -o "$work/extra/bench/guest_io" "$repo/bench/virtio/guest_io.c" || exit 1
cp "$initrd" "$work/initrd.img"
size=$(stat -c %s "$work/initrd.img")
truncate -s $(( (size + 511) / 512 * 512 )) "$work/initrd.img"
(cd "$work/extra" && find bench | cpio -o -H newc --quiet) >>"$work/initrd.img" || exit 1

corrald_start --default-engine emulated || exit 1
api POST /api/v1/images "$(jq -n --arg k "$kernel" --arg i "$work/initrd.img" --arg r "$rootfs" \
  '{name: "bench", kernel: $k, initrd: $i, root: $r, cmdline: "console=ttyS0 quiet corral.then=halt"}')"
wait_task "$(jqb .task)" 120 >/dev/null
reader=$("$repo/tools/guest-image" encode-run "sleep 3; /bench/guest_io latency /dev/vda $seconds 10")
writer=$("$repo/tools/guest-image" encode-run 'echo writing; while :; do dd if=/dev/zero of=/dev/vda bs=1M count=128 oflag=direct 2>/dev/null; done')
"$corral" vm create quiet --image bench --cpus 1 --memory 256M --nic none --cmdline "$reader" >/dev/null || exit 1
"$corral" vm create noisy --image bench --cpus 1 --memory 256M --nic none --cmdline "$writer" >/dev/null || exit 1
cgroups=$(api GET /api/v1/host >/dev/null; jqb .cgroups.version)

# run WITH_NOISY: quiet's "latency: ..." line (noisy, if asked, writing before quiet starts)
run() {
  if [ "$1" = 1 ]; then
    "$corral" vm start noisy >/dev/null || return 1
    wait_console noisy writing 600 || { echo "bench: noisy did not boot" >&2; return 1; }
    sleep 5
  fi
  "$corral" vm start quiet >/dev/null || return 1
  wait_console quiet 'latency: ' $((600 + seconds)) || { echo "bench: quiet gave no figures" >&2; return 1; }
  local line
  line=$(console_since_start quiet | grep -a 'latency: ' | tail -n 1 | tr -d '\r')
  for vm in quiet noisy; do "$corral" vm kill "$vm" >/dev/null 2>&1; done
  wait_state quiet stopped 60; wait_state noisy stopped 60
  echo "$line"
}
field() { sed -n "s/.*$1 \([0-9]*\) us.*/\1/p" <<<"$2"; }

echo "bench: quiet VM reading 4 KiB every 10 ms for $seconds s; noisy VM writing 1 MiB O_DIRECT in a loop (cgroups $cgroups)"
alone=$(run 0) || exit 1
beside=$(run 1) || exit 1
limit_args=(--disk-bps "$disk_bps" --disk-iops "$disk_iops")
[ "$cgroups" != none ] && limit_args+=(--cpu-max 50%)
"$corral" vm edit noisy "${limit_args[@]}" >/dev/null || exit 1
limited=$(run 1) || exit 1

printf '%-56s %10s %10s %10s %10s\n' "quiet VM's reads (us)" p50 p99 p99.9 max
for row in "alone|$alone" "beside noisy, unlimited|$beside" "beside noisy, ${limit_args[*]}|$limited"; do
  name=${row%%|*} line=${row#*|}
  printf '%-56s %10s %10s %10s %10s\n' "$name" "$(field p50 "$line")" "$(field p99 "$line")" \
    "$(field p99.9 "$line")" "$(field max "$line")"
done
for row in "unlimited|$beside" "limited|$limited"; do
  name=${row%%|*} line=${row#*|}
  printf 'ratio to alone, %-18s p50 %sx  p99 %sx  p99.9 %sx\n' "$name:" \
    "$(awk -v a="$(field p50 "$line")" -v b="$(field p50 "$alone")" 'BEGIN { printf "%.2f", a / b }')" \
    "$(awk -v a="$(field p99 "$line")" -v b="$(field p99 "$alone")" 'BEGIN { printf "%.2f", a / b }')" \
    "$(awk -v a="$(field p99.9 "$line")" -v b="$(field p99.9 "$alone")" 'BEGIN { printf "%.2f", a / b }')"
done
