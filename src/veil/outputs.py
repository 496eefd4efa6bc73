"""Which files are inputs, where outputs go, and writing them so that a failure leaves nothing behind.

Files are recognised by their content, not their name: a JPEG called `.jfif` or with no
suffix at all is a photo, an MPEG-TS called `.mts` is a video. Whatever a folder holds that
is neither is reported as skipped, by name, never passed over in silence.

Every output is written to a hidden temporary file in the destination folder and
renamed into place only when complete: an interrupted or failed run never leaves a
partial (and possibly unredacted) file. Nothing that exists is replaced unless the user
asks (--overwrite), and an input is never replaced at all.
"""

from __future__ import annotations

import contextlib
import errno
import filecmp
import hashlib
import io
import json
import os
import stat
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Literal

import av
import av.error
from PIL import Image, UnidentifiedImageError

from veil.avopen import LOCAL_ONLY, open_local
from veil.imagefile import WRITE_FORMATS, ImageError, is_heif_still, is_tiff
from veil.interrupt import Stopped, temporary_file
from veil.names import MANIFEST_NAME, NAME_MAX, can_name_a_file, exact_names, partial_affixes, real_path, shown
from veil.remote import RemoteError, Url, as_local, location_key, same_file
from veil.videofile import moving_streams

REDACTED_TAG = ".redacted"
MediaKind = Literal["image", "animation", "video", "audio"]
KIND_NAMES: dict[MediaKind, str] = {"image": "photo", "animation": "animation", "video": "video", "audio": "sound"}
# Demuxers that accept almost any bytes, or that read one still picture: a folder's text or
# data file must not become a "video" because FFmpeg can show it as characters.
NOT_VIDEO_FORMATS = {"tty", "image2", "lavfi", "bin", "data", "gif"}
# Raw streams FFmpeg's probe finds anywhere in a file, by their start: a motion-JPEG stream
# starts with a JPEG, where a PDF (its pages' JPEGs) was taken for a video of its first page.
RAW_STREAM_STARTS = {"mjpeg": b"\xff\xd8"}
# Formats Pillow recognises but cannot decode, which are video: an MPEG-1/2 elementary stream
# (.m1v, .m2v) starts with the sequence header Pillow's MPEG plugin reads its size from.
VIDEO_TO_PILLOW = {"MPEG"}


class OutputError(ValueError):
    """An output that must not be written (it would overwrite an input, say)."""


def media_kind(path: Path | IO[bytes]) -> MediaKind | None:
    """What the file holds, judged by its content: a photo, an animation, a video, or None.

    A file object (a URL's, read in blocks) is read only as far as Pillow and FFmpeg need.
    """
    if is_empty(path):  # FFmpeg takes an empty file for what its name says (.ac3: sound)
        return None
    # A file named as a photo that Pillow knows by its first bytes but fails to open (a WebP cut
    # short), or that starts as a TIFF, which FFmpeg does not take for a video or sound either: a
    # damaged photo, refused with its reason when read, not as a file veil cannot read. (Named
    # otherwise, it may be no photo at all: a C header starting "#define" is half an XBM to Pillow;
    # a raw camera file starts as a TIFF.)
    named_a_photo = isinstance(path, Path) and path.suffix.lower() in PHOTO_SUFFIXES
    damaged_photo: MediaKind | None = None
    try:
        with Image.open(path) as image:
            if image.format not in VIDEO_TO_PILLOW:
                return "animation" if getattr(image, "n_frames", 1) > 1 and image.format in ANIMATED_FORMATS else "image"
    except Image.DecompressionBombError:
        return "image"  # refused with its reason when read
    except UnidentifiedImageError:
        if is_heif_still(path):
            return "image"  # refused with its reason when read
        if named_a_photo and (is_tiff(path) or _starts_with(path, b"GIF8")):  # (a GIF cut after its header)
            damaged_photo = "image"
    except (OSError, ValueError, SyntaxError):
        if named_a_photo:
            damaged_photo = "image"
    except (RuntimeError, TypeError):  # Pillow's AVIF and TIFF readers, on a damaged file they know:
        return "image"  # refused with its reason when read
    if not isinstance(path, Path):
        path.seek(0)  # where Pillow left it
    try:
        opened = open_local(path) if isinstance(path, Path) else av.open(path, "r", container_options=LOCAL_ONLY)
        with opened as container:
            demuxer = container.format.name
            if demuxer in NOT_VIDEO_FORMATS or demuxer.endswith("_pipe"):
                return damaged_photo
            # A file whose only picture is a cover is sound.
            kind: MediaKind | None = ("video" if moving_streams(container) else "audio" if container.streams.audio
                                      else damaged_photo)
        if demuxer in RAW_STREAM_STARTS and not _starts_with(path, RAW_STREAM_STARTS[demuxer]):
            return damaged_photo
        return kind
    except (av.error.FFmpegError, OSError, ValueError, UnicodeDecodeError):
        return damaged_photo


