#!/usr/bin/env bash
# `corral task cancel` (issue 18) against a real corrald: a full copy of a large volume (1 GiB of
# data written by qemu-io, so the copy takes seconds) is cancelled half-way; the copy stops, the
# target volume does not exist, nothing half-written is left in the pool's folder, and the task ends
# "cancelled". The same for an export (no file left), a copy into another pool and an image import
# (no image, image files or root volume). Ctrl-C while
# waiting for a copy says how to cancel it. A task that cannot be cancelled is refused saying why.
# Exit 0 all passed, 1 a check failed, 77 skipped.
set -uo pipefail
script=$(readlink -f "${BASH_SOURCE[0]}")
repo=$(cd "$(dirname "$script")/../../.." && pwd)
build_dir="${CORRAL_BUILD_DIR:-$repo/build}"
corral="$build_dir/src/cli/corral"
command -v qemu-io >/dev/null || { echo "SKIP: qemu-io (qemu-utils) is not installed"; exit 77; }

# shellcheck source=../../lib/corrald.sh
. "$repo/tests/lib/corrald.sh"
clone_pid=""
cleanup() {
  corrald_failure_report
  [ -n "$clone_pid" ] && kill "$clone_pid" 2>/dev/null
  corrald_stop
  rm -rf -- "$state"
}
trap cleanup EXIT
export CORRAL_SOCKET="$sock"

# Waits until task $1 runs and has copied something, so the cancel lands half-way.
wait_copying() {
  local _
  for _ in $(seq 300); do
    api GET "/api/v1/tasks/$1"
    [ "$(jqb .status)" = running ] && jq -e '.progress > 0 and .progress < 1' <<<"$body" >/dev/null && return 0
    [ "$(jqb .status)" = running ] || [ "$(jqb .status)" = queued ] || return 1
    sleep 0.05
  done
  return 1
}
# Files in a folder other than $2 (a pool's folder and the one volume file it should hold).
strays() { ls -A "$1" | grep -vxF -- "$2"; }

corrald_start || exit 1
"$corral" volume create default/big --size 4G --format raw >"$state/out" 2>&1
check "volume create default/big (4 GiB, raw)" test $? = 0
api GET /api/v1/volumes/default/big
big=$(jqb .path)
pool_dir=$(dirname "$big")
qemu-io -f raw -c "write -P 0x5a 0 1G" "$big" >/dev/null
check "1 GiB of data written into it with qemu-io" test "$(stat -c %b "$big")" -ge $((1 << 21))

echo "== a full copy cancelled half-way"
"$corral" volume clone default/big default/big-copy --full --no-wait >"$state/out" 2>&1
task=$(cat "$state/out")
check "volume clone --full --no-wait prints the task ($task)" grep -qE '^t-[0-9]+$' "$state/out"
check "the copy is under way" wait_copying "$task"
"$corral" task cancel "$task" >"$state/out" 2>"$state/err"
rc=$?
check "corral task cancel $task exits 0 (got $rc; $(cat "$state/err"))" test "$rc" = 0
check "and says so: $(cat "$state/out")" \
  grep -qx "task $task (volume.clone default/big-copy) cancelled; nothing of it was kept" "$state/out"
api GET "/api/v1/tasks/$task"
check "the task ended cancelled ($(jqb .status), error $(jqb .error))" \
  test "$(jqb .status)" = cancelled -a "$(jqb .error)" = "cancelled on request" -a "$(jqb .finished_at)" != null
check "  ... half-way (progress $(jqb .progress))" test "$(jqb '.progress < 1')" = true
api GET /api/v1/volumes/default/big-copy
check "the target volume does not exist (GET: $code)" test "$code" = 404
check "nothing half-written is left in the pool's folder: $(strays "$pool_dir" big.raw | tr '\n' ' ')" \
  test -z "$(strays "$pool_dir" big.raw)"
"$corral" task cancel "$task" >"$state/out" 2>"$state/err"
rc=$?
check "cancelling it again is refused (exit $rc): $(cat "$state/err")" \
  bash -c "[ $rc = 1 ] && grep -q 'task $task (volume.clone default/big-copy) has already ended (cancelled)' '$state/err'"
"$corral" task wait "$task" >"$state/out" 2>"$state/err"
rc=$?
check "task wait of a cancelled task exits 4 saying so (got $rc): $(cat "$state/err")" \
  bash -c "[ $rc = 4 ] && grep -q 'was cancelled' '$state/err'"

