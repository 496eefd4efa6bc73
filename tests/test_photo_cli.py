"""The `veil` command on real photos: what a user gets out, and what never leaks.

Every test copies its inputs from ../shared/data into tmp_path and runs the real
command (in-process through typer's runner, or `python -m veil` where the process
boundary matters) with the real detector.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from veil import detect
from veil.imagefile import read_photo
from veil.outputs import partial_outputs
from photo_support import (
    GROUP, KIT_WITH_ROSE, OBAMA, P3_HEIC, SAMSUNG, TWO_PEOPLE, assert_no_metadata, copy_in, face_slice, leftovers,
    planned_faces, rgb_of, share_near, veil, veil_subprocess,
)

# --- orientation -----------------------------------------------------------------------------


def test_every_exif_orientation_comes_out_upright_and_untagged(shared_data, tmp_path):
    source = tmp_path / "in"
    shutil.copytree(shared_data / "metadata/exif-samples/jpg/orientation", source, ignore=shutil.ignore_patterns("README*"))
    result = veil(source, "--output-dir", tmp_path / "out")
    assert result.exit_code == 0, result.output
    # The samples 2-8 carry an ICC profile (converted to sRGB on output) and _1 does not, so their
    # values differ from _1's even when upright; a wrong turn or mirror differs by 40 or more.
    for kind, shape in (("landscape", (450, 600, 3)), ("portrait", (600, 450, 3))):
        reference = rgb_of(tmp_path / "out" / f"{kind}_1.jpg").astype(np.int16)
        same_profile = rgb_of(tmp_path / "out" / f"{kind}_2.jpg").astype(np.int16)
        for n in range(1, 9):
            out = tmp_path / "out" / f"{kind}_{n}.jpg"
            assert_no_metadata(out, None)  # no orientation tag left to rotate it twice, no Apple profile
            pixels = rgb_of(out)
            assert pixels.shape == shape, f"{out.name} is not upright"
            difference = np.abs(pixels.astype(np.int16) - reference).mean()
            assert difference < 25, f"{out.name} differs from {kind}_1 by {difference:.1f} per pixel: wrongly turned"
            if n > 1:
                difference = np.abs(pixels.astype(np.int16) - same_profile).mean()
                assert difference < 8, f"{out.name} differs from {kind}_2 by {difference:.1f} per pixel: wrongly turned"


# --- metadata ----------------------------------------------------------------------------------


def test_gps_photos_come_out_without_any_metadata(shared_data, tmp_path):
    # The large camera files of metadata-extractor-images/jpg go through the same writer in
    # test_imagefile.py (detection on each would take seconds); here the small ones, end to end.
    source = tmp_path / "in"
    for path in sorted((shared_data / "metadata/exif-samples/jpg/gps").glob("*.jpg")):
        copy_in(shared_data, str(path.relative_to(shared_data)), source / "exif-samples")
    for name in (SAMSUNG, "metadata/metadata-extractor-images/jpg/Sony DSC-HX5V (2).jpg"):
        copy_in(shared_data, name, source / "metadata-extractor")
    inputs = sorted(source.rglob("*.jpg"))
    for path in inputs:
        with Image.open(path) as image:
            assert image.getexif().get_ifd(0x8825), f"test input {path.name} should carry GPS"

    result = veil(source, "--output-dir", tmp_path / "out", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["files"] == len(inputs) and summary["failed"] == 0
    for path in inputs:
        out = tmp_path / "out" / path.relative_to(source)
        assert out.is_file(), f"no output for {path.name}"
        assert_no_metadata(out, None)
        assert rgb_of(out).shape == read_photo(path).pixels.shape


def test_the_report_names_the_metadata_left_out_and_never_its_values(shared_data, tmp_path):
    # The report said nothing of metadata: a user could not check, short of a metadata reader,
    # that a photo's GPS position, camera and dates were taken out.
    source = copy_in(shared_data, "metadata/exif-samples/jpg/gps/DSCN0010.jpg", tmp_path / "in")
    png = tmp_path / "in" / "notes.png"
    with Image.open(source) as image:
        exif = image.getexif()
        taken = exif.get_ifd(0x8769)[0x9003]  # DateTimeOriginal, as the file writes it
        text = PngInfo()
        text.add_text("Author", "Jane Roe")
        text.add_text("Jane Roe's phone", "+1 555 0100")  # a keyword of its own: counted, never said
        image.save(png, pnginfo=text)
    report = tmp_path / "report.json"
    result = veil(tmp_path / "in", "--output-dir", tmp_path / "out", "--report", report)
    assert result.exit_code == 0, result.output
    files = {Path(f["input"]).name: f for f in json.loads(report.read_text())["files"]}
    named = files["DSCN0010.jpg"]["metadata_not_written"]
    for name in ("EXIF GPSLatitude", "EXIF GPSLongitude", "EXIF Make", "EXIF Model", "EXIF DateTimeOriginal",
                 "EXIF MakerNote", "EXIF thumbnail", "XMP"):
        assert name in named, (name, named)
    assert files["notes.png"]["metadata_not_written"][-2:] == ["text chunk Author", "1 text chunk(s) of other keywords"]
    html = report.with_suffix(".html").read_text()
    assert "EXIF GPSLatitude" in html and "text chunk Author" in html
    for said in (report.read_text(), html):
        for secret in ("Jane Roe", "+1 555 0100", exif[0x010F].strip(), taken):
            assert secret not in said, secret
    assert_no_metadata(tmp_path / "out" / "DSCN0010.jpg", None)


def test_the_report_names_a_colour_profile_converted_and_dropped(shared_data, tmp_path):
    # A photo's ICC profile, whose description can name the device (an iPhone's "Display P3"), was
    # converted and dropped unsaid: the report named the rest of its metadata only.
    source = copy_in(shared_data, P3_HEIC, tmp_path / "in")
    for keep, named in ((False, True), (True, False)):
        report = tmp_path / f"report-{keep}.json"
        result = veil(source, "-o", tmp_path / f"out-{keep}.heic", "--report", report, *(["--keep-icc"] if keep else []))
        assert result.exit_code == 0, result.output
        left_out = json.loads(report.read_text())["files"][0]["metadata_not_written"]
        assert ("ICC colour profile (the pixels written as sRGB)" in left_out) == named, left_out
        assert "EXIF GPSLatitude" in left_out


def test_samsung_photo_face_is_hidden_and_gps_gone(shared_data, tmp_path):
    source = copy_in(shared_data, SAMSUNG, tmp_path)
    faces = [f for f in detect(read_photo(source).pixels) if f.score > 0.5]
    assert faces, "the Samsung photo shows a face"
    result = veil(source, "--color", "white")
    assert result.exit_code == 0, result.output
    out = tmp_path / "Samsung GT-I9000 (Galaxy S).redacted.jpg"
    assert_no_metadata(out, None)
    original, pixels = rgb_of(source), rgb_of(out)
    assert pixels.shape == (640, 480, 3), "EXIF orientation 6 must be applied to the pixels"
    for face in faces:
        assert share_near(original[face_slice(face)], (255, 255, 255), 24) < 0.2
        assert share_near(pixels[face_slice(face)], (255, 255, 255), 24) >= 0.95, "face not hidden"


def test_heic_comes_out_readable_without_metadata(shared_data, tmp_path):
    source = copy_in(shared_data, "metadata/exif-samples/heic/IMG_5195.HEIC", tmp_path)
    with Image.open(source) as image:
        assert image.getexif().get_ifd(0x8825), "test input should carry GPS"
        assert image.info.get("icc_profile"), "test input should carry Apple's Display P3 profile"
        size = image.size
    result = veil(source, "--color", "white", "--save-plan", tmp_path / "plan.json")
    assert result.exit_code == 0, result.output
    out = tmp_path / "IMG_5195.redacted.HEIC"
    assert_no_metadata(out, None)
    with Image.open(out) as image:
        assert image.format == "HEIF" and image.size == size
        pixels = np.asarray(image.convert("RGB"))
    faces = planned_faces(tmp_path / "plan.json")
    assert faces, "IMG_5195 shows a face"
    for face in faces:
        assert share_near(pixels[face_slice(face)], (255, 255, 255), 24) >= 0.95, "face not hidden"


def pq_codes(source: Path) -> np.ndarray:
    """The SDR photo's light coded with PQ (SMPTE ST 2084), SDR white at BT.2408's 203 nits, in
    16 bits: what an HDR camera or an editor's HDR export stores."""
    sdr = rgb_of(source) / 255.0
    linear = np.where(sdr <= 0.04045, sdr / 12.92, ((sdr + 0.055) / 1.055) ** 2.4)
    m1, m2, c1, c2, c3 = 2610 / 16384, 2523 / 32, 3424 / 4096, 2413 / 128, 2392 / 128
    light = (linear * 203 / 10000) ** m1
    return np.round(((c1 + c2 * light) / (1 + c3 * light)) ** m2 * 65535).astype(np.uint16)


