"""Plates and words in video (--hide plates, text): per-frame leaks, area hidden away from the
target, and pass 1's time, with the text detector on every n-th sampled frame.

    python bench/video_plates.py make /tmp/veil-plate-clips        # 53 clips, one per OpenALPR photo
    python bench/video_plates.py make /tmp/veil-plate-fast --frames 30   # the same moves, twice as fast
    python bench/video_plates.py score /tmp/veil-plate-clips --every 1,2,3,4,6     # ~30 min on 2 cores
    python bench/video_plates.py score /tmp/veil-plate-clips --every 1,2,3 --time --limit 8   # times
    python bench/video_plates.py grid /tmp/veil-plate-grid    # 1080p: nine cars a frame, plates 40-180 px wide
    python bench/video_plates.py score /tmp/veil-plate-grid --every 1 --time
    python bench/video_plates.py hard /tmp/veil-hard --kind text     # 12 clips: 4 words x enters, grows, cut
    python bench/video_plates.py hard /tmp/veil-hard --kind plates   # likewise 4 plates x 3 cases
    python bench/video_plates.py score /tmp/veil-hard --kind text --every 1   # ~5 min on 2 cores
    python bench/video_plates.py hard /tmp/veil-hard-context --kind text --context   # each word in its photo

Clips (made afresh, seeded; never commit them): 60 frames (`--frames`), 30 fps, 960x540 H.264, a
window panning across an OpenALPR car photo while zooming in or out, so the plate moves, changes
size and crosses the frame's edge; its box is exact in every frame (frames where less than half of it is inside
are not scored), as ../shared/tools/make_pan_videos.py does for faces.

Hard clips (`hard`, `--count` targets a case, each clip one target: a plate of OpenALPR or a word
of ICDAR 2003 at least 34 px tall in its photo, with half its height of its photo around it, on
grey, or with `--context` in its whole photo, the other lettering unscored): KIND-enters-NN,
a pan that brings the target (a plate 80-160 px wide, a word 24-44 px tall) in across the left or
right edge, about 9-16 px a frame; KIND-grows-NN, a zoom (steady in scale) from that size until the
target is 2.4 times the frame's width; KIND-cut-NN, another photo of the data set but for one frame
of the target's, a cut in and out.

Per clip and setting: veil's plan (`plan_video`, fast profile, `--hide` of the kind alone; with
`--time`, and faces: the kinds are tracked apart, so their regions are the same), the text
detector on every n-th sampled frame (`VideoDetection.text_every`), its regions of the kind
rasterised as rendering draws them (`render.region_mask`) on every frame. A target instance (one
target in one frame) is protected when >= 95% of its box inside the frame is hidden
(eval_images.py's rule, >= 95% of the inner 60% and >= 70% of the whole, beside it), per case
(plain: the pan clips); the worst instances not protected are listed (`--worst`) with their clip,
frame and box. Area away: the share of frame pixels that the kind's regions hide farther than half
the target's height from it (other lettering counts as away, as in bench/kinds.py). Detections are
computed once per frame and reused by every setting (each sampled frame's detectors see the same
pixels whatever the setting), so the settings differ only in which frames the text detector's
answer is used on. `--time` runs every setting in full instead and prints planning wall seconds per
clip, faces alone and with the kind, the settings taking turns on each clip so that load on the
machine falls on all of them alike.
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
from dataclasses import dataclass, field, replace
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageOps

sys.path.insert(0, str(Path(__file__).resolve().parent))
from kinds import plates, protected, words  # noqa: E402

import veil.video  # noqa: E402
from veil.detect import FAST, VIDEO_DETECTION  # noqa: E402
from veil.kinds import HIDE_WORDS  # noqa: E402
from veil.plan import Kind  # noqa: E402
from veil.render import region_mask  # noqa: E402
from veil.video import plan_video  # noqa: E402

WIDTH, HEIGHT, FRAMES, RATE = 960, 540, 60, 30  # FRAMES: the default; --frames for faster moves


def write_clip(folder: Path, name: str, size: tuple[int, int],
               frames: Iterator[tuple[Image.Image, list[tuple[float, float, float, float]]]],
               kind: str = "plates") -> None:
    """Writes NAME.mp4 (H.264, crf 18) and NAME_KIND.csv: each frame's target boxes (x0, y0, x1,
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
    with open(folder / f"{name}_{kind}.csv", "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["frame_index", "x0", "y0", "x1", "y1"])
        writer.writerows(rows)
    print(f"{name}: {len(rows)} {kind} instances", flush=True)


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


HARD_CASES = ("enters", "grows", "cut")
GREY = (118, 118, 118)  # beyond the photo and round the target (`alone`)
Window = tuple[float, float, float]  # the photo point at the frame's centre (x, y) and frame px per photo px
TargetBox = tuple[float, float, float, float]


def hard_targets(kind: str, chance: random.Random, count: int) -> list[tuple[Path, TargetBox]]:
    """`count` targets drawn from the data set: plates, or words at least 34 px tall in their photo
    (made larger, a smaller one would be blurred)."""
    if kind == "plates":
        found = [(path, box) for path, boxes in sorted(plates().items()) for box in boxes]
    else:
        found = [(path, box) for path, boxes in sorted(words().items()) for box in boxes if box[3] - box[1] >= 34]
    return chance.sample(found, count)


def alone(photo: Image.Image, box: TargetBox) -> Image.Image:
    """The photo grey but for the target and half its height around it: nothing else to find, so
    that what hides the target is its own box (a line of words around it would be found whole)."""
    x0, y0, x1, y1 = box
    m = (y1 - y0) / 2
    keep = (round(max(0, x0 - m)), round(max(0, y0 - m)), round(min(photo.width, x1 + m)), round(min(photo.height, y1 + m)))
    grey = Image.new("RGB", photo.size, GREY)
    grey.paste(photo.crop(keep), keep[:2])
    return grey


def target_scale(kind: str, box: TargetBox, chance: random.Random) -> float:
    """Frame px per photo px for a target of a size the detector finds in a still frame, yet small:
    a plate 80-160 px wide, a word 24-44 px tall."""
    x0, y0, x1, y1 = box
    return chance.uniform(80, 160) / (x1 - x0) if kind == "plates" else chance.uniform(24, 44) / (y1 - y0)


def shown(photo: Image.Image, windows: list[Window]) -> Iterator[Image.Image]:
    """The frames the windows see of the photo, grey beyond its edges."""
    spans = [(cx - WIDTH / 2 / k, cy - HEIGHT / 2 / k, cx + WIDTH / 2 / k, cy + HEIGHT / 2 / k) for cx, cy, k in windows]
    pad = int(np.ceil(max(0, *(-min(s[i] for s in spans) for i in (0, 1)), max(s[2] for s in spans) - photo.width,
                          max(s[3] for s in spans) - photo.height))) + 2
    padded = ImageOps.expand(photo, border=pad, fill=GREY)
    for x0, y0, x1, y1 in spans:
        yield padded.resize((WIDTH, HEIGHT), Image.BILINEAR, box=(x0 + pad, y0 + pad, x1 + pad, y1 + pad))


def in_frame(box: TargetBox, window: Window) -> TargetBox:
    cx, cy, k = window
    x0, y0, x1, y1 = box
    return ((x0 - cx) * k + WIDTH / 2, (y0 - cy) * k + HEIGHT / 2, (x1 - cx) * k + WIDTH / 2, (y1 - cy) * k + HEIGHT / 2)


def window_at(box: TargetBox, k: float, x: float, y: float) -> Window:
    """The window that shows the target's centre at frame point (x, y), k frame px per photo px."""
    tx, ty = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    return tx + (WIDTH / 2 - x) / k, ty + (HEIGHT / 2 - y) / k, k


def entering(box: TargetBox, k: float, chance: random.Random, frames: int) -> list[Window]:
    """A pan that brings the target in across the left or right edge, from just outside the frame
    to 50-90% of its width (about 9-16 px a frame in 60 frames), drifting up or down a little."""
    half = (box[2] - box[0]) * k / 2
    start, end = -half - 4, chance.uniform(0.5, 0.9) * WIDTH
    if chance.random() < 0.5:
        start, end = WIDTH - start, WIDTH - end
    y0 = chance.uniform(0.3, 0.7) * HEIGHT
    y1 = y0 + chance.uniform(-0.1, 0.1) * HEIGHT
    return [window_at(box, k, start + (end - start) * a, y0 + (y1 - y0) * a) for a in np.linspace(0, 1, frames)]


def growing(kind: str, box: TargetBox, chance: random.Random, frames: int) -> list[Window]:
    """A zoom into the target, steady in scale, from `target_scale`'s size to 2.4 times the frame's
    width (scored while half of it is inside), its centre near the frame's."""
    near, far = target_scale(kind, box, chance), 2.4 * WIDTH / (box[2] - box[0])
    x, y = WIDTH * chance.uniform(0.4, 0.6), HEIGHT * chance.uniform(0.4, 0.6)
    return [window_at(box, near * (far / near) ** a, x, y) for a in np.linspace(0, 1, frames)]


def cut_in(kind: str, photo: Image.Image, box: TargetBox, other: Image.Image, chance: random.Random,
           frames: int) -> Iterator[tuple[Image.Image, list[TargetBox]]]:
    """Another photo of the data set, but for one frame (a third to two thirds in) of the target's
    photo: a cut in and out."""
    k = target_scale(kind, box, chance)
    w, h = (box[2] - box[0]) * k, (box[3] - box[1]) * k
    window = window_at(box, k, chance.uniform(w / 2 + 8, WIDTH - w / 2 - 8), chance.uniform(h / 2 + 8, HEIGHT - h / 2 - 8))
    shot = chance.randrange(frames // 3, 2 * frames // 3)
    around = other.resize((WIDTH, HEIGHT), Image.LANCZOS, box=fitted(other))
    target = next(shown(photo, [window]))
    for t in range(frames):
        yield (target, [in_frame(box, window)]) if t == shot else (around, [])


def fitted(photo: Image.Image) -> tuple[float, float, float, float]:
    """The largest window of the frame's shape in the photo, centred."""
    w = min(photo.width, photo.height * WIDTH / HEIGHT)
    h = w * HEIGHT / WIDTH
    return (photo.width - w) / 2, (photo.height - h) / 2, (photo.width + w) / 2, (photo.height + h) / 2


def make_hard(folder: Path, kind: str, seed: int, frames: int, count: int, context: bool) -> None:
    """`count` clips a case: KIND-enters-NN, KIND-grows-NN, KIND-cut-NN, each scoring one target,
    alone on grey or (`context`) in its whole photo."""
    folder.mkdir(parents=True, exist_ok=True)
    chance = random.Random(seed)
    for case in HARD_CASES:
        for n, (path, box) in enumerate(hard_targets(kind, chance, count), 1):
            photo = Image.open(path).convert("RGB")
            photo = photo if context else alone(photo, box)
            if case == "cut":
                others = sorted(set(plates() if kind == "plates" else words()) - {path})
                clip = cut_in(kind, photo, box, Image.open(chance.choice(others)).convert("RGB"), chance, frames)
            else:
                windows = (entering(box, target_scale(kind, box, chance), chance, frames) if case == "enters"
                           else growing(kind, box, chance, frames))
                clip = zip(shown(photo, windows), ([in_frame(box, w)] for w in windows))
            write_clip(folder, f"{kind}-{case}-{n:02d}", (WIDTH, HEIGHT), clip, kind)


@dataclass
class Tally:
    targets: int = 0
    protected: int = 0  # >= 95% of the box
    by_rule: int = 0  # eval_images.py's rule
    away: float = 0.0  # summed over frames with a target
    frames: int = 0
    seconds: float = 0.0
    clips: int = 0
    # Instances not protected: share hidden, clip, frame, box (x0, y0, x1, y1, inside the frame).
    leaks: list[tuple[float, str, int, tuple[int, int, int, int]]] = field(default_factory=list)

    def add(self, other: Tally) -> None:
        for name in ("targets", "protected", "by_rule", "away", "frames", "seconds", "clips", "leaks"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


def truth_of(clip: Path, kind: str) -> dict[int, list[tuple[int, int, int, int]]]:
    boxes: dict[int, list[tuple[int, int, int, int]]] = {}
    with open(clip.with_name(f"{clip.stem}_{kind}.csv"), newline="") as file:
        for row in csv.DictReader(file):
            box = tuple(int(round(float(row[k]))) for k in ("x0", "y0", "x1", "y1"))
            boxes.setdefault(int(row["frame_index"]), []).append(box)  # type: ignore[arg-type]
    return boxes


def hidden_by(media, kind: Kind, frame: int) -> np.ndarray:
    """The frame's pixels that the plan's regions of `kind` hide, as rendering draws them."""
    mask = np.zeros((media.height, media.width), bool)
    for region in media.regions:
        if region.kind == kind and frame in region.boxes:
            drawn = region_mask(region.shape, region.boxes[frame], media.height, media.width)
            if drawn is not None:
                rows, cols, inside = drawn
                mask[rows, cols] |= inside
    return mask


def score(clip: Path, every: int, kind: str, with_faces: bool) -> Tally:
    """The clip's targets of `kind` (plates, text) against the plan made with --hide of that kind
    (and faces: `with_faces`), the kind's detector on every `every`-th sampled frame."""
    sampling = replace(VIDEO_DETECTION["fast"], text_every=every)
    hidden = HIDE_WORDS[kind]
    started = time.perf_counter()
    media = plan_video(clip, FAST, sampling=sampling, hide=(("face",) if with_faces else ()) + (hidden,))
    tally = Tally(seconds=time.perf_counter() - started, clips=1)
    for frame, boxes in truth_of(clip, kind).items():
        mask = hidden_by(media, hidden, frame)
        near = np.zeros_like(mask)
        for x0, y0, x1, y1 in boxes:
            inside = (max(0, x0), max(0, y0), min(media.width, x1), min(media.height, y1))
            whole, rule = protected(mask, inside)
            tally.targets += 1
            tally.protected += whole
            tally.by_rule += rule
            if not whole:
                tally.leaks.append((float(mask[inside[1]:inside[3], inside[0]:inside[2]].mean()), clip.stem, frame,
                                    inside))
            m = (y1 - y0) // 2
            near[max(0, y0 - m):max(0, y1 + m), max(0, x0 - m):max(0, x1 + m)] = True
        tally.away += float((mask & ~near).mean())
        tally.frames += 1
    return tally


def case_of(clip: Path) -> str:
    """A hard clip's case (KIND-CASE-NN: `make_hard`), else plain."""
    parts = clip.stem.split("-")
    return f"{parts[0]}-{parts[1]}" if len(parts) == 3 and parts[1] in HARD_CASES else "plain"


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
    parser.add_argument("action", choices=("make", "grid", "hard", "score"))
    parser.add_argument("folder", type=Path)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--frames", type=int, default=FRAMES, help="make, hard: frames a clip (fewer: the same "
                        "camera path, faster)")
    parser.add_argument("--kind", choices=("plates", "text"), default="plates", help="hard, score: the targets")
    parser.add_argument("--count", type=int, default=4, help="hard: targets a case")
    parser.add_argument("--context", action="store_true", help="hard: each target in its whole photo (its "
                        "neighbours unscored), not alone on grey")
    parser.add_argument("--every", default="1,2,3,4", help="text detector (plates, words) on every n-th sampled frame")
    parser.add_argument("--limit", type=int, default=0, help="first N clips only")
    parser.add_argument("--worst", type=int, default=8, help="score: instances not protected listed, worst first")
    parser.add_argument("--time", action="store_true", help="run every setting in full and time it")
    args = parser.parse_args()
    if args.action == "grid":
        make_grid(args.folder, args.frames // 2)
        return
    if args.action == "make":
        make(args.folder, args.seed, args.frames)
        return
    if args.action == "hard":
        make_hard(args.folder, args.kind, args.seed, args.frames, args.count, args.context)
        return
    clips = sorted(truth.with_name(truth.name.removesuffix(f"_{args.kind}.csv") + ".mp4")
                   for truth in args.folder.glob(f"*_{args.kind}.csv"))[: args.limit or None]
    if not clips:
        sys.exit(f"no clips of {args.kind} in {args.folder}: make them first")
    settings = [int(n) for n in args.every.split(",")]
    totals = {(n, case): Tally() for n in settings for case in sorted({case_of(clip) for clip in clips})}
    faces_seconds = 0.0
    if not args.time:
        reuse_detections()
    for clip in clips:
        if args.time:
            faces_seconds += faces_only_seconds(clip)
        for n in settings:
            totals[n, case_of(clip)].add(score(clip, n, args.kind, with_faces=args.time))
    print(f"{len(clips)} clips" +
          (f"; faces alone: {faces_seconds / len(clips):.2f} s a clip" if args.time else ""))
    print(f"{'detector on':24s} {'clips':14s} {'protected':>20s} {'eval_images rule':>14s} {'area away':>10s}" +
          (f" {'s/clip':>7s} {'x faces alone':>14s}" if args.time else ""))
    for (n, case), t in totals.items():
        times = f" {t.seconds / t.clips:7.2f} {t.seconds * len(clips) / t.clips / faces_seconds:13.2f}x" if args.time else ""
        print(f"{f'every {n} sampled frame(s)':24s} {f'{case} ({t.clips})':14s} {t.protected:6d} / {t.targets:5d} "
              f"{100 * t.protected / t.targets:5.1f}% {t.by_rule:6d} {100 * t.by_rule / t.targets:5.1f}%     "
              f"{100 * t.away / t.frames:5.2f}%{times}", flush=True)
    for n in settings:
        leaks = sorted(leak for (m, _), t in totals.items() if m == n for leak in t.leaks)
        if leaks and args.worst:
            print(f"every {n}: worst of {len(leaks)} not protected (hidden, clip, frame, box x0 y0 x1 y1 and w x h):")
            for hidden, name, frame, (x0, y0, x1, y1) in leaks[:args.worst]:
                print(f"    {100 * hidden:5.1f}%  {name:18s} {frame:3d}  {x0} {y0} {x1} {y1}  {x1 - x0}x{y1 - y0}")


if __name__ == "__main__":
    main()
