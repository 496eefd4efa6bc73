"""The redaction plan: the one data model every stage reads and writes.

A plan lists, for each photo or video, the regions to hide. A region is a track: a box
per frame (a photo has frame 0 only), with where each box came from (detector, tracker
interpolation, extension, reviewer). Detection and tracking create plans, review edits
them, rendering applies them, the report describes them. Plans are versioned JSON,
validated against `plan.schema.json` when loaded.
"""

from __future__ import annotations

import hashlib
import json
import math
import numbers
import os
import stat
from collections.abc import Collection
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal, get_args

import jsonschema

from veil import __version__
from veil.names import can_name_a_file, exact_names, readable_anywhere, real_path
from veil.remote import is_url

PLAN_FORMAT = "veil-plan"
# 2: per-file detection record, encoding settings, paths absolute and relative to the plan,
# whether frames outside a --start/--end range are covered, and each region's kind. Version 1
# plans still load (their regions are faces).
PLAN_VERSION = 3  # 3: boxes may be "held"

Shape = Literal["ellipse", "box"]
# Where a box came from. "detected": the face detector saw it in this frame;
# "interpolated": the tracker filled a gap between detections; "extended": the tracker
# kept the mask on before the first / after the last detection; "reviewer": drawn or
# moved by a person; "unanalysed": the frame could not be analysed, so all of it is hidden;
# "held": the tracker hid the whole frame, past a face that grew beyond it (a zoom, a close-up).
Origin = Literal["detected", "interpolated", "extended", "reviewer", "unanalysed", "held"]
# What a region hides. Every kind flows through the same plan, tracking, review, render and report.
Kind = Literal["face", "plate", "text", "person", "speech"]
VoiceMode = Literal["keep", "mute", "mute-all", "anonymise"]
RenderMode = Literal["fill", "pixelate", "blur"]


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

    def share_inside(self, outer: Box) -> float:
        """The share of this box's area that lies inside `outer`."""
        w = max(0.0, min(self.x1, outer.x1) - max(self.x0, outer.x0))
        h = max(0.0, min(self.y1, outer.y1) - max(self.y0, outer.y0))
        return w * h / max(self.width * self.height, 1e-6)

    def clipped(self, width: int, height: int) -> Box:
        return Box(
            max(0.0, min(self.x0, width)), max(0.0, min(self.y0, height)),
            max(0.0, min(self.x1, width)), max(0.0, min(self.y1, height)),
            self.origin, self.score,
        )


def drawn_shape(kind: Kind, shape: Shape) -> Shape:
    """The shape a region of `kind` is hidden in: faces keep theirs; plates, text and people are
    boxes, whatever a plan says (an ellipse in their box leaves the corners of a plate or a line
    of text, or a body's shoulders, visible)."""
    return shape if kind == "face" else "box"


@dataclass
class Region:
    """Something to hide, followed over frames. Boxes are in upright image pixels."""

    id: str
    source: str  # what created it: "detector", "reviewer"
    shape: Shape = "ellipse"
    boxes: dict[int, Box] = field(default_factory=dict)
    keep_visible: bool = False  # a reviewer decided this person may be shown
    reason: str | None = None  # required when keep_visible is set
    kind: Kind = "face"
    # Speech lies on the time axis, not in pixels: a "speech" region has no boxes, only these
    # seconds from the start of the sound (veil.speech).
    start: float | None = None
    end: float | None = None

    @property
    def first_frame(self) -> int:
        return min(self.boxes)

    def on_picture(self, width: int, height: int) -> bool:
        """Whether some box of the region covers a pixel of a width x height picture."""
        return any(min(b.x1, width) > max(b.x0, 0) and min(b.y1, height) > max(b.y0, 0) for b in self.boxes.values())

    @property
    def last_frame(self) -> int:
        return max(self.boxes)


# An edit's `media` when it changed the whole plan (a render setting), not one file.
ALL_FILES = "(every file)"


@dataclass
class Edit:
    """One person's change to the plan (a reviewer's action, a setting given over a saved plan's),
    kept for the audit report."""

    time: str
    media: str
    action: str
    region: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None


