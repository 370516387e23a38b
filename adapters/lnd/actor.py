"""LightningAdapter: the one actor that talks to LND.

It takes effect messages (add/settle/cancel hold invoices, pay, track, decode)
and performs them with short-deadline unary calls, answering the owner with
`EffectDone`/`EffectFailed` carrying the caller's opaque `effect_id`. Unary
calls run as coroutines on one asyncio loop thread (`workers.LoopPool`, gRPC
futures): many at once (after a bond race, 199 cancels would otherwise wait
for each other), but the calls for one payment hash one after another in the
order they came. Long streams (invoice subscriptions, payments) and the
connector run in threads of their own (`workers.Worker`, blocking client;
not grpc.aio, which aborts in a process forked from one where gRPC is busy).
Everything they learn comes back as events through a `ThreadBridge`; the actor
wakes on the bridge's pipe (`ThespianWatch`) or, on bases without it, polls
with a short `wakeupAfter` while any work is running. The answers to a `Batch`
sent with `reply_together` travel back as `Answers`, one message per wake-up
instead of one per effect.

Invoice states reach the owner exactly once per state and never backwards:
the actor remembers the last state delivered per hash, and every watcher
reconciles with LookupInvoiceV2 after a reconnect.

This actor must not block for long in `receiveMessage` (the calls made in its
thread, `Configure`'s GetInfo and a payout's decode, have a deadline of
`rpc_timeout_seconds`; every other unary call runs on the loop), must not
decide anything about orders, and must not touch the database.
"""

from __future__ import annotations

