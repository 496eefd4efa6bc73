"""Photo files in and out: decode upright, encode with nothing that identifies.

Reading applies the EXIF orientation to the pixels (so detection sees faces upright and
the output needs no orientation tag) and keeps grayscale, alpha and 16-bit depth.
Writing builds a new file from the pixels alone: no EXIF (GPS, serials, owner, dates),
no XMP, IPTC, maker notes, comments, or embedded thumbnails (a thumbnail is an
unredacted copy of the photo). The embedded ICC colour profile is read with the pixels;
`to_srgb` converts the pixels through it and drops it, since a device's own profile
("Copyright Apple Inc., Display P3") tells which maker's device took the photo.

Memory: a photo is held as one array. JPEG and PNG, the formats of huge photos, are
decoded by OpenCV straight into it and encoded from it in memory (the encoded file, usually a fraction
of the pixels, is written by Python: see `write_encoded`); Pillow, which keeps RGB at 4 bytes a
pixel and needs a second copy to hand it over, decodes the rest.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import struct
import sys
import tempfile
import threading
import traceback
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import IO

import cv2
import numpy as np
import pillow_heif
from PIL import ExifTags, Image, ImageCms, UnidentifiedImageError

from veil.interrupt import stops_held
from veil.terminal import keep_stderr_open
from veil.tonemap import PRIMARIES_BT2020, PRIMARIES_P3, TO_BT709, TRC_HLG, TRC_PQ, tone_mapped

# OpenCV logs a file it cannot decode to stderr ("[ERROR:0@0.06] global loadsave.cpp ..."), around
# veil's one line: the file's failure is said there, once.
cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)

pillow_heif.register_heif_opener()

# Photos beyond this many pixels are refused as likely decompression bombs; 200 MP is
# above any camera's output (a 100 MP medium-format sensor) yet far below what would
# exhaust a laptop's memory.
MAX_PIXELS = 200_000_000
Image.MAX_IMAGE_PIXELS = MAX_PIXELS

ORIENTATION_TAG = 0x0112
# TIFF tags of its layout: how its values read (0: white is zero), how many per pixel, their bits,
# and whether each channel is stored apart (2) rather than interleaved.
PHOTOMETRIC_TAG, SAMPLES_TAG, BITS_TAG, PLANAR_TAG = 262, 277, 258, 284
WHITE_IS_ZERO, SEPARATE_PLANES = 0, 2
WRITE_FORMATS = {
    ".jpg": "JPEG", ".jpeg": "JPEG", ".jfif": "JPEG", ".jpe": "JPEG", ".gif": "GIF", ".png": "PNG", ".webp": "WEBP",
    ".tif": "TIFF", ".tiff": "TIFF", ".heic": "HEIF", ".heif": "HEIF", ".bmp": "BMP", ".avif": "AVIF",
}
# Pillow modes OpenCV decodes to the same array, by the channels it gives (palette, gray +
# alpha and transparency-keyed PNGs are left to Pillow, which expands them to RGBA).
OPENCV_MODES = {"L": 1, "I;16": 1, "I;16B": 1, "RGB": 3, "RGBA": 4}
# Colour conversion works on bands of about this many pixels, so it needs no second copy.
STRIP_PIXELS = 1 << 20
# 16-bit pixels are converted through a grid of 8-bit colours (Pillow's colour management
# has no 16-bit RGB): this many nodes per channel, 0, 3, ..., 255 (a divisor of 255 plus one).
GRID_NODES = 86


JPEG_END = np.array([0xFF, 0xD9], np.uint8)


class ImageError(ValueError):
    """A photo that cannot be read or written; the message says why."""


@dataclass
class Photo:
    pixels: np.ndarray  # writable, upright; (H, W) gray, (H, W, 3) RGB or (H, W, 4) RGBA; uint8 or uint16
    icc_profile: bytes | None
    format: str
    # Images the file holds beside this one (TIFF pages, a HEIF burst, an MPO's second view): the
    # output holds this one only, and the user is told.
    others: int = 0
    # A motion photo's video, stored after the JPEG: never written, and the user is told.
    video_after: bool = False
    # What the decoder said of damaged data it decoded all the same (libjpeg: "Corrupt JPEG data:
    # premature end of data segment"): the rest of the picture is as the decoder filled it in.
    decoder_messages: tuple[str, ...] = ()
    # Bytes stored after a JPEG's image that no viewer shows (another picture appended, a
    # program's data): never written, and the user is told.
    data_after: int = 0
    # The HDR transfer (H.273's number: TRC_PQ or TRC_HLG) of a photo whose pixels were tone-mapped
    # to SDR as read: the output is an SDR picture, and the user is told.
    tone_mapped_from: int | None = None
    # The wide primaries (PRIMARY_NAMES' words) an SDR HEIF's or AVIF's colour box named, which its
    # pixels were converted from to sRGB's as read: not an ICC profile, which --keep-icc would keep.
    colour_box_converted: str | None = None
    # What the decoder said of damaged picture data (DAMAGE_WARNINGS), which it filled in as it
    # could: a face there can come out garbled, half grey or shifted, missed by the search and
    # still recognisable. Such a photo is refused unless the user asks to salvage it.
    damage_said: tuple[str, ...] = ()
    # A WebP stored losslessly (its picture a VP8L bitstream): written losslessly too, as a PNG is,
    # so that the pixels away from the redactions stay as they were.
    lossless: bool = False
    # The metadata the file carries, by name (`metadata_names`), none of it written: the audit
    # report lists it, so the user can check what was taken out (never its values).
    metadata: tuple[str, ...] = ()


def _orient(pixels: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation (1-8) so the array is as a viewer shows it."""
    ops = {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: a.swapaxes(0, 1),
        6: lambda a: a.swapaxes(0, 1)[:, ::-1],
        7: lambda a: a.swapaxes(0, 1)[::-1, ::-1],
        8: lambda a: a.swapaxes(0, 1)[::-1],
    }
    op = ops.get(orientation)
    return np.ascontiguousarray(op(pixels)) if op else pixels


def _is_16bit_colour(image: Image.Image) -> bool:
    """Pillow reduces 16-bit RGB(A) PNG/TIFF to 8 bits; those go through OpenCV instead."""
    return image.mode in ("RGB", "RGBA") and any(";16" in str(tile[3]) for tile in image.tile)


def _pillow_pixels(image: Image.Image) -> np.ndarray:
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        grey = np.asarray(image.convert("I;16")).astype(np.uint16)
        if image.format == "TIFF" and image.tag_v2.get(PHOTOMETRIC_TAG) == WHITE_IS_ZERO:
            # Pillow inverts an 8-bit one as it reads it, not a 16-bit one: written as a negative
            np.subtract(65535, grey, out=grey)
        if "transparency" not in image.info:
            return grey
        # A transparent level, as in 8 bits (below): kept as alpha, or the file's hidden pixels show.
        alpha = np.where(grey == image.info["transparency"], 0, 65535).astype(np.uint16)
        return np.dstack([grey, grey, grey, alpha])
    if mode == "I":
        values = np.asarray(image)
        if values.size and (values.min() < 0 or values.max() > 65535):
            # Clipped to 16 bits, such a picture came out another picture (most of it black or
            # white), without a word.
            raise ImageError("a picture of 32-bit values beyond 16 bits: veil writes 8- and 16-bit pictures only "
                             "(convert it to 16-bit first)")
        return values.astype(np.uint16)
    if mode == "F":
        # Pillow's 8-bit conversion clips: values 0..1, the usual convention, would all be black.
        raise ImageError("a picture of floating-point values: veil writes 8- and 16-bit pictures only "
                         "(convert it to 16-bit first)")
    if mode in ("1", "L") and "transparency" not in image.info:  # a grey with a transparent level: RGBA below
        return np.asarray(image if mode == "L" else image.convert("L"))
    has_alpha = mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in image.info
    wanted = "RGBA" if has_alpha else "RGB"
    return np.asarray(image if mode == wanted else image.convert(wanted))


def _cmyk_to_rgb(image: Image.Image, icc: bytes | None) -> Image.Image:
    """Print-ready CMYK photos become sRGB through their own profile where they carry one
    (a plain conversion turns their colours muddy). The CMYK profile itself is then dropped
    by fitting_profile: it cannot describe RGB pixels."""
    if icc:
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            return ImageCms.profileToProfile(image, source, ImageCms.createProfile("sRGB"), outputMode="RGB")
        except (ImageCms.PyCMSError, OSError):
            pass  # an unreadable profile: fall back to the plain conversion
    return image.convert("RGB")


def fitting_profile(icc: bytes | None, pixels: np.ndarray) -> bytes | None:
    """The ICC profile, if it describes pixels like these: a profile for another colour space
    (bytes 16-19 of its header) would make viewers show wrong colours or reject the file."""
    if not icc or len(icc) < 20:
        return None
    return icc if icc[16:20] == (b"GRAY" if pixels.ndim == 2 else b"RGB ") else None


