"""The outbox executor: runs committed effects through the adapters until they are done.

An effect exists in the database before anyone acts on it (DESIGN.md §3). This
actor sends each one to its adapter, marks it done when the adapter confirms,
retries it with backoff when the adapter reports a transient failure, and re-sends
every undone effect when the daemon starts. The effects of one dispatch are read in
one query and Lightning's go first, as one `Batch` (a refund must not wait behind
chat messages), whose answers come back grouped and are marked done together. It
is also the owner of both adapters, so it turns their events (invoice state changes, payment results, a
bolt11 for a new hold invoice) into order events routed through the directory.
It decides nothing about orders.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from typing import Any

import peewee
from thespian.actors import Actor, ActorExitRequest, WakeupMessage

from adapters.lnd import messages as ln
from adapters.nostr import outgoing
from adapters.nostr.adapter_messages import (
    NostrNotStarted,
    PublishBatch,
    PublishEvent,
    PublishResult,
    PublishResults,
)
from adapters.nostr.unsigned import Unsigned
from storage import models, open_database, repository

from . import records_json, reputation
from .held_batch import HeldBatch, holds_on
from .messages import (
    Announce,
    DispatchBatch,
    DispatchEffects,
    DispatchTransient,
    InvoiceUpdate,
    ResendUndone,
    RouteToOrder,
    RuntimeConfig,
)
from .order_logic import model
from .publication_order import PublicationOrder

log = logging.getLogger(__name__)

RETRY_MIN_SECONDS = 0.5
RETRY_MAX_SECONDS = 60.0
PAYMENT_TIMEOUT_SECONDS = 60
_ANNOUNCE = "announce"
_STORAGE_RETRY = "storage-retry"
_FLUSH_PUBLISH = "flush-publish"
STORAGE_RETRY_MIN_SECONDS = 0.5
STORAGE_RETRY_MAX_SECONDS = 30.0

_NOSTR_EFFECTS = (model.SendMessage, model.PublishOrder, model.PublishDispute)

_INVOICE_EVENTS = {
    ln.InvoiceState.ACCEPTED: model.InvoiceAccepted,
    ln.InvoiceState.CANCELED: model.InvoiceCanceled,
    ln.InvoiceState.SETTLED: model.InvoiceSettled,
}


def lightning_message(effect: Any, effect_id: Any) -> Any:
    """The LightningAdapter message that carries out one effect."""
    if isinstance(effect, model.AddHoldInvoice):
        return ln.AddHoldInvoice(effect.hash, effect.amount_sat, effect.memo, effect.expiry or 0,
                                 effect.cltv_expiry, effect_id)
    if isinstance(effect, model.CancelHoldInvoice):
        return ln.CancelHoldInvoice(effect.hash, effect_id)
    if isinstance(effect, model.SettleHoldInvoice):
        return ln.SettleHoldInvoice(effect.preimage, effect_id)
    if isinstance(effect, model.SendPayment):
        return ln.SendPayment(effect.payment_request, effect.amount_sat, effect.fee_limit_sat,
                              PAYMENT_TIMEOUT_SECONDS, effect_id)
    raise TypeError(f"not a lightning effect: {type(effect).__name__}")


class OutboxActor(Actor):
    def __init__(self) -> None:
        super().__init__()
        self._config: RuntimeConfig | None = None
        self._retry_at: dict[int, float] = {}
        self._attempts: dict[int, int] = {}
        self._wakeup_armed = False
        self._publisher: outgoing.Publisher | None = None
        self._publications = PublicationOrder(repository.newest_done_publication)
        # handed to an adapter, no result yet: a second dispatch of the same row (an order
        # actor re-activated after its host died re-dispatches its undone effects) must not
        # publish or pay it twice
        self._in_flight: set[int] = set()
        self._lightning_info: Any = None
        self._storage_waiting: list[tuple[object, object]] = []
        self._storage_delay = STORAGE_RETRY_MIN_SECONDS
        # publications signed and marked in flight, not yet handed to the Nostr adapter
        # publications for the Nostr adapter as one PublishBatch (it gathers relay OKs alike)
        self._held_publish: HeldBatch[PublishEvent] = HeldBatch(_FLUSH_PUBLISH)

    def receiveMessage(self, msg: object, sender: object) -> None:
        if isinstance(msg, WakeupMessage) and msg.payload == _STORAGE_RETRY:
            waiting, self._storage_waiting = self._storage_waiting, []
            for index, (held, held_sender) in enumerate(waiting):
                if not self._receive_or_wait(held, held_sender):
                    self._storage_waiting.extend(waiting[index + 1:])
                    return
            self._storage_delay = STORAGE_RETRY_MIN_SECONDS
        elif self._storage_waiting:  # keep arrival order behind a message waiting for storage
            self._storage_waiting.append((msg, sender))
        else:
            self._receive_or_wait(msg, sender)

    def _receive_or_wait(self, msg: object, sender: object) -> bool:
        """Handle one message; on a storage error (database locked by another process, disk
        full) keep it and try again later: dropping it would lose an LND result (a payment
        that succeeded, a hold invoice's bolt11) or a relay's confirmation for good."""
        try:
            self._dispatch(msg, sender)
            return True
        except peewee.OperationalError as error:
            log.error("outbox: cannot use the database for %s (%s); retrying in %.1f s",
                      type(msg).__name__, error, self._storage_delay)
            self._storage_waiting.insert(0, (msg, sender))
            self.wakeupAfter(timedelta(seconds=self._storage_delay), payload=_STORAGE_RETRY)
            self._storage_delay = min(self._storage_delay * 2, STORAGE_RETRY_MAX_SECONDS)
            return False

    def _dispatch(self, msg: object, sender: object) -> None:
        if isinstance(msg, RuntimeConfig):
            self._configure(msg)
            self.send(sender, msg)
        elif isinstance(msg, DispatchEffects):
            self._on_dispatch(msg)
        elif isinstance(msg, DispatchBatch):
            self._on_dispatch(*msg.dispatches)
        elif isinstance(msg, ResendUndone):
            self.resend_undone()
            self.send(sender, msg)
        elif isinstance(msg, DispatchTransient):
            for effect in msg.effects:
                self._execute(None, None, effect)
        elif isinstance(msg, ln.EffectDone):
            self._on_lightning_done(msg)
        elif isinstance(msg, ln.Answers):
            self._on_answers(msg, sender)
        elif isinstance(msg, ln.EffectFailed):
            if msg.error_kind == "not_found" and self._is_cancel(msg.effect_id):
                # LND has no invoice for this hash (its AddHoldInvoice has not run yet):
                # nothing is held. If it is created later, the order actor cancels it on
                # HoldInvoiceCreated, so retrying this one could only fail forever.
                self._mark_done(msg.effect_id)
            else:
                self._on_failed(msg.effect_id, msg.error, msg.retryable)
        elif isinstance(msg, ln.InvoiceStateChanged):
            self._on_invoice(msg)
        elif isinstance(msg, ln.PaymentResult):
            self._on_payment(msg)
        elif isinstance(msg, PublishResults):
            self._on_published_many(msg)
        elif isinstance(msg, PublishResult):
            self._on_published(msg)
        elif isinstance(msg, NostrNotStarted):
            self._on_nostr_not_started(msg)
        elif isinstance(msg, Announce):
            self._lightning_info = msg.lightning_info
            self._announce()
        elif isinstance(msg, WakeupMessage) and msg.payload == _ANNOUNCE:
            self._announce()
        elif isinstance(msg, WakeupMessage) and msg.payload == _FLUSH_PUBLISH:
            self._flush_publish()
        elif isinstance(msg, ActorExitRequest):
            self._flush_publish()  # what is held is committed and due: hand it over
        elif isinstance(msg, WakeupMessage):
            self._wakeup_armed = False
            self._retry_due()

    # ------------------------------------------------------------ running effects
    def _configure(self, config: RuntimeConfig) -> None:
        self._config = config
        if models.database_proxy.obj is None:
            open_database(config.database_url)
        self._publisher = outgoing.Publisher(
            config.settings, (config.network,), maker_rating=reputation.maker_rating)
        self._held_publish.holding = holds_on(config.settings)

    def _publish(self, items: list[PublishEvent]) -> None:
        """Hand publications to the Nostr adapter (held briefly: held_batch.py)."""
        self._send_publish(self._held_publish.add(self, items))

    def _flush_publish(self) -> None:
        self._send_publish(self._held_publish.take())

    def _send_publish(self, items: list[PublishEvent]) -> None:
        if not items:
            return
        assert self._config is not None
        message = items[0] if len(items) == 1 else PublishBatch(tuple(items))
        self.send(self._config.peers.nostr, message)

    def _on_dispatch(self, *dispatches: DispatchEffects) -> None:
        """Run committed decisions' effects; those handed over with their rows run together
        (one message to each adapter for the lot)."""
        handed: list[tuple[int, str | None, Any]] = []
        for msg in dispatches:
            if msg.new_order and msg.order_id is not None:
                self._publications.new_order(msg.order_id)
            if msg.effects and len(msg.effects) == len(msg.effect_ids):
                # just committed: not done, so no need to read the rows back
                handed.extend((effect_id, msg.order_id, effect) for effect_id, effect
                              in zip(msg.effect_ids, msg.effects, strict=True)
                              if effect_id not in self._in_flight)
            else:
                if handed:  # keep the decisions' order
                    self._run_effects(handed)
                    handed = []
                self._run_ids(msg.effect_ids)
        if handed:
            self._run_effects(handed)

    def resend_undone(self) -> None:
        self._run_rows(repository.undone_outbox())

    def _run_ids(self, effect_ids: Any) -> None:
        rows = repository.outbox_rows(effect_ids)
        self._run_rows([rows[i] for i in effect_ids if i in rows])

    def _run_rows(self, rows: list[Any]) -> None:
        """Run the undone rows (`OutboxEffect` or `repository.OutboxRow`)."""
        self._run_effects([(row.id, row.order_id, records_json.loads(row.payload))
                           for row in rows
                           if row.done_at is None and row.id not in self._in_flight])

    def _run_effects(self, effects: list[tuple[int, str | None, Any]]) -> None:
        """Run (outbox id, order id, effect): Lightning's first, in one message, then the
        others in order."""
        lightning = [e for e in effects if not isinstance(e[2], _NOSTR_EFFECTS)]
        if len(lightning) > 1:
            self._execute_lightning_batch(lightning)
        else:
            for effect_id, order_id, effect in lightning:
                self._execute(effect_id, order_id, effect)
        nostr = [e for e in effects if isinstance(e[2], _NOSTR_EFFECTS)]
        if len(nostr) > 1:
            self._execute_nostr_batch(nostr)
        else:
            for effect_id, order_id, effect in nostr:
                self._execute(effect_id, order_id, effect)

    def _execute_nostr_batch(self, effects: list[tuple[int, str | None, Any]]) -> None:
        """Nostr effects of one dispatch as one `PublishBatch` (one hop; the adapter still
        publishes and confirms each event on its own)."""
        assert self._config is not None and self._publisher is not None
        items: list[PublishEvent] = []
        nothing_to_publish: list[int] = []
        now = int(time.time())
        for effect_id, _order_id, effect in effects:
            try:
                event = self._unsigned_for(effect_id, effect, now)
            except Exception as err:  # a bad effect must not stop the others
                log.exception("effect %s could not be sent", effect_id)
                self._on_failed(effect_id, str(err), retryable=False)
                continue
            if event is None:
                nothing_to_publish.append(effect_id)
            else:
                items.append(PublishEvent(event, effect_id))
        if nothing_to_publish:
            self._mark_done_many(nothing_to_publish)
        if items:
            self._publish(items)
            self._in_flight.update(item.effect_id for item in items)

    def _unsigned_for(self, effect_id: int | None, effect: Any, now: int) -> Unsigned | None:
        """What a Nostr effect publishes, for the Nostr adapter to sign (beside the actors:
        adapters/nostr/signing.py); None for nothing to publish, a stale order or dispute
        status included (actors/publication_order.py)."""
        assert self._publisher is not None
        if self._publications.superseded(effect_id, effect):
            return None
        earlier = self._publications.stamped_after(effect)
        if earlier:
            subject = effect.order.id if isinstance(effect, model.PublishOrder) else effect.dispute.id
            self._publisher.published_before(subject, earlier)
        return self._publisher.unsigned_for(effect, now)

    def _mark_done_many(self, effect_ids: list[int]) -> None:
        repository.mark_outbox_done_many(effect_ids)
        for effect_id in effect_ids:
            self._in_flight.discard(effect_id)
            self._attempts.pop(effect_id, None)
            self._retry_at.pop(effect_id, None)

    def _execute_lightning_batch(self, effects: list[tuple[int, str | None, Any]]) -> None:
        assert self._config is not None
        messages = []
        for effect_id, _order_id, effect in effects:
            try:
                messages.append(lightning_message(effect, effect_id))
                self._in_flight.add(effect_id)
            except Exception as err:  # a bad effect must not stop the others
                log.exception("effect %s could not be sent", effect_id)
                self._on_failed(effect_id, str(err), retryable=False)
        if messages:
            self.send(self._config.peers.lightning, ln.Batch(tuple(messages), reply_together=True))

    def _execute(self, effect_id: int | None, order_id: str | None, effect: Any) -> None:
        assert self._config is not None and self._publisher is not None
        peers = self._config.peers
        try:
            if isinstance(effect, _NOSTR_EFFECTS):
                event = self._unsigned_for(effect_id, effect, int(time.time()))
                if event is None:
                    self._mark_done(effect_id)
                    return
                self._publish([PublishEvent(event, effect_id)])
            else:
                self.send(peers.lightning, lightning_message(effect, effect_id))
            if effect_id is not None:
                self._in_flight.add(effect_id)
        except Exception as err:  # a bad effect must not stop the others
            log.exception("effect %s could not be sent", effect_id)
            if effect_id is not None:
                self._on_failed(effect_id, str(err), retryable=False)

    def _mark_done(self, effect_id: int | None) -> None:
        if effect_id is None:
            return
        repository.mark_outbox_done(effect_id)
        self._in_flight.discard(effect_id)
        self._attempts.pop(effect_id, None)
        self._retry_at.pop(effect_id, None)

    def _announce(self) -> None:
        """Publish the info event (kind 38385) and metadata; again every publish interval."""
        if self._config is None or self._publisher is None:
            return
        settings = self._config.settings
        for event in outgoing.announcements(self._publisher, settings, self._lightning_info,
                                            int(time.time())):
            self.send(self._config.peers.nostr, PublishEvent(event, None))
        interval = settings.mostro.publish_mostro_info_interval
        self.wakeupAfter(timedelta(seconds=interval), payload=_ANNOUNCE)

    # ------------------------------------------------------------ results
    def _route(self, order_id: str | None, event: Any) -> None:
        if order_id is not None and self._config is not None:
            self.send(self._config.peers.directory, RouteToOrder(order_id, event))

    def _on_lightning_done(self, msg: ln.EffectDone) -> None:
        effect_id = msg.effect_id
        # only a new hold invoice (it carries its bolt11) needs its row: to tell the order
        row = self._row(effect_id) if msg.payment_request else None
        self._mark_done(effect_id)
        if row is not None and row.effect == "AddHoldInvoice" and msg.payment_request:
            effect = records_json.loads(row.payload)
            self._route(row.order_id, model.HoldInvoiceCreated(
                effect.hash, msg.payment_request, request_id=effect.request_id))

    def _on_answers(self, msg: ln.Answers, sender: object) -> None:
        """Answers to a batch: every done effect marked in one transaction, then routed as
        `_on_lightning_done` routes one; failures handled one by one as usual."""
        done = [m for m in msg.messages if isinstance(m, ln.EffectDone) and m.effect_id is not None]
        rows = repository.outbox_rows([m.effect_id for m in done if m.payment_request])
        repository.mark_outbox_done_many([m.effect_id for m in done])
        for answer in done:
            self._in_flight.discard(answer.effect_id)
            self._attempts.pop(answer.effect_id, None)
            self._retry_at.pop(answer.effect_id, None)
            row = rows.get(answer.effect_id)
            if row is not None and row.effect == "AddHoldInvoice" and answer.payment_request:
                effect = records_json.loads(row.payload)
                self._route(row.order_id, model.HoldInvoiceCreated(
                    effect.hash, answer.payment_request, request_id=effect.request_id))
        for answer in msg.messages:
            if not isinstance(answer, ln.EffectDone):
                self._dispatch(answer, sender)

    def _on_failed(self, effect_id: Any, error: str, retryable: bool) -> None:
        self._in_flight.discard(effect_id)
        row = self._row(effect_id)
        if row is None:
            return
        attempts = self._attempts.get(effect_id, 0) + 1
        self._attempts[effect_id] = attempts
        repository.record_outbox_failure(effect_id, error)
        if not retryable and row.effect == "AddHoldInvoice":
            effect = records_json.loads(row.payload)
            self._mark_done(effect_id)
            self._route(row.order_id, model.HoldInvoiceCreateFailed(effect.hash, error))
            return
        delay = min(RETRY_MIN_SECONDS * 2 ** (attempts - 1), RETRY_MAX_SECONDS)
        log.warning("effect failed, retrying", extra={"fields": {
            "effect_id": effect_id, "effect": row.effect, "order_id": row.order_id,
            "attempt": attempts, "retry_in": f"{delay:.1f}s", "error": error}})
        self._retry_at[effect_id] = time.monotonic() + delay
        self._arm(delay)

    def _on_invoice(self, msg: ln.InvoiceStateChanged) -> None:
        event_cls = _INVOICE_EVENTS.get(msg.state)
        if event_cls is None or self._config is None:
            return
        if event_cls is model.InvoiceAccepted:
            event: Any = model.InvoiceAccepted(msg.hash_hex, msg.amt_paid_sat)
        else:
            event = event_cls(msg.hash_hex)
        self.send(self._config.peers.directory, InvoiceUpdate(msg.hash_hex, event))

    def _on_payment(self, msg: ln.PaymentResult) -> None:
        row = self._row(msg.effect_id)
        order_id = row.order_id if row is not None else repository.order_id_for_payout(msg.hash_hex)
        if msg.status == ln.PaymentStatus.SUCCEEDED:
            event: Any = model.PaymentSucceeded(msg.hash_hex, msg.fee_sat, msg.preimage_hex or None)
        elif msg.status in (ln.PaymentStatus.FAILED, ln.PaymentStatus.UNKNOWN):
            event = model.PaymentFailed(msg.hash_hex, msg.failure_reason)
        else:
            return
        self._mark_done(msg.effect_id)
        self._route(order_id, event)

    def _on_published_many(self, msg: PublishResults) -> None:
        """Relay outcomes reported together: the accepted ones marked done in one
        transaction, the others retried one by one as `_on_published` does."""
        accepted = [r.effect_id for r in msg.results if r.accepted_by and r.effect_id is not None]
        if accepted:
            self._mark_done_many(accepted)
        for result in msg.results:
            if not result.accepted_by:
                self._on_published(result)

    def _on_published(self, msg: PublishResult) -> None:
        if msg.accepted_by:
            self._mark_done(msg.effect_id)
        elif msg.effect_id is not None:
            reason = "; ".join(f"{url}: {why}" for url, why in msg.rejected) or "no relay answered"
            self._on_failed(msg.effect_id, reason, retryable=True)

    def _on_nostr_not_started(self, msg: NostrNotStarted) -> None:
        """A publish that reached the Nostr adapter before its relays were started (undone
        effects are re-sent at start-up before intake opens): retry it, never drop it."""
        request = msg.request
        if isinstance(request, PublishEvent) and request.effect_id is not None:
            self._on_failed(request.effect_id, "the Nostr adapter is not started yet",
                            retryable=True)

    def _is_cancel(self, effect_id: Any) -> bool:
        row = self._row(effect_id)
        return row is not None and row.effect == "CancelHoldInvoice"

    def _row(self, effect_id: Any) -> models.OutboxEffect | None:
        if effect_id is None:
            return None
        return models.OutboxEffect.get_or_none(models.OutboxEffect.id == effect_id)

    # ------------------------------------------------------------ retries
    def _arm(self, delay: float) -> None:
        if not self._wakeup_armed:
            self._wakeup_armed = True
            self.wakeupAfter(timedelta(seconds=delay))

    def _retry_due(self) -> None:
        now = time.monotonic()
        due = sorted(effect_id for effect_id, at in self._retry_at.items() if at <= now)
        for effect_id in due:
            del self._retry_at[effect_id]
        if due:
            self._run_ids(due)
        if self._retry_at:
            self._arm(max(min(self._retry_at.values()) - now, 0.01))
