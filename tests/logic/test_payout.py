"""Buyer payout: failure accounting, retries, a new invoice, success (ORDER_FLOW.md §6.4, traps 2, 16)."""

from __future__ import annotations

from actors.order_logic.deadlines import deadlines_of
from actors.order_logic.decide import decide
from actors.order_logic.model import (
    Deadline,
    DeadlineKind,
    DeadlineReached,
    Decision,
    OrderState,
    PaymentFailed,
    PaymentSucceeded,
    PublishOrder,
    SendPayment,
)
from actors.order_logic.replies import notify
from adapters.nostr.protocol.enums import Action, Kind, Status
from adapters.nostr.protocol.payloads import OrderPayload, PaymentRequest, SmallOrder
from adapters.nostr.protocol.payloads import PaymentFailed as PaymentFailedPayload

from . import kit
from .kit import BUYER, NOW, ORDER_ID, SELLER

FIRST = kit.invoice(199_400, label="first")
SECOND = kit.invoice(None, label="second")
FIRST_HASH, SECOND_HASH = kit.invoice_hash("first"), kit.invoice_hash("second")


def fiat_sent(**fields) -> OrderState:
    base = {
        "buyer_invoice": FIRST,
        "hash": "ab" * 32,
        "preimage": "cd" * 32,
        "invoice_held_at": NOW - 50,
    }
    order = kit.taken_order(Kind.SELL, status=Status.FIAT_SENT, **{**base, **fields})
    return OrderState(order)


def retry(state: OrderState, now: int) -> Decision:
    (deadline,) = deadlines_of(state, kit.SETTINGS)
    assert deadline == Deadline(DeadlineKind.PAYMENT_RETRY, deadline.at)
    assert deadline.at <= now
    return decide(state, DeadlineReached(deadline), kit.ctx(now))


def test_failed_payout_retries_then_asks_for_a_new_invoice_then_succeeds():
    d = decide(fiat_sent(), kit.request(Action.RELEASE, SELLER), kit.ctx(NOW))
    assert d.effects[-1] == SendPayment(FIRST, 0, 398, FIRST_HASH)
    assert deadlines_of(d.state, kit.SETTINGS) == ()  # payout in flight: nothing to retry

    # attempt 1 fails: payment-failed announces N − 1 = 2 retries every 60 s
    d = decide(d.state, PaymentFailed(FIRST_HASH, "no route"), kit.ctx(NOW + 5))
    first_failure = d.state.order
    assert (
        first_failure.payment_attempts,
        first_failure.failed_payment,
        first_failure.payout_payment_hash,
    ) == (
        1,
        True,
        None,
    )
    assert d.effects == (
        notify(BUYER, Action.PAYMENT_FAILED, ORDER_ID, PaymentFailedPayload(2, 60)),
    )
    assert deadlines_of(d.state, kit.SETTINGS) == (Deadline(DeadlineKind.PAYMENT_RETRY, NOW + 60),)

    # attempt 2 (retry job) fails silently
    d = retry(d.state, NOW + 60)
    assert d.effects == (SendPayment(FIRST, 0, 398, FIRST_HASH),)
    assert d.state.order.payout_claimed_at == NOW + 60
    d = decide(d.state, PaymentFailed(FIRST_HASH), kit.ctx(NOW + 65))
    assert (d.state.order.payment_attempts, d.effects) == (2, ())

    # attempt 3 fails: the buyer is asked for a new invoice; no more retries
    d = retry(d.state, NOW + 120)
    d = decide(d.state, PaymentFailed(FIRST_HASH), kit.ctx(NOW + 125))
    ask_view = SmallOrder(
        id=ORDER_ID,
        kind=Kind.SELL,
        status=Status.SETTLED_HOLD_INVOICE,
        amount=199_400,
        fiat_code="USD",
        fiat_amount=100,
        payment_method="SEPA,Bank transfer",
        premium=0,
        created_at=NOW - 1000,
        expires_at=None,
    )
    assert d.state.order.payment_attempts == 3
    assert d.effects == (notify(BUYER, Action.ADD_INVOICE, ORDER_ID, OrderPayload(ask_view)),)
    assert deadlines_of(d.state, kit.SETTINGS) == ()

    # the buyer sends a new (amountless) invoice: invoice-updated, attempts reset
    add = kit.request(
        Action.ADD_INVOICE, BUYER, payload=PaymentRequest(None, SECOND), request_id=40
    )
    d = decide(d.state, add, kit.ctx(NOW + 200))
    assert d.effects == (notify(BUYER, Action.INVOICE_UPDATED, ORDER_ID, request_id=40),)
    assert (
        d.state.order.buyer_invoice,
        d.state.order.payment_attempts,
        d.state.order.failed_payment,
    ) == (
        SECOND,
        0,
        True,
    )

    # the retry timer pays the new invoice, which succeeds
    d = retry(d.state, NOW + 200)
    assert d.effects == (SendPayment(SECOND, 199_400, 398, SECOND_HASH),)
    d = decide(d.state, PaymentSucceeded(SECOND_HASH), kit.ctx(NOW + 210))
    success = d.state.order
    assert success.status == Status.SUCCESS
    assert d.effects == (
        PublishOrder(success, "success"),
        notify(BUYER, Action.PURCHASE_COMPLETED, ORDER_ID),
        notify(BUYER, Action.RATE, ORDER_ID),
    )