@dataclass
class MediaPlan:
    path: str  # absolute; a saved plan also records it relative to the plan file
    # animation: an animated GIF/PNG/WebP, frames like a video; audio: sound only (width and height 0)
    kind: Literal["image", "video", "animation", "audio"]
    width: int
    height: int
    frame_count: int = 1
    sha256: str | None = None
    regions: list[Region] = field(default_factory=list)
    # What ran on this file: model and its hash, passes, thresholds, sampling, detection size
    # (veil.detect / veil.video). Empty for a file planned by hand.
    detection: dict[str, Any] = field(default_factory=dict)
    # Frames the detector could not analyse: rendering covers them completely.
    unanalysed_frames: list[int] = field(default_factory=list)
    # Frames outside the --start/--end range: not searched. They are covered
    # completely unless the user chose to leave them as they are (--only-range); either way
    # the plan and report say so, so a reviewer can see the gap.
    unchecked_frames: list[int] = field(default_factory=list)
    unchecked_covered: bool = True
    # Frames where a scene cut was found; tracks never cross one.
    scene_cuts: list[int] = field(default_factory=list)
    # Per-frame presentation times in seconds (video only), for the review timeline.
    frame_times: list[float] = field(default_factory=list)

    def at_planned_time(self, index: int, time: float) -> bool:
        """Whether a frame decoded at `time` is the plan's frame `index` (frame times are planned to
        the microsecond; a millisecond apart is another frame for any rate veil reads)."""
        return index < len(self.frame_times) and abs(time - self.frame_times[index]) < 1e-3

    def file_start(self) -> float:
        """Where a player's clock, and --start/--end, read 0 on the frames' raw clock, which may
        start anywhere (a camera's MPEG-TS at 1.4 s, a broadcast capture hours in): the file's start
        (its earliest stream's) as planned; 0 for a plan without it (an older plan, an animation)."""
        start = (self.detection.get("range_seconds") or {}).get("file_start")
        return start if isinstance(start, (int, float)) else 0.0

    def seconds_into_file(self, index: int) -> float:
        """Frame `index`'s time as a player counts it, and --start/--end do."""
        return self.frame_times[index] - self.file_start()

    def speech_record(self) -> dict:
        """What the search for speech recorded (`pipeline._add_speech`); empty where it found no
        sound, was not run (an older plan), or the record is null (a plan edited by hand)."""
        return self.detection.get("speech") or {}

    def salvaged_damage(self) -> dict | None:
        """What a video planned with --salvage was read past (veil.videofile.Damage's record); None
        if it was planned without."""
        return self.detection.get("stream", {}).get("damage")

    def forget_earlier_render(self) -> None:
        """Drops what an earlier render said of its output (how the video was encoded, the sound
        encoded again): a render says its own, and one that fails or is not run says none."""
        for said_by_render in ("sound_encoded_again", "sound_written_as", "sound_channels_read_back", "video_written_as",
                               "packets_timed_back_left_out"):
            self.detection.get("stream", {}).pop(said_by_render, None)

    def covered_frames(self) -> set[int]:
        """Frames rendered fully hidden: not analysable, or outside the range and not left as they are."""
        return set(self.unanalysed_frames) | (set(self.unchecked_frames) if self.unchecked_covered else set())

    def unchecked_frames_hidden_in(self) -> list[int]:
        """Frames outside --start/--end left as they are (--only-range) that hold boxes all the
        same: a track found in the range and carried on past it (extended), or boxes drawn there."""
        if self.unchecked_covered:
            return []
        holding = {frame for region in self.hiding_regions() for frame in region.boxes}
        return sorted(holding.intersection(self.unchecked_frames))

    def boxes_by_frame(self) -> dict[int, list[tuple[Region, Box]]]:
        """Index of the boxes to hide in each frame (regions kept visible are left out)."""
        index: dict[int, list[tuple[Region, Box]]] = {}
        for region in self.regions:
            if region.keep_visible:
                continue
            for frame, box in region.boxes.items():
                index.setdefault(frame, []).append((region, box))
        return index

    def hiding_regions(self) -> list[Region]:
        """The regions that hide pixels: not kept visible, not speech, and on the picture somewhere."""
        return [r for r in self.regions if not r.keep_visible and r.kind != "speech" and r.on_picture(self.width, self.height)]

    def off_picture_regions(self) -> list[Region]:
        """Regions of the picture none of whose boxes covers a pixel of it (outside it, or of no area: a
        plan edited by hand): they hide nothing."""
        return [r for r in self.regions if r.kind != "speech" and not r.on_picture(self.width, self.height)]

    def region(self, region_id: str) -> Region:
        for region in self.regions:
            if region.id == region_id:
                return region
        raise KeyError(region_id)

    def new_region_id(self, prefix: str, retired: Collection[str] = ()) -> str:
        """An id no region has, nor had (`retired`: ids the edit log names), so that no edit or deletion
        in the audit log is read as one of another region."""
        taken = {r.id for r in self.regions} | set(retired)
        n = len(self.regions) + 1
        while f"{prefix}{n}" in taken:
            n += 1
        return f"{prefix}{n}"


