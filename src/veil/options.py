"""Command-line options shared by `veil` and `veil review`: one definition, one meaning."""

from __future__ import annotations

import re
from dataclasses import asdict
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from veil.kinds import HIDE_WORDS, looks_for_faces, parse_hide
from veil.names import shown
from veil.plan import (ALL_FILES, CODEC_ENCODERS, MAX_PIXELATE_BLOCKS, X26X_CRF_MAX, Edit, Encoding, Kind, Plan,
                       RenderSettings, now_iso)
from veil.remote import is_url


def file_seconds(value: float | None) -> float | None:
    """--start/--end: seconds from the file's start (nan, inf and negative times name no frame)."""
    if value is not None and not (0 <= value < float("inf")):
        raise typer.BadParameter(f"{value:g} is not a time in a file: give seconds from its start, 0 or more")
    return value


def local_path(text: str) -> Path:
    """A run file (plan, report, manifest): written or appended to in place, so a local path."""
    if is_url(text):
        raise typer.BadParameter(f"{shown(text)}: plans, reports and manifests are local files, not URLs")
    if text.rsplit("/", 1)[-1] in ("", ".", ".."):  # Path("out/") is "out": a file made where a folder was meant
        raise typer.BadParameter(f"{shown(text) or 'an empty name'}: name a file, not a folder")
    return Path(text)


def named_input(text: str) -> str:
    """An input as typed: an empty one (an unset shell variable) is Path(""), the current folder,
    which would have the run redact everything under it unasked."""
    if not text:
        raise typer.BadParameter("an input names nothing (an empty name): name the photos, videos or folders")
    return text


def named_input_path(text: str) -> Path:
    """A local input as typed (`named_input`): review reads files on this machine only (a URL as a
    path lost a slash, and was said to be no such file)."""
    if is_url(named_input(text)):
        raise typer.BadParameter(f"{shown(text)}: review takes local files and folders, not URLs "
                                 "(veil itself redacts a URL)")
    return Path(text)


def local_folder(text: str) -> Path:
    """A local folder named on the command line: Path("") is the current folder, never meant, and a
    URL as a path is a local folder named after it."""
    if not text:
        raise typer.BadParameter("an empty name names no folder")
    if is_url(text):
        raise typer.BadParameter(f"{shown(text)}: review exports to a local folder, not a URL")
    return Path(text)


class Mode(str, Enum):
    fill = "fill"
    pixelate = "pixelate"
    blur = "blur"


class VoiceChoice(str, Enum):
    keep = "keep"
    mute = "mute"
    mute_all = "mute-all"
    anonymise = "anonymise"


# x264's and x265's speed presets (the same names in both).
Preset = Enum("Preset", {name: name for name in ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow",
                                                  "slower", "veryslow")}, type=str)


Codec = Enum("Codec", {name: name for name in CODEC_ENCODERS}, type=str)


class ShapeOption(str, Enum):
    ellipse = "ellipse"
    box = "box"


def parse_color(text: str) -> tuple[int, int, int]:
    named = {"black": (0, 0, 0), "white": (255, 255, 255), "gray": (128, 128, 128), "grey": (128, 128, 128)}
    if text.lower() in named:
        return named[text.lower()]
    hexa = text.removeprefix("#")
    if re.fullmatch("[0-9a-fA-F]{6}", hexa):  # (int(x, 16) takes signs, spaces and other scripts' digits)
        return tuple(int(hexa[i : i + 2], 16) for i in (0, 2, 4))  # type: ignore[return-value]
    raise typer.BadParameter(f"{text!r} is not a colour: use black, white, gray or #RRGGBB")


def color_text(color: tuple[int, ...] | list[int]) -> str:
    """A colour as --color takes it: #rrggbb."""
    return "#" + "".join(f"{channel:02x}" for channel in color)


def parse_hide_option(given: list[str] | None) -> tuple[Kind, ...]:
    """--hide given once or more: every kind named (--hide faces --hide plates is faces and
    plates; the last alone left the faces visible). Not given: faces."""
    if given and not all(value.strip(" ,") for value in given):
        raise typer.BadParameter("--hide names nothing (an empty value): name faces, plates, text or people")
    try:
        return parse_hide(",".join(given or ["faces"]))
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None