def _open(path: Path) -> Image.Image:
    with warnings.catch_warnings():
        # Pillow warns of each damaged EXIF entry as it opens a JPEG, in a library caller's output:
        # the EXIF is never written, and the report says what of it could be read.
        warnings.simplefilter("ignore", UserWarning)
        # Pillow only warns between MAX_IMAGE_PIXELS and twice that; veil refuses both.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(path)
        except UnidentifiedImageError:
            if is_heif_still(path):  # pillow-heif's plugin hides libheif's reason: ask libheif for it
                pillow_heif.open_heif(path, convert_hdr_to_8bit=False).close()
            if is_tiff(path) and path.suffix.lower() in (".tif", ".tiff"):  # (not a raw camera file's)
                raise ImageError("cannot decode image (a TIFF that cannot be read: a layout veil does not support, "
                                 "such as 16-bit grey with alpha or ICC Lab colour, or a damaged or truncated "
                                 "file)") from None
            raise
    if image.width * image.height > MAX_PIXELS:
        # Pillow's own refusal between MAX_PIXELS and twice that is a warning made an error above,
        # a filter that another thread's catch_warnings (a library caller's) can set aside.
        image.close()
        raise Image.DecompressionBombError(f"{image.width * image.height} pixels")
    if image.format == "TIFF":
        # Pillow (13.0) maps an uncompressed TIFF's one strip straight from the file, opened by its
        # name, at the size it reports, which for orientation 5-8 is the upright one, not the size
        # stored: the picture came out sheared, its faces unfound and exactly recoverable. Without
        # the name it decodes from the open file and turns the picture as it should.
        image.filename = ""
    return image


def _png_chunks(path: Path) -> Iterator[tuple[bytes, int, IO[bytes]]]:
    """A PNG's chunks, followed by their headers up to its end chunk: (type, length, the file at
    the chunk's data). Stops where a chunk would reach past the file's end (it is truncated)."""
    size = path.stat().st_size
    with open(path, "rb") as file:
        file.seek(8)  # the signature
        while len(header := file.read(8)) == 8:
            length, kind = int.from_bytes(header[:4], "big"), header[4:]
            start = file.tell()
            if start + length + 4 > size and kind != b"IEND":
                return
            yield kind, length, file
            if kind == b"IEND":
                return
            file.seek(start + length + 4)  # past the data and its CRC


def _jp2_profile(path: Path) -> bytes | None:
    """The ICC profile in a JPEG 2000 file's header ('colr' box of method 2 or 3), as Photoshop and
    macOS store one and Preview applies it: Pillow reads the colour box's named spaces alone, and a
    picture stored as its negative with a profile that shows it as it was was searched as stored.
    The header box comes before the picture's: only the file's first bytes are read."""
    with contextlib.suppress(OSError), open(path, "rb") as file:
        head = file.read(MAX_JP2_HEADER)
        for kind, start, end in _boxes(head, 0, len(head)):
            if kind == b"jp2h":
                for inner, content, stop in _boxes(head, start, end):
                    if inner == b"colr" and stop - content > 3 and head[content] in (2, 3):
                        return bytes(head[content + 3:stop])
                return None
    return None


# Where a JPEG 2000 file's header box ends at the latest: a few hundred bytes, with a profile a few
# kilobytes, after the signature, the file type and any metadata boxes.
MAX_JP2_HEADER = 16 << 20


def _png_cicp(path: Path) -> dict | None:
    """A PNG's cICP chunk (its colour as H.273 numbers, PNG's third edition), with the keys of a
    HEIF's colour box: viewers that read it follow it before a profile or gAMA and cHRM, and an
    HDR PNG (PQ, HLG) names its transfer there alone. Only before the picture data, where it counts."""
    with contextlib.suppress(OSError):
        for kind, length, file in _png_chunks(path):
            if kind == b"IDAT":
                return None
            if kind == b"cICP" and length == 4:
                primaries, transfer, matrix, full = file.read(4)
                # Matrix 0 (RGB) is the one PNG allows: another is no colour PNG stores.
                return ({"color_primaries": primaries, "transfer_characteristics": transfer,
                         "matrix_coefficients": matrix, "full_range_flag": full} if matrix == 0 else None)
    return None


def _png_exif(path: Path) -> bytes | None:
    """The eXIf chunk of a PNG, found by walking the chunk headers: Pillow's getexif() decodes
    the whole image to look past the pixel data."""
    return next((file.read(length) for kind, length, file in _png_chunks(path) if kind == b"eXIf"), None)


# EXIF's pointers to its sub-directories: containers, not metadata of their own.
EXIF_POINTERS = {ExifTags.IFD.Exif, ExifTags.IFD.GPSInfo, ExifTags.IFD.Interop}
# A TIFF's tags that lay out its picture (its size, strips or tiles, samples, compression, colour
# map, resolution), which every TIFF writer sets afresh; every other tag of a TIFF is metadata (its
# maker, serials, dates, XP author and comment, GeoTIFF's position) and is named. Its ICC profile
# (34675) is converted and dropped as any photo's (said where --keep-icc cannot keep it).
TIFF_LAYOUT_TAGS = {254, 255, 256, 257, 258, 259, 262, 263, 264, 265, 266, 269, 273, 274, 277, 278, 279, 280, 281,
                    282, 283, 284, 286, 287, 290, 291, 296, 297, 317, 318, 319, 320, 321, 322, 323, 324, 325, 332,
                    338, 339, 340, 341, 347, 512, 513, 514, 515, 517, 518, 519, 520, 521, 529, 530, 531, 532, 34675}
XMP_TAG, IPTC_TAG, PHOTOSHOP_TAG = 700, 33723, 34377
# A TIFF's tags not named as EXIF: its layout's, and those named as what they hold (below).
TIFF_NOT_EXIF = TIFF_LAYOUT_TAGS | {XMP_TAG, IPTC_TAG, PHOTOSHOP_TAG}
# The keywords the PNG specification defines for its text chunks (and ImageMagick's raw profiles):
# said by name. Any other keyword is the file's own words (it may be anything, a name too): counted.
PNG_KEYWORDS = {"Title", "Author", "Description", "Copyright", "Creation Time", "Software", "Disclaimer", "Warning",
                "Source", "Comment", "Raw profile type exif", "Raw profile type iptc", "Raw profile type xmp",
                "Raw profile type 8bim", "Raw profile type icc", "date:create", "date:modify", "date:timestamp"}


def exif_bytes(image: Image.Image, path: Path) -> bytes | None:
    """The file's EXIF block, as stored (a PNG's eXIf chunk found by its headers: Pillow's
    getexif() decodes the whole image to look past the pixel data)."""
    return _png_exif(path) if image.format == "PNG" else image.info.get("exif")


# How the audit report names a colour profile that is not written (by default the pixels are
# converted to sRGB through it and it is dropped: its description can name the device; a CMYK
# photo's, or an HDR photo's, never fits the pixels written).
ICC_NOT_WRITTEN = "ICC colour profile (the pixels written as sRGB)"


def metadata_names(image: Image.Image, path: Path, data: bytes | None) -> tuple[str, ...]:
    """What metadata the file holds, named, never valued (the values are what identifies): each
    EXIF tag (camera, serial numbers, dates, GPS position, owner), an EXIF thumbnail (a small copy
    of the photo, unredacted), XMP, Photoshop resources (IPTC), comments, FlashPix data, PNG text
    chunks and a JPEG's other application segments (`_jpeg_segment_names`); a TIFF's tags but those
    of its layout. Read from the file's headers, never its pixels.
    `data`: its EXIF block (`exif_bytes`)."""
    names: list[str] = []
    exif = Image.Exif()
    try:
        with warnings.catch_warnings(record=True) as heard:  # Pillow warns of each damaged entry
            warnings.simplefilter("always", UserWarning)
            if image.format == "TIFF":
                exif = image.getexif()
            elif data:
                exif.load(data)
            tags = [ExifTags.TAGS.get(tag, f"tag {tag}") for tag in exif if tag not in EXIF_POINTERS
                    and (image.format != "TIFF" or tag not in TIFF_NOT_EXIF)]
            tags += [ExifTags.TAGS.get(tag, f"tag {tag}") for tag in exif.get_ifd(ExifTags.IFD.Exif)
                     if tag not in EXIF_POINTERS]
            tags += [ExifTags.GPSTAGS.get(tag, f"GPS tag {tag}") for tag in exif.get_ifd(ExifTags.IFD.GPSInfo)]
            names += [f"EXIF {tag}" for tag in tags]
            if data and not tags:  # there, but no entry could be read
                names.append("EXIF (damaged: not read)")
            elif any(issubclass(warning.category, UserWarning) for warning in heard):
                names.append("EXIF (some entries damaged: not read)")
            if image.format != "TIFF" and exif.get_ifd(ExifTags.IFD.IFD1):
                names.append("EXIF thumbnail")
    except Exception:  # (Pillow raises many kinds on damaged EXIF) the pixels decode all the same
        names.append("EXIF (damaged: not read)")
    info = image.info
    if info.get("xmp") or info.get("XML:com.adobe.xmp") or (image.format == "TIFF" and XMP_TAG in exif):
        names.append("XMP")
    if info.get("photoshop") or (image.format == "TIFF" and (IPTC_TAG in exif or PHOTOSHOP_TAG in exif)):
        names.append("Photoshop resources (IPTC and others)")
    if info.get("comment"):
        names.append("comment")
    if info.get("flashpix"):
        names.append("FlashPix data")
    if image.format == "PNG":
        names += _png_text_names(path)
    if image.format in ("JPEG", "MPO"):
        names += _jpeg_segment_names(image.applist)
    return tuple(dict.fromkeys(names))  # (a PNG's XMP is found both ways)


