#!/usr/bin/env bash
# tests/integration/daemon/backups.sh: backups through corrald (docs/api.md "Backups") and
# `corral backup`: repositories by name, a stopped VM backed up (a task with progress), a second
# backup of the unchanged VM adding zero chunks, verify, prune (dry run and real) and gc,
# restore --as compared with qemu-img compare, refusals naming the field (unknown repository,
# bad VM name, wrong JSON types, an existing name), and repository paths refused over TLS with a
# token. A real corrald on a temporary state folder, qemu-img/qemu-io for the disk; no VM is booted.
# Exit status: 0 all passed, 1 a check failed, 77 skipped. Ends with "N passed, N failed".
set -uo pipefail
script=$(readlink -f "${BASH_SOURCE[0]}")
repo=$(cd "$(dirname "$script")/../../.." && pwd)
build_dir="${CORRAL_BUILD_DIR:-$repo/build}"
if ! command -v qemu-io >/dev/null || ! command -v qemu-img >/dev/null; then
  echo "skip: qemu-img and qemu-io are needed (qemu-utils)"
  exit 77
fi
# shellcheck source=../../lib/corrald.sh
. "$repo/tests/lib/corrald.sh"
corral_bin="$build_dir/src/cli/corral"
cleanup() {
  corrald_stop
  rm -rf -- "$state"
}
trap cleanup EXIT

# corral_run EXPECTED_EXIT ARGS...: the CLI on corrald's socket; output in $out, true if the exit code matched.
corral_run() {
  local expected=$1; shift
  "$corral_bin" --socket "$sock" "$@" >"$state/out" 2>&1
  local rc=$?
  out=$(cat "$state/out")
  [ "$rc" -eq "$expected" ] || { echo "  corral $* exited $rc, expected $expected: $out"; return 1; }
}
says() { grep -qF -- "$1" <<<"$out" || { echo "  expected '$1' in: $out"; false; }; }
field_is() { [ "$code" = "$1" ] && [ "$(jqb .error.field)" = "$2" ] || { echo "  $code $body"; false; }; }

corrald_start --listen 127.0.0.1:0 || exit 1
tls_listen || { echo "no TLS listener"; exit 1; }

echo "== a stopped VM with known data on its disk"
api POST /api/v1/volumes '{"name":"web-root","size":"64M"}'
check "volume created" test "$code" = 201
disk=$(jqb .path)
qemu-io -f qcow2 -c "write -P 0x5a 4M 8M" "$disk" >/dev/null
head -c 1M /dev/urandom >"$state/noise"
qemu-io -f qcow2 -c "write -s $state/noise 30M 1M" "$disk" >/dev/null
api POST /api/v1/vms '{"name":"web","vcpus":2,"memory_mib":256,"cmdline":"console=ttyS0 marker=42","disks":[{"pool":"default","volume":"web-root"}],"nics":[]}'
check "VM web defined" test "$code" = 201

echo "== repositories"
corral_run 2 backup create web
check "a backup with no repository yet is refused (exit 2)" says "there is no backup repository yet"
corral_run 0 backup repo create main --path "$state/repos/main"
check "repo create" says "created backup repository main"
check "  ... made the repository" test -f "$state/repos/main/config.json"
api POST /api/v1/backup-repositories "{\"name\":\"main\",\"path\":\"$state/repos/other\",\"create\":true}"
check "a taken name: 409 naming name" field_is 409 name
check "  ... and nothing made for it" test ! -e "$state/repos/other/config.json"
api POST /api/v1/backup-repositories "{\"name\":\"nothere\",\"path\":\"$state/repos/none\"}"
check "adding a folder that is no repository: 4xx" test "${code:0:1}" = 4
api POST /api/v1/backup-repositories '{"name":"x","path":"relative/dir","create":true}'
check "a relative path: 400 naming path" field_is 400 path
api POST /api/v1/backup-repositories '{"name":"x","path":7}'
check "path of the wrong type: 400 naming path" field_is 400 path
api POST /api/v1/backup-repositories '{"name":"x","path":"/tmp/x","create":"yes"}'
check "create of the wrong type: 400 naming create" field_is 400 create
api POST /api/v1/backup-repositories "{\"name\":\"x\",\"path\":\"$state/repos/x\",\"key\":\"$state/no.key\",\"create\":true}"
check "a missing key file: 404 naming key" field_is 404 key
check "  ... and nothing made" test ! -e "$state/repos/x"
corral_run 0 backup repo list
check "repo list shows main" says "main"