def _starts_with(path: Path | IO[bytes], start: bytes) -> bool:
    """Whether the file's first bytes are `start` (a file object is left at its start)."""
    if isinstance(path, Path):
        with open(path, "rb") as file:
            return file.read(len(start)) == start
    path.seek(0)
    head = path.read(len(start))
    path.seek(0)
    return head == start


def is_empty(path: Path | IO[bytes]) -> bool:
    """Whether `path` is a file of no bytes (a file object never is: its reader says what it holds)."""
    try:
        return isinstance(path, Path) and path.stat().st_size == 0
    except OSError:
        return False


# Names that promise a photo or a video: in a folder, such a file that cannot be read is a
# failure the user must see, not a skip (a damaged photo must not pass as "not media").
PHOTO_SUFFIXES = {*WRITE_FORMATS, ".apng"}
MEDIA_SUFFIXES = {
    *PHOTO_SUFFIXES, ".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".ts", ".mts", ".m2ts", ".3gp", ".3g2",
    ".wmv", ".asf", ".flv", ".mpg", ".mpeg", ".m1v", ".m2v", ".vob", ".ogv", ".mxf", ".dv",
    ".wav", ".flac", ".mp3", ".m4a", ".aac", ".ogg", ".oga", ".opus",
}
# Pillow formats whose several frames are a moving picture (TIFF/HEIF/MPO frames are pages or
# depth maps: the first is the photo).
ANIMATED_FORMATS = {"GIF", "PNG", "WEBP"}


@dataclass(frozen=True)
class Input:
    source: Path | Url
    base: Path | Url  # the folder its output path mirrors from (--output-dir)
    kind: MediaKind | None  # None: named on the command line, but neither photo nor video
    # Named where the output folder's manifest records its output (veil.manifest.placed_as_made):
    # that output is claimed before any other input's, which may not take its name.
    recorded: bool = False

    @property
    def owner(self) -> str:
        """Whose output it is, as a claim on its name says it (`OutputClaims.claim`)."""
        return f"the output of {shown(self.source)}" + (", where the manifest records it" if self.recorded else "")


@dataclass(frozen=True)
class Skipped:
    path: Path | Url
    reason: str
    unreadable: bool = False  # could not be looked at: a failure the run reports, not a choice

    @property
    def veils_own(self) -> bool:
        """An output, manifest or output folder of veil's: not one of the user's files."""
        return self.reason in (OWN_OUTPUT, OWN_MANIFEST, OWN_FOLDER, EARLIER_OUTPUT_FOLDER)

    def media_left_as_it_was(self) -> bool:
        """A photo, video or sound file of the user's, by its name, that no output is made of (a
        hidden one, say), or a hidden folder holding one; one reached by another path is redacted
        under that one. Not a macOS `._name` fork (file data, no picture) nor veil's own
        unfinished `.name.XXXXXXXX.partial.jpg` (said as such)."""
        if self.veils_own or self.reason in (SAME_FILE_REACHED, SAME_FILE_NAMED, NAMED_TWICE):
            return False
        if self.reason == HIDDEN_FOLDER and isinstance(local := as_local(self.path), Path):  # a file:// one too
            return any(_media_by_name(name) for _, _, names in os.walk(local) for name in names)
        return _media_by_name(self.path.name)


# Why veil's own files found among the inputs are passed over.
OWN_OUTPUT = "an output of veil (name holds .redacted)"
# Named as veil names its outputs, with no file beside it that it could have been made from: a
# user's photo so named, or an output whose original is gone. Passed over all the same (redacted
# again it would be a .redacted.redacted copy), but said even under --quiet: it may be the user's.
OWN_OUTPUT_ALONE = "named as an output of veil (.redacted), with no file beside it that it was made from"
OWN_MANIFEST = "veil's manifest, the record of a run"
OWN_FOLDER = "veil's output folder"
HIDDEN_FOLDER = "hidden folder"
SAME_FILE_REACHED = "the same file was reached by another path"
SAME_FILE_NAMED = "the same file was named by another path"
NAMED_TWICE = "named twice"
EARLIER_OUTPUT_FOLDER = f"an earlier run's output folder (its {MANIFEST_NAME} records outputs written there)"


def unreadable(path: Path) -> str | None:
    """Why a file cannot be read (no permission, an I/O error at its first bytes), or None when it
    can. Its first bytes are read, not only opened: Pillow and FFmpeg take a read that fails for
    bytes they do not recognise, so a photo on a failing disk would pass for no photo at all."""
    try:
        with open(path, "rb") as file:
            file.read(1)
            return None
    except OSError as error:
        return f"cannot be read ({error.strerror or error})"


