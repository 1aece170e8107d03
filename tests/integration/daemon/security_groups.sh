#!/usr/bin/env bash
# tests/integration/daemon/security_groups.sh: security groups from the API to the kernel, with a
# real corrald, real nft and the kernel's bridge, all inside network namespaces this script makes
# (the host's interfaces and rules are never touched):
#   ns "crl-h-PID"   corrald's host: it runs there, so its bridges, dnsmasq and nftables are there
#   ns "crl-gN-PID"  the VMs' guests: VMs vm1 and vm2 are defined through the API on the default
#                    network (corrald gives them a MAC and an address); each guest is a namespace
#                    whose veth uses that MAC and address, and whose host end carries the name of
#                    the VM's tap (what corrald's firewall matches), on the network's bridge.
# Checks: bad group bodies are 400s naming the field; a NIC given an unknown group is a 400; vm2
# carries group ssh (in tcp 22): vm1's nc reaches vm2's port 22, not its port 80 (the rule, not
# luck: both listen); `corral network trace` names the rule that allows 22 and says 80 is dropped;
# a rule added live opens 80 at once, a rule removed closes 22, detaching the group opens
# everything; groups given with a PATCH of the NICs; OpenStack's default group lets its members in
# and no one else (trace and the wire agree); deleting a group in use is a 409 naming the VM;
# `corral sg` lists and shows it.
# Needs root, ip, nft, dnsmasq, busybox, jq, curl, br_netfilter. Exit 0 passed, 1 failed, 77 skipped.
set -uo pipefail
script=$(readlink -f "${BASH_SOURCE[0]}")
repo=$(cd "$(dirname "$script")/../../.." && pwd)
build_dir="${CORRAL_BUILD_DIR:-$repo/build}"

[ "$(id -u)" = 0 ] || { echo "SKIP: needs root (network namespaces, bridges, nftables)"; exit 77; }
for tool in ip nft dnsmasq busybox jq curl; do
  command -v "$tool" >/dev/null || { echo "SKIP: $tool is not installed"; exit 77; }
done
[ -d /proc/sys/net/bridge ] || { echo "SKIP: needs br_netfilter (modprobe br_netfilter) for groups on one bridge"; exit 77; }
real_corrald="$build_dir/src/daemon/corrald"
corral="$build_dir/src/cli/corral"
for bin in "$real_corrald" "$corral"; do [ -x "$bin" ] || { echo "FAIL: $bin is not built"; exit 1; }; done

# shellcheck source=../../lib/corrald.sh
. "$repo/tests/lib/corrald.sh"
# shellcheck source=../../lib/netns.sh
. "$repo/tests/lib/netns.sh"
hostns=""
guests=()
cleanup() {
  corrald_failure_report
  corrald_stop
  corrald_networks_cleanup
  for ns in "${guests[@]}" "$hostns"; do ip netns del "$ns" 2>/dev/null; done
  rm -rf "$state"
}
trap cleanup EXIT

netns_corrald_host
cli() { "$corral" --socket "$sock" "$@"; }

corrald_start || exit 1
api GET /api/v1/networks/default
check "the default network is up" test "$code" = 200

echo "== the default group"
api GET /api/v1/security-groups/default
check "GET /security-groups/default: OpenStack's default (members reach each other)" \
  test "$code/$(jqb '.rules[0].summary')" = "200/in any from group default"

