# shellcheck shell=bash
# tests/lib/two_corralds.sh: two real corralds in one test, sides A and B, each with a state folder
# of its own as two hosts have (the host migration tests). Sourced after tests/lib/corrald.sh,
# whose $state, $sock and $corrald_pid (and so api, tls_api, wait_console, corrald_stop...) are
# those of the side chosen last. Needs $corral (the CLI). Defines:
#   on A|B                        switches to that side (its state folder made when first used;
#                                 A's is the one corrald.sh made); exports CORRAL_SOCKET for it
#   start_side SIDE [ARGS...]     on SIDE, starts its corrald on the emulated engine with ARGS;
#                                 exits 1 when it does not come up
#   start_listening SIDE ADDRESS [ARGS...]  the same with its TLS API on ADDRESS (a port of its
#                                 own); sets $listen and $fingerprint (tls_listen), exits 1 without
#   two_corralds_cleanup          for each side: its corrald stopped, every QEMU (and dnsmasq) it
#                                 started killed, whatever state it is in, its state folder removed
#   type_into VM TEXT             types TEXT on VM's console, on the side chosen
#   says TEXT                     TEXT is in $out, or prints what $out was and fails
declare -A saved_state saved_pid
saved_state[A]=$state
current=""

on() {   # on A|B
  if [ -n "$current" ]; then saved_state[$current]=$state; saved_pid[$current]=$corrald_pid; fi
  current=$1
  state=${saved_state[$1]:-$(mktemp -d "${TMPDIR:-/tmp}/corrald-test.XXXXXX")}
  corrald_pid=${saved_pid[$1]:-}
  sock="$state/corrald.sock"
  export CORRAL_SOCKET="$sock"
}

start_side() {   # start_side SIDE [ARGS...]
  on "$1"; shift
  corrald_start --default-engine emulated "$@" || exit 1
}

start_listening() {   # start_listening SIDE ADDRESS [ARGS...]
  local side=$1 address=$2; shift 2
  start_side "$side" --listen "$address:0" "$@"
  tls_listen || { echo "no TLS listener on $side"; exit 1; }
}

two_corralds_cleanup() {
  local side pid
  for side in A B; do
    on "$side"
    corrald_stop
    # By its run folder: a QEMU corrald no longer lists (an incoming migration it dropped) too.
    while read -r _ _ pid; do kill -KILL "$pid" 2>/dev/null; done < <(corrald_processes)
    rm -rf -- "$state"
  done
}

type_into() { printf '%s' "$2" | timeout 10 "$corral" vm console "$1" >/dev/null 2>&1; }
says() { grep -qF -- "$1" <<<"$out" || { echo "  expected '$1' in: $out"; false; }; }
