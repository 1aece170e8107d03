#!/usr/bin/env bash
# bench/web/run.sh: the web UI's weight and speed on the loopback, against a peer (issue 15). Prints:
#   - the bundle: bytes of build/web/dist's files, raw and gzip -9, and what corrald sends a
#     browser that accepts gzip (Content-Encoding, bytes on the wire);
#   - with a real corrald (--listen on the loopback, one running VM on the emulated engine) and
#     headless Chromium (puppeteer-core, web/test/measure.mjs; medians of --runs fresh browser
#     contexts, default 5): time to an interactive sign-in form (cold cache), sign-in to a
#     dashboard with its data, each page's time, requests and bytes on the wire, and an action
#     (opening a VM from the list) in the SPA against a full page load of the same page (the
#     "full page per action" baseline), warm and cold cache;
#   - the peer, Cockpit, measured by the same script: its login page (cockpit-ws --no-tls on a
#     loopback port of its own), and signed in (a second cockpit-ws with --local-session, as
#     nobody) its Overview with usage data, a full reload of it, and opening Accounts from its
#     menu; apt-get installs cockpit-ws, cockpit-bridge and cockpit-system when missing;
#   - keystroke echo latency of the VM's serial console (bench/web/console_echo.py): through
#     corrald's console WebSocket as the browser uses it (TLS, session cookie), through corrald's
#     unix socket (`corral vm console`'s path), and on QEMU's own serial socket with no corrald in
#     between (a plain QEMU with the same guest, machine and accelerator as the emulated engine's).
# Loopback and unix sockets only. Not a test: nothing fails on a number.
# Usage: bench/web/run.sh [--runs N] [--keys N] [--rounds R] [--no-cockpit]
#   (exit 77 when Chromium, web/node_modules, the built UI or QEMU is missing)
set -uo pipefail
script=$(readlink -f "${BASH_SOURCE[0]}")
repo=$(cd "$(dirname "$script")/../.." && pwd)
build_dir="${CORRAL_BUILD_DIR:-$repo/build}"
keys=100 rounds=3 runs=5 cockpit=1
# shellcheck source=../lib/options.sh
. "$repo/bench/lib/options.sh"
bench_options '[--runs N] [--keys N] [--rounds R] [--no-cockpit]' \
  --keys=keys --rounds=rounds --runs=runs --no-cockpit:cockpit=0 -- "$@"
chromium=$(command -v chromium || true)
[ -n "$chromium" ] && [ -d "$repo/web/node_modules/puppeteer-core" ] && [ -f "$build_dir/web/dist/index.html" ] ||
  { echo "SKIP: needs chromium, web/node_modules (npm ci) and the built UI ($build_dir/web/dist)"; exit 77; }
