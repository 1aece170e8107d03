#!/usr/bin/env python3
"""bench/web/console_echo.py: keystroke echo latency of a guest's serial console (issue 15).

Types one character at a time into the guest's shell and times until its echo comes back, over
each path given, in interleaved rounds (so a busy host slows every path alike):

  --wss NAME HOST:PORT PATH CA_FILE COOKIE   the browser's path: a WebSocket over TLS with the
                                             session cookie and the page's Origin (corrald --listen)
  --ws-unix NAME SOCKET PATH                 `corral vm console`'s path: a WebSocket on corrald's
                                             unix socket
  --stream NAME SOCKET                       a raw byte stream (QEMU's own serial chardev socket:
                                             no corrald in between)

Each line typed is a shell comment ("#" then letters, then Enter), so nothing runs in the guest.
Prints each path's median and p95 in ms and, against the last path given, their ratios.
Not a test: nothing fails on a number. Loopback and unix sockets only.
"""
import argparse
import base64
import os
import socket
import ssl
import statistics
import time

LETTERS = "abcdefghijklmnopqrstuvwxyz"
LINE = 16  # letters per line: well short of the guest's 80 columns, so no wrapping redraws


class Stream:
    """A raw byte stream (QEMU's serial socket)."""

    def __init__(self, sock):
        self.sock = sock

    def send(self, data: bytes):
        self.sock.sendall(data)

    def recv(self, timeout: float):
        """Output bytes, b"" when nothing came within `timeout` seconds."""
        self.sock.settimeout(max(timeout, 0.001))
        try:
            data = self.sock.recv(65536)
        except (socket.timeout, ssl.SSLWantReadError):
            return b""
        if not data:
            raise ConnectionError("the console connection closed")
        return data

    def close(self):
        self.sock.close()


