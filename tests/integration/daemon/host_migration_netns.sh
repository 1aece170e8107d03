#!/usr/bin/env bash
# tests/integration/daemon/host_migration_netns.sh: live migration between two corralds as two
# hosts: each in a network namespace of its own (A 10.88.0.1, B 10.88.0.2), with its own state
# folder, its TLS API on its own address; a third namespace is the client (10.88.0.100). The
# three are joined at L2 by a "switch" bridge (the namespace the script re-runs itself in, so
# nothing reaches the host's network). In each host a bridge lan0 (same name on both, as a
# Proxmox vmbr0) has the uplink to the switch, and a corral network "lan" of the bridged kind is
# on it: the guest's NIC sits on the same segment on either host, its address typed on its
# console (10.88.0.50). A TCP connection from the client to the guest (an echo server in the
# guest, a numbered line every 100 ms: tests/lib/echo_stream.py) flows all along.
# Checks: on a shared pool mover goes A->B, B->A, A->B over the namespaces' addresses; after
# each move the same connection goes on, every line echoed, in order, none lost; the longest
# pause in the echoes is printed per move (no threshold). The VM keeps its generation ID (the
# destination's QEMU gives the guest the same GUID) and its kept balloon target. Then mover B->A
# with A's API cut off once the stream flows (finish gets no answer): it runs on at B, and A
# discards its half. Then a VM on a local pool (each corrald its own folder; the disk copied) moves A->B with its own connection.
# Needs root, unshare, ip, nft, python3, qemu-system-x86_64. Exit status: 0 all passed, 1 a check
# failed, 77 skipped. Ends with "N passed, N failed".
set -uo pipefail
script=$(readlink -f "${BASH_SOURCE[0]}")
repo=$(cd "$(dirname "$script")/../../.." && pwd)
build_dir="${CORRAL_BUILD_DIR:-$repo/build}"
corral="$build_dir/src/cli/corral"

# shellcheck source=../../lib/netns.sh
. "$repo/tests/lib/netns.sh"
if ! in_own_netns "$script"; then
  for tool in unshare ip nft python3 jq curl qemu-system-x86_64; do
    command -v "$tool" >/dev/null || { echo "SKIP: $tool is not installed"; exit 77; }
  done
  kernel="" initrd=""
  eval "$("$repo/tools/guest-image" 2>/dev/null | grep -E '^(kernel|initrd)=')"
  [ -n "$kernel" ] && [ -n "$initrd" ] || { echo "SKIP: tools/guest-image gave no kernel and initrd"; exit 77; }
  export kernel initrd
fi
enter_own_netns "$script" "$@"
# ---- inside namespaces of our own: this one is the switch
[ -c /dev/net/tun ] || { echo "SKIP: no /dev/net/tun"; exit 77; }
mkdir -p /run/netns && mount -t tmpfs tmpfs /run/netns || { echo "FAIL: cannot mount /run/netns"; exit 1; }

. "$repo/tests/lib/corrald.sh"
. "$repo/tests/lib/two_corralds.sh"
real_corrald=$corrald_bin
declare -A ns address
ns[A]="crl-a-$$" ns[B]="crl-b-$$" ns[C]="crl-c-$$"
address[A]=10.88.0.1 address[B]=10.88.0.2 address[C]=10.88.0.100
streams=()
scratch=$(mktemp -d "${TMPDIR:-/tmp}/corral-scratch.XXXXXX")
shared="$scratch/shared"
cleanup() {
  local side pid_file
  for pid_file in "${streams[@]}"; do [ -s "$pid_file" ] && kill "$(cat "$pid_file")" 2>/dev/null; done
  two_corralds_cleanup
  for side in A B C; do ip netns del "${ns[$side]}" 2>/dev/null; done
  rm -rf -- "$scratch"
}
trap cleanup EXIT
in_ns() { local side=$1; shift; ip netns exec "${ns[$side]}" "$@"; }

