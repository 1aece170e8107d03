# shellcheck shell=bash
# tests/lib/lab.sh: where an end-to-end script's guest kernels run. This host's KVM may not run
# guest kernel code at speed (no /dev/kvm, or KVM on PVM); then the script's guest part re-runs
# inside the nested lab (tools/lab), with CORRAL_IN_LAB=1. Sourced by tests/e2e scripts and
# tests/lib/lab_session.sh; needs $repo, and $build_dir and $script for the re-runs. Defines:
#   lab_needed              status 0 when guest kernels need the lab here (and this is not it)
#   lab_possible            status 0 when QEMU can emulate AMD SVM, so tools/lab can run here
#   lab_require             exits 77 with the reason when the lab is needed and not possible
#   lab_run TIMEOUT [VAR=VALUE...]
#                           runs $script again inside the lab, from $build_dir (the lab shares it
#                           writable), with CORRAL_IN_LAB=1, CORRAL_BUILD_DIR, CORRAL_CACHE and the
#                           given variables; its status is tools/lab's
#   lab_load_guest_modules MODULE... [-- OPTIONAL...]
#                           inside the lab: loads kernel modules from the guest image's module
#                           tree (the lab runs that kernel over the host's root, which has no
#                           tree for it, and the kernel's own module requests run modprobe
#                           outside the chroot); a MODULE that does not load fails the script
#   lab_reexec TIMEOUT [VAR=VALUE...]
#                           the whole script in the lab (with those variables set): when
#                           lab_needed, checks lab_require, builds the guest image out here and
#                           exits with lab_run's status; else returns
#   lab_vmm_begin TIMEOUT [VAR=VALUE...]
#                           the opening of a corral-vmm scenario: lab_reexec with them, then fails
#                           unless $build_dir's corral-vmm is built, and sets vmm (its path) and
#                           kernel, vmlinux, initrd and modules (the guest image's, built if need be)
#   lab_reexec_unless_kvm_opens TIMEOUT
#                           for tiny guests, which need only a /dev/kvm that opens (PVM's does):
#                           when it does not, the whole script runs in the lab (exec); inside
#                           the lab that is a failure; without the lab a skip (77)

lab_needed() { [ -z "${CORRAL_IN_LAB:-}" ] && { [ ! -c /dev/kvm ] || [ -d /sys/module/kvm_pvm ]; }; }

lab_possible() {
  command -v qemu-system-x86_64 >/dev/null 2>&1 && qemu-system-x86_64 -cpu help 2>/dev/null | grep -qw svm
}

lab_require() {
  if lab_needed && ! lab_possible; then
    echo "SKIP: no KVM that runs kernels at speed here, and QEMU cannot emulate SVM for the lab"
    exit 77
  fi
}

lab_run() {   # lab_run TIMEOUT [VAR=VALUE...]
  local timeout=$1; shift
  (cd "$build_dir" && "$repo/tools/lab" --timeout "$timeout" -- env CORRAL_IN_LAB=1 CORRAL_BUILD_DIR="$build_dir" \
    CORRAL_CACHE="${CORRAL_CACHE:-$HOME/.cache/corral}" "$@" "$script")
}

lab_reexec() {   # lab_reexec TIMEOUT [VAR=VALUE...]
  lab_needed || return 0
  lab_require
  "$repo/tools/guest-image" >/dev/null || exit 1
  echo "== running inside the nested lab (this host's KVM cannot run guest kernels at speed)"
  lab_run "$@"
  exit
}

lab_vmm_begin() {   # lab_vmm_begin TIMEOUT [VAR=VALUE...]
  lab_reexec "$@"
  vmm="$build_dir/src/vmm/corral-vmm"
  if [ ! -x "$vmm" ]; then echo "FAIL: $vmm is not built"; exit 1; fi
  kernel="" vmlinux="" initrd="" modules=""
  eval "$("$repo/tools/guest-image" | grep -E '^(kernel|vmlinux|initrd|modules)=')"
  [ -n "$kernel" ] && [ -n "$initrd" ] || { echo "FAIL: tools/guest-image made no kernel and initrd"; exit 1; }
}

lab_load_guest_modules() {   # lab_load_guest_modules MODULE... [-- OPTIONAL...]
  local modules="" modroot m optional=0
  eval "$("$repo/tools/guest-image" | grep -E '^modules=')"
  [ -n "$modules" ] && [ "$(basename "$modules")" = "$(uname -r)" ] || return 0
  modroot=$(mktemp -d /tmp/lab-modroot.XXXXXX)
  mkdir -p "$modroot/lib/modules" && ln -s "$modules" "$modroot/lib/modules/$(uname -r)"
  for m in "$@"; do
    if [ "$m" = -- ]; then optional=1; continue; fi
    if [ "$optional" = 1 ]; then
      modprobe -d "$modroot" "$m" 2>/dev/null
    else
      modprobe -d "$modroot" "$m" || { echo "FAIL: cannot load $m from $modules"; exit 1; }
    fi
  done
}

lab_reexec_unless_kvm_opens() {   # lab_reexec_unless_kvm_opens TIMEOUT
  { [ -c /dev/kvm ] && { : <>/dev/kvm; } 2>/dev/null; } && return 0
  if [ -n "${CORRAL_IN_LAB:-}" ]; then echo "FAIL: /dev/kvm cannot be opened inside the lab"; exit 1; fi
  if [ ! -x "$repo/tools/lab" ] || ! command -v qemu-system-x86_64 >/dev/null; then
    echo "SKIP: /dev/kvm cannot be opened here and the nested lab cannot run"; exit 77
  fi
  echo "no usable /dev/kvm here: running inside the nested lab"
  exec "$repo/tools/lab" --timeout "$1" -- env CORRAL_IN_LAB=1 CORRAL_BUILD_DIR="$build_dir" "$script"
}
