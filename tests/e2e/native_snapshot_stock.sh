#!/usr/bin/env bash
# tests/e2e/native_snapshot_stock.sh: snapshots of a stock Debian kernel guest on the native
# engine (corral-vmm on KVM), through a real corrald, three cycles in a row.
#
# The project's guest image boots on corral-vmm; its shell fills 32 MiB of tmpfs (guest memory)
# with random bytes and records their md5sum, writes a file to its root disk, and starts a loop
# that prints `tick N` every second. Then, three times: the VM is paused at tick N, a snapshot
# with memory is taken, the VM is killed, and the snapshot restored. Each time the guest goes on
# from where it was: its first tick is N+1 (N+2 when it was paused in the middle of a line), the
# tmpfs bytes still match their md5sum, the file is on its disk, and its clock was stepped by
# the time the VM spent saved (the first cycle waits 20 s before restoring: the guest's clock
# keeps its offset from the host's instead of falling 20 s behind). Inside the nested lab where
# this host's KVM cannot run guest kernels at speed (a scenario of the shared lab session).
# Then the same VM gets a 1024x768 display (the native engine through corrald, which no other
# test runs): it boots with its text console on the screen, `corral vm screenshot` writes a
# 1024x768 PNG, and a line typed by a VNC viewer through `corral vm vnc` runs in the guest.
# Exit 0 all passed, 1 a check failed, 77 skipped.
set -uo pipefail
script=$(readlink -f "${BASH_SOURCE[0]}")
repo=$(cd "$(dirname "$script")/../.." && pwd)
build_dir="${CORRAL_BUILD_DIR:-$repo/build}"
corral="$build_dir/src/cli/corral"

# shellcheck source=../lib/lab.sh
. "$repo/tests/lib/lab.sh"
lab_reexec 1500
# shellcheck source=../lib/guest.sh
. "$repo/tests/lib/guest.sh"
guest_image
# shellcheck source=../lib/corrald.sh
. "$repo/tests/lib/corrald.sh"
cleanup() {
  corrald_failure_report stock
  [ -n "$vnc_pid" ] && kill "$vnc_pid" 2>/dev/null
  if [ -n "$corrald_pid" ]; then api PUT /api/v1/vms/stock/state '{"action":"kill"}'; sleep 1; fi
  corrald_stop
  rm -rf -- "$state"
}
vnc_pid=""
trap cleanup EXIT
export CORRAL_SOCKET="$sock"
boot_wait=300

type_line() { printf '%s\n' "$1" | timeout 30 "$corral" vm console stock >/dev/null 2>&1; }
# The console since the VM's last start (a restore is one), as corrald keeps it.
console_now() { console_since_start stock; }
not_booted() { ! console_now | grep -q 'CORRAL-INIT: root'; }
ticks() { console_now | grep -oE '^tick [0-9]+$' | awk '{ print $2 }'; }
last_tick() { ticks | tail -n1; }
ticked_past() { local n; n=$(last_tick); [ -n "$n" ] && [ "$n" -gt "$1" ]; }
# The last tick the guest printed before its last start (the restore): lines that reached corrald
# only after the pause was read (a loaded lab) count too, as they were printed before the snapshot.
tick_before_restore() {
  api GET "/api/v1/vms/stock/console?tail=5000"
  tr -d '\r' <<<"$body" | awk -v mark="[corrald] stock started" '
    index($0, mark) { before = last; next }
    /^tick [0-9]+$/ { last = $2 }
    END { print before }'
}
# The guest's clock minus the host's, in seconds: the guest prints its `date +%s` under a fresh
# tag, and the host reads its own clock when the line shows up (a second or so later at most).
clock_offset() {   # clock_offset TAG
  local guest attempt deadline
  # Typed again when the line does not show up (a console attach can time out on a loaded host);
  # the echo of the typed command has `TAG=$(`, never TAG= and a digit.
  for attempt in 1 2 3; do
    type_line "echo \"$1=\$(date +%s)\""
    deadline=$((SECONDS + 20))
    while ((SECONDS < deadline)); do
      guest=$(console_now | grep -oE "$1=[0-9]+" | tail -n1 | cut -d= -f2)
      if [ -n "$guest" ]; then echo $((guest - $(date +%s))); return 0; fi
      sleep 0.3
    done
  done
  return 1
}

corrald_start || exit 1

