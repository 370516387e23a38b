"""Fixes for thespian 4.0.1, installed before any actor system starts.

Thespian's TCP transport builds a fresh selector on every loop and registers
each socket it waits on. Under load the same socket can be wanted twice (a
transmit waiting for its ack on a connection that is also an open incoming
socket, or wanted for reading and for writing): `selectors` then raises
`KeyError: ... is already registered`, which thespian does not catch, so the
actor's process dies (seen as "order actor exited unexpectedly" mid-race, and as
the Nostr adapter dying under a burst of requests). Older thespian used
`select.select`, which accepts duplicates; this selector restores that meaning
(a second registration adds its events) and is a cheaper one-shot selector
(`poll`, no epoll descriptor to create and close on every loop).

It must not change anything else: a closed descriptor still fails with EBADF,
which thespian's loop relies on to find and drop a bad descriptor.

multiprocQueueBase: thespian gives every actor a bounded `multiprocessing.Queue`
(10 messages; the admin, which relays every message between top-level actors, 40)
and `put` blocks when it is full. Two actors sending to each other's full queue
then both block (the directory routing requests while the admin relays its
deadlines and order results): after 20 s thespian drops the messages and the
daemon stops answering. `unbounded_queues` makes those queues unbounded, so a
send never blocks an actor (each queue's feeder thread writes to its pipe).
And a new actor process closes the descriptors of its parent's other queues by
number, which is right only when it was forked from that parent: started by a
fork server (the end-to-end tests) the same numbers are its own queues, and it
dies with "Bad file descriptor"; `inherited_descriptors_only` skips that there.

Every base: before each send thespian formats the whole message for a DEBUG line
(`intent.identify()`, i.e. `str(message)`: the full repr of a batch of effects) that its own
logger then drops below its threshold (WARNING unless THESPLOG_THRESHOLD says otherwise):
8-13 % of the directory's and the Nostr adapter's CPU under load; the same again as it is
transmitted and when it is received. `cheap_identify` makes those identities short (address
and message type) while DEBUG is off.
"""

from __future__ import annotations

import errno
import logging
import math
import select
import selectors
import types
from typing import Any

_READABLE = select.POLLIN | select.POLLPRI
_WRITABLE = select.POLLOUT


class MergingPollSelector:
    """The part of the `selectors` API thespian uses, for one `select` call per instance."""

    def __init__(self) -> None:
        self._events: dict[int, int] = {}
        self._keys: dict[int, selectors.SelectorKey] = {}

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        fd = fileobj if isinstance(fileobj, int) else fileobj.fileno()
        if fd < 0:
            raise ValueError(f"invalid file descriptor {fd}")
        merged = self._events.get(fd, 0) | events
        self._events[fd] = merged
        key = selectors.SelectorKey(fileobj, fd, merged, data)
        self._keys[fd] = key
        return key

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        poller = select.poll()
        for fd, events in self._events.items():
            mask = (_READABLE if events & selectors.EVENT_READ else 0) | (
                _WRITABLE if events & selectors.EVENT_WRITE else 0)
            poller.register(fd, mask)
        wait_ms = None if timeout is None else max(0, math.ceil(timeout * 1000))
        ready: list[tuple[selectors.SelectorKey, int]] = []
        for fd, revents in poller.poll(wait_ms):
            if revents & select.POLLNVAL:
                # what epoll says at registration: thespian's loop then looks for the bad one
                raise OSError(errno.EBADF, f"bad file descriptor {fd}")
            key = self._keys[fd]
            happened = 0
            if revents & (_READABLE | select.POLLHUP | select.POLLERR):
                happened |= selectors.EVENT_READ
            if revents & (_WRITABLE | select.POLLHUP | select.POLLERR):
                happened |= selectors.EVENT_WRITE
            happened &= key.events
            if happened:
                ready.append((key, happened))
        return ready

    def close(self) -> None:
        self._events.clear()
        self._keys.clear()


def unbounded_queues() -> None:
    """multiprocQueueBase: every actor's and the admin's input queue without a bound."""
    from thespian.system.transport import MultiprocessQueueTransport

    MultiprocessQueueTransport.MAX_ACTOR_QUEUESIZE = 0  # multiprocessing: 0 means no bound
    MultiprocessQueueTransport.MAX_ADMIN_QUEUESIZE = 0


def inherited_descriptors_only() -> None:
    """multiprocQueueBase: a child closes its parent's queue descriptors only when it
    inherited them by a plain fork (a fork server or spawn hands it just its own)."""
    from thespian.system.transport.MultiprocessQueueTransport import MultiprocessQueueTransport

    original = MultiprocessQueueTransport.childResetFileNumList
    if getattr(original, "_mostro_compat", False):
        return

    def child_reset_file_nums(self: Any) -> list[int]:
        context = getattr(self, "_concontext", None)
        if context is not None and context.get_start_method() != "fork":
            return []
        return list(original(self))

    child_reset_file_nums._mostro_compat = True  # type: ignore[attr-defined]
    MultiprocessQueueTransport.childResetFileNumList = child_reset_file_nums  # type: ignore[method-assign]


def cheap_identify() -> None:
    """Short identities for thespian's messages in flight while DEBUG is off."""
    from thespian.system import utilis
    from thespian.system.transport import ReceiveEnvelope, TransmitIntent

    def intent_name(intent: Any) -> str:
        return f"TransmitIntent({intent.targetAddr}, {type(intent.message).__name__})"

    def envelope_name(envelope: Any) -> str:
        return f"ReceiveEnvelope(from: {envelope.sender}, {type(envelope.message).__name__})"

    for cls, short in ((TransmitIntent, intent_name), (ReceiveEnvelope, envelope_name)):
        full = cls.identify
        if getattr(full, "_mostro_compat", False):
            continue

        def identify(self: Any, full: Any = full, short: Any = short) -> str:
            if utilis._thesplog_control_settings[0] <= logging.DEBUG:
                return full(self)
            return short(self)

        identify._mostro_compat = True  # type: ignore[attr-defined]
        cls.identify = identify  # type: ignore[method-assign]


def install() -> None:
    """Make thespian's TCP transport use the merging selector and the queue transport's
    queues unbounded; idempotent."""
    from thespian.system.transport import TCPTransport

    unbounded_queues()
    inherited_descriptors_only()
    cheap_identify()

    if getattr(TCPTransport.selectors, "DefaultSelector", None) is MergingPollSelector:
        return
    TCPTransport.selectors = types.SimpleNamespace(
        DefaultSelector=MergingPollSelector,
        EVENT_READ=selectors.EVENT_READ,
        EVENT_WRITE=selectors.EVENT_WRITE,
    )
