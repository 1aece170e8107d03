#!/usr/bin/env python3
"""tests/lib/vnc_type.py: a viewer that types, for the display tests (tests/lib/rfb_client.py's client).

Usage: vnc_type.py HOST PORT TEXT
Connects (security None, shared), reads one whole framebuffer update, then prints
"connected WIDTHxHEIGHT NAME" and waits for a line on stdin. On that line it types TEXT followed by
Return (KeyEvents, X keysyms), waits for the answer to a framebuffer update request sent after
them and prints "typed", then closes. Exit 1 with a message on any protocol error.
It holds its connection open while the test does other things, which rfb_client.py's one-shot
commands do not.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rfb_client import RfbClient, RfbError  # noqa: E402


def main():
    host, port, text = sys.argv[1], sys.argv[2], sys.argv[3]
    viewer = RfbClient(f"{host}:{port}", timeout=120)
    viewer.refresh()
    print(f"connected {viewer.width}x{viewer.height} {viewer.name}", flush=True)
    sys.stdin.readline()
    viewer.type_text(text + "\n")
    # A round trip through the server (non-incremental: answered even when nothing changed, as
    # for a view-only viewer): every key before it has been read by then.
    viewer.request_update(incremental=False, rect=(0, 0, 1, 1))
    viewer.read_update()
    print("typed", flush=True)
    viewer.close()


if __name__ == "__main__":
    try:
        main()
    except (OSError, EOFError, ValueError, RfbError) as error:
        print(f"vnc_type.py: {error}", file=sys.stderr)
        sys.exit(1)
