#!/usr/bin/env python3
"""Re-identification of veil-redacted faces on LFW, by dlib's ResNet face recogniser.

Question: after veil has redacted a photo, can a strong face recogniser still tell who it was?

Data: ../shared/data/lfw (beside the checkout): the 361 LFW View-1 DevTest people with two
images each, 150x150 thumbnails. For each person the first image (sorted by name) is the
gallery, the second the probe.

Recogniser: dlib's `dlib_face_recognition_resnet_model_v1` (99.38% on LFW verification),
with the 5-point shape predictor for alignment; weights from the PyPI package
`face-recognition-models`, runtime `dlib-bin`. Both live in .bench-venv (bench/setup.sh).

Alignment (the attacker's best case, the default `--align clean`): a redacted face cannot be
found or landmarked, so every image, clean or redacted, is embedded with the 5 landmarks that
the shape predictor finds on the CLEAN version of that same image (inside dlib's HOG face box on
the clean image, or a fixed central box where HOG finds nothing). The recogniser thus sees the
redacted pixels exactly where the face was, perfectly aligned. `--align fixed` is the realistic
attacker: landmarks predicted on the image itself inside a fixed central box.

Scores: rank-1 identification (nearest gallery embedding, Euclidean distance) of
  clean probe    vs clean gallery     (sanity: the recogniser works here),
  redacted probe vs clean gallery     (attacker holds ordinary photos of the candidates),
  redacted probe vs redacted gallery  (attacker holds photos redacted the same way),
for each render mode (fill, pixelate with --blocks, veil's default 6, blur) and detection profile (fast, accurate).
Blur's shading is random per export, so it is exported and scored --repeats times.
Chance is 1/people. Also: how many images veil found no face in (those stay unredacted: leaks).
`--turn K`: every image turned K quarter turns before veil, and turned back before the recogniser
(a person lying down; the attacker stands the published photo upright).

Prints figures only; asserts nothing. Run from .bench-venv:
    .bench-venv/bin/python bench/reid_lfw.py [--limit N] [--profiles fast,accurate] [--align clean|fixed] [--turn 0-3]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from veil.plan import PIXELATE_BLOCKS

ROOT = Path(__file__).resolve().parents[1]
LFW = ROOT.parent / "shared" / "data" / "lfw"
MODES = ("fill", "pixelate", "blur")
# Blur draws a fresh random shading for every export (veil.render.shading), so one run is one
# draw among many: it is rendered --repeats times and each draw is scored.
RANDOM_MODES = ("blur",)
# LFW thumbnails (150x150, a downscaled copy of the centred 250x250 LFW crop): where dlib's HOG
# detector puts the face box, as the median over the 722 images (used where HOG finds nothing,
# and as the fixed box of `--align fixed`).
FIXED_BOX = (45, 49, 107, 108)


def die(message: str) -> None:
    print(f"reid_lfw: {message}", file=sys.stderr)
    sys.exit(2)


def model_files() -> tuple[Path, Path]:
    # Importing face_recognition_models needs pkg_resources; find its files without importing it.
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or spec.origin is None:
        die("face-recognition-models is not installed; run bench/setup.sh and use .bench-venv/bin/python")
    models = Path(spec.origin).parent / "models"
    recogniser = models / "dlib_face_recognition_resnet_model_v1.dat"
    predictor = models / "shape_predictor_5_face_landmarks.dat"
    for path in (recogniser, predictor):
        if not path.is_file():
            die(f"missing model file {path}")
    return recogniser, predictor


@dataclass
class Person:
    name: str
    gallery: Path
    probe: Path


def people(limit: int | None) -> list[Person]:
    images = LFW / "images"
    if not images.is_dir():
        die(f"LFW data not found at {images} (expected ../shared/data/lfw beside the checkout); skipping")
    found = []
    for folder in sorted(p for p in images.iterdir() if p.is_dir()):
        files = sorted(folder.glob("*.jpg"))
        if len(files) >= 2:
            found.append(Person(folder.name, files[0], files[1]))
    if not found:
        die(f"no person with two or more images under {images}")
    return found[:limit] if limit else found


def read_rgb(path: Path) -> np.ndarray:
    from veil.imagefile import read_photo
    from veil.pixels import as_rgb8

    return np.ascontiguousarray(as_rgb8(read_photo(path).pixels))


class Recogniser:
    def __init__(self) -> None:
        import dlib

        recogniser, predictor = model_files()
        self.dlib = dlib
        self.detector = dlib.get_frontal_face_detector()
        self.predictor = dlib.shape_predictor(str(predictor))
        self.net = dlib.face_recognition_model_v1(str(recogniser))
        self.hog_misses = 0

    def fixed_rect(self):
        return self.dlib.rectangle(*FIXED_BOX)

    def face_rect(self, rgb: np.ndarray):
        """dlib's HOG face box on a clean image (the most central one), else the fixed box."""
        rects = self.detector(rgb, 1)
        if not rects:
            self.hog_misses += 1
            return self.fixed_rect()
        h, w = rgb.shape[:2]
        return min(rects, key=lambda r: (r.center().x - w / 2) ** 2 + (r.center().y - h / 2) ** 2)

    def landmarks(self, rgb: np.ndarray, rect):
        return self.predictor(rgb, rect)

    def embed(self, rgb: np.ndarray, shape) -> np.ndarray:
        return np.asarray(self.net.compute_face_descriptor(rgb, shape, 0), np.float32)


