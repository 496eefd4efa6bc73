"""Files as tasks on a Dask cluster: a running scheduler, or a LocalCluster started for the run.

Every worker must see the inputs and outputs under the same paths (a shared file system), or
reach the same storage by URL (veil.remote), and have veil installed. One task per file; each
worker process loads the detector once and keeps it (veil.models.shared), with its
share of its machine's cores.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import resource
import threading
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterator
from concurrent.futures import CancelledError, Future
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import replace
from pathlib import Path
from queue import Empty, Queue
from typing import TypeVar

import dask
from distributed import Client, LocalCluster, WorkerPlugin
from distributed import Future as DaskFuture
from distributed.cfexecutor import ClientExecutor
from distributed.comm import CommClosedError, get_address_host
from distributed.scheduler import KilledWorker
from distributed.security import Security

from veil import __version__
from veil.batch import (BatchError, Task, local_workers, remove_what_workers_left, run_task, run_windowed,
                        start_resource_tracker)
from veil.interrupt import (Stopped, end_on_stop, no_core_dumps, remove_folders_of_dead_runs,
                            stops_blocked_for_children, temporary_folder)
from veil.models import set_threads, usable_cores
from veil.names import shown
from veil.outputs import remove_partial_outputs
from veil.photo import file_sha256
from veil.pipeline import FileResult, FileTask, one_line
from veil.plan import installed_veil_sha256
from veil.remote import RemoteError, Url
from veil.terminal import err

T = TypeVar("T")


class DetectorThreads(WorkerPlugin):
    """Sets each worker's detector threads to its machine's cores / the worker processes there."""

    def __init__(self, workers_per_host: dict[str, int]):
        self.workers_per_host = workers_per_host

    def setup(self, worker) -> None:
        no_core_dumps()  # a remote worker was not started by veil: it has the limits its operator gave it
        siblings = self.workers_per_host.get(get_address_host(worker.address), 1)
        set_threads(max(1, usable_cores() // siblings))
        if threading.current_thread() is threading.main_thread():  # where signal handlers are set
            # As a process pool's worker: deaf to Ctrl-C (the main process lets the files in flight
            # finish), and ended by SIGTERM or SIGHUP after removing its temporary files.
            end_on_stop()
        # Another machine's temp folder, where a worker that ended without cleaning up left the staged
        # copies of its inputs, is no command's to clear; a worker clears it as it joins (nothing to
        # say there: a remote worker has no terminal of the user's). Last, and never its failure.
        with suppress(Exception):
            remove_folders_of_dead_runs()


def run_on_cluster(tasks: list[Task], cluster: str, finish: Callable[[int, FileResult], None]) -> None:
    """Run every task on the cluster, a failed photo retried once (on a scheduler of the user's, a
    task whose worker died is also moved to another by the scheduler itself, as often as its
    configuration allows). A worker that died left what it was writing, and a local one its
    temporary folders (a staged copy of a URL's input, say): once the run is over, they are
    removed (another machine's folders are its own to clean)."""
    workers: set[int] = set()  # a local cluster's worker processes are this process's children
    local = local_workers(cluster) is not None
    given = {task.index: task.file for task in tasks}
    if not local:
        # A remote worker resolves a relative name against its own working folder: it redacted
        # other files of the same names there, and wrote its outputs there.
        tasks = [replace(task, file=named_absolutely(task.file)) for task in tasks]
    finished: set[int] = set()

    def finish_here(index: int, result: FileResult) -> None:
        finish(index, result if local else seen_from_here(result, given[index]))
        finished.add(index)
    try:
        with connect(cluster, len(tasks)) as client:
            # Under this run's own name, and taken off at its end: a scheduler of the user's kept one
            # more of veil's plugins after each run, each set up again on every worker that joined.
            plugin = f"veil-{uuid.uuid4().hex}"
            try:
                client.register_plugin(DetectorThreads(workers_per_host(client)), name=plugin)
            except Exception as error:  # a worker without veil cannot unpickle veil's plugin; or the scheduler was lost
                raise BatchError(f"cannot set veil up on the workers of the Dask scheduler at {cluster} "
                                 f"({one_line(error)}): each worker needs veil, this version, installed") from None
            # Enough in flight to keep every worker thread busy, not the whole run: a million
            # tasks submitted at once would sit in the scheduler's memory. On a local cluster, one
            # file a worker: its scheduler fails every task a dead worker held (allowed-failures
            # 0), and a file queued behind the one that crashed it was failed with it.
            threads = sum(client.nthreads().values())
            window = max(1, threads) if local else max(4, 2 * threads)  # (none would wait for ever)
            try:
                executor = ClusterExecutor(client)
                run_windowed(executor, deque(tasks), Counter(), finish_here, window,
                             workers=workers if local else None, deaths=(KilledWorker,), work=run_on_worker,
                             cancel_unstarted=executor.cancel_unstarted, while_waiting=executor.say_paused_workers)
            except BaseException as error:
                if not scheduler_lost(error, client):
                    raise
                # The scheduler is gone (or was, for a moment), and with it every task it held:
                # each file not finished is failed, and the run ends as any other (its report and
                # plan written).
                for task in tasks:
                    if task.index not in finished:
                        finish_here(task.index, FileResult(given[task.index].source, error=(
                            f"the connection to the Dask scheduler at {cluster} was lost before it was done; a "
                            "worker may still write its output: remove it before running veil again, or run again "
                            "with --overwrite")))
            finally:
                if client.status == "running":
                    with suppress(Exception):  # (a scheduler lost meanwhile kept nothing of it)
                        client.unregister_worker_plugin(plugin)
    finally:
        remove_what_workers_left(workers)
        for path in remove_partial_outputs(*(t.file.target for t in tasks if isinstance(t.file.target, Path))):
            err.print(f"veil: could not remove the unfinished {shown(path)}: remove it")


class ClusterExecutor(ClientExecutor):
    """Dask's executor, which can also cancel the tasks no worker has begun, and say which workers
    Dask has paused. A worker whose memory passes `distributed.worker.memory.pause` of its limit
    begins no task until it falls: the run waited without a word, and a stop waited for the files
    queued there as if they were in progress."""

    def __init__(self, client: Client) -> None:
        super().__init__(client, pure=False)
        self.tasks: dict[Future, DaskFuture] = {}
        self.paused: set[str] = set()  # the workers said to be paused

    def _wrap_future(self, future: DaskFuture) -> Future:
        wrapped = super()._wrap_future(future)
        self.tasks[wrapped] = future
        # Forgotten once done: a Dask future held keeps its result in the cluster's memory.
        wrapped.add_done_callback(lambda done: self.tasks.pop(done, None))
        return wrapped

    def cancel_unstarted(self, futures: list[Future]) -> list[Future]:
        """Cancel those of `futures` whose task no worker has begun; return them. One that ends
        meanwhile keeps its result (a done future cannot be cancelled); one that begins meanwhile
        runs to its end unrecorded, its output redone by the next run as a stopped run's (the
        manifest's "started" record)."""
        held = {future: task for future in futures if (task := self.tasks.get(future)) is not None}
        try:  # (asked of the workers that hold them alone: another client's may be stuck)
            stacks = answered_in(ASKING_DEADLINE_S, lambda: self._client.call_stack(keys=[t.key for t in held.values()]))
        except Exception:  # a worker that does not answer (stopped, say), the scheduler lost: nothing is
            return []      # known begun or not, and all are waited for
        begun = {key for running in stacks.values() for key in running}
        unstarted = {future: task for future, task in held.items() if task.key not in begun}
        self._client.cancel(list(unstarted.values()))
        return list(unstarted)

    def say_paused_workers(self) -> None:
        """Each worker Dask has paused, said once a pause (said again if it pauses again)."""
        try:
            workers = answered_in(ASKING_DEADLINE_S, lambda: self._client.scheduler_info(**EVERY_WORKER))["workers"]
        except Exception:  # the scheduler lost: the run's wait says so
            return
        for address, worker in workers.items():
            if worker.get("status") != "paused":
                self.paused.discard(address)
            elif address not in self.paused:
                self.paused.add(address)
                used, limit = worker.get("metrics", {}).get("memory"), worker.get("memory_limit")
                holds = f"it holds {used >> 20} MB of the {limit >> 20} MB it may use, " if used and limit else ""
                err.print(f"veil: the Dask worker {shown(address)} is paused ({holds}past Dask's "
                          "distributed.worker.memory.pause): it begins no file until its memory falls; give it more "
                          "memory (dask worker --memory-limit), or stop veil: the files no worker has begun are left "
                          "undone")


# A question to the cluster while files are in flight (Dask's scheduler asks every worker what it
# runs, and waits for each without end).
ASKING_DEADLINE_S = 10


class Unanswered(Exception):
    """A call to the cluster gave no answer in time."""


def answered_in(seconds: float, call: Callable[[], T]) -> T:
    """`call()`'s answer (its error raised here), or Unanswered after `seconds`: a call that waits
    on a worker or a server must not hold veil (it goes on in a thread of its own, which veil does
    not wait for at its end)."""
    answer: Queue[tuple[T | None, BaseException | None]] = Queue()

    def ask() -> None:
        try:
            answer.put((call(), None))
        except BaseException as error:  # raised where it is waited for, not in a thread where no one sees it
            answer.put((None, error))

    threading.Thread(target=ask, name="veil-cluster-call", daemon=True).start()
    try:
        value, error = answer.get(timeout=seconds)
    except Empty:
        raise Unanswered from None
    if error is not None:
        raise error
    return value


# Dask's scheduler_info lists five workers unless asked for all (older Dask lists all, and takes no such argument).
EVERY_WORKER = {"n_workers": -1} if "n_workers" in inspect.signature(Client.scheduler_info).parameters else {}


def scheduler_lost(error: BaseException, client: Client) -> bool:
    """Whether `error` says the connection to the scheduler was lost: Dask cancels every future then
    (its client may have connected again since, its tasks forgotten), and a comm closes."""
    if isinstance(error, (Stopped, KeyboardInterrupt)):
        return False
    return client.status != "running" or isinstance(error, (CancelledError, asyncio.CancelledError, CommClosedError))


def named_absolutely(file: FileTask) -> FileTask:
    """The task with its local names made absolute, as they lead from this process's folder
    (not resolved: a link in them leads on the worker as it does here)."""
    return replace(file, source=absolute(file.source), target=absolute(file.target))


def absolute(name: Path | Url | None) -> Path | Url | None:
    return name.absolute() if isinstance(name, Path) else name


def run_on_worker(task: Task) -> FileResult:
    """`run_task` on a cluster's worker, its result saying which veil made it (`seen_from_here`)."""
    return replace(run_task(task), veil_sha256=installed_veil_sha256())


def seen_from_here(result: FileResult, given: FileTask) -> FileResult:
    """The result under the names given, its output checked from this machine: a worker that
    does not share the output folder wrote where no one here will find it, and a run that
    took its result on trust recorded as done an output that is not there."""
    result = replace(result, source=given.source, output=given.target if result.output is not None else None)
    if result.error and result.veil_sha256 is None:
        return result  # failed here (its worker died, the scheduler was lost): nothing of a worker's to check
    where = f"its worker {result.worker}" if result.worker else "its worker"
    if result.veil_sha256 != installed_veil_sha256():
        # Its output and its plan (a dry run's: no output) are another veil's work, which this
        # run's report, manifest and saved plan would name as this one's.
        return not_taken(result, f"{where} runs another veil than this command (another version, or its code or "
                                 f"models changed): install this veil (veil {__version__}) on every worker")
    if result.error:
        return result
    if isinstance(given.source, Path) and result.input_sha256 is not None and \
            _compared(given.source, result.input_sha256) is not None:
        return not_taken(result, f"{where} read another file at {shown(given.source)} than this machine sees there "
                                 "(a stale or another mount): every worker must see the inputs under the same paths "
                                 "as this machine")
    if result.output is None:
        return result
    seen = as_seen_here(result.output, result.output_sha256)
    if seen is None:
        return result
    return replace(result, output=None, output_sha256=None, regions=0, error=(
        f"{where} wrote its output, but as this machine sees {shown(given.target)} it is {seen}: "
        "every worker must see the inputs and the output folder under the same paths as this machine "
        "(a shared file system), or reach the same storage by URL"))


def not_taken(result: FileResult, why: str) -> FileResult:
    """A worker's result failed for `why`: its plan dropped, its output removed where it is the
    worker's file (a URL's is left, named), so that no plan or output of another veil's or another
    file's stands unrecorded."""
    output = result.output
    if output is None:
        return replace(result, media=None, regions=0, error=f"{why}; nothing it found was taken")
    removed = isinstance(output, Path) and _compared(output, result.output_sha256) is None
    if removed:
        with suppress(FileNotFoundError):
            output.unlink()
    left = "it wrote was removed" if removed else f"it wrote, {shown(output)}, is not this file's: remove it"
    return replace(result, media=None, output=None, output_sha256=None, regions=0, error=f"{why}; the output {left}")


def as_seen_here(output: Path | Url, sha256: str | None) -> str | None:
    """What `output` is as this machine sees it, where that is not the file its worker wrote (None).
    A path is read back whole; a URL is only looked up (reading it back would download every output
    a second time): one the worker uploaded elsewhere (other credentials, another endpoint) is not there."""
    if isinstance(output, Url):
        try:
            return None if output.exists() else "not there"
        except RemoteError as error:
            return f"not reachable ({error.reason})"
    seen = _compared(output, sha256)
    # NFS trusts a name it found missing (checked here before the run) until its folder's cached
    # attributes expire: listing the folder looks it up again, once.
    with suppress(OSError):
        if seen == NOT_THERE and output.name in os.listdir(output.parent):
            seen = _compared(output, sha256)
    return seen


NOT_THERE = "not there"


def _compared(path: Path, sha256: str | None) -> str | None:
    """`path` read back and its hash compared with `sha256`: None where they are the same."""
    try:
        return None if file_sha256(path) == sha256 else "a different file"
    except FileNotFoundError:
        return NOT_THERE
    except OSError as error:
        return f"unreadable ({error.strerror or error})"


def workers_per_host(client: Client) -> dict[str, int]:
    return dict(Counter(get_address_host(address) for address in client.nthreads()))


LOOPBACK = "127.0.0.1"

# A local cluster shares this machine's cores with the files it redacts: Dask's statistical
# profiler (a stack sample of every worker thread every 10 ms, taking the GIL), its frequent
# system monitoring and its event-loop ticks are for a dashboard that a local run does not open.
# The nanny's MALLOC_TRIM_THRESHOLD_ (set in each worker's environment before it starts) also
# turns off glibc's adaptive mmap threshold: every buffer over 128 KiB (each decoded photo, its
# copies, the detectors' inputs) is then mapped and unmapped afresh, so each photo faults its
# pages in again, which costs a worker several times the page faults and system time of a
# process-pool worker; None leaves glibc's default. Its memory monitor polls each worker's
# memory (in the worker and in its nanny) every 100 ms, a watch for workers that hold data
# between tasks, which veil's tasks do not; once a second still stops a runaway worker.
# A remote cluster keeps whatever its operator configured.
LOCAL_WORKER_CONFIG = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.system-monitor.interval": "5s",
    "distributed.admin.tick.interval": "1s",
    "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,
    "distributed.worker.memory.monitor-interval": "1s",
    # A task whose worker died is failed, not moved to another worker by the scheduler, unsaid, up
    # to three times: a file that crashes its worker (a library's fault) killed four workers, and
    # eight with veil's own retry. veil tries a photo once more, saying so, as with --jobs.
    "distributed.scheduler.allowed-failures": 0,
    # Dask serves its cluster's state over HTTP (which workers run, their tasks and logs) even
    # without a dashboard: a local run serves nothing that another user of the machine could read.
    "distributed.scheduler.http.routes": [],
    "distributed.worker.http.routes": [],
}


def security_kept_in(folder: Path) -> Security:
    """TLS for a local cluster, with a key made for this run, kept as files in `folder` (veil's,
    private, removed with the run). Given in memory, it was written by Dask into a new folder
    in the temp folder at each connection: a process stopped meanwhile left that folder behind,
    with the key in it."""
    made = Security.temporary()
    key, cert = folder / "cluster-key.pem", folder / "cluster-cert.pem"
    for path, text in ((key, made.tls_client_key), (cert, made.tls_client_cert)):
        with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as file:
            file.write(text)
    return Security(require_encryption=True, tls_ca_file=str(cert),
                    **{f"tls_{role}_{part}": str(key if part == "key" else cert)
                       for role in ("client", "scheduler", "worker") for part in ("key", "cert")})


@contextmanager
def connect(cluster: str, files: int | None = None) -> Iterator[Client]:
    """A client of the scheduler at `cluster`, or of a LocalCluster of N one-thread workers, no more
    than there are `files` (as --jobs: a slip of local:64 for local:4 started 64 detectors for one
    photo, and local:99999999999 took the machine's memory)."""
    # Worker and scheduler losses are reported as each file's result; Dask's own logs about them
    # (its reconnection attempts, workers losing the scheduler as a local cluster shuts down)
    # are tracebacks for nobody.
    for name in ("distributed", "distributed.client"):  # Dask's configuration gives its client a level of its own
        logging.getLogger(name).setLevel(logging.CRITICAL)
    count = local_workers(cluster)
    if count is not None:
        count = min(count, files or count)
        # Dask's scratch folders go in a folder of veil's, removed with the run (Dask leaves its own behind).
        with temporary_folder("veil-dask-") as scratch, \
                dask.config.set({**LOCAL_WORKER_CONFIG, "temporary-directory": str(scratch)}), \
                ExitStack() as cluster_open:
            # Its worker processes begin deaf to a Ctrl-C, which ended each one still importing with
            # a traceback (DetectorThreads sets their own handling); one meanwhile is raised once
            # the cluster is up, to be closed with it. The resource tracker first: starting it, as
            # the first worker would, unblocks Ctrl-C in the thread that starts them.
            start_resource_tracker()
            # Its scheduler and workers listen on the loopback, where any user of the machine may
            # connect and run code in them (turn redaction off, read the photos): TLS with a key
            # made for this run and given to its own processes only shuts them out. On the loopback
            # alone, said outright: an older Dask put the scheduler's web server and the workers on
            # every network the machine is on.
            open_files = open_files_allowed()
            if open_files < open_files_needed(count):
                # Past it, the scheduler's event loop fails each connection it accepts and tries
                # again at once: gigabytes of tracebacks, and a run that never ends.
                fewer = max(0, (open_files - open_files_needed(0)) // OPEN_FILES_PER_WORKER)
                raise BatchError(f"a local cluster of {count} workers needs up to {open_files_needed(count)} open "
                                 f"files, and this process may open {open_files} (ulimit -n): raise that limit"
                                 + (f", or run fewer workers (local:{fewer})" if fewer else ""))
            try:
                with stops_blocked_for_children():
                    local = cluster_open.enter_context(LocalCluster(
                        n_workers=count, threads_per_worker=1, processes=True, host=LOOPBACK,
                        dashboard_address=f"{LOOPBACK}:0", worker_dashboard_address=f"{LOOPBACK}:0",
                        silence_logs=logging.CRITICAL, security=security_kept_in(scratch)))
            except Exception as error:  # Dask's "Nanny failed to start." says no more
                raise BatchError(f"the local cluster could not start ({one_line(error)}), with at most {open_files} "
                                 "open files per process allowed (ulimit -n): raise that limit, or run fewer "
                                 "workers") from None
            yield cluster_open.enter_context(Client(local))
        return
    with client_of(cluster) as client:
        with_workers(client, cluster)
        yield client


# Dask's own connection timeout; it does not cover a server that accepts and never answers.
CONNECT_TIMEOUT_S = 30
CONNECT_DEADLINE_S = 60
WORKERS_DEADLINE_S = 600


# Ample for a local cluster's scheduler, nannies and workers, their connections and a video's files.
OPEN_FILES_WANTED = 65536


# Measured: the scheduler's and client's connections to each worker and its nanny, and their files.
OPEN_FILES_PER_WORKER = 16


def open_files_needed(workers: int) -> int:
    return 32 + OPEN_FILES_PER_WORKER * workers


def open_files_allowed() -> int:
    """The soft limit on open files, raised towards the hard limit (the operator's, kept): each
    of a local cluster's processes holds a connection to each other, and under a shell's low
    soft limit (`ulimit -Sn 64`) Dask's event loops failed with floods of tracebacks, or its
    workers did not start."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = OPEN_FILES_WANTED if hard == resource.RLIM_INFINITY else min(hard, OPEN_FILES_WANTED)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        with suppress(ValueError, OSError):  # a kernel's own cap below it (macOS's OPEN_MAX): kept as it is
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
    return soft


def client_of(cluster: str) -> Client:
    """A client of the scheduler at `cluster`, or the reason there is none in one line: an address
    that leads to something else (the dashboard's port typed for the scheduler's, a silent server)
    left veil waiting without end, and one that answers in another protocol with a traceback."""
    try:
        return answered_in(CONNECT_DEADLINE_S, lambda: Client(cluster, timeout=CONNECT_TIMEOUT_S))
    except Unanswered:
        raise BatchError(f"no Dask scheduler answered at {cluster} in {CONNECT_DEADLINE_S} s: give the "
                         "scheduler's own address (its port, not its dashboard's)") from None
    except Exception as error:  # whatever answered there, it is not a scheduler veil can use
        raise BatchError(f"cannot use a Dask scheduler at {cluster}: {one_line(error)}") from None


def with_workers(client: Client, cluster: str) -> None:
    """Said, then waited for, when the scheduler has no worker yet (an adaptive cluster starts
    them on demand), for a bounded time: its tasks would otherwise wait without end."""
    if client.nthreads():
        return
    err.print(f"veil: the Dask scheduler at {cluster} has no workers: waiting up to {WORKERS_DEADLINE_S // 60} "
              f"minutes for one to join (start one with `dask worker {cluster}`)")
    try:
        client.wait_for_workers(1, timeout=WORKERS_DEADLINE_S)
    except TimeoutError:
        raise BatchError(f"no worker joined the Dask scheduler at {cluster} in {WORKERS_DEADLINE_S // 60} "
                         "minutes") from None
