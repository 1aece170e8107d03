#!/usr/bin/env bash
# tests/e2e/stock_kernel_boot.sh: the stock Debian kernel under corral-vmm, end to end.
#
# Checks, each printed with PASS/FAIL (the guest proves itself by what it prints):
#   1. bzImage + initramfs, --cpus 2: init starts, prints the marker from the command line, the
#      guest sees 2 CPUs, boot marks arrive on port 0x402, and guest `poweroff` ends corral-vmm
#      with exit code 0 ("guest powered off");
#   2. guest `reboot` ends corral-vmm with exit code 0 ("guest reset");
#   3. --on-reboot restart boots the guest again after a reboot; SIGTERM then stops it (exit 0);
#   4. the uncompressed ELF vmlinux boots the same way (the ELF entry path).
# Where /dev/kvm runs guest kernel code at speed the boots run directly; otherwise (no /dev/kvm,
# or KVM on PVM) the whole script re-runs itself inside the nested lab (tools/lab).
# Exit status: 0 all passed, 1 a check failed, 77 skipped (reason printed).
# Ends with the line "N passed, N failed".
set -uo pipefail

script=$(readlink -f "${BASH_SOURCE[0]}")
repo=$(cd "$(dirname "$script")/../.." && pwd)
build_dir="${CORRAL_BUILD_DIR:-$repo/build}"

# shellcheck source=../lib/lab.sh
. "$repo/tests/lib/lab.sh"
lab_vmm_begin 1200

work=$(mktemp -d "${TMPDIR:-/tmp}/stock-boot.XXXXXX")
trap 'rm -rf -- "$work"' EXIT

# shellcheck source=../lib/check.sh
. "$repo/tests/lib/check.sh"
has() { grep -q -- "$2" "$work/$1"; }
cmdline() { echo "console=ttyS0 quiet $*"; }
boot() {   # boot NAME KERNEL CMDLINE [corral-vmm args...]: output in $work/NAME, status in $work/NAME.rc
  local name=$1 kernel_file=$2 line=$3; shift 3
  local status=0
  timeout 600 "$vmm" --kernel "$kernel_file" --initrd "$initrd" --memory 512M --cmdline "$line" "$@" \
    >"$work/$name" 2>&1 </dev/null || status=$?
  echo "$status" >"$work/$name.rc"
  sed "s/^/  $name| /" "$work/$name" | grep -E 'CORRAL|corral-vmm|Kernel panic|BUG|Oops' || true
}

nproc_cmd=$("$repo/tools/guest-image" encode-run 'echo "cpus=$(nproc)"')

echo "== 1: poweroff, 2 vCPUs"
boot poweroff "$kernel" "$(cmdline corral.marker=hello-e2e "$nproc_cmd" corral.then=poweroff)" --cpus 2
check "init started" has poweroff 'CORRAL-INIT: up'
check "marker from the command line printed" has poweroff 'CORRAL-MARKER: hello-e2e'
check "guest sees 2 CPUs" has poweroff 'cpus=2'
check "boot marks 1 and 2 logged" bash -c "grep -q 'guest boot mark 1 at' '$work/poweroff' && grep -q 'guest boot mark 2 at' '$work/poweroff'"
check "guest poweroff ends corral-vmm with exit 0" test "$(cat "$work/poweroff.rc")" = 0
check "monitor says the guest powered off" has poweroff 'guest powered off'

echo "== 2: reboot"
boot reboot "$kernel" "$(cmdline corral.marker=reboot-e2e corral.then=reboot)"
check "marker printed before reboot" has reboot 'CORRAL-MARKER: reboot-e2e'
check "guest reboot ends corral-vmm with exit 0" test "$(cat "$work/reboot.rc")" = 0
check "monitor says the guest reset" has reboot 'guest reset'

echo "== 3: --on-reboot restart, then SIGTERM"
"$vmm" --kernel "$kernel" --initrd "$initrd" --memory 512M --on-reboot restart \
  --cmdline "$(cmdline corral.then=reboot)" >"$work/restart" 2>&1 </dev/null &
pid=$!
for _ in $(seq 1 600); do
  [ "$(grep -c 'CORRAL-INIT: up' "$work/restart")" -ge 2 ] && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 1
done
check "guest booted twice (restarted in place after reboot)" test "$(grep -c 'CORRAL-INIT: up' "$work/restart")" -ge 2
kill -TERM "$pid" 2>/dev/null
status=0; wait "$pid" || status=$?
check "SIGTERM stops corral-vmm with exit 0" test "$status" = 0
check "monitor says it was stopped" has restart 'stopped by the host'

echo "== 4: ELF vmlinux"
if [ -n "${vmlinux:-}" ] && [ -f "$vmlinux" ]; then
  boot elf "$vmlinux" "$(cmdline corral.marker=elf-e2e corral.then=poweroff)"
  check "ELF vmlinux reaches init and prints the marker" has elf 'CORRAL-MARKER: elf-e2e'
  check "ELF guest poweroff ends corral-vmm with exit 0" test "$(cat "$work/elf.rc")" = 0
else
  echo "SKIP: tools/guest-image produced no vmlinux"
fi

check_summary
