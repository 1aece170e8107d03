#!/usr/bin/env bash
# tests/e2e/virtio_rng_console.sh: virtio-rng and virtio-console over PCI, with the stock kernel.
#
# Boots the stock Debian kernel under corral-vmm with --rng --virtio-console (2 vCPUs) and has
# the guest prove, by what it prints, that:
#   1. /sys/bus/pci/devices shows the host bridge (8086:0d57) and two virtio devices
#      (1af4:1043 console, 1af4:1044 entropy), both bound to the virtio-pci driver;
#   2. the kernel's hwrng is virtio_rng and `head -c 64 /dev/hwrng` gives 64 bytes, not all zero;
#   3. a line "hello-hvc" written to /dev/hvc0 shows up, as its own line, in corral-vmm's output;
#   4. the virtio devices' MSI-X interrupts arrived (PCI-MSI counts in /proc/interrupts);
#   5. the guest powers off and corral-vmm exits 0;
# then boots once more without the options and checks no virtio device is present (opt-in);
# then boots with --virtio-console socket=PATH: a client on that socket sends a line, the guest
# reads it from /dev/hvc0 and writes it back, and the client reads the echo (hvc0 input);
# then boots a 512 MiB guest with --balloon: the control socket's `balloon` action asks it to keep
# 256 MiB, and the guest's own MemAvailable drops by at least 200 MiB; the action's answer has the
# balloon's actual size and the guest's statistics.
# Needs python3 for the socket clients.
# Where /dev/kvm runs guest kernel code at speed the boots run directly; otherwise the whole
# script re-runs itself inside the nested lab (tools/lab).
# Exit status: 0 all passed, 1 a check failed, 77 skipped (reason printed).
# Ends with the line "N passed, N failed".
set -uo pipefail

script=$(readlink -f "${BASH_SOURCE[0]}")
repo=$(cd "$(dirname "$script")/../.." && pwd)
build_dir="${CORRAL_BUILD_DIR:-$repo/build}"

if [[ ${1:-} == -h || ${1:-} == --help ]]; then
  sed -n '2,/^set -uo/{/^set -uo/d;s/^# \{0,1\}//;p}' "$script"
  exit 0
fi

# shellcheck source=../lib/lab.sh
. "$repo/tests/lib/lab.sh"
lab_vmm_begin 1200

work=$(mktemp -d "${TMPDIR:-/tmp}/virtio-e2e.XXXXXX")
trap 'rm -rf -- "$work"' EXIT

# shellcheck source=../lib/check.sh
. "$repo/tests/lib/check.sh"
has() { grep -q -- "$2" "$work/$1"; }
has_line() { tr -d '\r' <"$work/$1" | grep -qx -- "$2"; }   # tty output ends lines with CR LF

