#!/usr/bin/env bash
# bench/snapshot/native.sh: corral-vmm's snapshots beside QEMU saving to and restoring from a file,
# same guest, same run (issue 12).
#
# For each guest size, boots the project's guest (stock Debian kernel, one vCPU) under each
# monitor; the guest fills --touch MiB of its memory with random bytes (the same amount whatever
# its size) and prints a line every 10 ms. Then:
#   snapshot: corral-vmm's control request `snapshot` (pause, write the state and the sparse memory
#     file, stay paused) against QEMU's `stop` and `migrate` to "exec:cat > FILE"; the time each
#     reports and the bytes on disk (du: the memory file is sparse).
#   restore: from process start to the guest's first line: `corral-vmm --restore DIR` (guest
#     memory mapped from the file, read as the guest touches it) against `qemu -incoming
#     "exec:cat FILE"` then `cont` (the whole stream read before the guest runs; QEMU keeps a VM
#     saved while stopped paused after loading it). corral-vmm's restore should
#     not grow with the guest's size; QEMU's reads every page, zero ones as markers.
# Prints each figure and the ratios corral-vmm / QEMU (below 1: corral-vmm is faster or smaller).
# Inside the nested lab where this host's KVM cannot run guest kernels at speed: read the ratios.
# Not a test: nothing fails on a number.
#   bench/snapshot/native.sh [--memory "256 2048"] [--touch MiB] [--smoke]
# --smoke: a 256 MiB guest touching 32 MiB. CORRAL_BUILD_DIR: the build folder (default build).
set -uo pipefail
script=$(readlink -f "${BASH_SOURCE[0]}")
here=$(dirname "$script")
repo=$(cd "$here/../.." && pwd)
build_dir="${CORRAL_BUILD_DIR:-$repo/build}"
# (Inside the lab the options come back as the environment: the lab runs the script again.)
memories=${SNAPSHOT_BENCH_MEMORY:-256 2048} touch=${SNAPSHOT_BENCH_TOUCH:-128}
# shellcheck source=../lib/options.sh
. "$repo/bench/lib/options.sh"
bench_options '[--memory "MiB ..."] [--touch MiB] [--smoke]' \
  --memory=memories --touch=touch '--smoke:memories=256 touch=32' -- "$@"
# shellcheck disable=SC2086  # a list of numbers
bench_numbers 1 "--memory and --touch" $memories "$touch"
for m in $memories; do
  ((m >= touch + 128)) || bench_usage_error "a $m MiB guest cannot touch $touch MiB (it needs 128 MiB more)"
done
if ! command -v qemu-system-x86_64 >/dev/null || ! command -v python3 >/dev/null; then
  echo "SKIP: the benchmark needs qemu-system-x86_64 and python3"
  exit 77
fi

# shellcheck source=../../tests/lib/lab.sh
. "$repo/tests/lib/lab.sh"
lab_vmm_begin 5400 SNAPSHOT_BENCH_MEMORY="$memories" SNAPSHOT_BENCH_TOUCH="$touch"

work=$(mktemp -d "${TMPDIR:-/tmp}/snapshot-bench.XXXXXX")
# shellcheck source=../lib/ticking_guest.sh
. "$repo/bench/lib/ticking_guest.sh"
cleanup() { end_all; rm -rf -- "$work"; }
trap cleanup EXIT

results="$work/results"
report() {   # report MONITOR MEMORY SNAPSHOT_MS BYTES RESTORE_MS
  echo "$1 $2 $3 $4 $5" | tee -a "$results"
}
disk_bytes() { du -s -B1 "$1" | cut -f1; }
# How long a restore may take to show a tick before it is reported as hung: QEMU reads its whole
# stream first, about 40 s a GiB in the lab (more under load), so the limit grows with the guest.
restore_limit() { echo $((120 + $1 / 8)); }
json_ms() { python3 -c 'import json, sys; print(json.loads(sys.argv[1])["ms"])' "$1"; }

run_vmm() {   # run_vmm MEMORY
  local dir="$work/vmm-$1" answer restore
  mkdir -p "$dir"
  start_stamped "$dir/source.log" "$vmm" --kernel "$kernel" --initrd "$initrd" --memory "$1M" --cpus 1 \
    --cmdline "$(ticking_guest_line "$touch" 0)" --control "$dir/source.control"
  wait_ticks "$dir/source.log" || return 1
  answer=$(python3 "$monitors" vmm-snapshot "$dir/source.control" "$dir/snapshot") ||
    { echo "corral-vmm did not snapshot: $answer"; return 1; }
  end_all
  start_stamped "$dir/restored.log" "$vmm" --restore "$dir/snapshot" --control "$dir/restored.control"
  wait_ticks "$dir/restored.log" "$(restore_limit "$1")" || return 1
  restore=$(python3 "$monitors" first "$dir/restored.log" "$tick_mark")
  report corral-vmm "$1" "$(json_ms "$answer")" "$(disk_bytes "$dir/snapshot")" "$restore"
}

run_qemu() {   # run_qemu MEMORY
  local dir="$work/qemu-$1" answer restore
  mkdir -p "$dir"
  local common=(-enable-kvm -cpu host -m "$1M" -smp 1 -nodefaults -no-user-config -display none -serial stdio
    -kernel "$kernel" -initrd "$initrd" -append "$(ticking_guest_line "$touch" 0)")
  start_stamped "$dir/source.log" qemu-system-x86_64 "${common[@]}" -qmp "unix:$dir/source.qmp,server=on,wait=off"
  wait_ticks "$dir/source.log" || return 1
  answer=$(python3 "$monitors" qemu-save "$dir/source.qmp" "$dir/state") ||
    { echo "QEMU did not save: $answer"; return 1; }
  end_all
  start_stamped "$dir/restored.log" qemu-system-x86_64 "${common[@]}" -incoming "exec:cat $dir/state" \
    -qmp "unix:$dir/restored.qmp,server=on,wait=off"
  python3 "$monitors" qemu-cont "$dir/restored.qmp" || return 1
  wait_ticks "$dir/restored.log" "$(restore_limit "$1")" || return 1
  restore=$(python3 "$monitors" first "$dir/restored.log" "$tick_mark")
  report qemu "$1" "$(json_ms "$answer")" "$(disk_bytes "$dir/state")" "$restore"
}

for memory in $memories; do
  for monitor in vmm qemu; do
    echo "== $monitor: $memory MiB guest, $touch MiB touched"
    "run_$monitor" "$memory"
    end_all
  done
done

python3 "$monitors" ratios "$results" "{} MiB" "snapshot ms" "on disk MiB:MiB" "restore ms"
