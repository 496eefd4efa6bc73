"""The user's stop (Ctrl-C, SIGTERM, SIGHUP) and the temporary files it must never leave behind.

A stop is raised as `Stopped` at the next line Python runs, wherever that is, so every
`finally` on the way out runs. That alone is not enough: a stop that lands while a temporary
folder is being made or removed (its name not yet known, or half its files deleted) would leave
a copy of an unredacted input in the temp folder. So temporary files are made and removed with
stops held back, and each is listed while it exists; whatever a stop still finds listed, the
last resort (`remove_leftovers`) removes.

Once a stop is raised, a second one ends veil at once (`end_on_second_stop`): the first one's
way out may wait, for the detector's threads to finish the work they are in, say, and left to
interrupt that wait, the interpreter would end while those threads are inside a library's C++
code, which aborts the process.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import ctypes.util
import fcntl
import functools
import json
import multiprocessing
import os
import re
import resource
import shutil
import signal
import stat
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable, Iterable, Iterator

from veil.names import shown

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Stopped(BaseException):
    """A stop signal. A BaseException, so no handler of ordinary errors swallows it."""


_held = 0
_pending: int | None = None
_temporary: dict[str, Callable[[], None]] = {}  # name -> how to remove it
_said_at_stop = ""  # what the command adds to a stop's line (`say_at_stop`)
_answer_in_json = False  # a second stop's answer on standard output too (`answer_stops_in_json`)


def no_core_dumps(for_good: bool = True) -> None:
    """No core dump of this process, nor of those it starts (they inherit the limit), whatever
    the system allows: a core holds the process's memory, decoded and unredacted pictures among
    it, and would be an unredacted copy of the input left on disk. First thing in the `veil`
    command, and in each worker that runs veil's work (one started by a library caller, or a
    remote Dask worker, does not inherit the command's limit).

    The limit alone is not enough: where the system hands cores to a program (a `core_pattern`
    starting with "|": systemd-coredump, apport, a vendor's crash reporter), Linux hands it the
    whole core whatever the limit, and whether it keeps it is that program's choice (systemd-coredump
    honours the limit; not every one does). So the process's mappings are also left out of any core
    (`coredump_filter` 0, inherited by the processes it starts): a core is then registers and notes
    (the command line and mapped files' names among them), no memory. (Marking the process
    non-dumpable would stop the core outright, but also shuts a process run by a user out of some
    of its own /proc files, its io and environ among them, which the libraries veil runs are free
    to read.)

    Not `for_good` (a library caller's process, which is not veil's own): only the soft limit, which
    that program may raise again once veil is done."""
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0 if for_good else resource.getrlimit(resource.RLIMIT_CORE)[1]))
    with contextlib.suppress(OSError):
        Path("/proc/self/coredump_filter").write_text("0")


def catch_stops() -> None:
    """In the main thread of the process that decides what stops: the signals become `Stopped`.
    Whatever is still listed when the interpreter exits (a review's export thread, say) goes too."""
    for signum in STOP_SIGNALS:
        # One the process was started to ignore stays ignored: `nohup veil ...` must outlive the
        # terminal, and a script's background job a Ctrl-C meant for the script's foreground.
        if signal.getsignal(signum) != signal.SIG_IGN:
            signal.signal(signum, _on_stop)
    if not isinstance(sys.unraisablehook, _LostStops):
        sys.unraisablehook = _LostStops(sys.unraisablehook)
    if not isinstance(sys.excepthook, _QuietStops):
        sys.excepthook = _QuietStops(sys.excepthook)
    atexit.register(remove_leftovers)


# Long enough for the callback that lost a stop to end; short beside a person's wait for it.
LOST_STOP_DELAY_S = 0.05
# A stop lost this many times running is not lost by chance (a garbage-collection callback that
# ran as it landed) but in a library's callback that swallows it each time (FFmpeg reading a file
# object through PyAV, blocked on a stalled server): the next loss ends veil as a second stop does.
LOST_STOP_RESENDS = 3


class _LostStops:
    """sys.unraisablehook: a stop raised where Python cannot raise anything (a weakref callback or a
    `__del__` that the garbage collector happened to run as the signal landed) was printed as an
    ignored exception, with a traceback, and lost: a review server went on serving after SIGTERM.
    Such a stop is delivered again, a moment later and from another thread, so that it lands in the
    main thread's own work once the callback is over (delivered at once, it landed inside this hook
    and was lost again); it is still the first stop, not a second (`end_on_second_stop`). One lost
    `LOST_STOP_RESENDS` times over ends veil at once: delivered again without end, it never ended
    and printed its traceback twenty times a second."""

    def __init__(self, previous: Callable[..., object]):
        self.previous = previous
        self.resent = 0  # only ever the first stop's: a second one ends veil, and is never lost

    def __call__(self, unraisable: object) -> None:
        stop = getattr(unraisable, "exc_value", None)
        if not isinstance(stop, Stopped):
            self.previous(unraisable)
            return
        if self.resent == LOST_STOP_RESENDS:
            _abandon(stop.args[0], "and could not reach the work in progress (a library kept it from veil)")
        self.resent += 1
        for signum in STOP_SIGNALS:
            signal.signal(signum, _on_stop)
        again = threading.Timer(LOST_STOP_DELAY_S, os.kill, args=(os.getpid(), stop.args[0]))
        again.daemon = True
        again.start()


class _QuietStops:
    """sys.excepthook: a library's callback that cannot pass on an exception (Cython's, PyAV's) prints
    it in full before it is lost (to `_LostStops`): a stop is no error, and is not printed. The
    command catches every stop it raises, so no other stop ever reaches this hook."""

    def __init__(self, previous: Callable[..., object]):
        self.previous = previous

    def __call__(self, kind: type[BaseException], error: BaseException, traceback: object) -> None:
        if not isinstance(error, Stopped):
            self.previous(kind, error, traceback)


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


PR_SET_PDEATHSIG = 1  # Linux prctl(2): a signal for this process when its parent dies


def end_with_parent(parent: int) -> None:
    """In a worker process: end (SIGTERM, so its temporary files go, `end_on_stop`) as soon as
    the main process `parent` dies (killed, out of memory), rather than go on writing outputs
    that no one records. Linux tells the worker at once; elsewhere a thread looks every second."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        watched = libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) == 0
    except (OSError, AttributeError):
        watched = False
    if not watched:
        def watch() -> None:
            while os.getppid() == parent:
                time.sleep(1)
            os.kill(os.getpid(), signal.SIGTERM)

        threading.Thread(target=watch, name="veil-parent-watch", daemon=True).start()
    if os.getppid() != parent:  # it died before the watch began
        os.kill(os.getpid(), signal.SIGTERM)


def end_on_second_stop() -> None:
    """Once a stop is raised, while veil waits for the work in flight (photos in worker processes,
    the detector's threads): one more stop ends the worker processes (each removes its temporary
    files first) and then veil, at once; the work in flight is not recorded as done. The way out
    of a worker that does not finish."""
    for signum in STOP_SIGNALS:
        signal.signal(signum, _abandon_work)


def say_at_stop(words: str) -> None:
    """What a stop's line adds from now on, "; ..." (where the report is, or that none was
    written): a user who stops a run must not take an earlier run's report for this one's."""
    global _said_at_stop
    _said_at_stop = words


def said_at_stop() -> str:
    return _said_at_stop


def answer_stops_in_json() -> None:
    """--json: a second stop, which ends veil at once, still answers with one JSON object."""
    global _answer_in_json
    _answer_in_json = True


def _abandon_work(signum: int, _frame: object) -> None:
    _abandon(signum, "again")


def _abandon(signum: int, how: str) -> None:
    """End veil at once, the files in progress abandoned, saying so (stopped `how`)."""
    said = f"stopped ({signal.Signals(signum).name}) {how}: the files in progress were abandoned{_said_at_stop}"
    with contextlib.suppress(OSError):  # a closed terminal (EIO): the exit code still says what ended veil
        os.write(2, f"veil: {said}\n".encode())
    if _answer_in_json:  # the files it finished are in the manifest, each recorded as it finished
        with contextlib.suppress(OSError):
            os.write(1, (json.dumps({"error": said, "exit_code": 128 + signum}) + "\n").encode())
    end_workers()
    _end_now(signum, None)


def end_workers() -> None:
    """End this process's worker processes at once (SIGTERM: each removes its temporary files
    first, `end_on_stop`), and wait for them. A local Dask cluster's nanny starts again a worker
    that it lost, and the new one writes into the cluster's scratch folder: it is ended too."""
    deadline = time.monotonic() + 30
    while (workers := multiprocessing.active_children()) and time.monotonic() < deadline:
        for worker in workers:
            worker.terminate()
            # One that is stopped (SIGSTOP, a debugger) takes its SIGTERM only once it runs again:
            # it was waited for in vain, then left behind, stopped.
            with contextlib.suppress(OSError):
                os.kill(worker.pid, signal.SIGCONT)
        for worker in workers:
            worker.join(timeout=max(0.0, deadline - time.monotonic()))
    for worker in multiprocessing.active_children():  # one that would not end: no orphan, its folders removed here
        worker.kill()
        worker.join()
        _say_not_removed(remove_folders_of(worker.pid))