def collect_inputs(paths: list[Path | Url], exclude: Iterable[Path | Url] = ()) -> tuple[list[Input], list[Skipped]]:
    """Expand folders recursively (symlinked folders followed once): the inputs, and what was skipped and why.

    Files named on the command line are taken whatever they hold (one that is neither photo
    nor video fails with a clear error); in folders, what is neither is skipped, and so are
    hidden files (veil's own unfinished `.name.partial` files, macOS `._name` forks), earlier
    outputs (`*.redacted.*`) and `exclude`d paths: veil's output folder, plans and reports.
    Folders named by URL are listed the same way, a file:// one as the local folder it is
    (RemoteError when one cannot be reached at all).
    """
    excluded = {real_path(p) for p in exclude if isinstance(p, Path)}
    excluded_urls = {p for p in exclude if isinstance(p, Url)}
    # A path and a file:// URL name the same place: veil's own output folder is passed over
    # however either is spelled (else each rerun would redact the last one's outputs again).
    excluded |= {real_path(str(u.path)) for u in excluded_urls if u.protocol == "file"}
    excluded_urls |= {Url("file", PurePosixPath(p)) for p in excluded}
    inputs: list[Input] = []
    skipped: list[Skipped] = []
    seen: set[Path] = set()
    for path in paths:
        if isinstance(path, Url) and isinstance(local := as_local(path), Path) and local.is_dir():
            # This machine's folder, listed by its rules (links followed once, a pipe never opened:
            # fsspec's listing took a link to a folder for a file, and a pipe's open would wait for
            # ever), its files named by URL as the user named the folder.
            found, passed = _folder_inputs(local, excluded, seen)
            inputs += [Input(_under(path, local, i.source), path, i.kind) for i in found]
            skipped += [Skipped(_under(path, local, s.path), s.reason, s.unreadable) for s in passed]
        elif isinstance(path, Url):
            found, passed = _remote_inputs(path, excluded_urls)
            inputs += found
            skipped += passed
        elif path.is_dir():
            found, passed = _folder_inputs(path, excluded, seen)
            inputs += found
            skipped += passed
        elif real_path(path) in seen:  # named twice, or by a link and its target: redacted once
            skipped.append(Skipped(path, NAMED_TWICE if paths.count(path) > 1 else SAME_FILE_NAMED, False))
        else:
            seen.add(real_path(path))
            inputs.append(Input(path, path.parent, media_kind(path) if path.is_file() else None))
    return inputs, skipped


def _folder_inputs(root: Path, excluded: set[Path], seen: set[Path]) -> tuple[list[Input], list[Skipped]]:
    """Every file below the local folder `root` that is an input, and what was skipped and why;
    files `seen` already (by their resolved paths) are skipped, those taken added to it."""
    inputs: list[Input] = []
    skipped: list[Skipped] = []
    for file, reason, cannot_read in _walk(root, excluded):
        if reason is None and real_path(file) in seen:
            reason = SAME_FILE_REACHED
        if reason is None:
            kind = media_kind(file)
            if kind is None and (reason := unreadable(file)) is not None:
                cannot_read = True
            elif kind is None and file.suffix.lower() not in MEDIA_SUFFIXES:
                reason = "not a photo, video or sound file veil can read"
        if reason is not None:
            skipped.append(Skipped(file, reason, cannot_read))
            continue
        seen.add(real_path(file))
        inputs.append(Input(file, root, kind))
    return inputs, skipped


def _under(folder: Url, local: Path, found: Path | Url) -> Url:
    """`found`, a path below `local`, the path of the file:// URL `folder`, as a URL below `folder`."""
    return folder / PurePosixPath(Path(str(found)).relative_to(local))


def _walk(root: Path, excluded: set[Path]) -> Iterator[tuple[Path, str | None, bool]]:
    """Every file below `root`, with the reason to skip it (None: look at its content), and
    whether it is a folder that could not be listed (a failure: its files were never seen).

    Symbolic links, to folders and to files, are followed once, after every real folder and file
    below `root`: a link searched first would take its target's place (the outputs named after the
    link, the real folder passed over as reached again through a link)."""
    visited: set[tuple[int, int]] = set()
    unlisted: list[OSError] = []
    linked_folders: list[Path] = [root]
    linked_files: list[tuple[Path, str | None, bool]] = []
    while linked_folders:
        for folder, subfolders, files in os.walk(linked_folders.pop(0), onerror=unlisted.append):
            yield from _unlisted(unlisted)
            here = Path(folder)
            info = here.stat()
            if (info.st_dev, info.st_ino) in visited:  # a symlink to a folder seen before, or a loop
                subfolders.clear()
                yield here, "a folder already searched (reached again through a symbolic link)", False
                continue
            visited.add((info.st_dev, info.st_ino))
            for name in sorted(subfolders):
                if real_path(here / name) in excluded:
                    subfolders.remove(name)
                    yield here / name, OWN_FOLDER, False
                elif (reason := _skipped_folder(name)) is not None:
                    # A drive's own folders (.Trashes, lost+found) are often unreadable: not the user's.
                    subfolders.remove(name)
                    yield here / name, reason, False
                elif _earlier_output_folder(here / name):
                    # Its files are redacted copies of files elsewhere: done again, they would be
                    # counted as the user's and mirrored into this run's output folder.
                    subfolders.remove(name)
                    yield here / name, EARLIER_OUTPUT_FOLDER, False
            linked = {name for name in subfolders if os.path.islink(here / name)}
            linked_folders += [here / name for name in sorted(linked)]
            subfolders[:] = sorted(set(subfolders) - linked)
            names = set(files)
            for name in sorted(files):
                entry = _file_entry(here / name, names, excluded)
                if os.path.islink(here / name):
                    linked_files.append(entry)
                else:
                    yield entry
    yield from _unlisted(unlisted)
    yield from linked_files


