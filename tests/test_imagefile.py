"""Reading photos upright at full depth, and writing them with nothing that identifies."""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import threading
import warnings
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageCms, ImageOps

from veil.imagefile import UNHEARD, ImageError, Photo, holds_profile, read_photo, to_srgb, write_photo
from veil.photo import plan_photo, render_photo
from veil.plan import MediaPlan, RenderSettings
from photo_support import (GROUP, OBAMA, P3_HEIC, SAMSUNG, TWO_PEOPLE, assert_no_metadata, damaged_jpeg, gray_profile,
                           negative_profile, plain_tiff, rgb_of, share_near, veil, veil_subprocess)


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb_png(width: int, height: int) -> bytes:
    """A valid 1-bit PNG of width x height zeros: a few hundred kilobytes that decode to gigabytes."""
    row = b"\0" * (1 + (width + 7) // 8)
    packer = zlib.compressobj(9)
    idat = b"".join(packer.compress(row * 1000) for _ in range(height // 1000))
    idat += packer.compress(row * (height % 1000)) + packer.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def with_exif_orientation(png: bytes, orientation: int) -> bytes:
    """Insert an eXIf chunk carrying an orientation tag after the PNG header."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    header_end = 8 + 25  # signature + IHDR chunk
    return png[:header_end] + png_chunk(b"eXIf", exif.tobytes()[6:]) + png[header_end:]


@pytest.mark.parametrize("size", [(30000, 30000), (15000, 15000)])
def test_decompression_bomb_is_refused_before_decoding(tmp_path, size):
    path = tmp_path / "bomb.png"
    path.write_bytes(bomb_png(*size))
    assert path.stat().st_size < 2_000_000
    with pytest.raises(ImageError, match="megapixels"):
        read_photo(path)


def test_a_decompression_bomb_is_refused_whatever_the_warnings_filters(tmp_path, monkeypatch):
    # Between MAX_PIXELS and twice that, Pillow's refusal is a warning that veil's filter makes an
    # error. Warnings filters are the process's: another thread's catch_warnings (a library caller
    # reading photos in threads, or veil's own EXIF reads) could set it aside, and the bomb decoded.
    path = tmp_path / "bomb.png"
    path.write_bytes(bomb_png(15000, 15000))
    monkeypatch.setattr(warnings, "simplefilter", lambda *args, **kwargs: None)  # veil's filter never set
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore")
        with pytest.raises(ImageError, match="megapixels"):
            read_photo(path)


def test_orientations_are_applied_like_a_viewer_does(shared_data):
    for path in sorted((shared_data / "metadata/exif-samples/jpg/orientation").glob("*.jpg")):
        with Image.open(path) as image:
            expected = np.asarray(ImageOps.exif_transpose(image).convert("RGB"))
        assert np.array_equal(read_photo(path).pixels, expected), path.name


@pytest.mark.parametrize("channels", [1, 3, 4])
@pytest.mark.parametrize("suffix", [".png", ".tiff"])
def test_16_bit_files_keep_every_bit(shared_data, tmp_path, channels, suffix):
    rgb = read_photo(shared_data / TWO_PEOPLE).pixels[:200, :300]
    noise = np.random.default_rng(2).integers(0, 256, rgb.shape, dtype=np.uint16)
    deep = rgb.astype(np.uint16) * 256 + noise
    if channels == 1:
        deep = deep[:, :, 1]
    elif channels == 4:
        deep = np.dstack([deep, np.linspace(0, 65535, 300, dtype=np.uint16)[None].repeat(200, 0)])
    path = tmp_path / f"deep{suffix}"
    codes = {1: None, 3: cv2.COLOR_RGB2BGR, 4: cv2.COLOR_RGBA2BGRA}
    cv2.imwrite(str(path), deep if channels == 1 else cv2.cvtColor(deep, codes[channels]))

    photo = read_photo(path)
    assert photo.pixels.dtype == np.uint16, "reduced to 8 bits on reading"
    assert np.array_equal(photo.pixels, deep)
    written = tmp_path / f"out{suffix}"
    write_photo(photo, written)
    assert np.array_equal(read_photo(written).pixels, deep), "changed on writing"


@pytest.mark.parametrize("fmt", ["JPEG", "WEBP"])
def test_an_orientation_only_xmp_states_is_not_applied(shared_data, tmp_path, fmt: str):
    """Upright pixels, no EXIF, and an XMP packet that says tiff:Orientation 6: Pillow's getexif()
    takes XMP's word when the EXIF has none, and the photo came out turned a quarter, where
    browsers and the EXIF-reading viewers show it upright (as OpenCV reads it)."""
    rgb = read_photo(shared_data / TWO_PEOPLE).pixels
    xmp = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
           b'<rdf:Description rdf:about="" xmlns:tiff="http://ns.adobe.com/tiff/1.0/"><tiff:Orientation>6'
           b'</tiff:Orientation></rdf:Description></rdf:RDF></x:xmpmeta>')
    path = tmp_path / f"xmp.{fmt.lower()}"
    Image.fromarray(rgb).save(path, fmt, quality=95, xmp=xmp)
    with Image.open(path) as image:
        assert "xmp" in image.info and image.getexif().get(0x0112) == 6  # Pillow's reading
        assert not image.info.get("exif")
    assert read_photo(path).pixels.shape == rgb.shape


def test_16_bit_png_orientation_is_applied_once(shared_data, tmp_path):
    rgb = read_photo(shared_data / TWO_PEOPLE).pixels[:200, :300]
    deep = rgb.astype(np.uint16) * 257
    ok, data = cv2.imencode(".png", cv2.cvtColor(deep, cv2.COLOR_RGB2BGR))
    path = tmp_path / "turned.png"
    path.write_bytes(with_exif_orientation(data.tobytes(), 6))
    photo = read_photo(path)
    assert photo.pixels.dtype == np.uint16
    assert np.array_equal(photo.pixels, np.rot90(deep, -1)), "orientation 6 is a quarter turn clockwise"


@pytest.mark.parametrize(("orientation", "depth"), [(2, 8), (3, 8), (6, 8), (8, 8), (2, 16), (3, 16), (6, 16)])
def test_tiff_orientation_is_applied_once(shared_data, tmp_path, orientation: int, depth: int):
    # Pillow (8 bits) and OpenCV (16) turn a TIFF upright as they read it: veil turned such photos
    # a second time. OpenCV cannot read a 16-bit TIFF turned a quarter, and Pillow would read it as
    # 8-bit: refused, not read wrong.
    upright = read_photo(shared_data / TWO_PEOPLE).pixels[:200, :300]
    stored = {2: np.fliplr(upright), 3: np.rot90(upright, 2), 6: np.rot90(upright, 1), 8: np.rot90(upright, -1)}
    pixels = stored[orientation].astype(np.uint16) * 257 if depth == 16 else stored[orientation]
    path = tmp_path / "turned.tif"
    exif = Image.Exif()
    exif[0x0112] = orientation
    if depth == 8:
        Image.fromarray(np.ascontiguousarray(pixels)).save(path, exif=exif)
    else:
        cv2.imwrite(str(path), cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_TIFF_COMPRESSION, 1])
        with Image.open(path) as written:  # the same 16-bit pixels, with the tag added
            assert written.getexif().get(0x0112) is None
        tagged = tmp_path / "tagged.tif"
        _tiff_with_orientation(path, tagged, orientation)
        path = tagged
    if depth == 16 and orientation > 4:  # (said as such: "cannot decode 16-bit image" told nothing)
        with pytest.raises(ImageError, match=f"16-bit TIFF stored turned a quarter \\(its orientation tag says {orientation}\\)"):
            read_photo(path)
        return
    photo = read_photo(path)
    expected = upright.astype(np.uint16) * 257 if depth == 16 else upright
    assert np.array_equal(photo.pixels, expected), f"orientation {orientation} not as a viewer shows it"



def test_libtiffs_own_lines_are_not_printed_beside_veils(shared_data, tmp_path):
    """A TIFF whose PlanarConfiguration tag holds 26: libtiff printed its own line on stderr
    ("_TIFFVSetField: tempfile.tif: Bad value 26 ...", naming no file of the user's), -q or not."""
    path = tmp_path / "planar.tif"
    Image.open(shared_data / TWO_PEOPLE).convert("RGB").save(path, compression="tiff_adobe_deflate")
    data = bytearray(path.read_bytes())
    directory = struct.unpack("<I", data[4:8])[0]
    for entry in range(directory + 2, directory + 2 + 12 * struct.unpack("<H", data[directory:directory + 2])[0], 12):
        if struct.unpack("<H", data[entry:entry + 2])[0] == 284:  # PlanarConfiguration
            data[entry + 8:entry + 10] = struct.pack("<H", 26)
    path.write_bytes(data)
    run = veil_subprocess(path, "-o", tmp_path / "out.jpg", "-q")
    assert run.returncode == 1 and run.stderr.splitlines()[0].startswith(f"veil: {path}: cannot decode"), run.stderr
    assert "tempfile" not in run.stderr and "_TIFFVSetField" not in run.stderr, run.stderr


def stored_turned(upright: np.ndarray, orientation: int) -> np.ndarray:
    """The pixels a file tagged `orientation` (5-8) stores, for a viewer to show `upright`."""
    turn = {5: np.transpose(upright, (1, 0, *range(2, upright.ndim))), 6: np.rot90(upright, 1),
            7: np.rot90(np.fliplr(upright), -1), 8: np.rot90(upright, -1)}[orientation]
    return np.ascontiguousarray(turn)


@pytest.mark.parametrize("orientation", [5, 6, 7, 8])
@pytest.mark.parametrize("mode", ["L", "P", "RGBA", "CMYK", "I;16"])
def test_an_uncompressed_tiff_turned_a_quarter_is_read_upright(shared_data, tmp_path, mode: str, orientation: int):
    # Pillow mapped such a file's strip from disk at the upright size: the photo came out sheared,
    # its face not found and every pixel of it recoverable from the output.
    upright = read_photo(shared_data / TWO_PEOPLE).pixels[:200, :300]
    picture = Image.fromarray(upright)
    picture = {"L": picture.convert("L"), "P": picture.quantize(64), "RGBA": picture.convert("RGBA"),
               "CMYK": picture.convert("CMYK"), "I;16": picture.convert("L")}[mode]
    if mode == "I;16":  # every bit distinct, so that a wrong stride cannot pass unnoticed
        picture = Image.fromarray(np.asarray(picture).astype(np.uint16) * 257 + 3)
    stored = stored_turned(np.asarray(picture), orientation)
    turned = Image.fromarray(stored, mode="CMYK") if mode == "CMYK" else Image.fromarray(stored)
    if mode == "P":
        turned.putpalette(picture.getpalette())  # an L image with a palette is a P image
    exif = Image.Exif()
    exif[0x0112] = orientation
    raw, packed = tmp_path / "raw.tif", tmp_path / "lzw.tif"
    turned.save(raw, exif=exif)
    turned.save(packed, exif=exif, compression="tiff_lzw")
    with Image.open(raw) as image:
        assert image.info.get("compression") == "raw"

    photo = read_photo(raw)
    assert photo.pixels.shape[:2] == (200, 300), "not turned upright"
    assert np.array_equal(photo.pixels, read_photo(packed).pixels), "not the picture the compressed copy holds"
    if mode in ("L", "I;16"):
        assert np.array_equal(photo.pixels, np.asarray(picture))


def test_pixels_not_laid_out_as_the_file_says_are_refused(shared_data, tmp_path, monkeypatch):
    # The guard behind the fix above: the decoder as it was (the file opened by name) gives a
    # sheared picture of another shape, which is refused rather than planned and written.
    upright = np.asarray(Image.fromarray(read_photo(shared_data / TWO_PEOPLE).pixels[:200, :300]).convert("L"))
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "raw.tif"
    Image.fromarray(stored_turned(upright, 6)).save(path, exif=exif)
    monkeypatch.setattr("veil.imagefile._open", Image.open)
    with pytest.raises(ImageError, match=r"cannot decode image \(decoded 200x300, the file says 300x200\)"):
        read_photo(path)


def _tiff_with_orientation(source: Path, target: Path, orientation: int) -> None:
    """`source` (a little-endian TIFF) with an Orientation entry added to its first directory."""
    data = bytearray(source.read_bytes())
    assert data[:2] == b"II"
    ifd = struct.unpack_from("<I", data, 4)[0]
    count = struct.unpack_from("<H", data, ifd)[0]
    entries = [bytes(data[ifd + 2 + 12 * i: ifd + 14 + 12 * i]) for i in range(count)]
    entries.append(struct.pack("<HHII", 0x0112, 3, 1, orientation))
    entries.sort(key=lambda e: struct.unpack_from("<H", e)[0])
    following = struct.unpack_from("<I", data, ifd + 2 + 12 * count)[0]
    # The new directory at the end of the file; the header points to it.
    directory = struct.pack("<H", len(entries)) + b"".join(entries) + struct.pack("<I", following)
    at = len(data) + len(data) % 2
    data += b"\0" * (at - len(data)) + directory
    struct.pack_into("<I", data, 4, at)
    target.write_bytes(bytes(data))


def test_a_truncated_png_is_refused_in_one_line(shared_data, tmp_path):
    # The libpng inside OpenCV printed "libpng error: Read Error" before veil's line.
    rgb = read_photo(shared_data / TWO_PEOPLE).pixels
    for depth, pixels in ((8, rgb), (16, rgb.astype(np.uint16) * 257)):
        ok, data = cv2.imencode(".png", cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR))
        path = tmp_path / f"cut{depth}.png"
        path.write_bytes(data.tobytes()[: len(data) // 2])
        run = veil_subprocess(path, "-o", tmp_path / f"out{depth}.png")
        assert run.returncode == 1 and not (tmp_path / f"out{depth}.png").exists()
        lines = run.stderr.strip().splitlines()
        assert len(lines) == 2 and "truncated" in lines[0] and str(path.name) in lines[0], run.stderr


def test_rgba_and_grayscale_are_kept(shared_data, tmp_path):
    rgb = read_photo(shared_data / TWO_PEOPLE).pixels
    alpha = np.tile(np.linspace(0, 255, rgb.shape[1]).astype(np.uint8), (rgb.shape[0], 1))
    rgba = np.dstack([rgb, alpha])
    for pixels, mode in ((rgba, "RGBA"), (rgb[:, :, 0], "L")):
        path = tmp_path / f"{mode}.png"
        write_photo(Photo(pixels, None, "PNG"), path)
        with Image.open(path) as image:
            assert image.mode == mode
        assert np.array_equal(read_photo(path).pixels, pixels)
    # Formats without alpha drop it rather than fail.
    jpeg = tmp_path / "flat.jpg"
    write_photo(Photo(rgba, None, "PNG"), jpeg)
    with Image.open(jpeg) as image:
        assert image.mode == "RGB"


def test_a_lossless_webp_is_written_losslessly_and_a_lossy_one_lossy(shared_data, tmp_path):
    rgb = read_photo(shared_data / TWO_PEOPLE).pixels
    for lossless in (True, False):
        source, output = tmp_path / f"in-{lossless}.webp", tmp_path / f"out-{lossless}.webp"
        Image.fromarray(rgb).save(source, lossless=lossless, quality=90)
        assert veil(source, "-o", output).exit_code == 0
        redacted = read_photo(output).pixels
        assert output.read_bytes()[12:16] == (b"VP8L" if lossless else b"VP8 ")
        if lossless:  # away from the faces, every pixel as it was
            unchanged = np.all(redacted == rgb, axis=2)
            assert unchanged.mean() > 0.5 and not unchanged.all()


def test_palette_png_with_transparency_reads_as_rgba(shared_data, tmp_path):
    with Image.open(shared_data / TWO_PEOPLE) as image:
        paletted = image.convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
    path = tmp_path / "paletted.png"
    paletted.save(path, transparency=0)
    pixels = read_photo(path).pixels
    assert pixels.shape[2] == 4
    assert set(np.unique(pixels[:, :, 3])) <= {0, 255} and (pixels[:, :, 3] == 0).any()
    # A grey PNG with a transparent level too (it was read, and written, opaque).
    with Image.open(shared_data / TWO_PEOPLE) as image:
        image.convert("L").save(path, transparency=16)
    pixels = read_photo(path).pixels
    assert pixels.shape[2] == 4 and not pixels[:, :, 3].all() and pixels[:, :, 3].any()
    # And in 16 bits: the grey one was read opaque, the RGB one refused ("cannot decode").
    with Image.open(shared_data / TWO_PEOPLE) as image:
        grey = np.asarray(image.convert("L"), dtype=np.uint16) * 257
    for colour_type, values, key in ((0, grey, 16 * 257), (2, np.dstack([grey, grey // 2, grey // 3]),
                                                            (16 * 257, 8 * 257, 16 * 257 // 3))):
        path.write_bytes(sixteen_bit_png(values, colour_type, struct.pack(">3H" if colour_type else ">H", *np.atleast_1d(key))))
        pixels = read_photo(path).pixels
        assert pixels.dtype == np.uint16 and pixels.shape[2] == 4
        assert np.array_equal(pixels[:, :, 3] == 0, grey == 16 * 257), colour_type
        out = tmp_path / "written.png"
        write_photo(Photo(pixels, None, "PNG", 0), out)
        assert np.array_equal(read_photo(out).pixels, pixels)


def sixteen_bit_png(values: np.ndarray, colour_type: int, transparent: bytes) -> bytes:
    """A 16-bit grey (colour type 0) or RGB (2) PNG with a tRNS chunk, which Pillow cannot write."""
    height, width = values.shape[:2]
    rows = values.astype(">u2").reshape(height, -1)
    idat = zlib.compress(b"".join(b"\0" + row.tobytes() for row in rows))
    ihdr = struct.pack(">IIBBBBB", width, height, 16, colour_type, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"tRNS", transparent)
            + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b""))


def test_pages_beside_the_photo_are_named_as_left_out(shared_data, tmp_path):
    """A TIFF's other pages are not written: the user is told, not left to find out."""
    import json

    photo = Image.open(shared_data / TWO_PEOPLE).convert("RGB")
    photo.save(tmp_path / "pages.tiff", save_all=True, append_images=[photo.resize((300, 200))] * 2)
    result = veil(tmp_path / "pages.tiff", "--output-dir", tmp_path / "out", "--json")
    assert result.exit_code == 0, result.output
    notes = json.loads(result.stdout)["results"][0]["notes"]
    assert notes == ["the file holds 3 images (pages, a burst, a second view): only the one viewers show was "
                     "redacted and written (2 left out)"]
    with Image.open(tmp_path / "out" / "pages.tiff") as written:
        assert getattr(written, "n_frames", 1) == 1 and written.size == photo.size


def test_an_icon_s_other_sizes_are_named_as_left_out(shared_data, tmp_path):
    # An icon file holds the picture at several sizes; Pillow reads the largest and counts the
    # others as sizes, not frames: the output left them out without a word.
    icon = tmp_path / "face.ico"
    Image.open(shared_data / TWO_PEOPLE).save(icon, sizes=[(256, 256), (64, 64), (32, 32)])
    photo = read_photo(icon)
    assert photo.pixels.shape[1] == 256 and photo.others == 2


def test_a_motion_photo_s_video_is_named_as_left_out(shared_data, tmp_path):
    """A phone's motion photo is a JPEG with an MP4 after its image: the still is redacted, the
    video (its faces unsearched) never written, and the user is told (it went unsaid)."""
    import json

    import pillow_heif

    clip = (shared_data / "videos" / "youtube_faces" / "Aaron_Guiel5.mp4").read_bytes()
    assert clip[4:8] == b"ftyp"
    pillow_heif.register_heif_opener()
    Image.open(shared_data / TWO_PEOPLE).save(tmp_path / "still.heic")
    for name, still in (("motion.jpg", (shared_data / TWO_PEOPLE).read_bytes()),
                        ("motion.heic", (tmp_path / "still.heic").read_bytes())):
        (tmp_path / name).write_bytes(still + clip)
        result = veil(tmp_path / name, "--output-dir", tmp_path / "out", "--json")
        assert result.exit_code == 0, result.output
        notes = json.loads(result.stdout)["results"][0]["notes"]
        assert notes == ["the photo carries a short video after it (a motion photo): it was left out, the still was "
                         "redacted and written"], name
        assert b"moov" not in (tmp_path / "out" / name).read_bytes()
    plain = veil(shared_data / TWO_PEOPLE, "--output-dir", tmp_path / "plain", "--json")
    assert json.loads(plain.stdout)["results"][0]["notes"] == []


def test_a_heic_whose_primary_image_is_not_its_first_is_read_as_viewers_show_it(shared_data, tmp_path):
    """A HEIF file can hold several images (a burst, an edit beside the original); the photo is
    the one the file names primary, not necessarily the first stored."""
    import pillow_heif

    photo = Image.open(shared_data / TWO_PEOPLE).convert("RGB")
    other = photo.resize((200, 120))
    heif = pillow_heif.from_pillow(other)
    heif.add_from_pillow(photo)
    heif.save(tmp_path / "two.heic", primary_index=1, quality=90)
    assert read_photo(tmp_path / "two.heic").pixels.shape == (photo.height, photo.width, 3)


# sRGB's linear light to Display P3's (D65), as published.
SRGB_TO_P3 = np.array([[0.8225, 0.1774, 0.0], [0.0332, 0.9669, 0.0], [0.0171, 0.0724, 0.9108]])


def p3_values(srgb: np.ndarray) -> np.ndarray:
    """8-bit sRGB colours as Display P3 values (sRGB's curve, P3's primaries) showing the same colours."""
    light = srgb / 255.0
    light = np.where(light <= 0.04045, light / 12.92, ((light + 0.055) / 1.055) ** 2.4) @ SRGB_TO_P3.T
    coded = np.where(light <= 0.0031308, light * 12.92, 1.055 * np.clip(light, 0, 1) ** (1 / 2.4) - 0.055)
    return np.rint(coded * 255).astype(np.uint8)


def with_nclx_primaries(data: bytes, primaries: int) -> bytes:
    """An AVIF file (Pillow writes BT.709's) whose colour box is made to name other primaries."""
    at = data.index(b"colrnclx") + 8
    return data[:at] + primaries.to_bytes(2, "big") + data[at + 2:]


@pytest.mark.parametrize("suffix, bits", [(".heic", 8), (".heic", 10), (".avif", 8)])
def test_a_heif_or_avif_in_display_p3_is_converted_to_srgb(tmp_path, suffix, bits):
    # Its colour box (nclx, not an ICC profile) names Display P3: the values were kept and written
    # as sRGB's, every saturated colour dulled (a P3 red shown orange-red).
    import pillow_heif

    bars = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 200, 0], [200, 120, 90], [128, 128, 128]], np.uint8)
    srgb = np.repeat(np.repeat(bars[None], 32, axis=0), 32, axis=1)
    values = p3_values(srgb)
    path = tmp_path / f"p3{suffix}"
    if suffix == ".heic":
        heif = (pillow_heif.from_pillow(Image.fromarray(values)) if bits == 8 else
                pillow_heif.from_bytes(mode="RGB;16", size=(values.shape[1], values.shape[0]),
                                       data=(values.astype(np.uint16) * 257).tobytes()))
        heif.save(path, quality=-1, chroma=444, color_primaries=12, transfer_characteristics=13, matrix_coefficients=6)
    else:
        encoded = io.BytesIO()
        Image.fromarray(values).save(encoded, "AVIF", quality=100, subsampling="4:4:4")
        path.write_bytes(with_nclx_primaries(encoded.getvalue(), 12))
    pixels = read_photo(path).pixels
    pixels = (pixels >> 8 if pixels.dtype == np.uint16 else pixels).astype(int)
    assert np.abs(pixels[4:-4, 4:-4] - srgb[4:-4, 4:-4].astype(int)).max() <= 8


@pytest.mark.parametrize("mode", ["RGB;16", "L;16"])
def test_a_10_bit_heif_keeps_its_depth(tmp_path, mode):
    # Pillow's HEIF reader gives 8 bits: a 10-bit photo (a camera's or a phone's HEIF) was written
    # back as an 8-bit one, its gradations cut to a quarter, without a word.
    import pillow_heif

    ramp = np.tile((np.arange(1024, dtype=np.uint16) << 6)[None], (64, 1))  # 10-bit levels on the 16-bit scale
    values = ramp if mode == "L;16" else np.dstack([ramp, ramp[:, ::-1], ramp])
    source = tmp_path / "ten.heic"
    pillow_heif.from_bytes(mode=mode, size=(1024, 64), data=values.tobytes()).save(source, quality=-1, chroma=444)
    photo = read_photo(source)
    assert photo.pixels.dtype == np.uint16 and photo.pixels.shape == values.shape
    assert len(np.unique(photo.pixels)) > 900
    out = tmp_path / "out.heic"
    write_photo(photo, out)
    written = pillow_heif.open_heif(out, convert_hdr_to_8bit=False)
    assert written.info["bit_depth"] == 10
    kept = np.asarray(written).astype(int)
    assert len(np.unique(kept)) > 512  # twice what 8 bits hold (veil writes at quality 95: some levels merge)
    assert np.abs(kept - values.astype(int)).mean() < 4 << 6  # within a few 10-bit levels


@pytest.mark.parametrize(
    "name",
    [
        "exif-samples/heic/IMG_5195.HEIC",
        "metadata-extractor-images/heic/IMG_1034.heic",
        "metadata-extractor-images/heic/Issue 263 dotnet.heic",
        "metadata-extractor-images/heic/exif-at-eof.heic",
    ],
)
def test_heic_reads_and_writes_without_metadata(shared_data, tmp_path, name):
    path = shared_data / "metadata" / name
    with Image.open(path) as image:
        assert image.getexif().get_ifd(0x8825), "test input should carry GPS"
        size = image.size
    photo = read_photo(path)
    assert photo.pixels.shape == (size[1], size[0], 3)
    assert photo.icc_profile, "the colour profile must be read"
    # Writing a full 12 MP HEIC takes seconds; the writer's handling of metadata does not depend on size.
    crop = Photo(np.ascontiguousarray(photo.pixels[:256, :384]), photo.icc_profile, photo.format)
    out = tmp_path / "out.heic"
    write_photo(crop, out)
    with Image.open(out) as image:
        assert image.format == "HEIF" and image.size == (384, 256)
        assert len(image.getexif()) == 0
        assert not image.info.get("exif") and not image.info.get("xmp") and not image.info.get("thumbnails")
        assert image.info.get("icc_profile") == photo.icc_profile


def test_camera_jpegs_are_written_without_any_metadata(shared_data, tmp_path):
    """Full-size phone and camera files (maker notes, GPS, thumbnails, MPO extras) through the writer."""
    names = sorted((shared_data / "metadata/metadata-extractor-images/jpg").glob("*.jpg"))
    names += sorted((shared_data / "metadata/exif-samples/jpg").rglob("*.jpg"))
    assert len(names) > 20
    for path in names:
        photo = read_photo(path)
        out = tmp_path / path.name
        write_photo(photo, out)
        assert_no_metadata(out, photo.icc_profile)
        with Image.open(out) as image:
            assert (image.height, image.width) == photo.pixels.shape[:2]


def test_animated_png_is_refused(shared_data, tmp_path):
    with Image.open(shared_data / TWO_PEOPLE) as image:
        frames = [image.convert("RGB"), image.convert("RGB").transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
    path = tmp_path / "animated.png"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    with pytest.raises(ImageError, match="animated PNG"):
        read_photo(path)


def test_a_gif_cut_after_its_header_is_said_to_be_damaged_not_a_video(shared_data, tmp_path):
    """Pillow cannot tell what a GIF cut after its header is, and FFmpeg's GIF reader took it for a
    video: refused as "a .png file cannot hold a video", a reason about the output."""
    from typer.testing import CliRunner

    from veil.command import app
    whole = io.BytesIO()
    with Image.open(shared_data / TWO_PEOPLE) as image:
        image.convert("RGB").save(whole, "GIF")
    cut = tmp_path / "cut.gif"
    data = whole.getvalue()
    palette = 3 << ((data[10] & 7) + 1) if data[10] & 0x80 else 0
    cut.write_bytes(data[:13 + palette])  # its header and colour table alone
    for suffix in (".gif", ".png"):
        result = CliRunner().invoke(app, [str(cut), "-o", str(tmp_path / f"out{suffix}")])
        assert result.exit_code == 1, result.output
        assert "damaged or cut short before its picture" in result.output and "video" not in result.output
        assert not (tmp_path / f"out{suffix}").exists()


def test_corrupt_and_truncated_files_raise_clear_errors(shared_data, tmp_path):
    garbage = tmp_path / "garbage.jpg"
    garbage.write_bytes(np.random.default_rng(3).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(ImageError, match="not a recognised image format"):
        read_photo(garbage)
    data = (shared_data / TWO_PEOPLE).read_bytes()
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match="truncated"):
        read_photo(truncated)
    # Whole but for its end marker (some programs never write it): it was refused as truncated.
    assert data.endswith(b"\xff\xd9")
    unended = tmp_path / "unended.jpg"
    unended.write_bytes(data[:-2])
    photo = read_photo(unended)
    assert np.array_equal(photo.pixels, read_photo(shared_data / TWO_PEOPLE).pixels) and not photo.decoder_messages
    truncated.write_bytes(data[:-20])  # its data cut short too: still refused
    with pytest.raises(ImageError, match="truncated"):
        read_photo(truncated)
    # A progressive JPEG cut between its scans decodes without a word (blurred): refused.
    progressive = io.BytesIO()
    Image.open(shared_data / TWO_PEOPLE).save(progressive, "JPEG", progressive=True, quality=90)
    scans = [i for i in range(len(progressive.getvalue())) if progressive.getvalue()[i:i + 2] == b"\xff\xda"]
    truncated.write_bytes(progressive.getvalue()[:scans[2]])
    with pytest.raises(ImageError, match="truncated"):
        read_photo(truncated)
    # A TIFF or WebP cut short was refused as "not a photo, video or sound file veil can read".
    picture = Image.open(shared_data / TWO_PEOPLE)
    for name, options in (("cut.tif", {"compression": "tiff_lzw"}), ("cut.webp", {"lossless": True})):
        whole = io.BytesIO()
        picture.save(whole, name.split(".")[1].replace("tif", "TIFF").upper(), **options)
        (tmp_path / name).write_bytes(whole.getvalue()[:len(whole.getvalue()) * 7 // 10])
        run = veil_subprocess(tmp_path / name, "-o", tmp_path / f"out-{name}")
        assert run.returncode == 1 and "cannot decode image (" in run.stderr, run.stderr


def test_unknown_output_format_is_refused(tmp_path):
    with pytest.raises(ImageError, match="cannot write .xyz"):
        write_photo(Photo(np.zeros((8, 8, 3), np.uint8), None, "JPEG"), tmp_path / "out.xyz")


def test_cmyk_photo_becomes_rgb_and_a_profile_for_another_colour_space_is_dropped(tmp_path):
    from PIL import ImageCms

    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    cmyk = tmp_path / "print.jpg"
    Image.new("CMYK", (40, 30), (0, 255, 255, 0)).save(cmyk)  # pure red in print colours
    photo = read_photo(cmyk)
    assert photo.pixels.shape == (30, 40, 3) and photo.icc_profile is None
    assert tuple(photo.pixels[0, 0]) == (255, 0, 0)
    out = tmp_path / "out.jpg"
    write_photo(photo, out)
    with Image.open(out) as image:
        assert image.mode == "RGB" and not image.info.get("icc_profile")
    # A grey photo tagged with an RGB profile: viewers would misread it, so the profile goes.
    grey = tmp_path / "grey.jpg"
    Image.new("L", (40, 30), 128).save(grey, icc_profile=srgb)
    assert read_photo(grey).icc_profile is None
    # A profile the output is not written with is named among the metadata left out, as a fitting
    # one converted and dropped is: one for another colour space (here; a CMYK photo's own) was not.
    assert read_photo(grey).metadata == ("ICC colour profile (the pixels written as sRGB)",)
    rgb = tmp_path / "rgb.jpg"
    Image.new("RGB", (40, 30)).save(rgb, icc_profile=srgb)
    assert read_photo(rgb).icc_profile == srgb  # a fitting profile is kept
    assert read_photo(rgb).metadata == ()  # (named where it is not kept: photo.render_photo)


# --- colour profiles: converted to sRGB, the device's profile left out ------------------------

APPLE_JPEG = "metadata/exif-samples/jpg/orientation/landscape_6.jpg"  # Apple's "Generic RGB Profile", turned


def whole_photo_plan(path: Path) -> MediaPlan:
    """A plan that hides nothing: what is left to see is the colour handling alone."""
    height, width = read_photo(path).pixels.shape[:2]
    return MediaPlan(path=str(path), kind="image", width=width, height=height)


def srgb_reference(path: Path) -> tuple[np.ndarray, np.ndarray, bytes]:
    """The upright pixels as stored, the same converted to sRGB by LittleCMS, and the profile."""
    with Image.open(path) as image:
        upright = ImageOps.exif_transpose(image).convert("RGB")
        icc = image.info["icc_profile"]
    converted = ImageCms.profileToProfile(upright, ImageCms.ImageCmsProfile(io.BytesIO(icc)),
                                          ImageCms.createProfile("sRGB"), outputMode="RGB")
    return np.asarray(upright), np.asarray(converted), icc


@pytest.mark.parametrize("name", [P3_HEIC, APPLE_JPEG])
def test_maker_profile_is_converted_to_srgb_and_left_out(shared_data, tmp_path, name):
    source = shared_data / name
    stored, expected, icc = srgb_reference(source)
    assert b"Apple" in icc, "test input should carry an Apple profile"
    for suffix in (".png", source.suffix):
        out = tmp_path / f"out{suffix}"
        render_photo(whole_photo_plan(source), RenderSettings(), out)
        with Image.open(out) as image:
            assert "icc_profile" not in image.info, f"{out.name} carries a colour profile"
        assert b"Apple" not in out.read_bytes(), f"{out.name} names Apple"
    pixels = rgb_of(tmp_path / "out.png")
    assert np.array_equal(pixels, expected), "pixels not converted as the profile says"
    assert np.mean(np.any(pixels != stored, axis=-1)) > 0.1, "conversion left the stored values"


def jpeg2000_with_profile(pixels: np.ndarray, icc: bytes) -> bytes:
    """A JPEG 2000 file whose header's colour box holds an ICC profile (method 2), as Photoshop and
    macOS write one: Pillow writes a named colour space alone."""
    def boxes(data: bytes):
        at = 0
        while at < len(data):
            size, kind = struct.unpack(">I4s", data[at:at + 8])
            yield kind, data[at + 8:at + size]
            at += size

    def box(kind: bytes, content: bytes) -> bytes:
        return struct.pack(">I4s", len(content) + 8, kind) + content

    plain = io.BytesIO()
    Image.fromarray(pixels).save(plain, "JPEG2000", quality_mode="dB", quality_layers=[48])
    return b"".join(box(kind, b"".join(box(b"colr", bytes([2, 0, 0]) + icc) if inner == b"colr" else box(inner, part)
                                       for inner, part in boxes(content)) if kind == b"jp2h" else content)
                    for kind, content in boxes(plain.getvalue()))


@pytest.mark.parametrize("name, suffix", [(OBAMA, ".png"), (TWO_PEOPLE, ".png"), (TWO_PEOPLE, ".jp2")])
def test_a_photo_is_searched_in_the_colours_its_profile_shows(shared_data, tmp_path, name, suffix):
    """A photo stored as its negative, with a profile that shows it as it was: its faces were looked
    for in the negative and left visible (an attack on veil found 4 of 24 faces of 80 px and more
    so, the same in JPEG, PNG, WebP, TIFF, HEIC and AVIF; in JPEG 2000, whose profile Pillow does
    not read, 11 of 94 faces of 40 px and more). They are searched as viewers show them."""
    pixels = np.asarray(Image.open(shared_data / name).convert("RGB"))
    negative = tmp_path / f"negative{suffix}"
    if suffix == ".jp2":
        negative.write_bytes(jpeg2000_with_profile(255 - pixels, negative_profile()))
    else:
        Image.fromarray(255 - pixels).save(negative, icc_profile=negative_profile())
    faces = [r.boxes[0] for r in plan_photo(shared_data / name).regions]
    found = plan_photo(negative)
    assert len(found.regions) == len(faces) >= 1
    out = tmp_path / "out.png"
    render_photo(found, RenderSettings(color=(255, 0, 255)), out)
    shown = rgb_of(out)
    for box in faces:
        inner = shown[int(box.y0 + 0.3 * box.height):int(box.y1 - 0.3 * box.height),
                      int(box.x0 + 0.3 * box.width):int(box.x1 - 0.3 * box.width)]
        assert share_near(inner, (255, 0, 255), 8) > 0.95, box


def test_keep_icc_keeps_the_profile_and_the_stored_values(shared_data, tmp_path):
    source = shared_data / P3_HEIC
    stored, _, icc = srgb_reference(source)
    out = tmp_path / "out.png"
    render_photo(whole_photo_plan(source), RenderSettings(), out, keep_icc=True)
    with Image.open(out) as image:
        assert image.info.get("icc_profile") == icc, "profile not kept byte for byte"
    assert np.array_equal(rgb_of(out), stored)


def test_keep_icc_into_a_format_without_a_profile_converts_the_colours_and_says_so(shared_data, tmp_path):
    # A BMP (or a 16-bit TIFF) holds no profile: the stored P3 values were written without theirs,
    # and viewers showed them as sRGB, without a word.
    source = shared_data / P3_HEIC
    _, expected, _ = srgb_reference(source)
    run = veil_subprocess(source, "-o", tmp_path / "out.bmp", "--keep-icc", "-q")
    assert run.returncode == 0 and "--keep-icc: a .bmp file of these pixels holds no colour profile" in run.stderr
    render_photo(whole_photo_plan(source), RenderSettings(), tmp_path / "plain.bmp", keep_icc=True)
    assert np.abs(rgb_of(tmp_path / "plain.bmp").astype(int) - expected).max() <= 1
    sixteen_bit = np.zeros((2, 2, 3), np.uint16)
    assert not holds_profile(".tif", sixteen_bit) and holds_profile(".tif", sixteen_bit.astype(np.uint8))
    assert holds_profile(".png", sixteen_bit) and not holds_profile(".gif", sixteen_bit.astype(np.uint8))
    # The note is this render's: the plan saved by that run, rendered into a PNG, keeps the profile, unsaid.
    run = veil_subprocess(source, "-o", tmp_path / "out2.bmp", "--keep-icc", "--save-plan", tmp_path / "plan.json")
    assert run.returncode == 0
    run = veil_subprocess("--plan", tmp_path / "plan.json", "-o", tmp_path / "out.png", "--keep-icc", "-q")
    assert run.returncode == 0 and "--keep-icc" not in run.stderr, run.stderr


def test_grayscale_with_a_gray_profile_is_converted_and_stays_gray(shared_data, tmp_path):
    gray = read_photo(shared_data / TWO_PEOPLE).pixels[:, :, 1]
    icc = gray_profile(1.0)  # linear: mid-grey is much lighter in sRGB
    path = tmp_path / "gray.png"
    Image.fromarray(gray).save(path, icc_profile=icc)
    photo = read_photo(path)
    assert photo.icc_profile == icc
    transform = ImageCms.buildTransform(ImageCms.ImageCmsProfile(io.BytesIO(icc)), ImageCms.createProfile("sRGB"), "L", "RGB")
    expected = np.asarray(ImageCms.applyTransform(Image.fromarray(gray), transform))[:, :, 1]
    converted = to_srgb(photo)
    assert converted.icc_profile is None and converted.pixels.ndim == 2
    assert np.array_equal(converted.pixels, expected) and not np.array_equal(expected, gray)


@pytest.mark.parametrize("channels", [1, 3])
def test_16_bit_photos_are_converted_at_full_depth(shared_data, tmp_path, channels):
    rgb = read_photo(shared_data / TWO_PEOPLE).pixels[:200, :300]
    icc = gray_profile(1.0) if channels == 1 else srgb_reference(shared_data / P3_HEIC)[2]
    if channels == 1:
        rgb = rgb[:, :, 1]
    transform = ImageCms.buildTransform(ImageCms.ImageCmsProfile(io.BytesIO(icc)), ImageCms.createProfile("sRGB"),
                                        "L" if channels == 1 else "RGB", "RGB")
    expected = np.asarray(ImageCms.applyTransform(Image.fromarray(rgb), transform)).astype(np.float64)
    expected = expected[:, :, 1] if channels == 1 else expected
    converted = {}
    # 8-bit values widened exactly (as the 8-bit reference sees them), then with low bits set too.
    exact = rgb.astype(np.uint16) * 257
    noisy = exact + np.random.default_rng(4).integers(0, 257, rgb.shape, dtype=np.uint16) * (rgb < 255)
    for name, deep in (("exact", exact), ("noisy", noisy)):
        path = tmp_path / f"{name}.png"
        cv2.imwriteWithMetadata(str(path), deep if channels == 1 else cv2.cvtColor(deep, cv2.COLOR_RGB2BGR),
                                [cv2.IMAGE_METADATA_ICCP], [np.frombuffer(icc, np.uint8)])
        photo = read_photo(path)
        assert photo.pixels.dtype == np.uint16 and photo.icc_profile == icc
        converted[name] = to_srgb(photo).pixels
        assert converted[name].dtype == np.uint16
    error = np.abs(converted["exact"] / 257 - expected)
    assert error.max() <= 2.5 and error.mean() < 0.5, f"off by {error.max():.1f} levels (mean {error.mean():.2f})"
    assert np.abs(converted["exact"] / 257 - rgb).mean() > 2, "not converted"
    assert np.abs(converted["noisy"].astype(float) - converted["exact"]).mean() < 257, "low bits change colours"
    assert len(np.unique(converted["noisy"])) > 4 * len(np.unique(expected)), "16-bit gradations lost"


# --- AVIF ----------------------------------------------------------------------------------------


def test_avif_reads_and_writes_without_metadata(shared_data, tmp_path):
    with Image.open(shared_data / GROUP) as image:
        source = tmp_path / "group.avif"
        exif = Image.Exif()
        exif[0x010F] = "Maker"  # camera make: must not come through
        image.save(source, quality=90, exif=exif, icc_profile=srgb_reference(shared_data / P3_HEIC)[2])
    media = plan_photo(source)
    assert media.regions, "the group photo shows faces"
    out = tmp_path / "out.avif"
    render_photo(media, RenderSettings(color=(255, 255, 255)), out)
    with Image.open(out) as image:
        assert image.format == "AVIF" and (image.height, image.width) == (media.height, media.width)
    assert_no_metadata(out, None)
    pixels = rgb_of(out)
    for region in media.regions:
        box = region.boxes[0]
        centre = pixels[int(box.y0 + box.height * 0.4) : int(box.y0 + box.height * 0.6),
                        int(box.x0 + box.width * 0.4) : int(box.x0 + box.width * 0.6)]
        assert share_near(centre, (255, 255, 255), 24) >= 0.9, f"{region.id} not hidden"


def _two_faces(shared_data) -> tuple[np.ndarray, list]:
    """The photo with two faces, and their boxes as the detector finds them in it."""
    from veil.detect import detect_faces

    rgb = read_photo(shared_data / TWO_PEOPLE).pixels
    faces = [f for f in detect_faces(rgb) if f.score > 0.5]
    assert len(faces) == 2
    return rgb, faces


def _inner(pixels: np.ndarray, face) -> np.ndarray:
    w, h = face.x1 - face.x0, face.y1 - face.y0
    return pixels[int(face.y0 + 0.2 * h):int(face.y1 - 0.2 * h), int(face.x0 + 0.2 * w):int(face.x1 - 0.2 * w)]


def test_a_face_drawn_in_the_alpha_channel_alone_is_hidden(shared_data, tmp_path):
    # Ink on a transparent layer: black colour channels, the face in alpha alone. Viewers show
    # it over their background; the detector saw the colour channels only and found nothing.
    rgb, faces = _two_faces(shared_data)
    ink = np.dstack([np.zeros_like(rgb), 255 - rgb.mean(axis=2).astype(np.uint8)])
    source, out = tmp_path / "ink.png", tmp_path / "ink-out.png"
    Image.fromarray(ink, "RGBA").save(source)
    result = veil(source, "-o", out)
    assert result.exit_code == 0, result.output
    with Image.open(out) as image:
        over_white = Image.alpha_composite(Image.new("RGBA", image.size, "white"), image.convert("RGBA"))
    shown = np.asarray(over_white.convert("RGB"))
    for face in faces:
        assert share_near(_inner(shown, face), (0, 0, 0), 24) >= 0.95


def test_the_review_shows_a_face_drawn_in_the_alpha_channel_alone(shared_data):
    # The review showed the colour channels: black, and a box over nothing that a reviewer
    # could delete as a false alarm. It shows the photo over a checkerboard, as editors do.
    from veil.review.frames import as_displayed

    rgb, faces = _two_faces(shared_data)
    grey = rgb.mean(axis=2)
    ink = np.dstack([np.zeros_like(rgb), (255 - grey).astype(np.uint8)])
    shown = as_displayed(ink).mean(axis=2)
    for face in faces:
        seen, drawn = _inner(shown, face).ravel(), _inner(grey, face).ravel()
        assert np.corrcoef(seen, drawn)[0, 1] > 0.3, "the face is not visible on the review page"
    opaque = np.dstack([rgb, np.full(grey.shape, 255, np.uint8)])
    assert np.array_equal(as_displayed(opaque), rgb)


@pytest.mark.parametrize("offset, stray", [(0, None), (0x8000, None), (0x8000, 0), (0x8000, 65535)])
def test_8_bit_values_in_a_16_bit_file_are_seen_and_hidden(shared_data, tmp_path, offset, stray):
    # 256 levels of a 16-bit scale: at its foot, an exporter's slip (0-255 stored in 16 bits);
    # far up it, a thermal camera's narrow band, perhaps with a dead or a hot pixel. Black or one
    # flat grey to a detector reading the top 8 bits, or stretching from the lowest value to the
    # highest (the face was written back untouched), shown by any viewer that stretches levels.
    rgb, faces = _two_faces(shared_data)
    deep = rgb.astype(np.uint16) + offset
    if stray is not None:
        deep[0, 0] = stray
    source, out = tmp_path / "low.png", tmp_path / "low-out.png"
    cv2.imwrite(str(source), cv2.cvtColor(deep, cv2.COLOR_RGB2BGR))
    result = veil(source, "-o", out)
    assert result.exit_code == 0, result.output
    written = read_photo(out).pixels
    assert written.dtype == np.uint16 and written[1:].max() == int(rgb[1:].max()) + offset
    for face in faces:
        assert (_inner(written, face) == 0).all(axis=2).mean() >= 0.95


def test_a_floating_point_picture_is_refused_in_one_line(tmp_path):
    # Pillow's 8-bit conversion clips values 0..1 to black: the output was all black, exit 0.
    source = tmp_path / "float.tif"
    Image.fromarray(np.random.default_rng(0).random((64, 64), np.float32), "F").save(source)
    result = veil_subprocess(source, "-o", tmp_path / "out.tif")
    assert result.returncode == 1 and not (tmp_path / "out.tif").exists()
    assert "floating-point" in result.stderr and len(result.stderr.strip().splitlines()) == 2


def test_a_picture_of_32_bit_values_beyond_16_bits_is_refused_in_one_line(tmp_path):
    # Clipped to 16 bits, a 32-bit integer TIFF (a scientific camera's) came out another picture,
    # most of it black or white, exit 0, without a word.
    source = tmp_path / "deep.tif"
    Image.fromarray(np.random.default_rng(0).integers(-70000, 200000, (64, 64), dtype=np.int32), "I").save(source)
    result = veil_subprocess(source, "-o", tmp_path / "out.tif")
    assert result.returncode == 1 and not (tmp_path / "out.tif").exists()
    assert "32-bit values beyond 16 bits" in result.stderr and len(result.stderr.strip().splitlines()) == 2


def test_a_png_gamma_is_applied_to_its_values(tmp_path):
    # Outputs carry no gAMA chunk: a linear PNG's values, kept as they were, showed a quarter of
    # the range darker than in a viewer that honours the chunk.
    levels = np.tile(np.arange(256, dtype=np.uint8), (8, 1))
    plain = io.BytesIO()
    Image.fromarray(levels, "L").save(plain, format="PNG")
    data = plain.getvalue()
    header_end = 8 + 25
    for gamma, srgb in ((1.0, False), (1.0, True), (1 / 2.2, False)):
        chunk = png_chunk(b"gAMA", struct.pack(">I", round(gamma * 100000)))
        extra = png_chunk(b"sRGB", b"\0") if srgb else b""  # which viewers follow instead
        path = tmp_path / "gamma.png"
        path.write_bytes(data[:header_end] + chunk + extra + data[header_end:])
        shown = read_photo(path).pixels[0].astype(int)
        expected = np.arange(256) if srgb or gamma < 0.5 else np.round((np.arange(256) / 255) ** (1 / 2.2) * 255)
        assert np.abs(shown - expected).max() <= 1, (gamma, srgb)


def with_chunks(data: bytes, *chunks: bytes) -> bytes:
    """A PNG's bytes with these chunks just after its header (where colour chunks stand)."""
    return data[:8 + 25] + b"".join(chunks) + data[8 + 25:]


def chrm_chunk(white, red, green, blue) -> bytes:
    return png_chunk(b"cHRM", struct.pack(">8I", *(round(v * 100000) for xy in (white, red, green, blue) for v in xy)))


SRGB_WHITE, SRGB_RED, SRGB_GREEN, SRGB_BLUE = (0.3127, 0.329), (0.64, 0.33), (0.3, 0.6), (0.15, 0.06)


def test_a_png_is_searched_and_written_in_the_primaries_its_chrm_chunk_names(shared_data, tmp_path):
    """A PNG stored with its red and blue swapped, and a cHRM chunk that swaps them back: Chrome
    and Firefox show the photo as it was. veil searched and wrote the stored values (an attack
    left one face of 150 px visible so). A cHRM of sRGB's own primaries changes nothing, nor does
    one beside an sRGB chunk, which viewers follow instead."""
    pixels = np.asarray(Image.open(shared_data / TWO_PEOPLE).convert("RGB"))
    stored = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels[:, :, ::-1])).save(stored, format="PNG")
    swapped_back = chrm_chunk(SRGB_WHITE, SRGB_BLUE, SRGB_GREEN, SRGB_RED)
    gamma = png_chunk(b"gAMA", struct.pack(">I", 45455))
    path = tmp_path / "swapped.png"
    path.write_bytes(with_chunks(stored.getvalue(), gamma, swapped_back))
    photo = read_photo(path)
    assert np.abs(photo.pixels.astype(int) - pixels).max() <= 2
    assert photo.colour_box_converted == "the PNG's cHRM chunk's"
    faces = [r.boxes[0] for r in plan_photo(shared_data / TWO_PEOPLE).regions]
    found = plan_photo(path)
    assert [r.boxes[0] for r in found.regions] == faces
    out = tmp_path / "out.png"
    render_photo(found, RenderSettings(color=(255, 0, 255)), out)
    with Image.open(out) as written:
        assert "chromaticity" not in written.info and "gamma" not in written.info
    shown = rgb_of(out)
    kept = ~(shown == (255, 0, 255)).all(axis=2)
    assert kept.mean() > 0.5 and np.abs(shown[kept].astype(int) - pixels[kept]).max() <= 2
    for box in faces:
        inner = shown[int(box.y0 + 0.3 * box.height):int(box.y1 - 0.3 * box.height),
                      int(box.x0 + 0.3 * box.width):int(box.x1 - 0.3 * box.width)]
        assert share_near(inner, (255, 0, 255), 8) > 0.95, box

    for chunks in ((gamma, chrm_chunk(SRGB_WHITE, SRGB_RED, SRGB_GREEN, SRGB_BLUE)),
                   (png_chunk(b"sRGB", b"\0"), swapped_back)):
        plain = io.BytesIO()
        Image.fromarray(pixels).save(plain, format="PNG")
        path.write_bytes(with_chunks(plain.getvalue(), *chunks))
        photo = read_photo(path)
        assert np.abs(photo.pixels.astype(int) - pixels).max() <= 1 and photo.colour_box_converted is None


def test_tiffs_stored_white_is_zero_or_in_deep_planes_are_read_as_viewers_show_them_or_refused(shared_data,
                                                                                                tmp_path):
    """A 16-bit white-is-zero TIFF was written as its negative; a 16-bit TIFF stored a channel at a
    time was decoded scrambled, a child's face in it left visible. (A CIELab TIFF, Photoshop's Lab
    mode, is converted as it should be.)"""
    pixels = rgb_of(shared_data / TWO_PEOPLE)
    to_lab = ImageCms.buildTransform(ImageCms.createProfile("sRGB"), ImageCms.createProfile("LAB"), "RGB", "LAB")
    lab = np.asarray(ImageCms.applyTransform(Image.fromarray(pixels), to_lab))  # a and b as signed bytes, as TIFF's
    (tmp_path / "lab.tif").write_bytes(plain_tiff(lab, 8))
    assert np.abs(read_photo(tmp_path / "lab.tif").pixels.astype(int) - pixels).mean() < 2
    grey = pixels[..., 1].astype(np.uint16) * 257
    (tmp_path / "white_is_zero.tif").write_bytes(plain_tiff(65535 - grey, 0))
    assert np.array_equal(read_photo(tmp_path / "white_is_zero.tif").pixels, grey)
    (tmp_path / "planes.tif").write_bytes(plain_tiff(pixels.astype(np.uint16) * 257, 2, planar=True))
    with pytest.raises(ImageError, match="stored a channel at a time"):
        read_photo(tmp_path / "planes.tif")
    (tmp_path / "planes8.tif").write_bytes(plain_tiff(pixels, 2, planar=True))  # at 8 bits it decodes whole
    assert np.array_equal(read_photo(tmp_path / "planes8.tif").pixels, pixels)


def test_a_bmp_whose_fourth_byte_is_zero_everywhere_is_opaque(shared_data, tmp_path):
    """Many programs write a 32-bit BMP's fourth byte as zero, meaning nothing, and browsers show it
    opaque: a .png output kept it as alpha, a picture wholly transparent."""
    pixels = rgb_of(shared_data / TWO_PEOPLE)
    height, width = pixels.shape[:2]

    def bmp_with_alpha(alpha: int) -> bytes:  # a version 4 header, an alpha mask among its bit fields
        rows = np.dstack([pixels[..., ::-1], np.full((height, width), alpha, np.uint8)])[::-1].tobytes()
        header = struct.pack("<IiiHHIIiiII", 108, width, height, 1, 32, 3, len(rows), 2835, 2835, 0, 0)
        header += struct.pack("<IIIII", 0xFF0000, 0xFF00, 0xFF, 0xFF000000, 0x73524742) + bytes(48)
        return b"BM" + struct.pack("<IHHI", 14 + len(header) + len(rows), 0, 0, 14 + len(header)) + header + rows

    (tmp_path / "zero.bmp").write_bytes(bmp_with_alpha(0))
    with Image.open(tmp_path / "zero.bmp") as stored:
        assert stored.mode == "RGBA"
    assert np.array_equal(read_photo(tmp_path / "zero.bmp").pixels, pixels)
    (tmp_path / "half.bmp").write_bytes(bmp_with_alpha(128))  # an alpha that is one stays
    assert read_photo(tmp_path / "half.bmp").pixels.shape[2] == 4


def test_a_jpeg_s_end_is_found_past_stray_bytes_and_not_in_a_cut_file(shared_data):
    """A motion photo's video is found after the JPEG's end: stray bytes before a marker (which
    decoders pass over) do not hide it, and a file cut short has no end."""
    from veil.imagefile import _jpeg_end, _video_after_jpeg

    data = (shared_data / TWO_PEOPLE).read_bytes()
    clip = (shared_data / "videos" / "youtube_faces" / "Aaron_Guiel5.mp4").read_bytes()
    assert _jpeg_end(data) == len(data)
    second = 4 + int.from_bytes(data[4:6], "big")  # where the segment after APP0 starts
    stray = data[:second] + b"\0\0" + data[second:]
    assert _jpeg_end(stray) == len(stray)
    assert _video_after_jpeg(stray + clip) and not _video_after_jpeg(stray)
    assert _jpeg_end(data[: len(data) // 2]) is None


def test_a_png_whose_profile_libpng_dislikes_prints_nothing_of_it(shared_data, tmp_path):
    # The libpng inside OpenCV printed "libpng warning: iCCP: profile 'ICC Profile': 'GRAY': Gray
    # color space not permitted on RGB PNG" on stderr: a line naming neither the file nor veil.
    rgb = read_photo(shared_data / TWO_PEOPLE).pixels
    path = tmp_path / "tagged.png"
    Image.fromarray(rgb).save(path, icc_profile=gray_profile(2.2))
    photo = read_photo(path)
    assert np.array_equal(photo.pixels, rgb) and photo.icc_profile is None  # another colour space's: dropped
    run = veil_subprocess(path, "-o", tmp_path / "out.png")
    assert run.returncode == 0 and (tmp_path / "out.png").exists()
    assert "libpng" not in run.stderr and len(run.stderr.strip().splitlines()) == 1, run.stderr


def test_a_jpeg_s_other_application_segments_are_named_or_counted(tmp_path):
    # Photoshop's "Ducky" segment (Save for Web) holds a comment and a copyright holder, and a
    # maker's own segment anything: neither was named among the metadata left out.
    encoded = io.BytesIO()
    Image.new("RGB", (64, 48), (120, 80, 60)).save(encoded, "JPEG")
    data = encoded.getvalue()

    def segment(marker: int, body: bytes) -> bytes:
        return struct.pack(">HH", marker, len(body) + 2) + body

    ducky = b"Ducky\0\x01\0\x04\0\0\0\x50" + b"\0\x02\0\x0e\0\0\0\x05Jane Roe 2026"
    path = tmp_path / "segments.jpg"
    path.write_bytes(data[:2] + segment(0xFFEC, ducky) + segment(0xFFE4, b"Maker's notes: serial 1234")
                     + segment(0xFFEB, b"JP\0\x0b\0\0\0\x01jumbc2pa Jane Roe") + segment(0xFFE0, b"AVI1\0\0\0\0")
                     + segment(0xFFFE, b"Jane Roe's camera") + data[2:])
    named = read_photo(path).metadata
    # The comment is named once, as a comment; a Motion JPEG frame's AVI1 segment is its layout.
    assert named == ("comment", "Ducky segment (Photoshop's Save for Web: quality, comment, copyright)",
                     "JUMBF boxes (C2PA content credentials: creator, edits)", "1 other application segment(s)"), named
    assert "Jane Roe" not in repr(named) and "1234" not in repr(named)


def test_a_photo_with_damaged_exif_entries_is_read_without_pillows_warnings(tmp_path):
    # Pillow warned of each damaged EXIF entry ("Tag data larger than file. Skipping tag 272"),
    # twice, in a library caller's output, as veil opened the photo and read its orientation.
    exif = Image.Exif()
    exif[0x010F], exif[0x0110], exif[0x0112] = "A" * 200, "B" * 300, 6  # Make, Model, Orientation
    path = tmp_path / "damaged.jpg"
    Image.new("RGB", (64, 48), (120, 80, 60)).save(path, exif=exif.tobytes()[:-150])  # Model's text cut off
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        photo = read_photo(path)
    assert [str(warning.message) for warning in said] == []
    assert photo.pixels.shape[:2] == (64, 48)
    assert photo.metadata == ("EXIF Orientation", "EXIF Make", "EXIF (some entries damaged: not read)")


@pytest.mark.parametrize("exif", [b"MM\0", b"MM\0*\0\0", b""], ids=["bad header", "cut short", "empty"])
def test_a_photo_whose_exif_cannot_be_read_is_redacted_upright_without_a_word(shared_data, tmp_path, exif: bytes):
    # Its orientation read, such EXIF refused a PNG or WebP whose pixels decode ("cannot decode image
    # (not a TIFF file ...)", or an unexpected error), and an empty PNG eXIf chunk was said to be
    # damaged picture data (libpng: "eXIf: too short"). A JPEG's has always been read as upright.
    upright = read_photo(shared_data / SAMSUNG).pixels
    png = io.BytesIO()
    Image.fromarray(upright).save(png, "PNG")
    source = tmp_path / "in"
    source.mkdir()
    header_end = 8 + 25  # signature + IHDR chunk
    (source / "bad.png").write_bytes(png.getvalue()[:header_end] + png_chunk(b"eXIf", exif) + png.getvalue()[header_end:])
    if exif:  # Pillow writes no EXIF chunk for empty EXIF
        Image.fromarray(upright).save(source / "bad.webp", exif=exif)
        Image.fromarray(upright).save(source / "bad.jpg", exif=b"Exif\0\0" + exif)
    result = veil(source, "--output-dir", tmp_path / "out", "--json")
    assert result.exit_code == 0, result.output
    for file in json.loads(result.stdout)["results"]:
        assert file["error"] is None and file["notes"] == [] and file["regions"], file
        out = Path(file["output"])
        assert_no_metadata(out, None)
        assert rgb_of(out).shape == upright.shape, f"{out.name} was turned"


def test_a_jpeg_with_damaged_data_is_refused_unless_salvaged_and_then_named_in_one_line(shared_data, tmp_path):
    # The libjpeg inside OpenCV decodes damaged data as it can, a face there garbled, half grey or
    # shifted, where the search can miss it and a person still recognise it; veil wrote it with a
    # warning. Now it fails closed: refused, with the way through (--salvage) and what the decoder said.
    path = damaged_jpeg(shared_data / TWO_PEOPLE, tmp_path / "damaged.jpg")
    photo = read_photo(path)
    assert photo.damage_said and photo.damage_said[0].startswith("Corrupt JPEG data")
    assert photo.pixels.shape == read_photo(shared_data / TWO_PEOPLE).pixels.shape
    refused = veil_subprocess(path, "-o", tmp_path / "refused.jpg", "-q")
    assert refused.returncode != 0 and not (tmp_path / "refused.jpg").exists()
    lines = refused.stderr.strip().splitlines()
    assert lines[0].startswith(f"veil: {path}: its decoder found damaged or stray data in its picture (Corrupt JPEG "
                               "data"), lines
    assert lines[0].endswith("(--salvage writes it as decoded)"), lines
    assert not list(tmp_path.glob("*.tmp*"))
    # Asked to salvage it: written as decoded, said in one line, and recorded.
    run = veil_subprocess(path, "-o", tmp_path / "out.jpg", "--save-plan", tmp_path / "plan.json", "-q", "--salvage")
    assert run.returncode == 0 and (tmp_path / "out.jpg").exists()
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"veil: {path}: its decoder warned: Corrupt JPEG data"), run.stderr
    plan = json.loads((tmp_path / "plan.json").read_text())
    detection = plan["media"][0]["detection"]
    assert detection["decoder_messages"] == list(photo.decoder_messages) and detection["damaged_data_salvaged"] is True
    assert plan["media"][0]["regions"]  # the faces in the rows before the damage are still found
    # A plan made without the decoder's words (by hand, by an older veil) is rendered with them all the same.
    del detection["decoder_messages"]
    del plan["media"][0]["detection_sha256"]  # as an older veil saved it
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    run = veil_subprocess("--plan", tmp_path / "plan.json", "-o", tmp_path / "again.jpg", "-q")
    assert run.returncode == 0 and "its decoder warned: Corrupt JPEG data" in run.stderr, run.stderr
    # A plan that does not say the damage was salvaged (made by an older veil, or by hand) is refused.
    del detection["damaged_data_salvaged"]
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    run = veil_subprocess("--plan", tmp_path / "plan.json", "-o", tmp_path / "unsalvaged.jpg", "-q")
    assert run.returncode != 0 and not (tmp_path / "unsalvaged.jpg").exists()
    assert "plan it again with --salvage to write it as decoded" in run.stderr, run.stderr
    # A dry run says so too, by what the plan says of the photo (it said the photo would be written).
    (tmp_path / "plan.json").write_text(json.dumps({**plan, "media": [{**plan["media"][0], "detection": {
        **detection, "decoder_messages": list(photo.decoder_messages)}}]}))
    run = veil_subprocess("--plan", tmp_path / "plan.json", "-o", tmp_path / "unsalvaged.jpg", "--dry-run")
    assert run.returncode != 0 and "plan it again with --salvage" in run.stderr, run.stderr
    # A CMYK JPEG is decoded by Pillow, which says nothing of damaged data: libjpeg is asked.
    cmyk = io.BytesIO()
    Image.open(shared_data / TWO_PEOPLE).convert("CMYK").save(cmyk, "JPEG", quality=90)
    data = bytearray(cmyk.getvalue())
    data[-2:-2] = b"\x00" * 40  # stray bytes before the end marker
    (tmp_path / "cmyk.jpg").write_bytes(bytes(data))
    said = read_photo(tmp_path / "cmyk.jpg").damage_said
    assert len(said) == 1 and said[0].startswith("Corrupt JPEG data:") and "extraneous bytes before marker 0xd9" in said[0]
    assert veil_subprocess(tmp_path / "cmyk.jpg", "-o", tmp_path / "cmyk-out.jpg").returncode != 0
    # A JPEG-compressed TIFF: libtiff passes libjpeg's words on ("JPEGLib: ..."), naming no file.
    tiff = io.BytesIO()
    Image.open(shared_data / TWO_PEOPLE).save(tiff, "TIFF", compression="jpeg")
    data = bytearray(tiff.getvalue())
    for at in range(len(data) * 3 // 4, len(data) * 7 // 8, 401):
        data[at] ^= 0x10
    (tmp_path / "damaged.tif").write_bytes(bytes(data))
    said = read_photo(tmp_path / "damaged.tif").damage_said
    assert said and said[0].startswith("JPEGLib: "), said
    run = veil_subprocess(tmp_path / "damaged.tif", "-o", tmp_path / "tif-out.tif")
    assert run.returncode != 0 and "damaged or stray data in its picture (JPEGLib: " in run.stderr, run.stderr
    # A PNG whose data holds 60% of its rows: libpng says "Not enough image data" and the rest
    # came out black, with a note only.
    pixels = np.asarray(Image.open(shared_data / TWO_PEOPLE).convert("RGB"))
    rows = b"".join(b"\0" + row.tobytes() for row in pixels[: len(pixels) * 6 // 10])
    header = struct.pack(">IIBBBBB", pixels.shape[1], pixels.shape[0], 8, 2, 0, 0, 0)
    (tmp_path / "short.png").write_bytes(b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header)
                                         + png_chunk(b"IDAT", zlib.compress(rows)) + png_chunk(b"IEND", b""))
    run = veil_subprocess(tmp_path / "short.png", "-o", tmp_path / "short-out.png")
    assert run.returncode != 0 and not (tmp_path / "short-out.png").exists()
    assert "damaged or stray data in its picture (libpng error: Not enough image data)" in run.stderr, run.stderr


def test_a_damaged_jpeg_is_refused_with_stderr_closed_and_where_the_decoder_cannot_be_heard(shared_data, tmp_path,
                                                                                           monkeypatch):
    # Where no temporary file can be made to take the decoder's words, a damaged photo was written
    # unrefused, as if it had said nothing. It is refused now, as a damaged one is; and with stderr
    # closed (a service, `2>&-`) the words are heard all the same.
    path = damaged_jpeg(shared_data / TWO_PEOPLE, tmp_path / "damaged.jpg")
    run = subprocess.run([sys.executable, "-m", "veil", str(path), "-o", str(tmp_path / "out.jpg"), "--json"],
                         stdout=subprocess.PIPE, text=True, timeout=300, preexec_fn=lambda: os.close(2))
    assert run.returncode == 1 and not (tmp_path / "out.jpg").exists()
    assert "Corrupt JPEG data" in json.loads(run.stdout)["results"][0]["error"], run.stdout

    def no_temporary_file(*args, **kwargs):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr("veil.imagefile._words_file", no_temporary_file)
    whole = read_photo(shared_data / TWO_PEOPLE)
    assert whole.damage_said == (UNHEARD,)
    with pytest.raises(ImageError, match=r"^its decoder's words could not be heard .*\(--salvage writes it as decoded\)$"):
        plan_photo(shared_data / TWO_PEOPLE, photo=whole)
    # A file made, but that takes no word (a full temporary folder): the damaged photo was read as
    # whole, libjpeg's warning lost, and written unrefused.
    (tmp_path / "takes-nothing").touch()
    monkeypatch.setattr("veil.imagefile._words_file", lambda: open(tmp_path / "takes-nothing", "rb"))
    assert read_photo(path).damage_said == (UNHEARD,) and read_photo(shared_data / TWO_PEOPLE).damage_said == (UNHEARD,)
    # The words are kept in memory, where a full or removed temporary folder cannot refuse them.
    monkeypatch.undo()
    monkeypatch.setenv("TMPDIR", str(tmp_path / "removed"))
    monkeypatch.setattr("tempfile.tempdir", None)
    assert read_photo(shared_data / TWO_PEOPLE).damage_said == ()
    assert any("Corrupt JPEG data" in line for line in read_photo(path).damage_said)


def test_stderr_written_by_others_while_a_photo_is_decoded_reaches_the_terminal(shared_data, capfd):
    # The decoder's warnings are taken off stderr while it runs; another thread's lines are not.
    from veil.imagefile import _c_stderr_taken
    other = threading.Thread(target=os.write, args=(2, b"someone else's line\n"))
    with _c_stderr_taken() as said:
        other.start()
        other.join()
        cv2.imread(str(shared_data / TWO_PEOPLE))
    assert said == [] and capfd.readouterr().err == "someone else's line\n"


def test_a_photo_is_read_without_a_stderr(shared_data, tmp_path):
    # Started with stderr closed (`2>&-`), the swap of stderr around the decoder failed every photo
    # as a bug in veil.
    run = subprocess.run(f"{sys.executable} -m veil {shared_data / TWO_PEOPLE} -o {tmp_path / 'out.jpg'} --json 2>&-",
                         shell=True, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0 and json.loads(run.stdout)["failed"] == 0, run.stdout


@pytest.mark.parametrize("suffix", [".jpg", ".png"])
def test_a_photo_named_in_bytes_that_are_not_utf8_is_read_and_written(shared_data, tmp_path, suffix):
    # OpenCV's file functions take UTF-8 names only: a name in other bytes (an old camera's
    # Latin-1 folder, a copy from another system) crashed the process, no message, no output.
    rgb, faces = _two_faces(shared_data)
    source, out = tmp_path / os.fsdecode(b"caf\xe9" + suffix.encode()), tmp_path / os.fsdecode(b"o\xff" + suffix.encode())
    Image.fromarray(rgb).save(source)
    result = veil_subprocess(source, "-o", out)
    assert result.returncode == 0, result.stderr
    written = read_photo(out).pixels
    for face in faces:
        assert (_inner(written, face) == 0).all(axis=2).mean() >= 0.95


def test_data_appended_after_a_jpeg_picture_is_left_out_and_said(shared_data, tmp_path):
    # Another JPEG appended after the picture's end (no MPF index: not a second view viewers
    # know of) was dropped without a word; a motion photo's video and MPF views were already said.
    rgb, _ = _two_faces(shared_data)
    picture, appended = io.BytesIO(), io.BytesIO()
    Image.fromarray(rgb).save(picture, "JPEG")
    Image.fromarray(rgb[::4, ::4]).save(appended, "JPEG")
    source, out = tmp_path / "joined.jpg", tmp_path / "out.jpg"
    source.write_bytes(picture.getvalue() + appended.getvalue())
    result = veil(source, "-o", out)
    assert result.exit_code == 0, result.output
    assert f"{len(appended.getvalue())} bytes stored after the picture" in result.output, result.output
    assert out.read_bytes().count(b"\xff\xd8") == 1
    padded = tmp_path / "padded.jpg"
    padded.write_bytes(picture.getvalue() + b"\x00" * 64)
    result = veil(padded, "-o", tmp_path / "padded-out.jpg")
    assert result.exit_code == 0 and "bytes stored after the picture" not in result.output


@pytest.mark.parametrize("fmt, options", [("PNG", {}), ("WEBP", {}), ("GIF", {}),
                                          ("GIF", {"save_all": True, "duration": 100}),
                                          ("WEBP", {"save_all": True, "duration": 100, "lossless": True})])
def test_data_appended_after_a_png_webp_or_gif_picture_is_said_too(shared_data, tmp_path, fmt, options):
    # A face's JPEG stored after a PNG's end chunk, a WebP's RIFF chunk or a GIF's trailer (a
    # photo's or an animation's) was dropped without a word, where after a JPEG it was said.
    rgb, _ = _two_faces(shared_data)
    frames = [Image.fromarray(rgb), Image.fromarray(rgb[::-1].copy())]
    picture, appended = io.BytesIO(), io.BytesIO()
    frames[0].save(picture, fmt, **options, **({"append_images": frames[1:]} if options else {}))
    Image.fromarray(rgb[::4, ::4]).save(appended, "JPEG")
    suffix = "." + fmt.lower()
    source, out = tmp_path / f"joined{suffix}", tmp_path / f"out{suffix}"
    source.write_bytes(picture.getvalue() + appended.getvalue())
    result = veil(source, "-o", out)
    assert result.exit_code == 0, result.output
    assert f"{len(appended.getvalue())} bytes stored after the picture" in result.output, result.output
    assert appended.getvalue()[:200] not in out.read_bytes()
    padded = tmp_path / f"padded{suffix}"
    padded.write_bytes(picture.getvalue() + b"\x00" * 64)
    result = veil(padded, "-o", tmp_path / f"padded-out{suffix}")
    assert result.exit_code == 0 and "bytes stored after the picture" not in result.output


def test_a_png_s_text_after_its_picture_is_named_without_decoding_it(tmp_path):
    # Naming a PNG's metadata through Pillow's `text` decoded the picture a second time to reach
    # text stored after it, and refused a compressed text of over 1 MB there (a long editing
    # history in XMP): a photo it had always read failed.
    path = tmp_path / "history.png"
    Image.fromarray(np.zeros((40, 60, 3), np.uint8)).save(path)
    data = path.read_bytes()
    body = b"XML:com.adobe.xmp\0\1\0\0\0" + zlib.compress(b"<x:xmpmeta/> " * 200_000)

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    end = data.rindex(b"IEND") - 4
    path.write_bytes(data[:end] + chunk(b"iTXt", body) + chunk(b"tEXt", b"Author\0Jane Roe") + data[end:])
    photo = read_photo(path)
    assert photo.pixels.shape == (40, 60, 3)
    assert sorted(photo.metadata) == ["XMP", "text chunk Author"]
    # Its time of last change and a program's own chunks, left out, were not named (nor counted).
    at = data.index(b"IDAT") - 4
    path.write_bytes(data[:at] + chunk(b"tIME", struct.pack(">HBBBBB", 2026, 5, 6, 7, 8, 9)) + chunk(b"prVt", b"Jane")
                     + chunk(b"pHYs", struct.pack(">IIB", 2835, 2835, 1)) + data[at:])
    assert read_photo(path).metadata == ("time of last change (tIME chunk)", "1 other chunk(s)")


def test_a_raw_camera_file_is_refused_and_a_tiff_s_sub_images_are_counted_as_left_out(tmp_path):
    # A DNG (or another maker's raw file) is a TIFF whose first picture is a small preview, the
    # photo lying in a sub-image (SubIFD) of raw sensor data: the preview was searched and written,
    # and the report said 0 faces of a photo never looked at. A TIFF's sub-images went unsaid.
    from PIL import TiffImagePlugin

    preview = Image.new("RGB", (64, 48), (120, 100, 90))
    dng = TiffImagePlugin.ImageFileDirectory_v2()
    dng[50706], dng.tagtype[50706] = bytes([1, 4, 0, 0]), 1  # DNGVersion 1.4
    preview.save(tmp_path / "raw.dng", format="TIFF", tiffinfo=dng)
    preview.save(tmp_path / "raw.nef", format="TIFF")  # another maker's, known by its name
    for raw, kind in (("raw.dng", "a DNG"), ("raw.nef", "a NEF")):
        with pytest.raises(ImageError, match=rf"^a raw camera file \({kind}\): veil does not decode raw sensor data"):
            read_photo(tmp_path / raw)
    sub = TiffImagePlugin.ImageFileDirectory_v2()
    sub[330], sub.tagtype[330] = (8,), 4  # one SubIFD
    preview.save(tmp_path / "sub.tif", format="TIFF", tiffinfo=sub)
    assert read_photo(tmp_path / "sub.tif").others == 1
