"""Where veil speaks to its user: standard error, through one Rich console.

A reader may close that pipe early (`veil DIR 2>&1 | head -1`). Rich's answer is to end the
program with exit code 1 on the next line written, wherever the run is: the files still to do
would not be done, and the exit code would no longer say how the files went. Here a closed
standard error is silence from then on; the work, the manifest and the exit code are unchanged.
"""

from __future__ import annotations

import os
import sys

from rich.console import Console


class StderrConsole(Console):
    def __init__(self) -> None:
        # Messages name user files: no markup or emoji codes ("photo [edited].jpg" must print as
        # is), and no wrapping, so each message stays on one line whatever the terminal width.
        super().__init__(stderr=True, highlight=False, markup=False, emoji=False, soft_wrap=True)

    def on_broken_pipe(self) -> None:
        self.quiet = True
        # Python writes to standard error again at exit (a flush): it must find somewhere to write.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stderr.fileno())


err = StderrConsole()
