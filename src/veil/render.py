"""Rendering: apply a plan's boxes to pixels, irreversibly.

`fill` (default) replaces the region with a solid colour: nothing of the face is left.
`pixelate` averages blocks whose size is set per region, at most `blocks` across it,
so a large face is as coarse as a small one (a fixed pixel size leaves a big face
recognisable). `blur` is the weakest: published attacks re-identify blurred faces, so
it is strong, sized to the region, and documented as not for dangerous material.

Works on any array a decoder gives: grayscale (H, W), RGB, RGBA, 8 or 16 bit. Alpha is
kept outside the hidden regions and made opaque inside them: on a cut-out portrait the
transparency would otherwise keep the exact silhouette of hair and head.
"""

from __future__ import annotations

from collections.abc import Iterable

import cv2
import numpy as np

from veil.plan import Box, RenderSettings, Shape


def region_mask(shape: Shape, box: Box, height: int, width: int) -> tuple[slice, slice, np.ndarray] | None:
    """The pixels a box hides, as a boolean mask over its bounding rectangle."""
    x0, y0 = max(0, int(np.floor(box.x0))), max(0, int(np.floor(box.y0)))
    x1, y1 = min(width, int(np.ceil(box.x1))), min(height, int(np.ceil(box.y1)))
    if x1 <= x0 or y1 <= y0:
        return None
    rows, cols = slice(y0, y1), slice(x0, x1)
    if shape == "box":
        return rows, cols, np.ones((y1 - y0, x1 - x0), bool)
    # The ellipse inscribed in the (unclipped) box, evaluated exactly at pixel centres in the
    # clipped window (a drawn polygon falls short of the curve by up to a pixel on large
    # faces). Half a pixel of margin: every pixel whose centre is inside is hidden, and so is
    # the pixel under a face narrower than one pixel.
    cx, cy = (box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2
    ax, ay = box.width / 2 + 0.5, box.height / 2 + 0.5
    xs = (np.arange(x0, x1) + 0.5 - cx) / ax
    ys = (np.arange(y0, y1) + 0.5 - cy) / ay
    return rows, cols, xs[None, :] ** 2 + ys[:, None] ** 2 <= 1


def _fill_value(pixels: np.ndarray, color: tuple[int, int, int]) -> np.ndarray:
    scale = 257 if pixels.dtype == np.uint16 else 1
    if pixels.ndim == 2:
        r, g, b = color
        return np.array(round(0.299 * r + 0.587 * g + 0.114 * b) * scale, pixels.dtype)
    return np.array(color, np.int64) * scale


def _block_means(patch: np.ndarray, block: int) -> np.ndarray:
    """Each block x block tile replaced by the mean of its own pixels."""
    h, w = patch.shape[:2]
    ys, xs = np.arange(0, h, block), np.arange(0, w, block)
    sums = np.add.reduceat(np.add.reduceat(patch.astype(np.float64), ys, axis=0), xs, axis=1)
    counts = np.outer(np.diff(np.append(ys, h)), np.diff(np.append(xs, w)))
    if patch.ndim == 3:
        counts = counts[:, :, None]
    means = np.rint(sums / counts).astype(patch.dtype)
    return np.repeat(np.repeat(means, block, axis=0), block, axis=1)[:h, :w]


def pixelate_block_size(box: Box, blocks: int) -> int:
    """Block side in pixels so that at most `blocks` blocks span the region either way.

    Sized on the pixels the box touches, not its exact width: a 40.0 px box at x = 10.5
    touches 41 pixels, which blocks of 40 / 8 = 5 would cut into 9.
    """
    span = max(np.ceil(box.x1) - np.floor(box.x0), np.ceil(box.y1) - np.floor(box.y0))
    return max(1, int(np.ceil(span / blocks)))


def redact_frame(
    pixels: np.ndarray,
    boxes: Iterable[tuple[Shape, Box]],
    settings: RenderSettings,
    cover_all: bool = False,
) -> np.ndarray:
    """Hide every box in `pixels` (modified in place and returned).

    `cover_all` hides the whole frame: used for frames that could not be analysed.
    """
    has_alpha = pixels.ndim == 3 and pixels.shape[2] == 4
    colour = pixels[:, :, :3] if has_alpha else pixels
    opaque = np.iinfo(pixels.dtype).max
    height, width = colour.shape[:2]
    if cover_all:
        colour[...] = _fill_value(colour, settings.color)
        if has_alpha:
            pixels[:, :, 3] = opaque
        return pixels
    for shape, box in boxes:
        found = region_mask(shape, box, height, width)
        if found is None:
            continue
        rows, cols, mask = found
        if has_alpha:
            pixels[rows, cols, 3][mask] = opaque
        patch = colour[rows, cols]
        if settings.mode == "fill":
            patch[mask] = _fill_value(colour, settings.color)
        elif settings.mode == "pixelate":
            patch[mask] = _block_means(patch, pixelate_block_size(box, settings.blocks))[mask]
        else:
            # Sigma a quarter of the face: features are gone, only a colour blob remains.
            sigma = max(2.0, max(box.width, box.height) / 4)
            patch[mask] = cv2.GaussianBlur(patch, (0, 0), sigma, borderType=cv2.BORDER_REPLICATE)[mask]
    return pixels
