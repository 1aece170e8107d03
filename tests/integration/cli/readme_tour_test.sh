#!/usr/bin/env bash
# Walks README.md's "A tour of the CLI" against a real corrald, so the tour cannot drift from what
# the CLI does (issue 18). Every command of the tour's code block runs as written and must exit 0,
# with two stand-ins: `corral image prepare default` (downloads Debian packages) is replaced by
# importing the project's cached guest image as `default`, and `corral events` (which runs until
# Ctrl-C) runs in the background for the whole tour. stdin is /dev/null, so `vm console` pipes.
# A real guest runs on the emulated engine (QEMU TCG). corrald runs as on a user's host, with its
# default network (the tour shows it), so the test runs in network and mount namespaces of its own:
# the bridges, dnsmasq and nftables tables it makes never reach the host.
# Exit 0 passed, 1 failed, 77 skipped.
set -uo pipefail
script=$(readlink -f "${BASH_SOURCE[0]}")
repo=$(cd "$(dirname "$script")/../../.." && pwd)
# shellcheck source=../../lib/netns.sh
. "$repo/tests/lib/netns.sh"
enter_own_netns "$script" "$@"
export CORRALD_DEFAULT_NETWORK=1
build_dir="${CORRAL_BUILD_DIR:-$repo/build}"
# shellcheck source=../../lib/guest.sh
. "$repo/tests/lib/guest.sh"
guest_image

# shellcheck source=../../lib/corrald.sh
. "$repo/tests/lib/corrald.sh"
events_pid=""
cleanup() {
  [ -n "$events_pid" ] && kill "$events_pid" 2>/dev/null
  if [ -n "$corrald_pid" ]; then api PUT /api/v1/vms/web1/state '{"action":"kill"}'; sleep 1; fi
  corrald_stop
  corrald_networks_cleanup
  rm -rf -- "$state"
}
trap cleanup EXIT
export CORRAL_SOCKET="$sock"
export PATH="$build_dir/src/cli:$PATH"   # the tour says `corral`, as installed

# The tour: the first sh block after the heading, comments and blank lines left out.
mapfile -t tour < <(awk '/^## A tour of the CLI/ { in_tour = 1 } in_tour && /^```sh/ { in_block = 1; next }
  in_block && /^```/ { exit } in_block' "$repo/README.md" | sed -E 's/[[:space:]]+#.*$//' | grep -v '^[[:space:]]*$')
check "the README has a tour ($(( ${#tour[@]} )) commands)" test "${#tour[@]}" -ge 10

corrald_start || exit 1
for line in "${tour[@]}"; do
  case "$line" in
    "corral image prepare default")
      api POST /api/v1/images "$(jq -n --arg k "$kernel" --arg i "$initrd" --arg r "$rootfs" \
        '{name: "default", kernel: $k, initrd: $i, root: $r}')"
      wait_task "$(jqb .task)" 120
      check "$line (stand-in: the cached guest image imported as default)" test "$(jqb .status)" = succeeded
      continue ;;
    "corral doctor")
      # Its exit status is the worst finding's severity on this host (docs/cli.md): 0, 5 or 6.
      bash -c "$line" </dev/null >"$state/out" 2>"$state/err"
      rc=$?
      check "$line (exit $rc: 0, 5 or 6 by what it found on this host, each finding with its fix)" \
        bash -c '[[ $1 =~ ^(0|5|6)$ ]] && [ -s "$2" ]' _ "$rc" "$state/out"
      continue ;;
    "corral events")
      corral events >"$state/events.out" 2>&1 &
      events_pid=$!
      check "$line (in the background for the tour)" kill -0 "$events_pid"
      continue ;;
  esac
  bash -c "$line" </dev/null >"$state/out" 2>"$state/err"
  rc=$?
  check "$line (exit $rc)" test "$rc" = 0 || { sed 's/^/    /' "$state/out" "$state/err" | tail -8; }
done

echo "passed $passed, failed $failed"
[ "$failed" -eq 0 ]
