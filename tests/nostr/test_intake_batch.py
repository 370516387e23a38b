"""The intake's batch handler (`IntakeHandler.handle_batch`) on a real migrated SQLite database.

The Nostr adapter hands it every event read since its last wake-up; it must give exactly what
checking them one by one gives (routes to the directory in arrival order, replays dropped even
inside one batch, one bad event dropping only itself) while writing the replay guard in one
transaction per chunk.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

from actors import intake as intake_module
from actors.intake import IntakeHandlerFactory
from actors.messages import RouteBatch, RouteToOrder
from adapters.nostr import transport
from adapters.nostr.adapter_messages import Addressed, InboundEvent
from adapters.nostr.keys import generate_keypair
from adapters.nostr.protocol.content import build_content
from adapters.nostr.protocol.enums import Action, Transport
from adapters.nostr.protocol.payloads import Message
from config.examples import EXAMPLE_PUBKEY_HEX, example_settings
from storage import models

DIRECTORY = "directory-address"  # any picklable address: the handler only wraps it


def take_sell(order_id: str, now: int) -> dict[str, Any]:
    trade, identity = generate_keypair(), generate_keypair()
    message = Message(action=Action.TAKE_SELL, version=2, request_id=1, trade_index=1,
                      id=order_id)
    plaintext = build_content(message, Transport.NIP44, trade.secret_hex, identity.secret_hex)
    return transport.wrap_client_message(plaintext, trade.secret_hex, identity.secret_hex,
                                         EXAMPLE_PUBKEY_HEX, "nip44", now)


def inbound(event: dict[str, Any]) -> InboundEvent:
    return InboundEvent(event, "ws://relay", time.time())


def handler(database_url: str) -> Any:
    settings = example_settings(mostro={"transport": "nip44"})
    return IntakeHandlerFactory(settings, database_url, DIRECTORY)()


def routed_order_ids(outputs: list[Any]) -> list[str]:
    """The order ids routed, in order; several routes of one batch must come as ONE
    `RouteBatch` message to the directory (one transport hop instead of one each)."""
    assert all(isinstance(o, Addressed) and o.to == DIRECTORY for o in outputs)
    if len(outputs) == 1 and isinstance(outputs[0].message, RouteBatch):
        routes = outputs[0].message.routes
        assert len(routes) >= 2
    else:
        assert len(outputs) <= 1
        routes = tuple(o.message for o in outputs)
    assert all(isinstance(route, RouteToOrder) for route in routes)
    return [route.order_id for route in routes]


def test_a_batch_routes_like_single_events_and_drops_a_replay_inside_it(database_url: str) -> None:
    now = int(time.time())
    order_ids = [str(uuid.uuid4()) for _ in range(3)]
    events = [take_sell(order_id, now) for order_id in order_ids]
    handle = handler(database_url)
    outputs = handle.handle_batch([inbound(e) for e in [*events, events[0]]])
    assert routed_order_ids(outputs) == order_ids  # in arrival order; the replay dropped
    assert handle.intake.dropped["replayed-event"] == 1
    stored = {row.event_id for row in models.SeenEvent.select()}
    assert stored == {e["id"] for e in events}
    assert handle(inbound(events[1])) == []  # the guard was committed: a later copy is a replay


def test_one_bad_event_drops_only_itself(database_url: str) -> None:
    now = int(time.time())
    good = [take_sell(str(uuid.uuid4()), now) for _ in range(2)]
    broken = {**good[0], "id": "not an id"}
    handle = handler(database_url)
    outputs = handle.handle_batch([inbound(good[0]), inbound(broken), inbound(good[1])])
    assert len(routed_order_ids(outputs)) == 2
    assert handle.intake.dropped["malformed-event"] == 1


def test_a_long_batch_is_checked_in_bounded_transactions(database_url: str,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(intake_module, "BATCH_TRANSACTION_EVENTS", 2)
    now = int(time.time())
    events = [take_sell(str(uuid.uuid4()), now) for _ in range(5)]
    handle = handler(database_url)
    transactions = []
    proxy_class = type(models.database_proxy)
    real_atomic = proxy_class.atomic

    def counting_atomic(self: Any, *args: Any, **kwargs: Any) -> Any:
        transactions.append(1)
        return real_atomic(self, *args, **kwargs)

    monkeypatch.setattr(proxy_class, "atomic", counting_atomic)
    outputs = handle.handle_batch([inbound(e) for e in events])
    assert len(routed_order_ids(outputs)) == 5
    assert len(transactions) == 3  # 2 + 2 + 1
    assert models.SeenEvent.select().count() == 5


def test_events_checked_by_the_worker_are_remembered_in_one_statement(
        database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the worker's prechecks the replay guard records a chunk's ids in one statement;
    routes and drops are what checking them one by one gives."""
    from actors.intake_precheck import IntakePrecheck
    from storage import repository

    settings = example_settings(mostro={"transport": "nip44"})
    check = IntakePrecheck.from_settings(settings)()
    now = int(time.time())
    order_ids = [str(uuid.uuid4()) for _ in range(3)]
    events = [take_sell(order_id, now) for order_id in order_ids]

    def checked(event: dict[str, Any]) -> InboundEvent:
        return InboundEvent(event, "ws://relay", time.time(), True, check(event, now))

    single, many = [], []
    real_single, real_many = repository.record_seen_event, repository.record_seen_events
    monkeypatch.setattr(repository, "record_seen_event",
                        lambda *a, **k: single.append(a) or real_single(*a, **k))
    monkeypatch.setattr(repository, "record_seen_events",
                        lambda ids, *a, **k: many.append(list(ids)) or real_many(ids, *a, **k))
    handle = handler(database_url)
    outputs = handle.handle_batch([checked(e) for e in [*events, events[0]]])
    assert routed_order_ids(outputs) == order_ids  # the copy inside the batch is a replay
    assert handle.intake.dropped["replayed-event"] == 1
    assert [len(ids) for ids in many if ids] == [4] and single == [(events[0]["id"], now)]
    assert {row.event_id for row in models.SeenEvent.select()} == {e["id"] for e in events}
    assert handle.handle_batch([checked(events[1])]) == []  # seen in the earlier batch
    assert handle.intake.dropped["replayed-event"] == 2
