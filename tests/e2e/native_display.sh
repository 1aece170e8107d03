#!/usr/bin/env bash
# tests/e2e/native_display.sh: corral-vmm's graphical console (virtio-gpu, virtio keyboard and
# tablet, VNC, screenshot) with the stock Debian kernel, in one guest boot.
#
# corral-vmm boots the project's guest with --display 1024x768 --vnc unix:... --vnc-view-only
# unix:...; the guest's virtio_gpu driver brings up a framebuffer and its init runs a shell on
# tty1 ("CORRAL-INIT: display" on the serial console). Then:
#   1. the control action `screenshot` gives a 1024x768 PNG where tesseract reads "corral" (the
#      prompt);
#   2. vncsnapshot (a real VNC viewer, over a loopback TCP relay to the unix socket) captures the
#      same screen: 1024x768, tesseract reads "corral";
#   3. `echo WORD >/dev/ttyS0` typed through VNC (tests/lib/rfb_client.py) runs in the tty1 shell
#      (WORD on the serial console), and a second viewer, connected meanwhile, shows the typed
#      line (tesseract reads WORD in its capture);
#   4. a view-only viewer's typing changes nothing (checked after a later full viewer's command
#      ran, which was typed after it).
# OCR runs three times only, on settled screens: tesseract under TCG takes long.
#   5. a snapshot is refused, naming the display; the control `stop` ends corral-vmm.
# Inside the nested lab where this host's KVM cannot run guest kernels at speed (a scenario of
# the shared lab session). Needs python3, tesseract and vncsnapshot.
# Exit 0 all passed, 1 a check failed, 77 skipped.
set -uo pipefail
script=$(readlink -f "${BASH_SOURCE[0]}")
repo=$(cd "$(dirname "$script")/../.." && pwd)
build_dir="${CORRAL_BUILD_DIR:-$repo/build}"

# shellcheck source=../lib/lab.sh
. "$repo/tests/lib/lab.sh"
lab_vmm_begin 1200

for tool in python3 tesseract vncsnapshot; do
  command -v "$tool" >/dev/null || { echo "SKIP: $tool is not installed (tools/setup installs it)"; exit 77; }
