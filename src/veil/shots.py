"""Scene cuts: the frames where a new shot starts, found from each frame's small grey copy as a video
is decoded. Tracks never cross a cut, and a shot's first frame is searched with every view.

Two shots can share their grey levels (two crowds, two camera positions on one scene), and a
single frame of another picture can be spliced in: the histogram sees no cut there. A frame whose
layout is unlike the frame before's is a new picture all the same: it and the frame before are
searched with every view, as a cut's are, but tracks may cross it (a whip pan changes the layout
as much, and its faces are the same people).

A camera flash (a press conference's) changes a frame or two as much as a cut does, and the picture
after it is the one before: it is not a shot of its own, or a face the flash bleached past its
detector would be left bare on that frame, with no track to carry it there.
"""

from __future__ import annotations

import bisect
import collections
from dataclasses import dataclass
from typing import Literal

import av
import numpy as np

# A scene cut: the grey-level histogram of consecutive frames changes this much (half the L1
# distance, 0..1). Steady pans and people walking stay far below it.
CUT_HISTOGRAM = 0.4
THUMB = (64, 36)
# A new picture without a cut: the small grey copies of consecutive frames correlate under this
# (brightness and contrast aside). Consecutive frames of steady footage, hand-held pans and people
# walking correlate 0.9 and more; two unrelated pictures with alike grey levels about 0.
NEW_PICTURE_CORRELATION = 0.5
# Two frames both this flat (the standard deviation of their small grey copies, in grey levels) have
# no layout to compare: a black leader, a fade, a blank title card. (As motion.MIN_SPREAD.)
FLAT_SPREAD = 2.0
# A flash lasts at most this many frames (at any frame rate: at 25-30 fps a flash is one or two).
FLASH_FRAMES = 3
# The frames either side of a flash show one picture: their small grey copies correlate at least
# this well, brightness and contrast aside. A real cut whose grey levels come back correlated
# 0.01, slide changes and whip pans 0.08; flashes on hand-held pans 0.9 and more.
FLASH_CORRELATION = 0.6
# A flash's own frames still show that picture, however bleached (0.19 for one blown nearly white):
# a short bright insert of another picture correlates about 0.
FLASH_ITSELF_CORRELATION = 0.15
# And every frame of a flash is brighter than the frame before it by this many grey levels (of 255)
# on average: a short insert of another picture, cut back to the first, stays two cuts.
FLASH_LIFT = 8.0

Change = Literal["cut", "flash over", "new picture"]


def record() -> dict:
    """The rule, for the plan's tracking record."""
    return {"scene_cut_histogram": CUT_HISTOGRAM, "new_picture_correlation_under": NEW_PICTURE_CORRELATION,
            "new_picture_unless_both_spread_under": FLAT_SPREAD,
            "flash": {"frames_at_most": FLASH_FRAMES, "sides_correlation": FLASH_CORRELATION,
                      "brighter_by": FLASH_LIFT, "flash_correlation": FLASH_ITSELF_CORRELATION}}


@dataclass(frozen=True)
class Look:
    """A frame as the cut test sees it: a small grey copy, its histogram and its mean level."""

    thumb: np.ndarray
    histogram: np.ndarray
    level: float
    spread: float  # the grey levels' standard deviation

    @classmethod
    def of(cls, frame: av.VideoFrame) -> Look:
        return cls.of_grey(frame.to_ndarray(width=THUMB[0], height=THUMB[1], format="gray"))

    @classmethod
    def of_grey(cls, thumb: np.ndarray) -> Look:
        hist = np.bincount(thumb.ravel() >> 3, minlength=32).astype(np.float64)
        return cls(thumb.astype(np.float32), hist / hist.sum(), float(thumb.mean()), float(thumb.std()))

    def cut_from(self, before: Look) -> bool:
        """Whether the grey levels changed from `before` as a scene cut's do."""
        return 0.5 * float(np.abs(self.histogram - before.histogram).sum()) > CUT_HISTOGRAM

    def correlation(self, other: Look) -> float:
        """How alike the two pictures' layouts are, brightness and contrast aside (-1..1): two shots
        can share their grey levels, not their layout."""
        a, b = self.thumb - self.thumb.mean(), other.thumb - other.thumb.mean()
        spread = float(np.sqrt((a * a).sum() * (b * b).sum()))
        return float((a * b).sum()) / spread if spread > 0 else 0.0


class SceneCuts:
    """The cuts of one video, fed its frames in order."""

    def __init__(self) -> None:
        self.cuts: list[int] = []
        # The last FLASH_FRAMES + 1 frames' looks, by frame number: the frame before each recent cut.
        self._recent: collections.OrderedDict[int, Look] = collections.OrderedDict()

    def add(self, index: int, look: Look) -> Change | None:
        """Frame `index`: "cut" where it starts a shot, "flash over" where it ends a flash (the
        flash's cuts are taken back, and the frame is searched as a shot's first all the same:
        it was the flash, not this frame, that the search before saw), "new picture" where its
        layout is unlike the frame before's with no cut seen."""
        change: Change | None = None
        before = next(reversed(self._recent.values())) if self._recent else None
        if (start := self._flash_start(index, look)) is not None:
            del self.cuts[bisect.bisect_left(self.cuts, start):]
            change = "flash over"
        elif before is not None and look.cut_from(before):
            self.cuts.append(index)
            change = "cut"
        elif before is not None and max(look.spread, before.spread) >= FLAT_SPREAD and \
                look.correlation(before) < NEW_PICTURE_CORRELATION:
            change = "new picture"
        self._recent[index] = look
        while len(self._recent) > FLASH_FRAMES + 1:
            self._recent.popitem(last=False)
        return change

    def _flash_start(self, index: int, look: Look) -> int | None:
        """The first cut of a flash that frame `index` ends, if it does: the earliest cut within
        FLASH_FRAMES whose frame before it shows this picture, every frame since brighter and
        still that picture."""
        for cut in self.cuts[bisect.bisect_left(self.cuts, index - FLASH_FRAMES):]:
            before = self._recent.get(cut - 1)
            if before is None or look.cut_from(before) or look.correlation(before) < FLASH_CORRELATION:
                continue
            flash = [self._recent[n] for n in range(cut, index)]
            if all(lit.level >= before.level + FLASH_LIFT and lit.correlation(before) >= FLASH_ITSELF_CORRELATION
                   for lit in flash):
                return cut
        return None
