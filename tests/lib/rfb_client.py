#!/usr/bin/env python3
"""A small RFB (VNC) client for tests and benchmarks: real sockets, no dependencies.

It speaks RFB 3.8 (or 3.3/3.7) with security None, decodes Raw, Zlib and Tight (fill, copy,
palette and gradient filters; JPEG is never asked for) into an RGB picture, follows DesktopSize and
ExtendedDesktopSize, and sends keys as keysyms (with Shift pressed around shifted characters, as
a keyboard would) or as QEMU extended key events (XT scancodes, --ext-key).

  rfb_client.py TARGET [--ext-key] [--encodings tight,zlib,raw] COMMAND ...
    TARGET: a unix socket path, or HOST:PORT
    type TEXT          type TEXT (backslash escapes: \\n is Return, \\t Tab)
    key COMBO...       press and release key combinations (ctrl-alt-delete, shift-a, f1, enter)
    capture FILE.png   write the screen as a PNG
    pointer X Y [BUTTONS]  move the pointer (and press BUTTONS, a mask), then release
    info               print "WIDTHxHEIGHT NAME"
"""
import argparse
import os
import socket
import struct
import sys
import time
import zlib

ENCODING_RAW = 0
ENCODING_ZLIB = 6
ENCODING_TIGHT = 7
ENCODING_DESKTOP_SIZE = -223
ENCODING_LAST_RECT = -224
ENCODING_QEMU_EXTENDED_KEY = -258
ENCODING_EXTENDED_DESKTOP_SIZE = -308
ENCODINGS_BY_NAME = {"raw": ENCODING_RAW, "zlib": ENCODING_ZLIB, "tight": ENCODING_TIGHT}

# Linux key codes (<linux/input-event-codes.h>); XT set 1 scancodes are the same numbers up to 0x58.
KEY = {
    "esc": 1, "1": 2, "2": 3, "3": 4, "4": 5, "5": 6, "6": 7, "7": 8, "8": 9, "9": 10, "0": 11,
    "minus": 12, "equal": 13, "backspace": 14, "tab": 15, "q": 16, "w": 17, "e": 18, "r": 19, "t": 20,
    "y": 21, "u": 22, "i": 23, "o": 24, "p": 25, "leftbrace": 26, "rightbrace": 27, "enter": 28,
    "ctrl": 29, "a": 30, "s": 31, "d": 32, "f": 33, "g": 34, "h": 35, "j": 36, "k": 37, "l": 38,
    "semicolon": 39, "apostrophe": 40, "grave": 41, "shift": 42, "backslash": 43, "z": 44, "x": 45,
    "c": 46, "v": 47, "b": 48, "n": 49, "m": 50, "comma": 51, "dot": 52, "slash": 53, "rightshift": 54,
    "kpasterisk": 55, "alt": 56, "space": 57, "capslock": 58, "f1": 59, "f2": 60, "f3": 61, "f4": 62,
    "f5": 63, "f6": 64, "f7": 65, "f8": 66, "f9": 67, "f10": 68, "f11": 87, "f12": 88,
    "rightctrl": 97, "altgr": 100, "home": 102, "up": 103, "pageup": 104, "left": 105, "right": 106,
    "end": 107, "down": 108, "pagedown": 109, "insert": 110, "delete": 111, "super": 125,
}
# Extended keys: Linux code -> the XT scancode's second byte after 0xE0.
E0_SCANCODES = {97: 0x1D, 100: 0x38, 102: 0x47, 103: 0x48, 104: 0x49, 105: 0x4B, 106: 0x4D, 107: 0x4F,
                108: 0x50, 109: 0x51, 110: 0x52, 111: 0x53, 125: 0x5B}