import hashlib
import logging
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
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
from adapters.lnd.client import AioLndClient, ConnectionSettings, LndClient
from adapters.lnd.errors import ErrorKind, LndError
from adapters.lnd.messages import (
    AddHoldInvoice,
    Answers,
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
# Unary calls in flight to LND at once (one HTTP/2 connection; LND serves many streams on it):
# enough for a bond race's 199 cancels to be asked together (bench/profile_notes.md).
UNARY_IN_FLIGHT = 256
_EFFECTS = (AddHoldInvoice, SettleHoldInvoice, CancelHoldInvoice)
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
        self._client: LndClient | None = None  # blocking: GetInfo, payments
        self._aio: AioLndClient | None = None  # the same channel, for the loop's calls
        self._loop = workers.LoopThread()
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
        self._pool = workers.LoopPool(self._loop.loop, self._bridge.put, UNARY_IN_FLIGHT)
        self._grouped: set[Any] = set()  # effect ids whose answers go out in one `Answers`
        # Cancelling is final in LND: once a hash is known cancelled, or while a cancel of it
        # is the hash's last call in flight, another cancel needs no call of its own.
        self._cancelled: OrderedDict[str, None] = OrderedDict()
        self._open_cancel: dict[str, int] = {}  # hash -> token of the cancel in flight
        self._joined: dict[int, list[Any]] = {}  # that cancel's token -> effect ids joining it
        self._answers: list[EffectDone | EffectFailed] = []
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
            self._close_clients()
            self._loop.close()
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
        self._flush_answers()
        return self._arm()

    def _arm(self) -> Any:
        """Make sure a thread's `put` wakes us: the pipe watch, or a poll while threads live.

        It polls on simpleSystemBase too (no `ThreadBridge.attach`): answers that come back
        within one poll go to the outbox as one `Answers`, where a wake-up per answer would
        send them one by one."""
        watch = self._bridge.watch()
        if watch is not None:
            return watch
        busy = (
            self._connector is not None
            or self._pool.busy
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

    def _answer(self, message: EffectDone | EffectFailed) -> None:
        """Tell the owner how an effect ended: alone, or with the others of its batch."""
        if message.effect_id in self._grouped:
            self._grouped.discard(message.effect_id)
            self._answers.append(message)
        else:
            self._tell_owner(message)

    def _flush_answers(self) -> None:
        answers, self._answers = self._answers, []
        if len(answers) == 1:
            self._tell_owner(answers[0])
        elif answers:
            self._tell_owner(Answers(tuple(answers)))

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

    def _close_clients(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        self._aio = None

    def _on_configure(self, msg: Configure, sender: Any) -> None:
        self._stop_all()
        self._close_clients()
        self._config = msg
        self._owner = msg.owner if msg.owner is not None else sender
        self._info, self._connected, self._link_error = None, False, None
        settings = ConnectionSettings(
            host=msg.host,
            tls_cert_path=msg.tls_cert_path,
            macaroon_path=msg.macaroon_path,
            rpc_timeout_seconds=msg.rpc_timeout_seconds,
            reconnect_min_seconds=msg.reconnect_min_seconds,
            reconnect_max_seconds=msg.reconnect_max_seconds,
            keepalive_seconds=msg.keepalive_seconds,
        )
        client = LndClient.connect(settings)
        if isinstance(client, LndError):
            self._client = None
            self._link_error = client
        else:
            self._client = client
            self._aio = AioLndClient(client)
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
        """The blocking client, once GetInfo has passed; otherwise why we cannot act."""
        if self._client is None or self._info is None:
            return self._link_error or _NOT_CONFIGURED
        return self._client

    def _ready_aio(self) -> AioLndClient | LndError:
        """The loop's client, once GetInfo has passed; otherwise why we cannot act."""
        if self._aio is None or self._info is None:
            return self._link_error or _NOT_CONFIGURED
        return self._aio

    # ------------------------------------------------------------ hold invoices

    def _fail(self, effect_id: Any, error: LndError) -> None:
        self._answer(EffectFailed(effect_id, error.message, error.retryable, error.kind.value))

    def _on_add_hold_invoice(self, msg: AddHoldInvoice, sender: Any) -> None:
        client = self._ready_aio()
        if isinstance(client, LndError):
            self._fail(msg.effect_id, _not_ready(client))
            return
        self._open_cancel.pop(msg.hash_hex.lower(), None)  # a later cancel must wait behind it
        self._pool.submit(msg.hash_hex.lower(), msg, sender, lambda: client.add_hold_invoice(
            msg.hash_hex, msg.value_sat, msg.memo, msg.expiry, msg.cltv_expiry))

    def _on_settle(self, msg: SettleHoldInvoice, sender: Any) -> None:
        client = self._ready_aio()
        if isinstance(client, LndError):
            self._fail(msg.effect_id, _not_ready(client))
            return
        self._open_cancel.pop(_settled_hash(msg.preimage_hex), None)
        self._pool.submit(_settled_hash(msg.preimage_hex), msg, sender,
                          lambda: client.settle_invoice(msg.preimage_hex))

    def _on_cancel(self, msg: CancelHoldInvoice, sender: Any) -> None:
        hash_hex = msg.hash_hex.lower()
        if hash_hex in self._cancelled or self._last_state.get(hash_hex) is InvoiceState.CANCELED:
            # A bond race repeats cancels (one per late ACCEPTED): LND would only say so.
            self._answer(EffectDone(msg.effect_id, Outcome.ALREADY_CANCELED, hash_hex))
            return
        running = self._open_cancel.get(hash_hex)
        if running is not None:
            self._joined[running].append(msg.effect_id)  # answered with the running one
            return
        client = self._ready_aio()
        if isinstance(client, LndError):
            self._fail(msg.effect_id, _not_ready(client))
            return
        call = _CancelCall(msg, self._token())
        self._open_cancel[hash_hex] = call.token
        self._joined[call.token] = []
        self._pool.submit(hash_hex, call, sender, lambda: client.cancel_invoice(msg.hash_hex))

    def _cancel_finished(self, call: _CancelCall, result: Outcome | LndError) -> None:
        msg = call.message
        hash_hex = msg.hash_hex.lower()
        if self._open_cancel.get(hash_hex) == call.token:
            del self._open_cancel[hash_hex]
        joined = self._joined.pop(call.token, [])
        if isinstance(result, LndError):
            self._fail(msg.effect_id, result)
            for effect_id in joined:  # each is retried by its owner like the one that ran
                self._fail(effect_id, result)
            return
        self._cancelled[hash_hex] = None
        while len(self._cancelled) > FINAL_STATES_KEPT:
            self._cancelled.popitem(last=False)
        self._answer(EffectDone(msg.effect_id, result, hash_hex))
        for effect_id in joined:
            self._answer(EffectDone(effect_id, Outcome.ALREADY_CANCELED, hash_hex))

    def _call_finished(self, event: workers.CallFinished) -> None:
        """A pooled unary call returned: answer as the call's message asks."""
        request, result = event.request, event.result
        self._after_call(result)
        if isinstance(request, DecodeInvoice):
            self._decoded(request, event.sender, result)
            return
        if isinstance(request, _CancelCall):
            self._cancel_finished(request, result)
            return
        if isinstance(result, LndError):
            self._fail(request.effect_id, result)
        elif isinstance(request, AddHoldInvoice):
            hash_hex = request.hash_hex.lower()
            self._answer(
                EffectDone(request.effect_id, result.outcome, hash_hex, result.payment_request))
            self._watch(hash_hex)
        else:
            self._answer(EffectDone(request.effect_id, result,
                                    _settled_hash(request.preimage_hex)))

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
        # Decoded here, not on the pool: a payment must join one already running for its
        # hash (a TrackPayment after a restart) in the order the messages came, or a payout
        # tracked to its end meanwhile would be sent (and reported) a second time.
        decoded = client.decode_pay_req(msg.payment_request)
        self._after_call(decoded)
        self._pay_decoded(msg, decoded)

    def _pay_decoded(self, msg: SendPayment, decoded: DecodedInvoice | LndError) -> None:
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
        client = self._ready_aio()
        if isinstance(client, LndError):
            self.send(
                sender,
                DecodedInvoice(
                    msg.payment_request, error=client.message, error_kind=client.kind.value
                ),
            )
            return
        self._pool.submit("decode:" + msg.payment_request, msg, sender,
                          lambda: client.decode_pay_req(msg.payment_request))

    def _decoded(self, msg: DecodeInvoice, sender: Any, decoded: DecodedInvoice | LndError) -> None:
        if isinstance(decoded, LndError):
            decoded = DecodedInvoice(
                msg.payment_request, error=decoded.message, error_kind=decoded.kind.value
            )
        self.send(sender, decoded)

    def _on_batch(self, msg: Batch, sender: Any) -> None:
        if msg.reply_together:
            self._grouped.update(m.effect_id for m in msg.messages if isinstance(m, _EFFECTS))
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
        if isinstance(event, workers.CallFinished):
            self._call_finished(event)
        elif isinstance(event, workers.InvoiceSeen):
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


@dataclass(frozen=True)
class _CancelCall:
    """A cancel on the pool, with the token the cancels joining it are filed under."""

    message: CancelHoldInvoice
    token: int


class _PendingWatch:
    """Placeholder for a watch asked for before LND was reachable."""

    token = -1

    def stop(self) -> None:
        pass


def _settled_hash(preimage_hex: str) -> str:
    """The payment hash a settle is about (its key in the pool: one hash, one call at a time)."""
    try:
        return hashlib.sha256(bytes.fromhex(preimage_hex)).hexdigest()
    except ValueError:
        return "preimage:" + preimage_hex  # not hex: LND refuses it; any key will do


def _not_ready(error: LndError) -> LndError:
    """Effects sent before the link works are worth retrying once it does."""
    if error.retryable:
        return error
    return LndError(ErrorKind.UNREACHABLE, "LND not ready: " + error.message)
