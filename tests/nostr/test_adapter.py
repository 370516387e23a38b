"""The NostrAdapter actor against real relays, on simpleSystemBase and the multiprocess bases.

The test is the adapter's owner (StartNostr without `owner`): what the adapter reports arrives
through `ActorSystem.listen`.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from thespian.actors import Actor, ActorExitRequest, ActorSystem

from actors.intake_precheck import IntakePrecheck, Precheck
from adapters.bridge import ThreadBridge
from adapters.nostr.actor import (
    DIRECT_MESSAGE_KIND,
    GIFT_WRAP_KIND,
    NostrAdapter,
    inbox_subscription,
)
from adapters.nostr.adapter_messages import (
    Addressed,
    InboundEvent,
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
)
from adapters.nostr.keys import generate_keypair
from adapters.nostr.protocol.content import build_content
from adapters.nostr.protocol.enums import Action, Transport
from adapters.nostr.protocol.payloads import Message
from adapters.nostr.relay_pool import PoolSettings, RelayPool, Subscription
from adapters.nostr.transport import TransportError, unwrap_reply, wrap_client_message
from adapters.nostr.unsigned import UnsignedReply
from config.examples import EXAMPLE_PUBKEY_HEX, example_settings
from tests.conftest import wait_until
from tests.fixtures.processes import check_worker_pids, gone
from tests.fixtures.signers import KeyMarkingSigner

FAST = PoolSettings(publish_timeout=2.0, backoff_initial=0.05, backoff_cap=0.5, connect_timeout=2.0)


class Inbox:
    """Everything the adapter sent to the test, gathered with `listen`."""

    def __init__(self, system: ActorSystem) -> None:
        self.system = system
        self.received: list[Any] = []

    def wait_for(self, match: Callable[[Any], bool], timeout: float = 10.0) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            found = next((m for m in self.received if match(m)), None)
            if found is not None:
                return found
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                pytest.fail(f"no matching message within {timeout} s; got {self.received}")
            message = self.system.listen(timedelta(seconds=min(remaining, 0.5)))
            if isinstance(message, PublishResults):  # outcomes of one wake-up, sent together
                self.received.extend(message.results)
            elif message is not None:
                self.received.append(message)

    def of_type(self, kind: type) -> list[Any]:
        return [m for m in self.received if isinstance(m, kind)]


def result_for(effect_id: Any) -> Callable[[Any], bool]:
    return lambda m: isinstance(m, PublishResult) and m.effect_id == effect_id


def inbound(event_id: str) -> Callable[[Any], bool]:
    return lambda m: isinstance(m, InboundEvent) and m.event["id"] == event_id


@dataclass(frozen=True)
class Handled:
    """What the test's inbound handler sends instead of the raw event."""

    event_id: str
    pid: int
    relay_url: str


def tagging_handler_factory() -> Callable[[InboundEvent], Iterable[Any]]:
    """Module-level, so it pickles by reference to the adapter's process."""

    def handle(event: InboundEvent) -> Iterable[Any]:
        if "drop me" in event.event["content"]:
            return ()
        return (Handled(event.event["id"], os.getpid(), event.relay_url),)

    return handle


@dataclass(frozen=True)
class HandledTogether:
    """What the batch handler sends: the ids of the events it was given in one call."""

    event_ids: tuple[str, ...]


class BatchHandler:
    """An inbound handler with `handle_batch`: the adapter must prefer it."""

    def __call__(self, event: InboundEvent) -> Iterable[Any]:
        return (HandledTogether((event.event["id"],)),)

    def handle_batch(self, events: list[InboundEvent]) -> Iterable[Any]:
        return (HandledTogether(tuple(e.event["id"] for e in events)),)


def batch_handler_factory() -> BatchHandler:
    return BatchHandler()


SEEN_BEFORE_CONTENT = "handled before the restart"


class SeenByContent:
    """A picklable seen-hook factory that treats events it was told about as handled."""

    def __init__(self, handled_ids: tuple[str, ...]) -> None:
        self.handled_ids = handled_ids

    def __call__(self) -> Callable[[str], bool]:
        handled = set(self.handled_ids)
        return lambda event_id: event_id in handled