AccurateOption = Annotated[bool, typer.Option("--accurate", help="More detection passes (text and plates: a second look at twice the size): higher recall, about 3x slower (text and plates: 6-7x).")]
ModeOption = Annotated[Mode, typer.Option(case_sensitive=False, help="fill (safest), pixelate (at most --blocks across a face), blur (weakest: reversible by published attacks). A loaded plan keeps its own unless given.")]
ColorOption = Annotated[str, typer.Option(help="Fill colour: black, white, gray or #RRGGBB.")]
ShapeOpt = Annotated[ShapeOption, typer.Option(case_sensitive=False, help="Shape of each hidden region.")]
BlocksOption = Annotated[int, typer.Option(min=1, max=MAX_PIXELATE_BLOCKS, help=f"pixelate: blocks across a face (at most {MAX_PIXELATE_BLOCKS}).")]
OverwriteOption = Annotated[bool, typer.Option("--overwrite", help="Replace outputs, plans and reports that exist (never an input).")]
HideOption = Annotated[Optional[list[str]], typer.Option("--hide", metavar="KINDS", help=f"What to hide, a comma list of {', '.join(HIDE_WORDS)} (default: faces; given twice, both). Text is hidden, never read.")]
SalvageOption = Annotated[bool, typer.Option("--salvage", help="Redact a damaged file instead of refusing it, and say what was damaged. Video (damaged or truncated): as far as it decodes; frames decoded from damaged data are fully covered, what cannot be decoded is left out. Photo: as decoded; a face in the part its decoder filled in can be missed.")]
VoiceOption = Annotated[VoiceChoice, typer.Option(case_sensitive=False, help="Speech in the sound: keep (default for videos; voices stay recognisable), mute (speech only), mute-all (all sound), anonymise (pitch and speech envelope moved at random per segment; words kept, voices still partly linkable). Audio files need one of the last three.")]
CrfOption = Annotated[Optional[int], typer.Option(min=0, max=63, help="Video quality (lower is better); default near-transparent for the codec.")]
CodecOption = Annotated[Optional[Codec], typer.Option(case_sensitive=False, help="Video codec: h264, h265 (or hevc), vp9, av1. Default: h264 (h265 for an H.265 or a deeper than 8-bit input); in .webm the input's VP8, VP9 or AV1, else vp9; in .ogv VP8.")]
PresetOption = Annotated[Optional[Preset], typer.Option(case_sensitive=False, help="Video, H.264/H.265: the encoder's speed preset (faster: larger files at the same --crf). Default: veryfast for H.264, fast for H.265.")]
KeepSubtitlesOption = Annotated[bool, typer.Option("--keep-subtitles", help="Video: copy subtitle streams (dropped by default).")]
KeepIccOption = Annotated[bool, typer.Option("--keep-icc", help="Photos: keep the original colour profile (by default pixels become sRGB: a profile can name the camera's maker).")]


def encoding_asked(crf: int | None, codec: Codec | None, preset: Preset | None, keep_subtitles: bool,
                   keep_icc: bool) -> Encoding:
    """The encoding settings the options ask for (None: veil's choice for each file). A CRF the codec
    asked for cannot take is refused here, before any work (a review's, before the reviewer's)."""
    if crf is not None and codec is not None and CODEC_ENCODERS[codec.value] in ("libx264", "libx265") \
            and crf > X26X_CRF_MAX:
        raise typer.BadParameter(f"--crf {crf} is beyond {codec.value}'s scale (0-{X26X_CRF_MAX})")
    return Encoding(crf=crf, codec=codec.value if codec else None, preset=preset.value if preset else None,
                    keep_subtitles=keep_subtitles, keep_icc=keep_icc)


RENDER_OPTIONS = ("mode", "color", "blocks", "voice")
ENCODING_OPTIONS = ("crf", "codec", "preset", "keep_subtitles", "keep_icc")
# What is looked for and where: a saved plan's detection is done, so with one they would change nothing.
DETECTION_OPTIONS = ("accurate", "hide", "shape", "start", "end", "only_range", "salvage")


# Options that act on some kinds of media only, and what those are called.
ACTS_ON = {**dict.fromkeys(("crf", "codec", "preset", "keep_subtitles", "start", "end", "only_range"),
                           (("video",), "videos")),
           "salvage": (("video", "image"), "videos and photos"),
           "voice": (("video", "audio"), "videos and sound files"),
           "keep_icc": (("image", "animation"), "photos and animations"),
           **dict.fromkeys(("hide", "accurate", "shape", "mode", "color", "blocks"),
                           (("image", "animation", "video"), "photos, animations and videos"))}
# What the inputs of a kind are called, in a line about them.
KIND_WORDS = {"image": "photos", "animation": "animations", "audio": "sound files"}
# Options that act in one redaction mode only (the colour also fills frames that could not be analysed).
ACTS_IN_MODE = {"blocks": "pixelate"}


