"""Names of files: user-chosen ones shown in a terminal safely, and those veil gives its own
(unfinished files, the manifest).

A file name may hold a newline, an ESC sequence or a bidi override: printed raw, it could
forge a line of veil's output or repaint the terminal. `shown` escapes such characters the
way Python's repr does, and leaves everything else, including non-ASCII letters, as it is.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import unicodedata
from pathlib import Path, PurePath
from typing import Any

# Line and paragraph separators are not control characters, but some terminals break lines on them.
SEPARATORS = {"\u2028", "\u2029"}


def real_path(path: PurePath | str) -> Path:
    """The absolute path `path` leads to, links followed (Path.resolve); one caught in a loop of
    symbolic links is left as it is, absolute (Python before 3.13 raises on a loop, which ended a
    whole batch: opening such a path says what it is)."""
    try:
        return Path(path).resolve()
    except RuntimeError:
        return Path(path).absolute()


def shown(name: object) -> str:
    """`name` (a str, a path, a veil.remote.Url) with every control, format, surrogate, private-use
    or unassigned character escaped."""
    return "".join(escaped(c) for c in str(name))


def escaped(char: str) -> str:
    if unicodedata.category(char)[0] != "C" and char not in SEPARATORS:
        return char
    return repr(char)[1:-1]  # '\n', '\x1b', '\u202e': the repr without its quotes


# A JSON answer, report or manifest is read by other programs, whose JSON is Unicode: a name whose
# bytes are not UTF-8 (Python holds each such byte as a lone surrogate) would reach them as "\udce9",
# which they refuse or turn into a character no file's name holds. Such a string is written as text
# with U+FFFD for each of those bytes, and its exact bytes beside it, base64, under its key + this.
EXACT_BYTES = "_b64"

# The keys whose strings (or lists of strings) name files or URLs, in a plan, a manifest's record, a
# report and --json's answer. A name's text there is its bytes read as UTF-8, whatever the locale,
# and a non-ASCII one has its bytes beside it: Python reads a name's bytes in the locale's encoding,
# so a UTF-8 "café.jpg" is "cafÃ©.jpg" under Latin-1, and text as read in one locale led a reader
# in another to no file, or to another file. Other strings (a reviewer's reason, a note) are text,
# whatever their characters: given bytes, they would be read back in the reader's locale, changed.
NAME_KEYS = frozenset({"path", "path_from_plan", "media", "files_not_done", "input", "output", "plan", "report"})


def readable_anywhere(value: Any) -> Any:
    """`value` (made of dicts, lists, strings, numbers) with every string, keys too, valid Unicode, a
    name (under NAME_KEYS) as `_as_utf8` reads it; and beside each non-ASCII name, and each other
    string that held bytes that are not UTF-8, those bytes exact under its key + EXACT_BYTES:
    base64, or for a list one entry each (null where the string needs none)."""
    if isinstance(value, dict):
        readable: dict[str, Any] = {}
        for key, item in value.items():
            names = key in NAME_KEYS
            key = readable_anywhere(key)  # a key names no file (a record's field): its text alone
            readable[key] = _names_readable(item) if names else readable_anywhere(item)
            if isinstance(item, str) and (exact := _exact_bytes(item, names)) is not None:
                readable[key + EXACT_BYTES] = exact
            elif isinstance(item, list) and any(isinstance(i, str) and _exact_bytes(i, names) for i in item):
                readable[key + EXACT_BYTES] = [_exact_bytes(i, names) if isinstance(i, str) else None for i in item]
        return readable
    if isinstance(value, list):
        return [readable_anywhere(item) for item in value]
    if isinstance(value, str) and not value.isascii():
        return _without_surrogates(value)
    return value


def _names_readable(value: Any) -> Any:
    """A name, or a list of them, each as `_as_utf8` reads it; anything else as `readable_anywhere` does."""
    if isinstance(value, str):
        return _as_utf8(value)
    if isinstance(value, list):
        return [_as_utf8(item) if isinstance(item, str) else readable_anywhere(item) for item in value]
    return readable_anywhere(value)


# protocol://..., also a chained one (simplecache::s3://...); a Windows drive (C:\) has no "//".
URL_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*(::[A-Za-z][A-Za-z0-9+.-]*)*://")


def _as_utf8(name: str) -> str:
    """A name's bytes read as UTF-8, U+FFFD for each byte that is not: the same text in every locale.
    One whose bytes the locale has none for (a name from a plan) is its own text, and so is a URL:
    its backend sends its text as UTF-8, whatever the locale (s3://b/café.jpg is that key)."""
    if name.isascii() or URL_PATTERN.match(name):
        return name
    try:
        return _without_surrogates(os.fsencode(name).decode("utf-8", "surrogateescape"))
    except UnicodeEncodeError:
        return _without_surrogates(name)


def _without_surrogates(text: str) -> str:
    return "".join("\ufffd" if _is_surrogate(char) else char for char in text)


def exact_names(value: Any) -> Any:
    """`value` as `readable_anywhere` wrote it (a manifest's record, a plan), each name's string as it
    was (exact again), at any depth. The bytes stand in for a text only where they read as that text:
    a name edited by hand beside stale bytes is the name as edited."""
    if isinstance(value, list):
        return [exact_names(item) for item in value]
    if not isinstance(value, dict):
        return value
    exact = {key: exact_names(item) for key, item in value.items() if not _holds_bytes(key)}
    for key, item in value.items():
        named = key.removesuffix(EXACT_BYTES) if _holds_bytes(key) else None
        if named not in exact:
            continue
        if isinstance(item, str):
            exact[named] = _name_of(item, exact[named])
        elif isinstance(item, list) and isinstance(exact[named], list) and len(item) == len(exact[named]):
            exact[named] = [_name_of(encoded, text) for encoded, text in zip(item, exact[named])]
    return exact


def _holds_bytes(key: Any) -> bool:
    return isinstance(key, str) and key.endswith(EXACT_BYTES)


def _name_of(encoded: Any, text: Any) -> Any:
    """The name whose bytes `encoded` gives (base64), if `text` is how it reads: as UTF-8 (how veil
    writes a name), or in this locale (how an older veil wrote it, under the locale it ran in);
    else `text`."""
    if not isinstance(encoded, str) or not isinstance(text, str):
        return text
    try:
        name = os.fsdecode(base64.b64decode(encoded, validate=True))
    except (binascii.Error, ValueError):  # not veil's: the text beside it stands
        return text
    return name if text in (_as_utf8(name), _without_surrogates(name)) else text


def can_name_a_file(text: str) -> bool:
    """Whether `text` can be a file's name: no NUL, and no surrogate but those that stand for a
    byte that is not UTF-8 (Python's way to hold such names). A manifest line or a plan edited
    by hand can hold either, and looking such a name up failed the whole run as "a bug in veil"."""
    try:
        return b"\0" not in os.fsencode(text)
    except UnicodeEncodeError:
        return False


def _is_surrogate(char: str) -> bool:
    return "\ud800" <= char <= "\udfff"


def _exact_bytes(text: str, name: bool) -> str | None:
    """The bytes `text` stands for, base64: of any non-ASCII `name`, and of any other string holding
    a name's bytes that are not UTF-8 (a surrogate); None for other valid Unicode, or for a string
    the locale has no bytes for (not a file's name: text a browser sent, say)."""
    name = name and not URL_PATTERN.match(text)  # (a URL is text: `_as_utf8`)
    if text.isascii() or not (name or any(_is_surrogate(char) for char in text)):
        return None
    try:
        return base64.b64encode(os.fsencode(text)).decode("ascii")
    except UnicodeEncodeError:
        return None


# The longest file name most file systems take, in bytes.
NAME_MAX = 255


def first_few(names: list[str], few: int = 5) -> str:
    """The first `few` names, shown, as a line names them: the rest as "..."."""
    return ", ".join(shown(name) for name in names[:few]) + (", ..." if len(names) > few else "")


def partial_affixes(target: PurePath) -> tuple[str, str]:
    """How the unfinished file beside `target` is named: prefix and suffix around mkstemp's 8
    characters. The name is cut short where the output's own is close to the longest a file
    system takes: else a legal output name would fail only after the work, at its first write."""
    stem, suffix = target.stem, f".partial{target.suffix}"
    while stem and len(os.fsencode(f".{stem}.{'x' * 8}{suffix}")) > NAME_MAX:
        stem = stem[:-1]
    return f".{stem}.", suffix


# A run's record of what it did to each file, kept beside its outputs (veil.manifest).
MANIFEST_NAME = "veil-manifest.jsonl"


# A date, with or without a time of day, as cameras, phones and messengers name what they record:
# IMG_20210506_070809, PXL_20210506_070809123, IMG-20210506-WA0001 (WhatsApp: the day alone),
# Screenshot_2021-05-06-07-08-09, "WhatsApp Image 2021-05-06 at 07.08.09"; or the moment as
# milliseconds since 1970, 2001-2033 (WeChat's mmexport1620284889123, Facebook's FB_IMG_...);
# or as people name files and folders by hand, the day first (Photo 06.05.21, 06-05-2021) or the
# month first with the year last (05-06-2021).
CAPTURE_TIME = re.compile(r"(?<!\d)(19|20)\d\d([-_.]?)(0[1-9]|1[0-2])\2(0[1-9]|[12]\d|3[01])"
                          r"(?=\D|$|([01]\d|2[0-3])[0-5]\d[0-5]\d)"  # a time of day may follow at once
                          r"|(?<!\d)1\d{12}(?!\d)"
                          r"|(?<!\d)(?<!\d\.)(0[1-9]|[12]\d|3[01])(?P<day_first>[-_.])(0[1-9]|1[0-2])(?P=day_first)"
                          r"((19|20)\d\d|\d\d)(?!\d)(?!\.\d)"
                          r"|(?<!\d)(?<!\d\.)(0[1-9]|1[0-2])(?P<month_first>[-_.])(0[1-9]|[12]\d|3[01])(?P=month_first)"
                          r"(19|20)\d\d(?!\d)(?!\.\d)")


def holds_capture_time(name: str) -> bool:
    """Whether a file's or a folder's name holds a date, as a camera or a phone names a photo or a
    video after the day (and time) it was taken, or a person a day's folder: what veil removes
    from its metadata."""
    return CAPTURE_TIME.search(name) is not None


def dated_names_note(names: list[str]) -> str | None:
    """Advice where outputs keep a name (as published: `names`) holding the day the original was
    taken (a phone's IMG_20210506_070809, a folder of the day mirrored into the output folder):
    veil takes that out of their metadata, not out of their names."""
    dated = [name for name in names if holds_capture_time(name)]
    if not dated:
        return None
    return (f"{len(dated)} output(s) keep a name that holds a date, as cameras, phones, messengers and people name "
            f"what they record ({first_few(dated)}): the day (and time) it was taken, which veil removed from the "
            "metadata, stays in the name; rename before publishing where it must not be known")


def published_name(output: Path, output_dir: Path | None) -> str:
    """An output's name as its output folder publishes it: with the folders mirrored into it."""
    if output_dir is not None and output.is_relative_to(output_dir):
        return output.relative_to(output_dir).as_posix()
    return output.name
