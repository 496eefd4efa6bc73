"""Showing user-chosen names (file paths) in a terminal safely.

A file name may hold a newline, an ESC sequence or a bidi override: printed raw, it could
forge a line of veil's output or repaint the terminal. `shown` escapes such characters the
way Python's repr does, and leaves everything else, including non-ASCII letters, as it is.
"""

from __future__ import annotations

import unicodedata

# Line and paragraph separators are not control characters, but some terminals break lines on them.
SEPARATORS = {"\u2028", "\u2029"}


def shown(name: object) -> str:
    """`name` (a str, a path, a veil.remote.Url) with every control, format, surrogate, private-use
    or unassigned character escaped."""
    return "".join(escaped(c) for c in str(name))


def escaped(char: str) -> str:
    if unicodedata.category(char)[0] != "C" and char not in SEPARATORS:
        return char
    return repr(char)[1:-1]  # '\n', '\x1b', '\u202e': the repr without its quotes
