"""Camera motion: how far the whole picture moved from each frame to the next.

Between two searched frames a face's box is interpolated, and past a track's last detection it
is carried on at the track's velocity. Both assume the face moves steadily in the frame. A hand-
held camera breaks that: a jolt on an in-between frame moves every face while its box stays
where the line between its neighbours puts it. Tracking in coordinates that move with the camera
(veil.track, `drift`) makes the jolt part of every box's path. The picture's shift is measured by
phase correlation on a small grey copy of each frame: cheap beside the detector, and exact for
the translation that dominates camera shake.
"""

from __future__ import annotations

import av
import av.error
import cv2
import numpy as np

# The grey copy's width: a 960-px frame's pixels 3 to one across, and phase correlation resolves
# a fraction of one.
MOTION_SIDE = 320
# Below this peak response (the share of the correlation energy in the peak) the two frames
# share too little to say how the picture moved (a flash, a frame of noise): no motion is taken,
# which leaves tracking as it would be without the measure.
MIN_RESPONSE = 0.1
# Nor from or into a frame this flat (the spread of its grey levels): a blank or faded frame has a
# peak anywhere.
MIN_SPREAD = 2.0


def camera_motion_record() -> dict:
    """How the camera's motion is measured, for the plan and its audit report."""
    return {"measure": "phase correlation", "grey_width": MOTION_SIDE, "min_response": MIN_RESPONSE,
            "min_spread": MIN_SPREAD}


def _grey_copy(frame: av.VideoFrame, upright_width: int, upright_height: int, turns: int) -> np.ndarray:
    """A frame's small upright grey copy, as phase correlation takes it."""
    height = max(2, round(upright_height * MOTION_SIDE / upright_width))
    coded = (MOTION_SIDE, height) if turns % 2 == 0 else (height, MOTION_SIDE)
    # swscale's default (bicubic), not the cheaper area average: sharper, and on the shaken and pan
    # clips it left fewer faces uncovered (bench/README.md, "Camera motion").
    grey = frame.to_ndarray(width=coded[0], height=coded[1], format="gray")
    return np.ascontiguousarray(np.rot90(grey, turns) if turns else grey, dtype=np.float32)


class CameraPath:
    """Each frame's drift: how far, in full upright pixels, the picture has moved since the first
    frame, fed every frame in turn. A scene cut starts no drift of its own: tracks never cross a
    cut, so only the moves within a shot count."""

    def __init__(self, upright_width: int, upright_height: int) -> None:
        self._size = (upright_width, upright_height)
        self._previous: np.ndarray | None = None
        self._window: np.ndarray | None = None
        self.steps: list[tuple[float, float]] = []

    def add_frame(self, frame: av.VideoFrame, turns: int, cut: bool = False) -> None:
        """The next frame (`turns`: its display rotation in quarter turns; `cut`: it starts a shot).
        Every frame becomes a copy of the same size, so any two compare. A frame that cannot be
        converted measures no motion into or out of it."""
        try:
            copy: np.ndarray | None = _grey_copy(frame, *self._size, turns)
        except (ValueError, av.error.FFmpegError):
            copy = None
        step = (0.0, 0.0)
        if copy is not None and self._previous is not None and not cut:
            if self._window is None:
                self._window = cv2.createHanningWindow(copy.shape[::-1], cv2.CV_32F)
            (dx, dy), response = cv2.phaseCorrelate(self._previous, copy, self._window)
            if response >= MIN_RESPONSE and _explains(self._previous, copy, dx, dy):
                step = (dx * self._size[0] / copy.shape[1], dy * self._size[1] / copy.shape[0])
        self.steps.append(step)
        self._previous = copy

    def drift(self) -> np.ndarray:
        """Rows of (x, y), one a frame."""
        return np.cumsum(np.array(self.steps, np.float64).reshape(-1, 2), axis=0)


def _explains(before: np.ndarray, after: np.ndarray, dx: float, dy: float) -> bool:
    """Whether the shift (dx, dy) of `before`'s picture explains `after`: both frames have a picture
    to follow, and moved back by it (to the nearest pixel) `after` is nearer to `before` than as it
    is, over the part both show."""
    if before.std() < MIN_SPREAD or after.std() < MIN_SPREAD:
        return False
    x, y = round(dx), round(dy)
    height, width = before.shape
    if abs(x) >= width // 2 or abs(y) >= height // 2:
        return False
    if x == y == 0:
        return True
    moved = after[max(0, y):height + min(0, y), max(0, x):width + min(0, x)]
    kept = before[max(0, -y):height + min(0, -y), max(0, -x):width + min(0, -x)]
    still = after[max(0, -y):height + min(0, -y), max(0, -x):width + min(0, -x)]
    return float(np.abs(moved - kept).mean()) < float(np.abs(still - kept).mean())
