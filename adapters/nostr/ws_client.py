"""One client websocket to a relay: websockets' sans-IO protocol on an asyncio transport.

Why not a library's asyncio client (tornado's, before): it hands each message to its reader
through a queue and a future, one loop iteration per message, and that was half the relay pool
thread's time in benchmark (2), where relays answer a burst of publications with a burst of OKs.
Here every message of one read reaches the pool in one call, in order, and the pool's batched
frames (`ws_frames`) go out in one write. websockets does the protocol (the opening handshake,
frame parsing, fragments' reassembly is left to us, control frames, the closing handshake, the
size limit); this module does the I/O, the connect timeout and the keepalive pings.

It must not know about Nostr: it moves text messages.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable

from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import State
from websockets.uri import parse_uri

from adapters.nostr.ws_frames import client_text_frames

log = logging.getLogger(__name__)

OnMessages = Callable[[list[str]], None]
_DATA = (Opcode.TEXT, Opcode.BINARY)


class RelaySocket(asyncio.Protocol):
    """An open (or opening) connection. `closed` resolves, once it is gone, to why it went.

    Keepalive: a ping every `ping_interval` seconds when the relay sent nothing since the last
    one; a relay that stays silent a whole interval after a ping is cut off (a hung relay or a
    dead route the kernel does not report)."""

    def __init__(self, client: ClientProtocol, on_messages: OnMessages, ping_interval: float,
                 close_timeout: float) -> None:
        self._client = client
        self._on_messages = on_messages
        self._ping_interval = ping_interval
        self._close_timeout = close_timeout
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._fragments: list[bytes] = []
        self._last_received = self._loop.time()
        self._ping_sent_at: float | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._cut_off: str | None = None  # why we dropped the connection ourselves
        self.opened: asyncio.Future[None] = self._loop.create_future()
        self.closed: asyncio.Future[str] = self._loop.create_future()

    # --- what the pool calls ------------------------------------------------------------------

    def write(self, frames: bytes) -> bool:
        """Send ready-made client frames (`ws_frames`); False when the connection is not open."""
        transport = self._transport
        if transport is None or transport.is_closing() or self._client.state is not State.OPEN:
            return False
        transport.write(frames)
        return True

    def send_text(self, text: str) -> bool:
        return self.write(client_text_frames((text,)))

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Start the closing handshake; the socket is dropped if the relay does not finish it
        within the close timeout."""
        if self._client.state is State.OPEN:
            self._client.send_close(code, reason)
            self._send_pending()
        self._arm_close_timer()

    def abort(self, why: str | None = None) -> None:
        """Drop the socket at once."""
        if why is not None and self._cut_off is None:
            self._cut_off = why
        if self._transport is not None:
            self._transport.abort()

    # --- asyncio.Protocol ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._client.send_request(self._client.connect())
        self._send_pending()

    def data_received(self, data: bytes) -> None:
        self._last_received = self._loop.time()
        client = self._client
        client.receive_data(data)
        texts: list[str] = []
        for event in client.events_received():
            if isinstance(event, Response):
                self._on_handshake()
            elif isinstance(event, Frame):
                self._on_frame(event, texts)
        self._send_pending()
        if texts:
            self._on_messages(texts)
        if client.close_expected():
            self._arm_close_timer()

    def eof_received(self) -> bool | None:
        self._client.receive_eof()
        self._send_pending()
        return None  # asyncio closes the transport

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
        received, sent = self._client.close_rcvd, self._client.close_sent
        if received is not None:  # the relay's close frame, or its answer to ours
            why = f"connection closed ({received.code})"
        elif sent is not None:  # we failed the connection (an oversized message, a bad frame)
            why = f"connection closed ({sent.code}: {sent.reason})"
        elif exc is not None:
            why = f"{type(exc).__name__}: {exc}"
        else:
            why = "connection closed"
        why = self._cut_off or why
        if not self.opened.done():
            self.opened.set_exception(ConnectionError(why))
            self.opened.exception()  # retrieved: nobody may be waiting any more
        if not self.closed.done():
            self.closed.set_result(why)

    # --- inside -------------------------------------------------------------------------------

    def _on_handshake(self) -> None:
        if self.opened.done():
            return
        # not `state`: frames read with the answer (a close, say) may have moved it on already
        error = self._client.handshake_exc
        if error is None:
            self.opened.set_result(None)
            self._timer = self._loop.call_later(self._ping_interval, self._keepalive)
        else:  # refused (not a 101, or a bad accept key): websockets says why
            self.abort(f"handshake refused: {error}")

    def _on_frame(self, frame: Frame, texts: list[str]) -> None:
        if frame.opcode in _DATA:
            self._fragments = [frame.data]
        elif frame.opcode is Opcode.CONT:
            self._fragments.append(frame.data)
        else:  # ping (websockets queued the pong), pong, close: nothing to hand over
            return
        if not frame.fin:
            return
        data, self._fragments = b"".join(self._fragments), []
        try:
            texts.append(data.decode())
        except UnicodeDecodeError:
            log.debug("relay sent a message that is not UTF-8: %.100r", data)

    def _send_pending(self) -> None:
        transport = self._transport
        if transport is None:
            return
        for chunk in self._client.data_to_send():
            if chunk:
                transport.write(chunk)
            elif transport.can_write_eof():  # websockets' end of stream after a close frame
                transport.write_eof()

    def _arm_close_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._loop.call_later(self._close_timeout, self.abort)

    def _keepalive(self) -> None:
        now = self._loop.time()
        sent = self._ping_sent_at
        if sent is not None and self._last_received < sent:
            self.abort(f"no answer to a ping within {self._ping_interval:g} s")
            return
        if now - self._last_received >= self._ping_interval and self._client.state is State.OPEN:
            self._client.send_ping(b"")
            self._send_pending()
            self._ping_sent_at = now
        else:
            self._ping_sent_at = None
        self._timer = self._loop.call_later(self._ping_interval, self._keepalive)


async def connect(url: str, on_messages: OnMessages, *, timeout: float, max_size: int,
                  ping_interval: float, close_timeout: float) -> RelaySocket:
    """Open a websocket to `url` (ws:// or wss://), handshake included, within `timeout`."""
    uri = parse_uri(url)
    loop = asyncio.get_running_loop()
    client = ClientProtocol(uri, max_size=max_size)
    context = ssl.create_default_context() if uri.secure else None
    socket: RelaySocket | None = None

    def protocol() -> RelaySocket:
        nonlocal socket
        socket = RelaySocket(client, on_messages, ping_interval, close_timeout)
        return socket

    try:
        async with asyncio.timeout(timeout):
            await loop.create_connection(protocol, uri.host, uri.port, ssl=context,
                                         server_hostname=uri.host if context else None)
            assert socket is not None
            await socket.opened
    except BaseException as exc:
        if socket is not None:
            socket.abort()
        if isinstance(exc, TimeoutError):
            raise TimeoutError(f"no websocket within {timeout:g} s") from None
        raise
    assert socket is not None
    return socket
