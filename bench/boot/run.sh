#!/usr/bin/env bash
# bench/boot/run.sh: corral-vmm against QEMU (-enable-kvm) on the same machine, same kernel,
# same initramfs, in the same run. Prints each figure, QEMU's beside it, and the ratio.
#
#   1. boot to init: process start to the guest init's "CORRAL-INIT: up" line, stock Debian
#      kernel + test initramfs, 2 vCPUs, 512 MiB (QEMU: -M microvm, the same -kernel/-initrd);
#   2. monitor memory overhead: resident memory outside guest RAM (1 vCPU, 128 MiB guest, booted
#      to init and idle), from /proc/PID/smaps less the guest RAM mapping;
#   3. process start to first guest instruction and back: a guest whose first instructions reset
#      the VM (corral-vmm: the tiny `hello` guest; QEMU: a 64 KiB BIOS image whose reset vector
#      writes 0xFE to port 0x64), wall time from exec to exit.
# Runs directly where /dev/kvm runs guest kernels at speed, else inside the nested lab
# (tools/lab), where both monitors see the same emulated-SVM KVM: absolute times there are
# ~100x slower than hardware, the ratios are what to read.
# Usage: bench/boot/run.sh [--runs N]   (default 3 runs each; medians are printed)
set -uo pipefail

script=$(readlink -f "${BASH_SOURCE[0]}")
repo=$(cd "$(dirname "$script")/../.." && pwd)
build_dir="${CORRAL_BUILD_DIR:-$repo/build}"
runs=3
[ "${1:-}" = --runs ] && runs=$2

if [ -z "${CORRAL_IN_LAB:-}" ] && { [ ! -c /dev/kvm ] || [ -d /sys/module/kvm_pvm ]; }; then
  "$repo/tools/guest-image" >/dev/null || exit 1
  echo "bench: running inside the nested lab"
  cd "$build_dir" || exit 1
  exec "$repo/tools/lab" --timeout 3000 --memory 4G -- env CORRAL_IN_LAB=1 \
    CORRAL_BUILD_DIR="$build_dir" CORRAL_CACHE="${CORRAL_CACHE:-$HOME/.cache/corral}" "$script" --runs "$runs"
fi

eval "$("$repo/tools/guest-image" | grep -E '^(kernel|initrd)=')"
vmm="$build_dir/src/vmm/corral-vmm"
hello="$build_dir/guests/tiny/hello.elf"
work=$(mktemp -d "${TMPDIR:-/tmp}/bench-boot.XXXXXX")
trap 'rm -rf -- "$work"' EXIT

now() { date +%s.%N; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }

# seconds_until PATTERN TIMEOUT -- COMMAND...: runs COMMAND, prints the seconds until a line of its
# output matches PATTERN (or "timeout"), then kills it by pid.
seconds_until() {
  local pattern=$1 limit=$2; shift 3
  local out="$work/out.$$" start elapsed=timeout
  start=$(now)
  "$@" >"$out" 2>&1 </dev/null &
  local pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    if grep -q -- "$pattern" "$out"; then elapsed=$(awk -v s="$start" -v e="$(now)" 'BEGIN{printf "%.2f", e-s}'); break; fi
    if awk -v s="$start" -v e="$(now)" -v l="$limit" 'BEGIN{exit !(e-s>l)}'; then break; fi
    sleep 0.05
  done
  kill -KILL "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
  echo "$elapsed"
}

cmdline="console=ttyS0 quiet corral.then=halt"
qemu_microvm=(qemu-system-x86_64 -M microvm,isa-serial=on,rtc=on -enable-kvm -cpu max -nodefaults
              -no-user-config -nographic -serial stdio -no-reboot)

echo "== 1. boot to init (stock kernel + initramfs, 2 vCPUs, 512 MiB), $runs runs each"
for i in $(seq "$runs"); do
  seconds_until 'CORRAL-INIT: up' 900 -- "$vmm" --kernel "$kernel" --initrd "$initrd" --memory 512M --cpus 2 --cmdline "$cmdline"