@pytest.fixture
def asys(simple_system: ActorSystem) -> ActorSystem:
    return simple_system


def start_adapter(
    system: ActorSystem, relays: list[str], node: str, settings: PoolSettings = FAST, **kw: Any
) -> Any:
    address = system.createActor(NostrAdapter)
    start = StartNostr(
        tuple(relays),
        (inbox_subscription(node, DIRECT_MESSAGE_KIND),),
        pool_settings=settings,
        **kw,
    )
    reply = system.ask(address, start, timedelta(seconds=10))
    assert reply == NostrStarted(tuple(relays))
    return address


class EchoActor(Actor):
    def __init__(self) -> None:
        super().__init__()
        self.client = None

    def receiveMessage(self, message, sender):
        if message == "register":
            self.client = sender
            self.send(sender, "registered")
        elif self.client is not None and isinstance(message, Handled):
            self.send(self.client, ("via echo", message))


@dataclass(frozen=True)
class RouteTo:
    """A picklable handler factory that routes every event to another actor."""

    target: Any

    def __call__(self) -> Callable[[InboundEvent], Iterable[Any]]:
        def handle(event: InboundEvent) -> Iterable[Any]:
            return (
                Addressed(self.target, Handled(event.event["id"], os.getpid(), event.relay_url)),
            )

        return handle


@dataclass(frozen=True)
class Prechecked:
    """What `ReportPrecheck`'s handler saw of one event."""

    event_id: str
    pid: int
    verified: bool
    precheck_event_id: str | None  # None: no precheck came with the event
    authentic: bool | None = None  # the precheck's verdict on the outer id and signature


def report_precheck_factory() -> Callable[[InboundEvent], Iterable[Any]]:
    def handle(event: InboundEvent) -> Iterable[Any]:
        precheck = event.precheck
        if isinstance(precheck, Precheck):
            return (Prechecked(event.event["id"], os.getpid(), event.verified, precheck.event_id,
                               precheck.authentic),)
        return (Prechecked(event.event["id"], os.getpid(), event.verified, None),)

    return handle


PRECHECK = IntakePrecheck.from_settings(example_settings(mostro={"transport": "nip44"}))


def test_inbox_subscription_windows():
    node = generate_keypair().public_hex
    wraps = inbox_subscription(node, GIFT_WRAP_KIND)
    assert wraps.filters == ({"kinds": [1059], "#p": [node]},)
    assert wraps.since_ago is not None and wraps.since_ago > 2 * 24 * 3600
    direct = inbox_subscription(node, DIRECT_MESSAGE_KIND)
    assert direct.since_ago is not None and 10 <= direct.since_ago <= 300
    with pytest.raises(ValueError):
        inbox_subscription(node, 4)


def test_publish_and_receive_on_simple_system_base(asys, session_relay, make_event):
    node = generate_keypair().public_hex
    adapter = start_adapter(asys, [session_relay.url], node)
    inbox = Inbox(asys)
    status = inbox.wait_for(lambda m: isinstance(m, RelayStatus))
    assert status == RelayStatus(session_relay.url, True, None)

    event = make_event(kind=14, tags=[["p", node]], content="to the node")
    asys.tell(adapter, PublishEvent(event, effect_id=41))
    result = inbox.wait_for(result_for(41))
    assert result.accepted and result.event_id == event["id"]
    assert result.accepted_by == (session_relay.url,) and result.rejected == ()
    got = inbox.wait_for(inbound(event["id"]))
    assert got.event == event and got.relay_url == session_relay.url
    assert abs(got.received_at - time.time()) < 30

    assert asys.ask(adapter, StopNostr(), timedelta(seconds=10)) == NostrStopped()