# Pixelate's default: blocks across a hidden region, at most 8. The default is the count against
# which a face recogniser named the fewest people on LFW, matching against a gallery pixelated the
# same way (bench/reid_lfw.py; figures in bench/README.md): fewer blocks leave colour blobs that
# match more easily, more leave the face.
PIXELATE_BLOCKS = 6
MAX_PIXELATE_BLOCKS = 8  # more leaves a face recognisable (the same measurement)


@dataclass(frozen=True)
class RenderSettings:
    """How hidden regions are drawn; stored in the plan so a re-render hides the same way.

    Fill and pixelate re-render to identical pixels; blur's random shading is drawn afresh
    for every export and stored nowhere (veil.render.shading).
    """

    mode: RenderMode = "fill"
    color: tuple[int, int, int] = (0, 0, 0)
    blocks: int = PIXELATE_BLOCKS  # pixelate: at most this many blocks across a face
    voice: VoiceMode = "keep"  # what happens to speech in the sound (veil.voice)

    def __post_init__(self) -> None:
        # A library caller's settings reach the renderer unchecked by the command line or the plan
        # schema: a mode it does not know drew nothing, and many blocks leave a face recognisable.
        # Frozen, they stay as checked.
        if self.mode not in get_args(RenderMode):
            raise ValueError(f"unknown redaction mode {self.mode!r}: use fill, pixelate or blur")
        if self.voice not in get_args(VoiceMode):
            raise ValueError(f"unknown voice mode {self.voice!r}: use keep, mute, mute-all or anonymise")
        if not _is_int(self.blocks) or not 1 <= self.blocks <= MAX_PIXELATE_BLOCKS:
            raise ValueError(f"blocks must be a whole number from 1 to {MAX_PIXELATE_BLOCKS}, not {self.blocks!r}")
        if len(self.color) != 3 or not all(_is_int(c) and 0 <= c <= 255 for c in self.color):
            raise ValueError(f"color must be three whole numbers from 0 to 255, not {self.color!r}")


