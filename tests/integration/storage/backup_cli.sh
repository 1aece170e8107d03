#!/usr/bin/env bash
# corral-backup as a user runs it: exit statuses and messages of each command, a restored disk
# compared with qemu-img compare, a flipped bit reported by verify with its backup, disk and
# offset, a wrong key refused with nothing written, prune and gc.
# usage: tests/integration/storage/backup_cli.sh PATH/TO/corral-backup
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../../lib/check.sh
. "$here/../../lib/check.sh"
tool=${1:?usage: backup_cli.sh PATH/TO/corral-backup}
command -v qemu-img >/dev/null || { echo "skip: qemu-img is not installed (qemu-utils)"; exit 77; }
dir=$(mktemp -d /tmp/corral-backup-cli-XXXXXX)
trap 'rm -rf "$dir"' EXIT
cb() { "$tool" "$@" >"$dir/out" 2>"$dir/err"; echo $? >"$dir/status"; }
status_is() { [ "$(cat "$dir/status")" = "$1" ] || { echo "  status $(cat "$dir/status"), stdout: $(cat "$dir/out") stderr: $(cat "$dir/err")"; false; }; }
says() { grep -qF -- "$1" "$dir/out" "$dir/err" || { echo "  expected '$1' in: $(cat "$dir/out" "$dir/err")"; false; }; }

# A qcow2 disk: 8 MiB of known data at 4 MiB, the rest unallocated.
qemu-img create -q -f qcow2 "$dir/root.qcow2" 64M
qemu-io -c "write -P 0x5a 4M 8M" "$dir/root.qcow2" >/dev/null
head -c 1M /dev/urandom > "$dir/noise"
qemu-io -f qcow2 -c "write -s $dir/noise 20M 1M" "$dir/root.qcow2" >/dev/null

cb keygen "$dir/key"
check "keygen writes a key file" status_is 0
check "key file is 0600" test "$(stat -c %a "$dir/key")" = 600
cb init "$dir/repo" --key "$dir/key"
check "init" status_is 0
check "init says encrypted" says "encrypted with AES-256-GCM"
cb init "$dir/repo"
check "init refuses a non-empty folder (exit 1)" status_is 1
check "init says why" says "is not empty"
cb init "$dir/r2" --chunk-size 3M
check "a bad chunk size is a usage error (exit 2)" status_is 2
check "it names the field" says "chunk_size 3145728 is invalid"

cb create "$dir/repo" --key "$dir/key" root="$dir/root.qcow2"
check "create without --vm is refused" status_is 2
check "and names --vm" says "--vm is missing"
cb create "$dir/repo" --key "$dir/key" --vm web root="$dir/root.qcow2"
check "create" status_is 0
check "create reads only allocated data" says "read 9.0 MiB"
cb create "$dir/repo" --key "$dir/key" --vm web root="$dir/root.qcow2"
check "second create writes no chunk" says "(0 new, 0 B written)"
cb list "$dir/repo" --key "$dir/key" --json
check "list" status_is 0
id=$(jq -r '.[0].id' "$dir/out")
check "list shows two backups of web" test "$(jq -r '[.[] | select(.vm == "web")] | length' "$dir/out")" = 2

cb restore "$dir/repo" --key "$dir/key" "$id" --to "$dir/restored.qcow2"
check "restore" status_is 0
check "restored disk equals the original (qemu-img compare)" qemu-img compare -q "$dir/root.qcow2" "$dir/restored.qcow2"
cb restore "$dir/repo" --key "$dir/key" "$id" --to "$dir/restored.qcow2"
check "restore onto an existing file is refused" status_is 1
check "and says so" says "exists already"

head -c 32 /dev/urandom > "$dir/wrong"
before=$(find "$dir/repo" -type f -printf '%p %s %T@\n' | sort | md5sum)
cb list "$dir/repo" --key "$dir/wrong"
check "a wrong key is refused" status_is 2
check "and named" says "is not the key of repository"
cb create "$dir/repo" --key "$dir/wrong" --vm web root="$dir/root.qcow2"
check "a backup with a wrong key is refused" status_is 2
check "nothing was written with the wrong key" test "$before" = "$(find "$dir/repo" -type f -printf '%p %s %T@\n' | sort | md5sum)"

cb verify "$dir/repo" --key "$dir/key"
check "verify of good backups" status_is 0
check "verify says none bad" says ": 0 bad"
# Flip one bit in the chunk at offset 20 MiB (chunk 5 of 4 MiB).
# (The only chunk above 1000 KiB: the others are the compressible 0x5a pattern.)
chunk=$(find "$dir/repo/chunks" -type f -size +1000k | head -1)
python3 -c 'import sys; f = open(sys.argv[1], "r+b"); f.seek(2000); b = f.read(1); f.seek(2000); f.write(bytes([b[0] ^ 1]))' "$chunk"
cb verify "$dir/repo" --key "$dir/key"
check "verify finds the flipped bit (exit 1)" status_is 1
check "and names backup, disk and offset" says "backup '$id' disk 'root' offset 20971520"
cb list "$dir/repo" --key "$dir/key"
check "list shows the backup as bad" says "bad"

cb prune "$dir/repo" --key "$dir/key"
check "prune without a keep option is refused" status_is 2
check "and says which options exist" says "at least one of keep_last"
cb prune "$dir/repo" --key "$dir/key" --keep-last 1
check "prune --keep-last 1" status_is 0
check "prune removed the first backup" says "remove $id"
cb gc "$dir/repo" --key "$dir/key"
check "gc" status_is 0
check "gc removed nothing still used" says "removed 0 chunks"
cb show "$dir/repo" --key "$dir/key" "$id"
check "a pruned backup is gone" status_is 1
check "and named" says "no backup '$id'"
check_summary