def _end_now(signum: int, _frame: object) -> None:
    _say_not_removed(remove_leftovers())  # the user is told, as at the end of a first stop
    os._exit(128 + signum)


def _say_not_removed(names: Iterable[Path | str]) -> None:
    for name in names:
        with contextlib.suppress(OSError):  # (a closed terminal)
            os.write(2, f"veil: could not remove the temporary {shown(name)} (it may hold an unredacted copy): "
                        "remove it\n".encode())


def _on_stop(signum: int, _frame: object) -> None:
    global _pending
    if _held:
        _pending = _pending or signum
    else:
        _pending = None  # one that was pending when this landed is this stop
        _raise_stop(signum)


def _raise_stop(signum: int) -> None:
    end_on_second_stop()
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
            _raise_stop(signum)


# veil's prefixes ("veil-", "veil-check-", "veil-dask-"), the process id, and mkdtemp's 8 characters.
_TEMPORARY_FOLDER = re.compile(r"veil-(?:[a-z]+-)?(\d+)-[a-z0-9_]{8}")
# A file in each, written once the folder is locked: a folder that only looks like one by its name
# (a user's "veil-2024-holidays"), or one being made, is never taken for one. Removed last.
_MARK = ".veil-temporary"
_folder_locks: dict[Path, int] = {}  # a temporary folder in use -> the descriptor that holds its lock


