"""Random walks through ``decide`` (bonds off): any mix of requests, LND events and timers keeps the rules.

Checked after every step: nothing raises; a refusal changes nothing; every
``PublishOrder`` carries the stored row and its mapped status; terminal
orders only gain rating flags; at most one payout is in flight; escrow is
settled only by a seller's release from fiat-sent/dispute; a trade state
always has both parties.
"""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from actors.order_logic.deadlines import deadlines_of
from actors.order_logic.decide import decide
from actors.order_logic.model import (
    DeadlineReached,
    DisputeRecord,
    HoldInvoiceCreated,
    InvoiceAccepted,
    InvoiceCanceled,
    OrderState,
    PaymentFailed,
    PaymentSucceeded,
    PublishOrder,
    SendPayment,
    SettleHoldInvoice,
)
from actors.order_logic.publication import public_status
from adapters.nostr.protocol.enums import Action, Kind, Status
from adapters.nostr.protocol.payloads import Amount, NextTrade, PaymentRequest, RatingUser

from . import kit
from .kit import BUYER, NOW, SELLER, STRANGER

TERMINAL = {Status.SUCCESS, Status.CANCELED, Status.EXPIRED, Status.COOPERATIVELY_CANCELED}
TRADE_STATES = {
    Status.WAITING_PAYMENT,
    Status.WAITING_BUYER_INVOICE,
    Status.ACTIVE,
    Status.FIAT_SENT,
    Status.SETTLED_HOLD_INVOICE,
    Status.DISPUTE,
    Status.SUCCESS,
}
INVOICE = kit.invoice(None, timestamp=NOW + 10**6, expiry=3600)

# (action, sender, payload): mostly the moves a real party would make, plus strays
MOVES = [
    (Action.TAKE_SELL, BUYER, None),
    (Action.TAKE_SELL, BUYER, Amount(50)),
    (Action.TAKE_SELL, BUYER, PaymentRequest(None, INVOICE, 50)),
    (Action.TAKE_BUY, SELLER, None),
    (Action.TAKE_BUY, SELLER, Amount(50)),
    (Action.ADD_INVOICE, BUYER, PaymentRequest(None, INVOICE, None)),
    (Action.FIAT_SENT, BUYER, None),
    (Action.FIAT_SENT, BUYER, NextTrade(kit.NEXT_KEY, 9)),
    (Action.RELEASE, SELLER, None),
    (Action.RELEASE, SELLER, NextTrade(kit.NEXT_KEY, 9)),
    (Action.CANCEL, BUYER, None),
    (Action.CANCEL, SELLER, None),
    (Action.DISPUTE, BUYER, None),
    (Action.DISPUTE, SELLER, None),
    (Action.RATE_USER, BUYER, RatingUser(4)),
    (Action.RATE_USER, SELLER, RatingUser(2)),
    (Action.CANCEL, STRANGER, None),
    (Action.RELEASE, BUYER, None),
    (Action.TAKE_SELL, STRANGER, None),
]
request_steps = st.tuples(st.just("request"), st.sampled_from(MOVES))
lnd_steps = st.tuples(
    st.just("lnd"), st.sampled_from(["created", "accepted", "canceled", "paid", "failed"])
)
clock_steps = st.tuples(st.just("clock"), st.integers(0, 3))
# one_of picks its branches evenly: requests and LND events are listed more often than the clock
steps = st.one_of(request_steps, request_steps, request_steps, lnd_steps, lnd_steps, clock_steps)


def event_for(step, state: OrderState, now: int):
    order = state.order
    if step[0] == "request":
        action, sender, payload = step[1]
        return kit.request(action, sender, payload=payload, trade_index=5)
    if step[0] == "lnd":
        kind = step[1]
        hash_ = order.hash or "00" * 32
        marker = order.payout_payment_hash or "00" * 32
        return {
            "created": HoldInvoiceCreated(hash_, "lnbcrt-hold"),
            "accepted": InvoiceAccepted(hash_),
            "canceled": InvoiceCanceled(hash_),
            "paid": PaymentSucceeded(marker),
            "failed": PaymentFailed(marker),
        }[kind]
    wanted = deadlines_of(state, kit.SETTINGS)
    if not wanted:
        return None
    return DeadlineReached(wanted[step[1] % len(wanted)])


