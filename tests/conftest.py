"""Fixtures shared by every test area.

Area fixtures live next to their tests (tests/<area>/conftest.py); only what
several areas need is registered here.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest
from thespian.actors import ActorSystem

# Fixtures several areas share (a real relay, the LND simulator), available everywhere.
pytest_plugins = ["tests.fixtures.relay", "tests.fixtures.lnsim"]

T = TypeVar("T")

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def simple_system() -> Iterator[ActorSystem]:
    """An in-process actor system (simpleSystemBase) of this test's own, shut down after it."""
    system = ActorSystem("simpleSystemBase", transientUnique=True)
    try:
        yield system
    finally:
        system.shutdown()

SHARED_TESTDATA = REPO.parent / "shared" / "testdata"


def wait_until(
    condition: Callable[[], T],
    timeout: float = 10.0,
    what: str = "condition",
    *,
    interval: float = 0.01,
    pump: Callable[[], None] | None = None,
) -> T:
    """The first truthy value of ``condition()``, polled every ``interval`` seconds: the one
    way tests wait. ``pump`` lets a single-threaded actor system run between tries; on
    timeout a TimeoutError names ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what} not met within {timeout} s")
        if pump is not None:
            pump()
        time.sleep(interval)  # the polling interval, not synchronisation on time


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
