"""The `veil` command's start (the `veil` script, `python -m veil`): the process readied before
the command's imports, half a second of onnxruntime, OpenCV, PyAV and typer (veil.command)."""

from __future__ import annotations

import logging
import os
import signal
import warnings


def main() -> None:
    # The stop signals (veil.interrupt.STOP_SIGNALS) held back from the first moment, before even
    # veil's own modules are imported (a Ctrl-C meanwhile ended in a traceback), until the command
    # can say what a stop did; then caught.
    signal.pthread_sigmask(signal.SIG_BLOCK, (signal.SIGINT, signal.SIGTERM, signal.SIGHUP))
    from veil.terminal import keep_stderr_open

    keep_stderr_open()  # before any file is opened and kept
    from veil.interrupt import catch_stops, no_core_dumps

    no_core_dumps()
    # A library's warnings (Pillow on odd EXIF, a decompression bomb veil refuses anyway) are not
    # the user's to read: veil says what matters in its own lines. Worker processes too.
    warnings.simplefilter("ignore")
    os.environ["PYTHONWARNINGS"] = "ignore"
    # Nor asyncio's log: a stop during an https read leaves fsspec's read task pending, and Python
    # destroys it at exit with "Task was destroyed but it is pending!" under veil's stop line.
    logging.getLogger("asyncio").setLevel(logging.CRITICAL)
    catch_stops()
    try:
        from veil.command import main as command
    except Exception as error:  # a library that could not be loaded, or not as veil knows it: no traceback either
        from veil.terminal import err

        if isinstance(error, MemoryError) or "failed to map segment" in str(error):
            lacking = " (too little memory to load it: a memory limit, ulimit -v, say)"
        elif not isinstance(error, ImportError):  # a name an older release lacks (cv2.utils.logging, say)
            lacking = (f" ({type(error).__name__}: a library installed is older or other than veil works with: "
                       "install veil again, in a new virtualenv)")
        else:
            lacking = ""
        err.print(f"veil: cannot start: {' '.join(str(error).split()) or type(error).__name__}{lacking}")
        raise SystemExit(2) from None
    try:
        os.getcwd()
    except OSError:  # a relative name could not be found or written, said as "unexpected" or of an input
        from veil.terminal import err

        err.print("veil: the current folder no longer exists (removed, or moved away): change to a folder that "
                  "does, and run veil again")
        raise SystemExit(2) from None
    command()