def _file_entry(file: Path, names: set[str], excluded: set[Path]) -> tuple[Path, str | None, bool]:
    """A file found in a folder holding `names`: the reason to skip it (None: look at its content),
    and whether it could not be read."""
    if (reason := _skipped_name(file.name, names)) is not None:
        return file, reason, False
    if (denied := _denied(file)) is not None:  # in a folder that may be listed but not entered
        return file, denied, True
    if real_path(file) in excluded:
        return file, "written by this run", False
    if not file.is_file():
        return file, "not a regular file", False
    return file, None, False


def _earlier_output_folder(folder: Path) -> bool:
    """Whether an earlier run wrote its outputs into `folder` (--output-dir): the manifest it keeps
    there records an output inside the folder made from an input outside it. A folder redacted in
    place holds a manifest too, beside the user's own files (a.jpg and a.redacted.jpg): searched."""
    inside = real_path(folder)
    try:
        with open(folder / MANIFEST_NAME, "rb") as manifest:
            return any(_made_in(line, inside) for line in manifest)
    except OSError:  # none there (or unreadable): the folder is searched, its files each named if skipped
        return False


def _made_in(line: bytes, folder: Path) -> bool:
    """Whether a manifest's line records an output inside `folder` made from an input outside it.
    Records name files resolved (veil.manifest.recorded_name); a URL names no folder here, and a
    line cut short by a crash, or one naming no file a path can be (a hand-edited NUL), says nothing."""
    try:
        record = exact_names(json.loads(line))  # a name as this locale reads its bytes, as `folder` is
    except (ValueError, RecursionError):
        return False
    output, source = (record.get(key) if isinstance(record, dict) else None for key in ("output", "path"))
    if not all(isinstance(name, str) and can_name_a_file(name) for name in (output, source)):
        return False
    return Path(output).is_relative_to(folder) and not Path(source).is_relative_to(folder)


def published_media(file: Path) -> bool:
    """Whether a file in an output folder is a photo, video or sound file, by its name or, one
    without a suffix (`IMG_0001`), its content. A pipe is none (opened, it would hold the run)."""
    if not file.is_file():
        return False
    return _media_by_name(file.name) or (not file.suffix and not file.name.startswith("._")
                                         and media_kind(file) is not None)


def _denied(path: Path) -> str | None:
    """Why `path` may not even be looked at (no permission), or None."""
    try:
        os.stat(path)
    except PermissionError as error:
        return f"cannot be read ({error.strerror})"
    except OSError:
        pass  # a broken link, say: the checks after this one name it
    return None


def _unlisted(errors: list[OSError]) -> Iterator[tuple[Path, str, bool]]:
    while errors:
        error = errors.pop(0)
        yield Path(error.filename), f"cannot be read ({error.strerror or error}): nothing in it was looked at", True


def _media_by_name(name: str) -> bool:
    """Whether a file's name says photo, video or sound: not a macOS `._name` fork, nor veil's
    own unfinished `.name.XXXXXXXX.partial.jpg`."""
    return Path(name).suffix.lower() in MEDIA_SUFFIXES and not name.startswith("._") \
        and not Path(name).stem.endswith(".partial")


def _skipped_folder(name: str) -> str | None:
    """Why a folder found in a folder is not searched (None: search it)."""
    if name.startswith("."):
        return HIDDEN_FOLDER
    if name == "lost+found":
        return "the filesystem's lost+found folder"
    return None


def _skipped_name(name: str, beside: set[str]) -> str | None:
    """Why a file found in a folder beside the files named `beside` is passed over for its name
    alone (None: look at it)."""
    if name.startswith("."):
        return "hidden file"
    if Path(name).stem.endswith(REDACTED_TAG):  # as veil names its outputs: a.redacted.b.jpg is a user's
        return OWN_OUTPUT if beside.intersection(_made_from(name)) else OWN_OUTPUT_ALONE
    if name == MANIFEST_NAME:
        return OWN_MANIFEST
    return None


def _made_from(output: str) -> tuple[str, str]:
    """The names a file may have that `output_path` gives an output named `output`: a.redacted.jpg
    is made from a.jpg, scan.psd.redacted.png from scan.psd (a suffix veil cannot write is kept)."""
    made_from = Path(output).stem.removesuffix(REDACTED_TAG)
    return made_from + Path(output).suffix, made_from


