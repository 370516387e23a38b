"""The order actor: one per active order, the only writer of its order and bonds.

It wraps the pure ``decide``: for each event, in mailbox order, it builds the
decision context (time, fresh entropy, prices, reputations), decides, commits
state + journal + outbox in one transaction, and only then hands the effects to
the outbox and its deadlines to the clock. No locks, no re-reads: two
``InvoiceAccepted`` for the same order are simply handled one after the other.
User input can never crash it: a failing decision is logged and skipped.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from thespian.actors import Actor

from storage import models, open_database

from . import order_store
from .messages import (
    ActivateOrder,
    DispatchEffects,
    OrderHandled,
    Passivate,
    Passivated,
    RouteToOrder,
    RuntimeConfig,
    ScheduleDeadlines,
)
from .order_logic.deadlines import deadlines_of
from .order_logic.decide import decide
from .order_logic.model import (
    ClientRequest,
    DecisionContext,
    OrderEvent,
    OrderState,
    PriceSnapshot,
)
from .reputation import reputations_for

log = logging.getLogger(__name__)

TERMINAL_STATUSES = frozenset(
    {"success", "canceled", "cooperatively-canceled", "canceled-by-admin", "expired",
     "completed-by-admin"}
)


def price_snapshot(settings: Any, now: int) -> PriceSnapshot | None:
    """The configured fixed price table (devnet, tests); live providers feed the same shape."""
    fixed = getattr(getattr(settings, "price", None), "fixed", None)
    if not fixed:
        return None
    return PriceSnapshot(prices=dict(fixed), taken_at=now)


class OrderProcessor:
    """The actor's work without the actor: usable from tests and replay tools directly."""

    def __init__(self, order_id: str, config: RuntimeConfig) -> None:
        self.order_id = order_id
        self.config = config
        self.state: OrderState | None = order_store.load_state(order_id)

    def handle(self, event: OrderEvent, now: int | None) -> tuple[list[int], list[OrderState]]:
        """Decide and commit one event; return outbox ids and every state whose deadlines changed."""
        settings = self.config.settings
        stamp = int(time.time()) if now is None else now
        identities = [event.identity] if isinstance(event, ClientRequest) else []
        ctx = DecisionContext(
            settings=settings,
            now=stamp,
            entropy=os.urandom(32),
            network=self.config.network,
            prices=price_snapshot(settings, stamp),
            reputations=reputations_for(self.state, identities, stamp),
        )
        decision = decide(self.state, event, ctx)
        if decision.state == self.state and not decision.effects and not decision.created_orders:
            return [], []
        ids = order_store.commit_decision(self.order_id, self.state, event, ctx, decision)
        self.state = decision.state
        changed = [s for s in (decision.state, *decision.created_orders) if s is not None]
        return ids, changed


class OrderActor(Actor):
    def __init__(self) -> None:
        super().__init__()
        self._processor: OrderProcessor | None = None

    def receiveMessage(self, msg: object, sender: object) -> None:
        if isinstance(msg, ActivateOrder):
            self._activate(msg)
        elif isinstance(msg, RouteToOrder):
            self._route(msg, sender)
        elif isinstance(msg, Passivate):
            self.send(sender, Passivated(msg.order_id))

    def _activate(self, msg: ActivateOrder) -> None:
        if models.database_proxy.obj is None:
            open_database(msg.config.database_url)
        self._processor = OrderProcessor(msg.order_id, msg.config)

    def _route(self, msg: RouteToOrder, sender: object) -> None:
        processor = self._processor
        if processor is None:
            log.error("order actor got %s before activation", type(msg.event).__name__)
            return
        peers = processor.config.peers
        try:
            ids, changed = processor.handle(msg.event, msg.now)
        except Exception:
            log.exception("order %s: decision for %s failed; event skipped",
                          processor.order_id, type(msg.event).__name__)
            ids, changed = [], []
        if ids and peers.outbox is not None:
            self.send(peers.outbox, DispatchEffects(tuple(ids)))
        if peers.clock is not None:
            for state in changed:
                deadlines = deadlines_of(state, processor.config.settings)
                self.send(peers.clock, ScheduleDeadlines(state.order.id, deadlines))
        state = processor.state
        status = str(state.order.status) if state else None
        self.send(sender, OrderHandled(processor.order_id, status, status in TERMINAL_STATUSES))
