"""Carry a reviewer's box across a frame range, with a tracker following what it covers.

OpenCV's MIL tracker (in opencv-python-headless, needs no model file) follows the
content of the box from frame to frame. Where the tracker loses it, the box is held
still: for redaction a box that stays put over a face is safer than none. Frames where
the track already has a box (a detection, or an earlier edit) keep that box, and the
tracker restarts from it, so it is pulled back onto the face.
"""

from __future__ import annotations

from collections.abc import Iterable

import cv2
import numpy as np

from veil.plan import Box

# The tracker runs on frames scaled to at most this side: MIL costs grow with the
# pixel count, and a face is still tens of pixels wide at this size.
TRACK_SIDE = 640
# One request follows at most this many frames (about 2 minutes at 25 fps), so a
# mis-typed range cannot keep the server busy for an hour.
MAX_FOLLOW_FRAMES = 3000


def follow_box(frames: Iterable[tuple[int, np.ndarray]], start: Box, existing: dict[int, Box]) -> dict[int, Box]:
    """Boxes for each frame after the first of `frames` (which holds `start`) that has none in `existing`.

    `frames` runs in the direction of travel (forwards or backwards), starting at the
    frame `start` was drawn on. New boxes have origin "reviewer": a person asked for them.
    """
    width, height = start.width, start.height
    tracker: cv2.Tracker | None = None
    scale = 1.0
    last = start
    found: dict[int, Box] = {}
    for position, (index, pixels) in enumerate(frames):
        if position == 0:
            scale = min(1.0, TRACK_SIDE / max(pixels.shape[:2]))
        small = cv2.resize(pixels, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else pixels
        anchor = existing.get(index) if position else start
        if anchor is not None:
            tracker = _start(small, anchor, scale)
            last = anchor
            continue
        last = _track(tracker, small, scale, last, width, height)
        found[index] = Box(last.x0, last.y0, last.x1, last.y1, "reviewer", None).clipped(pixels.shape[1], pixels.shape[0])
    return found


def _start(small: np.ndarray, box: Box, scale: float) -> cv2.Tracker | None:
    x, y = int(box.x0 * scale), int(box.y0 * scale)
    w, h = max(4, int(box.width * scale)), max(4, int(box.height * scale))
    if x < 0 or y < 0 or x + w > small.shape[1] or y + h > small.shape[0]:
        x, y = max(0, x), max(0, y)
        w, h = min(w, small.shape[1] - x), min(h, small.shape[0] - y)
    if w < 4 or h < 4:
        return None  # too small to track: hold the box still
    tracker = cv2.TrackerMIL_create()
    tracker.init(small, (x, y, w, h))
    return tracker


def _track(tracker: cv2.Tracker | None, small: np.ndarray, scale: float, last: Box, width: float, height: float) -> Box:
    """The box in this frame: the tracker's centre, keeping the drawn size; else where it was."""
    if tracker is None:
        return last
    ok, (x, y, w, h) = tracker.update(small)
    if not ok:
        return last
    cx, cy = (x + w / 2) / scale, (y + h / 2) / scale
    return Box(cx - width / 2, cy - height / 2, cx + width / 2, cy + height / 2, "reviewer", None)
