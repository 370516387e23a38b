"""Fixtures for the settings tests: the test data folder and the NIP-19 key vector."""

from __future__ import annotations

from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parent / "data"

# NIP-19's published example key, in both spellings, and its public key.
NSEC = "nsec1vl029mgpspedva04g90vltkh6fvh240zqtv9k0t9af8935ke9laqsnlfe5"
SECRET_HEX = "67dea2ed018072d675f5415ecfaed7d2597555e202d85b3d65ea4e58d2d92ffa"
PUBKEY_HEX = "7e7e9c42a91bfef19fa929e5fda1b72e0ebc1a4c1141673e2794234d86addf4e"


@pytest.fixture
def minimal_toml() -> str:
    return (DATA / "minimal.toml").read_text()
