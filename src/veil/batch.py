"""Many files at once: worker processes on this machine, or tasks on a Dask cluster.

Each file is one unit of work, `redact_file(FileTask) -> FileResult`: a module-level function
of picklable values, so the same call runs in this process, in a process pool or on a Dask
worker. The main process hands tasks out (a bounded number in flight), records each result
in the manifest as it arrives, retries a failed file once, and returns the results in input
order. Videos are one task each; with --jobs they run here, one at a time, because their own
pipeline already uses every core.
"""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import time
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, BrokenExecutor, Executor, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field, replace
from multiprocessing import get_context
from pathlib import Path

from veil.detect import DetectionProfile, set_detector_threads
from veil.manifest import ALREADY_DONE, ManifestWriter, Record, Status, read_manifest, still_done
from veil.media import plan_media, render_media
from veil.outputs import OutputClaims, OutputError, media_kind, output_path
from veil.photo import file_sha256
from veil.plan import MediaPlan, Plan, RenderSettings, Shape
from veil.videofile import Encoding


LOCAL_CLUSTER = "local:"


class BatchError(ValueError):
    """The run cannot start (a bad --cluster, an unreachable scheduler); the message says why."""


@dataclass(frozen=True)
class FileSettings:
    """What the command line asks of every file."""

    profile: DetectionProfile
    shape: Shape
    render: RenderSettings
    encoding: Encoding
    start: float | None = None
    end: float | None = None
    only_range: bool = False
    plan_sha256: str | None = None  # the --plan file: an edited plan makes other outputs
    show_progress: bool = False

    def fingerprint(self) -> str:
        """Same outputs, same fingerprint: a rerun skips a done file only under the same settings."""
        return hashlib.sha256(repr(replace(self, show_progress=False)).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class FileTask:
    """One input to redact, with everything a worker anywhere needs to do it."""

    index: int  # its place among the inputs: the summary keeps input order
    source: Path
    target: Path | None  # None: --dry-run
    settings: FileSettings
    media: MediaPlan | None = None  # from --plan: render this instead of detecting
    previous: Record | None = None  # an earlier run's manifest record


@dataclass
class FileResult:
    """What became of one input; `media` is its new plan (None when it came from --plan)."""

    index: int
    source: Path
    status: Status = "failed"
    output: Path | None = None
    media: MediaPlan | None = None
    faces: int = 0
    error: str | None = None
    notes: list[str] = field(default_factory=list)
    input_sha256: str | None = None
    output_sha256: str | None = None
    seconds: float = 0.0
    worker: str | None = None


@dataclass(frozen=True)
class Workers:
    """Where files run: `jobs` processes here, or the Dask cluster `cluster` (address or local:N)."""

    jobs: int
    cluster: str | None = None


def local_workers(cluster: str) -> int | None:
    """N for --cluster local:N, None for a scheduler's address."""
    if not cluster.startswith(LOCAL_CLUSTER):
        return None
    count = cluster.removeprefix(LOCAL_CLUSTER)
    if not count.isdigit() or int(count) < 1:
        raise BatchError(f"--cluster {cluster}: write local:N with N worker processes, e.g. local:4")
    return int(count)


def usable_cores() -> int:
    return len(os.sched_getaffinity(0))


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def redact_file(task: FileTask) -> FileResult:
    """Plan and render one file (or find it already done). Any failure: no output, an error."""
    started = time.monotonic()
    result = FileResult(task.index, task.source, worker=worker_name())
    try:
        if task.target is not None and still_done(task.previous, task.source, task.target, task.settings.fingerprint()):
            _skip(result, task.previous)
        else:
            _redact(task, result)
    except Exception as error:  # fail closed: any failure means no output for this file
        result.error = str(error) or type(error).__name__
    result.seconds = round(time.monotonic() - started, 3)
    return result


def _skip(result: FileResult, previous: Record) -> None:
    result.status = "skipped"
    result.output = Path(previous.output)
    result.faces = previous.regions
    result.input_sha256 = previous.input_sha256
    result.output_sha256 = previous.output_sha256


def _redact(task: FileTask, result: FileResult) -> None:
    settings = task.settings
    media = task.media or plan_media(task.source, settings.profile, settings.shape, show_progress=settings.show_progress,
                                     start=settings.start, end=settings.end, only_range=settings.only_range)
    result.media = None if task.media else media
    result.faces = len(media.regions)
    result.notes = media_notes(media)
    result.input_sha256 = media.sha256 or file_sha256(task.source)
    if task.target is not None:
        render_media(media, settings.render, task.target, show_progress=settings.show_progress, encoding=settings.encoding)
        result.output = task.target
        result.output_sha256 = file_sha256(task.target)
    result.status = "ok"


def media_notes(media: MediaPlan) -> list[str]:
    notes = []
    if media.unanalysed_frames:
        notes.append(f"{len(media.unanalysed_frames)} frame(s) could not be analysed and are fully covered")
    if media.unchecked_frames:
        notes.append(f"{len(media.unchecked_frames)} frame(s) outside --start/--end were left as they are, "
                     "not checked for faces (--only-range)")
    return notes


# --- preparing the run -----------------------------------------------------------------------


def file_tasks(inputs: list[tuple[Path, Path]], settings: FileSettings, claims: OutputClaims, output: Path | None,
               output_dir: Path | None, dry_run: bool, plan: Plan | None = None,
               plan_file: Path | None = None) -> list[FileTask | FileResult]:
    """A task per input, or the input's failed result when its output cannot be written (it
    would replace an input, say) or a --plan does not list it."""
    items: list[FileTask | FileResult] = []
    for index, (source, base) in enumerate(inputs):
        try:
            target = None if dry_run else output_path(source, base, output, output_dir)
            if target is not None:
                claims.claim(target, f"the output of {source}")
            media = None if plan is None else plan.find(str(source))
        except OutputError as error:
            items.append(FileResult(index, source, error=str(error)))
        except KeyError:
            items.append(FileResult(index, source, error=f"not in the plan {plan_file}"))
        else:
            items.append(FileTask(index, source, target, settings, media))
    return items


def with_previous(items: list[FileTask | FileResult], records: dict[str, Record]) -> list[FileTask | FileResult]:
    """Give each task its input's record from an earlier run, for the worker to check."""
    return [replace(item, previous=records.get(manifest_key(item.source))) if isinstance(item, FileTask) else item
            for item in items]


def manifest_key(source: Path) -> str:
    """Inputs are recorded by absolute path: a rerun from another folder finds them all the same."""
    return str(source.absolute())


def record_of(result: FileResult, settings: str | None) -> Record:
    return Record(
        path=manifest_key(result.source), status=result.status, input_sha256=result.input_sha256,
        output=str(result.output.absolute()) if result.output else None, output_sha256=result.output_sha256,
        regions=result.faces, seconds=result.seconds, worker=result.worker,
        reason=ALREADY_DONE if result.status == "skipped" else result.error, settings=settings,
    )


def redact_inputs(inputs: list[tuple[Path, Path]], settings: FileSettings, claims: OutputClaims, workers: Workers,
                  manifest: Path | None, on_result: Callable[[FileResult], None], *, output: Path | None,
                  output_dir: Path | None, dry_run: bool, plan: Plan | None, plan_file: Path | None) -> list[FileResult]:
    """The whole run: every input redacted (or skipped as already done), each recorded in the
    manifest as it finishes; the results in input order."""
    if workers.cluster is not None:
        local_workers(workers.cluster)  # a malformed local:N is refused before anything runs
    items = file_tasks(inputs, settings, claims, output, output_dir, dry_run, plan, plan_file)
    if manifest is None:
        return run_files(items, workers, None, on_result)
    items = with_previous(items, read_manifest(manifest))
    writer = ManifestWriter(manifest)
    try:
        return run_files(items, workers, writer, on_result)
    finally:
        writer.close()


# --- running it ------------------------------------------------------------------------------


def run_files(items: list[FileTask | FileResult], workers: Workers, manifest: ManifestWriter | None,
              on_result: Callable[[FileResult], None]) -> list[FileResult]:
    """Every task run (each failed one retried once), every result recorded as it comes; the
    results in input order."""
    results: dict[int, FileResult] = {}
    fingerprint = next((i.settings.fingerprint() for i in items if isinstance(i, FileTask)), None)

    def finish(result: FileResult) -> None:
        results[result.index] = result
        if manifest is not None:
            manifest.append(record_of(result, fingerprint))
        on_result(result)

    tasks = [item for item in items if isinstance(item, FileTask)]
    for item in items:
        if isinstance(item, FileResult):
            finish(item)
    if workers.cluster is not None:
        from veil.cluster import run_on_cluster  # Dask is imported only by the runs that use it

        run_on_cluster([replace(t, settings=replace(t.settings, show_progress=False)) for t in tasks],
                       workers.cluster, finish)
    else:
        photos = [t for t in tasks if media_kind(t.source) == "image"]
        jobs = min(workers.jobs, len(photos))
        if jobs > 1:
            run_in_pool(photos, jobs, finish)
            tasks = [t for t in tasks if media_kind(t.source) != "image"]
        run_here(tasks, finish)
    return [results[index] for index in sorted(results)]


def run_here(tasks: list[FileTask], finish: Callable[[FileResult], None]) -> None:
    for task in tasks:
        result = redact_file(task)
        finish(redact_file(task) if result.status == "failed" else result)


def run_in_pool(tasks: list[FileTask], jobs: int, finish: Callable[[FileResult], None]) -> None:
    """`jobs` worker processes, each with 1/jobs of the cores for its detector. A worker that
    dies breaks a process pool: the files then in flight use their retry in a new pool."""
    queue, attempts = deque(tasks), Counter[int]()
    while queue:
        # spawn, not fork: the main process runs threads (the progress bar) that fork would copy mid-lock.
        with ProcessPoolExecutor(jobs, mp_context=get_context("spawn"), initializer=start_worker,
                                 initargs=(max(1, usable_cores() // jobs),)) as pool:
            run_windowed(pool, queue, attempts, finish, window=2 * jobs)


def start_worker(threads: int) -> None:
    # Ctrl-C reaches every process of the terminal's group; the main process alone decides
    # what stops, and lets the files in progress finish rather than leave them half done.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    set_detector_threads(threads)


def run_windowed(executor: Executor, queue: deque[FileTask], attempts: Counter[int],
                 finish: Callable[[FileResult], None], window: int) -> None:
    """Run the queue through `executor`, at most `window` tasks in flight, until it is empty or
    the executor breaks (then the queue holds what is left). A failed task goes back to the
    front of the queue once."""
    running: dict[Future, FileTask] = {}
    broken = False
    try:
        while running or (queue and not broken):
            while queue and not broken and len(running) < window:
                task = queue.popleft()
                running[executor.submit(redact_file, task)] = task
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                task = running.pop(future)
                broken |= isinstance(future.exception(), BrokenExecutor)
                result = outcome_of(future, task)
                if result.status == "failed" and attempts[task.index] == 0:
                    attempts[task.index] += 1
                    queue.appendleft(task)
                else:
                    finish(result)
    except KeyboardInterrupt:
        for future in running:
            future.cancel()
        executor.shutdown(wait=True)  # what is already running finishes: its outputs are whole
        for future, task in running.items():
            if not future.cancelled() and future.exception() is None:
                finish(future.result())
        raise


def outcome_of(future: Future, task: FileTask) -> FileResult:
    """The task's result, or a failed one when its worker could not return one (it died, say)."""
    error = future.exception()
    if error is None:
        return future.result()
    return FileResult(task.index, task.source, error=f"its worker failed: {str(error) or type(error).__name__}")

