"""Hand items from background threads to an actor without ever blocking the actor.

Adapters run blocking libraries (gRPC streams, relay websockets) in threads of
their own process. Those threads `put()` results here; the actor `drain()`s them
when it is woken. Waking works on every thespian base:

- where the base supports `ThespianWatch` (multiprocTCPBase), a self-pipe is
  watched, so the actor wakes as soon as a thread writes one byte;
- on simpleSystemBase the first `put` after a drain hands the actor a `WatchMessage` through
  the system (`thespian_compat.thread_waker`, given by `attach`), waking the thread that runs it;
- elsewhere (multiprocQueueBase, or an actor that does not `attach`) the actor polls with a short
  `wakeupAfter`, which `poll_interval` sets: `BUSY_POLL` for `BUSY_SPELL` after a drain
  that found items (a burst keeps coming: 20 ms per round trip left the actors idle between
  batches while requests waited), the slower class default after that.

This module must not know what the items are: it only moves them.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from thespian.actors import ThespianWatch

from actors.thespian_compat import thread_waker

WATCH_CAPABILITY = "Thespian Watch Supported"


class ThreadBridge:
    """A thread-safe queue plus a self-pipe the owning actor can watch."""

    poll_interval = timedelta(milliseconds=20)
    BUSY_POLL = timedelta(milliseconds=2)
    BUSY_SPELL = 0.1  # seconds

    def __init__(self, can_watch: bool) -> None:
        self._items: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._can_watch = can_watch
        self._lock = threading.Lock()
        self._signalled = False
        self._busy_until = 0.0  # monotonic
        self._waker: Callable[[], None] | None = None
        self._attached = False
        self._read_fd, self._write_fd = os.pipe() if can_watch else (-1, -1)
        if can_watch:
            os.set_blocking(self._read_fd, False)
            os.set_blocking(self._write_fd, False)

    @classmethod
    def for_actor(cls, capabilities: dict[str, Any]) -> ThreadBridge:
        """Build a bridge suited to the base the actor runs on."""
        return cls(bool(capabilities.get(WATCH_CAPABILITY, False)))

    def attach(self, actor: Any) -> None:
        """Let `put` wake `actor` where its base allows no pipe watch; call it from inside the
        actor's `receiveMessage` (thespian sets the actor's link to its system after `__init__`)."""
        if not self._attached:
            self._attached = True
            self._waker = None if self._can_watch else thread_waker(actor)

    @property
    def can_watch(self) -> bool:
        return self._can_watch

    @property
    def wakes_on_put(self) -> bool:
        """Whether a `put` wakes the actor by itself: when False the actor must poll."""
        return self._can_watch or self._waker is not None

    def put(self, item: Any) -> None:
        """Queue an item; callable from any thread."""
        self._items.put(item)
        waker = self._waker
        if self._signalled or (not self._can_watch and waker is None):
            # already signalled: `drain` clears the flag before taking the items, so it will
            # take this one (a stale True can only be read before that clear)
            return
        with self._lock:
            if self._signalled:
                return
            self._signalled = True
        if waker is not None:
            waker()
            return
        try:
            os.write(self._write_fd, b"\x01")
        except (BlockingIOError, OSError):
            pass  # the pipe is full or closed: the actor is woken anyway or gone

    def drain(self) -> list[Any]:
        """Take every item queued so far; called only by the owning actor."""
        if self._can_watch:
            # Empty the pipe *before* clearing the flag: the other way round, a `put` between
            # the two would have its byte swallowed here while leaving the flag set, and every
            # later `put` would skip writing: the actor would never be woken again.
            try:
                while os.read(self._read_fd, 4096):
                    pass
            except (BlockingIOError, OSError):
                pass
        if self.wakes_on_put:
            with self._lock:
                self._signalled = False
        items: list[Any] = []
        while True:
            try:
                items.append(self._items.get_nowait())
            except queue.Empty:
                break
        now = time.monotonic()
        if items:
            self._busy_until = now + self.BUSY_SPELL
        self.poll_interval = self.BUSY_POLL if now < self._busy_until else type(self).poll_interval
        return items

    def watch(self) -> ThespianWatch | None:
        """What `receiveMessage` should return to be woken by `put()`; None means poll."""
        return ThespianWatch([self._read_fd]) if self._can_watch else None

    def close(self) -> None:
        self._waker, self._attached = None, True
        if self._can_watch:
            for fd in (self._read_fd, self._write_fd):
                try:
                    os.close(fd)
                except OSError:
                    pass
            self._can_watch = False
