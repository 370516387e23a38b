"""A null relay for benchmarks: accepts every EVENT with an `OK`, answers every REQ with `EOSE`.

It stores nothing and forwards nothing. Benchmark (2) points the daemon's relay pool at it when it
injects requests straight into the Nostr adapter ("no relay"): replies still leave the daemon over
a websocket and are acknowledged, so the outbox marks them done as it would with a real relay,
but no relay's storage or fan-out cost is paid. Run as `python -m bench.sink_relay --port P`; it
prints one JSON line `{"ready": true, "port": P}` and serves until SIGTERM.

It must not validate, store or forward events: it is a sink, not a relay. It speaks just enough
of RFC 6455 for that (the opening handshake, masked client frames, ping, close) on an asyncio
protocol of its own rather than a websocket library's: it shares the benchmark's two cores with the
daemon it measures, and a library's task and socket write per answer cost it 0.07 ms of CPU per
request in benchmark (2). The answers to one read go out in one write, as a busy relay's would.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import signal
import struct
import sys
from collections.abc import Sequence

import orjson

from adapters.nostr.ws_frames import apply_mask, header

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 section 1.3
_OP_CONTINUATION, _OP_TEXT, _OP_BINARY, _OP_CLOSE, _OP_PING, _OP_PONG = 0, 1, 2, 8, 9, 10


def server_frame(opcode: int, payload: bytes) -> bytes:
    """One final, unmasked frame (servers never mask, section 5.1)."""
    return header(0x80 | opcode, len(payload)) + payload


def answer(text: bytes) -> bytes | None:
    """The sink's answer to one client message, or None for anything it ignores."""
    try:
        message = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(message, list) or len(message) < 2:
        return None
    if message[0] == "EVENT":
        event = message[1]
        event_id = event.get("id", "") if isinstance(event, dict) else ""
        return orjson.dumps(["OK", event_id, True, ""])
    if message[0] == "REQ":
        return orjson.dumps(["EOSE", message[1]])
    return None


class SinkConnection(asyncio.Protocol):
    """One client: the handshake, then every complete frame of each read answered in one write."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.open = False
        self.fragments: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.open and not self._handshake():
            return
        replies = self._frames()
        if replies and self.transport is not None:
            self.transport.write(b"".join(replies))

    def _handshake(self) -> bool:
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return False
        head = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
        del self.buffer[:end + 4]
        fields = {name.strip().lower(): value.strip()
                  for name, _, value in (line.partition(":") for line in head[1:])}
        key = fields.get("sec-websocket-key")
        assert self.transport is not None
        if not key:
            self.transport.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            self.transport.close()
            return False
        accept = base64.b64encode(hashlib.sha1(key.encode() + _GUID).digest())
        self.transport.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                             b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n")
        self.open = True
        return True

    def _frames(self) -> list[bytes]:
        """Answers to every complete frame in the buffer; a partial one waits for more data."""
        buffer, offset, replies = self.buffer, 0, []
        while len(buffer) - offset >= 2:
            first, second = buffer[offset], buffer[offset + 1]
            size, start = second & 0x7F, offset + 2
            if size == 126:
                if len(buffer) - start < 2:
                    break
                (size,) = struct.unpack_from("!H", buffer, start)
                start += 2
            elif size == 127:
                if len(buffer) - start < 8:
                    break
                (size,) = struct.unpack_from("!Q", buffer, start)
                start += 8
            key = b""
            if second & 0x80:
                key, start = bytes(buffer[start:start + 4]), start + 4
            if len(buffer) - start < size:
                break
            payload = bytes(buffer[start:start + size])
            offset = start + size
            if key:
                payload = apply_mask(payload, key)
            reply = self._on_frame(first & 0x80 != 0, first & 0x0F, payload)
            if reply is not None:
                replies.append(reply)
        del buffer[:offset]
        return replies

    def _on_frame(self, final: bool, opcode: int, payload: bytes) -> bytes | None:
        if opcode in (_OP_TEXT, _OP_BINARY, _OP_CONTINUATION):
            self.fragments.append(payload)
            if not final:
                return None
            text, self.fragments = b"".join(self.fragments), []
            reply = answer(text)
            return server_frame(_OP_TEXT, reply) if reply is not None else None
        if opcode == _OP_PING:
            return server_frame(_OP_PONG, payload)
        if opcode == _OP_CLOSE:
            assert self.transport is not None
            self.transport.write(server_frame(_OP_CLOSE, payload[:2]))
            self.transport.close()
        return None


async def _serve(port: int) -> None:
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set_result, None)
    server = await loop.create_server(SinkConnection, "127.0.0.1", port)
    async with server:
        print(json.dumps({"ready": True, "port": port}), flush=True)
        await stop


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sink_relay")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    asyncio.run(_serve(args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
