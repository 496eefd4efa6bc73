"""veil: find every face in photos and videos and hide it irreversibly before publication."""

from __future__ import annotations

import os
import sys
import warnings

# veil runs offline and leaves no trace: onnxruntime (1.32) otherwise appends an event with a
# device id, the OS and paths holding the user name to ~/.cache/Microsoft/DeveloperTools/
# .onnxruntime/onnxruntime.db on every import, and a process running 10 s or more looks up
# Microsoft's telemetry host in DNS. Only this variable, set before onnxruntime is imported,
# stops both (disable_telemetry_events() does not); it is forced, not defaulted, and set here
# so every process importing any veil module (CLI, review server, workers) has it.
os.environ["ORT_DISABLE_TELEMETRY"] = "1"
# FastAPI (the review server) configures OpenTelemetry exporters by itself when the environment
# asks (FASTAPI_OTEL_AUTO_CONFIGURE, OTEL_EXPORTER_OTLP_ENDPOINT): requests would be exported to
# a host the user never named to veil. Both off, forced likewise, for any OpenTelemetry SDK too.
os.environ["FASTAPI_OTEL_AUTO_CONFIGURE"] = "false"
os.environ["OTEL_SDK_DISABLED"] = "true"
# SVT-AV1 (--codec av1) prints its version, build and settings to stderr whenever an encoder
# opens, around veil's one line per file and even with -q: errors only, unless the user set a level.
os.environ.setdefault("SVT_LOG", "1")
# How large a photo may be is veil's to say (veil.imagefile.MAX_PIXELS, refused in one line before
# decoding): OpenCV's own limits, set lower in the environment, failed a photo Pillow had read,
# mid-way, as an assertion in OpenCV's words. OpenCV's defaults (2^30 pixels, 2^20 a side) are
# what veil is tested with.
for limit in ("OPENCV_IO_MAX_IMAGE_PIXELS", "OPENCV_IO_MAX_IMAGE_WIDTH", "OPENCV_IO_MAX_IMAGE_HEIGHT"):
    os.environ.pop(limit, None)
if "onnxruntime" in sys.modules:
    # Too late for this process: onnxruntime read the environment when it was imported.
    warnings.warn("onnxruntime was imported before veil, with its telemetry on: this process may write "
                  "~/.cache/Microsoft/DeveloperTools/.onnxruntime/onnxruntime.db and look up Microsoft's "
                  "telemetry host; import veil first, or set ORT_DISABLE_TELEMETRY=1 before onnxruntime loads",
                  RuntimeWarning, stacklevel=2)

__version__ = "0.1.0"

import types
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, get_args

if TYPE_CHECKING:
    from veil.detect import Detection
    from veil.plan import MediaPlan, Plan, RenderSettings

# The library's names are imported when first used: `import veil` stays light (a few ms, not half a
# second of onnxruntime, OpenCV and PyAV), since every start of the `veil` command runs it before
# the command can catch Ctrl-C (veil.cli).
_LAZY = {"Detection": "veil.detect", "MediaPlan": "veil.plan", "Plan": "veil.plan", "RenderSettings": "veil.plan"}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'veil' has no attribute {name!r}")


class _Package(types.ModuleType):
    """The package, which keeps `veil.detect` the function below: importing the submodule of that
    name (veil's own modules do, as they are needed) would otherwise set it on the package."""

    def __setattr__(self, name: str, value: object) -> None:
        if not (name == "detect" and isinstance(value, types.ModuleType)):
            super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


def detect(image, accurate: bool = False) -> list[Detection]:
    """Faces in an image array (RGB, RGBA or grayscale; 8 or 16 bit): tight face boxes with scores.

    Raises TypeError or ValueError for anything else: floating-point pixels (0..1) would look
    black to the detector, and it would find no face in them."""
    import numpy as np

    from veil.detect import ACCURATE, FAST, faces_as_shown
    from veil.interrupt import no_core_dumps

    if not isinstance(image, np.ndarray):
        raise TypeError(f"detect() takes a numpy array of pixels, not {type(image).__name__}")
    if image.dtype.kind == "u" and not image.dtype.isnative:  # big-endian, as read from a FITS or TIFF
        image = image.astype(image.dtype.newbyteorder("="))
    if image.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"detect() takes 8- or 16-bit pixels (uint8 or uint16), not {image.dtype}")
    channels = image.shape[2] if image.ndim == 3 else 1 if image.ndim == 2 else None
    if channels not in (1, 3, 4) or 0 in image.shape:
        raise ValueError(f"detect() takes a picture of height x width (x 1, 3 or 4 channels), not shape {image.shape}")
    no_core_dumps(for_good=False)  # this process holds the pixels from here on (see redact_image)
    # As a photo's plan looks: a transparent picture over white and over black too, where a face
    # drawn in its transparency shows (its colour channels alone may be blank).
    return faces_as_shown(image[:, :, 0] if channels == 1 and image.ndim == 3 else image,
                          ACCURATE if accurate else FAST)[1]