echo "== bad input: 400 naming the field, nothing made"
bad() {   # bad NAME JSON FIELD
  api POST /api/v1/security-groups "$2"
  check "$1: 400 naming $3 ($(jqb .error.message))" test "$code/$(jqb .error.field)" = "400/$3"
}
bad "a protocol that is none" '{"name": "x", "rules": [{"protocol": "sctp"}]}' 'rules[0].protocol'
bad "a direction that is none" '{"name": "x", "rules": [{"direction": "sideways"}]}' 'rules[0].direction'
bad "a port out of range" '{"name": "x", "rules": [{"protocol": "tcp", "port_from": 70000}]}' 'rules[0].port_from'
bad "a port as a string" '{"name": "x", "rules": [{"protocol": "tcp", "port_from": "22"}]}' 'rules[0].port_from'
bad "a port on icmp" '{"name": "x", "rules": [{"protocol": "icmp", "port_from": 22}]}' 'rules[0].port_from'
bad "a range backwards" '{"name": "x", "rules": [{"protocol": "tcp", "port_from": 90, "port_to": 80}]}' 'rules[0].port_to'
bad "a CIDR that is none" '{"name": "x", "rules": [{"remote_cidr": "10.0.0.300/8"}]}' 'rules[0].remote_cidr'
bad "an unknown remote group" '{"name": "x", "rules": [{"remote_group": "nope"}]}' 'rules[0].remote_group'
bad "rules not an array" '{"name": "x", "rules": "tcp 22"}' rules
bad "a rule not an object" '{"name": "x", "rules": [22]}' 'rules[0]'
bad "a name with capitals" '{"name": "Web"}' name
bad "an unknown field" '{"name": "x", "color": "red"}' color
api GET /api/v1/security-groups/x
check "  ... and no group x was made" test "$code" = 404

echo "== a group allowing tcp/22, on vm2"
api POST /api/v1/security-groups '{"name": "ssh", "description": "ssh only",
  "rules": [{"direction": "in", "protocol": "tcp", "port_from": 22}]}'
check "POST /security-groups ssh is 201" test "$code" = 201 || echo "$body"
api POST /api/v1/vms '{"name": "vm2", "engine": "emulated", "nics": [{"network": "default", "groups": ["nope"]}]}'
check "a NIC given an unknown group: 400 naming nics[0].groups[0]" \
  test "$code/$(jqb .error.field)" = "400/nics[0].groups[0]"
api POST /api/v1/vms '{"name": "vm1", "engine": "emulated", "nics": [{"network": "default"}]}'
check "POST /vms vm1 (no groups) is 201" test "$code" = 201 || echo "$body"
api POST /api/v1/vms '{"name": "vm2", "engine": "emulated", "nics": [{"network": "default", "groups": ["ssh"]}]}'
check "POST /vms vm2 with group ssh is 201, showing it" test "$code/$(jqb '.nics[0].groups | join(",")')" = "201/ssh" \
  || echo "$body"

# guest N VM: a namespace standing for VM's guest: eth0 with the VM's MAC and address, its host
# end named as the VM's tap, on the default network's bridge.
guest() {
  local n=$1 vm=$2 ns="crl-g$1-$$" mac ip tap
  api GET "/api/v1/vms/$vm"
  mac=$(jqb '.nics[0].mac') ip=$(jqb '.nics[0].ipv4') tap=$(tap_of "$vm")
  guests+=("$ns")
  ip netns add "$ns"
  ip link add "gv$n-$$" type veth peer name "gh$n-$$"
  ip link set "gv$n-$$" netns "$ns"
  ip link set "gh$n-$$" netns "$hostns"
  inh ip link set "gh$n-$$" name "$tap"
  ip netns exec "$ns" ip link set "gv$n-$$" name eth0
  ip netns exec "$ns" ip link set eth0 address "$mac"
  ip netns exec "$ns" ip addr add "$ip/24" dev eth0
  ip netns exec "$ns" ip link set eth0 up
  ip netns exec "$ns" ip link set lo up
  inh ip link set "$tap" master corral0 up
  eval "ip$n=$ip"
}
gx() { local n=$1; shift; ip netns exec "crl-g$n-$$" "$@"; }
guest 1 vm1
guest 2 vm2
# vm2 listens on 22 and 80 (busybox nc, persistent, each connection closed at once).
# Started directly (not through gx, a function: $! would be its subshell), so kill reaches them.
ip netns exec "crl-g2-$$" busybox nc -ll -p 22 -e /bin/true &
listeners=($!)
ip netns exec "crl-g2-$$" busybox nc -ll -p 80 -e /bin/true &
listeners+=($!)
trap 'kill "${listeners[@]}" 2>/dev/null; cleanup' EXIT
sleep 0.5
connects() { gx 1 busybox nc -w 2 "$ip2" "$1" </dev/null >/dev/null 2>&1; }
check "vm2 listens on 22 and 80 (seen from inside)" gx 2 busybox nc -w 2 127.0.0.1 80 </dev/null
check "vm1 -> vm2 tcp/22 connects (group ssh allows it)" connects 22
check "vm1 -> vm2 tcp/80 does not" bash -c "! ip netns exec crl-g1-$$ busybox nc -w 2 $ip2 80 </dev/null >/dev/null 2>&1"
check "vm2 -> vm1 tcp/22 is not filtered (vm1 has no group: everything passes)" \
  bash -c "ip netns exec crl-g1-$$ busybox nc -ll -p 2222 -e /bin/true & p=\$!; sleep 0.3; ip netns exec crl-g2-$$ busybox nc -w 2 $ip1 2222 </dev/null; r=\$?; kill \$p; exit \$r"