echo "== backups"
corral_run 0 backup create web
check "backup create web (a task, waited for)" says "backup web-"
check "  ... it read the data" says "chunks"
api GET "/api/v1/backups?vm=web"
first=$(jqb '.[0].id')
check "GET /backups lists it" test "$(jqb length)" = 1 -a "$(jqb '.[0].repository')" = main
check "  ... with its size" test "$(jqb '.[0].logical_bytes')" = 67108864
corral_run 0 backup create web --repo main
api GET "/api/v1/backups?vm=web"
# Both may fall in the same second: the second one is the one that is not $first.
second=$(jq -c --arg first "$first" '[.[] | select(.id != $first)][0]' <<<"$body")
check "a second backup of the unchanged VM adds zero chunks" test "$(jq .new_chunks <<<"$second")" = 0
check "  ... and zero bytes" test "$(jq .new_bytes <<<"$second")" = 0
check "  ... though it references the same chunks" test "$(jq .chunks <<<"$second")" -gt 0
corral_run 0 backup list web
check "backup list shows both" test "$(grep -c '^web-' <<<"$out")" = 2
api GET "/api/v1/backups/$first"
check "GET /backups/ID shows its disk" test "$(jqb '.disks[0].name')" = web-root
check "  ... and the VM's configuration" test "$(jqb '.config.cmdline')" = "console=ttyS0 marker=42"
corral_run 0 backup verify "$first"
check "backup verify" says "is good"
api GET "/api/v1/backups/$first"
check "  ... the verdict is kept" test "$(jqb .verify.state)" = ok

echo "== refusals"
api POST /api/v1/backups '{"vm":"web","repository":"nope"}'
check "unknown repository: 404 naming repository" field_is 404 repository
api POST /api/v1/backups '{"vm":"Bad Name!"}'
check "a bad VM name: 400 naming vm" field_is 400 vm
api POST /api/v1/backups '{"vm":"ghost"}'
check "no such VM: 404 naming vm" field_is 404 vm
api POST /api/v1/backups '{"vm":42}'
check "vm of the wrong type: 400 naming vm" field_is 400 vm
api POST /api/v1/backups '{"vm":"web","repository":["main"]}'
check "repository of the wrong type: 400 naming repository" field_is 400 repository
api POST "/api/v1/backups/$first/restore" '{"as":"web"}'
check "restore onto an existing name: 409 naming as" field_is 409 as
api POST "/api/v1/backups/$first/restore" '{"as":true}'
check "as of the wrong type: 400 naming as" field_is 400 as
api GET /api/v1/backups/web-19700101T000000Z-nothere
check "an unknown backup: 404" test "$code" = 404
api GET /api/v1/vms
check "  ... and no VM was half-made" test "$(jqb length)" = 1

echo "== restore --as"
corral_run 0 backup restore "$first" --as copy
check "backup restore --as copy" says "restored backup $first as VM copy"
api GET /api/v1/vms/copy
check "VM copy exists, stopped" test "$code" = 200 -a "$(jqb .state)" = stopped
check "  ... with web's configuration" test "$(jqb .vcpus)" = 2 -a "$(jqb .memory_mib)" = 256 -a "$(jqb .cmdline)" = "console=ttyS0 marker=42"
check "  ... and its own disk" test "$(jqb '.disks[0].volume')" = copy-root
api GET /api/v1/volumes/default/copy-root
copy_disk=$(jqb .path)
check "qemu-img compare: the restored disk equals the original" qemu-img compare -q "$disk" "$copy_disk"
corral_run 1 backup restore "$first" --as copy
check "restoring onto copy again is refused" says "a VM named copy already exists"