def write_pq(codes: np.ndarray, path: Path) -> None:
    """A 10-bit HEIF, a 16-bit PNG whose cICP chunk says PQ (PNG's third edition: Chrome shows it
    so), or an AVIF (Pillow writes 8 bits) whose colour box is made to say PQ."""
    if path.suffix == ".png":
        data = cv2.imencode(".png", np.ascontiguousarray(codes[..., ::-1]))[1].tobytes()
        chunk = b"cICP" + bytes([1, 16, 0, 1])  # BT.709 primaries, PQ, RGB, full range
        path.write_bytes(data[:33] + struct.pack(">I", 4) + chunk + struct.pack(">I", zlib.crc32(chunk)) + data[33:])
        return
    if path.suffix == ".heic":
        import pillow_heif

        heif = pillow_heif.from_bytes(mode="RGB;16", size=(codes.shape[1], codes.shape[0]), data=codes.tobytes())
        heif.save(path, quality=90, color_primaries=1, transfer_characteristics=16, matrix_coefficients=1)
        return
    encoded = io.BytesIO()
    Image.fromarray((codes >> 8).astype(np.uint8)).save(encoded, "AVIF", quality=95, subsampling="4:4:4")
    data = bytearray(encoded.getvalue())
    transfer = data.index(b"colrnclx") + 10  # after the box's type, its colour type and the primaries
    data[transfer:transfer + 2] = (16).to_bytes(2, "big")
    path.write_bytes(data)


@pytest.mark.parametrize("suffix", [".heic", ".avif", ".png"])
def test_an_hdr_photo_is_tone_mapped_to_sdr_and_said(shared_data, tmp_path, suffix):
    # Its PQ code values were written as they stood into an sRGB-tagged file: a dim, flat, grey
    # picture (their spread half the photo's), and the detectors saw it so, without a word.
    source = tmp_path / f"hdr{suffix}"
    write_pq(pq_codes(shared_data / TWO_PEOPLE), source)
    result = veil(source, "--save-plan", tmp_path / "plan.json")
    assert result.exit_code == 0, result.output
    assert "an HDR photo (smpte2084 (PQ)): it was tone-mapped to SDR and written as sRGB" in result.stderr
    pixels = rgb_of(tmp_path / f"hdr.redacted{suffix}").astype(float)
    sdr = rgb_of(shared_data / TWO_PEOPLE).astype(float)
    outside = slice(420, None)  # below both faces
    assert np.abs(pixels[outside] - sdr[outside]).mean() < 14
    assert pixels[outside].std() > 0.85 * sdr[outside].std()
    faces = planned_faces(tmp_path / "plan.json")
    assert len(faces) == 2
    for face in faces:
        assert share_near(pixels[face_slice(face)], (0, 0, 0), 24) >= 0.95, "face not hidden"
    # The plan says how, as a video's does: the tone map's reference white and knee.
    record = json.loads((tmp_path / "plan.json").read_text())["media"][0]["detection"]["hdr_tone_mapped"]
    assert record["transfer"] == "smpte2084 (PQ)" and record["reference_white_nits"] and record["knee"]


def test_keep_icc_on_a_photo_whose_colour_box_was_converted_is_said(shared_data, tmp_path):
    # A Display P3 HEIF described by its colour box (no ICC profile) is converted to sRGB as read;
    # --keep-icc, which keeps ICC profiles, kept nothing of it, unsaid.
    import pillow_heif

    source = tmp_path / "p3.heic"
    rgb = rgb_of(shared_data / TWO_PEOPLE)
    pillow_heif.from_bytes(mode="RGB", size=(rgb.shape[1], rgb.shape[0]), data=rgb.tobytes()).save(
        source, quality=90, color_primaries=12, transfer_characteristics=13, matrix_coefficients=6)
    kept = veil(source, "-o", tmp_path / "kept.heic", "--keep-icc", "--save-plan", tmp_path / "plan.json")
    assert kept.exit_code == 0, kept.output
    assert ("--keep-icc: its colours were described by a colour box (Display P3 primaries), not an ICC profile, "
            "so they were converted to sRGB") in kept.stderr
    media = json.loads((tmp_path / "plan.json").read_text())["media"][0]
    assert media["detection"]["colour_box_converted"] == "Display P3"
    plain = veil(source, "-o", tmp_path / "plain.heic")  # not asked to keep anything: nothing to say
    assert plain.exit_code == 0 and "colour box" not in plain.stderr, plain.output


def test_a_monochrome_hdr_photo_is_tone_mapped_as_grey(shared_data, tmp_path):
    # A one-channel PQ HEIF ended in "unexpected error: OpenCV ... 'transform' ... a bug in veil".
    import pillow_heif

    grey = np.ascontiguousarray(pq_codes(shared_data / TWO_PEOPLE)[..., 1])
    source = tmp_path / "grey-hdr.heic"
    pillow_heif.from_bytes(mode="L;16", size=(grey.shape[1], grey.shape[0]), data=grey.tobytes()).save(
        source, quality=90, color_primaries=9, transfer_characteristics=16, matrix_coefficients=9)
    result = veil(source, "--save-plan", tmp_path / "plan.json")
    assert result.exit_code == 0, result.output
    assert "an HDR photo (smpte2084 (PQ)): it was tone-mapped" in result.stderr
    pixels = rgb_of(tmp_path / "grey-hdr.redacted.heic").astype(float)
    sdr = rgb_of(shared_data / TWO_PEOPLE).astype(float)[..., 1]
    assert np.abs(pixels[420:, :, 0] - sdr[420:]).mean() < 14  # the grey as the SDR photo's, below the faces
    assert len(planned_faces(tmp_path / "plan.json")) == 2


# --- pixel formats ---------------------------------------------------------------------------


