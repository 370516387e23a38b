"""The order actor: one per active order, the only writer of its order and bonds.

It wraps the pure ``decide``: for each event, in mailbox order, it builds the
decision context (time, fresh entropy, prices, reputations), decides, commits
state + journal + outbox in one transaction, and only then hands the effects to
the outbox and its deadlines to the clock. No locks, no re-reads: two
``InvoiceAccepted`` for the same order are simply handled one after the other.
User input can never crash it: a failing decision is logged and skipped.
"""

from __future__ import annotations

import gc
import logging
import os
import time
from datetime import timedelta
from typing import Any

import peewee
from thespian.actors import Actor, WakeupMessage

from adapters.nostr.protocol.enums import Action
from storage import commit_group, models, open_database

from . import order_store, records_json
from .messages import (
    ActivateOrder,
    DispatchEffects,
    HandledBatch,
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
    DeadlineReached,
    DecisionContext,
    OrderEvent,
    OrderState,
    PriceSnapshot,
)
from .placement import accepts_order_actor
from .reputation import reputations_for

log = logging.getLogger(__name__)

STORAGE_RETRY_MIN_SECONDS = 0.5
STORAGE_RETRY_MAX_SECONDS = 30.0
_STORAGE_RETRY = "storage-retry"

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


def first_of_new_order(order_id: str, msg: RouteToOrder) -> bool:
    """Whether `msg` is the very first event of a brand-new order: a new-order request under the
    id the directory has just made up for it (a fresh uuid, which nothing stored can carry),
    delivered for the first time. A re-delivery (its actor died, maybe after committing) is
    not: that actor must read what was stored."""
    event = msg.event
    return (not msg.redelivered and isinstance(event, ClientRequest)
            and event.message.action == Action.NEW_ORDER and event.message.id == order_id)


def already_journaled(order_id: str, event: OrderEvent) -> bool:
    """Whether this very event was committed for the order (a re-delivery after its actor died)."""
    text = records_json.dumps(event)
    query = models.JournalEntry.select().where(
        (models.JournalEntry.order_id == order_id) & (models.JournalEntry.message == text))
    return bool(query.exists())


def undone_effects(order_id: str) -> list[int]:
    """The order's committed effects not confirmed yet. Dispatching them again is safe: the
    outbox skips the ones it has in flight, and Lightning effects are idempotent."""
    effect = models.OutboxEffect
    query = effect.select(effect.id).where(
        (effect.order_id == order_id) & effect.done_at.is_null())
    return [row.id for row in query.order_by(effect.id)]


class OrderProcessor:
    """The actor's work without the actor: usable from tests and replay tools directly."""

    def __init__(self, order_id: str, config: RuntimeConfig, new: bool = False) -> None:
        """`new`: the order cannot have anything stored yet (`first_of_new_order`), so its
        state is known to be empty without reading the database."""
        self.order_id = order_id
        self.config = config
        self.state: OrderState | None = None if new else order_store.load_state(order_id)
        # the effects behind the outbox ids the last `handle` returned, in the same order
        self.last_effects: tuple[Any, ...] = ()
        # the order's last journal seq, once this processor wrote it (a new order has none);
        # None: read it from the journal. Reset when a commit this relied on fails.
        self.journal_seq: int | None = 0 if new else None

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
        self.last_effects = ()
        if decision.state == self.state and not decision.effects and not decision.created_orders:
            return [], []
        ids, self.journal_seq = order_store.commit_decision(
            self.order_id, self.state, event, ctx, decision, self.journal_seq)
        self.last_effects = tuple(order_store.queued_effects(decision))
        self.state = decision.state
        changed = [s for s in (decision.state, *decision.created_orders) if s is not None]
        return ids, changed


_LOADED_IN = os.getpid()  # a process forked after this import has another pid