class RedactionWarning(UserWarning):
    """Part of a file that `redact_image` left as it was, or left out of the output (voices kept,
    a second page, bytes after the picture...): what the command line says even with --quiet."""


def redact_image(
    source: str | Path,
    output: str | Path | None = None,
    *,
    accurate: bool = False,
    hide: str | Sequence[str] = "faces",
    shape: str = "ellipse",
    settings: RenderSettings | None = None,
    overwrite: bool = False,
) -> MediaPlan:
    """Redact a photo (or a video, animation or sound file); returns its plan. Output defaults to
    `<name>.redacted.<ext>` beside it. A string written protocol://... is a URL, as on the command
    line (memory://, s3://...: its fsspec backend installed).

    Raises FileNotFoundError for a source that is not there (a path or a URL), IsADirectoryError for
    a folder (as source or output), FileExistsError when the output exists (unless `overwrite`), ValueError
    with the reason when the file cannot be redacted; nothing is written then. What was left as it
    was, or left out, is said with a RedactionWarning (the `warnings` module).

    `hide`: what to find and hide, as --hide takes it ("faces,plates", or a list of those words);
    `shape`: each region's, "ellipse" or "box" (--shape).

    The plan returned is the file's; `veil.Plan(media=[plan], render=settings).save(path)`
    saves it with the settings it was drawn with, for `veil --plan` or a review.
    """
    import errno

    from veil.detect import ACCURATE, FAST
    from veil.interrupt import no_core_dumps
    from veil.names import shown
    from veil.outputs import OutputError, media_kind, not_a_file, output_path, remote_kind
    from veil.pipeline import Analysis, FileTask, redact_file
    from veil.kinds import parse_hide
    from veil.plan import Encoding, RenderSettings, Shape
    from veil.remote import Url, location

    if settings is not None and not isinstance(settings, RenderSettings):
        raise TypeError(f"settings must be a veil.RenderSettings, not {type(settings).__name__}")
    # A word misspelt would be looked for by no detector (nothing hidden, no error), as on the command line.
    kinds = parse_hide(hide if isinstance(hide, str) else ",".join(hide))
    if shape not in get_args(Shape):
        raise ValueError(f"shape {shape!r}: use {' or '.join(get_args(Shape))}")
    # A string is read as the command line reads a name: Path() would make memory://b/o.jpg a
    # local file ./memory:/b/o.jpg.
    if not str(source):  # Path("") is the current folder: never meant
        raise ValueError("source is an empty name: name the file to redact")
    where = location(source) if isinstance(source, str) else Path(source)
    if output is not None and not str(output):  # not the default name: a caller's name went missing
        raise ValueError("output is an empty name: name a file, or leave it out for <name>.redacted.<ext>")
    named = None if output is None else location(output) if isinstance(output, str) else Path(output)
    # A URL as a path: its store is asked (a store that cannot be reached raises ValueError, saying so).
    if where.is_dir():
        raise IsADirectoryError(errno.EISDIR, "a folder: redact_image takes one file (the command takes folders)",
                                str(where))
    if not where.exists():
        raise FileNotFoundError(errno.ENOENT, "no such file", str(where))
    # This process holds the decoded pictures from here on: a core dump of it would be an
    # unredacted copy left on disk, as for the command's own processes.
    no_core_dumps(for_good=False)
    if isinstance(where, Url):
        kind = remote_kind(where) if where.is_file() else None  # preflight says why it cannot be read
    else:
        kind = media_kind(where)
    try:
        target = output_path(where, where.parent, named, None, kind or "image")
    except OutputError as error:  # named, as every other refusal is
        raise OutputError(f"{shown(where)}: {error}") from None
    if target.is_dir():
        raise IsADirectoryError(errno.EISDIR, "the output is a folder: name a file in it", str(target))
    # A name that is not a file (a pipe, a device, a link) is refused below, as the command refuses
    # it, whatever overwrite says: it does not exist as an output that overwrite=True would replace.
    if not overwrite and target.exists() and not (isinstance(target, Path) and not_a_file(target)):
        raise FileExistsError(f"{shown(target)} exists: pass overwrite=True to replace it")
    task = FileTask(where, kind, target, settings or RenderSettings(), Encoding(),
                    Analysis(ACCURATE if accurate else FAST, shape=shape, hide=kinds), overwrite=overwrite)
    result = redact_file(task)
    if result.error or result.media is None:
        raise ValueError(f"{shown(where)}: {for_a_caller(str(result.error))}")
    for note in result.notes:
        if note.warning:
            warnings.warn(f"{shown(where)}: {note.text}", RedactionWarning, stacklevel=2)
    return result.media


def for_a_caller(refusal: str) -> str:
    """A refusal worded for the command line, as a library caller, who has no flag to pass, acts on it."""
    return refusal.replace("use --overwrite", "pass overwrite=True").replace("--overwrite or not",
                                                                             "overwrite=True or not")


__all__ = ["__version__", "detect", "redact_image", "Detection", "MediaPlan", "Plan", "RedactionWarning",
           "RenderSettings"]
