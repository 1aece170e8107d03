#!/usr/bin/env python3
"""Corral's VNC server (src/display) against real viewers, on rfb_test_server's known picture:
vncsnapshot (Debian's TightVNC-based client) captures it in Raw, Zlib and Tight; tests/lib/rfb_client.py
types keysyms and QEMU extended key events and the server's InputSink prints the Linux key codes;
two viewers see the same screen; a view-only viewer's input reaches nothing; a resize reaches viewers
as ExtendedDesktopSize or DesktopSize; hostile viewers are disconnected while the others carry on.

  rfb_test.py PATH/TO/rfb_test_server     (exit 0 pass, 77 skipped with the reason, 1 fail)
"""
import os
import queue
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "lib"))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "bench", "display"))
import rfb_client  # noqa: E402
import update_bench  # noqa: E402
from rfb_client import RfbClient, pattern_colour  # noqa: E402

FAILURES = []


def check(condition, what):
    print(("ok   " if condition else "FAIL ") + what, flush=True)
    if not condition:
        FAILURES.append(what)


class TestServer:
    def __init__(self, binary, directory, size="640x480"):
        self.socket = os.path.join(directory, "vnc.sock")
        self.view_only_socket = os.path.join(directory, "view.sock")
        self.process = subprocess.Popen(
            [binary, "--socket", self.socket, "--view-only-socket", self.view_only_socket, "--tcp", "--size", size],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        self.lines = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.port = int(self.expect("TCP ").split()[1])
        self.expect("READY")

    def _read(self):
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def expect(self, prefix, timeout=30):
        """The next line starting with `prefix` (other lines are dropped)."""
        deadline = time.monotonic() + timeout
        while True:
            line = self.lines.get(timeout=max(0.1, deadline - time.monotonic()))
            if line is None:
                raise RuntimeError(f"rfb_test_server ended while waiting for {prefix!r}")
            if line.startswith(prefix):
                return line

    def input_lines(self):
        """KEY and POINTER lines printed so far (call after a round trip to the viewer that sent them:
        the server printed them before it answered). A `viewers` command marks the end: its answer
        comes after every line printed before it."""
        self.command("viewers")
        lines = []
        while True:
            line = self.lines.get(timeout=30)
            if line is None or line.startswith("VIEWERS "):
                return lines
            if line.split()[0] in ("KEY", "POINTER"):
                lines.append(line)

    def command(self, text):
        self.process.stdin.write(text + "\n")
        self.process.stdin.flush()
        if not text.startswith("viewers"):
            self.expect("OK " + text.split()[0])

    def viewers(self):
        self.command("viewers")
        return int(self.expect("VIEWERS ").split()[1])

    def clear_input(self):
        self.input_lines()

    def stop(self):
        try:
            self.process.stdin.write("quit\n")
            self.process.stdin.close()
            self.process.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            self.process.kill()
            self.process.wait()


def round_trip(client):
    """Returns once the server has handled everything `client` sent before (it answers in order)."""
    client.request_update(incremental=False, rect=(0, 0, 1, 1))
    while not any(r[4] >= 0 for r in client.read_update()):
        pass


def pattern_matches(width, height, pixel, tolerance=0, quiet=False):
    """Whether pixel(x, y) shows the test pattern at the centre of each of its 16 cells."""
    for row in range(4):
        for column in range(4):
            x = column * width // 4 + width // 8
            y = row * height // 4 + height // 8
            want, got = pattern_colour(width, height, x, y), pixel(x, y)
            if any(abs(a - b) > tolerance for a, b in zip(want, got)):
                if not quiet:
                    print(f"     at ({x},{y}): want {want}, got {got}")
                return False
    return True


def read_ppm(data):
    fields, pos = [], 2
    while len(fields) < 3:  # width, height, maxval after the "P6" magic
        while data[pos:pos + 1].isspace():
            pos += 1
        end = pos
        while not data[end:end + 1].isspace():
            end += 1
        fields.append(int(data[pos:end]))
        pos = end
    return fields[0], fields[1], data[pos + 1:]


def vncsnapshot(server, directory, encodings):
    out = os.path.join(directory, f"snap-{encodings.replace(' ', '-')}.jpg")
    result = subprocess.run(["vncsnapshot", "-quiet", "-nojpeg", "-encodings", encodings, "-quality", "100",
                             f"127.0.0.1::{server.port}", out], capture_output=True, text=True, timeout=60)
    if result.returncode != 0 or not os.path.exists(out):
        print(f"     vncsnapshot exit {result.returncode}: {result.stderr.strip()}")
        return None
    ppm = subprocess.run(["djpeg", "-pnm", out], capture_output=True, timeout=30, check=True).stdout
    return read_ppm(ppm)


def test_vncsnapshot(server, directory):
    for encodings in ("raw", "zlib", "tight", "copyrect tight hextile zlib corre rre raw"):
        shot = vncsnapshot(server, directory, encodings)
        if shot is None:
            check(False, f"vncsnapshot -encodings '{encodings}' captures the screen")
            continue
        width, height, rgb = shot
        pixel = lambda x, y: tuple(rgb[(y * width + x) * 3:(y * width + x) * 3 + 3])  # noqa: E731
        # JPEG (vncsnapshot's only output) is lossy: colours within a tolerance.
        check((width, height) == (640, 480) and pattern_matches(width, height, pixel, tolerance=24),
              f"vncsnapshot -encodings '{encodings}': 640x480, the pattern's 16 colours")


def test_keys(server):
    client = RfbClient(server.socket)
    server.input_lines()
    client.type_text("Hi!\n")
    round_trip(client)
    keys = server.input_lines()
    want = ["KEY 42 down", "KEY 35 down", "KEY 35 up", "KEY 42 up", "KEY 23 down", "KEY 23 up",
            "KEY 42 down", "KEY 2 down", "KEY 2 up", "KEY 42 up", "KEY 28 down", "KEY 28 up"]
    check(keys == want, f"keysyms 'Hi!\\n' with Shift as a keyboard sends it -> Linux codes {keys}")

    # A client that sends '!' without Shift: the server presses Shift around the key.
    client.key_event(ord("!"), True)
    client.key_event(ord("!"), False)
    # ...and '1' while Shift is held: Shift is lifted for it.
    client.key_event(0xFFE1, True)
    client.key_event(ord("1"), True)
    client.key_event(ord("1"), False)
    client.key_event(0xFFE1, False)
    round_trip(client)
    keys = server.input_lines()
    want = ["KEY 42 down", "KEY 2 down", "KEY 42 up", "KEY 2 up",
            "KEY 42 down", "KEY 42 up", "KEY 2 down", "KEY 42 down", "KEY 2 up", "KEY 42 up"]
    check(keys == want, f"keysym '!' alone -> Shift added; '1' under Shift -> Shift lifted: {keys}")

    client.press_combo("ctrl-alt-delete")
    round_trip(client)
    keys = server.input_lines()
    want = ["KEY 29 down", "KEY 56 down", "KEY 111 down", "KEY 111 up", "KEY 56 up", "KEY 29 up"]
    check(keys == want, f"ctrl-alt-delete as keysyms -> {keys}")

    client.pointer(100, 200, 1)
    client.pointer(5000, 5000, 0)
    round_trip(client)
    lines = server.input_lines()
    check(lines == ["POINTER 100 200 640 480 1", "POINTER 639 479 640 480 0"],
          f"pointer events with the screen size, clamped to it: {lines}")
    client.close()

    ext = RfbClient(server.socket, ext_key=True)
    round_trip(ext)
    check(ext.ext_key_confirmed, "the server acknowledges the QEMU extended key event pseudo-encoding")
    server.input_lines()
    ext.type_text("a@")
    ext.press_combo("home")
    ext.press_combo("rightctrl")
    # The 0xE0xx spelling of an extended scancode (Up: E0 48) and an unknown scancode with a keysym.
    ext.ext_key_event(0xFF52, 0xE048, True)
    ext.ext_key_event(0xFF52, 0xE048, False)
    ext.ext_key_event(ord("z"), 0x7F, True)
    ext.ext_key_event(ord("z"), 0x7F, False)
    round_trip(ext)
    keys = server.input_lines()
    want = ["KEY 30 down", "KEY 30 up", "KEY 42 down", "KEY 3 down", "KEY 3 up", "KEY 42 up",
            "KEY 102 down", "KEY 102 up", "KEY 97 down", "KEY 97 up", "KEY 103 down", "KEY 103 up",
            "KEY 44 down", "KEY 44 up"]
    check(keys == want, f"QEMU extended key events (scancodes 0x1e, 0x2a+0x03, 0xC7, 0x9D, 0xE048) -> {keys}")
    # Keys still pressed when a viewer goes away are released.
    ext.ext_key_event(0, 0x1D, True)
    round_trip(ext)
    ext.close()
    server.expect("KEY 29 down")
    line = server.expect("KEY 29")
    check(line == "KEY 29 up", f"a key held by a viewer that disconnects is released: {line}")


def test_view_only(server):
    viewer = RfbClient(server.view_only_socket)
    viewer.refresh()
    check(pattern_matches(viewer.width, viewer.height, viewer.pixel), "the view-only viewer sees the screen")
    server.input_lines()
    viewer.type_text("x")
    viewer.pointer(10, 10, 1)
    viewer.ext_key_event(ord("y"), 0x15, True)
    viewer.ext_key_event(ord("y"), 0x15, False)
    round_trip(viewer)
    full = RfbClient(server.socket)
    full.type_text("q")
    round_trip(full)
    lines = server.input_lines()
    check(lines == ["KEY 16 down", "KEY 16 up"], f"the view-only viewer's keys and pointer reach nothing: {lines}")
    viewer.close()
    full.close()


def test_two_viewers_and_changes(server, directory):
    first = RfbClient(server.socket, encodings=("tight",))
    second = RfbClient(server.socket, encodings=("zlib",))
    third = RfbClient(server.socket, encodings=("raw",))
    viewers = [first, second, third]
    for viewer in viewers:
        viewer.refresh()
    check(first.pixels == second.pixels == third.pixels and pattern_matches(640, 480, first.pixel),
          "three viewers (Tight, Zlib, Raw) at once see the same screen, the pattern")
    for viewer in viewers:
        viewer.request_update(incremental=True)
    # An incremental request waits for a change: nothing arrives before it.
    check(first.wait_update(0.3) is None, "an incremental request is not answered before something changes")
    server.command("rect 100 100 50 30 10 200 30")
    for viewer in viewers:
        rects = viewer.wait_update(30) if viewer is first else viewer.read_update()
        # Damage is tracked in 64 x 64 tiles: the change spans two tile rows, each trimmed to the rows
        # that changed (100..127, 128..129) and the 64-pixel columns (64..191).
        covered = [(x, y, w, h) for x, y, w, h, _ in rects or []] == [(64, 100, 128, 28), (64, 128, 128, 2)]
        check(covered and viewer.pixel(120, 110) == (10, 200, 30)
              and viewer.pixel(99, 99) == pattern_colour(640, 480, 99, 99),
              f"a 50x30 change reaches the viewer as {len(rects or [])} tile rectangle(s) with the new colour")
    server.command("line 300 1 2 3")
    first.request_update(incremental=True)
    rects = first.read_update()
    check([r[:4] for r in rects] == [(0, 300, 640, 1)] and first.pixel(7, 300) == (1, 2, 3),
          f"a one-line change is sent as that line: {rects}")
    path = os.path.join(directory, "capture.png")
    subprocess.run([sys.executable, rfb_client.__file__, server.socket, "capture", path], check=True, timeout=60)
    with open(path, "rb") as f:
        width, height, rgb = rfb_client.decode_png(f.read())
    check((width, height) == (640, 480) and rgb == bytes(first.pixels),
          "rfb_client.py capture writes a PNG of the screen")
    for viewer in viewers:
        viewer.close()
    server.command("pattern")


def test_resize(server):
    extended = RfbClient(server.socket, desktop_size=("extended",))
    plain = RfbClient(server.socket, desktop_size=("plain",))
    old = RfbClient(server.socket, desktop_size=())
    for viewer in (extended, plain, old):
        viewer.refresh()
        viewer.request_update(incremental=True)
    server.command("resize 800 600")
    for viewer, encoding, name in ((extended, -308, "ExtendedDesktopSize"), (plain, -223, "DesktopSize")):
        viewer.read_update()
        # The test server clears the screen (resize) and then draws: that may take another update.
        for _ in range(20):
            if pattern_matches(800, 600, viewer.pixel, quiet=True):
                break
            viewer.request_update(incremental=True)
            viewer.read_update()
        check(viewer.resizes[-1:] == [(encoding, 800, 600)] and (viewer.width, viewer.height) == (800, 600)
              and pattern_matches(800, 600, viewer.pixel),
              f"a resize to 800x600 reaches a viewer as {name} with the new screen: {viewer.resizes}")
    old.read_update()
    check((old.width, old.height) == (640, 480), "a viewer without DesktopSize keeps its size (updates clipped)")
    old.refresh()
    for viewer in (extended, plain, old):
        viewer.close()
    # A viewer's SetDesktopSize is answered "prohibited" (the guest decides its mode).
    viewer = RfbClient(server.socket, desktop_size=("extended",))
    viewer.refresh()
    viewer.send(struct.pack(">BxHHBxIHHHHI", 251, 1024, 768, 1, 0, 0, 0, 1024, 768, 0))
    viewer.request_update(incremental=True)
    rects = viewer.read_update()
    check(any(r[4] == -308 and r[0] == 1 and r[1] == 1 for r in rects) and viewer.width == 800,
          f"SetDesktopSize is answered with status 1 (prohibited): {rects}")
    viewer.close()
    server.command("resize 640 480")


def test_versions(server):
    for version in (3, 7):
        client = RfbClient(server.socket, version=version)
        client.refresh()
        check(pattern_matches(client.width, client.height, client.pixel), f"an RFB 3.{version} viewer gets the screen")
        client.close()


def test_pixel_formats(server):
    """Viewers' own pixel formats: each pixel of the pattern converted as the format says."""
    x, y = 50, 300  # cell 8 of the pattern: (128, 0, 64), scaled with rounding
    r, g, b = pattern_colour(640, 480, x, y)
    formats = {
        # bpp, depth, big endian, maxes, shifts -> the expected pixel bytes
        "16 bpp RGB565 little-endian": ((16, 16, 0, 31, 63, 31, 11, 5, 0),
                                        struct.pack("<H", (r * 31 + 127) // 255 << 11 | (g * 63 + 127) // 255 << 5
                                                    | (b * 31 + 127) // 255)),
        "8 bpp BGR233": ((8, 8, 0, 7, 7, 3, 0, 3, 6),
                         bytes([(r * 7 + 127) // 255 | (g * 7 + 127) // 255 << 3 | (b * 3 + 127) // 255 << 6])),
        "32 bpp RGBX big-endian (noVNC's shifts)": ((32, 24, 1, 255, 255, 255, 0, 8, 16), bytes([0, b, g, r])),
    }
    for name, ((bpp, depth, big, rmax, gmax, bmax, rs, gs, bs), want) in formats.items():
        client = RfbClient(server.socket, encodings=("raw",), desktop_size=())
        client.send(struct.pack(">B3xBBBBHHHBBB3x", 0, bpp, depth, big, 1, rmax, gmax, bmax, rs, gs, bs))
        client.request_update(incremental=False, rect=(x, y, 1, 1))
        header = struct.unpack(">BxHHHHHi", client.read(16))
        got = client.read(bpp // 8)
        check(header == (0, 1, x, y, 1, 1, 0), f"{name}: one Raw rectangle {header}")
        check(got == want, f"{name}: the pixel {(r, g, b)} arrives as {got.hex()} (want {want.hex()})")
        client.close()


def raw_connect(path):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(30)
    sock.connect(path)
    return sock


def closed_by_server(sock):
    try:
        while sock.recv(65536):
            pass
        return True
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def handshake(sock):
    sock.recv(12)
    sock.sendall(b"RFB 003.008\n")
    sock.recv(2)
    sock.sendall(b"\x01")
    sock.recv(4)
    sock.sendall(b"\x01")
    header = b""
    while len(header) < 24:
        header += sock.recv(24 - len(header))
    (length,) = struct.unpack(">I", header[20:24])
    sock.recv(length)


def test_hostile(server):
    cases = {
        "a version string that is not RFB": lambda s: s.sendall(b"GET / HTTP/1.1\r\n\r\n"),
        "a security type not offered": lambda s: (s.recv(12), s.sendall(b"RFB 003.008\n"), s.recv(2), s.sendall(b"\x02")),
    }
    for what, action in cases.items():
        sock = raw_connect(server.socket)
        action(sock)
        check(closed_by_server(sock), f"{what}: the server disconnects")
        sock.close()
    messages = {
        "an unknown message type": b"\x09" + b"\x00" * 20,
        "a colour-map pixel format": struct.pack(">B3xBBBBHHHBBB3x", 0, 8, 8, 0, 0, 0, 0, 0, 0, 0, 0),
        "a 24 bpp pixel format": struct.pack(">B3xBBBBHHHBBB3x", 0, 24, 24, 0, 1, 255, 255, 255, 16, 8, 0),
        "SetEncodings announcing 65535 encodings": struct.pack(">BxH", 2, 65535),
        "a QEMU message of an unknown subtype": b"\xff\x07" + b"\x00" * 10,
    }
    for what, data in messages.items():
        sock = raw_connect(server.socket)
        handshake(sock)
        sock.sendall(data)
        check(closed_by_server(sock), f"{what}: the server disconnects")
        sock.close()
    # A huge ClientCutText is skipped as it arrives, and the viewer carries on.
    client = RfbClient(server.socket)
    client.send(struct.pack(">B3xI", 6, 1 << 30) + b"x" * 100000)
    client.close()
    # Byte by byte: partial messages are kept until complete.
    client = RfbClient(server.socket)
    server.input_lines()
    for byte in struct.pack(">BBxxI", 4, 1, ord("k")) + struct.pack(">BBxxI", 4, 0, ord("k")):
        client.send(bytes([byte]))
    round_trip(client)
    check(server.input_lines() == ["KEY 37 down", "KEY 37 up"], "a KeyEvent sent one byte at a time is handled")
    client.close()

    # A viewer that asks for updates and never reads: the others still get theirs.
    stuck = raw_connect(server.socket)
    handshake(stuck)
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stuck.sendall(struct.pack(">BBHHHH", 3, 0, 0, 0, 640, 480) * 200)
    other = RfbClient(server.socket)
    other.refresh()
    for colour in range(3):
        server.command(f"fill {colour} 0 0")
        # An update may show the previous fill (asked for before this one was drawn): ask again.
        for _ in range(10):
            other.request_update(incremental=True)
            other.read_update()
            if other.pixel(0, 0) == (colour, 0, 0):
                break
    check(other.pixel(0, 0) == (2, 0, 0), "a viewer that does not read does not hold up the others")
    stuck.close()
    other.close()
    server.command("pattern")
    deadline = time.monotonic() + 30
    # Every viewer of the tests has closed by now; the server notices each within a poll round.
    while server.viewers() != 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    check(server.viewers() == 0, "every hostile viewer is gone, the server still runs")


def test_bench(server):
    """bench/display/update_bench.py's measurement against the server (a smoke run, no timing judged)."""
    for colour, encodings in enumerate(("raw", "tight")):
        client = RfbClient(server.socket, encodings=(encodings,))
        client.refresh()
        full = update_bench.measure(client, lambda: server.command(f"fill 1 2 {colour}"), quiet=0.2)
        line = update_bench.measure(client, lambda: server.command("line 200 9 9 9"), quiet=0.2)
        check(client.pixel(0, 0) == (1, 2, colour) and client.pixel(5, 200) == (9, 9, 9)
              and line["bytes"] < full["bytes"],
              f"update_bench in {encodings}: full screen {full['bytes']} bytes, one line {line['bytes']} bytes")
        if encodings == "raw":
            check(full["bytes"] >= 640 * 480 * 4 and line["bytes"] < 640 * 4 + 100,
                  "a full-screen change in Raw sends every pixel, a one-line change that line")
        else:
            check(full["bytes"] < 1000, "a one-colour screen in Tight is a few fills")
        client.close()
    server.command("pattern")


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    for tool in ("vncsnapshot", "djpeg"):
        if not shutil.which(tool):
            print(f"skipped: {tool} is not installed (tools/setup installs it)")
            return 77
    with tempfile.TemporaryDirectory() as directory:
        server = TestServer(sys.argv[1], directory)
        try:
            mode = oct(os.stat(server.socket).st_mode & 0o777)
            check(mode == "0o600", f"the VNC socket's mode is 0600 ({mode})")
            test_vncsnapshot(server, directory)
            test_keys(server)
            test_view_only(server)
            test_two_viewers_and_changes(server, directory)
            test_resize(server)
            test_versions(server)
            test_pixel_formats(server)
            test_hostile(server)
            test_bench(server)
        finally:
            server.stop()
        check(server.process.returncode == 0, f"rfb_test_server exits 0 ({server.process.returncode})")
        check(not os.path.exists(server.socket) and not os.path.exists(server.view_only_socket),
              "the sockets are removed when the server stops")
    if FAILURES:
        print(f"{len(FAILURES)} check(s) failed")
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