echo "== corral network trace, from the installed ruleset"
out=$(cli network trace default --from vm1 --to vm2 --port 22/tcp 2>&1)
check "trace 22/tcp: allowed, naming group ssh's rule ($out)" bash -c '[[ "$1" == *allowed* && "$1" == *ssh* ]]' _ "$out"
out=$(cli network trace default --from vm1 --to vm2 --port 80/tcp 2>&1)
check "trace 80/tcp: dropped, and why ($out)" bash -c '[[ "$1" == *dropped* ]]' _ "$out"
api GET "/api/v1/networks/default/trace?from=vm1&to=vm2&protocol=tcp&port=22"
check "GET /networks/default/trace: allowed, with the rule and its chain" \
  test "$code/$(jqb .allowed)/$(jqb '.rule | test("ssh")')" = "200/true/true"
api GET "/api/v1/networks/default/trace?from=vm1&to=vm2&protocol=tcp"
check "  ... without a port: 400 naming port" test "$code/$(jqb .error.field)" = "400/port"
api GET "/api/v1/networks/default/trace?from=nosuchvm&to=vm2&protocol=tcp&port=22"
check "  ... from an unknown VM: 404 naming it" bash -c '[ "$1" = 404 ] && [[ "$2" == *nosuchvm* ]]' _ "$code" "$(jqb .error.message)"

echo "== changed live"
api POST /api/v1/security-groups/ssh/rules '{"protocol": "tcp", "port_from": 80}'
check "POST /security-groups/ssh/rules (tcp 80) is 201" test "$code" = 201 || echo "$body"
check "  ... vm1 -> vm2 tcp/80 now connects" connects 80
out=$(cli network trace default --from vm1 --to vm2 --port 80/tcp 2>&1)
check "  ... and trace says so ($out)" bash -c '[[ "$1" == *allowed* ]]' _ "$out"
api DELETE /api/v1/security-groups/ssh/rules/0
check "DELETE /security-groups/ssh/rules/0 (tcp 22) is 200" test "$code/$(jqb '.rules | length')" = "200/1"
check "  ... vm1 -> vm2 tcp/22 no longer connects" bash -c "! ip netns exec crl-g1-$$ busybox nc -w 2 $ip2 22 </dev/null >/dev/null 2>&1"
api DELETE /api/v1/security-groups/ssh
check "deleting group ssh while vm2 carries it: 409 naming vm2" \
  bash -c '[ "$1" = 409 ] && [[ "$2" == *vm2* ]]' _ "$code" "$(jqb .error.message)"
