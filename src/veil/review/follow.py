"""Carry a reviewer's box across a frame range, with a tracker following what it covers.

OpenCV's MIL tracker (in opencv-python-headless, needs no model file) follows the
content of the box from frame to frame, checked against the picture the box covered where
it was anchored (`Follower`). Where neither finds it looking more like itself, the box is
held still: for redaction a box that stays put over a face is safer than one that drifts. Frames where
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
# A box MIL cannot start on (about the picture's size: a close-up's head box) is tried again this
# many times, a fifth smaller each time, then held still.
SHRINK_TRIES = 4


def follow_box(frames: Iterable[tuple[int, np.ndarray]], start: Box, existing: dict[int, Box]) -> dict[int, Box]:
    """Boxes for each frame after the first of `frames` (which holds `start`) that has none in `existing`.

    `frames` runs in the direction of travel (forwards or backwards), starting at the
    frame `start` was drawn on. New boxes have origin "reviewer": a person asked for them,
    each the size of the last box met (a face come closer, boxed larger there, stays covered).
    """
    follower: Follower | None = None
    scale = 1.0
    last = start
    found: dict[int, Box] = {}
    for position, (index, pixels) in enumerate(frames):
        if position == 0:
            scale = min(1.0, TRACK_SIDE / max(pixels.shape[:2]))
        small = cv2.resize(pixels, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else pixels
        anchor = existing.get(index) if position else start
        if anchor is not None:
            follower = Follower.start(small, anchor, scale)
            last = anchor
            continue
        box = follower.next(small, last.width, last.height) if follower is not None else last
        # Not clipped to the frame: the ellipse is drawn in the whole box (a face leaving the
        # picture keeps its size until it is gone).
        found[index] = Box(box.x0, box.y0, box.x1, box.y1, "reviewer", None)
    return found


# A box whose picture correlates with the anchor's at least this much still covers what was
# anchored; a match nearby must look more like it than where the box is by the margin to move it.
STILL_ALIKE = 0.5
MARGIN = 0.1


class Follower:
    """Two followers of what a box covered where it was drawn (or last anchored): OpenCV's MIL
    tracker, and a check of the anchor's picture that holds the box where it still looks like it
    and looks for it nearby where it does not. MIL alone drifts off a face that barely moves, or
    loses one that moves quickly, with no sign of it; the check alone loses a face that turns.
    Where the two disagree, the box covers both places: a box too large hides more of the
    background, one in the wrong place leaves the face visible."""

    def __init__(self, tracker: cv2.Tracker, template: np.ndarray, centre: tuple[float, float], scale: float,
                 offset: tuple[float, float]):
        self.tracker, self.template, self.centre, self.scale = tracker, template, centre, scale
        # From the centre of what is followed (the box's part inside the frame) to the box's own
        # centre: a box reaching past the edge keeps its place around the head, not a smaller one's.
        self.offset = offset

    @classmethod
    def start(cls, small: np.ndarray, box: Box, scale: float) -> Follower | None:
        x, y = int(box.x0 * scale), int(box.y0 * scale)
        w, h = max(4, int(box.width * scale)), max(4, int(box.height * scale))
        if x < 0 or y < 0 or x + w > small.shape[1] or y + h > small.shape[0]:
            x, y = max(0, x), max(0, y)
            w, h = min(w, small.shape[1] - x), min(h, small.shape[0] - y)
        if w < 4 or h < 4:
            return None  # too small to follow: hold the box still
        tracker = cv2.TrackerMIL_create()
        for _ in range(SHRINK_TRIES):
            try:
                tracker.init(small, (x, y, w, h))
                break
            except cv2.error:  # MIL finds no samples round a box about as large as the picture
                x, y, w, h = x + w // 10, y + h // 10, w - 2 * (w // 10), h - 2 * (h // 10)
        else:
            return None
        followed = (x + w / 2, y + h / 2)
        own = ((box.x0 + box.x1) / 2 * scale, (box.y0 + box.y1) / 2 * scale)
        return cls(tracker, _grey(small)[y:y + h, x:x + w].copy(), followed, scale,
                   (own[0] - followed[0], own[1] - followed[1]))

    def next(self, small: np.ndarray, width: float, height: float) -> Box:
        """The box in this frame: the drawn size where both followers agree, their union where not."""
        grey = _grey(small)
        ok, (x, y, w, h) = self.tracker.update(small)
        here = self._likeness(grey, self.centre)
        found, likeness = self._best_match(grey, self.centre)
        if likeness >= STILL_ALIKE and likeness > here + MARGIN:
            self.centre = found  # it moved, and is plainly nearby
        elif here < STILL_ALIKE and ok:
            self.centre = (x + w / 2, y + h / 2)  # like its picture nowhere (it turned): MIL's learning leads
        boxes = [self._box(self.centre, width, height)]
        if ok:
            boxes.append(self._box((x + w / 2, y + h / 2), width, height))
        return Box(min(b.x0 for b in boxes), min(b.y0 for b in boxes), max(b.x1 for b in boxes),
                   max(b.y1 for b in boxes), "reviewer", None)

    def _box(self, centre: tuple[float, float], width: float, height: float) -> Box:
        cx, cy = (centre[0] + self.offset[0]) / self.scale, (centre[1] + self.offset[1]) / self.scale
        return Box(cx - width / 2, cy - height / 2, cx + width / 2, cy + height / 2, "reviewer", None)

    def _best_match(self, grey: np.ndarray, near: tuple[float, float]) -> tuple[tuple[float, float], float]:
        """Where the anchor's picture matches best within a box's size of `near`, and how well."""
        h, w = self.template.shape
        x0, y0 = max(0, int(near[0] - 1.5 * w)), max(0, int(near[1] - 1.5 * h))
        window = grey[y0:int(near[1] + 1.5 * h), x0:int(near[0] + 1.5 * w)]
        if window.shape[0] < h or window.shape[1] < w:
            return near, -1.0
        _, best, _, (bx, by) = cv2.minMaxLoc(cv2.matchTemplate(window, self.template, cv2.TM_CCOEFF_NORMED))
        return (x0 + bx + w / 2, y0 + by + h / 2), float(best)

    def _likeness(self, grey: np.ndarray, centre: tuple[float, float]) -> float:
        """Normalised correlation of the anchor's picture with the frame's at `centre` (-1: off the frame)."""
        h, w = self.template.shape
        x, y = int(round(centre[0] - w / 2)), int(round(centre[1] - h / 2))
        if x < 0 or y < 0 or x + w > grey.shape[1] or y + h > grey.shape[0]:
            return -1.0
        return float(cv2.matchTemplate(grey[y:y + h, x:x + w], self.template, cv2.TM_CCOEFF_NORMED)[0, 0])


def _grey(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY) if rgb.ndim == 3 else rgb
