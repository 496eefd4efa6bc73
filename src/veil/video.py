"""The video flow: detect faces in a first pass, resolve tracks, render in a second pass.

Pass 1 decodes the video once, keeps only small per-frame facts (time, scene cut, the
camera's motion, detections) and runs the detector in batches on downscaled upright frames.
Tracks are then built over the whole timeline (veil.track). Pass 2 decodes again and re-encodes each
frame with its boxes hidden, copying audio unchanged. No frame is held beyond the few
being worked on (a batch per detection lane, a few frames ahead of the encoder), so memory
does not grow with the video's length.
"""

from __future__ import annotations

import bisect
import collections
import contextlib
import functools
import queue
import secrets
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import av
import av.error
import av.sidedata.sidedata
import cv2
import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, Task, TextColumn, TimeRemainingColumn
from rich.text import Text

from veil.detect import (COLOURLESS_SPREAD, FAST, MODEL_NAME, VIDEO_DETECTION, CenterFace, Detection, DetectionProfile,
                         FramesJudged, RetinaFace, VideoDetection, detect_frames, exposure_record, glance_frames,
                         low_pass_record, overview_scale, retina_record, shared_detector, shared_retinaface,
                         streak_record, unrotate, uses_retina)
from veil.fferror import reason
from veil.models import model_sha256, runtime_record, session_threads
from veil.outputs import atomic_output
from veil.photo import check_as_planned, file_sha256, still_as_planned
from veil.motion import CameraPath, camera_motion_record
from veil.kinds import (DEFAULT_HIDE, ID_PREFIX, TEXT_KINDS, VIDEO_TEXT_PASSES, FrameFinds, frame_boxes, kinds_record,
                        looks_for_faces, wants_text)
from veil.people import (TURNS, body_along, body_below, found_people, shared_person_detector, shot_standing_turns,
                          standing_rule_record, standing_turn, turn_weights)
from veil.plan import Box, Kind, MediaPlan, Region, RenderSettings
from veil.regions import head_box, head_record
from veil.render import drawn_mask, redact_frame
from veil.tonemap import TRC_PQ, frame_rgb, tone_map_record
from veil.shots import Look, SceneCuts
from veil.shots import record as scene_cuts_record
from veil.track import TrackParams, build_tracks, iou_matrix, segments
from veil.voice import channels_read_back, media_voice_plan, sound_written_as
from veil.videofile import (PLAN_SALVAGE_HINT, Damage, Encoding, Output, Timing, VideoError, alpha_component,
                            bit_depth, field_order, frame_rate, frame_side_data, hdr10_levels, is_hole, left_out,
                            open_input, open_output, read, subtitles_copied, video_stream)


UNSPECIFIED = 2  # FFmpeg's AVCOL_SPC_UNSPECIFIED: let swscale pick its default matrix

# Pass 1 runs the detectors on up to DETECT_LANES batches at once, each lane with its share of
# the cores' threads: two single-thread runs side by side keep both cores of a small machine
# busy where one two-thread run leaves one idle through its post-processing. On a GPU, one lane.
# Chosen on bench/video_speed.py.
DETECT_LANES = 2
# With several lanes, up to this many batches a lane are handed out ahead of the oldest unfinished
# one, so that a lane finishing short work (a frame without RetinaFace's views or the text
# detector) takes the next at once instead of waiting for its neighbour's long one.
DETECT_AHEAD = 4
# Pass 2 redacts frames on this many threads, at most REDACT_AHEAD frames ahead of the encoder
# (each holds one decoded frame and its RGB copy). Chosen on bench/video_speed.py.
REDACT_THREADS = 2
REDACT_AHEAD = 4

# Tracking settings in seconds, converted to frames with the video's frame rate.
MAX_GAP_S = 0.5
EXTEND_S = 0.3
# Boxes are matched to tracks grown by this fraction of their size on every side (TrackParams.
# match_buffer): a face crossing the frame in a fast pan or zoom moves more than its own width
# between sampled frames. Chosen on bench/video_leaks.py (bench/README.md).
MATCH_BUFFER = 0.4
# A box carried past a track's end widens with the distance it has been carried (TrackParams.
# motion_growth): a fast face's place there is the least sure. Chosen on bench/video_leaks.py
# against the area it redacts away from faces (bench/README.md).
MOTION_GROWTH = 0.1
# Boxes are tracked in coordinates that move with the camera (veil.motion): a hand-held camera's
# jolt between two searched frames moves every face off its interpolated box. Chosen on
# bench/video_leaks.py (bench/README.md, "Camera motion").
FOLLOW_CAMERA = True
# A face track whose head box at an end reached this many times the frame's height or width (the face
# itself about 0.8 of it) holds the whole frame past that end (TrackParams.fills_frame): no detector
# finds a face that has grown past the frame, in a zoom into it or as someone steps up to the camera.
FILLS_FRAME = 1.5


@dataclass
class _Frame:
    index: int
    rgb: np.ndarray  # upright, downscaled for the detector
    views: bool  # RetinaFace's views run on it too
    text: bool  # the text detector (--hide plates, text) runs on it too
    # Upright at full size, for the text detector (and the person detector beside it): at the face
    # detector's size a 1080p frame's small plates are too small for it, as in a photo they are not.
    full: np.ndarray | None = None
    # The people found in it (full, else rgb) and its turned views, where the shot's standing turn is
    # judged on it (people.found_people): --hide people takes its bodies from them too.
    people: list[tuple[int, Box]] | None = None


def rotation_of(frame: av.VideoFrame) -> int:
    """Display rotation in quarter turns counter-clockwise (0-3)."""
    return round(frame.rotation / 90) % 4


def refuse_mirrored(frame: av.VideoFrame) -> None:
    """Refuse a video (its first frame) whose display matrix mirrors the picture: PyAV gives the
    mirror as a rotation (a left-right one as a half turn), so faces would be looked for in a
    picture upside down, and the output would play upside down."""
    for entry in frame_side_data(frame):
        if entry.type == av.sidedata.sidedata.Type.DISPLAYMATRIX:
            a, b, _, c, d = np.frombuffer(bytes(entry), "<i4")[:5].astype(np.int64)
            if a * d - b * c < 0:
                raise VideoError("its display matrix mirrors the picture (as some front cameras record it), "
                                 "which veil cannot yet turn as players do: re-encode it with the mirror "
                                 "applied first")


def upright_to_coded(box: Box, turns: int, coded_w: int, coded_h: int) -> Box:
    """Map an upright box into the stored (coded) frame, which is rotated `turns` back."""
    if turns == 0:  # most video: the same box, without a numpy round trip per region and frame
        return box
    x0, y0, x1, y1 = unrotate(np.array([[box.x0, box.y0, box.x1, box.y1]], np.float64), turns, coded_w, coded_h)[0]
    return Box(float(x0), float(y0), float(x1), float(y1), box.origin, box.score)


MAX_UPSCALE = 2.0


def detection_size(width: int, height: int, side: int) -> tuple[int, int]:
    scale = min(MAX_UPSCALE, side / max(width, height))
    return max(2, round(width * scale / 2) * 2), max(2, round(height * scale / 2) * 2)


def _head(face: Detection, scale_x: float, scale_y: float) -> Box:
    """The head to hide around a face found in the detection image, in full upright pixels."""
    full = Detection(face.x0 * scale_x, face.y0 * scale_y, face.x1 * scale_x, face.y1 * scale_y, face.score)
    return Box(*head_box(full), "detected", face.score)


# PQ frames reach the detectors tone-mapped (veil.tonemap): as decoded they are dim and flat, and
# small faces were missed. HLG is made to look right on an SDR screen as it is, and tone mapping it
# changed nothing measurable (bench/README.md, "HDR video").
DETECTORS_TONE_MAP = (TRC_PQ,)


