#!/usr/bin/env bash
# tests/integration/daemon/networks_ipv6.sh: managed networks with a subnet6, from the API to the
# kernel, with real dnsmasq (router advertisements), real nft and the guests' own kernel SLAAC, in
# network namespaces this script makes (the host's interfaces, routes and rules are never touched):
#   ns "crl-h-PID"   corrald's host: it runs there; uplink veth up0 (2001:db8:1::1/64)
#   ns "crl-u-PID"   the outside world: 2001:db8:1::2/64, and NO route back to the networks'
#                    prefixes, so an answer from it proves the masquerade
#   ns "crl-gN-PID"  guests: VMs v1 and v2 are defined through the API on network "six" (corrald
#                    gives them a MAC and an IPv4 address); each guest is a namespace whose veth
#                    has that MAC and whose host end carries the VM's tap name (the firewall's port)
# Checks: bad subnet6 values are 400s naming it; the bridge gets the subnet's ::1 at once (not
# tentative); GET /host reports IPv6 forwarding off with its fix, then nothing once fixed; the API
# and `corral vm list` show each NIC's IPv6 address, and the guest's kernel makes exactly that one
# from the router advertisement; guests ping the gateway and each other over IPv6 and reach the
# uplink through NAT66; a guest sending from another IPv6 address is dropped; an isolated network's
# advertisements give a prefix but no default route, and its DNS answers on its IPv6 gateway; corrald restarted leaves the ruleset
# byte-identical; clearing subnet6 takes the address off the bridge and the NAT rule away.
# Needs root, ip, nft, dnsmasq, busybox, jq, curl. Exit 0 passed, 1 failed, 77 skipped.
set -uo pipefail
script=$(readlink -f "${BASH_SOURCE[0]}")
repo=$(cd "$(dirname "$script")/../../.." && pwd)
build_dir="${CORRAL_BUILD_DIR:-$repo/build}"

[ "$(id -u)" = 0 ] || { echo "SKIP: needs root (network namespaces, bridges, nftables)"; exit 77; }
for tool in ip nft dnsmasq busybox jq curl; do
  command -v "$tool" >/dev/null || { echo "SKIP: $tool is not installed"; exit 77; }
done
[ -d /proc/sys/net/ipv6 ] || { echo "SKIP: this kernel has no IPv6"; exit 77; }
real_corrald="$build_dir/src/daemon/corrald"
corral="$build_dir/src/cli/corral"
for bin in "$real_corrald" "$corral"; do [ -x "$bin" ] || { echo "FAIL: $bin is not built"; exit 1; }; done

# shellcheck source=../../lib/corrald.sh
. "$repo/tests/lib/corrald.sh"
# shellcheck source=../../lib/netns.sh
. "$repo/tests/lib/netns.sh"
hostns="" upns=""
guests=()
cleanup() {
  corrald_failure_report
  corrald_stop
  corrald_networks_cleanup
  for ns in "${guests[@]}" "$upns" "$hostns"; do ip netns del "$ns" 2>/dev/null; done
  rm -rf "$state"
}
trap cleanup EXIT

netns_corrald_host
netns_uplink
inh ip -6 addr add 2001:db8:1::1/64 dev up0 nodad
inu ip -6 addr add 2001:db8:1::2/64 dev eth0 nodad
inh ip -6 route add default via 2001:db8:1::2
inh sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=0
cli() { "$corral" --socket "$sock" "$@"; }
corrald_start || exit 1

echo "== bad subnet6: 400 naming it, nothing made"
bad() {   # bad NAME JSON
  api POST /api/v1/networks "$2"
  check "$1: 400 naming subnet6 ($(jqb .error.message))" test "$code/$(jqb .error.field)" = "400/subnet6"
}
bad "host bits set" '{"name": "x", "subnet4": "10.0.150.0/24", "subnet6": "fd00:150::1/64"}'
bad "not a /64 (SLAAC)" '{"name": "x", "subnet4": "10.0.150.0/24", "subnet6": "fd00:150::/48"}'
bad "a number" '{"name": "x", "subnet4": "10.0.150.0/24", "subnet6": 64}'
bad "on a bridged network" '{"name": "x", "kind": "bridged", "bridge": "up0", "subnet6": "fd00:150::/64"}'
api GET /api/v1/networks/x
check "  ... and no network x was made" test "$code" = 404

