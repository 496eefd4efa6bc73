"""Plates in video (--hide plates): per-frame leaks, area hidden away from the plate, and pass 1's
time, with the plate detector on every n-th sampled frame.

    python bench/video_plates.py make /tmp/veil-plate-clips        # 53 clips, one per OpenALPR photo
    python bench/video_plates.py make /tmp/veil-plate-fast --frames 30   # the same moves, twice as fast
    python bench/video_plates.py score /tmp/veil-plate-clips --every 1,2,3,4,6     # ~30 min on 2 cores
    python bench/video_plates.py score /tmp/veil-plate-clips --every 1,2,3 --time --limit 8   # times
    python bench/video_plates.py grid /tmp/veil-plate-grid    # 1080p: nine cars a frame, plates 40-180 px wide
    python bench/video_plates.py score /tmp/veil-plate-grid --every 1 --time

Clips (made afresh, seeded; never commit them): 60 frames (`--frames`), 30 fps, 960x540 H.264, a
window panning across an OpenALPR car photo while zooming in or out, so the plate moves, changes
size and crosses the frame's edge; its box is exact in every frame (frames where less than half of it is inside
are not scored), as ../shared/tools/make_pan_videos.py does for faces.

Per clip and setting: veil's plan (`plan_video`, fast profile, `--hide faces,plates`, the plate
detector on every n-th sampled frame, `VideoDetection.text_every`), its plate regions rasterised
as rendering draws them (`render.region_mask`) on every frame. A plate instance (one plate in one
frame) is protected when >= 95% of its box is hidden (eval_images.py's rule, >= 95% of the inner
60% and >= 70% of the whole, beside it). Area away: the share of frame pixels that plate regions
hide farther than half the plate's height from it (other lettering on the car counts as away, as
in bench/kinds.py). Detections are computed once per frame and reused by every setting (each
sampled frame's detectors see the same pixels whatever the setting), so the settings differ only in
which frames the plate detector's answer is used on. `--time` runs every setting in full instead
and prints planning wall seconds per clip, faces alone and with plates, the settings taking turns on
each clip so that load on the machine falls on all of them alike.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import inspect
import random
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import av
import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from kinds import plates, protected  # noqa: E402

import veil.video  # noqa: E402
from veil.detect import FAST, VIDEO_DETECTION  # noqa: E402
from veil.render import region_mask  # noqa: E402
from veil.video import plan_video  # noqa: E402

WIDTH, HEIGHT, FRAMES, RATE = 960, 540, 60, 30  # FRAMES: the default; --frames for faster moves


def write_clip(folder: Path, name: str, size: tuple[int, int],
               frames: Iterator[tuple[Image.Image, list[tuple[float, float, float, float]]]]) -> None:
    """Writes NAME.mp4 (H.264, crf 18) and NAME_plates.csv: each frame's plate boxes (x0, y0, x1,
    y1), a box kept where at least half of it is inside the frame."""
    width, height = size
    rows = []
    with av.open(str(folder / f"{name}.mp4"), "w") as out:
        stream = out.add_stream("libx264", rate=RATE)
        stream.width, stream.height, stream.pix_fmt, stream.options = width, height, "yuv420p", {"crf": "18"}
        for t, (frame, boxes) in enumerate(frames):
            for x0, y0, x1, y1 in boxes:
                inside = max(0, min(x1, width) - max(x0, 0)) * max(0, min(y1, height) - max(y0, 0))
                if inside >= 0.5 * (x1 - x0) * (y1 - y0):
                    rows.append([t, round(x0, 1), round(y0, 1), round(x1, 1), round(y1, 1)])
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.asarray(frame), format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    with open(folder / f"{name}_plates.csv", "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["frame_index", "x0", "y0", "x1", "y1"])
        writer.writerows(rows)
    print(f"{name}: {len(rows)} plate instances", flush=True)


def make(folder: Path, seed: int, frames: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, (path, boxes) in enumerate(sorted(plates().items())):
        chance = random.Random(seed * 1000 + i)
        photo = Image.open(path).convert("RGB")
        w, h = photo.size
        near, far = chance.uniform(0.35, 0.55), chance.uniform(0.85, 1.0)
        zooms = (far, near) if chance.random() < 0.5 else (near, far)
        rightwards = chance.random() < 0.5

        def panned(photo=photo, w=w, h=h, boxes=boxes, zooms=zooms, rightwards=rightwards):
            for t in range(frames):
                a = t / (frames - 1)
                zoom = zooms[0] + (zooms[1] - zooms[0]) * a
                cw = min(w, zoom * w)
                ch = cw * HEIGHT / WIDTH
                if ch > h:
                    ch = h
                    cw = ch * WIDTH / HEIGHT
                across = 0.1 + 0.8 * (a if rightwards else 1 - a)
                cx, cy = (w - cw) * across, (h - ch) * (0.5 + 0.3 * np.sin(2 * np.pi * a))
                k = WIDTH / cw
                yield (photo.resize((WIDTH, HEIGHT), Image.BILINEAR, box=(cx, cy, cx + cw, cy + ch)),
                       [((x0 - cx) * k, (y0 - cy) * k, (x1 - cx) * k, (y1 - cy) * k) for x0, y0, x1, y1 in boxes])

        write_clip(folder, path.stem, (WIDTH, HEIGHT), panned())


def make_grid(folder: Path, frames: int) -> None:
    """1920x1080 clips of nine OpenALPR cars each, every car fitted into a 640x360 cell (six clips
    for the 53 photos), the picture drifting 2 px a frame to the right: plates as small as a
    1080p street shot holds them, which the face detector's half-size frame shrinks further."""
    folder.mkdir(parents=True, exist_ok=True)
    cars = sorted(plates().items())
    for first in range(0, len(cars), 9):
        canvas, truth = Image.new("RGB", (1920 + 2 * frames, 1080), (90, 90, 90)), []
        for i, (path, boxes) in enumerate(cars[first:first + 9]):
            photo = Image.open(path).convert("RGB")
            k = min(640 / photo.width, 360 / photo.height)
            left, top = 2 * frames + (i % 3) * 640, (i // 3) * 360
            canvas.paste(photo.resize((round(photo.width * k), round(photo.height * k)), Image.LANCZOS), (left, top))
            truth += [(left + x0 * k, top + y0 * k, left + x1 * k, top + y1 * k) for x0, y0, x1, y1 in boxes]

        def drifting(canvas=canvas, truth=truth):
            for t in range(frames):
                shift = 2 * frames - 2 * t  # the window moves left over the canvas: the cars drift right
                yield canvas.crop((shift, 0, shift + 1920, 1080)), [(x0 - shift, y0, x1 - shift, y1)
                                                                   for x0, y0, x1, y1 in truth]

        write_clip(folder, f"grid{first // 9 + 1}", (1920, 1080), drifting())


@dataclass
class Tally:
    plates: int = 0
    protected: int = 0  # >= 95% of the box
    by_rule: int = 0  # eval_images.py's rule
    away: float = 0.0  # summed over frames with a plate
    frames: int = 0
    seconds: float = 0.0
    clips: int = 0

    def add(self, other: Tally) -> None:
        for name in ("plates", "protected", "by_rule", "away", "frames", "seconds", "clips"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


def truth_of(clip: Path) -> dict[int, list[tuple[int, int, int, int]]]:
    boxes: dict[int, list[tuple[int, int, int, int]]] = {}
    with open(clip.with_name(f"{clip.stem}_plates.csv"), newline="") as file:
        for row in csv.DictReader(file):
            box = tuple(int(round(float(row[k]))) for k in ("x0", "y0", "x1", "y1"))
            boxes.setdefault(int(row["frame_index"]), []).append(box)  # type: ignore[arg-type]
    return boxes


def score(clip: Path, every: int) -> Tally:
    sampling = replace(VIDEO_DETECTION["fast"], text_every=every)
    started = time.perf_counter()
    media = plan_video(clip, FAST, sampling=sampling, hide=("face", "plate"))
    tally = Tally(seconds=time.perf_counter() - started, clips=1)
    plates_by_frame: dict[int, list] = {}
    for region in media.regions:
        if region.kind == "plate":
            for frame, box in region.boxes.items():
                plates_by_frame.setdefault(frame, []).append((region.shape, box))
    for frame, boxes in truth_of(clip).items():
        mask = np.zeros((media.height, media.width), bool)
        for shape, box in plates_by_frame.get(frame, []):
            drawn = region_mask(shape, box, media.height, media.width)
            if drawn is not None:
                rows, cols, inside = drawn
                mask[rows, cols] |= inside
        near = np.zeros_like(mask)
        for x0, y0, x1, y1 in boxes:
            whole, rule = protected(mask, (max(0, x0), max(0, y0), min(media.width, x1), min(media.height, y1)))
            tally.plates += 1
            tally.protected += whole
            tally.by_rule += rule
            m = (y1 - y0) // 2
            near[max(0, y0 - m):max(0, y1 + m), max(0, x0 - m):max(0, x1 + m)] = True
        tally.away += float((mask & ~near).mean())
        tally.frames += 1
    return tally


def reuse_detections() -> None:
    """Every detector's answer kept per frame (by its pixels) and given again when asked again."""
    memo: dict[tuple, object] = {}

    def remembered(function, key_of):
        signature = inspect.signature(function)

        def call(*args, **kwargs):
            given = signature.bind(*args, **kwargs)
            given.apply_defaults()
            key = (function.__name__, key_of(given.arguments))
            if key not in memo:
                memo[key] = function(*args, **kwargs)
            return memo[key]
        return call

    digest = lambda rgb: hashlib.sha1(rgb.tobytes()).hexdigest()  # noqa: E731
    # Keyed on what decides the answer; sessions, threads and batch sizes do not.
    veil.video.detect_frames = remembered(veil.video.detect_frames, lambda a: (
        tuple(map(digest, a["frames"])), a["profile"], tuple(a["views"]), a["overview_threshold"]))
    veil.video.frame_boxes = remembered(veil.video.frame_boxes, lambda a: (
        digest(a["rgb"]), a["hide"], a["scale_x"], a["scale_y"], a["passes"], a["text"]))


def faces_only_seconds(clip: Path) -> float:
    started = time.perf_counter()
    plan_video(clip, FAST, hide=("face",))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=("make", "grid", "score"))
    parser.add_argument("folder", type=Path)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--frames", type=int, default=FRAMES, help="make: frames a clip (fewer: the same "
                        "camera path, faster)")
    parser.add_argument("--every", default="1,2,3,4", help="plate detector on every n-th sampled frame")
    parser.add_argument("--limit", type=int, default=0, help="first N clips only")
    parser.add_argument("--time", action="store_true", help="run every setting in full and time it")
    args = parser.parse_args()
    if args.action == "grid":
        make_grid(args.folder, args.frames // 2)
        return
    if args.action == "make":
        make(args.folder, args.seed, args.frames)
        return
    clips = sorted(args.folder.glob("*.mp4"))[: args.limit or None]
    if not clips:
        sys.exit(f"no clips in {args.folder}: make them first")
    settings = [int(n) for n in args.every.split(",")]
    totals = {n: Tally() for n in settings}
    faces_seconds = 0.0
    if not args.time:
        reuse_detections()
    for clip in clips:
        if args.time:
            faces_seconds += faces_only_seconds(clip)
        for n in settings:
            totals[n].add(score(clip, n))
    print(f"{len(clips)} clips" +
          (f"; faces alone: {faces_seconds / len(clips):.2f} s a clip" if args.time else ""))
    print(f"{'plate detector':28s} {'protected':>20s} {'eval_images rule':>14s} {'area away':>10s}" +
          (f" {'s/clip':>7s} {'x faces alone':>14s}" if args.time else ""))
    for n, t in totals.items():
        times = f" {t.seconds / t.clips:7.2f} {t.seconds / faces_seconds:13.2f}x" if args.time else ""
        print(f"{f'every {n} sampled frame(s)':28s} {t.protected:6d} / {t.plates:5d} {100 * t.protected / t.plates:5.1f}% "
              f"{t.by_rule:6d} {100 * t.by_rule / t.plates:5.1f}%     {100 * t.away / t.frames:5.2f}%{times}", flush=True)


if __name__ == "__main__":
    main()
