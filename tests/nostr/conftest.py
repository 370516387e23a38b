"""Fixtures for the Nostr adapter tests: real relays, signed events, and a callback recorder.

The relay fixtures come from tests/fixtures/relay.py; importing them here keeps this area working
whether or not tests/conftest.py registers that module as a plugin.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import storage
from adapters.nostr.keys import KeyPair, generate_keypair
from adapters.nostr.nostr_event import NostrEvent
from tests.fixtures.relay import relay, relay_factory, session_relay  # noqa: F401

EventMaker = Callable[..., dict[str, Any]]


@pytest.fixture
def author() -> KeyPair:
    return generate_keypair()


@pytest.fixture
def make_event(author: KeyPair) -> EventMaker:
    """Build a signed event dict (by `author` unless another key is given)."""

    def make(
        kind: int = 1,
        tags: list[list[str]] | None = None,
        content: str = "",
        created_at: int | None = None,
        signer: KeyPair | None = None,
    ) -> dict[str, Any]:
        event = NostrEvent.signed(
            signer or author,
            int(time.time()) if created_at is None else created_at,
            kind,
            tags or [],
            content,
        )
        return event.to_dict()

    return make


class Recorder:
    """Collects what a relay pool reports from its thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.events: list[tuple[dict[str, Any], str]] = []
        self.outcomes: list[Any] = []
        self.statuses: list[Any] = []

    def on_event(self, event: dict[str, Any], url: str) -> None:
        with self._lock:
            self.events.append((event, url))

    def on_published(self, outcome: Any) -> None:
        with self._lock:
            self.outcomes.append(outcome)

    def on_status(self, change: Any) -> None:
        with self._lock:
            self.statuses.append(change)

    def event_ids(self) -> list[str]:
        with self._lock:
            return [event["id"] for event, _ in self.events]

    def outcome_for(self, event_id: str) -> Any:
        with self._lock:
            return next((o for o in self.outcomes if o.event_id == event_id), None)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[str]:
    """A migrated SQLite database file for the test, by URL."""
    url = f"sqlite:///{tmp_path}/db.sqlite"
    db = storage.open_database(url)
    storage.migrate(db)
    yield url
    db.close()
