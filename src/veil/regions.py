"""Regions shaped around what a detector found: the head around a face box.

Photos, animation frames and video frames all hide the same head around a face, so the
margins live here, beside the region they make, not in a detector.
"""

from __future__ import annotations

from veil.detect import Detection
from veil.plan import Box, Region

# How far the hidden region reaches beyond the detector's face box, as fractions of
# the face's width (sides) and height (above: hair and forehead; below: chin and jaw).
# The face box alone leaves hair and outline, which still carry identity; these margins
# were chosen on LFW re-identification and WIDER FACE coverage (bench/README.md).
HEAD_MARGIN_SIDE = 0.4
HEAD_MARGIN_TOP = 0.6
HEAD_MARGIN_BOTTOM = 0.3


def head_box(face: Detection, scale: float = 1.0) -> tuple[float, float, float, float]:
    """The head-sized region to hide around a detected face box."""
    w, h = face.x1 - face.x0, face.y1 - face.y0
    return (
        face.x0 - HEAD_MARGIN_SIDE * scale * w,
        face.y0 - HEAD_MARGIN_TOP * scale * h,
        face.x1 + HEAD_MARGIN_SIDE * scale * w,
        face.y1 + HEAD_MARGIN_BOTTOM * scale * h,
    )


def head_record() -> dict:
    """The margins for the plan and its audit report: a face region's box is the head around
    the detector's face box, not the detector's box."""
    return {"head_from_face": {"side": HEAD_MARGIN_SIDE, "above": HEAD_MARGIN_TOP, "below": HEAD_MARGIN_BOTTOM,
                               "of": "the face box's width (side) and height (above, below)"}}


def face_region(region_id: str, face: Detection, frame: int = 0) -> Region:
    """A detector region hiding the head around one detected face.

    Coordinates and score are rounded as a plan file stores them, so that rendering a saved
    plan again hides the same pixels as rendering this one.
    """
    return Region(id=region_id, source="detector", boxes={frame: stored_head_box(face)})


def stored_head_box(face: Detection) -> Box:
    """The head around a face as a plan file stores it (coordinates to a tenth of a pixel, score
    to three places), so that rendering a saved plan again hides the same pixels."""
    x0, y0, x1, y1 = (round(v, 1) for v in head_box(face))
    return Box(x0, y0, x1, y1, "detected", round(face.score, 3))
