#!/usr/bin/env bash
# tests/integration/install.sh: the installed layout works without the checkout. `cmake --install`
# into a temporary prefix, then that prefix's corrald (temporary state folder) finds corral-vmm,
# corral-shim (libexec/corral), the calibration guest and tools/guest-image (share/corral, with
# the guests' init scripts: `corral image prepare default` runs it); a VM started by it runs under
# the installed corral-shim and outlives corrald stopped alone, which is what the systemd unit's
# KillMode=process relies on for `systemctl restart corrald`; the unit and the bash completion
# are installed; tools/uninstall removes it all again.
# Exit status: 0 all passed, 1 a check failed. Ends with "N passed, N failed".
set -uo pipefail
script=$(readlink -f "${BASH_SOURCE[0]}")
repo=$(cd "$(dirname "$script")/../.." && pwd)
build_dir="${CORRAL_BUILD_DIR:-$repo/build}"
# shellcheck source=../lib/corrald.sh
. "$repo/tests/lib/corrald.sh"
unset CORRAL_GUEST_IMAGE_TOOL
# Two levels deep, so no build-tree fallback (bin/../../src/...) can be what is found.
top=$(mktemp -d "${TMPDIR:-/tmp}/corral-install-test.XXXXXX")
prefix="$top/usr"
vm_pid=""
cleanup() {
  [ -n "$vm_pid" ] && kill -9 "$vm_pid" 2>/dev/null
  corrald_stop
  rm -rf -- "$state" "$top"
}
trap cleanup EXIT

echo "== cmake --install --prefix $prefix"
cmake --install "$build_dir" --prefix "$prefix" >"$top/install.log" 2>&1
check "cmake --install succeeds" test $? = 0 || { cat "$top/install.log"; exit 1; }
for f in bin/corrald bin/corral bin/corral-vmm bin/corral-img libexec/corral/corral-shim share/corral/guest-image; do
  check "$f is installed, executable" test -x "$prefix/$f"
done
for f in share/corral/lib/common.sh share/corral/guests/initramfs/init share/corral/calibrate.elf; do
  check "$f is installed" test -s "$prefix/$f"
done
if [ -f "$build_dir/web/dist/index.html" ]; then   # the web UI, where this build made it (node, npm ci)
  check "share/corral/web/index.html is installed" test -s "$prefix/share/corral/web/index.html"
  script_path=$(grep -o '/ui/assets/main-[A-Z0-9]*\.js' "$prefix/share/corral/web/index.html" 2>/dev/null | sed 's#^/ui/##')
  check "  ... with the script it names" test -n "$script_path" -a -s "$prefix/share/corral/web/$script_path"
fi
unit="$prefix/lib/systemd/system/corrald.service"
check "the systemd unit runs corrald on /var/lib/corral, the web UI on the loopback" \
  grep -qE '^ExecStart=/.*/bin/corrald --state-dir /var/lib/corral --listen 127.0.0.1:8443$' "$unit"
check "  ... restarts it on failure" grep -qx 'Restart=on-failure' "$unit"
check "  ... and stops only corrald, never its VMs (KillMode=process)" grep -qx 'KillMode=process' "$unit"
if command -v systemd-analyze >/dev/null 2>&1; then
  # Its ExecStart names the configured prefix; the copy checked names this one's corrald.
  sed "s|^ExecStart=[^ ]*|ExecStart=$prefix/bin/corrald|" "$unit" >"$top/corrald.service"
  systemd-analyze verify "$top/corrald.service" >"$top/verify.out" 2>&1
  check "  ... and systemd-analyze verify finds nothing to say about it" \
    bash -c '[ $1 = 0 ] && [ ! -s "$2" ]' _ $? "$top/verify.out" || cat "$top/verify.out"
fi
completion="$prefix/share/bash-completion/completions/corral"
check "bash completion is installed for corral" grep -q 'complete -F _corral corral' "$completion"
check "  ... with the verbs and their flags" bash -c "grep -q '\" vm\") opts=.*create' '$completion' && grep -q '\" vm create\") opts=.*--memory' '$completion'"
loader=/usr/share/bash-completion/bash_completion   # the bash-completion package (tools/setup)
if [ -f "$loader" ]; then
  # shellcheck disable=SC2016
  words=$(XDG_DATA_DIRS="$prefix/share" bash -c '. "$1"; __load_completion corral || exit 1
    COMP_WORDS=(corral vm cr); COMP_CWORD=2; _corral; echo "${COMPREPLY[*]}"
    COMP_WORDS=(corral vm create web1 --mem); COMP_CWORD=4; _corral; echo "${COMPREPLY[*]}"' _ "$loader" 2>&1)
  check "bash-completion loads it on demand and completes 'corral vm cr' and '--mem' ($(echo $words))" \
    test "$(echo $words)" = "create --memory --memory-overhead"
else
  echo "NOTE: no bash-completion package: its on-demand loading is not checked"
fi

echo "== the installed corrald (state in $state)"
corrald_bin="$prefix/bin/corrald"
corral=("$prefix/bin/corral" --socket "$sock")
corrald_start || exit 1
if [ -f "$build_dir/web/dist/index.html" ]; then
  api GET /
  check "the installed corrald serves the installed web UI at /" test "$code" = 200 -a "$body" = "$(cat "$prefix/share/corral/web/index.html")"
fi
api GET /api/v1/host
reason=$(jqb .calibration.reason)
check "the calibration found corral-vmm and its guest (reason: $reason)" bash -c "! grep -q 'not found' <<<\"\$1\"" _ "$reason"
"${corral[@]}" image prepare default >"$top/prepare.out" 2>&1
check "corral image prepare default runs the installed guest-image" test $? = 0 || cat "$top/prepare.out"
"${corral[@]}" vm create inst --image default --memory 256M --engine emulated >/dev/null 2>"$top/err"
check "a VM is created from the image" test $? = 0 || cat "$top/err"
"${corral[@]}" vm start inst >/dev/null 2>"$top/err"
check "and started" test $? = 0 || cat "$top/err"
shim_pid=$(cat "$state/run/inst/shim.pid" 2>/dev/null)
vm_pid=$(cat "$state/run/inst/vm.pid" 2>/dev/null)
check "it runs under the installed corral-shim" test "$(readlink "/proc/${shim_pid:-0}/exe")" = "$prefix/libexec/corral/corral-shim"

echo "== corrald stopped alone (systemctl restart with KillMode=process), then started again"
corrald_stop
check "the VM outlives corrald" bash -c '[ -n "$1" ] && kill -0 "$1"' _ "$vm_pid"
corrald_start || exit 1
check "the new corrald adopts it (running)" wait_state inst running 20
"${corral[@]}" vm kill inst >/dev/null 2>"$top/err"
check "corral vm kill ends it" test $? = 0 || cat "$top/err"
"${corral[@]}" vm delete inst --volumes >/dev/null 2>&1
vm_pid=""

echo "== tools/uninstall --prefix $prefix"
"$repo/tools/uninstall" --prefix "$prefix" >"$top/uninstall.out" 2>&1
check "tools/uninstall succeeds" test $? = 0 || cat "$top/uninstall.out"
check "  ... stopping the corrald it installed" grep -q "stopping corrald (pid $corrald_pid)" "$top/uninstall.out"
wait "$corrald_pid" 2>/dev/null
check "  ... which has ended" bash -c '! kill -0 "$1" 2>/dev/null' _ "$corrald_pid"
corrald_pid=""
check "  ... and leaves no file of the install behind" test -z "$(find "$prefix" -type f)"

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
