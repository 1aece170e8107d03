#!/usr/bin/env bash
# bench/migration/run.sh: corral-vmm's live migration beside QEMU's, same guest, same run (issue 13).
#
# For each guest size and each writing rate, boots the project's guest (stock Debian kernel, one
# vCPU) under each monitor, lets it fill half its memory with random bytes (pages that must
# travel: neither monitor sends zero pages), start a writer that rewrites RATE MiB of them every
# second, and print a ticker line every 10 ms; then migrates it over a unix socket on the same
# machine to a second process of the same monitor waiting for it (corral-vmm --migrate-listen,
# QEMU -incoming), with a 300 ms downtime limit and no bandwidth cap. Prints, per run, the
# monitor's own figures (rounds, MiB sent, total time, the downtime it measured) and the guest's
# view: the longest silence of its ticker across the move, from the last line the source printed
# to the first the destination printed, both stamped on arrival with the same clock. Ends with the
# ratios corral-vmm / QEMU (below 1: corral-vmm is faster or stops the guest for less).
# Inside the nested lab where this host's KVM cannot run guest kernels at speed: absolute times
# there are slow (QEMU TCG underneath), the ratios are what to read. Not a test: nothing fails on a
# number.
#   bench/migration/run.sh [--memory "512 1024"] [--rates "0 32"] [--smoke]
# --smoke: one 512 MiB guest, idle. CORRAL_BUILD_DIR: the build folder (default build).
set -uo pipefail
script=$(readlink -f "${BASH_SOURCE[0]}")
here=$(dirname "$script")
repo=$(cd "$here/../.." && pwd)
build_dir="${CORRAL_BUILD_DIR:-$repo/build}"
# (Inside the lab the options come back as the environment: the lab runs the script again.)
memories=${MIGRATION_BENCH_MEMORY:-512 1024} rates=${MIGRATION_BENCH_RATES:-0 32}
# shellcheck source=../lib/options.sh
. "$repo/bench/lib/options.sh"
bench_options '[--memory "MiB ..."] [--rates "MiB/s ..."] [--smoke]' \
  --memory=memories --rates=rates '--smoke:memories=512 rates=0' -- "$@"
# shellcheck disable=SC2086  # each is a list of numbers
bench_numbers 0 "--memory and --rates" $memories $rates
for m in $memories; do
  ((m >= 256)) || bench_usage_error "a guest needs at least 256 MiB, not $m"
done
command -v qemu-system-x86_64 >/dev/null && command -v python3 >/dev/null ||
  { echo "SKIP: the benchmark needs qemu-system-x86_64 and python3"; exit 77; }

# shellcheck source=../../tests/lib/lab.sh
. "$repo/tests/lib/lab.sh"
lab_vmm_begin 5400 MIGRATION_BENCH_MEMORY="$memories" MIGRATION_BENCH_RATES="$rates"

work=$(mktemp -d "${TMPDIR:-/tmp}/migration-bench.XXXXXX")
# shellcheck source=../lib/ticking_guest.sh
. "$repo/bench/lib/ticking_guest.sh"
cleanup() { end_all; rm -rf -- "$work"; }
trap cleanup EXIT

results="$work/results"
report() {   # report MONITOR MEMORY RATE ANSWER GAP: "MONITOR MEMORY RATE ROUNDS MIB TOTAL_MS DOWNTIME_MS GAP_MS"
  local figures
  figures=$(python3 -c 'import json, sys; s = json.loads(sys.argv[1]); print(s["rounds"], s["bytes"] >> 20, s["total_ms"], s["downtime_ms"])' "$4")
  echo "$1 $2 $3 $figures $5" | tee -a "$results"
}

# One migration each (run in this shell, not a pipeline: their pids are kept for end_all).
run_vmm() {   # run_vmm MEMORY RATE
  local dir="$work/vmm-$1-$2" answer gap
  mkdir -p "$dir"
  start_stamped "$dir/source.log" "$vmm" --kernel "$kernel" --initrd "$initrd" --memory "$1M" --cpus 1 \
    --cmdline "$(ticking_guest_line $(($1 / 2)) "$2")" --control "$dir/source.control"
  wait_ticks "$dir/source.log" || return 1
  sleep 3  # the writer's first rounds
  start_stamped "$dir/destination.log" "$vmm" --migrate-listen "unix:$dir/migrate.sock" \
    --control "$dir/destination.control"
  wait_socket "$dir/migrate.sock" || return 1
  answer=$(python3 "$monitors" vmm "$dir/source.control" "unix:$dir/migrate.sock" 300) ||
    { echo "corral-vmm did not migrate: $answer"; tail -n 5 "$dir/source.log" "$dir/destination.log"; return 1; }
  wait_ticks "$dir/destination.log"  # the guest ticks there
  gap=$(python3 "$monitors" gap "$dir/source.log" "$dir/destination.log" "$tick_mark")
  report corral-vmm "$1" "$2" "$answer" "$gap"
  python3 -c 'import json, socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(b"{\"action\":\"stop\"}\n"); s.recv(4096)' \
    "$dir/destination.control" 2>/dev/null
}

run_qemu() {   # run_qemu MEMORY RATE
  local dir="$work/qemu-$1-$2" answer gap line
  mkdir -p "$dir"
  line=$(ticking_guest_line $(($1 / 2)) "$2")
  local common=(-enable-kvm -cpu host -m "$1M" -smp 1 -nodefaults -no-user-config -display none -serial stdio
    -kernel "$kernel" -initrd "$initrd" -append "$line")
  start_stamped "$dir/source.log" qemu-system-x86_64 "${common[@]}" -qmp "unix:$dir/source.qmp,server=on,wait=off"
  wait_ticks "$dir/source.log" || return 1
  sleep 3
  start_stamped "$dir/destination.log" qemu-system-x86_64 "${common[@]}" \
    -qmp "unix:$dir/destination.qmp,server=on,wait=off" -incoming "unix:$dir/migrate.sock"
  wait_socket "$dir/migrate.sock" || return 1
  answer=$(python3 "$monitors" qemu "$dir/source.qmp" "unix:$dir/migrate.sock" 300) ||
    { echo "QEMU did not migrate: $answer"; tail -n 5 "$dir/source.log" "$dir/destination.log"; return 1; }
  wait_ticks "$dir/destination.log"
  gap=$(python3 "$monitors" gap "$dir/source.log" "$dir/destination.log" "$tick_mark")
  report qemu "$1" "$2" "$answer" "$gap"
  python3 "$repo/bench/snapshot/qmp.py" qmp "$dir/source.qmp" quit >/dev/null 2>&1
  python3 "$repo/bench/snapshot/qmp.py" qmp "$dir/destination.qmp" quit >/dev/null 2>&1
}


for memory in $memories; do
  for rate in $rates; do
    for monitor in vmm qemu; do
      echo "== $monitor: $memory MiB guest, writing $rate MiB/s"
      "run_$monitor" "$memory" "$rate"
      end_all
    done
  done
done

python3 "$monitors" ratios "$results" "{} MiB {} MiB/s" rounds MiB "total ms" "downtime ms" "tick gap ms"