@pytest.mark.parametrize("suffix, dropped", [(".jpg", True), (".bmp", True), (".png", False), (".webp", False)])
def test_transparency_a_format_cannot_hold_is_said(shared_data, tmp_path, suffix, dropped):
    # Written as JPEG or BMP, a transparent photo came out opaque, showing the colours stored under
    # its transparent pixels (an erased background, say), without a word.
    rgb = read_photo(shared_data / TWO_PEOPLE).pixels
    alpha = np.full(rgb.shape[:2], 255, np.uint8)
    alpha[:, : rgb.shape[1] // 4] = 0
    source = tmp_path / "cutout.png"
    Image.fromarray(np.dstack([rgb, alpha]), "RGBA").save(source)
    result = veil(source, "-o", tmp_path / f"out{suffix}")
    assert result.exit_code == 0, result.output
    assert ("its transparency (an alpha channel) was left out" in result.output) == dropped, result.output


def test_rgba_png_keeps_its_transparency_and_loses_the_face_and_its_outline(shared_data, tmp_path):
    rgb = read_photo(shared_data / TWO_PEOPLE).pixels
    height, width = rgb.shape[:2]
    alpha = np.tile(np.linspace(255, 16, width).astype(np.uint8), (height, 1))
    source = tmp_path / "cutout.png"
    Image.fromarray(np.dstack([rgb, alpha]), "RGBA").save(source)
    faces = detect(rgb)
    assert len(faces) >= 2

    result = veil(source)
    assert result.exit_code == 0, result.output
    with Image.open(tmp_path / "cutout.redacted.png") as image:
        assert image.mode == "RGBA"
        out = np.asarray(image)
    hidden = (out[:, :, :3] == 0).all(axis=2) & (out[:, :, 3] == 255)
    for face in faces:
        assert share_near(out[face_slice(face)][:, :, :3], (0, 0, 0), 0) >= 0.95, "face colour left under the alpha"
        # Opaque over the face: transparency there would keep the head's silhouette.
        assert (out[face_slice(face)][:, :, 3] == 255).mean() >= 0.95, "the face's outline survives in the alpha"
    far = np.ones(hidden.shape, bool)
    ys, xs = np.nonzero(out[:, :, 3] != alpha)
    far[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1] = False
    assert np.array_equal(out[:, :, 3][far], alpha[far]), "transparency changed away from the faces"
    assert hidden[out[:, :, 3] != alpha].all(), "alpha changed where nothing was hidden"


def test_16_bit_png_stays_16_bit_and_loses_the_face(shared_data, tmp_path):
    rgb = read_photo(shared_data / TWO_PEOPLE).pixels
    noise = np.random.default_rng(1).integers(0, 256, rgb.shape, dtype=np.uint16)
    deep = rgb.astype(np.uint16) * 256 + noise  # real detail in the low byte too
    source = tmp_path / "deep.png"
    cv2.imwrite(str(source), cv2.cvtColor(deep, cv2.COLOR_RGB2BGR))
    faces = detect(rgb)

    result = veil(source, "--save-plan", tmp_path / "plan.json")
    assert result.exit_code == 0, result.output
    out = cv2.imread(str(tmp_path / "deep.redacted.png"), cv2.IMREAD_UNCHANGED)
    assert out is not None and out.dtype == np.uint16, "output was reduced to 8 bits"
    out = cv2.cvtColor(out, cv2.COLOR_BGR2RGB)
    for face in faces:
        assert share_near(out[face_slice(face)], (0, 0, 0), 0) >= 0.95, "face not hidden"
    # Outside the hidden regions every 16-bit value is kept.
    untouched = np.ones(rgb.shape[:2], bool)
    for region in json.loads((tmp_path / "plan.json").read_text())["media"][0]["regions"]:
        _, x0, y0, x1, y1, *_ = region["boxes"][0]
        untouched[max(0, int(y0)) : int(np.ceil(y1)) + 1, max(0, int(x0)) : int(np.ceil(x1)) + 1] = False
    assert np.array_equal(out[untouched], deep[untouched])


def test_grayscale_jpeg_stays_grayscale(shared_data, tmp_path):
    source = tmp_path / "gray.jpg"
    with Image.open(shared_data / KIT_WITH_ROSE) as image:
        image.convert("L").save(source, quality=95)
    faces = [f for f in detect(read_photo(source).pixels) if f.score > 0.5]
    assert faces
    result = veil(source)
    assert result.exit_code == 0, result.output
    with Image.open(tmp_path / "gray.redacted.jpg") as image:
        assert image.mode == "L"
        out = np.asarray(image)[:, :, None]
    for face in faces:
        assert share_near(out[face_slice(face)], (0,), 24) >= 0.95, "face not hidden"


# --- failures ---------------------------------------------------------------------------------


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("veil: ")]


