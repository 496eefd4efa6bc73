"""File names as veil shows them: one line each, exactly as they are, forging nothing.

A name may hold a newline, an escape sequence or square brackets. Printed raw, a crafted
name could start a line that looks like a veil message, recolour the terminal, or (through
Rich markup) vanish or crash the printer. `shown` escapes control characters the way
Python writes them in strings; the consoles that print names never interpret markup.
"""

from __future__ import annotations

import os
import unicodedata


def shown(name: str | os.PathLike[str]) -> str:
    """`name` with every control character (newline, ESC, DEL, bidi overrides...) escaped."""
    text = os.fspath(name)
    return "".join(_escaped(char) for char in text)


def _escaped(char: str) -> str:
    # Cc: C0/C1 controls; Cf: format characters such as the bidi overrides that reorder a line.
    if unicodedata.category(char) in ("Cc", "Cf"):
        return char.encode("unicode_escape").decode("ascii")
    # Names Linux cannot decode arrive as lone surrogates (os.fsdecode); show their bytes.
    if "\ud800" <= char <= "\udfff":
        return f"\\x{ord(char) - 0xDC00:02x}"
    return char