api POST /api/v1/volumes '{"name":"taken-root","size":"1M"}'
api POST "/api/v1/backups/$first/restore" '{"as":"taken"}'
check "restore onto an existing volume name: 409 naming as" field_is 409 as
check "  ... naming the volume" grep -qF "volume taken-root already exists in pool default" <<<"$body"
api GET /api/v1/vms/taken
check "  ... and no VM taken was made" test "$code" = 404

echo "== an encrypted repository"
head -c 32 /dev/urandom >"$state/backup.key"
head -c 32 /dev/urandom >"$state/other.key"
corral_run 0 backup repo create sealed --path "$state/repos/sealed" --key "$state/backup.key"
check "repo create --key" says "created backup repository sealed"
corral_run 0 backup create web --repo sealed
check "backup create --repo sealed" says "backup web-"
api GET "/api/v1/backups?repository=sealed"
sealed=$(jqb '.[0].id')
check "  ... listed in sealed only" test "$(jqb length)" = 1
check "  ... whose repository is encrypted" test "$(jq -r .encryption "$state/repos/sealed/config.json")" = aes-256-gcm
corral_run 0 backup restore "$sealed" --as unsealed
check "restore from it" says "as VM unsealed"
api GET /api/v1/volumes/default/unsealed-root
check "  ... qemu-img compare: equal" qemu-img compare -q "$disk" "$(jqb .path)"
api POST /api/v1/backup-repositories "{\"name\":\"wrongkey\",\"path\":\"$state/repos/sealed\",\"key\":\"$state/other.key\"}"
check "adding it with another key: 4xx" test "${code:0:1}" = 4
check "  ... saying the key is wrong" grep -qi "key" <<<"$(jqb .error.message)"
api GET /api/v1/backup-repositories/wrongkey
check "  ... and nothing registered" test "$code" = 404
corral_run 0 backup repo delete sealed

echo "== over TLS with a token, host paths are refused"
api POST /api/v1/tokens '{"name":"remote"}'
token=$(jqb .token)
tls_api "$token" POST /api/v1/backup-repositories "{\"name\":\"far\",\"path\":\"$state/repos/far\",\"create\":true}"
check "repository path over TLS: 403 naming path" test "$code" = 403 -a "$(jqb .error.field)" = path
check "  ... and nothing made" test ! -e "$state/repos/far"
tls_api "$token" POST /api/v1/backup-repositories "{\"name\":\"far\",\"path\":\"$state/repos/main\",\"key\":\"$state/tls/server.key\"}"
check "a key file over TLS: 403" test "$code" = 403
tls_api "$token" GET /api/v1/backups
check "listing backups over TLS works" test "$code" = 200 -a "$(jqb length)" = 2

echo "== delete"
corral_run 0 backup delete "$first"
check "backup delete" says "deleted backup $first"
corral_run 0 backup repo delete main
check "repo delete forgets it" says "forgot backup repository main"
check "  ... and leaves its folder" test -f "$state/repos/main/config.json"
corral_run 0 backup repo add main --path "$state/repos/main"
check "repo add names it again" says "added backup repository main"
api GET /api/v1/backups
check "  ... with its remaining backup" test "$(jqb length)" = 1

