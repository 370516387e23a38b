"""Re-delivery after an order actor died: an event it had committed is not decided twice.

The directory re-sends what a dead actor had not confirmed, marked ``redelivered``
(actors/directory.py). Here the order's journal already holds the event (the dead
actor committed it and died before its confirmation reached the directory): a fresh
actor must skip it (no journal entry, no outbox row), while the same event *not*
marked re-delivered is decided again, which is what the mark prevents. Also the
placement rules (actors/placement.py) that decide where order actors run.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from thespian.actors import ActorSystem

import storage
from actors import records_json
from actors.messages import ActivateOrder, OrderHandled, RouteToOrder, RuntimeConfig
from actors.order_actor import OrderActor
from actors.placement import HOST, ORDERS, Host, accepts_order_actor, choose_host
from config import load_settings
from storage import models
from tests.operating.conftest import free_port, load_data, write_settings
from tests.operating.journal_kit import run_script


@pytest.fixture
def settings(tmp_path: Path) -> Iterator[Any]:
    path = write_settings(tmp_path / "settings.toml", tmp_path / "mostro.db", free_port(),
                          base="simpleSystemBase")
    loaded = load_settings(str(path))
    database = storage.open_database(loaded.database.url)
    storage.migrate(database)
    yield loaded
    database.close()


def counts(order_id: str) -> tuple[int, int]:
    journal = models.JournalEntry.select().where(models.JournalEntry.order_id == order_id).count()
    outbox = models.OutboxEffect.select().where(models.OutboxEffect.order_id == order_id).count()
    return journal, outbox


def deliver_to_fresh_actor(settings: Any, msg: RouteToOrder) -> Any:
    system = ActorSystem("simpleSystemBase", transientUnique=True)
    try:
        actor = system.createActor(OrderActor)
        system.tell(actor, ActivateOrder(msg.order_id, RuntimeConfig(settings, settings.database.url)))
        return system.ask(actor, msg, 10)
    finally:
        system.shutdown()


@pytest.mark.parametrize("redelivered", [True, False], ids=["redelivered", "fresh"])
def test_a_committed_event_sent_again_is_skipped_only_when_marked(settings: Any,
                                                                  redelivered: bool) -> None:
    script = load_data("sell_trade.json")
    script["steps"] = script["steps"][:2]  # new-order, take-sell: waiting for the buyer's invoice
    order_id = run_script(script, settings)[0]
    last = (models.JournalEntry.select().where(models.JournalEntry.order_id == order_id)
            .order_by(models.JournalEntry.seq.desc()).get())
    event = records_json.loads(last.message)  # the take the dead actor had committed
    before = counts(order_id)
    now = script["start"] + script["steps"][-1]["at"] + 1
    reply = deliver_to_fresh_actor(settings, RouteToOrder(order_id, event, now, redelivered))
    assert isinstance(reply, OrderHandled) and reply.status == "waiting-buyer-invoice"
    if redelivered:
        assert counts(order_id) == before  # nothing decided, nothing sent
    else:
        assert counts(order_id) > before  # decided again: a second answer to the taker


def test_order_actors_run_only_where_orders_are_offered_and_pinned() -> None:
    assert accepts_order_actor({}, None)  # a bare system (tests, one host) runs them
    assert not accepts_order_actor({ORDERS: False, HOST: "a:1"}, None)
    assert accepts_order_actor({ORDERS: True, HOST: "a:1"}, {HOST: "a:1"})
    assert not accepts_order_actor({ORDERS: True, HOST: "b:2"}, {HOST: "a:1"})


def test_placement_prefers_the_least_loaded_worker_and_falls_back_to_the_leader() -> None:
    leader = Host("leader:1900", None, live=0)
    busy, idle = Host("w1:1901", "admin-1", live=3), Host("w2:1902", "admin-2", live=1)
    assert choose_host([leader, busy, idle]) is idle
    assert choose_host([leader, busy]) is busy  # the leader runs the adapters: members first
    assert choose_host([leader]) is leader
    assert choose_host([]) is None
