#!/usr/bin/env bash
# tests/e2e/web_ui.sh: the web UI in a real browser (issue 15). A real corrald (--listen on the
# loopback, metrics sampled every second) with the project's guest image; Debian's Chromium,
# headless, driven by puppeteer-core (web/test/browser.mjs): sign in, create a VM with the wizard
# (a bad value's message at its field, a 1024x768 display), start it on the emulated engine (QEMU
# TCG), the console's prompt and a typed command's answer, the Screen tab (noVNC through corrald's
# VNC relay: typed, pasted-as-typing and view-only text read back from the screenshot API by
# tesseract), charts with data points, the memory card (a balloon target set, shown, cleared), the Snapshots tab (a snapshot of the running VM taken,
# current, deleted; bad and taken names at the field), the Network tab (the NIC's address), the
# Migrate form (an http:// destination refused at its field, an unreachable one's task failure shown,
# the VM running on; an incoming migration prepared here shown migrating-in, then discarded; a second
# VM moved live to a second corrald sharing a pool folder, the page ending on its figures), the
# list, dashboard, storage (a qemu-img qcow2 imported by upload, exported as qcow2 and raw that
# qemu-img compares equal), the Networks page (default listed, its DHCP range edited with bad
# values at their fields first, an isolated one made and deleted, a bad subnet at its field), the Tokens page and phone width, stop, delete, sign out; a one-time
# sign-in link works once. Screenshots in $CORRAL_SCREENSHOTS (default
# <build>/web-screenshots). Exit 0 all passed, 1 a check failed, 77 skipped (no Chromium, no
# tesseract, no node_modules, the UI not built, or no QEMU).
set -uo pipefail
script=$(readlink -f "${BASH_SOURCE[0]}")
repo=$(cd "$(dirname "$script")/../.." && pwd)
build_dir="${CORRAL_BUILD_DIR:-$repo/build}"
chromium=$(command -v chromium || command -v chromium-browser || true)
[ -n "$chromium" ] || { echo "SKIP: no chromium (Debian package chromium; tools/setup installs it)"; exit 77; }
command -v tesseract >/dev/null || { echo "SKIP: no tesseract (Debian package tesseract-ocr; tools/setup installs it)"; exit 77; }
[ -d "$repo/web/node_modules/puppeteer-core" ] || { echo "SKIP: no web/node_modules (npm ci in web/; tools/setup runs it)"; exit 77; }
[ -f "$build_dir/web/dist/index.html" ] || { echo "SKIP: the web UI is not built ($build_dir/web/dist; the web_ui target)"; exit 77; }
# shellcheck source=../lib/guest.sh
. "$repo/tests/lib/guest.sh"
# shellcheck source=../lib/netns.sh
. "$repo/tests/lib/netns.sh"
# The VM goes on corrald's default network (its NIC's address, the Networks page): as root, with
# unshare, dnsmasq and nft, the script runs again in network and mount namespaces of its own, so
# that corrald's bridges, dnsmasq and nft tables never reach the host's. Elsewhere it runs in the
# host's namespace without networks, and the browser says SKIP for the network checks.
if ! in_own_netns "$script"; then
  guest_image   # outside: building it may need the host's network
  export kernel initrd rootfs
  if [ "$(id -u)" = 0 ] && [ -c /dev/net/tun ] && command -v dnsmasq >/dev/null && command -v nft >/dev/null &&
     unshare --net --mount true 2>/dev/null; then
    enter_own_netns "$script" "$@"
  fi
else
  enter_own_netns "$script" "$@"   # inside: a sysfs of the namespace, lo up
  export CORRALD_DEFAULT_NETWORK=1
fi
# shellcheck source=../lib/corrald.sh
. "$repo/tests/lib/corrald.sh"
# Backup repositories over the network only inside this folder (the browser adds one there); not
# in corrald's state folder, which corrald refuses to allow.
backup_root=$(mktemp -d "${TMPDIR:-/tmp}/corral-web-backups.XXXXXX")
# A second corrald (B, no network) that the browser migrates the VM "mover" to; `other` swaps
# corrald.sh's $state, $sock and $corrald_pid between the two. Both see one pool folder, $shared.
shared=$(mktemp -d "${TMPDIR:-/tmp}/corral-web-shared.XXXXXX")
other_state=$(mktemp -d "${TMPDIR:-/tmp}/corrald-test.XXXXXX") other_pid=""
other_sock="$other_state/corrald.sock"
other() {
  local s=$state k=$sock p=$corrald_pid
  state=$other_state sock=$other_sock corrald_pid=$other_pid
  other_state=$s other_sock=$k other_pid=$p
}
cleanup() {
  local side
  for side in 1 2; do
    # VMs outlive their corrald: each one's process goes first.
    if [ -n "$corrald_pid" ]; then
      api GET /api/v1/vms
      for pid in $(jq -r '.[].pid // empty' <<<"$body" 2>/dev/null); do [ "$pid" -gt 0 ] && kill -KILL "$pid" 2>/dev/null; done
      sleep 1
    fi
    corrald_stop
    in_own_netns "$script" && corrald_networks_cleanup
    rm -rf -- "$state"
    other
  done
  rm -rf -- "$backup_root" "$shared"
}
trap cleanup EXIT

