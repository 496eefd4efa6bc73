"""Helpers for the photo tests: running the CLI, copying real inputs, checking outputs."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from veil.command import app

# Inputs used by several tests (paths relative to ../shared/data).
TWO_PEOPLE = "face_recognition_examples/examples/two_people.jpg"
P3_HEIC = "metadata/exif-samples/heic/IMG_5195.HEIC"  # iPhone: "Display P3", "Copyright Apple Inc., 2017"
OBAMA = "face_recognition_examples/examples/knn_examples/test/obama1.jpg"
KIT_WITH_ROSE = "face_recognition_examples/examples/knn_examples/test/kit_with_rose.jpg"
GROUP = "wider_face_dev/images/12--Group/12_Group_Group_12_Group_Group_12_28.jpg"
SAMSUNG = "metadata/metadata-extractor-images/jpg/Samsung GT-I9000 (Galaxy S).jpg"


def veil(*args: object):
    """Run the `veil` command in this process (the model stays loaded between calls)."""
    return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)


def veil_subprocess(*args: object, cwd: Path | None = None,
                    env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run `python -m veil` as a user would, in a fresh process; `env`: variables set over this
    process's own (a locale, say: its output, in that locale's encoding, is read with U+FFFD where
    it is not this one's)."""
    return subprocess.run(
        [sys.executable, "-m", "veil", *map(str, args)], capture_output=True, text=True, errors="replace", cwd=cwd,
        timeout=300, env=None if env is None else {**os.environ, **env}
    )


def copy_in(shared_data: Path, relative: str, folder: Path, name: str | None = None) -> Path:
    """Copy a real input into a writable folder (../shared/data is read-only)."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / (name or Path(relative).name)
    shutil.copyfile(shared_data / relative, target)
    return target


def damaged_jpeg(source: Path, target: Path) -> Path:
    """The JPEG with bytes of its last third of scan data inverted here and there: libjpeg decodes
    it all the same, saying "Corrupt JPEG data", its rows from the damage on garbled."""
    data = bytearray(source.read_bytes())
    scan = data.rfind(b"\xff\xda")
    for at in range(scan + (len(data) - scan) * 2 // 3, len(data) - 16, 97):
        data[at] = 0xFF - data[at]
    target.write_bytes(bytes(data))
    return target


def leftovers(folder: Path) -> list[Path]:
    """Temporary files an interrupted or failed write would leave."""
    return sorted(p for p in folder.rglob(".*") if ".partial" in p.name)


def rgb_of(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def share_near(pixels: np.ndarray, colour, tolerance: int) -> float:
    """Fraction of pixels (H, W, C) within `tolerance` of `colour` in every channel."""
    diff = np.abs(pixels.astype(np.int32) - np.asarray(colour, np.int32))
    return float(np.mean(np.all(diff <= tolerance, axis=-1)))


def planned_faces(plan_file: Path) -> list[SimpleNamespace]:
    """The detector's face boxes behind a saved plan's head regions (head_box inverted)."""
    from veil.regions import HEAD_MARGIN_BOTTOM, HEAD_MARGIN_SIDE, HEAD_MARGIN_TOP

    faces = []
    for region in json.loads(plan_file.read_text())["media"][0]["regions"]:
        _, x0, y0, x1, y1, *_ = region["boxes"][0]
        w = (x1 - x0) / (1 + 2 * HEAD_MARGIN_SIDE)
        h = (y1 - y0) / (1 + HEAD_MARGIN_TOP + HEAD_MARGIN_BOTTOM)
        faces.append(SimpleNamespace(x0=x0 + HEAD_MARGIN_SIDE * w, y0=y0 + HEAD_MARGIN_TOP * h,
                                     x1=x1 - HEAD_MARGIN_SIDE * w, y1=y1 - HEAD_MARGIN_BOTTOM * h))
    return faces


def face_slice(face) -> tuple[slice, slice]:
    """The pixels of a detection's tight face box."""
    return (slice(int(round(face.y0)), int(round(face.y1))), slice(int(round(face.x0)), int(round(face.x1))))


