#!/usr/bin/env python3
"""Bytes and time to update a VNC viewer after a change on screen, against any RFB endpoint.

  update_bench.py TARGET --full 'CMD' --line 'CMD' [--encodings tight] [--runs 3] [--quiet 0.5] [--json]

TARGET is a unix socket path or HOST:PORT (corral-vmm's --vnc socket, QEMU's -vnc unix:PATH, or
rfb_test_server's). CMD is a shell command that makes the change: --full should change the whole
screen (e.g. `clear` and a screenful of text typed into the guest, or rfb_test_server's `fill`),
--line one line of it. For each run and scenario the viewer (tests/lib/rfb_client.py, one
connection, 32 bpp true colour) has an incremental update request pending, the command runs, and
the tool reads updates, asking again after each, until none arrives for --quiet seconds:

  first_ms  command start to the first update fully read (the command's own time included: cmd_ms)
  done_ms   command start to the last update of the change fully read
  bytes     bytes the server sent for the change, updates  how many FramebufferUpdates, rects

Numbers are per run; nothing here judges them (bench/README.md: benchmarks print, tests check).
"""
import argparse
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "lib"))
from rfb_client import RfbClient  # noqa: E402


def measure(client, trigger, quiet=0.5, timeout=60.0):
    """Runs `trigger()` with an incremental request pending on `client` and returns the figures of
    the updates that follow (see the module's doc)."""
    start_bytes = client.bytes_received
    client.request_update(incremental=True)
    start = time.monotonic()
    trigger()
    cmd_ms = (time.monotonic() - start) * 1000
    first = client.wait_update(timeout)
    if first is None:
        raise RuntimeError(f"no update within {timeout} s of the change")
    first_at = last_at = time.monotonic()
    updates, rects = 1, len(first)
    while True:
        client.request_update(incremental=True)
        more = client.wait_update(quiet)
        if more is None:
            break
        last_at = time.monotonic()
        updates += 1
        rects += len(more)
    # The request left pending is answered by the next change: its bytes count there.
    return {"cmd_ms": round(cmd_ms, 2), "first_ms": round((first_at - start) * 1000, 2),
            "done_ms": round((last_at - start) * 1000, 2), "bytes": client.bytes_received - start_bytes,
            "updates": updates, "rects": rects}


def settle(client, quiet):
    """Reads whatever updates are still coming (an earlier change), so the next run starts clean."""
    while client.wait_update(quiet) is not None:
        client.request_update(incremental=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("target")
    parser.add_argument("--full", required=True, help="shell command that changes the whole screen")
    parser.add_argument("--line", required=True, help="shell command that changes one line")
    parser.add_argument("--encodings", default="tight", help="comma-separated, in order of preference")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quiet", type=float, default=0.5, help="seconds without updates that end a change")
    parser.add_argument("--json", action="store_true", help="one JSON object per line instead of a table")
    options = parser.parse_args()

    client = RfbClient(options.target, encodings=options.encodings.split(","))
    client.refresh()
    if not options.json:
        print(f"{options.target}: {client.width}x{client.height} '{client.name}', encodings {options.encodings}")
        print(f"{'run':>3} {'change':<6} {'bytes':>10} {'updates':>7} {'rects':>6} {'first_ms':>9} {'done_ms':>9} "
              f"{'cmd_ms':>7}")
    for run in range(1, options.runs + 1):
        for name, command in (("full", options.full), ("line", options.line)):
            client.request_update(incremental=True)
            settle(client, options.quiet)
            figures = measure(client, lambda: subprocess.run(command, shell=True, check=True), options.quiet)
            if options.json:
                print(json.dumps({"run": run, "change": name, "encodings": options.encodings, **figures}))
            else:
                print(f"{run:>3} {name:<6} {figures['bytes']:>10} {figures['updates']:>7} {figures['rects']:>6} "
                      f"{figures['first_ms']:>9} {figures['done_ms']:>9} {figures['cmd_ms']:>7}")
    client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
