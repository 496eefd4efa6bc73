"""Where outputs go, and writing them so that a failure leaves nothing behind.

Every output is written to a hidden temporary file in the destination folder and
renamed into place only when complete: an interrupted or failed run never leaves a
partial (and possibly unredacted) file, and an input is never overwritten.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".heic", ".heif", ".bmp"}
VIDEO_SUFFIXES = {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mts", ".m2ts", ".mpg", ".mpeg", ".3gp"}
REDACTED_TAG = ".redacted"


class OutputError(ValueError):
    """An output that must not be written (it would overwrite an input, say)."""


def media_kind(path: Path) -> str | None:
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return "image"
    if suffix in VIDEO_SUFFIXES:
        return "video"
    return None


def collect_inputs(paths: list[Path]) -> list[tuple[Path, Path]]:
    """Expand folders recursively: (input file, the folder its output path mirrors from).

    Files named on the command line are taken whatever their suffix (a wrong one gets a
    clear error later, not a silent skip); inside folders only media suffixes are taken,
    and earlier outputs (`*.redacted.*`) and hidden files (names starting with ".", such
    as veil's own unfinished `.name.partial` files or macOS's `._name` forks) are left out.
    """
    found: list[tuple[Path, Path]] = []
    for path in paths:
        if path.is_dir():
            for file in sorted(path.rglob("*")):
                if file.is_file() and media_kind(file) and REDACTED_TAG not in file.stem and not file.name.startswith("."):
                    found.append((file, path))
        else:
            found.append((path, path.parent))
    return found


def output_path(source: Path, base: Path, output: Path | None, output_dir: Path | None) -> Path:
    """photo.jpg -> photo.redacted.jpg beside it; or -o FILE; or DIR/<relative path>."""
    if output is not None:
        target = output
    elif output_dir is not None:
        target = output_dir / source.relative_to(base) if source.is_relative_to(base) else output_dir / source.name
    else:
        target = source.with_name(f"{source.stem}{REDACTED_TAG}{source.suffix}")
    if target.exists() and target.resolve() == source.resolve():
        raise OutputError("the output would overwrite the input")
    return target


class OutputClaims:
    """Every file a run reads or writes, so that no output replaces an input or another output.

    Two inputs with one name in different folders would otherwise share an output under
    --output-dir, and `--report photo.jpg` would replace an input.
    """

    def __init__(self, inputs: Iterable[Path]):
        self.owners: dict[Path, str] = {Path(p).resolve(): f"the input {p}" for p in inputs}

    def claim(self, target: Path, owner: str) -> Path:
        """Reserve `target` for `owner` ("the report", "the output of x.jpg")."""
        key = Path(target).resolve()
        if key in self.owners:
            raise OutputError(f"{owner} ({target}) would overwrite {self.owners[key]}")
        self.owners[key] = owner
        return target


@contextlib.contextmanager
def atomic_output(target: Path) -> Iterator[Path]:
    """Yield a temporary path beside `target`; rename it into place only on success."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=f".partial{target.suffix}", dir=target.parent)
    os.close(fd)
    temp = Path(name)
    try:
        yield temp
        # mkstemp creates 0600; give the output the permissions a normal file would get.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temp, 0o666 & ~umask)
        os.replace(temp, target)
    finally:
        temp.unlink(missing_ok=True)


def atomic_write_bytes(target: Path, data: bytes) -> None:
    with atomic_output(target) as temp:
        temp.write_bytes(data)
