"""Memory on large photos: rendering holds one copy of the pixels, detecting adds one tile's worth.

Peak RSS is read from a fresh interpreter per run (resource.getrusage(RUSAGE_CHILDREN) in a
wrapper process whose only child is `veil`), so nothing else this test process did counts.
Rendering from a saved plan decodes, redacts and encodes the whole photo without the detector;
a whole run adds the detectors, whose memory should depend on their tile size, not on the photo.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

from veil.photo import file_sha256
from veil.plan import Box, MediaPlan, Plan, Region
from photo_support import GROUP

WRAPPER = """
import resource, subprocess, sys
run = subprocess.run([sys.executable, "-m", "veil", *sys.argv[1:]], capture_output=True, text=True)
print(run.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024, run.stderr.replace("\\n", " "))
"""


def tiled_photo(shared_data: Path, path: Path, side: int) -> None:
    """A real group photo repeated to side x side pixels."""
    tile = cv2.imread(str(shared_data / GROUP))
    reps = (-(-side // tile.shape[0]), -(-side // tile.shape[1]), 1)
    cv2.imwrite(str(path), np.ascontiguousarray(np.tile(tile, reps)[:side, :side]))


def peak(args: list[str]) -> int:
    """Peak RSS in bytes of one `veil` run with these arguments."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    result = subprocess.run([sys.executable, "-c", WRAPPER, *args], capture_output=True, text=True, env=env, timeout=300)
    code, peak, stderr = result.stdout.split(" ", 2)
    assert code == "0", stderr
    return int(peak)


def render_peak(photo: Path, side: int, folder: Path) -> int:
    """Peak RSS in bytes of `veil --plan` rendering `photo` with a few regions hidden."""
    regions = [Region(id=f"r{i}", source="reviewer", boxes={0: Box(i * side / 8, i * side / 8, (i + 1) * side / 8,
                                                                    (i + 1) * side / 8, "reviewer")}) for i in range(4)]
    plan = Plan(media=[MediaPlan(path=str(photo), kind="image", width=side, height=side,
                                 sha256=file_sha256(photo), regions=regions)])
    plan.save(folder / f"{photo.stem}.json")
    return peak(["--plan", str(folder / f"{photo.stem}.json"), "-o", str(folder / f"{photo.stem}.out.png"), "-q"])


def redact_peak(photo: Path, folder: Path) -> int:
    """Peak RSS in bytes of `veil` detecting and redacting `photo` with default settings."""
    return peak([str(photo), "-o", str(folder / f"{photo.stem}.out.png"), "-q"])


def test_rendering_a_large_png_holds_about_one_copy_of_its_pixels(shared_data, tmp_path):
    side = 6000
    big, small = tmp_path / "big.png", tmp_path / "small.png"
    tiled_photo(shared_data, big, side)
    tiled_photo(shared_data, small, 64)
    extra = render_peak(big, side, tmp_path) - render_peak(small, 64, tmp_path)
    copies = extra / (side * side * 3)
    # The one copy is the photo itself. OpenCV's decoder handing over a copy of its own array,
    # and converting RGB to BGR in place through a whole copy, each took another; decoding
    # through Pillow (4 bytes a pixel, then a copy), copying to redact and encoding through a
    # Pillow image and an in-memory file took several more.
    assert copies < 1.5, f"rendering took {copies:.1f} copies of the photo's pixels ({extra / 2**20:.0f} MiB)"


def test_detecting_in_a_large_crowd_photo_adds_about_one_tile_of_memory(shared_data, tmp_path):
    side = 3000
    big, small = tmp_path / "big.png", tmp_path / "small.png"
    tiled_photo(shared_data, big, side)
    tiled_photo(shared_data, small, 64)
    detector = redact_peak(big, tmp_path) - redact_peak(small, tmp_path) - side * side * 3
    # A full-size tile's activations take a few hundred MiB. Each onnxruntime session keeping
    # its own arena, grown in doubling chunks with a memory pattern's block beside it, took
    # about twice that; comparing every weak CenterFace candidate of this crowd with every
    # RetinaFace box at once took more again.
    assert detector < 640 * 2**20, f"detection took {detector / 2**20:.0f} MiB beyond the photo's pixels"
