"""What to hide beyond faces: licence plates, scene text, whole people.

`--hide faces,plates,text,people` picks the kinds; each becomes regions of its own kind in the
same plan, so tracking, review, rendering and the report treat them alike. Text and plates
come from one text detector (veil.textdetect): `text` hides every text line found, `plates`
only the lines shaped like a plate, with a margin wide enough to take the plate's frame and
any second line (state names, dealer frames). People come from veil.people.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from veil.detect import FAST, TRANSPARENCY_VIEWS, as_shown, exposure_gain
from veil.people import (TURNS, UPRIGHT, found_people, people_boxes, people_record, shared_person_detector,
                         turn_weights)
from veil.pixels import as_rgb8
from veil.plan import Box, Kind, Region
from veil.textdetect import MODEL_SIZE, TextBox, TextPass, detect_text, shared_text_detector, text_record
from veil.track import iou_matrix

# The option's words (plural, as a user says them) and the kind each region records.
HIDE_WORDS: dict[str, Kind] = {"faces": "face", "plates": "plate", "text": "text", "people": "person"}
WORD_OF_KIND = {kind: word for word, kind in HIDE_WORDS.items()}
DEFAULT_HIDE: tuple[Kind, ...] = ("face",)
# Ids unique within a plan: a video's face tracks are t1, t2, ... (`track.build_tracks`), so text is w.
ID_PREFIX: dict[Kind, str] = {"face": "f", "plate": "p", "text": "w", "person": "b", "speech": "s"}


def counted(kind: str, count: int) -> str:
    """'1 plate', '3 plates', '2 people': a count of regions of one kind, as a user says it."""
    return f"{count} {kind if count == 1 else WORD_OF_KIND.get(kind, kind)}"


def parse_hide(text: str) -> tuple[Kind, ...]:
    """`faces,plates` -> ("face", "plate"); a ValueError names an unknown word."""
    words = [w.strip().lower() for w in text.split(",") if w.strip()]
    unknown = [w for w in words if w not in HIDE_WORDS]
    if unknown or not words:
        raise ValueError(f"{', '.join(unknown) or 'nothing'}: --hide takes a comma list of "
                         f"{', '.join(HIDE_WORDS)}")
    return tuple(kind for word, kind in HIDE_WORDS.items() if word in words)


@dataclass(frozen=True)
class TextRule:
    """How text lines become hidden regions (margins in units of the line's height)."""

    margin: float  # every side
    # Plate-shaped: a line whose rectangle is this long for its height (a plate's characters
    # in one row), scoring at least min_score.
    min_aspect: float = 0.0
    max_aspect: float = float("inf")
    min_score: float = 0.0


# Chosen on ICDAR 2003 words and OpenALPR plates (bench/kinds.py; figures in bench/README.md).
# A plate's row up to 10 times as long as high, not 6: seen steeply from above (a window, a
# bridge, a camera on a pole) its height shrinks and its length stays, and half the plates seen
# from 60 degrees were left whole at 6; down to 1.0, not 1.2: a plate cut in two by a post leaves
# pieces of two characters (bench/README.md, plates seen from above).
TEXT_RULE = TextRule(margin=0.1)
PLATE_RULE = TextRule(margin=0.5, min_aspect=1.0, max_aspect=10.0, min_score=0.6)
# A line reaching this close to the picture's edge is taken for one the edge cuts.
EDGE_PX = 1.0

# A look at half the model's own size: a plate or sign close to the camera (filling half the
# frame or more, or bent round a bumper) has letters too large for the model's own size, which
# finds no line there, or one too faint to count as a plate; half that size finds it whole. Its
# lines shorter than `shortest` the model's own size mostly finds, and keeping them hides more
# around words already hidden; but not every one: the name under "FREE" on a protester's sign (45 px
# letters) is found at half size alone, its line 64 px high at the model's size, and was left
# readable with a floor of 160 (bench/README.md, two-line signs).
FAR_LOOK = TextPass(upscale=0.5, shortest=48.0)
# The text detector's passes per detection profile (--accurate): the accurate profile adds a look
# at twice the model's own size, which finds small, far plates and words that size misses; its
# lines tall enough for the model's own size are mostly textures (bench/kinds.py, figures in
# bench/README.md).
TEXT_PASSES: dict[str, tuple[TextPass, ...]] = {
    "fast": (MODEL_SIZE, FAR_LOOK), "accurate": (MODEL_SIZE, TextPass(upscale=2.0, tallest=48.0), FAR_LOOK)}
# Video keeps the model's own size whatever the profile (a larger look on every sampled frame
# would multiply the detection pass's time), with the look at half that size: a sign the camera
# comes close to has letters too large for the model's own size, and a quarter of the pixels costs
# little (bench/README.md).
VIDEO_TEXT_PASSES = (MODEL_SIZE, FAR_LOOK)
# Boxes of one kind overlapping this much (IoU) are one line seen by two passes: they become
# one region covering both.
SAME_LINE_IOU = 0.5


def text_passes(profile_name: str) -> tuple[TextPass, ...]:
    return TEXT_PASSES.get(profile_name, TEXT_PASSES["fast"])


def is_plate_shaped(line: TextBox, width: int, height: int, rule: TextRule = PLATE_RULE) -> bool:
    """A plate's row of characters, by its shape. The picture's edge may cut a plate short: the top
    or bottom edge cuts its rows, so it looks longer for its height than a plate (no upper bound);
    the left or right edge cuts its characters, so it looks shorter (no lower bound). A parked car
    half out of the frame keeps its plate hidden."""
    if line.score < rule.min_score:
        return False
    rows_cut = line.y0 <= EDGE_PX or line.y1 >= height - EDGE_PX
    characters_cut = line.x0 <= EDGE_PX or line.x1 >= width - EDGE_PX
    aspect = line.long_side / max(line.short_side, 1e-6)
    return (characters_cut or aspect >= rule.min_aspect) and (rows_cut or aspect <= rule.max_aspect)


def widened(line: TextBox, margin: float, width: int, height: int) -> Box:
    """The line's box with `margin` line heights on every side, clipped to the image."""
    pad = margin * line.short_side
    return Box(round(max(0.0, line.x0 - pad), 1), round(max(0.0, line.y0 - pad), 1),
               round(min(float(width), line.x1 + pad), 1), round(min(float(height), line.y1 + pad), 1),
               "detected", round(line.score, 3))


def text_boxes(lines: list[TextBox], hide: tuple[Kind, ...], width: int, height: int) -> list[tuple[Kind, Box]]:
    """Each text line as the kind it is hidden as: a plate where plates are asked for and it
    has a plate's shape, else text where text is asked for, else nothing."""
    found: list[tuple[Kind, Box]] = []
    for line in lines:
        if "plate" in hide and is_plate_shaped(line, width, height):
            found.append(("plate", widened(line, PLATE_RULE.margin, width, height)))
        elif "text" in hide:
            found.append(("text", widened(line, TEXT_RULE.margin, width, height)))
    return _merged(found)


def _merged(found: list[tuple[Kind, Box]]) -> list[tuple[Kind, Box]]:
    """Boxes of one kind that are one line seen twice (IoU >= SAME_LINE_IOU) as one box covering
    both, so a merged box hides every pixel either did."""
    kept: list[tuple[Kind, Box]] = []
    for kind, box in found:
        same_kind = [i for i, (other_kind, _) in enumerate(kept) if other_kind == kind]
        overlaps = iou_matrix([box], [kept[i][1] for i in same_kind])[0] >= SAME_LINE_IOU if same_kind else []
        first = next((i for i, overlap in zip(same_kind, overlaps) if overlap), None)
        if first is None:
            kept.append((kind, box))
            continue
        other = kept[first][1]
        kept[first] = (kind, Box(min(box.x0, other.x0), min(box.y0, other.y0), max(box.x1, other.x1),
                                 max(box.y1, other.y1), "detected", max(box.score, other.score)))
    return kept


def seen_once(people: list[Box]) -> list[Box]:
    """People found in several views of one picture (turned, or a transparent one as viewers may
    show it), each once: boxes of one person in two views merged as `_merged` merges a line seen twice."""
    return [box for _, box in _merged([("person", person) for person in people])]


TEXT_KINDS: tuple[Kind, ...] = ("plate", "text")  # the kinds the text detector finds


def wants_text(hide: tuple[Kind, ...]) -> bool:
    return any(kind in hide for kind in TEXT_KINDS)


def looks_for_faces(hide: tuple[Kind, ...]) -> bool:
    """Whether faces are looked for: where --hide names them, or people (a body for each face
    whose person the person detector missed)."""
    return "face" in hide or "person" in hide


@dataclass
class FrameFinds:
    """What `frame_boxes` found in one frame: boxes by kind, and, where people were looked for in
    the turned views, how much each view's people stand up (`people.turn_weights`)."""

    boxes: dict[Kind, list[Box]]
    people_turns: dict[int, float] = field(default_factory=dict)


def frame_boxes(rgb: np.ndarray, hide: tuple[Kind, ...], scale_x: float, scale_y: float,
                passes: tuple[TextPass, ...], threads: int | None = None, copy: int = 0,
                text: bool = True, turned: bool = True, people: list[tuple[int, Box]] | None = None) -> FrameFinds:
    """Boxes of plates, text and detected people in one video frame (`rgb`, the frame scaled by
    1 / `scale_x` and 1 / `scale_y`; full size where text is looked for), in full-frame pixels,
    found by the `copy`-th sessions with `threads` threads (None: the default; see models.shared).
    Without `text` the text detector does not run and plates and text are not listed: the frame was
    not looked at for them. `turned`: people are looked for in the frame turned a quarter, half
    and three quarters too; `people`: those already found so (people.found_people, in `rgb`'s
    pixels). (Bodies under faces come from the face tracks: veil.video.)"""
    height, width = rgb.shape[:2]
    views = as_shown(rgb)  # an animation's transparent frame: as viewers may show it, too
    found = FrameFinds({kind: [] for kind in hide if kind != "face" and (text or kind not in TEXT_KINDS)})
    if text and wants_text(hide):
        lines = [line for view in views for line in detect_text(view, passes, shared_text_detector(threads, copy))]
        for kind, box in text_boxes(lines, hide, width, height):
            found.boxes[kind].append(_scaled(box, scale_x, scale_y))
    if "person" in hide:
        if people is None:
            detector = shared_person_detector(threads, copy)
            people = [person for view in views for person in found_people(view, detector, TURNS if turned else UPRIGHT)]
        found.boxes["person"] = [_scaled(box, scale_x, scale_y) for box in seen_once([box for _, box in people])]
        if turned:
            found.people_turns = turn_weights(people)
    return found


def _scaled(box: Box, sx: float, sy: float) -> Box:
    return Box(box.x0 * sx, box.y0 * sy, box.x1 * sx, box.y1 * sy, box.origin, box.score)


def kinds_record(hide: tuple[Kind, ...], width: int, height: int, passes: tuple[TextPass, ...],
                 people_turned_every: int | None = None, standing: list[tuple[int, int, int]] | None = None) -> dict:
    """What finding plates, text and people runs on an image of this size, for the plan and its
    report (`people_turned_every`: as `people.people_record`'s `turned_every`; `standing`: a video's
    or an animation's shots whose bodies from faces run along a turn, as people.shot_standing_turns)."""
    record: dict = {"hide": list(hide)}
    if wants_text(hide):
        record["text"] = {**text_record(width, height, passes), "same_line_iou": SAME_LINE_IOU,
                          "text_margin": TEXT_RULE.margin,
                          "plate_margin": PLATE_RULE.margin,
                          "plate_aspect": [PLATE_RULE.min_aspect, PLATE_RULE.max_aspect],
                          "plate_score": PLATE_RULE.min_score,
                          # A line this close to the top or bottom edge has no upper bound on its
                          # plate aspect, to the left or right edge no lower one (a plate cut short).
                          "plate_cut_by_edge_within_px": EDGE_PX}
    if "person" in hide:
        record["people"] = {**people_record(people_turned_every), "brightened_when_dark": False}
        if standing is not None:
            record["people"]["standing_turns"] = [{"frames": [first, last], "turn": turn}
                                                  for first, last, turn in standing]
    return record


def photo_regions(pixels: np.ndarray, hide: tuple[Kind, ...], faces: list[Region], passes: tuple[TextPass, ...],
                  people_found: list[list[tuple[int, Box]] | None] | None = None) -> tuple[list[Region], dict]:
    """The regions of every kind but faces (already found) in one photo, and what ran to find them
    (`passes`: the text detector's; `people_found`: the people each of its views showed the face
    search, where it has them: `detect.Picture.people_as_given`)."""
    height, width = pixels.shape[:2]
    # A transparent photo as viewers may show it, too: its lettering may be drawn in its alpha alone.
    views = as_shown(pixels)
    regions: list[Region] = []
    found: list[tuple[Kind, Box]] = []
    if wants_text(hide):
        found += text_boxes([line for view in views for line in detect_text(view, passes)], hide, width, height)
    if "person" in hide:
        people, standing_turn = people_boxes(views, [face.boxes[0] for face in faces], people_found)
        found += [("person", box) for box in seen_once(people)]
    for kind, box in found:
        regions.append(Region(id=f"{ID_PREFIX[kind]}{len(regions) + 1}", source="detector", shape="box",
                              boxes={0: box}, kind=kind))
    record = kinds_record(hide, width, height, passes)
    for kind in ("text", "people"):
        if kind in record and len(views) > 1:
            record[kind]["transparency_views"] = list(TRANSPARENCY_VIEWS)
    if "person" in hide:  # the turn judged to stand the picture's people up (bodies from faces run that way too)
        record["people"]["standing_turn"] = standing_turn
    gains = [exposure_gain(as_rgb8(view), FAST.dark_below) for view in views] if wants_text(hide) else []
    if any(gain != 1.0 for gain in gains):  # as `detect_text` brightened each view
        record["text"]["exposure_gain"] = [round(gain, 3) for gain in gains]
    return regions, record
