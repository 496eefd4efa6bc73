"""Whole people: SSDLite-MobileNetV2 fine-tuned on persons (ONNX, run by onnxruntime), plus a body
derived from every face whose person the detector missed, so `people` never hides less than `faces`.

The network sees the whole image at 300x300 (its training size), which finds people who fill a
fair part of the frame; a crowd's small figures are found through their faces instead.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from veil.models import model_sha256, onnx_session, shared
from veil.pixels import as_rgb8
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
# A picture lies on its side (or upside down) when a turned view's people, counted from this score,
# score this many times the upright view's: bodies derived from faces then run that way as well.
STANDING_SCORE = 0.5
STANDING_MARGIN = 1.5
STANDING_RULE = {"score_from": STANDING_SCORE, "times_upright": STANDING_MARGIN}  # as the plan records it


class PersonDetector:
    """An onnxruntime session over the person detector; safe to share between threads."""

    def __init__(self, providers: list[str] | None = None, threads: int | None = None):
        self.session = onnx_session(MODEL_NAME, providers, threads)
        self.input_name = self.session.get_inputs()[0].name
        self.outputs = ["detection_boxes:0", "detection_scores:0"]

    def people(self, rgb: np.ndarray, turns: tuple[int, ...]) -> list[tuple[int, np.ndarray, np.ndarray]]:
        """For each of `turns`, the RGB image seen turned that many quarter turns counter-clockwise
        (np.rot90; all views in one batch): the turn, and the boxes (y0, x0, y1, x1, 0-1 of that
        view) and scores found in it."""
        small = cv2.resize(rgb, (INPUT_SIDE, INPUT_SIDE), interpolation=cv2.INTER_AREA)
        batch = np.stack([np.rot90(small, turn) for turn in turns])
        boxes, scores = self.session.run(self.outputs, {self.input_name: batch})
        return list(zip(turns, boxes, scores))


def turned_box(box: Box, width: int, height: int, turns: int) -> Box:
    """The box's place in its width x height picture turned `turns` quarter turns counter-clockwise
    (np.rot90: a point (x, y) goes to (y, width - x))."""
    for _ in range(turns % 4):
        box = Box(box.y0, width - box.x1, box.y1, width - box.x0, box.origin, box.score)
        width, height = height, width
    return box


def shared_person_detector(threads: int | None = None, copy: int = 0) -> PersonDetector:
    return shared(PersonDetector, threads, copy)


def found_people(image: np.ndarray, detector: PersonDetector | None = None,
                 turns: tuple[int, ...] = TURNS) -> list[tuple[int, Box]]:
    """People in an RGB(A)/grayscale image seen turned by each of `turns` quarter turns, with a
    margin, in its pixel coordinates, each with the turn it was found in (one person seen in two
    turns is there twice)."""
    rgb = as_rgb8(image)
    height, width = rgb.shape[:2]
    found = []
    for turn, boxes, scores in (detector or shared_person_detector()).people(rgb, turns):
        view_w, view_h = (height, width) if turn % 2 else (width, height)
        for (y0, x0, y1, x1), score in zip(boxes.tolist(), scores.tolist()):  # plain floats: the plan is JSON
            if score < SCORE:
                continue
            box = turned_box(Box(x0 * view_w, y0 * view_h, x1 * view_w, y1 * view_h), view_w, view_h, -turn)
            mx, my = MARGIN * box.width, MARGIN * box.height
            found.append((turn, Box(round(max(0.0, box.x0 - mx), 1), round(max(0.0, box.y0 - my), 1),
                                    round(min(float(width), box.x1 + mx), 1), round(min(float(height), box.y1 + my), 1),
                                    "detected", round(score, 3))))
    return found


def detect_people(image: np.ndarray, detector: PersonDetector | None = None,
                  turns: tuple[int, ...] = TURNS) -> list[Box]:
    """`found_people`'s boxes alone."""
    return [box for _, box in found_people(image, detector, turns)]


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


def people_boxes(views: list[np.ndarray], heads: list[Box],
                 known: list[list[tuple[int, Box]] | None] | None = None) -> tuple[list[Box], int]:
    """Every person detected in any of a picture's views (`detect.as_shown`), and a derived body
    for each head no detected person holds: below it, and along the turn that stands the
    picture's people up where that is not upright (`standing_turn`, returned too). `known`: each
    view's `found_people` where the caller has it already (None: found here)."""
    height, width = views[0].shape[:2]
    known = known or [None] * len(views)
    found = [person for view, done in zip(views, known) for person in (found_people(view) if done is None else done)]
    people = [holding(person, heads) for _, person in found]
    turn = standing_turn(turn_weights(found))
    derived = [body for head in heads if not any(head.share_inside(person) >= INSIDE for person in people)
               for body in bodies_from_face(head, width, height, turn)]
    return people + derived, turn


