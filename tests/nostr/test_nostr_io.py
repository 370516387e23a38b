"""The Nostr adapter's IO in a process of its own (adapters/nostr/nostr_io.py `HostedIO`), against
a real relay: publications (signed, and described for the sign worker) come back accepted with
the caller's tokens, read events arrive checked, the relay connections are not threads of this
process; when the child dies, its unanswered publications are reported rejected and this process
takes over with the same subscriptions; a stop delivers what was read before it."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from actors.intake_precheck import IntakePrecheck, Precheck
from adapters.nostr.actor import _hosted_or_local
from adapters.nostr.keys import generate_keypair
from adapters.nostr.nostr_io import HostedIO, IOConfig, LocalIO, Received
from adapters.nostr.relay_pool import PoolSettings, PublishOutcome, Subscription, rendered
from adapters.nostr.unsigned import SignerFactory, UnsignedReply
from tests.conftest import wait_until
from tests.fixtures.processes import check_worker_pids, gone, relay_host_pids
from tests.fixtures.ws_server import ThreadedServer

NODE = generate_keypair()
PRECHECK = IntakePrecheck(NODE.secret_hex, "nip44", 0)
INBOX = Subscription("inbox", ({"kinds": [14], "#p": [NODE.public_hex]},), since_ago=60)
FAST = PoolSettings(connect_timeout=2.0, publish_timeout=5.0, backoff_initial=0.05,
                    backoff_cap=0.5)


class Collected:
    """What the IO hands over, from its reader thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.items: list[Any] = []

    def put(self, item: Any) -> None:
        with self._lock:
            self.items.append(item)

    def outcome_for(self, token: Any) -> PublishOutcome | None:
        with self._lock:
            return next((item for item in self.items
                         if isinstance(item, PublishOutcome) and item.token == token), None)

    def received(self) -> list[Received]:
        with self._lock:
            return [r for item in self.items if isinstance(item, list) for r in item]


def _pool_threads() -> int:
    """Relay pool threads in this process (earlier tests may have left some: compare counts)."""
    return sum(1 for thread in threading.enumerate() if thread.name == "nostr-relay-pool")


def _feed_one(io: HostedIO, url: str, make_event) -> str:
    event = make_event(kind=14, tags=[["p", NODE.public_hex]], content=str(uuid.uuid4()))
    io.feed(url, [json.dumps(["EVENT", INBOX.sub_id, event])])
    return event["id"]


def test_publications_and_events_cross_the_child(session_relay, make_event) -> None:
    threads_before = _pool_threads()
    collected = Collected()
    io = HostedIO(IOConfig((session_relay.url,), FAST, PRECHECK,
                           SignerFactory(NODE.secret_hex)), collected.put)
    try:
        _cross_the_child(io, collected, session_relay.url, make_event)
        assert _pool_threads() == threads_before  # the relay connections are the child's
    finally:
        io.stop()


def _cross_the_child(io: HostedIO, collected: Collected, url: str, make_event) -> None:
    io.subscribe(INBOX)
    assert io.pid is not None and relay_host_pids(os.getpid()) == [io.pid]
    signed = make_event(kind=1, content="signed here")
    io.publish([(rendered(signed), "token-signed")])
    reply = UnsignedReply(generate_keypair().public_hex, '[{"order":{}},null]',
                          int(time.time()), 1, "nip44")
    io.sign_and_publish([(reply, {"effect": 7})])
    assert wait_until(lambda: collected.outcome_for("token-signed")).accepted_by == (url,)
    assert wait_until(lambda: collected.outcome_for({"effect": 7})).accepted
    event_id = _feed_one(io, url, make_event)
    (received,) = wait_until(collected.received)
    assert received.event["id"] == event_id and received.relay_url == url
    assert isinstance(received.precheck, Precheck) and received.precheck.event_id == event_id
    assert check_worker_pids(io.pid) != []  # the check worker is the child's child


@pytest.fixture
def silent_relay() -> Iterator[str]:
    """A websocket server that reads everything and answers nothing."""

    def swallow(connection) -> None:
        for _ in connection:
            pass

    server = ThreadedServer(swallow)
    try:
        yield server.url
    finally:
        server.close()


def test_a_dead_child_hands_over_to_this_process(silent_relay, make_event) -> None:
    threads_before = _pool_threads()
    collected = Collected()
    settings = PoolSettings(connect_timeout=2.0, publish_timeout=30.0)
    io = HostedIO(IOConfig((silent_relay,), settings, PRECHECK, SignerFactory(NODE.secret_hex)),
                  collected.put)
    try:
        io.subscribe(INBOX)
        io.publish([(rendered(make_event(kind=1, content="never answered")), 41)])
        child = io.pid
        assert child is not None
        os.kill(child, signal.SIGKILL)
        wait_until(lambda: gone(child))
        outcome = wait_until(lambda: collected.outcome_for(41))
        assert not outcome.accepted and outcome.rejected == (("", "the relay host process exited"),)
        wait_until(lambda: io.pid is None)
        assert _pool_threads() == threads_before + 1  # served from this process now
        event_id = _feed_one(io, silent_relay, make_event)  # the subscription came along
        (received,) = wait_until(collected.received)
        assert received.event["id"] == event_id
        assert isinstance(received.precheck, Precheck)
    finally:
        io.stop()
    assert _pool_threads() == threads_before


def test_stop_delivers_what_was_read_and_ends_the_child(session_relay, make_event) -> None:
    collected = Collected()
    io = HostedIO(IOConfig((session_relay.url,), FAST, PRECHECK), collected.put)
    io.subscribe(INBOX)
    child = io.pid
    ids = [_feed_one(io, session_relay.url, make_event) for _ in range(20)]
    io.stop()  # no waiting before it: the fed events are delivered all the same
    assert [r.event["id"] for r in collected.received()] == ids
    assert gone(child) and relay_host_pids(os.getpid()) == []


def _refuse() -> None:
    raise RuntimeError("cannot be built here")


class Unloadable:
    """Pickles, but cannot be unpickled: the relay host cannot build its IO from it."""

    def __reduce__(self) -> tuple[Any, tuple[()]]:
        return _refuse, ()


def test_a_host_that_cannot_start_leaves_the_io_here(session_relay, make_event) -> None:
    threads_before = _pool_threads()
    collected = Collected()
    config = IOConfig((session_relay.url,), FAST, Unloadable(), SignerFactory(NODE.secret_hex))
    with pytest.raises(RuntimeError, match="cannot be built here"):
        HostedIO(config, collected.put)
    io = _hosted_or_local(config, collected.put)  # what the adapter does
    try:
        assert isinstance(io, LocalIO) and _pool_threads() == threads_before + 1
        io.publish([(rendered(make_event(kind=1, content="from here")), "here")])
        assert wait_until(lambda: collected.outcome_for("here")).accepted
    finally:
        io.stop()
    assert relay_host_pids(os.getpid()) == []