@pytest.mark.parametrize("kind", ["corrupt", "truncated"])
def test_unreadable_photo_fails_closed_with_a_one_line_error(shared_data, tmp_path, kind):
    folder = tmp_path / "a folder with a rather long name, so that the error line is long"
    folder.mkdir()
    if kind == "corrupt":
        source = folder / "random bytes.jpg"
        source.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
        reason = "not a photo, video or sound file"
    else:
        data = (shared_data / TWO_PEOPLE).read_bytes()
        source = folder / "truncated.jpg"
        source.write_bytes(data[: len(data) // 2])
        reason = "truncated"
    result = veil(source)
    assert result.exit_code != 0
    errors = error_lines(result.stderr)
    assert len(errors) == 1, result.stderr
    assert str(source) in errors[0] and reason in errors[0], errors[0]
    assert sorted(folder.iterdir()) == [source], "an output (or temporary file) was left behind"


def test_batch_writes_the_good_photos_and_reports_the_bad(shared_data, tmp_path):
    source = tmp_path / "in"
    copy_in(shared_data, TWO_PEOPLE, source)
    copy_in(shared_data, KIT_WITH_ROSE, source / "sub")
    (source / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not a photo")
    data = (shared_data / GROUP).read_bytes()
    (source / "sub" / "half.jpg").write_bytes(data[: len(data) // 2])

    result = veil(source, "--output-dir", tmp_path / "out")
    assert result.exit_code == 1
    assert (tmp_path / "out/two_people.jpg").is_file()
    assert (tmp_path / "out/sub/kit_with_rose.jpg").is_file()
    assert not (tmp_path / "out/broken.jpg").exists() and not (tmp_path / "out/sub/half.jpg").exists()
    assert "4 file(s)" in result.stderr and "2 failed" in result.stderr, result.stderr
    assert f"failed: {source / 'broken.jpg'}" in result.stderr
    assert f"failed: {source / 'sub' / 'half.jpg'}" in result.stderr
    assert leftovers(tmp_path) == []


def _damaged_avif_and_tiff(shared_data: Path, folder: Path) -> list[Path]:
    """An AVIF whose primary item is none it holds, one whose picture data is damaged, and a
    two-page TIFF whose second page has no height: Pillow raises RuntimeError and TypeError. And a
    HEIC whose primary item is none it holds, which Pillow does not recognise and FFmpeg reads as
    a video."""
    folder.mkdir(parents=True, exist_ok=True)
    with Image.open(shared_data / OBAMA) as photo:
        rgb = photo.convert("RGB")
    buffer = io.BytesIO()
    rgb.save(buffer, "AVIF", quality=80)
    no_item, bad_data = bytearray(buffer.getvalue()), bytearray(buffer.getvalue())
    at = no_item.find(b"pitm")  # size, "pitm", version and flags, then the primary item's number
    no_item[at + 8:at + 10] = (77).to_bytes(2, "big")
    bad_data[bad_data.find(b"mdat") + 4] ^= 0xFF
    buffer = io.BytesIO()
    rgb.save(buffer, "TIFF", save_all=True, append_images=[rgb])
    tiff = bytearray(buffer.getvalue())
    first = int.from_bytes(tiff[4:8], "little")  # Pillow writes little-endian TIFF
    second = int.from_bytes(tiff[first + 2 + 12 * int.from_bytes(tiff[first:first + 2], "little"):][:4], "little")
    for entry in range(second + 2, second + 2 + 12 * int.from_bytes(tiff[second:second + 2], "little"), 12):
        if int.from_bytes(tiff[entry:entry + 2], "little") == 257:  # ImageLength, made an unknown tag
            tiff[entry:entry + 2] = (65000).to_bytes(2, "little")
    buffer = io.BytesIO()
    rgb.save(buffer, "HEIF", quality=80)
    heic = bytearray(buffer.getvalue())
    at = heic.find(b"pitm")
    heic[at + 8:at + 10] = (77).to_bytes(2, "big")
    files = [folder / "no item.avif", folder / "bad data.avif", folder / "page two.tif", folder / "no item.heic"]
    for path, data in zip(files, (no_item, bad_data, tiff, heic)):
        path.write_bytes(data)
    return files


def test_a_damaged_avif_or_tiff_fails_alone_and_named(shared_data, tmp_path):
    """Pillow's AVIF reader raises RuntimeError, its TIFF reader TypeError, for damaged files: one
    in a folder refused the whole run ("unexpected RuntimeError ... a bug in veil", exit 2,
    nothing redacted, no file named); alone, it was called a bug in veil. The HEIC was refused as
    "a .jpg file cannot hold a video", and written as a video to `-o x.mp4`."""
    damaged = _damaged_avif_and_tiff(shared_data, tmp_path / "in")
    copy_in(shared_data, TWO_PEOPLE, tmp_path / "in")
    result = veil(tmp_path / "in", "--output-dir", tmp_path / "out")
    assert result.exit_code == 1, result.stderr
    assert (tmp_path / "out" / "two_people.jpg").is_file()
    assert "5 file(s)" in result.stderr and "4 failed" in result.stderr, result.stderr
    assert "bug in veil" not in result.stderr and "unexpected" not in result.stderr, result.stderr
    for path in damaged:
        assert f"failed: {path}" in result.stderr, result.stderr
        alone = veil(path, "-o", tmp_path / "alone.jpg")
        assert alone.exit_code == 1 and len(error_lines(alone.stderr)) == 1, alone.stderr
        assert "cannot decode" in alone.stderr and "bug in veil" not in alone.stderr, alone.stderr
        assert not (tmp_path / "alone.jpg").exists()
        as_video = veil(path, "-o", tmp_path / "alone.mp4")
        assert as_video.exit_code == 1 and "cannot write a photo as .mp4" in as_video.stderr, as_video.stderr
        assert not (tmp_path / "alone.mp4").exists()


def test_decompression_bomb_is_refused(tmp_path):
    from test_imagefile import bomb_png

    source = tmp_path / "bomb.png"
    source.write_bytes(bomb_png(30000, 30000))
    result = veil(source)
    assert result.exit_code != 0
    assert "megapixels" in result.stderr, result.stderr
    assert sorted(tmp_path.iterdir()) == [source]


def test_unwritable_format_leaves_nothing(shared_data, tmp_path):
    source = copy_in(shared_data, TWO_PEOPLE, tmp_path / "in")
    result = veil(source, "-o", tmp_path / "out" / "two_people.xyz")
    assert result.exit_code != 0
    assert "cannot write a photo as .xyz" in result.stderr
    assert not (tmp_path / "out").exists()
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("option, name", [("-o", "link.jpg"), ("--output-dir", "link")])
def test_an_output_through_a_link_to_nothing_is_refused_before_any_work(shared_data, tmp_path, option, name):
    # A dangling link as the output (or as its folder) passed the checks and failed after the
    # whole detection, "[Errno 17] File exists" or "appeared while veil was writing it".
    source = copy_in(shared_data, TWO_PEOPLE, tmp_path / "in")
    os.symlink(tmp_path / "nowhere", tmp_path / name)
    result = veil(source, option, tmp_path / name)
    assert result.exit_code != 0
    assert "is a symbolic link that leads nowhere" in result.stderr, result.stderr
    assert leftovers(tmp_path) == []



@pytest.mark.parametrize("options", [["--output-dir", "loop"], ["--output-dir", "out", "--manifest", "loop"]])
def test_a_folders_manifest_through_a_loop_of_links_is_refused_in_one_line(shared_data, tmp_path, options):
    # "unexpected RuntimeError: Symlink loop ...; this is a bug in veil" (Python before 3.13 raises so).
    copy_in(shared_data, TWO_PEOPLE, tmp_path / "in")
    os.symlink(tmp_path / "loop", tmp_path / "loop")
    result = veil(tmp_path / "in", *[tmp_path / o if o in ("loop", "out") else o for o in options])
    assert result.exit_code == 2 and "a symbolic link that leads nowhere (or in a loop)" in result.stderr, result.stderr
    assert "bug in veil" not in result.stderr

def test_option_values_are_taken_in_capitals_alike(shared_data, tmp_path):
    """--hide FACES, --color BLACK and --codec HEVC were taken; --mode FILL, --shape BOX, --voice
    MUTE and --preset FAST were refused as no such choice."""
    source = copy_in(shared_data, OBAMA, tmp_path)
    plan = tmp_path / "plan.json"
    result = veil(source, "-o", tmp_path / "out.jpg", "--mode", "PIXELATE", "--shape", "BOX", "--hide", "FACES",
                  "--color", "BLACK", "--voice", "MUTE", "--preset", "FAST", "--save-plan", plan)
    assert result.exit_code == 0, result.output
    saved = json.loads(plan.read_text())
    assert saved["render"]["mode"] == "pixelate" and saved["media"][0]["regions"]
    assert {region["shape"] for region in saved["media"][0]["regions"]} == {"box"}


def test_file_names_with_markup_characters_are_reported_verbatim(tmp_path):
    source = tmp_path / "holiday [edited] [bold] :smile:.jpg"
    source.write_bytes(b"not a photo")
    result = veil(source)
    assert result.exit_code != 0
    assert error_lines(result.stderr) == [f"veil: {source}: not a photo, video or sound file veil can read"]


# --- output names and places -------------------------------------------------------------------


def test_odd_file_name_gets_a_redacted_sibling(shared_data, tmp_path):
    source = copy_in(shared_data, TWO_PEOPLE, tmp_path, "ph oto é.jpg")
    before = source.read_bytes()
    result = veil_subprocess(source.name, cwd=tmp_path)  # the real entry point, a relative non-ASCII name
    assert result.returncode == 0, result.stderr
    out = tmp_path / "ph oto é.redacted.jpg"
    assert out.is_file() and rgb_of(out).shape == rgb_of(source).shape
    assert source.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ph oto é.jpg", "ph oto é.redacted.jpg"]


def test_output_option_names_the_file(shared_data, tmp_path):
    source = copy_in(shared_data, TWO_PEOPLE, tmp_path / "in")
    target = tmp_path / "elsewhere" / "new name.png"
    result = veil(source, "-o", target)
    assert result.exit_code == 0, result.output
    with Image.open(target) as image:
        assert image.format == "PNG"
    assert sorted(p.name for p in (tmp_path / "in").iterdir()) == ["two_people.jpg"]
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("how", ["-o", "--output-dir"])
def test_input_is_never_overwritten(shared_data, tmp_path, how):
    source = copy_in(shared_data, TWO_PEOPLE, tmp_path)
    before = source.read_bytes()
    result = veil(source, how, source if how == "-o" else tmp_path)
    assert result.exit_code != 0
    # Into its own folder, refused before any work (the manifest of the failure was left there).
    assert ("overwrite the input" if how == "-o" else f"is the folder of {source} being redacted") in result.stderr
    assert source.read_bytes() == before
    assert sorted(tmp_path.iterdir()) == [source]  # nothing else written


def test_inputs_with_the_same_name_never_share_an_output(shared_data, tmp_path):
    first = copy_in(shared_data, TWO_PEOPLE, tmp_path / "a", "photo.jpg")
    second = copy_in(shared_data, KIT_WITH_ROSE, tmp_path / "b", "photo.jpg")
    result = veil(first, second, "--output-dir", tmp_path / "out")
    assert result.exit_code == 1
    assert (f"veil: {second}: the output of {second} ({tmp_path / 'out' / 'photo.jpg'}) would overwrite "
            f"the output of {first}") in result.stderr
    assert rgb_of(tmp_path / "out" / "photo.jpg").shape == rgb_of(first).shape  # the first one's output, kept


@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]], ids=["refused", "overwrite"])
def test_outputs_whose_names_differ_only_in_case_are_one_output(shared_data, tmp_path, overwrite):
    """IMG_1.jpg and img_1.jpg (two photos, fine on ext4) written with --output-dir to an exFAT,
    NTFS or macOS drive become one file: with --overwrite the second replaced the first, both
    recorded ok (the first's recorded hash then false). Refused on every drive, as the same name is."""
    first = copy_in(shared_data, TWO_PEOPLE, tmp_path / "src", "IMG_1.jpg")
    second = copy_in(shared_data, KIT_WITH_ROSE, tmp_path / "src", "img_1.jpg")
    out = tmp_path / "out"
    result = veil(tmp_path / "src", "--output-dir", out, *overwrite)
    assert result.exit_code == 1, result.output
    assert (f"veil: {second}: the output of {second} ({out / 'img_1.jpg'}) would overwrite the output of {first} "
            f"({out / 'IMG_1.jpg'}: names that differ only in case, or in how an accent is written, are one file on "
            "exFAT, NTFS and macOS drives)") in result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["IMG_1.jpg", "veil-manifest.jsonl"]
    assert rgb_of(out / "IMG_1.jpg").shape == rgb_of(first).shape  # the first one's output
    outcomes = [json.loads(line) for line in (out / "veil-manifest.jsonl").read_text().splitlines()]
    assert {Path(r["path"]).name: r["status"] for r in outcomes if r["status"] != "started"} == {
        "IMG_1.jpg": "ok", "img_1.jpg": "failed"}


def test_an_output_never_replaces_another_input(shared_data, tmp_path):
    source = copy_in(shared_data, TWO_PEOPLE, tmp_path)
    other = copy_in(shared_data, KIT_WITH_ROSE, tmp_path, "two_people.redacted.jpg")
    before = other.read_bytes()
    result = veil(source, other)
    assert result.exit_code == 1 and "would overwrite" in result.stderr
    assert other.read_bytes() == before
    assert (tmp_path / "two_people.redacted.redacted.jpg").is_file()


def test_hidden_and_unfinished_files_in_folders_are_not_inputs(shared_data, tmp_path):
    folder = tmp_path / "in"
    copy_in(shared_data, TWO_PEOPLE, folder)
    copy_in(shared_data, TWO_PEOPLE, folder, ".two_people.abc123.partial.jpg")  # an interrupted run's temp file
    copy_in(shared_data, TWO_PEOPLE, folder, "._two_people.jpg")  # a macOS resource fork
    result = veil(folder, "--json")
    assert result.exit_code == 0, result.output
    assert [Path(r["input"]).name for r in json.loads(result.stdout)["results"]] == ["two_people.jpg"]


def test_report_or_plan_never_replaces_an_input(shared_data, tmp_path):
    source = copy_in(shared_data, TWO_PEOPLE, tmp_path)
    before = source.read_bytes()
    for option in ("--report", "--save-plan"):
        result = veil(source, option, source)
        assert result.exit_code == 2 and "would overwrite the input" in result.output, result.output
        assert source.read_bytes() == before
        assert not (tmp_path / "two_people.redacted.jpg").exists()


def test_a_plan_report_or_manifest_never_replaces_a_photo_even_with_overwrite(shared_data, tmp_path):
    """`--save-plan b.jpg --overwrite`, a slip of the argument: b.jpg, a photo that is not an
    input of the run, became the plan's JSON text."""
    source = copy_in(shared_data, TWO_PEOPLE, tmp_path / "in")
    other = copy_in(shared_data, TWO_PEOPLE, tmp_path, "holiday.jpg")
    before = other.read_bytes()
    for option in ("--report", "--save-plan"):
        result = veil(source, "-o", tmp_path / "out.jpg", option, other, "--overwrite")
        assert result.exit_code == 2 and f"{other} would replace a photo file: name another file" in result.output, \
            result.output
        assert other.read_bytes() == before and not (tmp_path / "out.jpg").exists()
    # A recording FFmpeg cannot open (cut short before its index) is known by its name.
    broken = tmp_path / "crashed.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(200))
    result = veil(source, "-o", tmp_path / "out.jpg", "--save-plan", broken, "--overwrite")
    assert result.exit_code == 2 and f"{broken} would replace a .mp4 file" in result.output, result.output


@pytest.mark.parametrize("option, name, said", [
    ("--manifest", "records/", "records/: name a file, not a folder"),
    ("--report", "audit/.", "audit/.: name a file, not a folder"),
    ("--report", "", "an empty name: name a file, not a folder"),
    ("--output-dir", "", "--output-dir names nothing (an empty name)"),
    ("-o", "", "-o names nothing (an empty name)"),
], ids=["manifest-folder", "report-dot", "report-empty", "output-dir-empty", "output-empty"])
def test_a_name_that_names_no_file_is_refused(shared_data, tmp_path, option, name, said):
    # --manifest records/ made a file named records; --output-dir "" wrote into the current folder.
    copy_in(shared_data, TWO_PEOPLE, tmp_path / "in", "a.jpg")
    run = veil_subprocess(tmp_path / "in", option, name, cwd=tmp_path)
    assert run.returncode == 2 and said in run.stderr, run.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"] and len(list((tmp_path / "in").iterdir())) == 1


def test_an_empty_input_name_is_refused_not_taken_for_the_current_folder(shared_data, tmp_path):
    # `veil "$PHOTOS"` with the variable unset redacted everything under the current folder.
    copy_in(shared_data, TWO_PEOPLE, tmp_path / "in", "a.jpg")
    for command in ([], ["review"]):
        run = veil_subprocess(*command, "", cwd=tmp_path / "in")
        assert run.returncode == 2 and "an input names nothing (an empty name)" in run.stderr, run.stderr
        assert [p.name for p in (tmp_path / "in").iterdir()] == ["a.jpg"]


def test_an_output_named_as_the_report_or_the_plan_is_refused(shared_data, tmp_path):
    # The photo failed and the run went on, writing the report's JSON under the photo's name.
    source = copy_in(shared_data, TWO_PEOPLE, tmp_path / "in")
    for option in ("--report", "--save-plan"):
        result = veil(source, "-o", tmp_path / "x.jpg", option, tmp_path / "x.jpg")
        assert result.exit_code == 2 and "would overwrite the" in result.output, result.output
        assert leftovers(tmp_path) == [] and not (tmp_path / "x.jpg").exists()


def test_output_names_a_file_system_cannot_hold_are_refused_in_words(shared_data, tmp_path):
    source = copy_in(shared_data, TWO_PEOPLE, tmp_path, "a" * 246 + ".jpg")
    result = veil(source)
    assert result.exit_code == 1 and "is longer than file systems take (255 bytes): name it with -o" in result.output
    (tmp_path / "afile").write_text("")
    result = veil(source, "--output-dir", tmp_path / "afile")  # refused before any work: its manifest goes there
    assert result.exit_code == 2 and "afile is a file, not a folder" in result.output


def test_output_dir_mirrors_subfolders_and_summary_counts(shared_data, tmp_path):
    images = sorted((shared_data / "wider_face_dev/images/12--Group").glob("*.jpg"))[:3]
    source = tmp_path / "in"
    for path, folder in zip(images, ["", "a", "a/b"]):
        copy_in(shared_data, str(path.relative_to(shared_data)), source / folder)
    (source / "notes.txt").write_text("not media: skipped inside folders")

    result = veil(source, "--output-dir", tmp_path / "out", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    expected = {tmp_path / "out" / folder / path.name for path, folder in zip(images, ["", "a", "a/b"])}
    assert {Path(r["output"]) for r in summary["results"]} == expected
    assert all(p.is_file() for p in expected)
    manifest = tmp_path / "out" / "veil-manifest.jsonl"
    assert sorted(p for p in (tmp_path / "out").rglob("*") if p.is_file()) == sorted(expected | {manifest})
    assert summary["files"] == 3 and summary["failed"] == 0
    assert summary["faces"] == sum(r["faces"] for r in summary["results"]) >= 3
    assert [s["path"] for s in summary["skipped_files"]] == [str(source / "notes.txt")]
    # A second run finds every file done (the manifest) and redoes nothing.
    before = {p: p.stat().st_mtime_ns for p in expected}
    again = veil(source, "--output-dir", tmp_path / "out", "--quiet", "--json")
    assert again.exit_code == 0 and json.loads(again.stdout)["already_done"] == 3
    # Without the manifest's word, existing outputs are refused unless asked, and nothing is written.
    manifest.unlink()
    refused = veil(source, "--output-dir", tmp_path / "out", "--quiet")
    assert refused.exit_code == 1 and refused.stderr.count("exists: use --overwrite") >= 3, refused.stderr
    assert {p: p.stat().st_mtime_ns for p in expected} == before
    replaced = veil(source, "--output-dir", tmp_path / "out", "--quiet", "--overwrite")
    assert replaced.exit_code == 0 and replaced.output == ""


# --- plans ------------------------------------------------------------------------------------


def test_saved_plan_rerenders_identically_and_edits_take_effect(shared_data, tmp_path):
    source = copy_in(shared_data, TWO_PEOPLE, tmp_path)
    plan = tmp_path / "plan.json"
    first = tmp_path / "first.png"
    assert veil(source, "-o", first, "--save-plan", plan).exit_code == 0
    saved = json.loads(plan.read_text())
    regions = saved["media"][0]["regions"]
    assert len(regions) == 2

    again = tmp_path / "again.png"
    result = veil("--plan", plan, "-o", again)
    assert result.exit_code == 0, result.output
    assert again.read_bytes() == first.read_bytes(), "re-rendering the saved plan changed the output"

    # The reviewer decides the first person may be shown: delete that region.
    kept, removed = regions[1], regions[0]
    saved["media"][0]["regions"] = [kept]
    plan.write_text(json.dumps(saved))
    edited = tmp_path / "edited.png"
    assert veil("--plan", plan, "-o", edited).exit_code == 0
    original, out = rgb_of(source), rgb_of(edited)
    for region, visible in ((removed, True), (kept, False)):
        _, x0, y0, x1, y1, *_ = region["boxes"][0]
        centre = out[int((y0 + y1) / 2) - 10 : int((y0 + y1) / 2) + 10, int((x0 + x1) / 2) - 10 : int((x0 + x1) / 2) + 10]
        if visible:  # no detection ran: the deleted face is shown as it was
            assert np.array_equal(centre, original[int((y0 + y1) / 2) - 10 : int((y0 + y1) / 2) + 10, int((x0 + x1) / 2) - 10 : int((x0 + x1) / 2) + 10])
        else:
            assert share_near(centre, (0, 0, 0), 0) == 1.0


def test_saved_plan_keeps_the_chosen_mode(shared_data, tmp_path):
    source = copy_in(shared_data, TWO_PEOPLE, tmp_path)
    first, again = tmp_path / "first.png", tmp_path / "again.png"
    plan = tmp_path / "plan.json"
    assert veil(source, "--mode", "pixelate", "--blocks", "5", "-o", first, "--save-plan", plan).exit_code == 0
    assert json.loads(plan.read_text())["render"] == {"mode": "pixelate", "color": [0, 0, 0], "blocks": 5, "voice": "keep"}
    assert veil("--plan", plan, "-o", again).exit_code == 0
    assert again.read_bytes() == first.read_bytes(), "the plan's render settings were not used"
    # Options given explicitly still override the plan.
    filled = tmp_path / "filled.png"
    assert veil("--plan", plan, "-o", filled, "--mode", "fill").exit_code == 0
    assert filled.read_bytes() != first.read_bytes()


def test_invalid_plan_is_refused_with_exit_2(shared_data, tmp_path):
    source = copy_in(shared_data, TWO_PEOPLE, tmp_path)
    plan = tmp_path / "plan.json"
    assert veil(source, "--dry-run", "--save-plan", plan).exit_code == 0
    data = json.loads(plan.read_text())
    data["media"][0]["regions"][0]["shape"] = "circle"
    plan.write_text(json.dumps(data))
    result = veil("--plan", plan)
    assert result.exit_code == 2
    assert "not a valid veil plan" in result.stderr and "shape" in result.stderr, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plan.json", "two_people.jpg"]


def test_plan_for_a_changed_photo_is_refused(shared_data, tmp_path):
    source = copy_in(shared_data, TWO_PEOPLE, tmp_path)
    plan = tmp_path / "plan.json"
    assert veil(source, "--dry-run", "--save-plan", plan).exit_code == 0
    # Another photo of the same size now sits under that name: the plan's boxes are not its faces.
    pixels = read_photo(source).pixels[:, ::-1]
    Image.fromarray(np.ascontiguousarray(pixels)).save(source, quality=95)
    result = veil("--plan", plan)
    assert result.exit_code != 0
    assert "changed" in result.stderr, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plan.json", "two_people.jpg"]


# --- output modes of the command ----------------------------------------------------------------


def test_options_for_videos_typed_for_photos_alone_are_said_to_do_nothing(shared_data, tmp_path):
    # `--crf 30 --start 2` on a folder of photos did nothing, unsaid, and the report recorded them as
    # settings, as if they had acted; --keep-icc does act on photos.
    photo = copy_in(shared_data, TWO_PEOPLE, tmp_path)
    report = tmp_path / "audit.json"
    result = veil_subprocess(photo, "-o", tmp_path / "out.jpg", "--crf", "30", "--start", "2", "--keep-icc", "--json",
                             "--report", report)
    assert result.returncode == 0, result.stderr
    line = "--crf, --start act on videos only, and there are none among the inputs: not used"
    assert f"veil: {line}" in result.stderr and "keep-icc" not in result.stderr, result.stderr
    assert json.loads(result.stdout)["notes"] == [line]
    assert json.loads(report.read_text())["settings"]["acted_on_nothing"] == ["--crf", "--start"]
    assert "acted on no file (not used)</th><td>--crf, --start" in report.with_suffix(".html").read_text()
    # Sound options on a photo, and pixelation's blocks for a fill, were recorded as settings that ran.
    # (--salvage acts on photos: a damaged one is written, not refused.)
    idle = veil_subprocess(photo, "-o", tmp_path / "idle.jpg", "--voice", "anonymise", "--salvage", "--blocks", "2",
                           "--json", "--report", tmp_path / "idle.json")
    assert idle.returncode == 0, idle.stderr
    lines = ["--voice acts on videos and sound files only, and there are none among the inputs: not used",
             "--blocks acts with --mode pixelate only, and the regions are hidden by fill: not used"]
    assert json.loads(idle.stdout)["notes"] == lines, idle.stdout
    assert json.loads((tmp_path / "idle.json").read_text())["settings"]["acted_on_nothing"] == ["--voice", "--blocks"]
    # A file that is not there could be a video: it fails on its own, and no option is said to do nothing.
    missing = veil_subprocess(tmp_path / "missing.mp4", "--voice", "mute")
    assert missing.returncode != 0 and "acts on" not in missing.stderr, missing.stderr
    pixelated = veil_subprocess(photo, "-o", tmp_path / "blocks.jpg", "--mode", "pixelate", "--blocks", "2", "--json")
    assert pixelated.returncode == 0 and json.loads(pixelated.stdout)["notes"] == [], pixelated.stdout


def test_dry_run_writes_no_media_and_json_counts_faces(shared_data, tmp_path):
    source = copy_in(shared_data, GROUP, tmp_path)
    result = veil(source, "--dry-run", "--json", "--save-plan", tmp_path / "plan.json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    regions = json.loads((tmp_path / "plan.json").read_text())["media"][0]["regions"]
    assert summary["faces"] == len(regions) >= 15
    assert summary["results"] == [{"input": str(source), "output": None, "faces": len(regions), "regions": len(regions),
                                   "regions_by_kind": {"face": len(regions)}, "error": None, "notes": [],
                                   "already_done": False}]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["12_Group_Group_12_Group_Group_12_28.jpg", "plan.json"]


def test_quiet_prints_nothing_on_success(shared_data, tmp_path):
    source = copy_in(shared_data, TWO_PEOPLE, tmp_path)
    result = veil(source, "--quiet")
    assert result.exit_code == 0
    assert result.stdout == "" and result.stderr == ""
    assert (tmp_path / "two_people.redacted.jpg").is_file()


def test_color_option_sets_the_fill(shared_data, tmp_path):
    source = copy_in(shared_data, TWO_PEOPLE, tmp_path)
    out = tmp_path / "out.png"
    assert veil(source, "--color", "#ff00ff", "-o", out).exit_code == 0
    pixels = rgb_of(out)
    for face in detect(read_photo(source).pixels):
        assert share_near(pixels[face_slice(face)], (255, 0, 255), 0) >= 0.95
    bad = veil(source, "--color", "fuchsia-ish")
    assert bad.exit_code == 2 and "not a colour" in bad.output


def test_an_output_name_near_the_longest_a_file_system_takes_is_written(shared_data, tmp_path):
    # 241 bytes of name, legal; the unfinished file beside it, longer, is named shorter.
    source = copy_in(shared_data, TWO_PEOPLE, tmp_path, name="記" * 79 + ".jpg")
    out = tmp_path / ("記" * 79 + ".png")
    result = veil(source, "-o", out)
    assert result.exit_code == 0, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([source.name, out.name])


def test_the_library_refuses_what_would_hide_nothing(shared_data, tmp_path):
    # The command line and the plan schema bound these; a library caller's reached the renderer,
    # where a mode it did not know drew nothing: every face written visible, exit clean.
    import veil
    from veil.plan import RenderSettings

    for wrong in ({"mode": "none"}, {"mode": "Fill"}, {"mode": "pixelate", "blocks": 1000},
                  {"blocks": 0}, {"color": (300, 0, 0)}, {"voice": "silence"}):
        with pytest.raises(ValueError):
            RenderSettings(**wrong)
    with pytest.raises(TypeError, match="RenderSettings, not dict"):
        veil.redact_image(shared_data / TWO_PEOPLE, tmp_path / "out.jpg", settings={"mode": "fill"})
    assert not (tmp_path / "out.jpg").exists()
    # Floating-point pixels (0..1) looked black to the detector: no face, and no word of why.
    rgb = rgb_of(shared_data / TWO_PEOPLE)
    assert len(detect(rgb)) >= 2
    with pytest.raises(ValueError, match="8- or 16-bit pixels"):
        detect(rgb / 255.0)
    for shape in ((0, 0, 3), (2, 10, 10, 3), (10, 10, 5)):
        with pytest.raises(ValueError, match="height x width"):
            detect(np.zeros(shape, np.uint8))
    with pytest.raises(TypeError):
        detect(str(shared_data / TWO_PEOPLE))


def test_the_library_finds_a_face_drawn_in_a_pictures_transparency(shared_data):
    # detect() looked at the colour channels only, where redact_image also looks at the picture
    # over white and over black: a face drawn in the transparency of blank colour channels was
    # not found, and a caller hiding detect()'s boxes would publish it.
    import veil

    grey = cv2.cvtColor(rgb_of(shared_data / TWO_PEOPLE), cv2.COLOR_RGB2GRAY)
    drawn_in_alpha = np.dstack([np.zeros_like(grey)] * 3 + [grey])
    assert len(veil.detect(drawn_in_alpha)) >= 2


def test_the_library_names_a_video_or_sound_output_by_its_kind(tmp_path):
    # Without an output, a video or sound file was given a photo's name and refused ("a .png file
    # cannot hold a video"), although the documented call names it <name>.redacted.<ext>.
    import av
    import veil

    from video_support import clip_of

    clip = clip_of(tmp_path / "clip.mp4", [np.full((64, 64, 3), 90, np.uint8)] * 5)
    veil.redact_image(clip)
    assert (tmp_path / "clip.redacted.mp4").is_file()
    sound = tmp_path / "tone.wav"
    with av.open(str(sound), "w") as out:
        stream = out.add_stream("pcm_s16le", rate=16000, layout="mono")
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 8000), np.int16), format="s16", layout="mono")
        frame.sample_rate = 16000
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(packet)
    veil.redact_image(sound, settings=veil.RenderSettings(voice="mute"))
    assert (tmp_path / "tone.redacted.wav").is_file()


def test_the_library_leaves_no_core_dump_of_its_callers_process(shared_data, tmp_path):
    # Only the command's processes turned core dumps off: a library caller that crashed while veil
    # held the decoded pictures left a core with the unredacted face in it.
    import subprocess
    import sys

    script = (
        "import resource, sys, numpy, veil\n"
        "soft, hard = resource.getrlimit(resource.RLIMIT_CORE)\n"
        "resource.setrlimit(resource.RLIMIT_CORE, (hard, hard))\n"
        "veil.{}\n"
        "print(resource.getrlimit(resource.RLIMIT_CORE), open('/proc/self/coredump_filter').read().strip())\n")
    for call in ("detect(numpy.zeros((64, 64, 3), numpy.uint8))",
                 f"redact_image({str(shared_data / TWO_PEOPLE)!r}, {str(tmp_path / 'out.jpg')!r})"):
        done = subprocess.run([sys.executable, "-c", script.format(call)], capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        soft, hard, dump_filter = done.stdout.replace("(", "").replace(")", "").replace(",", " ").split()
        # The soft limit only: the caller may raise it again once veil is done (its hard limit is its own).
        assert soft == "0" and dump_filter == "00000000", done.stdout


def test_the_library_replaces_a_file_only_when_told(shared_data, tmp_path):
    # redact_image replaced any file at `output` (overwrite was always on), where the command refuses.
    import veil

    contract = tmp_path / "contract.jpg"
    contract.write_bytes(b"my only copy of the contract")
    with pytest.raises(FileExistsError, match=f"{contract} exists: pass overwrite=True to replace it"):
        veil.redact_image(shared_data / TWO_PEOPLE, contract)
    assert contract.read_bytes() == b"my only copy of the contract"
    assert veil.redact_image(shared_data / TWO_PEOPLE, contract, overwrite=True).regions
    assert rgb_of(contract).shape == rgb_of(shared_data / TWO_PEOPLE).shape
    # Never the input, overwrite or not, and the refusal names it (it said only "the output would
    # overwrite the input").
    original = contract.read_bytes()
    (tmp_path / "link.jpg").symlink_to(contract)
    # A second hard link to it too: refused before detection (it was refused once the photo was
    # redacted, as a name "replaced or linked while veil worked").
    os.link(contract, tmp_path / "hard.jpg")
    for output in (contract, tmp_path / "link.jpg", tmp_path / "hard.jpg"):
        with pytest.raises(ValueError, match=f"^{re.escape(str(contract))}: the output would overwrite the input$"):
            veil.redact_image(contract, output, overwrite=True)
    # A name too long for a file system, named by a file:// URL, is said as a path's is (the
    # same-file check raised "File name too long" from the file system).
    with pytest.raises(ValueError, match="is longer than file systems take"):
        veil.redact_image(contract, (tmp_path / ("a" * 300 + ".jpg")).as_uri(), overwrite=True)
    # Nor the input named once as a file:// URL and once as a path (it was replaced, either way round).
    for source, output in ((contract.as_uri(), contract), (contract, contract.as_uri())):
        with pytest.raises(ValueError, match="the output would overwrite the input$"):
            veil.redact_image(source, output, overwrite=True)
    assert contract.read_bytes() == original


def test_the_library_raises_the_errors_it_names(shared_data, tmp_path, monkeypatch):
    # A missing file raised ValueError where the docstring promised OSError; a folder as the output
    # was first refused as existing ("pass overwrite=True"), then as a folder; output="" wrote the
    # default name; a big-endian 16-bit array was refused as "not uint16".
    import veil

    monkeypatch.chdir(tmp_path)
    source = copy_in(shared_data, TWO_PEOPLE, tmp_path)
    (tmp_path / "folder").mkdir()
    with pytest.raises(FileNotFoundError, match="no such file: 'gone.jpg'"):
        veil.redact_image("gone.jpg", "out.jpg")
    with pytest.raises(IsADirectoryError, match="takes one file"):
        veil.redact_image(tmp_path / "folder", "out.jpg")
    for overwrite in (False, True):
        with pytest.raises(IsADirectoryError, match="the output is a folder: name a file in it"):
            veil.redact_image(source, "folder", overwrite=overwrite)
    with pytest.raises(ValueError, match="output is an empty name"):
        veil.redact_image(source, "")
    with pytest.raises(ValueError, match="source is an empty name"):  # it was taken for the current folder
        veil.redact_image("", "out.jpg")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder", source.name]
    # A command line's wording, "--overwrite or not", reached the caller; without overwrite=True, a pipe
    # was said to exist, "pass overwrite=True to replace it", which then refused it all the same.
    os.mkfifo(tmp_path / "pipe.jpg")
    for overwrite in (False, True):
        with pytest.raises(ValueError, match=r"is a pipe, .*, overwrite=True or not: name a file$"):
            veil.redact_image(source, "pipe.jpg", overwrite=overwrite)
    (tmp_path / "pipe.jpg").unlink()
    rgb = rgb_of(source).astype(np.uint16) * 257
    assert veil.detect(rgb.astype(">u2")) == veil.detect(rgb)
    # The plan returned saved as the README says, a name given as a string (it raised AttributeError).
    plan = veil.redact_image(source, "out.jpg")
    veil.Plan(media=[plan], render=veil.RenderSettings()).save("plan.json", overwrite=False)
    assert veil.Plan.load(tmp_path / "plan.json").media[0].regions


def test_the_library_writes_a_url_output_to_its_store(shared_data, tmp_path, monkeypatch):
    # Path() made memory://bucket/o.jpg the local file ./memory:/bucket/o.jpg.
    import fsspec
    import veil

    monkeypatch.chdir(tmp_path)
    store = fsspec.filesystem("memory")  # one per process
    plan = veil.redact_image(str(shared_data / TWO_PEOPLE), "memory://bucket/o.jpg")
    assert list(tmp_path.iterdir()) == []
    written = tmp_path / "fetched.jpg"
    written.write_bytes(store.cat_file("/bucket/o.jpg"))
    assert len(plan.regions) >= 2 and rgb_of(written).shape == rgb_of(shared_data / TWO_PEOPLE).shape
    written.unlink()
    # A URL input too, and an existing URL output is refused likewise.
    plan = veil.redact_image("memory://bucket/o.jpg", "memory://bucket/again.jpg")
    assert plan.path == "memory://bucket/o.jpg" and store.exists("/bucket/again.jpg")
    with pytest.raises(FileExistsError, match="memory://bucket/o.jpg exists"):
        veil.redact_image(str(shared_data / TWO_PEOPLE), "memory://bucket/o.jpg")
    # The input named again with another slash is the input (it was replaced with overwrite=True).
    kept = store.cat_file("/bucket/o.jpg")
    with pytest.raises(ValueError, match="the output would overwrite the input$"):
        veil.redact_image("memory://bucket/o.jpg", "memory:///bucket/o.jpg", overwrite=True)
    assert store.cat_file("/bucket/o.jpg") == kept
    # A URL that names nothing, or a folder, is what a path naming them is (it was a ValueError).
    with pytest.raises(FileNotFoundError, match="no such file: 'memory://bucket/gone.jpg'"):
        veil.redact_image("memory://bucket/gone.jpg", "memory://bucket/out.jpg")
    store.makedirs("/bucket/folder", exist_ok=True)
    store.pipe_file("/bucket/folder/in.jpg", kept)
    with pytest.raises(IsADirectoryError, match="takes one file"):
        veil.redact_image("memory://bucket/folder", "memory://bucket/out.jpg")
    store.rm("/bucket", recursive=True)  # for the other tests in this process


def test_the_library_warns_of_what_it_left_out(shared_data, tmp_path):
    # result.notes was dropped: the caller never heard that part of the file was left out (or,
    # for a video, that its voices were not protected).
    import veil

    source = copy_in(shared_data, TWO_PEOPLE, tmp_path)
    with source.open("ab") as file:
        file.write(b"appended bytes no viewer shows")
    with pytest.warns(UserWarning, match=f"{source}: 30 bytes stored after the picture .* were left out") as caught:
        veil.redact_image(source, tmp_path / "out.jpg")
    assert [warning.category for warning in caught] == [veil.RedactionWarning]
    assert (tmp_path / "out.jpg").is_file()


def test_an_unfinished_output_of_a_killed_run_is_named(shared_data, tmp_path):
    # SIGKILL leaves no clean-up: the hidden partial file stayed, unmentioned, run after run.
    source = copy_in(shared_data, TWO_PEOPLE, tmp_path)
    stale = tmp_path / ".two_people.redacted.k1ll3d00.partial.jpg"
    stale.write_bytes(b"half a photo")
    result = veil(source, "-q")
    assert result.exit_code == 0
    assert f"1 unfinished output(s) of an interrupted run lie beside this run's outputs, e.g. {stale}" in result.stderr
    assert stale.exists()  # another veil may be writing it: named, not removed
    # Only beside the output it would have become: not beside a video or a PNG of the same name.
    assert partial_outputs(tmp_path / "two_people.redacted.mp4") == []
    assert partial_outputs(tmp_path / "two_people.redacted.png") == []


@pytest.mark.parametrize("size", [(1, 1), (2, 1), (1, 5), (2, 2), (5, 1)])
def test_a_photo_a_pixel_or_two_across_is_written(tmp_path, size):
    # The check for a sideways smear compares pixels two apart: under 3 px it failed ("unexpected
    # AttributeError ... this is a bug in veil") and the file was not written.
    width, height = size
    source = tmp_path / "dot.png"
    Image.fromarray(np.full((height, width, 3), 128, np.uint8)).save(source)
    result = veil(source, "-o", tmp_path / "out.png", "-q")
    assert result.exit_code == 0, result.stderr
    assert rgb_of(tmp_path / "out.png").shape == (height, width, 3)


def test_a_rerun_names_the_manifest_beside_the_photos_as_veils_own(shared_data, tmp_path):
    # Without --output-dir the manifest lies among the photos: the rerun listed it as "not a photo,
    # video or sound file veil can read", as if the user had left something unreadable there.
    for name in ("a.jpg", "b.jpg"):
        shutil.copy(shared_data / TWO_PEOPLE, tmp_path / name)
    assert veil(tmp_path, "-q").exit_code == 0
    result = veil(tmp_path, "--json")
    assert result.exit_code == 0, result.stderr
    skipped = {Path(s["path"]).name: s["reason"] for s in json.loads(result.stdout)["skipped_files"]}
    assert skipped["veil-manifest.jsonl"] == "veil's manifest, the record of a run"


def test_an_output_whose_temporary_file_cannot_be_made_is_said_by_its_own_name(shared_data, tmp_path, monkeypatch):
    # A disk with no inode left: the line named veil's hidden '.a.x1y2z3.partial.jpg', not the output.
    import tempfile

    def no_inode_left(*args, **kwargs):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(tempfile, "mkstemp", no_inode_left)
    photo = copy_in(shared_data, TWO_PEOPLE, tmp_path)
    result = veil(photo, "-o", tmp_path / "out.jpg")
    assert result.exit_code == 1
    assert f"cannot write {tmp_path / 'out.jpg'}: No space left on device" in result.output and "partial" not in result.output
