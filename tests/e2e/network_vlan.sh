#!/usr/bin/env bash
# tests/e2e/network_vlan.sh: corrald's vlan networks carry each network's frames with its own
# 802.1Q tag on the parent interface, and endpoints on different VLANs never see each other's
# frames, even with addresses of one subnet.
#
# Needs a kernel with 802.1Q (8021q): this host's microVM kernel has none, so the script re-runs
# itself inside the nested lab (tools/lab), whose Debian kernel loads it from the guest image's
# module tree. There it runs under `unshare --net --mount`: a real corrald (temporary state
# folder, no default network) makes networks blue (VLAN 10, 10.10.0.0/24) and red (VLAN 20,
# 10.20.0.0/24) on parent trunk0, a veth whose peer sw0 is in namespace "switch" with VLAN
# interfaces sw0.10 (10.10.0.254) and sw0.20 (10.20.0.254). Endpoints a and c (namespaces, on
# blue's bridge) and b (on red's, with an address in blue's subnet too) stand for the VMs' ports:
# a VM's tap joins the same bridge the same way on every network kind (e2e.network_vms boots real
# guests on managed networks).
# Checks: the networks as `corral network show` describes them; the VLAN ports corrald made
# (tag, parent, bridge); a reaches the switch only through VLAN 10 (sw0.10 receives, sw0.20 does
# not) and c on the same VLAN; b reaches the switch on VLAN 20; a cannot reach b's address in its
# own subnet, and b never sees a's ARP requests (it learns no neighbour entry, as c does);
# a corrald restart keeps the ports and the traffic; deleting red removes its VLAN port and
# bridge and leaves blue working; bad VLAN input is a 400 naming the field, nothing created.
# Exit 0 all passed, 1 a check failed, 77 skipped (reason printed). Ends with "N passed, N failed".
set -uo pipefail
script=$(readlink -f "${BASH_SOURCE[0]}")
repo=$(cd "$(dirname "$script")/../.." && pwd)
build_dir="${CORRAL_BUILD_DIR:-$repo/build}"
corral="$build_dir/src/cli/corral"

vlan_supported() {
  unshare --net sh -c 'ip link add v0 type veth peer name v1 && ip link add link v0 name v0.10 type vlan id 10' 2>/dev/null
}

# shellcheck source=../lib/lab.sh
. "$repo/tests/lib/lab.sh"
# shellcheck source=../lib/netns.sh
. "$repo/tests/lib/netns.sh"
if ! in_own_netns "$script"; then
  [ "$(id -u)" = 0 ] || { echo "SKIP: needs root (network namespaces, bridges, VLAN interfaces)"; exit 77; }
  for tool in unshare ip nft jq curl ping; do
    command -v "$tool" >/dev/null || { echo "SKIP: $tool is not installed"; exit 77; }
  done
  for bin in "$build_dir/src/daemon/corrald" "$corral"; do
    [ -x "$bin" ] || { echo "FAIL: $bin is not built"; exit 1; }
  done
  # All that corrald's networks and firewall use; the nft expressions may be absent or built in
  # (corrald says what it misses).
  [ -n "${CORRAL_IN_LAB:-}" ] && lab_load_guest_modules 8021q bridge veth nf_tables -- nft_ct nft_chain_nat nft_nat \
    nft_masq nft_reject_inet nft_reject_bridge nft_meta_bridge nft_limit nft_fib_inet nft_log nft_counter
  if ! vlan_supported; then
    [ -n "${CORRAL_IN_LAB:-}" ] && { echo "FAIL: no 802.1Q in the lab's kernel"; exit 1; }
    lab_possible || { echo "SKIP: this kernel has no 802.1Q (8021q), and QEMU cannot run the lab whose kernel has it"; exit 77; }
    "$repo/tools/guest-image" >/dev/null || exit 1
    echo "== running inside the nested lab (this kernel has no 802.1Q)"
    lab_run 900
    exit
  fi
fi
enter_own_netns "$script" "$@"
# ---- inside the new network and mount namespaces (lo is up, /sys is theirs)
mkdir -p /run/netns && mount -t tmpfs tmpfs /run/netns || { echo "FAIL: cannot mount /run/netns"; exit 1; }
# No IPv6: its router solicitations and DAD would move the receive counters the checks read.
sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 2>/dev/null

# shellcheck source=../lib/corrald.sh
. "$repo/tests/lib/corrald.sh"
cleanup() {
  corrald_failure_report
  corrald_stop
  corrald_networks_cleanup
  rm -rf -- "$state"
}
trap cleanup EXIT
export CORRAL_SOCKET="$sock"

netns() {   # netns NAME: a namespace without IPv6, loopback up
  ip netns add "$1" && ip netns exec "$1" sh -c \
    'sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 2>/dev/null; ip link set lo up'
}
# The switch: a trunk port sw0 with one VLAN interface per tag.
netns switch
ip link add trunk0 type veth peer name sw0 netns switch
ip link set trunk0 up
ip -n switch link set sw0 up
for tag in 10 20; do
  ip -n switch link add link sw0 name "sw0.$tag" type vlan id "$tag"
  ip -n switch addr add "10.$tag.0.254/24" dev "sw0.$tag"
  ip -n switch link set "sw0.$tag" up
done