def test_single_attempt_setting_never_asks_for_a_new_invoice():
    settings = kit.make_settings(lightning={"payment_attempts": 1})
    d = decide(fiat_sent(), kit.request(Action.RELEASE, SELLER), kit.ctx(NOW, settings=settings))
    d = decide(d.state, PaymentFailed(FIRST_HASH), kit.ctx(NOW + 1, settings=settings))
    assert d.effects == (
        notify(BUYER, Action.PAYMENT_FAILED, ORDER_ID, PaymentFailedPayload(0, 60)),
    )
    assert deadlines_of(d.state, settings) == ()


def test_invoice_for_the_full_amount_fails_before_sending():
    # trap 2: a fixed buy order's invoice was checked against the full amount at creation
    state = fiat_sent(buyer_invoice=kit.invoice(200_000, label="full"))
    d = decide(state, kit.request(Action.RELEASE, SELLER), kit.ctx(NOW))
    assert not any(isinstance(e, SendPayment) for e in d.effects)
    assert d.effects[-1] == notify(
        BUYER, Action.PAYMENT_FAILED, ORDER_ID, PaymentFailedPayload(2, 60)
    )
    assert (d.state.order.payment_attempts, d.state.order.payout_claimed_at) == (1, NOW)


def test_lightning_address_payout_uses_a_derived_marker():
    state = fiat_sent(buyer_invoice="buyer@example.com")
    d = decide(state, kit.request(Action.RELEASE, SELLER), kit.ctx(NOW))
    send = d.effects[-1]
    assert isinstance(send, SendPayment)
    assert (send.payment_request, send.amount_sat, send.fee_limit_sat) == (
        "buyer@example.com",
        199_400,
        398,
    )
    assert d.state.order.payout_payment_hash == send.payment_hash


def test_payment_events_for_other_hashes_are_ignored():
    d = decide(fiat_sent(), kit.request(Action.RELEASE, SELLER), kit.ctx(NOW))
    for event in (PaymentSucceeded("00" * 32), PaymentFailed("00" * 32)):
        assert decide(d.state, event, kit.ctx(NOW + 1)) == Decision(d.state)


def test_small_payout_routing_cap_has_a_floor():
    state = fiat_sent(amount=900, fee=3, buyer_invoice=kit.invoice(897, label="small"))
    d = decide(state, kit.request(Action.RELEASE, SELLER), kit.ctx(NOW))
    assert d.effects[-1] == SendPayment(
        kit.invoice(897, label="small"), 0, 10, kit.invoice_hash("small")
    )
