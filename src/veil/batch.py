"""Many files at once: worker processes on this machine, or tasks on a Dask cluster.

Each file is one unit of work, `run_task(Task) -> FileResult` over veil.pipeline: a
module-level function of picklable values, so the same call runs in this process, in a
process pool or on a Dask worker. The main process hands tasks out (a bounded number in
flight), records each result in the manifest as it arrives, retries a failed photo once on
another worker, and the caller gets the results as they come. Of several files, each runs in
a worker process (--jobs 1 too; a memory:// store, which only this process sees, excepted), so
that a crash inside a library (FFmpeg, an image decoder, a model runtime) fails that file only,
with its line, and the batch goes on. Videos and sound files run one at a time in a process with every core
(their own pipeline uses them all), are never retried (a crash would come again, after as
long) and are abandoned at the first stop (one may take an hour). A single file runs in this
process: its failure is the run's either way.
"""

from __future__ import annotations

import os
import re
import signal
import time
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, BrokenExecutor, Executor, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, replace
from multiprocessing import active_children, get_context, resource_tracker
from pathlib import Path
from queue import SimpleQueue

from veil.interrupt import (Stopped, end_on_stop, end_with_parent, end_workers, no_core_dumps, remove_folders_of,
                            stops_blocked_for_children, stops_held)
from veil.models import set_threads, usable_cores
from veil.names import shown
from veil.outputs import remove_partial_outputs
from veil.pipeline import FileResult, FileTask, Note, made_here, redact_file, unexpected_error
from veil.remote import Url
from veil.terminal import err

LOCAL_CLUSTER = "local:"
# How often a run checks on its workers (a cluster's: veil.cluster).
WATCH_S = 15


class BatchError(ValueError):
    """The run cannot start (a bad --cluster, an unreachable scheduler); the message says why."""


@dataclass(frozen=True)
class Workers:
    """Where files run: `jobs` processes here, or the Dask cluster `cluster` (address or local:N)."""

    jobs: int
    cluster: str | None = None


@dataclass(frozen=True)
class Task:
    """One file's work and its place among the inputs (results are reported in input order)."""

    index: int
    file: FileTask
    show_progress: bool = False
    failed_before: str | None = None  # why it is run again


def local_workers(cluster: str) -> int | None:
    """N for --cluster local:N, None for a scheduler's address (one with a user part refused)."""
    if not cluster.startswith(LOCAL_CLUSTER):
        _refuse_user_part(cluster)
        return None
    count = cluster.removeprefix(LOCAL_CLUSTER)
    if not re.fullmatch("[0-9]+", count) or int(count) < 1:  # (str.isdigit takes "²", which int() refuses)
        raise BatchError(f"--cluster {cluster}: write local:N with N worker processes, e.g. local:4")
    return int(count)


def _refuse_user_part(address: str) -> None:
    """A scheduler's address holding user@ or user:password@, refused without them: Dask has no
    login to give them to, and its own errors (an address it cannot parse or reach) repeat the
    address, password and all, to the terminal and the logs."""
    scheme, separator, rest = address.rpartition("://")
    _, at, host = rest.rpartition("@")
    if at:
        raise BatchError(f"--cluster {shown(scheme + separator)}***@{shown(host)}: a Dask scheduler's address takes no "
                         "user name or password (Dask has no login: whoever reaches the scheduler can run code in it): "
                         "protect a cluster of your own with TLS (tls:// and Dask's distributed.comm.tls settings)")


def run_task(task: Task) -> FileResult:
    """Redact one file wherever this runs; the output's hash is taken here, beside the file."""
    try:
        result = redact_file(task.file, show_progress=task.show_progress)
    except Exception as error:  # unforeseen: the file fails, the run goes on and says so
        result = FileResult(task.file.source, error=unexpected_error(error), unexpected=True)
    return made_here(result)


def run_all(tasks: list[Task], workers: Workers, finish: Callable[[int, FileResult], None]) -> None:
    """Every task run (a failed one retried once on another worker), each result passed to
    `finish` as it comes, with the task's index."""
    if workers.cluster is not None:
        local_workers(workers.cluster)  # a malformed local:N is refused before anything runs
        if not tasks:  # (every file already done: local:N started its workers for nothing)
            return
        from veil.cluster import run_on_cluster  # Dask is imported only by the runs that use it

        run_on_cluster([Task(t.index, t.file) for t in tasks], workers.cluster, finish)
        return
    if len(tasks) < 2:
        for task in tasks:
            finish(task.index, run_task(task))
        return
    for task in tasks:
        if private_to_this_process(task):
            finish(task.index, run_task(task))
    shared = [t for t in tasks if not private_to_this_process(t)]
    photos = [t for t in shared if t.file.kind == "image"]
    if photos:  # --jobs 1 too: a crash then fails its own photo, not the batch
        run_in_pool(photos, min(workers.jobs, len(photos)), finish)
    others = [t for t in shared if t.file.kind != "image"]
    if others:
        run_in_pool(others, 1, finish, one_by_one=True)


