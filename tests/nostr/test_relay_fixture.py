"""The real-relay fixture: it starts a relay that takes Mostro's traffic, and stops, kills and
restarts it on the same port with the same database, leaving no process behind."""

from __future__ import annotations

import time

import pytest

from adapters.nostr.keys import generate_keypair
from tests.fixtures.relay import RelayFactory, port_is_open

DAY = 24 * 3600


@pytest.mark.parametrize(
    ("kind", "age", "content_size"),
    [
        (1059, 2 * DAY, 40_000),  # a back-dated gift wrap with a large NIP-44 payload
        (14, 0, 2_000),
        (38383, 0, 0),
        (38385, 0, 0),
        (0, 0, 300),
    ],
)
def test_relay_accepts_what_mostro_publishes(session_relay, make_event, kind, age, content_size):
    event = make_event(
        kind=kind,
        tags=[["p", generate_keypair().public_hex]] if kind in (14, 1059) else [["d", "x"]],
        content="a" * content_size,
        created_at=int(time.time()) - age,
    )
    reply = session_relay.publish(event)
    assert reply.accepted, reply.message
    assert [e["id"] for e in session_relay.query([{"ids": [event["id"]]}])] == [event["id"]]


def test_stop_and_start_keep_port_and_events(relay, make_event):
    event = make_event(kind=1, content="survives a restart")
    assert relay.publish(event).accepted
    url = relay.url
    relay.stop()
    assert not relay.running and not port_is_open(relay.port)
    relay.start()
    assert relay.url == url
    assert [e["id"] for e in relay.query([{"ids": [event["id"]]}])] == [event["id"]]


def test_kill_closes_the_port_and_the_relay_comes_back(relay, make_event):
    event = make_event(kind=1)
    assert relay.publish(event).accepted
    relay.kill()
    assert not port_is_open(relay.port)
    relay.start()
    assert relay.query([{"ids": [event["id"]]}])


def test_factory_gives_separate_relays_and_tears_them_all_down(tmp_path, make_event):
    factory = RelayFactory(tmp_path)
    first, second = factory(), factory()
    try:
        assert first.port != second.port
        event = make_event(kind=1)
        assert first.publish(event).accepted
        assert second.query([{"ids": [event["id"]]}]) == []
    finally:
        factory.close()
    assert not first.running and not second.running
    assert not port_is_open(first.port) and not port_is_open(second.port)