# Interlaced footage that an editor or a converter coded as progressive without deinterlacing it
# is woven all the same, and nothing in the file says so. A tooth is a pixel that differs from the
# lines above and below it (the other field) the same way, by more than COMB_STEP of 255, while the
# lines two away (its own field) match it. Such footage is searched as a field from the first frame
# in which teeth are more than WOVEN_TEETH of the pixels looked at (every COMB_COLUMNS-th column):
# moving woven footage has several percent, progressive footage stays under half a percent
# (bench/README.md, "Interlaced video").
COMB_STEP = 12
COMB_COLUMNS = 4
WOVEN_TEETH = 0.01
FIELD_SEARCH = "the top field, stretched to the frame's height"
WOVEN_RULE = (f"not marked interlaced, from the first frame in which over {WOVEN_TEETH:.0%} of the pixels (every "
              f"{COMB_COLUMNS}th column) differ from the lines above and below by more than {COMB_STEP}/255 the "
              "same way while the lines two away match them")


def looks_woven(frame: av.VideoFrame) -> bool:
    """Whether a frame's lines alternate between two pictures over more than WOVEN_TEETH of it."""
    try:
        luma = frame.to_ndarray(format="gray")[:, ::COMB_COLUMNS].astype(np.int32)  # products up to 255²
    except (ValueError, av.error.FFmpegError):
        return False  # the frame cannot be searched at all: it is covered whole (sample)
    if luma.shape[0] < 5:
        return False
    line = luma[2:-2]
    above, below = line - luma[1:-3], line - luma[3:-1]
    own_field = (np.abs(line - luma[:-4]) <= COMB_STEP) & (np.abs(line - luma[4:]) <= COMB_STEP)
    teeth = (above * below > COMB_STEP * COMB_STEP) & own_field
    return bool(teeth.mean() > WOVEN_TEETH)


def _upright_rgb(frame: av.VideoFrame, size: tuple[int, int], turns: int, as_field: bool) -> np.ndarray:
    """The frame as the detectors see it: upright, at `size`. An interlaced frame's lines
    alternate between two moments, and where anything moves its edges are combs, in which the
    detectors miss faces and plates they find in either field alone: `as_field`, they get its top
    field, stretched back to the frame's height."""
    coded = size if turns % 2 == 0 else size[::-1]
    if as_field:
        # Scaled across only (the fields stay apart), then the top field's lines stretched.
        field = frame_rgb(frame, DETECTORS_TONE_MAP, width=coded[0], height=frame.height)[0::2]
        rgb = cv2.resize(field, coded, interpolation=cv2.INTER_LINEAR)
    else:
        rgb = frame_rgb(frame, DETECTORS_TONE_MAP, width=coded[0], height=coded[1])
    return np.ascontiguousarray(np.rot90(rgb, turns)) if turns else rgb


class FpsColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        return Text(f"{task.speed:5.1f} frames/s" if task.speed else "")


@contextlib.contextmanager
def _progress(description: str, total: int, enabled: bool) -> Iterator[Callable[[], None]]:
    console = Console(stderr=True)
    # Off where stderr is not a terminal: there Rich would leave an empty line in its place.
    with Progress(TextColumn(description), BarColumn(), MofNCompleteColumn(), FpsColumn(), TimeRemainingColumn(),
                  console=console, disable=not enabled or not console.is_terminal, transient=True) as progress:
        task = progress.add_task(description, total=total or None)
        yield lambda: progress.advance(task)


def _in_range(time: float, start: float | None, end: float | None) -> bool:
    """`time` is measured from the file's start (`_Scan.range_origin`), like --start/--end."""
    return (start is None or time >= start) and (end is None or time <= end)


def _upright_size(frame: av.VideoFrame, turns: int) -> tuple[int, int]:
    return (frame.width, frame.height) if turns % 2 == 0 else (frame.height, frame.width)


# Pixels are stretched at most this far for the detectors: a bogus ratio must not make their
# picture absurd.
MAX_PIXEL_STRETCH = 4


def shown_size(stream: av.video.stream.VideoStream, frame: av.VideoFrame, turns: int) -> tuple[int, int]:
    """The upright frame's size as the detectors see it: a stored frame of pixels wider than tall
    (an anamorphic DVD, HDV or broadcast recording, squeezed when stored) is stretched across as
    players show it, since squeezed 2:1 its plates and faces are half as wide and were missed;
    their boxes are scaled back. The container's ratio comes first, as players take it (`-aspect`
    when re-muxing sets only that one). Pixels taller than wide are searched as stored: squeezing
    would shrink what a frame grab or an editor that ignores the ratio shows whole.

    Turned a quarter, a stored pixel's width runs down the upright picture: pixels wider than tall
    stretch its height, as players show it; pixels taller than wide are wide once upright, and
    stretch its width (searched as stored, its faces were twice as tall as shown, and missed)."""
    ratio = next((r for r in (stream.sample_aspect_ratio, stream.codec_context.sample_aspect_ratio)
                  if r is not None and r > 0), None) or 1
    stretched = round(frame.width * min(ratio, MAX_PIXEL_STRETCH)) if ratio > 1 else frame.width
    if turns % 2 == 0:
        return stretched, frame.height
    across = round(frame.height * min(1 / ratio, MAX_PIXEL_STRETCH)) if ratio < 1 else frame.height
    return across, stretched


def _size_change(first: tuple[int, int, int], frame: av.VideoFrame, turns: int, index: int) -> VideoError:
    (width, height, first_turns), (new_w, new_h) = first, _upright_size(frame, turns)
    if first_turns != turns:
        return VideoError(f"display rotation changes mid-stream ({90 * first_turns}° → {90 * turns}° at frame "
                          f"{index}): not supported")
    return VideoError(f"frame size changes mid-stream ({width}x{height} → {new_w}x{new_h} at frame {index}): "
                      "not supported")


@dataclass
class _Scan:
    """What pass 1 keeps of the whole video: a few numbers per frame, no pixels."""

    width: int = 0  # upright
    height: int = 0
    times: list[float] = field(default_factory=list)
    # The video stream's start, or its first frame's time if earlier or the stream does not say:
    # where its time holes are measured from.
    origin: float | None = None
    # The container's start (its earliest stream's, `container_start`): with `origin`, where
    # --start/--end are measured from (`range_origin`).
    container_start: float | None = None
    cuts: list[int] = field(default_factory=list)
    new_pictures: list[int] = field(default_factory=list)  # no cut, but unlike the frame before (shots.py)
    outside: list[int] = field(default_factory=list)  # outside [start, end]
    inside: int = 0  # frames inside [start, end]
    unanalysable: list[int] = field(default_factory=list)  # could not be prepared for the detector
    detections: dict[int, list[Box]] = field(default_factory=dict)
    # The glance at the frames between sampled ones: its boxes, before those the sampled frames
    # either side already hold are set aside (_unseen_glances).
    glances: dict[int, list[Box]] = field(default_factory=dict)
    # Plates, text, people (--hide): boxes per sampled frame, tracked like faces.
    kinds: dict[Kind, dict[int, list[Box]]] = field(default_factory=dict)
    # How much the people in each frame looked at turned stand up in each view (people.turn_weights).
    people_turns: dict[int, dict[int, float]] = field(default_factory=dict)
    # The head boxes found on a sampled frame of a shot judged turned, searched turned that way.
    turned_detections: dict[int, list[Box]] = field(default_factory=dict)
    # The runs of sampled frames searched turned: first, last, quarter turns counter-clockwise.
    turned_runs: list[list[int]] = field(default_factory=list)
    camera: CameraPath | None = None  # how far the picture moved, frame by frame
    judged: FramesJudged = field(default_factory=FramesJudged)  # how often each frame rule applied
    interlaced: int = 0  # frames the decoder marks interlaced: their detectors see one field
    # Whether a frame's alpha plane lets anything show through: an opaque one, left out, changes nothing.
    see_through: bool = False
    stereo: bool = False  # a frame says it holds two views (stereoscopic 3D), which the output does not say
    captions: bool = False  # a frame carries closed captions (CEA-608/708), which the output does not
    woven_from: int | None = None  # the first frame seen woven though not marked interlaced (looks_woven)
    woven: int = 0  # frames from it on, not marked interlaced: their detectors see one field too
    shown: tuple[int, int] = (0, 0)  # upright, as the detectors see it (`shown_size`)
    tone_mapped: int = 0  # frames whose detectors saw them tone-mapped to SDR (a PQ video's)
    timing: Timing = field(default_factory=Timing)  # frames timed in decoding order (an AVI's with B-frames)
    same_time: int = 0  # frames at the time of the frame before, each written a tick later (Output)

    @property
    def range_origin(self) -> float | None:
        """Where --start/--end are measured from: the container's start, or `origin` if earlier."""
        starts = [start for start in (self.origin, self.container_start) if start is not None]
        return min(starts) if starts else None


