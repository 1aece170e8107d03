#!/usr/bin/env bash
# Security groups for 1,000 NICs: time to apply them, and forwarding throughput through a bridge
# with them installed, corrald's layout (sets and verdict maps: a lookup per packet whatever the
# number of NICs) against a chain-per-port layout of the same rules (libvirt nwfilter's shape: a
# list of per-port jumps walked for each packet). Prints both and their ratio.
# Runs in network namespaces of its own (root); the host's ruleset is not touched.
# usage: bench/firewall/run.sh [--smoke] [N]       (N NICs, default 1000; --smoke: 50 NICs, 1 s runs)
set -euo pipefail
# The "host" is a namespace of our own: re-run this script inside one.
if [ -z "${CORRAL_BENCH_INNER:-}" ] && [ "$(id -u)" -eq 0 ]; then
  CORRAL_BENCH_INNER=1 exec unshare -n "$0" "$@"
fi
repo=$(cd "$(dirname "$0")/../.." && pwd)
build=${CORRAL_BUILD_DIR:-$repo/build}
tool=$build/tests/integration/net/firewall_bench
smoke=0
if [ "${1:-}" = "--smoke" ]; then smoke=1; shift; fi
count=${1:-$([ $smoke -eq 1 ] && echo 50 || echo 1000)}
seconds=$([ $smoke -eq 1 ] && echo 1 || echo 5)
[ "$(id -u)" -eq 0 ] || { echo "skip: needs root (network namespaces, nft)"; exit 77; }
for t in nft iperf3 ip python3; do command -v $t >/dev/null || { echo "skip: $t is not installed (tools/setup)"; exit 77; }; done
[ -x "$tool" ] || { echo "firewall_bench not found at $tool (ninja -C build firewall_bench)" >&2; exit 2; }

prefix=cfwb$$-
dir=$(mktemp -d /tmp/corral-fwbench-XXXXXX)
cleanup() {
  [ -n "${server:-}" ] && kill "$server" 2>/dev/null || true
  ip netns del ${prefix}a 2>/dev/null || true
  ip netns del ${prefix}b 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT

ip link set lo up
ip link add fwbr0 type bridge nf_call_iptables 1 nf_call_ip6tables 1
ip addr add 10.80.0.1/16 dev fwbr0 && ip link set fwbr0 up
for side in a b; do
  ip netns add $prefix$side
  tap=$([ $side = a ] && echo pa || echo zb)
  mac=$([ $side = a ] && echo 52:54:00:00:00:0a || echo 52:54:00:00:00:0b)
  addr=$([ $side = a ] && echo 10.80.200.2 || echo 10.80.200.3)
  ip link add $tap type veth peer name eth0 netns $prefix$side
  ip link set $tap master fwbr0 up
  ip netns exec $prefix$side sh -c "ip link set lo up; ip link set eth0 address $mac; ip addr add $addr/16 dev eth0; ip link set eth0 up"
done
ip netns exec ${prefix}b iperf3 -s -D -I "$dir/iperf3.pid" >/dev/null
sleep 0.5
server=$(cat "$dir/iperf3.pid")

"$tool" script sets "$count" > "$dir/sets.nft"
"$tool" script chains "$count" > "$dir/chains.nft"
# Rules (not sets, chains or set elements) in corrald's tables as installed.
rules() { nft -a list ruleset | grep ' # handle ' | grep -vcE '^\s*(table|chain|set|map) '; }

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
# Apply time: corrald's apply() (validate + render + nft -f, one transaction), median of 5;
# the chain-per-port script through the same `nft -f`, median of 5.
apply_sets=$("$tool" apply "$count" 5)
rules_sets=$(rules)
apply_chains=$(for i in 1 2 3 4 5; do
  s=$(date +%s%N); nft -f "$dir/chains.nft"; e=$(date +%s%N); echo $(( (e - s) / 1000 ))
done | median | awk '{ printf "%.1f", $1 / 1000 }')
rules_chains=$(rules)

tcp() { ip netns exec ${prefix}a iperf3 -c 10.80.200.3 -t "$seconds" -J | python3 -c 'import json,sys; print("%.0f" % (json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"] / 1e6))'; }
udp() { ip netns exec ${prefix}a iperf3 -c 10.80.200.3 -u -b 0 -l 64 -t "$seconds" -J | python3 -c 'import json,sys; e = json.load(sys.stdin)["end"]["sum"]; print("%.0f" % ((e["packets"] - e["lost_packets"]) / e["seconds"] / 1000))'; }
measure() {  # layout -> "tcp_mbit udp_kpps"
  case $1 in
    none) nft -f - <<<"table bridge corral {}
delete table bridge corral
table inet corral {}
delete table inet corral
table ip corral_nat {}
delete table ip corral_nat" ;;
    *) nft -f "$dir/$1.nft" ;;
  esac
  echo "$(tcp) $(udp)"
}
read -r tcp_none udp_none < <(measure none)
read -r tcp_sets udp_sets < <(measure sets)
read -r tcp_chains udp_chains < <(measure chains)

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }
echo "firewall, $count NICs with security groups (+2 for the measurement), $(nproc) CPUs, $(uname -r)"
printf "%-42s %14s %14s %8s\n" "figure" "sets/maps" "chain/port" "ratio"
printf "%-42s %14s %14s %8s\n" "rules installed" "$rules_sets" "$rules_chains" "$(ratio "$rules_sets" "$rules_chains")"
printf "%-42s %14s %14s %8s\n" "apply all groups, ms (lower is better)" "$apply_sets" "$apply_chains" "$(ratio "$apply_chains" "$apply_sets")"
printf "%-42s %14s %14s %8s\n" "TCP through the bridge, Mbit/s" "$tcp_sets" "$tcp_chains" "$(ratio "$tcp_sets" "$tcp_chains")"
printf "%-42s %14s %14s %8s\n" "UDP 64-byte datagrams delivered, kpps" "$udp_sets" "$udp_chains" "$(ratio "$udp_sets" "$udp_chains")"
printf "%-42s %14s\n" "no firewall: TCP Mbit/s / UDP kpps" "$tcp_none / $udp_none"
echo "(ratios: sets/maps over chain-per-port, above 1 = sets/maps better; apply: chain time over sets time)"
