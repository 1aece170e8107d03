#!/bin/sh
# Runs a KVM test binary where KVM is: directly when /dev/kvm can be opened, otherwise inside
# the nested lab (tools/lab: a QEMU TCG VM with emulated SVM and KVM loaded), where a missing
# /dev/kvm is then a failure rather than a skip. Exits 77 (ctest SKIP_RETURN_CODE) with the
# reason when neither is available.
#
# usage: run_in_lab.sh <path to tools/lab> <test binary> [arguments...]
set -eu
lab=$1
shift
if [ -c /dev/kvm ] && { : <>/dev/kvm; } 2>/dev/null; then
  exec "$@"
fi
if [ ! -x "$lab" ]; then
  echo "skipped: /dev/kvm cannot be opened here and there is no lab at $lab"
  exit 77
fi
exec "$lab" --timeout 900 -- env CORRAL_TEST_REQUIRE_KVM=1 "$@"