def _is_int(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


# --codec's names, and the encoder each asks for (H.265 by either of its names).
CODEC_ENCODERS = {"h264": "libx264", "h265": "libx265", "hevc": "libx265", "vp9": "libvpx-vp9", "av1": "libsvtav1"}
# The end of x264's and x265's CRF scale (VP9's and AV1's end at 63).
X26X_CRF_MAX = 51


@dataclass(frozen=True)
class Encoding:
    """How outputs are written; stored in the plan so a re-render or review export writes the same."""

    crf: int | None = None  # video; None: the encoder's near-transparent default
    codec: str | None = None  # video: h264, h265, vp9, av1; None: follow the input
    preset: str | None = None  # video, x264/x265: the encoder's speed preset; None: veil's default
    keep_subtitles: bool = False  # video: copy subtitle streams (they may name people)
    keep_icc: bool = False  # photos: keep the original colour profile (it can name the device's maker)
    # The settings above that a saved plan gave, none typed over them: a refusal of one names the
    # plan, or it would send the user looking for an option never typed. Neither saved nor compared.
    from_plan: frozenset[str] = field(default=frozenset(), compare=False, repr=False)

    def settings(self) -> dict[str, Any]:
        """The settings, as a plan and a report record them."""
        return {name: value for name, value in asdict(self).items() if name != "from_plan"}

    def given_as(self, setting: str) -> str:
        """A setting as a refusal names it: "--crf 63" as typed, or "the plan's crf 63 (in its encoding settings)"."""
        value = getattr(self, setting)
        if setting in self.from_plan:
            return f"the plan's {setting} {value} (in its encoding settings)"
        return f"--{setting} {value}"


@lru_cache(maxsize=None)
def installed_veil_sha256() -> str:
    """SHA-256 of this process's veil: its version, code and models. The version alone does not
    change with every change to what veil finds; a plan made by another veil (an older one, a
    patched copy, a cluster worker's) holds what that one found."""
    package = Path(__file__).parent
    digest = hashlib.sha256(__version__.encode())
    for path in sorted(package.rglob("*")):
        if path.suffix in (".py", ".json", ".onnx") and "__pycache__" not in path.parts:
            digest.update(f"\0{path.relative_to(package).as_posix()}\0".encode() + path.read_bytes())
    return digest.hexdigest()


@dataclass
class Plan:
    media: list[MediaPlan] = field(default_factory=list)
    render: RenderSettings = field(default_factory=RenderSettings)
    encoding: Encoding = field(default_factory=Encoding)
    created: str = field(default_factory=lambda: now_iso())
    veil_version: str = __version__
    veil_sha256: str = field(default_factory=installed_veil_sha256)  # the veil that made it (its code and models)
    edits: list[Edit] = field(default_factory=list)
    # Render and encoding settings this run took from the command line instead of the plan
    # (for the audit report; not saved).
    overridden: list[str] = field(default_factory=list)
    # Options this run was given that act on no file of it (`--crf` for photos alone), as flags
    # (for the audit report; not saved).
    not_used: list[str] = field(default_factory=list, compare=False)
    # The plan file this plan was loaded from, and its SHA-256 (for the audit report; not saved).
    loaded_from: str | None = field(default=None, compare=False)
    loaded_sha256: str | None = field(default=None, compare=False)
    # Why that file is not as veil saved it (None: it is, or none was loaded); also in the edits.
    changed_outside: str | None = field(default=None, compare=False)
    # The plan a stopped run saves (only its finished files): the stop, and the inputs it left
    # undone, {"signal", "files_not_done"}; saved, not loaded (a run of this plan is another run).
    interrupted: dict[str, Any] | None = field(default=None, compare=False)
    # Loaded from a plan a stopped run saved: that stop's record, whose files that run was given and
    # never planned. A run rendering the plan leaves them as they are, and says so; the plan saved
    # again keeps the record (a review saves in place), or those files would drop out of sight.
    stopped_earlier: dict[str, Any] | None = field(default=None, compare=False)

    @property
    def never_planned(self) -> list[str]:
        """The files the stopped run that saved this plan was given and never planned."""
        return list((self.stopped_earlier or {}).get("files_not_done", []))

    def stop_record(self) -> dict[str, Any] | None:
        """What the plan saves of stops: this run's (`interrupted`), which also lists the files an
        earlier stopped run never planned, or that earlier run's record alone."""
        if self.interrupted is None or self.stopped_earlier is None:
            return self.interrupted or self.stopped_earlier
        listed = self.interrupted["files_not_done"]
        return {**self.interrupted, "files_not_done": [*listed, *(p for p in self.never_planned if p not in listed)]}

    def find(self, path: str | Path) -> MediaPlan:
        wanted = real_path(path)
        for media in self.media:
            if real_path(media.path) == wanted:
                return media
        raise KeyError(str(path))

    def provenance_notes(self) -> list[str]:
        """What whoever renders or reviews a loaded plan must know of its regions: that the file was
        changed outside veil (also in its edits), or that another veil found them."""
        notes = [f"{self.changed_outside} (recorded in its edits)"] if self.changed_outside else []
        if not self.veil_sha256:
            notes.append("it does not record which veil made it (a veil older than that record, or another program): "
                         "its regions are what that one found; plan again to search with this veil")
        elif self.veil_sha256 != installed_veil_sha256():
            notes.append(f"it was made by another veil (veil {self.veil_version}, code and models "
                         f"{self.veil_sha256[:12]}; this one's: {installed_veil_sha256()[:12]}): its regions are what "
                         "that one found; plan again to search with this veil")
        return notes

    # --- JSON -------------------------------------------------------------

    def to_json(self, folder: Path | None = None) -> dict[str, Any]:
        """`folder`: where the plan file lives; each file's path is also recorded relative to it. A
        name that is not UTF-8 is written as `readable_anywhere` says: strict JSON, which any
        program reads, and which `from_json` reads back to the exact name."""
        return readable_anywhere({
            "format": PLAN_FORMAT,
            "version": PLAN_VERSION,
            "veil_version": self.veil_version,
            "veil_sha256": self.veil_sha256,
            "created": self.created,
            "render": {**asdict(self.render), "color": list(self.render.color)},  # JSON has no tuples
            "encoding": self.encoding.settings(),
            "media": [_media_to_json(m, folder) for m in self.media],
            "edits": [asdict(e) for e in self.edits],
            **({"interrupted": record} if (record := self.stop_record()) else {}),
        })

    @classmethod
    def from_json(cls, data: Any, folder: Path | None = None) -> Plan:
        saved = data  # as written: a detection record's checksum is of its names as they were written
        try:
            data = exact_names(data)
            jsonschema.validate(data, plan_schema())
            not_json = _not_json(data)
        except (jsonschema.ValidationError, RecursionError) as error:
            if isinstance(error, RecursionError):
                raise PlanError("not a valid veil plan: nested too deeply") from None
            where = "/".join(str(p) for p in error.absolute_path) or "top level"
            raise PlanError(f"not a valid veil plan at {where}: {error.message}") from None
        if not_json:
            raise PlanError(f"not a valid veil plan at {not_json}: NaN and Infinity are not JSON numbers")
        if not all(map(can_name_a_file, data.get("interrupted", {}).get("files_not_done", []))):
            raise PlanError("not a valid veil plan at interrupted/files_not_done: a name holds a NUL character or a "
                            "lone surrogate, which no file's name does")
        paths = [media["path"] for media in data["media"]]
        if len(set(paths)) < len(paths):
            twice = next(path for path in paths if paths.count(path) > 1)
            raise PlanError(f"the plan lists {twice} twice: its regions must be in one entry")
        for i, (media, as_saved) in enumerate(zip(data["media"], saved["media"])):
            if problem := _media_problem(media) or _record_changed(as_saved):
                raise PlanError(f"not a valid veil plan at media/{i}: {problem}")
            # Edits and the review page name a region by its id: with two alike, an edit meant
            # for one (keep visible) would land on the other.
            ids = [region["id"] for region in media["regions"]]
            if len(set(ids)) < len(ids):
                twice = next(region_id for region_id in ids if ids.count(region_id) > 1)
                raise PlanError(f"not a valid veil plan at media/{i}: two regions have the id {twice!r}")
            for j, region in enumerate(media["regions"]):
                problem = _region_problem(media, region)
                if problem:
                    where, why = problem
                    raise PlanError(f"not a valid veil plan at media/{i}/regions/{j}{where}: {why}")
        render = data["render"]
        # Version 1 kept one detection record for the whole plan, which could misstate a video's.
        shared_detection = data.get("detection", {})
        try:  # what the schema lets through and the settings refuse
            settings = RenderSettings(render["mode"], tuple(map(_whole, render["color"])), _whole(render["blocks"]),
                                      render.get("voice", "keep"))
        except ValueError as error:
            raise PlanError(f"not a valid veil plan at render: {error}") from None
        return cls(
            media=[_media_from_json(m, folder, shared_detection) for m in data["media"]],
            render=settings,
            encoding=Encoding(**data.get("encoding", {}), from_plan=frozenset(data.get("encoding", {}))),
            created=data["created"],
            veil_version=data.get("veil_version", ""),
            veil_sha256=data.get("veil_sha256", ""),
            edits=[Edit(**e) for e in data.get("edits", [])],
            stopped_earlier=data.get("interrupted"),
        )

    def save(self, path: Path | str, overwrite: bool = False) -> None:
        """Raises FileExistsError where a file is at `path` (unless `overwrite`)."""
        from veil.outputs import atomic_output

        if not overwrite and os.path.lexists(path):
            raise FileExistsError(f"{path} exists: pass overwrite=True to replace it")
        data = self.checksummed_json(Path(path).absolute().parent)
        sources = [media.path for media in self.media]  # the plan names each, and its hash
        with atomic_output(Path(path), overwrite, sources=sources) as written, \
                open(written.path, "w", encoding="utf-8") as file:
            # Written as it is encoded: the whole text at once, and the pieces it is joined from,
            # took several times the plan's own memory for an hour of crowd footage.
            # NaN and Infinity are not JSON: another program could not read the plan, nor veil load it.
            json.dump(data, file, indent=1, allow_nan=False)

    def checksummed_json(self, folder: Path | None = None) -> dict[str, Any]:
        """The plan as veil saves it (`to_json`), with its checksum."""
        data = self.to_json(folder)
        for media in data["media"]:
            media[DETECTION_CHECKSUM] = detection_checksum(media["detection"])
        data[CHECKSUM] = plan_checksum(data)
        return data

    @classmethod
    def load(cls, path: Path) -> Plan:
        try:
            if not stat.S_ISREG(os.stat(path).st_mode):  # a pipe waited for ever, /dev/zero filled the memory
                raise ValueError(f"{path} is not a regular file")
            raw = Path(path).read_bytes()
            data = json.loads(raw.decode("utf-8-sig"))  # a byte-order mark, as Windows editors write one
        except (OSError, UnicodeDecodeError, ValueError, RecursionError) as error:
            reason = "nested too deeply" if isinstance(error, RecursionError) else error
            raise PlanError(f"cannot read plan: {reason}") from None
        plan = cls.from_json(data, Path(path).absolute().parent)
        plan.loaded_from, plan.loaded_sha256 = str(Path(path).absolute()), hashlib.sha256(raw).hexdigest()
        if (change := changed_since_saved(data)) is not None:
            plan.changed_outside = change
            # Kept in the edits: the plan saved again (a review, --save-plan) carries the trace on.
            plan.edits.append(Edit(now_iso(), ALL_FILES, CHANGED_OUTSIDE, detail={
                "plan": plan.loaded_from, "sha256": plan.loaded_sha256}, reason=change))
        return plan


# The plan's own SHA-256, as veil saved it: a plan changed since (by hand, by another program)
# does not match it, and its regions are then not all veil's detection and the recorded edits.
CHECKSUM = "checksum"
CHANGED_OUTSIDE = "plan changed outside veil"


def plan_checksum(data: dict[str, Any]) -> str:
    """`json_checksum` of a plan without its checksum."""
    return json_checksum({key: value for key, value in data.items() if key != CHECKSUM})


# Each file's detection record is veil's account of how its regions were found: the video stream
# their boxes lie on, the sound clock and length their times are on, the range searched. Edited by
# hand (another stream chosen, say), the regions would be drawn where they were not found, hiding
# less than the plan says; the record's own SHA-256, saved beside it, tells such an edit, which is
# refused where the rest of a plan edited by hand renders.
DETECTION_CHECKSUM = "detection_sha256"


def json_checksum(value: dict[str, Any]) -> str:
    """SHA-256 of `value` as JSON, keys sorted: the same however it is laid out."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()


def detection_checksum(record: dict[str, Any]) -> str:
    """`json_checksum` of a detection record with every whole number written as one (1.0 as 1): a
    plan rewritten by another program (JavaScript's JSON.stringify, jq) keeps each number's value,
    not how Python wrote it."""
    return json_checksum(_whole_numbers_as_integers(record))


def _whole_numbers_as_integers(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: _whole_numbers_as_integers(each) for key, each in value.items()}
    if isinstance(value, list):
        return [_whole_numbers_as_integers(each) for each in value]
    return value


def _record_changed(media: dict[str, Any]) -> str | None:
    """Why a file's detection record, as written in the plan, is refused: changed since veil saved it
    (the checksum as this veil takes it, or as the veil before it did: each number as Python wrote it)."""
    record = media.get("detection", {})
    if DETECTION_CHECKSUM not in media or \
            media[DETECTION_CHECKSUM] in (detection_checksum(record), json_checksum(record)):
        return None
    return ("its detection record (how its regions were found: the video stream, the sound's clock and length, "
            f"the range) was changed since veil saved it ({DETECTION_CHECKSUM}), so its regions may be drawn where "
            "they were not found: put the record back, or detect again (run veil on the file without the plan)")


def changed_since_saved(data: dict[str, Any]) -> str | None:
    """Why a loaded plan is not as veil saved it, or None where it is."""
    if CHECKSUM not in data:
        return ("it holds no checksum: written or edited by another program (by hand, say), or saved by a veil "
                "older than checksums; its regions may not be veil's detection and the recorded edits")
    if data[CHECKSUM] != plan_checksum(data):
        return ("it does not match the checksum veil saved in it: changed since, by hand or by another program; "
                "its regions may not be veil's detection and the recorded edits")
    return None


def _not_json(value: Any, where: str = "") -> str | None:
    """Where `value` holds NaN or Infinity, which Python's json reads (a plan file, the review page's
    upload) and JSON has not: a coordinate, score or frame time so written would hide nothing where
    the plan says, or reach the plan saved again and the report as a number no other reader takes."""
    if isinstance(value, float) and not math.isfinite(value):
        return where or "top level"
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        if found := _not_json(item, f"{where}/{key}" if where else str(key)):
            return found
    return None


# Farther than any picture's corner by far (photos are refused over 200 MP): a box beyond it is
# an error in the plan, and its size would overflow the renderer's integers.
FARTHEST = 1_000_000


def _region_problem(media: dict[str, Any], region: dict[str, Any]) -> tuple[str, str] | None:
    """What the schema cannot say is wrong with a region of this media: a box that would hide
    nothing where it claims to (the plan is the only record of what gets hidden, and a file
    edited by hand or by a faulty tool must not render as if it were fine), or a kind the
    media cannot hold."""
    speech = region.get("kind") == "speech"
    if media["kind"] == "audio" and not speech:
        return "", f"a sound file holds no {region.get('kind', 'face')} regions, only speech"
    if speech and (media["kind"] in ("image", "animation") or region["boxes"]):
        return "", "a speech region lies on a sound's time axis: no boxes, in a video or a sound file only"
    if speech:
        return _speech_problem(media, region)
    if not region["boxes"]:
        return "", "a region needs at least one box (frame, x0, y0, x1, y1)"
    frames = max(1, media["frame_count"])
    listed: set[int] = set()
    for k, box in enumerate(region["boxes"]):
        frame, x0, y0, x1, y1 = box[:5]
        if max(abs(x0), abs(y0), abs(x1), abs(y1)) > FARTHEST:
            return f"/boxes/{k}", f"a coordinate lies more than {FARTHEST:,} px from the picture's corner"
        # A region has one box a frame: a second one would replace the first, whose face would
        # then be left visible.
        if frame in listed:
            return f"/boxes/{k}", f"frame {frame} has a box already in this region: give this one a region of its own"
        listed.add(frame)
        # Inside out, it would hide nothing where it claims to; one lying wholly off the picture
        # hides nothing either way (veil before 2026-11-30 wrote such bodies at a frame's edge).
        if (x1 < x0 or y1 < y0) and _on_picture(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1), media):
            return f"/boxes/{k}", "its right or bottom edge lies before its left or top one"
        if frame >= frames:
            return f"/boxes/{k}", f"frame {frame} is past the media's last ({frames - 1})"
    return None


def _speech_problem(media: dict[str, Any], region: dict[str, Any]) -> tuple[str, str] | None:
    """A speech segment that would silence nothing where the plan says it does."""
    start, end = region.get("start"), region.get("end")
    if start is None or end is None:
        return "", "a speech region needs its start and end (seconds)"
    if end <= start:
        return "", f"a speech region must end after it starts ({start} to {end} s)"
    record = media.get("detection", {}).get("speech")
    if not isinstance(record, dict):
        # Its segments would be found again and added beside these, each counted twice.
        return "", "a speech region needs the plan's record of the speech search (detection.speech): detect again"
    length = record.get("sound_seconds")
    if length is not None and start >= length:
        return "", f"a speech region starts at {start} s, after the sound ends ({length} s)"
    return None


def _media_problem(media: dict[str, Any]) -> str | None:
    """What the schema cannot say is wrong with a media entry as a whole."""
    if not all(can_name_a_file(name) for name in (media["path"], media.get("path_from_plan") or "")):
        return "its path holds a NUL character or a lone surrogate, which no file's name does"
    frames = max(1, media["frame_count"])
    for name in ("unanalysed_frames", "unchecked_frames"):
        if any(frame >= frames for frame in media.get(name, [])):
            return f"{name} lists a frame past the media's last ({frames - 1})"
    stream = media.get("detection", {}).get("stream")
    if isinstance(stream, dict) and stream.get("damage") is not None:
        # A damaged file's frames are checked, as rendered, to be the ones planned, by their times.
        return _times_problem(media, "--salvage")
    return _range_problem(media)


def _times_problem(media: dict[str, Any], planned_with: str) -> str | None:
    """A plan whose frames are not each given a time: a frame with none is not held to its range
    (--start/--end) nor, in a damaged file, checked to be the frame planned."""
    if len(times := media.get("frame_times", [])) != media["frame_count"]:
        return f"frame_times gives {len(times)} times for {media['frame_count']} frames; a video planned with " \
               f"{planned_with} needs one a frame"
    return None


def _range_problem(media: dict[str, Any]) -> str | None:
    """A video planned with --start/--end whose unchecked_frames leaves out a frame outside that
    range (an edited plan): the frame was never searched, and would be rendered as it is."""
    asked = media.get("detection", {}).get("range_seconds")
    if asked is None:
        return None
    seconds = [asked.get(key) for key in ("start", "end", "file_start")] if isinstance(asked, dict) else None
    if seconds is None or not all(value is None or type(value) in (int, float) for value in seconds):
        return "detection.range_seconds must hold its start, end and file_start as numbers of seconds (or null)"
    start, end, zero = seconds
    if zero is None or (start is None and end is None):
        return None
    if problem := _times_problem(media, "--start/--end"):
        return problem
    listed = set(media.get("unchecked_frames", [])) | set(media.get("unanalysed_frames", []))
    # A microsecond's grace: frame times are stored to the microsecond.
    outside = [i for i, time in enumerate(media.get("frame_times", [])) if i not in listed and (
        (start is not None and time - zero < start - 1e-6) or (end is not None and time - zero > end + 1e-6))]
    if outside:
        return (f"frame {outside[0]} lies outside the range it was planned with ({start or 0:g} s to "
                f"{'the end' if end is None else f'{end:g} s'}), so it was never searched, but unchecked_frames "
                "does not list it")
    return None


def _on_picture(x0: float, y0: float, x1: float, y1: float, media: dict[str, Any]) -> bool:
    return min(x1, media["width"]) > max(x0, 0) and min(y1, media["height"]) > max(y0, 0)


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@lru_cache(maxsize=1)
def plan_schema() -> dict[str, Any]:
    return json.loads(resources.files("veil").joinpath("plan.schema.json").read_text())


def as_stored(regions: list[Region]) -> None:
    """Each region's boxes and times rounded as a plan file stores them (boxes to a tenth of a
    pixel, speech to a millisecond), in place: a plan saved and rendered again then hides exactly
    what the run that saved it did (at full precision, ellipse edges differed by a pixel)."""
    for region in regions:
        region.boxes = {frame: _stored_box(box) for frame, box in region.boxes.items()}
        if region.start is not None and region.end is not None:
            region.start, region.end = round(region.start, 3), round(region.end, 3)


def _stored_box(box: Box) -> Box:
    return Box(round(box.x0, 1), round(box.y0, 1), round(box.x1, 1), round(box.y1, 1), box.origin,
               None if box.score is None else round(box.score, 3))


def _box_to_json(frame: int, box: Box) -> list[Any]:
    stored = _stored_box(box)
    return [frame, stored.x0, stored.y0, stored.x1, stored.y1, stored.origin, stored.score]


def _relative(path: str, folder: Path | None) -> str | None:
    if folder is None or is_url(path):  # a URL is found where it is, wherever the plan moves
        return None
    try:
        return os.path.relpath(path, folder)
    except ValueError:  # another drive (Windows)
        return None


def _media_to_json(media: MediaPlan, folder: Path | None) -> dict[str, Any]:
    return {
        "path": media.path,
        "path_from_plan": _relative(media.path, folder),
        "kind": media.kind,
        "width": media.width,
        "height": media.height,
        "frame_count": media.frame_count,
        "sha256": media.sha256,
        "unanalysed_frames": media.unanalysed_frames,
        "unchecked_frames": media.unchecked_frames,
        "unchecked_covered": media.unchecked_covered,
        "detection": media.detection,
        "scene_cuts": media.scene_cuts,
        "frame_times": [round(t, 6) for t in media.frame_times],
        "regions": [
            {
                "id": r.id,
                "kind": r.kind,
                "source": r.source,
                "shape": r.shape,
                "keep_visible": r.keep_visible,
                "reason": r.reason,
                # [frame, x0, y0, x1, y1, origin, score]: compact, since an hour of
                # video holds hundreds of thousands of boxes.
                "boxes": [_box_to_json(f, b) for f, b in sorted(r.boxes.items())],
                **({"start": round(r.start, 3), "end": round(r.end, 3)} if r.start is not None and r.end is not None
                   else {}),
            }
            for r in media.regions
        ],
    }


def _located(data: dict[str, Any], folder: Path | None) -> str:
    """The file's absolute path: as recorded, or found relative to the plan (a moved folder); a URL as recorded."""
    if is_url(data["path"]):
        return data["path"]
    recorded = Path(data["path"])
    if folder is not None:
        if not recorded.is_absolute():  # version 1 plans held the path as typed
            recorded = folder / recorded if not recorded.exists() else recorded.absolute()
        relative = data.get("path_from_plan")
        if not recorded.exists() and relative and (folder / relative).exists():
            recorded = folder / relative
    return os.path.normpath(recorded.absolute())


