"""Clips with ground truth for a face that grows past the frame, and for camera flashes.

Made from the WIDER FACE dev photos (never from unseen data), one photo a clip, the camera a 16:9
window over the photo that moves from frame to frame (bilinear resampling, so a face enlarged far
past its photo's resolution is soft, as a digital zoom's is):

    zoom_in    from the whole photo into 0.6 of one face's width, at its eyes, over 12 frames from
               frame 15, then held to frame 90: the face overflows the frame and stays there
    zoom_pull  into 0.75 of the face's width over 10 frames from frame 10, held, then pulled back
               out to the whole photo over 12 frames from frame 45
    flash      a slow push-in over the whole photo (its width to 0.9 of it) with camera flashes: a
               strong one on frame 20 (levels x2.2 + 40), one fading over frames 50-51 (x2.0, x1.5,
               + 30), a mild one on frame 70 (x1.6 + 25)

The face zoomed into is the photo's tallest annotated face, taken from photos whose tallest face is
at least 150 px high (sorted by name, every --every-th one). GT: every annotated face, in the
window's pixels, also where it overflows the frame (zooms), else when at least half of it is in it;
a clip with no face in it is not written.

    python bench/video_zooms.py /tmp/zooms                        # every set (never commit them)
    python bench/video_leaks.py --tools veil --sets "" --more /tmp/zooms/zoom_in --more /tmp/zooms/zoom_pull
    python bench/video_leaks.py --sets "" --more /tmp/zooms/flash  # veil beside deface

Writes OUT/<set>/<clip>.mp4 and OUT/<set>/<clip>_gt.csv (frame_index,x_left,y_top,width,height, as
the clips in ../shared/data/videos), and prints a line per clip. Encoding: PyAV libx264, crf 16,
yuv420p, 30 fps, one thread, so a run makes the same clips every time.
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from photo_recall import DATA, load_ground_truth  # noqa: E402

WIDER = DATA
SIZE = (960, 540)
FRAMES = 90
SETS = ("zoom_in", "zoom_pull", "flash")
Window = tuple[float, float, float]  # left, top, width (height from the 16:9 frame)
# Frame -> (gain, lift) of each flash.
FLASHES = {20: (2.2, 40), 50: (2.0, 30), 51: (1.5, 30), 70: (1.6, 25)}


def ease(position: float) -> float:
    return float(np.clip(position, 0.0, 1.0))


def zoom_windows(photo: tuple[int, int], face: tuple[float, float, float, float], close: float,
                 share: Callable[[int], float]) -> list[Window]:
    """One window a frame, `share(frame)` of the way (0..1, in scale, logarithmically) from the
    whole photo to `close` times the face's width, centred at its eyes."""
    width, height = photo
    x, y, w, h = face
    eyes_x, eyes_y = x + w / 2, y + 0.4 * h
    whole = min(width, height * SIZE[0] / SIZE[1])
    windows = []
    for frame in range(FRAMES):
        t = share(frame)
        seen = float(np.exp(np.log(whole) * (1 - t) + np.log(close * w) * t))
        tall = seen * SIZE[1] / SIZE[0]
        left = min(max((eyes_x - seen / 2) * t + (width - seen) / 2 * (1 - t), 0), width - seen)
        top = min(max((eyes_y - tall / 2) * t + (height - tall) / 2 * (1 - t), 0), height - tall)
        windows.append((left, top, seen))
    return windows


def push_in(photo: tuple[int, int]) -> list[Window]:
    width, height = photo
    whole = min(width, height * SIZE[0] / SIZE[1])
    windows = []
    for frame in range(FRAMES):
        seen = whole * (1 - 0.1 * frame / (FRAMES - 1))
        windows.append(((width - seen) / 2, (height - seen * SIZE[1] / SIZE[0]) / 2, seen))
    return windows


