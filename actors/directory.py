"""The order directory: the single way into an order.

Every event for order X — from clients, LND, the clock — passes through here,
so each order sees exactly one total order of events. The directory activates
an order actor from the database on demand, passivates idle or finished ones
(LRU cap, idle timeout) and buffers events for an actor being passivated, so
nothing is lost or reordered across a passivation. It decides nothing about
orders: refusals come from the order logic, except "no such order".
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import time
import uuid
from collections import OrderedDict
from datetime import timedelta
from typing import Any

from thespian.actors import Actor, ActorExitRequest, ChildActorExited, WakeupMessage

from adapters.nostr.protocol.enums import Action, CantDoReason
from storage import models, open_database, repository

from .messages import (
    ActivateOrder,
    DirectoryStatus,
    DispatchTransient,
    InvoiceUpdate,
    OrderHandled,
    Passivate,
    Passivated,
    Quiesce,
    Quiet,
    RouteToOrder,
    RuntimeConfig,
    StatusRequest,
)
from .order_actor import OrderActor
from .order_logic.model import CancelHoldInvoice, ClientRequest, InvoiceAccepted
from .order_logic.replies import cant_do

log = logging.getLogger(__name__)

IDLE_SWEEP_SECONDS = 5.0


@dataclasses.dataclass
class LiveOrder:
    address: Any
    in_flight: int = 0
    last_used: float = 0.0
    terminal: bool = False
    # sent and not yet confirmed by OrderHandled, oldest first (an actor handles its mailbox
    # in order): re-sent to a fresh actor if this one dies, so no event dies with it
    unconfirmed: collections.deque[RouteToOrder] = dataclasses.field(
        default_factory=collections.deque)


class OrderDirectoryActor(Actor):
    def __init__(self) -> None:
        super().__init__()
        self._config: RuntimeConfig | None = None
        self._live: OrderedDict[str, LiveOrder] = OrderedDict()
        self._passivating: dict[str, list[RouteToOrder]] = {}
        self._handled = 0
        self._quiesce_waiters: list[Any] = []
        self._sweep_armed = False

    # ------------------------------------------------------------ dispatch
    def receiveMessage(self, msg: object, sender: object) -> None:
        if isinstance(msg, RuntimeConfig):
            self._configure(msg)
            self.send(sender, msg)
        elif isinstance(msg, RouteToOrder):
            self._route(msg)
        elif isinstance(msg, InvoiceUpdate):
            self._route_invoice(msg)
        elif isinstance(msg, OrderHandled):
            self._on_handled(msg)
        elif isinstance(msg, Passivated):
            self._on_passivated(msg.order_id)
        elif isinstance(msg, ChildActorExited):
            self._on_child_exited(msg.childAddress)
        elif isinstance(msg, WakeupMessage):
            self._sweep_armed = False
            self._sweep_idle()
        elif isinstance(msg, Quiesce):
            self._quiesce_waiters.append(sender)
            self._maybe_quiet()
        elif isinstance(msg, StatusRequest):
            self.send(sender, DirectoryStatus(
                live_orders=tuple(self._live),
                buffered={k: len(v) for k, v in self._passivating.items()},
                handled=self._handled,
            ))

    def _configure(self, config: RuntimeConfig) -> None:
        self._config = config
        if models.database_proxy.obj is None:
            open_database(config.database_url)
        self._arm_sweep()

    # ------------------------------------------------------------ routing
    def _route(self, msg: RouteToOrder) -> None:
        event = msg.event
        if isinstance(event, ClientRequest) and event.message.action == Action.NEW_ORDER:
            order_id = str(uuid.uuid4())
            message = dataclasses.replace(event.message, id=order_id)
            msg = RouteToOrder(order_id, dataclasses.replace(event, message=message), msg.now)
            self._deliver(msg, new=True)
            return
        if msg.order_id in self._passivating:
            self._passivating[msg.order_id].append(msg)
            return
        if msg.order_id not in self._live and not self._exists(msg.order_id):
            if isinstance(event, ClientRequest):
                self._transient(cant_do(event, CantDoReason.NOT_FOUND))
            else:
                log.warning("event %s for unknown order %s dropped", type(event).__name__, msg.order_id)
            return
        self._deliver(msg, new=False)

    def _route_invoice(self, msg: InvoiceUpdate) -> None:
        order_id = repository.order_id_for_hash(msg.hash)
        if order_id is None:
            if isinstance(msg.event, InvoiceAccepted):
                # An HTLC nobody owns must not stay held: refund it.
                self._transient(CancelHoldInvoice(msg.hash))
            log.warning("invoice event for unknown hash %s", msg.hash)
            return
        self._route(RouteToOrder(order_id, msg.event, msg.now))

    def _exists(self, order_id: str) -> bool:
        return repository.find_order(order_id) is not None

    def _deliver(self, msg: RouteToOrder, new: bool) -> None:
        live = self._live.get(msg.order_id)
        if live is None:
            live = LiveOrder(self.createActor(OrderActor))
            assert self._config is not None
            self.send(live.address, ActivateOrder(msg.order_id, self._config))
            self._live[msg.order_id] = live
        self._live.move_to_end(msg.order_id)
        live.in_flight += 1
        live.last_used = time.monotonic()
        live.unconfirmed.append(msg)
        self.send(live.address, msg)
        self._enforce_cap()

    def _transient(self, effect: Any) -> None:
        outbox = self._config.peers.outbox if self._config else None
        if outbox is not None:
            self.send(outbox, DispatchTransient((effect,)))

    # ------------------------------------------------------------ lifecycle
    def _on_handled(self, msg: OrderHandled) -> None:
        self._handled += 1
        live = self._live.get(msg.order_id)
        if live is not None:
            live.in_flight = max(0, live.in_flight - 1)
            if live.unconfirmed:
                live.unconfirmed.popleft()
            live.terminal = msg.terminal
            if msg.terminal and live.in_flight == 0:
                self._passivate(msg.order_id)
        self._maybe_quiet()

    def _cap(self) -> int:
        actors = getattr(self._config.settings, "actors", None) if self._config else None
        return int(getattr(actors, "live_order_actor_cap", 1000))

    def _idle_seconds(self) -> float:
        actors = getattr(self._config.settings, "actors", None) if self._config else None
        return float(getattr(actors, "order_actor_idle_seconds", 300))

    def _enforce_cap(self) -> None:
        excess = len(self._live) - len(self._passivating) - self._cap()
        if excess <= 0:
            return
        for order_id, live in list(self._live.items()):
            if excess <= 0:
                break
            if order_id not in self._passivating and live.in_flight == 0:
                self._passivate(order_id)
                excess -= 1

    def _sweep_idle(self) -> None:
        limit = time.monotonic() - self._idle_seconds()
        for order_id, live in list(self._live.items()):
            if order_id not in self._passivating and live.in_flight == 0 and live.last_used < limit:
                self._passivate(order_id)
        self._arm_sweep()

    def _arm_sweep(self) -> None:
        if not self._sweep_armed:
            self._sweep_armed = True
            self.wakeupAfter(timedelta(seconds=IDLE_SWEEP_SECONDS))

    def _passivate(self, order_id: str) -> None:
        live = self._live.get(order_id)
        if live is None or order_id in self._passivating:
            return
        self._passivating[order_id] = []
        self.send(live.address, Passivate(order_id))

    def _on_passivated(self, order_id: str) -> None:
        live = self._live.pop(order_id, None)
        buffered = self._passivating.pop(order_id, [])
        if live is not None:
            self.send(live.address, ActorExitRequest())
        for msg in buffered:
            self._deliver(msg, new=False)

    def _on_child_exited(self, address: Any) -> None:
        for order_id, live in list(self._live.items()):
            if live.address == address:
                log.error("order actor for %s exited unexpectedly; it will be re-activated", order_id)
                self._live.pop(order_id, None)
                # what it had not confirmed, then what waited behind a passivation: the
                # order's events keep their order (a re-sent one that was in fact decided
                # meets the order's idempotent rules)
                buffered = [*live.unconfirmed, *self._passivating.pop(order_id, [])]
                for msg in buffered:
                    self._deliver(msg, new=False)
                self._maybe_quiet()
                return

    def _maybe_quiet(self) -> None:
        if not self._quiesce_waiters:
            return
        if any(live.in_flight for live in self._live.values()) or any(self._passivating.values()):
            return
        waiters, self._quiesce_waiters = self._quiesce_waiters, []
        for waiter in waiters:
            self.send(waiter, Quiet(self._handled))
