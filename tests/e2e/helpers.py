"""What an end-to-end test does over and over: wait for a condition, read the order book, trade.

Everything goes through the public surfaces only (the relay, the protocol
client, the simulator's wallets), never the daemon's database or actors.
Waits poll a condition (every few milliseconds, with a timeout) and let a
single-threaded actor system run in between (``pump``); nothing here waits a
fixed time for something to have happened.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from adapters.lnd.sim.wallet import Payment, Wallet
from adapters.nostr.client import MostroClient, Received, TradeKey
from adapters.nostr.protocol.enums import Action, Kind, Status
from adapters.nostr.protocol.payloads import OrderPayload, PaymentRequest, SmallOrder
from tests.conftest import wait_until as shared_wait_until
from tests.e2e.conftest import Stack

T = TypeVar("T")

FEE_FRACTION = 0.006  # the e2e stack's [mostro] fee
ORDER_DAYS = 30  # [expiration] order_days default


def party_fee(amount: int) -> int:
    """One party's half of the Mostro fee (PROTOCOL.md §5)."""
    return round(FEE_FRACTION * amount / 2)


def wait_until(condition: Callable[[], T], *, pump: Callable[[], None], timeout: float = 15.0,
               what: str = "condition", interval: float = 0.02) -> T:
    """tests.conftest.wait_until with the e2e defaults (steps cross processes and a relay)."""
    return shared_wait_until(condition, timeout, what, interval=interval, pump=pump)


def wait_message(client: MostroClient, action: Action, trade: TradeKey, *,
                 pump: Callable[[], None], payload_type: type | None = None,
                 after: int = 0, timeout: float = 20.0) -> Received:
    """The first `action` to `trade` (with a payload of `payload_type`, when given)."""
    position = after
    deadline = time.monotonic() + timeout
    while True:
        remaining = max(deadline - time.monotonic(), 0.05)
        received = client.wait_for(action, trade=trade, pump=pump, after=position,
                                   timeout=remaining)
        if payload_type is None or isinstance(received.message.payload, payload_type):
            return received
        position = inbox_position(client, received) + 1


def inbox_position(client: MostroClient, received: Received) -> int:
    """Where this very message sits in the inbox (by identity: equal duplicates may exist)."""
    return next(i for i, r in enumerate(list(client.inbox)) if r is received)


def count_messages(client: MostroClient, action: Action, trade: TradeKey) -> int:
    return sum(1 for r in list(client.inbox)
               if r.message.action == action and r.trade_pubkey == trade.pair.public_hex)


# ---------------------------------------------------------------- the order book on the relay
def order_events(stack: Stack, order_id: str) -> list[dict[str, Any]]:
    return stack.relay.query([{"kinds": [38383], "#d": [order_id]}])


def latest_order_tags(stack: Stack, order_id: str) -> dict[str, list[str]] | None:
    """The tags of the newest kind-38383 revision of `order_id` (first value list per name)."""
    events = order_events(stack, order_id)
    if not events:
        return None
    newest = max(events, key=lambda e: e["created_at"])
    tags: dict[str, list[str]] = {}
    for tag in newest["tags"]:
        tags.setdefault(tag[0], tag[1:])
    tags["_created_at"] = [str(newest["created_at"])]
    tags["_pubkey"] = [newest["pubkey"]]
    return tags


def wait_published(stack: Stack, order_id: str, status: str, *, timeout: float = 15.0,
                   ) -> dict[str, list[str]]:
    """Wait until the relay's newest revision of the order shows ``s=status``; return its tags."""
    def shown() -> dict[str, list[str]] | None:
        tags = latest_order_tags(stack, order_id)
        return tags if tags is not None and tags.get("s") == [status] else None

    return wait_until(shown, pump=stack.pump, timeout=timeout,
                      what=f"order {order_id[:8]} published as {status}")


def check_order_tags(tags: dict[str, list[str]], stack: Stack, *, order_id: str, kind: Kind,
                     status: str, amount: int, fiat: tuple[int, ...], fiat_code: str = "USD",
                     payment_method: str = "SEPA") -> None:
    """PROTOCOL.md §3.1 for one revision: identity, status, amounts, markers, pending-only tags."""
    assert tags["_pubkey"] == [stack.node_pubkey]
    assert tags["d"] == [order_id]
    assert tags["k"] == [kind.value]
    assert tags["f"] == [fiat_code]
    assert tags["s"] == [status]
    assert tags["amt"] == [str(amount)]
    assert tags["fa"] == [str(v) for v in fiat]
    assert tags["pm"] == payment_method.split(",")
    assert tags["premium"] == ["0"]
    assert tags["network"] == ["regtest"]
    assert tags["layer"] == ["lightning"]
    assert tags["y"][0] == "mostro"
    assert tags["z"] == ["order"]
    created_at = int(tags["_created_at"][0])
    if status == "pending":
        assert "rating" in tags and tags["source"][0].startswith(f"mostro:{order_id}?relays=")
        assert tags["expiration"] == tags["expires_at"]
    else:
        assert "rating" not in tags and "source" not in tags
        # NIP-40 expiration of a non-pending revision: now + [expiration] order_days (30)
        assert abs(int(tags["expiration"][0]) - (created_at + ORDER_DAYS * 86_400)) <= 5


# ---------------------------------------------------------------- order payloads
def fixed_order(kind: Kind, amount: int, fiat_amount: int = 100, *,
                buyer_invoice: str | None = None, expires_at: int | None = None) -> OrderPayload:
    return OrderPayload(SmallOrder(amount=amount, fiat_code="USD", fiat_amount=fiat_amount,
                                   payment_method="SEPA", premium=0, kind=kind,
                                   status=Status.PENDING, buyer_invoice=buyer_invoice,
                                   expires_at=expires_at))


