"""Whose program is at the other end of a connection to the review server.

Linux lists every TCP socket with the user id that owns it (/proc/net/tcp). The server answers
only the programs of the user who started it (and root's, which can read that user's cookie
anyway): another user of the machine who learns the launch code, from the browser's command line
or a screen, still cannot open the review, with its original photos and videos. Where the list
cannot be read (not Linux), the code is kept off every command line instead (`launch_page`).
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

TCP_TABLE = Path("/proc/net/tcp")
ROOT = 0


def owners_known() -> bool:
    """Whether the owner of a connection can be found here (Linux)."""
    return os.access(TCP_TABLE, os.R_OK)


def connection_owner(client: tuple[str, int], server: tuple[str, int]) -> int | None:
    """The user id owning the socket at `client` (host, port) connected to `server`; None where
    the list cannot be read or holds no such socket (the program has gone)."""
    try:
        rows = TCP_TABLE.read_text().splitlines()[1:]
        local, remote = _socket_address(*client), _socket_address(*server)
    except (OSError, ValueError):
        return None
    for row in rows:
        fields = row.split()
        if len(fields) > 7 and fields[1] == local and fields[2] == remote:
            return int(fields[7])
    return None


def is_own(client: tuple[str, int], server: tuple[str, int]) -> bool:
    """Whether the program at `client` is this user's (or root's)."""
    return connection_owner(client, server) in {os.getuid(), ROOT}


def _socket_address(host: str, port: int) -> str:
    """An IPv4 address and port as the kernel's table writes them: the address's four bytes read
    as one number in the machine's byte order, both in hexadecimal."""
    number = int.from_bytes(socket.inet_aton(host), sys.byteorder)
    return f"{number:08X}:{port:04X}"
