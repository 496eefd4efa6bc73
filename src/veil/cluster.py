"""Files as tasks on a Dask cluster: a running scheduler, or a LocalCluster started for the run.

Every worker must see the inputs and outputs under the same paths (a shared file system), or
reach the same storage by URL (veil.remote), and have veil installed. One task per file; each
worker process loads the detector once and keeps it (veil.models.shared), with its
share of its machine's cores.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import Counter, deque
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path

import dask
from distributed import Client, LocalCluster, WorkerPlugin
from distributed.comm import get_address_host
from distributed.security import Security

from veil.batch import (BatchError, Task, local_workers, remove_what_workers_left, run_windowed,
                        start_resource_tracker)
from veil.interrupt import (end_on_stop, no_core_dumps, remove_folders_of_dead_runs, stops_blocked_for_children,
                            temporary_folder)
from veil.models import set_threads, usable_cores
from veil.names import shown
from veil.outputs import remove_partial_outputs
from veil.pipeline import FileResult
from veil.terminal import err


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
    """Run every task on the cluster, a failed one retried once (a worker that dies has its
    task moved to another by the scheduler itself). A worker that died left what it was
    writing, and a local one its temporary folders (a staged copy of a URL's input, say): once
    the run is over, they are removed (another machine's folders are its own to clean)."""
    workers: set[int] = set()  # a local cluster's worker processes are this process's children
    try:
        with connect(cluster, len(tasks)) as client:
            client.register_plugin(DetectorThreads(workers_per_host(client)))
            # Enough in flight to keep every worker thread busy, not the whole run: a million
            # tasks submitted at once would sit in the scheduler's memory.
            window = max(4, 2 * sum(client.nthreads().values()))
            run_windowed(client.get_executor(pure=False), deque(tasks), Counter(), finish, window,
                         workers=workers if local_workers(cluster) is not None else None)
    finally:
        remove_what_workers_left(workers)
        for path in remove_partial_outputs(*(t.file.target for t in tasks if isinstance(t.file.target, Path))):
            err.print(f"veil: could not remove the unfinished {shown(path)}: remove it")


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
    count = local_workers(cluster)
    if count is not None:
        count = min(count, files or count)
        # Worker losses are reported as each file's result; Dask's own logs about them, and
        # about workers losing the scheduler as the cluster shuts down, are tracebacks for nobody.
        logging.getLogger("distributed").setLevel(logging.CRITICAL)
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
            with stops_blocked_for_children():
                local = cluster_open.enter_context(LocalCluster(
                    n_workers=count, threads_per_worker=1, processes=True, host=LOOPBACK,
                    dashboard_address=f"{LOOPBACK}:0", worker_dashboard_address=f"{LOOPBACK}:0",
                    silence_logs=logging.CRITICAL, security=security_kept_in(scratch)))
            yield cluster_open.enter_context(Client(local))
        return
    try:
        client = Client(cluster, timeout=30)
    except (OSError, TimeoutError, ValueError) as error:
        raise BatchError(f"cannot reach the Dask scheduler at {cluster}: {error}") from None
    with client:
        yield client
