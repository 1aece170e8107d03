#!/usr/bin/env bash
# Compares corral-backup with restic and borgbackup on the same disk images, in the same run:
#   1. first backup of a VM disk image (raw, sparse: some compressible data, some random data,
#      holes), 2. a second backup of the unchanged disk (as each tool does it by default, then
#      with the peers' files cache off so they read it again), 3. a backup after changing 1% of it,
#   3b. corral only: the same 1% change made through QEMU to a qcow2 twin of the disk and backed
#      up incrementally through its dirty bitmap (corral-backup create --incremental),
#   4. a second VM whose disk is a copy of the first with 5% changed (dedup across VMs),
#   5. a restore of the first disk to a new file.
# All three encrypt (corral: AES-256-GCM with a key file; restic always; borg repokey-blake2)
# and compress with zstd at a fast level (corral zstd 1, restic --compression auto, borg zstd,1).
# borg uses its fixed 4 MiB chunker with --sparse (what its docs advise for VM images), restic
# its content-defined chunker. Prints seconds, MiB/s and repository growth, and the ratios
# peer/corral (above 1: corral is faster or smaller).
# usage: bench/backup/run.sh [--smoke] [--size MiB] [PATH/TO/corral-backup]
set -euo pipefail
smoke=0
mib=1024
# shellcheck source=../lib/options.sh
. "$(dirname "$0")/../lib/options.sh"
bench_options '[--smoke] [--size MiB] [corral-backup]' '--smoke:smoke=1 mib=64' --size=mib ARGS -- "$@"
set -- "${bench_args[@]}"
corral=${1:-$(cd "$(dirname "$0")/../.." && pwd)/build/src/storage/backup/corral-backup}
[ -x "$corral" ] || { echo "corral-backup not found at '$corral' (pass its path)" >&2; exit 2; }
peers=()
command -v restic >/dev/null && peers+=(restic)
command -v borg >/dev/null && peers+=(borg)
if [ ${#peers[@]} -eq 0 ]; then
  echo "skip: neither restic nor borgbackup is installed (tools/setup installs both)"; exit 77
fi

dir=$(mktemp -d /tmp/corral-bench-backup-XXXXXX)
trap 'rm -rf "$dir"' EXIT
export RESTIC_PASSWORD=bench RESTIC_CACHE_DIR="$dir/restic-cache" BORG_PASSPHRASE=bench BORG_BASE_DIR="$dir/borg-home"
export BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes BORG_RELOCATED_REPO_ACCESS_IS_OK=yes
size=$((mib << 20))

# The disk: 3/8 compressible data (the host's libraries, as a guest's /usr is), 1/8 random data
# (compressed or encrypted files), the rest holes (never written).
mkdir -p "$dir/vm-a" "$dir/vm-b"
disk=$dir/vm-a/disk.raw
truncate -s $size "$disk"
{ tar cf - /usr/lib /usr/share 2>/dev/null || true; } | head -c $((size * 3 / 8)) |
  dd of="$disk" conv=notrunc,sparse bs=1M status=none
head -c $((size / 8)) /dev/urandom | dd of="$disk" bs=1M seek=$((mib / 2)) conv=notrunc status=none
change() {  # file percent seed [qcow2]: overwrite percent% of the disk in 64 KiB blocks spread over
  # it; the same blocks go to the qcow2 twin when given (through qemu-io, so its bitmap marks them)
  local file=$1 pct=$2 twin=${4:-} blocks step i at writes=()
  blocks=$((size * pct / 100 / 65536)); step=$((size / 65536 / blocks))
  mkdir -p "$dir/blocks"
  for ((i = 0; i < blocks; i++)); do
    at=$((i * step + $3 % step))
    head -c 65536 /dev/urandom >"$dir/blocks/$i"
    dd if="$dir/blocks/$i" of="$file" bs=64k seek=$at conv=notrunc status=none
    writes+=(-c "write -q -s $dir/blocks/$i $((at * 65536)) 64k")
  done
  [ -z "$twin" ] || qemu-io -f qcow2 "${writes[@]}" "$twin" >/dev/null
  rm -rf "$dir/blocks"
}

# Prints the wall-clock seconds; appends "real user+sys" to $dir/cpu: on a loaded machine the CPU
# seconds (all threads) are the steadier figure.
timeit() {
  local TIMEFORMAT='%R %U %S' t
  t=$( { time "$@" >"$dir/out" 2>"$dir/err"; } 2>&1 ) || { cat "$dir/err" >&2; return 1; }
  echo "$t" | awk '{ printf "%.3f %.3f\n", $1, $2 + $3 }' >>"$dir/cpu"
  echo "$t" | awk '{ printf "%.3f", $1 }'
}
cpu_of_last() { tail -1 "$dir/cpu" | cut -d' ' -f2; }
repo_bytes() { du -sb "$1" | cut -f1; }

"$corral" keygen "$dir/key" >/dev/null
"$corral" init "$dir/corral" --key "$dir/key" >/dev/null
[[ " ${peers[*]} " == *" restic "* ]] && restic init -q -r "$dir/restic" >/dev/null
[[ " ${peers[*]} " == *" borg "* ]] && borg init -e repokey-blake2 "$dir/borg" >/dev/null 2>&1

backup() {  # tool vm label [reread] -> seconds
  # restic and borg skip a file whose size, times and inode did not change (their files cache);
  # "reread" turns that off (restic --force, borg --files-cache=disabled). corral always reads.
  local tool=$1 vm=$2 label=$3 reread=${4:-} extra=()
  case $tool in
    corral) timeit "$corral" create "$dir/corral" --key "$dir/key" --vm "$vm" "disk=$dir/$vm/disk.raw" ;;
    restic) [ -n "$reread" ] && extra=(--force)
            timeit restic -r "$dir/restic" backup -q --compression auto --host "$vm" "${extra[@]}" "$dir/$vm/disk.raw" ;;
    borg) [ -n "$reread" ] && extra=(--files-cache=disabled)
          (cd "$dir/$vm" && timeit borg create -C zstd,1 --chunker-params fixed,4194304 --sparse "${extra[@]}" \
             "$dir/borg::$vm-$label" disk.raw) ;;
  esac
}
restore() {  # tool -> seconds
  local tool=$1 out=$dir/restore-$1
  mkdir -p "$out"
  case $tool in
    corral) timeit "$corral" restore "$dir/corral" --key "$dir/key" \
              "$("$corral" list "$dir/corral" --key "$dir/key" --vm vm-a --json | jq -r '.[0].id')" \
              --format raw --to "$out/disk.raw" ;;
    restic) timeit restic -r "$dir/restic" restore \
              "$(restic -r "$dir/restic" snapshots --host vm-a --json | jq -r 'sort_by(.time) | .[0].short_id')" \
              --target "$out" ;;  # restic 0.14 writes no holes (no restore --sparse before 0.15)
    borg) (cd "$out" && timeit borg extract --sparse "$dir/borg::vm-a-first") ;;
  esac
}
restored_file() {  # tool
  find "$dir/restore-$1" -name disk.raw -type f | head -1
}

