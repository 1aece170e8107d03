#!/usr/bin/env bash
# tests/integration/daemon/networks.sh: corrald's managed networks with real dnsmasq, real nft and
# the kernel's bridges, all inside network namespaces this script makes (the host's interfaces,
# routes and rules are never touched):
#   ns "crl-h-PID"   corrald's host: it runs there (ip netns exec), so its bridges, dnsmasq and
#                    nftables tables are made there; its uplink is veth up0 (192.0.2.1/24)
#   ns "crl-u-PID"   the outside world: 192.0.2.2/24, and NO route back to the VMs' subnets, so an
#                    answer from it proves masquerade
#   ns "crl-gN-PID"  guests: a veth whose other end is on a corrald bridge, busybox udhcpc for DHCP
# Checks: the default network made on the first start (bridge corral0, dnsmasq); GET /host reports
# ip_forward off with its fix, then nothing once fixed; reservations give two guests fixed
# addresses and DNS names; a guest resolves the other by name over the network's DNS and pings it;
# guests reach the uplink through NAT; a reservation added to the running network reloads dnsmasq
# (same pid, leases kept) and a new guest gets it by DHCP and DNS; going from no DNS forwarders to
# some restarts dnsmasq (its configuration changes), another forwarder only reloads it; an isolated
# network's guest gets a lease and reaches its gateway but not the uplink, even with a route;
# `network leases`; dnsmasq killed is started again
# and the leases survive; corrald restarted adopts dnsmasq (same pid; one without a pid file too,
# found by its command line, and ended when its network is deleted) and leaves the nftables
# ruleset byte-identical; bad input is a 400 naming the field and creates nothing; deleting a
# network removes its bridge, dnsmasq and host lists.
# Needs root, ip (iproute2), nft, dnsmasq, busybox, jq, curl. Exit 0 passed, 1 failed, 77 skipped.
set -uo pipefail
script=$(readlink -f "${BASH_SOURCE[0]}")
repo=$(cd "$(dirname "$script")/../../.." && pwd)
build_dir="${CORRAL_BUILD_DIR:-$repo/build}"

[ "$(id -u)" = 0 ] || { echo "SKIP: needs root (network namespaces, bridges, nftables)"; exit 77; }
for tool in ip nft dnsmasq busybox jq curl; do
  command -v "$tool" >/dev/null || { echo "SKIP: $tool is not installed"; exit 77; }
done
real_corrald="$build_dir/src/daemon/corrald"
[ -x "$real_corrald" ] || { echo "FAIL: $real_corrald is not built"; exit 1; }

