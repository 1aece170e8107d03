#!/usr/bin/env bash
# tests/e2e/virtio_blk_root.sh: the guest's root file system on virtio-blk under corral-vmm,
# with the stock kernel, and a graceful shutdown on SIGTERM.
#
# On the host, in the build dir (which the nested lab shares writable), makes root.qcow2: a
# qcow2 linked clone (corral-img create -b rootfs.img -F raw) of tools/guest-image's rootfs.img.
# Boots the stock Debian kernel + initramfs under corral-vmm with --disk path=root.qcow2:
#   1. corral.root=/dev/vda: the initramfs switches to the disk ("CORRAL-INIT: root /dev/vda"),
#      / is ext4 on /dev/vda, corral.run writes /written.txt and syncs, the guest powers off
#      and corral-vmm exits 0;
#   2. again, with corral.shutdown=graceful corral.then=halt: /written.txt is still there;
#      SIGTERM makes corral-vmm send Ctrl-Alt-Del, the guest prints "CORRAL-INIT: shutdown
#      requested", remounts / read-only and powers off; corral-vmm exits 0 without reaching
#      --shutdown-timeout (its log never says "guest did not shut down within").
# Then, on the host: `qemu-img convert` of root.qcow2 to raw, where debugfs shows /written.txt
# with the guest's line and e2fsck finds the file system clean; `qemu-img check` passes on
# root.qcow2 and rootfs.img is unchanged.
# Where /dev/kvm runs guest kernel code at speed the boots run directly; otherwise the guest
# part re-runs this script inside the nested lab (tools/lab).
# Exit status: 0 all passed, 1 a check failed, 77 skipped (reason printed).
# Ends with the line "N passed, N failed".
set -uo pipefail

script=$(readlink -f "${BASH_SOURCE[0]}")
repo=$(cd "$(dirname "$script")/../.." && pwd)
build_dir="${CORRAL_BUILD_DIR:-$repo/build}"
vmm="$build_dir/src/vmm/corral-vmm"
img_tool="$build_dir/src/storage/corral-img"

if [[ ${1:-} == -h || ${1:-} == --help ]]; then
  sed -n '2,/^set -uo/{/^set -uo/d;s/^# \{0,1\}//;p}' "$script"
  exit 0
fi

# shellcheck source=../lib/check.sh
. "$repo/tests/lib/check.sh"
# shellcheck source=../lib/lab.sh
. "$repo/tests/lib/lab.sh"
has() { tr -d '\r' <"$work/$1" | grep -q -- "$2"; }
hasnt() { ! has "$@"; }

kernel="" initrd=""   # set by eval "$(tools/guest-image)"
written_line="written-by-the-guest-on-its-root-disk"
boot_wait=400   # seconds a boot may take (TCG in the lab is slow)

show() {   # the lines of a run that tell the story
  tr -d '\r' <"$work/$1" | sed "s/^/  $1| /" |
    grep -E 'CORRAL|ROOT-|corral-vmm: (warning|error)|asking the guest|guest powered off|stopped by|did not shut down|Kernel panic|BUG|Oops|EXT4-fs (error|warning)' || true
}