KEYSYM = {
    "esc": 0xFF1B, "backspace": 0xFF08, "tab": 0xFF09, "enter": 0xFF0D, "return": 0xFF0D,
    "ctrl": 0xFFE3, "shift": 0xFFE1, "rightshift": 0xFFE2, "alt": 0xFFE9, "rightctrl": 0xFFE4,
    "altgr": 0xFE03, "super": 0xFFEB, "capslock": 0xFFE5, "space": 0x20,
    "home": 0xFF50, "left": 0xFF51, "up": 0xFF52, "right": 0xFF53, "down": 0xFF54, "pageup": 0xFF55,
    "pagedown": 0xFF56, "end": 0xFF57, "insert": 0xFF63, "delete": 0xFFFF, "del": 0xFFFF,
    **{f"f{i}": 0xFFBE + i - 1 for i in range(1, 13)},
}
ALIASES = {"control": "ctrl", "del": "delete", "return": "enter", "escape": "esc", "meta": "super", "win": "super"}
# US layout: character -> (Linux key code, needs Shift).
US_CHARS = {" ": (57, False), "\n": (28, False), "\t": (15, False)}
for _i, _c in enumerate("1234567890"):
    US_CHARS[_c] = (2 + _i, False)
    US_CHARS["!@#$%^&*()"[_i]] = (2 + _i, True)
for _c in "abcdefghijklmnopqrstuvwxyz":
    US_CHARS[_c] = (KEY[_c], False)
    US_CHARS[_c.upper()] = (KEY[_c], True)
for _plain, _shifted, _code in [("-", "_", 12), ("=", "+", 13), ("[", "{", 26), ("]", "}", 27), (";", ":", 39),
                                ("'", '"', 40), ("`", "~", 41), ("\\", "|", 43), (",", "<", 51), (".", ">", 52),
                                ("/", "?", 53)]:
    US_CHARS[_plain] = (_code, False)
    US_CHARS[_shifted] = (_code, True)


def xt_scancode(code):
    """The scancode of a Linux key code as QEMU's extended key event carries it (0xE0 xx as 0x80|xx)."""
    if code in E0_SCANCODES:
        return 0x80 | E0_SCANCODES[code]
    return code


def char_keysym(char):
    if char == "\n":
        return 0xFF0D
    if char == "\t":
        return 0xFF09
    return ord(char)