out=$(cli sg set-nic vm2 2>&1)
check "corral sg set-nic vm2 (no groups): $out" test $? = 0
check "  ... vm1 -> vm2 tcp/22 connects again (no group: everything passes)" connects 22
cli sg set-nic vm2 ssh >/dev/null
check "corral sg set-nic vm2 ssh: 22 is closed again" bash -c "! ip netns exec crl-g1-$$ busybox nc -w 2 $ip2 22 </dev/null >/dev/null 2>&1"
api PUT /api/v1/vms/vm2/nics/3/groups '{"groups": []}'
check "PUT /vms/vm2/nics/3/groups (no such NIC): 404" test "$code" = 404
api PUT /api/v1/vms/vm2/nics/0/groups '{"groups": "ssh"}'
check "PUT .../groups with a string: 400 naming groups" test "$code/$(jqb .error.field)" = "400/groups"

echo "== groups set with the NICs (PATCH /vms, a stopped VM), and remote groups"
api PATCH /api/v1/vms/vm1 '{"nics": [{"network": "default", "groups": ["default"]}]}'
check "PATCH /vms/vm1 with its NIC in group default: 200, the same address, the group" \
  test "$code/$(jqb '.nics[0].ipv4')/$(jqb '.nics[0].groups | join(",")')" = "200/$ip1/default" || echo "$body"
out=$(cli network trace default --from vm2 --to vm1 --port 2222/tcp 2>&1)
check "  ... vm2 (not in default) -> vm1 tcp/2222: dropped ($out)" bash -c '[[ "$1" == *dropped* ]]' _ "$out"
check "  ... and so it is, on the wire" \
  bash -c "ip netns exec crl-g1-$$ busybox nc -ll -p 2222 -e /bin/true & p=\$!; sleep 0.3; ! ip netns exec crl-g2-$$ busybox nc -w 2 $ip1 2222 </dev/null 2>/dev/null; r=\$?; kill \$p; exit \$r"
cli sg set-nic vm2 ssh default >/dev/null
out=$(cli network trace default --from vm2 --to vm1 --port 2222/tcp 2>&1)
check "  ... once vm2 carries default too: allowed by default's rule ($out)" \
  bash -c '[[ "$1" == *allowed* && "$1" == *"group default"* ]]' _ "$out"
check "  ... and on the wire" \
  bash -c "ip netns exec crl-g1-$$ busybox nc -ll -p 2222 -e /bin/true & p=\$!; sleep 0.3; ip netns exec crl-g2-$$ busybox nc -w 2 $ip1 2222 </dev/null; r=\$?; kill \$p; exit \$r"
api GET /api/v1/vms/vm2
check "GET /vms/vm2 shows both groups, in order" test "$(jqb '.nics[0].groups | join(",")')" = "ssh,default"
cli sg set-nic vm2 ssh >/dev/null

echo "== the CLI"
out=$(cli sg list 2>&1)
check "corral sg list shows ssh on vm2" bash -c 'grep -E "^ssh +1 +vm2" <<<"$1"' _ "$out"
out=$(cli security-group show ssh 2>&1)
check "corral security-group show ssh shows its rule in words" bash -c 'grep -q "in tcp 80 from anywhere" <<<"$1"' _ "$out"
cli sg create web --description "web" >/dev/null
cli sg rule-add web --protocol tcp --port 8000-8100 --remote 10.0.0.0/8 >/dev/null
out=$(cli sg show web 2>&1)
check "corral sg rule-add web --port 8000-8100 --remote 10.0.0.0/8" bash -c 'grep -q "in tcp 8000-8100 from 10.0.0.0/8" <<<"$1"' _ "$out"
out=$(cli sg rule-add web --protocol tcp --port 99999 2>&1)
check "corral sg rule-add --port 99999 is a usage error" test $? = 2
out=$(cli sg delete ssh 2>&1)
check "corral sg delete ssh (in use) fails naming vm2: $out" bash -c '[[ "$1" == *vm2* ]]' _ "$out"

echo "passed: $passed, failed: $failed"
[ "$failed" = 0 ]
