"""The NostrAdapter actor: the daemon's only door to Nostr relays.

It owns the adapter's IO (`nostr_io`: the relay pool, whose thread does all network I/O, and the
check and sign workers) and turns what the IO reports into messages for its owner: `InboundEvent`
(first copy of each event; after the injectable inbound handler has run in this process),
`PublishResult` (or `PublishResults`: every outcome reported since the last wake-up, in one
message), `RelayStatus`. The IO hands its reports over through a `ThreadBridge`, so
`receiveMessage` never blocks on the network: on multiprocTCPBase the actor wakes on the bridge's
self-pipe (`ThespianWatch`), elsewhere it polls with `wakeupAfter` (on simpleSystemBase that only
happens while the caller is inside `ask`/`tell`/`listen`: `listen(timeout)` sleeps until the next
wake-up and runs it, so a test or a replay driver must keep listening for relay traffic to
arrive).

With `StartNostr.precheck_factory` (the daemon's way), the IO runs in a process of its own
(`nostr_io.HostedIO`) and the events of each pool loop iteration first go through a check worker
(one worker process, started at the first event): the pure checks run there, and each
`InboundEvent` carries its result in `precheck`, in arrival order. The outer id and signature are
then checked there too, not on the pool's thread: the pool hands every copy over and learns which
ids were authentic, so it drops the later copies of those only. A result's `conversation_key`
(the node's NIP-44 key with the sender, computed to open the event) is kept in memory
(`unsigned.ConversationKeys`) and rides along with the replies to that sender to the sign
worker, which then need not compute it again. Without one, the IO runs here (`LocalIO`).

It must not decrypt, parse Mostro messages or touch the database itself: that is the inbound
handler's job (plugged in by `StartNostr.inbound_handler_factory`) and the check worker's.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from thespian.actors import (
    Actor,
    ActorExitRequest,
    ThespianWatch,
    WakeupMessage,
    WatchMessage,
)

from adapters.bridge import ThreadBridge
from adapters.nostr.adapter_messages import (
    Addressed,
    InboundEvent,
    InboundHandler,
    InjectRelayMessages,
    NostrNotStarted,
    NostrStarted,
    NostrStopped,
    PublishBatch,
    PublishEvent,
    PublishResult,
    PublishResults,
    RelayStatus,
    StartNostr,
    StopNostr,
    Subscribe,
    Unsubscribe,
    Unsubscribed,
)
from adapters.nostr.nostr_io import HostedIO, IOConfig, LocalIO
from adapters.nostr.relay_pool import (
    PublishOutcome,
    RelayStatusChange,
    Subscription,
    as_rendered,
)
from adapters.nostr.unsigned import ConversationKeys

log = logging.getLogger(__name__)

GIFT_WRAP_KIND = 1059
DIRECT_MESSAGE_KIND = 14
# NIP-59 wraps are back-dated up to 2 days (PROTOCOL §2.2); an hour more for clock skew.
GIFT_WRAP_LOOKBACK = 2 * 24 * 3600 + 3600
# Kind-14 requests are fresh (intake drops anything older than 10 s); a minute covers skew and a
# quick reconnect without replaying history.
DIRECT_MESSAGE_LOOKBACK = 60
_POLL = "nostr-adapter-poll"
_FLUSH_RESULTS = "nostr-adapter-flush-results"
# Where the adapter wakes on every relay OK (a pipe watch or a waker), outcomes are held this long so one
# `PublishResults` carries a burst of them: they only mark effects done, so a few ms is free.
RESULTS_FLUSH_DELAY = timedelta(milliseconds=10)


def inbox_subscription(
    node_pubkey_hex: str, kind: int, sub_id: str = "mostro-inbox"
) -> Subscription:
    """The subscription for requests addressed to the node in one transport (kind 14 or 1059)."""
    if kind not in (GIFT_WRAP_KIND, DIRECT_MESSAGE_KIND):
        raise ValueError(f"the node listens on kind 14 or 1059, not {kind}")
    lookback = GIFT_WRAP_LOOKBACK if kind == GIFT_WRAP_KIND else DIRECT_MESSAGE_LOOKBACK
    return Subscription(sub_id, ({"kinds": [kind], "#p": [node_pubkey_hex]},), since_ago=lookback)


def forward_inbound(inbound: InboundEvent) -> Iterable[Any]:
    """The default inbound handler: hand the event to the owner as it is."""
    return (inbound,)


def _hosted_or_local(config: IOConfig, put: Any) -> LocalIO | HostedIO:
    """The relay host; if it cannot start, the same IO in this process (logged)."""
    try:
        return HostedIO(config, put)
    except Exception:  # noqa: BLE001 - the relays must run somewhere
        log.exception("the relay host did not start; relays, checks and signing run here")
        return LocalIO(config, put)


class NostrAdapter(Actor):
    """See the module docstring. Every `receiveMessage` returns the bridge's watch (or None),
    because thespian replaces the watched descriptors with each return value."""

    def __init__(self, capabilities: dict[str, Any] | None = None, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self._capabilities = dict(capabilities or {})
        self._bridge: ThreadBridge | None = None
        self._io: LocalIO | HostedIO | None = None
        self._conversation_keys = ConversationKeys()
        self._owner: Any = None
        self._handler: InboundHandler = forward_inbound
        self._polling = False
        self._results: list[PublishResult] = []  # outcomes not yet sent to the owner
        self._flush_armed = False

    def receiveMessage(self, message: Any, sender: Any) -> ThespianWatch | None:
        if isinstance(message, WakeupMessage) and message.payload == _FLUSH_RESULTS:
            self._flush_armed = False
            self._flush_results()
        elif isinstance(message, (WatchMessage, WakeupMessage)):
            self._deliver()
            if isinstance(message, WakeupMessage) and message.payload == _POLL:
                self._polling = False
                self._arm_poll()
        elif isinstance(message, StartNostr):
            self._start(message, sender)
        elif isinstance(message, PublishEvent):
            self._publish(message, sender)
        elif isinstance(message, PublishBatch):
            self._publish_many(message.items, sender)
        elif isinstance(message, Subscribe):
            if self._io is None:
                self.send(sender, NostrNotStarted(message))
            else:
                self._io.subscribe(message.subscription)
        elif isinstance(message, InjectRelayMessages) and self._io is not None:
            # benchmarks: the receive path without a socket
            self._io.feed(message.relay_url, message.messages)
        elif isinstance(message, Unsubscribe):
            if self._io is not None:
                self._io.unsubscribe(message.sub_id)
            self.send(sender, Unsubscribed(message.sub_id))
        elif isinstance(message, StopNostr):
            self._stop()
            self.send(sender, NostrStopped())
        elif isinstance(message, ActorExitRequest):
            self._stop()
        return self._watch()

    # --- handlers -----------------------------------------------------------------------------

    def _start(self, message: StartNostr, sender: Any) -> None:
        if self._io is not None:
            self.send(sender, NostrStarted(self._io.urls))
            return
        self._owner = message.owner if message.owner is not None else sender
        if message.inbound_handler_factory is not None:
            self._handler = message.inbound_handler_factory()
        bridge = ThreadBridge.for_actor(self._capabilities)
        bridge.attach(self)
        config = IOConfig(message.relays, message.pool_settings, message.precheck_factory,
                          message.signer_factory)
        # with a check worker (the daemon's way), relays, checks and signing run in a process of
        # their own (nostr_io): their threads then no longer take the GIL from the actors
        if message.precheck_factory is not None:
            if message.seen_hook_factory is not None:
                raise ValueError("a seen hook needs verified events: not with a precheck factory")
            io: LocalIO | HostedIO = _hosted_or_local(config, bridge.put)
        else:
            seen = message.seen_hook_factory() if message.seen_hook_factory is not None else None
            io = LocalIO(config, bridge.put, seen)
        for subscription in message.subscriptions:
            io.subscribe(subscription)
        self._bridge, self._io = bridge, io
        self._arm_poll()
        self.send(sender, NostrStarted(io.urls))

    def _publish(self, message: PublishEvent, sender: Any) -> None:
        self._publish_many((message,), sender)

    def _publish_many(self, items: Iterable[PublishEvent], sender: Any) -> None:
        """Publish several events with one hand-over to the relays."""
        items = tuple(items)
        if self._io is None:
            for item in items:
                self.send(sender, NostrNotStarted(item))
            return
        signed = [item for item in items if isinstance(item.event, dict)]
        if len(signed) < len(items):
            self._sign_and_publish([item for item in items if not isinstance(item.event, dict)])
        ready = []
        for item in signed:
            try:
                ready.extend(as_rendered([(item.event, item.effect_id)]))
            except ValueError as exc:  # an event without an id: the caller's bug, reported back
                self.send(self._owner,
                          PublishResult(item.effect_id, "", (), (("", str(exc)),), ()))
        if ready:
            self._io.publish(ready)

    def _sign_and_publish(self, items: list[PublishEvent]) -> None:
        """Descriptions (`unsigned.Unsigned`) are signed off this thread, then published."""
        assert self._io is not None
        if not self._io.signs:
            for item in items:  # the starter gave no signer: the sender's bug, reported back
                self.send(self._owner, PublishResult(
                    item.effect_id, "", (), (("", "this adapter has no signer"),), ()))
            return
        self._io.sign_and_publish(
            self._conversation_keys.attach([(item.event, item.effect_id) for item in items]))

    def _stop(self) -> None:
        io, bridge = self._io, self._bridge
        if io is None or bridge is None:
            return
        io.stop()  # what was handed over is signed and published; checked events come back
        self._deliver()
        self._flush_results()
        bridge.close()
        self._io = self._bridge = None

    # --- plumbing -----------------------------------------------------------------------------

    def _deliver(self) -> None:
        """Forward everything the pool thread reported since the last wake-up: the events read
        to the inbound handler together, the publish outcomes to the owner in one message."""
        if self._bridge is None:
            return
        received: list[InboundEvent] = []
        for item in self._bridge.drain():
            if isinstance(item, list):  # events of one pool loop iteration
                assert self._io is not None
                verified = self._io.verifies  # else the pool left that to the worker
                received.extend(
                    InboundEvent(r.event, r.relay_url, r.received_at, verified, r.precheck)
                    for r in item)
                self._conversation_keys.remember(
                    (r.precheck.sender, r.precheck.conversation_key) for r in item
                    if getattr(r.precheck, "conversation_key", None) is not None)
            elif isinstance(item, PublishOutcome):
                self._results.append(PublishResult(
                    item.token, item.event_id, item.accepted_by, item.rejected, item.timed_out))
            elif isinstance(item, RelayStatusChange):
                self.send(self._owner, RelayStatus(item.url, item.connected, item.error))
        if received:
            self._inbound(received)
        if not self._results:
            return
        if self._bridge.wakes_on_put:
            # woken per OK: gather a burst of them before telling the owner
            if not self._flush_armed:
                self._flush_armed = True
                self.wakeupAfter(RESULTS_FLUSH_DELAY, payload=_FLUSH_RESULTS)
        else:
            self._flush_results()  # polling already gathers what arrived in one interval

    def _flush_results(self) -> None:
        results, self._results = self._results, []
        if len(results) == 1:
            self.send(self._owner, results[0])
        elif results:
            self.send(self._owner, PublishResults(tuple(results)))

    def _inbound(self, received: list[InboundEvent]) -> None:
        handle_batch = getattr(self._handler, "handle_batch", None)
        outgoing: list[Any] = []
        if handle_batch is not None:
            try:
                outgoing = list(handle_batch(received))
            except Exception:  # noqa: BLE001 - a bad batch must not take the adapter down
                log.exception("inbound handler failed on a batch of %d events", len(received))
                return
        else:
            for inbound in received:
                try:
                    outgoing.extend(self._handler(inbound))
                except Exception:  # noqa: BLE001 - one bad event must not take the adapter down
                    log.exception("inbound handler failed on event %s", inbound.event.get("id"))
        replies: list[PublishEvent] = []
        for message in outgoing:
            if isinstance(message, Addressed):
                self.send(message.to, message.message)
            elif isinstance(message, PublishEvent):
                replies.append(message)
            else:
                self.send(self._owner, message)
        if replies:
            self._publish_many(replies, self._owner)

    def _arm_poll(self) -> None:
        if self._bridge is not None and not self._bridge.wakes_on_put and not self._polling:
            self._polling = True
            self.wakeupAfter(self._bridge.poll_interval, payload=_POLL)

    def _watch(self) -> ThespianWatch | None:
        return self._bridge.watch() if self._bridge is not None else None
