"""Shared fixtures. Tests use the real third-party data beside the checkout (../shared/data)."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def _not_ignored(signum: int, frame: object) -> None:
    """SIGHUP's handler in the test process: it goes on, as nohup's ignoring would have it."""


def pytest_configure(config: pytest.Config) -> None:
    """The stop signals handled in this process, so that the veil processes the tests start get
    them as a terminal's programs do: a signal ignored here (a run started with nohup, or as a
    script's background job) would stay ignored in them, as veil keeps it, and the tests that stop
    veil would fail."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGHUP, _not_ignored)
    if signal.getsignal(signal.SIGTERM) == signal.SIG_IGN:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The read-only real test data; copy files into tmp_path before writing anything."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} is absent: real test data is needed")
    return SHARED_DATA
