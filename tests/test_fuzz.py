"""Damaged real files: veil fails closed, never with a traceback, a hang or a left-over file.

A small fixed sample of bench/fuzz.py's variants (its generator, imported by path): truncations,
bit flips, zero bytes and a wrong extension of one real photo and one short real video. The
full run (500 variants) is `python bench/fuzz.py`.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pillow_heif
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SPEC = importlib.util.spec_from_file_location("veil_bench_fuzz", ROOT / "bench" / "fuzz.py")
fuzz = importlib.util.module_from_spec(SPEC)
sys.modules[SPEC.name] = fuzz  # dataclasses look their module up by name
SPEC.loader.exec_module(fuzz)

PHOTO = "metadata/metadata-extractor-images/jpg/Samsung GT-I9000 (Galaxy S).jpg"
VIDEO = "videos/intel_walking_and_headpose/people-detection.mp4"
PHOTO_KINDS = ("truncate", "flip-header", "flip-payload", "zero-length", "all-zero", "wrong-extension")
VIDEO_KINDS = ("truncate", "head-only", "flip-payload", "cut-chunk", "all-zero", "wrong-extension")
# Damage that leaves nothing to decode, or (video) frames missing: it must be refused, not passed.
MUST_FAIL = {"zero-length", "all-zero", "head-only"}
SEED = 3
HANG_S = 600  # a generous bound for a hung process, not a speed requirement
CASES = [("photo", i) for i in range(len(PHOTO_KINDS))] + [("video", i) for i in range(len(VIDEO_KINDS))]


@pytest.fixture(scope="module")
def variants(shared_data: Path) -> dict[str, list]:
    return {"photo": fuzz.make_variants([shared_data / PHOTO], len(PHOTO_KINDS), SEED, PHOTO_KINDS),
            "video": fuzz.make_variants([shared_data / VIDEO], len(VIDEO_KINDS), SEED, VIDEO_KINDS)}


@pytest.mark.parametrize("kind,index", CASES, ids=[f"{k}-{(PHOTO_KINDS if k == 'photo' else VIDEO_KINDS)[i]}"
                                                    for k, i in CASES])
def test_damaged_file_fails_closed(variants: dict[str, list], kind: str, index: int, tmp_path: Path) -> None:
    variant = variants[kind][index]
    path = tmp_path / variant.file_name(index)
    path.write_bytes(variant.data)
    result = fuzz.check(path, variant.source, variant.damage, tmp_path / "out", HANG_S)
    assert result.code is not None, f"{variant.damage}: still running after {HANG_S} s"
    assert "Traceback" not in result.stderr, f"{variant.damage}: {result.stderr}"
    assert result.code in (0, 1, 2), f"{variant.damage}: exit {result.code}: {result.stderr}"
    if result.code != 0:
        assert result.left == [], f"{variant.damage}: a failed file left {result.left}"
        # One line naming the file once: FFmpeg's errors repeat the path, or name internal functions.
        assert result.stderr.count(path.name) == 1 and "[Errno" not in result.stderr, result.stderr
    if fuzz.kind_of(variant.damage) in MUST_FAIL or (kind == "video" and fuzz.kind_of(variant.damage) == "truncate"):
        assert result.code == 1, f"{variant.damage}: exit {result.code}, not refused"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([path.name, "out"]), "wrote beside the input"


GROUP = "wider_face_dev/images/12--Group/12_Group_Group_12_Group_Group_12_28.jpg"


@pytest.fixture(scope="module")
def tiled_heic(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A real photo encoded as a HEIC of 512 px grid tiles, as an iPhone writes it."""
    pillow_heif.register_heif_opener()
    path = tmp_path_factory.mktemp("heic") / "group.heic"
    grid, pillow_heif.options.GRID_TILE_SIZE = pillow_heif.options.GRID_TILE_SIZE, 512
    try:
        Image.open(shared_data / GROUP).convert("RGB").save(path, format="HEIF", quality=90)
    finally:
        pillow_heif.options.GRID_TILE_SIZE = grid
    assert pillow_heif.open_heif(path).info.get("tiling"), "not encoded as a grid"
    return path.read_bytes()


@pytest.mark.parametrize("keep", [0.3, 0.9, 0.999])
def test_heic_with_tiles_missing_is_refused(tiled_heic: bytes, keep: float, tmp_path: Path) -> None:
    # libheif decodes such a file without an error, the missing tiles left blank (green): its
    # faces there would be neither detected nor hidden.
    path = tmp_path / "group.heic"
    path.write_bytes(tiled_heic[: int(len(tiled_heic) * keep)])
    result = fuzz.check(path, path, f"truncate@{keep}", tmp_path / "out", HANG_S)
    assert result.code == 1, f"exit {result.code}: {result.stderr}"
    assert result.left == []
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and path.name in lines[0] and "truncated or damaged" in lines[0], result.stderr


def test_intact_tiled_heic_is_redacted(tiled_heic: bytes, tmp_path: Path) -> None:
    path = tmp_path / "group.heic"
    path.write_bytes(tiled_heic)
    result = fuzz.check(path, path, "intact", tmp_path / "out", HANG_S)
    assert result.code == 0, result.stderr
    assert result.faces
