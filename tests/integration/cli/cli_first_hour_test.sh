#!/bin/bash
# A new user's first hour (issue 18), against a real corrald on a temporary state folder: mistakes
# are named with the nearest verb or flag, `corral help`, the usual aliases, bad values exit 2 in the
# CLI's words (flags, not API fields or routes; sizes, not byte counts), --json errors are JSON,
# --help shows examples and the global flags, `vm create` without --image is refused, and
# `corral events` says so when corrald goes away.
# Usage: cli_first_hour_test.sh CORRAL CORRALD   (CORRALD empty: not built yet -> skip, exit 77)
set -u
corral=$1
corrald=${2:-}
if [[ -z "$corrald" || ! -x "$corrald" ]]; then
    echo "SKIP: corrald is not built; nothing to test the CLI against"
    exit 77
fi
command -v jq >/dev/null || { echo "SKIP: jq is not installed"; exit 77; }

repo=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../../.." && pwd)
corrald_bin=$corrald
# shellcheck source=../../lib/corrald.sh
. "$repo/tests/lib/corrald.sh"
work=$(mktemp -d /tmp/corral-cli-first.XXXXXX)
events_pid=""
cleanup() {
    [[ -n "$events_pid" ]] && kill "$events_pid" 2>/dev/null
    corrald_stop
    rm -rf "$work" "$state"
}
trap cleanup EXIT

# shellcheck source=../../lib/cli.sh
. "$repo/tests/lib/cli.sh"

corrald_start || { echo "FAIL: corrald did not start"; exit 1; }
export CORRAL_SOCKET="$sock"

# An image to create VMs from (its files need not boot: nothing here starts a VM).
printf 'not a kernel' >"$work/kernel"
truncate -s 1M "$work/root.raw"
curl -s --unix-socket "$sock" -H 'Content-Type: application/json' -o "$work/import" \
    -d "{\"name\": \"tiny\", \"kernel\": \"$work/kernel\", \"root\": \"$work/root.raw\"}" http://corral/api/v1/images
run "wait for the image import" 0 task wait "$(jq -r .task "$work/import")" || exit 1

echo "== mistakes that teach"
run "vm strat" 2 vm strat web1 && says "vm strat suggests start" "unknown verb 'strat'; did you mean 'start'\?" "$err"
run "vm destroy" 2 vm destroy web1 && says "vm destroy suggests delete" "unknown verb 'destroy'; did you mean 'delete'\?" "$err"
run "--imge" 2 vm create default --imge tiny && says "--imge suggests --image" "unknown flag --imge; did you mean --image\?" "$err"
run "corral vm" 2 vm && says "corral vm lists its verbs" "vm: a verb is needed: create, list" "$err"
never "no CLI11 'A subcommand is required'" "A subcommand is required" "$err"
run "corral help" 0 help && says "corral help is the top help" "^Usage: corral" "$out"
run "corral help vm create" 0 help vm create && says "corral help vm create is vm create's help" "Usage: corral vm create" "$out"
says "vm create --help has examples" "corral vm create web1 --image default" "$out"
says "vm create --help lists the global flags" "Global flags.*" "$out"
says "... such as --json" "--json" "$(grep -A2 'Global flags' <<<"$out")"
run "corral help vm start" 0 help vm start && says "arguments have real names" "^Usage: corral vm start \[OPTIONS\] VM$" "$out"
run "vm start without its VM" 2 vm start && says "the missing argument is named" "VM is required" "$err"
run "vm ls" 0 vm ls && says "vm ls is vm list" "^NAME +STATE" "$out"

echo "== refusals in the CLI's words, exit 2 for bad values"
run "vm create without --image" 2 vm create web1 &&
    says "vm create without --image names what is missing" "web1 needs --image IMAGE" "$err"
run "vm list after the refused create" 0 vm list && never "nothing was created" "^web1 " "$out"
run "--cpus 0" 2 vm create web1 --image tiny --cpus 0 && says "--cpus 0 in words" "--cpus: '0' is not a number of CPUs" "$err"
never "--cpus 0 without CLI11's float bounds" "0\.000000|17976931" "$err"
run "--cpus 999" 2 vm create web1 --image tiny --cpus 999 &&
    says "--cpus 999: the host's range, by the flag's name" "--cpus must be from 1 to [0-9]+" "$err"
never "no API field vcpus" "vcpus|field" "$err"
run "--memory 0" 2 vm create web1 --image tiny --memory 0 && says "--memory 0 names --memory" "--memory must be" "$err"
never "no API field memory_mib" "memory_mib|field" "$err"
run "--image nope" 2 vm create web1 --image nope &&
    says "a missing image points at the verb that lists them" "no image named nope.*corral image list" "$err"
