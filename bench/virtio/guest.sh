#!/bin/sh
# bench/virtio/guest.sh: the guest side of bench/virtio/run.sh (busybox sh in the test
# initramfs). run.sh ships it as /bench/guest.sh, with /bench/guest_io and /bench/conf, in an
# archive appended to the initrd, and boots with corral.run='sh /bench/guest.sh PREFIX WHAT'.
#   PREFIX  the tap's /24 without the last byte: the host is PREFIX.1, this guest PREFIX.2
#   WHAT    all (disk then network) or net (network only)
# Prints one "BENCH NAME VALUE" line per figure, "BENCH-ERROR: WHAT" on a failure, and
# "BENCH-DONE" at the end. Every step is bounded with busybox timeout.
# shellcheck disable=SC1091  # /bench/conf is written by run.sh
. /bench/conf   # DISK_MB RAND_SECONDS RAND_QDS PING_COUNT TCP_MB UDP_SIZE UDP_SECONDS STEP_LIMIT

prefix=$1 what=$2
io=/bench/guest_io
dev=/dev/vda
lim="timeout $STEP_LIMIT"

elapsed_rate() {   # elapsed_rate START END MIB: MiB/s
  awk -v s="$1" -v e="$2" -v m="$3" 'BEGIN { if (e > s) printf "%.1f", m / (e - s); else print "nan" }'
}

if [ "$what" = all ]; then
  i=0
  while [ ! -b $dev ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
  if [ -b $dev ]; then
    echo "BENCH disk_bytes $(awk '{print $1 * 512}' /sys/block/vda/size 2>/dev/null)"
    # Sequential: 1 MiB O_DIRECT requests (no fsync), write first so that the reads read data.
    s=$($io now)
    if $lim dd if=/dev/zero of=$dev bs=1M count="$DISK_MB" oflag=direct 2>/dev/null; then
      e=$($io now); echo "BENCH seq_write_MiBps $(elapsed_rate "$s" "$e" "$DISK_MB")"
    else
      echo "BENCH-ERROR: sequential write"
    fi
    s=$($io now)
    if $lim dd if=$dev of=/dev/null bs=1M count="$DISK_MB" iflag=direct 2>/dev/null; then
      e=$($io now); echo "BENCH seq_read_MiBps $(elapsed_rate "$s" "$e" "$DISK_MB")"
    else
      echo "BENCH-ERROR: sequential read"
    fi
    for qd in $RAND_QDS; do
      out=$($lim $io randread $dev "$RAND_SECONDS" "$qd")
      iops=$(echo "$out" | sed -n 's/.* s, \([0-9]*\) IOPS.*/\1/p')
      if [ -n "$iops" ]; then echo "BENCH randread_qd${qd}_IOPS $iops"; else echo "BENCH-ERROR: randread qd $qd: $out"; fi
    done
  else
    echo "BENCH-ERROR: no $dev"
  fi
fi

ifc=''
for n in /sys/class/net/*; do [ "${n##*/}" = lo ] || { ifc=${n##*/}; break; }; done
if [ -n "$ifc" ] && ip link set "$ifc" up && ip addr add "$prefix.2/24" dev "$ifc"; then
  # One ping first: ARP and the first interrupt are not part of the round trip.
  $lim ping -c 1 -W 20 "$prefix.1" >/dev/null 2>&1
  out=$($lim ping -c "$PING_COUNT" -i 0.2 -W 5 "$prefix.1" 2>&1 | tail -n 1)
  avg=$(echo "$out" | sed -n 's|.*min/avg/max = [0-9.]*/\([0-9.]*\)/.*|\1|p')
  if [ -n "$avg" ]; then echo "BENCH ping_avg_ms $avg"; else echo "BENCH-ERROR: ping: $out"; fi
  # TCP, timed by the host: guest to host, then host to guest. The guest's retransmitted
  # segments during the send are a diagnostic (a frame lost on the way, in either direction).
  retrans() { awk '$1 == "Tcp:" && $2 ~ /^[0-9]+$/ { print $13 }' /proc/net/snmp; }
  r0=$(retrans)
  $lim $io tcpsend "$prefix.1" 5001 "$TCP_MB" || echo "BENCH-ERROR: tcpsend"
  echo "BENCH tcp_g2h_retrans_segs $(( $(retrans) - r0 ))"
  echo "BENCH virtio_net_features $(cat "/sys/class/net/$ifc/device/features" 2>/dev/null)"
  out=$($lim $io tcprecv "$prefix.1" 5002)
  echo "BENCH tcp_received_bytes $(echo "$out" | sed -n 's/^tcprecv: \([0-9]*\) bytes/\1/p')"
  # Small packets: UDP_SIZE-byte datagrams for UDP_SECONDS each way, counted by the receiver
  # (the host's udpsink, then our udprecv against the host's udpserve).
  $lim $io udpsend "$prefix.1" 5003 "$UDP_SIZE" "$UDP_SECONDS" >/dev/null || echo "BENCH-ERROR: udpsend"
  out=$($lim $io udprecv "$prefix.1" 5004)
  pps=$(echo "$out" | sed -n 's/.* s, \([0-9]*\) pps$/\1/p')
  if [ -n "$pps" ]; then echo "BENCH udp_h2g_pps $pps"; else echo "BENCH-ERROR: udprecv: $out"; fi
else
  echo "BENCH-ERROR: no network interface to set up (found '$ifc')"
fi
echo "BENCH-DONE"
