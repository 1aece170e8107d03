#!/usr/bin/env bash
# tests/e2e/display.sh: the graphical console through corrald, with a real corrald, one real QEMU
# guest (the emulated engine) with a 1024x768 display, the real CLI, a real VNC client
# (vncsnapshot) and OCR (tesseract) reading the guest's screen.
#
# Checks: `display` is validated on create and edit, kept while running (409 naming it), shown by
# `vm show`; screenshots and VNC are refused (409, and the CLI says why) for a VM without a display
# and for a stopped one; `corral vm screenshot` writes a 1024x768 PNG in which OCR reads the shell
# prompt ("corral"), and keeps an existing file unless --force; the API's screenshot is image/png of
# the configured size; vncsnapshot through `corral vm vnc` captures the same screen while another
# viewer is connected; a word typed by a view-only viewer never reaches the guest, one typed through
# `corral vm vnc` (`echo` of a random word) appears on the next screenshot; a viewer sending what
# is not RFB is cut off while the others go on. Exit 0 all passed, 1 a check failed, 77 skipped.
set -uo pipefail
script=$(readlink -f "${BASH_SOURCE[0]}")
repo=$(cd "$(dirname "$script")/../.." && pwd)
build_dir="${CORRAL_BUILD_DIR:-$repo/build}"
corral="$build_dir/src/cli/corral"
for tool in tesseract vncsnapshot python3; do
  command -v "$tool" >/dev/null || { echo "SKIP: $tool is not installed (tools/setup installs it)"; exit 77; }
done
# shellcheck source=../lib/guest.sh
. "$repo/tests/lib/guest.sh"
guest_image

# shellcheck source=../lib/corrald.sh
. "$repo/tests/lib/corrald.sh"
vnc_pids=()
cleanup() {
  local pid
  for pid in "${vnc_pids[@]}"; do kill "$pid" 2>/dev/null; done
  if [ -n "$corrald_pid" ]; then api PUT /api/v1/vms/desk/state '{"action":"kill"}'; wait_state desk stopped 30; fi
  corrald_stop
  rm -rf -- "$state"
}
trap cleanup EXIT
export CORRAL_SOCKET="$sock"
boot_wait=${CORRAL_BOOT_WAIT:-300}   # seconds; TCG on a busy 2-core host

