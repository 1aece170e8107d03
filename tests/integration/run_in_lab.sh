#!/bin/sh
# Runs a KVM test binary inside the nested lab (tools/lab: a QEMU TCG VM with emulated SVM and
# KVM loaded) where this host's /dev/kvm cannot be opened; there a missing /dev/kvm is a failure
# rather than a skip. Where /dev/kvm opens, the binary's tests already ran directly (each gtest
# test is its own ctest test), so this exits 77 (ctest SKIP_RETURN_CODE) saying so rather than
# running them all a second time; also 77, with the reason, when there is no lab.
#
# usage: run_in_lab.sh <path to tools/lab> <test binary> [arguments...]
set -eu
lab=$1
shift
if [ -c /dev/kvm ] && { : <>/dev/kvm; } 2>/dev/null; then
  echo "skipped: /dev/kvm opens here, so $(basename "$1")'s tests ran directly (their own ctest tests)"
  exit 77
fi
if [ ! -x "$lab" ]; then
  echo "skipped: /dev/kvm cannot be opened here and there is no lab at $lab"
  exit 77
fi
exec "$lab" --timeout 900 -- env CORRAL_TEST_REQUIRE_KVM=1 "$@"