# What Pillow may report about a clean output: format details and the colour profile, nothing else.
# nclx_profile: the colour declaration libheif writes into a HEIF without an ICC profile, the
# same sRGB code points in every file. loop, background: what Pillow's WebP reader gives of every
# WebP, a lone picture chunk's too.
CLEAN_INFO = {
    "jfif", "jfif_version", "jfif_unit", "jfif_density", "dpi", "progressive", "progression", "icc_profile",
    "primary", "bit_depth", "chroma", "icc_profile_type", "original_orientation", "metadata", "thumbnails",
    "depth_images", "aux", "exif", "xmp", "gamma", "srgb", "nclx_profile", "loop", "background",
}
# JPEG segments a clean output may have: JFIF header, ICC profile, and the image itself.
CLEAN_JPEG_MARKERS = {0xE0, 0xE2, 0xDB, 0xC0, 0xC1, 0xC2, 0xC4, 0xDD, 0xDA}


def jpeg_segments(data: bytes) -> list[tuple[int, bytes]]:
    """(marker, payload) of each JPEG segment up to the start of the image data."""
    assert data[:2] == b"\xff\xd8", "not a JPEG"
    segments, at = [], 2
    while at + 4 <= len(data):
        assert data[at] == 0xFF, f"broken segment at byte {at}"
        marker, length = data[at + 1], int.from_bytes(data[at + 2 : at + 4], "big")
        segments.append((marker, data[at + 4 : at + 2 + length]))
        if marker == 0xDA:
            break
        at += 2 + length
    return segments


def assert_no_metadata(path: Path, icc: bytes | None) -> None:
    """No EXIF (GPS or otherwise), XMP, IPTC, comments or thumbnails; the ICC profile exactly as given."""
    with Image.open(path) as image:
        exif = image.getexif()
        assert len(exif) == 0, f"{path.name} keeps EXIF tags {dict(exif)}"
        assert not exif.get_ifd(0x8825), f"{path.name} keeps GPS"
        assert not image.info.get("exif") and not image.info.get("xmp"), f"{path.name} keeps EXIF/XMP"
        assert not image.info.get("thumbnails") and not image.info.get("depth_images"), f"{path.name} keeps thumbnails"
        assert not image.info.get("metadata"), f"{path.name} keeps metadata boxes"
        unexpected = set(image.info) - CLEAN_INFO
        assert not unexpected, f"{path.name} carries {unexpected}"
        assert getattr(image, "n_frames", 1) == 1, f"{path.name} holds more than one image"
        assert image.info.get("icc_profile") == icc, f"{path.name}: ICC profile not carried over exactly"
    if path.suffix.lower() in (".jpg", ".jpeg"):
        data = path.read_bytes()
        segments = jpeg_segments(data)
        markers = {marker for marker, _ in segments}
        assert markers <= CLEAN_JPEG_MARKERS, f"{path.name} has segments {sorted(map(hex, markers - CLEAN_JPEG_MARKERS))}"
        for marker, payload in segments:
            if marker == 0xE0:
                assert payload.startswith(b"JFIF\0") and payload[12:14] == b"\0\0", "JFIF thumbnail present"
        icc_payloads = b"".join(p for m, p in segments if m == 0xE2)
        body = data.replace(icc_payloads, b"") if icc_payloads else data
        assert body.count(b"\xff\xd8") == 1, f"{path.name} embeds a second JPEG (a thumbnail)"
        assert data.endswith(b"\xff\xd9"), f"{path.name} has data after the image"


def _s15(value: float) -> bytes:
    return struct.pack(">i", round(value * 65536))


def _xyz(x: float, y: float, z: float) -> bytes:
    return b"XYZ \0\0\0\0" + _s15(x) + _s15(y) + _s15(z)


D50 = (0.9642, 1.0, 0.8249)