class WebSocket(Stream):
    """A minimal RFC 6455 client: binary frames carry console bytes, text frames corrald's notes."""

    def __init__(self, sock, host: str, path: str, headers):
        super().__init__(sock)
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [f"GET {path} HTTP/1.1", f"Host: {host}", "Upgrade: websocket", "Connection: Upgrade",
                 f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13", *headers]
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        self.buffer = b""
        sock.settimeout(30)
        while b"\r\n\r\n" not in self.buffer:
            chunk = sock.recv(4096)
            if not chunk:
                raise ConnectionError("the server closed the connection during the handshake")
            self.buffer += chunk
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        status = head.split(b"\r\n", 1)[0].decode()
        if " 101 " not in status + " ":
            raise ConnectionError(f"WebSocket handshake answered {status!r}")
        self.notes = []

    def send(self, data: bytes):
        mask = os.urandom(4)
        header = bytes([0x82])
        if len(data) < 126:
            header += bytes([0x80 | len(data)])
        else:
            header += bytes([0x80 | 126]) + len(data).to_bytes(2, "big")
        self.sock.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def _frame(self):
        """One whole frame from the buffer: (opcode, payload), or None when incomplete."""
        if len(self.buffer) < 2:
            return None
        opcode, length, at = self.buffer[0] & 0x0F, self.buffer[1] & 0x7F, 2
        if length == 126:
            if len(self.buffer) < 4:
                return None
            length, at = int.from_bytes(self.buffer[2:4], "big"), 4
        elif length == 127:
            if len(self.buffer) < 10:
                return None
            length, at = int.from_bytes(self.buffer[2:10], "big"), 10
        if len(self.buffer) < at + length:
            return None
        payload, self.buffer = self.buffer[at:at + length], self.buffer[at + length:]
        return opcode, payload

    def recv(self, timeout: float):
        deadline = time.monotonic() + timeout
        while True:
            frame = self._frame()
            while frame:
                opcode, payload = frame
                if opcode in (0x0, 0x2):
                    return payload
                if opcode == 0x1:
                    self.notes.append(payload.decode(errors="replace"))
                elif opcode == 0x8:
                    raise ConnectionError("the server closed the WebSocket")
                frame = self._frame()
            chunk = super().recv(deadline - time.monotonic())
            if not chunk:
                return b""
            self.buffer += chunk

    def close(self):
        try:
            self.sock.sendall(bytes([0x88, 0x80]) + os.urandom(4))
            self.sock.settimeout(2)
            while self.sock.recv(4096):  # until the server closes its side: it has let go of the console
                pass
        except OSError:
            pass
        self.sock.close()


def connect(target):
    kind = target[0]
    if kind == "stream":
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(target[2])
        return Stream(sock)
    if kind == "ws-unix":
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(target[2])
        return WebSocket(sock, "corral", target[3], [])
    _, _, listen, path, ca, cookie = target
    host, port = listen.rsplit(":", 1)
    context = ssl.create_default_context(cafile=ca)
    context.check_hostname = False  # pinned by the CA file; loopback only
    sock = context.wrap_socket(socket.create_connection((host, int(port)), timeout=30))
    return WebSocket(sock, listen, path, [f"Cookie: __Host-corral_session={cookie}", f"Origin: https://{listen}"])


def wait_for(console, predicate, seconds, what):
    """Reads output until predicate(output so far) holds; the output read."""
    deadline = time.monotonic() + seconds
    seen = b""
    while not predicate(seen):
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {what} within {seconds} s (last output: {seen[-200:]!r})")
        seen += console.recv(deadline - time.monotonic())
    return seen


def at_prompt(output: bytes) -> bool:
    # busybox ash asks the terminal where its cursor is after each prompt (ESC [ 6 n); nothing
    # here answers, and ash does not wait for it.
    return output.replace(b"\x1b[6n", b"").rstrip(b" ").endswith((b"#", b"$"))


def round_of(target, keys: int, boot_wait: float):
    """Echo times in ms of `keys` letters typed over one connection to `target`."""
    console = connect(target)
    try:
        if isinstance(console, WebSocket):
            # corrald replays the scroll-back first, then a text frame where the live console begins.
            wait_for(console, lambda _: any("live console" in note for note in console.notes), 30, "live console note")
        else:
            while console.recv(0.2):  # whatever QEMU had not delivered yet
                pass
        # Enter until a prompt answers (the guest may still be booting).
        deadline = time.monotonic() + boot_wait
        while True:
            console.send(b"\r")
            try:
                wait_for(console, at_prompt, 2, "shell prompt")
                break
            except TimeoutError:
                if time.monotonic() > deadline:
                    raise
        times = []
        typed = 0
        while typed < keys:
            console.send(b"#")
            wait_for(console, lambda seen: b"#" in seen, 30, "echo of '#'")
            for i in range(min(LINE, keys - typed)):
                letter = LETTERS[(typed + i) % len(LETTERS)].encode()
                start = time.perf_counter_ns()
                console.send(letter)
                wait_for(console, lambda seen, letter=letter: letter in seen, 30, f"echo of {letter!r}")
                times.append((time.perf_counter_ns() - start) / 1e6)
            typed += min(LINE, keys - typed)
            console.send(b"\r")
            wait_for(console, lambda seen: b"\n" in seen and at_prompt(seen), 30, "prompt after Enter")
            refused = [note for note in getattr(console, "notes", []) if "read-only" in note or "dropped" in note]
            if refused:
                raise RuntimeError(f"corrald did not pass the keys on: {refused[0]}")
        return times
    finally:
        console.close()


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keys", type=int, default=100, help="letters typed per path in each round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds over all paths (interleaved)")
    parser.add_argument("--boot-wait", type=float, default=180, help="seconds to wait for a shell prompt")
    class InOrder(argparse.Action):  # every path into one list, in the order given
        def __call__(self, parser, namespace, values, option_string=None):
            namespace.targets.append((option_string[2:], *values))

    parser.add_argument("--wss", nargs=5, action=InOrder, metavar=("NAME", "HOST:PORT", "PATH", "CA", "COOKIE"))
    parser.add_argument("--ws-unix", nargs=3, action=InOrder, metavar=("NAME", "SOCKET", "PATH"))
    parser.add_argument("--stream", nargs=2, action=InOrder, metavar=("NAME", "SOCKET"))
    parser.set_defaults(targets=[])
    args = parser.parse_args()
    targets = args.targets  # the last one is the baseline of the ratios
    if not targets:
        parser.error("give at least one of --wss, --ws-unix, --stream")
    results = {target[1]: [] for target in targets}
    for _ in range(args.rounds):
        for target in targets:
            results[target[1]].extend(round_of(target, args.keys, args.boot_wait))
    base = results[targets[-1][1]]
    base_median, base_p95 = statistics.median(base), percentile(base, 0.95)
    print(f"keystroke echo latency, {args.rounds} rounds x {args.keys} keys per path, ms "
          f"(ratio against {targets[-1][1]}):")
    print(f"  {'path':<40} {'median':>8} {'p95':>8} {'ratio':>12}")
    for target in targets:
        times = results[target[1]]
        median, p95 = statistics.median(times), percentile(times, 0.95)
        print(f"  {target[1]:<40} {median:8.2f} {p95:8.2f} {median / base_median:5.2f} /{p95 / base_p95:5.2f}")


if __name__ == "__main__":
    main()