def temporary_folder(prefix: str) -> contextlib.AbstractContextManager[Path]:
    """A private folder in the system temp folder, removed however the block ends. Its name
    holds this process's id: a worker process that dies without its clean-up leaves it to the
    process that ran it (`remove_folders_of`). A process killed outright leaves it to a later
    run (`remove_folders_of_dead_runs`): the folder's lock, held while it is in use and let go by
    the system when its process ends, tells that run it may take it."""
    return _listed_while_used(lambda: _locked_folder(prefix))


def _locked_folder(prefix: str) -> Path:
    """A new temporary folder, locked, then marked. Where the system takes no lock it is left
    unmarked, and no later run ever takes it (its own process still removes it)."""
    path = Path(tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-"))
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return path
    try:
        fcntl.flock(descriptor, fcntl.LOCK_SH)
        (path / _MARK).touch()
    except OSError:  # no lock to be had, or no room for the mark: left unmarked
        os.close(descriptor)
        return path
    _folder_locks[path] = descriptor
    return path


def remove_folders_of(pid: int) -> list[Path]:
    """Remove the temporary folders that the process `pid`, now dead, made and left (a staged
    copy of an input may be in one); return those that could not be removed."""
    return _remove_folders(of=pid)[1]


def remove_folders_of_dead_runs() -> tuple[list[Path], list[Path]]:
    """Remove this user's temporary folders that veil processes left when they ended without
    their clean-up (killed outright: SIGKILL, the kernel's out-of-memory killer; a crash; a power
    loss): a staged, unredacted copy of an input may be in one. The lock alone decides which:
    a process id may have been taken by another process since, or mean nothing here (a process of
    another container sharing this temp folder), and no live process lets go of its folder's
    lock. Returns the folders removed and those that could not be."""
    return _remove_folders()


def unusable_temp_folder() -> str | None:
    """Why the temporary folder the user named (TMPDIR, or TEMP or TMP, as Python looks for it)
    cannot be used; None where it can, or none is named. Python passes over such a folder without
    a word, to /tmp, /var/tmp or the current folder: with TMPDIR on an encrypted volume not mounted,
    the unredacted copy of an input fetched by URL went to the ordinary disk."""
    for name in ("TMPDIR", "TEMP", "TMP"):
        if named := os.environ.get(name):
            if not os.path.isdir(named):
                why = "is not a folder" if os.path.exists(named) else "does not exist"
            elif not os.access(named, os.W_OK | os.X_OK):
                why = "cannot be written"
            else:
                return None
            return (f"the temporary folder {name}={shown(named)} {why}: veil keeps its working copies there and "
                    f"nowhere else; make it usable, or name another ({name}=...)")
    return None


def say_what_dead_runs_left(say: Callable[[str], None]) -> list[str]:
    """Remove, and `say`, the temporary folders that earlier runs left: the staged copy of an input
    fetched by URL, unredacted, would lie there for anyone who can read the temp folder. Returns
    the lines said (without "veil: "), for a summary that is read by a program rather than a person."""
    removed, left = remove_folders_of_dead_runs()
    lines = [f"removed {len(removed)} temporary folder(s) left by veil runs that ended without cleaning up "
             f"(killed or crashed), e.g. {shown(removed[0])}: copies of their inputs may have been in them"] \
        if removed else []
    lines += [f"cannot remove {shown(path)}, a temporary folder left by a veil run that ended without cleaning "
              "up (a copy of its input may be in it): remove it" for path in left]
    for line in lines:
        say(f"veil: {line}")
    return lines


def _remove_folders(of: int | None = None) -> tuple[list[Path], list[Path]]:
    """Remove this user's marked temporary folders in the temp folder (those of the process `of`
    only, where given) whose lock no process holds (held through the removal, so that two runs
    never remove one folder at once); return those removed and those that could not be."""
    removed: list[Path] = []
    left: list[Path] = []
    try:
        entries = list(os.scandir(tempfile.gettempdir()))
    except OSError:
        return removed, left
    for entry in entries:
        found = _TEMPORARY_FOLDER.fullmatch(entry.name)
        if not found or (of is not None and found[1] != str(of)):
            continue
        try:
            if not (entry.is_dir(follow_symlinks=False) and entry.stat(follow_symlinks=False).st_uid == os.getuid()
                    and stat.S_ISREG(os.lstat(os.path.join(entry.path, _MARK)).st_mode)):
                continue
            descriptor = os.open(entry.path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        except OSError:  # not one of ours, or gone meanwhile
            continue
        try:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:  # in use (or no lock to be had: then nothing is taken)
                continue
            with stops_held():
                _emptied_but_its_mark(Path(entry.path))
                shutil.rmtree(entry.path, ignore_errors=True)
            (left if os.path.lexists(entry.path) else removed).append(Path(entry.path))
        finally:
            os.close(descriptor)
    return removed, left


def _emptied_but_its_mark(path: Path) -> None:
    """Empty a temporary folder of all but its mark, before the folder goes: a removal cut short
    leaves a folder that is still marked, for a later run to take."""
    with contextlib.suppress(OSError):
        for entry in os.scandir(path):
            if entry.name != _MARK:
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path, ignore_errors=True)
                else:
                    with contextlib.suppress(OSError):
                        os.unlink(entry.path)


def temporary_file(folder: Path, prefix: str, suffix: str) -> contextlib.AbstractContextManager[Path]:
    """An empty file (mode 0600) in `folder`, removed at the end unless the block moved it away."""
    def make() -> Path:
        fd, name = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=folder)
        os.close(fd)
        return Path(name)

    return _listed_while_used(make)