echo "== the segment: switch bridge sw0; A and B each a bridge lan0 with an uplink to it; a client"
ip link add sw0 type bridge && ip link set sw0 up
for side in A B C; do
  ip netns add "${ns[$side]}" || { echo "SKIP: cannot make network namespaces"; exit 77; }
  in_ns "$side" ip link set lo up
  ip link add "sw-$side" type veth peer name up0 netns "${ns[$side]}"
  ip link set "sw-$side" master sw0 up
  if [ "$side" = C ]; then
    in_ns C ip addr add "${address[C]}/24" dev up0
  else
    in_ns "$side" ip link add lan0 type bridge
    in_ns "$side" ip link set up0 master lan0
    in_ns "$side" ip addr add "${address[$side]}/24" dev lan0
    in_ns "$side" ip link set lan0 up
  fi
  in_ns "$side" ip link set up0 up
  # corrald there: its own namespace (its bridges, taps and tables are that host's).
  printf '#!/bin/sh\nexec ip netns exec %s %s "$@"\n' "${ns[$side]}" "$real_corrald" >"$scratch/corrald-$side"
  chmod +x "$scratch/corrald-$side"
done
reaches() { in_ns C ping -c 1 -W 5 "${address[$1]}" >/dev/null; }
check "the client reaches A and B across the switch" eval 'reaches A && reaches B'

mkdir -p "$shared" "$scratch/root"
truncate -s 1M "$scratch/root/root.raw"   # an image needs a root volume; this guest never mounts it
image_json() {   # image_json NAME POOL
  jq -n --arg n "$1" --arg p "$2" --arg k "$kernel" --arg i "$initrd" --arg r "$scratch/root/root.raw" \
    '{name: $n, pool: $p, kernel: $k, initrd: $i, root: $r, cmdline: "console=ttyS0 panic=-1"}'
}
declare -A dest_url dest_fingerprint dest_token
start_host() {   # start_host A|B: corrald in that namespace, its TLS API on the namespace's address
  local side=$1
  corrald_bin="$scratch/corrald-$side" start_listening "$side" "${address[$side]}"
  dest_url[$side]="https://$listen"
  dest_fingerprint[$side]=$fingerprint
  api POST /api/v1/tokens '{"name":"migrations"}'
  dest_token[$side]=$(jqb .token)
  api POST /api/v1/networks '{"name":"lan","kind":"bridged","bridge":"lan0"}'
  check "$side: corrald in ${ns[$side]}, TLS on $listen; network lan bridged on lan0" test "$code" = 201
  api POST /api/v1/pools "$(jq -n --arg p "$shared" '{name: "shared", path: $p}')"
  mkdir -p "$state/local"
  api POST /api/v1/pools "$(jq -n --arg p "$state/local" '{name: "local", path: $p}')"
  check "  ... pool shared on the shared folder, pool local on its own" test "$code" = 201
  # The image by the same name on both hosts (the migration brings the running guest: its kernel
  # boots nothing at the destination); A's root volume, which mover's disk is a clone of, is on
  # the shared pool, B's in its default pool.
  api POST /api/v1/images "$(image_json tiny "$([ "$side" = A ] && echo shared || echo default)")"
  wait_task "$(jqb .task)" 60
  check "  ... image tiny" test "$(jqb .status)" = succeeded
  api POST /api/v1/images "$(image_json tinyl local)"
  wait_task "$(jqb .task)" 60
  check "  ... image tinyl (pool local)" test "$(jqb .status)" = succeeded
}
start_host B
start_host A