# The part that needs KVM. Writes "PASSED FAILED" to $work/guest.counts for the host part.
guest_phase() {
  passed=0 failed=0
  eval "$("$repo/tools/guest-image" | grep -E '^(kernel|initrd)=')"
  # shellcheck disable=SC2016  # expanded by the guest's shell
  local guest_script='
echo "ROOT-FS: $(awk "\$2 == \"/\" { print \$1, \$3 }" /proc/mounts | tail -n1)"
echo "'"$written_line"'" >/written.txt && sync && echo "ROOT-WRITE: ok"
'
  local run status=0
  run=$("$repo/tools/guest-image" encode-run "$guest_script")

  echo "== 1: corral.root=/dev/vda on a qcow2 clone of rootfs.img; write /written.txt; poweroff"
  (cd "$work" && timeout 600 "$vmm" --kernel "$kernel" --initrd "$initrd" --memory 512M \
    --cmdline "console=ttyS0 quiet corral.root=/dev/vda $run corral.then=poweroff" \
    --disk path=root.qcow2) >"$work/write" 2>&1 </dev/null || status=$?
  show write
  check "initramfs switched to the disk (CORRAL-INIT: root /dev/vda)" has write 'CORRAL-INIT: root /dev/vda'
  check "the disk's init is up" has write 'CORRAL-INIT: up'
  check "/ is ext4 on /dev/vda" has write 'ROOT-FS: /dev/vda ext4'
  check "guest wrote /written.txt and synced" has write 'ROOT-WRITE: ok'
  check "the guest command succeeded" has write 'CORRAL-EXIT: 0'
  check "guest poweroff ends corral-vmm with exit 0 (got $status)" test "$status" = 0

  echo "== 2: corral.shutdown=graceful: SIGTERM -> Ctrl-Alt-Del -> clean poweroff"
  # shellcheck disable=SC2016  # expanded by the guest's shell
  run=$("$repo/tools/guest-image" encode-run 'echo "ROOT-READ: $(cat /written.txt)"')
  (cd "$work" && exec "$vmm" --kernel "$kernel" --initrd "$initrd" --memory 512M --shutdown-timeout 120 \
    --cmdline "console=ttyS0 corral.root=/dev/vda corral.shutdown=graceful $run corral.then=halt" \
    --disk path=root.qcow2) >"$work/graceful" 2>&1 </dev/null &
  local pid=$! i start_s
  for ((i = 0; i < boot_wait * 2; i++)); do
    has graceful 'CORRAL-INIT: halt' && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  check "the file written in boot 1 is on the disk" has graceful "ROOT-READ: $written_line"
  check "guest reached corral.then=halt" has graceful 'CORRAL-INIT: halt'
  # atkbd binds from a workqueue: Ctrl-Alt-Del needs it (no `quiet` in this boot to see it).
  for ((i = 0; i < 60; i++)); do
    has graceful 'input: AT Translated Set 2 keyboard' && break
    sleep 0.5
  done
  start_s=$SECONDS
  kill -TERM "$pid" 2>/dev/null
  for ((i = 0; i < 150 * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid"; fi
  status=0; wait "$pid" || status=$?
  local elapsed=$((SECONDS - start_s))
  show graceful
  check "monitor asked the guest to shut down" has graceful 'asking the guest to shut down (Ctrl-Alt-Del)'
  check "guest printed 'CORRAL-INIT: shutdown requested'" has graceful 'CORRAL-INIT: shutdown requested'
  check "guest remounted / read-only without complaint" hasnt graceful 'cannot remount'
  check "guest powered off (not restarted)" has graceful 'guest powered off'
  check "kernel did not restart" hasnt graceful 'reboot: Restarting system'
  check "corral-vmm exited 0 (got $status)" test "$status" = 0
  # What the guest did, not how fast: the monitor's own timeout did not end it (took ${elapsed} s;
  # timings belong in bench/).
  check "the guest shut down before the monitor's shutdown timeout (took ${elapsed} s)" \
    hasnt graceful 'guest did not shut down within'
  echo "$passed $failed" >"$work/guest.counts"
}

if [ -n "${CORRAL_IN_LAB:-}" ]; then
  work=$CORRAL_ROOT_WORK
  guest_phase
  exit 0
fi

export PATH="$PATH:/usr/sbin:/sbin"
for tool in debugfs e2fsck qemu-img; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "SKIP: $tool is not installed (e2fsprogs, qemu-utils)"
    exit 77
  fi
done
if [ ! -x "$vmm" ]; then echo "FAIL: $vmm is not built"; exit 1; fi
if [ ! -x "$img_tool" ]; then echo "FAIL: $img_tool is not built"; exit 1; fi

lab_require
rootfs=""
eval "$("$repo/tools/guest-image" | grep -E '^rootfs=')" || exit 1
[ -f "$rootfs" ] || { echo "FAIL: tools/guest-image made no rootfs.img"; exit 1; }

# The overlay lives in the build dir: the lab shares it writable, so the guest's writes come
# back. Its backing file (in the guest-image cache) is only read.
work=$(mktemp -d "$build_dir/virtio-blk-root-e2e.XXXXXX")
trap 'rm -rf -- "$work"' EXIT
"$img_tool" create -f qcow2 -b "$rootfs" -F raw "$work/root.qcow2" >/dev/null ||
  { echo "FAIL: could not create root.qcow2 over $rootfs"; exit 1; }
base_sum=$(sha256sum <"$rootfs")

if lab_needed; then
  echo "== running the guest part inside the nested lab (this host's KVM cannot run guest kernels at speed)"
  lab_run 1500 CORRAL_ROOT_WORK="$work"
  echo "== back on the host"
else
  (guest_phase)   # a subshell, like the lab: its counts come back through guest.counts
fi
if [ -f "$work/guest.counts" ]; then
  read -r guest_passed guest_failed <"$work/guest.counts"
  passed=$((passed + guest_passed)) failed=$((failed + guest_failed))
else
  echo "FAIL: the guest part did not run to the end"
  failed=$((failed + 1))
fi

echo "== host checks of the disk"
check "qemu-img check root.qcow2" qemu-img check -q "$work/root.qcow2"
if qemu-img convert -f qcow2 -O raw "$work/root.qcow2" "$work/root.raw"; then
  content=$(debugfs -R 'cat /written.txt' "$work/root.raw" 2>/dev/null)
  check "debugfs: /written.txt holds the guest's line (got '$content')" test "$content" = "$written_line"
  fsck_ok() { e2fsck -n -f "$work/root.raw" >"$work/fsck" 2>&1 || { sed 's/^/  fsck| /' "$work/fsck"; return 1; }; }
  check "file system is clean after the graceful shutdown (e2fsck -n -f)" fsck_ok
  check "no journal recovery pending" bash -c "! dumpe2fs -h '$work/root.raw' 2>/dev/null | grep -q needs_recovery"
else
  check "qemu-img convert root.qcow2 to raw" false
fi
check "rootfs.img is unchanged" test "$(sha256sum <"$rootfs")" = "$base_sum"

check_summary
