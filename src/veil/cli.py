"""The `veil` command's start (the `veil` script, `python -m veil`): the process readied before
the command's imports, half a second of onnxruntime, OpenCV, PyAV and typer (veil.command)."""

from __future__ import annotations

import os
import signal
import warnings

from veil.interrupt import STOP_SIGNALS, catch_stops, no_core_dumps
from veil.terminal import keep_stderr_open


def main() -> None:
    keep_stderr_open()  # before any file is opened
    no_core_dumps()
    # A library's warnings (Pillow on odd EXIF, a decompression bomb veil refuses anyway) are not
    # the user's to read: veil says what matters in its own lines. Worker processes too.
    warnings.simplefilter("ignore")
    os.environ["PYTHONWARNINGS"] = "ignore"
    # Held back until the command can say what a stop did (a Ctrl-C while it was imported ended
    # in a traceback), then caught.
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    catch_stops()
    from veil.command import main as command

    command()
