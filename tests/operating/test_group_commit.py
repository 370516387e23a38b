"""Group commit with real order actors (simpleSystemBase, a real migrated SQLite file): the
decisions of one burst share a COMMIT, and each order's effects reach the outbox only after its
rows are committed (another connection already sees them); when the group's COMMIT fails, or
one decision's writes fail part way, nothing is lost or answered twice: every order decides its
event again and is answered once (a decision that fails every time is given up alone)."""

from __future__ import annotations

import dataclasses
from typing import Any

import peewee
import pytest
from thespian.actors import Actor, ActorSystem

import storage
from actors.directory import OrderDirectoryActor
from actors.messages import (
    DispatchBatch,
    DispatchEffects,
    Peers,
    RouteBatch,
    RouteToOrder,
    RuntimeConfig,
)
from storage import commit_group, models
from tests.conftest import wait_until
from tests.fixtures.failing_commit import (
    add_dangling_reference,
    create_deferred_reference,
    dangling_rows,
)

from .conftest import load_data
from .journal_kit import REQUEST_ORDER_ID, _request

ORDERS = 5


class CommittedOutbox(Actor):
    """Stands in for the outbox: for each dispatch, whether another connection to the database
    already sees its outbox rows (i.e. they were committed before the dispatch was sent)."""

    def __init__(self) -> None:
        super().__init__()
        self.observer: peewee.Database | None = None
        self.seen: list[tuple[str, bool]] = []
        self.new_order: list[bool] = []
        self.messages = 0

    def receiveMessage(self, msg: Any, sender: Any) -> None:
        if isinstance(msg, tuple) and msg[0] == "observe":
            self.observer = storage.connect_database(msg[1])
        elif msg == "list":
            self.send(sender, list(self.seen))
        elif msg == "new":
            self.send(sender, list(self.new_order))
        elif msg == "messages":
            self.send(sender, self.messages)
        elif isinstance(msg, DispatchBatch | DispatchEffects):
            self.messages += 1
            for dispatch in getattr(msg, "dispatches", (msg,)):
                ids = list(dispatch.effect_ids)
                marks = ", ".join("?" * len(ids))
                assert self.observer is not None
                found = self.observer.execute_sql(
                    f'SELECT count(*) FROM "outbox" WHERE "id" IN ({marks})', ids).fetchone()[0]
                self.seen.append((dispatch.order_id, found == len(ids)))
                self.new_order.append(dispatch.new_order)


class Starter(Actor):
    """Sends a burst in one handler, so its messages are delivered back to back (one group);
    with "sabotage" first, it opens the group and writes a row whose reference is checked only
    at COMMIT, which therefore fails."""

    def receiveMessage(self, msg: Any, sender: Any) -> None:
        if isinstance(msg, tuple) and msg[0] == "burst":
            _, directory, batch, sabotage = msg
            if sabotage:
                group = commit_group.current()
                assert group is not None  # the simple base's loop batches
                group.open()
                add_dangling_reference()
            self.send(directory, batch)



def _burst(settings: Any, simple_system: ActorSystem) -> tuple[Any, Any, RouteBatch]:
    # the base whose loop batches: the directory passes dispatches on at once (a multiprocess
    # base's settings would have it hold them for a while, hiding an early dispatch)
    settings = dataclasses.replace(
        settings, actors=dataclasses.replace(settings.actors, base="simpleSystemBase"))
    script = load_data("sell_trade.json")
    now = script["start"]
    first = _request(script["steps"][0], script, REQUEST_ORDER_ID, now)
    requests = [dataclasses.replace(first, message=dataclasses.replace(
        first.message, trade_index=index + 1)) for index in range(ORDERS)]
    outbox = simple_system.createActor(CommittedOutbox)
    simple_system.tell(outbox, ("observe", settings.database.url))
    directory = simple_system.createActor(OrderDirectoryActor)
    peers = Peers(directory=directory, outbox=outbox)
    assert simple_system.ask(directory, RuntimeConfig(settings, settings.database.url, peers), 5)
    return outbox, directory, RouteBatch(tuple(RouteToOrder("", r, now) for r in requests))


def _stored_orders() -> int:
    return models.Order.select().count()


