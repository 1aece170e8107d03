#!/bin/bash
# corral against a real corrald: starts corrald on a temporary state directory, drives it with the
# CLI and checks what a user sees (output, messages, exit codes).
# Usage: cli_daemon_test.sh CORRAL CORRALD   (CORRALD empty: not built yet -> skip, exit 77)
set -u
corral=$1
corrald=${2:-}

if [[ -z "$corrald" || ! -x "$corrald" ]]; then
    echo "SKIP: corrald is not built (no corrald target in this build yet); nothing to test the CLI against"
    exit 77
fi

repo=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../../.." && pwd)
corrald_bin=$corrald
# shellcheck source=../../lib/corrald.sh
. "$repo/tests/lib/corrald.sh"
work=$(mktemp -d /tmp/corral-cli-it.XXXXXX)
cleanup() {
    [[ -n "${events_pid:-}" ]] && kill "$events_pid" 2>/dev/null
    corrald_stop
    rm -rf "$work" "$state"
}
trap cleanup EXIT
# shellcheck source=../../lib/cli.sh
. "$repo/tests/lib/cli.sh"

corrald_start || { echo "FAIL: corrald did not start"; exit 1; }

S=(--socket "$sock")

# An image for `vm create --image` (its files need not boot: nothing here starts a VM).
printf 'not a kernel' >"$work/kernel"
truncate -s 1M "$work/root.raw"
curl -s --unix-socket "$sock" -H 'Content-Type: application/json' -o "$work/import" \
    -d "{\"name\": \"tiny\", \"kernel\": \"$work/kernel\", \"root\": \"$work/root.raw\"}" http://corral/api/v1/images
run "image import" 0 "${S[@]}" task wait "$(grep -o '"task": *"[^"]*"' "$work/import" | cut -d'"' -f4)" || exit 1

run "host info" 0 "${S[@]}" host info &&
    { grep -q "default engine:" <<<"$out" && pass "host info names the default engine" ||
        fail "host info output lacks 'default engine:': $out"; }

# Events seen by a watcher while VMs come and go.
"$corral" "${S[@]}" events --json >"$work/events" 2>"$work/events.err" &
events_pid=$!
sleep 0.5

run "vm create" 0 "${S[@]}" vm create t1 --image tiny --cpus 1 --memory 256M && pass "vm create t1"
run "vm list" 0 "${S[@]}" vm list &&
    { if grep -q "^NAME  *STATE  *ENGINE  *CPUS  *MEMORY  *DISKS" <<<"$out" && grep -Eq "^t1 +stopped +[a-z]+ +1 +256M" <<<"$out"; then
          pass "vm list shows t1 stopped with 1 CPU and 256M"
      else fail "vm list does not show t1 stopped: $out"; fi; }
run "vm show --json" 0 "${S[@]}" vm show t1 --json &&
    { grep -Eq '"memory_mib": *256' <<<"$out" && pass "vm show --json prints the daemon's JSON" ||
        fail "vm show --json: $out"; }

run "duplicate create" 1 "${S[@]}" vm create t1 --image tiny --cpus 1 --memory 256M &&
    { if grep -q "^corral: .*t1" <<<"$err"; then pass "duplicate create exits 1: $err"
      else fail "duplicate create message does not name t1: $err"; fi; }

run "bad memory (daemon)" 2 "${S[@]}" vm create t3 --image tiny --memory 32M &&
    { grep -q "^corral: t3: --memory must be" <<<"$err" && pass "daemon validation names the flag: $err" ||
        fail "validation error lacks the flag: $err"; }

run "no such vm" 1 "${S[@]}" vm show nosuch && pass "vm show of a missing VM exits 1: $err"

CORRAL_SOCKET="$sock" run "CORRAL_SOCKET" 0 vm list && pass "CORRAL_SOCKET selects the socket"

run "--token-file without --remote" 2 "${S[@]}" --token-file /etc/hostname vm list &&
    { grep -q -- "--token-file is for a remote corrald" <<<"$err" && pass "--token-file needs --remote: $err" ||
        fail "--token-file without --remote: $err"; }
run "vm show --raw" 0 "${S[@]}" vm show t1 --raw && pass "--raw is accepted by vm show"

run "vm delete" 0 "${S[@]}" vm delete t1 && pass "vm delete t1: $out"
run "vm list after delete" 0 "${S[@]}" vm list &&
    { grep -q "^t1 " <<<"$out" && fail "t1 still listed after delete: $out" || pass "t1 is gone"; }

run "unreachable" 3 --socket "$work/nope.sock" host info &&
    { grep -q "$work/nope.sock" <<<"$err" && grep -q "corrald" <<<"$err" &&
        pass "unreachable socket exits 3 naming the socket" || fail "unreachable message: $err"; }

run "bad size" 2 "${S[@]}" vm create t2 --image tiny --memory 12Q &&
    { grep -q "12Q" <<<"$err" && pass "bad size exits 2: $(head -1 <<<"$err")" || fail "bad size message: $err"; }

sleep 0.5
kill "$events_pid" 2>/dev/null; wait "$events_pid" 2>/dev/null; events_pid=""
if grep -q '"vm.created"' "$work/events" && grep -q '"vm.deleted"' "$work/events"; then
    pass "corral events saw vm.created and vm.deleted"
else
    fail "corral events did not print vm.created and vm.deleted: $(cat "$work/events" "$work/events.err")"
fi

if ! kill -0 "$corrald_pid" 2>/dev/null; then fail "corrald died during the test"; cat "$state/corrald.log"; fi
cli_summary "$state/corrald.log"
