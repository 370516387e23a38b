"""The LightningAdapter's background work: its unary calls on one asyncio loop thread,
its streams (invoice watches, payments) and its connector in a thread each.

`LoopPool` runs the actor's unary calls (add/settle/cancel hold invoices, decodes) as
coroutines of `AioLndClient` on a `LoopThread`: all in flight at once (up to a cap), so 200
cancels after a bond race do not wait for each other or for threads; calls that share a key
(a payment hash) still run one after another, in the order they were asked for. A stream loop
(`Worker`) talks to LND through the blocking `LndClient`, survives broken streams and restarts
of LND by retrying with exponential backoff. Everything is reported as small event values
handed to `put` (the actor's thread bridge, callable from any thread). On every (re)connect an
invoice watcher first looks the invoice up, so a state change that happened while the link
was down is reported too; the actor de-duplicates.

This module must not touch actor state, send actor messages or decide anything
about orders: it observes LND and reports.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import logging
import threading
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from adapters.lnd.client import LndClient, Stream
from adapters.lnd.errors import ErrorKind, LndError
from adapters.lnd.messages import (
    InvoiceSnapshot,
    NodeInfo,
    PaymentSnapshot,
    PaymentStatus,
)

Put = Callable[[Any], None]

log = logging.getLogger(__name__)

# ---------------------------------------------------------------- events (thread → actor)


@dataclass(frozen=True)
class InvoiceSeen:
    token: int
    snapshot: InvoiceSnapshot


@dataclass(frozen=True)
class WatchEnded:
    """The watch stopped for good: final state reached, unknown hash, or a refused request."""

    token: int
    hash_hex: str
    not_found: bool = False
    error: LndError | None = None


@dataclass(frozen=True)
class PaymentFinished:
    token: int
    hash_hex: str
    snapshot: PaymentSnapshot


@dataclass(frozen=True)
class PaymentRefused:
    """LND refused to make or track the payment (bad invoice, bad amount...)."""

    token: int
    hash_hex: str
    error: LndError


@dataclass(frozen=True)
class LinkTrouble:
    error: LndError


@dataclass(frozen=True)
class LinkAlive:
    """Some call just worked: the link is up."""


@dataclass(frozen=True)
class NodeReady:
    token: int
    info: NodeInfo


@dataclass(frozen=True)
class NodeRefused:
    """GetInfo answered with something retrying will not fix (wrong network, macaroon, TLS)."""

    token: int
    error: LndError


@dataclass(frozen=True)
class CallFinished:
    """A unary call made on the `UnaryPool` returned: `result` is its value or an `LndError`.
    `request` and `sender` are what the actor handed in, for it to answer."""

    request: Any
    sender: Any
    result: Any


# ---------------------------------------------------------------- plumbing


class LoopThread:
    """An asyncio event loop in a daemon thread, until `close()`."""

    def __init__(self, name: str = "lnd-unary") -> None:
        self.loop = asyncio.new_event_loop()
        started = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(started,), name=name,
                                        daemon=True)
        self._thread.start()
        started.wait()

    def _run(self, started: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(started.set)
        self.loop.run_forever()

    def spawn(self, coroutine: Coroutine[Any, Any, Any]) -> concurrent.futures.Future[Any]:
        """Start `coroutine` as a task (from any thread); cancelling the future cancels it."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop)

    def run(self, coroutine: Coroutine[Any, Any, Any], timeout: float = 10.0) -> Any:
        """Run `coroutine` on the loop and wait for its result (never from the loop itself)."""
        return self.spawn(coroutine).result(timeout)

    def close(self) -> None:
        """Cancel every task left, stop the loop and join the thread."""
        if self.loop.is_closed():
            return
        try:
            self.run(_cancel_tasks(), timeout=5)
        except (concurrent.futures.TimeoutError, RuntimeError):
            log.warning("the LND loop did not wind down in time")
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)
        if not self._thread.is_alive():
            self.loop.close()


async def _cancel_tasks() -> None:
    current = asyncio.current_task()
    tasks = [task for task in asyncio.all_tasks() if task is not current]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


