#!/usr/bin/env bash
# tests/e2e/emulated_root.sh: the guest root disk (rootfs.img) under QEMU TCG (the emulated
# engine's hypervisor; no KVM and no lab needed), driven like a user at the serial console.
#
# Boots the stock Debian kernel + initramfs on `qemu-system-x86_64 -accel tcg -M pc` with a
# qcow2 overlay over tools/guest-image's rootfs.img on virtio-blk, and the command line
#   console=ttyS0 corral.root=/dev/vda corral.then=shell corral.shutdown=graceful
# The serial console is a unix socket (-chardev socket,server=on,wait=off) that a small
# python3 client reads and types into. Checks, each printed with PASS/FAIL:
#   1. the initramfs switched to the disk ("CORRAL-INIT: root /dev/vda", "CORRAL-INIT: up");
#   2. the shell prompt "corral:~# " appears on the console;
#   3. typing `echo $((6*7))` echoes the command and prints 42;
#   4. QMP system_powerdown (the ACPI power button) -> "CORRAL-INIT: shutdown requested" ->
#      the guest powers off and QEMU exits 0; the file system on the overlay is clean
#      (e2fsck -n after qemu-img convert) and rootfs.img is unchanged.
# Exit status: 0 all passed, 1 a check failed, 77 skipped (reason printed).
# Ends with the line "N passed, N failed".
set -uo pipefail

script=$(readlink -f "${BASH_SOURCE[0]}")
repo=$(cd "$(dirname "$script")/../.." && pwd)

if [[ ${1:-} == -h || ${1:-} == --help ]]; then
  sed -n '2,/^set -uo/{/^set -uo/d;s/^# \{0,1\}//;p}' "$script"
  exit 0
fi

export PATH="$PATH:/usr/sbin:/sbin"
for tool in qemu-system-x86_64:qemu-system-x86 qemu-img:qemu-utils python3:python3 e2fsck:e2fsprogs; do
  if ! command -v "${tool%%:*}" >/dev/null 2>&1; then
    echo "SKIP: ${tool%%:*} is not installed (Debian package ${tool#*:})"
    exit 77
  fi
done

passed=0 failed=0
check() {   # check NAME COMMAND [ARGS...]
  local name=$1; shift
  if "$@"; then echo "PASS: $name"; passed=$((passed + 1)); else echo "FAIL: $name"; failed=$((failed + 1)); fi
}
has() { tr -d '\r' <"$work/console" | grep -q -- "$1"; }

kernel="" vmlinux="" initrd="" rootfs=""
eval "$("$repo/tools/guest-image" | grep -E '^(kernel|vmlinux|initrd|rootfs)=')" || exit 1
# The ELF vmlinux boots through PVH and skips the decompressor (seconds under TCG).
boot_kernel=${vmlinux:-$kernel}

work=$(mktemp -d "${TMPDIR:-/tmp}/emulated-root.XXXXXX")
qemu_pid=''
cleanup() {
  if [ -n "$qemu_pid" ]; then kill -KILL "$qemu_pid" 2>/dev/null; fi
  rm -rf -- "$work"
}
trap cleanup EXIT

base_sum=$(sha256sum <"$rootfs")
qemu-img create -q -f qcow2 -b "$rootfs" -F raw "$work/root.qcow2" || { echo "FAIL: qemu-img create"; exit 1; }

echo "== boot: root on virtio-blk (qcow2 over rootfs.img), corral.then=shell, QEMU TCG"
qemu-system-x86_64 -accel tcg -M pc -m 512M -smp 1 -nodefaults -no-user-config -display none \
  -kernel "$boot_kernel" -initrd "$initrd" \
  -append "console=ttyS0 quiet corral.root=/dev/vda corral.then=shell corral.shutdown=graceful" \
  -drive "file=$work/root.qcow2,format=qcow2,if=none,id=root" -device virtio-blk-pci,drive=root \
  -chardev "socket,id=con,path=$work/console.sock,server=on,wait=off" -serial chardev:con \
  -qmp "unix:$work/qmp.sock,server=on,wait=off" \
  >"$work/qemu.log" 2>&1 </dev/null &
qemu_pid=$!

# The console client: logs everything to $work/console, waits for the prompt, types a
# command, waits for its output, presses the power button over QMP and waits for the end.
# Prints one "STEP: ..." line per step it completed.
python3 - "$work" <<'PY' >"$work/client" 2>&1
import json, os, re, select, socket, sys, time

work = sys.argv[1]
log = open(os.path.join(work, "console"), "wb")
buf = b""
eof = False

