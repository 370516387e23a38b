"""Fixtures for the settings tests."""

from __future__ import annotations

from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture
def minimal_toml() -> str:
    return (DATA / "minimal.toml").read_text()