echo "== Ctrl-C while waiting for a copy says how to cancel it"
mkdir -p "$state/pool2"
"$corral" pool create pool2 --path "$state/pool2" >"$state/out" 2>&1
check "pool create pool2" test $? = 0
set -m   # a job of its own, so that it does not start with SIGINT ignored
"$corral" volume clone default/big pool2/moved --full >"$state/clone.out" 2>"$state/clone.err" &
clone_pid=$!
set +m
task=""
for _ in $(seq 200); do
  api GET /api/v1/tasks
  task=$(jq -r '[.[] | select(.kind == "volume.clone" and .target == "pool2/moved")][0].id // empty' <<<"$body")
  [ -n "$task" ] && break
  sleep 0.05
done
check "the copy into another pool runs ($task)" wait_copying "$task"
kill -INT "$clone_pid"
wait "$clone_pid"
rc=$?
clone_pid=""
check "Ctrl-C ends the wait with exit 130 (got $rc)" test "$rc" = 130
check "and says how to cancel the copy: $(tail -1 "$state/clone.err")" \
  grep -q "to stop it (what it made is removed): corral task cancel $task" "$state/clone.err"
"$corral" task cancel "$task" >"$state/out" 2>"$state/err"
check "task cancel $task: $(cat "$state/out")$(cat "$state/err")" \
  grep -qx "task $task (volume.clone pool2/moved) cancelled; nothing of it was kept" "$state/out"
api GET /api/v1/volumes/pool2/moved
check "no volume pool2/moved (GET: $code)" test "$code" = 404
check "pool2's folder is empty: $(ls -A "$state/pool2" | tr '\n' ' ')" test -z "$(ls -A "$state/pool2")"

echo "== an export cancelled half-way leaves no file"
mkdir -p "$state/out-dir"
"$corral" volume export default/big "$state/out-dir/big.raw" --format raw --no-wait >"$state/out" 2>&1
task=$(cat "$state/out")
check "the export runs ($task)" wait_copying "$task"
"$corral" task cancel "$task" >"$state/out" 2>&1
check "task cancel $task: $(cat "$state/out")" grep -q "cancelled; nothing of it was kept" "$state/out"
check "no file, not even a temporary one, in the export's folder: $(ls -A "$state/out-dir" | tr '\n' ' ')" \
  test -z "$(ls -A "$state/out-dir")"

echo "== an image import cancelled half-way leaves no image, files or root volume"
printf 'not a kernel' >"$state/vmlinuz"
api POST /api/v1/images "$(jq -n --arg k "$state/vmlinuz" --arg r "$big" '{name: "big", kernel: $k, root: $r}')"
task=$(jqb .task)
check "the image import runs ($task)" wait_copying "$task"
"$corral" task cancel "$task" >"$state/out" 2>&1
check "task cancel $task: $(cat "$state/out")" \
  grep -qx "task $task (image.prepare big) cancelled; nothing of it was kept" "$state/out"
api GET /api/v1/images/big
check "no image big (GET: $code)" test "$code" = 404
api GET /api/v1/volumes/default/img-big
check "no root volume img-big (GET: $code)" test "$code" = 404
check "no image folder in the state folder" test ! -e "$state/images/big"
check "nothing half-written in the pool's folder: $(strays "$pool_dir" big.raw | tr '\n' ' ')" \
  test -z "$(strays "$pool_dir" big.raw)"

echo "== a task that cannot be cancelled is refused, saying why"
"$corral" volume clone default/big default/big-copy2 --full >"$state/out" 2>&1
check "a full copy left to finish succeeds" test $? = 0
api GET /api/v1/tasks
done_task=$(jq -r '[.[] | select(.kind == "volume.clone" and .target == "default/big-copy2")][0].id' <<<"$body")
api POST "/api/v1/tasks/$done_task/cancel"
check "POST /tasks/$done_task/cancel of a finished copy: 409 ($code)" test "$code" = 409
check "  ... naming the task and that it ended: $(jqb .error.message)" \
  test "$(jqb .error.message)" = "task $done_task (volume.clone default/big-copy2) has already ended (succeeded)"
api POST /api/v1/tasks/t-999999/cancel
check "POST /tasks/t-999999/cancel: 404 ($code)" test "$code" = 404

echo "passed $passed, failed $failed"
[ "$failed" -eq 0 ]
