#!/usr/bin/env bash
# tests/integration/daemon/hostile_input.sh: nothing a client sends may stop corrald (issue 9).
# A real corrald (unix socket and a TLS listener on loopback) gets, from hostile_input.py: every
# route's valid body with each field, nested ones too, replaced by every JSON type (null, true, 0,
# -1, 1.5, 1e300, "", "x", [], {}, an array 40 deep), unknown and duplicate keys, a too-deep body;
# hostile path parameters (%ff, %00, .., 5000 bytes) and query values on every route; headers with
# invalid UTF-8, huge ones, and Authorization schemes of every byte 0x80-0xFF over TLS.
# Each answer must be a 4xx (a 400 naming the field's path for a wrong type) in valid JSON, never
# a 5xx, and corrald must be alive after each request (kill -0 and GET /host).
# Runs in network and mount namespaces of its own: the network routes' valid bodies make bridges,
# dnsmasq and nftables tables, which must not appear on the host.
# Exit status: 0 all passed, 1 a check failed, 77 skipped. Ends with "N passed, N failed".
set -uo pipefail
script=$(readlink -f "${BASH_SOURCE[0]}")
repo=$(cd "$(dirname "$script")/../../.." && pwd)
# shellcheck source=../../lib/netns.sh
. "$repo/tests/lib/netns.sh"
enter_own_netns "$script" "$@"
build_dir="${CORRAL_BUILD_DIR:-$repo/build}"
# shellcheck source=../../lib/corrald.sh
. "$repo/tests/lib/corrald.sh"
cleanup() {
  corrald_stop
  corrald_networks_cleanup
  rm -rf -- "$state"
}
trap cleanup EXIT

corrald_start --listen 127.0.0.1:0 || exit 1
check "corrald listens on TLS too" tls_listen

echo "== what the valid bodies refer to: volume v1, image img0, VM vm1, network hn0, security group hsg0, token ci"
head -c 65536 /dev/zero >"$state/kernel.bin"
truncate -s 1M "$state/root.raw"
api POST /api/v1/volumes '{"name":"v1","size":"1M"}'
check "volume v1 created" test "$code" = 201
api POST /api/v1/images "$(jq -n --arg k "$state/kernel.bin" --arg r "$state/root.raw" '{name:"img0",kernel:$k,root:$r}')"
check "image img0 accepted" test "$code" = 202
wait_task "$(jqb .task)" 60
check "image img0 ready" test "$(jqb .status)" = succeeded
api POST /api/v1/vms '{"name":"vm1","memory_mib":128}'
check "VM vm1 created" test "$code" = 201
api POST /api/v1/networks '{"name":"hn0","kind":"isolated","subnet4":"10.0.202.0/24"}'
check "network hn0 created" test "$code" = 201
api POST /api/v1/security-groups '{"name":"hsg0","rules":[{"protocol":"tcp","port_from":22}]}'
check "security group hsg0 created" test "$code" = 201
api POST /api/v1/tokens '{"name":"ci"}'
token=$(jqb .token)
check "token ci created" test "$code" = 201

echo "== hostile requests (hostile_input.py)"
python3 "$repo/tests/integration/daemon/hostile_input.py" "$sock" "$corrald_pid" "$state" "$listen" "$token" \
  >"$state/hostile.log" 2>&1
rc=$?
grep -E '^(FAIL|==|  )' "$state/hostile.log" | head -100
tail -1 "$state/hostile.log"
check "every hostile request answered without a 5xx, JSON errors naming the field" test "$rc" = 0
check "corrald is still alive" kill -0 "$corrald_pid"
if ! kill -0 "$corrald_pid" 2>/dev/null || [ "$rc" != 0 ]; then
  echo "corrald's log (last lines):"; tail -20 "$state/corrald.log"
fi
check "corrald logged no internal error" bash -c "! grep -q 'request id r-' '$state/corrald.log'"

# Requests that made a VM's instance or a network's dnsmasq and then failed, or were undone, must
# not leave the process behind: every QEMU and dnsmasq of this corrald belongs to a listed VM or
# network. At corrald's stop, the VMs and networks keep theirs (the next corrald adopts them), but
# an instance waiting for an incoming migration goes (nobody would finish or discard it).
echo "== no process corrald does not track"
api GET /api/v1/vms
vms=$(jqb '[.[].name] | join(" ")')
staying=$(jqb '[.[] | select(.state != "migrating-in") | .name] | join(" ")')
api GET /api/v1/networks
networks=$(jqb '[.[].name] | join(" ")')
strays=$(corrald_strays "$vms" "$networks")
check "every QEMU and dnsmasq of this corrald is a listed VM's or network's" test -z "$strays" || echo "$strays"
corrald_stop
strays=$(corrald_strays "$staying" "$networks")
check "after corrald stopped, none but those of listed VMs (not migrating in) and networks" test -z "$strays" ||
  echo "$strays"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