# The guest's side: list PCI functions, read the hwrng, count MSI interrupts, write to hvc0.
# hvc0 and ttyS0 share corral-vmm's stdout, and hvc0 output is immediate while the serial port
# drains byte by byte: the hvc0 line comes last, after a pause, between newlines, so that
# neither console's line is cut by the other.
# shellcheck disable=SC2016  # expanded by the guest's shell
guest_script='
for d in /sys/bus/pci/devices/*; do
  drv=$(readlink "$d/driver"); echo "PCI ${d##*/} $(cat "$d/vendor"):$(cat "$d/device") driver=${drv##*/}"
done
echo "HWRNG-CURRENT: $(cat /sys/class/misc/hw_random/rng_current 2>/dev/null)"
echo "HWRNG-BYTES: $(head -c 64 /dev/hwrng | od -An -tx1 | tr -d " \n")"
awk "/PCI-MSI/ && /virtio/ { s = 0; for (i = 2; i <= NF && \$i ~ /^[0-9]+\$/; i++) s += \$i; print \"MSI \" \$NF \" \" s }" /proc/interrupts
sleep 3
printf "\nhello-hvc\n" > /dev/hvc0
'
run=$("$repo/tools/guest-image" encode-run "$guest_script")

boot() {   # boot NAME CMDLINE [corral-vmm args...]: output in $work/NAME, status in $work/NAME.rc
  local name=$1 line=$2; shift 2
  local status=0
  timeout 600 "$vmm" --kernel "$kernel" --initrd "$initrd" --memory 512M --cpus 2 --cmdline "$line" "$@" \
    >"$work/$name" 2>&1 </dev/null || status=$?
  echo "$status" >"$work/$name.rc"
  sed "s/^/  $name| /" "$work/$name" | grep -E 'CORRAL|PCI |HWRNG|MSI |hello-hvc|HVC|corral-vmm: (warning|error)|Kernel panic|BUG|Oops' || true
}

echo "== 1: --rng --virtio-console"
boot virtio "console=ttyS0 quiet $run corral.then=poweroff" --rng --virtio-console
check "host bridge 8086:0d57 at 00:00.0" has virtio 'PCI 0000:00:00.0 0x8086:0x0d57'
check "virtio-console 1af4:1043 bound to virtio-pci" has virtio 'PCI 0000:00:0[0-9a-f].0 0x1af4:0x1043 driver=virtio-pci'
check "virtio-rng 1af4:1044 bound to virtio-pci" has virtio 'PCI 0000:00:0[0-9a-f].0 0x1af4:0x1044 driver=virtio-pci'
check "the kernel's hwrng is virtio_rng" has virtio 'HWRNG-CURRENT: virtio_rng'
bytes=$(sed -n 's/^HWRNG-BYTES: \([0-9a-f]*\).*/\1/p' "$work/virtio" | head -1)
check "/dev/hwrng gave 64 bytes (got ${#bytes} hex digits)" test "${#bytes}" -eq 128
check "the bytes are not all zero" bash -c "[[ '$bytes' =~ [1-9a-f] ]]"
check "hello-hvc written to /dev/hvc0 appears in corral-vmm's output" has_line virtio 'hello-hvc'
msi=$(awk '/^MSI / { s += $3 } END { print s + 0 }' "$work/virtio")
check "virtio MSI-X interrupts arrived ($msi)" test "$msi" -gt 0
check "the guest command succeeded" has virtio 'CORRAL-EXIT: 0'
check "guest poweroff ends corral-vmm with exit 0" test "$(cat "$work/virtio.rc")" = 0

echo "== 2: without the options (both devices are opt-in)"
boot plain "console=ttyS0 quiet $run corral.then=poweroff"
check "host bridge present" has plain 'PCI 0000:00:00.0 0x8086:0x0d57'
check "no virtio PCI device" bash -c "! grep -q 'PCI .* 0x1af4:' '$work/plain'"
check "guest poweroff ends corral-vmm with exit 0" test "$(cat "$work/plain.rc")" = 0

echo "== 3: --virtio-console socket=PATH: hvc0 both ways"
# The guest turns echo off, says it is ready, reads one line from hvc0 and writes it back; a
# client on the socket waits for the ready line, sends its line and waits for the echo.
# shellcheck disable=SC2016  # expanded by the guest's shell
hvc_script='
exec 3<>/dev/hvc0
stty -F /dev/hvc0 -echo
echo HVC-READY >&3
read -r line <&3
echo "HVC-ECHO: $line" >&3
echo "GUEST-HVC-GOT: $line"
'
hvc_run=$("$repo/tools/guest-image" encode-run "$hvc_script")
python3 - "$work/hvc.sock" >"$work/hvc-client" 2>&1 <<'PY' &
import socket, sys, time
deadline = time.monotonic() + 500
while True:
    try:
        s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); break
    except OSError:
        if time.monotonic() > deadline: sys.exit("no socket")
        time.sleep(0.2)
s.settimeout(500)
seen = b""
def wait_for(text):
    global seen
    while text not in seen:
        data = s.recv(4096)
        if not data: sys.exit(f"socket closed before {text!r}; saw {seen!r}")
        seen += data
wait_for(b"HVC-READY")
print("CLIENT: guest ready, sending", flush=True)
s.sendall(b"hello-from-host-42\n")
wait_for(b"HVC-ECHO: hello-from-host-42")
print("CLIENT-GOT-ECHO: hello-from-host-42", flush=True)
PY
client_pid=$!
boot hvc "console=ttyS0 quiet $hvc_run corral.then=poweroff" --virtio-console "socket=$work/hvc.sock"
kill "$client_pid" 2>/dev/null; wait "$client_pid" 2>/dev/null
sed 's/^/  client| /' "$work/hvc-client"
check "the guest read the line the host sent to hvc0" has hvc 'GUEST-HVC-GOT: hello-from-host-42'
check "the host read the guest's echo from the hvc0 socket" has hvc-client 'CLIENT-GOT-ECHO: hello-from-host-42'
check "hvc0 output stays off the serial console" bash -c "! grep -q 'HVC-READY' '$work/hvc'"
check "guest poweroff ends corral-vmm with exit 0" test "$(cat "$work/hvc.rc")" = 0

