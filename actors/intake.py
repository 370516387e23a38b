"""Intake: from a raw Nostr event to a routed order event or a direct answer.

It runs inside the Nostr adapter's process (no extra hop per request) and
enforces PROTOCOL.md §4.1 in its load-bearing order: proof of work, kind, outer
signature, replay de-duplication (persisted in ``seen_events``), unwrap,
freshness, inner signatures, trade-index rules, ``verify()``. Failures before
the trade-index step are silent drops (counted, as the Rust daemon does);
refusals after it are ``cant-do`` replies. Order-scoped actions become
``RouteToOrder`` for the directory; ``orders``, ``restore-session`` and
``last-trade-index`` are answered here from the database. It changes no order.
The checks that need no database live in ``actors.intake_precheck`` (the Nostr
adapter may have run them already in its check worker); the order above holds.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any, TypeGuard

import peewee

from adapters.nostr.protocol.codec import ParseError, verify_message
from adapters.nostr.protocol.content import parse_content
from adapters.nostr.protocol.enums import Action, CantDoReason, Transport, WrapperKey
from adapters.nostr.protocol.payloads import (
    Ids,
    Message,
    Orders,
    RestoreData,
    RestoredDisputeInfo,
    RestoredOrderInfo,
)
from storage import repository

from .intake_precheck import Precheck, check_content, open_event
from .messages import RouteBatch, RouteToOrder
from .order_logic.model import ClientRequest, SendMessage
from .order_logic.replies import cant_do
from .order_logic.small_order import listing_view
from .order_store import order_record

log = logging.getLogger(__name__)

FRESHNESS_SECONDS = 10

ORDER_ACTIONS = frozenset({
    Action.NEW_ORDER, Action.TAKE_SELL, Action.TAKE_BUY, Action.FIAT_SENT, Action.RELEASE,
    Action.CANCEL, Action.ADD_INVOICE, Action.DISPUTE, Action.RATE_USER,
    Action.ADMIN_CANCEL, Action.ADMIN_SETTLE, Action.TRADE_PUBKEY, Action.ADD_BOND_INVOICE,
})
TRADE_INDEX_ACTIONS = frozenset({Action.NEW_ORDER, Action.TAKE_SELL, Action.TAKE_BUY})


@dataclass(frozen=True)
class IntakeResult:
    """What to do with one inbound event: route it, answer it, or neither (dropped)."""

    route: RouteToOrder | None = None
    replies: tuple[SendMessage, ...] = ()
    dropped: str | None = None


def _drop(reason: str) -> IntakeResult:
    return IntakeResult(dropped=reason)


def _precheck_of(event: dict[str, Any], pre: Any) -> TypeGuard[Precheck]:
    """Whether `pre` is the check worker's verdict on this very event (else it is recomputed)."""
    return isinstance(pre, Precheck) and pre.event_id == event.get("id")


