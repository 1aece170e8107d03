#!/bin/bash
# Smoke run of bench/display/update_bench.py against rfb_test_server (Corral's VNC server on a
# 1024x768 screen), in each encoding: the full change is a screen of random pixels (the worst
# case for compression), the line change one line of another colour. Against a VM, run update_bench.py on its VNC socket
# with commands that change the guest's screen (bench/display/README.md).
#   bench/display/run.sh [--runs N]        CORRAL_BUILD_DIR: the build folder (default build)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${CORRAL_BUILD_DIR:-$here/../../build}
server=$build/tests/integration/display/rfb_test_server
[ -x "$server" ] || { echo "build rfb_test_server first (ninja -C build rfb_test_server)" >&2; exit 1; }
runs=3
[ "${1:-}" = --runs ] && runs=$2

dir=$(mktemp -d)
mkfifo "$dir/fifo"
exec 3<>"$dir/fifo"
"$server" --socket "$dir/vnc.sock" --size 1024x768 <&3 >"$dir/out" 2>/dev/null &
pid=$!
trap 'echo quit >&3; wait $pid; rm -rf "$dir"' EXIT
until grep -q READY "$dir/out"; do kill -0 $pid; sleep 0.05; done
# Each change must differ from the last (an unchanged line is no change): the line's colour counts up.
echo 0 >"$dir/n"
full="echo noise > $dir/fifo"
line="n=\$((\$(cat $dir/n) + 1)); echo \$n > $dir/n; echo \"line 400 \$((n % 256)) 100 50\" > $dir/fifo"
for encodings in raw zlib tight; do
  "$here/update_bench.py" "$dir/vnc.sock" --runs "$runs" --encodings "$encodings" \
    --full "$full" --line "$line"
done