# A JPEG's segments, by marker and what they open with, that are its layout (JFIF, a Motion JPEG
# frame's AVI1, Adobe's colour transform, an Ultra HDR gain map's version) or are named otherwise
# (EXIF, XMP, Photoshop's, FlashPix, the comment; its colour profile; MPF's other images): every
# other one is named or counted by `_jpeg_segment_names`.
JPEG_SEGMENTS_SAID = (("APP0", b"JFIF\0"), ("APP0", b"JFXX\0"), ("APP0", b"AVI1"), ("APP1", b"Exif\0"),
                      ("APP1", b"http://ns.adobe.com/xap/1.0/\0"), ("APP1", b"http://ns.adobe.com/xmp/extension/\0"),
                      ("APP2", b"ICC_PROFILE\0"), ("APP2", b"MPF\0"), ("APP2", b"FPXR\0"),
                      ("APP2", b"urn:iso:std:iso:ts:21496:-1\0"), ("APP13", b"Photoshop 3.0\0"), ("APP14", b"Adobe"))
# Segments named for what they can hold of a person: Photoshop's "Ducky" (Save for Web: a comment
# and a copyright holder) and JUMBF boxes (C2PA content credentials: who made and edited the photo).
JPEG_SEGMENTS_NAMED = (("APP12", b"Ducky", "Ducky segment (Photoshop's Save for Web: quality, comment, copyright)"),
                       ("APP11", b"JP", "JUMBF boxes (C2PA content credentials: creator, edits)"))


def _jpeg_segment_names(segments: list[tuple[str, bytes]]) -> list[str]:
    """A JPEG's other application segments: those of JPEG_SEGMENTS_NAMED by name, the rest counted
    (their contents are a maker's own)."""
    names, others = [], 0
    for marker, data in segments:
        if marker == "COM" or any(marker == said and data.startswith(opening) for said, opening in JPEG_SEGMENTS_SAID):
            continue
        named = [name for kind, opening, name in JPEG_SEGMENTS_NAMED if marker == kind and data.startswith(opening)]
        names += named
        others += not named
    return list(dict.fromkeys(names)) + ([f"{others} other application segment(s)"] if others else [])


# A PNG's chunks that are its picture, its animation or its colour (a profile is said at render),
# or are named otherwise (EXIF, text): every other one is named or counted by `_png_text_names`.
PNG_CHUNKS_SAID = {b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS", b"gAMA", b"cHRM", b"sRGB", b"iCCP", b"sBIT", b"bKGD",
                   b"pHYs", b"hIST", b"sPLT", b"acTL", b"fcTL", b"fdAT", b"cICP", b"mDCv", b"cLLi", b"eXIf",
                   b"tEXt", b"zTXt", b"iTXt"}


def _png_text_names(path: Path) -> list[str]:
    """A PNG's text chunks by keyword, read from the chunk headers and the keyword alone (Pillow's
    `text` decodes the whole picture again to reach those after it, and refuses a large one); its
    time of last change (tIME), and its other chunks counted (a program's own: their contents are
    its maker's)."""
    keywords: list[str] = []
    others: list[bytes] = []
    with contextlib.suppress(OSError):
        for kind, length, file in _png_chunks(path):
            if kind in (b"tEXt", b"zTXt", b"iTXt"):
                keywords.append(file.read(min(length, 80)).split(b"\0", 1)[0].decode("latin-1"))
            elif kind not in PNG_CHUNKS_SAID:
                others.append(kind)
    said = [f"text chunk {key}" for key in keywords if key in PNG_KEYWORDS]
    unnamed = sum(key not in PNG_KEYWORDS and key != "XML:com.adobe.xmp" for key in keywords)
    xmp = ["XMP"] if "XML:com.adobe.xmp" in keywords else []
    changed = ["time of last change (tIME chunk)"] if b"tIME" in others else []
    rest = sum(kind != b"tIME" for kind in others)
    return (said + xmp + ([f"{unnamed} text chunk(s) of other keywords"] if unnamed else []) + changed
            + ([f"{rest} other chunk(s)"] if rest else []))


def _orientation(data: bytes | None) -> int:
    """The orientation the EXIF block `data` gives; upright (1) where there is none, or where the
    EXIF cannot be read, as Pillow reads a JPEG's: the EXIF is never written, and the pixels decode
    all the same. The EXIF's alone: Pillow's getexif() takes an XMP packet's tiff:Orientation where
    the EXIF has none, which browsers and the EXIF-reading viewers do not (they show such a photo
    as stored)."""
    exif = Image.Exif()
    try:
        with warnings.catch_warnings():  # Pillow warns of each damaged entry: `metadata_names` says it
            warnings.simplefilter("ignore", UserWarning)
            if data:
                exif.load(data)
    except (SyntaxError, struct.error):  # not a TIFF header; one cut short
        return 1
    orientation = exif.get(ORIENTATION_TAG, 1)
    return int(orientation) if str(orientation).isdigit() else 1


def _jpeg_end(data: bytes) -> int | None:
    """Where a JPEG's first image ends (just past its end marker), its segments followed from the
    start; None where they do not reach one."""
    if data[:2] != b"\xff\xd8":
        return None
    at = 2
    while at + 2 <= len(data):
        if data[at] != 0xFF:  # stray bytes before a marker, which decoders pass over
            at = data.find(b"\xff", at)
            if at < 0:
                return None
            continue
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
        elif marker == 0xD9:
            return at + 2
        elif 0xD0 <= marker <= 0xD7 or marker == 0x01:  # markers without a length
            at += 2
        else:
            at += 2 + int.from_bytes(data[at + 2:at + 4], "big")
            if marker == 0xDA:  # scan data, up to the next marker that is not a restart or a stuffed zero
                while (at := data.find(b"\xff", at)) >= 0 and at + 1 < len(data) and (
                        data[at + 1] in (0x00, 0xFF) or 0xD0 <= data[at + 1] <= 0xD7):
                    at += 1
                if at < 0:
                    return None
    return None


def after_picture(path: Path, fmt: str) -> tuple[bool, int]:
    """What the file holds after its picture, the file read once: whether a phone's motion photo
    video rides along (after a JPEG's image, or in a HEIF file as Samsung's 'mpvd' box or as an
    MP4 appended: a second 'ftyp' box), and, after a JPEG's image that carries none or after a
    PNG's, WebP's or GIF's end, how many other bytes follow (padding, zeros or 0xFF, aside)."""
    if fmt in ("JPEG", "MPO"):
        data = path.read_bytes()
        if _video_after_jpeg(data):
            return True, 0
        end = _jpeg_end(data) if fmt == "JPEG" else None
    elif fmt == "HEIF":
        data = path.read_bytes()
        kinds = [kind for kind, _, _ in _boxes(data, 0, len(data))]
        return b"mpvd" in kinds or kinds.count(b"ftyp") > 1, 0
    elif fmt in ("PNG", "WEBP", "GIF"):  # read by blocks: a large PNG's data is not held a second time
        with open(path, "rb") as file:
            end = {"PNG": _png_end, "WEBP": _webp_end, "GIF": _gif_end}[fmt](path, file)
            return False, _stray_bytes(file, end)
    else:
        return False, 0
    return False, len(data) - end if end is not None and data[end:].strip(b"\x00\xff") else 0


def _stray_bytes(file: IO[bytes], end: int | None) -> int:
    """How many bytes follow `end` in the file, where any is more than padding (zeros or 0xFF)."""
    if end is None:
        return 0
    size = file.seek(0, os.SEEK_END)
    file.seek(end)
    while block := file.read(1 << 20):
        if block.strip(b"\x00\xff"):
            return size - end
    return 0


def _png_end(path: Path, _: IO[bytes]) -> int | None:
    """Where a PNG's end chunk ends (None: the file stops before one)."""
    for kind, length, file in _png_chunks(path):
        if kind == b"IEND":
            return file.tell() + length + 4
    return None


def _webp_end(_: Path, file: IO[bytes]) -> int | None:
    """Where a WebP's RIFF chunk ends, as its header gives its size (padded to an even length)."""
    header = file.read(8)
    size = int.from_bytes(header[4:8], "little") + 8
    return size + (size & 1) if len(header) == 8 else None


def _gif_end(_: Path, file: IO[bytes]) -> int | None:
    """Where a GIF's trailer (';') ends, its blocks followed from the header (None: none found)."""
    def colour_table(flags: int) -> int:
        return 3 << ((flags & 7) + 1) if flags & 0x80 else 0

    header = file.read(13)  # the signature, the screen's size and flags, background, aspect
    if len(header) < 13:
        return None
    file.seek(colour_table(header[10]), os.SEEK_CUR)
    while block := file.read(1):
        if block == b";":
            return file.tell()
        if block == b"!":  # an extension: its label, then its sub-blocks
            file.seek(1, os.SEEK_CUR)
        elif block == b",":  # an image: its descriptor, colour table and code size, then its sub-blocks
            descriptor = file.read(9)
            if len(descriptor) < 9:
                return None
            file.seek(colour_table(descriptor[8]) + 1, os.SEEK_CUR)
        else:
            return None
        while (length := file.read(1)) and length[0]:
            file.seek(length[0], os.SEEK_CUR)
    return None


