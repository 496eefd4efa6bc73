"""Tracking: turn per-frame detections into regions that follow a face through a video.

A detector alone flickers: a head turns, the score dips under the threshold for a frame,
and the face is shown. Tracks close those holes. Detections are associated across
frames ByteTrack-style (confident detections first, then weak ones, matched to each
track's predicted box by IoU), gaps inside a track are interpolated, every track is
extended a few frames before its first and after its last detection, and boxes are
smoothed so masks do not jitter. Nothing here drops a detection: a weak detection that
matches no track starts its own, since an unmatched face is still a face.

Scene cuts split the timeline into segments; tracks, interpolation and extension never
cross a cut, so no mask is dragged from one shot into the next.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from veil.overlap import iou_table, overlapping_pairs
from veil.plan import Box, Region


@dataclass(frozen=True)
class TrackParams:
    """Tracker settings, in frames (callers convert from seconds using the frame rate)."""

    max_gap: int = 15  # a track undetected for longer than this ends
    extend: int = 8  # frames of mask kept before the first and after the last detection
    smooth: int = 2  # half-width of the smoothing window
    high_score: float = 0.5  # detections at or above this are matched first
    match_iou: float = 0.25  # least IoU between a track's predicted box and a detection
    # Both boxes are compared grown by this fraction of their size on every side (a buffered
    # IoU, as in C-BIoU tracking): a face that moves more than its own size between sampled
    # frames still overlaps its track, where plain boxes would not touch and the track would
    # break into single detections, each too weak to be confirmed.
    match_buffer: float = 0.0
    # An extended box grows by this fraction per frame away from the track's end (up to
    # max_growth), since the face keeps moving after the detector lost it.
    growth: float = 0.04
    max_growth: float = 1.6
    # An extended box also widens on every side by this fraction of the distance its centre has
    # moved from the track's end: the farther a fast face is carried on a fitted velocity, the
    # less sure its place (a pan that speeds up or slows down), while a still face keeps its box.
    motion_growth: float = 0.0
    velocity_span: int = 12  # frames of detections the end velocity is fitted over
    # A track whose detections all score below confirm_score is kept only when it has at
    # least confirm_hits of them: a real face seen weakly persists, a texture flickers.
    confirm_score: float = 0.0
    confirm_hits: int = 1


@dataclass
class _Track:
    boxes: dict[int, Box] = field(default_factory=dict)
    frames: list[int] = field(default_factory=list)  # in the order added, which is time order
    # The last box, its change since the detection before, and the frames between them: kept
    # as detections are added, since every frame predicts every live track.
    motion: tuple[tuple[float, ...], tuple[float, ...], float] = ((0.0,) * 4, (0.0,) * 4, 1.0)

    def add(self, frame: int, box: Box) -> None:
        last = _coords(box)
        if self.frames:
            before = self.motion[0]
            self.motion = last, tuple(b - a for a, b in zip(before, last)), frame - self.frames[-1]
        else:
            self.motion = last, (0.0, 0.0, 0.0, 0.0), 1.0
        self.boxes[frame] = box
        self.frames.append(frame)

    @property
    def last(self) -> int:
        return self.frames[-1]


def predicted(tracks: Sequence[_Track], frame: int) -> np.ndarray:
    """Each track's last box moved on to `frame` at the velocity between its last two
    detections, as rows of (x0, y0, x1, y1); all tracks at once, since a crowd has hundreds."""
    if not tracks:
        return np.zeros((0, 4))
    last, change, span = (np.array(v, float) for v in zip(*(t.motion for t in tracks)))
    steps = (frame - np.array([t.last for t in tracks], float)) / span
    return last + change * steps[:, None]


def _coords(box: Box) -> tuple[float, float, float, float]:
    return box.x0, box.y0, box.x1, box.y1


def iou_matrix(a: Sequence[Box], b: Sequence[Box]) -> np.ndarray:
    return iou_table(np.array([_coords(x) for x in a]).reshape(-1, 4), np.array([_coords(x) for x in b]).reshape(-1, 4))


def buffered(boxes: np.ndarray, buffer: float) -> np.ndarray:
    """Rows of (x0, y0, x1, y1) grown by `buffer` times their width and height on every side."""
    size = np.concatenate([boxes[:, 2:4] - boxes[:, :2]] * 2, axis=1)
    return boxes + buffer * size * np.array([-1.0, -1.0, 1.0, 1.0])


def _greedy_match(predictions: np.ndarray, boxes: np.ndarray, threshold: float) -> list[tuple[int, int]]:
    """Pairs (prediction, box) taken best IoU first, each used once, of those at or above the
    threshold (in a crowd, few among hundreds of tracks times hundreds of detections)."""
    rows, cols, ious = overlapping_pairs(predictions, boxes, threshold)
    order = np.argsort(-ious, kind="stable")  # ties: the first in row-major order
    pairs, used_rows, used_cols = [], set(), set()
    for r, c in zip(rows[order].tolist(), cols[order].tolist()):
        if r not in used_rows and c not in used_cols:
            pairs.append((r, c))
            used_rows.add(r)
            used_cols.add(c)
    return pairs


def associate(detections: Mapping[int, Sequence[Box]], params: TrackParams) -> list[dict[int, Box]]:
    """Link detections (one segment, no cuts inside) into tracks of detected boxes."""
    tracks: list[_Track] = []
    for frame in sorted(detections):
        live = [t for t in tracks if frame - t.last <= params.max_gap]
        found = list(detections[frame])
        high = [i for i, d in enumerate(found) if (d.score or 0) >= params.high_score]
        low = [i for i, d in enumerate(found) if (d.score or 0) < params.high_score]
        boxes = buffered(np.array([_coords(d) for d in found]).reshape(-1, 4), params.match_buffer)
        predictions = buffered(predicted(live, frame), params.match_buffer)
        for group in (high, low):
            pairs = _greedy_match(predictions, boxes[group], params.match_iou)
            for r, c in pairs:
                live[r].add(frame, found[group[c]])
            matched_tracks = {r for r, _ in pairs}
            matched = {c for _, c in pairs}
            unmatched_tracks = [i for i in range(len(live)) if i not in matched_tracks]
            live, predictions = [live[i] for i in unmatched_tracks], predictions[unmatched_tracks]
            for c in range(len(group)):
                if c not in matched:
                    tracks.append(_Track())
                    tracks[-1].add(frame, found[group[c]])
    return [t.boxes for t in tracks]


def _filled(track: dict[int, Box], first: int, last: int, params: TrackParams) -> dict[int, Box]:
    """A track's boxes for every frame from its first detection to its last (gaps filled by
    linear interpolation, centres smoothed, each detection still covered), and `params.extend`
    frames past each end within [first, last]. Array work per track, one Box per frame at the
    end: a crowd clip has thousands of tracks."""
    detected = sorted(track)
    at = np.array(detected)
    coords = np.array([_coords(track[f]) for f in detected])
    frames = np.arange(at[0], at[-1] + 1)
    # Interpolated: each frame between detections a and b at (f - a) / (b - a) of the way.
    after = np.minimum(np.searchsorted(at, frames, side="right"), len(at) - 1)
    before = np.maximum(after - 1, 0)
    span = np.maximum(at[after] - at[before], 1)
    t = ((frames - at[before]) / span)[:, None]
    dense = coords[before] + (coords[after] - coords[before]) * t
    found = np.zeros(len(frames), bool)
    found[at - at[0]] = True
    dense[found] = coords
    dense = _smoothed(dense, params.smooth)
    # Smoothing may move a box off its detection: grown to cover it, so what the detector saw
    # is always hidden.
    dense[found] = np.concatenate([np.minimum(dense[found, :2], coords[:, :2]),
                                   np.maximum(dense[found, 2:], coords[:, 2:])], axis=1)
    out = {}
    for f, (x0, y0, x1, y1) in zip(frames.tolist(), dense.tolist()):
        box = track.get(f)
        out[f] = Box(x0, y0, x1, y1, box.origin, box.score) if box else Box(x0, y0, x1, y1, "interpolated")
    for end, step in ((0, -1), (-1, 1)):
        room = frames[0] - first if step < 0 else last - frames[-1]
        steps = np.arange(1, min(params.extend, room) + 1)
        x0, y0, x1, y1 = dense[end]
        velocity = _end_velocity(at, coords, step < 0, params.velocity_span)
        grow = np.minimum(params.max_growth, 1 + params.growth * steps)[:, None]
        centres = np.array([(x0 + x1) / 2, (y0 + y1) / 2]) + velocity * step * steps[:, None]
        travelled = np.hypot(*velocity) * steps[:, None]
        sizes = np.array([x1 - x0, y1 - y0]) * grow + 2 * params.motion_growth * travelled
        for k, (a0, b0), (a1, b1) in zip(steps.tolist(), (centres - sizes / 2).tolist(), (centres + sizes / 2).tolist()):
            out[int(frames[end]) + step * k] = Box(a0, b0, a1, b1, origin="extended")
    return out


def _smoothed(boxes: np.ndarray, half_window: int) -> np.ndarray:
    """Rows of (x0, y0, x1, y1), one a frame: centres averaged over a window, sizes the largest
    in it. Averaging centres removes the detector's jitter (and is exact for steady motion);
    the largest size rather than the mean keeps a shrinking detection from uncovering the face."""
    if half_window <= 0:
        return boxes
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    sizes = boxes[:, 2:] - boxes[:, :2]
    # Every window at once: the windows of the track's ends are cut short, so they are padded
    # with what changes neither the sum (0, divided by the frames really there) nor the maximum.
    width = 2 * half_window + 1
    zeros, lowest = np.zeros((half_window, 2)), np.full((half_window, 2), -np.inf)
    centre_windows = np.lib.stride_tricks.sliding_window_view(np.vstack([zeros, centres, zeros]), width, axis=0)
    size_windows = np.lib.stride_tricks.sliding_window_view(np.vstack([lowest, sizes, lowest]), width, axis=0)
    index = np.arange(len(boxes))
    frames_in = np.minimum(index + half_window, len(boxes) - 1) - np.maximum(index - half_window, 0) + 1
    mean_centres = centre_windows.sum(axis=2) / frames_in[:, None]
    max_sizes = size_windows.max(axis=2)
    return np.concatenate([mean_centres - max_sizes / 2, mean_centres + max_sizes / 2], axis=1)


def _end_velocity(at: np.ndarray, coords: np.ndarray, at_start: bool, span: int) -> np.ndarray:
    """Centre velocity (px/frame) at one end of a track, fitted over its detections (frames `at`,
    boxes `coords`) there.

    A least-squares line over up to `span` frames of detections, not the last two
    boxes: one jittery detection would otherwise send the extended mask the wrong way.
    """
    near = np.abs(at - at[0 if at_start else -1]) < span
    if near.sum() < 2:
        return np.zeros(2)
    t = at[near].astype(float)
    centres = (coords[near, :2] + coords[near, 2:]) / 2
    t -= t.mean()
    return (t[:, None] * (centres - centres.mean(axis=0))).sum(axis=0) / (t**2).sum()


def confirmed(track: dict[int, Box], params: TrackParams) -> bool:
    best = max((b.score or 0) for b in track.values())
    return best >= params.confirm_score or len(track) >= params.confirm_hits


def segments(frame_count: int, scene_cuts: Sequence[int]) -> list[tuple[int, int]]:
    """Inclusive frame ranges between scene cuts (a cut frame starts a new segment)."""
    starts = [0] + sorted(c for c in set(scene_cuts) if 0 < c < frame_count)
    ends = [s - 1 for s in starts[1:]] + [frame_count - 1]
    return list(zip(starts, ends))


def build_tracks(
    detections: Mapping[int, Sequence[Box]],
    frame_count: int,
    scene_cuts: Sequence[int] = (),
    params: TrackParams = TrackParams(),
    id_prefix: str = "t",
) -> list[Region]:
    """Regions (one per track) covering every detection, with gaps and ends filled."""
    regions: list[Region] = []
    for first, last in segments(frame_count, scene_cuts):
        inside = {f: d for f, d in detections.items() if first <= f <= last and d}
        for track in associate(inside, params):
            if not confirmed(track, params):
                continue
            boxes = _filled(track, first, last, params)
            regions.append(Region(id=f"{id_prefix}{len(regions) + 1}", source="detector", boxes=boxes))
    return regions
