"""Pixels for the review page: photos and single video frames, original and redacted.

Video frames are served one image per frame index (decoded with PyAV by seeking) rather
than streaming the video into the browser: stepping is then exact to the frame, and the
redacted preview is made by the same renderer the export uses.
"""

from __future__ import annotations

import bisect
import contextlib
import io
import secrets
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import av
import av.error
import numpy as np
from PIL import Image

from veil.animation import animation_frames
from veil.detect import over_backdrop, transparency
from veil.fferror import readable_packets
from veil.imagefile import ImageError, read_photo, to_srgb
from veil.names import shown
from veil.pixels import as_rgb8
from veil.plan import Box, MediaPlan, Region, RenderSettings
from veil.render import redact_frame
from veil.tonemap import frame_rgb
from veil.video import planned_stream, rotation_of
from veil.videofile import VideoError, open_input, video_stream

# Display images are downscaled to this longest side: the page draws boxes in image
# coordinates over whatever size the picture has, and a 24 MP JPEG per step is slow.
DISPLAY_SIDE = 1600
THUMB_SIDE = 320
# Stepping forward decodes on from the current position up to this many frames;
# further jumps seek to the nearest keyframe instead.
DECODE_AHEAD = 48
# Where a seek lands past the frame asked for (MPEG-TS seeks by bytes, onto the next keyframe, or
# past the last), it is tried again from this many seconds earlier, then from the start (None).
SEEK_BACK_S = (1.0, 5.0, None)


class FrameError(ValueError):
    """A frame that cannot be decoded."""


@contextlib.contextmanager
def still_readable(path: Path) -> Iterator[None]:
    """A media file that cannot be opened now (moved, deleted or replaced since the review began)
    is a FrameError the page says, not a server error with a traceback in the terminal."""
    try:
        yield
    except (ImageError, VideoError) as error:
        raise FrameError(f"{shown(path.name)} cannot be read: {error}") from None


class LRU:
    """A small least-recently-used cache (decoded frames, encoded previews)."""

    def __init__(self, size: int):
        self.size = size
        self.items: OrderedDict = OrderedDict()

    def get(self, key):
        if key in self.items:
            self.items.move_to_end(key)
            return self.items[key]
        return None

    def put(self, key, value) -> None:
        self.items[key] = value
        self.items.move_to_end(key)
        while len(self.items) > self.size:
            self.items.popitem(last=False)


def upright(frame: av.VideoFrame) -> np.ndarray:
    """A decoded frame as upright RGB, turned as `plan_video` turns it (the display matrix of phone video)."""
    pixels = frame_rgb(frame)  # a PQ or HLG frame tone-mapped: shown as players show it, not grey and flat
    turns = rotation_of(frame)
    return np.ascontiguousarray(np.rot90(pixels, turns)) if turns else pixels


class FrameSequence:
    """Frames of a video or an animation by index."""

    def frame(self, index: int) -> np.ndarray:
        raise NotImplementedError

    def frames(self, first: int, last: int) -> Iterator[tuple[int, np.ndarray]]:
        """Frames first..last in either direction (backwards in chunks, so memory stays bounded)."""
        step = 1 if last >= first else -1
        if step == 1:
            for index in range(first, last + 1):
                yield index, self.frame(index)
            return
        for end in range(first, last - 1, -DECODE_AHEAD):
            start = max(last, end - DECODE_AHEAD + 1)
            chunk = [(i, self.frame(i)) for i in range(start, end + 1)]
            yield from reversed(chunk)


