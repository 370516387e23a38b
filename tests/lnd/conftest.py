"""Fixtures for tests of the LND-protocol simulator and of the LightningAdapter.

The simulator fixtures (``lnsim``, ``lnsim_factory``, ``LnSimHandle``) live in
tests/fixtures/lnsim.py so the end-to-end tests share them.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from thespian.actors import ActorSystem

from adapters.lnd.actor import LightningAdapter
from adapters.lnd.messages import LightningStatus
from tests.fixtures.lnsim import WALLET_BALANCE_SAT, LnSimHandle, lnsim, lnsim_factory  # noqa: F401
from tests.lnd.adapter_kit import Inbox, configure_for, lnd_client

DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(scope="session")
def lnd_reference() -> dict:
    """LND's field numbers, enum values and method paths for the messages we use."""
    return json.loads((DATA / "lnd_field_numbers.json").read_text())


# ---------------------------------------------------------------- LightningAdapter fixtures
@pytest.fixture
def asys():
    system = ActorSystem("simpleSystemBase", transientUnique=True)
    yield system
    system.shutdown()


@pytest.fixture
def wallet(lnsim):  # noqa: F811 - the fixture imported above
    client = lnd_client(lnsim.wallets[0])
    yield client
    client.close()


@pytest.fixture
def adapter(asys, lnsim):  # noqa: F811 - the fixture imported above
    """A configured adapter whose owner is the test."""
    address = asys.createActor(LightningAdapter)
    status = asys.ask(address, configure_for(lnsim.mostro), timedelta(seconds=10))
    assert isinstance(status, LightningStatus) and status.connected, status
    return address


@pytest.fixture
def inbox(asys):
    return Inbox(asys)
