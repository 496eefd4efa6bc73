"""The detectors' view of any decoded picture: 8-bit RGB, whatever its depth and channels.

Every detector (faces, text, people) and the review's frames see pixels through `as_rgb8`, so a
16-bit or grey photo is seen alike by all of them.
"""

from __future__ import annotations

import cv2
import numpy as np


def as_rgb8(image: np.ndarray) -> np.ndarray:
    """The detector's view of any decoded image: 8-bit, three channels, RGB (a transparent one's
    colour channels: see `as_shown`).

    16-bit values are seen from the lowest the picture uses to the highest (a stray pixel aside),
    as a viewer that stretches levels shows them, not always through their top 8 bits: 8-bit
    values stored in 16 (an exporter's slip), or a thermal camera's narrow band of values far up
    the scale, would be one flat grey to the detector, yet are written back whole. A band
    narrower than 256 levels is seen as 8-bit values are, not stretched further."""
    if image.dtype == np.uint16:
        image = _levels_used(image[:, :, :3] if image.ndim == 3 else image)
    elif image.dtype != np.uint8:
        image = np.clip(image, 0, 255).astype(np.uint8)
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if image.shape[2] == 4:
        return np.ascontiguousarray(image[:, :, :3])
    return image


LEVEL_SAMPLES = 1 << 20  # pixels looked at for a 16-bit picture's levels: plenty, and quick on any size


def _levels_used(values: np.ndarray) -> np.ndarray:
    """16-bit values in 8 bits, from the lowest the picture uses up to the highest, leaving out
    the darkest and brightest thousandth (a dead or a hot pixel would set them: the picture
    between them was flat again)."""
    if values.size == 0:
        return values.astype(np.uint8)
    step = max(1, int(np.sqrt(values.shape[0] * values.shape[1] / LEVEL_SAMPLES)))
    low, high = (int(v) for v in np.percentile(values[::step, ::step], [0.1, 99.9]))
    span = max(high - low, 255)
    # A table of every 16-bit value: no copy of a large photo wider than its 8-bit view.
    table = np.clip((np.arange(1 << 16) - low) * 255 // span, 0, 255).astype(np.uint8)
    return table[values]
