"""The relay pool's websocket client (adapters/nostr/ws_client.py) against websockets' own
server: messages arrive whole and in order (fragmented ones reassembled), batched frames go out
as sent, a refused handshake, an oversized message, a close from either side and a silent peer
each end the connection with a reason that says which."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from websockets.sync.server import ServerConnection

from adapters.nostr import ws_client
from adapters.nostr.ws_frames import client_text_frames
from tests.fixtures.ws_server import ThreadedServer

TIMEOUT = 10.0
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 section 1.3


@pytest.fixture
def peer() -> Iterator[Callable[..., ThreadedServer]]:
    made: list[ThreadedServer] = []

    def make(handler: Callable[[ServerConnection], None], **options: Any) -> ThreadedServer:
        made.append(ThreadedServer(handler, **options))
        return made[-1]

    yield make
    for server in made:
        server.close()


class Delivered(list[str]):
    """What the socket delivered; `arrived` is set on every delivery (on the loop's thread)."""

    def __init__(self) -> None:
        super().__init__()
        self.arrived = asyncio.Event()

    def extend(self, texts: Any) -> None:
        super().extend(texts)
        self.arrived.set()

    async def count(self, wanted: int) -> None:
        """Return once `wanted` messages arrived; TimeoutError after TIMEOUT."""
        async with asyncio.timeout(TIMEOUT):
            while len(self) < wanted:
                self.arrived.clear()
                await self.arrived.wait()


async def _open(url: str, received: list[str], **overrides: Any) -> ws_client.RelaySocket:
    options = {"timeout": TIMEOUT, "max_size": 1 << 20, "ping_interval": 20.0,
               "close_timeout": 1.0} | overrides
    return await ws_client.connect(url, received.extend, **options)


def test_batched_frames_go_out_and_answers_come_back_in_order(peer) -> None:
    def echo(connection: ServerConnection) -> None:
        for text in connection:
            connection.send(f"echo {text}")

    server = peer(echo)

    async def scenario() -> list[str]:
        received = Delivered()
        relay = await _open(server.url, received)
        texts = [f"m{n}" for n in range(50)]
        assert relay.write(client_text_frames(texts))
        assert relay.send_text("last")
        await received.count(51)
        relay.close()
        assert await asyncio.wait_for(relay.closed, TIMEOUT) == "connection closed (1000)"
        assert not relay.send_text("after close")
        return received

    assert asyncio.run(scenario()) == [f"echo m{n}" for n in range(50)] + ["echo last"]


def test_a_fragmented_message_arrives_whole(peer) -> None:
    def fragments(connection: ServerConnection) -> None:
        connection.send(iter(["[\"EVENT\",", "\"sub\",", "{}]"]))
        connection.send("after")
        connection.recv()  # hold the connection open until the client closes

    server = peer(fragments)

    async def scenario() -> list[str]:
        received = Delivered()
        relay = await _open(server.url, received)
        await received.count(2)
        relay.abort()
        return received

    assert asyncio.run(scenario()) == ['["EVENT","sub",{}]', "after"]


def test_a_refused_handshake_is_an_error_naming_it(peer) -> None:
    server = peer(lambda connection: None,
                  process_request=lambda connection, request: connection.respond(403, "no\n"))

    async def scenario() -> None:
        await _open(server.url, [])

    with pytest.raises(ConnectionError, match="handshake refused"):
        asyncio.run(scenario())


def test_a_message_over_the_size_limit_closes_with_1009(peer) -> None:
    def big(connection: ServerConnection) -> None:
        connection.send("x" * 5000)
        connection.recv()

    server = peer(big)

    async def scenario() -> tuple[str, list[str]]:
        received: list[str] = []
        relay = await _open(server.url, received, max_size=1000)
        return await asyncio.wait_for(relay.closed, TIMEOUT), received

    why, received = asyncio.run(scenario())
    assert why.startswith("connection closed (1009: ") and received == []


def test_a_close_from_the_relay_resolves_closed_with_its_code(peer) -> None:
    server = peer(lambda connection: connection.close(4000, "bye"))

    async def scenario() -> str:
        relay = await _open(server.url, [])
        return await asyncio.wait_for(relay.closed, TIMEOUT)

    assert asyncio.run(scenario()) == "connection closed (4000)"


def _raw_relay(listener: socket.socket, then: bytes, release: threading.Event) -> None:
    """Answer the handshake with `then` in the same write, then never read or answer again."""
    connection, _ = listener.accept()
    with connection:
        request = b""
        while b"\r\n\r\n" not in request:
            request += connection.recv(4096)
        key = next(line.split(b":", 1)[1].strip() for line in request.split(b"\r\n")
                   if line.lower().startswith(b"sec-websocket-key:"))
        accept = base64.b64encode(hashlib.sha1(key + _GUID).digest())
        connection.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                           b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept +
                           b"\r\n\r\n" + then)
        release.wait(TIMEOUT)


def _against_raw_relay(then: bytes, **overrides: Any) -> tuple[str, list[str]]:
    """Connect to a `_raw_relay` sending `then`; why the connection ended, what it delivered."""
    release = threading.Event()
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        url = f"ws://127.0.0.1:{listener.getsockname()[1]}"
        thread = threading.Thread(target=_raw_relay, args=(listener, then, release), daemon=True)
        thread.start()

        async def scenario() -> tuple[str, list[str]]:
            received: list[str] = []
            relay = await _open(url, received, **overrides)
            return await asyncio.wait_for(relay.closed, TIMEOUT), received

        try:
            return asyncio.run(scenario())
        finally:
            release.set()
            thread.join(TIMEOUT)


def test_frames_read_with_the_handshake_answer_are_not_lost() -> None:
    """A relay that sends a message and a close frame right behind its 101 (one read here)."""
    close = bytes((0x88, 2)) + (4000).to_bytes(2, "big")
    why, received = _against_raw_relay(bytes((0x81, 5)) + b"hello" + close)
    assert received == ["hello"] and why == "connection closed (4000)"


def test_a_relay_that_stops_answering_pings_is_cut_off() -> None:
    why, received = _against_raw_relay(bytes((0x81, 5)) + b"hello", ping_interval=0.2)
    assert received == ["hello"] and why == "no answer to a ping within 0.2 s"


def test_connect_gives_up_after_the_timeout() -> None:
    with socket.socket() as listener:  # accepts TCP, never speaks websocket
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        url = f"ws://127.0.0.1:{listener.getsockname()[1]}"

        async def scenario() -> None:
            await ws_client.connect(url, lambda texts: None, timeout=0.2, max_size=1 << 20,
                                    ping_interval=20.0, close_timeout=1.0)

        with pytest.raises(TimeoutError, match="no websocket within 0.2 s"):
            asyncio.run(scenario())