# shellcheck source=../../tests/lib/guest.sh
. "$repo/tests/lib/guest.sh"
guest_image
# shellcheck source=../../tests/lib/corrald.sh
. "$repo/tests/lib/corrald.sh"
qemu_pid="" cockpit_groups=()
cleanup() {
  [ -n "$corrald_pid" ] && api PUT /api/v1/vms/bench1/state '{"action":"kill"}'
  corrald_stop
  [ -n "$qemu_pid" ] && kill "$qemu_pid" 2>/dev/null
  # cockpit-ws's bridge starts a dbus-daemon and an ssh-agent: each cockpit-ws was started in a
  # process group of its own (setsid), which ends whole.
  for group in "${cockpit_groups[@]}"; do kill -- "-$group" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf -- "$state"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

echo "== the bundle ($build_dir/web/dist)"
total_raw=0 total_gz=0
while read -r file; do
  raw=$(stat -c %s "$file"); gz=$(gzip -9c "$file" | wc -c)
  total_raw=$((total_raw + raw)); total_gz=$((total_gz + gz))
  printf '  %-40s %8d bytes, %7d gzip -9\n' "${file#"$build_dir"/web/dist/}" "$raw" "$gz"
done < <(find "$build_dir/web/dist" -type f ! -name '*.txt' ! -name '*.gz' | sort)
printf '  %-40s %8d bytes, %7d gzip -9\n' total "$total_raw" "$total_gz"

corrald_start --listen 127.0.0.1:0 --default-engine emulated || exit 1
tls_listen || exit 1
echo "== what corrald sends a browser that accepts gzip"
while read -r file; do
  asset=${file#"$build_dir"/web/dist/}
  curl -s --cacert "$state/tls/server.crt" -H 'Accept-Encoding: gzip, deflate, br' -D "$state/asset.headers" \
    -o /dev/null -w '%{size_download}' "https://$listen/ui/$asset" >"$state/asset.size"
  encoding=$(grep -i '^content-encoding:' "$state/asset.headers" | cut -d' ' -f2- | tr -d '\r')
  printf '  %-40s %8d bytes, Content-Encoding: %s\n' "$asset" "$(cat "$state/asset.size")" "${encoding:-none}"
done < <(find "$build_dir/web/dist/assets" -type f ! -name '*.gz' | sort)

echo "== a VM on the emulated engine (QEMU TCG), and the same guest in a plain QEMU"
api POST /api/v1/images "$(jq -n --arg k "$kernel" --arg i "$initrd" --arg r "$rootfs" '{name: "debian", kernel: $k, initrd: $i, root: $r}')"
wait_task "$(jqb .task)" 120
api POST /api/v1/vms '{"name":"bench1","image":"debian","engine":"emulated","vcpus":1,"memory_mib":256,"nics":[]}'
[ "$code" = 201 ] || { echo "creating the VM: $code $body"; exit 1; }
# The VM's kernel command line: the image's, or extra arguments after the image's default.
cmdline=$(jqb '.cmdline // ""')
[[ "$cmdline" == *console=ttyS0* ]] ||
  cmdline="console=ttyS0 corral.root=/dev/vda corral.then=shell corral.shutdown=graceful $cmdline"
api PUT /api/v1/vms/bench1/state '{"action":"start"}'
# QEMU as the emulated engine starts it (src/engine/emulated_engine.cpp), the serial console on a
# unix socket of its own; the root file system is the image's, in a throwaway snapshot.
peer_sock="$state/qemu-serial.sock"
qemu-system-x86_64 -accel tcg,thread=multi -M pc -cpu max -smp 1 -m 256M -nodefaults -no-user-config -display none \
  -kernel "$kernel" -initrd "$initrd" -append "$cmdline" \
  -drive "file=$rootfs,format=raw,if=virtio,snapshot=on" \
  -chardev "socket,id=con,path=$peer_sock,server=on,wait=off" -serial chardev:con >"$state/qemu.log" 2>&1 &
qemu_pid=$!
wait_console bench1 'corral:~# ' 300 || { echo "bench1 gave no prompt"; console_since_start bench1 | tail; exit 1; }
wait_until 30 test -S "$peer_sock" || { echo "the plain QEMU made no serial socket: $(cat "$state/qemu.log")"; exit 1; }

api POST /api/v1/tokens '{"name":"bench"}'
token=$(jqb .token)
cockpit_url="" cockpit_session_url=""
start_cockpit() {   # start_cockpit VAR [ARGS...]: a cockpit-ws on a free loopback port; VAR = its URL
  local var=$1 port as=(); shift
  port=$(free_port)
  # A local session (no login) runs as nobody: it must not hand the loopback a root shell for
  # the bench's duration. (The login page's cockpit-ws runs as we do: as nobody its page says
  # "Internal error in login process"; it logs in no one here.)
  [ $# -gt 0 ] && as=(setpriv --reuid 65534 --regid 65534 --clear-groups)
  # No systemd here: the binary itself, without TLS (cockpit-tls, its TLS terminator, is
  # socket-activated by systemd); corrald's figures include its TLS handshake.
  (cd / && HOME=/ exec setsid "${as[@]}" /usr/lib/cockpit/cockpit-ws --no-tls --address 127.0.0.1 --port "$port" "$@") \
    >>"$state/cockpit.log" 2>&1 &
  cockpit_groups+=($!)
  if wait_until 30 curl -sf -o /dev/null "http://127.0.0.1:$port/"; then
    printf -v "$var" '%s' "http://127.0.0.1:$port/"
  else
    echo "cockpit-ws $* did not answer: $(cat "$state/cockpit.log")"
  fi
}
if [ "$cockpit" = 1 ]; then
  # cockpit-ws serves the login page; cockpit-bridge and cockpit-system the pages after it.
  if [ ! -x /usr/lib/cockpit/cockpit-ws ] || [ ! -x /usr/bin/cockpit-bridge ] || [ ! -d /usr/share/cockpit/systemd ]; then
    echo "bench: installing cockpit-ws cockpit-bridge cockpit-system (the peer)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends cockpit-ws cockpit-bridge cockpit-system \
      >"$state/apt.log" 2>&1 || { echo "bench: apt-get failed:"; tail -5 "$state/apt.log"; }
  fi
  [ -x /usr/lib/cockpit/cockpit-ws ] && start_cockpit cockpit_url
  [ -x /usr/bin/cockpit-bridge ] && start_cockpit cockpit_session_url --local-session=/usr/bin/cockpit-bridge
fi

(cd "$repo/web" && CORRAL_URL="https://$listen" CORRAL_TOKEN="$token" CORRAL_VM=bench1 COCKPIT_URL="$cockpit_url" \
  COCKPIT_SESSION_URL="$cockpit_session_url" \
  RUNS="$runs" CHROMIUM="$chromium" node test/measure.mjs) || exit 1

echo "== console keystroke echo"
# The browser's credentials: a session cookie from signing in with the token (as the UI does).
curl -s --cacert "$state/tls/server.crt" -D "$state/session.headers" -o /dev/null \
  -H 'Content-Type: application/json' --data-binary "{\"token\":\"$token\"}" "https://$listen/api/v1/session"
cookie=$(grep -i '^set-cookie: __Host-corral_session=' "$state/session.headers" | sed -E 's/^[^=]*=([^;]*).*/\1/' | tr -d '\r')
[ -n "$cookie" ] || { echo "signing in gave no session cookie"; exit 1; }
python3 "$repo/bench/web/console_echo.py" --keys "$keys" --rounds "$rounds" \
  --wss "browser: wss + cookie (corrald)" "$listen" /api/v1/vms/bench1/console "$state/tls/server.crt" "$cookie" \
  --ws-unix "corral vm console: unix ws (corrald)" "$sock" /api/v1/vms/bench1/console \
  --stream "QEMU's serial socket (no corrald)" "$peer_sock"