echo "== a nat network with subnet6"
api POST /api/v1/networks '{"name": "six", "subnet4": "10.0.140.0/24", "subnet6": "fd00:0140::/64"}'
check "POST /networks six with subnet6 is 201" test "$code" = 201 || echo "$body"
bridge=$(jqb .bridge)
check "  ... subnet6 kept in one spelling, gateway6 its ::1 ($(jqb .subnet6), $(jqb .gateway6))" \
  test "$(jqb .subnet6)/$(jqb .gateway6)" = "fd00:140::/64/fd00:140::1"
check "  ... the bridge $bridge has fd00:140::1/64" \
  bash -c "ip netns exec $hostns ip -6 addr show dev $bridge | grep -q 'inet6 fd00:140::1/64'"
check "  ... usable at once, not tentative (DAD off on that bridge)" \
  bash -c "! ip netns exec $hostns ip -6 addr show dev $bridge | grep -q tentative"
api POST /api/v1/networks '{"name": "y", "subnet4": "10.0.151.0/24", "subnet6": "fd00:140::/64"}'
check "a second network on the same subnet6: 400 naming subnet6" test "$code/$(jqb .error.field)" = "400/subnet6"

echo "== host policy"
api GET /api/v1/host
check "GET /host reports IPv6 forwarding off, with the fix" \
  bash -c 'jq -r ".network_policy.problems[].fix" <<<"$1" | grep -q "net.ipv6.conf.all.forwarding=1"' _ "$body"
inh sysctl -qw net.ipv6.conf.all.forwarding=1
api GET /api/v1/host
check "  ... and nothing once it is fixed" test "$(jqb .network_policy.ok)" = true

echo "== VMs' IPv6 addresses: what the API says, the guest's kernel makes"
for vm in v1 v2; do
  api POST /api/v1/vms "{\"name\": \"$vm\", \"engine\": \"emulated\", \"nics\": [{\"network\": \"six\"}]}"
  check "POST /vms $vm on six is 201, with an ipv6 ($(jqb '.nics[0].ipv6'))" \
    bash -c '[ "$1" = 201 ] && [[ "$2" == fd00:140::*:*ff:fe*:* ]]' _ "$code" "$(jqb '.nics[0].ipv6')"
done
# guest N VM: a namespace standing for VM's guest: eth0 with the VM's MAC and IPv4 address, its
# host end named as the VM's tap, on six's bridge; IPv6 is left to the guest's kernel.
guest() {
  local n=$1 vm=$2 ns="crl-g$1-$$" tap
  api GET "/api/v1/vms/$vm"
  eval "mac$n=$(jqb '.nics[0].mac') ipv4_$n=$(jqb '.nics[0].ipv4') ipv6_$n=$(jqb '.nics[0].ipv6')"
  tap=$(tap_of "$vm")
  guests+=("$ns")
  ip netns add "$ns"
  ip link add "gv$n-$$" type veth peer name "gh$n-$$"
  ip link set "gv$n-$$" netns "$ns"
  ip link set "gh$n-$$" netns "$hostns"
  inh ip link set "gh$n-$$" name "$tap"
  ip netns exec "$ns" ip link set "gv$n-$$" name eth0
  local mac_var="mac$n" ipv4_var="ipv4_$n"
  ip netns exec "$ns" ip link set eth0 address "${!mac_var}"
  ip netns exec "$ns" ip addr add "${!ipv4_var}/24" dev eth0
  ip netns exec "$ns" sysctl -qw net.ipv6.conf.eth0.accept_ra=1 net.ipv6.conf.eth0.use_tempaddr=0
  ip netns exec "$ns" ip link set lo up
  inh ip link set "$tap" master "$bridge" up
  ip netns exec "$ns" ip link set eth0 up
}
gx() { local n=$1; shift; ip netns exec "crl-g$n-$$" "$@"; }
# The guest's global address once duplicate address detection has passed (a tentative one cannot
# be sent from yet).
global6() { gx "$1" ip -6 -o addr show dev eth0 scope global -tentative | awk '{print $4}' | cut -d/ -f1 | head -1; }
has_global6() { [ -n "$(global6 "$1")" ]; }
guest 1 v1
guest 2 v2
wait_until 30 has_global6 1
wait_until 30 has_global6 2
check "guest 1's kernel made $(global6 1) from the advertisement: the API's $ipv6_1" test "$(global6 1)" = "$ipv6_1"
check "guest 2's made $(global6 2): the API's $ipv6_2" test "$(global6 2)" = "$ipv6_2"
listed=$(cli vm list 2>&1)
check "  ... corral vm list shows it" grep -q "$ipv6_1" <<<"$listed" || echo "$listed"
check "guest 1 pings the gateway fd00:140::1" gx 1 busybox ping -6 -c 1 -W 2 fd00:140::1
check "  ... and guest 2 at $ipv6_2" gx 1 busybox ping -6 -c 1 -W 2 "$ipv6_2"
has_default6() { gx 1 ip -6 route show default | grep -q "via fe80::"; }
wait_until 10 has_default6
check "  ... took its default route from the advertisement" has_default6
pings_uplink6() { gx 1 busybox ping -6 -c 1 -W 2 2001:db8:1::2 >/dev/null; }
wait_until 10 pings_uplink6
check "  ... and reaches the uplink 2001:db8:1::2 through NAT66 (the uplink has no route back)" pings_uplink6
check "  ... which it could not without the masquerade" \
  bash -c "! ip netns exec $upns ip -6 route get $ipv6_1 2>/dev/null | grep -q via"

