#!/usr/bin/env bash
# bench/web/run.sh: the web UI's weight and speed on the loopback (issue 15). Prints:
#   - the bundle: bytes of build/web/dist's files, raw and gzip -9 (what a browser would fetch
#     compressed; corrald serves them uncompressed today, so the raw figure is what moves);
#   - with a real corrald (--listen on the loopback, no VMs) and headless Chromium (puppeteer-core):
#     time from navigation to an interactive sign-in form (cold cache), from signing in to a
#     dashboard with its data, requests and bytes per page, and a reload with a warm cache
#     (assets are immutable: only index.html and the API calls go out).
# A peer's figures (Cockpit's full page per action) are not measured here yet.
# Usage: bench/web/run.sh   (exit 77 when Chromium, web/node_modules or the built UI is missing)
set -uo pipefail
script=$(readlink -f "${BASH_SOURCE[0]}")
repo=$(cd "$(dirname "$script")/../.." && pwd)
build_dir="${CORRAL_BUILD_DIR:-$repo/build}"
chromium=$(command -v chromium || true)
[ -n "$chromium" ] && [ -d "$repo/web/node_modules/puppeteer-core" ] && [ -f "$build_dir/web/dist/index.html" ] ||
  { echo "SKIP: needs chromium, web/node_modules (npm ci) and the built UI ($build_dir/web/dist)"; exit 77; }
# shellcheck source=../../tests/lib/corrald.sh
. "$repo/tests/lib/corrald.sh"
trap 'corrald_stop; rm -rf -- "$state"' EXIT

echo "== the bundle ($build_dir/web/dist)"
total_raw=0 total_gz=0
while read -r file; do
  raw=$(stat -c %s "$file"); gz=$(gzip -9c "$file" | wc -c)
  total_raw=$((total_raw + raw)); total_gz=$((total_gz + gz))
  printf '  %-40s %8d bytes, %7d gzip -9\n' "${file#"$build_dir"/web/dist/}" "$raw" "$gz"
done < <(find "$build_dir/web/dist" -type f ! -name '*.txt' | sort)
printf '  %-40s %8d bytes, %7d gzip -9\n' total "$total_raw" "$total_gz"

corrald_start --listen 127.0.0.1:0 >/dev/null || exit 1
tls_listen || exit 1
api POST /api/v1/tokens '{"name":"bench"}'
(cd "$repo/web" && CORRAL_URL="https://$listen" CORRAL_TOKEN="$(jqb .token)" CHROMIUM="$chromium" node test/measure.mjs)
