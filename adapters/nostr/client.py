"""A minimal Mostro *client*: what a maker or taker does on the wire, for tests, devnet and benches.

It speaks only the public protocol — signed content tuples, the configured
transport, a real relay — so an end-to-end test that passes with it would pass
with any conforming client. Keys follow the protocol's split: one identity
key, a fresh trade key per order or take, a strictly increasing trade index.
It never touches the daemon's database or actors.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from adapters.nostr import keys, transport
from adapters.nostr.protocol.codec import ParseError
from adapters.nostr.protocol.content import build_content, parse_content
from adapters.nostr.protocol.enums import Action, Transport, WrapperKey
from adapters.nostr.protocol.payloads import Message, Payload
from adapters.nostr.relay_pool import RelayPool, Subscription


@dataclass(frozen=True)
class Received:
    """One daemon message as a client saw it: to which trade key, what, when."""

    trade_pubkey: str
    message: Message
    created_at: int


@dataclass
class TradeKey:
    index: int
    pair: keys.KeyPair
    order_id: str | None = None


@dataclass
class MostroClient:
    """One person: an identity, their trade keys, and everything the node sent them."""

    name: str
    relays: tuple[str, ...]
    node_pubkey: str
    transport_mode: Transport = Transport.NIP44
    full_privacy: bool = False
    pow_bits: int = 0
    identity: keys.KeyPair = field(default_factory=keys.generate_keypair)
    trade_keys: list[TradeKey] = field(default_factory=list)
    inbox: list[Received] = field(default_factory=list)
    on_receive: Callable[[Received], None] | None = None
    _pool: RelayPool | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _arrived: threading.Condition = field(init=False)

    def __post_init__(self) -> None:
        self._arrived = threading.Condition(self._lock)

    # ------------------------------------------------------------ connection
    def connect(self, timeout: float = 10.0) -> MostroClient:
        self._pool = RelayPool(self.relays, on_event=self._on_event, on_published=lambda outcome: None)
        self._pool.start(timeout)
        return self

    def close(self) -> None:
        if self._pool is not None:
            self._pool.stop()
            self._pool = None

    def _resubscribe(self) -> None:
        if self._pool is None:
            return
        kind = transport.TRANSPORT_KIND[self.transport_mode.value]
        pubkeys = [t.pair.public_hex for t in self.trade_keys]
        filters: dict[str, Any] = {"kinds": [kind], "#p": pubkeys}
        if kind == 14:
            filters["authors"] = [self.node_pubkey]
        lookback = 3 * 24 * 3600 if kind == 1059 else 120
        self._pool.subscribe(Subscription(f"{self.name}-inbox", (filters,), since_ago=lookback))

    def _on_event(self, event: dict[str, Any], relay_url: str) -> None:
        recipients = [tag[1] for tag in event.get("tags", []) if len(tag) > 1 and tag[0] == "p"]
        for trade in list(self.trade_keys):
            if trade.pair.public_hex not in recipients:
                continue
            opened = transport.unwrap_reply(event, trade.pair.secret_hex,
                                            self.transport_mode.value, self.node_pubkey)
            if isinstance(opened, transport.TransportError):
                continue
            plaintext, created_at = opened
            content = parse_content(plaintext, self.transport_mode)
            if isinstance(content, ParseError):
                continue
            received = Received(trade.pair.public_hex, content.message, created_at)
            if content.message.id and trade.order_id is None:
                trade.order_id = content.message.id
            with self._arrived:
                self.inbox.append(received)
                self._arrived.notify_all()
            if self.on_receive is not None:
                self.on_receive(received)
            return

    # ------------------------------------------------------------ keys
    def new_trade_key(self) -> TradeKey:
        """A fresh trade key with the next trade index (identity itself in full privacy)."""
        index = len(self.trade_keys) + 1
        pair = self.identity if self.full_privacy else keys.generate_keypair()
        trade = TradeKey(index, pair)
        self.trade_keys.append(trade)
        self._resubscribe()
        return trade

    def key_for(self, order_id: str) -> TradeKey:
        for trade in reversed(self.trade_keys):
            if trade.order_id == order_id:
                return trade
        raise KeyError(f"{self.name} has no trade key for order {order_id}")

    # ------------------------------------------------------------ sending
    def send(self, trade: TradeKey, action: Action, order_id: str | None = None,
             payload: Payload | None = None, *, request_id: int | None = None,
             with_trade_index: bool = False, wrapper: WrapperKey = WrapperKey.ORDER) -> str:
        """Sign, wrap and publish one message; return the published event id."""
        if order_id is not None and trade.order_id is None:
            trade.order_id = order_id
        version = 1 if self.transport_mode is Transport.GIFT_WRAP else 2
        message = Message(
            action=action, wrapper=wrapper, version=version, request_id=request_id,
            trade_index=None if self.full_privacy or not with_trade_index else trade.index,
            id=order_id, payload=payload,
        )
        identity_secret = None if self.full_privacy else self.identity.secret_hex
        plaintext = build_content(message, self.transport_mode, trade.pair.secret_hex,
                                  identity_secret)
        event = transport.wrap_client_message(
            plaintext, trade.pair.secret_hex, identity_secret, self.node_pubkey,
            self.transport_mode.value, int(time.time()), self.pow_bits,
        )
        assert self._pool is not None, "connect() first"
        return self._pool.publish(event)

    # ------------------------------------------------------------ receiving
    def wait_for(self, action: Action, *, trade: TradeKey | None = None,
                 order_id: str | None = None, after: int = 0, timeout: float = 20.0,
                 pump: Callable[[], None] | None = None) -> Received:
        """The first message with `action` (to `trade`, about `order_id`) at inbox position ≥ after."""
        deadline = time.monotonic() + timeout
        while True:
            with self._arrived:
                for received in self.inbox[after:]:
                    if received.message.action != action:
                        continue
                    if trade is not None and received.trade_pubkey != trade.pair.public_hex:
                        continue
                    if order_id is not None and received.message.id not in (order_id, None):
                        continue
                    return received
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    seen = [(r.message.action.value, (r.message.id or "")[:8]) for r in self.inbox]
                    raise TimeoutError(f"{self.name}: no {action.value} within {timeout} s; got {seen}")
                if pump is None:
                    self._arrived.wait(min(remaining, 0.5))
            if pump is not None:
                pump()

    def actions(self, order_id: str | None = None) -> list[str]:
        """Actions received so far (for one order when given), in arrival order."""
        with self._lock:
            return [r.message.action.value for r in self.inbox
                    if order_id is None or r.message.id in (order_id, None)]

    def stamped(self, message: Message) -> Message:
        return replace(message, version=1 if self.transport_mode is Transport.GIFT_WRAP else 2)