# shellcheck source=../../lib/corrald.sh
. "$repo/tests/lib/corrald.sh"
# shellcheck source=../../lib/netns.sh
. "$repo/tests/lib/netns.sh"
hostns="" upns=""
guests=()
cleanup() {
  corrald_stop
  # dnsmasq outlives corrald by design: end the ones of this test (their pid files are ours).
  for pid_file in "$state"/networks/*/dnsmasq.pid; do
    [ -f "$pid_file" ] && kill "$(cat "$pid_file")" 2>/dev/null
  done
  corrald_hosts_lists_cleanup
  for ns in "${guests[@]}" "$upns" "$hostns"; do ip netns del "$ns" 2>/dev/null; done
  rm -rf "$state"
}
trap cleanup EXIT

# A corrald installed on this machine (tools/quickstart's) has its own corral0 here: the test's
# must not touch it, nor add one.
host_corral0_before=$(cat /sys/class/net/corral0/ifindex 2>/dev/null)
# corrald itself runs in $hostns; its socket is a file, reachable from here.
netns_corrald_host
netns_uplink
inh ip addr add 192.0.2.1/24 dev up0
inu ip addr add 192.0.2.2/24 dev eth0
inh ip route add default via 192.0.2.2
inh sysctl -qw net.ipv4.ip_forward=0

echo "== first start: the default network"
corrald_start || exit 1
api GET /api/v1/networks/default
check "GET /networks/default is 200 (made on the first start)" test "$code" = 200
subnet=$(jqb .subnet4) gw=$(jqb .gateway4)
check "  ... nat on bridge corral0, subnet $subnet, gateway $gw" \
  test "$(jqb .kind)/$(jqb .bridge)/$subnet/$gw" = "nat/corral0/10.0.100.0/24/10.0.100.1"
check "  ... bridge corral0 exists in corrald's namespace with the gateway address" \
  bash -c "ip netns exec $hostns ip -4 addr show corral0 | grep -q 'inet 10.0.100.1/24'"
host_corral0_now=$(cat /sys/class/net/corral0/ifindex 2>/dev/null)
check "  ... and not in the host's (there: ${host_corral0_before:-none} before, ${host_corral0_now:-none} now)" \
  test "$host_corral0_now" = "$host_corral0_before"
dnsmasq_pid=$(jqb .status.dnsmasq.pid)
check "  ... its dnsmasq runs (pid $dnsmasq_pid) on that network's configuration" \
  grep -q "conf-file=$state/networks/default/dnsmasq.conf" "/proc/$dnsmasq_pid/cmdline"
check "  ... corrald's nftables tables are installed there" bash -c "ip netns exec $hostns nft list table ip corral_nat >/dev/null"

echo "== host policy"
api GET /api/v1/host
check "GET /host reports ip_forward off, with the fix" \
  bash -c '[ "$(jq -r .network_policy.ok <<<"$1")" = false ] && jq -r ".network_policy.problems[].fix" <<<"$1" | grep -q ip_forward' _ "$body"
api GET /api/v1/networks/default
check "  ... so does network show (host_policy)" bash -c 'jq -r ".host_policy.problems[].problem" <<<"$1" | grep -qi forward' _ "$body"
inh sysctl -qw net.ipv4.ip_forward=1
api GET /api/v1/host
check "  ... and nothing once it is fixed" test "$(jqb .network_policy.ok)" = true

echo "== bad input: 400 naming the field, nothing made"
bad() {   # bad NAME JSON FIELD
  api POST /api/v1/networks "$2"
  check "$1: 400 naming $3 ($(jqb .error.message))" test "$code/$(jqb .error.field)" = "400/$3"
}
bad "a subnet with host bits" '{"name": "x", "subnet4": "10.0.120.1/24"}' subnet4
bad "a subnet overlapping default" '{"name": "x", "subnet4": "10.0.0.0/16"}' subnet4
bad "a subnet overlapping the uplink" '{"name": "x", "subnet4": "192.0.2.0/25"}' subnet4
bad "a gateway outside the subnet" '{"name": "x", "subnet4": "10.0.120.0/24", "gateway4": "10.0.121.1"}' gateway4
bad "a VLAN id out of range" '{"name": "x", "kind": "vlan", "parent": "up0", "vlan_id": 5000}' vlan_id
bad "a reservation outside the subnet" \
  '{"name": "x", "subnet4": "10.0.120.0/24", "reservations": [{"mac": "52:54:00:00:00:09", "ipv4": "10.0.99.9"}]}' \
  'reservations[0].ipv4'
check "  ... and no bridge was made for any of them" bash -c "! ip netns exec $hostns ip link show crl-x >/dev/null 2>&1"
api GET /api/v1/networks/x
check "  ... nor a network" test "$code" = 404

echo "== reservations: fixed addresses and names"
api PATCH /api/v1/networks/default \
  '{"reservations": [{"mac": "52:54:00:00:00:11", "ipv4": "10.0.100.11", "hostname": "g1"},
                     {"mac": "52:54:00:00:00:12", "ipv4": "10.0.100.12", "hostname": "g2"}]}'
check "PATCH /networks/default with two reservations is 200" test "$code" = 200 || echo "$body"

# guest N MAC BRIDGE: a namespace with eth0 (MAC) on BRIDGE in corrald's namespace, DHCP by udhcpc.
cat >"$state/udhcpc.sh" <<'SH'
#!/bin/sh
# busybox udhcpc's event script: configure eth0 from the lease.
case "$1" in
  bound|renew)
    ip addr flush dev "$interface"
    ip addr add "$ip/${mask:-24}" dev "$interface"
    [ -n "${router:-}" ] && ip route replace default via "$router"
    echo "$ip" >"$LEASE_FILE" ;;
esac
exit 0
SH
chmod +x "$state/udhcpc.sh"
guest() {
  local n=$1 mac=$2 bridge=$3 ns="crl-g$1-$$"
  guests+=("$ns")
  ip netns add "$ns"
  ip link add "gv$n-$$" type veth peer name "gh$n-$$"
  ip link set "gv$n-$$" netns "$ns"
  ip link set "gh$n-$$" netns "$hostns"
  ip netns exec "$ns" ip link set "gv$n-$$" name eth0
  ip netns exec "$ns" ip link set eth0 address "$mac"
  ip netns exec "$ns" ip link set eth0 up
  ip netns exec "$ns" ip link set lo up
  inh ip link set "gh$n-$$" master "$bridge" up
  LEASE_FILE="$state/lease-$n" ip netns exec "$ns" busybox udhcpc -i eth0 -s "$state/udhcpc.sh" -n -q -t 10 -T 1 \
    >"$state/udhcpc-$n.log" 2>&1
}
gx() { local n=$1; shift; ip netns exec "crl-g$n-$$" "$@"; }

guest 1 52:54:00:00:00:11 corral0
guest 2 52:54:00:00:00:12 corral0
check "guest 1 got its reserved address 10.0.100.11 by DHCP" test "$(cat "$state/lease-1" 2>/dev/null)" = 10.0.100.11 \
  || cat "$state/udhcpc-1.log"
check "guest 2 got 10.0.100.12" test "$(cat "$state/lease-2" 2>/dev/null)" = 10.0.100.12
resolved=$(gx 1 busybox nslookup g2 10.0.100.1 2>/dev/null | awk '/^Address/ {a=$NF} END {print a}')
check "guest 1 resolves g2 over the network's DNS ($resolved)" test "$resolved" = 10.0.100.12
check "  ... and pings it" gx 1 busybox ping -c 1 -W 2 "$resolved"
check "guest 1 reaches the uplink 192.0.2.2 through NAT (the uplink has no route back)" gx 1 busybox ping -c 1 -W 2 192.0.2.2
check "  ... without NAT it could not (the uplink knows no 10.0.100.0/24)" \
  bash -c "! ip netns exec $upns ip route get 10.0.100.11 2>/dev/null | grep -q via"
api GET /api/v1/networks/default/leases
check "GET /networks/default/leases lists both guests" \
  test "$(jqb '[.[] | .mac + "=" + .ipv4] | join(" ")')" = "52:54:00:00:00:11=10.0.100.11 52:54:00:00:00:12=10.0.100.12"

echo "== a reservation added to the running network: dnsmasq reads it again, same process"
api GET /api/v1/networks/default
pid_before=$(jqb .status.dnsmasq.pid) reloads_before=$(jqb .status.dnsmasq.reloads)
hosts_dir=$(sed -n 's|^dhcp-hostsfile=||p' "$state/networks/default/dnsmasq.conf" | xargs -r dirname)
api PATCH /api/v1/networks/default \
  '{"reservations": [{"mac": "52:54:00:00:00:11", "ipv4": "10.0.100.11", "hostname": "g1"},
                     {"mac": "52:54:00:00:00:12", "ipv4": "10.0.100.12", "hostname": "g2"},
                     {"mac": "52:54:00:00:00:15", "ipv4": "10.0.100.15", "hostname": "g5"}]}'
check "PATCH /networks/default adding reservation g5 is 200" test "$code" = 200 || echo "$body"
api GET /api/v1/networks/default
check "  ... dnsmasq was reloaded, not restarted (pid $pid_before -> $(jqb .status.dnsmasq.pid))" \
  test "$(jqb .status.dnsmasq.pid)" = "$pid_before"
check "  ... the reload counted (reloads $reloads_before -> $(jqb .status.dnsmasq.reloads))" \
  test "$(jqb .status.dnsmasq.reloads)" = "$((${reloads_before/null/0} + 1))"
if [ -x "$build_dir/src/cli/corral" ]; then
  shown=$("$build_dir/src/cli/corral" --socket "$sock" network show default 2>&1 | grep '^dnsmasq:')
  check "  ... corral network show says so ($shown)" \
    test "$(tr -s ' ' <<<"$shown")" = "dnsmasq: pid $pid_before, restarted 0 times, reloaded $(jqb .status.dnsmasq.reloads) times"
fi
check "  ... and PATCH returned after dnsmasq said it read them" \
  bash -c "grep -q 'network default: dnsmasq (pid $pid_before) read its hosts, options and forwarders again' '$state/corrald.log' &&
           ! grep -q 'did not say it read' '$state/corrald.log'"
check "  ... its host lists are in $hosts_dir, readable by dnsmasq's user" \
  bash -c "[[ '$hosts_dir' == /run/corral-dnsmasq/default-* ]] && grep -qx '52:54:00:00:00:15,10.0.100.15,g5' '$hosts_dir/dhcp-hosts'"
check "  ... and it read them without an error" bash -c "! grep -i 'failed\|denied' '$state/networks/default/dnsmasq.log'" \
  || tail -5 "$state/networks/default/dnsmasq.log"
guest 5 52:54:00:00:00:15 corral0
check "  ... a new guest gets the new reservation 10.0.100.15 by DHCP" test "$(cat "$state/lease-5" 2>/dev/null)" = 10.0.100.15 \
  || cat "$state/udhcpc-5.log"
# dnsmasq answers for the name once it has handled the lease (a moment after the client has it).
resolves_g5() {
  resolved=$(gx 1 busybox nslookup g5 10.0.100.1 2>/dev/null | awk '/^Address/ {a=$NF} END {print a}')
  [ "$resolved" = 10.0.100.15 ]
}
# Up to 30 s: under load (2 CPUs, other tests' guests beside it) a busybox nslookup attempt alone
# can take seconds.
wait_until 30 resolves_g5
check "  ... whose name resolves ($resolved)" test "$resolved" = 10.0.100.15 ||
  { gx 1 busybox nslookup g5 10.0.100.1; tail -n 8 "$state/networks/default/dnsmasq.log"; }
api GET /api/v1/networks/default/leases
check "  ... and the earlier leases are still there" \
  test "$(jqb '[.[] | .mac + "=" + .ipv4] | join(" ")')" = "52:54:00:00:00:11=10.0.100.11 52:54:00:00:00:12=10.0.100.12 52:54:00:00:00:15=10.0.100.15"
api PATCH /api/v1/networks/default '{"dns_forwarders": ["192.0.2.2"]}'
check "  ... a change of the network's own settings (its DNS forwarders) is 200" test "$code" = 200 || echo "$body"
api GET /api/v1/networks/default
pid_after=$(jqb .status.dnsmasq.pid)
check "  ... and restarts dnsmasq: from none to some forwarders changes its configuration (pid $pid_before -> $pid_after)" \
  test "$pid_after" != "$pid_before" -a "$pid_after" != 0 -a "$pid_after" != null
api PATCH /api/v1/networks/default '{"dns_forwarders": ["192.0.2.3"]}'
check "  ... another forwarder is 200" test "$code" = 200 || echo "$body"
api GET /api/v1/networks/default
check "  ... and only reloads it (pid $pid_after -> $(jqb .status.dnsmasq.pid))" test "$(jqb .status.dnsmasq.pid)" = "$pid_after"
check "  ... which uses the new forwarder" grep -q "using nameserver 192.0.2.3#53" "$state/networks/default/dnsmasq.log"

echo "== an isolated network"
api POST /api/v1/networks '{"name": "iso", "kind": "isolated", "subnet4": "10.0.130.0/24",
  "reservations": [{"mac": "52:54:00:00:00:13", "ipv4": "10.0.130.13", "hostname": "g3"}]}'
check "POST /networks (isolated) is 201" test "$code" = 201 || echo "$body"
iso_bridge=$(jqb .bridge)
guest 3 52:54:00:00:00:13 "$iso_bridge"
guest 4 52:54:00:00:00:14 "$iso_bridge"
check "its guest gets its reserved address 10.0.130.13" test "$(cat "$state/lease-3" 2>/dev/null)" = 10.0.130.13 \
  || cat "$state/udhcpc-3.log"
iso_ip=$(cat "$state/lease-4" 2>/dev/null)
check "another one a lease from the dynamic range ($iso_ip)" bash -c "[[ '$iso_ip' == 10.0.130.1[2-9][0-9] || '$iso_ip' == 10.0.130.2[0-5][0-9] ]]"
resolved=$(gx 4 busybox nslookup g3 10.0.130.1 2>/dev/null | awk '/^Address/ {a=$NF} END {print a}')
check "  ... which asks the network's DNS for g3 ($resolved)" test "$resolved" = 10.0.130.13
check "  ... and pings it (VMs on one isolated network reach each other)" gx 4 busybox ping -c 1 -W 2 10.0.130.13
check "  ... got no default route from DHCP" bash -c "! ip netns exec crl-g3-$$ ip route | grep -q default"
gx 3 ip route add default via 10.0.130.1
check "  ... and cannot reach the uplink even with one" bash -c "! ip netns exec crl-g3-$$ busybox ping -c 1 -W 2 192.0.2.2 >/dev/null"
check "  ... nor the default network's guests" bash -c "! ip netns exec crl-g3-$$ busybox ping -c 1 -W 2 10.0.100.11 >/dev/null"

echo "== dnsmasq killed is started again; leases survive"
api GET /api/v1/networks/default
old_pid=$(jqb .status.dnsmasq.pid)
kill -9 "$old_pid"
new_pid=""
for _ in $(seq 50); do
  api GET /api/v1/networks/default
  new_pid=$(jqb .status.dnsmasq.pid)
  [ "$new_pid" != "$old_pid" ] && [ "$new_pid" != 0 ] && [ "$new_pid" != null ] && break
  sleep 0.2
done
check "a new dnsmasq runs (pid $old_pid -> $new_pid), restarts counted" \
  test "$new_pid" != "$old_pid" -a "$(jqb .status.dnsmasq.restarts)" -ge 1
api GET /api/v1/networks/default/leases
check "  ... the leases are still there" test "$(jqb length)" = 3
resolved=$(gx 2 busybox nslookup g1 10.0.100.1 2>/dev/null | awk '/^Address/ {a=$NF} END {print a}')
check "  ... and it answers DNS (g1 -> $resolved)" test "$resolved" = 10.0.100.11

echo "== corrald restarted: dnsmasq adopted, the ruleset byte-identical"
ruleset() { inh nft list ruleset; }
ruleset >"$state/ruleset.before"
api GET /api/v1/networks/iso
iso_pid=$(jqb .status.dnsmasq.pid)
corrald_stop
check "corrald stopped: dnsmasq keeps running" kill -0 "$new_pid"
check "  ... and so does the guests' traffic" gx 1 busybox ping -c 1 -W 2 10.0.100.12
# As if iso's dnsmasq had been (re)started just before corrald stopped: it writes its pid file
# only once it serves. The next corrald finds it by its command line all the same.
rm -f "$state/networks/iso/dnsmasq.pid"
corrald_start || exit 1
api GET /api/v1/networks/default
check "the new corrald adopted dnsmasq (pid $new_pid)" test "$(jqb .status.dnsmasq.pid)" = "$new_pid"
api GET /api/v1/networks/iso
check "  ... and iso's, which had no pid file (pid $iso_pid)" test "$(jqb .status.dnsmasq.pid)" = "$iso_pid"
ruleset >"$state/ruleset.after"
check "  ... and the nftables ruleset is byte-identical" cmp -s "$state/ruleset.before" "$state/ruleset.after" \
  || diff "$state/ruleset.before" "$state/ruleset.after" | head -20
check "  ... guests still reach the uplink" gx 2 busybox ping -c 1 -W 2 192.0.2.2

echo "== delete"
api DELETE /api/v1/networks/iso
check "DELETE /networks/iso is 200" test "$code" = 200
check "  ... its bridge is gone" bash -c "! ip netns exec $hostns ip link show $iso_bridge >/dev/null 2>&1"
check "  ... and its folder" test ! -e "$state/networks/iso"
# (Its parent is init now, which may not have reaped it yet: a zombie has no command line.)
check "  ... and its dnsmasq (pid $iso_pid, adopted without a pid file)" \
  bash -c "! grep -qF '$state/networks/iso/' /proc/$iso_pid/cmdline 2>/dev/null"
check "  ... and its host lists" bash -c "! ls -d /run/corral-dnsmasq/iso-* 2>/dev/null | grep -q ."
api GET /api/v1/networks
check "GET /networks lists default only" test "$(jqb '[.[].name] | join(",")')" = default

echo "passed: $passed, failed: $failed"
[ "$failed" = 0 ]