class Intake:
    """The checks and routing of one node; holds only settings and counters."""

    def __init__(self, settings: Any) -> None:
        self._settings = settings
        self._secret = settings.nostr.secret_key_hex()
        self.transport = Transport(settings.mostro.transport)
        self.dropped: Counter[str] = Counter()
        # ids `remember_ahead` recorded as seen for the events being handled, not yet reached
        self._seen_ahead: set[str] = set()

    def handle(
        self,
        event: dict[str, Any],
        now: int,
        *,
        verified: bool = False,
        precheck: Precheck | None = None,
    ) -> IntakeResult:
        """Check and route one event. `verified`: the relay pool has checked its outer id and
        signature (only the Nostr adapter says so). `precheck`: the pure checks' verdict,
        already computed by the adapter's check worker (recomputed when absent)."""
        result = self._handle(event, now, verified, precheck)
        if result.dropped:
            self.dropped[result.dropped] += 1
            log.debug("inbound event dropped", extra={"fields": {
                "event_id": str(event.get("id", ""))[:16], "reason": result.dropped}})
        return result

    def _handle(
        self, event: dict[str, Any], now: int, verified: bool, pre: Precheck | None
    ) -> IntakeResult:
        if not _precheck_of(event, pre):
            pre = open_event(event, self._secret, self.transport, self._settings.mostro.pow,
                             now, verified=verified)
        if pre.dropped:
            return _drop(pre.dropped)
        if not self._first_sight(pre.event_id, now):
            return _drop("replayed-event")
        if pre.created_at < now - FRESHNESS_SECONDS:
            return _drop("stale")
        pre = check_content(pre, self.transport)  # done already when the worker checked it
        if pre.refused:
            return _drop(pre.refused)
        content = pre.content
        if content is None:  # checked in the worker: the same text parses the same here
            content = parse_content(pre.plaintext, self.transport)
            if isinstance(content, ParseError):
                return _drop(f"parse:{content}")
        message = content.message
        request = ClientRequest(message, pre.sender, pre.identity)
        if message.action in TRADE_INDEX_ACTIONS:
            refusal = self._check_trade_index(request)
            if refusal is not None:
                return refusal
        why = verify_message(message)
        if why is not None:
            return _drop(f"verify:{why}")
        return self._dispatch(request, now)

    def remember_ahead(self, events: list[tuple[dict[str, Any], Precheck | None]],
                       now: int) -> None:
        """Record as seen, in one statement, the events about to be handled whose checks
        already passed: the replay guard then finds each one's answer here instead of inserting
        it alone (inside the same transaction as the handling, so nothing changes on failure)."""
        self._seen_ahead = repository.record_seen_events(
            [pre.event_id for event, pre in events if _precheck_of(event, pre) and not pre.dropped],
            now)

    def _first_sight(self, event_id: str, now: int) -> bool:
        if event_id in self._seen_ahead:
            self._seen_ahead.discard(event_id)  # a second copy in the batch is a replay
            return True
        return repository.record_seen_event(event_id, now)

    # PROTOCOL.md §4.3
    def _check_trade_index(self, request: ClientRequest) -> IntakeResult | None:
        index = request.message.trade_index
        full_privacy = request.identity == request.sender
        last_index = repository.last_trade_index(request.identity)  # None: no user row
        if index is None:
            return None if full_privacy else _drop("missing-trade-index")
        if last_index is not None and index >= 1:
            if index <= last_index and not self._is_bond_retry(request):
                return IntakeResult(
                    replies=(cant_do(request, CantDoReason.INVALID_TRADE_INDEX),),
                    dropped="trade-index-not-increasing",
                )
            return None
        if last_index is None and index == 0 and not full_privacy:
            return _drop("trade-index-zero")
        return None

    @staticmethod
    def _is_bond_retry(request: ClientRequest) -> bool:
        """BONDS.md §4.1 step 3: a take re-sent by a taker whose bond on the order is still
        active, with the trade index that take used: the order answers it with the same
        bolt11 (no trade-index change), so it must reach the order."""
        message = request.message
        if message.action not in (Action.TAKE_SELL, Action.TAKE_BUY) or not message.id:
            return False
        bond = repository.active_bond_of_taker(message.id, request.sender)
        return bond is not None and bond.taker_trade_index == message.trade_index

    def _dispatch(self, request: ClientRequest, now: int) -> IntakeResult:
        message = request.message
        action = message.action
        if action in TRADE_INDEX_ACTIONS or action in ORDER_ACTIONS:
            if action in (Action.TAKE_SELL, Action.TAKE_BUY):
                request = ClientRequest(
                    message, request.sender, request.identity,
                    pending_take_exists=repository.identity_has_pending_take(
                        request.identity, "sell" if action == Action.TAKE_SELL else "buy"),
                )
            order_id = message.id or ""
            return IntakeResult(route=RouteToOrder(order_id, request))
        if action == Action.ORDERS:
            return IntakeResult(replies=(self._orders(request),))
        if action == Action.LAST_TRADE_INDEX:
            return IntakeResult(replies=(self._last_trade_index(request),))
        if action == Action.RESTORE_SESSION:
            return IntakeResult(replies=(self._restore_session(request),))
        if action == Action.PAY_INVOICE:
            return IntakeResult(replies=(cant_do(request, CantDoReason.INVALID_ACTION),))
        return _drop(f"unhandled-action:{action.value}")

    # ORDER_FLOW.md §4.14
    def _orders(self, request: ClientRequest) -> SendMessage:
        payload = request.message.payload
        if not isinstance(payload, Ids) or not payload.ids:
            return cant_do(request, CantDoReason.INVALID_PARAMETERS)
        if len(payload.ids) > self._settings.mostro.max_orders_per_response:
            return cant_do(request, CantDoReason.TOO_MANY_REQUESTS)
        found = repository.orders_of_identity(payload.ids, request.identity)
        if not found:
            return cant_do(request, CantDoReason.NOT_FOUND)
        orders = tuple(
            dataclasses.replace(listing_view(record), buyer_invoice=None,
                                buyer_trade_pubkey=record.buyer_pubkey,
                                seller_trade_pubkey=record.seller_pubkey)
            for record in map(order_record, found)
        )
        return SendMessage(request.sender, Message(
            action=Action.ORDERS, request_id=request.message.request_id, payload=Orders(orders)))

    def _last_trade_index(self, request: ClientRequest) -> SendMessage:
        user = repository.find_user(request.identity)
        if user is None:
            return cant_do(request, CantDoReason.NOT_FOUND)
        if not user.last_trade_index:
            return cant_do(request, CantDoReason.INVALID_TRADE_INDEX)
        return SendMessage(request.sender, Message(
            action=Action.LAST_TRADE_INDEX, wrapper=WrapperKey.RESTORE,
            request_id=request.message.request_id, trade_index=user.last_trade_index))

    def _restore_session(self, request: ClientRequest) -> SendMessage:
        orders, disputes = repository.restore_data(request.identity)
        data = RestoreData(
            orders=tuple(RestoredOrderInfo(o.id, o.trade_index, o.status) for o in orders),
            disputes=tuple(
                RestoredDisputeInfo(d.dispute_id, d.order_id, d.trade_index, d.status,
                                    d.initiator, d.solver_pubkey) for d in disputes),
        )
        return SendMessage(request.sender, Message(
            action=Action.RESTORE_SESSION, wrapper=WrapperKey.RESTORE,
            request_id=request.message.request_id, payload=data))