def test_rejection_is_reported_with_the_relay_reason(asys, relay, make_event):
    node = generate_keypair().public_hex
    # nostr-relay 1.14 holds its OK for a rejected event back by 2 s (it throttles the client)
    adapter = start_adapter(asys, [relay.url], node, PoolSettings(publish_timeout=8.0))
    inbox = Inbox(asys)
    forged = make_event(kind=14, tags=[["p", node]], content="forged")
    forged["content"] = "changed after signing"
    asys.tell(adapter, PublishEvent(forged, effect_id="bad"))
    result = inbox.wait_for(result_for("bad"))
    assert not result.accepted and result.rejected[0][0] == relay.url
    assert "invalid" in result.rejected[0][1]
    assert not inbox.of_type(InboundEvent)


def test_requests_before_start_are_refused(asys, make_event):
    adapter = asys.createActor(NostrAdapter)
    publish = PublishEvent(make_event(), effect_id=1)
    assert asys.ask(adapter, publish, timedelta(seconds=5)) == NostrNotStarted(publish)
    subscribe = Subscribe(inbox_subscription(generate_keypair().public_hex, DIRECT_MESSAGE_KIND))
    assert asys.ask(adapter, subscribe, timedelta(seconds=5)) == NostrNotStarted(subscribe)


def test_batch_publishes_every_item(asys, session_relay, make_event):
    node = generate_keypair().public_hex
    adapter = start_adapter(asys, [session_relay.url], node)
    inbox = Inbox(asys)
    events = [make_event(kind=14, tags=[["p", node]], content=str(i)) for i in range(3)]
    batch = PublishBatch(tuple(PublishEvent(e, effect_id=i) for i, e in enumerate(events)))
    asys.tell(adapter, batch)
    for i, event in enumerate(events):
        assert inbox.wait_for(result_for(i)).event_id == event["id"]
        inbox.wait_for(inbound(event["id"]))


def test_batch_with_an_incomplete_event_reports_it_and_publishes_the_rest(
    asys, session_relay, make_event
):
    node = generate_keypair().public_hex
    adapter = start_adapter(asys, [session_relay.url], node)
    inbox = Inbox(asys)
    good = make_event(kind=14, tags=[["p", node]], content="good")
    incomplete = {k: v for k, v in make_event(kind=14).items() if k != "id"}
    asys.tell(adapter, PublishBatch((PublishEvent(incomplete, "bad"), PublishEvent(good, "ok"))))
    refused = inbox.wait_for(result_for("bad"))
    assert not refused.accepted and refused.rejected[0][0] == ""
    assert inbox.wait_for(result_for("ok")).accepted


def test_subscription_added_after_start(asys, session_relay, make_event):
    node, later = generate_keypair().public_hex, generate_keypair().public_hex
    adapter = start_adapter(asys, [session_relay.url], node)
    inbox = Inbox(asys)
    asys.tell(adapter, Subscribe(inbox_subscription(later, DIRECT_MESSAGE_KIND, "later")))
    event = make_event(kind=14, tags=[["p", later]])
    asys.tell(adapter, PublishEvent(event, effect_id="x"))
    assert inbox.wait_for(inbound(event["id"])).relay_url == session_relay.url


def test_inbound_handler_runs_before_the_owner_sees_anything(asys, session_relay, make_event):
    node = generate_keypair().public_hex
    adapter = start_adapter(
        asys, [session_relay.url], node, inbound_handler_factory=tagging_handler_factory
    )
    inbox = Inbox(asys)
    dropped = make_event(kind=14, tags=[["p", node]], content="drop me")
    kept = make_event(kind=14, tags=[["p", node]], content="keep me")
    asys.tell(adapter, PublishEvent(dropped, effect_id="d"))
    inbox.wait_for(result_for("d"))
    asys.tell(adapter, PublishEvent(kept, effect_id="k"))
    handled = inbox.wait_for(lambda m: isinstance(m, Handled))
    assert handled == Handled(kept["id"], os.getpid(), session_relay.url)  # one process here
    assert not inbox.of_type(InboundEvent)
    assert [h.event_id for h in inbox.of_type(Handled)] == [kept["id"]]


