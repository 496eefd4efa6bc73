"""Files as tasks on a Dask cluster: a running scheduler, or a LocalCluster started for the run.

Every worker must see the inputs and outputs under the same paths (a shared file system), or
reach the same storage by URL (veil.remote), and have veil installed. One task per file; each
worker process loads the detector once and keeps it (veil.models.shared), with its
share of its machine's cores.
"""

from __future__ import annotations

import logging
from collections import Counter, deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import dask
from distributed import Client, LocalCluster, WorkerPlugin
from distributed.comm import get_address_host

from veil.batch import BatchError, Task, local_workers, run_windowed
from veil.models import set_threads, usable_cores
from veil.pipeline import FileResult


class DetectorThreads(WorkerPlugin):
    """Sets each worker's detector threads to its machine's cores / the worker processes there."""

    def __init__(self, workers_per_host: dict[str, int]):
        self.workers_per_host = workers_per_host

    def setup(self, worker) -> None:
        siblings = self.workers_per_host.get(get_address_host(worker.address), 1)
        set_threads(max(1, usable_cores() // siblings))


def run_on_cluster(tasks: list[Task], cluster: str, finish: Callable[[int, FileResult], None]) -> None:
    """Run every task on the cluster, a failed one retried once (a worker that dies has its
    task moved to another by the scheduler itself)."""
    with connect(cluster) as client:
        client.register_plugin(DetectorThreads(workers_per_host(client)))
        # Enough in flight to keep every worker thread busy, not the whole run: a million
        # tasks submitted at once would sit in the scheduler's memory.
        window = max(4, 2 * sum(client.nthreads().values()))
        run_windowed(client.get_executor(pure=False), deque(tasks), Counter(), finish, window)


def workers_per_host(client: Client) -> dict[str, int]:
    return dict(Counter(get_address_host(address) for address in client.nthreads()))


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
}


@contextmanager
def connect(cluster: str) -> Iterator[Client]:
    """A client of the scheduler at `cluster`, or of a LocalCluster of N one-thread workers."""
    count = local_workers(cluster)
    if count is not None:
        # Worker losses are reported as each file's result; Dask's own logs about them, and
        # about workers losing the scheduler as the cluster shuts down, are tracebacks for nobody.
        logging.getLogger("distributed").setLevel(logging.CRITICAL)
        with dask.config.set(LOCAL_WORKER_CONFIG), LocalCluster(n_workers=count, threads_per_worker=1, processes=True, dashboard_address=None,
                          silence_logs=logging.CRITICAL) as local, Client(local) as client:
            yield client
        return
    try:
        client = Client(cluster, timeout=30)
    except (OSError, TimeoutError, ValueError) as error:
        raise BatchError(f"cannot reach the Dask scheduler at {cluster}: {error}") from None
    with client:
        yield client
