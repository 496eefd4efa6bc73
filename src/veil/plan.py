"""The redaction plan: the one data model every stage reads and writes.

A plan lists, for each photo or video, the regions to hide. A region is a track: a box
per frame (a photo has frame 0 only), with where each box came from (detector, tracker
interpolation, extension, reviewer). Detection and tracking create plans, review edits
them, rendering applies them, the report describes them. Plans are versioned JSON,
validated against `plan.schema.json` when loaded.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import jsonschema

PLAN_FORMAT = "veil-plan"
PLAN_VERSION = 1

Shape = Literal["ellipse", "box"]
# Where a box came from. "detected": the face detector saw it in this frame;
# "interpolated": the tracker filled a gap between detections; "extended": the tracker
# kept the mask on before the first / after the last detection; "reviewer": drawn or
# moved by a person; "unanalysed": the frame could not be analysed, so all of it is hidden.
Origin = Literal["detected", "interpolated", "extended", "reviewer", "unanalysed"]


class PlanError(ValueError):
    """A plan file that is not a valid veil plan."""


@dataclass(slots=True)  # one per face per frame: an hour of video holds hundreds of thousands
class Box:
    x0: float
    y0: float
    x1: float
    y1: float
    origin: Origin = "detected"
    score: float | None = None

    @property
    def width(self) -> float:
        return self.x1 - self.x0

    @property
    def height(self) -> float:
        return self.y1 - self.y0

    def clipped(self, width: int, height: int) -> Box:
        return Box(
            max(0.0, min(self.x0, width)), max(0.0, min(self.y0, height)),
            max(0.0, min(self.x1, width)), max(0.0, min(self.y1, height)),
            self.origin, self.score,
        )


@dataclass
class Region:
    """Something to hide, followed over frames. Boxes are in upright image pixels."""

    id: str
    source: str  # what created it: "detector", "reviewer"
    shape: Shape = "ellipse"
    boxes: dict[int, Box] = field(default_factory=dict)
    keep_visible: bool = False  # a reviewer decided this person may be shown
    reason: str | None = None  # required when keep_visible is set

    @property
    def first_frame(self) -> int:
        return min(self.boxes)

    @property
    def last_frame(self) -> int:
        return max(self.boxes)


@dataclass
class Edit:
    """One reviewer action, kept for the audit report."""

    time: str
    media: str
    action: str
    region: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None


@dataclass
class MediaPlan:
    path: str
    kind: Literal["image", "video"]
    width: int
    height: int
    frame_count: int = 1
    sha256: str | None = None
    regions: list[Region] = field(default_factory=list)
    # Frames the detector could not analyse: rendering covers them completely.
    unanalysed_frames: list[int] = field(default_factory=list)
    # Frames the user chose to leave as they are, unanalysed (video --only-range): they are
    # rendered untouched, and the plan and report say so, so a reviewer can see the gap.
    unchecked_frames: list[int] = field(default_factory=list)
    # Frames where a scene cut was found; tracks never cross one.
    scene_cuts: list[int] = field(default_factory=list)
    # Per-frame presentation times in seconds (video only), for the review timeline.
    frame_times: list[float] = field(default_factory=list)

    def boxes_by_frame(self) -> dict[int, list[tuple[Region, Box]]]:
        """Index of the boxes to hide in each frame (regions kept visible are left out)."""
        index: dict[int, list[tuple[Region, Box]]] = {}
        for region in self.regions:
            if region.keep_visible:
                continue
            for frame, box in region.boxes.items():
                index.setdefault(frame, []).append((region, box))
        return index

    def region(self, region_id: str) -> Region:
        for region in self.regions:
            if region.id == region_id:
                return region
        raise KeyError(region_id)

    def new_region_id(self, prefix: str) -> str:
        taken = {r.id for r in self.regions}
        n = len(self.regions) + 1
        while f"{prefix}{n}" in taken:
            n += 1
        return f"{prefix}{n}"


# Pixelate's default: blocks across a hidden region. The issue allows at most 8; 6 measured best on
# LFW (bench/reid_lfw.py, each image once as probe, 722 probes, chance 2): against a gallery
# pixelated the same way dlib's recogniser named 5 (fast) / 5 (accurate) people at 6 blocks,
# 8 / 9 at 8 blocks, and 11 at 4 blocks (fast), where colour blobs match more easily.
PIXELATE_BLOCKS = 6


@dataclass
class RenderSettings:
    """How hidden regions are drawn; stored in the plan so a re-render hides the same way.

    Fill and pixelate re-render to identical pixels; blur's random shading is drawn afresh
    for every export and stored nowhere (veil.render.shading).
    """

    mode: Literal["fill", "pixelate", "blur"] = "fill"
    color: tuple[int, int, int] = (0, 0, 0)
    blocks: int = PIXELATE_BLOCKS  # pixelate: at most this many blocks across a face


@dataclass
class Plan:
    media: list[MediaPlan] = field(default_factory=list)
    render: RenderSettings = field(default_factory=RenderSettings)
    detection: dict[str, Any] = field(default_factory=dict)  # profile, thresholds, model hash
    created: str = field(default_factory=lambda: now_iso())
    veil_version: str = ""
    edits: list[Edit] = field(default_factory=list)

    def find(self, path: str) -> MediaPlan:
        for media in self.media:
            if media.path == path:
                return media
        raise KeyError(path)

    # --- JSON -------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {
            "format": PLAN_FORMAT,
            "version": PLAN_VERSION,
            "veil_version": self.veil_version,
            "created": self.created,
            "render": {**asdict(self.render), "color": list(self.render.color)},  # JSON has no tuples
            "detection": self.detection,
            "media": [_media_to_json(m) for m in self.media],
            "edits": [asdict(e) for e in self.edits],
        }

    @classmethod
    def from_json(cls, data: Any) -> Plan:
        try:
            jsonschema.validate(data, plan_schema())
        except jsonschema.ValidationError as error:
            where = "/".join(str(p) for p in error.absolute_path) or "top level"
            raise PlanError(f"not a valid veil plan at {where}: {error.message}") from None
        render = data["render"]
        return cls(
            media=[_media_from_json(m) for m in data["media"]],
            render=RenderSettings(render["mode"], tuple(render["color"]), render["blocks"]),
            detection=data.get("detection", {}),
            created=data["created"],
            veil_version=data.get("veil_version", ""),
            edits=[Edit(**e) for e in data.get("edits", [])],
        )

    def save(self, path: Path) -> None:
        from veil.outputs import atomic_write_bytes

        atomic_write_bytes(path, json.dumps(self.to_json(), indent=1).encode())

    @classmethod
    def load(cls, path: Path) -> Plan:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise PlanError(f"cannot read plan: {error}") from None
        return cls.from_json(data)


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@lru_cache(maxsize=1)
def plan_schema() -> dict[str, Any]:
    return json.loads(resources.files("veil").joinpath("plan.schema.json").read_text())


def _box_to_json(frame: int, box: Box) -> list[Any]:
    return [frame, round(box.x0, 1), round(box.y0, 1), round(box.x1, 1), round(box.y1, 1), box.origin,
            None if box.score is None else round(box.score, 3)]


def _media_to_json(media: MediaPlan) -> dict[str, Any]:
    return {
        "path": media.path,
        "kind": media.kind,
        "width": media.width,
        "height": media.height,
        "frame_count": media.frame_count,
        "sha256": media.sha256,
        "unanalysed_frames": media.unanalysed_frames,
        "unchecked_frames": media.unchecked_frames,
        "scene_cuts": media.scene_cuts,
        "frame_times": [round(t, 6) for t in media.frame_times],
        "regions": [
            {
                "id": r.id,
                "source": r.source,
                "shape": r.shape,
                "keep_visible": r.keep_visible,
                "reason": r.reason,
                # [frame, x0, y0, x1, y1, origin, score]: compact, since an hour of
                # video holds hundreds of thousands of boxes.
                "boxes": [_box_to_json(f, b) for f, b in sorted(r.boxes.items())],
            }
            for r in media.regions
        ],
    }


def _media_from_json(data: dict[str, Any]) -> MediaPlan:
    return MediaPlan(
        path=data["path"],
        kind=data["kind"],
        width=data["width"],
        height=data["height"],
        frame_count=data["frame_count"],
        sha256=data.get("sha256"),
        unanalysed_frames=list(data.get("unanalysed_frames", [])),
        unchecked_frames=list(data.get("unchecked_frames", [])),
        scene_cuts=list(data.get("scene_cuts", [])),
        frame_times=list(data.get("frame_times", [])),
        regions=[
            Region(
                id=r["id"],
                source=r["source"],
                shape=r["shape"],
                keep_visible=r["keep_visible"],
                reason=r.get("reason"),
                boxes={b[0]: Box(b[1], b[2], b[3], b[4], b[5], b[6]) for b in r["boxes"]},
            )
            for r in data["regions"]
        ],
    )
