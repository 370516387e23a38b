"""A buy order (maker = buyer) through both ACCEPTED branches to success (PROTOCOL.md §5.2)."""

from __future__ import annotations

import hashlib
from dataclasses import replace

from actors.order_logic.decide import decide
from actors.order_logic.model import (
    AddHoldInvoice,
    Decision,
    HoldInvoiceCreated,
    InvoiceAccepted,
    OrderState,
    PaymentSucceeded,
    PublishOrder,
    RecordTradeIndex,
    SendPayment,
    SettleHoldInvoice,
    derive_bytes,
)
from actors.order_logic.replies import notify
from adapters.nostr.protocol.enums import Action, Kind, Status
from adapters.nostr.protocol.payloads import OrderPayload, PaymentRequest, Peer, SmallOrder

from . import kit
from .kit import BUYER, NOW, ORDER_ID, SELLER, SELLER_ID

ENTROPY = b"\x09" * 32
PREIMAGE = derive_bytes(ENTROPY, f"escrow:{ORDER_ID}").hex()
HASH = hashlib.sha256(bytes.fromhex(PREIMAGE)).hexdigest()
MEMO = (
    f"Escrow amount Order #{ORDER_ID}: SELL BTC for USD 100 - It WILL FREEZE IN WALLET."
    " It will release once you release. It will return if buyer does not confirm the payment"
)
BUYER_INVOICE = kit.invoice(199_400)


def view(status: Status, amount: int, **extra) -> SmallOrder:
    fields = {
        "id": ORDER_ID,
        "kind": Kind.BUY,
        "status": status,
        "amount": amount,
        "fiat_code": "USD",
        "fiat_amount": 100,
        "payment_method": "SEPA,Bank transfer",
        "premium": 0,
        "created_at": NOW - 1000,
        "expires_at": NOW + 86_400,
    }
    fields.update(extra)
    return SmallOrder(**fields)


def take_buy(order, now=NOW):
    take = kit.request(Action.TAKE_BUY, SELLER, trade_index=3)
    return decide(OrderState(order), take, kit.ctx(now, entropy=ENTROPY))


def test_take_buy_creates_escrow_and_publishes_in_progress():
    pending = kit.pending_order(Kind.BUY)
    d = take_buy(pending)
    paying = replace(
        pending,
        status=Status.WAITING_PAYMENT,
        seller_pubkey=SELLER,
        master_seller_pubkey=SELLER_ID,
        trade_index_seller=3,
        dev_fee=360,
        hash=HASH,
        preimage=PREIMAGE,
        taken_at=NOW,
    )
    assert d == Decision(
        OrderState(paying),
        (
            RecordTradeIndex(SELLER_ID, 3),
            AddHoldInvoice(HASH, 200_600, MEMO, 144, request_id=7),
            PublishOrder(paying, "in-progress"),
        ),
    )


def test_take_buy_ignores_a_payment_request_payload():
    pending = kit.pending_order(Kind.BUY)
    take = kit.request(
        Action.TAKE_BUY, SELLER, trade_index=3, payload=PaymentRequest(None, "garbage", None)
    )
    d = decide(OrderState(pending), take, kit.ctx(NOW, entropy=ENTROPY))
    assert d.state.order.status == Status.WAITING_PAYMENT
    assert d.state.order.buyer_invoice is None


def test_buy_order_without_invoice_asks_the_buyer_after_the_seller_paid():
    paying = take_buy(kit.pending_order(Kind.BUY)).state
    d = decide(paying, HoldInvoiceCreated(HASH, "lnbcrt-hold", request_id=7), kit.ctx(NOW + 1))
    assert d.effects == (
        notify(
            SELLER,
            Action.PAY_INVOICE,
            ORDER_ID,
            PaymentRequest(view(Status.WAITING_PAYMENT, 200_600), "lnbcrt-hold", None),
            request_id=7,
            trade_index=3,
        ),
        notify(BUYER, Action.WAITING_SELLER_TO_PAY, ORDER_ID, request_id=7, trade_index=1),
    )

    d = decide(d.state, InvoiceAccepted(HASH), kit.ctx(NOW + 30))
    waiting = replace(
        paying.order,
        status=Status.WAITING_BUYER_INVOICE,
        invoice_held_at=NOW + 30,
        taken_at=NOW + 30,
    )
    # waiting-buyer-invoice on a buy order publishes nothing
    assert d == Decision(
        OrderState(waiting),
        (
            notify(
                BUYER,
                Action.ADD_INVOICE,
                ORDER_ID,
                OrderPayload(view(Status.WAITING_BUYER_INVOICE, 199_400, expires_at=None)),
                trade_index=1,
            ),
            notify(SELLER, Action.WAITING_BUYER_INVOICE, ORDER_ID, trade_index=3),
            notify(BUYER, Action.ADD_INVOICE, ORDER_ID, Peer("", kit.REPUTATIONS[SELLER_ID])),
        ),
    )

    add = kit.request(
        Action.ADD_INVOICE, BUYER, payload=PaymentRequest(None, BUYER_INVOICE), request_id=12
    )
    d = decide(d.state, add, kit.ctx(NOW + 40))
    active = replace(waiting, status=Status.ACTIVE, buyer_invoice=BUYER_INVOICE)
    pubkeys = {"buyer_trade_pubkey": BUYER, "seller_trade_pubkey": SELLER}
    assert d == Decision(
        OrderState(active),
        (
            notify(
                SELLER,
                Action.BUYER_TOOK_ORDER,
                ORDER_ID,
                OrderPayload(view(Status.ACTIVE, 200_600, **pubkeys)),
                request_id=12,
            ),
            notify(
                BUYER,
                Action.HOLD_INVOICE_PAYMENT_ACCEPTED,
                ORDER_ID,
                OrderPayload(view(Status.ACTIVE, 199_400, **pubkeys)),
                request_id=12,
            ),
        ),
    )

    d = decide(d.state, kit.request(Action.FIAT_SENT, BUYER), kit.ctx(NOW + 50))
    assert d.state.order.status == Status.FIAT_SENT
    d = decide(d.state, kit.request(Action.RELEASE, SELLER), kit.ctx(NOW + 60))
    buyer_hash = kit.invoice_hash("buyer")
    assert d.effects[0] == SettleHoldInvoice(HASH, PREIMAGE)
    assert d.effects[-1] == SendPayment(BUYER_INVOICE, 0, 398, buyer_hash)
    d = decide(d.state, PaymentSucceeded(buyer_hash), kit.ctx(NOW + 70))
    assert d.state.order.status == Status.SUCCESS
    assert PublishOrder(d.state.order, "success") in d.effects


def test_buy_order_with_maker_invoice_goes_active_on_accept():
    amountless = kit.invoice(None, label="maker")
    paying = take_buy(kit.pending_order(Kind.BUY, buyer_invoice=amountless)).state
    d = decide(paying, InvoiceAccepted(HASH), kit.ctx(NOW + 30))
    assert d.state.order.status == Status.ACTIVE
    assert d.state.order.invoice_held_at == NOW + 30
    assert [e.message.action for e in d.effects] == [
        Action.BUYER_TOOK_ORDER,
        Action.HOLD_INVOICE_PAYMENT_ACCEPTED,
    ]
    # an amountless invoice is paid with the payout amount
    fiat_sent = decide(d.state, kit.request(Action.FIAT_SENT, BUYER), kit.ctx(NOW + 40)).state
    released = decide(fiat_sent, kit.request(Action.RELEASE, SELLER), kit.ctx(NOW + 50))
    assert released.effects[-1] == SendPayment(amountless, 199_400, 398, kit.invoice_hash("maker"))
