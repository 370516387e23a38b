"""The NostrAdapter actor against real relays, on simpleSystemBase and the multiprocess bases.

The test is the adapter's owner (StartNostr without `owner`): what the adapter reports arrives
through `ActorSystem.listen`.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from thespian.actors import ActorExitRequest, ActorSystem

from adapters.bridge import ThreadBridge
from adapters.nostr.actor import (
    DIRECT_MESSAGE_KIND,
    GIFT_WRAP_KIND,
    NostrAdapter,
    inbox_subscription,
)
from adapters.nostr.adapter_messages import (
    InboundEvent,
    NostrNotStarted,
    NostrStarted,
    NostrStopped,
    PublishEvent,
    PublishResult,
    RelayStatus,
    StartNostr,
    StopNostr,
)
from adapters.nostr.keys import generate_keypair
from adapters.nostr.relay_pool import PoolSettings

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
            if message is not None:
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


@pytest.fixture
def asys() -> Iterator[ActorSystem]:
    system = ActorSystem("simpleSystemBase", transientUnique=True)
    try:
        yield system
    finally:
        system.shutdown()


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
