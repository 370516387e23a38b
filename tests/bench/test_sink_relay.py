"""The benchmarks' null relay (bench/sink_relay.py) speaks enough websocket for any client:
a library client (websockets) gets an `OK` per EVENT, in order, an `EOSE` per REQ, a pong per
ping and a clean close, whatever the frame sizes and fragmentation."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from websockets.sync.client import ClientConnection, connect

from bench.harness import Workbench


@pytest.fixture(scope="module")
def sink_url() -> Iterator[str]:
    with Workbench() as bench:
        yield bench.sink_relay()


@pytest.fixture
def client(sink_url: str) -> Iterator[ClientConnection]:
    with connect(sink_url, open_timeout=10, close_timeout=5, max_size=None) as connection:
        yield connection


def _event(event_id: str, content: str = "") -> str:
    return json.dumps(["EVENT", {"id": event_id, "kind": 1, "content": content}])


def test_every_event_gets_an_ok_with_its_id_in_order(client: ClientConnection) -> None:
    ids = [f"{n:064x}" for n in range(5)]
    for event_id in ids:  # sent back to back: answers to one read share one write
        client.send(_event(event_id))
    answers = [json.loads(client.recv(timeout=10)) for _ in ids]
    assert answers == [["OK", event_id, True, ""] for event_id in ids]


@pytest.mark.parametrize("size", [10, 200, 70_000])  # the three length encodings of RFC 6455
def test_frame_sizes_and_fragments(client: ClientConnection, size: int) -> None:
    client.send(_event("a" * 64, "x" * size))
    assert json.loads(client.recv(timeout=10)) == ["OK", "a" * 64, True, ""]
    text = _event("b" * 64, "y" * size)
    client.send(iter([text[:7], text[7:30], text[30:]]))  # one message in three frames
    assert json.loads(client.recv(timeout=10)) == ["OK", "b" * 64, True, ""]


def test_req_gets_eose_and_anything_else_nothing(client: ClientConnection) -> None:
    client.send("not json")
    client.send(json.dumps(["CLOSE", "sub"]))
    client.send(json.dumps(["REQ", "sub", {"kinds": [1]}]))
    assert json.loads(client.recv(timeout=10)) == ["EOSE", "sub"]


def test_ping_is_answered_and_close_is_clean(sink_url: str) -> None:
    with connect(sink_url, open_timeout=10, close_timeout=5) as connection:
        assert connection.ping(b"hi").wait(timeout=10)
        connection.close()
        assert connection.close_code == 1000