def connect(path, deadline):
    while True:
        try:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(path)
            return s
        except OSError:
            s.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)

con = connect(os.path.join(work, "console.sock"), time.monotonic() + 30)

def read_until(pattern, seconds, start=0):
    """Reads the console until pattern (bytes regex) matches buf[start:]; False on timeout/EOF."""
    global buf, eof
    deadline = time.monotonic() + seconds
    while not re.search(pattern, buf[start:]):
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        r, _, _ = select.select([con], [], [], left)
        if not r:
            continue
        data = con.recv(4096)
        if not data:
            eof = True
            return False
        log.write(data); log.flush()
        buf += data
    return True

def step(name):
    print("STEP: " + name, flush=True)

if not read_until(rb"corral:~# ", 240):
    step("no prompt"); sys.exit(1)
step("prompt")
# Let the prompt settle (kernel messages may still arrive), then type like a user.
time.sleep(1)
mark = len(buf)
for ch in b"echo $((6*7))\r":
    con.sendall(bytes([ch]))
    time.sleep(0.02)
if read_until(rb"echo \$\(\(6\*7\)\)", 30, mark):
    step("echo")
if read_until(rb"\n42\r?\n", 30, mark):
    step("42")
if read_until(rb"corral:~# ", 30, mark):
    step("prompt again")

qmp = connect(os.path.join(work, "qmp.sock"), time.monotonic() + 10)
qf = qmp.makefile("rwb", buffering=0)
json.loads(qf.readline())                      # the greeting
def qmp_cmd(name):
    qf.write(json.dumps({"execute": name}).encode() + b"\n")
    while True:
        reply = json.loads(qf.readline())
        if "return" in reply or "error" in reply:
            return reply
qmp_cmd("qmp_capabilities")
reply = qmp_cmd("system_powerdown")
step("system_powerdown " + ("ok" if "return" in reply else json.dumps(reply)))
mark = len(buf)
if read_until(rb"CORRAL-INIT: shutdown requested", 60, mark):
    step("shutdown requested")
read_until(rb"(?!)", 60, mark)                 # to the end of the output (QEMU exits)
if eof:
    step("console closed")
PY
client_status=$?
sed 's/^/  client| /' "$work/client"

status=0
for _ in $(seq 1 300); do kill -0 "$qemu_pid" 2>/dev/null || break; sleep 0.2; done
if kill -0 "$qemu_pid" 2>/dev/null; then
  echo "  QEMU still running 60 s after the console closed: killing it"
  kill -KILL "$qemu_pid"
fi
wait "$qemu_pid" || status=$?
qemu_pid=''
tr -d '\r' <"$work/console" | sed 's/^/  guest| /' |
  grep -E 'CORRAL|corral:~#|^  guest\| 42$|Kernel panic|BUG|Oops|EXT4-fs (error|warning)' || true
sed 's/^/  qemu| /' "$work/qemu.log"

check "initramfs switched to the root disk (CORRAL-INIT: root /dev/vda)" has 'CORRAL-INIT: root /dev/vda'
check "disk init is up" has 'CORRAL-INIT: up'
check "shell prompt 'corral:~# ' on the console" grep -q '^STEP: prompt$' "$work/client"
check "typed command echoed" grep -q '^STEP: echo$' "$work/client"
check "echo \$((6*7)) printed 42" grep -q '^STEP: 42$' "$work/client"
check "QMP system_powerdown accepted" grep -q '^STEP: system_powerdown ok$' "$work/client"
check "guest printed 'CORRAL-INIT: shutdown requested'" has 'CORRAL-INIT: shutdown requested'
check "no remount failure" bash -c "! tr -d '\r' <'$work/console' | grep -q 'cannot remount'"
check "console closed (QEMU ended) after the power button" grep -q '^STEP: console closed$' "$work/client"
check "QEMU exited 0 after the guest powered off (got $status, client $client_status)" test "$status" = 0

echo "== host checks of the disk"
if qemu-img convert -f qcow2 -O raw "$work/root.qcow2" "$work/root.raw"; then
  fsck_ok() { e2fsck -n -f "$work/root.raw" >"$work/fsck" 2>&1 || { sed 's/^/  fsck| /' "$work/fsck"; return 1; }; }
  check "file system is clean (e2fsck -n -f)" fsck_ok
  check "no journal recovery pending" bash -c "! dumpe2fs -h '$work/root.raw' 2>/dev/null | grep -q needs_recovery"
else
  check "qemu-img convert root.qcow2" false
fi
check "rootfs.img is unchanged" test "$(sha256sum <"$rootfs")" = "$base_sum"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
