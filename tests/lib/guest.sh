# shellcheck shell=bash
# tests/lib/guest.sh: the project's Linux guest for the tests that boot one through corrald (on
# the emulated engine, QEMU TCG, where KVM cannot run guest kernels at speed). Sourced; needs
# $repo. Defines:
#   guest_image [GUEST-IMAGE ARGS...]   sets $kernel, $initrd and $rootfs from tools/guest-image
#                                       (built, or found in its cache); exits 77 without
#                                       qemu-system-x86_64, 1 when there is no rootfs.img

guest_image() {
  command -v qemu-system-x86_64 >/dev/null || { echo "SKIP: qemu-system-x86_64 is not installed"; exit 77; }
  kernel="" initrd="" rootfs=""
  eval "$("$repo/tools/guest-image" "$@" | grep -E '^(kernel|initrd|rootfs)=')"
  [ -n "$rootfs" ] || { echo "FAIL: tools/guest-image did not build rootfs.img"; exit 1; }
}