def range_order(kind: Kind, min_fiat: int, max_fiat: int) -> OrderPayload:
    """A market-priced range order (amount 0, fiat_amount 0, both bounds)."""
    return OrderPayload(SmallOrder(amount=0, fiat_code="USD", fiat_amount=0,
                                   payment_method="SEPA", premium=0, kind=kind,
                                   status=Status.PENDING, min_amount=min_fiat,
                                   max_amount=max_fiat))


# ---------------------------------------------------------------- one trade, step by step
@dataclass
class Trade:
    """A maker and a taker on one order, with their trade keys and wallets."""

    stack: Stack
    maker: MostroClient
    taker: MostroClient
    maker_key: TradeKey
    taker_key: TradeKey | None
    order_id: str
    kind: Kind

    @property
    def pump(self) -> Callable[[], None]:
        return self.stack.pump

    @property
    def seller(self) -> tuple[MostroClient, TradeKey]:
        if self.kind == Kind.SELL:
            return self.maker, self.maker_key
        assert self.taker_key is not None
        return self.taker, self.taker_key

    @property
    def buyer(self) -> tuple[MostroClient, TradeKey]:
        if self.kind == Kind.BUY:
            return self.maker, self.maker_key
        assert self.taker_key is not None
        return self.taker, self.taker_key


def make_order(stack: Stack, maker: MostroClient, payload: OrderPayload) -> tuple[TradeKey, str]:
    """Send a new-order from a fresh trade key; return the key and the order id."""
    key = maker.new_trade_key()
    maker.send(key, Action.NEW_ORDER, payload=payload, with_trade_index=True)
    created = maker.wait_for(Action.NEW_ORDER, trade=key, pump=stack.pump).message
    assert created.id is not None and created.payload.order.status == Status.PENDING
    return key, created.id


def open_trade(stack: Stack, kind: Kind, payload: OrderPayload,
               maker_name: str = "maker", taker_name: str = "taker") -> Trade:
    maker, taker = stack.client(maker_name), stack.client(taker_name)
    key, order_id = make_order(stack, maker, payload)
    return Trade(stack, maker, taker, key, None, order_id, kind)


def take(trade: Trade, payload: Any = None) -> TradeKey:
    """The taker takes the order from a fresh trade key."""
    key = trade.taker.new_trade_key()
    action = Action.TAKE_SELL if trade.kind == Kind.SELL else Action.TAKE_BUY
    trade.taker.send(key, action, trade.order_id, payload, with_trade_index=True)
    trade.taker_key = key
    return key


def open_and_take(stack: Stack, kind: Kind, amount: int, maker_name: str, taker_name: str,
                  take_payload: Any = None) -> Trade:
    """A fixed-amount order listed by one new client and taken by another."""
    maker, taker = stack.client(maker_name), stack.client(taker_name)
    key, order_id = make_order(stack, maker, fixed_order(kind, amount))
    trade = Trade(stack, maker, taker, key, None, order_id, kind)
    take(trade, take_payload)
    return trade


def hold_invoice_for_seller(trade: Trade, after: int = 0) -> PaymentRequest:
    """The seller's ``pay-invoice`` carrying the escrow bolt11 (skips the reputation notice)."""
    seller, seller_key = trade.seller
    received = wait_message(seller, Action.PAY_INVOICE, seller_key, pump=trade.pump,
                            payload_type=PaymentRequest, after=after)
    return received.message.payload


def pay_escrow(trade: Trade, wallet: Wallet) -> Payment:
    """Seller pays the hold invoice; wait until the daemon says the trade is active."""
    request = hold_invoice_for_seller(trade)
    escrow = wallet.pay(request.invoice)
    seller, seller_key = trade.seller
    buyer, buyer_key = trade.buyer
    seller.wait_for(Action.BUYER_TOOK_ORDER, trade=seller_key, pump=trade.pump)
    buyer.wait_for(Action.HOLD_INVOICE_PAYMENT_ACCEPTED, trade=buyer_key, pump=trade.pump)
    # the wallet reads its payment stream in its own thread: it may learn a moment later
    assert escrow.wait_for("IN_FLIGHT", "SUCCEEDED", "FAILED") == "IN_FLIGHT"
    return escrow


def fiat_sent_and_release(trade: Trade, fiat_sent_payload: Any = None,
                          release_payload: Any = None) -> None:
    seller, seller_key = trade.seller
    buyer, buyer_key = trade.buyer
    buyer.send(buyer_key, Action.FIAT_SENT, trade.order_id, fiat_sent_payload)
    seller.wait_for(Action.FIAT_SENT_OK, trade=seller_key, pump=trade.pump)
    buyer.wait_for(Action.FIAT_SENT_OK, trade=buyer_key, pump=trade.pump)
    seller.send(seller_key, Action.RELEASE, trade.order_id, release_payload)
    buyer.wait_for(Action.RELEASED, trade=buyer_key, pump=trade.pump)
    seller.wait_for(Action.HOLD_INVOICE_PAYMENT_SETTLED, trade=seller_key, pump=trade.pump)


def send_payout_invoice(trade: Trade, wallet: Wallet, amount: int) -> str:
    buyer, buyer_key = trade.buyer
    invoice = wallet.invoice(amount, "payout")
    buyer.send(buyer_key, Action.ADD_INVOICE, trade.order_id, PaymentRequest(None, invoice, None))
    return invoice