rx_packets() {   # rx_packets NETNS IFACE
  ip netns exec "$1" cat "/sys/class/net/$2/statistics/rx_packets"
}
has_neighbour() {   # has_neighbour NETNS ADDRESS: NETNS has a neighbour entry with a MAC for ADDRESS
  ip -n "$1" neigh show "$2" | grep -q lladdr
}
export -f has_neighbour
pings() {   # pings NETNS ADDRESS: three answered pings
  ip netns exec "$1" ping -c 3 -i 0.3 -W 2 "$2" >/dev/null 2>&1
}

corrald_start || exit 1
echo "== bad input is refused, nothing created"
api POST /api/v1/networks '{"name":"bad","kind":"vlan","parent":"trunk0","vlan_id":4095}'
check "vlan_id 4095: 400 naming vlan_id" test "$code" = 400 -a "$(jqb .error.field)" = vlan_id
api POST /api/v1/networks '{"name":"bad","kind":"vlan","parent":"trunk0","vlan_id":"10"}'
check "vlan_id as a string: 400 naming vlan_id" test "$code" = 400 -a "$(jqb .error.field)" = vlan_id
api POST /api/v1/networks '{"name":"bad","kind":"vlan","vlan_id":10}'
check "no parent: 400 naming parent" test "$code" = 400 -a "$(jqb .error.field)" = parent
check "  ... no network and no VLAN port were made" \
  bash -c "! ip link show trunk0.10 >/dev/null 2>&1 && [ \"\$('$corral' network list --json | jq length)\" = 0 ]"

echo "== two vlan networks on trunk0"
for spec in blue:10 red:20; do
  name=${spec%:*} tag=${spec#*:}
  "$corral" network create "$name" --kind vlan --parent trunk0 --vlan "$tag" --subnet "10.$tag.0.0/24" \
    >"$state/out" 2>&1
  check "corral network create $name (VLAN $tag)" test $? = 0 || cat "$state/out"
done
"$corral" network show blue --json >"$state/blue.json" 2>&1
check "network show blue: kind vlan, parent trunk0, VLAN 10" \
  test "$(jq -r '[.kind, .parent, .vlan_id] | join(" ")' "$state/blue.json")" = "vlan trunk0 10"
blue_bridge=$(jq -r .bridge "$state/blue.json")
red_bridge=$("$corral" network show red --json | jq -r .bridge)
for spec in "$blue_bridge:10" "$red_bridge:20"; do
  bridge=${spec%:*} tag=${spec#*:}
  port=$(ip -o -d link show master "$bridge" type vlan | awk -F': ' '{ print $2 }' | cut -d@ -f1)
  check "bridge $bridge holds a VLAN port ($port) with tag $tag on trunk0" \
    bash -c "ip -d link show '$port' | grep -q 'vlan protocol 802.1Q id $tag ' && ip link show '$port' | grep -q '@trunk0:'"
done

echo "== endpoints: a and c on blue, b on red (with an address in blue's subnet too)"
attach() {   # attach NAME BRIDGE ADDRESS...
  local name=$1 bridge=$2 address
  shift 2
  netns "$name"
  ip link add "p-$name" type veth peer name eth0 netns "$name"
  ip link set "p-$name" master "$bridge" up
  for address in "$@"; do ip -n "$name" addr add "$address" dev eth0; done
  ip -n "$name" link set eth0 up
}
attach a "$blue_bridge" 10.10.0.11/24
attach c "$blue_bridge" 10.10.0.13/24
attach b "$red_bridge" 10.20.0.11/24 10.10.0.12/24

sw10=$(rx_packets switch sw0.10) sw20=$(rx_packets switch sw0.20)
check "a pings the switch's 10.10.0.254 (VLAN 10 on the trunk)" pings a 10.10.0.254
check "  ... which received it on sw0.10" test "$(rx_packets switch sw0.10)" -gt "$sw10"
check "  ... and nothing on sw0.20" test "$(rx_packets switch sw0.20)" = "$sw20"
check "a pings c (same VLAN)" pings a 10.10.0.13
# A host that answers an ARP request keeps a neighbour entry for the asker: the sign that a's
# broadcasts reached it (the check on b below relies on this).
check "  ... c learnt a's address from a's ARP request" has_neighbour c 10.10.0.11
check "b pings the switch's 10.20.0.254 (VLAN 20)" pings b 10.20.0.254
check "the host reaches a through blue's gateway address" ping -c 2 -W 2 10.10.0.11 >/dev/null 2>&1

check "a cannot reach b's 10.10.0.12 (another VLAN, same subnet)" bash -c '! ip netns exec a ping -c 3 -i 0.3 -W 1 10.10.0.12 >/dev/null 2>&1'
check "  ... b never saw a's ARP requests for it (no neighbour entry for a)" bash -c '! has_neighbour b 10.10.0.11'

echo "== a corrald restart keeps the VLAN ports and the traffic"
corrald_stop
corrald_start || exit 1
check "after the restart: a still pings the switch over VLAN 10" pings a 10.10.0.254
check "  ... and b over VLAN 20" pings b 10.20.0.254
check "  ... one VLAN port per network, none duplicated" \
  test "$(ip -o -d link show type vlan | grep -c '@trunk0:')" = 2

echo "== deleting red removes its port and bridge, blue keeps working"
"$corral" network delete red >"$state/out" 2>&1
check "corral network delete red" test $? = 0 || cat "$state/out"
check "red's bridge is gone" bash -c "! ip link show '$red_bridge' >/dev/null 2>&1"
check "  ... and its VLAN port" test "$(ip -o -d link show type vlan | grep -c '@trunk0:')" = 1
check "a still pings the switch over VLAN 10" pings a 10.10.0.254

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
