#!/usr/bin/env python3
"""tests/lib/vnc_type.py: a minimal RFB 3.8 viewer that types, for the display tests.

Usage: vnc_type.py HOST PORT TEXT
Connects (security None), sends ClientInit (shared), reads ServerInit and one whole framebuffer
update, then prints "connected WIDTHxHEIGHT NAME" and waits for a line on stdin. On that line it
types TEXT followed by Return (KeyEvents, X keysyms), waits for the answer to a framebuffer update
request sent after them and prints "typed", then closes. Exit 1 with a message on any protocol error.
Standard library only: it stands in for a real viewer's typing (vncsnapshot only looks).
"""
import socket
import struct
import sys

XK_RETURN = 0xFF0D


def recv_exact(sock, count):
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            raise EOFError(f"the server closed the connection ({len(data)} of {count} bytes read)")
        data += chunk
    return data


def read_update(sock, bytes_per_pixel):
    """Reads one FramebufferUpdate (Raw rectangles only, as requested) and any messages before it."""
    while True:
        kind = recv_exact(sock, 1)[0]
        if kind == 0:  # FramebufferUpdate
            _, count = struct.unpack(">BH", recv_exact(sock, 3))
            for _ in range(count):
                x, y, w, h, encoding = struct.unpack(">HHHHi", recv_exact(sock, 12))
                if encoding == 0:
                    recv_exact(sock, w * h * bytes_per_pixel)
                elif encoding in (-223, -308):  # DesktopSize, ExtendedDesktopSize pseudo-rectangles
                    if encoding == -308:
                        screens = recv_exact(sock, 4)[0]
                        recv_exact(sock, 16 * screens)
                else:
                    raise ValueError(f"unexpected encoding {encoding}")
            return
        if kind == 2:  # Bell
            continue
        if kind == 3:  # ServerCutText
            _, length = struct.unpack(">3sI", recv_exact(sock, 7))
            recv_exact(sock, length)
            continue
        if kind == 1:  # SetColourMapEntries
            _, _, count = struct.unpack(">BHH", recv_exact(sock, 5))
            recv_exact(sock, 6 * count)
            continue
        raise ValueError(f"unexpected server message {kind}")


def main():
    host, port, text = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    sock = socket.create_connection((host, port), timeout=120)
    version = recv_exact(sock, 12)
    if not version.startswith(b"RFB 003."):
        raise ValueError(f"not an RFB server: {version!r}")
    sock.sendall(b"RFB 003.008\n")
    count = recv_exact(sock, 1)[0]
    if count == 0:
        length = struct.unpack(">I", recv_exact(sock, 4))[0]
        raise ValueError(f"refused: {recv_exact(sock, length)!r}")
    types = recv_exact(sock, count)
    if 1 not in types:
        raise ValueError(f"no security type None among {list(types)}")
    sock.sendall(b"\x01")
    if struct.unpack(">I", recv_exact(sock, 4))[0] != 0:
        raise ValueError("security handshake failed")
    sock.sendall(b"\x01")  # ClientInit: shared
    width, height = struct.unpack(">HH", recv_exact(sock, 4))
    pixel_format = recv_exact(sock, 16)
    name = recv_exact(sock, struct.unpack(">I", recv_exact(sock, 4))[0]).decode("utf-8", "replace")
    bytes_per_pixel = pixel_format[0] // 8
    sock.sendall(struct.pack(">BBHi", 2, 0, 1, 0))  # SetEncodings: Raw only
    sock.sendall(struct.pack(">BBHHHH", 3, 0, 0, 0, width, height))
    read_update(sock, bytes_per_pixel)
    print(f"connected {width}x{height} {name}", flush=True)
    sys.stdin.readline()
    keys = [ord(c) for c in text] + [XK_RETURN]
    for key in keys:
        sock.sendall(struct.pack(">BBxxI", 4, 1, key) + struct.pack(">BBxxI", 4, 0, key))
    # A round trip through the server (non-incremental: answered even when nothing changed, as
    # for a view-only viewer): every key before it has been read by then.
    sock.sendall(struct.pack(">BBHHHH", 3, 0, 0, 0, width, height))
    read_update(sock, bytes_per_pixel)
    print("typed", flush=True)
    sock.close()


if __name__ == "__main__":
    try:
        main()
    except (OSError, EOFError, ValueError) as error:
        print(f"vnc_type.py: {error}", file=sys.stderr)
        sys.exit(1)