tools=(corral "${peers[@]}")
declare -A secs grow cpu
step() {  # key vm label [reread]
  local t before
  for t in "${tools[@]}"; do
    before=$(repo_bytes "$dir/$t")
    secs[$1,$t]=$(backup "$t" "$2" "$3" "${4:-}")
    cpu[$1,$t]=$(cpu_of_last)
    cp "$dir/out" "$dir/out-$1-$t"
    grow[$1,$t]=$(( $(repo_bytes "$dir/$t") - before ))
  done
}
step first vm-a first
step unchanged vm-a unchanged
step unchanged_reread vm-a unchanged-reread reread
cp --sparse=always "$disk" "$dir/original.raw"  # what the restores must give back
# corral's incremental through a dirty bitmap needs a qcow2 disk written by QEMU: a twin of the
# disk (vm-q), backed up once, given the generation bitmap corrald gives a stopped VM's disk, then
# changed like the raw one through qemu-io, which marks the bitmap.
twin=
if command -v qemu-img >/dev/null && command -v qemu-io >/dev/null && qemu-img bitmap --help >/dev/null 2>&1; then
  twin=$dir/vm-q/disk.qcow2
  mkdir -p "$dir/vm-q"
  qemu-img convert -O qcow2 "$disk" "$twin"
  "$corral" create "$dir/corral" --key "$dir/key" --vm vm-q "disk=$twin" >/dev/null
  qemu-img bitmap --add "$twin" "corral-gen-$("$corral" list "$dir/corral" --key "$dir/key" --vm vm-q --json | jq -r '.[-1].id')"