echo "== image and VM"
api GET /api/v1/host
check "the native engine is available ($(jqb .engines.native.reason))" test "$(jqb .engines.native.available)" = true
import_guest_image debian
# `quiet`: the kernel's boot messages go out through the serial port polled a byte at a time, two
# exits a byte; stock kernels in the lab triple-fault now and then while printing them (CI's
# clean-clone run saw it twice in this scenario, the last exits always the port's LSR and THR), and
# this scenario boots twice. Nothing here reads the kernel's own lines: init's still show.
"$corral" vm create stock --image debian --engine native --cpus 2 --memory 256M --cmdline quiet >"$state/out" 2>&1
check "corral vm create stock --engine native --cpus 2 --cmdline quiet" test $? = 0 || cat "$state/out"
"$corral" vm start stock >"$state/out" 2>&1
check "corral vm start stock" test $? = 0 || cat "$state/out"
# A guest that is not up or died (stock kernels crash now and then in the lab: lab_session.sh)
# makes every later step wait out its timeout: stop here, with its state and reason (cleanup).
give_up() { echo "the guest is not there to go on with; stopping here"; check_summary; exit 1; }
check "the stock kernel boots to its shell prompt on corral-vmm" wait_console stock 'corral:~# ' "$boot_wait" || give_up
# The image's /dev is a devtmpfs without /dev/shm: the tmpfs is mounted here. Each step must work
# for the marker to be printed.
type_line 'mkdir -p /mem && mount -t tmpfs -o size=48m tmpfs /mem && dd if=/dev/urandom of=/mem/blob bs=1M count=32 2>/dev/null && md5sum /mem/blob >/blob.md5 && echo persisted >/file && sync && echo ready-$((1+1))'
check "the guest filled 32 MiB of tmpfs and wrote /file" wait_console stock 'ready-2' 120 || give_up
type_line '(i=0; while :; do i=$((i+1)); echo "tick $i"; sleep 1; done) &'
check "the guest ticks" wait_until 60 ticked_past 2
offset_before=$(clock_offset clock0)
check "the guest's clock is read (offset from the host: ${offset_before:-none} s)" test -n "$offset_before"

for cycle in 1 2 3; do
  echo "== cycle $cycle: pause, snapshot, kill, restore"
  "$corral" vm pause stock >"$state/out" 2>&1
  check "corral vm pause stock" test $? = 0 || cat "$state/out"
  # The lines the guest wrote before the pause reach corrald's scroll-back a moment later (more
  # than a second on a loaded host: CI once read tick 3 while the guest had paused at 5): read the
  # last tick once it has not changed for two seconds.
  at=$(last_tick)
  for _ in $(seq 10); do
    sleep 2
    now=$(last_tick)
    [ "$now" = "$at" ] && break
    at=$now
  done
  "$corral" vm snapshot create stock "c$cycle" >"$state/out" 2>&1
  check "corral vm snapshot create stock c$cycle (memory, paused at tick $at)" test $? = 0 || cat "$state/out"
  api GET "/api/v1/vms/stock/snapshots/c$cycle"
  check "  ... kind memory, ready" test "$(jqb .kind),$(jqb .status)" = memory,ready
  "$corral" vm kill stock >/dev/null 2>&1
  check "the VM is killed" wait_state stock stopped 30
  if [ "$cycle" = 1 ]; then
    echo "   (20 s pass before the restore: the guest's clock must not show them missing)"
    sleep 20
  fi
  "$corral" vm snapshot revert stock "c$cycle" >"$state/out" 2>&1
  check "corral vm snapshot revert stock c$cycle" test $? = 0 || cat "$state/out"
  api GET /api/v1/vms/stock
  check "  ... the VM runs (restored, not booted)" test "$(jqb .state)" = running
  check "  ... it ticks again" wait_until 60 ticked_past $((at + 2))
  first=$(ticks | head -n1)
  before=$(tick_before_restore)
  [ "${before:-0}" -gt "$at" ] && echo "   (ticks up to $before reached the console after the pause was read at $at)"
  check "  ... its first tick ($first) goes on from ${before:-none}" test "$first" = $((before + 1)) -o "$first" = $((before + 2)) ||
    { echo "---- the console around the restore:"; api GET "/api/v1/vms/stock/console?tail=60"; tr -d '\r' <<<"$body"; }
  check "  ... and the kernel did not boot again" not_booted
  type_line "md5sum -c /blob.md5 && echo \"blob-ok-\$((${cycle}00+1))\"; echo \"file-\$(cat /file)-$cycle\""
  check "  ... the 32 MiB in guest memory match their md5sum" wait_console stock "blob-ok-${cycle}01" 60
  check "  ... /file is on its disk" wait_console stock "file-persisted-$cycle" 60
  offset=$(clock_offset "clock$cycle")
  drift=$(( ${offset:-9999} - offset_before ))
  check "  ... its clock kept its offset from the host's (now ${offset:-none} s, was $offset_before s)" \
    test "${drift#-}" -le 5