def check_step(before: OrderState, decision, now: int) -> None:
    after = decision.state
    assert after is not None
    refusals = [
        e
        for e in decision.effects
        if getattr(e, "message", None) and e.message.action == Action.CANT_DO
    ]
    if refusals:
        assert after == before and len(decision.effects) == 1
    for effect in decision.effects:
        if isinstance(effect, PublishOrder):
            rows = [after.order, *(child.order for child in decision.created_orders)]
            assert effect.order in rows
            assert effect.public_status == public_status(effect.order.status, effect.order.kind)
    old, new = before.order, after.order
    if old.status in TERMINAL:
        assert (
            replace(new, buyer_sent_rate=old.buyer_sent_rate, seller_sent_rate=old.seller_sent_rate)
            == old
        )
    payouts = [e for e in decision.effects if isinstance(e, SendPayment)]
    assert len(payouts) <= 1
    if payouts:
        assert (
            old.payout_payment_hash is None and new.payout_payment_hash == payouts[0].payment_hash
        )
    if any(isinstance(e, SettleHoldInvoice) for e in decision.effects):
        assert old.status in (Status.FIAT_SENT, Status.DISPUTE)
        assert new.status == Status.SETTLED_HOLD_INVOICE
    if new.status in TRADE_STATES:
        assert new.buyer_pubkey and new.seller_pubkey


ESCROW = {"hash": "ab" * 32, "preimage": "cd" * 32}
HELD = {**ESCROW, "invoice_held_at": NOW, "buyer_invoice": INVOICE}
# where a walk starts: every stage of the trade, so short walks still reach deep states
STARTS = {
    "pending": lambda kind, extra: OrderState(kit.pending_order(kind, **extra)),
    "waiting-buyer-invoice": lambda kind, extra: OrderState(
        kit.taken_order(kind, status=Status.WAITING_BUYER_INVOICE, **extra)
    ),
    "waiting-payment": lambda kind, extra: OrderState(
        kit.taken_order(
            kind, status=Status.WAITING_PAYMENT, **ESCROW, buyer_invoice=INVOICE, **extra
        )
    ),
    "active": lambda kind, extra: OrderState(
        kit.taken_order(kind, status=Status.ACTIVE, **HELD, **extra)
    ),
    "fiat-sent": lambda kind, extra: OrderState(
        kit.taken_order(kind, status=Status.FIAT_SENT, **HELD, **extra)
    ),
    "dispute": lambda kind, extra: OrderState(
        kit.taken_order(kind, status=Status.DISPUTE, buyer_dispute=True, **HELD, **extra),
        dispute=DisputeRecord("d-1", kit.ORDER_ID, "initiated", "active", NOW),
    ),
    "payout-failed": lambda kind, extra: OrderState(
        kit.taken_order(
            kind,
            status=Status.SETTLED_HOLD_INVOICE,
            failed_payment=True,
            payment_attempts=1,
            payout_claimed_at=NOW,
            **HELD,
            **extra,
        )
    ),
}


@settings(max_examples=300, deadline=None)
@given(
    kind=st.sampled_from([Kind.SELL, Kind.BUY]),
    market=st.booleans(),
    start=st.sampled_from(sorted(STARTS)),
    walk=st.lists(steps, max_size=30),
)
def test_random_walks_keep_the_rules(kind, market, start, walk):
    extra: dict = {"fiat_amount": 40, "min_amount": 10, "max_amount": 100} if market else {}
    if market and start == "pending":
        extra.update(amount=0, fee=0, price_from_api=True, fiat_amount=0)
    state = STARTS[start](kind, extra)
    now = NOW
    for index, step in enumerate(walk):
        now += 400
        event = event_for(step, state, now)
        if event is None:
            continue
        if isinstance(event, DeadlineReached):
            now = max(now, event.deadline.at)
        ctx = kit.ctx(now, entropy=bytes([index]) * 32, prices=replace(kit.PRICES, taken_at=now))
        decision = decide(state, event, ctx)
        check_step(state, decision, now)
        assert decide(state, event, ctx) == decision  # deterministic
        state = decision.state