def test_events_read_together_reach_a_batch_handler_in_one_call(asys, session_relay, make_event):
    """Everything the pool read before the adapter woke goes to `handle_batch` at once (the
    intake checks them in one database transaction)."""
    node = generate_keypair().public_hex
    adapter = start_adapter(
        asys, [session_relay.url], node, inbound_handler_factory=batch_handler_factory
    )
    inbox = Inbox(asys)
    events = [make_event(kind=14, tags=[["p", node]], content=str(i)) for i in range(4)]
    texts = tuple(json.dumps(["EVENT", "mostro-inbox", e]) for e in events)
    asys.tell(adapter, InjectRelayMessages(session_relay.url, texts))
    together = inbox.wait_for(lambda m: isinstance(m, HandledTogether))
    assert together.event_ids == tuple(e["id"] for e in events)
    assert not inbox.of_type(InboundEvent)


def test_seen_hook_from_start_message_suppresses_handled_events(asys, session_relay, make_event):
    node = generate_keypair().public_hex
    handled = make_event(kind=14, tags=[["p", node]], content=SEEN_BEFORE_CONTENT)
    fresh = make_event(kind=14, tags=[["p", node]], content="fresh")
    assert session_relay.publish(handled).accepted  # stored before the adapter starts
    adapter = start_adapter(
        asys, [session_relay.url], node, seen_hook_factory=SeenByContent((handled["id"],))
    )
    inbox = Inbox(asys)
    asys.tell(adapter, PublishEvent(fresh, effect_id="f"))
    inbox.wait_for(inbound(fresh["id"]))
    inbox.wait_for(result_for("f"))
    assert [m.event["id"] for m in inbox.of_type(InboundEvent)] == [fresh["id"]]


def test_inbox_windows_against_a_real_relay(asys, session_relay, make_event):
    """Back-dated gift wraps are within the 1059 window; stale kind-14 events are not fetched."""
    node = generate_keypair().public_hex
    now = int(time.time())
    wrap = make_event(kind=1059, tags=[["p", node]], created_at=now - 2 * 24 * 3600 + 5)
    stale = make_event(kind=14, tags=[["p", node]], created_at=now - 600)
    fresh = make_event(kind=14, tags=[["p", node]], created_at=now)
    for event in (wrap, stale, fresh):
        assert session_relay.publish(event).accepted
    address = asys.createActor(NostrAdapter)
    start = StartNostr(
        (session_relay.url,),
        (
            inbox_subscription(node, GIFT_WRAP_KIND, "wraps"),
            inbox_subscription(node, DIRECT_MESSAGE_KIND, "direct"),
        ),
        pool_settings=FAST,
    )
    assert isinstance(asys.ask(address, start, timedelta(seconds=10)), NostrStarted)
    inbox = Inbox(asys)
    inbox.wait_for(inbound(wrap["id"]))
    inbox.wait_for(inbound(fresh["id"]))
    # a marker published after both REQs: once it arrives, stored history has been served
    marker = make_event(kind=14, tags=[["p", node]], content="marker")
    asys.tell(address, PublishEvent(marker, effect_id="m"))
    inbox.wait_for(inbound(marker["id"]))
    received = {m.event["id"] for m in inbox.of_type(InboundEvent)}
    assert received == {wrap["id"], fresh["id"], marker["id"]}


def test_inbound_handler_can_route_to_another_actor(asys, session_relay, make_event):
    echo = asys.createActor(EchoActor)
    assert asys.ask(echo, "register", timedelta(seconds=5)) == "registered"
    node = generate_keypair().public_hex
    adapter = start_adapter(asys, [session_relay.url], node, inbound_handler_factory=RouteTo(echo))
    inbox = Inbox(asys)
    event = make_event(kind=14, tags=[["p", node]])
    asys.tell(adapter, PublishEvent(event, effect_id="r"))
    routed = inbox.wait_for(lambda m: isinstance(m, tuple) and m[0] == "via echo")
    assert routed[1].event_id == event["id"]
    assert not inbox.of_type(InboundEvent) and not inbox.of_type(Handled)