done

echo "== a backup of the running native VM (corral-vmm snapshots its open disks)"
"$corral" backup repo create main --path "$state/repo" >"$state/out" 2>&1
check "corral backup repo create main" test $? = 0 || cat "$state/out"
"$corral" backup create stock >"$state/out" 2>&1
check "corral backup create stock, while it runs" test $? = 0 || cat "$state/out"
check "  ... saying it was taken while it ran" grep -q "taken while it ran" "$state/out" || cat "$state/out"
at=$(last_tick)
check "  ... the guest ticks on after it" wait_until 60 ticked_past "${at:-0}"
root_disk=$(api GET /api/v1/vms/stock; jqb '.disks[0] | "\(.pool)/\(.volume)"')
root_path=$(api GET "/api/v1/volumes/$root_disk"; jqb .path)
check "  ... and no corral-backup-* snapshot is left in its disk" \
  bash -c "! qemu-img snapshot -l -U '$root_path' | grep -q corral-backup"
backup_id=$(api GET "/api/v1/backups?vm=stock"; jqb '.[0].id')
"$corral" backup verify "$backup_id" >"$state/out" 2>&1
check "corral backup verify $backup_id: every chunk re-read and matching" test $? = 0 || cat "$state/out"

echo "== a display on the native engine, through corrald"
"$corral" vm kill stock >/dev/null 2>&1
wait_state stock stopped 30
"$corral" vm edit stock --display 1024x768 >"$state/out" 2>&1
check "corral vm edit stock --display 1024x768" test $? = 0 || cat "$state/out"
"$corral" vm start stock >"$state/out" 2>&1
check "corral vm start stock (corral-vmm with a display and its VNC socket)" test $? = 0 || cat "$state/out"
check "  ... the guest's text console is on its screen" wait_console stock 'CORRAL-INIT: display' "$boot_wait"
"$corral" vm screenshot stock "$state/screen.png" >"$state/out" 2>&1
check "corral vm screenshot stock: a 1024x768 PNG (was $(png_size "$state/screen.png"))" \
  test "$(png_size "$state/screen.png")" = 1024x768
"$corral" vm vnc stock --listen 127.0.0.1:0 >"$state/vnc.out" 2>&1 &
vnc_pid=$!
vnc_port() { sed -n 's/^VNC for stock on 127\.0\.0\.1:\([0-9]*\) .*/\1/p' "$state/vnc.out"; }
vnc_listening() { [ -n "$(vnc_port)" ]; }
check "corral vm vnc stock --listen 127.0.0.1:0 listens" wait_until 10 vnc_listening
# The tty1 shell's answer goes to the serial console, which corrald keeps: no OCR needed.
# Typed again if the answer does not show: keys that come before tty1's shell opens it are lost.
typed_word="vnc$RANDOM"
type_on_screen() {
  python3 "$repo/tests/lib/rfb_client.py" "127.0.0.1:$(vnc_port)" type \
    "echo $typed_word-\$((6*7)) >/dev/ttyS0\n" >"$state/out" 2>&1 || { cat "$state/out"; return 1; }
}
typed_and_ran() { type_on_screen && wait_console stock "$typed_word-42" 20; }
check "a line typed by a viewer through corrald's relay runs in the guest ($typed_word-42 on its serial console)" \
  wait_until 60 typed_and_ran
kill "$vnc_pid" 2>/dev/null; vnc_pid=""

echo "== delete"
"$corral" vm kill stock >/dev/null 2>&1
wait_state stock stopped 30
"$corral" vm delete stock >"$state/out" 2>&1
check "corral vm delete stock (and its snapshots)" test $? = 0 || cat "$state/out"
check "  ... the snapshot folders are gone" test -z "$(ls -A "$state/snapshots/stock" 2>/dev/null)"

check_summary
