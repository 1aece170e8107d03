#!/usr/bin/env python3
"""Bytes and time to update a VNC viewer after a change on screen, against any RFB endpoint.

  update_bench.py TARGET --full 'CMD' --line 'CMD' [--encodings tight] [--runs 3] [--quiet 0.5] [--json]
  update_bench.py TARGET --type-full TEXT --type-line TEXT [--type-delay 0.02] [...]
  update_bench.py TARGET --keys-full COMBO --before-full COMBO --type-line TEXT [...]

TARGET is a unix socket path or HOST:PORT (corral-vmm's --vnc socket, QEMU's -vnc unix:PATH, or
rfb_test_server's). CMD is a shell command that makes the change: --full should change the whole
screen (e.g. `clear` and a screenful of text typed into the guest, or rfb_test_server's `fill`),
--line one line of it. For each run and scenario the viewer (tests/lib/rfb_client.py, one
connection, 32 bpp true colour) has an incremental update request pending, the command runs, and
the tool reads updates, asking again after each, until none arrives for --quiet seconds.
With --type-full/--type-line the viewer itself types TEXT into the guest (key events on its own
connection, --type-delay seconds apart; \n is Enter), and times count from the last key sent, so
that no tool's start-up time is in them (a Python start inside the nested lab takes seconds).
--keys-full/--keys-line press a key combination instead (e.g. alt-f1: Linux's text console shows
virtual console 1 again, a full-screen redraw with no guest program in the way), and
--before-full/--before-line one before each run, untimed (alt-f2: away to a blank console first).

  first_ms  the change (command start, or last key sent) to the first update fully read
  done_ms   the change to the last update of the change fully read
  cmd_ms    the command's own time, or the typing's
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
import rfb_client  # noqa: E402
from rfb_client import RfbClient  # noqa: E402


# Why a screen never goes quiet, most of the time.
NEVER_QUIET = "a blinking cursor? (Linux's text console: boot with vt.global_cursor_default=0)"


def measure(client, trigger, quiet=0.5, timeout=60.0, from_end=False):
    """Runs `trigger()` with an incremental request pending on `client` and returns the figures of
    the updates that follow (see the module's doc), timed from the trigger's start, or from its end
    when `from_end`."""
    start_bytes = client.bytes_received
    client.request_update(incremental=True)
    began = time.monotonic()
    trigger()
    ended = time.monotonic()
    cmd_ms = (ended - began) * 1000
    start = ended if from_end else began
    first = client.wait_update(timeout)
    if first is None:
        raise RuntimeError(f"no update within {timeout} s of the change (did the command change the screen?)")
    first_at = last_at = time.monotonic()
    updates, rects = 1, len(first)
    while True:
        if last_at - first_at > timeout:
            raise RuntimeError(f"updates still coming {timeout} s after the change: {NEVER_QUIET}")
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


def settle(client, quiet, timeout=60.0):
    """Reads whatever updates are still coming (an earlier change), so the next run starts clean."""
    deadline = time.monotonic() + timeout
    while client.wait_update(quiet) is not None:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the screen did not go quiet for {quiet} s within {timeout} s: {NEVER_QUIET}")
        client.request_update(incremental=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("target")
    parser.add_argument("--full", help="shell command that changes the whole screen")
    parser.add_argument("--line", help="shell command that changes one line")
    parser.add_argument("--type-full", help="text the viewer types to change the whole screen (\\n: Enter)")
    parser.add_argument("--type-line", help="text the viewer types to change one line")
    parser.add_argument("--type-delay", type=float, default=0.02, help="seconds between typed keys")
    parser.add_argument("--keys-full", help="key combination the viewer presses to change the whole screen")
    parser.add_argument("--keys-line", help="key combination the viewer presses to change one line")
    parser.add_argument("--before-full", help="key combination pressed before each full change, untimed")
    parser.add_argument("--before-line", help="key combination pressed before each line change, untimed")
    parser.add_argument("--encodings", default="tight", help="comma-separated, in order of preference")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quiet", type=float, default=0.5, help="seconds without updates that end a change")
    parser.add_argument("--json", action="store_true", help="one JSON object per line instead of a table")
    options = parser.parse_args()
    for change in ("full", "line"):
        given = [getattr(options, f"{kind}{change}") is not None for kind in ("", "type_", "keys_")]
        if sum(given) != 1:
            parser.error(f"give one of --{change} CMD, --type-{change} TEXT and --keys-{change} COMBO")

    try:
        return run(options)
    except (OSError, RuntimeError, rfb_client.RfbError, subprocess.CalledProcessError) as error:
        print(f"update_bench: {error}", file=sys.stderr)
        return 1


def run(options):
    client = RfbClient(options.target, encodings=options.encodings.split(","))
    client.refresh()
    if not options.json:
        print(f"{options.target}: {client.width}x{client.height} '{client.name}', encodings {options.encodings}")
        print(f"{'run':>3} {'change':<6} {'bytes':>10} {'updates':>7} {'rects':>6} {'first_ms':>9} {'done_ms':>9} "
              f"{'cmd_ms':>7}")
    def trigger_of(change):
        command, text = getattr(options, change), getattr(options, f"type_{change}")
        combo = getattr(options, f"keys_{change}")
        if command is not None:
            return lambda: subprocess.run(command, shell=True, check=True)
        if combo is not None:
            return lambda: client.press_combo(combo)
        text = text.encode().decode("unicode_escape")

        def type_it():
            for index, char in enumerate(text):
                if index:
                    time.sleep(options.type_delay)  # guests drop keys that come all at once
                client.type_text(char)
        return type_it

    for run in range(1, options.runs + 1):
        for name in ("full", "line"):
            before = getattr(options, f"before_{name}")
            if before is not None:
                client.press_combo(before)
            client.request_update(incremental=True)
            settle(client, options.quiet)
            typed = getattr(options, name) is None
            figures = measure(client, trigger_of(name), options.quiet, from_end=typed)
            if options.json:
                print(json.dumps({"run": run, "change": name, "encodings": options.encodings, **figures}))
            else:
                print(f"{run:>3} {name:<6} {figures['bytes']:>10} {figures['updates']:>7} {figures['rects']:>6} "
                      f"{figures['first_ms']:>9} {figures['done_ms']:>9} {figures['cmd_ms']:>7}")
    client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