def test_adapter_reconnects_and_delivers_what_was_queued(asys, relay_factory, make_event):
    steady, flaky = relay_factory(), relay_factory()
    node = generate_keypair().public_hex
    adapter = start_adapter(asys, [steady.url, flaky.url], node)
    inbox = Inbox(asys)
    inbox.wait_for(lambda m: m == RelayStatus(flaky.url, True, None))

    flaky.kill()
    inbox.wait_for(lambda m: isinstance(m, RelayStatus) and m.url == flaky.url and not m.connected)
    event = make_event(kind=14, tags=[["p", node]], content="while flaky is down")
    asys.tell(adapter, PublishEvent(event, effect_id="e"))
    result = inbox.wait_for(result_for("e"))
    assert result.accepted_by == (steady.url,) and result.timed_out == (flaky.url,)
    inbox.wait_for(inbound(event["id"]))

    flaky.start()
    up = RelayStatus(flaky.url, True, None)
    inbox.wait_for(lambda m: inbox.received.count(up) == 2, timeout=15)
    deadline = time.monotonic() + 10
    while not flaky.query([{"ids": [event["id"]]}]):
        assert time.monotonic() < deadline, "queued event never reached the restarted relay"
        asys.listen(timedelta(milliseconds=50))  # lets the adapter run while we wait
    assert len(inbox.of_type(InboundEvent)) == 1


def test_check_worker_results_ride_on_inbound_events_in_order(asys, session_relay, make_event):
    """With a precheck factory every event reaches the handler with its worker result, in the
    order read, and not marked verified (the worker checked the signature, not the pool); after
    the worker is killed they keep coming, without one, for the handler to check."""
    node = generate_keypair().public_hex
    assert check_worker_pids(os.getpid()) == []
    adapter = start_adapter(asys, [session_relay.url], node, precheck_factory=PRECHECK,
                            inbound_handler_factory=report_precheck_factory)
    inbox = Inbox(asys)
    assert check_worker_pids(os.getpid()) == []  # started at the first event, not before

    def inject(count: int) -> list[str]:
        events = [make_event(kind=14, tags=[["p", node]], content=str(uuid.uuid4()))
                  for _ in range(count)]
        texts = tuple(json.dumps(["EVENT", "mostro-inbox", e]) for e in events)
        asys.tell(adapter, InjectRelayMessages(session_relay.url, texts))
        return [e["id"] for e in events]

    first = inject(5) + inject(5)
    inbox.wait_for(lambda m: isinstance(m, Prechecked) and m.event_id == first[-1])
    seen = inbox.of_type(Prechecked)
    assert [m.event_id for m in seen] == first
    assert all(not m.verified and m.precheck_event_id == m.event_id for m in seen)

    (worker,) = check_worker_pids(os.getpid())
    os.kill(worker, signal.SIGKILL)
    wait_until(lambda: gone(worker))
    later = inject(4)
    inbox.wait_for(lambda m: isinstance(m, Prechecked) and m.event_id == later[-1])
    seen = inbox.of_type(Prechecked)
    assert [m.event_id for m in seen] == first + later
    assert all(not m.verified and m.precheck_event_id is None for m in seen[len(first):])
    assert asys.ask(adapter, StopNostr(), timedelta(seconds=10)) == NostrStopped()
    assert check_worker_pids(os.getpid()) == []


def node_request(now: int) -> dict[str, Any]:
    """A genuine nip44 request to PRECHECK's node (it opens in the check worker)."""
    trade, identity = generate_keypair(), generate_keypair()
    message = Message(action=Action.TAKE_SELL, version=2, request_id=1, trade_index=1,
                      id=str(uuid.uuid4()))
    plaintext = build_content(message, Transport.NIP44, trade.secret_hex, identity.secret_hex)
    return wrap_client_message(plaintext, trade.secret_hex, identity.secret_hex,
                               EXAMPLE_PUBKEY_HEX, "nip44", now)


