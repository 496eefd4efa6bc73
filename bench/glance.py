"""The glance at the frames between sampled ones (VideoDetection.glance_side): what it finds, what it costs.

    python bench/glance.py flashes --photos 40     # faces shown on one frame only, hidden with and without it
    python bench/glance.py flashes --side 480 --threshold 0.3   # another glance
    python bench/glance.py clips                   # every clip in ../shared/data/videos: plans changed? CPU time

`flashes`: clips made here from WIDER FACE dev photos (960x540, 25 fps, 30 frames): every frame
shows the photo with its annotated faces painted out (each face's box filled with its own mean
colour, so the grey-level histogram barely moves and no scene cut is seen), except frame 15 (not
sampled: the default profile detects on every other frame), which shows the photo whole. A face
on it is protected by eval_images.py's rule (>= 95% of the inner 60% of its box and >= 70% of the
box redacted) in the rendered output. Faces by height on the clip's frame.

`clips`: the default profile with and without the glance on every clip: frames whose boxes differ,
and CPU seconds of pass 1 (plan_video), both versions taking turns on each clip.
"""

from __future__ import annotations

import argparse
import dataclasses
import glob
import tempfile
import time
from pathlib import Path

import av
import numpy as np
from PIL import Image

from photo_recall import DATA as WIDER, MAGENTA, GroundTruthFace, is_protected, load_ground_truth
from veil.detect import VIDEO_DETECTION
from veil.plan import RenderSettings
from veil.video import plan_video, render_video

DATA = WIDER.parent
SIZE = (960, 540)
FLASH = 15
BUCKETS = [(20, 40), (40, 80), (80, 10_000)]


def settings(glance: bool, side: int | None = None, threshold: float | None = None):
    """The default video profile, its glance off, or on at its own (or the given) side and threshold."""
    fast = VIDEO_DETECTION["fast"]
    if not glance:
        return dataclasses.replace(fast, glance_side=None)
    return dataclasses.replace(fast, glance_side=side or fast.glance_side,
                               glance_threshold=fast.glance_threshold if threshold is None else threshold)


def flash_clip(photo: Path, faces: list[GroundTruthFace], target: Path) -> list[GroundTruthFace]:
    """Writes the clip; returns the faces in its frames."""
    image = Image.open(photo).convert("RGB")
    scale = min(SIZE[0] / image.width, SIZE[1] / image.height)
    shown = np.zeros((SIZE[1], SIZE[0], 3), np.uint8)
    w, h = round(image.width * scale), round(image.height * scale)
    shown[:h, :w] = np.asarray(image.resize((w, h), Image.Resampling.LANCZOS))
    scaled = [GroundTruthFace(round(f.x * scale), round(f.y * scale), max(1, round(f.w * scale)),
                              max(1, round(f.h * scale)), f.valid) for f in faces]
    hidden = shown.copy()
    for f in scaled:
        hidden[f.y:f.y + f.h, f.x:f.x + f.w] = hidden[f.y:f.y + f.h, f.x:f.x + f.w].reshape(-1, 3).mean(axis=0)
    with av.open(str(target), "w") as out:
        stream = out.add_stream("libx264", rate=25, options={"crf": "14"})
        stream.width, stream.height, stream.pix_fmt = *SIZE, "yuv420p"
        for index in range(30):
            frame = av.VideoFrame.from_ndarray(shown if index == FLASH else hidden, "rgb24")
            frame.pts = index
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return scaled


def flashes(count: int, side: int | None, threshold: float | None) -> None:
    fill = RenderSettings(mode="fill", color=MAGENTA)
    chosen = [(WIDER / "images" / name, faces) for name, faces in load_ground_truth(WIDER).items()
              if any(f.h >= 40 for f in faces)][:count]
    tally = {glance: {bucket: [0, 0] for bucket in BUCKETS} for glance in (False, True)}
    with tempfile.TemporaryDirectory() as folder:
        for n, (photo, annotated) in enumerate(chosen):
            clip = Path(folder) / "flash.mp4"
            faces = flash_clip(photo, annotated, clip)
            for glance in (False, True):
                out = Path(folder) / "out.mp4"
                render_video(plan_video(clip, sampling=settings(glance, side, threshold)), fill, out)
                with av.open(str(out)) as c:
                    frame = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)][FLASH].astype(int)
                mask = (np.abs(frame - MAGENTA) <= 40).all(axis=2)
                for face in faces:
                    for bucket in BUCKETS:
                        if bucket[0] <= face.h < bucket[1]:
                            tally[glance][bucket][0] += is_protected(mask, face)
                            tally[glance][bucket][1] += 1
            print(f"{n + 1}/{len(chosen)} {photo.name}", flush=True)
    print(f"faces on frame {FLASH} only, {len(chosen)} clips from WIDER dev photos; glance {settings(True, side, threshold).glance_side} px"
          f" from {settings(True, side, threshold).glance_threshold}")
    print("| glance | " + " | ".join(f"{a}-{b} px" if b < 10_000 else f">= {a} px" for a, b in BUCKETS) + " |")
    print("|---|" + "---|" * len(BUCKETS))
    for glance in (False, True):
        cells = [f"{100 * done / max(total, 1):.1f}% ({done}/{total})" for done, total in tally[glance].values()]
        print(f"| {'on' if glance else 'off'} | " + " | ".join(cells) + " |")


def clips() -> None:
    paths = sorted(glob.glob(str(DATA / "videos" / "*" / "*.mp4")) + glob.glob(str(DATA / "videos" / "*" / "*.mkv")))
    cpu = {False: 0.0, True: 0.0}
    changed = 0
    plan_video(Path(paths[0]), sampling=settings(True))  # models loaded before anything is timed
    for path in paths:
        boxes = {}
        for glance in (False, True):
            started = time.process_time()
            media = plan_video(Path(path), sampling=settings(glance))
            cpu[glance] += time.process_time() - started
            boxes[glance] = {f: sorted((b.x0, b.y0, b.x1, b.y1) for _, b in v) for f, v in media.boxes_by_frame().items()}
        differ = [f for f in set(boxes[False]) | set(boxes[True]) if boxes[False].get(f) != boxes[True].get(f)]
        changed += bool(differ)
        print(f"{Path(path).name}: {len(differ)} frames differ", flush=True)
    print(f"{len(paths)} clips, {changed} with any box changed; pass 1 CPU s without / with the glance: "
          f"{cpu[False]:.1f} / {cpu[True]:.1f} ({cpu[True] / cpu[False]:.3f}x)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("what", choices=["flashes", "clips"])
    parser.add_argument("--photos", type=int, default=40)
    parser.add_argument("--side", type=int, help="the glance's longest side (default: the profile's)")
    parser.add_argument("--threshold", type=float, help="the glance's lowest score kept (default: the profile's)")
    args = parser.parse_args()
    flashes(args.photos, args.side, args.threshold) if args.what == "flashes" else clips()


if __name__ == "__main__":
    main()
