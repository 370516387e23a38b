"""The messages one request costs on its way through the directory and an order actor
(simpleSystemBase, a real migrated SQLite file): requests of one intake wake-up arrive as one
`RouteBatch`; a new order's actor is activated with its first event in the same message and
reads nothing for it; the outbox is handed the committed effects themselves; a schedule the
clock already has is not sent again; a finished order's actor is retired."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

import pytest
from thespian.actors import Actor, ActorSystem

from actors import held_batch, order_store
from actors.directory import OrderDirectoryActor
from actors.messages import (
    DirectoryStatus,
    DispatchBatch,
    DispatchEffects,
    Peers,
    RouteBatch,
    RouteToOrder,
    RuntimeConfig,
    ScheduleBatch,
    ScheduleDeadlines,
    StatusRequest,
)
from actors.order_actor import first_of_new_order
from actors.order_logic.model import ClientRequest
from adapters.nostr.protocol.enums import Action
from adapters.nostr.protocol.payloads import Message
from storage import models
from tests.conftest import wait_until

from .conftest import load_data
from .journal_kit import REQUEST_ORDER_ID, _request


class Recorder(Actor):
    """Keeps every message; answers "list" with what it kept."""

    def __init__(self) -> None:
        super().__init__()
        self.kept: list[Any] = []

    def receiveMessage(self, msg: Any, sender: Any) -> None:
        if msg == "list":
            self.send(sender, list(self.kept))
        elif not isinstance(msg, str):
            self.kept.append(msg)



def _kept(simple_system: ActorSystem, recorder: Any) -> list[Any]:
    return simple_system.ask(recorder, "list", 5)


def _dispatches(kept: list[Any]) -> list[DispatchEffects]:
    """The DispatchEffects the outbox got, alone or inside a DispatchBatch, in order."""
    out: list[DispatchEffects] = []
    for message in kept:
        if isinstance(message, DispatchBatch):
            out.extend(message.dispatches)
        elif isinstance(message, DispatchEffects):
            out.append(message)
    return out


def _schedules(kept: list[Any]) -> list[ScheduleDeadlines]:
    """The ScheduleDeadlines the clock got, alone or inside a ScheduleBatch, in order."""
    out: list[ScheduleDeadlines] = []
    for message in kept:
        if isinstance(message, ScheduleBatch):
            out.extend(message.schedules)
        elif isinstance(message, ScheduleDeadlines):
            out.append(message)
    return out


def test_first_of_new_order_only_for_the_first_delivery_of_a_new_order() -> None:
    order_id = "11111111-1111-4111-8111-111111111111"
    request = ClientRequest(Message(action=Action.NEW_ORDER, id=order_id), "aa" * 32, "aa" * 32)
    assert first_of_new_order(order_id, RouteToOrder(order_id, request))
    assert not first_of_new_order(order_id, RouteToOrder(order_id, request, redelivered=True))
    assert not first_of_new_order("22222222-2222-4222-8222-222222222222",
                                  RouteToOrder(order_id, request))
    cancel = dataclasses.replace(request, message=Message(action=Action.CANCEL, id=order_id))
    assert not first_of_new_order(order_id, RouteToOrder(order_id, cancel))


def test_a_batch_of_new_orders_then_a_cancel(db: Any, settings: Any, simple_system: ActorSystem,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    script = load_data("sell_trade.json")
    now = script["start"]
    new_order = _request(script["steps"][0], script, REQUEST_ORDER_ID, now)
    second = dataclasses.replace(
        new_order, message=dataclasses.replace(new_order.message, trade_index=2))
    outbox, clock = simple_system.createActor(Recorder), simple_system.createActor(Recorder)
    directory = simple_system.createActor(OrderDirectoryActor)
    peers = Peers(directory=directory, clock=clock, outbox=outbox)
    assert simple_system.ask(directory, RuntimeConfig(settings, settings.database.url, peers), 5)
    # a multiprocess base's settings: the directory gathers the actors' dispatches (long
    # enough here that a loaded machine cannot flush between the two orders' decisions)
    assert settings.actors.base == "multiprocTCPBase"
    monkeypatch.setattr(held_batch, "HOLD", timedelta(milliseconds=300))

    reads: list[str] = []
    real_load = order_store.load_state
    monkeypatch.setattr(order_store, "load_state",
                        lambda order_id: reads.append(order_id) or real_load(order_id))

    simple_system.tell(directory, RouteBatch((RouteToOrder("", new_order, now),
                                       RouteToOrder("", second, now))))
    wait_until(lambda: len(_dispatches(_kept(simple_system, outbox))) == 2, timeout=10)
    kept = _kept(simple_system, outbox)
    assert len(kept) == 1 and isinstance(kept[0], DispatchBatch)  # both decisions, one message
    dispatched = _dispatches(kept)
    order_ids = [m.order_id for m in dispatched]
    assert len(set(order_ids)) == 2
    assert reads == []  # brand-new orders: nothing read back
    for message in dispatched:
        rows = {row.id: row for row in models.OutboxEffect.select().where(
            models.OutboxEffect.id.in_(message.effect_ids))}
        assert len(message.effects) == len(message.effect_ids) == len(rows)
        assert [type(e).__name__ for e in message.effects] == [
            rows[i].effect for i in message.effect_ids]
    wait_until(lambda: _kept(simple_system, clock), timeout=10)
    kept_by_clock = _kept(simple_system, clock)
    # both orders' deadlines, passed on by the directory in one message too
    assert len(kept_by_clock) == 1 and isinstance(kept_by_clock[0], ScheduleBatch)
    schedules = _schedules(kept_by_clock)
    assert sorted(m.order_id for m in schedules) == sorted(order_ids)
    status: DirectoryStatus = simple_system.ask(directory, StatusRequest(), 5)
    assert sorted(status.live_orders) == sorted(order_ids)

    # a request that changes nothing (a stranger's cancel is refused): no schedule again
    stranger = ClientRequest(Message(action=Action.CANCEL, id=order_ids[0]), "bb" * 32, "bb" * 32)
    simple_system.tell(directory, RouteToOrder(order_ids[0], stranger, now + 1))
    wait_until(lambda: simple_system.ask(directory, StatusRequest(), 5).handled == 3, timeout=10)

    cancel = dataclasses.replace(
        new_order, message=Message(action=Action.CANCEL, id=order_ids[0], request_id=7))
    simple_system.tell(directory, RouteToOrder(order_ids[0], cancel, now + 2))
    wait_until(lambda: order_ids[0] not in simple_system.ask(directory, StatusRequest(), 5).live_orders,
               timeout=10)
    assert models.Order.get_by_id(order_ids[0]).status == "canceled"
    wait_until(lambda: len(_schedules(_kept(simple_system, clock))) == 3, timeout=10)
    schedules = _schedules(_kept(simple_system, clock))
    assert [m.order_id for m in schedules].count(order_ids[0]) == 2  # created, canceled
    assert [m.deadlines for m in schedules if m.order_id == order_ids[0]][-1] == ()
    assert reads == []


def test_the_outbox_hands_publications_over_together_on_a_multiprocess_base(
        db: Any, settings: Any, simple_system: ActorSystem, monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import timedelta

    from actors.order_logic.model import SendMessage
    from actors.outbox import OutboxActor
    from adapters.nostr.adapter_messages import PublishBatch
    from adapters.nostr.keys import generate_keypair
    from storage import repository

    assert settings.actors.base == "multiprocTCPBase"  # the hold is for multiprocess bases
    # long enough that a loaded machine cannot flush between the three dispatches
    monkeypatch.setattr(held_batch, "HOLD", timedelta(milliseconds=300))
    nostr = simple_system.createActor(Recorder)
    outbox = simple_system.createActor(OutboxActor)
    assert simple_system.ask(outbox, RuntimeConfig(settings, settings.database.url, Peers(nostr=nostr)), 5)
    messages = []
    for n in range(3):
        effect = SendMessage(generate_keypair().public_hex,
                             Message(action=Action.CANCELED, request_id=n))
        effect_id = repository.enqueue_effect(None, "SendMessage", "nostr", "{}", now=1)
        messages.append(DispatchEffects((effect_id,), (effect,), None))
    for message in messages:  # three decisions' dispatches, one effect each
        simple_system.tell(outbox, message)
    wait_until(lambda: _kept(simple_system, nostr), timeout=10)
    kept = _kept(simple_system, nostr)
    assert len(kept) == 1 and isinstance(kept[0], PublishBatch)
    assert [item.effect_id for item in kept[0].items] == [m.effect_ids[0] for m in messages]


def test_the_clock_takes_a_batch_of_schedules(settings: Any, simple_system: ActorSystem) -> None:
    """What the directory passes on: each order's deadlines replace that order's, and a due one
    fires at once (manual time), the others wait."""
    from actors.clock import ClockActor
    from actors.messages import SetManualTime
    from actors.order_logic.model import Deadline, DeadlineKind, DeadlineReached

    directory, clock = simple_system.createActor(Recorder), simple_system.createActor(ClockActor)
    assert simple_system.ask(clock, RuntimeConfig(settings, settings.database.url,
                                           Peers(directory=directory)), 5)
    assert simple_system.ask(clock, SetManualTime(1_000), 5)
    due = Deadline(DeadlineKind.PENDING_EXPIRY, 900)
    replaced, later = (Deadline(DeadlineKind.PENDING_EXPIRY, at) for at in (1_500, 2_000))
    simple_system.tell(clock, ScheduleBatch((ScheduleDeadlines("order-a", (replaced,)),
                                      ScheduleDeadlines("order-b", (due,)),
                                      ScheduleDeadlines("order-a", (later,)))))
    wait_until(lambda: _kept(simple_system, directory), timeout=10)
    assert [(m.order_id, m.event) for m in _kept(simple_system, directory)] == [
        ("order-b", DeadlineReached(due))]
    assert simple_system.ask(clock, SetManualTime(1_600), 5)  # order-a's first schedule was replaced
    assert simple_system.ask(clock, SetManualTime(2_000), 5)
    wait_until(lambda: len(_kept(simple_system, directory)) >= 2, timeout=10)
    assert [(m.order_id, m.event) for m in _kept(simple_system, directory)][1:] == [
        ("order-a", DeadlineReached(later))]
