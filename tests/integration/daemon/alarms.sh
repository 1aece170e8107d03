#!/usr/bin/env bash
# tests/integration/daemon/alarms.sh: alarms (docs/api.md "Alarms", issue 17) with a real corrald
# sampling every second, a real QEMU guest (the emulated engine) whose shell spins on both vCPUs, and a real
# webhook receiver on loopback (tests/lib/webhook_receiver.py). `corral alarm create busy
# --metric vm.cpu --above 0.5 --for 2s --webhook URL` fires (the event in `corral events --json`,
# the event's JSON POSTed to the receiver, GET /alarms and `corral alarm list` say firing); the VM
# killed, it resolves (event and webhook). The rule outlives a restart of corrald. Bad input is a
# 400 naming the field and what is allowed; over TLS a token holder's webhook is refused (403).
# Exit 0 all passed, 1 a check failed, 77 skipped (no QEMU).
set -uo pipefail
script=$(readlink -f "${BASH_SOURCE[0]}")
repo=$(cd "$(dirname "$script")/../../.." && pwd)
build_dir="${CORRAL_BUILD_DIR:-$repo/build}"
corral="$build_dir/src/cli/corral"
# shellcheck source=../../lib/guest.sh
. "$repo/tests/lib/guest.sh"
guest_image
# shellcheck source=../../lib/corrald.sh
. "$repo/tests/lib/corrald.sh"
events_pid="" receiver_pid=""
cleanup() {
  corrald_failure_report spin
  [ -n "$events_pid" ] && kill "$events_pid" 2>/dev/null
  [ -n "$receiver_pid" ] && kill "$receiver_pid" 2>/dev/null
  if [ -n "$corrald_pid" ]; then
    api PUT /api/v1/vms/spin/state '{"action":"kill"}'
    sleep 1
  fi
  corrald_stop
  rm -rf -- "$state"
}
trap cleanup EXIT
export CORRAL_SOCKET="$sock"
field_is() { [ "$code" = "$1" ] && [ "$(jqb .error.field)" = "$2" ] || { echo "  $code $body"; false; }; }
says() { grep -qF -- "$1" <<<"$(jqb .error.message)" || { echo "  message: $(jqb .error.message)"; false; }; }

python3 "$repo/tests/lib/webhook_receiver.py" "$state/receiver.port" "$state/webhooks" &
receiver_pid=$!
wait_until 10 test -s "$state/receiver.port" || { echo "the webhook receiver did not start"; exit 1; }
hook="http://127.0.0.1:$(cat "$state/receiver.port")/corral"

corrald_start --metrics-interval 1 --default-engine emulated --listen 127.0.0.1:0 || exit 1
tls_listen || { echo "no TLS listener"; exit 1; }
api POST /api/v1/images "$(jq -n --arg k "$kernel" --arg i "$initrd" --arg r "$rootfs" \
  '{name: "debian", kernel: $k, initrd: $i, root: $r}')"
wait_task "$(jqb .task)" 120
check "image imported" test "$(jqb .status)" = succeeded
# Both vCPUs spin (QEMU runs each on a thread of its own): well above half a CPU even when other
# work shares the host's CPUs, so the alarm stays firing until the VM is killed.
spin=$("$repo/tools/guest-image" encode-run 'echo spinning; (while :; do :; done) & while :; do :; done')
"$corral" vm create spin --image debian --memory 256M --nic none --vcpus 2 --cmdline "$spin" >"$state/out" 2>&1
check "corral vm create spin" test $? = 0 || cat "$state/out"

echo "== bad input: 400 naming the field and what is allowed; nothing made"
api POST /api/v1/alarms '{"name":"bad","metric":"vm.cpus","above":1}'
check "an unknown metric: 400 naming metric" field_is 400 metric
check "  ... listing the metrics" says "allowed: vm.cpu, vm.memory, vm.disk_read"
api POST /api/v1/alarms '{"name":"bad","metric":"vm.cpu","above":1,"below":0.1}'
check "both above and below: 400 naming below" field_is 400 below
check "  ... saying one of them" says "give one of above or below, not both"
api POST /api/v1/alarms '{"name":"bad","metric":"vm.cpu"}'
check "neither: 400 naming above" field_is 400 above
api POST /api/v1/alarms '{"name":"bad","metric":"vm.cpu","above":1,"for_seconds":-5}'
check "a negative for_seconds: 400 naming for_seconds" field_is 400 for_seconds
check "  ... with the range" says "a whole number from 0 to 604800 seconds"
api POST /api/v1/alarms '{"name":"bad","metric":"vm.cpu","above":"high"}'
check "above as a string: 400 naming above" field_is 400 above
check "  ... saying a number" says "above must be a number"
api POST /api/v1/alarms '{"name":"bad","metric":"host.cpu","vm":"spin","above":0.9}'
check "a VM on a host metric: 400 naming vm" field_is 400 vm
api POST /api/v1/alarms '{"name":"bad","metric":"vm.cpu","vm":"nosuch","above":0.9}'
check "a VM that does not exist: 404 naming vm" field_is 404 vm
api POST /api/v1/alarms '{"name":"bad","metric":"vm.cpu","above":0.9,"webhook":"ftp://127.0.0.1/x"}'
check "a webhook that is not http(s): 400 naming webhook" field_is 400 webhook
"$corral" alarm create bad --metric vm.cpu --above 1 --for 5x >"$state/out" 2>&1
check "corral alarm create --for 5x: exit 2" test $? = 2
check "  ... saying what a duration is" grep -q "give seconds (90 or 90s), minutes (5m) or hours (1h)" "$state/out"
api GET /api/v1/alarms
check "GET /alarms: still none" test "$code" = 200 -a "$(jqb length)" = 0

