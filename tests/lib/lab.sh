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
#   lab_reexec TIMEOUT      the whole script in the lab: when lab_needed, checks lab_require,
#                           builds the guest image out here and exits with lab_run's status;
#                           else returns

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

lab_reexec() {   # lab_reexec TIMEOUT
  lab_needed || return 0
  lab_require
  "$repo/tools/guest-image" >/dev/null || exit 1
  echo "== running inside the nested lab (this host's KVM cannot run guest kernels at speed)"
  lab_run "$1"
  exit
}