def turned_copy(path: Path, turns: int, folder: Path) -> Path:
    """The image itself (turns 0), or a lossless copy turned `turns` quarter turns counter-clockwise."""
    if not turns:
        return path
    copy = folder / f"turned-{path.parent.name}-{path.stem}.png"
    Image.fromarray(np.ascontiguousarray(np.rot90(read_rgb(path), turns))).save(copy)
    return copy


def rank1(probes: np.ndarray, gallery: np.ndarray) -> np.ndarray:
    """For each probe, whether its nearest gallery embedding is the same person (same row)."""
    distances = np.linalg.norm(probes[:, None, :] - gallery[None, :, :], axis=2)
    return distances.argmin(axis=1) == np.arange(len(probes))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, default=None, help="first N people only (default: all 361)")
    parser.add_argument("--profiles", default="fast,accurate", help="veil detection profiles (fast,accurate)")
    parser.add_argument("--modes", default=",".join(MODES), help="render modes (fill,pixelate,blur)")
    parser.add_argument("--blocks", type=int, default=PIXELATE_BLOCKS, help="pixelate: blocks across a face (veil's default)")
    parser.add_argument("--align", choices=("clean", "fixed"), default="clean",
                        help="landmarks from the clean image (attacker's best case, default) "
                        "or predicted on each image itself in a fixed central box")
    parser.add_argument("--repeats", type=int, default=3, help="exports scored per random mode (blur)")
    parser.add_argument("--turn", type=int, choices=(0, 1, 2, 3), default=0,
                        help="quarter turns counter-clockwise given to every image before veil redacts it, and "
                             "taken back before the recogniser looks (a person lying down; the attacker turns "
                             "the published photo upright)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here (keep it out of git)")
    args = parser.parse_args()

    try:
        import dlib  # noqa: F401
    except ImportError:
        die("dlib is not installed; run bench/setup.sh and use .bench-venv/bin/python")
    from veil.detect import PROFILES
    from veil.photo import plan_photo, render_photo
    from veil.plan import RenderSettings

    profiles = [PROFILES[p] for p in args.profiles.split(",") if p]
    modes = [m for m in args.modes.split(",") if m]
    cohort = people(args.limit)
    n = len(cohort)
    recogniser = Recogniser()
    started = time.perf_counter()

    # Clean images: landmarks (kept for the attacker's best-case alignment) and embeddings.
    clean_shape: dict[Path, object] = {}
    clean_embedding: dict[Path, np.ndarray] = {}
    for person in cohort:
        for path in (person.gallery, person.probe):
            rgb = read_rgb(path)
            shape = recogniser.landmarks(rgb, recogniser.face_rect(rgb) if args.align == "clean" else recogniser.fixed_rect())
            clean_shape[path] = shape
            clean_embedding[path] = recogniser.embed(rgb, shape)

    def embed_redacted(rgb: np.ndarray, path: Path) -> np.ndarray:
        shape = clean_shape[path] if args.align == "clean" else recogniser.landmarks(rgb, recogniser.fixed_rect())
        return recogniser.embed(rgb, shape)

    clean_g = np.stack([clean_embedding[p.gallery] for p in cohort])
    clean_p = np.stack([clean_embedding[p.probe] for p in cohort])
    sanity = rank1(clean_p, clean_g)

    results = []
    leaks: dict[str, dict[str, int]] = {}
    with tempfile.TemporaryDirectory(prefix="veil-reid-") as tmp:
        out = Path(tmp)
        shown = {path: turned_copy(path, args.turn, out) for person in cohort for path in (person.gallery, person.probe)}
        for profile in profiles:
            plans = {}
            for person in cohort:
                for path in (person.gallery, person.probe):
                    plans[path] = plan_photo(shown[path], profile)
            probe_leak = np.array([not plans[p.probe].regions for p in cohort])
            gallery_leak = np.array([not plans[p.gallery].regions for p in cohort])
            leaks[profile.name] = {"probe": int(probe_leak.sum()), "gallery": int(gallery_leak.sum())}
            for mode, draw in ((m, d) for m in modes for d in range(args.repeats if m in RANDOM_MODES else 1)):
                settings = RenderSettings(mode=mode, blocks=args.blocks)
                redacted: dict[Path, np.ndarray] = {}
                for i, (path, media) in enumerate(plans.items()):
                    target = out / f"{i}{shown[path].suffix}"  # veil's real output file, re-read as an attacker would
                    render_photo(media, settings, target)
                    upright = np.ascontiguousarray(np.rot90(read_rgb(target), -args.turn))
                    redacted[path] = embed_redacted(upright, path)
                red_p = np.stack([redacted[p.probe] for p in cohort])
                red_g = np.stack([redacted[p.gallery] for p in cohort])
                for gallery_name, gallery, reverse_gallery in (("clean", clean_g, clean_p), ("redacted", red_g, red_p)):
                    hits = rank1(red_p, gallery)
                    # The same question with the roles of the two images swapped: 2n probes
                    # instead of n, so a rate near chance is told from noise more surely.
                    reverse_hits = rank1(red_g, reverse_gallery)
                    results.append({
                        "profile": profile.name, "mode": mode if mode not in RANDOM_MODES else f"{mode} #{draw + 1}",
                        "gallery": gallery_name,
                        "hits": int(hits.sum()), "people": n, "reverse_hits": int(reverse_hits.sum()),
                        "hits_on_leaked_probes": int((hits & probe_leak).sum()),
                    })

    chance = 1 / n
    target = chance + 0.005
    print(f"veil re-identification on LFW ({LFW})")
    print(f"recogniser: dlib ResNet (face-recognition-models), alignment: "
          f"{'landmarks from the clean image (attacker best case)' if args.align == 'clean' else 'shape predictor in a fixed central box'}")
    if args.align == "clean":
        print(f"HOG found no face in {recogniser.hog_misses} of {2 * n} clean images (fixed box {FIXED_BOX} used there)")
    if args.turn:
        print(f"every image turned {90 * args.turn} degrees counter-clockwise before veil, and back before the recogniser")
    print(f"people: {n}; gallery = first image, probe = second (and the reverse); chance = 1/{n} = {100 * chance:.2f}%; "
          f"target <= {100 * target:.2f}%")
    print()
    print("rank-1: second image as probe (the issue's figure); both ways: each image once as probe, 2n probes")
    print(f"{'profile':<9} {'mode':<9} {'gallery':<9} {'rank-1':>8} {'hits':>9}  {'of them leaked':>14}  verdict"
          f"        {'both ways':>9} {'hits':>9}  verdict")
    print(f"{'-':<9} {'none':<9} {'clean':<9} {100 * sanity.mean():7.2f}% {int(sanity.sum()):>4}/{n:<4}  {'':>14}  (sanity)")
    for r in results:
        rate, both = r["hits"] / n, (r["hits"] + r["reverse_hits"]) / (2 * n)
        verdict = "at chance" if rate <= target else "ABOVE CHANCE"
        both_verdict = "at chance" if both <= target else "ABOVE CHANCE"
        print(f"{r['profile']:<9} {r['mode']:<9} {r['gallery']:<9} {100 * rate:7.2f}% {r['hits']:>4}/{n:<4}  "
              f"{r['hits_on_leaked_probes']:>14}  {verdict:<12}  {100 * both:8.2f}% {r['hits'] + r['reverse_hits']:>4}/{2 * n:<4}  "
              f"{both_verdict}")
    print()
    for name, count in leaks.items():
        print(f"veil found no face ({name}): {count['probe']}/{n} probes, {count['gallery']}/{n} gallery images "
              f"(left unredacted: leaks)")
    print(f"time: {time.perf_counter() - started:.0f} s")

    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({
            "people": n, "align": args.align, "turn": args.turn, "chance": chance, "sanity_hits": int(sanity.sum()),
            "hog_misses": recogniser.hog_misses, "leaks": leaks, "results": results,
        }, indent=1))


if __name__ == "__main__":
    main()