def shot(image: Image.Image, faces: list[tuple[float, float, float, float]], windows: list[Window],
         overflowing: bool) -> tuple[list[np.ndarray], list[list[tuple[float, float, float, float]]]]:
    """The frames seen through the windows, and each frame's GT boxes in its pixels."""
    frames, truth = [], []
    for left, top, seen in windows:
        scale = SIZE[0] / seen
        box = (left, top, left + seen, top + seen * SIZE[1] / SIZE[0])
        frames.append(np.asarray(image.resize(SIZE, Image.BILINEAR, box=box)))
        inside = []
        for x, y, w, h in faces:
            x0, y0, x1, y1 = (x - left) * scale, (y - top) * scale, (x + w - left) * scale, (y + h - top) * scale
            shown = max(0.0, min(x1, SIZE[0]) - max(x0, 0)) * max(0.0, min(y1, SIZE[1]) - max(y0, 0))
            if shown > 0 and (overflowing or shown >= 0.5 * (x1 - x0) * (y1 - y0)):
                inside.append((x0, y0, x1 - x0, y1 - y0))
        truth.append(inside)
    return frames, truth


def flashed(frames: list[np.ndarray]) -> list[np.ndarray]:
    return [np.clip(f.astype(np.float32) * FLASHES[n][0] + FLASHES[n][1], 0, 255).astype(np.uint8)
            if n in FLASHES else f for n, f in enumerate(frames)]


def write(clip: Path, frames: list[np.ndarray], truth: list[list[tuple[float, float, float, float]]]) -> None:
    with av.open(str(clip), "w") as container:
        stream = container.add_stream("libx264", rate=30, options={"crf": "16", "preset": "medium"})
        stream.width, stream.height, stream.pix_fmt = SIZE[0], SIZE[1], "yuv420p"
        stream.thread_count = 1
        for n, frame in enumerate(frames):
            picture = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), "rgb24")
            picture.pts, picture.time_base = n, Fraction(1, 30)
            container.mux(stream.encode(picture))
        container.mux(stream.encode(None))
    with open(clip.with_name(clip.stem + "_gt.csv"), "w", newline="") as table:
        rows = csv.writer(table)
        rows.writerow(["frame_index", "x_left", "y_top", "width", "height"])
        for n, boxes in enumerate(truth):
            rows.writerows([n, *(round(v, 1) for v in box)] for box in boxes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--sets", default=",".join(SETS))
    parser.add_argument("--every", type=int, default=10, help="every n-th photo with a face >= 150 px (by name)")
    args = parser.parse_args()
    if not WIDER.is_dir():
        sys.exit(f"WIDER FACE dev photos not found at {WIDER}")
    annotated = {name: [(f.x, f.y, f.w, f.h) for f in faces if f.valid]
                 for name, faces in load_ground_truth(WIDER).items()}
    chosen = [(name, faces) for name, faces in sorted(annotated.items())
              if faces and max(h for _, _, _, h in faces) >= 150][::args.every]
    for kind in args.sets.split(","):
        folder = args.out / kind
        folder.mkdir(parents=True, exist_ok=True)
        for name, faces in chosen:
            image = Image.open(WIDER / "images" / name).convert("RGB")
            tallest = max(faces, key=lambda box: box[3])
            if kind == "zoom_in":
                windows = zoom_windows(image.size, tallest, 0.6, lambda n: ease((n - 15) / 12))
            elif kind == "zoom_pull":
                windows = zoom_windows(image.size, tallest, 0.75,
                                       lambda n: ease((n - 10) / 10) if n < 45 else ease(1 - (n - 45) / 12))
            else:
                windows = push_in(image.size)
            frames, truth = shot(image, faces, windows, overflowing=kind != "flash")
            if not any(truth):
                print(f"{kind}/{Path(name).stem}: no face in the window, not written", flush=True)
                continue
            if kind == "flash":
                frames = flashed(frames)
            clip = folder / (Path(name).stem + ".mp4")
            write(clip, frames, truth)
            print(f"{kind}/{clip.name}: {sum(map(len, truth))} face instances", flush=True)


if __name__ == "__main__":
    main()