def _whole(value: Any) -> Any:
    """6.0 as 6: the schema takes a whole number written as a float (some JSON writers do) for an integer."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _within_sound(end: float | None, media: dict[str, Any]) -> float | None:
    """A speech segment's end, cut at the sound's end: a segment reaching past it silences
    nothing more, and would be counted as speech treated."""
    record = media.get("detection", {}).get("speech") if end is not None else None
    length = record.get("sound_seconds") if isinstance(record, dict) else None
    return min(end, length) if isinstance(length, (int, float)) else end


def _media_from_json(data: dict[str, Any], folder: Path | None, shared_detection: dict[str, Any]) -> MediaPlan:
    detection = data.get("detection", shared_detection)
    if "speech" in detection and detection["speech"] is None:
        # The schema takes a null speech record (no search's record): read as none, as veil writes
        # none, so that every reader of the record meets a dictionary or nothing.
        detection = {key: value for key, value in detection.items() if key != "speech"}
    return MediaPlan(
        path=_located(data, folder),
        kind=data["kind"],
        width=data["width"],
        height=data["height"],
        frame_count=data["frame_count"],
        sha256=data.get("sha256"),
        unanalysed_frames=list(data.get("unanalysed_frames", [])),
        unchecked_frames=list(data.get("unchecked_frames", [])),
        # Left as they are only where the plan says so (--only-range): an edit that drops the key
        # covers them, as a plan made without --only-range does.
        unchecked_covered=data.get("unchecked_covered", True),
        detection=detection,
        scene_cuts=list(data.get("scene_cuts", [])),
        frame_times=list(data.get("frame_times", [])),
        regions=[
            Region(
                id=r["id"],
                kind=r.get("kind", "face"),
                source=r["source"],
                shape=drawn_shape(r.get("kind", "face"), r["shape"]),
                keep_visible=r["keep_visible"],
                reason=r.get("reason"),
                boxes={b[0]: Box(b[1], b[2], b[3], b[4], b[5], b[6]) for b in r["boxes"]},
                start=r.get("start"),
                end=_within_sound(r.get("end"), data),
            )
            for r in data["regions"]
        ],
    )
