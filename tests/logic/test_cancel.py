"""``cancel`` in each status: maker withdraw, maker/taker cancel in waiting states, cooperative cancel."""

from __future__ import annotations

from dataclasses import replace

from actors.order_logic.decide import decide
from actors.order_logic.model import (
    CancelHoldInvoice,
    Decision,
    DisputeRecord,
    OrderState,
    PublishDispute,
    PublishOrder,
)
from actors.order_logic.replies import notify
from adapters.nostr.protocol.enums import Action, Kind, Status
from adapters.nostr.protocol.payloads import OrderPayload, SmallOrder

from . import kit
from .kit import BUYER, NOW, ORDER_ID, SELLER

HASH = "ab" * 32


def test_maker_cancels_a_pending_order():
    order = kit.pending_order(Kind.SELL)
    d = decide(OrderState(order), kit.request(Action.CANCEL, SELLER), kit.ctx())
    canceled = replace(order, status=Status.CANCELED)
    assert d == Decision(
        OrderState(canceled),
        (
            PublishOrder(canceled, "canceled"),
            notify(SELLER, Action.CANCELED, ORDER_ID, request_id=7),
        ),
    )


def test_maker_cancels_while_waiting_for_payment():
    order = kit.taken_order(Kind.SELL, status=Status.WAITING_PAYMENT, hash=HASH, preimage="cd" * 32)
    d = decide(OrderState(order), kit.request(Action.CANCEL, SELLER), kit.ctx())
    canceled = replace(order, status=Status.CANCELED)
    assert d == Decision(
        OrderState(canceled),
        (
            CancelHoldInvoice(HASH),
            PublishOrder(canceled, "canceled"),
            notify(SELLER, Action.CANCELED, ORDER_ID),
            notify(BUYER, Action.CANCELED, ORDER_ID),
        ),
    )


def relisted_view(order) -> SmallOrder:
    return SmallOrder(
        id=ORDER_ID,
        kind=order.kind,
        status=Status.PENDING,
        amount=order.amount,
        fiat_code="USD",
        fiat_amount=100,
        payment_method="SEPA,Bank transfer",
        premium=0,
        created_at=NOW - 1000,
        expires_at=NOW + 86_400,
        buyer_invoice=order.buyer_invoice,
    )


def test_taker_cancel_relists_a_market_buy_order():
    order = kit.taken_order(
        Kind.BUY,
        status=Status.WAITING_PAYMENT,
        price_from_api=True,
        hash=HASH,
        preimage="cd" * 32,
        invoice_held_at=0,
    )
    d = decide(OrderState(order), kit.request(Action.CANCEL, SELLER), kit.ctx())
    back = replace(
        order,
        status=Status.PENDING,
        amount=0,
        fee=0,
        dev_fee=0,
        hash=None,
        preimage=None,
        taken_at=0,
        seller_pubkey=None,
        master_seller_pubkey=None,
    )
    assert d == Decision(
        OrderState(back),
        (
            CancelHoldInvoice(HASH),
            notify(SELLER, Action.CANCELED, ORDER_ID),
            PublishOrder(back, "pending"),
            notify(BUYER, Action.NEW_ORDER, ORDER_ID, OrderPayload(relisted_view(back))),
        ),
    )
    # trade indexes survive a re-list; the next taker overwrites them
    assert back.trade_index_seller == order.trade_index_seller


def test_taker_cancel_of_a_fixed_sell_order_keeps_amounts_and_drops_the_buyer_invoice():
    order = kit.taken_order(Kind.SELL, status=Status.WAITING_BUYER_INVOICE)
    d = decide(OrderState(order), kit.request(Action.CANCEL, BUYER), kit.ctx())
    back = d.state.order
    assert (back.status, back.amount, back.fee, back.buyer_pubkey, back.buyer_invoice) == (
        Status.PENDING,
        200_000,
        600,
        None,
        None,
    )
    assert d.effects[0] == notify(BUYER, Action.CANCELED, ORDER_ID)  # no hash: no invoice cancel


def test_cooperative_cancel_initiated_then_accepted_in_dispute():
    dispute = DisputeRecord("d1", ORDER_ID, "initiated", "active", NOW - 5)
    order = kit.taken_order(
        Kind.SELL, status=Status.DISPUTE, hash=HASH, preimage="cd" * 32, buyer_dispute=True
    )
    state = OrderState(order, dispute=dispute)

    d = decide(state, kit.request(Action.CANCEL, SELLER, request_id=1), kit.ctx())
    started = replace(order, cancel_initiator_pubkey=SELLER, seller_cooperativecancel=True)
    assert d == Decision(
        OrderState(started, dispute=dispute),
        (
            notify(SELLER, Action.COOPERATIVE_CANCEL_INITIATED_BY_YOU, ORDER_ID, request_id=1),
            notify(BUYER, Action.COOPERATIVE_CANCEL_INITIATED_BY_PEER, ORDER_ID),
        ),
    )

    d = decide(d.state, kit.request(Action.CANCEL, BUYER, request_id=2), kit.ctx())
    agreed = replace(started, status=Status.COOPERATIVELY_CANCELED, buyer_cooperativecancel=True)
    refunded = replace(dispute, status="seller-refunded")
    assert d == Decision(
        OrderState(agreed, dispute=refunded),
        (
            CancelHoldInvoice(HASH),
            PublishOrder(agreed, "canceled"),
            notify(BUYER, Action.COOPERATIVE_CANCEL_ACCEPTED, ORDER_ID, request_id=2),
            notify(SELLER, Action.COOPERATIVE_CANCEL_ACCEPTED, ORDER_ID),
            PublishDispute(refunded, "buyer"),
        ),
    )


def test_cooperative_cancel_in_active_without_dispute():
    order = kit.taken_order(Kind.BUY, status=Status.ACTIVE, hash=HASH)
    first = decide(OrderState(order), kit.request(Action.CANCEL, BUYER), kit.ctx())
    second = decide(first.state, kit.request(Action.CANCEL, SELLER), kit.ctx())
    assert second.state.order.status == Status.COOPERATIVELY_CANCELED
    assert second.state.dispute is None
    assert [type(e).__name__ for e in second.effects] == [
        "CancelHoldInvoice",
        "PublishOrder",
        "SendMessage",
        "SendMessage",
    ]
