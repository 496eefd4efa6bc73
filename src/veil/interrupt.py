"""The user's stop (Ctrl-C, SIGTERM, SIGHUP) and the temporary files it must never leave behind.

A stop is raised as `Stopped` at the next line Python runs, wherever that is, so every
`finally` on the way out runs. That alone is not enough: a stop that lands while a temporary
folder is being made or removed (its name not yet known, or half its files deleted) would leave
a copy of an unredacted input in the temp folder. So temporary files are made and removed with
stops held back, and each is listed while it exists; whatever a stop still finds listed, the
last resort (`remove_leftovers`) removes.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import tempfile
import threading
from pathlib import Path
from typing import Iterator

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Stopped(BaseException):
    """A stop signal. A BaseException, so no handler of ordinary errors swallows it."""


_held = 0
_pending: int | None = None
_temporary: set[Path] = set()


def catch_stops() -> None:
    """In the main thread of the process that decides what stops: the signals become `Stopped`.
    Whatever is still listed when the interpreter exits (a review's export thread, say) goes too."""
    for signum in STOP_SIGNALS:
        signal.signal(signum, _on_stop)
    atexit.register(remove_leftovers)


def ignore_stops() -> None:
    """Once the stop is being handled: a second one must not interrupt the last clean-up."""
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)


@contextlib.contextmanager
def stops_blocked_for_children() -> Iterator[None]:
    """A process started inside begins with the stop signals blocked (a child inherits the mask of
    the thread that starts it), so a Ctrl-C that reaches it while it imports cannot end it with a
    traceback; it unblocks them once its own handling is set (`end_on_stop`)."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def end_on_stop() -> None:
    """In a worker process that SIGTERM or SIGHUP ends (its pool's shutdown, a whole process
    group stopped): it still ends at once, but removes its temporary files first. Ctrl-C is
    ignored there: the main process decides, and lets the files in progress finish whole."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _end_now)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)


def _end_now(signum: int, _frame: object) -> None:
    remove_leftovers()
    os._exit(128 + signum)


def _on_stop(signum: int, _frame: object) -> None:
    global _pending
    if _held:
        _pending = _pending or signum
    else:
        _pending = None  # one that was pending when this landed is this stop
        raise Stopped(signum)


@contextlib.contextmanager
def stops_held() -> Iterator[None]:
    """A stop that arrives inside is raised when the block ends. Signals are handled in the main
    thread only, so only there is anything held (another thread's block runs as it is)."""
    global _held, _pending
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _held += 1
    try:
        yield
    finally:
        _held -= 1
        if not _held and _pending is not None:
            signum, _pending = _pending, None
            raise Stopped(signum)


@contextlib.contextmanager
def temporary_folder(prefix: str) -> Iterator[Path]:
    """A private folder in the system temp folder, removed however the block ends."""
    folder: Path | None = None
    try:
        with stops_held():
            folder = Path(tempfile.mkdtemp(prefix=prefix))
            _temporary.add(folder)
        yield folder
    finally:
        with stops_held(), contextlib.suppress(OSError):  # left listed: the user is told at exit
            if folder is not None:
                _remove(folder)


@contextlib.contextmanager
def temporary_file(folder: Path, prefix: str, suffix: str) -> Iterator[Path]:
    """An empty file (mode 0600) in `folder`, removed at the end unless the block moved it away."""
    temp: Path | None = None
    try:
        with stops_held():
            fd, name = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=folder)
            os.close(fd)
            temp = Path(name)
            _temporary.add(temp)
        yield temp
    finally:
        with stops_held(), contextlib.suppress(OSError):
            if temp is not None:
                _remove(temp)


@contextlib.contextmanager
def temporary_name(path: Path) -> Iterator[Path]:
    """`path`, for a file that a library writes under a name of its own choosing; removed at the
    end unless the block moved it away."""
    with stops_held():
        _temporary.add(path)
    try:
        yield path
    finally:
        with stops_held(), contextlib.suppress(OSError):
            _remove(path)


def remove_leftovers() -> list[Path]:
    """The last resort, once a stop has ended the work or at exit: remove every temporary file
    still listed. Returns those that could not be removed, for the user to be told."""
    global _pending
    _pending = None  # stops are over: nothing is left to raise one into
    for path in list(_temporary):
        with contextlib.suppress(OSError):
            _remove(path)
    return sorted(_temporary)


def _remove(path: Path) -> None:
    """Remove a temporary file or folder; it stays listed if any of it is left (OSError)."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)
    _temporary.discard(path)
