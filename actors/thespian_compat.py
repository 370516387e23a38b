"""A fix for thespian 4.0.1's TCP transport, installed before any actor system starts.

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
"""

from __future__ import annotations

import errno
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


def install() -> None:
    """Make thespian's TCP transport use the merging selector; idempotent."""
    from thespian.system.transport import TCPTransport

    if getattr(TCPTransport.selectors, "DefaultSelector", None) is MergingPollSelector:
        return
    TCPTransport.selectors = types.SimpleNamespace(
        DefaultSelector=MergingPollSelector,
        EVENT_READ=selectors.EVENT_READ,
        EVENT_WRITE=selectors.EVENT_WRITE,
    )
