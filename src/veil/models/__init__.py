"""The models veil ships (ONNX files, each with its LICENSE beside it) and the one way they are run.

Every detector (faces, text, people, speech) gets its onnxruntime session here, set up alike:
the process's share of the cores, no busy-waiting threads, one CPU memory arena for all of
them, and one session per model per process, since loading a model costs more than a small image.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import threading
from collections.abc import Callable
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import TypeVar

import onnxruntime as ort

Detector = TypeVar("Detector")

_threads: int | None = None
_shared: dict[tuple[Callable[..., object], int | None, int], object] = {}
_shared_lock = threading.Lock()


def model_path(name: str) -> Path:
    return Path(str(resources.files("veil.models").joinpath(name)))


@lru_cache(maxsize=None)
def model_sha256(name: str) -> str:
    return hashlib.sha256(model_path(name).read_bytes()).hexdigest()


def shipped_models_sha256() -> dict[str, str]:
    """Every model veil ships, by file name, with its SHA-256."""
    return {path.name: model_sha256(path.name) for path in sorted(model_path("").glob("*.onnx"))}


def available_providers() -> list[str]:
    """CUDA when onnxruntime-gpu can use it, then the CPU."""
    wanted = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    present = set(ort.get_available_providers())
    if "CUDAExecutionProvider" in present and hasattr(ort, "preload_dlls"):
        # CUDA and cuDNN installed from pip (onnxruntime-gpu[cuda,cudnn], or PyTorch's) are not
        # on the loader's search path; this is onnxruntime's documented way to load them.
        ort.preload_dlls()
    return [p for p in wanted if p in present]


def runtime_record() -> dict:
    """What ran the models, for the plan's detection record: onnxruntime's version and the
    providers this process's sessions run on (on CUDA the face detector's inputs are also padded
    to fixed shapes: `CenterFace.fixed_shapes`)."""
    with _shared_lock:
        used = {made.session.get_providers()[0] for made in _shared.values() if hasattr(made, "session")}
    return {"runtime": {"onnxruntime": ort.__version__, "execution_providers": sorted(used)}}


def usable_cores() -> int:
    """The cores this process may run on (a container or `taskset` may allow fewer than the machine has)."""
    return len(os.sched_getaffinity(0))


def session_threads() -> int:
    """Threads a session gets unless told otherwise: this process's share of the cores."""
    return _threads or usable_cores()


def set_threads(threads: int) -> None:
    """Threads for this process's sessions, set before their first use: N worker processes on
    one machine each take 1/N of its cores, so they do not fight over them."""
    global _threads
    _threads = threads


@lru_cache(maxsize=None)
def _register_cpu_arena() -> None:
    """One CPU memory arena for all of the sessions in this process, grown by what a run asks
    for. A session's own arena grows in doubling chunks, and keeps them: on a huge photo, a
    full-size tile's activations plus whatever the last doubling overshot, per session."""
    memory = ort.OrtMemoryInfo("Cpu", ort.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0, ort.OrtMemType.DEFAULT)
    # No size limit; extend by the amount requested (strategy 1); default chunk settings.
    ort.create_and_register_allocator(memory, ort.OrtArenaCfg(0, 1, -1, -1))


def onnx_session(name: str, providers: list[str] | None = None, threads: int | None = None) -> ort.InferenceSession:
    """An onnxruntime session over one of veil's models."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads or session_threads()
    # Fatal messages only: an error is raised to veil, which says it in its own line naming the
    # file, and onnxruntime printed it too, in red, around that line ("Failed to allocate memory").
    options.log_severity_level = 4
    # Busy-waiting worker threads steal the cores that decoding and encoding need.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    # No memory pattern: from its second run on, a session with one takes a single block for
    # all of a run's activations from the arena, beside the blocks the arena kept from the
    # first run, about doubling the memory a large tile holds. Without it, each run reuses the
    # arena's blocks, at the same speed. (Without an arena, memory goes back to the system after
    # each run, but allocating it afresh for every run makes detection much slower.)
    options.enable_mem_pattern = False
    _register_cpu_arena()
    options.add_session_config_entry("session.use_env_allocators", "1")
    # onnxruntime's Python prints a provider's failure ("*** EP Error *** ... Falling back") on
    # stdout, where --json's answer goes: veil says the error raised in its own line.
    with contextlib.redirect_stdout(io.StringIO()):
        return ort.InferenceSession(str(model_path(name)), sess_options=options,
                                    providers=providers or available_providers())


def shared(make: Callable[..., Detector], threads: int | None = None, copy: int = 0) -> Detector:
    """This process's `make(threads=threads)`: made on first use, then shared by every thread.
    `threads`: the session's threads, None for session_threads(). `copy`: which of several such
    sessions, for runs side by side that must not share one session's threads (a session's
    concurrent runs share its one pool)."""
    if threads == session_threads():
        threads = None  # the default session, not a second one like it
    with _shared_lock:
        if (make, threads, copy) not in _shared:
            _shared[make, threads, copy] = make() if threads is None else make(threads=threads)
        return _shared[make, threads, copy]  # type: ignore[return-value]
