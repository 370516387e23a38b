"""The invariant checker itself can fail: one hand-broken state per invariant of BONDS.md §5.

Scenarios and the property test trust ``check_invariants`` to catch a bad
state; these cases prove each rule fires on a state that breaks it, and that
a healthy race and a healthy trade pass.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from actors.order_logic.invariants import BondHistory, check_invariants
from actors.order_logic.model import (
    BondRecord,
    BondRole,
    BondState,
    CancelHoldInvoice,
    Decision,
    OrderRecord,
    OrderState,
    SendMessage,
)
from actors.order_logic.replies import notify
from adapters.nostr.protocol.enums import Action, Kind, Status

MAKER, T1, T2 = "aa" * 32, "b1" * 32, "b2" * 32
ORDER = OrderRecord(
    id="order-1",
    kind=Kind.SELL,
    status=Status.WAITING_TAKER_BOND,
    creator_pubkey=MAKER,
    fiat_code="USD",
    payment_method="SEPA",
    amount=100_000,
    fiat_amount=100,
    fee=300,
    seller_pubkey=MAKER,
)


def bond(pubkey: str, state: BondState, n: int, **changes) -> BondRecord:
    base = BondRecord(
        id=f"bond-{n}",
        order_id="order-1",
        pubkey=pubkey,
        role=BondRole.TAKER,
        amount_sats=1000,
        state=state,
        hash=f"{n:02d}" * 32,
        preimage="00" * 32,
        created_at=n,
        taker_identity=pubkey,
        taker_trade_index=1,
        taker_fiat_amount=100,
        taker_amount=100_000,
        taker_fee=300,
        taker_dev_fee=180,
    )
    return replace(base, **changes)


def taken(order: OrderRecord, winner: BondRecord, status: Status) -> OrderRecord:
    return replace(
        order,
        status=status,
        buyer_pubkey=winner.pubkey,
        master_buyer_pubkey=winner.taker_identity,
        trade_index_buyer=winner.taker_trade_index,
        dev_fee=180,
        taken_at=5,
    )


def rules_broken(state: OrderState, history: BondHistory | None = None, **kw) -> set[str]:
    problems = check_invariants(state, history or BondHistory(), **kw)
    return {line.split(":", 1)[0] for line in problems}


def test_a_healthy_race_and_a_healthy_trade_pass() -> None:
    race = OrderState(ORDER, (bond(T1, BondState.REQUESTED, 1), bond(T2, BondState.REQUESTED, 2)))
    assert rules_broken(race) == set()
    winner = bond(T1, BondState.LOCKED, 1)
    trade = OrderState(
        taken(ORDER, winner, Status.WAITING_BUYER_INVOICE),
        (winner, bond(T2, BondState.RELEASED, 2)),
    )
    assert rules_broken(trade) == set()


def test_i1_two_locked_taker_bonds() -> None:
    one, two = bond(T1, BondState.LOCKED, 1), bond(T2, BondState.LOCKED, 2)
    state = OrderState(taken(ORDER, one, Status.WAITING_BUYER_INVOICE), (one, two))
    assert "I1" in rules_broken(state)


def test_i2_a_settled_bond_htlc() -> None:
    one = bond(T1, BondState.REQUESTED, 1)
    history = BondHistory(settled={one.hash})
    assert "I2" in rules_broken(OrderState(ORDER, (one,)), history)


@pytest.mark.parametrize("left", [BondState.REQUESTED, BondState.LOCKED])
def test_i3_a_terminal_order_with_an_active_bond(left: BondState) -> None:
    state = OrderState(replace(ORDER, status=Status.CANCELED), (bond(T1, left, 1),))
    assert "I3" in rules_broken(state)


def test_i4_trade_without_a_lock_or_with_someone_elses_take() -> None:
    winner = bond(T1, BondState.LOCKED, 1)
    no_lock = OrderState(taken(ORDER, winner, Status.WAITING_PAYMENT), ())
    assert "I4" in rules_broken(no_lock)
    other = replace(taken(ORDER, winner, Status.WAITING_PAYMENT), buyer_pubkey=T2)
    assert "I4" in rules_broken(OrderState(other, (winner,)))
    wrong_amount = replace(taken(ORDER, winner, Status.ACTIVE), amount=99_000)
    assert "I4" in rules_broken(OrderState(wrong_amount, (winner,)))


def test_i4_without_bonds_on_take_a_plain_trade_passes() -> None:
    winner = bond(T1, BondState.LOCKED, 1)
    plain = OrderState(taken(ORDER, winner, Status.WAITING_PAYMENT), ())
    assert "I4" not in rules_broken(plain, BondHistory(bonds_on_take=False))


def test_i5_a_listed_order_with_taker_fields_or_not_published_pending() -> None:
    racing = OrderState(replace(ORDER, buyer_pubkey=T1), (bond(T1, BondState.REQUESTED, 1),))
    assert "I5" in rules_broken(racing)
    clean = OrderState(ORDER, (bond(T1, BondState.REQUESTED, 1),))
    assert "I5" in rules_broken(clean, BondHistory(last_published="in-progress"))


@pytest.mark.parametrize(
    ("status", "states"),
    [
        (Status.WAITING_TAKER_BOND, ()),
        (Status.WAITING_TAKER_BOND, (BondState.RELEASED,)),
        (Status.PENDING, (BondState.REQUESTED,)),
    ],
)
def test_i6_status_and_racing_bonds_disagree(status: Status, states) -> None:
    bonds = tuple(bond(f"{n:02d}" * 32, s, n) for n, s in enumerate(states, start=1))
    assert "I6" in rules_broken(OrderState(replace(ORDER, status=status), bonds))


def test_i6_requested_bonds_left_beside_the_winner() -> None:
    winner = bond(T1, BondState.LOCKED, 1)
    state = OrderState(
        taken(ORDER, winner, Status.WAITING_BUYER_INVOICE),
        (winner, bond(T2, BondState.REQUESTED, 2)),
    )
    assert "I6" in rules_broken(state)


def test_i7_a_paid_loser_not_cancelled_or_told_twice() -> None:
    loser = bond(T2, BondState.RELEASED, 2)
    state = OrderState(replace(ORDER, status=Status.PENDING), (loser,))
    history = BondHistory(accepted={loser.hash})
    assert "I7" in rules_broken(state, history)  # never cancelled, never told

    told_twice = BondHistory(accepted={loser.hash}, cancel_requested={loser.hash})
    told_twice.bond_notices[loser.id] = 2
    assert "I7" in rules_broken(state, told_twice)

    held = BondHistory(accepted={loser.hash}, cancel_requested={loser.hash})
    held.bond_notices[loser.id] = 1
    assert "I7" not in rules_broken(state, held)
    assert "I7" in rules_broken(state, held, final=True)  # HTLC still held at the end
    held.cancelled.add(loser.hash)
    assert "I7" not in rules_broken(state, held, final=True)


def test_i7_record_decision_ties_a_canceled_message_to_the_bond_it_tells() -> None:
    requested = bond(T2, BondState.REQUESTED, 2)
    before = OrderState(ORDER, (requested,))
    released = replace(requested, state=BondState.RELEASED, canceled_notice_sent=True)
    after = OrderState(replace(ORDER, status=Status.PENDING), (released,))
    history = BondHistory()
    told = notify(T2, Action.CANCELED, "order-1")
    history.record_decision(before, Decision(after, (CancelHoldInvoice(requested.hash), told)))
    assert history.bond_notices[requested.id] == 1
    assert history.messages[T2] == [Action.CANCELED]
    assert history.cancel_requested == {requested.hash}
    # a flag set without the message is a fault
    silent = BondHistory()
    silent.record_decision(before, Decision(after, (CancelHoldInvoice(requested.hash),)))
    assert any("I7" in line for line in check_invariants(after, silent))
    # a second canceled to a racer without a bond to tell is a stray duplicate
    history.record_decision(after, Decision(after, (told,)))
    assert "I7" in rules_broken(after, history)


def test_i8_two_active_bonds_of_one_key() -> None:
    state = OrderState(ORDER, (bond(T1, BondState.REQUESTED, 1), bond(T1, BondState.REQUESTED, 2)))
    assert "I8" in rules_broken(state)


def test_i9_a_released_bond_locked_again() -> None:
    released = bond(T1, BondState.RELEASED, 1)
    before = OrderState(replace(ORDER, status=Status.PENDING), (released,))
    history = BondHistory()
    history.record_decision(None, Decision(before, ()))
    relocked = replace(released, state=BondState.LOCKED)
    after = OrderState(taken(ORDER, relocked, Status.WAITING_BUYER_INVOICE), (relocked,))
    history.record_decision(before, Decision(after, ()))
    assert "I9" in rules_broken(after, history)


def test_messages_are_recorded_per_recipient_in_order() -> None:
    history = BondHistory()
    effects = (notify(T1, Action.PAY_BOND_INVOICE, "o"), notify(T1, Action.CANCELED, "o"))
    history.record_decision(None, Decision(None, effects))
    assert history.messages == {T1: [Action.PAY_BOND_INVOICE, Action.CANCELED]}
    assert all(isinstance(e, SendMessage) for e in effects)