echo "== a damaged chunk: verify names it, a restore leaves nothing"
remaining=$(jqb '.[0].id')
chunk=$(find "$state/repos/main/chunks" -type f | sort | head -n1)
size=$(stat -c %s "$chunk")
# One byte in the middle of the chunk's data flipped (the header is the first bytes).
offset=$((size / 2))
byte=$(od -An -tu1 -j "$offset" -N1 "$chunk" | tr -d ' ')
printf "$(printf '\\%03o' $((byte ^ 1)))" | dd of="$chunk" bs=1 seek="$offset" conv=notrunc status=none
corral_run 4 backup verify "$remaining"
check "backup verify of the damaged backup fails (exit 4)" says "is bad"
check "  ... naming its disk and the offset" says "disk 'web-root' offset"
api GET "/api/v1/backups/$remaining"
check "  ... and the verdict bad is kept" test "$(jqb .verify.state)" = bad
corral_run 4 backup restore "$remaining" --as broken
check "a restore of it fails (exit 4)" says "restoring disk web-root"
api GET /api/v1/vms/broken
check "  ... defining no VM" test "$code" = 404
api GET /api/v1/volumes/default/broken-root
check "  ... and leaving no volume" test "$code" = 404
check "  ... nor a file in the pool" bash -c '! ls "$1"/broken-root* 2>/dev/null | grep -q .' _ "$(dirname "$disk")"

echo "== prune and gc"
corral_run 0 backup create web
api GET "/api/v1/backups?vm=web"
check "web has two backups now" test "$(jqb length)" = 2
corral_run 0 backup prune main --vm web --keep-last 1 --dry-run
check "prune --keep-last 1 --dry-run: one kept, one would be removed" says "1 kept, 1 would be removed (dry run: nothing was)"
api GET "/api/v1/backups?vm=web"
check "  ... and nothing was" test "$(jqb length)" = 2
corral_run 0 backup prune main --vm web --keep-last 1
check "prune --keep-last 1: one kept, one removed" says "1 kept, 1 removed"
api GET "/api/v1/backups?vm=web"
check "  ... one is left" test "$(jqb length)" = 1
kept=$(jqb '.[0].id')
chunks_before=$(find "$state/repos/main/chunks" -type f | wc -l)
corral_run 0 backup gc main
check "gc while the kept backup uses every chunk removes none" says "removed 0 chunks"
corral_run 0 backup delete "$kept"
corral_run 0 backup gc main
check "gc after the last backup went removes its $chunks_before chunks" says "removed $chunks_before chunks"
check "  ... the chunk files are gone" test "$(find "$state/repos/main/chunks" -type f | wc -l)" = 0
api POST /api/v1/backup-repositories/main/prune '{"vm":"web"}'
check "a prune that keeps nothing: 400 naming keep_last" field_is 400 keep_last
check "  ... saying what it needs" grep -qF "give at least one of keep_last, keep_daily, keep_weekly, keep_monthly" <<<"$body"
api POST /api/v1/backup-repositories/main/prune '{"keep_last":"one"}'
check "keep_last of the wrong type: 400 naming keep_last" field_is 400 keep_last
api POST /api/v1/backup-repositories/main/prune '{"keep_last":1,"dry_run":"yes"}'
check "dry_run of the wrong type: 400 naming dry_run" field_is 400 dry_run
api POST /api/v1/backup-repositories/nope/prune '{"keep_last":1}'
check "prune of an unknown repository: 404 naming name" field_is 404 name
api POST /api/v1/backup-repositories/nope/gc
check "gc of an unknown repository: 404 naming name" field_is 404 name

echo "== a backup made by corral-backup (disks only, no VM configuration)"
corral_backup="$build_dir/src/storage/backup/corral-backup"
if [ -x "$corral_backup" ]; then
  "$corral_backup" create "$state/repos/main" --vm plain root="$disk" >/dev/null
  api GET "/api/v1/backups?vm=plain"
  check "corrald lists it" test "$(jqb length)" = 1
  api POST "/api/v1/backups/$(jqb '.[0].id')/restore" '{"as":"plain2"}'
  check "restoring it as a VM: 400 naming backup" field_is 400 backup
  check "  ... saying how to restore its disks" grep -qF "corral-backup restore" <<<"$body"
else
  echo "  (corral-backup is not built: skipped)"
fi

[ "$failed" -gt 0 ] && corrald_failure_report
check_summary
