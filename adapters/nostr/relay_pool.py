"""Connections to a set of Nostr relays, run on one background thread.

The pool keeps one websocket per relay (`ws_client`, on a private asyncio loop), re-sends
subscriptions after every reconnect, hands each new event to a callback once (de-duplicated
across relays by event id), publishes to every relay with per-relay `OK` tracking, queues
publications for relays that are down, and reconnects with capped, jittered exponential backoff.

Its public methods are thread-safe and return at once; results come back through callbacks that
run on the pool's thread and must not block (an actor's `ThreadBridge.put` is the intended one).

It must not know about Mostro, transports or encryption: it moves signed events in and out.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from adapters.nostr import ws_client
from adapters.nostr.nostr_event import NostrEvent
from adapters.nostr.ws_frames import client_text_frames

log = logging.getLogger(__name__)


# --- values the pool hands out ---------------------------------------------------------------


@dataclass(frozen=True)
class PublishOutcome:
    """How every relay answered one publication (once all answered or the timeout passed)."""

    event_id: str
    token: Any  # the caller's handle for this publication (e.g. the outbox row id)
    accepted_by: tuple[str, ...]
    rejected: tuple[tuple[str, str], ...]  # (relay url, the relay's reason)
    timed_out: tuple[str, ...]

    @property
    def accepted(self) -> bool:
        """A publication is done once at least one relay stored the event."""
        return bool(self.accepted_by)


@dataclass(frozen=True)
class RelayStatusChange:
    url: str
    connected: bool
    error: str | None = None


@dataclass(frozen=True)
class Subscription:
    """A REQ the pool keeps open on every relay.

    `since_ago` (seconds) makes the pool set each filter's `since` to `now - since_ago` every
    time the REQ is (re)sent, so a reconnect does not replay the relay's whole history.
    """

    sub_id: str
    filters: tuple[Mapping[str, Any], ...]
    since_ago: int | None = None

    def request(self, now: float) -> str:
        filters = []
        for original in self.filters:
            current = dict(original)
            if self.since_ago is not None:
                current["since"] = max(0, int(now) - self.since_ago)
            filters.append(current)
        return json.dumps(["REQ", self.sub_id, *filters], separators=(",", ":"))


@dataclass(frozen=True)
class PoolSettings:
    connect_timeout: float = 5.0
    publish_timeout: float = 10.0  # per publication: relays silent this long count as timed out
    backoff_initial: float = 0.25
    backoff_cap: float = 30.0
    backoff_jitter: float = 0.5  # a delay is drawn from [d * (1 - jitter), d]
    stable_after: float = 10.0  # a connection that lived this long resets the backoff
    ping_interval: float = 20.0  # websocket pings detect dead peers the kernel does not report
    rate_limit_retries: int = 3  # a "rate-limited:" answer is retried after a backoff delay
    max_queued_per_relay: int = 10_000  # publications waiting for a relay that is down
    dedup_capacity: int = 100_000  # event ids remembered in memory
    max_message_size: int = 4 * 1024 * 1024
    close_timeout: float = 1.0  # on stop, how long relays get to answer the close frame


def backoff_delay(attempt: int, settings: PoolSettings, rng: random.Random) -> float:
    """Capped exponential backoff with jitter, so relays that drop together do not
    reconnect in lock-step."""
    ceiling = min(settings.backoff_cap, settings.backoff_initial * (2 ** min(attempt, 30)))
    return ceiling * (1.0 - settings.backoff_jitter * rng.random())




@dataclass(frozen=True)
class Rendered:
    """A signed event already written as its relay message, `["EVENT", event]` (the sign worker
    writes it beside the actors, so the daemon's own process neither encodes nor unpickles the
    event's fields)."""

    event_id: str
    message: str


def event_message(event: Mapping[str, Any]) -> str:
    """The relay message publishing `event` (orjson: 0.5 against 6 µs for the standard library's
    encoder on a 2.5 KB event; the relay reads the event, the id was computed from NIP-01's own
    serialisation)."""
    return orjson.dumps(["EVENT", event if type(event) is dict else dict(event)]).decode()


def rendered(event: Mapping[str, Any]) -> Rendered:
    return Rendered(str(event["id"]), event_message(event))


def as_rendered(items: Iterable[tuple[Mapping[str, Any] | Rendered, Any]]) -> list[tuple[Rendered, Any]]:
    """`(event, token)` pairs with every event `Rendered`; ValueError if one has no id."""
    out: list[tuple[Rendered, Any]] = []
    for event, token in items:
        if not isinstance(event, Rendered):
            if not isinstance(event.get("id"), str):
                raise ValueError("publish needs a complete event with an id")
            event = rendered(event)
        out.append((event, token))
    return out


def verify_event(event: Any) -> bool:
    """True for a well-formed event whose id and signature are correct."""
    parsed = NostrEvent.from_dict(event)
    return isinstance(parsed, NostrEvent) and parsed.verify()


class SeenIds:
    """A bounded memory of event ids, oldest forgotten first."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._ids: OrderedDict[str, None] = OrderedDict()

    def __contains__(self, event_id: str) -> bool:
        return event_id in self._ids

    def add(self, event_id: str) -> None:
        self._ids[event_id] = None
        self._ids.move_to_end(event_id)
        while len(self._ids) > self._capacity:
            self._ids.popitem(last=False)

    def __len__(self) -> int:
        return len(self._ids)


# --- internal state (touched only on the pool thread) ----------------------------------------


@dataclass
class _Publication:
    event_id: str
    tokens: list[Any]
    waiting_for: set[str]
    accepted_by: list[str] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)
    deadline: float = 0.0  # loop time at which the relays still silent count as timed out
    retries: dict[str, int] = field(default_factory=dict)  # relay url -> rate-limit retries


@dataclass
class _RelayState:
    url: str
    ws: ws_client.RelaySocket | None = None
    # events to send as soon as the relay is connected (id -> raw EVENT message)
    queued: OrderedDict[str, str] = field(default_factory=OrderedDict)
    # events sent on the current connection and not answered yet, in send order
    awaiting_ok: OrderedDict[str, str] = field(default_factory=OrderedDict)
    task: asyncio.Task[None] | None = None


OnEvent = Callable[[dict[str, Any], str], None]
OnEvents = Callable[[list[tuple[dict[str, Any], str]]], None]
OnPublished = Callable[[PublishOutcome], None]
OnStatus = Callable[[RelayStatusChange], None]
SeenHook = Callable[[str], bool]


class RelayPool:
    """A set of relay connections with one background thread; see the module docstring.

    Callbacks, and the `seen` hook (asked once per new, valid event id: True means "handled
    before", e.g. found in the seen-events table), run on the pool's thread. With `on_events`
    instead of `on_event`, the new events of one loop iteration arrive together, in the order
    they were read, as `(event, relay url)` pairs (one hand-over per burst instead of one each).

    `verify=None`: the consumer checks ids and signatures (the Nostr adapter's check worker, in
    another process), so the pool hands over every copy it has not been told about and
    de-duplicates only the ids the consumer reports authentic (`remember`). A forged copy can
    then never shadow the genuine event: only a verified id is remembered.
    """

    def __init__(
        self,
        urls: Iterable[str],
        on_event: OnEvent | None,
        on_published: OnPublished,
        on_status: OnStatus | None = None,
        *,
        on_events: OnEvents | None = None,
        seen: SeenHook | None = None,
        verify: Callable[[Any], bool] | None = verify_event,
        settings: PoolSettings | None = None,
    ) -> None:
        self.urls = tuple(dict.fromkeys(urls))
        if not self.urls:
            raise ValueError("a relay pool needs at least one relay url")
        if (on_event is None) == (on_events is None):
            raise ValueError("a relay pool needs exactly one of on_event and on_events")
        if verify is None and seen is not None:
            raise ValueError("a seen hook needs verified events: it cannot run with verify=None")
        self._on_event = on_event
        self._on_events = on_events
        self._pending_events: list[tuple[dict[str, Any], str]] = []  # read, not yet handed over
        self._on_published = on_published
        self._on_status = on_status or (lambda change: None)
        self._seen_hook = seen
        self._verify = verify
        self.settings = settings or PoolSettings()
        self._rng = random.Random()
        self._seen = SeenIds(self.settings.dedup_capacity)
        self._relays = {url: _RelayState(url) for url in self.urls}
        self._subscriptions: dict[str, Subscription] = {}
        self._publications: dict[str, _Publication] = {}  # open ones, oldest first
        self._timeouts: asyncio.TimerHandle | None = None  # at the oldest one's deadline
        self._connected: frozenset[str] = frozenset()  # read by other threads: replaced whole
        self._last_status: dict[str, RelayStatusChange] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopping = False
        # counters for inspection and tests; written on the pool thread only
        self.stats: dict[str, int] = {"delivered": 0, "duplicates": 0, "invalid": 0}

    # --- public, thread-safe ------------------------------------------------------------------

    def start(self, timeout: float = 5.0) -> None:
        """Start the background thread and its connections; returns once the loop runs."""
        if self._thread is not None:
            return
        ready = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(ready,), name="nostr-relay-pool", daemon=True
        )
        self._thread.start()
        if not ready.wait(timeout):
            raise RuntimeError("relay pool thread did not start")

    def stop(self, timeout: float = 3.0) -> None:
        """Close every connection and end the thread (waits at most `timeout`)."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        self._stopping = True  # refuse new work at once; the loop winds down on its own
        try:
            loop.call_soon_threadsafe(self._begin_shutdown)
        except RuntimeError:
            pass  # the loop is already closed
        thread.join(timeout)

    def subscribe(self, subscription: Subscription) -> None:
        """Open (or replace) a subscription on every relay, now and after each reconnect."""
        self._call(self._subscribe, subscription)

    def unsubscribe(self, sub_id: str) -> None:
        self._call(self._unsubscribe, sub_id)

    def publish(self, event: Mapping[str, Any], token: Any = None) -> str:
        """Send a signed event to every relay; the outcome arrives through `on_published`.

        Returns the event id. Relays that are down get the event when they come back, even
        after the outcome (which counts them as timed out) was reported.
        """
        return self.publish_many([(event, token)])[0]

    def publish_many(self, items: Iterable[tuple[Mapping[str, Any] | Rendered, Any]]) -> list[str]:
        """`publish` for several `(event, token)` pairs with one wake-up of the pool's loop
        (one `call_soon_threadsafe` instead of one per event); returns their ids in order. An
        event may come `Rendered` already. Raises ValueError, publishing none of them, if any
        event has no id."""
        entries = [(item.event_id, item.message, token) for item, token in as_rendered(items)]
        if entries:
            self._call(self._publish_all, entries)
        return [event_id for event_id, _, _ in entries]

    def feed(self, url: str, *texts: str) -> None:
        """Handle `texts` as if relay `url` had just sent them, in one iteration of the pool's
        loop (benchmarks and tests only).

        They take the same path as messages read from the socket (parse, subscription check,
        de-duplication, verification, the seen hook, `on_event`), minus the network.
        """
        self._call(self._on_messages, self._relays[url], texts)

    def _on_messages(self, state: _RelayState, texts: Iterable[str]) -> None:
        for text in texts:
            self._on_message(state, text)

    def remember(self, event_ids: Iterable[str]) -> None:
        """With `verify=None`: these ids were verified by the consumer, so later copies are
        duplicates (thread-safe, one wake-up of the pool's loop)."""
        ids = list(event_ids)
        if ids:
            self._call(self._remember, ids)

    def connected_relays(self) -> frozenset[str]:
        return frozenset(self._connected)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _call(self, function: Callable[..., None], *args: Any) -> None:
        if self._loop is None or self._stopping:
            raise RuntimeError("the relay pool is not running")
        self._loop.call_soon_threadsafe(function, *args)

    # --- the loop thread ----------------------------------------------------------------------

    def _run(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        for state in self._relays.values():
            state.task = loop.create_task(self._maintain(state))
        loop.call_soon(ready.set)
        try:
            loop.run_forever()
        finally:
            tasks = [task for task in asyncio.all_tasks(loop) if not task.done()]
            for task in tasks:
                task.cancel()
            if tasks:
                loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            loop.close()

    def _begin_shutdown(self) -> None:
        assert self._loop is not None
        self._stopping = True
        self._loop.create_task(self._shutdown())

    async def _shutdown(self) -> None:
        """Close every websocket cleanly (briefly), then tear down what is left and stop."""
        self._publications.clear()
        sockets = []
        for state in self._relays.values():
            if state.ws is not None:
                sockets.append(state.ws)
                state.ws.close(1000, "closing")
        tasks = [state.task for state in self._relays.values() if state.task is not None]
        # readers return once the relay answers the close frame; sleepers are cancelled
        _, pending = await asyncio.wait(tasks, timeout=self.settings.close_timeout)
        for task in pending:
            task.cancel()
        for socket in sockets:
            socket.abort()  # the relay did not answer in time: drop the socket
        self._flush_events()  # events read before the stop still reach the consumer
        assert self._loop is not None
        self._loop.stop()

    async def _maintain(self, state: _RelayState) -> None:
        """Connect, read until the connection drops, back off, and again, until stopped."""
        attempt = 0
        while not self._stopping:
            error: str | None = None
            connected_at: float | None = None
            try:
                state.ws = await ws_client.connect(
                    state.url,
                    lambda texts, state=state: self._on_messages(state, texts),
                    timeout=self.settings.connect_timeout,
                    max_size=self.settings.max_message_size,
                    ping_interval=self.settings.ping_interval,
                    close_timeout=self.settings.close_timeout,
                )
                connected_at = time.monotonic()
                self._set_connected(state.url, True)
                self._on_connected(state)
                error = await state.ws.closed
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - any failure is a dropped relay
                error = f"{type(exc).__name__}: {exc}"
            finally:
                self._on_disconnected(state)
            if self._stopping:
                return
            self._set_connected(state.url, False, error)
            if connected_at is not None and time.monotonic() - connected_at >= (
                self.settings.stable_after
            ):
                attempt = 0
            delay = backoff_delay(attempt, self.settings, self._rng)
            attempt += 1
            log.info("relay %s down (%s); reconnecting in %.2f s", state.url, error, delay)
            await asyncio.sleep(delay)

    def _set_connected(self, url: str, connected: bool, error: str | None = None) -> None:
        self._connected = (self._connected | {url}) if connected else (self._connected - {url})
        change = RelayStatusChange(url, connected, error)
        if self._last_status.get(url) != change:  # a relay that stays down is reported once
            self._last_status[url] = change
            self._emit(self._on_status, change)

    def _on_connected(self, state: _RelayState) -> None:
        now = time.time()
        for subscription in self._subscriptions.values():
            self._send(state, subscription.request(now))
        self._flush(state)

    def _on_disconnected(self, state: _RelayState) -> None:
        """Unanswered events go back to the front of the queue, to be sent again."""
        if state.ws is not None:
            state.ws.abort()
        state.ws = None
        if state.awaiting_ok:
            requeued = OrderedDict(state.awaiting_ok)
            requeued.update(state.queued)
            state.queued = requeued
            state.awaiting_ok.clear()

    def _send(self, state: _RelayState, raw: str) -> bool:
        return state.ws is not None and state.ws.send_text(raw)

    def _flush(self, state: _RelayState) -> None:
        """Send every queued event, all in one write to the connection (`ws_frames`); on a
        closed connection they stay queued for the next one."""
        if not state.queued or state.ws is None:
            return
        if not state.ws.write(client_text_frames(state.queued.values())):
            return
        state.awaiting_ok.update(state.queued)
        state.queued.clear()

    # --- commands (run on the loop) -----------------------------------------------------------

    def _subscribe(self, subscription: Subscription) -> None:
        self._subscriptions[subscription.sub_id] = subscription
        now = time.time()
        for state in self._relays.values():
            self._send(state, subscription.request(now))

    def _unsubscribe(self, sub_id: str) -> None:
        if self._subscriptions.pop(sub_id, None) is None:
            return
        raw = json.dumps(["CLOSE", sub_id])
        for state in self._relays.values():
            self._send(state, raw)

    def _publish_all(self, entries: list[tuple[str, str, Any]]) -> None:
        """Queue every event for every relay, then send each relay's queue in one write."""
        for event_id, raw, token in entries:
            self._open_publication(event_id, raw, token)
        for state in self._relays.values():
            self._flush(state)

    def _open_publication(self, event_id: str, raw: str, token: Any) -> None:
        existing = self._publications.get(event_id)
        if existing is not None:  # the same event again while in flight: one more answer owed
            existing.tokens.append(token)
            return
        assert self._loop is not None
        publication = _Publication(event_id, [token], set(self.urls),
                                   deadline=self._loop.time() + self.settings.publish_timeout)
        self._publications[event_id] = publication
        if self._timeouts is None:
            self._timeouts = self._loop.call_at(publication.deadline, self._time_out)
        limit = self.settings.max_queued_per_relay
        for state in self._relays.values():
            if event_id in state.awaiting_ok:
                continue
            if len(state.queued) >= limit:
                self._flush(state)  # a connected relay takes the burst so far: nothing dropped
            state.queued[event_id] = raw
            while len(state.queued) > limit:
                dropped, _ = state.queued.popitem(last=False)
                log.warning("relay %s: queue full, dropped event %s", state.url, dropped)

    def _time_out(self) -> None:
        """Report the publications whose deadline passed. They all wait the same time, so the
        open ones are in deadline order (dicts keep insertion order): one timer for all of them,
        at the oldest one's deadline, instead of one per publication (a timer per reply was a
        tenth of this thread's time in benchmark (2))."""
        assert self._loop is not None
        self._timeouts = None
        now = self._loop.time()
        due: list[_Publication] = []
        for publication in self._publications.values():
            if publication.deadline > now:
                self._timeouts = self._loop.call_at(publication.deadline, self._time_out)
                break
            due.append(publication)
        for publication in due:
            del self._publications[publication.event_id]
            self._report(publication, timed_out=tuple(sorted(publication.waiting_for)))

    def _report(self, publication: _Publication, timed_out: tuple[str, ...] = ()) -> None:
        for token in publication.tokens:
            outcome = PublishOutcome(
                publication.event_id,
                token,
                tuple(publication.accepted_by),
                tuple(publication.rejected),
                timed_out,
            )
            self._emit(self._on_published, outcome)

    # --- relay messages -----------------------------------------------------------------------

    def _on_message(self, state: _RelayState, text: str | bytes) -> None:
        try:
            message = orjson.loads(text)  # a third of json's time on an event, a fifth on an OK
        except ValueError:  # orjson.JSONDecodeError; also NaN, lone surrogates, > 64-bit ints
            log.debug("relay %s sent non-JSON: %.200r", state.url, text)
            return
        if not isinstance(message, list) or not message or not isinstance(message[0], str):
            log.debug("relay %s sent a malformed message: %.200r", state.url, text)
            return
        kind = message[0]
        if kind == "EVENT" and len(message) >= 3:
            self._on_relay_event(state, message[1], message[2])
        elif kind == "OK" and len(message) >= 3:
            reason = message[3] if len(message) >= 4 and isinstance(message[3], str) else ""
            self._on_ok(state, message[1], message[2] is True, reason)
        elif kind == "EOSE":
            log.debug("relay %s: end of stored events for %s", state.url, message[1:2])
        elif kind == "NOTICE":
            log.warning("relay %s notice: %.500s", state.url, message[1:2])
        elif kind == "CLOSED":
            sub_id = message[1] if len(message) >= 2 else None
            reason = message[2] if len(message) >= 3 else ""
            log.warning("relay %s closed subscription %s: %s", state.url, sub_id, reason)
            self._emit(
                self._on_status,
                RelayStatusChange(state.url, True, f"subscription {sub_id} closed: {reason}"),
            )
        else:
            log.debug("relay %s: ignored %s", state.url, kind)

    def _on_relay_event(self, state: _RelayState, sub_id: Any, event: Any) -> None:
        if sub_id not in self._subscriptions or not isinstance(event, dict):
            return
        event_id = event.get("id")
        if not isinstance(event_id, str):
            return
        if event_id in self._seen:
            self.stats["duplicates"] += 1
            return
        if self._verify is None:  # the consumer verifies, then tells us (`remember`)
            self.stats["delivered"] += 1
            self._hand_over(event, state.url)
            return
        # Verify before remembering the id: ids do not commit to the signature, so a copy with
        # a forged signature must not shadow the genuine event arriving from another relay.
        if not self._verify(event):
            log.debug("relay %s sent an invalid event %s", state.url, event_id)
            self.stats["invalid"] += 1
            return
        self._seen.add(event_id)
        if self._seen_hook is not None:
            try:
                if self._seen_hook(event_id):
                    self.stats["duplicates"] += 1
                    return
            except Exception:  # noqa: BLE001 - a broken hook must not stop intake
                log.exception("seen-hook failed for %s", event_id)
        self.stats["delivered"] += 1
        self._hand_over(event, state.url)

    def _hand_over(self, event: dict[str, Any], url: str) -> None:
        if self._on_event is not None:
            self._emit(self._on_event, event, url)
            return
        if not self._pending_events:  # handed over once this iteration's callbacks have run
            assert self._loop is not None
            self._loop.call_soon(self._flush_events)
        self._pending_events.append((event, url))

    def _remember(self, event_ids: list[str]) -> None:
        for event_id in event_ids:
            self._seen.add(event_id)

    def _flush_events(self) -> None:
        events, self._pending_events = self._pending_events, []
        if events and self._on_events is not None:
            self._emit(self._on_events, events)

    def _on_ok(self, state: _RelayState, event_id: Any, accepted: bool, reason: str) -> None:
        if not (isinstance(event_id, str) and len(event_id) == 64):
            # Some relays (nostr-relay 1.14 on a rejected event) answer with an empty id;
            # a relay answers in order on one connection, so it is the oldest unanswered one.
            if not state.awaiting_ok:
                return
            event_id = next(iter(state.awaiting_ok))
        raw = state.awaiting_ok.pop(event_id, None)
        if raw is None:
            log.debug("relay %s: OK for an event not awaiting one: %s", state.url, event_id)
            return
        stored = accepted or reason.startswith("duplicate:")
        publication = self._publications.get(event_id)
        if publication is None or state.url not in publication.waiting_for:
            if not stored:
                log.warning("relay %s rejected %s: %s", state.url, event_id, reason)
            return
        if not stored and reason.startswith("rate-limited:"):
            attempt = publication.retries.get(state.url, 0)
            if attempt < self.settings.rate_limit_retries:
                publication.retries[state.url] = attempt + 1
                delay = backoff_delay(attempt, self.settings, self._rng)
                assert self._loop is not None
                self._loop.call_later(delay, self._retry, state, event_id, raw)
                return
        if not stored:
            log.warning("relay %s rejected %s: %s", state.url, event_id, reason)
        publication.waiting_for.discard(state.url)
        if stored:
            publication.accepted_by.append(state.url)
        else:
            publication.rejected.append((state.url, reason))
        if not publication.waiting_for:
            del self._publications[event_id]
            self._report(publication)

    def _retry(self, state: _RelayState, event_id: str, raw: str) -> None:
        """Send a rate-limited event to that relay again, while its publication is open."""
        publication = self._publications.get(event_id)
        if self._stopping or publication is None or state.url not in publication.waiting_for:
            return
        if event_id not in state.awaiting_ok:
            state.queued[event_id] = raw
            self._flush(state)

    def _emit(self, callback: Callable[..., None], *args: Any) -> None:
        try:
            callback(*args)
        except Exception:  # noqa: BLE001 - a failing consumer must not kill the pool thread
            log.exception("relay pool callback %r failed", callback)