def _remote_inputs(root: Url, excluded: set[Url]) -> tuple[list[Input], list[Skipped]]:
    """A URL on the command line: the file it names, or every file below the folder it names,
    passed over by the same rules as a local folder's."""
    if not root.is_dir():
        return [Input(root, root.parent, remote_kind(root) if root.is_file() else None)], []
    inputs: list[Input] = []
    skipped: list[Skipped] = []

    def unlisted(folder: Url, error: RemoteError) -> None:  # a failure, said as a local folder's
        reason = f"cannot be read ({error.reason}): nothing in it was looked at"
        skipped.append(Skipped(folder, reason, unreadable=True))

    for folder, subfolders, files in root.walk(unlisted):
        for name in list(subfolders):
            if folder / name in excluded:
                subfolders.remove(name)
                skipped.append(Skipped(folder / name, OWN_FOLDER))
        names = set(files)
        for name, entry_type in files.items():
            file = folder / name
            reason, kind = _skipped_name(name, names), None
            if reason is None and entry_type == "other":  # a pipe, a socket, a device: a pipe's open waits for ever
                reason = "not a regular file"
            if reason is None:
                try:
                    kind = remote_kind(file)
                except RemoteError as error:  # this file's failure, with its reason (the folder was listed)
                    skipped.append(Skipped(file, f"cannot be read ({error.reason})", unreadable=True))
                    continue
                if kind is None and file.suffix.lower() not in MEDIA_SUFFIXES:
                    reason = "not a photo, video or sound file veil can read"
            if reason is None:
                inputs.append(Input(file, root, kind))
            else:
                skipped.append(Skipped(file, reason))
    return inputs, skipped


def remote_kind(url: Url) -> MediaKind | None:
    """`media_kind` of a file named by URL, read only as far as that needs; RemoteError when a
    read fails on the way (a connection reset), which Pillow and FFmpeg would take for bytes they
    do not recognise: the file would pass for no photo, video or sound at all. A stop that lands
    in a read is raised once they are done."""
    with url.open() as file:
        reads = WatchedReads(file)
        kind = media_kind(reads)
        if reads.stop is not None:
            raise reads.stop
        if reads.failure is not None:
            raise reads.failure  # (said by `url.open`, as every failed read of a URL)
        return kind


class WatchedReads(io.RawIOBase):
    """`file` read through for Pillow and FFmpeg, the first read that failed kept, and a stop that
    landed in a read (one waiting on a stalled server, say): for the caller to raise once they are
    done. That read and every later one find the file's end instead: FFmpeg reads through PyAV's
    callback, which swallows a stop (it was lost, and FFmpeg read on, stalled again), and a read
    error it keeps is printed as "dropped", with its traceback, when FFmpeg reads again."""

    def __init__(self, file: IO[bytes]):
        super().__init__()
        self.file = file
        self.failure: Exception | None = None
        self.stop: Stopped | None = None

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        try:
            if self.stop is None and self.failure is None:
                return self.file.read(-1 if size is None else size)
        except Stopped as stop:
            self.stop = stop
        except Exception as error:
            self.failure = error
        return b""

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return self.file.seek(offset, whence)

    def tell(self) -> int:
        return self.file.tell()


# The suffix an output takes when the input's own cannot be written (a JPEG named `.jfif` is
# written as `.jfif`; one with no suffix becomes `.jpg`; a format veil cannot write, PNG).
IMAGE_SUFFIX_OF_FORMAT = {"JPEG": ".jpg", "PNG": ".png", "GIF": ".gif", "WEBP": ".webp", "TIFF": ".tif",
                          "HEIF": ".heic", "AVIF": ".avif", "BMP": ".bmp"}


def output_suffix(source: Path | Url, kind: MediaKind) -> str:
    from veil.imagefile import WRITE_FORMATS
    from veil.videofile import CONTAINER_FORMATS

    suffix = source.suffix.lower()
    if kind == "audio":
        from veil.audio import AUDIO_FORMATS

        return source.suffix if suffix in AUDIO_FORMATS else ".m4a"
    if kind == "video":
        return source.suffix if suffix in CONTAINER_FORMATS else ".mkv"
    if kind == "animation":
        from veil.animation import WRITE_FORMATS as ANIMATION_FORMATS

        if suffix in ANIMATION_FORMATS:
            return source.suffix
        # By what it is: an animated PNG or WebP keeps its colours and transparency, which GIF would cut.
        by_format = _suffix_of_format(source)
        return by_format if by_format in ANIMATION_FORMATS else ".gif"
    if suffix in WRITE_FORMATS:
        return source.suffix
    return _suffix_of_format(source) or ".png"


def _suffix_of_format(source: Path | Url) -> str | None:
    """The suffix of the image format the file holds, where veil writes that format."""
    with contextlib.suppress(OSError, ValueError, UnidentifiedImageError, Image.DecompressionBombError):
        with source.open() if isinstance(source, Url) else open(source, "rb") as file, Image.open(file) as image:
            return IMAGE_SUFFIX_OF_FORMAT.get(image.format or "")
    return None


