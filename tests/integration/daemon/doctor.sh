#!/usr/bin/env bash
# tests/integration/daemon/doctor.sh: `corral doctor` against a real corrald, in a network and
# mount namespace of the test's own, with each misconfiguration injected there for real.
#
# Checks: a clean setup shows no finding about what the test controls (network, pools, taps, run
# folders, volumes, VMs); each injection is found with its fix, and the exit code follows the worst
# severity (6 errors, 5 warnings, 0 none or notes): IP forwarding off, a foreign nftables chain
# with policy drop on the forward hook, an orphan tap, an orphan run folder, a volume nothing uses,
# a VM without a restart policy, a pool on a nearly full file system; each undone, it is gone.
# Exit 0 all passed, 1 a check failed, 77 skipped.
set -uo pipefail
script=$(readlink -f "${BASH_SOURCE[0]}")
repo=$(cd "$(dirname "$script")/../../.." && pwd)
build_dir="${CORRAL_BUILD_DIR:-$repo/build}"
corral="$build_dir/src/cli/corral"
# shellcheck source=../../lib/netns.sh
. "$repo/tests/lib/netns.sh"
enter_own_netns "$script" "$@"
command -v nft >/dev/null || { echo "SKIP: nft is not installed"; exit 77; }

# shellcheck source=../../lib/corrald.sh
. "$repo/tests/lib/corrald.sh"
tiny="$state/tiny-fs"
cleanup() {
  corrald_failure_report
  corrald_stop
  ip link delete crl0badc0den0 2>/dev/null
  nft delete table ip foreign 2>/dev/null
  mountpoint -q "$tiny" && umount "$tiny"
  rm -rf -- "${state:?}"/*
  mountpoint -q "$state" && umount "$state"
  rm -rf -- "$state"
}
trap cleanup EXIT
# The default pool lives in corrald's state folder: on a file system of the test's own (a tmpfs in
# this mount namespace, far from full), so that how full this machine's disk is cannot show up as
# a finding about the setup (a pool under 10% or 1 GiB free is one; tools/fresh-check's root sat on
# a disk 92.5% full).
mount -t tmpfs -o size=8g,mode=0700 tmpfs "$state" || { echo "FAIL: cannot mount a tmpfs on $state"; exit 1; }
export CORRAL_SOCKET="$sock"

# doctor: runs `corral doctor --json`; sets $report and $rc.
doctor() {
  report=$("$corral" doctor --json 2>"$state/doctor.err")
  rc=$?
}
# found CHECK TEXT: a finding of CHECK whose problem holds TEXT; prints its severity.
found() {
  jq -e -r --arg c "$1" --arg t "$2" \
    'first(.findings[] | select(.check == $c and (.problem | contains($t)))) | .severity' <<<"$report"
}
fix_of() {
  jq -r --arg c "$1" --arg t "$2" 'first(.findings[] | select(.check == $c and (.problem | contains($t)))) | .fix' <<<"$report"
}
# Findings about what this test controls; a clean setup has none.
ours() {
  jq -r '[.findings[] | select(.check | IN("network", "pool", "orphan-tap", "orphan-run-dir", "orphan-process",
          "orphan-volume", "restart-policy", "overcommit"))] | length' <<<"$report"
}
contains() { [[ "$1" == *"$2"* ]]; }
expected_rc() {
  jq -r 'if .counts.error > 0 then 6 elif .counts.warning > 0 then 5 else 0 end' <<<"$report"
}

sysctl -qw net.ipv4.ip_forward=1
corrald_start || exit 1

echo "== a clean setup"
doctor
check "corral doctor --json answers (exit $rc)" test -n "$report"
echo "   host findings: $(jq -r '[.findings[].check] | join(", ")' <<<"$report")"
check "no finding about the network, pools, taps, run folders, volumes or VMs ($(ours))" test "$(ours)" = 0
check "the exit code follows the worst severity ($rc)" test "$rc" = "$(expected_rc)"
"$corral" doctor >"$state/text" 2>&1
check "the text form ends with the counts" grep -qE '^[0-9]+ errors, [0-9]+ warnings, [0-9]+ notes$' "$state/text"

echo "== IP forwarding off"
sysctl -qw net.ipv4.ip_forward=0
doctor
check "found, as an error" test "$(found network 'net.ipv4.ip_forward is 0')" = error
check "  ... with its fix: $(fix_of network ip_forward)" contains "$(fix_of network ip_forward)" 'sysctl -w net.ipv4.ip_forward=1'
check "  ... corral doctor exits 6 (errors; was $rc)" test "$rc" = 6
sysctl -qw net.ipv4.ip_forward=1
doctor
check "  ... gone once forwarding is on" test "$(ours)" = 0

echo "== a foreign firewall chain that drops forwarded traffic"
nft add table ip foreign
nft add chain ip foreign vmdrop '{ type filter hook forward priority 0; policy drop; }'
doctor
check "found, as an error" test "$(found network 'chain ip foreign vmdrop (hook forward) has policy drop')" = error
check "  ... with its fix ($(fix_of network 'chain ip foreign vmdrop'))" \
  contains "$(fix_of network 'chain ip foreign vmdrop')" 'nft insert rule ip foreign vmdrop iifname <bridge> accept'
nft delete table ip foreign
doctor
check "  ... gone with the table" test "$(ours)" = 0

echo "== an orphan tap"
ip tuntap add crl0badc0den0 mode tap
doctor
check "found, as a warning" test "$(found orphan-tap crl0badc0den0)" = warning
check "  ... with its fix" test "$(fix_of orphan-tap crl0badc0den0)" = "ip link delete crl0badc0den0"
check "  ... corral doctor exits 5 or 6 (warnings at least; was $rc)" test "$rc" -ge 5
ip link delete crl0badc0den0
doctor
check "  ... gone with the tap" test "$(ours)" = 0

echo "== an orphan run folder"
mkdir -p "$state/run/ghost"
doctor
check "found, as a warning" test "$(found orphan-run-dir "$state/run/ghost")" = warning
check "  ... with its fix" test "$(fix_of orphan-run-dir "$state/run/ghost")" = "rm -r $state/run/ghost"
rmdir "$state/run/ghost"
doctor
check "  ... gone with the folder" test "$(ours)" = 0

echo "== a volume nothing uses, a VM without a restart policy"
"$corral" volume create default/lonely --size 1M >/dev/null 2>&1
api POST /api/v1/vms '{"name": "norestart", "nics": []}'
check "a VM without a restart policy is created ($code)" test "$code" = 201
doctor
check "the volume is found, as a note" test "$(found orphan-volume default/lonely)" = info
check "  ... with its fix" contains "$(fix_of orphan-volume default/lonely)" 'corral volume delete default/lonely'
check "the VM is found, as a note" test "$(found restart-policy 'VM norestart has no restart policy')" = info
check "  ... with its fix" test "$(fix_of restart-policy norestart)" = "corral vm edit norestart --restart on-failure (while it is stopped)"
api PATCH /api/v1/vms/norestart '{"restart_policy": "on-failure"}'
"$corral" volume delete default/lonely >/dev/null 2>&1
doctor
check "  ... both gone once fixed" test "$(ours)" = 0

echo "== a pool on a nearly full file system"
mkdir -p "$tiny"
mount -t tmpfs -o size=64m corral-doctor-test "$tiny"
api POST /api/v1/pools "{\"name\": \"tiny\", \"driver\": \"dir\", \"path\": \"$tiny/pool\"}"
check "pool tiny on a 64 MiB file system ($code)" test "$code" = 201
doctor
check "found, as an error (under 256 MiB free)" test "$(found pool 'pool tiny has')" = error
check "  ... corral doctor exits 6 ($rc)" test "$rc" = 6
api DELETE /api/v1/pools/tiny
doctor
check "  ... gone with the pool" test "$(ours)" = 0

check_summary
