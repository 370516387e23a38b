"""The taker-bond rules one function at a time (BONDS.md §4), with whole states and effects.

The race as a whole is exercised by the scenarios (test_scenarios_pure.py)
and the property test; here each rule of ``taker_bonds`` is pinned down on
its own: message shapes, ids from entropy, expiry bounds, idempotence, and
what is and is not touched.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import replace

import pytest

from actors.order_logic import taker_bonds as tb
from actors.order_logic.model import (
    AddHoldInvoice,
    BondRecord,
    BondRole,
    BondState,
    CancelHoldInvoice,
    ClientRequest,
    Deadline,
    DeadlineKind,
    DecisionContext,
    OrderRecord,
    OrderState,
    PublishOrder,
    RecordTradeIndex,
    SendMessage,
    TakeSnapshot,
    derive_bytes,
)
from actors.order_logic.take import apply_take
from adapters.nostr.protocol.enums import Action, CantDoReason, Kind, Status
from adapters.nostr.protocol.payloads import CantDo, Message, PaymentRequest, SmallOrder
from tests.scenario_runner.pure import build_settings

NOW = 1_700_000_000
MAKER = "aa" * 32
T1, T2, OTHER = "b1" * 32, "b2" * 32, "cc" * 32
ORDER_ID = "5d3b8f0e-8a53-4f7e-9a2b-2f6c1a7e0d11"


def settings(**bond):
    return build_settings({"anti_abuse_bond": {"enabled": True, **bond}})


def ctx(now: int = NOW, label: str = "e", **bond) -> DecisionContext:
    return DecisionContext(settings(**bond), now, hashlib.sha256(label.encode()).digest())


def order(**changes) -> OrderRecord:
    base = OrderRecord(
        id=ORDER_ID,
        kind=Kind.SELL,
        status=Status.PENDING,
        creator_pubkey=MAKER,
        fiat_code="USD",
        payment_method="SEPA",
        amount=100_000,
        fiat_amount=100,
        fee=300,
        created_at=NOW - 100,
        expires_at=NOW + 86_400,
        seller_pubkey=MAKER,
        master_seller_pubkey=MAKER,
        trade_index_seller=1,
    )
    return replace(base, **changes)


def take_request(sender: str, request_id: int = 7, trade_index: int = 3) -> ClientRequest:
    message = Message(Action.TAKE_SELL, request_id=request_id, trade_index=trade_index, id=ORDER_ID)
    return ClientRequest(message, sender, "1d" + sender[2:])


def cancel_request(sender: str) -> ClientRequest:
    return ClientRequest(Message(Action.CANCEL, request_id=9, id=ORDER_ID), sender, sender)


def snapshot(sender: str, amount: int = 100_000, fiat: int = 100) -> TakeSnapshot:
    return TakeSnapshot(sender, "1d" + sender[2:], 3, None, fiat, amount, 300, 180)


def requested(state: OrderState, sender: str, label: str, bolt11: bool = True) -> OrderState:
    """``state`` after ``sender`` took (and, if ``bolt11``, LND answered)."""
    decision = tb.request_bond(state, snapshot(sender), take_request(sender), ctx(label=label))
    new_state = decision.state
    if bolt11:
        bond = tb.active_bond_of(new_state, sender)
        created = tb.on_bond_invoice_created(new_state, bond.hash, f"lnbc-{sender[:4]}", ctx())
        new_state = created.state
    return new_state


def no_continuation(*_args):
    raise AssertionError("continue_take must not run")


# ---------------------------------------------------------------- settings
@pytest.mark.parametrize(
    ("enabled", "apply_to", "expected"),
    [
        (True, "take", True),
        (True, "both", True),
        (True, "make", False),
        (False, "take", False),
        (False, "both", False),
    ],
)
def test_bonds_on_take_needs_enabled_and_a_taker_side(enabled, apply_to, expected) -> None:
    assert tb.bonds_on_take(settings(enabled=enabled, apply_to=apply_to)) is expected


def test_bonds_are_off_without_the_section() -> None:
    assert tb.bonds_on_take(build_settings({"anti_abuse_bond": {"enabled": False}})) is False


# ---------------------------------------------------------------- request_bond
def test_request_bond_makes_a_requested_row_and_a_hold_invoice_without_touching_the_take() -> None:
    state = OrderState(order())
    decision = tb.request_bond(state, snapshot(T1), take_request(T1), ctx(label="take-1"))
    entropy = hashlib.sha256(b"take-1").digest()
    preimage = derive_bytes(entropy, "bond-preimage")
    payment_hash = hashlib.sha256(preimage).hexdigest()
    bond_id = str(uuid.UUID(bytes=derive_bytes(entropy, "bond-id")[:16], version=4))

    (bond,) = decision.state.bonds
    assert bond == BondRecord(
        id=bond_id,
        order_id=ORDER_ID,
        pubkey=T1,
        role=BondRole.TAKER,
        amount_sats=1000,
        state=BondState.REQUESTED,
        hash=payment_hash,
        preimage=preimage.hex(),
        created_at=NOW,
        expires_at=NOW + 86_400,
        taker_identity="1d" + T1[2:],
        taker_trade_index=3,
        taker_invoice=None,
        taker_fiat_amount=100,
        taker_amount=100_000,
        taker_fee=300,
        taker_dev_fee=180,
    )
    assert decision.effects == (
        RecordTradeIndex("1d" + T1[2:], 3),
        AddHoldInvoice(
            hash=payment_hash,
            amount_sat=1000,
            memo=f"mostro bond order_id={ORDER_ID}",
            cltv_expiry=144,
            expiry=86_400,
            request_id=7,
        ),
    )
    # only the status moves; nothing of the take is on the row, nothing is published
    assert decision.state.order == replace(order(), status=Status.WAITING_TAKER_BOND)


def test_each_bond_is_sized_on_its_own_take_amount() -> None:
    state = OrderState(order(amount=0, fee=0, price_from_api=True))
    context = ctx(label="a", amount_pct=0.02, base_amount_sats=100)
    decision = tb.request_bond(state, snapshot(T1, amount=640_000), take_request(T1), context)
    assert decision.state.bonds[0].amount_sats == 12_800
    assert decision.state.bonds[0].taker_amount == 640_000


def test_the_trade_index_is_recorded_only_when_there_is_one() -> None:
    snap = replace(snapshot(T1), trade_index=None)
    decision = tb.request_bond(OrderState(order()), snap, take_request(T1), ctx())
    assert not any(isinstance(e, RecordTradeIndex) for e in decision.effects)


@pytest.mark.parametrize(
    ("expires_in", "expected"),
    [(3 * 86_400, 86_400), (3600, 3600), (61, 61), (30, 60), (-10, 60)],
)
def test_bond_invoice_expiry_is_capped_by_the_order_and_at_least_a_minute(
    expires_in, expected
) -> None:
    state = OrderState(order(expires_at=NOW + expires_in))
    decision = tb.request_bond(state, snapshot(T1), take_request(T1), ctx())
    (add,) = [e for e in decision.effects if isinstance(e, AddHoldInvoice)]
    assert add.expiry == expected
    assert decision.state.bonds[0].expires_at == NOW + expected


def test_an_order_without_expiry_gets_the_lnd_default_day() -> None:
    assert tb.bond_invoice_expiry(order(expires_at=0), NOW) == 86_400


def test_a_second_racer_gets_its_own_row_and_the_first_is_untouched() -> None:
    one = requested(OrderState(order()), T1, "one")
    two = requested(one, T2, "two")
    assert [b.pubkey for b in two.bonds] == [T1, T2]
    assert two.bonds[0] == one.bonds[0]
    assert len({b.hash for b in two.bonds}) == 2
    assert two.order.status == Status.WAITING_TAKER_BOND


# ---------------------------------------------------------------- invoice created
def test_pay_bond_invoice_carries_the_bond_amount_and_this_takes_fiat() -> None:
    state = tb.request_bond(
        OrderState(order(min_amount=10, max_amount=500, fiat_amount=0)),
        snapshot(T1, fiat=250),
        take_request(T1),
        ctx(),
    ).state
    bond = state.bonds[0]
    decision = tb.on_bond_invoice_created(state, bond.hash, "lnbcrt1bond", ctx(), request_id=7)
    assert decision.state.bonds[0].payment_request == "lnbcrt1bond"
    assert decision.state.bonds[0].invoice_state == "open"
    (sent,) = decision.effects
    assert sent.recipient == T1
    assert sent.message.action == Action.PAY_BOND_INVOICE
    assert sent.message.id == ORDER_ID
    assert sent.message.trade_index == 3
    assert sent.message.request_id == 7
    assert sent.message.payload == PaymentRequest(
        SmallOrder(
            amount=1000,
            fiat_code="USD",
            fiat_amount=250,
            payment_method="SEPA",
            premium=0,
            id=ORDER_ID,
            kind=Kind.SELL,
            status=Status.PENDING,
            min_amount=10,
            max_amount=500,
            created_at=NOW - 100,
            expires_at=NOW + 86_400,
        ),
        "lnbcrt1bond",
        None,
    )


def test_a_repeated_lnd_answer_does_not_send_the_bolt11_twice() -> None:
    state = requested(OrderState(order()), T1, "one")
    bond = state.bonds[0]
    again = tb.on_bond_invoice_created(state, bond.hash, bond.payment_request, ctx())
    assert again.state == state
    assert again.effects == ()


def test_an_invoice_made_after_its_bond_lost_is_cancelled_and_never_shown() -> None:
    state = requested(OrderState(order()), T1, "one", bolt11=False)
    bond = state.bonds[0]
    gone = tb.cancel_in_bond_window(state, cancel_request(T1), ctx()).state
    decision = tb.on_bond_invoice_created(gone, bond.hash, "lnbc-late", ctx())
    assert decision.effects == (CancelHoldInvoice(bond.hash),)
    assert decision.state.bonds[0].state == BondState.RELEASED


def test_an_unknown_hash_changes_nothing() -> None:
    state = requested(OrderState(order()), T1, "one")
    for decision in (
        tb.on_bond_invoice_created(state, "00" * 32, "x", ctx()),
        tb.on_bond_accepted(state, "00" * 32, ctx(), no_continuation),
        tb.on_bond_canceled(state, "00" * 32, ctx()),
        tb.on_bond_expired(state, "no-such-id", ctx(now=NOW + 10**6)),
    ):
        assert decision.state == state
        assert decision.effects == ()


# ---------------------------------------------------------------- precheck
def test_retake_resends_the_same_bolt11_without_a_new_row() -> None:
    state = requested(OrderState(order()), T1, "one")
    decision = tb.precheck_take(state, take_request(T1, request_id=11), ctx())
    assert decision.state == state
    (sent,) = decision.effects
    assert sent.message.action == Action.PAY_BOND_INVOICE
    assert sent.message.payload.invoice == f"lnbc-{T1[:4]}"
    assert sent.message.request_id == 11


def test_retake_before_lnd_answered_sends_nothing_yet() -> None:
    state = requested(OrderState(order()), T1, "one", bolt11=False)
    decision = tb.precheck_take(state, take_request(T1), ctx())
    assert decision.state == state and decision.effects == ()


def test_a_new_racer_passes_the_precheck() -> None:
    state = requested(OrderState(order()), T1, "one")
    assert tb.precheck_take(state, take_request(T2), ctx()) is None


def test_a_locked_taker_bond_refuses_every_take() -> None:
    state = requested(OrderState(order()), T1, "one")
    locked = replace(state, bonds=(replace(state.bonds[0], state=BondState.LOCKED),))
    for sender in (T1, T2):
        decision = tb.precheck_take(locked, take_request(sender), ctx())
        (refusal,) = decision.effects
        assert refusal.recipient == sender
        assert refusal.message.payload == CantDo(CantDoReason.PENDING_ORDER_EXISTS)


def test_a_locked_maker_bond_does_not_block_takes() -> None:
    maker_bond = BondRecord(
        "m", ORDER_ID, MAKER, BondRole.MAKER, 1000, BondState.LOCKED, "ab" * 32, "cd" * 32, NOW
    )
    state = OrderState(order(), (maker_bond,))
    assert tb.precheck_take(state, take_request(T1), ctx()) is None
    assert tb.locked_taker_bond(state) is None


# ---------------------------------------------------------------- accepted
def _continuation_recorder():
    calls = []

    def continue_take(state, snap, context, request_id):
        calls.append((state, snap, request_id))
        return apply_take(state, snap, context, request_id)

    return calls, continue_take


def test_first_accepted_wins_releases_the_others_and_promotes_in_one_decision() -> None:
    state = requested(requested(OrderState(order()), T1, "one"), T2, "two")
    winner, loser = state.bonds
    calls, continue_take = _continuation_recorder()
    decision = tb.on_bond_accepted(state, winner.hash, ctx(now=NOW + 5), continue_take)

    ((seen_state, seen_snapshot, seen_request_id),) = calls
    assert seen_snapshot == snapshot(T1)
    assert seen_request_id is None
    assert [b.state for b in seen_state.bonds] == [BondState.LOCKED, BondState.RELEASED]
    bonds = {b.pubkey: b for b in decision.state.bonds}
    assert bonds[T1].state == BondState.LOCKED and bonds[T1].locked_at == NOW + 5
    assert bonds[T1].invoice_state == "accepted"
    assert bonds[T2].state == BondState.RELEASED and bonds[T2].released_at == NOW + 5
    assert bonds[T2].canceled_notice_sent
    assert decision.effects[0] == CancelHoldInvoice(loser.hash)
    assert decision.effects[1].recipient == T2
    assert decision.effects[1].message.action == Action.CANCELED
    # the take is on the order now, and the trade went on: add-invoice to the buyer
    assert decision.state.order.status == Status.WAITING_BUYER_INVOICE
    assert decision.state.order.buyer_pubkey == T1
    actions = [e.message.action for e in decision.effects if isinstance(e, SendMessage)]
    assert actions == [Action.CANCELED, Action.ADD_INVOICE, Action.WAITING_BUYER_INVOICE]


def test_a_paid_loser_is_refunded_and_told_never_settled() -> None:
    state = requested(requested(OrderState(order()), T1, "one"), T2, "two")
    winner, loser = state.bonds
    _, continue_take = _continuation_recorder()
    won = tb.on_bond_accepted(state, winner.hash, ctx(), continue_take).state
    late = tb.on_bond_accepted(won, loser.hash, ctx(), no_continuation)
    # already told when it lost: only the (idempotent) cancel again
    assert late.effects == (CancelHoldInvoice(loser.hash),)
    assert late.state.order == won.order
    again = tb.on_bond_accepted(late.state, loser.hash, ctx(), no_continuation)
    assert again.effects == (CancelHoldInvoice(loser.hash),)


def test_accepted_for_an_expired_bond_cancels_and_tells_once() -> None:
    state = requested(OrderState(order(expires_at=NOW + 600)), T1, "one")
    bond = state.bonds[0]
    expired = tb.on_bond_expired(state, bond.id, ctx(now=NOW + 600)).state
    assert expired.order.status == Status.PENDING
    first = tb.on_bond_accepted(expired, bond.hash, ctx(now=NOW + 601), no_continuation)
    assert first.effects[0] == CancelHoldInvoice(bond.hash)
    assert first.effects[1].message.action == Action.CANCELED
    assert first.state.bonds[0].state == BondState.RELEASED
    second = tb.on_bond_accepted(first.state, bond.hash, ctx(now=NOW + 602), no_continuation)
    assert second.effects == (CancelHoldInvoice(bond.hash),)


def test_duplicate_accepted_for_the_winner_changes_nothing() -> None:
    state = requested(OrderState(order()), T1, "one")
    _, continue_take = _continuation_recorder()
    won = tb.on_bond_accepted(state, state.bonds[0].hash, ctx(), continue_take).state
    duplicate = tb.on_bond_accepted(won, state.bonds[0].hash, ctx(), no_continuation)
    assert duplicate.state == won
    assert duplicate.effects == ()


def test_a_requested_bond_accepted_after_the_order_left_the_race_is_released() -> None:
    state = requested(OrderState(order()), T1, "one")
    odd = replace(state, order=replace(state.order, status=Status.CANCELED))
    decision = tb.on_bond_accepted(odd, state.bonds[0].hash, ctx(), no_continuation)
    assert decision.state.bonds[0].state == BondState.RELEASED
    assert decision.effects[0] == CancelHoldInvoice(state.bonds[0].hash)


# ---------------------------------------------------------------- canceled / expiry
def test_lnd_cancel_of_the_last_racer_relists_and_republishes() -> None:
    state = requested(OrderState(order()), T1, "one")
    decision = tb.on_bond_canceled(state, state.bonds[0].hash, ctx(now=NOW + 9))
    bond = decision.state.bonds[0]
    assert bond.state == BondState.RELEASED
    assert bond.invoice_state == "canceled" and bond.release_confirmed_at == NOW + 9
    assert decision.state.order.status == Status.PENDING
    assert decision.effects == (PublishOrder(decision.state.order, "pending"),)


def test_lnd_cancel_of_one_racer_keeps_the_race() -> None:
    state = requested(requested(OrderState(order()), T1, "one"), T2, "two")
    decision = tb.on_bond_canceled(state, state.bonds[0].hash, ctx())
    assert decision.state.order.status == Status.WAITING_TAKER_BOND
    assert decision.effects == ()


def test_lnd_confirming_our_cancel_only_records_it() -> None:
    state = requested(OrderState(order()), T1, "one")
    released = tb.cancel_in_bond_window(state, cancel_request(T1), ctx()).state
    decision = tb.on_bond_canceled(released, state.bonds[0].hash, ctx(now=NOW + 3))
    assert decision.effects == ()
    assert decision.state.bonds[0].release_confirmed_at == NOW + 3
    assert decision.state.order == released.order


def test_bond_expiry_is_a_no_op_before_its_time_and_after_a_release() -> None:
    state = requested(OrderState(order()), T1, "one")
    bond = state.bonds[0]
    early = tb.on_bond_expired(state, bond.id, ctx(now=bond.expires_at - 1))
    assert early.state == state and early.effects == ()
    due = tb.on_bond_expired(state, bond.id, ctx(now=bond.expires_at))
    assert due.effects == (CancelHoldInvoice(bond.hash), PublishOrder(due.state.order, "pending"))
    assert not due.state.bonds[0].canceled_notice_sent
    stale = tb.on_bond_expired(due.state, bond.id, ctx(now=bond.expires_at + 5))
    assert stale.state == due.state and stale.effects == ()


def test_bond_deadlines_cover_requested_taker_bonds_only() -> None:
    state = requested(requested(OrderState(order()), T1, "one"), T2, "two")
    one, two = state.bonds
    assert tb.bond_deadlines(state) == (
        Deadline(DeadlineKind.BOND_EXPIRY, one.expires_at, one.id),
        Deadline(DeadlineKind.BOND_EXPIRY, two.expires_at, two.id),
    )
    locked = replace(state, bonds=(replace(one, state=BondState.LOCKED), two))
    assert tb.bond_deadlines(locked) == (
        Deadline(DeadlineKind.BOND_EXPIRY, two.expires_at, two.id),
    )


# ---------------------------------------------------------------- cancel in the bond window
def test_maker_cancel_cancels_the_order_and_every_bond() -> None:
    state = requested(requested(OrderState(order()), T1, "one"), T2, "two")
    decision = tb.cancel_in_bond_window(state, cancel_request(MAKER), ctx())
    assert decision.state.order.status == Status.CANCELED
    assert all(b.state == BondState.RELEASED for b in decision.state.bonds)
    assert decision.effects[0] == PublishOrder(decision.state.order, "canceled")
    told = [(e.recipient, e.message.action) for e in decision.effects if isinstance(e, SendMessage)]
    assert told == [(MAKER, Action.CANCELED), (T1, Action.CANCELED), (T2, Action.CANCELED)]
    cancels = [e for e in decision.effects if isinstance(e, CancelHoldInvoice)]
    assert cancels == [CancelHoldInvoice(b.hash) for b in state.bonds]


def test_maker_cancel_also_releases_a_maker_bond_without_a_bond_notice() -> None:
    maker_bond = BondRecord(
        "m", ORDER_ID, MAKER, BondRole.MAKER, 1000, BondState.LOCKED, "ab" * 32, "cd" * 32, NOW
    )
    state = requested(OrderState(order(), (maker_bond,)), T1, "one")
    decision = tb.cancel_in_bond_window(state, cancel_request(MAKER), ctx())
    assert [b.state for b in decision.state.bonds] == [BondState.RELEASED] * 2
    to_maker = [e for e in decision.effects if isinstance(e, SendMessage) and e.recipient == MAKER]
    assert len(to_maker) == 1


def test_a_racer_cancel_releases_only_its_bond() -> None:
    state = requested(requested(OrderState(order()), T1, "one"), T2, "two")
    decision = tb.cancel_in_bond_window(state, cancel_request(T1), ctx())
    one, two = decision.state.bonds
    assert one.state == BondState.RELEASED and one.canceled_notice_sent
    assert two == state.bonds[1]
    assert decision.state.order.status == Status.WAITING_TAKER_BOND
    assert decision.effects[0] == CancelHoldInvoice(one.hash)
    assert decision.effects[1].recipient == T1
    assert decision.effects[1].message.request_id == 9
    assert len(decision.effects) == 2  # no republish: it was published pending all along


def test_the_last_racer_cancel_relists() -> None:
    state = requested(OrderState(order()), T1, "one")
    decision = tb.cancel_in_bond_window(state, cancel_request(T1), ctx())
    assert decision.state.order.status == Status.PENDING
    assert decision.effects[-1] == PublishOrder(decision.state.order, "pending")


def test_anyone_else_is_not_your_order() -> None:
    state = requested(OrderState(order()), T1, "one")
    decision = tb.cancel_in_bond_window(state, cancel_request(OTHER), ctx())
    assert decision.state == state
    (refusal,) = decision.effects
    assert refusal.message.payload == CantDo(CantDoReason.IS_NOT_YOUR_ORDER)


# ---------------------------------------------------------------- every exit
@pytest.mark.parametrize("tell", [True, False])
def test_release_taker_bonds_releases_active_taker_bonds_only(tell: bool) -> None:
    maker_bond = BondRecord(
        "m", ORDER_ID, MAKER, BondRole.MAKER, 1000, BondState.LOCKED, "ab" * 32, "cd" * 32, NOW
    )
    state = requested(requested(OrderState(order(), (maker_bond,)), T1, "one"), T2, "two")
    released, effects = tb.release_taker_bonds(state, ctx(now=NOW + 1), tell)
    assert released.bonds[0] == maker_bond
    assert [b.state for b in released.bonds[1:]] == [BondState.RELEASED] * 2
    assert all(b.released_at == NOW + 1 for b in released.bonds[1:])
    cancels = [e for e in effects if isinstance(e, CancelHoldInvoice)]
    assert cancels == [CancelHoldInvoice(b.hash) for b in state.bonds[1:]]
    messages = [e for e in effects if isinstance(e, SendMessage)]
    assert len(messages) == (2 if tell else 0)
    assert released.order == state.order
    # releasing again finds nothing active
    assert tb.release_taker_bonds(released, ctx(), tell) == (released, ())


def test_release_is_not_gated_on_the_current_setting() -> None:
    state = requested(OrderState(order()), T1, "one")
    off = DecisionContext(build_settings({"anti_abuse_bond": {"enabled": False}}), NOW, b"e" * 32)
    released, effects = tb.release_taker_bonds(state, off, False)
    assert released.bonds[0].state == BondState.RELEASED
    assert effects == (CancelHoldInvoice(state.bonds[0].hash),)
