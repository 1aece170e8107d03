#!/usr/bin/env bash
# bench/display/vmm_vs_qemu.sh: corral-vmm's display and VNC against QEMU's, same guest, same run.
#
# Boots the project's guest (stock Debian kernel) twice at once: under corral-vmm with
# --display 1024x768 --vnc unix:..., and under QEMU (KVM) with -vga none -device
# virtio-gpu-pci,xres=1024,yres=768, virtio keyboard and tablet and -vnc unix:...; waits for both
# text consoles ("CORRAL-INIT: display"), then runs update_bench.py against each VNC socket with
# the same keys pressed in the guest through VNC: the full change is Alt-F1 back to a screenful of
# numbers on virtual console 1 from the blank console 2 (a whole-screen redraw by the guest's
# text console, no program in the way), the line change one character typed on the prompt line.
# Prints each run and the ratios (corral-vmm / QEMU) of the medians of bytes, time to the first
# update and time to the last. The guests boot without a text cursor (its blink never ends).
# Inside the nested lab where this host's KVM cannot run guest kernels at speed.
#   bench/display/vmm_vs_qemu.sh [--runs N] [--encodings tight]
# CORRAL_BUILD_DIR: the build folder (default build). Nothing here judges the numbers.
set -uo pipefail
script=$(readlink -f "${BASH_SOURCE[0]}")
repo=$(cd "$(dirname "$script")/../.." && pwd)
build_dir="${CORRAL_BUILD_DIR:-$repo/build}"
# (Inside the lab the options come back as the environment: the lab runs the script again.)
runs=${DISPLAY_BENCH_RUNS:-3} encodings=${DISPLAY_BENCH_ENCODINGS:-tight}
# shellcheck source=../lib/options.sh
. "$repo/bench/lib/options.sh"
bench_options '[--runs N] [--encodings tight|zlib|raw]' --runs=runs --encodings=encodings -- "$@"
# Two quiet seconds end a change: the guest under nested KVM can pause over a second mid-output.
set -- --runs "$runs" --encodings "$encodings" --quiet 2

# shellcheck source=../../tests/lib/lab.sh
. "$repo/tests/lib/lab.sh"
lab_vmm_begin 1800 DISPLAY_BENCH_RUNS="$runs" DISPLAY_BENCH_ENCODINGS="$encodings"

work=$(mktemp -d "${TMPDIR:-/tmp}/display-bench.XXXXXX")
vmm_pid="" qemu_pid=""
cleanup() {
  [ -n "$vmm_pid" ] && kill -KILL "$vmm_pid" 2>/dev/null
  [ -n "$qemu_pid" ] && kill -KILL "$qemu_pid" 2>/dev/null
  rm -rf -- "$work"
}
trap cleanup EXIT
# No text cursor: its blink would change the screen five times a second, so a change never ends.
line="console=ttyS0 quiet corral.then=halt vt.global_cursor_default=0"

"$vmm" --kernel "$kernel" --initrd "$initrd" --memory 512M --cpus 1 --cmdline "$line" \
  --display 1024x768 --vnc "unix:$work/corral.sock" >"$work/corral.serial" 2>&1 </dev/null &
vmm_pid=$!
qemu-system-x86_64 -enable-kvm -cpu host -m 512M -smp 1 -nodefaults -display none -no-user-config \
  -vga none -device virtio-gpu-pci,xres=1024,yres=768 -device virtio-keyboard-pci -device virtio-tablet-pci \
  -vnc "unix:$work/qemu.sock,share=force-shared" -serial "file:$work/qemu.serial" \
  -kernel "$kernel" -initrd "$initrd" -append "$line" </dev/null >"$work/qemu.out" 2>&1 &
qemu_pid=$!
for name in corral qemu; do
  deadline=$((SECONDS + 600))
  until grep -q 'CORRAL-INIT: display' "$work/$name.serial" 2>/dev/null; do
    if ((SECONDS > deadline)); then echo "$name: no display console"; tail -n 20 "$work/$name.serial" "$work/qemu.out"; exit 1; fi
    sleep 1
  done
  echo "$name: the guest's text console is up"
done

rfb="$repo/tests/lib/rfb_client.py"
for name in corral qemu; do
  target="$work/$name.sock"
  # A screenful of numbers on tty1, then away to the blank tty2 and back with Alt-F1 (the full
  # change: the text console redraws the whole screen, no guest program in the way), and one key
  # typed on tty1's prompt line (the line change). The viewer presses the keys itself: no tool's
  # start-up in the times, which count from the last key sent.
  # (Opening tty2 makes that console: the keyboard switches only to consoles that exist.)
  python3 "$rfb" --delay 0.05 "$target" type '\nclear; : </dev/tty2; seq 1 2500 | xargs\n' >/dev/null
  "$repo/bench/display/update_bench.py" "$target" "$@" --json \
    --before-full alt-f2 --keys-full alt-f1 --type-line 'x' | tee "$work/$name.json"
done

python3 - "$work/corral.json" "$work/qemu.json" <<'EOF'
import json, statistics, sys
def load(path):
    rows = [json.loads(line) for line in open(path) if line.startswith("{")]
    return {change: {key: statistics.median(r[key] for r in rows if r["change"] == change)
                     for key in ("bytes", "done_ms", "first_ms")}
            for change in ("full", "line")}
corral, qemu = load(sys.argv[1]), load(sys.argv[2])
print(f"{'change':<6} {'figure':<9} {'corral-vmm':>12} {'qemu':>12} {'ratio':>7}")
for change in ("full", "line"):
    for key in ("bytes", "first_ms", "done_ms"):
        c, q = corral[change][key], qemu[change][key]
        print(f"{change:<6} {key:<9} {c:>12.0f} {q:>12.0f} {c / q if q else float('nan'):>7.2f}")
EOF
