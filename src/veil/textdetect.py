"""Scene-text detection: PaddleOCR's PP-OCRv6 small detector (ONNX, run by onnxruntime) and its
DB post-processing, written here so that nothing of rapidocr's pipeline (which fetches models
from the network) runs. Text is found, never read: there is no recognition model.

The network gives a text-probability map; DB post-processing binarises it, takes each connected
region's minimum-area rectangle, keeps those whose mean probability is high enough, and expands
them ("unclip") by area x ratio / perimeter, since the network is trained on shrunk text cores.
The settings are the model's published ones (rapidocr's config.yaml for PP-OCRv6).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np

from veil.detect import FAST, exposed, exposure_record, tile_starts
from veil.models import model_sha256, onnx_session, shared
from veil.pixels import as_rgb8

MODEL_NAME = "ppocrv6_det_small.onnx"
STRIDE = 32
SHORT_SIDE = 736  # the model's input: shorter side scaled up to at least this
MAX_ENLARGE = 8.0  # ... but no more than this many times (a spacer, a rule one pixel high)
BINARISE = 0.3  # probability above which a pixel is text
BOX_SCORE = 0.5  # mean probability a box must reach
UNCLIP = 1.6
MIN_SIDE = 3  # map pixels: thinner boxes are noise
# Tiles bound memory and time on large photos: an input of more pixels than one TILE x TILE tile
# is cut into tiles (a 1080p frame, wider than a tile but smaller, is looked at whole: two tiles
# would overlap by more than half). The overlap must exceed the height of the tallest text line
# meant to be found whole (a longer line split by a tile edge is still hidden, as two boxes).
TILE = 1536
TILE_OVERLAP = 256


@dataclass(frozen=True)
class TextBox:
    """One text line: its axis-aligned bounds in image pixels, score, and the sides of its
    (possibly rotated) rectangle, which say its shape whatever its slant."""

    x0: float
    y0: float
    x1: float
    y1: float
    score: float
    long_side: float
    short_side: float


@dataclass(frozen=True)
class TextPass:
    """One look of the text detector: the image enlarged `upscale` times beyond the model's own
    input size. A closer look also takes larger textures for text, and lines tall enough for the
    model's own size are that look's to find: it keeps only the lines shorter than `tallest`
    pixels at the model's own size (None: every line). A look from farther away keeps only the
    lines at least `shortest` pixels tall at the model's own size, which that size sees too close
    to find whole (None: every line)."""

    upscale: float = 1.0
    tallest: float | None = None
    shortest: float | None = None


MODEL_SIZE = TextPass()


class TextDetector:
    """An onnxruntime session over the PP-OCRv6 detector; safe to share between threads."""

    def __init__(self, providers: list[str] | None = None, threads: int | None = None):
        self.session = onnx_session(MODEL_NAME, providers, threads)
        self.input_name = self.session.get_inputs()[0].name

    def probability(self, rgb: np.ndarray) -> np.ndarray:
        """The text-probability map of an RGB image whose sides are multiples of STRIDE."""
        blob = (rgb.astype(np.float32) / 255.0 - 0.5) / 0.5
        return self.session.run(None, {self.input_name: blob.transpose(2, 0, 1)[None]})[0][0, 0]


def shared_text_detector(threads: int | None = None, copy: int = 0) -> TextDetector:
    return shared(TextDetector, threads, copy)


def input_scale(width: int, height: int, upscale: float = 1.0) -> float:
    """How much the image is enlarged for the network: shorter side to SHORT_SIDE at least, but no
    more than MAX_ENLARGE times (a 100 x 2 px spacer grew to 36,800 x 736 px, a minute of tiles and
    half a gigabyte, for nothing a reader could read). Not the longer side's length: a banner's
    small print needs its enlargement however long the banner."""
    return max(1.0, min(SHORT_SIDE / min(width, height), MAX_ENLARGE)) * upscale


def _tiles(width: int, height: int) -> list[tuple[int, int, int, int]]:
    """(x, y, width, height) of the tiles an input of this size is looked at in."""
    if width * height <= TILE * TILE:
        return [(0, 0, width, height)]
    return [(x, y, min(TILE, width), min(TILE, height))
            for y in tile_starts(height, TILE, TILE_OVERLAP) for x in tile_starts(width, TILE, TILE_OVERLAP)]


def _unclipped(rect: tuple) -> tuple:
    """DB's unclip of a rectangle: every side pushed out by area x UNCLIP / perimeter (the round
    corners of the offset polygon leave its minimum-area rectangle exactly this)."""
    (cx, cy), (w, h), angle = rect
    distance = w * h * UNCLIP / (2 * (w + h))
    return (cx, cy), (w + 2 * distance, h + 2 * distance), angle


def boxes_from_map(probability: np.ndarray) -> list[tuple[np.ndarray, float, float, float]]:
    """DB post-processing: (corners, score, long side, short side) per text line, in map pixels."""
    mask = cv2.dilate((probability > BINARISE).astype(np.uint8), np.ones((2, 2), np.uint8))
    contours, _ = cv2.findContours(mask, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    found = []
    for contour in contours:
        rect = cv2.minAreaRect(contour)
        if min(rect[1]) < MIN_SIDE:
            continue
        corners = cv2.boxPoints(rect)
        x0, y0 = np.floor(corners.min(0)).astype(int).clip(0)
        x1, y1 = np.ceil(corners.max(0)).astype(int)
        window = probability[y0:y1 + 1, x0:x1 + 1]
        inside = np.zeros(window.shape, np.uint8)
        cv2.fillPoly(inside, [np.round(corners - (x0, y0)).astype(np.int32)], 1)
        score = cv2.mean(window, inside)[0]
        if score < BOX_SCORE:
            continue
        rect = _unclipped(rect)
        if min(rect[1]) < MIN_SIDE + 2:
            continue
        found.append((cv2.boxPoints(rect), float(score), float(max(rect[1])), float(min(rect[1]))))
    return found


def detect_text(image: np.ndarray, passes: tuple[TextPass, ...], detector: TextDetector | None = None) -> list[TextBox]:
    """Find text lines in an RGB(A)/grayscale image array; boxes are in its pixel coordinates.
    Every pass's lines are returned together (a line seen by two passes is there twice)."""
    detector = detector or shared_text_detector()
    # A dark picture is shown brightened, by the face detectors' rule: the net misses plates and
    # words in a night shot that it finds once the picture is exposed as a camera would.
    rgb = exposed(as_rgb8(image), FAST.dark_below)  # the same for every profile
    height, width = rgb.shape[:2]
    model_scale = input_scale(width, height)
    found: list[TextBox] = []
    for look in passes:
        lines = _text_pass(rgb, look.upscale, detector)
        if look.tallest is not None:
            lines = [line for line in lines if line.short_side * model_scale < look.tallest]
        if look.shortest is not None:
            lines = [line for line in lines if line.short_side * model_scale >= look.shortest]
        found += lines
    return found