echo "== 4: --balloon: the guest gives memory back"
# The guest prints its MemAvailable (the most of 5 readings 1 s apart), then waits (up to 120 s)
# for it to drop by 200 MiB and prints it. Not MemFree: a lab run with page cache in the guest saw
# MemFree drop by only 137 MiB while the balloon held its 256 MiB (the kernel reclaimed cache to
# give the balloon its pages); MemAvailable counts that cache.
# then it stays up 20 s, for the host's read 4 s later (3 s was too short: the guest had powered
# off by the time the read came).
# shellcheck disable=SC2016  # expanded by the guest's shell
balloon_script='
free() { awk "/^MemAvailable:/ { print \$2 }" /proc/meminfo; }
f0=0; for n in 1 2 3 4 5; do f=$(free); [ "$f" -gt "$f0" ] && f0=$f; sleep 1; done
echo "BALLOON-BEFORE: $f0"
i=0; f=$f0
while [ $i -lt 120 ] && [ $((f0 - f)) -lt 204800 ]; do sleep 1; f=$(free); i=$((i + 1)); done
echo "BALLOON-AFTER: $f"
sleep 20
'
balloon_run=$("$repo/tools/guest-image" encode-run "$balloon_script")
# The host's side: once the guest printed its MemAvailable, ask it to keep 256 MiB; once it printed
# the drop, read the balloon (the stats queue has had 2 s intervals by then).
python3 - "$work/balloon.sock" "$work/balloon" >"$work/balloon-client" 2>&1 <<'PY' &
import socket, sys, time
def request(line):
    s = socket.socket(socket.AF_UNIX); s.settimeout(60); s.connect(sys.argv[1])
    s.sendall(line.encode() + b"\n")
    data = b""
    while not data.endswith(b"\n"):
        chunk = s.recv(65536)
        if not chunk: break
        data += chunk
    return data.decode().strip()
def wait_for(text):
    deadline = time.monotonic() + 500
    while time.monotonic() < deadline:
        try:
            if text in open(sys.argv[2]).read(): return
        except OSError: pass
        time.sleep(0.5)
    sys.exit(f"no {text}")
wait_for("BALLOON-BEFORE")
print("SET:", request('{"action":"balloon","target_bytes":268435456}'), flush=True)
wait_for("BALLOON-AFTER")
time.sleep(4)
print("READ:", request('{"action":"balloon"}'), flush=True)
PY
client_pid=$!
boot balloon "console=ttyS0 quiet $balloon_run corral.then=poweroff" --balloon --control "$work/balloon.sock"
wait "$client_pid" 2>/dev/null
sed 's/^/  client| /' "$work/balloon-client"
before=$(sed -n 's/^BALLOON-BEFORE: \([0-9]*\).*/\1/p' "$work/balloon" | head -1)
after=$(sed -n 's/^BALLOON-AFTER: \([0-9]*\).*/\1/p' "$work/balloon" | head -1)
check "the balloon action was accepted" grep -q '^SET: {.*"ok":true' "$work/balloon-client"
check "the guest's MemAvailable dropped by at least 200 MiB (${before:-?} -> ${after:-?} KiB)" \
  bash -c "[ -n '$before' ] && [ -n '$after' ] && [ $(( ${before:-0} - ${after:-0} )) -ge 204800 ]"
read_answer=$(sed -n 's/^READ: //p' "$work/balloon-client")
check "the balloon holds about 256 MiB (actual_bytes at most 260 MiB)" \
  python3 -c 'import json, sys; a = json.loads(sys.argv[1]); sys.exit(0 if a["ok"] and a["actual_bytes"] <= 260 << 20 and a["target_bytes"] == 256 << 20 else 1)' "$read_answer"
check "the guest's statistics arrived (free and total)" \
  python3 -c 'import json, sys; a = json.loads(sys.argv[1]); sys.exit(0 if a["guest_total_bytes"] and a["guest_free_bytes"] is not None and a["rejected_pfns"] == 0 else 1)' "$read_answer"
check "guest poweroff ends corral-vmm with exit 0" test "$(cat "$work/balloon.rc")" = 0

check_summary
