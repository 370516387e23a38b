"""Same state, event and context → the same Decision; entropy is the only source of ids and preimages."""

from __future__ import annotations

from actors.order_logic.decide import decide
from actors.order_logic.model import (
    BondRecord,
    BondRole,
    BondState,
    Decision,
    HoldInvoiceCreated,
    InvoiceAccepted,
    OrderState,
    PaymentSucceeded,
)
from actors.order_logic.replies import cant_do
from adapters.nostr.protocol.enums import Action, CantDoReason, Kind, Status
from adapters.nostr.protocol.payloads import PaymentRequest

from . import kit
from .kit import BUYER, NOW, SELLER


def run_sell_trade(entropy_seed: int) -> list[Decision]:
    """A whole sell trade; every step gets its own entropy derived from the seed."""
    decisions: list[Decision] = []

    def step(state, event, offset):
        decision = decide(
            state, event, kit.ctx(NOW + offset, entropy=bytes([entropy_seed, offset]) * 16)
        )
        decisions.append(decision)
        return decision.state

    state = step(None, kit.new_order_request(Kind.SELL), 0)
    order_id = state.order.id
    invoice = kit.invoice(199_400)
    state = step(
        state,
        kit.request(
            Action.TAKE_SELL,
            BUYER,
            order_id=order_id,
            trade_index=3,
            payload=PaymentRequest(None, invoice),
        ),
        1,
    )
    state = step(state, HoldInvoiceCreated(state.order.hash, "lnbcrt-hold"), 2)
    state = step(state, InvoiceAccepted(state.order.hash), 3)
    state = step(state, kit.request(Action.FIAT_SENT, BUYER, order_id=order_id), 4)
    state = step(state, kit.request(Action.RELEASE, SELLER, order_id=order_id), 5)
    state = step(state, PaymentSucceeded(state.order.payout_payment_hash), 6)
    assert state.order.status == Status.SUCCESS
    return decisions


def test_replaying_a_trade_reproduces_every_decision():
    assert run_sell_trade(1) == run_sell_trade(1)


def test_different_entropy_gives_different_ids_and_preimages():
    first, second = run_sell_trade(1), run_sell_trade(2)
    assert first[0].state.order.id != second[0].state.order.id
    assert first[1].state.order.preimage != second[1].state.order.preimage


def test_take_in_the_bond_window_with_bonds_now_off_is_refused():
    # bonds made while the feature was on still race; a bonds-off take may not jump in
    bond = BondRecord(
        id="b1",
        order_id=kit.ORDER_ID,
        pubkey=kit.STRANGER,
        role=BondRole.TAKER,
        amount_sats=1000,
        state=BondState.REQUESTED,
        hash="12" * 32,
        preimage="34" * 32,
        created_at=NOW - 5,
    )
    state = OrderState(
        kit.pending_order(Kind.SELL, status=Status.WAITING_TAKER_BOND), bonds=(bond,)
    )
    request = kit.request(Action.TAKE_SELL, BUYER, trade_index=3)
    assert decide(state, request, kit.ctx()) == Decision(
        state, (cant_do(request, CantDoReason.INVALID_ORDER_STATUS),)
    )
