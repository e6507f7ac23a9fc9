"""File names and messages made safe to show, without losing the exact name.

On Linux a file name is any bytes except ``/`` and NUL. Python keeps the bytes that are not
UTF-8 as lone surrogates (``os.fsdecode``, "surrogateescape"), so every path round-trips as
``str``, but such a string cannot be written as UTF-8. Outputs therefore use:

* :func:`readable` for JSON/CSV text: each undecodable byte becomes the four characters
  ``\\xNN``; everything else, control characters included, is kept exactly.
* :func:`name_bytes_b64` for the exact bytes (base64), only needed when the name is not UTF-8.
* :func:`for_terminal` for human-readable output: additionally escapes control characters
  (``ESC`` sequences in a file name must not drive the user's terminal) and the bidirectional
  overrides that make text display in a different order than it is stored.
"""

from __future__ import annotations

import base64
import os

# Explicit embeddings/overrides/isolates: they reorder what is displayed ("Trojan Source").
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape_surrogate(ch: str) -> str:
    code = ord(ch)
    if 0xDC80 <= code <= 0xDCFF:  # surrogateescape: the original byte is code - 0xDC00
        return f"\\x{code - 0xDC00:02x}"
    return f"\\u{code:04x}"


def _is_surrogate(ch: str) -> bool:
    return 0xD800 <= ord(ch) <= 0xDFFF


def is_exact_text(text: str) -> bool:
    """True when ``text`` holds no undecodable bytes, i.e. it can be written as UTF-8 unchanged."""
    return not any(_is_surrogate(ch) for ch in text)


def readable(text: str) -> str:
    """``text`` as valid Unicode: undecodable bytes shown as ``\\xNN``, all else unchanged."""
    if is_exact_text(text):
        return text
    return "".join(_escape_surrogate(ch) if _is_surrogate(ch) else ch for ch in text)


def name_bytes_b64(path: str) -> str | None:
    """The exact bytes of a name that is not valid UTF-8, base64-encoded; None for ordinary names."""
    if is_exact_text(path):
        return None
    return base64.b64encode(os.fsencode(path)).decode("ascii")


def _terminal_char(ch: str) -> str:
    code = ord(ch)
    if _is_surrogate(ch):
        return _escape_surrogate(ch)
    if code < 0x20 or code == 0x7F or 0x80 <= code <= 0x9F:  # C0, DEL, C1 (0x9b is a one-byte CSI)
        return _NAMED.get(ch, f"\\x{code:02x}")
    if ch in _BIDI_CONTROLS:
        return f"\\u{code:04x}"
    return ch


def for_terminal(text: str) -> str:
    """``text`` safe to print: undecodable bytes and control characters shown as escapes."""
    return "".join(_terminal_char(ch) for ch in str(text))
