#!/usr/bin/env python3
"""tests/lib/png_scale.py IN.png OUT.png FACTOR: OUT is IN enlarged FACTOR times (nearest neighbour).
For OCR: tesseract reads a console font's 16-pixel glyphs far more reliably at 2-3 times that size. Reads and writes PNGs with tests/lib/rfb_client.py (8-bit RGB/RGBA, not interlaced)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rfb_client import decode_png, encode_png  # noqa: E402


def main():
    source, target, factor = sys.argv[1], sys.argv[2], int(sys.argv[3])
    with open(source, "rb") as image:
        width, height, rgb = decode_png(image.read())
    stride = width * 3
    scaled = bytearray()
    for y in range(height):
        row = rgb[y * stride:(y + 1) * stride]
        wide = b"".join(row[x:x + 3] * factor for x in range(0, stride, 3))
        scaled += wide * factor
    with open(target, "wb") as out:
        out.write(encode_png(width * factor, height * factor, bytes(scaled)))


if __name__ == "__main__":
    main()
