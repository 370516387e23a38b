"""Fixtures for tests of the LND-protocol simulator and of the LightningAdapter.

The simulator fixtures (``lnsim``, ``lnsim_factory``, ``LnSimHandle``) live in
tests/fixtures/lnsim.py so the end-to-end tests share them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.fixtures.lnsim import WALLET_BALANCE_SAT, LnSimHandle, lnsim, lnsim_factory  # noqa: F401

DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(scope="session")
def lnd_reference() -> dict:
    """LND's field numbers, enum values and method paths for the messages we use."""
    return json.loads((DATA / "lnd_field_numbers.json").read_text())
