"""Whole people: SSDLite-MobileNetV2 fine-tuned on persons (ONNX, run by onnxruntime), plus a body
derived from every face whose person the detector missed, so `people` never hides less than `faces`.

The network sees the whole image at 300x300 (its training size), which finds people who fill a
fair part of the frame; a crowd's small figures are found through their faces instead.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from veil.detect import as_rgb8
from veil.models import model_sha256, onnx_session, shared
from veil.plan import Box

MODEL_NAME = "ssdlite_person.onnx"
INPUT_SIDE = 300
SCORE = 0.3  # lowest person score kept
MARGIN = 0.05  # of the box's width and height, every side: limbs at the edge of a loose box
# A body below a head box, in head-box widths and heights from the head's top: the 75th
# percentile of detected people around one detected face each on WIDER FACE dev images
# (bench/kinds.py --body-ratios; figures in bench/README.md). A percentile above the median,
# since a body cut short leaves the rest of the person visible.
BODY_WIDTH = 2.6
BODY_HEIGHT = 5.0
# A face counts as inside a detected person when this share of its head box is.
INSIDE = 0.9
# Quarter turns (counter-clockwise) of the picture the detector sees: trained on people standing,
# it finds few lying down or upside down, nor anyone in a picture stored on its side. Video looks
# turned on the frames RetinaFace's turned views run on (veil.video); tracking carries the rest.
TURNS = (0, 1, 2, 3)
UPRIGHT = (0,)


class PersonDetector:
    """An onnxruntime session over the person detector; safe to share between threads."""

    def __init__(self, providers: list[str] | None = None, threads: int | None = None):
        self.session = onnx_session(MODEL_NAME, providers, threads)
        self.input_name = self.session.get_inputs()[0].name
        self.outputs = ["detection_boxes:0", "detection_scores:0"]

    def people(self, rgb: np.ndarray, turns: tuple[int, ...] = UPRIGHT) -> tuple[np.ndarray, np.ndarray]:
        """Boxes (y0, x0, y1, x1, 0-1 of the upright image) and scores for one RGB image, seen
        turned by each of `turns` quarter turns, all views in one batch."""
        small = cv2.resize(rgb, (INPUT_SIDE, INPUT_SIDE), interpolation=cv2.INTER_AREA)
        batch = np.stack([np.rot90(small, turn) for turn in turns])
        boxes, scores = self.session.run(self.outputs, {self.input_name: batch})
        return np.concatenate([unturned(view, turn) for view, turn in zip(boxes, turns)]), scores.reshape(-1)


def unturned(boxes: np.ndarray, turns: int) -> np.ndarray:
    """Boxes (y0, x0, y1, x1, 0-1) found in a picture turned `turns` quarter turns counter-clockwise
    (np.rot90), in the picture's own: each quarter turn undone takes a point (x, y) of the turned
    picture to (1 - y, x)."""
    for _ in range(turns % 4):
        y0, x0, y1, x1 = boxes.T
        boxes = np.stack([x0, 1 - y1, x1, 1 - y0], axis=1)
    return boxes


def shared_person_detector(threads: int | None = None, copy: int = 0) -> PersonDetector:
    return shared(PersonDetector, threads, copy)


def detect_people(image: np.ndarray, detector: PersonDetector | None = None,
                  turns: tuple[int, ...] = TURNS) -> list[Box]:
    """People in an RGB(A)/grayscale image seen turned by each of `turns` quarter turns, with a
    margin, in its pixel coordinates (one person seen in two turns is there twice)."""
    rgb = as_rgb8(image)
    height, width = rgb.shape[:2]
    boxes, scores = (detector or shared_person_detector()).people(rgb, turns)
    found = []
    for row, score in zip(boxes.tolist(), scores.tolist()):  # plain floats: the plan is JSON
        if score < SCORE:
            continue
        y0, x0, y1, x1 = row
        mx, my = MARGIN * (x1 - x0) * width, MARGIN * (y1 - y0) * height
        found.append(Box(round(max(0.0, x0 * width - mx), 1), round(max(0.0, y0 * height - my), 1),
                         round(min(float(width), x1 * width + mx), 1), round(min(float(height), y1 * height + my), 1),
                         "detected", round(score, 3)))
    return found


def body_below(head: Box, width: int, height: int) -> Box:
    """A body under a head: centred below it, as wide as BODY_WIDTH heads, the head included."""
    cx, w, h = (head.x0 + head.x1) / 2, head.width * BODY_WIDTH, head.height * BODY_HEIGHT
    # Within the frame, and never inside out (a head carried past the frame's edge leaves its
    # body empty there, not turned over).
    x0 = min(float(width), max(0.0, min(head.x0, cx - w / 2)))
    y0 = min(float(height), max(0.0, head.y0))
    x1 = max(x0, min(float(width), max(head.x1, cx + w / 2)))
    y1 = max(y0, min(float(height), head.y0 + h))
    # Rounded outwards to the plan's tenth of a pixel, so the body holds the whole head.
    return Box(math.floor(10 * x0) / 10, math.floor(10 * y0) / 10, math.ceil(10 * x1) / 10, math.ceil(10 * y1) / 10,
               head.origin, head.score)


def people_boxes(views: list[np.ndarray], heads: list[Box]) -> list[Box]:
    """Every person detected in any of a picture's views (`detect.as_shown`), and a derived body
    for each head no detected person holds."""
    height, width = views[0].shape[:2]
    people = [holding(person, heads) for view in views for person in detect_people(view)]
    derived = [body_below(head, width, height) for head in heads
               if not any(head.share_inside(person) >= INSIDE for person in people)]
    return people + derived


def holding(person: Box, heads: list[Box]) -> Box:
    """The person's box grown to hold whole each head that lies mostly inside it: a detected
    person's box may cut through the top of its head, which `faces` would have hidden."""
    inside = [head for head in heads if head.share_inside(person) >= INSIDE]
    return Box(min([person.x0, *(h.x0 for h in inside)]), min([person.y0, *(h.y0 for h in inside)]),
               max([person.x1, *(h.x1 for h in inside)]), max([person.y1, *(h.y1 for h in inside)]),
               person.origin, person.score)


def people_record(turned_every: int | None = None) -> dict:
    """What finding people runs, for the plan and its audit report; `turned_every`: a video's
    sampled frames looked at turned (every n-th; 0: none), None for a photo (always)."""
    turning = {"turns": list(TURNS)} if turned_every != 0 else {"turns": list(UPRIGHT)}
    if turned_every:
        turning["turned_every_nth_sampled_frame"] = turned_every
    return {"model": MODEL_NAME, "model_sha256": model_sha256(MODEL_NAME), "input": INPUT_SIDE, "score": SCORE,
            "margin": MARGIN, **turning, "body_from_face": [BODY_WIDTH, BODY_HEIGHT], "face_inside": INSIDE}
