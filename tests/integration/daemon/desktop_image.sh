#!/usr/bin/env bash
# tests/integration/daemon/desktop_image.sh: `corral image prepare desktop` makes an image that
# boots to X with its xterm, and keyboard input through VNC reaches that xterm. A real corrald,
# the real tools/guest-image (debootstrap of Debian's packages, kept in the guest cache, so a
# second run builds nothing), one real QEMU guest on the emulated engine with a 1024x768 display,
# the real CLI, tesseract reading the screenshots.
#
# Checks: the prepare task succeeds and the image is listed; the VM prints CORRAL-DESKTOP: up;
# a screenshot (`corral vm screenshot`) shows the xterm's window (a white area where the text
# console is black) under its title (OCR reads "Corral desktop"); a click in the xterm and
# `echo desktop-WORD on $DISPLAY >/dev/ttyS0` typed through `corral vm vnc` print
# "desktop-WORD on :0" on the serial console: only a shell inside the X session has $DISPLAY.
# Without Debian's mirror and without a cached image the test fails saying so (CI reaches it).
# Exit 0 all passed, 1 a check failed, 77 skipped (no QEMU, tesseract or root).
set -uo pipefail
script=$(readlink -f "${BASH_SOURCE[0]}")
repo=$(cd "$(dirname "$script")/../../.." && pwd)
build_dir="${CORRAL_BUILD_DIR:-$repo/build}"
corral="$build_dir/src/cli/corral"
for tool in qemu-system-x86_64 tesseract python3; do
  command -v "$tool" >/dev/null || { echo "SKIP: $tool is not installed (tools/setup installs it)"; exit 77; }
done
[ "$(id -u)" = 0 ] || { echo "SKIP: the desktop image is built as root (debootstrap configures it in a chroot)"; exit 77; }

# shellcheck source=../../lib/corrald.sh
. "$repo/tests/lib/corrald.sh"
vnc_pid=""
cleanup() {
  [ -n "$vnc_pid" ] && kill "$vnc_pid" 2>/dev/null
  if [ -n "$corrald_pid" ]; then api PUT /api/v1/vms/d1/state '{"action":"kill"}'; wait_state d1 stopped 30; fi
  corrald_stop
  rm -rf -- "$state"
}
trap cleanup EXIT
export CORRAL_SOCKET="$sock"
boot_wait=${CORRAL_BOOT_WAIT:-300}   # seconds; TCG on a busy 2-core host (X and the xterm: ~35 s idle)

