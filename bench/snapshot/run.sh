#!/usr/bin/env bash
# Compares corrald's snapshots of a running VM on the emulated engine with QEMU's own savevm and
# loadvm, on the same guest in the same run (issue 12): how much corrald's orchestration (CLI,
# API, task, inventory, process start under its shim) adds over what QEMU itself does.
#   corral: a VM (the project's test guest, tests/lib/guest.sh) whose guest fills a tmpfs with
#     --dirty MiB of random data at boot (memory the snapshot must carry; zero pages cost QEMU
#     next to nothing); `corral vm snapshot create` (memory + disks) timed, the VM killed,
#     `corral vm snapshot restore` timed (a new QEMU with -loadvm, until the task ends: running).
#   QEMU: the same QEMU command line corrald used for that VM (read from /proc/PID/cmdline; its
#     passed descriptors replaced by the paths they name, and a fresh overlay of the same image
#     as its disk), driven over QMP: `savevm` timed, `loadvm` into the running QEMU timed, then
#     QEMU quit and started again with -loadvm, timed until QMP says running (what corrald does).
# After each restore the guest's shell must answer on its console. Prints seconds, the snapshot's
# size (QEMU's vm-state-size and the qcow2 file's growth) and ratios corral/QEMU (above 1: corral
# is slower or bigger). The two VMs never run at the same time. Not a test: nothing fails on a
# number. Root (corrald). Exit 77 when QEMU, jq, curl or python3 is missing.
# --runs N snapshots in a row (default 3), each restored --restores N times (default 3; QEMU's
# loadvm as often) before the next is taken; --smoke: 256 MiB, 16 MiB dirtied, 1 and 1.
# usage: bench/snapshot/run.sh [--smoke] [--memory MiB] [--dirty MiB] [--runs N] [--restores N]
set -uo pipefail
script=$(readlink -f "${BASH_SOURCE[0]}")
here=$(dirname "$script")
repo=$(cd "$here/../.." && pwd)
build_dir="${CORRAL_BUILD_DIR:-$repo/build}"
corral="$build_dir/src/cli/corral"
memory=512 dirty=256 runs=3 restores=3
# shellcheck source=../lib/options.sh
. "$repo/bench/lib/options.sh"
bench_options '[--smoke] [--memory MiB] [--dirty MiB] [--runs N] [--restores N]' \
  '--smoke:memory=256 dirty=16 runs=1 restores=1' --memory=memory --dirty=dirty --runs=runs --restores=restores -- "$@"
bench_numbers 1 "--memory, --dirty, --runs and --restores" "$memory" "$dirty" "$runs" "$restores"
((dirty + 64 <= memory)) || bench_usage_error "--dirty $dirty MiB leaves the guest less than 64 MiB of its --memory $memory"
for tool in jq curl qemu-img python3; do
  command -v "$tool" >/dev/null || { echo "SKIP: $tool is not installed"; exit 77; }
done
[ -x "$corral" ] || { echo "SKIP: no corral at $corral (build first, or set CORRAL_BUILD_DIR)"; exit 77; }
# shellcheck source=../../tests/lib/guest.sh
. "$repo/tests/lib/guest.sh"
guest_image
# shellcheck source=../../tests/lib/corrald.sh
. "$repo/tests/lib/corrald.sh"
peer=$state/peer
peer_pid=""
cleanup() {
  [ -n "$peer_pid" ] && kill "$peer_pid" 2>/dev/null
  if [ -n "$corrald_pid" ]; then
    api PUT /api/v1/vms/snap/state '{"action":"kill"}'
    sleep 1
  fi
  corrald_stop
  rm -rf -- "$state"
}
trap cleanup EXIT
export CORRAL_SOCKET="$sock"
die() { echo "run.sh: $*" >&2; corrald_failure_report snap; exit 1; }
failed=1   # corrald_failure_report's switch: every die() reports

# Wall-clock seconds of a command (its output to $state/out).
timed() {
  local TIMEFORMAT=%R t
  t=$( { time "$@" >"$state/out" 2>&1; } 2>&1 ) || { cat "$state/out" >&2; return 1; }
  echo "$t"
}
allocated() { du -B1 "$1" | cut -f1; }
state_bytes() {  # qcow2 snapshot: QEMU's vm-state-size of snapshot TAG in FILE
  qemu-img info -U --output=json "$1" | jq -r --arg t "$2" '.snapshots[] | select(.name == $t) | ."vm-state-size"'
}

