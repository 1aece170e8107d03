#!/usr/bin/env bash
# tests/e2e/daemon_vm_sandbox.sh: what a guest that took over its QEMU would hold (issue 9, "the
# guest's engine"). A real corrald (temporary state folder) imports the project's guest image and
# runs two VMs, web1 and web2, on the emulated engine (QEMU TCG), both linked clones of the same
# base volume.
#
# Checks, in /proc of each running QEMU: a uid of its own from the VM range (not root, not the
# other VM's), gid the same, no supplementary groups, NoNewPrivs 1, Seccomp 2 (QEMU's -sandbox
# filter), no capability (effective, permitted, bounding); it holds its own disk and the shared
# base as descriptors, the base read-only, and nothing of the other VM's. web1's disk is not
# readable by web2's uid (root-owned, in none of its groups, no bit for others). The sandboxed
# guest still boots to its prompt, runs a command typed through `corral vm console`, pauses and
# resumes, and stops gracefully (its init sees the request). Needs root (uids to switch to).
# Exit 0 all passed, 1 a check failed, 77 skipped.
set -uo pipefail
script=$(readlink -f "${BASH_SOURCE[0]}")
repo=$(cd "$(dirname "$script")/../.." && pwd)
build_dir="${CORRAL_BUILD_DIR:-$repo/build}"
corral="$build_dir/src/cli/corral"
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root (corrald switches QEMU to a VM uid only as root)"; exit 77; }
# shellcheck source=../lib/guest.sh
. "$repo/tests/lib/guest.sh"
guest_image

# shellcheck source=../lib/corrald.sh
. "$repo/tests/lib/corrald.sh"
cleanup() {
  corrald_failure_report web1 web2
  if [ -n "$corrald_pid" ]; then
    for vm in web1 web2; do api PUT "/api/v1/vms/$vm/state" '{"action":"kill"}'; done
    sleep 1
  fi
  corrald_stop
  rm -rf -- "$state"
}
trap cleanup EXIT
export CORRAL_SOCKET="$sock"
boot_wait=300   # seconds; TCG on a busy 2-core host

status_field() {   # status_field PID KEY: the value of KEY in /proc/PID/status
  awk -v key="$2:" '$1 == key { $1 = ""; sub(/^[ \t]+/, ""); print; exit }' "/proc/$1/status"
}
# The files behind PID's descriptors that are regular files, as "path mode" lines (mode from
# /proc/PID/fdinfo flags: 0 read-only, 1 write-only, 2 read-write).
open_files() {
  local fd target flags
  for fd in /proc/"$1"/fd/*; do
    target=$(readlink "$fd") || continue
    [ -f "$target" ] || continue
    flags=$(awk '$1 == "flags:" { print $2 }' "/proc/$1/fdinfo/${fd##*/}")
    echo "$target $(( 8#$flags & 3 ))"
  done
}

corrald_start || exit 1
import_guest_image debian
declare -A pid uid disk
for vm in web1 web2; do
  "$corral" vm create "$vm" --image debian --cpus 1 --memory 256M >"$state/out" 2>&1
  check "corral vm create $vm" test $? = 0
  "$corral" vm start "$vm" >"$state/out" 2>&1
  check "corral vm start $vm" test $? = 0
  api GET "/api/v1/vms/$vm"
  check "$vm runs on the emulated engine" test "$(jqb .engine)" = emulated -a "$(jqb .state)" = running
  pid[$vm]=$(jqb .pid)
  api GET "/api/v1/volumes/default/$vm-root"
  disk[$vm]=$(jqb .path)
done
api GET /api/v1/volumes/default/img-debian
base=$(jqb .path)

echo "== what each QEMU runs as"
for vm in web1 web2; do
  p=${pid[$vm]}
  check "$vm: pid $p is QEMU" grep -q qemu-system "/proc/$p/comm"
  read -r real effective saved fs <<<"$(status_field "$p" Uid)"
  uid[$vm]=$real
  check "$vm: a VM uid ($real; 1879048192-1879113727), not root" \
    test "$real" -ge 1879048192 -a "$real" -le 1879113727
  check "$vm:   ... real, effective, saved and fs uid alike" test "$effective $saved $fs" = "$real $real $real"
  check "$vm: gid the same" test "$(status_field "$p" Gid)" = "$real $real $real $real"
  check "$vm: no supplementary groups" test -z "$(status_field "$p" Groups)"
  check "$vm: NoNewPrivs 1" test "$(status_field "$p" NoNewPrivs)" = 1
  check "$vm: Seccomp 2 (filter mode: QEMU's -sandbox)" test "$(status_field "$p" Seccomp)" = 2
  for set in CapEff CapPrm CapInh CapBnd CapAmb; do
    check "$vm: $set 0" test "$(status_field "$p" $set)" = 0000000000000000
  done
  open_files "$p" >"$state/files.$vm"
  check "$vm: holds its own disk read-write" grep -qx "${disk[$vm]} 2" "$state/files.$vm"
  check "$vm: holds the shared base read-only, never writable" \
    bash -c "grep -qx '$base 0' '$state/files.$vm' && ! grep -q '^$base [12]' '$state/files.$vm'"
done
check "web1 and web2 run as different uids" test "${uid[web1]}" != "${uid[web2]}"
check "web2's QEMU holds nothing of web1's disk" bash -c "! grep -q '^${disk[web1]} ' '$state/files.web2'"
read -r owner group mode <<<"$(stat -c '%u %g %a' "${disk[web1]}")"
check "web1's disk is not readable by web2's uid (owner $owner, group $group, mode $mode)" \
  test "$owner" != "${uid[web2]}" -a "$group" != "${uid[web2]}" -a $(( 8#$mode & 4 )) = 0

echo "== the sandboxed guest works"
check "web1 boots to its shell prompt" wait_console web1 'corral:~# ' "$boot_wait"
printf 'echo answer-$((6*7))\n' | timeout 30 "$corral" vm console web1 >"$state/console.out" 2>&1
check "a command typed through corral vm console runs in the guest" wait_console web1 'answer-42' 60
"$corral" vm pause web1 >/dev/null 2>&1
api GET /api/v1/vms/web1
check "paused" test "$(jqb .state)" = paused
"$corral" vm resume web1 >/dev/null 2>&1
api GET /api/v1/vms/web1
check "resumed" test "$(jqb .state)" = running
"$corral" vm stop web1 --timeout 120 >"$state/out" 2>&1
check "corral vm stop web1 (graceful)" test $? = 0
api GET /api/v1/vms/web1
check "stopped on request" test "$(jqb .state)" = stopped -a "$(jqb .state_reason)" = "stopped on request"
check "the guest's init saw the shutdown request" console_has web1 'CORRAL-INIT: shutdown requested'

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