echo "== over TLS, a token holder may not aim corrald's requests (SSRF)"
api POST /api/v1/tokens '{"name":"remote"}'
token=$(jqb .token)
tls_api "$token" POST /api/v1/alarms "{\"name\":\"far\",\"metric\":\"vm.cpu\",\"above\":0.5,\"webhook\":\"$hook\"}"
check "a webhook from a token holder, none allowed: 403 naming webhook" field_is 403 webhook
check "  ... saying how to allow it" says "corrald --allow-webhook URL-PREFIX"
tls_api "$token" POST /api/v1/alarms '{"name":"far","metric":"vm.cpu","above":0.5}'
check "the same alarm without a webhook: 201" test "$code" = 201
api DELETE /api/v1/alarms/far

echo "== vm.cpu above 0.5 for 2 s, with a webhook"
"$corral" alarm create busy --metric vm.cpu --vm spin --above 0.5 --for 2s --webhook "$hook" >"$state/out" 2>&1
check "corral alarm create busy: exit 0" test $? = 0 || cat "$state/out"
check "  ... says so" grep -q "created alarm busy" "$state/out"
check "kept in STATE/alarms.json" test "$(jq -r '.[0].name + " " + .[0].metric + " " + (.[0].for_seconds|tostring)' \
  "$state/alarms.json")" = "busy vm.cpu 2"
"$corral" events --json >"$state/events" 2>&1 &
events_pid=$!
"$corral" vm start spin >"$state/out" 2>&1
check "spin started" test $? = 0 || cat "$state/out"
event_of() { jq -c "select(.kind == \"$1\" and .alarm == \"busy\" and .target == \"spin\")" "$state/events" 2>/dev/null | head -1; }
webhook_of() { jq -c "select(.kind == \"$1\" and .alarm == \"busy\")" "$state/webhooks" 2>/dev/null | head -1; }
has_event() { [ -n "$(event_of "$1")" ]; }
has_webhook() { [ -n "$(webhook_of "$1")" ]; }
check "corral events: alarm.firing for spin" wait_until 60 has_event alarm.firing
event=$(event_of alarm.firing)
echo "   $event"
check "  ... with the metric, its value above the threshold and the message" \
  test "$(jq '.metric == "vm.cpu" and .value > 0.5 and .threshold == 0.5 and .above == 0.5 and .for_seconds == 2' \
  <<<"$event")" = true
check "  ... the message says it" grep -q '^alarm busy: vm.cpu of spin is .* (CPUs used), above 0.5 for [0-9]* s$' \
  <<<"$(jq -r .message <<<"$event")"
check "the webhook received the same event" wait_until 20 has_webhook alarm.firing
check "  ... as the event's JSON" test "$(jq -cS 'del(.time)' <<<"$(webhook_of alarm.firing)")" = "$(jq -cS 'del(.time)' <<<"$event")"
api GET /api/v1/alarms
check "GET /alarms: busy is firing for spin, since when, with its value" test "$(jqb \
  '.[0].state == "firing" and .[0].targets[0].target == "spin" and .[0].targets[0].state == "firing"
   and (.[0].targets[0].firing_since | test("^20..-..-..T")) and .[0].targets[0].value > 0.5
   and .[0].last_webhook_error == null')" = true || echo "   $body"
"$corral" alarm list >"$state/out" 2>&1
check "corral alarm list: a row with its state" grep -q "^busy .*vm.cpu .*spin .*above 0.5 .*2s .*spin firing since" "$state/out" \
  || cat "$state/out"
"$corral" alarm show busy >"$state/out" 2>&1
check "corral alarm show busy: the target's row" grep -q "^spin .*firing" "$state/out" || cat "$state/out"

echo "== the VM killed: resolved"
"$corral" vm kill spin >"$state/out" 2>&1
check "corral events: alarm.resolved for spin" wait_until 20 has_event alarm.resolved
check "  ... saying it stopped" test "$(jq -r .message <<<"$(event_of alarm.resolved)")" = "alarm busy: spin stopped"
check "the webhook received alarm.resolved" wait_until 20 has_webhook alarm.resolved
api GET /api/v1/alarms/busy
check "GET /alarms/busy: ok, no target firing" test "$(jqb '.state == "ok" and (.targets | length) == 0')" = true \
  || echo "   $body"

echo "== kept across a restart of corrald; deleted"
corrald_stop
corrald_start --metrics-interval 1 --default-engine emulated || exit 1
api GET /api/v1/alarms/busy
check "GET /alarms/busy after a restart: the same rule" \
  test "$code" = 200 -a "$(jqb '.metric + " " + (.above|tostring) + " " + .vm + " " + .webhook')" = "vm.cpu 0.5 spin $hook"
"$corral" alarm delete busy >"$state/out" 2>&1
check "corral alarm delete busy" grep -q "deleted alarm busy" "$state/out"
api GET /api/v1/alarms/busy
check "  ... GET /alarms/busy: 404" test "$code" = 404
check_summary