done | tee "$work/corral_boot" | sed 's/^/  corral-vmm: /'
for i in $(seq "$runs"); do
  seconds_until 'CORRAL-INIT: up' 900 -- "${qemu_microvm[@]}" -m 512M -smp 2 -kernel "$kernel" -initrd "$initrd" -append "$cmdline"
done | tee "$work/qemu_boot" | sed 's/^/  qemu microvm: /'
corral_boot=$(median <"$work/corral_boot"); qemu_boot=$(median <"$work/qemu_boot")
echo "boot to init: corral-vmm ${corral_boot} s, qemu ${qemu_boot} s, ratio corral/qemu $(ratio "$corral_boot" "$qemu_boot")"

echo "== 2. monitor memory overhead (1 vCPU, 128 MiB guest, idle at init)"
# Resident kB of every mapping except the guest RAM mapping (the one 128 MiB mapping).
overhead_kb() {
  # smaps lists each mapping's Size before its Rss. Guest RAM is the mapping of at least
  # 128 MiB (QEMU may pad it for alignment); nothing else either monitor maps is that large.
  awk '/^Size:/ { guest = ($2 >= 131072) }
       /^Rss:/ { if (!guest) total += $2 }
       END { print total + 0 }' "/proc/$1/smaps"
}
measure_overhead() {   # measure_overhead COMMAND...: boot to init, then print overhead kB
  local out="$work/mem.out"
  "$@" >"$out" 2>&1 </dev/null &
  local pid=$! i
  for i in $(seq 1 1800); do grep -q 'CORRAL-INIT: up' "$out" && break; kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  sleep 2
  overhead_kb "$pid"
  kill -KILL "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
}
corral_kb=$(measure_overhead "$vmm" --kernel "$kernel" --initrd "$initrd" --memory 128M --cpus 1 --cmdline "$cmdline")
qemu_kb=$(measure_overhead "${qemu_microvm[@]}" -m 128M -smp 1 -kernel "$kernel" -initrd "$initrd" -append "$cmdline")
echo "memory overhead: corral-vmm $((corral_kb / 1024)) MiB (${corral_kb} kB), qemu $((qemu_kb / 1024)) MiB (${qemu_kb} kB), ratio corral/qemu $(ratio "$corral_kb" "$qemu_kb"); Firecracker's published figure: < 5 MiB"

echo "== 3. process start to first guest instruction and exit, $runs runs each"
# A 64 KiB BIOS whose reset vector (at 0xFFF0 in the image) is: xor al,al; out 0xf4,al; hlt.
# microvm has no i8042 or 0xCF9, so QEMU's isa-debug-exit device at port 0xf4 ends it instead.
printf '\x30\xc0\xe6\xf4\xf4' >"$work/reset.code"
head -c 65520 /dev/zero >"$work/bios.bin"; cat "$work/reset.code" >>"$work/bios.bin"
truncate -s 65536 "$work/bios.bin"
time_run() { local s; s=$(now); timeout 120 "$@" >/dev/null 2>&1 </dev/null; awk -v s="$s" -v e="$(now)" 'BEGIN{printf "%.3f\n", e-s}'; }
for i in $(seq "$runs"); do time_run "$vmm" --kernel "$hello" --memory 128M; done >"$work/corral_start"
for i in $(seq "$runs"); do time_run qemu-system-x86_64 -M microvm -enable-kvm -nodefaults -no-user-config -display none -m 128M -bios "$work/bios.bin" -no-reboot -device isa-debug-exit,iobase=0xf4,iosize=0x04; done >"$work/qemu_start"
corral_start=$(median <"$work/corral_start"); qemu_start=$(median <"$work/qemu_start")
echo "start to first instruction and exit: corral-vmm ${corral_start} s, qemu ${qemu_start} s, ratio corral/qemu $(ratio "$corral_start" "$qemu_start")"