def _input_size(width: int, height: int, upscale: float) -> tuple[int, int]:
    scale = input_scale(width, height, upscale)
    return max(STRIDE, round(width * scale / STRIDE) * STRIDE), max(STRIDE, round(height * scale / STRIDE) * STRIDE)


def _text_pass(rgb: np.ndarray, upscale: float, detector: TextDetector) -> list[TextBox]:
    height, width = rgb.shape[:2]
    sw, sh = _input_size(width, height, upscale)
    resized = cv2.resize(rgb, (sw, sh), interpolation=cv2.INTER_LINEAR)
    fx, fy = width / sw, height / sh
    boxes: list[TextBox] = []
    for tx, ty, tw, th in _tiles(sw, sh):
        probability = detector.probability(resized[ty:ty + th, tx:tx + tw])
        for corners, score, long_side, short_side in boxes_from_map(probability):
            xs, ys = (corners[:, 0] + tx) * fx, (corners[:, 1] + ty) * fy
            boxes.append(TextBox(
                float(xs.min().clip(0, width)), float(ys.min().clip(0, height)),
                float(xs.max().clip(0, width)), float(ys.max().clip(0, height)),
                score, long_side * fx, short_side * fy,
            ))
    return boxes


def text_record(width: int, height: int, passes: tuple[TextPass, ...]) -> dict:
    """What `detect_text` runs on an image of this size, for the plan and its audit report."""
    return {
        "model": MODEL_NAME,
        "model_sha256": model_sha256(MODEL_NAME),
        "passes": [_pass_record(width, height, look) for look in passes],
        "max_enlarge": MAX_ENLARGE,
        "tile": TILE,
        "tile_overlap": TILE_OVERLAP,
        "binarise": BINARISE,
        "box_score": BOX_SCORE,
        "unclip": UNCLIP,
        "brightened_when_dark": exposure_record(FAST),
    }


def _pass_record(width: int, height: int, look: TextPass) -> dict:
    sw, sh = _input_size(width, height, look.upscale)
    return {**asdict(look), "scale": round(input_scale(width, height, look.upscale), 4),
            "input": [sw, sh], "tiles": len(_tiles(sw, sh))}