# A shot's standing turn (the quarter turns that stand its people up: people.standing_turn) is
# judged on every frame searched with every view in its first JUDGE_FULLY_S seconds, where a turned
# shot must be found at once, and then on one such frame every JUDGE_EVERY_S seconds: the person
# detector's four views cost a good part of a frame's search (bench/README.md, "A clip
# stored on its side").
JUDGE_FULLY_S = 1.0
JUDGE_EVERY_S = 1.0

# Detections a second, at the least: a stride of frames would look at a 12 or 15 fps camera (CCTV,
# a body camera, a phone's saver mode) half as often as at 30 fps, where a face moving across the
# picture passes between two looks (bench/README.md, "Detections a second").
MIN_DETECTIONS_PER_S = 11.5


def stream_start(stream: av.video.stream.VideoStream) -> float | None:
    """Where the video stream says it starts (seconds), if it says: a damaged file's first frames
    may not decode, and the first frame given is then later."""
    return float(stream.start_time * stream.time_base) if stream.start_time is not None and stream.time_base else None


RANGE_CLOCK = "the file's start (its earliest stream's), as a player counts"


def container_start(container: av.container.InputContainer) -> float | None:
    """Where the file starts, as a player counts its time (seconds on its clock): its earliest
    stream's start, if it says. A video may start after its sound (a second in, where a camera
    started recording sound first): a player shows its first picture at that second, not at zero."""
    return None if container.start_time is None else container.start_time / av.time_base


def time_holes(times: list[float], origin: float | None, clock: float | None = None) -> list[list[float]]:
    """The stretches with no frame where one was due, from `origin` (the stream's start; None:
    the first frame) on, as [start, end] in seconds from `clock` (the file's start, where --start
    and --end are measured from; None: `origin`)."""
    if not times:
        return []
    origin = times[0] if origin is None else origin
    zero = origin if clock is None else min(clock, origin)
    times = [origin, *times] if origin < times[0] else times
    steps = np.diff(times)
    if len(steps) < 2:
        return []
    usual = float(np.median(steps))
    return [[round(times[i] - zero, 3), round(times[i + 1] - zero, 3)]
            for i, step in enumerate(steps.tolist()) if is_hole(step, usual)]


def at_rate(sampling: VideoDetection, rate: float) -> VideoDetection:
    """The sampling with its stride shortened until a video of `rate` frames a second is looked at
    MIN_DETECTIONS_PER_S times a second or more (23 to 30 fps keep the stride of 2)."""
    stride = sampling.stride
    while stride > 1 and rate / stride < MIN_DETECTIONS_PER_S:
        stride -= 1
    return replace(sampling, stride=stride)


def overdue(now: float, last_searched: float | None, previous: float | None) -> bool:
    """Whether the frame at `now` must be searched, whatever the stride, because the next one is
    likely to come more than 1 / MIN_DETECTIONS_PER_S seconds after the last frame searched (the
    next interval taken to be the one just past). A phone's variable frame rate drops to 15 fps in
    the dark while its average, from which the stride is chosen, stays near 30. On a constant
    rate this picks no frame the stride of `at_rate` does not."""
    if last_searched is None or previous is None:
        return False
    # A millisecond of slack: timestamps rounded to their time base (23 fps in 1/90000 s) must not
    # make every in-between frame of a steady clip look late.
    return (now - last_searched) + (now - previous) > 1 / MIN_DETECTIONS_PER_S + 0.001


def plan_video(source: Path, profile: DetectionProfile = FAST, show_progress: bool = False,
               start: float | None = None, end: float | None = None, only_range: bool = False,
               sampling: VideoDetection | None = None, detector: CenterFace | None = None,
               sha256: str | None = None, hide: tuple[Kind, ...] = DEFAULT_HIDE, salvage: bool = False) -> MediaPlan:
    """Pass 1: detect, find scene cuts, track. Frames outside [start, end] are not checked:
    they are fully covered unless `only_range` (then they are left as they are). Times are
    measured from the file's start as a player counts them (`_Scan.range_origin`: the container's
    start, or the first frame's time if earlier), not from the zero of the file's clock nor from the
    video stream's own start.
    `sha256`: the file's hash, if the caller has it already. `sampling`: what runs (by default the
    profile's), its stride shortened for a slow frame rate (`at_rate`). `salvage`: a damaged
    file is planned as far as it decodes (frames decoded from damaged data fully covered), and
    the plan records the damage, which rendering must meet again."""
    if start is not None and end is not None and start >= end:
        raise ValueError(f"the start of the range ({start:g} s) must come before its end ({end:g} s)")
    sampling = sampling or VIDEO_DETECTION.get(profile.name, VIDEO_DETECTION["fast"])
    lanes = _lanes(detector)
    batch = sampling.gpu_batch if lanes[0].centerface.provider == "CUDAExecutionProvider" else sampling.batch
    container = open_input(source)
    try:
        stream = video_stream(container, exact=True)
        index = stream.index
        beside = left_out(container)  # the user is told
        rate = float(frame_rate(stream))
        sampling = at_rate(sampling, rate)
        damage = Damage() if salvage else None
        scan = _scan(container, stream, sampling, batch, lanes, show_progress, start, end, hide, damage)
    finally:
        container.close()
    if beside["transparency_not_written"] and stream.metadata.get("alpha_mode") != "1" and not scan.see_through:
        beside["transparency_not_written"] = 0  # an alpha plane every frame holds opaque (a GIF or PNG in a .mov)
    beside["stereo_3d_not_written"] = int(beside["stereo_3d_not_written"] or scan.stereo)
    if scan.captions:
        beside["closed_captions_not_written"] = 1
    if only_range and not scan.inside:
        raise VideoError(f"no frame lies between {start or 0:g} s and "
                         f"{'the end' if end is None else f'{end:g} s'} of the video")
    params = TrackParams(max_gap=max(2 * sampling.stride, round(MAX_GAP_S * rate)),
                         extend=max(2 * sampling.stride, round(EXTEND_S * rate)), match_buffer=MATCH_BUFFER,
                         motion_growth=MOTION_GROWTH, confirm_score=sampling.confirm_score,
                         confirm_hits=sampling.confirm_hits, fills_frame=FILLS_FRAME)
    # Plates and text may be looked for less often: their tracks bridge, and reach past their ends by,
    # at least two of their own intervals, as face tracks do two of the faces', and fit their end
    # velocity over at least two intervals' detections.
    interval = sampling.stride * sampling.text_every
    text_params = replace(params, max_gap=max(params.max_gap, 2 * interval), extend=max(params.extend, 2 * interval),
                          velocity_span=max(params.velocity_span, 2 * interval + 1)) if wants_text(hide) else None
    size = detection_size(*scan.shown, sampling.side_for(*scan.shown))
    standing = shot_standing_turns(scan.people_turns, segments(len(scan.times), scan.cuts))
    faces = looks_for_faces(hide)
    return MediaPlan(
        path=str(Path(source).absolute()), kind="video", width=scan.width, height=scan.height,
        frame_count=len(scan.times), sha256=sha256 or file_sha256(source),
        regions=tracked_regions(scan.detections, scan.kinds, len(scan.times), scan.cuts, params, hide,
                                scan.width, scan.height, text_params,
                                scan.camera.drift() if FOLLOW_CAMERA and scan.camera else None, standing,
                                _searched_span(len(scan.times), scan.outside)),
        detection={**video_detection_record(sampling, batch, len(lanes), size, params, (start, end), text_params,
                                            scan.range_origin, faces),
                   # The rules above, as they applied: how many searches a dark frame was brightened
                   # for, a frame without colour had its scores raised, a smeared one was squeezed.
                   **({"frames_judged": scan.judged.record(), **head_record()} if faces else {}),
                   # Shots whose people stand up only turned (a clip stored on its side, people lying
                   # down): from the frame that judged so on, searched turned too.
                   **({"standing_search": {**standing_rule_record(), "judged_over": "each shot so far",
                                           "judged_on": {"frames_with_every_view_for_seconds": JUDGE_FULLY_S,
                                                         "then_one_every_seconds": JUDGE_EVERY_S},
                                           "searched_turned": [{"sampled_frames": [first, last], "turn": turn}
                                                               for first, last, turn in scan.turned_runs]}}
                      if sampling.frame.standing_search and faces else {}),
                   **({"interlaced_frames": {"count": scan.interlaced, "searched_as": FIELD_SEARCH}}
                      if scan.interlaced else {}),
                   **({"new_pictures": scan.new_pictures} if scan.new_pictures else {}),
                   **({"woven_frames": {"count": scan.woven, "from_frame": scan.woven_from, "searched_as": FIELD_SEARCH,
                                        "rule": WOVEN_RULE}} if scan.woven else {}),
                   # Text at full size, as shown; people turned on the frames with RetinaFace's views.
                   **kinds_record(hide, *scan.shown, VIDEO_TEXT_PASSES, sampling.retina_every, standing),
                   **({"searched_as_shown": list(scan.shown)} if scan.shown != (scan.width, scan.height) else {}),
                   **({"tone_mapped_frames": {"count": scan.tone_mapped, **tone_map_record(TRC_PQ)}}
                      if scan.tone_mapped else {}),
                   "stream": {"index": index, **beside, **({"damage": damage.record()} if damage else {}),
                              **({"time_holes": holes}
                                 if (holes := time_holes(scan.times, scan.origin, scan.range_origin)) else {}),
                              **({"decoding_times_from": scan.timing.decoding_from}
                                 if scan.timing.decoding_from is not None else {}),
                              **({"frames_at_the_time_before": scan.same_time} if scan.same_time else {})}},
        unanalysed_frames=sorted(scan.unanalysable),
        unchecked_frames=sorted(scan.outside),
        unchecked_covered=not only_range,
        scene_cuts=scan.cuts,
        frame_times=scan.times,
    )


