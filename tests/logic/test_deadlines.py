"""Clock-driven transitions: pending expiry, waiting-state timeouts, payout retries, escrow guard."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from actors.order_logic.deadlines import deadlines_of
from actors.order_logic.decide import decide
from actors.order_logic.model import (
    CancelHoldInvoice,
    Deadline,
    DeadlineKind,
    DeadlineReached,
    Decision,
    DisputeRecord,
    OrderState,
    PublishDispute,
    PublishOrder,
)
from actors.order_logic.replies import notify
from adapters.nostr.protocol.enums import Action, Kind, Status
from adapters.nostr.protocol.payloads import DisputePayload

from . import kit
from .kit import BUYER, NOW, ORDER_ID, SELLER, SETTINGS

DATA = Path(__file__).resolve().parent / "data"
HASH = "ab" * 32
WINDOW = (144 - 24) * 600


def reached(kind: DeadlineKind, at: int = 0) -> DeadlineReached:
    return DeadlineReached(Deadline(kind, at))


def test_pending_order_deadline_and_expiry_without_message():
    order = kit.pending_order(Kind.SELL, expires_at=NOW)
    state = OrderState(order)
    assert deadlines_of(state, SETTINGS) == (Deadline(DeadlineKind.PENDING_EXPIRY, NOW + 1),)
    # not yet: the Rust job needs expires_at < now
    early = decide(state, reached(DeadlineKind.PENDING_EXPIRY), kit.ctx(NOW))
    assert early == Decision(state)
    d = decide(state, reached(DeadlineKind.PENDING_EXPIRY), kit.ctx(NOW + 1))
    expired = replace(order, status=Status.EXPIRED)
    assert d == Decision(OrderState(expired), (PublishOrder(expired, "canceled"),))
    assert deadlines_of(d.state, SETTINGS) == ()


def test_expires_at_zero_expires_at_once():
    state = OrderState(kit.pending_order(Kind.BUY, expires_at=0))
    assert deadlines_of(state, SETTINGS) == (Deadline(DeadlineKind.PENDING_EXPIRY, 1),)
    assert (
        decide(state, reached(DeadlineKind.PENDING_EXPIRY), kit.ctx()).state.order.status
        == Status.EXPIRED
    )


@pytest.mark.parametrize(
    "row",
    json.loads((DATA / "waiting_timeouts.json").read_text())["cases"],
    ids=lambda r: f"{r['status']}-{r['kind']}",
)
def test_waiting_state_timeout_blames_by_status_and_kind(row: dict) -> None:
    kind = Kind(row["kind"])
    order = kit.taken_order(kind, status=Status(row["status"]), hash=HASH, taken_at=NOW - 900)
    state = OrderState(order)
    assert deadlines_of(state, SETTINGS) == (Deadline(DeadlineKind.WAITING_TIMEOUT, NOW + 1),)
    assert decide(state, reached(DeadlineKind.WAITING_TIMEOUT), kit.ctx(NOW)) == Decision(state)

    d = decide(state, reached(DeadlineKind.WAITING_TIMEOUT), kit.ctx(NOW + 1))
    after = d.state.order
    maker = order.creator_pubkey
    taker = BUYER if kind == Kind.SELL else SELLER
    assert after.status == Status(row["result"])
    assert (after.buyer_pubkey if kind == Kind.SELL else after.seller_pubkey) is None
    assert d.effects[0] == CancelHoldInvoice(HASH)
    assert d.effects[1] == PublishOrder(after, row["published"])
    assert d.effects[2].recipient == maker and d.effects[2].message.action == Action(
        row["maker_hears"]
    )
    assert d.effects[3] == notify(taker, Action.CANCELED, ORDER_ID)
    assert len(d.effects) == 4
    if row["stalled"] == "taker":
        assert (after.hash, after.preimage, after.taken_at) == (None, None, 0)


def test_taken_at_restart_gives_the_seller_a_full_window():
    # trap 7: add-invoice on a sell order restarts taken_at, so the old take time no longer counts
    order = kit.taken_order(Kind.SELL, status=Status.WAITING_BUYER_INVOICE, taken_at=NOW - 899)
    add = kit.request(Action.ADD_INVOICE, BUYER, payload=kit_payment_request())
    d = decide(OrderState(order), add, kit.ctx(NOW))
    assert deadlines_of(d.state, SETTINGS) == (Deadline(DeadlineKind.WAITING_TIMEOUT, NOW + 901),)


def kit_payment_request():
    from adapters.nostr.protocol.payloads import PaymentRequest

    return PaymentRequest(None, kit.invoice(199_400))


def test_escrow_guard_cancels_an_active_trade():
    order = kit.taken_order(Kind.SELL, status=Status.ACTIVE, hash=HASH, invoice_held_at=NOW)
    state = OrderState(order)
    assert deadlines_of(state, SETTINGS) == (Deadline(DeadlineKind.ESCROW_GUARD, NOW + WINDOW),)
    assert decide(state, reached(DeadlineKind.ESCROW_GUARD), kit.ctx(NOW + WINDOW - 1)) == Decision(
        state
    )
    d = decide(state, reached(DeadlineKind.ESCROW_GUARD), kit.ctx(NOW + WINDOW))
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


def test_escrow_guard_opens_a_dispute_for_the_buyer_after_fiat_sent():
    order = kit.taken_order(Kind.BUY, status=Status.FIAT_SENT, hash=HASH, invoice_held_at=NOW)
    d = decide(OrderState(order), reached(DeadlineKind.ESCROW_GUARD), kit.ctx(NOW + WINDOW))
    dispute = d.state.dispute
    assert dispute == DisputeRecord(dispute.id, ORDER_ID, "initiated", "fiat-sent", NOW + WINDOW)
    disputed = replace(order, status=Status.DISPUTE, buyer_dispute=True)
    assert d == Decision(
        OrderState(disputed, dispute=dispute),
        (
            notify(SELLER, Action.DISPUTE_INITIATED_BY_PEER, ORDER_ID, DisputePayload(dispute.id)),
            notify(BUYER, Action.DISPUTE_INITIATED_BY_YOU, ORDER_ID, DisputePayload(dispute.id)),
            PublishDispute(dispute, "buyer"),
        ),
    )
    assert deadlines_of(d.state, SETTINGS) == ()  # a dispute is the solver's job


def test_escrow_margin_not_below_cltv_halves_the_delta():
    # the loader refuses such a file; the rule still guards a hand-built Settings, as Rust does
    settings = replace(
        SETTINGS, lightning=replace(SETTINGS.lightning, escrow_deadline_margin_blocks=200)
    )
    order = kit.taken_order(Kind.SELL, status=Status.ACTIVE, hash=HASH, invoice_held_at=NOW)
    assert deadlines_of(OrderState(order), settings) == (
        Deadline(DeadlineKind.ESCROW_GUARD, NOW + 72 * 600),
    )


def test_terminal_orders_want_no_deadline():
    for status in (Status.SUCCESS, Status.CANCELED, Status.EXPIRED, Status.COOPERATIVELY_CANCELED):
        assert deadlines_of(OrderState(kit.taken_order(Kind.SELL, status=status)), SETTINGS) == ()


def test_a_stale_deadline_of_another_kind_is_ignored():
    state = OrderState(
        kit.taken_order(Kind.SELL, status=Status.ACTIVE, hash=HASH, invoice_held_at=NOW)
    )
    for kind in (
        DeadlineKind.PENDING_EXPIRY,
        DeadlineKind.WAITING_TIMEOUT,
        DeadlineKind.PAYMENT_RETRY,
    ):
        assert decide(state, reached(kind), kit.ctx(NOW + 10**7)) == Decision(state)
