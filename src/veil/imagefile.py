"""Photo files in and out: decode upright, encode with nothing that identifies.

Reading applies the EXIF orientation to the pixels (so detection sees faces upright and
the output needs no orientation tag) and keeps grayscale, alpha and 16-bit depth.
Writing builds a new file from the pixels alone: no EXIF (GPS, serials, owner, dates),
no XMP, IPTC, maker notes, comments, or embedded thumbnails (a thumbnail is an
unredacted copy of the photo). Only the ICC colour profile is carried over, since the
colours would be wrong without it (CMYK photos are converted to sRGB through theirs).
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pillow_heif
from PIL import Image, ImageCms, UnidentifiedImageError

pillow_heif.register_heif_opener()

# Photos beyond this many pixels are refused as likely decompression bombs; 200 MP is
# above any camera's output (a 100 MP medium-format sensor) yet far below what would
# exhaust a laptop's memory.
MAX_PIXELS = 200_000_000
Image.MAX_IMAGE_PIXELS = MAX_PIXELS

ORIENTATION_TAG = 0x0112
WRITE_FORMATS = {
    ".jpg": "JPEG", ".jpeg": "JPEG", ".jfif": "JPEG", ".jpe": "JPEG", ".gif": "GIF", ".png": "PNG", ".webp": "WEBP", ".tif": "TIFF", ".tiff": "TIFF",
    ".heic": "HEIF", ".heif": "HEIF", ".bmp": "BMP",
}


class ImageError(ValueError):
    """A photo that cannot be read or written; the message says why."""


@dataclass
class Photo:
    pixels: np.ndarray  # upright; (H, W) gray, (H, W, 3) RGB or (H, W, 4) RGBA; uint8 or uint16
    icc_profile: bytes | None
    format: str


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
        return np.asarray(image.convert("I;16")).astype(np.uint16)
    if mode == "I":
        return np.clip(np.asarray(image), 0, 65535).astype(np.uint16)
    if mode in ("1", "L", "F"):
        return np.asarray(image.convert("L"))
    has_alpha = mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in image.info
    return np.asarray(image.convert("RGBA" if has_alpha else "RGB"))


def _cmyk_to_rgb(image: Image.Image, icc: bytes | None) -> Image.Image:
    """Print-ready CMYK photos become sRGB through their own profile where they carry one
    (a plain conversion turns their colours muddy). The CMYK profile itself is then dropped
    by _fitting_profile: it cannot describe RGB pixels."""
    if icc:
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            return ImageCms.profileToProfile(image, source, ImageCms.createProfile("sRGB"), outputMode="RGB")
        except (ImageCms.PyCMSError, OSError):
            pass  # an unreadable profile: fall back to the plain conversion
    return image.convert("RGB")


def _fitting_profile(icc: bytes | None, pixels: np.ndarray) -> bytes | None:
    """The ICC profile, if it describes pixels like these: a profile for another colour space
    (bytes 16-19 of its header) would make viewers show wrong colours or reject the file."""
    if not icc or len(icc) < 20:
        return None
    return icc if icc[16:20] == (b"GRAY" if pixels.ndim == 2 else b"RGB ") else None


def _open(path: Path) -> Image.Image:
    with warnings.catch_warnings():
        # Pillow only warns between MAX_IMAGE_PIXELS and twice that; veil refuses both.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        return Image.open(path)


def read_photo(path: Path) -> Photo:
    try:
        with _open(path) as image:
            if getattr(image, "n_frames", 1) > 1 and image.format not in ("MPO", "HEIF", "TIFF"):
                raise ImageError(f"animated {image.format} is not supported")
            image.seek(0)
            # Before getexif(): reading a PNG's EXIF loads the image and clears the tile list.
            sixteen_bit = _is_16bit_colour(image)
            orientation = image.getexif().get(ORIENTATION_TAG, 1)
            icc = image.info.get("icc_profile")
            fmt = image.format or "unknown"
            if sixteen_bit:
                decoded = cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_UNCHANGED)
                if decoded is None:
                    raise ImageError("cannot decode 16-bit image")
                code = cv2.COLOR_BGRA2RGBA if decoded.shape[2] == 4 else cv2.COLOR_BGR2RGB
                pixels = cv2.cvtColor(decoded, code)
            else:
                image.load()
                if image.mode == "CMYK":
                    image = _cmyk_to_rgb(image, icc)
                pixels = _pillow_pixels(image)
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(f"larger than {MAX_PIXELS // 1_000_000} megapixels (possible decompression bomb)") from None
    except UnidentifiedImageError:
        raise ImageError("not a recognised image format") from None
    except (OSError, SyntaxError, ValueError) as error:
        raise ImageError(f"cannot decode image ({error})") from None
    return Photo(_orient(pixels, int(orientation) if str(orientation).isdigit() else 1), _fitting_profile(icc, pixels), fmt)


def encode_photo(photo: Photo, suffix: str) -> bytes:
    """Encode pixels into a new file of the format `suffix` names, without metadata."""
    fmt = WRITE_FORMATS.get(suffix.lower())
    if fmt is None:
        raise ImageError(f"cannot write {suffix or 'files without a suffix'}; use one of {', '.join(sorted(WRITE_FORMATS))}")
    pixels = photo.pixels
    if pixels.dtype == np.uint16 and fmt in ("PNG", "TIFF"):
        if pixels.ndim == 3:
            code = cv2.COLOR_RGBA2BGRA if pixels.shape[2] == 4 else cv2.COLOR_RGB2BGR
            pixels = cv2.cvtColor(pixels, code)
        ok, data = cv2.imencode(".png" if fmt == "PNG" else ".tiff", pixels)
        if not ok:
            raise ImageError("cannot encode 16-bit image")
        return data.tobytes()
    if pixels.dtype == np.uint16:  # formats without 16-bit support
        pixels = (pixels >> 8).astype(np.uint8)
    if fmt in ("JPEG", "BMP") and pixels.ndim == 3 and pixels.shape[2] == 4:
        pixels = pixels[:, :, :3]  # these formats have no alpha channel
    image = Image.fromarray(np.ascontiguousarray(pixels))
    options: dict = {}
    if photo.icc_profile and fmt != "BMP":
        options["icc_profile"] = photo.icc_profile
    if fmt in ("JPEG", "WEBP", "HEIF"):
        options["quality"] = 95
    if fmt == "HEIF" and "x265" in str(pillow_heif.libheif_info().get("HEIF")):
        # x265's default preset takes about 20 s for a 12 MP photo; "ultrafast" takes a sixth of
        # that, and at quality 95 gives the same file size and quality (measured on IMG_5195.HEIC).
        options["enc_params"] = {"preset": "ultrafast"}
    if fmt == "TIFF":
        options["compression"] = "tiff_lzw"
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()