def pattern_colour(width, height, x, y):
    """The colour rfb_test_server's `pattern` draws at (x, y): a 4 x 4 grid of distinct colours."""
    column = next(c for c in range(4) if x < (c + 1) * width // 4)
    row = next(r for r in range(4) if y < (r + 1) * height // 4)
    index = row * 4 + column
    return ((255 if index & 1 else (128 if index & 8 else 0)), 255 if index & 2 else 0,
            (255 if index & 4 else (64 if index & 8 else 0)))


class RfbError(Exception):
    pass


class RfbClient:
    def __init__(self, target, version=8, encodings=("tight", "zlib", "raw"), ext_key=False, timeout=30.0,
                 shared=True, desktop_size=("extended", "plain")):
        self.sock = connect(target, timeout)
        self.bytes_received = 0
        self._buffer = b""
        self.ext_key = ext_key
        self.ext_key_confirmed = False
        self.resizes = []  # (encoding, width, height) of every size change the server sent
        self._zlib = None
        self._tight = [None] * 4
        self._handshake(version, shared)
        numbers = [ENCODINGS_BY_NAME[e] for e in encodings]
        if "extended" in desktop_size:
            numbers.append(ENCODING_EXTENDED_DESKTOP_SIZE)
        if "plain" in desktop_size:
            numbers.append(ENCODING_DESKTOP_SIZE)
        numbers.append(ENCODING_LAST_RECT)
        if ext_key:
            numbers.append(ENCODING_QEMU_EXTENDED_KEY)
        self.set_pixel_format()
        self.set_encodings(numbers)

    # -- wire -----------------------------------------------------------------------------------------
    def read(self, count):
        while len(self._buffer) < count:
            chunk = self.sock.recv(max(65536, count - len(self._buffer)))
            if not chunk:
                raise RfbError("the server closed the connection")
            self.bytes_received += len(chunk)
            self._buffer += chunk
        data, self._buffer = self._buffer[:count], self._buffer[count:]
        return data

    def unpack(self, fmt):
        return struct.unpack(fmt, self.read(struct.calcsize(fmt)))

    def send(self, data):
        self.sock.sendall(data)

    def close(self):
        self.sock.close()

    def _handshake(self, version, shared):
        server_version = self.read(12)
        if not server_version.startswith(b"RFB "):
            raise RfbError(f"not an RFB server: {server_version!r}")
        self.send(b"RFB 003.%03d\n" % version)
        if version == 3:
            (security,) = self.unpack(">I")
            if security != 1:
                raise RfbError(f"the server wants security type {security}")
        else:
            (count,) = self.unpack(">B")
            if count == 0:
                (length,) = self.unpack(">I")
                raise RfbError(self.read(length).decode(errors="replace"))
            types = self.read(count)
            if 1 not in types:
                raise RfbError(f"the server offers no security type None: {list(types)}")
            self.send(b"\x01")
            if version >= 8:
                (result,) = self.unpack(">I")
                if result != 0:
                    raise RfbError("security handshake failed")
        self.send(b"\x01" if shared else b"\x00")
        self.width, self.height = self.unpack(">HH")
        self.server_format = self.read(16)
        (length,) = self.unpack(">I")
        self.name = self.read(length).decode(errors="replace")
        self.pixels = bytearray(self.width * self.height * 3)

    def set_pixel_format(self):
        # 32 bpp little-endian true colour, red at bit 16: B, G, R, X bytes.
        self.send(struct.pack(">B3x BBBBHHHBBB3x", 0, 32, 24, 0, 1, 255, 255, 255, 16, 8, 0))

    def set_encodings(self, numbers):
        self.send(struct.pack(">BxH", 2, len(numbers)) + b"".join(struct.pack(">i", n) for n in numbers))

    def request_update(self, incremental=True, rect=None):
        x, y, w, h = rect or (0, 0, self.width, self.height)
        self.send(struct.pack(">BBHHHH", 3, 1 if incremental else 0, x, y, w, h))

    # -- input ----------------------------------------------------------------------------------------
    def key_event(self, keysym, down):
        self.send(struct.pack(">BBxxI", 4, 1 if down else 0, keysym))

    def ext_key_event(self, keysym, scancode, down):
        self.send(struct.pack(">BBHII", 255, 0, 1 if down else 0, keysym, scancode))

    def key(self, code, keysym, down):
        if self.ext_key:
            self.ext_key_event(keysym, xt_scancode(code), down)
        else:
            self.key_event(keysym, down)

    def type_text(self, text):
        for char in text:
            if char not in US_CHARS:
                raise RfbError(f"cannot type {char!r} on a US keyboard")
            code, shifted = US_CHARS[char]
            keysym = char_keysym(char)
            if shifted:
                self.key(KEY["shift"], KEYSYM["shift"], True)
            self.key(code, keysym, True)
            self.key(code, keysym, False)
            if shifted:
                self.key(KEY["shift"], KEYSYM["shift"], False)

    def press_combo(self, combo):
        """Presses the keys of COMBO ("ctrl-alt-delete", "shift-a", "f1") in order, releases them in reverse."""
        keys = []
        for name in combo.lower().split("-") if combo != "-" else ["minus"]:
            name = ALIASES.get(name, name)
            if name in KEYSYM:
                keys.append((KEY.get(name, 0), KEYSYM[name]))
            elif len(name) == 1 and name in US_CHARS:
                keys.append((US_CHARS[name][0], ord(name)))
            elif name in KEY:
                keys.append((KEY[name], 0))
            else:
                raise RfbError(f"unknown key {name!r} in {combo!r}")
        for code, keysym in keys:
            self.key(code, keysym, True)
        for code, keysym in reversed(keys):
            self.key(code, keysym, False)

    def pointer(self, x, y, buttons=0):
        self.send(struct.pack(">BBHH", 5, buttons, x, y))

    # -- updates --------------------------------------------------------------------------------------
    def read_update(self):
        """Reads server messages up to and including the next FramebufferUpdate; returns its rectangles
        as (x, y, w, h, encoding)."""
        while True:
            (kind,) = self.unpack(">B")
            if kind == 0:
                return self._read_rects()
            if kind == 1:  # SetColourMapEntries
                _, _, count = self.unpack(">xHH")
                self.read(count * 6)
            elif kind == 2:  # Bell
                pass
            elif kind == 3:  # ServerCutText
                (length,) = self.unpack(">3xI")
                self.read(length)
            else:
                raise RfbError(f"unknown server message {kind}")

    def wait_update(self, timeout):
        """read_update, or None when nothing starts arriving within `timeout` seconds."""
        if not self._buffer:
            self.sock.settimeout(timeout)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return None
            finally:
                self.sock.settimeout(None)
            if not chunk:
                raise RfbError("the server closed the connection")
            self.bytes_received += len(chunk)
            self._buffer += chunk
        return self.read_update()

    def _read_rects(self):
        (count,) = self.unpack(">xH")
        rects = []
        for _ in range(count):
            x, y, w, h, encoding = self.unpack(">HHHHi")
            rects.append((x, y, w, h, encoding))
            if encoding == ENCODING_LAST_RECT:
                break
            if encoding == ENCODING_RAW:
                self._put(x, y, w, h, self._pixels32(self.read(w * h * 4)))
            elif encoding == ENCODING_ZLIB:
                (length,) = self.unpack(">I")
                if self._zlib is None:
                    self._zlib = zlib.decompressobj()
                self._put(x, y, w, h, self._pixels32(self._zlib.decompress(self.read(length))))
            elif encoding == ENCODING_TIGHT:
                self._read_tight(x, y, w, h)
            elif encoding == ENCODING_DESKTOP_SIZE:
                self._resize(w, h, encoding)
            elif encoding == ENCODING_EXTENDED_DESKTOP_SIZE:
                (screens,) = self.unpack(">B3x")
                self.read(16 * screens)
                if x == 0 or y == 0:  # a server change, or our request answered with success
                    self._resize(w, h, encoding)
            elif encoding == ENCODING_QEMU_EXTENDED_KEY:
                self.ext_key_confirmed = True
            else:
                raise RfbError(f"unexpected encoding {encoding}")
        return rects

    def _resize(self, width, height, encoding):
        self.resizes.append((encoding, width, height))
        if (width, height) != (self.width, self.height):
            self.width, self.height = width, height
            self.pixels = bytearray(width * height * 3)

    @staticmethod
    def _pixels32(data):
        out = bytearray(len(data) // 4 * 3)
        out[0::3] = data[2::4]
        out[1::3] = data[1::4]
        out[2::3] = data[0::4]
        return out

    def _put(self, x, y, w, h, rgb):
        if len(rgb) != w * h * 3:
            raise RfbError(f"rectangle {w}x{h}+{x}+{y}: {len(rgb)} bytes of pixels")
        if x + w > self.width or y + h > self.height:
            raise RfbError(f"rectangle {w}x{h}+{x}+{y} outside the {self.width}x{self.height} screen")
        for row in range(h):
            start = ((y + row) * self.width + x) * 3
            self.pixels[start:start + w * 3] = rgb[row * w * 3:(row + 1) * w * 3]

    def _tight_length(self):
        length = 0
        for shift in (0, 7, 14):
            (byte,) = self.unpack(">B")
            length |= (byte & (0x7F if shift < 14 else 0xFF)) << shift
            if shift < 14 and not byte & 0x80:
                break
        return length

    def _tight_data(self, stream, size):
        if size < 12:
            return self.read(size)
        data = self.read(self._tight_length())
        if self._tight[stream] is None:
            self._tight[stream] = zlib.decompressobj()
        return self._tight[stream].decompress(data)

    def _read_tight(self, x, y, w, h):
        (control,) = self.unpack(">B")
        for stream in range(4):
            if control & (1 << stream):
                self._tight[stream] = None
        kind = control >> 4
        if kind == 8:  # fill: one TPIXEL (R, G, B)
            self._put(x, y, w, h, self.read(3) * (w * h))
            return
        if kind & 8:
            raise RfbError(f"Tight compression {kind:#x} (JPEG?) was not asked for")
        stream = kind & 3
        filter_id = self.unpack(">B")[0] if kind & 4 else 0
        if filter_id == 0:  # copy
            self._put(x, y, w, h, self._tight_data(stream, w * h * 3))
        elif filter_id == 1:  # palette
            colours = self.unpack(">B")[0] + 1
            palette = [self.read(3) for _ in range(colours)]
            if colours == 2:
                row_bytes = (w + 7) // 8
                data = self._tight_data(stream, row_bytes * h)
                out = bytearray()
                for row in range(h):
                    for column in range(w):
                        bit = data[row * row_bytes + column // 8] >> (7 - column % 8) & 1
                        out += palette[bit]
            else:
                data = self._tight_data(stream, w * h)
                out = b"".join(palette[i] for i in data)
            self._put(x, y, w, h, out)
        elif filter_id == 2:  # gradient
            data = self._tight_data(stream, w * h * 3)
            out = bytearray(w * h * 3)
            for row in range(h):
                for column in range(w):
                    for c in range(3):
                        i = (row * w + column) * 3 + c
                        left = out[i - 3] if column else 0
                        up = out[i - w * 3] if row else 0
                        up_left = out[i - w * 3 - 3] if row and column else 0
                        predicted = max(0, min(255, left + up - up_left))
                        out[i] = (data[i] + predicted) & 0xFF
            self._put(x, y, w, h, out)
        else:
            raise RfbError(f"unknown Tight filter {filter_id}")

    def refresh(self):
        """Asks for and reads the whole screen (skipping updates that only carry pseudo-rectangles, which
        some servers send unasked after SetEncodings)."""
        self.request_update(incremental=False)
        while True:
            rects = self.read_update()
            if any(r[4] in (ENCODING_RAW, ENCODING_ZLIB, ENCODING_TIGHT) for r in rects):
                return

    def pixel(self, x, y):
        i = (y * self.width + x) * 3
        return tuple(self.pixels[i:i + 3])

    def png(self):
        return encode_png(self.width, self.height, bytes(self.pixels))


def encode_png(width, height, rgb):
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    rows = b"".join(b"\x00" + rgb[y * width * 3:(y + 1) * width * 3] for y in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def decode_png(data):
    """(width, height, rgb bytes) of an 8-bit RGB or RGBA PNG without interlacing (all filters)."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise RfbError("not a PNG file")
    pos, idat, width = 8, b"", 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])
        if zlib.crc32(kind + body) != crc:
            raise RfbError(f"PNG chunk {kind!r}: bad CRC")
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
            if depth != 8 or colour not in (2, 6) or interlace:
                raise RfbError("only 8-bit RGB/RGBA PNGs without interlacing are read")
            channels = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * channels
    out, previous = bytearray(), bytearray(stride)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up, up_left = previous[i], previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - up_left
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - up_left)
                line[i] = (line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else up_left)) & 0xFF
        previous = line
        out += line if channels == 3 else b"".join(bytes(line[i:i + 3]) for i in range(0, stride, 4))
    return width, height, bytes(out)


def connect(target, timeout=30.0):
    if "/" in target or os.path.exists(target):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        sock.connect(target)
    else:
        host, _, port = target.rpartition(":")
        sock = socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.settimeout(timeout)
    return sock


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("target")
    parser.add_argument("--ext-key", action="store_true", help="send keys as QEMU extended key events (scancodes)")
    parser.add_argument("--encodings", default="tight,zlib,raw", help="in order of preference (raw, zlib, tight)")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds between typed keys")
    parser.add_argument("command", choices=["type", "key", "capture", "pointer", "info"])
    parser.add_argument("args", nargs="*")
    options = parser.parse_args()
    try:
        client = RfbClient(options.target, encodings=options.encodings.split(","), ext_key=options.ext_key)
        if options.command == "type":
            text = " ".join(options.args).encode().decode("unicode_escape")
            for char in text:
                client.type_text(char)
                if options.delay:
                    time.sleep(options.delay)
        elif options.command == "key":
            for combo in options.args:
                client.press_combo(combo)
        elif options.command == "capture":
            if len(options.args) != 1:
                parser.error("capture takes one FILE.png")
            client.refresh()
            with open(options.args[0], "wb") as out:
                out.write(client.png())
        elif options.command == "pointer":
            x, y, buttons = (int(a) for a in (options.args + ["0"])[:3])
            client.pointer(x, y, buttons)
            if buttons:
                client.pointer(x, y, 0)
        elif options.command == "info":
            print(f"{client.width}x{client.height} {client.name}")
        # A round trip before closing: the server has handled everything sent before it answers.
        client.request_update(incremental=False, rect=(0, 0, 1, 1))
        client.read_update()
        client.close()
    except (OSError, RfbError) as error:
        print(f"rfb_client: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
