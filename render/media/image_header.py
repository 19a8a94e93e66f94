"""Image headers read without decoding: the format from a file's signature, and the
(width, height) of PNG, JPEG, GIF, BMP, WebP and TIFF files, so sizes are checked before a
large image is decoded."""

from __future__ import annotations

import os
import struct


def image_format(head: bytes) -> str | None:
    """"PNG", "JPEG", ... from a file's first bytes (its signature); None when unknown."""
    signatures = ((b"\x89PNG\r\n\x1a\n", "PNG"), (b"\xff\xd8", "JPEG"), (b"GIF8", "GIF"),
                  (b"BM", "BMP"), (b"II*\x00", "TIFF"), (b"MM\x00*", "TIFF"))
    for signature, kind in signatures:
        if head.startswith(signature):
            return kind
    return "WebP" if head[:4] == b"RIFF" and head[8:12] == b"WEBP" else None


def image_file_size(path: str | os.PathLike) -> tuple[int, int] | None:
    """(width, height) from an image file's header; None when unreadable or not recognised."""
    try:
        if not os.path.isfile(path):  # opening a FIFO would wait for a writer
            return None
        with open(path, "rb") as fh:
            return image_header_size(fh.read(65536))
    except (OSError, ValueError):
        return None


def image_header_size(head: bytes) -> tuple[int, int] | None:
    """(width, height) from the header of a PNG, JPEG, GIF, BMP, WebP or TIFF file, without
    decoding it; None when the format is not recognised or the header is cut short."""
    try:
        return _header_size(head)
    except (struct.error, IndexError):
        return None


def _header_size(b: bytes) -> tuple[int, int] | None:
    if b[:8] == b"\x89PNG\r\n\x1a\n" and b[12:16] == b"IHDR":
        return struct.unpack(">II", b[16:24])
    if b[:6] in (b"GIF87a", b"GIF89a"):
        return struct.unpack("<HH", b[6:10])
    if b[:2] == b"BM":
        if struct.unpack("<I", b[14:18])[0] == 12:
            return struct.unpack("<HH", b[18:22])
        w, h = struct.unpack("<ii", b[18:26])
        return abs(w), abs(h)
    if b[:4] == b"RIFF" and b[8:12] == b"WEBP":
        chunk = b[12:16]
        if chunk == b"VP8 ":
            w, h = struct.unpack("<HH", b[26:30])
            return w & 0x3FFF, h & 0x3FFF
        if chunk == b"VP8L":
            bits = struct.unpack("<I", b[21:25])[0]
            return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
        if chunk == b"VP8X":
            return (int.from_bytes(b[24:27], "little") + 1,
                    int.from_bytes(b[27:30], "little") + 1)
        return None
    if b[:4] in (b"II*\x00", b"MM\x00*"):
        e = "<" if b[:2] == b"II" else ">"
        ifd = struct.unpack(e + "I", b[4:8])[0]
        found = {}
        for i in range(struct.unpack(e + "H", b[ifd:ifd + 2])[0]):
            tag, kind, _, value = struct.unpack(e + "HHI4s", b[ifd + 2 + 12 * i:ifd + 14 + 12 * i])
            if tag in (256, 257):
                found[tag] = struct.unpack(e + ("H" if kind == 3 else "I"),
                                           value[:2] if kind == 3 else value)[0]
        return (found[256], found[257]) if len(found) == 2 else None
    if b[:2] == b"\xff\xd8":  # JPEG: walk the markers to the first start-of-frame
        pos = 2
        while pos + 9 < len(b):
            if b[pos] != 0xFF:
                return None
            marker = b[pos + 1]
            if marker == 0xFF:  # fill byte
                pos += 1
                continue
            if marker in (0x01, *range(0xD0, 0xD9)):  # markers without a length
                pos += 2
                continue
            if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD,
                          0xCE, 0xCF):
                h, w = struct.unpack(">HH", b[pos + 5:pos + 9])
                return w, h
            pos += 2 + struct.unpack(">H", b[pos + 2:pos + 4])[0]
    return None
