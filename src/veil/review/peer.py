"""Whose program is at the other end of a connection to the review server.

Linux lists every TCP socket with the user id that owns it (/proc/net/tcp). The server lets only
the programs of the user who started it (and root's, which can read that user's cookie anyway)
exchange the launch code for the session's cookie: another user of the machine who learns the
code, from the browser's command line or a screen, still cannot open the review, with its original
photos and videos. Where the list does not show this process's own connections (not Linux, a
sandbox), the code is kept off every command line instead (`launch_page`).
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
from pathlib import Path

TCP_TABLE = Path("/proc/net/tcp")
ROOT = 0
ESTABLISHED = "01"  # the table's code for a connection that is up


def sees_own_connections(listening: socket.socket) -> bool:
    """Whether the owner of a connection can be found here: a connection of this process's own to
    `listening` (the server's socket, before it serves: nothing else is connected by veil) is
    looked up, and must be found as this user's."""
    with contextlib.ExitStack() as sockets:
        try:
            client = sockets.enter_context(socket.create_connection(listening.getsockname(), timeout=5))
            sockets.enter_context(listening.accept()[0])
        except OSError:
            return False
        return connection_owner(client.getsockname(), listening.getsockname()) == os.getuid()


def connection_owner(client: tuple[str, int], server: tuple[str, int]) -> int | None:
    """The user id owning the socket at `client` (host, port) connected to `server`; None where
    the list cannot be read or holds no such socket that a program still holds and that is up (one
    closed at once is the kernel's, listed as root's)."""
    try:
        rows = TCP_TABLE.read_text().splitlines()[1:]
        local, remote = _socket_address(*client), _socket_address(*server)
        for row in rows:
            fields = row.split()
            if len(fields) > 9 and fields[1:4] == [local, remote, ESTABLISHED] and fields[9] != "0":
                return int(fields[7])
    except (OSError, ValueError):
        return None
    return None


def is_own(client: tuple[str, int], server: tuple[str, int]) -> bool:
    """Whether the program at `client` is this user's (or root's)."""
    return connection_owner(client, server) in {os.getuid(), ROOT}


def _socket_address(host: str, port: int) -> str:
    """An IPv4 address and port as the kernel's table writes them: the address's four bytes read
    as one number in the machine's byte order, both in hexadecimal."""
    number = int.from_bytes(socket.inet_aton(host), sys.byteorder)
    return f"{number:08X}:{port:04X}"