def options_acting_on_nothing(ctx: typer.Context, plan: Plan, kinds: set[str | None]) -> list[str]:
    """The options typed that act on no kind of file in `kinds` (a run's inputs), or not in the
    plan's redaction mode, kept in the plan for the report (`Plan.not_used`) and returned as lines
    for the user: an option that changes nothing must not pass as one that did (`--crf 30` typed
    for photos alone, `--blocks 2` for a fill, say)."""
    idle: dict[str, list[str]] = {}
    # An input whose kind is not known (a file that is not there) could be any: it fails on its own.
    for name in given_options(ctx, tuple(ACTS_ON)) if None not in kinds else ():
        acts_on, called = ACTS_ON[name]
        if not kinds & set(acts_on):
            idle.setdefault(called, []).append("--" + name.replace("_", "-"))
    lines = [f"{', '.join(flags)} act{'' if len(flags) > 1 else 's'} on {called} only, and there are none among "
             "the inputs: not used" for called, flags in idle.items()]
    ranged = given_options(ctx, ("start", "end"))
    if "only_range" in given_options(ctx, ("only_range",)) and not ranged and "videos" not in idle:
        idle.setdefault("a range", []).append("--only-range")
        lines.append("--only-range acts with --start or --end only, and neither was given: not used")
    # A range given for videos leaves the other inputs whole: said, as a user may think them cut too.
    others = sorted(KIND_WORDS[kind] for kind in kinds - {"video", None})
    if ranged and "video" in kinds and others:
        lines.append(f"{', '.join('--' + name for name in ranged)} act{'' if len(ranged) > 1 else 's'} on videos "
                     f"only: the {' and '.join(others)} among the inputs are searched and redacted whole")
    for name in given_options(ctx, tuple(ACTS_IN_MODE)):
        if plan.render.mode != (mode := ACTS_IN_MODE[name]) \
                and "--" + name not in idle.get(ACTS_ON[name][1], ()):  # said once: it acted on no input
            idle.setdefault(mode, []).append(flag := "--" + name.replace("_", "-"))
            lines.append(f"{flag} acts with --mode {mode} only, and the regions are hidden by {plan.render.mode}: "
                         "not used")
    plan.not_used = [flag for flags in idle.values() for flag in flags]
    return lines


def faces_left_visible(hide: tuple[Kind, ...], kinds: set[str | None]) -> str | None:
    """--hide without faces or people, on pictures: their faces are not looked for. Said, since a
    face is what a reader of the output recognises first (README: --hide plates hides plates only).
    With people, faces are looked for, each hidden inside a person's region."""
    if looks_for_faces(hide) or not kinds & {"image", "animation", "video", None}:
        return None
    named = ",".join(word for word, kind in HIDE_WORDS.items() if kind in hide)
    return f"--hide {named}: faces are not looked for, and any not inside those regions are left visible"


def given_options(ctx: typer.Context, names: tuple[str, ...]) -> list[str]:
    """Those of `names` typed on the command line (by name: typer bundles its own click)."""
    return [name for name in names
            if name in ctx.params and getattr(ctx.get_parameter_source(name), "name", "DEFAULT") != "DEFAULT"]


def detection_flags(ctx: typer.Context) -> str:
    """The detection options typed on the command line, as flags ("" if none)."""
    return ", ".join("--" + name.replace("_", "-") for name in given_options(ctx, DETECTION_OPTIONS))


def with_options_given(plan: Plan, render: RenderSettings, encoding: Encoding | None, ctx: typer.Context,
                       resumed: bool = False) -> None:
    """A saved plan's own render and encoding settings, but for the options typed on the command
    line (listed in the plan, and so in its audit report). Detection options are refused
    (ValueError): the plan's detection is done, and they would be ignored unseen. A review that
    is `resumed` was started by the same command, detection options and all: the caller says
    they are not run again."""
    if (flags := detection_flags(ctx)) and not resumed:
        several = "," in flags
        raise ValueError(f"{flags} appl{'y' if several else 'ies'} to detection, and a saved plan's detection is "
                         f"done: leave {'them' if several else 'it'} out, or detect afresh without the plan")
    given = given_options(ctx, RENDER_OPTIONS + (ENCODING_OPTIONS if encoding is not None else ()))
    before = {**asdict(plan.render), **plan.encoding.settings()}
    plan.render = RenderSettings(**{name: getattr(render if name in given else plan.render, name)
                                    for name in RENDER_OPTIONS})
    if encoding is not None:
        plan.encoding = Encoding(**{name: getattr(encoding if name in given else plan.encoding, name)
                                    for name in ENCODING_OPTIONS}, from_plan=plan.encoding.from_plan - set(given))
    plan.overridden = sorted(given)
    # Kept in the plan's edits too: a plan saved again must not read as made with the new settings.
    after = {**asdict(plan.render), **plan.encoding.settings()}
    plan.edits += [Edit(now_iso(), ALL_FILES, "setting changed", detail={"setting": name, "from": before[name],
                                                                          "to": after[name]},
                        reason="given on the command line over the saved plan's")
                   for name in sorted(given) if before[name] != after[name]]