# mover on the shared pool, lmover on the local one; each NIC on network lan.
api POST /api/v1/vms '{"name":"mover","image":"tiny","memory_mib":128,"cmdline":"corral.then=shell","nics":[{"network":"lan"}]}'
check "A: mover defined on pool shared, its NIC on lan" test "$code" = 201 || echo "  $body"
api POST /api/v1/vms '{"name":"lmover","image":"tinyl","memory_mib":128,"cmdline":"corral.then=shell","nics":[{"network":"lan"}]}'
check "A: lmover defined on pool local, its NIC on lan" test "$code" = 201
lmover_disk="$state/local/$(jqb '.disks[0].volume').qcow2"
"$corral" vm start mover >/dev/null 2>&1 &
"$corral" vm start lmover >/dev/null 2>&1
wait $!
declare -A guest_ip=([mover]=10.88.0.50 [lmover]=10.88.0.51)
for vm in mover lmover; do
  check "A: $vm boots to its shell" wait_console "$vm" 'corral:~#' 120
  # Its address, and an echo server for one connection (busybox).
  type_into "$vm" "ip addr add ${guest_ip[$vm]}/24 dev eth0 && ip link set eth0 up && { nc -l -p 5000 -e /bin/cat & } && echo NET-\$((6*7))
"
  check "  ... $vm has ${guest_ip[$vm]} on eth0 and listens on 5000" wait_console "$vm" 'NET-42' 30
done

declare -A stream_log
start_stream() {   # start_stream VM: the client's connection to VM's echo server
  stream_log[$1]="$scratch/stream-$1.log"
  : >"${stream_log[$1]}"
  # (ip netns exec may fork: the pid to end is python's own, written before it starts.)
  in_ns C sh -c 'echo $$ >"$1.pid"; exec python3 "$2" "$3" 5000 "$1"' _ \
    "${stream_log[$1]}" "$repo/tests/lib/echo_stream.py" "${guest_ip[$1]}" &
  streams+=("${stream_log[$1]}.pid")
}
echoed() { awk 'END { print NR }' "${stream_log[$1]}"; }   # lines echoed so far (or the error at the end)
# The log holds only consecutive numbers from 0, each with its time of receipt: no line lost,
# reordered, or a connection that ended (echo_stream.py logs that and stops).
stream_whole() {
  awk '!/^[0-9]+ [0-9.]+$/ || $1 != NR - 1 { print "  stream: line " NR ": " $0; bad = 1 } END { exit bad }' \
    "${stream_log[$1]}"
}
echoes_beyond() { [ "$(echoed "$1")" -gt "$2" ] && stream_whole "$1" >/dev/null; }
longest_gap() {   # longest_gap VM FROM: seconds between two echoes, the later one after FROM
  awk -v from="$2" '$2 >= from && NR > 1 && $2 - prev > gap { gap = $2 - prev } { prev = $2 } END { printf "%.3f", gap }' \
    "${stream_log[$1]}"
}
for vm in mover lmover; do
  start_stream "$vm"
  check "the client's connection to $vm echoes its lines" wait_until 60 echoes_beyond "$vm" 10
done

echo "== mover (shared pool) A->B, B->A, A->B, the connection open all along"
api PUT /api/v1/vms/mover/balloon '{"target_mib":96}'
check "A: mover's balloon target 96 MiB, kept with it" test "$code,$(jqb .kept)" = 200,true
api GET /api/v1/vms/mover
generation=$(jqb .generation_id)
check "A: mover has a generation ID ($generation)" test -n "$generation" -a "$generation" != null
qemu_guid() {   # the GUID mover's QEMU gives the guest (its vmgenid device)
  api GET /api/v1/vms/mover
  tr '\0' ' ' <"/proc/$(jqb .pid)/cmdline" | grep -o 'vmgenid,guid=[0-9a-f-]*' | cut -d= -f2
}
move() {   # move VM FROM TO
  local vm=$1 from=$2 to=$3 out rc started before
  on "$from"
  before=$(echoed "$vm")
  started=$(date +%s.%N)
  out=$(CORRAL_DEST_TOKEN=${dest_token[$to]} "$corral" vm migrate "$vm" --to "${dest_url[$to]}" \
    --dest-fingerprint "${dest_fingerprint[$to]}" 2>&1)
  rc=$?
  check "$vm $from->$to (to ${dest_url[$to]}): exit 0" test "$rc" = 0 || echo "  $out"
  echo "  $out"
  on "$to"
  api GET "/api/v1/vms/$vm"
  check "  ... $to runs $vm" test "$(jqb .state)" = running
  # Lines sent during the move come back once the guest runs on, on the same connection.
  check "  ... the same connection goes on: every line echoed, in order" \
    wait_until 60 echoes_beyond "$vm" "$((before + 20))"
  stream_whole "$vm"
  echo "  longest pause in $vm's echoes around $from->$to: $(longest_gap "$vm" "$started") s"
}
move mover A B
on B
api GET /api/v1/vms/mover
check "  ... B keeps mover's generation ID" test "$(jqb .generation_id)" = "$generation"
check "  ... and its QEMU gives the guest that GUID" test "$(qemu_guid)" = "$generation"
check "  ... and its kept balloon target (96 MiB)" test "$(jqb .balloon_target_mib)" = 96
api GET /api/v1/vms/mover/balloon
check "  ... which the guest's balloon has" test "$(jqb .target_mib),$(jqb .kept)" = 96,true
move mover B A
on A
api GET /api/v1/vms/mover
check "  ... back at A with the same generation ID and balloon target" \
  test "$(jqb .generation_id),$(jqb .balloon_target_mib)" = "$generation,96"
