"""The simulator's one asyncio event loop, in its own thread, and the bridge
that lets a coroutine on it wait for a ledger subscription without a thread
per stream.

Every gRPC server of a Simulator (one per node, plus the control server)
runs on this loop, so hundreds of open streams cost hundreds of suspended
coroutines, not hundreds of threads. The ledger stays the thread-safe source
of truth: it may be called (and push to subscriptions) from any thread.
This module knows nothing about gRPC, invoices or payments.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from .records import Closed, InvoiceRecord, PaymentRecord, Subscription

T = TypeVar("T")


class LoopThread:
    """An event loop running in a daemon thread until `close()`."""

    def __init__(self, name: str = "lnsim-aio"):
        self.loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()
        self._started.wait()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(self._started.set)
        self.loop.run_forever()

    @property
    def thread_id(self) -> int | None:
        return self._thread.ident

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        """Runs `coroutine` on the loop and waits for its result (from another thread only)."""
        if threading.current_thread() is self._thread:
            coroutine.close()
            raise RuntimeError("LoopThread.run called on the loop's own thread: it would deadlock")
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def close(self) -> None:
        """Cancels what is left on the loop, stops it and joins the thread."""
        if self.loop.is_closed():
            return
        self.run(self._cancel_remaining())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()

    async def _cancel_remaining(self) -> None:
        current = asyncio.current_task()
        tasks = [task for task in asyncio.all_tasks() if task is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.loop.shutdown_asyncgens()


class LoopWaker:
    """Wakes one coroutine on `loop` when a subscription gets an item, from any thread.

    Create it on the loop's thread (asyncio.Event belongs to the running loop).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, loop_thread_id: int | None):
        self._loop = loop
        self._loop_thread_id = loop_thread_id
        self.event = asyncio.Event()

    def __call__(self) -> None:
        if threading.get_ident() == self._loop_thread_id:
            self.event.set()  # the common case: the ledger was called by a handler on the loop
            return
        try:
            self._loop.call_soon_threadsafe(self.event.set)
        except RuntimeError:
            pass  # the loop is closed: nobody is waiting any more


async def next_update(
    subscription: Subscription, waker: LoopWaker
) -> InvoiceRecord | PaymentRecord | Closed:
    """The subscription's next item, waiting on the loop (never blocking it) until one comes."""
    while True:
        try:
            return subscription.updates.get_nowait()
        except queue.Empty:
            pass
        waker.event.clear()
        try:  # an item pushed between the first look and clear() must not be slept through
            return subscription.updates.get_nowait()
        except queue.Empty:
            pass
        await waker.event.wait()
