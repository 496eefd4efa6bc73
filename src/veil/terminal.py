"""Where veil speaks to its user: standard error, through one Rich console.

A reader may close that pipe early (`veil DIR 2>&1 | head -1`), or the terminal may close
(SIGHUP, and each write there then fails with EIO). Rich's answer to the first is to end the
program with exit code 1 on the next line written, wherever the run is, and it raises the second:
the files still to do would not be done, and the exit code would no longer say how the files went
(a stop's, 128 + the signal, among them). Here standard error that can no longer be written is
silence from then on; the work, the manifest and the exit code are unchanged.
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
        if self.width < 1:  # COLUMNS=0: Rich printed nothing at all, errors and the review's address included
            self.width = 80

    def _check_buffer(self) -> None:
        """Rich's writing of what was printed, where a broken pipe is its one failure it handles."""
        try:
            super()._check_buffer()
        except OSError:  # EIO from a closed terminal, say
            self.on_broken_pipe()

    def on_broken_pipe(self) -> None:
        self.quiet = True
        # Python writes to standard error again at exit (a flush): it must find somewhere to write.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stderr.fileno())


err = StderrConsole()


def keep_stderr_open() -> None:
    """A process started with its standard error closed (by a service, `2>&-`) gets /dev/null
    there: the next file opened would take descriptor 2, and what C code writes to standard error
    (a decoder's warnings) would be written into it, an output being written, say."""
    try:
        os.fstat(2)
    except OSError:
        null = os.open(os.devnull, os.O_WRONLY)
        if null != 2:
            os.dup2(null, 2)
            os.close(null)