def _icc_profile(space: bytes, tags: list[tuple[bytes, bytes]]) -> bytes:
    """A minimal ICC v2 display profile of colour `space` (b"GRAY", b"RGB ") holding `tags`."""
    at, table, body = 128 + 4 + 12 * len(tags), b"", b""
    for signature, data in tags:
        data += b"\0" * (-len(data) % 4)
        table += signature + struct.pack(">II", at + len(body), len(data))
        body += data
    header = (struct.pack(">I", at + len(body)) + b"\0" * 4 + bytes([2, 0x10, 0, 0]) + b"mntr" + space + b"XYZ "
              + b"\0" * 12 + b"acsp" + b"\0" * 28 + _xyz(*D50)[8:] + b"\0" * 48)
    return header + struct.pack(">I", len(tags)) + table + body


def gray_profile(gamma: float) -> bytes:
    """A minimal ICC v2 grayscale profile: white point and a gamma tone curve."""
    return _icc_profile(b"GRAY", [(b"wtpt", _xyz(*D50)),
                                  (b"kTRC", b"curv\0\0\0\0" + struct.pack(">IH", 1, round(gamma * 256)) + b"\0\0")])


def negative_profile() -> bytes:
    """An ICC v2 RGB profile with sRGB's colorants and tone curves run backwards: a picture stored
    as its negative is shown, through it, as the picture."""
    curve = []
    for step in range(256):
        value = 1 - step / 255
        curve.append(round(65535 * (value / 12.92 if value <= 0.04045 else ((value + 0.055) / 1.055) ** 2.4)))
    trc = b"curv\0\0\0\0" + struct.pack(">I", len(curve)) + struct.pack(f">{len(curve)}H", *curve)
    colorants = [(b"rXYZ", _xyz(0.4361, 0.2225, 0.0139)), (b"gXYZ", _xyz(0.3851, 0.7169, 0.0971)),
                 (b"bXYZ", _xyz(0.1431, 0.0606, 0.7141))]
    return _icc_profile(b"RGB ", [(b"wtpt", _xyz(*D50)), *colorants, (b"rTRC", trc), (b"gTRC", trc), (b"bTRC", trc)])


def plain_tiff(pixels: np.ndarray, photometric: int, planar: bool = False) -> bytes:
    """An uncompressed little-endian TIFF of these 8- or 16-bit values (grey, or channels last),
    stored as they are: one strip, or one per channel where `planar` (PlanarConfiguration 2), with
    the PhotometricInterpretation given (0: white is zero, 1: black is zero, 2: RGB, 8: CIELab with
    a and b as signed bytes). What Pillow cannot write: any layout with any photometric."""
    height, width = pixels.shape[:2]
    samples = 1 if pixels.ndim == 2 else pixels.shape[2]
    values = pixels.astype(f"<u{pixels.itemsize}")
    strips = [values[..., c].tobytes() for c in range(samples)] if planar else [values.tobytes()]
    data, offsets = bytearray(b"II*\0\0\0\0\0"), []
    for strip in strips:
        offsets.append(len(data))
        data += strip
    bits = [8 * pixels.itemsize] * samples
    tags = {256: (4, [width]), 257: (4, [height]), 258: (3, bits), 259: (3, [1]), 262: (3, [photometric]),
            273: (4, offsets), 277: (3, [samples]), 278: (4, [height]), 279: (4, [len(s) for s in strips]),
            284: (3, [2 if planar else 1])}
    data += b"\0" * (len(data) % 2)
    struct.pack_into("<I", data, 4, len(data))
    outside = len(data) + 2 + 12 * len(tags) + 4  # where values longer than 4 bytes go
    entries, extra = bytearray(struct.pack("<H", len(tags))), bytearray()
    for tag, (kind, numbers) in sorted(tags.items()):
        packed = struct.pack("<" + ("H" if kind == 3 else "I") * len(numbers), *numbers)
        if len(packed) <= 4:
            entries += struct.pack("<HHI", tag, kind, len(numbers)) + packed.ljust(4, b"\0")
        else:
            entries += struct.pack("<HHII", tag, kind, len(numbers), outside + len(extra))
            extra += packed
    return bytes(data + entries + b"\0\0\0\0" + extra)