def output_path(source: Path | Url, base: Path | Url, output: Path | Url | None, output_dir: Path | Url | None,
                kind: MediaKind = "image") -> Path | Url:
    """photo.jpg -> photo.redacted.jpg beside it; or -o FILE; or DIR/<relative path>.

    A suffix veil cannot write is kept in the name and the right one appended (`scan.psd`
    -> `scan.psd.redacted.png`), so `scan.psd` and `scan.png` do not share an output name. Inputs
    that still would (`a`, a JPEG without a suffix, beside `a.jpg`) are caught by OutputClaims.
    """
    if output is not None:
        target = output
    else:
        suffix = output_suffix(source, kind)
        stem = source.stem if suffix == source.suffix else source.name
        if output_dir is not None:
            relative = source.relative_to(base) if _within(source, base) else Path(source.name)
            target = output_dir / relative.parent / f"{stem}{suffix}"
        else:
            target = source.with_name(f"{stem}{REDACTED_TAG}{suffix}")
    if isinstance(local := as_local(target), Path) and len(os.fsencode(local.name)) > NAME_MAX:
        raise OutputError(f"the output's name {shown(local.name)} is longer than file systems take ({NAME_MAX} bytes): "
                          "name it with -o")
    if same_file(target, source):
        raise OutputError("the output would overwrite the input")
    return target


def mirrored_bases(planned: list[Path | Url]) -> list[Path | Url]:
    """The folder each of a plan's files has its output path mirrored from under --output-dir (as
    `Input.base`): the folder its local files share, as a run over that folder mirrors them
    (day1/IMG_0001.jpg and day2/IMG_0001.jpg must not meet in one name); a URL's own folder."""
    folders = [where.parent for where in planned if isinstance(where, Path)]
    shared = Path(os.path.commonpath(folders)) if folders else None
    return [shared if isinstance(where, Path) else where.parent for where in planned]


def _within(source: Path | Url, base: Path | Url) -> bool:
    """Whether `source` lies in the folder `base` (a URL only in a URL's folder)."""
    if isinstance(source, Url) or isinstance(base, Url):
        return isinstance(source, Url) and isinstance(base, Url) and source.is_relative_to(base)
    return source.is_relative_to(base)


def media_at(target: Path) -> str | None:
    """What a plan or report written at `target` would replace that it never may: a photo, video
    or sound file, known by its content or, one FFmpeg cannot open (a recording cut short), by
    its name. None: nothing of the kind."""
    if not target.is_file():
        return None
    if kind := media_kind(target):
        return f"a {KIND_NAMES[kind]} file"
    return f"a {target.suffix.lower()} file" if target.suffix.lower() in MEDIA_SUFFIXES else None


def check_writable(target: Path | Url, overwrite: bool, what: str = "the output", run_file: bool = False,
                   appended: bool = False) -> None:
    """Refuse, before any work, a file that exists (unless --overwrite) or cannot be written.
    A `run_file` (the plan, the report) never replaces a photo, video or sound file, --overwrite
    or not: a slip of its option's argument would lose one. (The manifest, `appended` to, never
    replaces what is there, and is refused by its own check when a file there is not a manifest.)

    Whether a URL can be written is known only by writing: its upload says so.
    """
    try:
        if target.is_dir():
            raise OutputError(f"{what} {shown(target)} is a folder")
        if isinstance(target, Path) and not appended and (other := not_a_file(target)):
            raise OutputError(replacing_refused(target, other, what))
        if isinstance(target, Path) and appended and (other := not_a_file(real_path(target))):
            # Opened to append, a pipe no program reads would hold the run before its first file,
            # and a device would take the records (and a newline to end a line it cannot read).
            raise OutputError(f"{what} {shown(target)} is {other}: name a file")
        if run_file and isinstance(target, Path) and (media := media_at(target)):
            raise OutputError(f"{what} {shown(target)} would replace {media}: name another file")
        if target.exists() and not overwrite:
            raise OutputError(f"{what} {shown(target)} exists: use --overwrite to replace it")
    except OSError as error:  # a name too long for the file system, say
        raise OutputError(f"cannot write {what} {shown(target)}: {error.strerror or error}") from None
    if isinstance(target, Url):
        return
    for place in (target.absolute(), *target.absolute().parents):
        if place.exists():
            break
        if place.is_symlink():  # found at the end of the work, when the output is moved into place
            raise OutputError(f"cannot write {what} {shown(target)}: {shown(place)} is a symbolic link that leads "
                              "nowhere (or in a loop)")
    folder = target.absolute().parent
    while not folder.exists():
        folder = folder.parent
    if not folder.is_dir():
        raise OutputError(f"cannot write {what} {shown(target)}: {shown(folder)} is a file, not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write {what} {shown(target)}: {shown(folder)} is not a writable folder")


def not_a_file(target: Path) -> str | None:
    """What stands at `target` where it is neither a file, a folder nor nothing: a symbolic link, a
    device (/dev/null), a pipe or a socket. An output is written beside its name and then put in
    its place, which replaces a link itself, not what it leads to: over such a name it must never
    be put (`--report /dev/null` or `--save-plan /dev/stdout` run as root replaced the system's
    /dev/null, or its link to the standard output, with a file)."""
    try:
        if target.is_symlink():
            return "a symbolic link" if target.exists() else "a symbolic link that leads nowhere (or in a loop)"
        mode = os.stat(target).st_mode
    except OSError:
        return None
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "a pipe" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else "not a file"