# screen_stats PNG: "WHITE_PERCENT COLOURS": how much of the xterm's area (the session puts it at
# +40+60, 100x30 characters) is white, the xterm's background, and how many colours the screen has.
screen_stats() {
  PYTHONPATH="$repo/tests/lib" python3 -c '
import sys
from rfb_client import decode_png
width, height, rgb = decode_png(open(sys.argv[1], "rb").read())
def px(x, y):
    i = (y * width + x) * 3
    return rgb[i:i + 3]
area = [px(x, y) for y in range(100, 400, 4) for x in range(60, 560, 4)]
white = sum(1 for p in area if min(p) >= 0xF0)
colours = {bytes(rgb[i:i + 3]) for i in range(0, len(rgb), 3 * 7)}
print(100 * white // len(area), len(colours))' "$1"
}
shot() { curl -sf --unix-socket "$sock" -o "$state/poll.png" http://corral/api/v1/vms/d1/screenshot; }
# xterm_shown: a new screenshot in which the xterm's area is mostly white and OCR reads its title
# (the prompt's 6x13 font is too small for tesseract).
xterm_shown() {
  shot || return 1
  local stats
  stats=$(screen_stats "$state/poll.png" 2>/dev/null) || return 1
  [ "${stats%% *}" -ge 60 ] && tesseract "$state/poll.png" - 2>/dev/null | grep -q 'Corral desktop'
}
random_word() { tr -dc '[:lower:]' </dev/urandom | head -c 8; }

mirror=${CORRAL_DEBIAN_MIRROR:-http://deb.debian.org/debian}
codename=$(. /etc/os-release && printf '%s' "${VERSION_CODENAME:-}")
mirror_ok=yes
curl -sf --max-time 20 -o /dev/null "$mirror/dists/$codename/Release" || mirror_ok=no

corrald_start || exit 1

# must NAME CMD...: a check the later steps need; when it fails the test ends here, with corral's
# last words ($state/out), corrald's log and the VM's console.
must() {
  local before=$failed
  check "$@"
  [ "$failed" = "$before" ] && return 0
  [ -s "$state/out" ] && echo "  corral said: $(tail -n 5 "$state/out")"
  check_summary
  corrald_failure_report d1
  exit 1
}

echo "== corral image prepare desktop (debootstrap from $mirror, or the guest cache)"
started=$SECONDS
"$corral" image prepare desktop >"$state/out" 2>&1
rc=$?
echo "  (took $((SECONDS - started)) s)"
if [ "$rc" != 0 ] && [ "$mirror_ok" = no ]; then
  echo "WHY: Debian's mirror $mirror does not answer (dists/$codename/Release), and the desktop image is built"
  echo "     from its packages (debootstrap) unless the guest cache holds it already; set CORRAL_DEBIAN_MIRROR"
  echo "     to a mirror that answers"
fi
must "corral image prepare desktop: exit 0" test "$rc" = 0
api GET /api/v1/tasks
check "  ... its task succeeded with progress 100%" \
  test "$(jqb '[.[] | select(.kind == "image.prepare" and .target == "desktop")][0] | "\(.status) \(.progress == 1)"')" = "succeeded true"
api GET /api/v1/images/desktop
check "  ... image desktop exists" test "$code" = 200

echo "== a VM from it, 1024x768, on the emulated engine"
"$corral" vm create d1 --image desktop --engine emulated --memory 512M --nic none --display 1024x768 >"$state/out" 2>&1
must "corral vm create d1 --image desktop --display 1024x768" test $? = 0
started=$SECONDS
"$corral" vm start d1 >"$state/out" 2>&1
must "corral vm start d1" test $? = 0
: >"$state/out"
must "the session starts (CORRAL-DESKTOP: up)" wait_console d1 'CORRAL-DESKTOP: up' "$boot_wait"
echo "  (X's session after $((SECONDS - started)) s)"
must "a screenshot shows the xterm: a white window under the title OCR reads as 'Corral desktop'" \
  wait_until "$boot_wait" xterm_shown
echo "  (the xterm after $((SECONDS - started)) s; white %, colours: $(screen_stats "$state/poll.png"))"
"$corral" vm screenshot d1 "$state/shot.png" >"$state/out" 2>&1
check "corral vm screenshot d1: a 1024x768 PNG (was $(png_size "$state/shot.png"))" \
  test "$(png_size "$state/shot.png")" = 1024x768
read -r white colours <<<"$(screen_stats "$state/shot.png" 2>/dev/null)"
check "  ... not the text console: the xterm's area is white (${white:-?} %), the screen has many colours (${colours:-?})" \
  test "${white:-0}" -ge 60 -a "${colours:-0}" -ge 8

echo "== keyboard input through VNC reaches the xterm"
"$corral" vm vnc d1 --listen 127.0.0.1:0 >"$state/vnc.out" 2>&1 &
vnc_pid=$!
port=""
vnc_port() { cp "$state/vnc.out" "$state/out"; port=$(sed -n 's/^VNC for d1 on 127\.0\.0\.1:\([0-9]*\) .*/\1/p' "$state/vnc.out"); [ -n "$port" ]; }
must "corral vm vnc d1 --listen 127.0.0.1:0 listens" wait_until 10 vnc_port
word=$(random_word)
# A click in the xterm gives it the keyboard focus (whatever jwm's focus model), then the command.
python3 "$repo/tests/lib/rfb_client.py" "127.0.0.1:$port" pointer 300 250 1 >"$state/out" 2>&1
must "a click in the xterm (rfb_client.py pointer 300 250 1)" test $? = 0
python3 "$repo/tests/lib/rfb_client.py" "127.0.0.1:$port" type "echo desktop-$word on \$DISPLAY >/dev/ttyS0\\n" \
  >"$state/out" 2>&1
must "typed 'echo desktop-$word on \$DISPLAY >/dev/ttyS0' (rfb_client.py type)" test $? = 0
check "the serial console shows 'desktop-$word on :0' (the xterm's shell ran it)" \
  wait_console d1 "desktop-$word on :0" 120

check_summary || { corrald_failure_report d1; exit 1; }