move mover A B

echo "== mover B->A cut off at the switch: A's API refuses new connections once the stream flows"
# A partition after the stream opened (a WebSocket on A's API port, already established): the
# stream goes on, but finish, and every question after it, meets a refused connection. B cannot
# tell whether A runs the guest; mover's disk is on the shared pool, so QEMU's disk locks decide:
# A's QEMU never got its `cont` (no finish came), so B's `cont` takes the disk and mover runs on
# at B. A discards its half once no finish comes within 30 s of the stream's end.
on B
before=$(echoed mover)
partition_out="$scratch/partition.out"
CORRAL_DEST_TOKEN=${dest_token[A]} "$corral" vm migrate mover --to "${dest_url[A]}" \
  --dest-fingerprint "${dest_fingerprint[A]}" --bandwidth-mib 1 >"$partition_out" 2>&1 &
migrate_pid=$!
streaming() {   # B's migration task has sent a MiB (at 1 MiB/s the rest takes seconds more)
  api GET /api/v1/tasks
  jq -e '.[] | select(.kind == "vm.migrate" and .status == "running") | .message | test("[1-9][0-9]* MiB sent")' \
    <<<"$body" >/dev/null
}
check "B: the stream to A flows" wait_until 60 streaming
in_ns A nft -f - <<EOF
table inet partition {
  chain input { type filter hook input priority -10; tcp dport ${dest_url[A]##*:} ct state new reject with tcp reset; }
}
EOF
check "  ... and A's API now refuses new connections" test $? = 0
wait "$migrate_pid"
rc=$?
out=$(cat "$partition_out")
check "the migration failed: exit 4" test "$rc" = 4
echo "  $out"
check "  ... B could not tell whether A runs mover" says "could not be told"
check "  ... so QEMU's disk locks decided" says "QEMU's disk locks decided"
api GET /api/v1/vms/mover
check "  ... mover runs on at B" test "$(jqb .state)" = running
check "  ... the same connection goes on at B" wait_until 60 echoes_beyond mover "$((before + 20))"
on A
check "A discarded its half (no finish came): no record of mover" \
  wait_until 90 eval 'api GET /api/v1/vms/mover; [ "$code" = 404 ]'
in_ns A nft delete table inet partition

echo "== lmover (local pool: its disk copied) A->B, its connection open all along"
move lmover A B
on A
api GET /api/v1/vms/lmover
check "  ... A no longer lists lmover" test "$code" = 404
check "  ... and its volume in A's pool local is gone" test ! -e "$lmover_disk"
for vm in mover lmover; do
  check "$vm's connection never broke (all $(echoed "$vm") lines echoed in order)" stream_whole "$vm"
done

on B
[ "$failed" -gt 0 ] && { corrald_failure_report mover lmover; on A; corrald_failure_report; }
check_summary
