"""LightningAdapter: the one actor that talks to LND.

It takes effect messages (add/settle/cancel hold invoices, pay, track, decode)
and performs them with short-deadline unary calls, answering the owner with
`EffectDone`/`EffectFailed` carrying the caller's opaque `effect_id`. Long
streams (invoice subscriptions, payments) run in background threads
(`workers.py`) that hand events back through a `ThreadBridge`; the actor
wakes on the bridge's pipe (`ThespianWatch`) or, on bases without it, polls
with a short `wakeupAfter` while any thread is alive.

Invoice states reach the owner exactly once per state and never backwards:
the actor remembers the last state delivered per hash, and every watcher
reconciles with LookupInvoiceV2 after a reconnect.

This actor must not block for long in `receiveMessage` (every unary call has
a deadline of `rpc_timeout_seconds`), must not decide anything about orders,
and must not touch the database.
"""

from __future__ import annotations

import hashlib
import logging
from collections import deque
from collections.abc import Callable
from typing import Any

from thespian.actors import (
    Actor,
    ActorExitRequest,
    ActorSystemMessage,
    WakeupMessage,
    WatchMessage,
)

from adapters.bridge import ThreadBridge
from adapters.lnd import workers
from adapters.lnd.client import ConnectionSettings, LndClient
from adapters.lnd.errors import ErrorKind, LndError
from adapters.lnd.messages import (
    AddHoldInvoice,
    Batch,
    CancelHoldInvoice,
    Configure,
    DecodedInvoice,
    DecodeInvoice,
    EffectDone,
    EffectFailed,
    GetLightningStatus,
    InvoiceState,
    InvoiceStateChanged,
    InvoiceUnknown,
    LightningStatus,
    NodeInfo,
    Outcome,
    PaymentResult,
    PaymentStatus,
    SendPayment,
    SettleHoldInvoice,
    TrackPayment,
    UnwatchInvoice,
    WatchInvoice,
)

log = logging.getLogger(__name__)

FINAL_STATES_KEPT = 10_000
_NOT_CONFIGURED = LndError(ErrorKind.CONFIG, "the Lightning adapter has not been configured")


