"""One trade driven step by step from outside the daemon, so a fault can be put between steps.

A ``SellTrade`` is a sell order listed by a seller and taken by a buyer whose
take carries the payout invoice (PROTOCOL.md §5.1 step 4b): take → escrow paid
(held) → fiat-sent → release (settle + payout) → success. Each step waits for
the daemon's answer the parties would wait for. ``MessageLedger`` checks, at
the end, that every party got every message of the uninterrupted run, and that
any duplicate is an identical re-send (same action, same payload), never one
that changes meaning.

This module only talks the public protocol and the wallets' LND API; it never
reaches into the daemon.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adapters.lnd.sim.payreq import DecodedPayReq, decode_payreq
from adapters.lnd.sim.wallet import Payment, Wallet
from adapters.nostr.client import MostroClient, Received, TradeKey
from adapters.nostr.protocol.enums import Action, Kind, Status
from adapters.nostr.protocol.payloads import OrderPayload, PaymentRequest, SmallOrder

from .conftest import STEP_TIMEOUT, FaultStack, wait_until

DATA = Path(__file__).resolve().parent / "data"
AMOUNT = 50_000
FEE_FRACTION = 0.006


def party_fee(amount: int) -> int:
    return round(FEE_FRACTION * amount / 2)


def payment_hash_of(bolt11: str) -> str:
    decoded = decode_payreq(bolt11)
    assert isinstance(decoded, DecodedPayReq), decoded
    return decoded.payment_hash.hex()


def load_data(name: str) -> Any:
    return json.loads((DATA / name).read_text())


def sell_order(amount: int = AMOUNT, fiat_amount: int = 100) -> OrderPayload:
    return OrderPayload(SmallOrder(amount=amount, fiat_code="USD", fiat_amount=fiat_amount,
                                   payment_method="SEPA", premium=0, kind=Kind.SELL,
                                   status=Status.PENDING))


def wait_payment_request(client: MostroClient, action: Action, trade: TradeKey,
                         timeout: float = STEP_TIMEOUT) -> PaymentRequest:
    """The first `action` to `trade` that carries a bolt11 (skips notices without one)."""
    after = 0
    while True:
        received = client.wait_for(action, trade=trade, after=after, timeout=timeout)
        if isinstance(received.message.payload, PaymentRequest):
            return received.message.payload
        after = client.inbox.index(received) + 1


def list_order(maker: MostroClient, payload: OrderPayload) -> tuple[TradeKey, str]:
    key = maker.new_trade_key()
    maker.send(key, Action.NEW_ORDER, payload=payload, with_trade_index=True)
    created = maker.wait_for(Action.NEW_ORDER, trade=key, timeout=STEP_TIMEOUT).message
    assert created.id is not None
    return key, created.id


@dataclass
class SellTrade:
    """Seller (maker, wallet 0) and buyer (taker, wallet 1) on one fixed-amount sell order."""

    stack: FaultStack
    seller: MostroClient
    buyer: MostroClient
    seller_wallet: Wallet
    buyer_wallet: Wallet
    seller_key: TradeKey
    order_id: str
    buyer_key: TradeKey | None = None
    payout_invoice: str = ""
    escrow_request: PaymentRequest | None = None
    escrow: Payment | None = None

    @classmethod
    def listed(cls, stack: FaultStack) -> SellTrade:
        seller, buyer = stack.client("seller"), stack.client("buyer")
        key, order_id = list_order(seller, sell_order())
        return cls(stack, seller, buyer, stack.wallet(0), stack.wallet(1), key, order_id)

    # ------------------------------------------------------------ steps
    def take(self) -> None:
        """take-sell with the payout invoice; the seller is asked to pay the escrow."""
        self.payout_invoice = self.buyer_wallet.invoice(AMOUNT - party_fee(AMOUNT), "payout")
        self.buyer_key = self.buyer.new_trade_key()
        self.buyer.send(self.buyer_key, Action.TAKE_SELL, self.order_id,
                        PaymentRequest(None, self.payout_invoice, None), with_trade_index=True)
        self.escrow_request = wait_payment_request(self.seller, Action.PAY_INVOICE,
                                                   self.seller_key)

    def pay_escrow(self) -> Payment:
        """The seller's wallet pays the hold invoice (the HTLC is then held by the node)."""
        assert self.escrow_request is not None
        self.escrow = self.seller_wallet.pay(self.escrow_request.invoice)
        return self.escrow

    def wait_active(self) -> None:
        assert self.buyer_key is not None and self.escrow is not None
        self.seller.wait_for(Action.BUYER_TOOK_ORDER, trade=self.seller_key, timeout=STEP_TIMEOUT)
        self.buyer.wait_for(Action.HOLD_INVOICE_PAYMENT_ACCEPTED, trade=self.buyer_key,
                            timeout=STEP_TIMEOUT)
        # the simulator's ledger, not the wallet's stream: a simulator restart breaks the stream
        assert self.stack.invoice_state(self.escrow_hash) == "ACCEPTED"

    def fiat_sent(self) -> None:
        assert self.buyer_key is not None
        self.buyer.send(self.buyer_key, Action.FIAT_SENT, self.order_id)
        self.seller.wait_for(Action.FIAT_SENT_OK, trade=self.seller_key, timeout=STEP_TIMEOUT)
        self.buyer.wait_for(Action.FIAT_SENT_OK, trade=self.buyer_key, timeout=STEP_TIMEOUT)

    def release(self) -> None:
        """The seller releases; returns once the escrow HTLC is settled at the simulator."""
        assert self.escrow is not None
        self.seller.send(self.seller_key, Action.RELEASE, self.order_id)
        wait_until(lambda: self.stack.invoice_state(self.escrow_hash) == "SETTLED",
                   what="escrow settled at the simulator")

    def wait_success(self) -> None:
        assert self.buyer_key is not None
        self.buyer.wait_for(Action.PURCHASE_COMPLETED, trade=self.buyer_key, timeout=STEP_TIMEOUT)

    @property
    def escrow_hash(self) -> str:
        assert self.escrow_request is not None
        return payment_hash_of(self.escrow_request.invoice)

    @property
    def payout_hash(self) -> str:
        return payment_hash_of(self.payout_invoice)


# ---------------------------------------------------------------- messages
def received_for(client: MostroClient, trade: TradeKey) -> list[Received]:
    return [r for r in list(client.inbox) if r.trade_pubkey == trade.pair.public_hex]


def message_problems(received: list[Received], expected: list[str],
                     tolerated_extra: frozenset[str] = frozenset()) -> list[str]:
    """What is wrong with what one party got, compared with the uninterrupted run.

    Every expected action must be there at least as often as expected; an
    action may come more often only as an identical re-send (the outbox re-sends
    an effect whose relay confirmation was lost in the crash), unless it is in
    `tolerated_extra`; nothing unexpected may arrive.
    """
    problems = []
    got = Counter(r.message.action.value for r in received)
    want = Counter(expected)
    for action, count in want.items():
        if got[action] < count:
            problems.append(f"missing {action}: got {got[action]}, expected {count}")
    for action, count in got.items():
        if action not in want and action not in tolerated_extra:
            problems.append(f"unexpected {action} x{count}")
    by_action: dict[str, list[Received]] = {}
    for r in received:
        by_action.setdefault(r.message.action.value, []).append(r)
    for action, items in by_action.items():
        if action in tolerated_extra or len(items) <= want.get(action, 0):
            continue
        payloads = {repr(r.message.payload) for r in items}
        if len(payloads) > max(want.get(action, 0), 1):
            problems.append(f"{action} re-sent with a different payload: {sorted(payloads)}")
    return problems
