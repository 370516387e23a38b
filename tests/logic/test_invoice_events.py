"""LND events for the escrow invoice: duplicates, strays (trap 17), failures, late cancels."""

from __future__ import annotations

from dataclasses import replace

from actors.order_logic.decide import decide
from actors.order_logic.model import (
    CancelHoldInvoice,
    Decision,
    HoldInvoiceCreated,
    HoldInvoiceCreateFailed,
    InvoiceAccepted,
    InvoiceCanceled,
    InvoiceSettled,
    OrderState,
    PublishOrder,
)
from actors.order_logic.replies import notify
from adapters.nostr.protocol.enums import Action, Kind, Status
from adapters.nostr.protocol.payloads import OrderPayload, SmallOrder

from . import kit
from .kit import BUYER, NOW, ORDER_ID, SELLER

HASH = "ab" * 32
WINDOW = (144 - 24) * 600


def test_duplicate_accepted_is_ignored():
    active = kit.taken_order(Kind.SELL, status=Status.ACTIVE, hash=HASH, invoice_held_at=NOW - 10)
    state = OrderState(active)
    assert decide(state, InvoiceAccepted(HASH), kit.ctx()) == Decision(state)


def test_accepted_for_a_canceled_order_is_refunded():
    canceled = kit.taken_order(Kind.SELL, status=Status.CANCELED, hash=HASH)
    state = OrderState(canceled)
    assert decide(state, InvoiceAccepted(HASH), kit.ctx()) == Decision(
        state, (CancelHoldInvoice(HASH),)
    )


def test_accepted_for_an_unknown_hash_is_refunded():
    state = OrderState(kit.pending_order(Kind.SELL))  # re-listed: hash cleared (trap 23)
    assert decide(state, InvoiceAccepted("ef" * 32), kit.ctx()) == Decision(
        state, (CancelHoldInvoice("ef" * 32),)
    )


def test_hold_invoice_created_for_a_stale_hash_says_nothing():
    state = OrderState(kit.taken_order(Kind.SELL, status=Status.WAITING_PAYMENT, hash=HASH))
    assert decide(state, HoldInvoiceCreated("ef" * 32, "lnbcrt-x"), kit.ctx()) == Decision(state)


def test_hold_invoice_created_twice_sends_pay_invoice_again():
    state = OrderState(kit.taken_order(Kind.SELL, status=Status.WAITING_PAYMENT, hash=HASH))
    first = decide(state, HoldInvoiceCreated(HASH, "lnbcrt-x"), kit.ctx())
    assert decide(first.state, HoldInvoiceCreated(HASH, "lnbcrt-x"), kit.ctx()) == first


def test_hold_invoice_creation_failure_relists_the_order():
    order = kit.taken_order(Kind.BUY, status=Status.WAITING_PAYMENT, hash=HASH, preimage="cd" * 32)
    d = decide(OrderState(order), HoldInvoiceCreateFailed(HASH, "lnd down"), kit.ctx())
    back = replace(
        order,
        status=Status.PENDING,
        hash=None,
        preimage=None,
        taken_at=0,
        seller_pubkey=None,
        master_seller_pubkey=None,
    )
    view = SmallOrder(
        id=ORDER_ID,
        kind=Kind.BUY,
        status=Status.PENDING,
        amount=200_000,
        fiat_code="USD",
        fiat_amount=100,
        payment_method="SEPA,Bank transfer",
        premium=0,
        created_at=NOW - 1000,
        expires_at=NOW + 86_400,
    )
    assert d == Decision(
        OrderState(back),
        (
            CancelHoldInvoice(HASH),
            notify(SELLER, Action.CANCELED, ORDER_ID),
            PublishOrder(back, "pending"),
            notify(BUYER, Action.NEW_ORDER, ORDER_ID, OrderPayload(view)),
        ),
    )


def test_lnd_cancel_before_the_escrow_deadline_is_ignored():
    state = OrderState(
        kit.taken_order(Kind.SELL, status=Status.ACTIVE, hash=HASH, invoice_held_at=NOW)
    )
    assert decide(state, InvoiceCanceled(HASH), kit.ctx(NOW + WINDOW - 1)) == Decision(state)


def test_lnd_cancel_past_the_deadline_cancels_an_active_trade():
    order = kit.taken_order(Kind.SELL, status=Status.ACTIVE, hash=HASH, invoice_held_at=NOW)
    d = decide(OrderState(order), InvoiceCanceled(HASH), kit.ctx(NOW + WINDOW))
    canceled = replace(order, status=Status.CANCELED)
    assert d == Decision(
        OrderState(canceled),
        (
            notify(SELLER, Action.HOLD_INVOICE_PAYMENT_CANCELED, ORDER_ID),
            notify(BUYER, Action.HOLD_INVOICE_PAYMENT_CANCELED, ORDER_ID),
            PublishOrder(canceled, "canceled"),
            notify(SELLER, Action.CANCELED, ORDER_ID),
            notify(BUYER, Action.CANCELED, ORDER_ID),
        ),
    )


def test_lnd_cancel_past_the_deadline_in_fiat_sent_only_warns():
    order = kit.taken_order(Kind.SELL, status=Status.FIAT_SENT, hash=HASH, invoice_held_at=NOW)
    d = decide(OrderState(order), InvoiceCanceled(HASH), kit.ctx(NOW + WINDOW))
    assert d.state.order == order
    assert [e.message.action for e in d.effects] == [Action.HOLD_INVOICE_PAYMENT_CANCELED] * 2


def test_settled_and_events_without_an_order_change_nothing():
    state = OrderState(kit.taken_order(Kind.SELL, status=Status.SETTLED_HOLD_INVOICE, hash=HASH))
    assert decide(state, InvoiceSettled(HASH), kit.ctx()) == Decision(state)
    assert decide(None, InvoiceAccepted(HASH), kit.ctx()) == Decision(None)