def replacing_refused(target: Path, other: str, what: str = "the output") -> str:
    return (f"{what} {shown(target)} is {other}, which the finished file would replace (each is written whole, "
            "then put in its name's place), --overwrite or not: name a file")


class OutputClaims:
    """Every file a run reads or writes, so that no output replaces an input or another output.

    Two inputs with one name in different folders would otherwise share an output under
    --output-dir, and `--report photo.jpg` would replace an input. Names that differ only in
    case (or in how an accent is encoded) are one file on the drives that outputs are often
    written to (exFAT and NTFS, macOS and Windows folders): they are one claim whatever drive
    this run writes to, or `IMG_1.jpg` and `img_1.jpg` would become one file there, both recorded.
    """

    def __init__(self, inputs: Iterable[Path | Url]):
        self.owners: dict[str, tuple[str, Path | Url]] = {
            claim_key(p): (f"the input {shown(p)}", p) for p in inputs}
        self.inputs = set(self.owners)  # there already: a folder needed at one's name is refused as it is written
        self.run_files: set[str] = set()  # the plan, the report, the manifest
        # The folders that a file claimed lies in -> its owner, whether a run file, and the file:
        # a file claimed at such a name (or one claimed inside a file claimed) could not be written
        # once the other was, found only after the work (`--report out.jpg/audit.json -o out.jpg`).
        self.folders: dict[str, tuple[str, bool, Path]] = {}

    def claim(self, target: Path | Url, owner: str, run_file: bool = False) -> Path | Url:
        """Reserve `target` for `owner` ("the report", "the output of x.jpg"); a `run_file` is
        one of the run's own (the plan, the report, the manifest)."""
        key = claim_key(target)
        if self.owners.get(key) == (owner, target):  # claimed ahead (a recorded output: `Input.recorded`)
            return target
        if key in self.owners:
            clash = RunFileClash if key in self.run_files else OutputError
            other, claimed = self.owners[key]
            folded = "" if location_key(claimed) == location_key(target) else (
                f" ({shown(claimed)}: names that differ only in case, or in how an accent is written, are one file on "
                "exFAT, NTFS and macOS drives)")
            raise clash(f"{owner} ({shown(target)}) would overwrite {other}{folded}")
        if isinstance(target, Path):
            self._claim_folders(key, target, owner, run_file)
        self.owners[key] = (owner, target)
        if run_file:
            self.run_files.add(key)
        return target

    def _claim_folders(self, key: str, target: Path, owner: str, run_file: bool) -> None:
        """Refuse a file claimed where another claimed file needs a folder, or inside a file claimed."""
        if key in self.folders:
            other, others_run_file, inside = self.folders[key]
            clash = RunFileClash if run_file or others_run_file else OutputError
            raise clash(f"{owner} ({shown(target)}) would be a file where {other} ({shown(inside)}) needs a folder")
        folders = {claim_key(folder): folder for folder in target.absolute().parents}
        for folder_key, folder in folders.items():
            if folder_key in self.owners and folder_key not in self.inputs:
                other, claimed = self.owners[folder_key]
                clash = RunFileClash if run_file or folder_key in self.run_files else OutputError
                raise clash(f"{owner} ({shown(target)}) would need a folder where {other} ({shown(claimed)}) "
                            "is written as a file")
        for folder_key in folders:
            self.folders.setdefault(folder_key, (owner, run_file, target))


def claim_key(where: Path | Url) -> str:
    """`location_key`, caseless: Unicode's canonical caseless match, which folds case as those
    drives do, and the composed and decomposed spellings of an accent, which macOS takes as one."""
    return unicodedata.normalize("NFD", unicodedata.normalize("NFD", location_key(where)).casefold())


class RunFileClash(OutputError):
    """An output named as the run's plan, report or manifest: the command contradicts itself."""


@dataclass
class OutputFile:
    """The file `atomic_output` writes: `path`, its temporary name while it is written; once it is
    in place, `sha256`, of the bytes put there. Hashed before the move, not read back by name after
    it: an uploader that takes each new file away at once, or a file put over the name, must not
    make what veil wrote unknown, or another file's hash be recorded as its output's."""
    path: Path
    sha256: str | None = None


def mode_kept_from(sources: Iterable[str | Path]) -> int:
    """The permissions of a file made from `sources`: a new file's (0666 less the umask), less any
    reading a source denies its group or others. A photo only its owner may read stays so in its
    redacted copy (unreviewed, it may still show a face), and in the plan and report that name it
    and its hash; `umask` alone made all three readable by every user of the machine."""
    umask = os.umask(0)
    os.umask(umask)
    mode = 0o666 & ~umask
    for source in sources:
        try:
            held = os.stat(source).st_mode
        except (OSError, ValueError):  # a URL, or a file gone: no permissions of its to keep
            continue
        if not held & stat.S_IRGRP:
            mode &= ~0o060
        if not held & stat.S_IROTH:
            mode &= ~0o006
    return mode


