#!/usr/bin/env bash
# tests/e2e/lab_smoke.sh: smoke test of the nested lab (tools/lab).
#
# Usage: tests/e2e/lab_smoke.sh [--help]
#
# Checks, each printed with PASS/FAIL:
#   1. `tools/lab -- sh -c 'test -c /dev/kvm && echo kvm-ok && exit 7'` prints kvm-ok and exits 7
#      (so /dev/kvm exists in the outer VM and the command's exit status comes back);
#   2. a file the command writes in the writable share (the working directory) is on the host,
#      arguments with spaces and quotes arrive intact, CORRAL_* variables pass through, and
#      --log FILE holds the console log.
# Exit status: 0 all passed, 1 a check failed, 77 skipped (printed reason: no QEMU, no SVM
# emulation). Ends with the line "N passed, N failed".
# Takes about 30 s (two boots of the outer VM under TCG); more on a loaded machine.
set -euo pipefail

if [[ ${1:-} == -h || ${1:-} == --help ]]; then
  sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
  exit 0
fi

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
lab="$repo/tools/lab"

if ! command -v qemu-system-x86_64 >/dev/null 2>&1; then
  echo "SKIP: qemu-system-x86_64 is missing (Debian package qemu-system-x86)"
  exit 77
fi
if ! qemu-system-x86_64 -cpu help 2>/dev/null | grep -qw svm; then
  echo "SKIP: this QEMU cannot emulate AMD SVM"
  exit 77
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/lab-smoke.XXXXXX")
trap 'rm -rf -- "$work"' EXIT

passed=0
failed=0
check() {   # check NAME COMMAND [ARGS...]: PASS when COMMAND succeeds
  local name=$1; shift
  if "$@"; then
    echo "PASS: $name"
    passed=$((passed + 1))
  else
    echo "FAIL: $name"
    failed=$((failed + 1))
  fi
}

# Build (or reuse) the guest artifacts first so that their time is not charged to the checks.
echo "== guest artifacts"
"$repo/tools/guest-image" >/dev/null

echo "== 1: /dev/kvm inside the lab, exit status"
status=0
(cd "$work" && "$lab" --timeout 600 -- sh -c 'test -c /dev/kvm && echo kvm-ok && exit 7') \
  >"$work/out1" 2>"$work/err1" || status=$?
sed 's/^/  out| /' "$work/out1"
sed 's/^/  err| /' "$work/err1"
check "output has kvm-ok" grep -qx 'kvm-ok' "$work/out1"
check "exit status is 7 (got $status)" test "$status" -eq 7
check "stderr tells when the outer VM was ready" grep -q '^lab: outer VM ready in [0-9.]* s$' "$work/err1"

echo "== 2: writable share, arguments, environment, --log"
mkdir -p "$work/share/sub dir"
status=0
# shellcheck disable=SC2016  # the single-quoted $ words are meant literally
(cd "$work/share/sub dir" &&
  CORRAL_SMOKE='v a"l'\''ue' "$lab" --timeout 600 --log "$work/console.log" -- \
    sh -c 'printf "%s|" "$@" > from-lab.txt; echo >> from-lab.txt; echo "$CORRAL_SMOKE" >> from-lab.txt; pwd >> from-lab.txt; echo wrote' \
    arg0 'two words' "it's" '$HOME' '') >"$work/out2" 2>"$work/err2" || status=$?
sed 's/^/  out| /' "$work/out2"
sed 's/^/  err| /' "$work/err2"
written="$work/share/sub dir/from-lab.txt"
# shellcheck disable=SC2016
expected=$(printf '%s\n' 'two words|it'\''s|$HOME||' 'v a"l'\''ue' "$work/share/sub dir")
same_content() { [[ -f $1 && $(cat "$1") == "$2" ]]; }
log_ok() { grep -q '^LAB-START ' "$1" && grep -qx 'wrote' "$1"; }
check "exit status is 0 (got $status)" test "$status" -eq 0
check "file written in the share is on the host" test -f "$written"
check "arguments, CORRAL_* variable and working directory arrived intact" same_content "$written" "$expected"
check "--log holds the console log" log_ok "$work/console.log"

echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
