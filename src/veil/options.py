"""Command-line options shared by `veil` and `veil review`: one definition, one meaning."""

from __future__ import annotations

from enum import Enum
from typing import Annotated

import typer

from veil.kinds import HIDE_WORDS, parse_hide
from veil.plan import Kind


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


class ShapeOption(str, Enum):
    ellipse = "ellipse"
    box = "box"


def parse_color(text: str) -> tuple[int, int, int]:
    named = {"black": (0, 0, 0), "white": (255, 255, 255), "gray": (128, 128, 128), "grey": (128, 128, 128)}
    if text.lower() in named:
        return named[text.lower()]
    hexa = text.lstrip("#")
    if len(hexa) == 6:
        try:
            return tuple(int(hexa[i : i + 2], 16) for i in (0, 2, 4))  # type: ignore[return-value]
        except ValueError:
            pass
    raise typer.BadParameter(f"{text!r} is not a colour: use black, white, gray or #RRGGBB")


def parse_hide_option(text: str) -> tuple[Kind, ...]:
    try:
        return parse_hide(text)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None


AccurateOption = Annotated[bool, typer.Option("--accurate", help="More detection passes (text and plates: a second look at twice the size): higher recall, about 3x slower (text and plates: 6-7x).")]
ModeOption = Annotated[Mode, typer.Option(help="fill (safest), pixelate (at most --blocks across a face), blur (weakest: reversible by published attacks). A loaded plan keeps its own unless given.")]
ColorOption = Annotated[str, typer.Option(help="Fill colour: black, white, gray or #RRGGBB.")]
ShapeOpt = Annotated[ShapeOption, typer.Option(help="Shape of each hidden region.")]
BlocksOption = Annotated[int, typer.Option(min=1, max=8, help="pixelate: blocks across a face (at most 8).")]
OverwriteOption = Annotated[bool, typer.Option("--overwrite", help="Replace outputs, plans and reports that exist (never an input).")]
HideOption = Annotated[str, typer.Option("--hide", help=f"What to hide, a comma list of {', '.join(HIDE_WORDS)}. Text is hidden, never read.")]
VoiceOption = Annotated[VoiceChoice, typer.Option(help="Speech in the sound: keep (default for videos; voices stay recognisable), mute (speech only), mute-all (all sound), anonymise (pitch and speech envelope moved at random per segment; words kept, voices still partly linkable). Audio files need one of the last three.")]