done
work=$(mktemp -d "${TMPDIR:-/tmp}/display-e2e.XXXXXX")
pid="" relay="" viewers=""
# On a failure the captures, their OCR text and the serial console are kept in the build folder (the
# lab's /tmp goes with it).
artifacts="$build_dir/Testing/native_display"
cleanup() {
  if [ "${failed:-0}" -gt 0 ] && [ -d "$work" ]; then
    rm -rf -- "$artifacts" && mkdir -p -- "$artifacts"
    for f in "$work"/*.png "$work"/*.jpg "$work"/*.txt; do
      [ -f "$f" ] && cp -- "$f" "$artifacts/"
    done
    cp -- "$work/serial" "$artifacts/serial.log" 2>/dev/null
    echo "(captures, their OCR and the serial console kept in $artifacts)"
  fi
  [ -n "$relay" ] && kill "$relay" 2>/dev/null
  [ -n "$viewers" ] && kill "$viewers" 2>/dev/null
  [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
  rm -rf -- "$work"
}
trap cleanup EXIT

# shellcheck source=../lib/check.sh
. "$repo/tests/lib/check.sh"
rfb="$repo/tests/lib/rfb_client.py"

# control ACTION-JSON: one request on the control socket; the answer line on stdout.
control() {
  python3 - "$work/control.sock" "$1" <<'EOF'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(60)
s.connect(sys.argv[1])
s.sendall(sys.argv[2].encode() + b"\n")
data = b""
while not data.endswith(b"\n"):
    chunk = s.recv(1 << 20)
    if not chunk:
        break
    data += chunk
sys.stdout.write(data.decode())
EOF
}
# screenshot FILE: the control screenshot's PNG into FILE; prints "WIDTHxHEIGHT".
screenshot() {
  control '{"action":"screenshot"}' | python3 -c '
import base64, json, sys
answer = json.load(sys.stdin)
if not answer.get("ok"):
    sys.exit("screenshot: " + answer.get("error", "?"))
png = base64.b64decode(answer["png_base64"])
open(sys.argv[1], "wb").write(png)
print("%dx%d" % (answer["width"], answer["height"]))' "$1"
}
# OCR is slow in the lab (tesseract under TCG): each capture is read once, into FILE.txt.
ocr() { tesseract "$1" - 2>/dev/null >"$1.txt"; cat "$1.txt"; }
# ocr_count FILE WORD: on how many lines of FILE's OCR text WORD is (spaces the OCR put inside
# words ignored).
ocr_count() { tr -d ' ' <"$1.txt" | grep -ci -- "$2"; }
# screen_settled: the screen has text (enough non-black pixels) and no more changed in a second
# than the cursor's blink: the prompt is drawn. Checked on pixels, so OCR (slow under TCG) runs once, on a finished screen.
screen_settled() {
  screenshot "$work/a.png" >/dev/null && sleep 1 && screenshot "$work/b.png" >/dev/null &&
    python3 - "$work/a.png" "$work/b.png" <<'PY'
import struct, sys, zlib
# How much of a screenshot is drawn: its image data, inflated, is all zero bytes on a black
# screen whatever the PNG row filters, so count the non-zero bytes (C speed: this runs under TCG).
def drawn(path):
    data, pos, idat = open(path, "rb").read(), 8, b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        if data[pos + 4:pos + 8] == b"IDAT":
            idat += data[pos + 8:pos + 8 + length]
        pos += 12 + length
    raw = zlib.decompress(idat)
    return len(raw) - raw.count(0)
first, second = drawn(sys.argv[1]), drawn(sys.argv[2])
# Text on screen, and no more than the blinking cursor (8x2 pixels) changed in a second.
sys.exit(0 if second > 2000 and abs(first - second) <= 200 else 1)
PY
}
# serial_has TEXT: the guest's serial console has TEXT (what the tty1 shell wrote to /dev/ttyS0).
serial_has() { grep -qF -- "$1" "$work/serial"; }
# Random words OCR reads reliably from the console font (no digits: 5 reads as S; no v: u; no
# m: mm reads as nn; no g: a CI run read basketgarden as basketyarden).
words=(basket pepper pocket rocket candle copper forest pastel)
random_word() { echo "${words[RANDOM % ${#words[@]}]}${words[RANDOM % ${#words[@]}]}"; }
wait_until() {   # wait_until SECONDS CMD...
  local deadline=$((SECONDS + $1)); shift
  until "$@"; do ((SECONDS < deadline)) || return 1; sleep 1; done
}

echo "== boot with --display 1024x768 --vnc --vnc-view-only"
"$vmm" --kernel "$kernel" --initrd "$initrd" --memory 512M --cpus 2 \
  --cmdline "console=ttyS0 quiet corral.then=halt" --display 1024x768 \
  --vnc "unix:$work/vnc.sock" --vnc-view-only "unix:$work/ro.sock" --control "$work/control.sock" \
  >"$work/serial" 2>&1 </dev/null &
pid=$!
booted() { grep -q 'CORRAL-INIT: display' "$work/serial" || ! kill -0 "$pid" 2>/dev/null; }
wait_until 400 booted
check "the guest brought up its framebuffer and a shell on tty1 (CORRAL-INIT: display)" \
  grep -q 'CORRAL-INIT: display' "$work/serial" ||
  { tail -n 40 "$work/serial"; exit 1; }
check "the VNC sockets are there, mode 0600" test "$(stat -c %a "$work/vnc.sock" "$work/ro.sock" | sort -u)" = 600

echo "== 1: control screenshot"
size=$(screenshot "$work/shot.png")
check "screenshot answers 1024x768 (got ${size:-nothing})" test "$size" = 1024x768
check "  ... and a PNG file" bash -c "head -c 8 '$work/shot.png' | od -An -c | grep -q 'P   N   G'"
wait_until 120 screen_settled
cp "$work/b.png" "$work/now.png"
ocr "$work/now.png" >/dev/null
check "  ... where tesseract reads the prompt (corral)" test "$(ocr_count "$work/now.png" corral)" -ge 1 ||
  head -n 20 "$work/now.png.txt"

echo "== 2: vncsnapshot through a loopback TCP relay"
python3 - "$work/vnc.sock" "$work/port" <<'EOF' &
import os, socket, sys, threading
listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen(4)
open(sys.argv[2] + ".tmp", "w").write(str(listener.getsockname()[1]))
os.rename(sys.argv[2] + ".tmp", sys.argv[2])
def pipe(a, b):
    try:
        while data := a.recv(65536):
            b.sendall(data)
    except OSError:
        pass
    for s in (a, b):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
while True:
    client, _ = listener.accept()
    server = socket.socket(socket.AF_UNIX)
    server.connect(sys.argv[1])
    threading.Thread(target=pipe, args=(client, server), daemon=True).start()
    threading.Thread(target=pipe, args=(server, client), daemon=True).start()
EOF
relay=$!
wait_until 30 test -s "$work/port"
port=$(cat "$work/port")
timeout 60 vncsnapshot -quiet "127.0.0.1::$port" "$work/viewer.jpg" >/dev/null 2>&1
check "vncsnapshot captured the screen" test -s "$work/viewer.jpg"
viewer_size=$(file "$work/viewer.jpg" 2>/dev/null | grep -oE '[0-9]+x[0-9]+' | tail -n1)
check "  ... 1024x768 (got ${viewer_size:-?})" test "$viewer_size" = 1024x768
check "  ... where tesseract reads the prompt (corral)" bash -c "tesseract '$work/viewer.jpg' - 2>/dev/null | grep -q corral"

echo "== 3: typing through VNC; a second viewer"
word=$(random_word)
python3 - "$rfb" "$work/vnc.sock" "$word" "$work/watcher.png" "$work/stop" <<'EOF' >"$work/viewers" 2>&1 &
import importlib.util, os, sys, time
spec = importlib.util.spec_from_file_location("rfb_client", sys.argv[1])
rfb = importlib.util.module_from_spec(spec)
spec.loader.exec_module(rfb)
typist = rfb.RfbClient(sys.argv[2])
watcher = rfb.RfbClient(sys.argv[2])  # a second viewer, connected at the same time
watcher.refresh()
print("connected", flush=True)
typist.type_text("echo %s >/dev/ttyS0\n" % sys.argv[3])
# A round trip: the server has handled the keys before it answers.
typist.request_update(incremental=False, rect=(0, 0, 1, 1))
typist.read_update()
# The watcher follows the screen's updates until the test has seen the word (bounded).
deadline = time.monotonic() + 180
while not os.path.exists(sys.argv[5]) and time.monotonic() < deadline:
    watcher.request_update(incremental=True)
    watcher.wait_update(1)
watcher.refresh()
with open(sys.argv[4], "wb") as out:
    out.write(watcher.png())
print("%dx%d" % (watcher.width, watcher.height))
EOF
viewers=$!
# The typed command writes the word to the serial console: it ran in the tty1 shell.
check "  ... the command typed through VNC ran in the guest's tty1 shell ($word on the serial console)" \
  wait_until 120 serial_has "$word"
touch "$work/stop"
wait "$viewers"
check "two viewers were connected at once ($(tr '\n' ' ' <"$work/viewers"))" test "$(tail -n1 "$work/viewers")" = 1024x768
ocr "$work/watcher.png" >/dev/null
check "  ... and the second viewer, connected meanwhile, sees the typed line ($word, read by tesseract)" \
  test "$(ocr_count "$work/watcher.png" "$word")" -ge 1 || head -n 20 "$work/watcher.png.txt"

echo "== 4: a view-only viewer's keys change nothing"
ignored=$(random_word)
while [ "$ignored" = "$word" ]; do ignored=$(random_word); done
marker=$(random_word)
while [ "$marker" = "$ignored" ] || [ "$marker" = "$word" ]; do marker=$(random_word); done
timeout 60 python3 "$rfb" "$work/ro.sock" type "echo $ignored >/dev/ttyS0\n" >/dev/null 2>&1
check "the view-only viewer connected and sent its keys" test $? = 0
timeout 60 python3 "$rfb" "$work/vnc.sock" type "echo $marker >/dev/ttyS0\n" >/dev/null 2>&1
# Keys reach the guest in order: had the view-only keys got through, their line would have run first.
check "a full viewer's later command ran ($marker on the serial console)" wait_until 120 serial_has "$marker"
check "  ... and the view-only viewer's did not ($ignored)" bash -c "! grep -qF -- '$ignored' '$work/serial'"

echo "== 5: snapshot refused; stop"
answer=$(control "{\"action\":\"snapshot\",\"dir\":\"$work/snap\"}")
check "a snapshot is refused, naming the display" grep -q 'snapshots of VMs with a display are not supported yet' <<<"$answer" ||
  echo "   answer: $answer"
control '{"action":"stop"}' >/dev/null
status=0; wait "$pid" || status=$?
pid=""
check "control stop ends corral-vmm (exit $status)" test "$status" = 0
check "  ... and removes the VNC sockets" test ! -e "$work/vnc.sock" -a ! -e "$work/ro.sock"
grep -E 'corral-vmm: (warning|error)|Kernel panic|BUG|Oops|virtio_gpu.*(error|fail)' "$work/serial" | head -n 10

check_summary