def _webp_lossless(path: Path) -> bool:
    """Whether a WebP file's picture is stored losslessly: its first picture chunk is 'VP8L', not
    'VP8 ' (a lossy picture, whose alpha may sit losslessly in an 'ALPH' chunk beside it). Pillow
    does not say."""
    with open(path, "rb") as file:
        file.seek(12)  # after 'RIFF', the file's size and 'WEBP'; each chunk's header read, not its data
        while len(header := file.read(8)) == 8:
            kind, size = header[:4], int.from_bytes(header[4:], "little")
            if kind in (b"VP8L", b"VP8 "):
                return kind == b"VP8L"
            file.seek(size + (size & 1), os.SEEK_CUR)  # chunks are padded to an even length
    return False


def _video_after_jpeg(data: bytes) -> bool:
    """Whether an MP4 or QuickTime video follows the JPEG's image (Google's and Samsung's motion
    photos alike): its first box, `ftyp`, after the image's end."""
    end = _jpeg_end(data)
    if end is None:
        return False
    at = data.find(b"ftyp", end + 4)
    while at >= 0:
        if 8 <= int.from_bytes(data[at - 4:at], "big") <= 256:
            return True
        at = data.find(b"ftyp", at + 1)
    return False


def _png_complete(path: Path) -> bool:
    """Whether the file's chunks, followed from the first, reach PNG's end chunk within the file
    (some programs write more after it). The libpng inside OpenCV prints its own error about a
    truncated one to stderr before failing; Pillow says what is wrong in its message."""
    return any(kind == b"IEND" for kind, _, _ in _png_chunks(path))


def _jpeg_complete(path: Path) -> bool:
    """Whether the main image's data ends with an end marker. OpenCV decodes a truncated JPEG
    without an error (the missing rows come out grey); Pillow refuses it. Looser than `_jpeg_end`,
    which follows the scan's markers: damaged scan data, complete, still goes to OpenCV, whose
    decoder says what it found wrong (Pillow's says nothing)."""
    data = path.read_bytes()
    for marker, at in _header_segments(data):
        if marker == 0xDA:  # start of scan: entropy-coded data follows, where 0xFF is never
            return data.find(b"\xff\xd9", at) >= 0  # followed by 0xD9 except at the end
    return False


def _one_scan(path: Path) -> bool:
    """Whether the JPEG is sequential (baseline or extended) and its first scan holds every colour
    component: then it is the picture's only scan."""
    data = path.read_bytes()
    components = None
    for marker, at in _header_segments(data):
        if marker in (0xC0, 0xC1) and at + 9 < len(data):
            components = data[at + 9]
        elif 0xC2 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # progressive, lossless, arithmetic
            return False
        elif marker == 0xDA:
            return components is not None and at + 4 < len(data) and data[at + 4] == components
    return False


def _header_segments(data: bytes) -> Iterator[tuple[int, int]]:
    """A JPEG's segments before its picture data, each (marker, where it starts), followed by their
    lengths; the first scan's header last."""
    at = 2
    while at + 4 <= len(data) and data[at] == 0xFF:
        yield data[at + 1], at
        if data[at + 1] == 0xDA:
            return
        at += 2 + int.from_bytes(data[at + 2 : at + 4], "big")


def _boxes(data: bytes, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """The ISO base media file boxes between `start` and `end`: (type, content start, box end)."""
    at = start
    while at + 8 <= end:
        size, kind, content = int.from_bytes(data[at : at + 4], "big"), data[at + 4 : at + 8], at + 8
        if size == 1:  # a 64-bit size follows the type
            size, content = int.from_bytes(data[at + 8 : at + 16], "big"), at + 16
        elif size == 0:  # the last box: it runs to the end
            size = end - at
        if size < content - at:
            return
        yield kind, content, min(at + size, end)
        at += size


# The HEIF and AVIF brands of a single photo (ISO/IEC 23008-12, AV1 image format); a file that
# names one as its main brand is a photo, even where its image cannot be read.
HEIF_STILL_BRANDS = {b"mif1", b"mif2", b"heic", b"heix", b"heim", b"heis", b"avif"}


def is_heif_still(path: Path | IO[bytes]) -> bool:
    """Whether the file is an ISO media file whose main brand is a HEIF or AVIF photo's. FFmpeg
    reads such a file as a one-frame video, and where its primary image is missing, as a video of
    another of its images."""
    head = _first_bytes(path, 12)
    return len(head) == 12 and head[4:8] == b"ftyp" and head[8:12] in HEIF_STILL_BRANDS


def is_tiff(path: Path | IO[bytes]) -> bool:
    """Whether the file starts as a TIFF does (Pillow names a TIFF cut short no format at all)."""
    return _first_bytes(path, 4) in (b"II*\0", b"MM\0*")


def _first_bytes(path: Path | IO[bytes], count: int) -> bytes:
    if isinstance(path, Path):
        with contextlib.suppress(OSError), open(path, "rb") as file:
            return file.read(count)
        return b""
    # (a URL's, read in blocks: from where Pillow left it, back to the start)
    path.seek(0)
    head = path.read(count)
    path.seek(0)
    return head


def _heif_extents_present(path: Path) -> bool:
    """Whether every item's data that the HEIF item location box ('iloc') places in the file
    lies within the file. libheif leaves a grid tile whose data is missing as a blank (green)
    tile without an error, and pillow-heif offers no strict mode or decoding warnings, so a
    truncated iPhone photo would otherwise be redacted with parts of it blank."""
    data = path.read_bytes()
    meta = next(((start, end) for kind, start, end in _boxes(data, 0, len(data)) if kind == b"meta"), None)
    if meta is None:
        return False
    iloc = next(((start, end) for kind, start, end in _boxes(data, meta[0] + 4, meta[1]) if kind == b"iloc"), None)
    if iloc is None:
        return False
    at, end = iloc
    version = data[at]
    at += 4
    if at + 2 > end:
        return False
    offset_size, length_size = data[at] >> 4, data[at] & 15
    base_size, index_size = data[at + 1] >> 4, (data[at + 1] & 15) if version else 0
    at += 2

    def take(size: int) -> int:
        nonlocal at
        if at + size > end:
            raise EOFError
        value = int.from_bytes(data[at : at + size], "big")
        at += size
        return value

    try:
        for _ in range(take(4 if version == 2 else 2)):
            take(4 if version == 2 else 2)  # item ID
            method = take(2) & 15 if version else 0
            reference = take(2)
            base = take(base_size)
            for _ in range(take(2)):
                take(index_size)
                offset, length = take(offset_size), take(length_size)
                if method == 0 and reference == 0 and base + offset + length > len(data):
                    return False
    except EOFError:
        return False
    return True


_stderr_lock = threading.Lock()
# libtiff's decoders' and strip and tile readers' lines, some without the file's name
# ("ZIPDecode: Decoding error at scanline 0"): each says its picture data is damaged.
LIBTIFF_DAMAGE = ("JPEGLib: ", "LZWDecode:", "ZIPDecode:", "PackBitsDecode:", "Fax3Decode", "Fax4Decode",
                  "LZMADecode:", "ZSTDDecode:", "WebPDecode:", "TIFFFillStrip:", "TIFFFillTile:",
                  "TIFFReadEncodedStrip:", "TIFFReadEncodedTile:", "TIFFReadRawStrip:", "TIFFReadRawTile:")
# How the warnings of libjpeg(-turbo) (its jerror.h), libpng and libtiff begin (JPEGLib: libjpeg's,
# inside a JPEG-compressed TIFF, as libtiff passes them on).
LIBRARY_WARNINGS = ("Corrupt JPEG data", "Premature end of JPEG", "Invalid SOS", "Warning: unknown JFIF",
                    "Inconsistent progression", "Unknown Adobe", "Application transferred", "libpng ", *LIBTIFF_DAMAGE)
# Said where the decoder's words could not be taken (no file could be made or written for them):
# damage would go unseen, so the photo is refused as a damaged one is.
UNHEARD = "its decoder's words could not be heard (no file could be made or written for them)"
# Written last where the decoder's words go: found whole after them, nothing written before it was refused.
WORDS_END = b"\nveil: the decoder's words end here\n"
# Those that say the picture data is damaged, which the decoder decodes all the same, filling in
# what it lost: libjpeg's of bad or missing entropy-coded data ("Invalid SOS parameters for
# sequential JPEG" and the JFIF/Adobe ones are of headers it reads past, the picture whole),
# libpng's errors (data missing, a chunk's checksum wrong), libtiff's decoders'.
DAMAGE_WARNINGS = (UNHEARD, "Corrupt JPEG data", "Premature end of JPEG", "Inconsistent progression", "libpng error",
                   *LIBTIFF_DAMAGE)


def damage_lines(said: Iterable[str]) -> list[str]:
    """The decoder's lines that say its picture data is damaged (DAMAGE_WARNINGS)."""
    return [line for line in said if line.startswith(DAMAGE_WARNINGS)]


# libpng's warnings of an eXIf chunk (empty, cut short, a wrong byte order) are of metadata that
# veil reads itself (upright where unreadable) and never writes: no damage to the picture.
EXIF_WARNING = "libpng warning: eXIf:"
# libtiff's lines, as Pillow's decoder has it print them: "module: tempfile.tif: what", or without
# the module (the name Pillow gives libtiff for the file, no file of the user's).
LIBTIFF_LINE = re.compile(r"^(\w+: )?tempfile\.tif: ")


@contextlib.contextmanager
def _c_stderr_taken() -> Iterator[list[str] | None]:
    """The lines C code prints on stderr meanwhile (the libjpeg inside OpenCV warns there of
    damaged data it decodes all the same, in a line that names no file), taken off the terminal
    so that the user gets one that does. Anything else written there meanwhile, another
    thread's, is passed on after. One at a time: each swaps the process's stderr, and a stop
    (Ctrl-C) waits for the swap and the swap back. A file, not a pipe: a hostile PNG can make
    libpng warn without end, and a full pipe would stop the decoder. Where no such file can be
    made, nothing is swapped, and None is given: what the decoder said is not known; where it
    could not be written to the end (`WORDS_END`), `said` holds UNHEARD."""
    said: list[str] = []
    with _stderr_lock, contextlib.ExitStack() as stack:
        keep_stderr_open()
        try:
            taken = stack.enter_context(_words_file())
            terminal = os.dup(2)
        except OSError:
            yield None
            return
        with stops_held():
            _flush_stderr()
            os.dup2(taken.fileno(), 2)
        try:
            yield said
        finally:
            with stops_held():
                with contextlib.suppress(OSError):
                    os.write(2, WORDS_END)
                os.dup2(terminal, 2)
                os.close(terminal)
            taken.seek(0)
            words = taken.read()
            if not words.endswith(WORDS_END):  # a decoder's warning may have been refused as well: not known
                said.append(UNHEARD)
            for line in words.removesuffix(WORDS_END).decode(errors="replace").splitlines(keepends=True):
                if _from_decoder(line):
                    said.append(LIBTIFF_LINE.sub(lambda found: found[1] or "libtiff: ", line.strip()))
                elif sys.stderr is not None:
                    with contextlib.suppress(OSError, ValueError):  # a closed pipe: the line goes where it would have
                        sys.stderr.write(line)


def _words_file() -> IO[bytes]:
    """Where the decoder's words are taken: a file in memory where the system has them (Linux),
    which a full or removed temporary folder cannot refuse (a file made there, but with no room
    to write, lost a damaged JPEG's warning: the photo passed as whole); else a temporary file."""
    if hasattr(os, "memfd_create"):
        return os.fdopen(os.memfd_create("veil-decoder-words", os.MFD_CLOEXEC), "w+b")
    return tempfile.TemporaryFile()


def _flush_stderr() -> None:
    if sys.stderr is not None:  # None in a process started without one
        with contextlib.suppress(OSError, ValueError):
            sys.stderr.flush()


# A damaged file can make a decoder warn for every chunk or block: the first few distinct lines say it.
MESSAGES_KEPT = 3


def _summed_up(messages: list[str]) -> tuple[str, ...]:
    distinct = list(dict.fromkeys(messages))
    more = len(distinct) - MESSAGES_KEPT
    return tuple(distinct[:MESSAGES_KEPT]) + ((f"and {more} more",) if more > 0 else ())


def _from_decoder(line: str) -> bool:
    """Whether a line is one of libjpeg's, libpng's or libtiff's warnings (OpenCV's own log is silenced)."""
    return line.startswith(LIBRARY_WARNINGS) or LIBTIFF_LINE.match(line) is not None


def _opencv_pixels(image: Image.Image, path: Path, messages: list[str]) -> np.ndarray | None:
    """The pixels decoded by OpenCV into one array, or None where it does not decode this
    file as Pillow would (then Pillow decodes it, and reports what is wrong with it). What the
    decoder says of damaged data it decodes all the same goes into `messages`."""
    sixteen_bit = _is_16bit_colour(image)
    if not sixteen_bit:
        if image.format not in ("JPEG", "MPO", "PNG") or image.mode not in OPENCV_MODES:
            return None
        if "transparency" in image.info:
            return None
        if image.format == "PNG" and "icc_profile" in image.info:
            # libpng prints its opinion of a profile (another colour space's, a known faulty sRGB
            # one) on stderr, a line without the file's name; Pillow's decoder says nothing.
            return None
    # A JPEG without its end marker is decoded with one added: where its data is whole (some
    # programs never write the marker), libjpeg decodes it without a word; where the data is cut
    # short, it says so, and Pillow refuses the file as truncated. Only a JPEG of one scan: a
    # progressive one cut between its scans decodes without a word, blurred.
    unended = not sixteen_bit and image.format != "PNG" and not _jpeg_complete(path)
    if unended and not _one_scan(path):
        return None
    if image.format == "PNG" and not _png_complete(path):
        return None
    # No orientation, no colour conversion. The `dst` form, given None, decodes straight into
    # a numpy array; the plain form decodes into OpenCV's own memory and copies that into one,
    # holding the photo twice. (Given an array, it would hand that array back unchanged when
    # decoding fails, rather than None.)
    with _c_stderr_taken() as said:
        if unended:
            pixels = cv2.imdecode(_with_end_marker(path), cv2.IMREAD_UNCHANGED)
        elif _opencv_can_name(path):
            pixels = cv2.imread(str(path), None, cv2.IMREAD_UNCHANGED)
        else:
            pixels = cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_UNCHANGED)
    if unended and said != []:  # it warned, or what it said is not known
        return None
    messages.extend(line for line in _heard(said) if not line.startswith(EXIF_WARNING))
    # A 16-bit RGB PNG's transparent colour comes out of OpenCV as an alpha channel.
    keyed = sixteen_bit and "transparency" in image.info
    channels = 4 if image.mode == "RGBA" or keyed else 3 if sixteen_bit else OPENCV_MODES[image.mode]
    if pixels is None or (pixels.shape[2] if pixels.ndim == 3 else 1) != channels:
        return None
    if not sixteen_bit and pixels.dtype != np.uint8:
        return None
    if channels > 1:
        _swap_red_blue(pixels)
    return pixels


