"""FFmpeg's errors, in the words a user can act on, and reading past them where a file is damaged."""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
from collections.abc import Callable, Iterator
from typing import Any

import av
import av.error


def reason(error: Exception) -> str:
    """FFmpeg's words alone: its errors also name the input file (the message already starts with
    it) or an internal function ('avcodec_send_packet()'), which tell the user nothing."""
    return getattr(error, "strerror", None) or str(error)


@functools.cache
def _errno_location() -> Callable[[], Any] | None:
    """The C library's function that gives the calling thread's errno, to read and clear (None
    where it cannot be found)."""
    libc = ctypes.CDLL(None)
    where = getattr(libc, "__errno_location", None) or getattr(libc, "__error", None)  # glibc and musl; BSDs
    if where is not None:
        where.restype = ctypes.POINTER(ctypes.c_int)
    return where


@contextlib.contextmanager
def external_memory_failures_said() -> Iterator[None]:
    """An FFmpeg call in which an external library (x264, x265) failed for want of memory raises
    MemoryError, which veil says as such. FFmpeg says only "Generic error in an external library"
    (x264 cannot open, say); the allocation the system refused left ENOMEM in this thread's errno,
    which is cleared first, so that an older failure is not taken for this one."""
    location = _errno_location()
    errno_now = location() if location is not None else None
    if errno_now is not None:
        errno_now[0] = 0
    try:
        yield
    except av.error.ExternalError as error:
        if errno_now is not None and errno_now[0] == errno.ENOMEM:
            raise MemoryError(f"{reason(error)}: the system refused it memory") from error
        raise


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