class LightningAdapter(Actor):
    """Owns the link to one LND node; see the module docstring for the contract."""

    def __init__(
        self, capabilities: dict[str, Any] | None = None, *args: Any, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self._bridge = ThreadBridge.for_actor(capabilities or {})
        self._config: Configure | None = None
        self._owner: Any = None
        self._client: LndClient | None = None
        self._info: NodeInfo | None = None
        self._link_error: LndError | None = None
        self._connected = False
        self._connector: workers.Worker | None = None
        self._watchers: dict[str, workers.Worker] = {}
        self._last_state: dict[str, InvoiceState] = {}
        self._payments: dict[str, workers.Worker] = {}
        self._payment_effects: dict[str, list[Any]] = {}
        self._pending_tracks: set[str] = set()
        self._finals: deque[str] = deque()
        self._next_token = 0
        self._poll_armed = False
        self._handlers: dict[type, Callable[[Any, Any], None]] = {
            Configure: self._on_configure,
            AddHoldInvoice: self._on_add_hold_invoice,
            SettleHoldInvoice: self._on_settle,
            CancelHoldInvoice: self._on_cancel,
            WatchInvoice: self._on_watch,
            UnwatchInvoice: self._on_unwatch,
            SendPayment: self._on_send_payment,
            TrackPayment: self._on_track_payment,
            DecodeInvoice: self._on_decode,
            GetLightningStatus: self._on_get_status,
            Batch: self._on_batch,
        }

    # ------------------------------------------------------------ dispatch

    def receiveMessage(self, message: Any, sender: Any) -> Any:
        if isinstance(message, ActorExitRequest):
            self._stop_all()
            if self._client is not None:
                self._client.close()
            self._bridge.close()
            return None
        if isinstance(message, WakeupMessage):
            self._poll_armed = False
        elif not isinstance(message, WatchMessage):
            handler = self._handlers.get(type(message))
            if handler is not None:
                handler(message, sender)
            elif not isinstance(message, ActorSystemMessage):
                log.warning("LightningAdapter ignores a %s", type(message).__name__)
        self._drain()
        return self._arm()

    def _arm(self) -> Any:
        """Make sure a thread's `put` wakes us: the pipe watch, or a poll while threads live."""
        watch = self._bridge.watch()
        if watch is not None:
            return watch
        busy = (
            self._connector is not None
            or bool(self._payments)
            or any(w.token != _PendingWatch.token for w in self._watchers.values())
        )
        if busy and not self._poll_armed:
            self._poll_armed = True
            self.wakeupAfter(ThreadBridge.poll_interval)
        return None

    def _drain(self) -> None:
        for event in self._bridge.drain():
            self._on_event(event)

    def _tell_owner(self, message: Any) -> None:
        if self._owner is not None:
            self.send(self._owner, message)

    def _token(self) -> int:
        self._next_token += 1
        return self._next_token

    def _backoff(self) -> workers.Backoff:
        assert self._config is not None
        return workers.Backoff(
            self._config.reconnect_min_seconds, self._config.reconnect_max_seconds
        )

    # ------------------------------------------------------------ link state

    def _status(self) -> LightningStatus:
        error = self._link_error
        return LightningStatus(
            connected=self._connected,
            info=self._info,
            error=str(error.message) if error and not self._connected else "",
            error_kind=error.kind.value if error and not self._connected else "",
        )

    def _link_up(self) -> None:
        if not self._connected and self._info is not None:
            self._connected = True
            self._link_error = None
            self._tell_owner(self._status())

    def _link_down(self, error: LndError) -> None:
        if self._connected:
            self._connected = False
            self._link_error = error
            log.warning("LND link down: %s", error)
            self._tell_owner(self._status())
        else:
            self._link_error = error

    def _after_call(self, result: Any) -> None:
        """Every unary call tells us something about the link."""
        if isinstance(result, LndError):
            if result.link_down:
                self._link_down(result)
        else:
            self._link_up()

    # ------------------------------------------------------------ configure

    def _on_configure(self, msg: Configure, sender: Any) -> None:
        self._stop_all()
        if self._client is not None:
            self._client.close()
        self._config = msg
        self._owner = msg.owner if msg.owner is not None else sender
        self._info, self._connected, self._link_error = None, False, None
        client = LndClient.connect(
            ConnectionSettings(
                host=msg.host,
                tls_cert_path=msg.tls_cert_path,
                macaroon_path=msg.macaroon_path,
                rpc_timeout_seconds=msg.rpc_timeout_seconds,
                reconnect_min_seconds=msg.reconnect_min_seconds,
                reconnect_max_seconds=msg.reconnect_max_seconds,
                keepalive_seconds=msg.keepalive_seconds,
            )
        )
        if isinstance(client, LndError):
            self._client = None
            self._link_error = client
        else:
            self._client = client
            info = client.check_node(msg.expected_network)
            if isinstance(info, NodeInfo):
                self._node_ready(info)
            else:
                self._link_error = info
                if info.retryable:
                    self._start_connector()
        status = self._status()
        self._tell_owner(status)
        if sender != self._owner:
            self.send(sender, status)

    def _start_connector(self) -> None:
        assert self._client is not None and self._config is not None
        client, network, put, backoff = (
            self._client,
            self._config.expected_network,
            self._bridge.put,
            self._backoff(),
        )
        self._connector = workers.Worker(
            "lnd-connect",
            self._token(),
            lambda w: workers.connect_loop(w, client, network, put, backoff),
        ).start()

    def _node_ready(self, info: NodeInfo) -> None:
        self._info = info
        self._connected = True
        self._link_error = None
        for hash_hex in list(self._watchers):
            self._start_watcher(hash_hex)
        for hash_hex in self._pending_tracks - set(self._payments):
            self._start_payment(workers.PaymentJob(hash_hex, None))
        self._pending_tracks.clear()

    def _ready_client(self) -> LndClient | LndError:
        """The client, once GetInfo has passed; otherwise why we cannot act."""
        if self._client is None or self._info is None:
            return self._link_error or _NOT_CONFIGURED
        return self._client

    # ------------------------------------------------------------ hold invoices

    def _fail(self, effect_id: Any, error: LndError) -> None:
        self._tell_owner(EffectFailed(effect_id, error.message, error.retryable, error.kind.value))

    def _on_add_hold_invoice(self, msg: AddHoldInvoice, sender: Any) -> None:
        client = self._ready_client()
        if isinstance(client, LndError):
            self._fail(msg.effect_id, _not_ready(client))
            return
        result = client.add_hold_invoice(
            msg.hash_hex, msg.value_sat, msg.memo, msg.expiry, msg.cltv_expiry
        )
        self._after_call(result)
        if isinstance(result, LndError):
            self._fail(msg.effect_id, result)
            return
        hash_hex = msg.hash_hex.lower()
        self._tell_owner(
            EffectDone(msg.effect_id, result.outcome, hash_hex, result.payment_request)
        )
        self._watch(hash_hex)

    def _on_settle(self, msg: SettleHoldInvoice, sender: Any) -> None:
        client = self._ready_client()
        if isinstance(client, LndError):
            self._fail(msg.effect_id, _not_ready(client))
            return
        result = client.settle_invoice(msg.preimage_hex)
        self._after_call(result)
        if isinstance(result, LndError):
            self._fail(msg.effect_id, result)
            return
        hash_hex = hashlib.sha256(bytes.fromhex(msg.preimage_hex)).hexdigest()
        self._tell_owner(EffectDone(msg.effect_id, result, hash_hex))

    def _on_cancel(self, msg: CancelHoldInvoice, sender: Any) -> None:
        client = self._ready_client()
        if isinstance(client, LndError):
            self._fail(msg.effect_id, _not_ready(client))
            return
        result = client.cancel_invoice(msg.hash_hex)
        self._after_call(result)
        if isinstance(result, LndError):
            self._fail(msg.effect_id, result)
            return
        self._tell_owner(EffectDone(msg.effect_id, result, msg.hash_hex.lower()))

    # ------------------------------------------------------------ watching

    def _on_watch(self, msg: WatchInvoice, sender: Any) -> None:
        hash_hex = msg.hash_hex.lower()
        known = msg.last_known_state
        if known is not None:
            known = InvoiceState(known)
            previous = self._last_state.get(hash_hex)
            if previous is None or known.rank > previous.rank:
                self._remember(hash_hex, known)
        self._watch(hash_hex)

    def _on_unwatch(self, msg: UnwatchInvoice, sender: Any) -> None:
        hash_hex = msg.hash_hex.lower()
        worker = self._watchers.pop(hash_hex, None)
        if worker is not None:
            worker.stop()
        self._last_state.pop(hash_hex, None)

    def _watch(self, hash_hex: str) -> None:
        """Idempotent: one watcher per hash, none once a final state was delivered."""
        last = self._last_state.get(hash_hex)
        if last is not None and last.is_final:
            return
        if hash_hex in self._watchers:
            return
        if self._info is None:
            # Not connected yet: remember it; `_node_ready` starts it.
            self._watchers[hash_hex] = _PendingWatch()  # type: ignore[assignment]
            return
        self._start_watcher(hash_hex)

    def _start_watcher(self, hash_hex: str) -> None:
        assert self._client is not None
        old = self._watchers.get(hash_hex)
        if old is not None:
            old.stop()
        client, put, backoff = self._client, self._bridge.put, self._backoff()
        self._watchers[hash_hex] = workers.Worker(
            f"lnd-invoice-{hash_hex[:12]}",
            self._token(),
            lambda w: workers.watch_invoice_loop(w, client, hash_hex, put, backoff),
        ).start()

    def _deliver_invoice(self, event: workers.InvoiceSeen) -> None:
        snapshot = event.snapshot
        worker = self._watchers.get(snapshot.hash_hex)
        if worker is None or worker.token != event.token:
            return  # from a watch that was stopped meanwhile
        last = self._last_state.get(snapshot.hash_hex)
        if last is not None and snapshot.state.rank <= last.rank:
            return
        self._remember(snapshot.hash_hex, snapshot.state)
        self._tell_owner(
            InvoiceStateChanged(
                hash_hex=snapshot.hash_hex,
                state=snapshot.state,
                amt_paid_sat=snapshot.amt_paid_sat,
                value_sat=snapshot.value_sat,
                payment_request=snapshot.payment_request,
                htlc_expiry_height=snapshot.htlc_expiry_height,
            )
        )

    def _remember(self, hash_hex: str, state: InvoiceState) -> None:
        """Last delivered state per hash; final ones are kept for the newest
        `FINAL_STATES_KEPT` hashes only (older final invoices are not watched again)."""
        self._last_state[hash_hex] = state
        if state.is_final:
            self._finals.append(hash_hex)
            while len(self._finals) > FINAL_STATES_KEPT:
                old = self._finals.popleft()
                if old not in self._watchers and self._last_state.get(old, state).is_final:
                    self._last_state.pop(old, None)

    def _watch_ended(self, event: workers.WatchEnded) -> None:
        worker = self._watchers.get(event.hash_hex)
        if worker is None or worker.token != event.token:
            return
        del self._watchers[event.hash_hex]
        if event.not_found:
            self._tell_owner(InvoiceUnknown(event.hash_hex))
        elif event.error is not None:
            log.error("stopped watching invoice %s: %s", event.hash_hex, event.error)

    # ------------------------------------------------------------ payments

    def _on_send_payment(self, msg: SendPayment, sender: Any) -> None:
        client = self._ready_client()
        if isinstance(client, LndError):
            self._fail(msg.effect_id, _not_ready(client))
            return
        decoded = client.decode_pay_req(msg.payment_request)
        self._after_call(decoded)
        if isinstance(decoded, LndError):
            self._fail(msg.effect_id, decoded)
            return
        if not decoded.ok:
            self._payment_refused_by_lnd("", [msg.effect_id], decoded.error)
            return
        hash_hex = decoded.hash_hex
        self._payment_effects.setdefault(hash_hex, []).append(msg.effect_id)
        if hash_hex in self._payments:
            return  # the payment already running will answer this effect too
        job = workers.PaymentJob(
            hash_hex, msg.payment_request, msg.amount_sat, msg.fee_limit_sat, msg.timeout_seconds
        )
        self._start_payment(job)

    def _on_track_payment(self, msg: TrackPayment, sender: Any) -> None:
        hash_hex = msg.hash_hex.lower()
        if self._info is None:
            # Never answer UNKNOWN for "cannot ask": that would look like a failed payout.
            if self._connector is not None:
                self._pending_tracks.add(hash_hex)
            else:
                log.error(
                    "TrackPayment %s ignored: %s", hash_hex, self._link_error or _NOT_CONFIGURED
                )
            return
        if hash_hex not in self._payments:
            self._start_payment(workers.PaymentJob(hash_hex, None))

    def _start_payment(self, job: workers.PaymentJob) -> None:
        assert self._client is not None
        client, put, backoff = self._client, self._bridge.put, self._backoff()
        self._payments[job.hash_hex] = workers.Worker(
            f"lnd-pay-{job.hash_hex[:12]}",
            self._token(),
            lambda w: workers.payment_loop(w, client, job, put, backoff),
        ).start()

    def _payment_finished(self, event: workers.PaymentFinished) -> None:
        worker = self._payments.get(event.hash_hex)
        if worker is None or worker.token != event.token:
            return
        del self._payments[event.hash_hex]
        effects = self._payment_effects.pop(event.hash_hex, [])
        snap = event.snapshot
        self._tell_owner(
            PaymentResult(
                event.hash_hex,
                snap.status,
                snap.preimage_hex,
                snap.fee_sat,
                snap.failure_reason,
                effects[0] if effects else None,
            )
        )
        outcome = (
            Outcome.SUCCEEDED if snap.status is PaymentStatus.SUCCEEDED else Outcome.PAYMENT_FAILED
        )
        for effect_id in effects:
            if snap.status is PaymentStatus.UNKNOWN:
                # Nothing reached LND: sending again is safe (and idempotent by hash).
                self._tell_owner(
                    EffectFailed(effect_id, "LND has no payment for this hash", True, "not_found")
                )
            else:
                self._tell_owner(EffectDone(effect_id, outcome, event.hash_hex))

    def _payment_refused(self, event: workers.PaymentRefused) -> None:
        worker = self._payments.get(event.hash_hex)
        if worker is None or worker.token != event.token:
            return
        del self._payments[event.hash_hex]
        effects = self._payment_effects.pop(event.hash_hex, [])
        self._payment_refused_by_lnd(event.hash_hex, effects, event.error.message)

    def _payment_refused_by_lnd(self, hash_hex: str, effects: list[Any], reason: str) -> None:
        """LND would not pay (bad or expired invoice, wrong amount...): a failed payout
        attempt (ORDER_FLOW.md §6.2), so the effect is done with a FAILED result; only
        problems worth retrying as they are become `EffectFailed`."""
        first = effects[0] if effects else None
        self._tell_owner(
            PaymentResult(hash_hex, PaymentStatus.FAILED, "", 0, "refused: " + reason, first)
        )
        for effect_id in effects:
            self._tell_owner(EffectDone(effect_id, Outcome.PAYMENT_FAILED, hash_hex))

    # ------------------------------------------------------------ queries

    def _on_decode(self, msg: DecodeInvoice, sender: Any) -> None:
        client = self._ready_client()
        if isinstance(client, LndError):
            self.send(
                sender,
                DecodedInvoice(
                    msg.payment_request, error=client.message, error_kind=client.kind.value
                ),
            )
            return
        decoded = client.decode_pay_req(msg.payment_request)
        self._after_call(decoded)
        if isinstance(decoded, LndError):
            decoded = DecodedInvoice(
                msg.payment_request, error=decoded.message, error_kind=decoded.kind.value
            )
        self.send(sender, decoded)

    def _on_batch(self, msg: Batch, sender: Any) -> None:
        for message in msg.messages:
            handler = self._handlers.get(type(message))
            if handler is None or isinstance(message, Batch | Configure):
                log.warning("LightningAdapter ignores a %s in a batch", type(message).__name__)
                continue
            handler(message, sender)

    def _on_get_status(self, msg: GetLightningStatus, sender: Any) -> None:
        self.send(sender, self._status())

    # ------------------------------------------------------------ thread events

    def _on_event(self, event: Any) -> None:
        if isinstance(event, workers.InvoiceSeen):
            self._link_up()
            self._deliver_invoice(event)
        elif isinstance(event, workers.WatchEnded):
            self._watch_ended(event)
        elif isinstance(event, workers.PaymentFinished):
            self._link_up()
            self._payment_finished(event)
        elif isinstance(event, workers.PaymentRefused):
            self._payment_refused(event)
        elif isinstance(event, workers.LinkTrouble):
            self._link_down(event.error)
        elif isinstance(event, workers.LinkAlive):
            self._link_up()
        elif isinstance(event, workers.NodeReady):
            if self._connector is not None and self._connector.token == event.token:
                self._connector = None
                self._node_ready(event.info)
                self._tell_owner(self._status())
        elif isinstance(event, workers.NodeRefused):
            if self._connector is not None and self._connector.token == event.token:
                self._connector = None
                self._link_error = event.error
                self._tell_owner(self._status())

    def _stop_all(self) -> None:
        if self._connector is not None:
            self._connector.stop()
            self._connector = None
        for worker in list(self._watchers.values()) + list(self._payments.values()):
            worker.stop()
        # Keep what was asked for: a new Configure resumes it (payments by tracking).
        self._watchers = {h: _PendingWatch() for h in self._watchers}  # type: ignore[misc]
        self._pending_tracks |= set(self._payments)
        self._payments.clear()


class _PendingWatch:
    """Placeholder for a watch asked for before LND was reachable."""

    token = -1

    def stop(self) -> None:
        pass


def _not_ready(error: LndError) -> LndError:
    """Effects sent before the link works are worth retrying once it does."""
    if error.retryable:
        return error
    return LndError(ErrorKind.UNREACHABLE, "LND not ready: " + error.message)