def test_a_burst_commits_once_and_each_dispatch_follows_its_commit(
        db: Any, settings: Any, simple_system: ActorSystem, monkeypatch: pytest.MonkeyPatch) -> None:
    outbox, directory, batch = _burst(settings, simple_system)
    commits: list[int] = []
    real_commit = db.commit
    monkeypatch.setattr(db, "commit", lambda: commits.append(_stored_orders()) or real_commit())

    simple_system.tell(simple_system.createActor(Starter), ("burst", directory, batch, False))
    wait_until(lambda: len(simple_system.ask(outbox, "list", 5)) == ORDERS, timeout=10)
    seen = simple_system.ask(outbox, "list", 5)
    assert len({order_id for order_id, _ in seen}) == ORDERS
    assert all(committed for _, committed in seen)
    assert commits[0] == ORDERS  # the first COMMIT held every order of the burst
    assert len(commits) < ORDERS
    # each is a new order's first decision: the outbox is told it has no publication history
    assert simple_system.ask(outbox, "new", 5) == [True] * ORDERS
    # and the group's decisions reached it as one message (via one HandledBatch)
    assert simple_system.ask(outbox, "messages", 5) == 1


def test_a_failed_group_commit_loses_nothing_and_answers_each_order_once(
        db: Any, settings: Any, simple_system: ActorSystem) -> None:
    create_deferred_reference()
    outbox, directory, batch = _burst(settings, simple_system)

    simple_system.tell(simple_system.createActor(Starter), ("burst", directory, batch, True))
    assert _stored_orders() == 0  # the group's COMMIT failed: nothing of it is stored
    assert simple_system.ask(outbox, "list", 5) == []  # and nothing was dispatched
    # each order actor decides its event again after its storage retry delay
    wait_until(lambda: len(simple_system.ask(outbox, "list", 5)) == ORDERS, timeout=10)
    seen = simple_system.ask(outbox, "list", 5)
    assert len({order_id for order_id, _ in seen}) == ORDERS  # each order answered once
    assert all(committed for _, committed in seen)
    assert _stored_orders() == ORDERS
    journal = models.JournalEntry.select(models.JournalEntry.order_id,
                                         models.JournalEntry.seq).tuples()
    assert sorted(order_id for order_id, _ in journal) == sorted(order_id for order_id, _ in seen)
    # numbered from 1 again: the rolled-back rows are not counted by the retry
    assert {seq for _, seq in journal} == {1}
    assert dangling_rows() == 0


@pytest.mark.parametrize("every_time", [False, True], ids=["once", "every-time"])
def test_a_decision_whose_writes_fail_part_way_costs_the_others_nothing(
        db: Any, settings: Any, simple_system: ActorSystem, monkeypatch: pytest.MonkeyPatch,
        every_time: bool) -> None:
    """The third order's writes fail after its journal row: the group (with the first two) is
    rolled back and those three decide again later, each on its own; every other order is
    stored and answered exactly once. A failure that repeats costs only its own order."""
    from storage import repository

    real_enqueue = repository.enqueue_effects
    calls: list[str] = []
    failing: list[str] = []

    def enqueue(order_id: str, *args: Any) -> Any:
        calls.append(order_id)
        if len(calls) == 3 or (every_time and order_id in failing):
            failing.append(order_id)
            raise RuntimeError("simulated failure between two writes")
        return real_enqueue(order_id, *args)

    monkeypatch.setattr(repository, "enqueue_effects", enqueue)
    outbox, directory, batch = _burst(settings, simple_system)
    simple_system.tell(simple_system.createActor(Starter), ("burst", directory, batch, False))
    answered = ORDERS - 1 if every_time else ORDERS
    wait_until(lambda: len(simple_system.ask(outbox, "list", 5)) == answered, timeout=10)
    seen = simple_system.ask(outbox, "list", 5)
    assert len({order_id for order_id, _ in seen}) == answered  # each answered once
    assert all(committed for _, committed in seen)
    # the two rolled back with the failing one were decided again after the two later ones
    retried = calls[:2] if every_time else calls[:3]
    assert {order_id for order_id, _ in seen[-len(retried):]} == set(retried)
    assert (failing[0] in {order_id for order_id, _ in seen}) is not every_time
    stored = [order_id for (order_id,) in models.Order.select(models.Order.id).tuples()]
    assert sorted(stored) == sorted(order_id for order_id, _ in seen)
    journal = models.JournalEntry.select(models.JournalEntry.order_id,
                                         models.JournalEntry.seq).tuples()
    assert sorted(order_id for order_id, _ in journal) == sorted(stored)
    assert {seq for _, seq in journal} == {1}
    if every_time:  # tried in the group, then once on its own: then it is given up
        assert failing == [failing[0]] * 2