def private_to_this_process(task: Task) -> bool:
    """Whether the task reads or writes a store that only this process sees (fsspec's memory://,
    a library caller's): it cannot run in a worker process."""
    return any(isinstance(place, Url) and place.protocol == "memory" for place in (task.file.source, task.file.target))


def run_in_pool(tasks: list[Task], jobs: int, finish: Callable[[int, FileResult], None],
                one_by_one: bool = False) -> None:
    """`jobs` worker processes, each with 1/jobs of the cores for its detector. A worker that
    dies breaks a process pool, failing every file then in flight: those files run again one
    at a time, each alone in a new pool, so that a crash fails only the file it came from
    (which is retried once: the worker may have been killed from outside).
    `one_by_one` (videos, sound): one file at a time, not retried, abandoned at the first stop."""
    queue, attempts, suspects = deque(tasks), Counter[int](), deque[Task]()
    start_resource_tracker()
    while queue or suspects:
        alone = bool(suspects) or one_by_one
        size = 1 if alone else jobs
        workers: set[int] = set()
        try:
            # spawn, not fork: the main process runs threads (the progress bar) that fork would copy mid-lock.
            with ProcessPoolExecutor(size, mp_context=get_context("spawn"), initializer=start_worker,
                                     initargs=(max(1, usable_cores() // size), os.getpid())) as pool:
                run_windowed(pool, suspects or queue, attempts, finish, window=1 if alone else 2 * jobs,
                             abandon_on_stop=one_by_one, workers=workers,
                             suspects=None if alone else suspects)
        finally:
            remove_what_workers_left(workers)


def start_resource_tracker() -> None:
    """Start multiprocessing's resource tracker deaf to SIGHUP, as it makes itself to SIGINT and
    SIGTERM: else a closed terminal ends it with the workers, the pool starts another, and that
    one prints a traceback for each name its predecessor held."""
    with stops_held(), stops_blocked_for_children():
        resource_tracker.ensure_running()


def start_worker(threads: int, parent: int) -> None:
    no_core_dumps()
    end_on_stop()
    end_with_parent(parent)
    set_threads(threads)


def run_windowed(executor: Executor, queue: deque[Task], attempts: Counter[int],
                 finish: Callable[[int, FileResult], None], window: int,
                 abandon_on_stop: bool = False, workers: set[int] | None = None,
                 suspects: deque[Task] | None = None, deaths: tuple[type[BaseException], ...] = (),
                 work: Callable[[Task], FileResult] = run_task,
                 cancel_unstarted: Callable[[list[Future]], list[Future]] | None = None,
                 while_waiting: Callable[[], None] | None = None) -> None:
    """Run the queue through `executor`, at most `window` tasks in flight, until it is empty or
    the executor breaks (then the queue holds what is left). A failed photo goes back to the
    front of the queue once (`attempts` counts them): a video's next try could take as long
    again. At a stop, the tasks in flight finish whole, unless `abandon_on_stop` (a process
    pool's): its workers are ended.
    `workers` (a process pool's) collects the process ids of its workers. `suspects` (a pool
    of several workers): where the tasks in flight when a worker died go, their attempt not
    counted, since any of them may be the one that crashed it. `deaths`: the errors that say a
    task's worker died under it (Dask's KilledWorker), failed as a pool's dead worker's task is.
    `cancel_unstarted` (a cluster's): at a stop, cancels those of the tasks in flight that no worker
    has begun, and gives them: they are left undone. `while_waiting`: called every `WATCH_S` seconds
    or so while tasks run."""
    running: dict[Future, Task] = {}
    broken = False
    watched = time.monotonic()
    try:
        while running or (queue and not broken):
            while queue and not broken and len(running) < window:
                task = queue.popleft()
                try:
                    # A submit may start a worker process, which must begin deaf to stops; a stop
                    # here waits until the pool knows of that worker and this task is listed.
                    with stops_held(), stops_blocked_for_children():
                        running[executor.submit(work, task)] = task
                except BrokenExecutor:  # a worker died since the last result came: this task waits for the next pool
                    queue.appendleft(task)
                    broken = True
            if workers is not None:
                workers |= {process.pid for process in active_children()}
            done, _ = wait(running, timeout=WATCH_S if while_waiting else None, return_when=FIRST_COMPLETED)
            if while_waiting is not None and time.monotonic() - watched >= WATCH_S:
                while_waiting()
                watched = time.monotonic()
            for future in done:
                # A stop between taking a finished file off the running list and recording it would
                # lose its record while its output stays (a rerun then refuses to overwrite it): the
                # stop waits until the file is recorded.
                with stops_held():
                    task = running.pop(future)
                    crashed = isinstance(future.exception(), BrokenExecutor)
                    broken |= crashed
                    result = outcome_of(future, task, deaths)
                    if crashed and suspects is not None:
                        suspects.append(run_again(task, "a worker process of its pool died while it was in "
                                                        "flight: a crash in a library, or killed"))
                    elif result.error and attempts[task.index] == 0 and task.file.kind == "image":
                        attempts[task.index] += 1
                        queue.appendleft(run_again(task, f"a first attempt failed: {result.error}"))
                    else:
                        finish(task.index, with_earlier_failure(task, result))
    except BaseException as error:  # Ctrl-C or a signal: what is already running finishes, its outputs whole
        pool_manager = getattr(executor, "_executor_manager_thread", None)  # a process pool's: joined below
        if isinstance(executor, ProcessPoolExecutor):
            # Photos are each done in seconds: they finish. A second stop would leave the pool's
            # threads and workers half shut down: it ends veil at once instead (the escape from a
            # stuck worker; veil.interrupt).
            if isinstance(error, Stopped) and abandon_on_stop:
                end_workers()  # each removes its temporary files; the pool is then broken
            # The pool cancels its own waiting tasks: a future cancelled from here while the pool
            # breaks (its workers stopped by the same signal) is failed again by the pool's
            # manager thread, which then dies with a traceback. Its tasks in flight are waited
            # for below, each recorded as it finishes.
            executor.shutdown(wait=False, cancel_futures=True)
        # A task a Dask worker has started cannot be stopped, and its output would be written
        # unrecorded: each in flight finishes and is recorded, as a pool's (a second stop ends
        # the workers instead). Said: on a cluster a video in flight may take minutes, and a
        # silent wait looks like a stop that did nothing.
        if isinstance(error, Stopped) and running and not abandon_on_stop:
            err.print(f"veil: stopping ({signal.Signals(error.args[0]).name}): the {len(running)} file(s) in "
                      "progress finish first; stop again to abandon them")
            # Those no worker has begun are cancelled: a paused worker's would be waited for without
            # end. (Each is waited for below all the same, and recorded if it ended meanwhile.)
            if cancel_unstarted is not None and (unstarted := cancel_unstarted(list(running))):
                err.print(f"veil: {len(unstarted)} of them no worker had begun: they are left undone")
        try:
            record_as_finished(running, finish)
        finally:
            executor.shutdown(wait=True)
            if pool_manager is not None:  # shut down without waiting, the pool forgot it: its workers end with it
                pool_manager.join()
        raise


def run_again(task: Task, why: str) -> Task:
    """The task, to be run again, with why (the first reason given, where it is run again twice)."""
    return task if task.failed_before else replace(task, failed_before=why)


def with_earlier_failure(task: Task, result: FileResult) -> FileResult:
    """A file done after a failed attempt says so: the report states what ran, a crash too."""
    if task.failed_before and not result.error:
        result.notes.append(Note(f"done again ({task.failed_before})"))
    return result


def record_as_finished(running: dict[Future, Task], finish: Callable[[int, FileResult], None]) -> None:
    """At a stop: wait for the tasks in flight, each one that returns a result passed to `finish`
    as it comes, not once all have: a second stop ends veil at once, and the output of a file
    that finished while another was still at work would stand, recorded nowhere."""
    ended: SimpleQueue[Future] = SimpleQueue()
    for future in running:
        # A callback, not `wait`: a task the pool cancels is never done in `wait`'s eyes.
        future.add_done_callback(ended.put)
    failure: Exception | None = None
    for _ in running:
        future = ended.get()
        if not future.cancelled() and future.exception() is None:
            try:  # a manifest that cannot be written: every file still finishing is waited for and named
                task = running[future]
                finish(task.index, with_earlier_failure(task, future.result()))
            except Exception as error:
                failure = failure or error
    if failure is not None:
        raise failure


def remove_what_workers_left(workers: set[int]) -> None:
    """Once a pool is shut down: a worker process that died left its temporary folders (a staged
    copy of a URL's input, say); they are removed here, or named if they cannot be."""
    for pid in workers:
        for path in remove_folders_of(pid):
            err.print(f"veil: could not remove the temporary {shown(path)} (it may hold an unredacted copy): remove it")


def outcome_of(future: Future, task: Task, deaths: tuple[type[BaseException], ...] = ()) -> FileResult:
    """The task's result, or a failed one when its worker could not return one (it died, say)."""
    error = future.exception()
    if error is None:
        return future.result()
    if not isinstance(error, (BrokenExecutor, *deaths)):
        return FileResult(task.file.source, error=f"its worker failed: {str(error) or type(error).__name__}")
    # The worker process ended without its clean-up: what it was writing is removed here.
    target = task.file.target
    left = remove_partial_outputs(target) if isinstance(target, Path) else []
    unfinished = f"; its unfinished output {shown(left[0])} could not be removed: remove it" if left else ""
    return FileResult(task.file.source, error="the worker process redacting it ended abruptly (a crash in a "
                                              f"library, or it was killed); no output was written{unfinished}")