corrald_start --listen 127.0.0.1:0 --metrics-interval 1 --default-engine emulated --allow-path "$backup_root" || exit 1
tls_listen || { echo "no TCP listener"; exit 1; }
api POST /api/v1/images "$(jq -n --arg k "$kernel" --arg i "$initrd" --arg r "$rootfs" \
  '{name: "debian", kernel: $k, initrd: $i, root: $r, description: "Debian kernel, busybox root"}')"
wait_task "$(jqb .task)" 120
check "the guest image is imported" test "$(jqb .status)" = succeeded
api POST /api/v1/tokens '{"name":"browser"}'
token=$(jqb .token)

echo "== B, a second corrald to migrate to; the VM mover on A, its disk in the folder both share"
source_listen=$listen
other
corrald_start --listen 127.0.0.1:0 --default-engine emulated --no-default-network || exit 1
tls_listen || { echo "no TCP listener on B"; exit 1; }
dest_url="https://$listen" dest_fingerprint=$fingerprint
api POST /api/v1/tokens '{"name":"migrations"}'
dest_token=$(jqb .token)
truncate -s 1M "$shared/root.raw"   # the image's root volume; this guest never mounts it
tiny=$(jq -n --arg k "$kernel" --arg i "$initrd" --arg r "$shared/root.raw" \
  '{name: "tiny", kernel: $k, initrd: $i, root: $r, cmdline: "console=ttyS0 panic=-1"}')
for side in B A; do
  api POST /api/v1/pools "$(jq -n --arg p "$shared" '{name: "shared", path: $p}')"
  check "$side: pool shared on the shared folder" test "$code" = 201
  # A's root volume, which mover's disk is a clone of, in the shared folder (B's in its own pool).
  api POST /api/v1/images "$(if [ "$side" = A ]; then jq '.pool = "shared"' <<<"$tiny"; else echo "$tiny"; fi)"
  wait_task "$(jqb .task)" 60
  check "$side: image tiny" test "$(jqb .status)" = succeeded
  [ "$side" = B ] && other
done
listen=$source_listen
# Its guest waits at a shell (it would power off otherwise): idle, it converges at a low bandwidth.
api POST /api/v1/vms '{"name":"mover","image":"tiny","memory_mib":64,"nics":[],"cmdline":"corral.then=shell"}'
check "A: VM mover defined" test "$code" = 201
api PUT /api/v1/vms/mover/state '{"action":"start"}'
wait_task "$(jqb .task)" 60
check "A: mover started" test "$(jqb .status)" = succeeded

shots="${CORRAL_SCREENSHOTS:-$build_dir/web-screenshots}"
echo "== the browser (screenshots in $shots)"
api POST /api/v1/session/links '{}'
link=$(jqb .link)
(cd "$repo/web" && CORRAL_URL="https://$listen" CORRAL_TOKEN="$token" CORRAL_LINK="$link" CORRAL_BACKUP_ROOT="$backup_root" \
  CORRAL_DEST_URL="$dest_url" CORRAL_DEST_TOKEN="$dest_token" CORRAL_DEST_FINGERPRINT="$dest_fingerprint" CHROMIUM="$chromium" CORRAL_SCREENSHOTS="$shots" \
  timeout 900 node test/browser.mjs) | tee "$state/browser.log"
browser_status=${PIPESTATUS[0]}
check "the browser scenario passed" test "$browser_status" = 0
api GET /api/v1/vms/webui1
check "the VM is gone (the API agrees)" test "$code" = 404
api GET /api/v1/vms/mover
check "mover left A (the API agrees)" test "$code" = 404
other
api GET /api/v1/vms/mover
check "  ... and runs on B" test "$(jqb .state)" = running
other
pages=(signin wizard-error vm vm-snapshots vms dashboard storage tokens vms-phone backups security-groups alarms vm-migrate
  vm-arriving vm-migrated)
# The Screen tab's checks run when this corrald serves the VNC relay (the browser says SKIP otherwise).
grep -q '^SKIP: the screen' "$state/browser.log" || pages+=(screen)
in_own_netns "$script" && pages+=(networks network-edit)
for page in "${pages[@]}"; do
  check "screenshot $page.png" test -s "$shots/$page.png"
done
grep -q '^FAIL' "$state/browser.log" && corrald_failure_report webui1
check_summary