# Events of one wake-up checked inside one database transaction (their replay-guard rows are
# written together); bounded so the write lock is never held for long (~0.5 ms of crypto each).
BATCH_TRANSACTION_EVENTS = 64


class IntakeHandler:
    """The Nostr adapter's inbound handler: `Intake` plus what to send for its results.

    Routed requests go straight to the directory (`Addressed`), direct answers back to the
    adapter to publish. `handle_batch` checks every event of one adapter wake-up inside one
    database transaction (the replay guard's inserts commit together instead of one
    transaction each) and only hands out what to send once that transaction has committed.
    """

    def __init__(self, intake: Intake, publisher: Any, directory: Any) -> None:
        self.intake = intake
        self.publisher = publisher
        self.directory = directory

    def __call__(self, inbound: Any) -> list[Any]:
        return self._outputs(inbound, int(time.time()))

    def handle_batch(self, events: list[Any]) -> list[Any]:
        from storage import models

        out: list[Any] = []
        for first in range(0, len(events), BATCH_TRANSACTION_EVENTS):
            chunk = events[first:first + BATCH_TRANSACTION_EVENTS]
            now = int(time.time())
            produced: list[Any] = []
            with models.database_proxy.atomic():
                self.intake.remember_ahead(
                    [(inbound.event, getattr(inbound, "precheck", None)) for inbound in chunk], now)
                try:
                    for inbound in chunk:
                        try:
                            produced.extend(self._outputs(inbound, now))
                        except peewee.OperationalError:
                            raise  # the transaction is lost: nothing of this chunk may go out
                        except Exception:  # noqa: BLE001 - one bad event must not drop the others
                            log.exception("intake failed on event %s", inbound.event.get("id"))
                finally:
                    self.intake.remember_ahead([], now)  # nothing recorded ahead outlives it
            out.extend(produced)
        return self._one_route_message(out)

    def _one_route_message(self, out: list[Any]) -> list[Any]:
        """The batch's routed requests as one `RouteBatch` to the directory (in their order),
        where the first of them was: on a multiprocess base every message is a transport hop."""
        from adapters.nostr.adapter_messages import Addressed

        routed = [o for o in out if isinstance(o, Addressed) and o.to is self.directory
                  and isinstance(o.message, RouteToOrder)]
        if len(routed) < 2:
            return out
        first = out.index(routed[0])
        rest = [o for o in out if not (isinstance(o, Addressed) and o.to is self.directory
                                       and isinstance(o.message, RouteToOrder))]
        batch = Addressed(self.directory, RouteBatch(tuple(o.message for o in routed)))
        return [*rest[:first], batch, *rest[first:]]

    def _outputs(self, inbound: Any, now: int) -> list[Any]:
        from adapters.nostr.adapter_messages import Addressed, PublishEvent

        result = self.intake.handle(
            inbound.event, now, verified=getattr(inbound, "verified", False),
            precheck=getattr(inbound, "precheck", None))
        out: list[Any] = []
        if result.route is not None:
            out.append(Addressed(self.directory, result.route))
        for reply in result.replies:
            out.append(PublishEvent(
                self.publisher.message_event(reply.recipient, reply.message, now), None))
        return out


class IntakeHandlerFactory:
    """Builds the Nostr adapter's inbound handler inside the adapter's own process.

    Picklable (settings, database URL and the directory's address only); the handler it
    builds opens the database there, runs ``Intake`` on each event, sends routed requests
    straight to the directory and hands direct answers back to the adapter to publish, so a
    request costs no extra actor hop.
    """

    def __init__(self, settings: Any, database_url: str, directory: Any) -> None:
        self.settings = settings
        self.database_url = database_url
        self.directory = directory

    def __call__(self) -> IntakeHandler:
        from adapters.nostr.outgoing import Publisher
        from storage import models, open_database

        if models.database_proxy.obj is None:
            open_database(self.database_url)
        return IntakeHandler(Intake(self.settings), Publisher(self.settings), self.directory)
