"""Minimal ICC v2 RGB matrix/TRC profiles built in code (Pillow can only create sRGB, LAB and XYZ).

Used by the loader's colour tests and by benchmarks/bench_decode.py. The colorants are the
primaries' XYZ after Bradford adaptation to the D50 profile connection space, as in the
published profiles; a curve of ``None`` is the identity (linear light).
"""

from __future__ import annotations

import struct

D50 = (0.9642, 1.0, 0.8249)
SRGB_COLORANTS = ((0.4361, 0.2225, 0.0139), (0.3851, 0.7169, 0.0971), (0.1431, 0.0606, 0.7141))
DISPLAY_P3_COLORANTS = ((0.5151, 0.2412, -0.0011), (0.2920, 0.6922, 0.0419), (0.1571, 0.0666, 0.7841))
ADOBE_RGB_COLORANTS = ((0.6097, 0.3111, 0.0195), (0.2053, 0.6257, 0.0609), (0.1492, 0.0632, 0.7446))


def _s15f16(value: float) -> bytes:
    return struct.pack(">i", round(value * 65536))


def _xyz(xyz) -> bytes:
    return b"XYZ \0\0\0\0" + b"".join(_s15f16(v) for v in xyz)


def _curve(gamma: float | None) -> bytes:
    if gamma is None:
        return b"curv\0\0\0\0" + struct.pack(">I", 0)  # no entries: identity
    return b"curv\0\0\0\0" + struct.pack(">IH", 1, round(gamma * 256)) + b"\0\0"


def _desc(text: str) -> bytes:
    ascii_ = text.encode("ascii") + b"\0"
    return b"desc\0\0\0\0" + struct.pack(">I", len(ascii_)) + ascii_ + struct.pack(">II", 0, 0) + b"\0\0\0" + b"\0" * 67


def rgb_profile(description: str, colorants=DISPLAY_P3_COLORANTS, gamma: float | None = 2.2) -> bytes:
    """The bytes of a display-class RGB profile with these primaries and one gamma for all channels."""
    red, green, blue = colorants
    tags = [
        (b"desc", _desc(description)),
        (b"cprt", b"text\0\0\0\0" + b"generated for tests\0"),
        (b"wtpt", _xyz(D50)),
        (b"rXYZ", _xyz(red)),
        (b"gXYZ", _xyz(green)),
        (b"bXYZ", _xyz(blue)),
        (b"rTRC", _curve(gamma)),
        (b"gTRC", _curve(gamma)),
        (b"bTRC", _curve(gamma)),
    ]
    table_size = 4 + 12 * len(tags)
    offset = 128 + table_size
    table, body = [], b""
    for signature, payload in tags:
        while (offset + len(body)) % 4:
            body += b"\0"
        table.append(struct.pack(">4sII", signature, offset + len(body), len(payload)))
        body += payload
    while len(body) % 4:
        body += b"\0"
    size = 128 + table_size + len(body)
    header = (
        struct.pack(">I", size) + b"\0\0\0\0" + struct.pack(">I", 0x02100000) + b"mntrRGB XYZ "
        + struct.pack(">6H", 2024, 1, 1, 0, 0, 0) + b"acsp" + b"\0" * 24 + struct.pack(">I", 0)
        + b"".join(_s15f16(v) for v in D50) + b"\0" * 4 + b"\0" * 16 + b"\0" * 28
    )
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + b"".join(table) + body
