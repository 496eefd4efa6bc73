"""FFmpeg's errors, in the words a user can act on."""

from __future__ import annotations


def reason(error: Exception) -> str:
    """FFmpeg's words alone: its errors also name the input file (the message already starts with
    it) or an internal function ('avcodec_send_packet()'), which tell the user nothing."""
    return getattr(error, "strerror", None) or str(error)