def test_with_a_check_worker_a_forged_copy_never_shadows_the_genuine_event(asys, session_relay):
    """The pool leaves ids and signatures to the check worker: a copy with a forged signature
    read first is handed over and found not authentic, the genuine event after it still gets
    through, and only once it was found authentic are later copies dropped as duplicates."""
    node = generate_keypair().public_hex
    adapter = start_adapter(asys, [session_relay.url], node, precheck_factory=PRECHECK,
                            inbound_handler_factory=report_precheck_factory)
    inbox = Inbox(asys)
    now = int(time.time())
    genuine, marker = node_request(now), node_request(now)
    sig = genuine["sig"]
    forged = {**genuine, "sig": ("0" if sig[0] != "0" else "1") + sig[1:]}

    def inject(*events: dict[str, Any]) -> None:
        texts = tuple(json.dumps(["EVENT", "mostro-inbox", e]) for e in events)
        asys.tell(adapter, InjectRelayMessages(session_relay.url, texts))

    inject(forged, genuine)
    inbox.wait_for(lambda m: len(inbox.of_type(Prechecked)) == 2)
    assert [(m.event_id, m.authentic) for m in inbox.of_type(Prechecked)] == [
        (genuine["id"], False), (genuine["id"], True)]
    inject(genuine, forged, marker)  # both copies of a remembered id are duplicates now
    inbox.wait_for(lambda m: isinstance(m, Prechecked) and m.event_id == marker["id"])
    assert [(m.event_id, m.authentic) for m in inbox.of_type(Prechecked)] == [
        (genuine["id"], False), (genuine["id"], True), (marker["id"], True)]
    assert asys.ask(adapter, StopNostr(), timedelta(seconds=10)) == NostrStopped()


def start_checked_adapter(system: ActorSystem, relay_url: str,
                          make_event: Callable[..., dict[str, Any]]) -> tuple[Any, Prechecked]:
    """An adapter with a check worker (PRECHECK), and what its handler saw of the first event
    it published and read back (which starts the worker)."""
    node = generate_keypair().public_hex
    adapter = start_adapter(system, [relay_url], node, precheck_factory=PRECHECK,
                            inbound_handler_factory=report_precheck_factory)
    inbox = Inbox(system)
    event = make_event(kind=14, tags=[["p", node]])
    system.tell(adapter, PublishEvent(event, effect_id="first"))
    seen = inbox.wait_for(lambda m: isinstance(m, Prechecked))
    assert seen.precheck_event_id == event["id"]
    return adapter, seen


def test_stopping_the_adapter_ends_its_check_worker(asys, session_relay, make_event):
    adapter, _ = start_checked_adapter(asys, session_relay.url, make_event)
    (worker,) = check_worker_pids(os.getpid())
    assert asys.ask(adapter, StopNostr(), timedelta(seconds=10)) == NostrStopped()
    assert gone(worker)


# --- multiprocess bases ------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.multiproc
@pytest.mark.parametrize("base", ["multiprocTCPBase", "multiprocQueueBase"])
def test_adapter_on_multiproc_bases(base, session_relay, make_event, monkeypatch):
    if base == "multiprocTCPBase":
        # actor processes are forked from here: with polling this slow, only the
        # ThespianWatch wake-up can deliver within the test's timeouts
        monkeypatch.setattr(ThreadBridge, "poll_interval", timedelta(seconds=60))
    system = ActorSystem(base, {"Admin Port": free_port()}, transientUnique=True)
    try:
        node = generate_keypair().public_hex
        adapter = start_adapter(
            system, [session_relay.url], node, inbound_handler_factory=tagging_handler_factory
        )
        inbox = Inbox(system)
        event = make_event(kind=14, tags=[["p", node]], content="across processes")
        system.tell(adapter, PublishEvent(event, effect_id=("outbox", 9)))
        result = inbox.wait_for(result_for(("outbox", 9)))
        assert result.accepted_by == (session_relay.url,)
        handled = inbox.wait_for(lambda m: isinstance(m, Handled))
        assert handled.event_id == event["id"] and handled.pid != os.getpid()
        system.tell(adapter, ActorExitRequest())
    finally:
        system.shutdown()