never "no API route" "/api/v1" "$err"
run "vm create web1" 0 vm create web1 --image tiny && pass "vm create web1 --image tiny"
run "--tail 0" 2 vm console web1 --tail 0 && says "--tail 0 in words" "--tail: '0' is not a number of lines" "$err"
run "--size 100" 2 volume create v1 --size 100 && says "--size 100 names --size" "--size must be a positive multiple of 512" "$err"
never "no size_bytes" "size_bytes" "$err"
run "volume create" 0 volume create data --size 20G
run "volume shrink" 2 volume resize data 10G &&
    says "the shrink refusal speaks in sizes" "cannot shrink.*current size 20G \(got 10G\)" "$err"
never "no byte counts" "21474836480" "$err"
run "volume resize +5G" 0 volume resize data +5G && says "volume resize NAME +5G grows it" "grew data by 5G" "$out"
run "volume show data" 0 volume show data --json && says "data is 25G now" '"size_bytes": *26843545600' "$out"
mkdir -p "$work/fast"
run "pool create fast" 0 pool create fast --path "$work/fast"
run "volume clone --full across pools" 0 volume clone data fast/data-copy --full &&
    says "a full copy goes to another pool" "cloned default/data to fast/data-copy" "$out"
run "volume show fast/data-copy" 0 volume show fast/data-copy --json &&
    says "the copy has the source's size" '"size_bytes": *26843545600' "$out"
run "a linked clone across pools" 2 volume clone data fast/data-linked &&
    says "a linked clone across pools is refused, pointing at --full" "linked clone must be in its source's pool.*full copy" "$err"
run "vm start nosuch" 1 vm start nosuch && says "a missing VM is named" "no VM named nosuch" "$err"
never "no '(field action)'" "field" "$err"
run "vm show nosuch" 1 vm show nosuch && says "said once" "^corral: no VM named nosuch$" "$err"

echo "== vm edit: a JSON mistake reopens the editor"
# The "editor": first it breaks the JSON; the second time it checks what it was given and fixes it.
cat >"$work/editor" <<'EDITOR'
#!/bin/bash
n=$(cat "$0.count" 2>/dev/null || echo 0); echo $((n + 1)) >"$0.count"
cp "$1" "$0.seen.$n"
if [[ $n -eq 0 ]]; then sed -i 's/"memory_mib": 512/"memory_mib": 300,,/' "$1"; else sed -i 's/,,//; /^# corral:/d' "$1"; fi
EDITOR
chmod +x "$work/editor"
EDITOR="$work/editor" VISUAL="" run "vm edit with a JSON mistake" 0 vm edit web1 &&
    says "the edit is applied after the fix" "updated web1" "$out"
[[ $(cat "$work/editor.count") == 2 ]] && pass "the editor was opened again" || fail "editor opened $(cat "$work/editor.count") times"
says "the second time it shows the error on top" "^# corral: .*(parse error|syntax error)" "$(head -1 "$work/editor.seen.1")"
says "... above the text as it was edited" '"memory_mib": 300,,' "$(cat "$work/editor.seen.1")"
run "vm show --json after the edit" 0 vm show web1 --json && says "memory is 300 MiB" '"memory_mib": 300' "$out"

echo "== the console of a VM that does not run"
echo hello | "$corral" vm console web1 >"$work/console.out" 2>"$work/console.err"
rc=$?
[[ $rc -eq 0 ]] && pass "console of a stopped VM attaches and ends with stdin" || fail "console exited $rc: $(cat "$work/console.err")"
says "it says the VM is not running and how to start it" \
    "\[corrald: web1 is not running \(stopped\).*corral vm start web1" "$(cat "$work/console.err")"
says "and that the input went nowhere" "console input dropped: web1 is not running" "$(cat "$work/console.err")"

echo "== --json errors are JSON"
run "vm show nosuch --json" 1 vm show nosuch --json &&
    says "a refusal under --json is a JSON object" '"message": *"no VM named nosuch"' "$(jq -c .error <<<"$err")"
[[ -z "$out" ]] && pass "stdout stays empty" || fail "stdout under a --json error: $out"
run "--cpus 999 --json" 2 vm create web2 --image tiny --cpus 999 --json &&
    says "its exit code and flag are in it" '"exit_code":2.*"flag":"--cpus"|"flag":"--cpus".*"exit_code":2' "$(jq -c .error <<<"$err")"
run "vm strat --json" 2 vm strat web1 --json &&
    says "a usage error under --json is JSON" "did you mean 'start'" "$(jq -r .error.message <<<"$err")"

echo "== corral events when corrald goes away"
"$corral" events >"$work/events" 2>"$work/events.err" &
events_pid=$!
sleep 0.5
corrald_stop
wait "$events_pid"
events_rc=$?
events_pid=""
[[ $events_rc -ne 0 ]] && pass "corral events exits non-zero ($events_rc) when corrald stops" ||
    fail "corral events exited 0 when corrald stopped"
says "and says why" "corrald (closed|went away|stopped)" "$(cat "$work/events.err")"

cli_summary "$state/corrald.log"
