"""Fixtures shared by every test area.

Area fixtures live next to their tests (tests/<area>/conftest.py); only what
several areas need is registered here.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

# Fixtures several areas share (a real relay, the LND simulator), available everywhere.
pytest_plugins = ["tests.fixtures.relay", "tests.fixtures.lnsim"]

REPO = Path(__file__).resolve().parents[1]
SHARED_TESTDATA = REPO.parent / "shared" / "testdata"


def wait_until(condition: Callable[[], object], timeout: float = 10.0, interval: float = 0.01) -> object:
    """Poll ``condition`` until it returns something truthy; fail the test on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            pytest.fail(f"condition not met within {timeout} s: {condition}")
        time.sleep(interval)


@pytest.fixture
def shared_testdata() -> Path:
    return SHARED_TESTDATA


def _stray_actor_processes() -> list[int]:
    """Thespian actor processes of this test run (same process group) still alive."""
    own_group = os.getpgid(0)
    strays = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
            if b"ActorAddr-(" in cmdline and os.getpgid(int(entry.name)) == own_group:
                strays.append(int(entry.name))
        except (OSError, ProcessLookupError):
            continue
    return strays


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Leave no actor process behind: a child created while its system was shutting down
    can outlive it (thespian children do not notice a dead parent) and hold the run's
    output pipe open."""
    for pid in _stray_actor_processes():
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
