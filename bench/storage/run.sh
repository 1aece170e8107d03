#!/usr/bin/env bash
# Compares corral-img with qemu-img on the same files: 4 KiB scattered ("random") reads and
# writes, 1 MiB sequential reads and writes (raw, qcow2, qcow2 over a backing file), and convert.
# Both tools run at queue depth 1 through the page cache (qemu-img bench -d 1 -t writeback).
# Prints seconds for each and the ratio qemu/corral (above 1: corral-img is faster).
# usage: bench/storage/run.sh [--smoke] [PATH/TO/corral-img]
set -euo pipefail
smoke=0
if [ "${1:-}" = "--smoke" ]; then smoke=1; shift; fi
corral=${1:-$(cd "$(dirname "$0")/../.." && pwd)/build/src/storage/corral-img}
if ! command -v qemu-img >/dev/null; then echo "skip: qemu-img is not installed (qemu-utils)"; exit 77; fi
[ -x "$corral" ] || { echo "corral-img not found at '$corral' (pass its path)" >&2; exit 2; }

dir=$(mktemp -d /tmp/corral-bench-XXXXXX)
trap 'rm -rf "$dir"' EXIT
if [ $smoke -eq 1 ]; then mb=16; count=300; seqcount=16; else mb=512; count=20000; seqcount=512; fi
size=$((mb << 20))
step=$((4096 * 7919))  # a prime number of 4 KiB blocks: a scattered pattern both tools follow

head -c $size /dev/urandom > "$dir/data.raw"
qemu-img convert -f raw -O qcow2 "$dir/data.raw" "$dir/data.qcow2"
qemu-img create -q -f qcow2 -b data.qcow2 -F qcow2 "$dir/overlay.qcow2"
qemu-io -c "write -P 0x5a 0 $((size / 2))" "$dir/overlay.qcow2" >/dev/null

seconds() { sed -n 's/^Run completed in \([0-9.]*\) seconds.*/\1/p'; }
printf "%-34s %12s %12s %8s\n" "test" "corral (s)" "qemu (s)" "ratio"
row() {  # name corral_seconds qemu_seconds
    printf "%-34s %12.3f %12.3f %8.2f\n" "$1" "$2" "$3" "$(awk -v c="$2" -v q="$3" 'BEGIN { print (c > 0 ? q / c : 0) }')"
}

bench_pair() {  # name fmt file extra-args...
    local name=$1 fmt=$2 file=$3; shift 3
    local c q
    c=$("$corral" bench -f "$fmt" "$@" "$file" | seconds)
    q=$(qemu-img bench -f "$fmt" -d 1 -t writeback "$@" "$file" | seconds)
    row "$name" "$c" "$q"
}

fresh() {  # fmt name -> path of a new empty image
    local f="$dir/$2.$1"
    rm -f "$f"
    qemu-img create -q -f "$1" "$f" $size
    echo "$f"
}

for fmt in raw qcow2; do
    bench_pair "$fmt 4K random read" $fmt "$dir/data.$fmt" -c $count -s 4096 -S $step
    bench_pair "$fmt 1M sequential read" $fmt "$dir/data.$fmt" -c $seqcount -s 1M -S 1M
done
bench_pair "qcow2+backing 4K random read" qcow2 "$dir/overlay.qcow2" -c $count -s 4096 -S $step
bench_pair "qcow2+backing 1M sequential read" qcow2 "$dir/overlay.qcow2" -c $seqcount -s 1M -S 1M

for fmt in raw qcow2; do
    for mode in "4K random write:-c $count -s 4096 -S $step" "1M sequential write:-c $seqcount -s 1M -S 1M"; do
        label=${mode%%:*}; args=${mode#*:}
        a=$(fresh $fmt wc); b=$(fresh $fmt wq)
        # shellcheck disable=SC2086
        c=$("$corral" bench -f $fmt -w $args "$a" | seconds)
        # shellcheck disable=SC2086
        q=$(qemu-img bench -f $fmt -d 1 -t writeback -w $args "$b" | seconds)
        row "$fmt $label (allocating)" "$c" "$q"
    done
done
for ovl in oc oq; do
    cp "$dir/overlay.qcow2" "$dir/$ovl.qcow2"
done
c=$("$corral" bench -f qcow2 -w -c $count -s 4096 -S $step "$dir/oc.qcow2" | seconds)
q=$(qemu-img bench -f qcow2 -d 1 -t writeback -w -c $count -s 4096 -S $step "$dir/oq.qcow2" | seconds)
row "qcow2+backing 4K random write" "$c" "$q"

timeit() { local s e; s=$(date +%s.%N); "$@" >/dev/null 2>&1; e=$(date +%s.%N); awk -v s="$s" -v e="$e" 'BEGIN { print e - s }'; }
c=$(timeit "$corral" convert -O qcow2 "$dir/data.raw" "$dir/c1.qcow2")
q=$(timeit qemu-img convert -O qcow2 "$dir/data.raw" "$dir/q1.qcow2")
row "convert raw -> qcow2" "$c" "$q"
c=$(timeit "$corral" convert -O raw "$dir/overlay.qcow2" "$dir/c2.raw")
q=$(timeit qemu-img convert -O raw "$dir/overlay.qcow2" "$dir/q2.raw")
row "convert qcow2+backing -> raw" "$c" "$q"
c=$(timeit "$corral" convert -c -O qcow2 "$dir/overlay.qcow2" "$dir/c3.qcow2")
q=$(timeit qemu-img convert -c -O qcow2 "$dir/overlay.qcow2" "$dir/q3.qcow2")
row "convert -c (zlib) qcow2 -> qcow2" "$c" "$q"
qemu-img compare -q "$dir/c1.qcow2" "$dir/q1.qcow2" && qemu-img compare -q "$dir/c3.qcow2" "$dir/q3.qcow2" \
    && cmp -s "$dir/c2.raw" "$dir/q2.raw" && echo "converted images match qemu-img's"
