"""Which boxes overlap which: the IoU of rows of (x0, y0, x1, y1, ...), for every pair or for the
pairs that overlap enough.

A crowd frame has a thousand faces and each overlaps a handful: the whole table of pairs would be
a million IoUs computed to find a few thousand, so the pairs are first narrowed by their x extent.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

# Pairs whose IoU is computed at once: bounds the temporaries when one wide box makes every pair
# a candidate among tens of thousands of a large photo's weak detections.
PAIRS_AT_ONCE = 1 << 20


def areas(boxes: np.ndarray) -> np.ndarray:
    """The area of boxes[..., :4]."""
    return (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of boxes a[..., :4] and b[..., :4], broadcast against each other."""
    iw = (np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0])).clip(0)
    ih = (np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1])).clip(0)
    inter = iw * ih
    return inter / np.maximum(areas(a) + areas(b) - inter, 1e-9)


def iou_table(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every row of a with every row of b: shape (len(a), len(b))."""
    return iou(a[:, None, :], b[None, :, :])


def overlapping_pairs(a: np.ndarray, b: np.ndarray, min_iou: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rows of a, rows of b, their IoU) for every pair with IoU >= min_iou, in row-major order:
    the same pairs, values and order as np.nonzero(iou_table(a, b) >= min_iou). min_iou must be
    above 0 (boxes that do not overlap are never looked at)."""
    empty = np.zeros(0, np.intp)
    found = [(empty, empty, np.zeros(0)), *_chunks(a, b, min_iou)]
    rows, cols, values = (np.concatenate(part) for part in zip(*found))
    order = np.lexsort((cols, rows))
    return rows[order], cols[order], values[order]


def any_overlapping(a: np.ndarray, b: np.ndarray, min_iou: float) -> np.ndarray:
    """Which rows of a overlap some row of b with IoU >= min_iou (above 0), never holding more
    than one chunk of pairs: a large photo's weak detections can number tens of thousands."""
    hit = np.zeros(len(a), bool)
    for rows, _, _ in _chunks(a, b, min_iou):
        hit[rows] = True
    return hit


def _chunks(a: np.ndarray, b: np.ndarray, min_iou: float) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The pairs of overlapping_pairs, unordered, a chunk of at most PAIRS_AT_ONCE candidates at a
    time."""
    if not min_iou > 0:
        raise ValueError(f"min_iou must be above 0, not {min_iou}")
    if len(a) == 0 or len(b) == 0:
        return
    # Boxes of b in classes of width (each up to twice the last): one wide box then widens the
    # search only for its own class, not for every small face of a crowd.
    classes = np.floor(np.log2(np.maximum(b[:, 2] - b[:, 0], 1.0))).astype(int)
    for members in (np.flatnonzero(classes == c) for c in np.unique(classes)):
        by_left = members[np.argsort(b[members, 0], kind="stable")]
        lefts = b[by_left, 0]
        widest = float(np.max(b[members, 2] - b[members, 0]))
        # A box of b overlaps a's row only if it starts before that row ends and after the row's
        # start less the widest width of b's boxes searched.
        first = np.searchsorted(lefts, a[:, 0] - widest, side="left")
        counts = np.maximum(np.searchsorted(lefts, a[:, 2], side="left") - first, 0)
        ends = np.cumsum(counts)
        start = 0
        while start < len(a):
            stop = max(start + 1, int(np.searchsorted(ends, ends[start] - counts[start] + PAIRS_AT_ONCE, side="right")))
            n = counts[start:stop]
            rows = np.repeat(np.arange(start, stop), n)
            within = np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n)
            cols = by_left[np.repeat(first[start:stop], n) + within]
            values = iou(a[rows], b[cols])
            keep = values >= min_iou
            yield rows[keep], cols[keep], values[keep]
            start = stop
