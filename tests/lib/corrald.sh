# tests/lib/corrald.sh: start a real corrald on a temporary state folder and talk to its API with
# curl. Sourced by the daemon tests; needs $build_dir, or $corrald_bin (the corrald to run). Sets
# $state, $sock; defines:
#   corrald_start [ARGS...]   starts corrald (pid in $corrald_pid), waits for its socket
#   corrald_stop              SIGTERM, waits for it to end (VMs keep running)
#   corrald_networks_cleanup  ends the dnsmasq processes of the networks it made (after corrald_stop)
#                             and removes their host lists (corrald_hosts_lists_cleanup)
#   corrald_processes         "vm NAME PID" / "network NAME PID" for each QEMU (or its corral-shim)
#                             and dnsmasq this test's corrald started (found by $state in their
#                             command line or working folder)
#   corrald_strays VMS NETS   the corrald_processes lines of VMs/networks not named in the
#                             space-separated lists (what corrald no longer tracks)
#   corrald_failure_report [VM...]  when a check failed: the tails of corrald's log and of each
#                             VM's console (while corrald runs), so a CI log says why
#   api METHOD PATH [JSON]    sets $code (HTTP status) and $body
#   jqb FILTER                jq -r FILTER on $body
#   check NAME CMD...         PASS/FAIL line, counts in $passed/$failed (tests/lib/check.sh)
#   wait_task ID [SECONDS]    long-polls the task until it ends; sets $body to the task
#   wait_state VM STATE SECS  polls until the VM is in STATE
#   import_guest_image NAME [CMDLINE]  imports the project's guest (guest.sh's $kernel, $initrd,
#                             $rootfs) as image NAME, waits for its task; a check
#   console_since_start VM, console_has VM TEXT, wait_console VM TEXT SECS   the VM's console
#   wait_until SECONDS CMD... runs CMD until it succeeds
#   png_size FILE             "WIDTHxHEIGHT" of a PNG, or "not a PNG"
#   tap_of VM                 the host-side tap name of the VM's first NIC
# For corrald --listen (TLS + bearer tokens):
#   tls_listen                sets $listen (HOST:PORT, the port really bound) and $fingerprint from GET /host
#   tls_api TOKEN METHOD PATH [JSON]   like api, over https://$listen trusting $state/tls/server.crt;
#                             TOKEN "" sends no Authorization; response headers in $state/headers
corrald_bin="${corrald_bin:-$build_dir/src/daemon/corrald}"
state=$(mktemp -d "${TMPDIR:-/tmp}/corrald-test.XXXXXX")
sock="$state/corrald.sock"
corrald_pid=""
# shellcheck source=check.sh
. "$(dirname "${BASH_SOURCE[0]}")/check.sh"

# corrald makes a default NAT network (a bridge, dnsmasq, nftables tables) on its first start. The
# tests share the host's network namespace, where it must not: they pass --no-default-network,
# unless CORRALD_DEFAULT_NETWORK=1 (a test that runs corrald in a namespace of its own).
corrald_start() {
  local network_args=(--no-default-network)
  [ "${CORRALD_DEFAULT_NETWORK:-0}" = 1 ] && network_args=()
  "$corrald_bin" --state-dir "$state" "${network_args[@]}" "$@" >>"$state/corrald.log" 2>&1 &
  corrald_pid=$!
  local i
  for ((i = 0; i < 100; i++)); do
    [ -S "$sock" ] && curl -s --unix-socket "$sock" -o /dev/null http://corral/api/v1/host && return 0
    kill -0 "$corrald_pid" 2>/dev/null || break
    sleep 0.2
  done
  echo "corrald did not come up; its log:"; cat "$state/corrald.log"
  return 1
}

corrald_stop() {
  [ -n "$corrald_pid" ] || return 0
  kill -TERM "$corrald_pid" 2>/dev/null
  wait "$corrald_pid" 2>/dev/null
  corrald_pid=""
}

