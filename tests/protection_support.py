"""The part of a face that must be hidden, as the benches and ../shared/tools/eval_images.py check it."""

from __future__ import annotations

import numpy as np


def inner_part(pixels: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    """The inner 60% of a face box x, y, w, h (a 20% margin on each side)."""
    x, y, w, h = box
    return pixels[int(y + 0.2 * h):int(y + 0.8 * h), int(x + 0.2 * w):int(x + 0.8 * w)]
