"""Test videos made from real clips: re-encoded (rotated, 10-bit, joined, ...) and damaged."""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def reencode(source: Path, target: Path, frames: int, times: Callable[[int], float] | None = None,
             **stream_args) -> None:
    """A new real clip from a real one: rotated, 10-bit, or two clips joined (cut). `times`: each
    frame's time in seconds, by its number (default: 30 a second)."""
    sources = source if isinstance(source, list) else [source]
    # Index at the front (as veil writes it), so a truncated copy still opens; movflags=None: at the end.
    movflags = stream_args.pop("movflags", "+faststart")
    with av.open(str(target), "w", container_options={"movflags": movflags} if movflags else {}) as out:
        stream = out.add_stream(stream_args.pop("codec", "libx264"), rate=30)
        rotation = stream_args.pop("rotation", 0)
        for key, value in stream_args.items():
            setattr(stream, key, value)
        if rotation:
            stream.set_display_rotation(rotation)
        n = 0
        for path in sources:
            with av.open(str(path)) as c:
                for i, frame in enumerate(c.decode(video=0)):
                    if i >= frames:
                        break
                    if n == 0:
                        stream.width, stream.height = frame.width, frame.height
                    new = frame.reformat(width=stream.width, height=stream.height, format=stream.pix_fmt)
                    new.pts, new.time_base = (n, Fraction(1, 30)) if times is None else (round(times(n) * 1000),
                                                                                         Fraction(1, 1000))
                    out.mux(stream.encode(new))
                    n += 1
        out.mux(stream.encode(None))


def damaged(data: bytes, damage: str) -> bytes:
    """A video file's bytes "truncated" (its last third cut off, as a recording that crashed) or
    "garbled" (bytes flipped across its middle, as on a failing card)."""
    if damage == "truncated":
        return data[: len(data) * 2 // 3]
    garbled = bytearray(data)
    for i in range(300):
        garbled[len(garbled) // 2 + i * 31] ^= 0x5A
    return bytes(garbled)


def clip_of(target: Path, pictures: list[np.ndarray], rate: int = 25, crf: int | None = None) -> Path:
    """An H.264 clip of the RGB pictures, one a frame (their sides cut to even for yuv420p), at
    x264's default quality or `crf`."""
    height, width = (side // 2 * 2 for side in pictures[0].shape[:2])
    with av.open(str(target), "w") as container:
        stream = container.add_stream("libx264", rate=rate, options={"crf": str(crf)} if crf is not None else {})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for picture in pictures:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(picture[:height, :width]), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return target


def clip_with_copied_stream(target: Path, pictures: list[np.ndarray], source: Path, kind: str,
                            options: dict[str, str] | None = None) -> Path:
    """An H.264 clip of the RGB pictures at 25 fps (x264 `options`), beside the first stream of `kind`
    ("audio", "subtitles") of the file `source`, its packets copied as they are."""
    height, width = pictures[0].shape[:2]
    with av.open(str(source)) as given, av.open(str(target), "w") as container:
        video = container.add_stream("libx264", rate=25, options=options or {})
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        original = getattr(given.streams, kind)[0]
        copied = container.add_stream_from_template(original)
        for packet in given.demux(original):
            if packet.dts is not None:
                packet.stream = copied
                container.mux(packet)
        for index, picture in enumerate(pictures):
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
            frame.pts = index
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
    return target
