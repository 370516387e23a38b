"""Fixtures for the pure order-logic tests (builders live in ``kit``)."""

from __future__ import annotations

import pytest

from . import kit


@pytest.fixture
def settings():
    return kit.SETTINGS


@pytest.fixture
def make_settings():
    return kit.make_settings


@pytest.fixture
def make_invoice():
    """``make_invoice(amount_sat=None, *, timestamp, expiry, currency, min_final_cltv, label)``."""
    return kit.invoice


@pytest.fixture
def logic_ctx():
    """``logic_ctx(now=NOW, *, entropy, settings, prices, reputations)`` → DecisionContext."""
    return kit.ctx