@contextlib.contextmanager
def atomic_output(target: Path, overwrite: bool = True,
                  before_commit: Callable[[Path], None] | None = None,
                  sources: Iterable[str | Path] = ()) -> Iterator[OutputFile]:
    """Yield the temporary file to write beside `target`; move it into place only on success.

    Without `overwrite`, a file that appeared at `target` meanwhile is never replaced: the
    move is a hard link, which fails if the name exists. `before_commit(target)` runs once the
    file is written, before the move: an exception from it leaves nothing. The file's mode is
    `mode_kept_from(sources)`, the inputs it was made from.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as made:
        try:
            temp = made.enter_context(temporary_file(target.parent, *partial_affixes(target)))
        except OSError as error:  # no inode left, say: said of the output, not of its hidden name
            raise OutputError(f"cannot write {shown(target)}: {error.strerror or error}") from None
        written = OutputFile(temp)
        try:
            yield written
        except Exception as error:
            reason = _write_failure(error, temp)
            if reason is None:
                raise
            raise OutputError(f"cannot write {shown(target)}: {reason}") from None
        if before_commit is not None:
            before_commit(target)
        # On disk before its name is: the manifest records the output once it is in place (and is
        # itself synced), so a power loss must not leave a recorded output empty or cut short.
        try:
            with open(temp, "rb") as file:
                os.fsync(file.fileno())
                sha256 = hashlib.file_digest(file, "sha256").hexdigest()
        except OSError as error:  # a network share or a quota may refuse the data only now
            raise OutputError(f"cannot write {shown(target)}: {_write_failure(error, temp) or error.strerror}") from None
        os.chmod(temp, mode_kept_from(sources))  # mkstemp made it 0600
        if other := not_a_file(target):  # one that appeared after the run's checks, or a path they never saw
            raise OutputError(replacing_refused(target, other, "the file"))
        if overwrite:
            os.replace(temp, target)
        else:
            _link_new(temp, target)
        written.sha256 = sha256


def partial_outputs(*targets: Path) -> list[Path]:
    """The unfinished files `atomic_output` left beside `targets` in a process that ended without
    its clean-up (a crash, SIGKILL). Each folder is listed once, however many targets it holds."""
    by_folder: dict[Path, set[tuple[str, str]]] = {}
    for target in targets:
        prefix, suffix = partial_affixes(target)
        by_folder.setdefault(target.parent, set()).add((prefix, suffix))
    found = []
    for folder, affixes in by_folder.items():
        with contextlib.suppress(OSError):
            found += [Path(entry.path) for entry in os.scandir(folder)
                      if any(entry.name.startswith(prefix) and entry.name.endswith(suffix)
                             and len(entry.name) == len(prefix) + 8 + len(suffix) for prefix, suffix in affixes)]
    return found


def remove_partial_outputs(*targets: Path) -> list[Path]:
    """Remove the `partial_outputs` of `targets`; return those that could not be removed."""
    left = []
    for path in partial_outputs(*targets):
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        except OSError:
            left.append(path)
    return left


# A write refused for want of room, which the user can act on (the error would name the hidden
# temporary file, or, from an encoder that writes through its own C code, no cause at all).
_NO_ROOM = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


def _write_failure(error: Exception, temp: Path) -> str | None:
    """Why writing the temporary file `temp` failed, said without its hidden name: for want of
    room (an encoder that writes through its own C code gives no cause, so the disk is asked),
    or an error that names it. None: an error about something else, passed on as it is."""
    if isinstance(error, OSError) and error.errno in _NO_ROOM:
        return os.strerror(error.errno)
    if isinstance(error, (OSError, ImageError)):
        with contextlib.suppress(OSError):
            disk = os.statvfs(temp.parent)
            free = disk.f_bfree if os.geteuid() == 0 else disk.f_bavail  # root may use the reserved blocks
            if free * disk.f_frsize < 1 << 20:
                return "no space left on its disk"
    if isinstance(error, OSError) and error.filename is not None and str(temp) in str(error.filename):
        return error.strerror or "the write failed"
    return None


def _link_new(temp: Path, target: Path) -> None:
    """Put `temp` at `target` unless a file is there. One that appeared there meanwhile and is byte
    for byte `temp` is left standing (the temporary is removed by its writer): it is this output
    (an earlier attempt's, whose worker died before its result was taken), replaced by nothing."""
    try:
        os.link(temp, target)
    except FileExistsError:
        if not _same_bytes(temp, target):
            raise OutputError(f"{shown(target)} appeared while veil was writing it: use --overwrite to replace "
                              "it") from None
    except OSError:  # a filesystem without hard links: check, then rename
        if not target.exists():
            os.replace(temp, target)
        elif not _same_bytes(temp, target):
            raise OutputError(f"{shown(target)} exists: use --overwrite to replace it") from None


def _same_bytes(temp: Path, target: Path) -> bool:
    try:
        return target.is_file() and filecmp.cmp(temp, target, shallow=False)
    except OSError:
        return False
