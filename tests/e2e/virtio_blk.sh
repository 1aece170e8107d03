#!/usr/bin/env bash
# tests/e2e/virtio_blk.sh: virtio-blk over PCI with raw and qcow2 images, with the stock kernel.
#
# On the host, in the build dir (which the nested lab shares writable), makes:
#   img.raw    an empty 64M ext4 file system (mkfs.ext4), attached read-write as /dev/vda;
#   base.raw   an ext4 file system holding known.txt (mkfs.ext4 -d), and
#   ro.qcow2   a qcow2 linked clone of it (corral-img create -b base.raw -F raw), attached
#              with readonly=on,serial=corral-ro as /dev/vdb.
# Boots the stock Debian kernel under corral-vmm with both disks; the guest
#   1. mounts /dev/vda, writes written.txt with a known line, syncs and unmounts it;
#   2. mounts /dev/vdb read-only and prints known.txt;
#   3. prints /sys/block/vdb/ro (must be 1), tries to write /dev/vdb (must fail) and prints
#      /sys/block/vdb/serial (must be corral-ro);
#   4. powers off (corral-vmm exits 0).
# Then, on the host: debugfs shows written.txt in img.raw with the known line, `qemu-img check`
# passes on ro.qcow2, base.raw is unchanged, and a missing --disk file is refused with exit 2.
# Where /dev/kvm runs guest kernel code at speed the boot runs directly; otherwise the guest
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

kernel="" initrd=""   # set by eval "$(tools/guest-image)"
known_line="known-content-from-the-qcow2-base"
written_line="written-by-the-guest-through-virtio-blk"

# The part that needs KVM: boot the guest with both disks and check what it printed. Writes
# "PASSED FAILED" to $work/guest.counts for the host part.
guest_phase() {
  passed=0 failed=0
  eval "$("$repo/tools/guest-image" | grep -E '^(kernel|initrd)=')"
  # shellcheck disable=SC2016  # expanded by the guest's shell
  local guest_script='
mkdir -p /mnt/a /mnt/b
if mount -t ext4 /dev/vda /mnt/a && echo "'"$written_line"'" > /mnt/a/written.txt && sync && umount /mnt/a; then
  echo "VDA-WRITE: ok"
fi
if mount -t ext4 -o ro /dev/vdb /mnt/b; then echo "VDB-FILE: $(cat /mnt/b/known.txt)"; umount /mnt/b; fi
echo "VDB-RO: $(cat /sys/block/vdb/ro)"
if dd if=/dev/zero of=/dev/vdb bs=512 count=1 conv=fsync 2>/dev/null; then echo "VDB-WRITE: succeeded"; else echo "VDB-WRITE: refused"; fi
echo "VDB-SERIAL: $(cat /sys/block/vdb/serial)"
echo "VDA-SECTORS: $(cat /sys/block/vda/size)"
'
  local run status=0
  run=$("$repo/tools/guest-image" encode-run "$guest_script")
  echo "== boot with --disk path=img.raw --disk path=ro.qcow2,readonly=on,serial=corral-ro"
  (cd "$work" && timeout 600 "$vmm" --kernel "$kernel" --initrd "$initrd" --memory 512M --cpus 2 \
    --cmdline "console=ttyS0 quiet $run corral.then=poweroff" \
    --disk path=img.raw --disk path=ro.qcow2,readonly=on,serial=corral-ro) >"$work/boot" 2>&1 </dev/null || status=$?
  tr -d '\r' <"$work/boot" | sed 's/^/  guest| /' |
    grep -E 'CORRAL|VD[AB]-|corral-vmm: (warning|error)|Kernel panic|BUG|Oops|virtio_blk|vd[ab]' || true
  check "guest wrote a file on /dev/vda (ext4 on img.raw)" has boot 'VDA-WRITE: ok'
  check "/dev/vda has 64M = 131072 sectors" has boot 'VDA-SECTORS: 131072'
  check "guest read known.txt from /dev/vdb (qcow2 over raw base)" has boot "VDB-FILE: $known_line"
  check "/sys/block/vdb/ro is 1" has boot 'VDB-RO: 1'
  check "writing to /dev/vdb fails" has boot 'VDB-WRITE: refused'
  check "/sys/block/vdb/serial is corral-ro" has boot 'VDB-SERIAL: corral-ro'
  check "the guest command succeeded" has boot 'CORRAL-EXIT: 0'
  check "guest poweroff ends corral-vmm with exit 0 (got $status)" test "$status" = 0
  echo "$passed $failed" >"$work/guest.counts"
}

if [ -n "${CORRAL_IN_LAB:-}" ]; then
  work=$CORRAL_BLK_WORK
  guest_phase
  exit 0
fi

for tool in mkfs.ext4 debugfs qemu-img; do
  if ! command -v "$tool" >/dev/null 2>&1 && ! [ -x "/usr/sbin/$tool" ] && ! [ -x "/sbin/$tool" ]; then
    echo "SKIP: $tool is not installed (e2fsprogs, qemu-utils)"
    exit 77
  fi
done
export PATH="$PATH:/usr/sbin:/sbin"
if [ ! -x "$vmm" ]; then echo "FAIL: $vmm is not built"; exit 1; fi
if [ ! -x "$img_tool" ]; then echo "FAIL: $img_tool is not built"; exit 1; fi

lab_require
"$repo/tools/guest-image" >/dev/null || exit 1
eval "$("$repo/tools/guest-image" | grep -E '^(kernel|initrd)=')"

# The images live in the build dir: the lab shares it writable, so the guest's writes come back.
work=$(mktemp -d "$build_dir/virtio-blk-e2e.XXXXXX")
trap 'rm -rf -- "$work"' EXIT
mkdir "$work/basedir"
echo "$known_line" >"$work/basedir/known.txt"
(
  cd "$work" &&
    mkfs.ext4 -F -q img.raw 64M >/dev/null &&
    mkfs.ext4 -F -q -d basedir base.raw 32M >/dev/null &&
    "$img_tool" create -f qcow2 -b base.raw -F raw ro.qcow2 >/dev/null
) || { echo "FAIL: could not create the test images"; exit 1; }
base_sum=$(sha256sum <"$work/base.raw")

echo "== a missing --disk file is a usage error"
status=0
"$vmm" --kernel "$kernel" --disk path="$work/missing.raw" >"$work/missing" 2>&1 </dev/null || status=$?
check "exit status 2 (got $status)" test "$status" = 2
check "the message names --disk and the file" grep -q -- "--disk path=$work/missing.raw" "$work/missing"

if lab_needed; then
  echo "== running the guest part inside the nested lab (this host's KVM cannot run guest kernels at speed)"
  lab_run 1200 CORRAL_BLK_WORK="$work"
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

echo "== host checks of the images"
content=$(debugfs -R 'cat /written.txt' "$work/img.raw" 2>/dev/null)
check "debugfs: img.raw holds written.txt with the guest's line (got '$content')" test "$content" = "$written_line"
check "qemu-img check ro.qcow2" qemu-img check -q "$work/ro.qcow2"
check "base.raw is unchanged" test "$(sha256sum <"$work/base.raw")" = "$base_sum"

check_summary