@pytest.mark.multiproc
def test_check_worker_dies_with_an_adapter_killed_by_sigkill(session_relay, make_event):
    system = ActorSystem("multiprocQueueBase", {"Admin Port": free_port()},
                         transientUnique=True)
    try:
        _, seen = start_checked_adapter(system, session_relay.url, make_event)
        assert seen.pid != os.getpid()
        (worker,) = check_worker_pids(seen.pid)
        os.kill(seen.pid, signal.SIGKILL)  # no ActorExitRequest, no atexit: only EOF
        wait_until(lambda: gone(worker))
    finally:
        system.shutdown()


class ReplyToSender:
    """An inbound handler that answers every request its check worker opened with a reply
    description to the request's sender (and one to a key that never wrote)."""

    def __init__(self, stranger: str) -> None:
        self.stranger = stranger

    def __call__(self) -> Callable[[InboundEvent], Iterable[Any]]:
        def handle(event: InboundEvent) -> Iterable[Any]:
            precheck = event.precheck
            if not isinstance(precheck, Precheck) or not precheck.authentic:
                return ()
            now = int(time.time())
            return (PublishEvent(UnsignedReply(precheck.sender, "hello", now, 1, "nip44"),
                                 f"reply-{precheck.event_id}"),
                    PublishEvent(UnsignedReply(self.stranger, "hello", now, 1, "nip44"),
                                 f"stranger-{precheck.event_id}"))

        return handle


def test_a_reply_to_a_checked_sender_reaches_the_sign_worker_with_its_conversation_key(
        asys, session_relay) -> None:
    """The check worker's conversation key with a request's sender rides along with the reply
    to that sender (the sign worker saw it), and the sender opens the reply; a reply to a key
    the node never heard from goes without one and opens as well."""
    settings = example_settings(mostro={"transport": "nip44"})
    stranger = generate_keypair()
    adapter = start_adapter(asys, [session_relay.url], EXAMPLE_PUBKEY_HEX,
                            precheck_factory=PRECHECK,
                            signer_factory=KeyMarkingSigner(settings.nostr.secret_key_hex()),
                            inbound_handler_factory=ReplyToSender(stranger.public_hex))
    trade, identity = generate_keypair(), generate_keypair()
    message = Message(action=Action.TAKE_SELL, version=2, request_id=1, trade_index=1,
                      id=str(uuid.uuid4()))
    request = wrap_client_message(
        build_content(message, Transport.NIP44, trade.secret_hex, identity.secret_hex),
        trade.secret_hex, identity.secret_hex, EXAMPLE_PUBKEY_HEX, "nip44", int(time.time()))
    opened: dict[str, str] = {}

    def read(events: list[tuple[dict[str, Any], str]]) -> None:
        for event, _ in events:
            for party in (trade, stranger):
                reply = unwrap_reply(event, party.secret_hex, "nip44",
                                     expected_sender=EXAMPLE_PUBKEY_HEX)
                if not isinstance(reply, TransportError):
                    opened[party.public_hex] = reply[0]

    reader = RelayPool([session_relay.url], None, lambda _outcome: None, on_events=read,
                       settings=FAST)
    reader.start()
    try:
        reader.subscribe(Subscription("replies", ({"kinds": [14], "#p": [
            trade.public_hex, stranger.public_hex]},), since_ago=60))
        asys.tell(adapter, InjectRelayMessages(
            session_relay.url, (json.dumps(["EVENT", "mostro-inbox", request]),)))
        inbox = Inbox(asys)
        for token in (f"reply-{request['id']}", f"stranger-{request['id']}"):
            assert inbox.wait_for(result_for(token), timeout=20).accepted_by
        wait_until(lambda: len(opened) == 2, timeout=10)
    finally:
        reader.stop()
    assert opened == {trade.public_hex: "hello key=True", stranger.public_hex: "hello key=False"}
    assert asys.ask(adapter, StopNostr(), timedelta(seconds=10)) == NostrStopped()