echo "== anti-spoofing: only the NIC's own IPv6 address"
gx 1 ip -6 addr add fd00:140::99/64 dev eth0 nodad
check "guest 1 sending from fd00:140::99 is dropped" \
  bash -c "! ip netns exec crl-g1-$$ busybox ping -6 -c 1 -W 2 -I fd00:140::99 $ipv6_2 >/dev/null"
check "  ... from its own address it passes" gx 1 busybox ping -6 -c 1 -W 2 -I "$ipv6_1" "$ipv6_2"
gx 1 ip -6 addr del fd00:140::99/64 dev eth0

echo "== an isolated network with subnet6: a prefix, no default route"
api POST /api/v1/networks '{"name": "isix", "kind": "isolated", "subnet4": "10.0.141.0/24", "subnet6": "fd00:141::/64",
  "reservations": [{"mac": "52:54:00:00:01:03", "ipv4": "10.0.141.13", "hostname": "db"}]}'
check "POST /networks isix is 201" test "$code" = 201 || echo "$body"
iso_bridge=$(jqb .bridge)
ns3="crl-g3-$$"
guests+=("$ns3")
ip netns add "$ns3"
ip link add "gv3-$$" type veth peer name "gh3-$$"
ip link set "gv3-$$" netns "$ns3"
ip link set "gh3-$$" netns "$hostns"
ip netns exec "$ns3" ip link set "gv3-$$" name eth0
ip netns exec "$ns3" sysctl -qw net.ipv6.conf.eth0.accept_ra=1 net.ipv6.conf.eth0.use_tempaddr=0
inh ip link set "gh3-$$" master "$iso_bridge" up
ip netns exec "$ns3" ip link set eth0 up
wait_until 30 has_global6 3
check "its guest made an address in fd00:141::/64 ($(global6 3))" bash -c '[[ "$1" == fd00:141::* ]]' _ "$(global6 3)"
resolved=$(gx 3 busybox nslookup db fd00:141::1 2>/dev/null | awk '/^Address/ {a=$NF} END {print a}')
check "  ... asks the network's DNS at fd00:141::1 for reservation db ($resolved)" test "$resolved" = 10.0.141.13
check "  ... and got no default route (router lifetime 0)" bash -c "! ip netns exec $ns3 ip -6 route show default | grep -q ."

echo "== corrald restarted: the ruleset byte-identical, IPv6 still flows"
ruleset() { inh nft list ruleset; }
ruleset >"$state/ruleset.before"
corrald_stop
corrald_start || exit 1
ruleset >"$state/ruleset.after"
check "the nftables ruleset is byte-identical (corral_nat6 included)" \
  bash -c "cmp -s '$state/ruleset.before' '$state/ruleset.after' && grep -q 'table ip6 corral_nat6' '$state/ruleset.after'" \
  || diff "$state/ruleset.before" "$state/ruleset.after" | head -20
check "  ... guest 1 still reaches the uplink over IPv6" gx 1 busybox ping -6 -c 1 -W 2 2001:db8:1::2

echo "== subnet6 cleared"
api PATCH /api/v1/networks/six '{"subnet6": ""}'
check "PATCH six subnet6 \"\" is 200, gateway6 null" test "$code/$(jqb .gateway6)" = "200/null" || echo "$body"
check "  ... the bridge lost fd00:140::1" bash -c "! ip netns exec $hostns ip -6 addr show dev $bridge | grep -q fd00:140::1"
check "  ... the NAT66 rule is gone" bash -c "! ip netns exec $hostns nft list table ip6 corral_nat6 | grep -q fd00:140"
api GET /api/v1/vms/v1
check "  ... and v1 shows no ipv6" test "$(jqb '.nics[0].ipv6')" = null

check_summary