says() { grep -qF -- "$1" <<<"$(jqb .error.message)" || { echo "  message: $(jqb .error.message)"; return 1; }; }
# ocr PNG: what tesseract reads in it, as it is and enlarged twice (tesseract reads the console
# font's 16-pixel glyphs better so), without spaces (it splits words the font keeps together).
ocr() {
  python3 "$repo/tests/lib/png_scale.py" "$1" "$1.2x.png" 2 &&
    { tesseract "$1" - 2>/dev/null; tesseract "$1.2x.png" - 2>/dev/null; } | tr -d ' '
}
# screen_shows TEXT: a new screenshot (API) in which OCR reads TEXT
screen_shows() {
  curl -s --unix-socket "$sock" -o "$state/poll.png" http://corral/api/v1/vms/desk/screenshot &&
    ocr "$state/poll.png" | grep -qF -- "$1"
}
not_on_last_screen() { ! ocr "$state/poll.png" | grep -qF -- "$1"; }   # not_on_last_screen TEXT
wait_screen() {   # wait_screen TEXT SECONDS
  local deadline=$((SECONDS + $2))
  while ((SECONDS < deadline)); do screen_shows "$1" && return 0; sleep 1; done
  return 1
}
start_vnc() {   # start_vnc VAR [ARGS...]: `corral vm vnc desk ARGS` in the background; VAR = its port
  local var=$1 out i found=""; shift
  out="$state/vnc.$RANDOM.out"
  "$corral" vm vnc desk --listen 127.0.0.1:0 "$@" >"$out" 2>&1 &
  vnc_pids+=($!)
  for ((i = 0; i < 100; i++)); do
    found=$(sed -n 's/^VNC for desk on 127\.0\.0\.1:\([0-9]*\) .*/\1/p' "$out")
    [ -n "$found" ] && break
    sleep 0.1
  done
  printf -v "$var" '%s' "$found"
  [ -n "$found" ] || { echo "  corral vm vnc said: $(cat "$out")"; return 1; }
}
ws_upgrade() {   # ws_upgrade PATH: a WebSocket upgrade with curl; sets $code and $body (a refusal's)
  code=$(curl -s --unix-socket "$sock" -o "$state/ws.body" -w '%{http_code}' --max-time 5 \
    -H 'Connection: Upgrade' -H 'Upgrade: websocket' -H 'Sec-WebSocket-Version: 13' \
    -H 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==' "http://corral$1")
  body=$(cat "$state/ws.body")
}
# A random word of the letters tesseract reads without doubt in the console font (it took b for h,
# c for e, m for nn, q for a, v for u, w for uu; i, l, o look like 1, 0).
random_word() { tr -dc 'adefghjkprstxyz' </dev/urandom | head -c 8; }

corrald_start || exit 1
import_guest_image debian

echo "== display: validated, stored, shown"
"$corral" vm create bad --image debian --display 1024 >"$state/out" 2>&1
check "corral vm create --display 1024: usage error (exit 2) naming WxH" \
  bash -c "[ $? = 2 ] && grep -q 'WIDTHxHEIGHT' '$state/out'"
api POST /api/v1/vms '{"name":"bad","image":"debian","engine":"emulated","display":{"width":100,"height":768}}'
check "display.width 100: 400 naming display.width" test "$code" = 400 -a "$(jqb .error.field)" = display.width
api POST /api/v1/vms '{"name":"bad","image":"debian","engine":"emulated","display":"1024x768"}'
check "display as a string: 400 naming display" test "$code" = 400 -a "$(jqb .error.field)" = display
api POST /api/v1/vms '{"name":"bad","image":"debian","engine":"emulated","display":{"width":1024}}'
check "display without height: 400 naming display.height" test "$code" = 400 -a "$(jqb .error.field)" = display.height
api GET /api/v1/vms/bad
check "  ... and no VM was created" test "$code" = 404
"$corral" vm create desk --image debian --engine emulated --memory 256M --nic none --display 800x600 >"$state/out" 2>&1
check "corral vm create desk --display 800x600" test $? = 0
"$corral" vm edit desk --display 1024x768 >"$state/out" 2>&1
check "corral vm edit desk --display 1024x768 (stopped)" test $? = 0
"$corral" vm show desk >"$state/show" 2>&1
check "corral vm show desk: display: 1024x768" grep -qE '^display: +1024x768' "$state/show"
"$corral" vm create plain --image debian --engine emulated --nic none >"$state/out" 2>&1
api GET /api/v1/vms/plain
check "a VM without --display: display null" test "$code" = 200 -a "$(jqb .display)" = null

echo "== no screen to show: 409"
api GET /api/v1/vms/desk/screenshot
check "screenshot of a stopped VM: 409 saying it is stopped" test "$code" = 409
check "  ... 'desk is stopped: its screen exists only while it runs'" says 'desk is stopped: its screen exists only while it runs'

api GET /api/v1/vms/plain/screenshot
check "screenshot of a VM without a display: 409" test "$code" = 409
check "  ... 'this VM has no display'" says 'this VM has no display'

api GET /api/v1/vms/nope/screenshot
check "screenshot of an unknown VM: 404" test "$code" = 404
ws_upgrade /api/v1/vms/nope/vnc
check "VNC WebSocket to an unknown VM: 404" test "$code" = 404
ws_upgrade /api/v1/vms/plain/vnc
check "VNC WebSocket to a VM without a display: 409" test "$code" = 409
ws_upgrade /api/v1/vms/desk/vnc
check "VNC WebSocket to a stopped VM: 409" test "$code" = 409
"$corral" vm vnc plain >"$state/out" 2>&1
check "corral vm vnc plain: exit 1, 'no display'" bash -c "[ $? = 1 ] && grep -q 'no display' '$state/out'"
"$corral" vm screenshot desk "$state/x.png" >"$state/out" 2>&1
check "corral vm screenshot of a stopped VM: exit 1, no file" bash -c "[ $? = 1 ] && [ ! -e '$state/x.png' ]"

echo "== one boot with a 1024x768 display"
"$corral" vm start desk >"$state/out" 2>&1
check "corral vm start desk" test $? = 0
check "the guest's framebuffer is up (CORRAL-INIT: display)" wait_console desk 'CORRAL-INIT: display' "$boot_wait"
api PATCH /api/v1/vms/desk '{"display":{"width":800,"height":600}}'
check "edit display while running: 409" test "$code" = 409
check "  ... 'stop it before changing display'" says 'stop it before changing display'

check "OCR reads the shell prompt ('corral') on the screen" wait_screen corral 120
"$corral" vm screenshot desk "$state/shot.png" >"$state/out" 2>&1
check "corral vm screenshot desk shot.png" test $? = 0
check "  ... a 1024x768 PNG (was $(png_size "$state/shot.png"))" test "$(png_size "$state/shot.png")" = 1024x768
check "  ... in which OCR reads 'corral'" bash -c "tesseract '$state/shot.png' - 2>/dev/null | grep -q corral"
"$corral" vm screenshot desk "$state/shot.png" >"$state/out" 2>&1
check "again without --force: exit 1, the file is kept" bash -c "[ $? = 1 ] && grep -q 'already exists' '$state/out'"
"$corral" vm screenshot desk "$state/shot.png" --force >"$state/out" 2>&1
check "with --force: replaced" test $? = 0 -a "$(png_size "$state/shot.png")" = 1024x768
type=$(curl -s --unix-socket "$sock" -o "$state/api.png" -w '%{content_type}' http://corral/api/v1/vms/desk/screenshot)
check "GET /vms/desk/screenshot: image/png (was $type)" test "$type" = image/png
check "  ... 1024x768 (was $(png_size "$state/api.png"))" test "$(png_size "$state/api.png")" = 1024x768

echo "== viewers through corrald"
port="" view_port=""
check "corral vm vnc desk --listen 127.0.0.1:0 listens" start_vnc port
check "corral vm vnc desk --view-only listens" start_vnc view_port --view-only
word=$(random_word) view_word=$(random_word)
coproc typer { python3 "$repo/tests/lib/vnc_type.py" 127.0.0.1 "$port" "echo $word" 2>&1; }
line=""
[ -n "${typer[0]:-}" ] && read -r -t 120 line <&"${typer[0]}"
check "a viewer (tests/lib/vnc_type.py) is connected to a 1024x768 screen ($line)" grep -q '^connected 1024x768' <<<"$line"
# A second viewer meanwhile: the real VNC client, through the same port.
timeout 120 vncsnapshot -quiet -allowblank 127.0.0.1::"$port" "$state/vnc.jpg" >"$state/vncsnapshot.out" 2>&1
check "vncsnapshot through corral vm vnc (a second viewer at the same time)" test -s "$state/vnc.jpg"
check "  ... OCR reads 'corral' in its capture" bash -c "tesseract '$state/vnc.jpg' - 2>/dev/null | grep -q corral"
view_out=$(printf 'go\n' | timeout 120 python3 "$repo/tests/lib/vnc_type.py" 127.0.0.1 "$view_port" "echo $view_word" 2>&1)
check "a view-only viewer typed 'echo $view_word' (its keys went to corrald)" grep -q '^typed' <<<"$view_out"
line=""
# (The coproc's descriptors are gone when it ended early, after a failed check above.)
[ -n "${typer[1]:-}" ] && echo go >&"${typer[1]}" && read -r -t 120 line <&"${typer[0]}"
check "the first viewer typed 'echo $word'" test "$line" = typed
check "OCR reads '$word' on the next screenshots" wait_screen "$word" 60
check "  ... and not the view-only viewer's '$view_word'" not_on_last_screen "$view_word"
# What is not RFB (after a valid start) ends that viewer only.
exec {bad}<>/dev/tcp/127.0.0.1/"$port"
printf 'RFB 003.008\n\001\001\377\377\377\377' >&"$bad"
timeout 30 cat <&"$bad" >/dev/null
check "a viewer sending an unknown RFB message is disconnected" test $? != 124
exec {bad}>&-
check "  ... while screenshots go on" screen_shows corral

check_summary || { corrald_failure_report desk; exit 1; }