def _heard(said: list[str] | None) -> list[str]:
    """What `_c_stderr_taken` gave, UNHEARD where what the decoder said is not known."""
    return [UNHEARD] if said is None else said


def _libjpeg_said(path: Path) -> list[str]:
    """What libjpeg says of a JPEG's data, for one Pillow decodes (CMYK, say): Pillow's decoder
    keeps its warnings to itself, and decodes damaged data without a word. Decoded at an eighth
    of its size, grey, by OpenCV: every coefficient is still read, little else done. Without its
    end marker, with one added, as `_opencv_pixels` decodes it (OpenCV gives up on it unsaid)."""
    data = np.fromfile(path, np.uint8) if _jpeg_complete(path) else _with_end_marker(path)
    with _c_stderr_taken() as said:
        cv2.imdecode(data, cv2.IMREAD_REDUCED_GRAYSCALE_8)
    return _heard(said)


def _with_end_marker(path: Path) -> np.ndarray:
    """A JPEG's bytes with the end marker it lacks."""
    return np.concatenate([np.fromfile(path, np.uint8), JPEG_END])


def _swap_red_blue(pixels: np.ndarray) -> None:
    """RGB(A) <-> BGR(A), in place. A band at a time: OpenCV's cvtColor into its own input
    first copies the whole input."""
    code = cv2.COLOR_RGBA2BGRA if pixels.shape[2] == 4 else cv2.COLOR_RGB2BGR
    rows = max(1, STRIP_PIXELS // pixels.shape[1])
    for top in range(0, pixels.shape[0], rows):
        band = pixels[top : top + rows]
        cv2.cvtColor(band, code, dst=band)


@contextlib.contextmanager
def decoding_errors(what: str) -> Iterator[None]:
    """Pillow's and OpenCV's many ways of failing on a bad file, as one ImageError that says why."""
    try:
        yield
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(f"larger than {MAX_PIXELS // 1_000_000} megapixels (possible decompression bomb)") from None
    except UnidentifiedImageError:
        raise ImageError("not a recognised image format, or one damaged or cut short before its picture") from None
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        raise ImageError(f"cannot decode {what} ({error})") from None
    # Pillow's AVIF reader on damaged data, its TIFF reader on a page without its size; raised
    # anywhere else (veil's own code), a bug, said as one.
    except (RuntimeError, TypeError) as error:
        if not _raised_by_pillow(error):
            raise
        raise ImageError(f"cannot decode {what} ({error})") from None


def _raised_by_pillow(error: BaseException) -> bool:
    """Whether the innermost Python frame of the error's traceback is Pillow's (or pillow_heif's)."""
    frames = traceback.extract_tb(error.__traceback__)
    return bool(frames) and any(part in ("PIL", "pillow_heif") for part in Path(frames[-1].filename).parts)


def read_photo(path: Path) -> Photo:
    """The photo upright, at its own depth, with the ICC profile that describes its pixels."""
    with decoding_errors("image"):
        with _open(path) as image:
            if getattr(image, "n_frames", 1) > 1 and image.format not in ("MPO", "HEIF", "TIFF"):
                raise ImageError(f"animated {image.format} is not supported")
            fmt = image.format or "unknown"
            if fmt == "TIFF":
                _refuse_raw(image, path)
                _refuse_deep_planes(image)
            width, height = image.size  # as the file says it is shown, before any decoder runs
            others = getattr(image, "n_frames", 1) - 1 + _other_icon_sizes(image) + _sub_images(image)
            if fmt != "HEIF":  # a HEIF file opens on its primary image, the photo viewers show
                image.seek(0)
            icc = image.info.get("icc_profile") or (_jp2_profile(path) if fmt == "JPEG2000" else None)
            profile_in_file = bool(icc)
            cicp = _png_cicp(path) if fmt == "PNG" else None
            if cicp:
                icc = None  # viewers follow the cICP chunk (PNG's third edition): said where a profile was
            gamma, chromaticity = png_colour_chunks(image.info) if fmt == "PNG" and not cicp else (None, None)
            if fmt == "HEIF" and not _heif_extents_present(path):
                raise ImageError("cannot decode image (image data missing: the file is truncated or damaged)")
            messages: list[str] = []
            nclx = (image.info.get("nclx_profile") if fmt == "HEIF" else _avif_nclx(path) if fmt == "AVIF"
                    else cicp)
            hdr = _hdr_transfer(nclx)
            if hdr:
                pixels = _hdr_tone_mapped(image, path, nclx)
                icc = None  # the pixels are sRGB now: a profile beside the HDR colour box would convert them again
            elif fmt == "HEIF" and image.info.get("bit_depth", 8) > 8:
                pixels = _heif_full_depth(path)
            else:
                pixels = _opencv_pixels(image, path, messages)
            if pixels is None and _is_16bit_colour(image):
                truncated = image.format == "PNG" and not _png_complete(path)
                if fmt == "TIFF" and (turned := image.tag_v2.get(ORIENTATION_TAG)) in (5, 6, 7, 8):
                    # OpenCV's TIFF decoder turns such a picture with libtiff's 8-bit reader, and fails
                    # on 16 bits; Pillow would cut it to 8.
                    raise ImageError(f"cannot decode a 16-bit TIFF stored turned a quarter (its orientation tag "
                                     f"says {turned}): save it upright, or at 8 bits, first")
                raise ImageError("cannot decode 16-bit image" + (" (image file is truncated)" if truncated else ""))
            if pixels is None:
                with _c_stderr_taken() as said:  # libtiff's and libpng's lines name no file of the user's
                    image.load()
                messages.extend(_heard(said))
                if fmt in ("JPEG", "MPO"):
                    messages.extend(_libjpeg_said(path))
                pixels = _pillow_pixels(_cmyk_to_rgb(image, icc) if image.mode == "CMYK" else image)
            # Both decoders turn a TIFF upright as they read it (OpenCV cannot read a 16-bit one turned
            # a quarter: refused above); other formats are turned here.
            exif = exif_bytes(image, path)
            orientation = 1 if fmt == "TIFF" else _orientation(exif)
            metadata = metadata_names(image, path, exif)
    if pixels.shape[:2] != (height, width):
        # Fail closed: pixels not laid out as the file describes them are not the picture, and
        # their faces would be neither found nor hidden.
        raise ImageError(f"cannot decode image (decoded {pixels.shape[1]}x{pixels.shape[0]}, "
                         f"the file says {width}x{height})")
    if fmt == "BMP" and pixels.ndim == 3 and pixels.shape[2] == 4 and not pixels[..., 3].any():
        # Many programs write a 32-bit BMP's fourth byte as zero, meaning nothing: browsers show
        # such a BMP opaque. Kept, it made a .png output wholly transparent.
        pixels = np.ascontiguousarray(pixels[..., :3])
    pixels = _orient(pixels, orientation)
    if not pixels.flags.writeable:  # Pillow hands over read-only memory (copied once its image is closed)
        pixels = pixels.copy()
    converted = None
    if nclx and not hdr and not icc:  # an ICC profile describes the pixels instead: to_srgb converts them
        converted = _to_bt709_primaries(pixels, nclx.get("color_primaries"))
    if gamma or chromaticity:
        converted = from_png_colour(pixels, gamma, chromaticity)
    video, after = after_picture(path, fmt)
    profile = fitting_profile(icc, pixels)
    if profile_in_file and profile is None:  # (a fitting one is named where it is not kept: photo.render_photo)
        metadata = (*metadata, ICC_NOT_WRITTEN)
    return Photo(pixels, profile, fmt, others, video, _summed_up(messages), after, hdr,
                 converted, _summed_up(damage_lines(messages)), fmt == "WEBP" and _webp_lossless(path), metadata)


def _refuse_deep_planes(image: Image.Image) -> None:
    """A TIFF of more than 8 bits a value whose channels are stored apart (Photoshop's "Pixel
    Order: Per Channel"): Pillow reads each plane at 8 bits and OpenCV misplaces them, and the
    picture written was another, scrambled one, parts of faces in it."""
    tags = image.tag_v2
    bits = tags.get(BITS_TAG, (8,))
    if tags.get(PLANAR_TAG) == SEPARATE_PLANES and tags.get(SAMPLES_TAG, 1) > 1 and \
            max(bits if isinstance(bits, tuple) else (bits,)) > 8:
        raise ImageError("cannot decode a TIFF of more than 8 bits stored a channel at a time (planar): save it "
                         "with its channels interleaved (Photoshop: Pixel Order Interleaved), or at 8 bits, first")


# A raw camera file is a TIFF whose first picture is a small preview: its photo lies in a sub-image
# (a DNG's by the DNGVersion tag; other makers' by their names), raw sensor data that veil does not
# decode. Read as a TIFF, the preview was searched and written, and the report said 0 faces.
DNG_VERSION_TAG = 50706
SUB_IFDS_TAG = 330
RAW_SUFFIXES = frozenset((".dng", ".nef", ".nrw", ".arw", ".srf", ".sr2", ".cr2", ".orf", ".rw2", ".pef", ".srw",
                          ".3fr", ".erf", ".kdc", ".dcr", ".mos", ".iiq", ".rwl"))


def _refuse_raw(image: Image.Image, path: Path | IO[bytes]) -> None:
    dng = DNG_VERSION_TAG in image.tag_v2
    if dng or (isinstance(path, Path) and path.suffix.lower() in RAW_SUFFIXES):
        kind = "a DNG" if dng else f"a {path.suffix.lower()[1:].upper()}"
        raise ImageError(f"a raw camera file ({kind}): veil does not decode raw sensor data, and the small preview "
                         "before it is not the photo; convert it to TIFF or JPEG first (no face was looked for)")


def _sub_images(image: Image.Image) -> int:
    """How many sub-images a TIFF lists (SubIFDs: reduced copies, or the full picture of a layout
    veil refuses as raw), which the output leaves out."""
    if image.format != "TIFF":
        return 0
    offsets = image.tag_v2.get(SUB_IFDS_TAG)
    return len(offsets) if isinstance(offsets, tuple) else int(offsets is not None)


def _other_icon_sizes(image: Image.Image) -> int:
    """How many images an icon file (ICO, ICNS) holds beside the largest, which Pillow reads: each
    a copy of the picture at another size, which the output leaves out. Pillow counts them as sizes,
    not frames."""
    return max(0, len(image.info.get("sizes", ())) - 1) if image.format in ("ICO", "ICNS") else 0


def _hdr_transfer(nclx: dict | None) -> int | None:
    """The HDR transfer (PQ or HLG) a HEIF or AVIF image's colour box names (H.273's numbers,
    FFmpeg's too), or None for an SDR one."""
    trc = (nclx or {}).get("transfer_characteristics")
    return trc if trc in (TRC_PQ, TRC_HLG) else None


def _avif_nclx(path: Path) -> dict | None:
    """The colour box ('colr' of type 'nclx') among an AVIF file's image properties, with
    pillow_heif's keys for a HEIF file's; Pillow's AVIF reader does not give it. A file's images
    (a grid's tiles, a burst) share one in practice. Where its boxes differ, None: a gain map's
    HDR rendition has a box of its own, and an SDR photo taken for HDR would be tone-mapped."""
    data = path.read_bytes()
    span = (0, len(data))
    for kind, skip in ((b"meta", 4), (b"iprp", 0), (b"ipco", 0)):  # 'meta' is a full box: version and flags
        found = next(((start + skip, end) for each, start, end in _boxes(data, *span) if each == kind), None)
        if found is None:
            return None
        span = found
    found = {data[start + 4:start + 11] for kind, start, end in _boxes(data, *span)
             if kind == b"colr" and data[start:start + 4] == b"nclx" and end - start >= 11}
    if len(found) != 1:
        return None
    box = found.pop()
    primaries, transfer, matrix = struct.unpack(">HHH", box[:6])
    return {"color_primaries": primaries, "transfer_characteristics": transfer,
            "matrix_coefficients": matrix, "full_range_flag": box[6] >> 7}


def _hdr_tone_mapped(image: Image.Image, path: Path, nclx: dict) -> np.ndarray:
    """A PQ or HLG photo tone-mapped to an SDR BT.709 picture, as viewers that show HDR on an SDR
    screen do. veil writes photos as sRGB (a HEIF's or an AVIF's colour box too): the HDR code
    values as they stand would be written as an sRGB picture, dim, flat and grey, and the
    detectors would see them so. A HEIF's primary image is decoded at its full depth (turned as
    stored); Pillow decodes an AVIF at 8 bits only."""
    if image.format == "HEIF":
        pixels = _heif_full_depth(path)
    elif image.format == "PNG" and (sixteen := _opencv_pixels(image, path, [])) is not None:
        pixels = sixteen  # Pillow reads a 16-bit colour PNG at 8 bits
    else:
        image.load()
        pixels = _pillow_pixels(image)
    if pixels.dtype == np.uint8:  # its codes on the 16-bit scale tone_mapped takes
        pixels = pixels.astype(np.uint16) * 257
    if pixels.ndim == 2:  # a monochrome picture: tone-mapped as the grey it is, one channel kept
        return _sdr_colour(np.dstack([pixels] * 3), nclx)[..., 0]
    colour = _sdr_colour(pixels[..., :3], nclx)
    if pixels.shape[2] == 3:
        return colour
    return np.dstack([colour, (pixels[..., 3] >> 8).astype(np.uint8)])


def _sdr_colour(rgb: np.ndarray, nclx: dict) -> np.ndarray:
    """16-bit PQ or HLG colour values (RGB) as 8-bit SDR BT.709 ones, their colour box's primaries
    converted in linear light."""
    return tone_mapped(np.ascontiguousarray(rgb), nclx["transfer_characteristics"],
                       TO_BT709.get(nclx.get("color_primaries")))


def _heif_full_depth(path: Path) -> np.ndarray:
    """A HEIF file's primary image, turned as stored, at its own depth: 10 or 12 bits on the 16-bit
    scale (Pillow's reader cuts them to 8, and a 10-bit photo was written back as an 8-bit one)."""
    return np.asarray(pillow_heif.open_heif(path, convert_hdr_to_8bit=False))


# The wide gamuts phones and cameras write (tonemap.TO_BT709 converts them), as the plan names them.
PRIMARY_NAMES = {PRIMARIES_BT2020: "BT.2020", PRIMARIES_P3: "Display P3"}


@lru_cache(maxsize=None)
def _srgb_to_linear(top: int) -> np.ndarray:
    """Each code value of 0..top (sRGB's curve) as linear light, 0..1."""
    code = np.arange(top + 1) / top
    return np.where(code <= 0.04045, code / 12.92, ((code + 0.055) / 1.055) ** 2.4).astype(np.float32)


def _to_bt709_primaries(pixels: np.ndarray, primaries: int | None) -> str | None:
    """A colour picture (8 or 16 bits) whose colour box names wide primaries converted in place to sRGB's,
    a band at a time. veil writes photos as sRGB (a HEIF's or an AVIF's colour box says BT.709):
    the values kept as they were would show their colours dulled, a P3 red as an orange-red.
    Values are taken to linear light by sRGB's curve whatever transfer the box names (P3's is
    sRGB's; BT.709's and BT.2020's SDR curves differ from it slightly in the shadows). The primaries'
    name where they were converted, else None."""
    matrix = TO_BT709.get(primaries) if pixels.ndim == 3 else None
    if matrix is None:
        return None
    _convert_linear(pixels, _srgb_to_linear(np.iinfo(pixels.dtype).max), matrix)
    return PRIMARY_NAMES[primaries]


def _convert_linear(pixels: np.ndarray, linear: np.ndarray, matrix: np.ndarray) -> None:
    """A colour picture's values taken to linear light through the table `linear` (a value per
    code), converted by `matrix` to sRGB's primaries and coded with sRGB's curve, in place, a
    band at a time."""
    peak = np.iinfo(pixels.dtype).max
    rows = max(1, STRIP_PIXELS // pixels.shape[1])
    for top in range(0, pixels.shape[0], rows):
        band = pixels[top : top + rows, :, :3]
        light = np.clip(cv2.transform(linear[band], matrix), 0, 1)
        coded = np.where(light <= 0.0031308, light * 12.92, 1.055 * light ** (1 / 2.4) - 0.055)
        band[...] = np.rint(coded * peak)


# The exponent a gAMA chunk's value times this gives is the one from its values to sRGB's, near
# enough: sRGB's curve is close to a 2.2 power.
DISPLAY_GAMMA = 2.2


# sRGB's (BT.709's) chromaticities as a PNG's cHRM chunk lists them: white, red, green, blue (x, y).
SRGB_CHROMATICITY = (0.3127, 0.329, 0.64, 0.33, 0.3, 0.6, 0.15, 0.06)
# Bradford's cone response: a white point is adapted to another in this space (as colour managers do).
BRADFORD = np.array([[0.8951, 0.2664, -0.1614], [-0.7502, 1.7135, 0.0367], [0.0389, -0.0685, 1.0296]])
CHRM_CONVERTED = "the PNG's cHRM chunk's"


def png_colour_chunks(info: dict) -> tuple[float | None, tuple[float, ...] | None]:
    """A PNG's gAMA value and cHRM chromaticities, where they describe its colours: not beside a
    profile or an sRGB chunk, which viewers follow instead."""
    if info.get("icc_profile") or "srgb" in info:
        return None, None
    return info.get("gamma"), info.get("chromaticity")


def _rgb_to_xyz(chromaticity: tuple[float, ...]) -> np.ndarray | None:
    """The matrix from linear RGB in these primaries to XYZ (white at Y = 1); None where the
    chromaticities make none (a y of zero, primaries in a line), which viewers pass over too."""
    values = np.array(chromaticity, float)
    if values.shape != (8,) or not np.isfinite(values).all() or (values[1::2] <= 0).any():
        return None
    x, y = values[0::2], values[1::2]
    xyz = np.stack([x / y, np.ones(4), (1 - x - y) / y])  # white, red, green, blue as columns
    if abs(np.linalg.det(xyz[:, 1:])) < 1e-6:
        return None
    return xyz[:, 1:] * np.linalg.solve(xyz[:, 1:], xyz[:, 0])


def _chrm_to_srgb(chromaticity: tuple[float, ...]) -> np.ndarray | None:
    """Linear light in a cHRM chunk's primaries to linear sRGB light, its white adapted to sRGB's
    (Bradford); None where the chunk makes no matrix or names sRGB's own primaries."""
    source, srgb = _rgb_to_xyz(chromaticity), _rgb_to_xyz(SRGB_CHROMATICITY)
    if source is None:
        return None
    cones_from, cones_to = BRADFORD @ source.sum(axis=1), BRADFORD @ srgb.sum(axis=1)  # the two whites
    adapt = np.linalg.inv(BRADFORD) @ np.diag(cones_to / cones_from) @ BRADFORD
    matrix = np.linalg.inv(srgb) @ adapt @ source
    return None if np.allclose(matrix, np.eye(3), atol=2e-3) else matrix.astype(np.float32)


def from_png_colour(pixels: np.ndarray, gamma: float | None, chromaticity: tuple[float, ...] | None) -> str | None:
    """A PNG's gAMA and cHRM chunks applied to its colour values in place, as Skia (Chrome) and
    Firefox apply them: values decoded by the gAMA's exponent (sRGB's curve where there is none),
    the primaries converted to sRGB's and coded as sRGB. Outputs carry neither chunk, and a picture
    stored in other primaries (its channels swapped, say) would be searched and written as stored.
    What was converted, for the plan, where the primaries were; else None."""
    matrix = _chrm_to_srgb(chromaticity) if chromaticity and pixels.ndim == 3 else None
    if matrix is None:
        if gamma:
            _from_png_gamma(pixels, gamma)
        return None
    peak = np.iinfo(pixels.dtype).max
    # A gAMA of about 1/2.2 is taken as sRGB's curve, as where it stands alone (`_from_png_gamma`).
    srgb_curve = gamma is None or abs(gamma * DISPLAY_GAMMA - 1) < 0.01
    linear = _srgb_to_linear(peak) if srgb_curve else ((np.arange(peak + 1) / peak) ** (1 / gamma)).astype(np.float32)
    _convert_linear(pixels, linear, matrix)
    return CHRM_CONVERTED


def _from_png_gamma(pixels: np.ndarray, gamma: float) -> None:
    """A PNG's gAMA chunk applied to its colour values in place, so they are what viewers that
    honour it show, as sRGB: veil writes no gAMA chunk (outputs are untagged sRGB), and the values
    kept as they were would show lighter or darker (a linear PNG's by about a quarter of the range)."""
    exponent = 1 / (gamma * DISPLAY_GAMMA)
    if abs(exponent - 1) < 0.01:  # the usual 1/2.2: sRGB already
        return
    top = np.iinfo(pixels.dtype).max
    curve = np.round((np.arange(top + 1) / top) ** exponent * top).astype(pixels.dtype)
    colour = pixels[:, :, :3] if pixels.ndim == 3 else pixels
    colour[...] = curve[colour]


def _srgb_transform(icc: bytes, gray: bool) -> ImageCms.ImageCmsTransform | None:
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        return ImageCms.buildTransform(source, ImageCms.createProfile("sRGB"), "L" if gray else "RGB", "RGB")
    except (ImageCms.PyCMSError, OSError):
        return None


def _convert_8bit(colour: np.ndarray, transform: ImageCms.ImageCmsTransform) -> None:
    rows = max(1, STRIP_PIXELS // colour.shape[1])
    for top in range(0, colour.shape[0], rows):
        band = colour[top : top + rows]
        converted = np.asarray(ImageCms.applyTransform(Image.fromarray(np.ascontiguousarray(band)), transform))
        band[...] = converted[..., 1] if band.ndim == 2 else converted  # gray stays gray: R = G = B


def _convert_16bit(colour: np.ndarray, transform: ImageCms.ImageCmsTransform) -> None:
    """Convert through the transform's values on a grid of colours, interpolated between
    nodes: accurate to 8 bits, with the 16-bit gradations kept."""
    if colour.ndim == 2:
        levels = np.arange(256, dtype=np.uint8)[None]
        curve = np.asarray(ImageCms.applyTransform(Image.fromarray(levels), transform))[0, :, 1] * 257.0
        rows = max(1, STRIP_PIXELS // colour.shape[1])
        for top in range(0, colour.shape[0], rows):
            band = colour[top : top + rows]
            band[...] = np.rint(np.interp(band / 257.0, np.arange(256), curve))
        return
    nodes = np.linspace(0, 255, GRID_NODES).astype(np.uint8)
    grid = np.stack(np.meshgrid(nodes, nodes, nodes, indexing="ij"), axis=-1).reshape(GRID_NODES, -1, 3)
    lut = np.asarray(ImageCms.applyTransform(Image.fromarray(grid), transform), np.float32) * 257
    lut = lut.reshape(GRID_NODES, GRID_NODES, GRID_NODES, 3)
    rows = max(1, STRIP_PIXELS // (4 * colour.shape[1]))  # float temporaries: smaller bands
    for top in range(0, colour.shape[0], rows):
        band = colour[top : top + rows]
        position = band.astype(np.float32) * np.float32((GRID_NODES - 1) / 65535)
        low = np.minimum(position.astype(np.intp), GRID_NODES - 2)
        frac = position - low
        out = np.zeros(band.shape, np.float32)
        for corner in np.ndindex(2, 2, 2):
            weight = np.prod([frac[..., c] if on else 1 - frac[..., c] for c, on in enumerate(corner)], axis=0)
            out += weight[..., None] * lut[low[..., 0] + corner[0], low[..., 1] + corner[1], low[..., 2] + corner[2]]
        band[...] = np.clip(np.rint(out), 0, 65535)


def to_srgb(photo: Photo) -> Photo:
    """The photo in sRGB with no profile (viewers take untagged pixels as sRGB): its pixels
    converted in place through its own profile.

    No profile rather than a standard sRGB one: LittleCMS stamps the profile it builds with
    the time it was built, which would date the export. A profile that cannot be read is
    dropped all the same: colours a little off are better than a device's fingerprint.
    """
    if photo.icc_profile is None:
        return photo
    pixels = photo.pixels
    colour = pixels[:, :, :3] if pixels.ndim == 3 else pixels
    transform = _srgb_transform(photo.icc_profile, gray=pixels.ndim == 2)
    if transform is not None:
        (_convert_16bit if pixels.dtype == np.uint16 else _convert_8bit)(colour, transform)
    return replace(photo, pixels=pixels, icc_profile=None)


def _write_opencv(pixels: np.ndarray, path: Path, fmt: str, icc: bytes | None) -> None:
    """Encode the array in memory and write the file. OpenCV wants BGR: the channels are swapped
    in place for the encoding and back after it, so the caller's array is left as it was."""
    params = [cv2.IMWRITE_JPEG_QUALITY, 95] if fmt == "JPEG" else [cv2.IMWRITE_PNG_COMPRESSION, 6]
    swap = pixels.ndim == 3 and pixels.flags.writeable
    if swap:
        _swap_red_blue(pixels)
    elif pixels.ndim == 3:  # read-only: a swapped copy
        pixels = cv2.cvtColor(pixels, cv2.COLOR_RGBA2BGRA if pixels.shape[2] == 4 else cv2.COLOR_RGB2BGR)
    suffix = ".jpg" if fmt == "JPEG" else ".png"
    try:
        if icc:
            ok, data = cv2.imencodeWithMetadata(suffix, pixels, [cv2.IMAGE_METADATA_ICCP],
                                                [np.frombuffer(icc, np.uint8)], params)
        else:
            ok, data = cv2.imencode(suffix, pixels, params)
    except cv2.error as error:
        raise ImageError(f"cannot encode image ({error.err})") from None
    finally:
        if swap:
            _swap_red_blue(pixels)
    if not ok:
        raise ImageError(f"cannot encode the {fmt} image")
    write_encoded(path, data)


def write_encoded(path: Path, data: np.ndarray | memoryview) -> None:
    """Write an encoded picture to `path` with Python, whose every write, and the close, raises
    OSError when it fails (a full disk, a file size limit). The encoders' own file writing does
    not: OpenCV leaves the last bytes to a close it never checks, and Pillow's raw encoders pass
    over a short write, so a file cut short was moved into place as done. The encoded file is
    held in memory meanwhile: for JPEG and PNG, usually a fraction of the pixels."""
    with open(path, "wb") as file:
        file.write(data)


def _opencv_can_name(path: Path) -> bool:
    """Whether OpenCV's file functions can take this name. They take UTF-8 only: a name in other
    bytes (which a filesystem allows, and Python keeps as surrogates) crashed the process."""
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def holds_alpha(suffix: str) -> bool:
    """Whether veil writes an alpha channel into a file of this suffix: not into JPEG or BMP."""
    return WRITE_FORMATS.get(suffix.lower()) not in ("JPEG", "BMP")


def holds_profile(suffix: str, pixels: np.ndarray) -> bool:
    """Whether veil writes a colour profile into a file of this suffix holding these pixels: not
    into BMP or GIF (Pillow's writers have no place for one), nor into a 16-bit TIFF (OpenCV's
    has none)."""
    fmt = WRITE_FORMATS.get(suffix.lower())
    return fmt not in ("BMP", "GIF") and not (fmt == "TIFF" and pixels.dtype == np.uint16)


def _heif_encoding() -> dict:
    """The HEIF encoder's settings beside the quality."""
    if "x265" in str(pillow_heif.libheif_info().get("HEIF")):
        # x265's default preset is many times slower on a phone photo; "ultrafast" at quality 95
        # gives the same file size and quality (measured on IMG_5195.HEIC).
        return {"enc_params": {"preset": "ultrafast"}}
    return {}


def _write_deep_heif(pixels: np.ndarray, path: Path, icc: bytes | None) -> None:
    """A 16-bit picture (a 10- or 12-bit HEIF's, a 16-bit PNG's) as a 10-bit HEIF, the depth phones'
    and computers' HEVC decoders take, rather than cut to 8 bits as Pillow's HEIF writer would."""
    mode = "L;16" if pixels.ndim == 2 else "RGBA;16" if pixels.shape[2] == 4 else "RGB;16"
    heif = pillow_heif.from_bytes(mode=mode, size=(pixels.shape[1], pixels.shape[0]),
                                  data=np.ascontiguousarray(pixels).tobytes())
    encoded = io.BytesIO()
    try:
        heif.save(encoded, quality=95, **({"icc_profile": icc} if icc else {}), **_heif_encoding())
    except (OSError, ValueError) as error:
        raise ImageError(f"cannot encode HEIF image ({error})") from None
    write_encoded(path, encoded.getbuffer())


def write_photo(photo: Photo, path: Path, suffix: str | None = None) -> None:
    """Encode the pixels into a new file at `path`, in the format `suffix` (default: the
    path's own) names, with no metadata but the photo's ICC profile, if it has one."""
    suffix = path.suffix if suffix is None else suffix
    fmt = WRITE_FORMATS.get(suffix.lower())
    if fmt is None:
        raise ImageError(f"cannot write {suffix or 'files without a suffix'}; use one of {', '.join(sorted(WRITE_FORMATS))}")
    pixels = photo.pixels
    if fmt == "JPEG" and pixels.ndim == 3 and pixels.shape[2] == 4:
        pixels = np.ascontiguousarray(pixels[:, :, :3])  # JPEG has no alpha channel
    if (pixels.dtype == np.uint8 and fmt in ("JPEG", "PNG")) or (pixels.dtype == np.uint16 and fmt == "PNG"):
        _write_opencv(pixels, path, fmt, photo.icc_profile)
        return
    if pixels.dtype == np.uint16 and fmt == "TIFF":
        ok, data = cv2.imencode(".tiff", pixels if pixels.ndim == 2 else cv2.cvtColor(
            pixels, cv2.COLOR_RGBA2BGRA if pixels.shape[2] == 4 else cv2.COLOR_RGB2BGR))
        if not ok:
            raise ImageError("cannot encode 16-bit image")
        write_encoded(path, data)
        return
    if pixels.dtype == np.uint16 and fmt == "HEIF":
        _write_deep_heif(pixels, path, photo.icc_profile)
        return
    if pixels.dtype == np.uint16:  # formats without 16-bit support
        pixels = (pixels >> 8).astype(np.uint8)
    if fmt == "BMP" and pixels.ndim == 3 and pixels.shape[2] == 4:
        pixels = pixels[:, :, :3]  # no alpha channel either
    image = Image.fromarray(np.ascontiguousarray(pixels))
    options: dict = {}
    if photo.icc_profile and fmt != "BMP":
        options["icc_profile"] = photo.icc_profile
    if fmt == "WEBP" and photo.lossless:
        options["lossless"] = True
    elif fmt in ("JPEG", "WEBP", "HEIF", "AVIF"):
        options["quality"] = 95
    if fmt == "HEIF":
        options.update(_heif_encoding())
    if fmt == "TIFF":
        options["compression"] = "tiff_lzw"
    encoded = io.BytesIO()
    try:
        image.save(encoded, format=fmt, **options)
    except (OSError, ValueError) as error:
        raise ImageError(f"cannot encode {fmt} image ({error})") from None
    write_encoded(path, encoded.getbuffer())