echo "== corral: a ${memory} MiB VM whose guest dirties ${dirty} MiB"
corrald_start --default-engine emulated || exit 1
import_guest_image guest "console=ttyS0 panic=-1"
[ "$(jqb .status)" = succeeded ] || die "the guest image did not import"
fill="mkdir -p /fill && mount -t tmpfs -o size=$((dirty + 8))m tmpfs /fill && dd if=/dev/urandom of=/fill/data bs=1M count=$dirty 2>/dev/null && echo DIRTIED-\$(du -m /fill/data | cut -f1)-MiB"
run_arg=$("$repo/tools/guest-image" encode-run "$fill")
api POST /api/v1/vms "$(jq -n --argjson m "$memory" --arg r "$run_arg" \
  '{name: "snap", image: "guest", memory_mib: $m, cmdline: ("corral.root=/dev/vda " + $r + " corral.then=shell")}')"
[ "$code" = 201 ] || die "VM snap not defined: $code $body"
"$corral" vm start snap >"$state/out" 2>&1 || die "corral vm start snap: $(cat "$state/out")"
wait_console snap "DIRTIED-$dirty-MiB" 900 || die "the guest did not dirty its memory"
wait_console snap 'corral:~# ' 60 || die "the guest's shell did not start"

# The QEMU command line corrald used, for the peer: what corrald passes as descriptors (the
# console and QMP listening sockets, the console log, the disk's layers as -add-fd sets, which
# QEMU duplicates and closes) becomes paths of the peer's own; its disk is a fresh overlay of
# the same image, as the VM's volume is.
api GET /api/v1/vms/snap
qpid=$(jqb .pid)
[ "$(jqb '.disks | length')" = 1 ] || die "VM snap has $(jqb '.disks | length') disks; the peer expects 1"
api GET "/api/v1/volumes/$(jqb '.disks[0].pool')/$(jqb '.disks[0].volume')"
top_disk=$(jqb .path)
backing=$(qemu-img info -U --output=json "$top_disk" | jq -r '."full-backing-filename" // empty')
backing_format=$(qemu-img info -U --output=json "$top_disk" | jq -r '."backing-filename-format" // empty')
[ -n "$backing" ] || die "VM snap's disk $top_disk has no backing image (the peer needs a fresh overlay of it)"
[ -r "/proc/$qpid/cmdline" ] || die "no process $qpid for VM snap"
if ! tr '\0' '\n' <"/proc/$qpid/cmdline" | head -1 | grep -q qemu-system; then
  qpid=$(pgrep -P "$qpid" -f qemu-system | head -1)   # corral-shim's child