@dataclass(frozen=True)
class _Lane:
    """One of pass 1's detection lanes: its own sessions (see models.shared), `threads` each."""

    index: int
    threads: int | None  # None: the default
    centerface: CenterFace
    retinaface: RetinaFace


def _lanes(given: CenterFace | None) -> list[_Lane]:
    """DETECT_LANES on the CPU, their sessions sharing the threads; one lane with `given` or on a
    GPU."""
    if given is not None:
        return [_Lane(0, None, given, shared_retinaface())]
    count = min(DETECT_LANES, session_threads())
    threads = -(-session_threads() // count)  # rounded up: 3 cores, 2 lanes of 2 threads
    first = _Lane(0, threads, shared_detector(threads), shared_retinaface(threads))
    if first.centerface.provider == "CUDAExecutionProvider":
        return [first]
    return [first, *(_Lane(n, threads, shared_detector(threads, n), shared_retinaface(threads, n))
                     for n in range(1, count))]


def tracked_regions(faces: dict[int, list[Box]], kinds: dict[Kind, dict[int, list[Box]]], frame_count: int,
                    cuts: list[int], params: TrackParams, hide: tuple[Kind, ...], width: int, height: int,
                    text_params: TrackParams | None = None, drift: np.ndarray | None = None,
                    standing: list[tuple[int, int, int]] = (), searched: tuple[int, int] | None = None) -> list[Region]:
    """Face tracks, the other kinds' tracks (plates and text with `text_params`, else `params`), and
    with people a body from every face track (frame by frame, so `people` hides every face `faces`
    would, wherever the person detector missed it): below the head, and along the turn that stands
    a shot's people up in the shots `standing` lists (people.shot_standing_turns: first frame, last,
    turn). `drift`: the camera's (veil.motion), to follow, or None. `searched`: the first and last
    frame searched where --start/--end left others unsearched (track.build_tracks)."""
    face_tracks = build_tracks(faces, frame_count, cuts, params, drift=drift, frame_size=(width, height),
                               searched=searched)
    bodies = _bodies(face_tracks, width, height, standing) if "person" in hide else []
    return ((face_tracks if "face" in hide else [])
            + _kind_tracks(kinds, frame_count, cuts, params, text_params or params, drift) + bodies)


def _searched_span(frame_count: int, outside: list[int]) -> tuple[int, int] | None:
    """The first and last frame inside --start/--end, where frames outside it were not searched."""
    inside = sorted(set(range(frame_count)) - set(outside)) if outside else []
    return (inside[0], inside[-1]) if inside else None


def _bodies(face_tracks: list[Region], width: int, height: int, standing: list[tuple[int, int, int]]) -> list[Region]:
    """Each face track's body below its head, and its body along a turned shot's turn (a region of
    its own, on that shot's frames), as a photo gets both (people.people_boxes)."""
    def turn_at(frame: int) -> int:
        return next((turn for first, last, turn in standing if first <= frame <= last), 0)

    bodies = []
    for n, face in enumerate(face_tracks):
        name = f"{ID_PREFIX['person']}f{n + 1}"
        bodies.append(Region(id=name, source="detector", shape="box", kind="person",
                             boxes={f: body_below(box, width, height) for f, box in face.boxes.items()}))
        along = {f: body_along(box, width, height, turn) for f, box in face.boxes.items() if (turn := turn_at(f))}
        if along:
            bodies.append(Region(id=f"{name}t", source="detector", shape="box", kind="person", boxes=along))
    return bodies


def _kind_tracks(kinds: dict[Kind, dict[int, list[Box]]], frame_count: int, cuts: list[int],
                 params: TrackParams, text_params: TrackParams, drift: np.ndarray | None) -> list[Region]:
    """Plates, text and people tracked like faces, each kind on its own (a plate never continues a face).
    Every detection counts: these detectors' scores are not on the face detector's scale."""
    regions: list[Region] = []
    for kind, detections in kinds.items():
        own = text_params if kind in TEXT_KINDS else params
        for region in build_tracks(detections, frame_count, cuts, replace(own, confirm_score=0.0),
                                   id_prefix=ID_PREFIX[kind], drift=drift):
            region.kind, region.shape = kind, "box"
            regions.append(region)
    return regions


def video_detection_record(sampling: VideoDetection, batch: int, lanes: int, size: tuple[int, int],
                           params: TrackParams, time_range: tuple[float | None, float | None],
                           text_params: TrackParams | None = None, file_start: float | None = None,
                           faces: bool = True) -> dict:
    """Exactly what pass 1 ran on this video, for the plan and its audit report; without `faces`
    (--hide plates or text alone), no face detector ran, and the record names none."""
    profile = sampling.frame
    faces_record = {
        "model": MODEL_NAME,
        "model_sha256": model_sha256(MODEL_NAME),
        "profile": profile.name, "applied_to": "video frames, sampled and tracked as below",
        "passes": [{"scale": "whole frame resized", "width": size[0], "height": size[1]}],
        "threshold": profile.threshold,
        "size_thresholds": [list(t) for t in profile.size_thresholds],
        "nms_iou": profile.nms_iou,
        **exposure_record(profile),
        **(retina_record(profile) if sampling.retina_every and uses_retina(profile) else {}),
        # A sampled frame smeared sideways by motion is searched squeezed across too.
        **streak_record(profile),
        # A sampled frame with fine colour (a screen filmed) is searched low-passed too.
        **low_pass_record(profile, frames=True),
        # Frames too small for an overview get none: the record says so.
        "overview": ({"longest_side": profile.overview_side, "threshold": sampling.overview_threshold}
                     if sampling.overview_threshold is not None and overview_scale(profile, *size) is not None
                     else None),
    } if faces else {"faces": "not looked for"}
    faces_sampling = {
        # CenterFace's scores raised this many times on a frame without colour.
        "colourless_gain": sampling.colourless_gain, "colourless_spread_below": COLOURLESS_SPREAD,
        "second_model_every_nth_sampled_frame": sampling.retina_every,
        # CenterFace alone on the frames between sampled ones, its boxes kept only where no
        # sampled frame either side has a detection over them.
        "glance": ({"longest_side": sampling.glance_side, "threshold": sampling.glance_threshold}
                   if sampling.glance_side and sampling.stride > 1 else None),
    } if faces else {}
    return {
        **faces_record,
        **runtime_record(),
        # Shots' first and last frames are searched with every view; a frame whose next would leave
        # more than 1 / at_least_per_second seconds unsearched is searched whatever the stride.
        "sampling": {"every_nth_frame": sampling.stride, "at_least_per_second": MIN_DETECTIONS_PER_S,
                     "scene_cuts_always": True, "shot_ends_always": True,
                     # (with the frame before, as a cut's: shots.py)
                     "new_pictures_always": True,
                     "batch": batch, "batches_at_once": lanes,
                     # The detector's image (its size: passes): longest_side, or min_share of a larger frame's.
                     "longest_side": sampling.side, "min_share": sampling.min_share, "max_side": sampling.max_side,
                     "max_upscale": MAX_UPSCALE, **faces_sampling,
                     "text_every_nth_sampled_frame": sampling.text_every},
        "tracking": {**asdict(params), **scene_cuts_record(),
                     # The camera's motion measured on every frame (veil.motion), where it is followed.
                     "camera_motion": camera_motion_record() if FOLLOW_CAMERA else None},
        # Plates and text (--hide): tracked as faces, every detection counting, over their own sampling.
        **({"tracking_text": {"max_gap": text_params.max_gap, "extend": text_params.extend,
                              "velocity_span": text_params.velocity_span}} if text_params else {}),
        # Where the range's zero lies on the file's clock: a plan edited to list fewer frames
        # outside the range than it leaves out is refused (plan._range_problem).
        "range_seconds": {"start": time_range[0], "end": time_range[1], "measured_from": RANGE_CLOCK,
                          **({"file_start": file_start} if file_start is not None else {})},
    }


@contextlib.contextmanager
def _worker_threads(count: int, name: str) -> Iterator[ThreadPoolExecutor]:
    """A pass's threads. Leaving, work not yet started is dropped (the pass failed or was stopped)
    and running work is waited for: no thread outlives its pass."""
    workers = ThreadPoolExecutor(count, thread_name_prefix=name)
    try:
        yield workers
    finally:
        workers.shutdown(wait=True, cancel_futures=True)


def _scan(container, stream, sampling: VideoDetection, batch_size: int,
          lanes: list[_Lane], show_progress: bool,
          start: float | None, end: float | None, hide: tuple[Kind, ...] = DEFAULT_HIDE,
          damage: Damage | None = None) -> _Scan:
    scan = _Scan(kinds={kind: {} for kind in hide if kind != "face"}, origin=stream_start(stream),
                 container_start=container_start(container))
    batch: list[_Frame] = []
    scene = SceneCuts()
    scan.cuts = scene.cuts
    size = (0, 0)
    first = (0, 0, 0)  # frame 0's upright size and rotation: every frame must keep them
    last_time: float | None = None  # the latest timestamp so far
    last_detected = -sampling.stride
    last_searched_time: float | None = None
    sampled = 0  # frames sampled so far
    # How much the people of the shot so far stand up in each view, summed over its frames judged
    # (JUDGE_FULLY_S, JUDGE_EVERY_S): where people.standing_turn finds a turn in it, each frame
    # sampled from then on to the shot's end is searched turned that way too, as a photo is whole.
    # Judged here, in order, so that which frames are searched turned never depends on the lanes'
    # timing.
    shot_weights = dict.fromkeys(TURNS, 0.0)
    shot_start: float | None = None  # the time of the shot's first frame sampled
    last_judged: float | None = None  # the time of the shot's last frame judged
    # Faces are looked for where --hide names them or people (a body for each face); not for plates
    # or text alone, as in a photo.
    faces_wanted = looks_for_faces(hide)
    judge = shared_person_detector(lanes[0].threads, len(lanes)) \
        if (sampling.frame.standing_search and faces_wanted) or "person" in hide else None
    turned_batches: dict[int, list[_Frame]] = {}  # by turn: the frames' sizes differ
    # The frame sampled last, where it was searched turned in this shot: a run of the plan's
    # searched_turned goes on only from it (a shot's sum may stand its people up, then not, then again).
    last_turned: int | None = None

    @contextlib.contextmanager
    def free_lane() -> Iterator[_Lane]:
        lane = free.get()  # one is always free: no more batches run at once than lanes
        try:
            yield lane
        except Exception as error:  # onnxruntime raises its own types; any of them means no output
            raise VideoError(f"a detector failed: {error}") from None
        finally:
            free.put(lane)

    def other_kinds(frame: _Frame, lane: _Lane) -> FrameFinds:
        """Plates, text and people in a sampled frame: in its full-size picture where text is looked
        for, else (people only) in the detection image."""
        picture, shape = (frame.rgb, size) if frame.full is None else (frame.full, scan.shown)
        return frame_boxes(picture, hide, scan.width / shape[0], scan.height / shape[1], VIDEO_TEXT_PASSES,
                           lane.threads, lane.index, frame.text, turned=frame.views, people=frame.people)

    def faces_in_frames(frames: list[_Frame], lane: _Lane, judged: FramesJudged | None = None) -> list[list[Detection]]:
        """The video profile's faces in a batch of same-size frames, by `lane`'s sessions."""
        if not faces_wanted:
            return [[] for _ in frames]
        return detect_frames([f.rgb for f in frames], sampling.frame, [f.views for f in frames], batch_size,
                             lane.centerface, lane.retinaface, overview_threshold=sampling.overview_threshold,
                             colourless_gain=sampling.colourless_gain, judged=judged)

    def detect(frames: list[_Frame]) -> None:
        scale = (scan.width / size[0], scan.height / size[1])
        with free_lane() as lane:
            found = faces_in_frames(frames, lane, scan.judged)
            kinds = [other_kinds(frame, lane) for frame in frames] if scan.kinds else []
        for frame, faces in zip(frames, found):
            boxes = [_head(face, *scale) for face in faces]
            # A shot's last frame may be searched twice, the second time with every view: that
            # search's boxes stand, whichever lane finishes first (the test and the store at once).
            with stored:
                if frame.views or frame.index not in scan.detections:
                    scan.detections[frame.index] = boxes
        for frame, finds in zip(frames, kinds):  # the frames faces are looked for on, at most
            for kind, boxes in finds.boxes.items():
                scan.kinds[kind][frame.index] = boxes
            if finds.people_turns:
                scan.people_turns[frame.index] = finds.people_turns

    def detect_turned(turn: int, frames: list[_Frame]) -> None:
        """`detect` on frames turned `turn` quarter turns, their boxes turned back (shaped as a
        photo's turned search shapes them: detect.faces_in)."""
        with free_lane() as lane:
            found = faces_in_frames(frames, lane)
        scale = (scan.width / size[0], scan.height / size[1])
        for frame, faces in zip(frames, found):
            rows = unrotate(np.array([[f.x0, f.y0, f.x1, f.y1, f.score] for f in faces], np.float64).reshape(-1, 5),
                            turn, *size)
            boxes = [_head(Detection(*map(float, row)), *scale) for row in rows]
            with stored:  # as `detect`'s
                if frame.views or frame.index not in scan.turned_detections:
                    scan.turned_detections[frame.index] = boxes

    def glance(frames: list[_Frame]) -> None:
        with free_lane() as lane:
            found = glance_frames([f.rgb for f in frames], sampling.glance_threshold, sampling.frame,
                                  lane.centerface, size, batch_size)
        scale = (scan.width / glance_size[0], scan.height / glance_size[1])
        for frame, faces in zip(frames, found):
            scan.glances[frame.index] = [_head(face, *scale) for face in faces]

    def settle(at_most: int) -> None:
        """Waits for the oldest batches until at most `at_most` are in flight (their errors are
        raised here)."""
        while len(in_flight) > at_most:
            in_flight.popleft().result()

    # One lane (on a GPU, say) has nothing to balance: one batch out.
    most_out = DETECT_AHEAD * len(lanes) if len(lanes) > 1 else 1

    def flush(frames: list[_Frame], run: Callable[[list[_Frame]], None]) -> None:
        """Hands a batch to the lanes (`run`: detect or glance), first waiting for the oldest when
        `most_out` are out."""
        settle(most_out - 1)
        in_flight.append(workers.submit(run, list(frames)))
        frames.clear()

    glances: list[_Frame] = []  # a batch of frames between sampled ones (they differ in size)
    # The last frame read, unless it was searched with every view: if it ends its shot (the next
    # is a cut, or there is none), it is, since no track carries a face that appears there into a
    # later frame.
    shot_end: tuple[int, av.VideoFrame, int] | None = None

    def search_turned(index: int, rgb: np.ndarray, views: bool, turn: int) -> None:
        """Adds the frame, turned `turn` quarter turns, to the batch searched that way."""
        runs = scan.turned_runs
        if runs and runs[-1][2] == turn and runs[-1][1] == last_turned != index:
            runs[-1][1] = index
        elif not (runs and runs[-1][1] == index):  # (a shot's last frame sampled twice: once in the runs)
            runs.append([index, index, turn])
        frames = turned_batches.setdefault(turn, [])
        frames.append(_Frame(index, np.ascontiguousarray(np.rot90(rgb, turn)), views, False))
        if len(frames) == batch_size:
            flush(frames, functools.partial(detect_turned, turn))

    def as_field(index: int, frame: av.VideoFrame) -> bool:
        """Whether the detectors get the frame's top field: marked interlaced, or woven footage from
        its first woven frame on (looks_woven)."""
        return frame.interlaced_frame or (scan.woven_from is not None and index >= scan.woven_from)

    def sample(index: int, frame: av.VideoFrame, turns: int, every_view: bool, ends_shot: bool = False) -> bool:
        """Adds the frame to the batch for detection (every view: a shot's first or last frame). A
        shot's last frame is looked at beside the stride's frames: the views' cadence is theirs.
        Whether the frame was searched with every view and, where plates or text are asked for, the
        text detector (or cannot be searched at all)."""
        nonlocal last_detected, sampled, last_searched_time, shot_weights, shot_start, last_judged, last_turned
        last_detected = index
        last_searched_time = frame.time
        views = bool(sampling.retina_every) and (every_view or sampled % sampling.retina_every == 0)
        text = every_view or sampled % sampling.text_every == 0
        sampled += not ends_shot
        field_only = as_field(index, frame)
        try:
            full = _upright_rgb(frame, scan.shown, turns, field_only) if text and wants_text(hide) else None
            rgb = _upright_rgb(frame, size, turns, field_only)
        except (ValueError, av.error.FFmpegError):
            scan.unanalysable.append(index)  # covered whole when rendered
            return True
        shot_start = frame.time if shot_start is None else shot_start
        judged = judge is not None and views and (frame.time - shot_start < JUDGE_FULLY_S or last_judged is None
                                                  or frame.time - last_judged >= JUDGE_EVERY_S)
        people = found_people(rgb if full is None else full, judge) if judged else None
        if people is not None:
            last_judged = frame.time
            scan.people_turns[index] = turn_weights(people)
            shot_weights = {turn: shot_weights[turn] + weight for turn, weight in scan.people_turns[index].items()}
        batch.append(_Frame(index, rgb, views, text, full, people))
        if len(batch) == batch_size:
            flush(batch, detect)
        standing = standing_turn(shot_weights) if sampling.frame.standing_search and faces_wanted else 0
        if standing:
            search_turned(index, rgb, views, standing)
        last_turned = index if standing else None
        return (text or not wants_text(hide)) and (views or not sampling.retina_every)

    in_flight: collections.deque[Future] = collections.deque()
    stored = threading.Lock()
    free: queue.SimpleQueue[_Lane] = queue.SimpleQueue()
    for lane in lanes:
        free.put(lane)
    with _progress("detecting", stream.frames, show_progress) as advance, \
            _worker_threads(len(lanes), "veil-detect") as workers:
        for index, frame in enumerate(read(container, stream, damage=damage, timing=scan.timing)):
            turns = rotation_of(frame)
            if index == 0:
                refuse_mirrored(frame)
                scan.width, scan.height = _upright_size(frame, turns)
                scan.shown = shown_size(stream, frame, turns)
                first = (scan.width, scan.height, turns)
                size = detection_size(*scan.shown, sampling.side_for(*scan.shown))
                glance_size = detection_size(*scan.shown, sampling.glance_side or sampling.side)
                scan.camera = CameraPath(scan.width, scan.height)
            elif (*_upright_size(frame, turns), turns) != first:
                # Boxes and masks are in frame 0's pixels: they would land in the wrong place.
                raise _size_change(first, frame, turns, index)
            previous_time = last_time
            if frame.time is not None:
                if last_time is not None and frame.time < last_time:
                    # Each frame keeps its time, and an encoder and a muxer take them in order only
                    # (the same time twice is written a tick later: Output._after_the_last).
                    raise VideoError(f"its timestamps run backwards at frame {index} ({last_time:.2f} s, then "
                                     f"{frame.time:.2f} s), as in files joined end to end: re-mux it with new "
                                     "timestamps first (or cut it there)")
                scan.same_time += frame.time == last_time
                last_time = frame.time
            scan.times.append(float(frame.time or 0.0))
            change = scene.add(index, Look.of(frame))
            cut, new_picture = change == "cut", change == "new picture"
            # (A flash's first frame is measured as a cut's, no motion into it, before it is known to
            # be a flash: the drift then lacks one frame's step, which boxes away from their
            # detections also cover in the frame's own coordinates: track._filled's either_place.)
            scan.camera.add_frame(frame, turns, cut)
            scan.interlaced += frame.interlaced_frame
            scan.see_through = scan.see_through or see_through(frame)
            carried = {entry.type for entry in frame_side_data(frame)}
            scan.stereo = scan.stereo or av.sidedata.sidedata.Type.STEREO3D in carried
            scan.captions = scan.captions or av.sidedata.sidedata.Type.A53_CC in carried
            scan.tone_mapped += frame.color_trc in DETECTORS_TONE_MAP
            if frame.time is not None and (scan.origin is None or frame.time < scan.origin):
                scan.origin = frame.time
            inside = frame.time is not None and _in_range(frame.time - scan.range_origin, start, end)
            # The frame before ended a shot (or a picture), or the range.
            if shot_end is not None and (cut or new_picture or not inside):
                sample(*shot_end, True, ends_shot=True)
            shot_end = None
            if cut or new_picture:  # its people are judged afresh, which way they stand
                shot_weights, shot_start, last_judged, last_turned = dict.fromkeys(TURNS, 0.0), None, None, None
            if frame.time is None or (damage is not None and damage.covers(index)):
                # No place in the range, or decoded from damaged data (pieces of other frames, a
                # face among them, that a detector may not see as one): covered whole.
                scan.unanalysable.append(index)
            elif not inside:
                scan.outside.append(index)
            else:
                scan.inside += 1
                if new_picture:
                    scan.new_pictures.append(index)
                if not frame.interlaced_frame:  # (a damaged frame, covered whole, is not looked at)
                    if scan.woven_from is None and looks_woven(frame):
                        scan.woven_from = index
                    scan.woven += as_field(index, frame)
                # A new shot is looked at at once, whatever the stride, and with every view.
                if change or index - last_detected >= sampling.stride or \
                        overdue(frame.time, last_searched_time, previous_time):
                    if not sample(index, frame, turns, change is not None):
                        shot_end = (index, frame, turns)
                else:
                    shot_end = (index, frame, turns)
                    if sampling.glance_side and faces_wanted:
                        try:
                            glances.append(_Frame(index, _upright_rgb(frame, glance_size, turns, as_field(index, frame)),
                                                   False, False))
                        except (ValueError, av.error.FFmpegError):
                            pass  # its neighbours' tracks still cover it, as without the glance
                        if len(glances) == batch_size:
                            flush(glances, glance)
            advance()
        if shot_end is not None:
            sample(*shot_end, True, ends_shot=True)
        turned = [(frames, functools.partial(detect_turned, turn)) for turn, frames in turned_batches.items()]
        for frames, run in ((batch, detect), (glances, glance), *turned):
            if frames:
                flush(frames, run)
        settle(0)
    for index, boxes in scan.turned_detections.items():  # beside the frame's own, each face once
        own = scan.detections.get(index, [])
        overlaps = iou_matrix(boxes, own).max(axis=1) if own and boxes else np.zeros(len(boxes))
        scan.detections[index] = own + [box for box, overlap in zip(boxes, overlaps) if overlap < sampling.frame.nms_iou]
    for index in scan.detections:  # a shot's last frame, glanced at before it was known to be last
        scan.glances.pop(index, None)
    for index, boxes in _unseen_glances(scan.detections, scan.glances, sampling.confirm_score, scan.cuts).items():
        scan.detections[index] = boxes
    # Lanes finish out of order: frame order again, so nothing downstream depends on the timing.
    scan.detections = dict(sorted(scan.detections.items()))
    scan.kinds = {kind: dict(sorted(found.items())) for kind, found in scan.kinds.items()}
    return scan


def _unseen_glances(detections: dict[int, list[Box]], glances: dict[int, list[Box]], confirm_score: float,
                    cuts: list[int]) -> dict[int, list[Box]]:
    """The glance's boxes that the detections on the nearest sampled frames before and after, in
    the same shot, do not both cover, by frame: faces there on that frame alone (a face also on
    the sampled frames either side is its track's to carry; tracks end at a cut). Both: a track
    between two detections of different faces (a cut the histogram missed, a fast montage of
    two-frame shots) is interpolated from one place toward the other, past the face the glance
    sees where the first one was. Only detections scoring at least `confirm_score` count: a
    weaker one may make no track at all (TrackParams.confirm_hits)."""
    sampled = sorted(detections)
    unseen: dict[int, list[Box]] = {}
    for index, boxes in glances.items():
        at = bisect.bisect(sampled, index)
        shot = bisect.bisect(cuts, index)
        sides = [[box for box in detections[n] if (box.score or 0.0) >= confirm_score]
                 for n in sampled[max(0, at - 1):at + 1] if bisect.bisect(cuts, n) == shot]
        # Half of it at least: a small box beside a large face is not the face's track, which would
        # cover no more of it than its own size.
        alone = [box for box in boxes
                 if not sides or not all(any(box.share_inside(other) >= 0.5 for other in side) for side in sides)]
        if alone:
            unseen[index] = alone
    return unseen


def render_video(media: MediaPlan, settings: RenderSettings, target: Path, show_progress: bool = False,
                 encoding: Encoding = Encoding(), overwrite: bool = True, hash_checked: bool = False) -> str | None:
    """Pass 2: write the redacted video to `target` (atomically), following the plan exactly; the
    SHA-256 of what was written.
    `hash_checked`: the caller has just hashed the file and found the plan's hash."""
    # A plan's boxes fit only the video they were found in: a replaced file of the same
    # size and length would be rendered with masks in the wrong places.
    if not hash_checked:
        check_as_planned(media)
    container = open_input(Path(media.path))
    try:
        # A damaged file planned with --salvage is decoded as it was then (see video_stream); the
        # stream is the one planned.
        stream = video_stream(container, exact=media.salvaged_damage() is not None, planned=planned_stream(media))
        with atomic_output(target, overwrite, still_as_planned(media), [media.path]) as written:
            try:
                _render(container, stream, media, settings, written.path, target.suffix, show_progress, encoding)
            except av.error.ArgumentError as error:  # FFmpeg's words name the hidden temporary file
                raise VideoError(f"cannot write the video: {reason(error)}") from None
    finally:
        container.close()
    return written.sha256


def planned_stream(media: MediaPlan) -> int | None:
    """The index of the video stream the plan was made from (None in a plan that does not say)."""
    return media.detection.get("stream", {}).get("index")


def _render(container, stream, media: MediaPlan, settings: RenderSettings, temp: Path, suffix: str,
            show_progress: bool, encoding: Encoding) -> None:
    media.forget_earlier_render()  # a review's earlier export, say
    by_frame = media.boxes_by_frame()
    covered = media.covered_frames()
    secret = secrets.token_bytes(16)  # this export's blur shading; see render.shading
    rgb_format = "rgb48le" if bit_depth(stream) > 8 else "rgb24"
    # A damaged file planned with --salvage is read past its damage again, which must be the same.
    planned_damage = media.salvaged_damage()
    damage = Damage() if planned_damage is not None else None
    items = read(container, stream, tuple(container.streams.audio) + subtitles_copied(container, encoding), damage,
                 PLAN_SALVAGE_HINT)
    out: Output | None = None
    # Audio demuxed before the first video frame waits until the output is open (it
    # needs that frame's rotation); the demuxer interleaves, so this is a few packets.
    early: list[av.Packet] = []
    index = 0
    rotation = 0  # frame 0's, which the output is tagged with
    # Frames are redacted on REDACT_THREADS threads (the colour conversions and most of the
    # drawing leave the GIL), no more than this process's share of the cores (a cluster worker's),
    # and encoded in order; at most REDACT_AHEAD are in flight.
    in_flight: collections.deque[Future] = collections.deque()

    def encode_oldest() -> None:
        out.encode(in_flight.popleft().result())
        advance()

    try:
        with _progress("rendering", media.frame_count, show_progress) as advance, \
                _worker_threads(min(REDACT_THREADS, session_threads()), "veil-redact") as workers:
            for item in items:
                if isinstance(item, av.Packet):
                    if out is None:
                        early.append(item)
                    else:
                        out.mux(item)
                    continue
                turns = rotation_of(item)
                _check_size(media, item, turns, index)
                if damage is not None:
                    _check_time(media, item, index)
                if out is not None and item.rotation != rotation:
                    raise VideoError(f"display rotation changes mid-stream (at frame {index}): not supported")
                if out is None:
                    refuse_mirrored(item)
                    rotation = item.rotation
                    out = open_output(temp, suffix, container, stream, item.rotation, encoding,
                                      media_voice_plan(media, settings.voice), hdr10_levels(item), damage is not None,
                                      fields=field_order(stream, item))
                    for packet in early:
                        out.mux(packet)
                boxes = [(r, upright_to_coded(b, turns, item.width, item.height)) for r, b in by_frame.get(index, [])]
                if boxes or index in covered:
                    in_flight.append(workers.submit(_redacted, item, boxes, settings, index in covered, rgb_format,
                                                    secret))
                else:
                    in_flight.append(Future())
                    in_flight[-1].set_result(item)
                while in_flight and (len(in_flight) >= REDACT_AHEAD or in_flight[0].done()):
                    encode_oldest()
                index += 1
            while in_flight:
                encode_oldest()
        if index != media.frame_count:
            raise VideoError(f"the plan is for {media.frame_count} frames, the video has {index}")
        if damage is not None and damage.record() != planned_damage:
            raise VideoError("the damaged video decoded otherwise than when it was planned: nothing was written; "
                             "plan it again")
        if out is None:
            raise VideoError("no frame could be decoded")
        out.finish()
        media.detection.setdefault("stream", {})["video_written_as"] = out.video_written_as
        if encoded := sound_written_as(out.reencode, container):
            media.detection["stream"]["sound_written_as"] = encoded
        if again := out.sound_encoded_again(container):
            media.detection.setdefault("stream", {})["sound_encoded_again"] = again
        if out.timed_back:
            media.detection["stream"]["packets_timed_back_left_out"] = out.timed_back
        if moved := channels_read_back(container, temp):
            media.detection["stream"]["sound_channels_read_back"] = moved
    except BaseException:
        if out is not None:
            with contextlib.suppress(Exception):
                out.container.close()
        raise


def _check_size(media: MediaPlan, frame: av.VideoFrame, turns: int, index: int) -> None:
    """Every frame, not only the first: the plan's boxes are in one fixed upright size."""
    width, height = _upright_size(frame, turns)
    if (width, height) != (media.width, media.height):
        if index:
            raise VideoError(f"frame size changes mid-stream ({media.width}x{media.height} → {width}x{height} "
                             f"at frame {index}): not supported")
        raise VideoError(f"plan is for a {media.width}x{media.height} video, the file is {width}x{height}")


def _check_time(media: MediaPlan, frame: av.VideoFrame, index: int) -> None:
    """A damaged file's frames must be the ones planned, each at its place: where the decoder
    dropped a frame in one pass and not in the other, every later box would land a frame off."""
    if index < len(media.frame_times) and not media.at_planned_time(index, float(frame.time or 0.0)):
        raise VideoError(f"frame {index} of the damaged video decoded at {float(frame.time or 0.0):.3f} s, "
                         f"not at {media.frame_times[index]:.3f} s as planned: nothing was written; plan it again")


def _keep_undrawn(original: av.VideoFrame, new: av.VideoFrame, drawn: np.ndarray) -> None:
    """Put the original frame's samples back into `new` wherever nothing was drawn (`drawn`: the
    frame's pixels drawn over, `render.drawn_mask`).

    The trip through RGB and back is not exact: in 8-bit 4:2:0 it left the whole frame a little
    darker with its hues shifted, and edges of strong colour far more, on every frame that had a
    face in it (so the picture also flickered where a face came and went; kept only outside each
    region's rectangle, the rectangle round each ellipse came out about a level darker). Only
    planar YUV or RGB layouts are put back, plane by plane (a palette's indices would point into
    the new palette). A subsampled chroma sample is taken from `new` where any pixel it covers
    was drawn, and one sample further each way it is subsampled: interlaced 4:2:0 and the
    chroma's siting draw a hidden pixel's colour from a neighbouring sample.
    """
    layout = original.format
    if not layout.is_planar or layout.has_palette or layout.is_bayer or layout.is_bit_stream:
        return
    for index, plane in enumerate(new.planes):
        unit = sum(-(-component.bits // 8) for component in layout.components if component.plane == index)
        before, after = _plane_bytes(original.planes[index], unit), _plane_bytes(plane, unit)
        across, down = round(new.width / plane.width), round(new.height / plane.height)
        redrawn = drawn
        if across > 1 or down > 1:
            padded = np.zeros((plane.height * down, plane.width * across), bool)
            padded[:min(drawn.shape[0], padded.shape[0]), :min(drawn.shape[1], padded.shape[1])] = \
                drawn[:padded.shape[0], :padded.shape[1]]
            covered = np.zeros((plane.height, plane.width), bool)
            for row, column in np.ndindex(down, across):  # (numpy's any over a reshaped block is slow)
                covered |= padded[row::down, column::across]
            near = np.ones((1 + 2 * (down > 1), 1 + 2 * (across > 1)), np.uint8)
            redrawn = cv2.dilate(covered.view(np.uint8), near).astype(bool)
        np.copyto(after, before, where=~np.repeat(redrawn, unit, axis=1) if unit > 1 else ~redrawn)


def _plane_bytes(plane: av.video.plane.VideoPlane, unit: int) -> np.ndarray:
    """A plane's samples (`unit` bytes a position) as rows of bytes, without each row's padding."""
    whole = np.frombuffer(plane, np.uint8)[:plane.height * plane.line_size].reshape(plane.height, plane.line_size)
    return whole[:, :plane.width * unit]


def see_through(frame: av.VideoFrame) -> bool:
    """Whether the frame has an alpha plane with anything short of opaque in it. (A WebM's VP9 or
    VP8 alpha, stored beside the picture, FFmpeg's decoder leaves aside: videofile.has_transparency.)"""
    alpha = alpha_component(frame.format)
    if alpha is None:
        return False
    if frame.format.is_planar:  # its own plane, read as it is (a 4K ProRes 4444 frame, not converted)
        unit = 2 if alpha.bits > 8 else 1
        values = np.ascontiguousarray(_plane_bytes(frame.planes[alpha.plane], unit))
        return bool((values.view("<u2") if unit == 2 else values).min() < (1 << alpha.bits) - 1)
    packed = frame.to_ndarray(format="rgba64le" if alpha.bits > 8 else "rgba")[..., 3]
    return bool(packed.min() < np.iinfo(packed.dtype).max)


def _redacted(frame: av.VideoFrame, boxes: list[tuple[Region, Box]], settings: RenderSettings,
              cover_all: bool, rgb_format: str, secret: bytes) -> av.VideoFrame:
    """The frame with its boxes hidden, converted through RGB with its own colour matrix and range."""
    colour = {"src_colorspace": None if frame.colorspace == UNSPECIFIED else frame.colorspace,
              "src_color_range": frame.color_range or None}
    pixels = frame.to_ndarray(format=rgb_format, **colour)
    if frame.format.name == rgb_format:
        # Unconverted, the array is the decoder's own picture, which a decoder such as QuickTime
        # Animation draws the next frame over: painted there, the fill would stay in later frames.
        pixels = pixels.copy()
    redact_frame(pixels, boxes, settings, cover_all=cover_all, secret=secret)
    rgb = av.VideoFrame.from_ndarray(pixels, format=rgb_format)
    # FFmpeg's scaler writes no palette or Bayer mosaic (it failed, "Operation not supported", after
    # the whole search): such a frame goes to the encoder as RGB, which converts it as it does an
    # unredacted frame of the same video.
    if frame.format.has_palette or frame.format.is_bayer:
        new = rgb
    else:
        new = rgb.reformat(format=frame.format.name, dst_colorspace=colour["src_colorspace"],
                           dst_color_range=colour["src_color_range"])
    if not cover_all:
        _keep_undrawn(frame, new, drawn_mask(boxes, frame.height, frame.width))
    new.pts, new.time_base, new.duration = frame.pts, frame.time_base, frame.duration
    new.pict_type = frame.pict_type
    for tag in ("color_range", "color_primaries", "color_trc", "colorspace"):
        setattr(new, tag, getattr(frame, tag))
    return new