# corrald leaves its networks' dnsmasq running when it stops (the next corrald adopts them). A test
# that made networks calls this in its cleanup, after corrald_stop: the state folder goes away with
# the test, and so must the dnsmasq processes it started (they would also keep a test's network
# namespace alive).
corrald_networks_cleanup() {
  local pid_file pid pids
  # By pid file, and by command line: a dnsmasq that corrald had just (re)started may not have
  # written its pid file yet, and one left without a file would outlive the test (CI saw one).
  pids=$(pgrep -f -- "--conf-file=$state/networks/" || true)
  for pid_file in "$state"/networks/*/dnsmasq.pid; do
    [ -f "$pid_file" ] && pids+=" $(cat "$pid_file" 2>/dev/null)"   # (dnsmasq may have ended meanwhile)
  done
  for pid in $pids; do
    { tr '\0' ' ' <"/proc/$pid/cmdline"; } 2>/dev/null | grep -qF -- "$state/networks/" || continue
    kill "$pid" 2>/dev/null
    local i   # gone before the caller removes the folder it writes its leases into
    for ((i = 0; i < 50; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  done
  corrald_hosts_lists_cleanup
}

corrald_processes() {
  local dir pid cmd cwd name
  for dir in /proc/[0-9]*; do
    pid=${dir#/proc/}
    cmd=$({ tr '\0' ' ' <"$dir/cmdline"; } 2>/dev/null) || continue
    case "$cmd" in
      *dnsmasq*"--conf-file=$state/networks/"*)
        name=${cmd#*--conf-file="$state"/networks/}
        echo "network ${name%%/*} $pid" ;;
      *qemu-system*)
        # corral-shim names the run folder; QEMU runs in it (its command line names no path).
        cwd=$(readlink "$dir/cwd" 2>/dev/null)
        if [[ "$cwd" == "$state/run/"* ]]; then name=${cwd#"$state"/run/}
        elif [[ "$cmd" == *" $state/run/"* ]]; then name=${cmd#*" $state"/run/}
        else continue; fi
        name=${name%%/*}
        echo "vm ${name%% *} $pid" ;;
    esac
  done
}

corrald_strays() {   # corrald_strays "VM..." "NETWORK..."
  local kind name pid
  while read -r kind name pid; do
    case "$kind" in
      vm) [[ " $1 " == *" $name "* ]] && continue ;;
      network) [[ " $2 " == *" $name "* ]] && continue ;;
    esac
    echo "$kind $name $pid: $({ tr '\0' ' ' <"/proc/$pid/cmdline"; } 2>/dev/null | cut -c1-160)"
  done < <(corrald_processes)
}

# The folders under /run/corral-dnsmasq holding the host lists of this test's networks (named in
# their dnsmasq.conf): they are outside the state folder, so they do not go away with it.
corrald_hosts_lists_cleanup() {
  local dir
  for dir in $(sed -n 's|^dhcp-hostsfile=\(/run/corral-dnsmasq/[^/]*\)/dhcp-hosts$|\1|p' \
                 "$state"/networks/*/dnsmasq.conf 2>/dev/null); do
    rm -rf -- "$dir"
  done
}

corrald_failure_report() {
  [ "$failed" -gt 0 ] || return 0
  local vm
  if [ -n "$corrald_pid" ]; then
    for vm in "$@"; do
      api GET "/api/v1/vms/$vm/console?tail=40"
      echo "---- the last lines of $vm's console:"; tr -d '\r' <<<"$body" | tail -n 40
      api GET "/api/v1/vms/$vm"
      echo "---- $vm: state $(jqb .state), reason: $(jqb .state_reason)"
    done
  fi
  echo "---- the last lines of corrald's log:"; tail -n 40 "$state/corrald.log"
}

api() {   # api METHOD PATH [JSON]
  local args=(-s --unix-socket "$sock" -X "$1" -o "$state/body" -w '%{http_code}')
  [ $# -ge 3 ] && args+=(-H 'Content-Type: application/json' --data-binary "$3")
  code=$(curl "${args[@]}" "http://corral$2")
  body=$(cat "$state/body")
}

jqb() { jq -r "$1" <<<"$body"; }

wait_task() {   # wait_task ID [SECONDS]
  local deadline=$((SECONDS + ${2:-120}))
  while ((SECONDS < deadline)); do
    api GET "/api/v1/tasks/$1?wait=10"
    case "$(jqb .status)" in running | queued) ;; *) return 0 ;; esac
  done
  return 1
}

