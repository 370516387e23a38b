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

simpleSystemBase (every actor in the caller's thread; `mostro-py run` with that base, the
end-to-end tests, benchmark (2)): per message delivered thespian pops its pending list from the
front (`list.pop(0)`, linear in the backlog), re-checks every wake-up timer, and when a child
exits finds it among its parent's children by `ActorAddress.__eq__` one by one (the
directory has up to `live_order_actor_cap` children). `fast_simple_base` makes the pending
list a deque, skips the timer check until the earliest wake-up is due, and keys children by
address: about a tenth of that base's CPU per request in benchmark (2). Its loop also marks
the thread as batching for `storage.commit_group` and tells it of each delivery, and its
delivery looks up thespian's logger once, not per message. Between messages the running thread
waits on an event instead of sleeping: a message another thread hands over (a private context's
`tell`, an adapter thread's `thread_waker`) wakes it at once.

Every base: thespian creates each actor through `withPossibleInitArgs.create`, which asks
`inspect.signature` for the class's `__init__` parameters every time (3 % of the actors' thread
in benchmark (2), where the directory creates an order actor per new or re-activated order).
`cached_init_parameters` asks once per class.
"""

from __future__ import annotations

import collections
import errno
import logging
import math
import select
import selectors
import threading
import time
import types
from collections.abc import Callable, Iterator
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


class _PendingSends(collections.deque):  # type: ignore[type-arg]
    """simpleSystemBase's pending sends: thespian pops index 0, which a deque does in O(1).

    Adapter threads append to it without thespian's lock (`thread_waker`), so iterating it (a
    status request lists an actor's pending messages) goes over a snapshot: a deque appended to
    while it is iterated raises RuntimeError. Taking the snapshot runs no Python code, so no
    other thread can append half-way through it."""

    def __iter__(self) -> Iterator[Any]:
        return iter(list(collections.deque.__iter__(self)))

    def pop(self, index: int = -1) -> Any:  # type: ignore[override]
        if index == 0:
            return self.popleft()
        if index == -1:
            return super().pop()
        raise IndexError("only the ends of the pending sends can be popped")


class _Children:
    """An actor's children (`ActorRef._yung`) keyed by address string.

    thespian removes an exited child with `del yung[yung.index(address)]`: `index` gives the
    key and `del` drops it, both O(1) instead of comparing addresses one by one."""

    def __init__(self) -> None:
        self._by_key: dict[str, Any] = {}

    def append(self, address: Any) -> None:
        self._by_key[address.actorAddressString] = address

    def index(self, address: Any) -> str:
        key = getattr(address, "actorAddressString", None)
        if key not in self._by_key:
            raise ValueError(f"{address} is not a child")
        return key  # type: ignore[return-value]

    def __delitem__(self, key: str) -> None:
        del self._by_key[key]

    def __iter__(self) -> Iterator[Any]:
        return iter(list(self._by_key.values()))

    def __len__(self) -> int:
        return len(self._by_key)


def fast_simple_base() -> None:
    """simpleSystemBase: O(1) pending-send pops and child removal; wake-up timers checked
    only once the earliest is due (thespian's clock is `time.perf_counter`); a thread that
    hands the system a message wakes the thread running it (`thread_waker`)."""
    from thespian.system import simpleSystemBase as simple
    from thespian.system import timing

    from storage import commit_group

    base = simple.ActorSystemBase
    if getattr(base._realizeWakeups, "_mostro_compat", False):
        return
    original_init = base.__init__
    original_realize = base._realizeWakeups
    original_add = simple.WakeupManager._add_wakeup
    original_ref_init = simple.ActorRef.__init__
    original_private_tell = simple.ActorSystemPrivate.tell

    def earliest_due(system: Any) -> float:
        dues = [timer._time_to_quit for _, timer, _ in system._wakeUps
                if timer._time_to_quit is not None]
        return min(dues, default=math.inf)

    def init(self: Any, *args: Any, **kw: Any) -> None:
        original_init(self, *args, **kw)
        self._pendingSends = _PendingSends(self._pendingSends)
        self._mostro_next_due = earliest_due(self)
        self._mostro_wake = threading.Event()

    def private_tell(self: Any, address: Any, message: Any) -> None:
        original_private_tell(self, address, message)
        wake = getattr(self.mainsys(), "_mostro_wake", None)
        if wake is not None:
            wake.set()

    def add_wakeup(self: Any, from_actor: Any, time_period: Any, payload: Any) -> None:
        original_add(self, from_actor, time_period, payload)
        due = self._wakeUps[-1][1]._time_to_quit
        if due is not None:
            self._mostro_next_due = min(getattr(self, "_mostro_next_due", math.inf), due)

    def realize_wakeups(self: Any) -> None:
        if time.perf_counter() < getattr(self, "_mostro_next_due", -math.inf):
            return
        original_realize(self)
        self._mostro_next_due = earliest_due(self)

    def ref_init(self: Any, *args: Any, **kw: Any) -> None:
        original_ref_init(self, *args, **kw)
        self._yung = _Children()

    thespian_log = logging.getLogger("Thespian")

    def receive(actor: Any, message: Any, sender: Any) -> None:
        """thespian's delivery, without asking the logging module for its logger per message
        (a lock and a dict lookup: 1-2 % of benchmark (2)'s actors' thread)."""
        if thespian_log.isEnabledFor(logging.DEBUG):
            thespian_log.debug('Actor "%s" got message "%s" from "%s"', actor, message, sender)
        actor.receiveMessage(message, sender)

    def run_sends(self: Any, timeout: Any = None, stop_on_available: Any = False) -> None:
        """thespian's loop, but a slice that ends before the next wake-up is slept through:
        thespian returned at once, so a caller listening in a loop (the supervisor's pump,
        the benchmarks') spun, holding the GIL from the relay and LND threads. The decisions
        made while messages keep coming are committed together (`storage.commit_group`)."""
        with commit_group.batching():
            run_sends_batching(self, timeout, stop_on_available)

    def run_sends_batching(self: Any, timeout: Any, stop_on_available: Any) -> None:
        end = None if timeout is None else time.perf_counter() + timing.timePeriodSeconds(timeout)
        sent = 0
        wake = self._mostro_wake
        while end is None or time.perf_counter() < end:
            wake.clear()  # before looking: a message handed over after this sets it again
            while self._pendingSends:
                sent += 1
                if self.procLimit and sent > self.procLimit:
                    raise RuntimeError("Too many sends")
                self._realizeWakeups()
                with self._private_lock:  # held while the actor runs, as thespian does
                    if self._pendingSends:
                        self._runSingleSend(self._pendingSends.popleft())
                commit_group.delivered(more=bool(self._pendingSends))
                if stop_on_available and any(
                        not simple.isInternalActorSystemMessage(response)
                        for response in getattr(stop_on_available.instance, "responses", ())):
                    return
            if end is None:
                return
            # the slice is waited out (up to the next wake-up), unless another thread hands
            # over a message meanwhile: adapters' threads do, so even with nothing scheduled
            # a reply to an `ask` can still come within the slice
            wake.wait(max(0.0, min(self._mostro_next_due, end) - time.perf_counter()))
            self._realizeWakeups()

    realize_wakeups._mostro_compat = True  # type: ignore[attr-defined]
    base._runSends = run_sends  # type: ignore[method-assign]
    simple.actor_base_receive = receive
    base.__init__ = init  # type: ignore[method-assign]
    base._add_wakeup = add_wakeup  # type: ignore[method-assign]
    base._realizeWakeups = realize_wakeups  # type: ignore[method-assign]
    simple.ActorRef.__init__ = ref_init  # type: ignore[method-assign]
    simple.ActorSystemPrivate.tell = private_tell  # type: ignore[method-assign]


def thread_waker(actor: Any) -> Callable[[], None] | None:
    """On simpleSystemBase, a callable any thread may use to hand `actor` a `WatchMessage`
    and wake the thread running the system; None on other bases (they watch a pipe or poll).

    Without it an adapter's threads could only be heard by polling: every hand-over waited
    for the next poll (2 ms while busy, 20 ms otherwise) while the system's thread slept."""
    from thespian.actors import WatchMessage
    from thespian.system import simpleSystemBase as simple

    ref = getattr(actor, "_myRef", None)
    system = getattr(getattr(ref, "_system", None), "_systemBase", None)
    wake = getattr(system, "_mostro_wake", None)
    if not isinstance(ref, simple.ActorRef) or wake is None:
        return None
    address = ref.address

    def post() -> None:
        # not under thespian's lock: the running thread holds it for as long as an actor runs,
        # and an adapter's thread must never wait on an actor. The pending sends are a deque
        # (`_PendingSends`), whose append and pop are atomic.
        system._pendingSends.append(simple.PendingSend(address, WatchMessage([]), address))
        wake.set()

    return post


def cached_init_parameters() -> None:
    """`withPossibleInitArgs.create` with each class's `__init__` parameter names asked once."""
    import inspect

    from thespian.system.utilis import withPossibleInitArgs

    original = withPossibleInitArgs.create
    if getattr(original, "_mostro_compat", False):
        return
    names: dict[type, tuple[str, ...]] = {}

    def create(self: Any, klass: type) -> Any:
        params = names.get(klass)
        if params is None:
            try:
                params = tuple(inspect.signature(klass.__init__).parameters)
            except (ValueError, TypeError, NameError, AttributeError):
                return original(self, klass)  # thespian's own fallbacks
            names[klass] = params
        return klass(**{k: self.kwargs[k] for k in params if k in self.kwargs})

    create._mostro_compat = True  # type: ignore[attr-defined]
    withPossibleInitArgs.create = create  # type: ignore[method-assign]


def install() -> None:
    """Make thespian's TCP transport use the merging selector and the queue transport's
    queues unbounded; idempotent."""
    from thespian.system.transport import TCPTransport

    unbounded_queues()
    inherited_descriptors_only()
    cheap_identify()
    fast_simple_base()
    cached_init_parameters()

    if getattr(TCPTransport.selectors, "DefaultSelector", None) is MergingPollSelector:
        return
    TCPTransport.selectors = types.SimpleNamespace(
        DefaultSelector=MergingPollSelector,
        EVENT_READ=selectors.EVENT_READ,
        EVENT_WRITE=selectors.EVENT_WRITE,
    )