class VideoFrames(FrameSequence):
    """Random access to the frames of one video by index; one decoder, used under a lock."""

    def __init__(self, media: MediaPlan):
        self.media = media
        self.path = Path(media.path)
        self.lock = threading.Lock()
        self.container: av.container.InputContainer | None = None
        self.stream: av.video.stream.VideoStream | None = None
        self.decoded: Iterator[av.VideoFrame] | None = None
        self.position = -1  # index of the last frame the decoder gave
        self.cache = LRU(16)
        # Frames planning timed in decoding order (an AVI's with B-frames: its presentation times
        # are made up and run backwards) are not found by their time: counted from the start.
        self.counted = "decoding_times_from" in media.detection.get("stream", {})

    def frame(self, index: int) -> np.ndarray:
        with self.lock:
            cached = self.cache.get(index)
            if cached is not None:
                return cached
            if not (self.decoded is not None and self.position < index <= self.position + DECODE_AHEAD):
                self._seek(index)
            retries = iter(SEEK_BACK_S)
            while True:
                for pixels in self._advance():
                    if self.position == index:
                        return pixels
                    if self.position > index:
                        break
                else:
                    if self.position >= 0:
                        break  # decoded to the end without it (a seek that found nothing is tried again)
                if (earlier := next(retries, ...)) is ...:
                    break
                self._seek(index, earlier)
            raise FrameError(f"frame {index} of {shown(self.path.name)} cannot be decoded")

    def _seek(self, index: int, earlier: float | None = 0.0) -> None:
        """To the last keyframe before frame `index`, looked for from `earlier` seconds before it
        (None: decoded from the start)."""
        if self.container is None:
            self._open()
        stream = self.stream
        target = self._time(index)
        if (target is None or earlier is None or index == 0 or stream.time_base is None or stream.start_time is None
                or self.counted):
            # A bare stream (.h264) has no timestamps to seek by or to know a frame by, and frames
            # timed in decoding order are not known by theirs: decoded from the start, counted.
            try:
                self.container.seek(0)
            except av.error.FFmpegError:  # a bare H.264 or HEVC stream cannot seek at all: opened afresh
                self.container.close()
                self._open()
                stream = self.stream
        else:
            # A little before the frame's time (a timestamp, the stream's start included): the
            # nearest earlier keyframe is found from there.
            self.container.seek(int(max(0.0, target - earlier - 0.001) / stream.time_base), stream=stream, backward=True)
        self.decoded = self._decoded(stream)
        self.position = -1

    def _open(self) -> None:
        self.container = None
        with still_readable(self.path):
            container = open_input(self.path)
            try:
                # Configures the decoder (once, before it opens): a damaged file planned with
                # --salvage as it was decoded then.
                self.stream = video_stream(container, exact=self.media.salvaged_damage() is not None,
                                           planned=planned_stream(self.media))
            except VideoError:  # replaced by a file without the video stream: opened again next time
                container.close()
                raise
            self.container = container

    def _decoded(self, stream: av.video.stream.VideoStream) -> Iterator[av.VideoFrame]:
        """Frames from where the container stands, past any packet that cannot be decoded (a damaged
        video planned with --salvage: the plan has no frame of it), up to where the data cannot be read."""
        assert self.container is not None
        for packet in readable_packets(self.container, [stream], []):
            try:
                frames = stream.decode(packet)
            except av.error.FFmpegError:
                continue
            yield from frames

    def _advance(self) -> Iterator[np.ndarray]:
        assert self.decoded is not None
        for frame in self.decoded:
            if not self._planned(frame):
                continue
            self.position = self._index_of(frame)
            pixels = upright(frame)
            self.cache.put(self.position, pixels)
            yield pixels

    def _time(self, index: int) -> float | None:
        times = self.media.frame_times
        return times[index] if index < len(times) else None

    def _planned(self, frame: av.VideoFrame) -> bool:
        """Whether the frame is one the plan has: a damaged video's decoder may give a frame out of
        time order, which planning left out (veil.videofile.Damage)."""
        if frame.time is None or not self.media.frame_times or self.counted:
            return True
        return self.media.at_planned_time(self._index_of(frame), frame.time)

    def _index_of(self, frame: av.VideoFrame) -> int:
        """A decoded frame's index: matched by time to the plan's frame times, else counted."""
        times = self.media.frame_times
        following = self.position + 1
        if frame.time is None or not times or self.counted:
            return following
        if self.position >= 0 and following < len(times) and self.media.at_planned_time(following, frame.time):
            return following  # the next frame: one of two at the same time is the second, not the first again
        at = bisect.bisect_left(times, frame.time - 1e-6)
        if at == len(times):
            return len(times) - 1
        if at > 0 and abs(times[at - 1] - frame.time) < abs(times[at] - frame.time):
            return at - 1
        return at