import_guest_image() {   # import_guest_image NAME [CMDLINE]
  api POST /api/v1/images "$(jq -n --arg n "$1" --arg k "$kernel" --arg i "$initrd" --arg r "$rootfs" --arg c "${2:-}" \
    '{name: $n, kernel: $k, initrd: $i, root: $r} + (if $c == "" then {} else {cmdline: $c} end)')"
  [ "$code" = 202 ] && wait_task "$(jqb .task)" 120
  check "image $1 imported" test "$(jqb .status)" = succeeded
}

wait_state() {   # wait_state VM STATE SECONDS
  local deadline=$((SECONDS + $3))
  while ((SECONDS < deadline)); do
    api GET "/api/v1/vms/$1"
    [ "$(jqb .state)" = "$2" ] && return 0
    sleep 0.5
  done
  return 1
}

tls_listen() {
  api GET /api/v1/host
  listen=$(jqb '.api.listen[0]')
  fingerprint=$(jqb '.api.tls_fingerprint')
  [ -n "$listen" ] && [ "$listen" != null ]
}

tls_api() {   # tls_api TOKEN METHOD PATH [JSON]
  local args=(-s --cacert "$state/tls/server.crt" -X "$2" -D "$state/headers" -o "$state/body" -w '%{http_code}')
  [ -n "$1" ] && args+=(-H "Authorization: Bearer $1")
  [ $# -ge 4 ] && args+=(-H 'Content-Type: application/json' --data-binary "$4")
  code=$(curl "${args[@]}" "https://$listen$3")
  body=$(cat "$state/body")
}

# The console's scroll-back outlives runs of a VM; corrald marks each start with a line
# "[corrald] NAME started ...". These look only at what came after the last such line.
console_since_start() {   # console_since_start VM [TAIL]: VM's console since its last start (a restore is one)
  api GET "/api/v1/vms/$1/console?tail=${2:-5000}"
  awk -v mark="[corrald] $1 started" 'index($0, mark) { text = ""; next } { text = text $0 "\n" } END { printf "%s", text }' \
    <<<"$body" | tr -d '\r'
}
console_has() {   # console_has VM TEXT [TAIL]: TEXT is in VM's console since its last start
  console_since_start "$1" "${3:-5000}" | grep -qF -- "$2"
}
png_size() {   # png_size FILE: "WIDTHxHEIGHT" from its IHDR, or "not a PNG"
  python3 -c '
import struct, sys
data = open(sys.argv[1], "rb").read(24)
print("%dx%d" % struct.unpack(">II", data[16:24]) if data[:8] == b"\x89PNG\r\n\x1a\n" else "not a PNG")' "$1"
}
# The tap name corrald gives NIC 0 of a VM (NicPlumbing::tap_name_for: FNV-1a of the name): a
# namespace standing for the VM's guest names its veth's host end so, and the firewall takes it
# for the VM's port.
tap_of() {   # tap_of VM
  local name=$1 hash=2166136261 i c
  for ((i = 0; i < ${#name}; i++)); do
    printf -v c '%d' "'${name:i:1}"
    hash=$(( ((hash ^ c) * 16777619) & 0xffffffff ))
  done
  printf 'crl%08xn0' "$hash"
}

wait_until() {   # wait_until SECONDS CMD...: runs CMD until it succeeds; fails after SECONDS
  local deadline=$((SECONDS + $1)); shift
  until "$@"; do ((SECONDS < deadline)) || return 1; sleep 0.3; done
}
wait_console() {   # wait_console VM TEXT SECONDS
  local deadline=$((SECONDS + $3))
  while ((SECONDS < deadline)); do console_has "$1" "$2" && return 0; sleep 0.5; done
  return 1
}