def bodies_from_face(head: Box, width: int, height: int, turn: int) -> list[Box]:
    """The body derived from a head: below it as the picture stands, and along `turn` too where
    that is not upright (a wrong turn costs area, a missing one a body across the person)."""
    return [body_below(head, width, height)] + ([body_along(head, width, height, turn)] if turn else [])


def turn_weights(found: list[tuple[int, Box]]) -> dict[int, float]:
    """The person detector's confidence in each view (`found_people`'s turns): the scores of the
    people it found there from STANDING_SCORE, summed."""
    weight = dict.fromkeys(TURNS, 0.0)
    for turn, person in found:
        if person.score is not None and person.score >= STANDING_SCORE:
            weight[turn] += person.score
    return weight


def standing_turn(weight: dict[int, float]) -> int:
    """The quarter turns (counter-clockwise) that stand a picture's people up, from `turn_weights`:
    a turn whose people score STANDING_MARGIN times the upright view's, else 0 (a close-up of one
    person scores alike in every view)."""
    best = max(weight, key=lambda turn: weight[turn])
    return best if weight[best] > 0 and weight[best] >= STANDING_MARGIN * weight.get(0, 0.0) else 0


def standing_rule_record() -> dict:
    """How `standing_turn` judges, for the plan and its audit report."""
    return {"model": MODEL_NAME, "model_sha256": model_sha256(MODEL_NAME), "input": INPUT_SIDE,
            "turns": list(TURNS), **STANDING_RULE}


def shot_standing_turns(weights: dict[int, dict[int, float]], shots: list[tuple[int, int]]) -> list[tuple[int, int, int]]:
    """The shots (first and last frame) whose people a turn stands up, with that turn: `standing_turn`
    over the summed `turn_weights` of the shot's frames looked at turned (`weights`, by frame)."""
    turned = []
    for first, last in shots:
        total = dict.fromkeys(TURNS, 0.0)
        for frame, weight in weights.items():
            if first <= frame <= last:
                for turn, value in weight.items():
                    total[turn] += value
        if turn := standing_turn(total):
            turned.append((first, last, turn))
    return turned


def body_along(head: Box, width: int, height: int, turns: int) -> Box:
    """The body below a head as the picture stands once turned `turns` quarter turns, in the
    picture's own coordinates."""
    view_w, view_h = (height, width) if turns % 2 else (width, height)
    body = body_below(turned_box(head, width, height, turns), view_w, view_h)
    return turned_box(body, view_w, view_h, -turns)


def holding(person: Box, heads: list[Box]) -> Box:
    """The person's box grown to hold whole each head that lies mostly inside it: a detected
    person's box may cut through the top of its head, which `faces` would have hidden."""
    inside = [head for head in heads if head.share_inside(person) >= INSIDE]
    return Box(min([person.x0, *(h.x0 for h in inside)]), min([person.y0, *(h.y0 for h in inside)]),
               max([person.x1, *(h.x1 for h in inside)]), max([person.y1, *(h.y1 for h in inside)]),
               person.origin, person.score)


def people_record(turned_every: int | None = None) -> dict:
    """What finding people runs, for the plan and its audit report; `turned_every`: the frames of
    a video or an animation looked at turned (every n-th searched; 0: none, and bodies from faces
    run below them only), None for a photo (always)."""
    turning = {"turns": list(TURNS)} if turned_every != 0 else {"turns": list(UPRIGHT)}
    if turned_every:  # and a shot's first and last frames, which get every view
        turning.update(turned_every_nth_sampled_frame=turned_every, shot_ends_always=True)
    if turned_every != 0:  # bodies from faces also run along the turn that stands the people up
        turning["standing_turn_rule"] = {**STANDING_RULE, **({"judged_over": "each shot"} if turned_every else {})}
    return {"model": MODEL_NAME, "model_sha256": model_sha256(MODEL_NAME), "input": INPUT_SIDE, "score": SCORE,
            "margin": MARGIN, **turning, "body_from_face": [BODY_WIDTH, BODY_HEIGHT], "face_inside": INSIDE}
