# shellcheck shell=bash
# tests/lib/netns.sh: run a test script in network and mount namespaces of its own, so that the
# bridges, taps, dnsmasq and nftables tables it (or the corrald it starts) makes never reach the
# host. Sourced; defines:
#   in_own_netns SCRIPT       status 0 when SCRIPT already runs in its own namespaces (after the
#                             re-exec below); for work that must happen outside first (building
#                             the guest image needs the host's network)
#   enter_own_netns SCRIPT [ARGS...]
#       outside: needs root and `unshare --net --mount` (else exits 77 with the reason), then
#       re-executes SCRIPT ARGS there (never returns); the environment goes along.
#       inside: mounts a sysfs of the namespace on /sys (corrald reads /sys/class/net) and brings
#       lo up; then returns.
#   netns_corrald_host        makes namespace $hostns (crl-h-PID) for corrald, defines inh CMD...
#                             (runs CMD there) and points $corrald_bin at a wrapper that runs
#                             $real_corrald there (source corrald.sh first: it sets $state); the
#                             caller deletes $hostns in its cleanup
#   netns_uplink              makes namespace $upns (crl-u-PID), the outside world, defines inu,
#                             and joins them with a veth: up0 in $hostns, eth0 in $upns, both up,
#                             no addresses yet
# The marker variable holds the script's path, so a test that a netns test starts still gets a
# namespace of its own.

in_own_netns() { [ "${CORRAL_OWN_NETNS:-}" = "$1" ]; }

enter_own_netns() {   # enter_own_netns SCRIPT [ARGS...]
  local script=$1; shift
  if ! in_own_netns "$script"; then
    [ "$(id -u)" = 0 ] || { echo "SKIP: needs root (a network namespace of its own)"; exit 77; }
    unshare --net --mount true 2>/dev/null || { echo "SKIP: unshare --net --mount is not permitted here"; exit 77; }
    CORRAL_OWN_NETNS=$script exec unshare --net --mount -- "$script" "$@"
  fi
  mount --make-rprivate / && mount -t sysfs sysfs /sys || { echo "FAIL: cannot mount a sysfs for the namespace"; exit 1; }
  ip link set lo up
}

netns_corrald_host() {
  hostns="crl-h-$$"
  ip netns add "$hostns" || { echo "SKIP: cannot make network namespaces"; exit 77; }
  inh() { ip netns exec "$hostns" "$@"; }
  inh ip link set lo up
  corrald_bin="$state/corrald-in-netns"
  printf '#!/bin/sh\nexec ip netns exec %s %s "$@"\n' "$hostns" "$real_corrald" >"$corrald_bin"
  chmod +x "$corrald_bin"
  # corrald there is on a host of its own: it makes its default network (corrald.sh).
  export CORRALD_DEFAULT_NETWORK=1
}

netns_uplink() {
  upns="crl-u-$$"
  ip netns add "$upns" || { echo "SKIP: cannot make network namespaces"; exit 77; }
  inu() { ip netns exec "$upns" "$@"; }
  inu ip link set lo up
  ip link add "up0-$$" type veth peer name "up1-$$"
  ip link set "up0-$$" netns "$hostns"
  ip link set "up1-$$" netns "$upns"
  inh ip link set "up0-$$" name up0
  inu ip link set "up1-$$" name eth0
  inh ip link set up0 up
  inu ip link set eth0 up
}