class AnimationFrames(FrameSequence):
    """The frames of an animated image by index, read as its export reads them (Pillow, each frame
    composited whole, in sRGB, cut to the animation's screen: `veil.animation`). PyAV showed no
    frame of an animated WebP, could not find a frame shown for no time (0 ms, as many GIFs have
    them) by its time, and showed another in its place. Frames are composited in order: one before
    the last read is read again from the first."""

    def __init__(self, media: MediaPlan):
        self.media = media
        self.path = Path(media.path)
        self.lock = threading.Lock()
        self.read: Iterator[tuple[np.ndarray, float]] | None = None
        self.position = -1  # index of the last frame read
        self.cache = LRU(16)

    def frame(self, index: int) -> np.ndarray:
        with self.lock:
            cached = self.cache.get(index)
            if cached is not None:
                return cached
            if self.read is None or index <= self.position:
                self.read, self.position = animation_frames(self.path), -1
            try:
                with still_readable(self.path):
                    for whole, _ in self.read:
                        self.position += 1
                        # Transparent frames over a checkerboard, as a transparent photo is shown.
                        pixels = as_displayed(np.ascontiguousarray(whole[:self.media.height, :self.media.width]))
                        self.cache.put(self.position, pixels)
                        if self.position == index:
                            return pixels
                raise FrameError(f"frame {index} of {shown(self.path.name)} cannot be decoded")
            except FrameError:
                self.read = None  # read again from the first frame next time (the file put back, say)
                raise


class MediaPixels:
    """Original and redacted display images of every media file in a session."""

    def __init__(self, media: list[MediaPlan]):
        self.videos: dict[int, FrameSequence] = {i: VideoFrames(m) if m.kind == "video" else AnimationFrames(m)
                                                 for i, m in enumerate(media) if m.kind in ("video", "animation")}
        self.photos = LRU(4)
        self.encoded = LRU(256)
        self.lock = threading.Lock()
        self.secret = secrets.token_bytes(16)  # one blur shading for the session's previews

    def pixels(self, index: int, media: MediaPlan, frame: int) -> np.ndarray:
        """Upright 8-bit RGB pixels of one frame (a photo is frame 0)."""
        if media.kind != "image":
            return self.videos[index].frame(frame)
        with self.lock:
            cached = self.photos.get(index)
        if cached is None:
            # In sRGB, as a viewer shows the export (converted, or tagged with its profile).
            with still_readable(Path(media.path)):
                cached = as_displayed(to_srgb(read_photo(Path(media.path))).pixels)
            with self.lock:
                self.photos.put(index, cached)
        return cached

    def jpeg(self, index: int, media: MediaPlan, frame: int, hide: Hide | None, settings: RenderSettings,
             revision: int, thumb: bool = False) -> bytes:
        """A display JPEG of one frame: original, or with `hide` applied (as of plan `revision`)."""
        key = (index, frame, hide is not None, revision if hide is not None else -1, thumb)
        with self.lock:
            cached = self.encoded.get(key)
        if cached is not None:
            return cached
        pixels = self.pixels(index, media, frame)
        if hide is not None:
            pixels = redact_frame(pixels.copy(), hide.boxes, settings, cover_all=hide.cover_all, secret=self.secret)
        data = encode_jpeg(pixels, THUMB_SIDE if thumb else DISPLAY_SIDE)
        with self.lock:
            self.encoded.put(key, data)
        return data


# A transparent photo is shown over a checkerboard, as image editors show it: over one colour,
# ink of that colour would vanish (a face drawn in the alpha channel alone, over black colour
# channels, looked like a box over nothing, which a reviewer could delete as a false alarm).
CHECKER_CELL = 16
CHECKER_LEVELS = (255, 96)


def as_displayed(image: np.ndarray) -> np.ndarray:
    """Upright 8-bit RGB pixels of a photo as the review shows them: composited over a
    checkerboard where it is transparent."""
    colour = as_rgb8(image)
    alpha = transparency(image)
    if alpha is None:
        return colour
    rows, columns = (np.arange(n) // CHECKER_CELL for n in alpha.shape)
    checker = np.where((rows[:, None] + columns[None, :]) % 2 == 0, *CHECKER_LEVELS)
    return over_backdrop(colour, alpha, checker)


@dataclass
class Hide:
    """What the renderer hides in one frame, taken from the plan under the session's lock."""

    boxes: list[tuple[Region, Box]]
    cover_all: bool


def frame_hide(media: MediaPlan, frame: int) -> Hide:
    """The same boxes `render_photo` / `render_video` hide in this frame."""
    # Copies of the regions without their boxes: a reviewer's later edit must not change
    # them while the frame renders outside the lock.
    boxes = [(replace(r, boxes={}), r.boxes[frame]) for r in media.regions if not r.keep_visible and frame in r.boxes]
    return Hide(boxes, frame in media.covered_frames())


def encode_jpeg(pixels: np.ndarray, side: int) -> bytes:
    image = Image.fromarray(pixels)
    if max(image.size) > side:
        image.thumbnail((side, side), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=88)
    return buffer.getvalue()