fi
mapfile -d '' -t corral_args <"/proc/$qpid/cmdline"
mkdir -p "$peer"
# An fd set (/dev/fdset/N) is the file corrald opened for the option that names it: the console
# log, the disk's top layer (the peer's is a fresh overlay of the same image) or a backing layer,
# by its depth (the image's own files, which QEMU only reads). Any other option naming one is one
# this script does not know: it stops rather than guess.
mapfile -t chain < <(qemu-img info -U --backing-chain --output=json "$top_disk" | jq -r '.[].filename')
peer_file() {   # peer_file OPTION: sets $file to the peer's file for the fd set OPTION names
  local option=$1 depth=0
  while [[ $option == backing.* ]]; do option=${option#backing.}; depth=$((depth + 1)); done
  case $option in
    logfile) ((depth == 0)) && file="$peer/console.log" ;;
    file) ((depth == 0)) && file="$peer/disk.qcow2" ;;
    file.filename) ((depth > 0)) && [ -n "${chain[depth]:-}" ] && file=${chain[depth]} ;;
    *) false ;;
  esac
}
declare -A set_file set_of   # N -> the peer's file and back: one set, one file, in all the arguments
declare -A socket_file=([con]=console.sock [qmp]=qmp.sock)
peer_args=() i=0
while ((i < ${#corral_args[@]})); do
  arg=${corral_args[i]}
  case "$arg" in
    -add-fd) i=$((i + 2)); continue ;;
    -netdev) die "the VM has a NIC; this benchmark's peer has none" ;;
    -name) peer_args+=(-name corral-bench-peer,debug-threads=on); i=$((i + 2)); continue ;;
    -kernel|-initrd)  # relative to QEMU's folder (corrald's copies), which goes with the VM
      cp "/proc/$qpid/cwd/${corral_args[i + 1]}" "$peer/${arg#-}"
      peer_args+=("$arg" "$peer/${arg#-}"); i=$((i + 2)); continue ;;
  esac
  # corrald's listening sockets (console, QMP): the peer listens on paths of its own.
  if [[ "$arg" =~ ^socket,id=(con|qmp),fd=[0-9]+(,.*)?$ ]]; then
    arg="socket,id=${BASH_REMATCH[1]},path=$peer/${socket_file[${BASH_REMATCH[1]}]}${BASH_REMATCH[2]}"
  fi
  while [[ "$arg" =~ (^|,)([a-z.-]+)=/dev/fdset/([0-9]+)(,|$) ]]; do
    match=${BASH_REMATCH[0]} before=${BASH_REMATCH[1]} option=${BASH_REMATCH[2]} set=${BASH_REMATCH[3]} after=${BASH_REMATCH[4]}
    peer_file "$option" || die "corrald's QEMU names fd set $set by $option, which this script cannot map: ${corral_args[i]}"
    [ "${set_file[$set]:-$file}" = "$file" ] && [ "${set_of[$file]:-$set}" = "$set" ] ||
      die "corrald's fd sets are not one to one with the files (set $set, $option: $file): ${corral_args[i]}"
    set_file[$set]=$file set_of[$file]=$set
    arg=${arg/"$match"/"$before$option=$file$after"}
  done
  [[ "$arg" == */dev/fdset/* ]] && die "corrald's QEMU takes an argument this script cannot map: $arg"
  peer_args+=("$arg")
  i=$((i + 1))
done
qemu-img create -q -f qcow2 -b "$backing" -F "$backing_format" "$peer/disk.qcow2" ||
  die "cannot make the peer's overlay of $backing"
printf '%q ' "${peer_args[@]}" >"$peer/cmdline"

declare -A secs size grow
median() { tr ' ' '\n' | grep . | sort -g | awk '{ v[NR] = $1 } END { printf "%.3f\n", (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
for ((r = 1; r <= runs; r++)); do
  before=$(allocated "$top_disk")
  t=$(timed "$corral" vm snapshot create snap "s$r") || die "corral vm snapshot create snap s$r failed"
  secs[corral_save]+=" $t"
  grow[corral]+=" $(( $(allocated "$top_disk") - before ))"
  api GET "/api/v1/vms/snap/snapshots/s$r"
  size[corral]+=" $(jqb .size_bytes)"
  line="run $r: create $t s, restore"
  for ((k = 1; k <= restores; k++)); do
    api PUT /api/v1/vms/snap/state '{"action":"kill"}'
    wait_state snap stopped 60 || die "VM snap did not stop"
    t=$(timed "$corral" vm snapshot restore snap "s$r") || die "corral vm snapshot restore snap s$r failed"
    secs[corral_restore]+=" $t" line+=" $t"
    printf 'echo restored-%s-%s-$((6*7))\n' "$r" "$k" | timeout 30 "$corral" vm console snap >/dev/null 2>&1
    wait_console snap "restored-$r-$k-42" 120 || die "the guest's shell does not answer after restore $r.$k"
  done
  echo "$line s"
done
api PUT /api/v1/vms/snap/state '{"action":"kill"}'
wait_state snap stopped 60 || die "VM snap did not stop"

echo "== QEMU: the same command line, savevm and loadvm over QMP"
peer_start() {  # [-loadvm TAG]: sets peer_secs (to running) and peer_pid
  rm -f "$peer/qmp.sock" "$peer/console.sock"
  python3 "$here/qmp.py" start "$peer/qmp.sock" "$peer/qemu.log" -- "${peer_args[@]}" "$@" >"$state/out" ||
    die "the peer QEMU did not start: $(tail -5 "$peer/qemu.log")"
  read -r peer_secs peer_pid <"$state/out"
}
peer_quit() {
  python3 "$here/qmp.py" qmp "$peer/qmp.sock" quit >/dev/null 2>&1
  for ((j = 0; j < 100; j++)); do kill -0 "$peer_pid" 2>/dev/null || break; sleep 0.1; done
  kill "$peer_pid" 2>/dev/null; peer_pid=""
}
peer_console() {  # LINE EXPECT
  python3 "$here/qmp.py" console "$peer/console.sock" "$1" "$2" 120
}
peer_start
wait_until 900 grep -q "DIRTIED-$dirty-MiB" "$peer/console.log" || die "the peer's guest did not dirty its memory"
wait_until 60 grep -q 'corral:~# ' "$peer/console.log" || die "the peer's guest shell did not start"
for ((r = 1; r <= runs; r++)); do
  before=$(allocated "$peer/disk.qcow2")
  t=$(python3 "$here/qmp.py" hmp "$peer/qmp.sock" "savevm s$r") || die "QEMU savevm s$r failed"
  secs[qemu_save]+=" $t"
  grow[qemu]+=" $(( $(allocated "$peer/disk.qcow2") - before ))"
  size[qemu]+=" $(state_bytes "$peer/disk.qcow2" "s$r")"
  line="run $r: savevm $t s, loadvm"
  for ((k = 1; k <= restores; k++)); do
    t=$(python3 "$here/qmp.py" hmp "$peer/qmp.sock" "loadvm s$r") || die "QEMU loadvm s$r failed"
    secs[qemu_loadvm]+=" $t" line+=" $t"
  done
  line+=" s, -loadvm start"
  for ((k = 1; k <= restores; k++)); do
    peer_quit
    peer_start -loadvm "s$r"
    secs[qemu_restore]+=" $peer_secs" line+=" $peer_secs"
    peer_console "echo restored-$r-$k-\$((6*7))" "restored-$r-$k-42" ||
      die "the peer's shell does not answer after restore $r.$k"
  done
  echo "$line s"
done
peer_quit

ratio() { awk -v c="$1" -v p="$2" 'BEGIN { printf "%.2f", (p > 0 ? c / p : 0) }'; }
mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }
echo
echo "VM: ${memory} MiB, 1 vCPU, ${dirty} MiB dirtied by the guest; QEMU TCG; $(nproc) CPUs; $(date -u +%F); medians of $runs snapshots, $((runs * restores)) restores"
printf '%-52s %10s %10s %8s\n' "figure" corral QEMU corral/QEMU
row() { printf '%-52s %10s %10s %8s\n' "$1" "$2" "$3" "$(ratio "$2" "$3")"; }
# The first snapshot and the later ones apart: each later one is taken after a restore, and a
# savevm after a loadvm is QEMU's slow case (2026-12-07, 512 MiB: ~40 s against under 2 s for a
# savevm after a savevm; under 2 s too with the qcow2 option lazy-refcounts=on or without flushes:
# qcow2 copies on write the clusters the loaded snapshot still shares, a flush for each).
first() { awk '{ print $1 }' <<<"$1"; }
later() { cut -d' ' -f3- <<<"$1" | median; }
row "first snapshot with memory, s (CLI / savevm)" "$(first "${secs[corral_save]}")" "$(first "${secs[qemu_save]}")"
((runs > 1)) && row "later snapshots, after a restore, s (same)" "$(later "${secs[corral_save]}")" "$(later "${secs[qemu_save]}")"
cr=$(median <<<"${secs[corral_restore]}") qr=$(median <<<"${secs[qemu_restore]}")
row "restore, s (CLI / new QEMU -loadvm to running)" "$cr" "$qr"
ql=$(median <<<"${secs[qemu_loadvm]}")
row "restore, s (CLI / loadvm into the running QEMU)" "$cr" "$ql"
row "state size, MiB (size_bytes / vm-state-size)" "$(mib "$(median <<<"${size[corral]}")")" "$(mib "$(median <<<"${size[qemu]}")")"
row "qcow2 growth per snapshot, MiB (allocated)" "$(mib "$(median <<<"${grow[corral]}")")" "$(mib "$(median <<<"${grow[qemu]}")")"
echo "each run, corral / QEMU: create${secs[corral_save]} / savevm${secs[qemu_save]};" \
  "restore${secs[corral_restore]} / -loadvm${secs[qemu_restore]} / loadvm${secs[qemu_loadvm]}"
