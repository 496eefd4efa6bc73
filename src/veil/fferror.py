"""FFmpeg's errors, in the words a user can act on, and reading past them where a file is damaged."""

from __future__ import annotations

from collections.abc import Iterator

import av
import av.error


def reason(error: Exception) -> str:
    """FFmpeg's words alone: its errors also name the input file (the message already starts with
    it) or an internal function ('avcodec_send_packet()'), which tell the user nothing."""
    return getattr(error, "strerror", None) or str(error)


def readable_packets(container: av.container.InputContainer, streams: list[av.stream.Stream],
                     failures: list[av.error.FFmpegError]) -> Iterator[av.Packet]:
    """The streams' packets, up to where the container cannot be read on (a damaged file): there
    they end, the reader's error appended to `failures`."""
    demuxed = container.demux(*streams)
    while True:
        try:
            packet = next(demuxed, None)
        except av.error.FFmpegError as error:
            failures.append(error)
            return
        if packet is None:
            return
        yield packet
