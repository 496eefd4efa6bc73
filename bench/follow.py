"""The review's "Follow to frame N", against ground truth: how much of the face each followed box
covers, for veil's follower and for OpenCV's MIL tracker alone (what it was before).

A reviewer draws a box on a clip's first frame (the annotated face, 10% larger each way) and
follows it to the last frame. For every later frame: the share of the annotated face inside the
box, and the box's area over the drawn one. Clips: ../shared/data/videos/youtube_faces (one
annotated face per frame).

    python bench/follow.py [SEED]     # MIL's random sampling seeded (default 0)
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import av
import cv2
import numpy as np

from veil.plan import Box
from veil.review.follow import TRACK_SIDE, follow_box
from veil.review.frames import upright

CLIPS = Path(__file__).resolve().parents[2] / "shared" / "data" / "videos" / "youtube_faces"
COVERED = 0.8  # a frame counts as covered when this share of the face is inside the box
SEED = int(sys.argv[1]) if len(sys.argv) > 1 else 0


def mil_alone(frames: list[np.ndarray], start: Box) -> dict[int, Box]:
    """The follower before: MIL's centre each frame, the drawn size, held where MIL reports a loss."""
    scale = min(1.0, TRACK_SIDE / max(frames[0].shape[:2]))
    small = [cv2.resize(f, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else f for f in frames]
    tracker = cv2.TrackerMIL_create()
    tracker.init(small[0], (int(start.x0 * scale), int(start.y0 * scale), int(start.width * scale), int(start.height * scale)))
    boxes, last = {}, start
    for index in range(1, len(frames)):
        ok, (x, y, w, h) = tracker.update(small[index])
        if ok:
            cx, cy = (x + w / 2) / scale, (y + h / 2) / scale
            last = Box(cx - start.width / 2, cy - start.height / 2, cx + start.width / 2, cy + start.height / 2, "reviewer")
        boxes[index] = last
    return boxes


def coverage(box: Box, face: list[float]) -> float:
    x, y, w, h = face
    across = max(0.0, min(box.x1, x + w) - max(box.x0, x))
    down = max(0.0, min(box.y1, y + h) - max(box.y0, y))
    return across * down / (w * h)


def main() -> None:
    if not CLIPS.is_dir():
        sys.exit(f"test data not found at {CLIPS} (../shared/data)")
    print("| clip | frames | veil: frames < 80% covered | least covered | box area / drawn "
          "| MIL alone: frames < 80% covered | least covered | box area / drawn |")
    print("|---|---|---|---|---|---|---|---|")
    totals = np.zeros(3, int)
    for clip in sorted(CLIPS.glob("*.mp4")):
        with open(clip.with_name(f"{clip.stem}_gt.csv")) as file:
            truth = {int(r["frame_index"]): [float(r[k]) for k in ("x_left", "y_top", "width", "height")]
                     for r in csv.DictReader(file)}
        with av.open(str(clip)) as container:
            frames = [upright(f) for f in container.decode(video=0)]
        x, y, w, h = truth[0]
        start = Box(x - 0.1 * w, y - 0.1 * h, x + 1.1 * w, y + 1.1 * h, "reviewer")
        row = [clip.stem, str(len(frames) - 1)]
        for follow in (lambda: follow_box(list(enumerate(frames)), start, {}), lambda: mil_alone(frames, start)):
            cv2.setRNGSeed(SEED)  # MIL samples at random: each follower starts from the same state
            boxes = follow()
            shares = [coverage(b, truth[i]) for i, b in boxes.items() if i in truth]
            short = sum(s < COVERED for s in shares)
            area = np.mean([b.width * b.height for b in boxes.values()]) / (start.width * start.height)
            row += [str(short), f"{min(shares):.2f}", f"{area:.2f}"]
        totals += [len(frames) - 1, int(row[2]), int(row[5])]
        print("| " + " | ".join(row) + " |")
    print(f"\nall: {totals[0]} frames followed; under {COVERED:.0%} covered: veil {totals[1]}, MIL alone {totals[2]}")


if __name__ == "__main__":
    main()
