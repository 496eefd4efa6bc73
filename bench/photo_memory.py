#!/usr/bin/env python3
"""Peak memory of a whole `veil` run on huge photos, against the targets.

Builds two huge photos in a scratch folder (default /tmp/veil-photo-memory) by tiling a real
WIDER FACE photo (so the detector finds real faces all over them): a 14000x14000 PNG and a
12000x9000 JPEG. Then runs `python -m veil PHOTO -o OUT -q` on each in a fresh process under
/usr/bin/time -v and prints its peak RSS ("Maximum resident set size") against the target:
under 1.5 GB for the PNG and under 1 GB for the JPEG.

    .venv/bin/python bench/photo_memory.py                      # this checkout's src/
    .venv/bin/python bench/photo_memory.py --src ../other/src   # another checkout, for a before/after

Prints figures only; asserts nothing. Outputs are written to the scratch folder and never
kept in the repository (they are made from WIDER FACE, a research data set).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT.parent / "shared" / "data" / "wider_face_dev" / "images" / "12--Group" / "12_Group_Group_12_Group_Group_12_28.jpg"
CASES = (  # name, width, height, target peak RSS in bytes
    ("huge.png", 14000, 14000, 1.5e9),
    ("huge.jpg", 12000, 9000, 1.0e9),
)


def make_photo(path: Path, width: int, height: int) -> None:
    """The WIDER photo repeated across and down to width x height, written once."""
    if path.exists():
        return
    tile = cv2.imread(str(SOURCE))
    reps = (-(-height // tile.shape[0]), -(-width // tile.shape[1]), 1)
    pixels = np.ascontiguousarray(np.tile(tile, reps)[:height, :width])
    cv2.imwrite(str(path), pixels, [cv2.IMWRITE_JPEG_QUALITY, 92] if path.suffix == ".jpg" else [])


def peak_rss(photo: Path, src: Path) -> tuple[int, float, str]:
    """Peak RSS in bytes, seconds, and veil's stderr, of one run in a fresh interpreter."""
    out = photo.with_name(f"{photo.stem}.redacted{photo.suffix}")
    out.unlink(missing_ok=True)
    env = {**os.environ, "PYTHONPATH": str(src)}
    started = time.monotonic()
    run = subprocess.run(["/usr/bin/time", "-v", sys.executable, "-m", "veil", str(photo), "-o", str(out), "-q"],
                         capture_output=True, text=True, env=env)
    seconds = time.monotonic() - started
    found = re.search(r"Maximum resident set size \(kbytes\): (\d+)", run.stderr)
    if run.returncode != 0 or not found:
        sys.exit(f"photo_memory: veil failed on {photo.name}:\n{run.stderr}")
    out.unlink(missing_ok=True)
    return int(found.group(1)) * 1024, seconds, run.stderr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--src", type=Path, default=ROOT / "src", help="the veil sources to run (default: this checkout's)")
    parser.add_argument("--scratch", type=Path, default=Path("/tmp/veil-photo-memory"))
    args = parser.parse_args()
    if not SOURCE.is_file():
        sys.exit(f"photo_memory: {SOURCE} not found (expected ../shared/data beside the checkout); skipping")
    if not Path("/usr/bin/time").is_file():
        sys.exit("photo_memory: /usr/bin/time is needed to measure peak RSS")
    args.scratch.mkdir(parents=True, exist_ok=True)
    print(f"veil from {args.src.resolve()}")
    for name, width, height, target in CASES:
        photo = args.scratch / name
        make_photo(photo, width, height)
        rss, seconds, _ = peak_rss(photo, args.src.resolve())
        verdict = "ok" if rss < target else "OVER"
        print(f"{name:9} {width}x{height}  peak RSS {rss / 1e9:5.2f} GB  target < {target / 1e9:.1f} GB  {verdict}"
              f"  ({seconds:.0f} s)")


if __name__ == "__main__":
    main()