fi
change "$disk" 1 7 "$twin"
step changed1 vm-a changed
read_full=$(sed -n 's/.*, read \([^,]*\),.*/\1/p' "$dir/out-changed1-corral")
if [ -n "$twin" ]; then
  secs[incremental]=$(timeit "$corral" create "$dir/corral" --key "$dir/key" --vm vm-q --incremental "disk=$twin")
  cpu[incremental]=$(cpu_of_last)
  grep -q "incremental since" "$dir/out" || { echo "corral's bitmap incremental read in full: $(cat "$dir/out")" >&2; exit 1; }
  read_incremental=$(sed -n 's/.*, read \([^,]*\),.*/\1/p' "$dir/out")
fi
cp --sparse=always "$disk" "$dir/vm-b/disk.raw"
change "$dir/vm-b/disk.raw" 5 3
step second_vm vm-b first
for t in "${tools[@]}"; do
  secs[restore,$t]=$(restore "$t")
  cpu[restore,$t]=$(cpu_of_last)
  cmp "$dir/original.raw" "$(restored_file "$t")" || { echo "$t restored a different disk" >&2; exit 1; }
done

mibs() { awk -v b="$size" -v s="$1" 'BEGIN { printf "%.0f", (s > 0 ? b / 1048576 / s : 0) }'; }
ratio() { awk -v c="$1" -v p="$2" 'BEGIN { printf "%.2f", (c > 0 ? p / c : 0) }'; }
echo "disk: $mib MiB raw (3/8 compressible, 1/8 random, 1/2 holes); $(nproc) CPUs; $(date -u +%F)"
printf "%-34s" "step (seconds, MiB/s of disk)"; for t in "${tools[@]}"; do printf " %16s" "$t"; done
for t in "${peers[@]}"; do printf " %12s" "$t/corral"; done; echo
for k in first unchanged unchanged_reread changed1 second_vm restore; do
  printf "%-34s" "$k"
  for t in "${tools[@]}"; do printf " %8s %7s" "${secs[$k,$t]}" "$(mibs "${secs[$k,$t]}")"; done
  for t in "${peers[@]}"; do printf " %12s" "$(ratio "${secs[$k,corral]}" "${secs[$k,$t]}")"; done
  echo
done
printf "%-34s" "CPU seconds (user+sys, all threads)"; echo
for k in first unchanged unchanged_reread changed1 second_vm restore; do
  printf "%-34s" "$k"
  for t in "${tools[@]}"; do printf " %16s" "${cpu[$k,$t]}"; done
  for t in "${peers[@]}"; do printf " %12s" "$(ratio "${cpu[$k,corral]}" "${cpu[$k,$t]}")"; done
  echo
done
if [ -n "$twin" ]; then
  echo "after the 1% change, corral read $read_full of the raw disk in ${secs[changed1,corral]} s" \
    "(${cpu[changed1,corral]} CPU s); through the qcow2 twin's dirty bitmap (--incremental) it read" \
    "$read_incremental in ${secs[incremental]} s (${cpu[incremental]} CPU s); restic and borg read the whole changed file"
fi
printf "%-34s" "repository growth (MiB)"; echo
for k in first unchanged unchanged_reread changed1 second_vm; do
  printf "%-34s" "$k"
  for t in "${tools[@]}"; do printf " %16s" "$(awk -v b="${grow[$k,$t]}" 'BEGIN { printf "%.1f", b / 1048576 }')"; done
  for t in "${peers[@]}"; do printf " %12s" "$(ratio "${grow[$k,corral]}" "${grow[$k,$t]}")"; done
  echo
done
