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

Given the camera's drift (veil.motion), where the camera moved in a shot tracks are linked and
filled in coordinates that move with the picture: a face standing still in a shaken or panning
shot stands still there, and a jolt between two searched frames moves its interpolated box with
it. Every box the detector did not give still covers where the frame's own line puts the face, and
tracks linked in the frame's coordinates stay where the camera's lose a detection: the measure is
a guess too.
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
    # A face that grows past the frame (a zoom into it, a person stepping up to the lens) is lost
    # by every detector once it no longer fits, while it still fills the picture. A track whose
    # last box scoring high_score reached fills_frame times the frame's height or width holds the
    # whole frame, as a region of its own, on to the end of its shot or to the next face found at
    # high_score at half that size (and likewise before its first box). None: never held.
    fills_frame: float | None = None


@dataclass
class _Track:
    boxes: dict[int, Box] = field(default_factory=dict)
    frames: list[int] = field(default_factory=list)  # in the order added, which is time order
    # The last box, its change since the detection before, and the frames between them (in the
    # coordinates tracks are linked in): kept as detections are added, since every frame predicts
    # every live track.
    motion: tuple[tuple[float, ...], tuple[float, ...], float] = ((0.0,) * 4, (0.0,) * 4, 1.0)

    def add(self, frame: int, box: Box, last: tuple[float, ...]) -> None:
        """The detection `box` on `frame`, at `last` (x0, y0, x1, y1) where tracks are linked."""
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


def associate(detections: Mapping[int, Sequence[Box]], params: TrackParams,
              drift: np.ndarray | None = None) -> list[dict[int, Box]]:
    """Link detections (one segment, no cuts inside) into tracks of detected boxes; in the camera's
    coordinates where `drift` (rows of x, y by frame) is given, each box moved back by its frame's."""
    tracks: list[_Track] = []
    for frame in sorted(detections):
        live = [t for t in tracks if frame - t.last <= params.max_gap]
        found = list(detections[frame])
        high = [i for i, d in enumerate(found) if (d.score or 0) >= params.high_score]
        low = [i for i, d in enumerate(found) if (d.score or 0) < params.high_score]
        at = np.array([_coords(d) for d in found]).reshape(-1, 4)
        if drift is not None:
            at = at - np.tile(drift[frame], 2)
        boxes = buffered(at, params.match_buffer)
        rows = at.tolist()
        predictions = buffered(predicted(live, frame), params.match_buffer)
        for group in (high, low):
            pairs = _greedy_match(predictions, boxes[group], params.match_iou)
            for r, c in pairs:
                live[r].add(frame, found[group[c]], rows[group[c]])
            matched_tracks = {r for r, _ in pairs}
            matched = {c for _, c in pairs}
            unmatched_tracks = [i for i in range(len(live)) if i not in matched_tracks]
            live, predictions = [live[i] for i in unmatched_tracks], predictions[unmatched_tracks]
            for c in range(len(group)):
                if c not in matched:
                    tracks.append(_Track())
                    tracks[-1].add(frame, found[group[c]], rows[group[c]])
    return [t.boxes for t in tracks]


