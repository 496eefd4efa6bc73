"""The lock on a plan file that a veil process is to save: a `veil review` holds it while it runs, a
run with --save-plan while it saves. Two of them saving one plan each save their own over the
other's: a face a reviewer drew was gone from the file once a run started beside the review saved
the plan it had made, neither saying a word.

The lock is flock(2) on `<plan>.veil-lock` beside the plan (the plan itself is replaced at every
save, a new file each time), released by the system however the process ends, and the file removed
when it ends normally."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
from pathlib import Path

LOCK_SUFFIX = ".veil-lock"


def lock_path(plan_path: Path) -> Path:
    # A name of veil's own: `--save-plan yarn` must not take, and then remove, a yarn.lock.
    return plan_path.with_name(plan_path.name + LOCK_SUFFIX)


class PlanLocked(ValueError):
    """Another veil process holds the plan."""


# Never through a link (a link planted there made a file wherever it pointed, run as root anywhere),
# and never waiting on a pipe (opening one for reading waits for a writer, for ever).
LOCK_OPEN = os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK


def _opened_lock_file(path: Path) -> int:
    """The lock file at `path`, made if need be (LOCK_OPEN), and a regular file: never a pipe or a
    device."""
    try:
        fd = os.open(path, LOCK_OPEN | os.O_CREAT, 0o600)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise OSError(errno.ELOOP, "a symbolic link: veil writes nothing through a link", str(path)) from None
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(errno.EINVAL, "not a regular file", str(path))
    return fd


class PlanLock:
    """A plan held by this process until `release`."""

    def __init__(self) -> None:
        self.path: Path | None = None
        self.fd: int | None = None

    def take(self, plan_path: Path) -> str | None:
        """Hold the plan at `plan_path`; PlanLocked if another process does, OSError if the lock file
        cannot be made. Where the file system has no locks (some network mounts), why: a second
        process saving the plan at the same time would go unnoticed."""
        path = lock_path(plan_path)
        while True:
            fd = _opened_lock_file(path)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise PlanLocked(path) from None
            except OSError as error:
                os.close(fd)
                with contextlib.suppress(OSError):
                    path.unlink()
                return error.strerror or str(error)
            try:  # the file taken is still the one at the path (not one a process ending removed)
                if os.stat(path).st_ino == os.fstat(fd).st_ino:
                    self.path, self.fd = path, fd
                    return None
            except FileNotFoundError:
                pass
            os.close(fd)

    def release(self) -> None:
        if self.fd is None or self.path is None:
            return
        with contextlib.suppress(OSError):
            # Still locked: no other process takes this file as it goes. Only this one's own file
            # (one removed by hand and made anew by a second process is that process's).
            if os.stat(self.path).st_ino == os.fstat(self.fd).st_ino:
                self.path.unlink()
        os.close(self.fd)
        self.fd = None


def held(plan_path: Path) -> bool:
    """Whether another process holds the plan at `plan_path` now."""
    try:
        fd = os.open(lock_path(plan_path), LOCK_OPEN)
    except OSError:  # no lock file: nothing holds the plan
        return False
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):  # no lock of veil's: taking it is refused, naming it
            return False
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)  # let go at once, as the file is closed
    except BlockingIOError:
        return True
    except OSError:  # a file system without locks: nothing can hold the plan there
        return False
    finally:
        os.close(fd)
    return False
