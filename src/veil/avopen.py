"""Every file FFmpeg reads or writes for veil, opened as a local file and only as one.

FFmpeg takes a name that starts like a URL scheme for one of its network protocols: a file named
`tcp:host:443.mp4` in a folder handed to veil made it connect to that host as the folder was
searched (telling a stranger where and when the footage was being worked on), `pipe:0.mp4` read the
standard input, `cache:clip.mp4` another file. So a name is made absolute (`/...` is no scheme), and
FFmpeg is allowed the `file` protocol alone, which also keeps a playlist or a concat list among the
inputs from having it fetch what the list names.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import av

LOCAL_ONLY = {"protocol_whitelist": "file"}


def open_local(path: Path | str, mode: str = "r", container_options: dict[str, str] | None = None,
               **options: Any) -> Any:
    """`av.open` of the local file at `path`."""
    return av.open(os.path.abspath(path), mode, container_options={**(container_options or {}), **LOCAL_ONLY},
                   **options)