def _filled(tracks: Sequence[dict[int, Box]], first: int, last: int, params: TrackParams, drift: np.ndarray,
            either_place: bool = False) -> list[dict[int, Box]]:
    """Each track's boxes for every frame from its first detection to its last (gaps filled by
    linear interpolation, centres smoothed, each detection still covered), and `params.extend`
    frames past each end within [first, last]. All of it in the camera's coordinates: each
    detection moved back by its frame's `drift` (rows of x, y; zeros: the frame's), each box at the
    end moved by its own into the frame's. `either_place`: each box the detector did not give
    (interpolated, extended) grown to cover the same track's box filled in the frame's coordinates
    too. The measured drift is a guess like the track's own velocity (a zoom is not a shift, a
    crowd moving one way pulls the measure with it): an unseen face's box holds both places it may
    be. All tracks of a segment as one set of arrays, one Box a frame at the end: a crowd clip has
    thousands of short tracks, and numpy's overhead per call would outweigh the work of each."""
    if not tracks:
        return []
    detected = [sorted(track) for track in tracks]
    counts = np.array([len(frames) for frames in detected])
    owner = np.repeat(np.arange(len(tracks)), counts)  # each detection's track
    at = np.array([f for frames in detected for f in frames])
    in_frame = np.array([_coords(track[f]) for track, frames in zip(tracks, detected) for f in frames], float)
    followed = in_frame - np.tile(drift[at], 2)
    first_det = np.cumsum(counts) - counts  # index of each track's first and last detection
    last_det = first_det + counts - 1
    lengths = at[last_det] - at[first_det] + 1
    row_start = np.cumsum(lengths) - lengths  # each track's first and last row of the filled boxes
    row_end = row_start + lengths - 1
    row_owner = np.repeat(np.arange(len(tracks)), lengths)
    frames = at[first_det][row_owner] + np.arange(len(row_owner)) - row_start[row_owner]
    # Interpolated: each frame between detections a and b at (f - a) / (b - a) of the way. One
    # sorted key over all tracks (track, then frame) finds each frame's detections a and b.
    key = last + 2
    after = np.minimum(np.searchsorted(owner * key + at, row_owner * key + frames, side="right"), last_det[row_owner])
    before = np.maximum(after - 1, first_det[row_owner])
    span = np.maximum(at[after] - at[before], 1)
    t = ((frames - at[before]) / span)[:, None]
    found = row_start[owner] + at - at[first_det][owner]  # each detection's row
    is_found = np.zeros(len(frames), bool)
    is_found[found] = True

    def rows(coords: np.ndarray) -> np.ndarray:
        dense = coords[before] + (coords[after] - coords[before]) * t
        dense[found] = coords
        dense = _smoothed(dense, row_start[row_owner], row_end[row_owner], params.smooth)
        # Smoothing may move a box off its detection: grown to cover it, so what the detector saw
        # is always hidden.
        dense[found] = _bounds(dense[found], coords)
        return dense

    def ends(coords: np.ndarray, dense: np.ndarray, shift: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return _extensions(at, coords, owner, first_det, last_det, dense[row_start], dense[row_end], first, last,
                           params, shift)

    dense = rows(followed)
    carried, carried_frames, carried_boxes = ends(followed, dense, drift)
    boxes = dense + np.tile(drift[frames], 2)
    if either_place:
        plain = rows(in_frame)
        boxes[~is_found] = _bounds(boxes[~is_found], plain[~is_found])
        carried_boxes = _bounds(carried_boxes, ends(in_frame, plain, np.zeros_like(drift))[2])
    out: list[dict[int, Box]] = [{} for _ in tracks]
    for n, f, found_here, (x0, y0, x1, y1) in zip(row_owner.tolist(), frames.tolist(), is_found.tolist(),
                                                   boxes.tolist()):
        origin, score = (tracks[n][f].origin, tracks[n][f].score) if found_here else ("interpolated", None)
        out[n][f] = Box(x0, y0, x1, y1, origin, score)
    for n, f, (x0, y0, x1, y1) in zip(carried.tolist(), carried_frames.tolist(), carried_boxes.tolist()):
        out[n][f] = Box(x0, y0, x1, y1, origin="extended")
    return out


def _bounds(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Rows of (x0, y0, x1, y1): each the bounds of a's row and b's."""
    return np.concatenate([np.minimum(a[:, :2], b[:, :2]), np.maximum(a[:, 2:], b[:, 2:])], axis=1)


def _extensions(at: np.ndarray, coords: np.ndarray, owner: np.ndarray, first_det: np.ndarray, last_det: np.ndarray,
                first_boxes: np.ndarray, last_boxes: np.ndarray, first: int, last: int, params: TrackParams,
                drift: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each track's `params.extend` frames before its first box and after its last (fewer where the
    segment [first, last] ends sooner), as its track, frame and box (x0, y0, x1, y1): the box
    carried on at the track's end velocity, growing with each frame and with the distance carried
    (in the camera's coordinates, then moved into each frame's by its `drift`)."""
    carried: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    for end_det, edge, room, step in ((first_det, first_boxes, at[first_det] - first, -1),
                                      (last_det, last_boxes, last - at[last_det], 1)):
        velocity = _end_velocities(at, coords, owner, end_det, params.velocity_span)
        count = np.minimum(params.extend, room)
        track = np.repeat(np.arange(len(end_det)), count)
        steps = (np.arange(len(track)) - np.repeat(np.cumsum(count) - count, count) + 1)[:, None]
        box, moving = edge[track], velocity[track]
        grow = np.minimum(params.max_growth, 1 + params.growth * steps)
        centres = (box[:, :2] + box[:, 2:]) / 2 + moving * step * steps
        frames = at[end_det][track] + step * steps[:, 0]
        # The distance carried in the frame, the camera's part included: a measured drift is a
        # guess too (a zoom is not a shift), and the farther the box is carried the less sure.
        moved = moving * step * steps + drift[frames] - drift[at[end_det][track]]
        travelled = np.hypot(moved[:, 0], moved[:, 1])[:, None]
        sizes = (box[:, 2:] - box[:, :2]) * grow + 2 * params.motion_growth * travelled
        centres = centres + drift[frames]
        carried.append((track, frames, np.concatenate([centres - sizes / 2, centres + sizes / 2], axis=1)))
    return tuple(np.concatenate(parts) for parts in zip(*carried))  # type: ignore[return-value]


def _smoothed(boxes: np.ndarray, lo: np.ndarray, hi: np.ndarray, half_window: int) -> np.ndarray:
    """Rows of (x0, y0, x1, y1), one a frame, each row's track running from row lo to row hi: centres
    averaged over a window within the track, sizes the largest in it. Averaging centres removes the
    detector's jitter (and is exact for steady motion); the largest size rather than the mean keeps
    a shrinking detection from uncovering the face."""
    if half_window <= 0:
        return boxes
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    sizes = boxes[:, 2:] - boxes[:, :2]
    index = np.arange(len(boxes))
    total, largest = np.zeros_like(centres), np.full_like(sizes, -np.inf)
    for shift in range(-half_window, half_window + 1):
        near = index + shift
        inside = ((near >= lo) & (near <= hi))[:, None]
        near = np.clip(near, lo, hi)  # a row of the same track: counted once, adds 0, never lowers the max
        total += np.where(inside, centres[near], 0.0)
        largest = np.maximum(largest, sizes[near])
    frames_in = np.minimum(index + half_window, hi) - np.maximum(index - half_window, lo) + 1
    mean_centres = total / frames_in[:, None]
    return np.concatenate([mean_centres - largest / 2, mean_centres + largest / 2], axis=1)


def _end_velocities(at: np.ndarray, coords: np.ndarray, owner: np.ndarray, end_det: np.ndarray,
                    span: int) -> np.ndarray:
    """Each track's centre velocity (px/frame) at one end, fitted over its detections (frames `at`,
    boxes `coords`, track `owner`) within `span` frames of that end (detection `end_det` of each
    track); zero where fewer than two are.

    A least-squares line over up to `span` frames of detections, not the last two
    boxes: one jittery detection would otherwise send the extended mask the wrong way.
    """
    near = np.abs(at - at[end_det][owner]) < span
    track, times = owner[near], at[near].astype(float)
    centres = (coords[near, :2] + coords[near, 2:]) / 2
    tracks = len(end_det)
    n = np.bincount(track, minlength=tracks)
    per_track = np.maximum(n, 1)
    times -= (np.bincount(track, times, tracks) / per_track)[track]
    centres -= (np.stack([np.bincount(track, centres[:, i], tracks) for i in (0, 1)], axis=1)
                / per_track[:, None])[track]
    slope = np.stack([np.bincount(track, times * centres[:, i], tracks) for i in (0, 1)], axis=1)
    spread = np.bincount(track, times * times, tracks)
    return np.divide(slope, spread[:, None], out=np.zeros_like(slope), where=(n >= 2)[:, None])


def confirmed(track: dict[int, Box], params: TrackParams) -> bool:
    best = max((b.score or 0) for b in track.values())
    return best >= params.confirm_score or len(track) >= params.confirm_hits


def _fills(box: Box, limit: float, frame_size: tuple[int, int]) -> bool:
    return box.width >= limit * frame_size[0] or box.height >= limit * frame_size[1]


def _found_nearly_filling(detections: Mapping[int, Sequence[Box]], params: TrackParams,
                          frame_size: tuple[int, int] | None) -> list[int] | None:
    """The frames with a face found at `params.high_score` at least half `fills_frame` times the
    frame's height or width, which end a hold (`_held_frames`); None where nothing is held."""
    if params.fills_frame is None or frame_size is None:
        return None
    return [f for f, boxes in detections.items()
            if any((b.score or 0) >= params.high_score and _fills(b, params.fills_frame / 2, frame_size) for b in boxes)]


def _held_frames(track: dict[int, Box], found_again: Sequence[int], first: int, last: int, params: TrackParams,
                 frame_size: tuple[int, int]) -> list[int]:
    """`params.fills_frame`: the frames of the shot [first, last] past the track's last detection
    that it holds whole, where its last box scoring `params.high_score`, no more than `max_gap`
    frames from that end, fills the frame (weaker ones may follow: an eye taken for a face); up to
    the shot's end or the next face found at that score nearly filling the frame again (the same
    face, the camera pulling back: `found_again`, the shot's frames with such a face); and likewise
    before its first detection."""
    limit = params.fills_frame or 0.0
    seen = sorted(f for f, box in track.items() if box.origin not in ("interpolated", "extended"))
    sure = [f for f in seen if (track[f].score or 0) >= params.high_score]
    held: list[int] = []
    if sure and seen[-1] - sure[-1] <= params.max_gap and _fills(track[sure[-1]], limit, frame_size):
        stop = min((f for f in found_again if f > seen[-1]), default=last + 1)
        held += range(seen[-1] + 1, stop)
    if sure and sure[0] - seen[0] <= params.max_gap and _fills(track[sure[0]], limit, frame_size):
        stop = max((f for f in found_again if f < seen[0]), default=first - 1)
        held += range(stop + 1, seen[0])
    return sorted(held)


def segments(frame_count: int, scene_cuts: Sequence[int]) -> list[tuple[int, int]]:
    """Inclusive frame ranges between scene cuts (a cut frame starts a new segment)."""
    starts = [0] + sorted(c for c in set(scene_cuts) if 0 < c < frame_count)
    ends = [s - 1 for s in starts[1:]] + [frame_count - 1]
    return list(zip(starts, ends))


def _followed_tracks(detections: Mapping[int, Sequence[Box]], first: int, last: int, params: TrackParams,
                     drift: np.ndarray) -> list[dict[int, Box]]:
    """A shot's tracks where the camera moved: linked and filled in the camera's coordinates, each
    unseen box covering the frame's line too (`_filled`'s `either_place`). And the tracks linked in the frame's
    coordinates that hold a detection none of those keeps, filled there: a face the camera follows
    (a walker, a selfie) stands still in the frame and jumps in the camera's coordinates, where its
    track would break into single detections, and weak ones need several to be kept."""
    still = np.zeros_like(drift)
    followed = [track for track in associate(detections, params, drift) if confirmed(track, params)]
    kept = {id(box) for track in followed for box in track.values()}
    filled = _filled(followed, first, last, params, drift, either_place=True)
    others = [track for track in associate(detections, params) if confirmed(track, params)
              and any(id(box) not in kept for box in track.values())]
    return filled + _filled(others, first, last, params, still)


def build_tracks(
    detections: Mapping[int, Sequence[Box]],
    frame_count: int,
    scene_cuts: Sequence[int] = (),
    params: TrackParams = TrackParams(),
    id_prefix: str = "t",
    drift: np.ndarray | None = None,
    frame_size: tuple[int, int] | None = None,
    searched: tuple[int, int] | None = None,
) -> list[Region]:
    """Regions (one per track) covering every detection, with gaps and ends filled. `drift`: how far
    the picture has moved by each frame (rows of x, y; veil.motion), or None for a still camera.
    `frame_size`: the frame's width and height, for `params.fills_frame` (None: not applied).
    `searched`: the first and last frame searched, where --start/--end left others unsearched: a
    face that filled the frame is held whole no further past them than a track reaches
    (`params.extend`), as nothing is known of the frames beyond."""
    regions: list[Region] = []
    for first, last in segments(frame_count, scene_cuts):
        inside = {f: d for f, d in detections.items() if first <= f <= last and d}
        if drift is not None and np.ptp(drift[first:last + 1], axis=0).any():  # the camera moved in the shot
            filled = _followed_tracks(inside, first, last, params, drift)
        else:
            kept = [track for track in associate(inside, params) if confirmed(track, params)]
            filled = _filled(kept, first, last, params, np.zeros((frame_count, 2)))
        found_again = _found_nearly_filling(inside, params, frame_size)
        for boxes in filled:
            regions.append(Region(id=f"{id_prefix}{len(regions) + 1}", source="detector", boxes=boxes))
            if found_again is not None and frame_size is not None:
                reach = (first, last) if searched is None else \
                    (max(first, searched[0] - params.extend), min(last, searched[1] + params.extend))
                if held := _held_frames(boxes, found_again, *reach, params, frame_size):
                    # A region of its own, which the review can take away whole; its box 1.5 times the
                    # frame each way, so that as an ellipse too (--shape) it covers the corners.
                    width, height = frame_size
                    regions.append(Region(id=f"{id_prefix}{len(regions) + 1}", source="detector", shape="box", boxes={
                        f: Box(-width / 4, -height / 4, width * 5 / 4, height * 5 / 4, "held") for f in held}))
    return regions