class LoopPool:
    """Unary calls run on `loop`, reported as `CallFinished` through `put`.

    `call()` returns an awaitable (a coroutine of `AioLndClient`) or, for a call with nothing
    to wait for, its value. At most `limit` calls are in flight at once. Calls with the same
    key never overlap and finish in submission order (a settle and a cancel for one hash must
    not overtake each other): a call waits behind the running one of its key and is started by
    it, right after its result was `put`. `submit` may be called from any thread; the
    bookkeeping happens on the loop, in the order the calls were submitted.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, put: Put, limit: int) -> None:
        self._loop = loop
        self._put = put
        self._limit = limit
        self._slots: asyncio.Semaphore | None = None  # made on the loop
        self._waiting: dict[str, deque[Callable[[], Coroutine[Any, Any, None]]]] = {}
        self._running: set[asyncio.Task[None]] = set()  # the loop keeps only weak references
        self._lock = threading.Lock()
        self._pending = 0

    @property
    def busy(self) -> bool:
        """Some call has not `put` its result yet (the actor must keep polling on bases
        without a pipe watch)."""
        return self._pending > 0

    def submit(self, key: str, request: Any, sender: Any, call: Callable[[], Any]) -> None:
        def job() -> Coroutine[Any, Any, None]:
            return self._run(key, request, sender, call)

        with self._lock:
            self._pending += 1
        try:
            self._loop.call_soon_threadsafe(self._enqueue, key, job)
        except RuntimeError:  # the loop is closed: the actor is exiting, nobody waits
            pass

    def _enqueue(self, key: str, job: Callable[[], Coroutine[Any, Any, None]]) -> None:
        if key in self._waiting:
            self._waiting[key].append(job)
            return
        self._waiting[key] = deque()
        self._start(job)

    def _start(self, job: Callable[[], Coroutine[Any, Any, None]]) -> None:
        task = self._loop.create_task(job())
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _run(self, key: str, request: Any, sender: Any, call: Callable[[], Any]) -> None:
        if self._slots is None:
            self._slots = asyncio.Semaphore(self._limit)
        async with self._slots:
            try:
                result = call()
                if inspect.isawaitable(result):
                    result = await result
            except Exception as err:  # a bug in a call must not lose its answer or its key
                log.exception("unary LND call for %s failed", key)
                result = LndError(ErrorKind.OTHER, f"unexpected error: {err!r}")
        self._put(CallFinished(request, sender, result))
        with self._lock:
            self._pending -= 1
        waiting = self._waiting[key]
        if waiting:
            self._start(waiting.popleft())
        else:
            del self._waiting[key]


class Backoff:
    """Doubling delays between `low` and `high` seconds; `reset()` after a success."""

    def __init__(self, low: float, high: float) -> None:
        self._low = max(low, 0.001)
        self._high = max(high, self._low)
        self._next = self._low

    def next(self) -> float:
        delay = self._next
        self._next = min(self._next * 2, self._high)
        return delay

    def reset(self) -> None:
        self._next = self._low


class Worker:
    """A daemon thread running one loop, stoppable from the actor at any time."""

    def __init__(self, name: str, token: int, loop: Callable[[Worker], None]) -> None:
        self.token = token
        self._stop = threading.Event()
        self._stream: Stream[Any] | None = None
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=loop, args=(self,), name=name, daemon=True)

    def start(self) -> Worker:
        self._thread.start()
        return self

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def wait(self, seconds: float) -> bool:
        """Pause between retries; True when the worker was stopped meanwhile."""
        return self._stop.wait(seconds)

    def follow(self, stream: Stream[Any]) -> bool:
        """Make `stream` the one `stop()` cancels; False if already stopped (stream cancelled)."""
        with self._lock:
            self._stream = stream
            if self._stop.is_set():
                stream.cancel()
                return False
        return True

    def stop(self) -> None:
        with self._lock:
            self._stop.set()
            if self._stream is not None:
                self._stream.cancel()


def _is_link_problem(error: LndError) -> bool:
    """Worth retrying the same call after a pause (the link, or an answer we do not know)."""
    return error.link_down or error.retryable


def _report_trouble(put: Put, error: LndError | None, closed_without_error: str) -> None:
    """Tell the actor the link is down, when it is (not for every odd answer)."""
    if error is None:
        put(LinkTrouble(LndError(ErrorKind.UNREACHABLE, closed_without_error)))
    elif error.link_down:
        put(LinkTrouble(error))


# ---------------------------------------------------------------- loops


def connect_loop(
    worker: Worker, client: LndClient, expected_network: str, put: Put, backoff: Backoff
) -> None:
    """GetInfo until LND answers; report the node or why it will never do."""
    while not worker.stopped:
        info = client.check_node(expected_network)
        if isinstance(info, NodeInfo):
            put(NodeReady(worker.token, info))
            return
        if not info.retryable:
            put(NodeRefused(worker.token, info))
            return
        _report_trouble(put, info, "")
        if worker.wait(backoff.next()):
            return


def watch_invoice_loop(
    worker: Worker, client: LndClient, hash_hex: str, put: Put, backoff: Backoff
) -> None:
    """Subscribe, look the invoice up (reconcile), then follow the stream; repeat on breaks."""
    while not worker.stopped:
        stream = client.subscribe_invoice(hash_hex)
        if isinstance(stream, LndError):
            put(WatchEnded(worker.token, hash_hex, error=stream))
            return
        if not worker.follow(stream):
            return
        current = client.lookup_invoice(hash_hex)
        if isinstance(current, LndError):
            stream.cancel()
            if current.kind is ErrorKind.NOT_FOUND:
                put(WatchEnded(worker.token, hash_hex, not_found=True))
                return
            if not _is_link_problem(current):
                put(WatchEnded(worker.token, hash_hex, error=current))
                return
            _report_trouble(put, current, "")
            if worker.wait(backoff.next()):
                return
            continue
        backoff.reset()
        put(InvoiceSeen(worker.token, current))
        if current.state.is_final:
            stream.cancel()
            put(WatchEnded(worker.token, hash_hex))
            return
        for snapshot in stream:
            put(InvoiceSeen(worker.token, snapshot))
            if snapshot.state.is_final:
                stream.cancel()
                put(WatchEnded(worker.token, hash_hex))
                return
        error = stream.error
        if worker.stopped or (error is not None and error.kind is ErrorKind.CANCELLED):
            return
        if error is not None and error.kind is ErrorKind.NOT_FOUND:
            put(WatchEnded(worker.token, hash_hex, not_found=True))
            return
        if error is not None and not _is_link_problem(error):
            put(WatchEnded(worker.token, hash_hex, error=error))
            return
        _report_trouble(put, error, "invoice stream closed by LND")
        if worker.wait(backoff.next()):
            return


def _follow_payment(
    worker: Worker, stream: Stream[PaymentSnapshot], put: Put
) -> PaymentSnapshot | None:
    """Iterate a payment stream until a final status; None if it ended before one."""
    if not worker.follow(stream):
        return None
    for snapshot in stream:
        if snapshot.status in (PaymentStatus.SUCCEEDED, PaymentStatus.FAILED):
            stream.cancel()
            return snapshot
        put(LinkAlive())
    return None


@dataclass(frozen=True)
class PaymentJob:
    hash_hex: str
    payment_request: str | None  # None: only track, never send
    amount_sat: int = 0
    fee_limit_sat: int = 0
    timeout_seconds: int = 60


def payment_loop(
    worker: Worker, client: LndClient, job: PaymentJob, put: Put, backoff: Backoff
) -> None:
    """Send once, then track by hash until a final status. A send LND already knows
    (in flight or paid) and a send whose stream broke both continue as tracking; a
    send is repeated only when LND says it does not know the hash."""
    must_send = job.payment_request is not None
    while not worker.stopped:
        if must_send:
            stream: Stream[PaymentSnapshot] | LndError = client.send_payment(
                job.payment_request or "", job.amount_sat, job.fee_limit_sat, job.timeout_seconds
            )
        else:
            stream = client.track_payment(job.hash_hex)
        if isinstance(stream, LndError):
            put(PaymentRefused(worker.token, job.hash_hex, stream))
            return
        final = _follow_payment(worker, stream, put)
        if final is not None:
            put(PaymentFinished(worker.token, job.hash_hex, final))
            return
        error = stream.error
        if worker.stopped or (error is not None and error.kind is ErrorKind.CANCELLED):
            return
        if error is not None and error.kind in (
            ErrorKind.PAYMENT_IN_FLIGHT,
            ErrorKind.ALREADY_PAID,
        ):
            must_send = False
            continue
        if error is not None and error.kind is ErrorKind.NOT_FOUND and not must_send:
            if job.payment_request is not None:
                must_send = True
                continue
            unknown = PaymentSnapshot(job.hash_hex, PaymentStatus.UNKNOWN, "", 0, 0, "")
            put(PaymentFinished(worker.token, job.hash_hex, unknown))
            return
        if error is not None and not error.link_down:
            # Unknown answers included: a failed attempt the order logic may retry,
            # rather than a loop here that could resend forever.
            put(PaymentRefused(worker.token, job.hash_hex, error))
            return
        _report_trouble(put, error, "payment stream closed by LND")
        must_send = False  # the send may have reached LND: look before sending again
        if worker.wait(backoff.next()):
            return
