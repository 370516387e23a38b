"""Fixtures shared by every test area.

Area fixtures live next to their tests (tests/<area>/conftest.py); only what
several areas need is registered here.
"""

from __future__ import annotations

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