class OrderActor(Actor):
    @staticmethod
    def actorSystemCapabilityCheck(capabilities: dict, requirements: dict | None) -> bool:  # noqa: N802
        """Thespian asks this on each host: only hosts offering orders (actors.placement)."""
        return accepts_order_actor(capabilities, requirements)

    def __init__(self) -> None:
        super().__init__()
        if os.getpid() != _LOADED_IN:
            # A fork of the directory's process (a multiprocess base): what it inherited stays
            # shared only while nothing writes to it, and the cyclic collector writes to every
            # object it tracks. Frozen, they are never scanned here (benchmark (4): 11.7 -> 9.0
            # MB of PSS per live order actor). Not in a process that runs other actors too
            # (simpleSystemBase): frozen objects that later become garbage are never freed.
            gc.freeze()
        self._processor: OrderProcessor | None = None
        # the order's state is read on its first event, not on activation: a brand-new
        # order's first event tells that there is nothing to read
        self._activation: ActivateOrder | None = None
        # deadlines last sent to the clock, per order (this one and the orders it created):
        # an unchanged schedule is not sent again
        self._sent_deadlines: dict[str, tuple[Any, ...]] = {}
        self._dispatch_via_directory = False
        # events waiting for the database (locked, full, I/O error), oldest first
        self._waiting: list[tuple[RouteToOrder, object]] = []
        self._retry_delay = STORAGE_RETRY_MIN_SECONDS
        # decisions in the thread's open commit group, not answered yet (storage.commit_group)
        self._uncommitted = 0

    def receiveMessage(self, msg: object, sender: object) -> None:
        if isinstance(msg, ActivateOrder):
            self._activate(msg)
            if isinstance(msg.first, RouteToOrder):
                self._route(msg.first, sender)
        elif isinstance(msg, RouteToOrder):
            if self._waiting:  # keep mailbox order behind an event that waits for storage
                self._waiting.append((msg, sender))
            else:
                self._route(msg, sender)
        elif isinstance(msg, WakeupMessage) and msg.payload == _STORAGE_RETRY:
            self._retry_waiting()
        elif isinstance(msg, Passivate):
            self.send(sender, Passivated(msg.order_id))

    def _retry_waiting(self) -> None:
        waiting, self._waiting = self._waiting, []
        # each in a savepoint of its own: one whose writes fail again is undone alone
        with commit_group.isolated():
            for index, (msg, sender) in enumerate(waiting):
                self._route(msg, sender)
                if self._waiting:  # the database still refuses: keep the rest behind it
                    self._waiting.extend(waiting[index + 1:])
                    return
        self._retry_delay = STORAGE_RETRY_MIN_SECONDS

    def _activate(self, msg: ActivateOrder) -> None:
        if models.database_proxy.obj is None:
            open_database(msg.config.database_url)
        self._activation = msg
        self._processor = None
        self._dispatch_via_directory = msg.dispatch_via_directory

    def _route(self, msg: RouteToOrder, sender: object) -> None:
        processor = self._processor
        if processor is None:
            activation = self._activation
            if activation is None:
                log.error("order actor got %s before activation", type(msg.event).__name__)
                return
            processor = self._processor = OrderProcessor(
                activation.order_id, activation.config,
                new=first_of_new_order(activation.order_id, msg))
        group = commit_group.current()
        before = processor.state
        try:
            if group is not None:
                group.open()  # this decision's transaction nests in the group's
            if msg.redelivered and already_journaled(processor.order_id, msg.event):
                # the actor that died had committed it: deciding it again could answer a
                # client twice. It may have died before dispatching, so the order's undone
                # effects and its deadlines go out again.
                log.warning("order %s: re-delivered %s was already handled; skipped",
                            processor.order_id, type(msg.event).__name__)
                ids = undone_effects(processor.order_id)
                processor.last_effects = ()  # read back by the outbox
                changed = [processor.state] if processor.state is not None else []
            else:
                ids, changed = processor.handle(msg.event, msg.now)
        except peewee.OperationalError as error:
            # Storage trouble (locked by another process, disk full, I/O): nothing was
            # committed, so the same event is decided again later. Skipping it would lose an
            # LND event for good (each invoice state is delivered once).
            self._wait_for_storage(msg, sender, error)
            return
        except Exception as error:
            if group is not None and group.aborted_by(error):
                # its writes failed part way and took the group down: like the others, it is
                # decided again later, then on its own (commit_group.isolated)
                self._wait_for_storage(msg, sender, error)
                return
            log.exception("order %s: decision for %s failed; event skipped",
                          processor.order_id, type(msg.event).__name__)
            ids, changed = [], []
        effects, state = processor.last_effects, processor.state
        if group is None or not (ids or changed or self._uncommitted):
            self._after_commit(msg, sender, ids, changed, effects, state)
            return
        # answered once the group commits; an event that changed nothing waits too, behind
        # this actor's earlier ones, so the directory hears of them in mailbox order
        self._uncommitted += 1

        def committed() -> None:
            self._uncommitted -= 1
            self._after_commit(msg, sender, ids, changed, effects, state, group)

        def failed(error: Exception) -> None:
            self._uncommitted -= 1
            processor.journal_seq = None  # the rows it counted were rolled back
            if not self._waiting:  # this actor's oldest event of the group: back to before it
                processor.state = before
            self._wait_for_storage(msg, sender, error)

        group.join(committed, failed)

    def _wait_for_storage(self, msg: RouteToOrder, sender: object, error: Exception) -> None:
        order_id = self._processor.order_id if self._processor is not None else msg.order_id
        log.error("order %s: cannot store the decision for %s (%s); retrying in %.1f s",
                  order_id, type(msg.event).__name__, error, self._retry_delay)
        self._waiting.append((msg, sender))
        if len(self._waiting) == 1:
            self.wakeupAfter(timedelta(seconds=self._retry_delay), payload=_STORAGE_RETRY)
            self._retry_delay = min(self._retry_delay * 2, STORAGE_RETRY_MAX_SECONDS)

    def _after_commit(self, msg: RouteToOrder, sender: object, ids: list[int],
                      changed: list[OrderState], effects: tuple[Any, ...],
                      state: OrderState | None,
                      group: commit_group.CommitGroup | None = None) -> None:
        """Hand the committed decision's effects to the outbox, its deadlines to the clock and
        tell the directory (or, activated by the directory, all of it to the directory). Called
        by a group commit (`group`), what the directory is told goes with the group's others."""
        processor = self._processor
        assert processor is not None
        peers = processor.config.peers
        dispatch = None
        if ids and peers.outbox is not None:
            dispatch = DispatchEffects(
                tuple(ids), effects if len(effects) == len(ids) else (), processor.order_id,
                new_order=first_of_new_order(processor.order_id, msg))
            if not self._dispatch_via_directory:
                self.send(peers.outbox, dispatch)
                dispatch = None
        schedules: list[ScheduleDeadlines] = []
        if peers.clock is not None:
            # The clock drops a deadline once it fires, and a re-delivery may follow a lost
            # schedule: after either, the schedule goes out whatever was sent before.
            if msg.redelivered or isinstance(msg.event, DeadlineReached):
                self._sent_deadlines.clear()
            for changed_state in changed:
                deadlines = tuple(deadlines_of(changed_state, processor.config.settings))
                if self._sent_deadlines.get(changed_state.order.id) == deadlines:
                    continue
                self._sent_deadlines[changed_state.order.id] = deadlines
                schedules.append(ScheduleDeadlines(changed_state.order.id, deadlines))
            if not self._dispatch_via_directory:
                for schedule in schedules:
                    self.send(peers.clock, schedule)
                schedules = []
        status = str(state.order.status) if state else None
        # No order (a refused new-order): nothing to keep alive for.
        finished = status is None or status in TERMINAL_STATUSES
        # activated by the directory: it passes effects and schedules on, gathered with other
        # orders' (one transport hop per burst instead of one per decision and peer)
        handled = OrderHandled(processor.order_id, status, finished, dispatch, tuple(schedules))
        if group is None:
            self.send(sender, handled)
            return
        # one message for the group's decisions: the directory then hands the outbox and the
        # clock one batch each (a message per decision to each, and on to the Nostr adapter,
        # was a tenth of the actors' thread in benchmark (2))
        group.gather(("handled", str(sender)), (self.myAddress, handled), lambda items: self.send(
            sender, items[0][1] if len(items) == 1 else HandledBatch(tuple(items))))
