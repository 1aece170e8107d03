#!/usr/bin/env bash
# tests/e2e/vm_limits_v2.sh: tests/e2e/vm_limits.sh on cgroup v2 and the native engine. Debian 12
# hosts have cgroup v2 (unified, cpu.max, memory.max, memory.events); the hosts we build on have
# v1, so the v2 code would otherwise run only in unit tests. Inside the nested lab the kernel is
# ours: cgroup2 is mounted on /sys/fs/cgroup with the cpu, cpuset, io, memory and pids controllers
# and the limits checks run on corral-vmm under KVM (a scenario of the shared lab session). On a
# host whose KVM runs guests at speed it runs there only when the host itself has cgroup v2.
# Exit 0 all passed, 1 a check failed, 77 skipped.
set -uo pipefail
script=$(readlink -f "${BASH_SOURCE[0]}")
repo=$(cd "$(dirname "$script")/../.." && pwd)
build_dir="${CORRAL_BUILD_DIR:-$repo/build}"
# shellcheck source=../lib/lab.sh
. "$repo/tests/lib/lab.sh"
lab_reexec 1500
if [ -n "${CORRAL_IN_LAB:-}" ] && [ "$(stat -fc %T /sys/fs/cgroup)" != cgroup2fs ]; then
  mount -t cgroup2 cgroup2 /sys/fs/cgroup || { echo "FAIL: cannot mount cgroup2 on /sys/fs/cgroup in the lab"; exit 1; }
  for controller in cpu cpuset io memory pids; do
    echo "+$controller" >/sys/fs/cgroup/cgroup.subtree_control ||
      { echo "FAIL: cannot enable the $controller controller of cgroup v2 in the lab"; exit 1; }
  done
fi
[ "$(stat -fc %T /sys/fs/cgroup)" = cgroup2fs ] ||
  { echo "SKIP: this host has cgroup v1 (tests/e2e/vm_limits.sh checks it); v2 runs in the lab"; exit 77; }
echo "== cgroup v2 on /sys/fs/cgroup: $(cat /sys/fs/cgroup/cgroup.subtree_control)"
exec env CORRAL_LIMITS_ENGINE=native "$repo/tests/e2e/vm_limits.sh"