@contextlib.contextmanager
def _listed_while_used(make: Callable[[], Path]) -> Iterator[Path]:
    """`make()`'s file or folder, made and listed with stops held back, then removed the same way."""
    with contextlib.ExitStack() as listing:
        with stops_held():
            path = make()
            listing.enter_context(listed_temporary(str(path), functools.partial(_remove_path, path)))
        yield path


@contextlib.contextmanager
def listed_temporary(name: str, remove: Callable[[], None]) -> Iterator[None]:
    """A temporary thing that `remove` deletes (a file here, an object on remote storage), listed
    while the block runs, so that a stop's last resort removes it too; removed when it ends."""
    with stops_held():
        _temporary[name] = remove
    try:
        yield
    finally:
        with stops_held():
            _remove(name)


def remove_leftovers() -> list[str]:
    """The last resort, once a stop has ended the work or at exit: remove every temporary file
    still listed. Returns those that could not be removed, for the user to be told."""
    global _pending
    _pending = None  # stops are over: nothing is left to raise one into
    for name in list(_temporary):
        _remove(name)
    return sorted(_temporary)


def _remove(name: str) -> None:
    """Remove a listed temporary; it stays listed (the user is told at exit) if any of it is left."""
    remove = _temporary.get(name)
    if remove is None:
        return
    try:
        remove()
    except Exception:  # noqa: BLE001 -- whatever the storage raises, the name stays listed
        return
    _temporary.pop(name, None)


def _remove_path(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        if path in _folder_locks:  # a removal cut short (SIGKILL) leaves it marked, for a later run
            _emptied_but_its_mark(path)
        _remove_folder(path)
    else:
        path.unlink(missing_ok=True)
    if (descriptor := _folder_locks.pop(path, None)) is not None:  # the lock goes once the folder is gone
        os.close(descriptor)


def _remove_folder(path: Path, tries: int = 3) -> None:
    """Remove a folder that another thread may be emptying meanwhile (a Dask nanny, in this
    process, removes a worker's folder in the cluster's scratch folder when the worker ends): an
    entry gone before rmtree reached it is no failure, and the folder is gone through again."""
    for _ in range(tries - 1):
        try:
            shutil.rmtree(path)
            return
        except FileNotFoundError:
            if not os.path.lexists(path):
                return
    shutil.rmtree(path)
