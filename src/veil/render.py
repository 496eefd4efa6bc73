"""Rendering: apply a plan's boxes to pixels, irreversibly.

`fill` (default) replaces the region with a solid colour: nothing of the face is left.
`pixelate` averages blocks whose size is set per region, at most `blocks` across it,
so a large face is as coarse as a small one (a fixed pixel size leaves a big face
recognisable). `blur` is the weakest: published attacks re-identify blurred faces, so
it is strong, sized to the region, shaded at random (see `shading`), and documented as
not for dangerous material.

Works on any array a decoder gives: grayscale (H, W), RGB, RGBA, 8 or 16 bit. Alpha is
kept outside the hidden regions and made opaque inside them: on a cut-out portrait the
transparency would otherwise keep the exact silhouette of hair and head.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable, Iterator

import cv2
import numpy as np

from veil.plan import Box, Region, RenderSettings, Shape, drawn_shape

# A blur is a fixed function of the face, so two blurred photos of one person still look
# alike to a face recogniser matching them against a gallery blurred the same way. A smooth
# random brightness field over each blurred region, drawn afresh for every export, breaks that
# likeness (bench/reid_lfw.py; figures in bench/README.md). Its values are drawn on a coarse
# grid of knots across the region and interpolated, so the region still reads as a soft blur,
# and it changes brightness only, so hues stay. A smaller spread did no better; this one is the
# stronger perturbation at no measured cost.
SHADING_KNOTS = 4
SHADING_SPREAD = 40  # standard deviation of a knot, in 8-bit levels
# A blur wider than this (a face over 128 px) is computed on a shrunk copy (see _blurred).
BLUR_SIGMA_AT_MOST = 32.0


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


def mosaic(patch: np.ndarray, box: Box, rows: slice, cols: slice, blocks: int) -> np.ndarray:
    """A box's window of the frame (`patch`, the frame's `rows` and `cols` the box touches),
    pixelated: at most `blocks` blocks across the box, laid from the box's own corner also where
    the frame cuts the box. Laid from the frame's edge, the grid would stand still while a face
    near it moves, and frames averaged differently can be combined into more than one shows
    (bench/reid_video.py)."""
    origin = (int(np.floor(box.y0)) - rows.start, int(np.floor(box.x0)) - cols.start)
    box_end = (int(np.ceil(box.y1)) - rows.start, int(np.ceil(box.x1)) - cols.start)
    return _block_means(patch, pixelate_block_size(box, blocks), origin, box_end)


def _block_means(patch: np.ndarray, block: int, origin: tuple[int, int],
                 box_end: tuple[int, int] | None = None) -> np.ndarray:
    """Each block x block tile, laid from `origin` (the grid's corner, row and column, at or
    before the patch's own), replaced by the mean of its pixels in the patch.

    Given `box_end` (where the box ends, row and column, counted from the patch's start), a tile
    that the patch's edge cuts off from the rest of the box takes its neighbour's mean instead:
    averaged over the part the frame shows, it would be averaged over one column more or less in
    each frame as a face crosses the frame's edge, and frames differenced give back the face's
    columns one by one.
    """
    h, w = patch.shape[:2]
    ys, xs = _block_starts(h, block, origin[0]), _block_starts(w, block, origin[1])
    sums = np.add.reduceat(np.add.reduceat(patch.astype(np.float64), ys, axis=0), xs, axis=1)
    heights, widths = np.diff(np.append(ys, h)), np.diff(np.append(xs, w))
    counts = np.outer(heights, widths)
    if patch.ndim == 3:
        counts = counts[:, :, None]
    means = np.rint(sums / counts).astype(patch.dtype)
    if box_end is not None:
        for axis, sizes in enumerate((heights, widths)):
            _take_from_neighbours(np.moveaxis(means, axis, 0), len(sizes),
                                  cut_first=origin[axis] % block != 0,
                                  cut_last=box_end[axis] > (h, w)[axis] and sizes[-1] < block)
    return np.repeat(np.repeat(means, heights, axis=0), widths, axis=1)


def _take_from_neighbours(means: np.ndarray, count: int, cut_first: bool, cut_last: bool) -> None:
    """Along the first axis of `means` (a view, `count` tiles), the tile the frame cuts at either
    end given the mean of the tile next to it, where that one is not cut by the frame too."""
    if cut_first and (count > 2 or (count == 2 and not cut_last)):
        means[0] = means[1]
    if cut_last and (count > 2 or (count == 2 and not cut_first)):
        means[-1] = means[-2]


def _block_starts(length: int, block: int, origin: int) -> np.ndarray:
    """Where the tiles of a grid laid from `origin` (<= 0) begin along a side `length` long: the
    first one cut by the side's start where the grid began before it."""
    first = origin % block
    return np.arange(first, length, block) if first == 0 else np.concatenate([[0], np.arange(first, length, block)])


def pixelate_block_size(box: Box, blocks: int) -> int:
    """Block side in pixels so that at most `blocks` blocks span the region either way.

    Sized on the pixels the box touches, not its exact width: a 40.0 px box at x = 10.5
    touches 41 pixels, which blocks of 40 / 8 = 5 would cut into 9.
    """
    span = max(np.ceil(box.x1) - np.floor(box.x0), np.ceil(box.y1) - np.floor(box.y0))
    return max(1, int(np.ceil(span / blocks)))


def shading(secret: bytes, region_id: str, box: Box, rows: slice, cols: slice) -> np.ndarray:
    """A smooth random brightness offset for the pixels (rows, cols) of a region's box.

    The knots follow from the secret and the region, and are laid over the whole box, so a
    region keeps its field through every frame of a video as the box moves (redrawn per
    frame it would flicker, and an average over frames would cancel it) and an edge of the
    picture only crops it. The secret is drawn afresh for each export and never stored.
    """
    seed = hashlib.blake2b(region_id.encode(), key=secret, digest_size=16).digest()
    knots = np.random.default_rng(int.from_bytes(seed)).normal(0, SHADING_SPREAD, (SHADING_KNOTS, SHADING_KNOTS))
    xs = (np.arange(cols.start, cols.stop) + 0.5 - box.x0) / box.width * SHADING_KNOTS - 0.5
    ys = (np.arange(rows.start, rows.stop) + 0.5 - box.y0) / box.height * SHADING_KNOTS - 0.5
    map_x, map_y = np.meshgrid(xs.astype(np.float32), ys.astype(np.float32))
    return cv2.remap(knots.astype(np.float32), map_x, map_y, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)


def _gaussian_matrix(length: int, sigma: float) -> np.ndarray:
    """A 1-D Gaussian blur along `length` pixels (edges replicated) as a (length, length) matrix.

    Applied as two matrix products, a face-sized blur costs a few BLAS calls: as a filter, its
    kernel (six sigmas, wider than the patch itself) costs milliseconds per face, which a crowd
    multiplies by hundreds every frame.
    """
    radius = int(np.ceil(3 * sigma))
    offsets = np.arange(-radius, radius + 1)
    weights = np.exp(-(offsets**2) / (2 * sigma**2))
    weights /= weights.sum()
    rows = np.repeat(np.arange(length), len(offsets))
    cols = np.clip(rows + np.tile(offsets, length), 0, length - 1)
    matrix = np.bincount(rows * length + cols, np.tile(weights, length), length * length)
    return matrix.reshape(length, length).astype(np.float32)


def _blurred(patch: np.ndarray, box: Box) -> np.ndarray:
    """The patch under a strong Gaussian blur, as float32 in its own levels."""
    # Sigma a quarter of the face: features are gone, only a colour blob remains.
    sigma = max(2.0, max(box.width, box.height) / 4)
    h, w = patch.shape[:2]
    values = patch.astype(np.float32).reshape(h, w, -1)
    # Such a blur keeps nothing finer than sigma: on a copy shrunk until sigma is BLUR_SIGMA_AT_MOST
    # pixels, enlarged again, it shows the same, where a whole frame's (a held one) took seconds.
    shrink = sigma / BLUR_SIGMA_AT_MOST
    if shrink > 1:
        small = _resized(values, (max(1, round(w / shrink)), max(1, round(h / shrink))), cv2.INTER_AREA)
        blurred = _matrix_blurred(small, sigma * small.shape[0] / h)
        return _resized(blurred, (w, h), cv2.INTER_LINEAR).reshape(patch.shape)
    return _matrix_blurred(values, sigma).reshape(patch.shape)


def _resized(values: np.ndarray, size: tuple[int, int], interpolation: int) -> np.ndarray:
    """Rows x columns x channels resized to `size` (width, height), channel by channel (OpenCV
    drops a single channel's axis)."""
    return np.stack([cv2.resize(channel, size, interpolation=interpolation)
                     for channel in values.transpose(2, 0, 1)], axis=2)


def _matrix_blurred(values: np.ndarray, sigma: float) -> np.ndarray:
    """Rows x columns x channels of float32 under a Gaussian blur (`_gaussian_matrix`)."""
    h, w = values.shape[:2]
    down = (_gaussian_matrix(h, sigma) @ values.reshape(h, -1)).reshape(values.shape)
    across = down.transpose(0, 2, 1) @ _gaussian_matrix(w, sigma).T
    return across.transpose(0, 2, 1)


def _shaded(values: np.ndarray, offsets: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Float levels (grayscale or colour) brightened or darkened by 8-bit-level offsets, one per
    pixel, as `dtype`."""
    offsets = offsets * (257 if dtype == np.uint16 else 1)
    shaded = values + (offsets[:, :, None] if values.ndim == 3 else offsets)
    return np.clip(np.rint(shaded), 0, np.iinfo(dtype).max).astype(dtype)


def _paint(patch: np.ndarray, values: np.ndarray, mask: np.ndarray) -> None:
    """Copy `values` into `patch` (a view into the frame) where `mask` is set.

    OpenCV writes through the view in place; numpy's boolean-index assignment on a strided
    view is many times slower, and the time goes on every hidden pixel of every frame. A view
    OpenCV cannot take (the colour channels of an RGBA array) goes through numpy.
    """
    pixel = patch.itemsize * (patch.shape[2] if patch.ndim == 3 else 1)
    if patch.strides[1] == pixel and (patch.ndim == 2 or patch.strides[2] == patch.itemsize):
        cv2.copyTo(values, mask.view(np.uint8), patch)
    else:
        np.copyto(patch, values, where=mask[:, :, None] if patch.ndim == 3 else mask)


def redact_frame(
    pixels: np.ndarray,
    boxes: Iterable[tuple[Region, Box]],
    settings: RenderSettings,
    cover_all: bool = False,
    secret: bytes | None = None,
) -> np.ndarray:
    """Hide each region's box in `pixels` (modified in place and returned).

    `cover_all` hides the whole frame: used for frames that could not be analysed.
    `secret` keys the blur's shading: one per export, so that a video's regions keep theirs
    from frame to frame; a fresh one when not given.
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
    boxes = list(boxes)
    if settings.mode != "fill":
        _draw_largest_first(colour, boxes, settings, secret)
    # Fill and alpha do not depend on the order of regions: each is drawn once over every
    # hidden pixel rather than once per region, which a crowd overlaps hundreds of times a frame;
    # a band of rows at a time, so a huge photo never gets a second, whole-size array.
    if settings.mode == "fill" or has_alpha:
        values = np.broadcast_to(_fill_value(colour, settings.color),
                                 (min(BAND_ROWS, height), *colour.shape[1:])).astype(colour.dtype)
        for top, hidden in _hidden_bands([(drawn_shape(region.kind, region.shape), box) for region, box in boxes],
                                         height, width):
            band = slice(top, top + len(hidden))
            if settings.mode == "fill":
                _paint(colour[band], values[:len(hidden)], hidden)
            if has_alpha:
                pixels[band, :, 3][hidden] = opaque
    return pixels


def _draw_largest_first(colour: np.ndarray, boxes: list[tuple[Region, Box]], settings: RenderSettings,
                        secret: bytes | None) -> None:
    """Pixelate or blur each region in turn, the largest first.

    Blur draws each pixel once, with the largest region covering it: a detector may also
    report part of a face it found whole, and a second blur there would pull in the unhidden
    surroundings and show a blob of another shading inside the head. Pixelate draws every
    region whole: over a larger region's mosaic it only averages pixels already averaged,
    which can remove detail but never add it.
    """
    height, width = colour.shape[:2]
    if settings.mode == "blur":
        secret = secret or secrets.token_bytes(16)
        drawn = np.zeros((height, width), bool)  # only blur needs to know what is already hidden
    for region, box in sorted(boxes, key=lambda pair: pair[1].width * pair[1].height, reverse=True):
        found = region_mask(drawn_shape(region.kind, region.shape), box, height, width)
        if found is None:
            continue
        rows, cols, mask = found
        if settings.mode == "pixelate":
            patch = colour[rows, cols]
            _paint(patch, mosaic(patch, box, rows, cols, settings.blocks), mask)
        elif settings.mode == "blur":
            fresh = mask & ~drawn[rows, cols]
            drawn[rows, cols] |= mask
            if fresh.any():
                patch = colour[rows, cols]
                shade = shading(secret, region.id, box, rows, cols)
                _paint(patch, _shaded(_blurred(patch, box), shade, patch.dtype), fresh)


# Regions in a frame beyond which their union is drawn as runs over the whole frame (`_hidden_bands`)
# rather than region by region: per region, numpy's call overhead outweighs a face-sized mask.
CROWD_REGIONS = 128


def drawn_mask(boxes: Iterable[tuple[Region, Box]], height: int, width: int) -> np.ndarray:
    """Every pixel `redact_frame` draws over for these boxes (but under `cover_all`), in any mode,
    as a boolean mask of the frame."""
    shaped = [(drawn_shape(region.kind, region.shape), box) for region, box in boxes]
    mask = np.zeros((height, width), bool)
    if len(shaped) > CROWD_REGIONS:
        for top, hidden in _hidden_bands(shaped, height, width):
            mask[top:top + len(hidden)] = hidden
        return mask
    for shape, box in shaped:  # a few regions: their rectangles alone, not every row of the frame
        if found := region_mask(shape, box, height, width):
            rows, cols, inside = found
            mask[rows, cols] |= inside
    return mask


# Rows of the frame drawn at a time by fill: small beside a huge photo, few for a video frame;
# fewer for a very wide photo, so a band's run sums (8 bytes a pixel) stay within BAND_PIXELS.
BAND_ROWS = 256
BAND_PIXELS = 1 << 22


def _hidden_bands(shaped: list[tuple[Shape, Box]], height: int,
                  width: int) -> Iterator[tuple[int, np.ndarray]]:
    """The union of the regions' masks (`region_mask`, pixel for pixel), as (first row, mask)
    for each band of rows it touches.

    Drawn as one run of pixels per region and row, for every region at once: a crowd has
    hundreds of regions a frame, and per region numpy's call overhead outweighs the arithmetic
    of a face-sized mask.
    """
    if not shaped:
        return
    corners = np.array([(b.x0, b.y0, b.x1, b.y1) for _, b in shaped], np.float64)
    if not np.isfinite(corners).all():  # fail closed, as region_mask does: nothing rendered
        raise ValueError("a region's box has a coordinate that is not a finite number")
    is_box = np.array([shape == "box" for shape, _ in shaped])
    x0, y0, x1, y1 = corners.T
    # region_mask's window: the pixels the unclipped box touches, inside the frame (clipped
    # before the cast, so that a box far outside it cannot wrap around)
    left, top_row = np.clip(np.floor(x0), 0, width).astype(np.int64), np.clip(np.floor(y0), 0, height).astype(np.int64)
    right, end_row = np.clip(np.ceil(x1), 0, width).astype(np.int64), np.clip(np.ceil(y1), 0, height).astype(np.int64)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    ax, ay = (x1 - x0) / 2 + 0.5, (y1 - y0) / 2 + 0.5
    band_rows = max(1, min(BAND_ROWS, BAND_PIXELS // (width + 1)))  # a very wide photo: fewer rows a band
    for top in range(0, height, band_rows):
        bottom = min(top + band_rows, height)
        first, stop = np.maximum(top_row, top), np.minimum(end_row, bottom)
        which = np.flatnonzero((stop > first) & (right > left))
        if len(which) == 0:
            continue
        counts = stop[which] - first[which]
        owner = np.repeat(which, counts)
        rows = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts) + first[owner]
        lo, hi = _ellipse_runs(rows, cx[owner], cy[owner], ax[owner], ay[owner], left[owner] - 1, right[owner])
        lo = np.where(is_box[owner], left[owner], np.maximum(lo, left[owner]))
        hi = np.where(is_box[owner], right[owner] - 1, np.minimum(hi, right[owner] - 1))
        drawn = lo <= hi
        if not drawn.any():
            continue
        rows, lo, hi = rows[drawn] - top, lo[drawn], hi[drawn]
        # +1 where a run starts, -1 just after it ends: a running sum along each row is the
        # number of runs covering a pixel
        stride = width + 1
        edges = (np.bincount(rows * stride + lo, minlength=(bottom - top) * stride)
                 - np.bincount(rows * stride + hi + 1, minlength=(bottom - top) * stride))
        yield top, np.cumsum(edges.reshape(bottom - top, stride), axis=1)[:, :width] > 0


def _ellipse_runs(rows: np.ndarray, cx: np.ndarray, cy: np.ndarray, ax: np.ndarray, ay: np.ndarray,
                  low: np.ndarray, high: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First and last column whose pixel centre lies in each row's ellipse, by region_mask's
    exact test (empty where first > last), exact within the columns low + 1 .. high - 1.

    The square root gives the run to within a pixel of rounding; each end is then moved until
    the test itself agrees, so the union equals the per-region masks exactly. An end beyond
    low or high (outside the region's window) is held there, which the window then cuts.
    """
    ey = (rows + 0.5 - cy) / ay
    ey2 = ey**2

    def inside(col: np.ndarray) -> np.ndarray:
        return ((col + 0.5 - cx) / ax) ** 2 + ey2 <= 1

    half = ax * np.sqrt(np.maximum(0.0, 1 - ey2))
    lo = np.clip(np.ceil(cx - half - 0.5), low, high).astype(np.int64)
    hi = np.clip(np.floor(cx + half - 0.5), low, high).astype(np.int64)
    for _ in range(2):
        lo = np.where(inside(lo - 1), lo - 1, lo)
        hi = np.where(inside(hi + 1), hi + 1, hi)
    for _ in range(2):
        lo = np.where((lo <= hi) & ~inside(lo), lo + 1, lo)
        hi = np.where((lo <= hi) & ~inside(hi), hi - 1, hi)
    return lo, hi
