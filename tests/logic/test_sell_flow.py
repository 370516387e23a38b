"""A sell order from creation to a rating, one whole Decision per step (PROTOCOL.md §5.1).

Each step feeds the previous Decision's state to ``decide`` and compares the
entire Decision (state and every effect, in order) with ``==``.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import replace

from actors.order_logic.decide import decide
from actors.order_logic.model import (
    AddHoldInvoice,
    Decision,
    HoldInvoiceCreated,
    InvoiceAccepted,
    OrderRecord,
    OrderState,
    PaymentSucceeded,
    PublishOrder,
    RecordRating,
    RecordTradeIndex,
    SendPayment,
    SettleHoldInvoice,
    derive_bytes,
)
from actors.order_logic.replies import notify
from adapters.nostr.protocol.enums import Action, Kind, Status
from adapters.nostr.protocol.payloads import (
    OrderPayload,
    PaymentRequest,
    Peer,
    RatingUser,
    SmallOrder,
)

from . import kit
from .kit import BUYER, BUYER_ID, NOW, SELLER, SELLER_ID

E1, E2, E3, E4 = (bytes([n]) * 32 for n in (1, 2, 3, 4))
ORDER_ID = str(uuid.UUID(bytes=derive_bytes(E1, "new-order")[:16], version=4))
MEMO = (
    f"Escrow amount Order #{ORDER_ID}: SELL BTC for USD 100 - It WILL FREEZE IN WALLET."
    " It will release once you release. It will return if buyer does not confirm the payment"
)


def escrow_keys(entropy: bytes) -> tuple[str, str]:
    preimage = derive_bytes(entropy, f"escrow:{ORDER_ID}")
    return preimage.hex(), hashlib.sha256(preimage).hexdigest()


PREIMAGE, HASH = escrow_keys(E3)
BUYER_INVOICE = kit.invoice(199_400, timestamp=NOW)

PENDING = OrderRecord(
    id=ORDER_ID,
    kind=Kind.SELL,
    status=Status.PENDING,
    creator_pubkey=SELLER,
    fiat_code="USD",
    payment_method="SEPA,Bank transfer",
    amount=200_000,
    fiat_amount=100,
    fee=600,
    seller_pubkey=SELLER,
    master_seller_pubkey=SELLER_ID,
    trade_index_seller=1,
    created_at=NOW,
    expires_at=NOW + 24 * 3600,
)


def view(status: Status, amount: int, **extra) -> SmallOrder:
    fields = {
        "id": ORDER_ID,
        "kind": Kind.SELL,
        "status": status,
        "amount": amount,
        "fiat_code": "USD",
        "fiat_amount": 100,
        "payment_method": "SEPA,Bank transfer",
        "premium": 0,
        "created_at": NOW,
        "expires_at": NOW + 24 * 3600,
    }
    fields.update(extra)
    return SmallOrder(**fields)


def test_new_sell_order_is_stored_published_and_acknowledged():
    decision = decide(
        None, kit.new_order_request(Kind.SELL, trade_index=1), kit.ctx(NOW, entropy=E1)
    )
    assert decision == Decision(
        OrderState(PENDING),
        (
            RecordTradeIndex(SELLER_ID, 1),
            PublishOrder(PENDING, "pending"),
            notify(
                SELLER,
                Action.NEW_ORDER,
                ORDER_ID,
                OrderPayload(view(Status.PENDING, 200_000)),
                request_id=7,
                trade_index=1,
            ),
        ),
    )


def test_sell_order_runs_to_success_and_rating():
    state = OrderState(PENDING)

    # take-sell without an invoice: the buyer is asked for one
    take = kit.request(Action.TAKE_SELL, BUYER, order_id=ORDER_ID, trade_index=5)
    d = decide(state, take, kit.ctx(NOW + 10, entropy=E2))
    waiting = replace(
        PENDING,
        status=Status.WAITING_BUYER_INVOICE,
        buyer_pubkey=BUYER,
        master_buyer_pubkey=BUYER_ID,
        trade_index_buyer=5,
        dev_fee=360,
        taken_at=NOW + 10,
    )
    assert d == Decision(
        OrderState(waiting),
        (
            RecordTradeIndex(BUYER_ID, 5),
            notify(
                BUYER,
                Action.ADD_INVOICE,
                ORDER_ID,
                OrderPayload(view(Status.WAITING_BUYER_INVOICE, 199_400, expires_at=None)),
                request_id=7,
                trade_index=5,
            ),
            notify(SELLER, Action.WAITING_BUYER_INVOICE, ORDER_ID, request_id=7, trade_index=1),
            PublishOrder(waiting, "in-progress"),
        ),
    )

    # add-invoice: reputation notice to the seller, escrow hold invoice requested
    add = kit.request(
        Action.ADD_INVOICE,
        BUYER,
        order_id=ORDER_ID,
        payload=PaymentRequest(None, BUYER_INVOICE),
        request_id=8,
    )
    d = decide(d.state, add, kit.ctx(NOW + 20, entropy=E3))
    paying = replace(
        waiting,
        status=Status.WAITING_PAYMENT,
        buyer_invoice=BUYER_INVOICE,
        hash=HASH,
        preimage=PREIMAGE,
        taken_at=NOW + 20,
    )
    assert d == Decision(
        OrderState(paying),
        (
            notify(
                SELLER,
                Action.PAY_INVOICE,
                ORDER_ID,
                Peer("", kit.REPUTATIONS[BUYER_ID]),
                request_id=8,
            ),
            AddHoldInvoice(HASH, 200_600, MEMO, 144, request_id=8),
        ),
    )

    # LND made the hold invoice: pay-invoice to the seller, the buyer waits
    d = decide(d.state, HoldInvoiceCreated(HASH, "lnbcrt-hold", request_id=8), kit.ctx(NOW + 21))
    assert d == Decision(
        OrderState(paying),
        (
            notify(
                SELLER,
                Action.PAY_INVOICE,
                ORDER_ID,
                PaymentRequest(view(Status.WAITING_PAYMENT, 200_600), "lnbcrt-hold", None),
                request_id=8,
                trade_index=1,
            ),
            notify(BUYER, Action.WAITING_SELLER_TO_PAY, ORDER_ID, request_id=8, trade_index=5),
        ),
    )

    # the seller pays: active, nothing published
    d = decide(d.state, InvoiceAccepted(HASH, 200_600), kit.ctx(NOW + 30))
    active = replace(paying, status=Status.ACTIVE, invoice_held_at=NOW + 30)
    pubkeys = {"buyer_trade_pubkey": BUYER, "seller_trade_pubkey": SELLER}
    assert d == Decision(
        OrderState(active),
        (
            notify(
                SELLER,
                Action.BUYER_TOOK_ORDER,
                ORDER_ID,
                OrderPayload(view(Status.ACTIVE, 200_600, **pubkeys)),
            ),
            notify(
                BUYER,
                Action.HOLD_INVOICE_PAYMENT_ACCEPTED,
                ORDER_ID,
                OrderPayload(view(Status.ACTIVE, 199_400, **pubkeys)),
            ),
        ),
    )

    # fiat-sent by the buyer
    d = decide(
        d.state,
        kit.request(Action.FIAT_SENT, BUYER, order_id=ORDER_ID, request_id=9),
        kit.ctx(NOW + 40),
    )
    fiat_sent = replace(active, status=Status.FIAT_SENT)
    assert d == Decision(
        OrderState(fiat_sent),
        (
            notify(SELLER, Action.FIAT_SENT_OK, ORDER_ID, Peer(BUYER), request_id=9),
            notify(BUYER, Action.FIAT_SENT_OK, ORDER_ID, Peer(SELLER), request_id=9),
        ),
    )

    # release by the seller: settle, tell both, pay the buyer (cap 0.2 % of 199,400)
    d = decide(
        d.state,
        kit.request(Action.RELEASE, SELLER, order_id=ORDER_ID, request_id=10),
        kit.ctx(NOW + 50),
    )
    buyer_hash = kit.invoice_hash("buyer")
    settled = replace(
        fiat_sent,
        status=Status.SETTLED_HOLD_INVOICE,
        payout_payment_hash=buyer_hash,
        payout_claimed_at=NOW + 50,
    )
    assert d == Decision(
        OrderState(settled),
        (
            SettleHoldInvoice(HASH, PREIMAGE),
            notify(BUYER, Action.RELEASED, ORDER_ID, request_id=10),
            notify(SELLER, Action.HOLD_INVOICE_PAYMENT_SETTLED, ORDER_ID, request_id=10),
            notify(SELLER, Action.RATE, ORDER_ID, request_id=10),
            SendPayment(BUYER_INVOICE, 0, 398, buyer_hash),
        ),
    )

    # the payout succeeds
    d = decide(d.state, PaymentSucceeded(buyer_hash, fee_sat=3), kit.ctx(NOW + 60))
    success = replace(settled, status=Status.SUCCESS, payout_payment_hash=None)
    assert d == Decision(
        OrderState(success),
        (
            PublishOrder(success, "success"),
            notify(BUYER, Action.PURCHASE_COMPLETED, ORDER_ID),
            notify(BUYER, Action.RATE, ORDER_ID),
        ),
    )

    # the buyer rates the seller
    rate = kit.request(
        Action.RATE_USER, BUYER, order_id=ORDER_ID, payload=RatingUser(5), request_id=11
    )
    d = decide(d.state, rate, kit.ctx(NOW + 70))
    assert d == Decision(
        OrderState(replace(success, buyer_sent_rate=True)),
        (
            RecordRating(SELLER_ID, SELLER, 5),
            notify(BUYER, Action.RATE_RECEIVED, ORDER_ID, RatingUser(5), request_id=11),
        ),
    )


def test_take_sell_with_invoice_goes_straight_to_waiting_payment_without_publishing():
    take = kit.request(
        Action.TAKE_SELL,
        BUYER,
        order_id=ORDER_ID,
        trade_index=5,
        payload=PaymentRequest(None, BUYER_INVOICE, None),
    )
    d = decide(OrderState(PENDING), take, kit.ctx(NOW + 20, entropy=E3))
    paying = replace(
        PENDING,
        status=Status.WAITING_PAYMENT,
        buyer_pubkey=BUYER,
        master_buyer_pubkey=BUYER_ID,
        trade_index_buyer=5,
        buyer_invoice=BUYER_INVOICE,
        dev_fee=360,
        hash=HASH,
        preimage=PREIMAGE,
        taken_at=NOW + 20,
    )
    # sell + waiting-payment publishes nothing: the book keeps showing "pending" (trap 22)
    assert d == Decision(
        OrderState(paying),
        (RecordTradeIndex(BUYER_ID, 5), AddHoldInvoice(HASH, 200_600, MEMO, 144, request_id=7)),
    )
