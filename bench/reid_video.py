#!/usr/bin/env python3
"""Multi-frame re-identification of veil-redacted faces in video (LFW clips, dlib's recogniser).

Question: a pixelated or blurred face is seen on many frames of a video, each sampling it a
little differently as it moves. Can an attacker who registers the frames and combines them
(aligned average, super-resolution) recognise a face that a single frame does not give away?

Clips: each LFW probe thumbnail (150x150, the second image of a person, as in reid_lfw.py) is
placed on a textured background (256x224) and moved by a slow sub-pixel pan and a slight zoom
(`motion`), --frames frames at 25 fps, written by PyAV (x264, near lossless). veil plans each clip
(library API, `fast` profile) and renders it in every mode; the attacker decodes veil's output.

Attacks, all with the attacker's best case: the motion of the face is known exactly (frames are
warped back to the thumbnail's own coordinates), the recogniser's landmarks are those found on
the clean probe (`--align clean` of reid_lfw.py), and for super-resolution veil's own plan boxes
and its renderer are the forward model:
  single   the middle frame alone;
  average  every frame warped back to the thumbnail and averaged;
  sr       (pixelate) iterative back-projection from the average: the estimate is moved and
           pixelated exactly as veil did each frame, and the differences from veil's frames are
           warped back and added, --iterations times. Not for blur: its random shading is a
           secret of the export, so the attacker has no forward model.
Reference rows (--reference, on by default): the same clean clip pixelated in veil's boxes with
veil's block size, but the blocks counted from the frame's corner rather than the box's, so the face
slides across a still grid. They show what the same attacks do where the frames really do sample
the face differently (and that the bench can see it).
Scores: rank-1 identification against the clean gallery (first image of each person) and the mean
rank of the true person (chance (people + 1) / 2); the clean clip's middle frame is the sanity row.
Chance is 1/people. Also: how far the face moves against each grid over a clip, in blocks.

Prints figures only; asserts nothing. Run from .bench-venv (dlib) with this checkout's veil:
    PYTHONPATH=src .bench-venv/bin/python bench/reid_video.py [--limit N] [--modes pixelate:6,pixelate:8,blur]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from reid_lfw import Recogniser, die, people, rank1, read_rgb
from veil.plan import Box, MediaPlan, Region, RenderSettings, drawn_shape
from veil.render import _block_means, mosaic, pixelate_block_size, region_mask

CANVAS = (256, 224)  # width, height of the clips: the moving thumbnail and some background
THUMB = 150  # LFW thumbnails are 150x150
FPS = 25


@dataclass(frozen=True)
class Motion:
    """Where the thumbnail lies in frame k: canvas = scale * thumbnail + (x, y)."""

    scale: float
    x: float
    y: float

    def matrix(self) -> np.ndarray:
        return np.array([[self.scale, 0, self.x], [0, self.scale, self.y]], np.float64)


def motion(k: int, count: int) -> Motion:
    """A slow pan (sub-pixel steps of no simple ratio, so no two frames share a phase; over 48
    frames more than a block of the 6-block mosaic across and half one down) and a 10% zoom: a
    face drifting across a static camera."""
    t = k / max(1, count - 1)
    scale = 1.0 + 0.10 * t
    return Motion(scale, 40.0 + 0.737 * k - 7.5 * t, 25.0 + 0.413 * k - 7.5 * t)


def background(seed: int) -> np.ndarray:
    """A smooth, textured background (a wall, foliage), the same for every frame of a clip."""
    rng = np.random.default_rng(seed)
    w, h = CANVAS
    coarse = rng.uniform(40, 220, (h // 16 + 2, w // 16 + 2, 3)).astype(np.float32)
    fine = rng.normal(0, 12, (h, w, 3)).astype(np.float32)
    return np.clip(cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC) + fine, 0, 255)


def clip_frames(thumbnail: np.ndarray, count: int, seed: int) -> list[np.ndarray]:
    w, h = CANVAS
    back = background(seed)
    inside = np.ones((THUMB, THUMB), np.float32)
    frames = []
    for k in range(count):
        m = motion(k, count).matrix()
        face = cv2.warpAffine(thumbnail.astype(np.float32), m, (w, h), flags=cv2.INTER_LINEAR)
        alpha = cv2.warpAffine(inside, m, (w, h), flags=cv2.INTER_LINEAR)[:, :, None]
        frames.append(np.clip(np.rint(alpha * face + (1 - alpha) * back), 0, 255).astype(np.uint8))
    return frames


def write_clip(frames: list[np.ndarray], path: Path) -> None:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(FPS))
        stream.width, stream.height = CANVAS
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "12", "preset": "fast"}
        for rgb in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def read_clip(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


def to_thumbnail(frame: np.ndarray, where: Motion) -> np.ndarray:
    """A frame warped back onto the thumbnail's own 150x150 grid (float)."""
    return cv2.warpAffine(frame.astype(np.float32), where.matrix(), (THUMB, THUMB),
                          flags=cv2.WARP_INVERSE_MAP | cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def pixelated(canvas: np.ndarray, boxes: list[tuple[Region, Box]], settings: RenderSettings,
              grid: str = "box") -> np.ndarray:
    """veil's pixelation on float pixels, largest region first. `grid`: "box", veil's (blocks
    counted from the box's corner, so the grid moves with the face), or "frame", the reference
    (blocks counted from the frame's corner, so the face moves across a still grid)."""
    out = canvas.copy()
    h, w = out.shape[:2]
    for region, box in sorted(boxes, key=lambda pair: pair[1].width * pair[1].height, reverse=True):
        found = region_mask(drawn_shape(region.kind, region.shape), box, h, w)
        if found is None:
            continue
        rows, cols, mask = found
        if grid == "frame":
            block = pixelate_block_size(box, settings.blocks)
            drawn = _block_means(out[rows, cols], block, (-(rows.start % block), -(cols.start % block)))
        else:
            drawn = mosaic(out[rows, cols], box, rows, cols, settings.blocks)
        out[rows, cols][mask] = drawn[mask]
    return out


def super_resolved(frames: list[np.ndarray], boxes: dict[int, list[tuple[Region, Box]]],
                   settings: RenderSettings, grid: str, start: np.ndarray, iterations: int) -> np.ndarray:
    """Iterative back-projection: the thumbnail that, moved and pixelated as the frames were
    (`pixelated` with `grid`), best gives them."""
    w, h = CANVAS
    count = len(frames)
    inside = [cv2.warpAffine(np.ones((THUMB, THUMB), np.float32), motion(k, count).matrix(), (w, h),
                             flags=cv2.INTER_LINEAR)[:, :, None] for k in range(count)]
    observed = [f.astype(np.float32) for f in frames]
    estimate = start.copy()
    for _ in range(iterations):
        correction = np.zeros_like(estimate)
        for k, seen in enumerate(observed):
            m = motion(k, count).matrix()
            placed = cv2.warpAffine(estimate, m, (w, h), flags=cv2.INTER_LINEAR)
            canvas = inside[k] * placed + (1 - inside[k]) * seen
            residual = seen - pixelated(canvas, boxes.get(k, []), settings, grid)
            back = pixelated(residual, boxes.get(k, []), settings, grid)
            correction += to_thumbnail(back, motion(k, count))
        estimate = np.clip(estimate + correction / count, 0, 255)
    return estimate


def grid_drift(media: MediaPlan, settings: RenderSettings, count: int) -> tuple[float, float]:
    """How far the face moves against the block grid over the clip: the range, over frames, of
    its centre's offset from the grid's corner (the box nearest to it), in blocks, the larger
    of across and down; for veil's grid and for the reference's grid fixed in the frame. 0: every
    frame samples the face alike; 1 or more: every phase."""
    centre = np.array([THUMB / 2, THUMB / 2])
    against_box, against_frame = [], []
    for k, boxes in sorted(media.boxes_by_frame().items()):
        where = motion(k, count)
        face = where.scale * centre + (where.x, where.y)
        box = min((b for _, b in boxes),
                  key=lambda b: np.hypot((b.x0 + b.x1) / 2 - face[0], (b.y0 + b.y1) / 2 - face[1]))
        block = pixelate_block_size(box, settings.blocks)
        against_box.append((face - (np.floor(box.x0), np.floor(box.y0))) / block)
        against_frame.append(face / block)
    return (float(np.ptp(np.array(against_box), axis=0).max()),
            float(np.ptp(np.array(against_frame), axis=0).max()))


def true_rank(probes: np.ndarray, gallery: np.ndarray) -> np.ndarray:
    """For each probe, the place of its own person (same row) among the gallery by distance, 1 =
    nearest: a finer figure than rank-1 on a small cohort (chance: (people + 1) / 2 on average)."""
    distances = np.linalg.norm(probes[:, None, :] - gallery[None, :, :], axis=2)
    own = distances[np.arange(len(probes)), np.arange(len(probes))]
    return 1 + (distances < own[:, None]).sum(axis=1)


def as_image(values: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.clip(np.rint(values), 0, 255).astype(np.uint8))


def parse_modes(text: str) -> list[RenderSettings]:
    modes = []
    for item in filter(None, text.split(",")):
        name, _, blocks = item.partition(":")
        try:
            modes.append(RenderSettings(mode=name, blocks=int(blocks) if blocks else 6))
        except ValueError as error:
            die(f"--modes: {item!r}: {error}")
    return modes


def label(settings: RenderSettings) -> str:
    return f"pixelate {settings.blocks}" if settings.mode == "pixelate" else settings.mode


def attack_clip(frames: list[np.ndarray], media: MediaPlan, settings: RenderSettings, grid: str,
                iterations: int) -> dict[str, np.ndarray]:
    count = len(frames)
    warped = [to_thumbnail(f, motion(k, count)) for k, f in enumerate(frames)]
    average = np.mean(warped, axis=0)
    found = {"single": warped[count // 2], "average": average}
    if settings.mode == "pixelate":  # blur's shading is secret: its forward model is not known
        found["sr"] = super_resolved(frames, media.boxes_by_frame(), settings, grid, average, iterations)
    return found


def frame_grid_clip(clean: list[np.ndarray], media: MediaPlan, settings: RenderSettings,
                    path: Path) -> list[np.ndarray]:
    """The reference: the clean clip pixelated in veil's boxes on a grid fixed in the frame,
    encoded as the clips are."""
    boxes = media.boxes_by_frame()
    write_clip([as_image(pixelated(f.astype(np.float32), boxes.get(k, []), settings, "frame"))
                for k, f in enumerate(clean)], path)
    return read_clip(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, default=40, help="first N people (default 40; all: 361)")
    parser.add_argument("--frames", type=int, default=48,
                        help="frames per clip (25 fps; at most 48: the pan then leaves the frame)")
    parser.add_argument("--modes", default="pixelate:6,pixelate:8,blur",
                        help="render modes, pixelate:BLOCKS or blur (default pixelate:6,pixelate:8,blur)")
    parser.add_argument("--reference", action=argparse.BooleanOptionalAction, default=True,
                        help="also attack the reference: each pixelate mode on a grid fixed in the frame")
    parser.add_argument("--iterations", type=int, default=20, help="super-resolution iterations")
    parser.add_argument("--save", type=Path, default=None,
                        help="write each reconstruction here as PNG (keep it out of git: LFW is research data)")
    args = parser.parse_args()
    try:
        import dlib  # noqa: F401
    except ImportError:
        die("dlib is not installed; run bench/setup.sh and use .bench-venv/bin/python")
    from veil.video import plan_video, render_video

    if not 1 <= args.frames <= 48:
        die(f"--frames must be 1 to 48, not {args.frames}: the pan would leave the frame")
    modes = parse_modes(args.modes)
    cohort = people(args.limit)
    n = len(cohort)
    recogniser = Recogniser()
    started = time.perf_counter()

    gallery, sanity_probe = [], []
    embedded: dict[tuple[str, str], list[np.ndarray]] = {}
    missed = 0  # clips with a frame that veil left without a box
    drift: dict[str, list[tuple[float, float]]] = {}

    def embed(rgb: np.ndarray, shape) -> np.ndarray:
        return recogniser.embed(as_image(rgb), shape)

    with tempfile.TemporaryDirectory(prefix="veil-reid-video-") as tmp:
        out = Path(tmp)
        for i, person in enumerate(cohort):
            g = read_rgb(person.gallery)
            gallery.append(recogniser.embed(g, recogniser.landmarks(g, recogniser.face_rect(g))))
            probe = read_rgb(person.probe)
            shape = recogniser.landmarks(probe, recogniser.face_rect(probe))
            clip = out / "clip.mp4"
            write_clip(clip_frames(probe, args.frames, seed=i), clip)
            clean = read_clip(clip)
            sanity_probe.append(embed(to_thumbnail(clean[len(clean) // 2], motion(len(clean) // 2, len(clean))), shape))
            media = plan_video(clip)
            if len(media.boxes_by_frame()) < len(clean):
                missed += 1
            for settings in modes:
                redacted = out / "redacted.mp4"
                render_video(media, settings, redacted)
                runs = [(label(settings), "box", read_clip(redacted))]
                if settings.mode == "pixelate":
                    drift.setdefault(label(settings), []).append(grid_drift(media, settings, len(clean)))
                    if args.reference:
                        runs.append((f"{label(settings)}, frame grid (reference, not veil)", "frame",
                                     frame_grid_clip(clean, media, settings, redacted)))
                for name, grid, frames in runs:
                    for attack, image in attack_clip(frames, media, settings, grid, args.iterations).items():
                        embedded.setdefault((name, attack), []).append(embed(image, shape))
                        if args.save:
                            args.save.mkdir(parents=True, exist_ok=True)
                            file = f"{person.name}_{name.split(',')[0].replace(' ', '')}_{grid}_{attack}.png"
                            cv2.imwrite(str(args.save / file), cv2.cvtColor(as_image(image), cv2.COLOR_RGB2BGR))
            print(f"  {i + 1}/{n} {person.name} ({time.perf_counter() - started:.0f} s)", flush=True)

    gallery_array = np.stack(gallery)
    sanity = rank1(np.stack(sanity_probe), gallery_array)
    print(f"\nveil multi-frame re-identification on LFW clips: {n} people, {args.frames} frames each, "
          f"chance 1/{n} = {100 / n:.2f}%")
    print(f"{'mode':<48} {'attack':<8} {'rank-1':>8} {'hits':>9}  mean rank (chance {(n + 1) / 2:.1f})")
    print(f"{'none':<48} {'single':<8} {100 * sanity.mean():7.2f}% {int(sanity.sum()):>4}/{n:<4}  "
          f"{true_rank(np.stack(sanity_probe), gallery_array).mean():.1f} (sanity)")
    for (mode, attack), vectors in embedded.items():
        hits = rank1(np.stack(vectors), gallery_array)
        print(f"{mode:<48} {attack:<8} {100 * hits.mean():7.2f}% {int(hits.sum()):>4}/{n:<4}  "
              f"{true_rank(np.stack(vectors), gallery_array).mean():.1f}")
    for mode, spreads in drift.items():
        box, frame = np.array(spreads).T
        print(f"{mode}: the face moves {np.median(box):.2f} blocks (largest {box.max():.2f}) against veil's grid "
              f"over a clip, {np.median(frame):.2f} against a grid fixed in the frame (median over clips)")
    print(f"clips with a frame veil left without a box (a leak): {missed}/{n}")
    print(f"time: {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
