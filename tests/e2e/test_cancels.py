"""Cancels end to end (PROTOCOL.md §5.3): unilateral in pending and waiting states, cooperative once escrowed.

The cooperative cancel is checked where it matters for the seller: the
escrow HTLC is refunded, so the wallet's hold-invoice payment ends FAILED and
its balance comes back to what it was before paying.
"""

from __future__ import annotations

import pytest

from adapters.nostr.protocol.enums import Action, CantDoReason, Kind, Status
from adapters.nostr.protocol.payloads import CantDo
from tests.e2e.conftest import Stack
from tests.e2e.helpers import (
    check_order_tags,
    count_messages,
    fixed_order,
    hold_invoice_for_seller,
    make_order,
    open_and_take,
    party_fee,
    pay_escrow,
    send_payout_invoice,
    take,
    wait_published,
    wait_until,
)

AMOUNT = 30_000
FEE = party_fee(AMOUNT)


def wallet_balance_msat(stack: Stack, index: int) -> int:
    return stack.lnsim.sim.balance_msat(stack.lnsim.sim.wallet_names[index])


def test_maker_cancels_pending_order(stack: Stack) -> None:
    maker = stack.client("maker")
    key, order_id = make_order(stack, maker, fixed_order(Kind.BUY, AMOUNT))
    wait_published(stack, order_id, "pending")
    maker.send(key, Action.CANCEL, order_id)
    maker.wait_for(Action.CANCELED, trade=key, pump=stack.pump)
    tags = wait_published(stack, order_id, "canceled")
    check_order_tags(tags, stack, order_id=order_id, kind=Kind.BUY, status="canceled",
                     amount=AMOUNT, fiat=(100,))
    maker.send(key, Action.CANCEL, order_id)
    refusal = maker.wait_for(Action.CANT_DO, trade=key, pump=stack.pump).message
    assert refusal.payload == CantDo(CantDoReason.ORDER_ALREADY_CANCELED)


@pytest.mark.parametrize("kind", [Kind.SELL, Kind.BUY])
def test_taker_cancel_in_waiting_state_relists(stack: Stack, kind: Kind) -> None:
    """Sell: the buyer leaves waiting-buyer-invoice; buy: the seller leaves waiting-payment."""
    trade = open_and_take(stack, kind, AMOUNT, "maker", "taker")
    pump, taker_key = stack.pump, trade.taker_key
    assert taker_key is not None
    if kind == Kind.SELL:
        trade.taker.wait_for(Action.ADD_INVOICE, trade=taker_key, pump=pump)
    else:
        hold_invoice_for_seller(trade)
    wait_published(stack, trade.order_id, "in-progress")

    trade.taker.send(taker_key, Action.CANCEL, trade.order_id)
    trade.taker.wait_for(Action.CANCELED, trade=taker_key, pump=pump)
    relisted = wait_until(
        lambda: [r for r in trade.maker.inbox[1:] if r.message.action == Action.NEW_ORDER],
        pump=pump, what="maker told the order is listed again")
    assert relisted[0].message.payload.order.status == Status.PENDING
    tags = wait_published(stack, trade.order_id, "pending")
    check_order_tags(tags, stack, order_id=trade.order_id, kind=kind, status="pending",
                     amount=AMOUNT, fiat=(100,))

    second = stack.client("second-taker")
    trade.taker = second
    second_key = take(trade)
    if kind == Kind.SELL:
        ask = second.wait_for(Action.ADD_INVOICE, trade=second_key, pump=pump).message
        assert ask.payload.order.amount == AMOUNT - FEE
    else:
        assert hold_invoice_for_seller(trade).order.amount == AMOUNT + FEE
    wait_published(stack, trade.order_id, "in-progress")


def test_maker_cancel_in_waiting_state_cancels_for_both(stack: Stack) -> None:
    trade = open_and_take(stack, Kind.SELL, AMOUNT, "seller", "buyer")
    pump, taker_key = stack.pump, trade.taker_key
    assert taker_key is not None
    trade.taker.wait_for(Action.ADD_INVOICE, trade=taker_key, pump=pump)
    trade.maker.send(trade.maker_key, Action.CANCEL, trade.order_id)
    trade.maker.wait_for(Action.CANCELED, trade=trade.maker_key, pump=pump)
    trade.taker.wait_for(Action.CANCELED, trade=taker_key, pump=pump)
    wait_published(stack, trade.order_id, "canceled")
    assert count_messages(trade.maker, Action.NEW_ORDER, trade.maker_key) == 1


def test_cooperative_cancel_refunds_the_escrow(stack: Stack) -> None:
    seller_wallet, buyer_wallet = stack.wallet(0), stack.wallet(1)
    seller_before = wallet_balance_msat(stack, 0)
    trade = open_and_take(stack, Kind.SELL, AMOUNT, "seller", "buyer")
    pump, buyer_key = stack.pump, trade.taker_key
    assert buyer_key is not None
    trade.taker.wait_for(Action.ADD_INVOICE, trade=buyer_key, pump=pump)
    send_payout_invoice(trade, buyer_wallet, AMOUNT - FEE)
    escrow = pay_escrow(trade, seller_wallet)
    assert wallet_balance_msat(stack, 0) == seller_before - (AMOUNT + FEE) * 1000

    trade.maker.send(trade.maker_key, Action.CANCEL, trade.order_id)
    trade.maker.wait_for(Action.COOPERATIVE_CANCEL_INITIATED_BY_YOU, trade=trade.maker_key,
                         pump=pump)
    trade.taker.wait_for(Action.COOPERATIVE_CANCEL_INITIATED_BY_PEER, trade=buyer_key, pump=pump)
    trade.maker.send(trade.maker_key, Action.CANCEL, trade.order_id)  # same party again
    refusal = trade.maker.wait_for(Action.CANT_DO, trade=trade.maker_key, pump=pump).message
    assert refusal.payload == CantDo(CantDoReason.INVALID_PUBKEY)
    assert escrow.wait_for("IN_FLIGHT", "SUCCEEDED", "FAILED") == "IN_FLIGHT"

    trade.taker.send(buyer_key, Action.CANCEL, trade.order_id)
    trade.taker.wait_for(Action.COOPERATIVE_CANCEL_ACCEPTED, trade=buyer_key, pump=pump)
    trade.maker.wait_for(Action.COOPERATIVE_CANCEL_ACCEPTED, trade=trade.maker_key, pump=pump)
    assert escrow.wait_for("SUCCEEDED", "FAILED") == "FAILED"
    wait_until(lambda: wallet_balance_msat(stack, 0) == seller_before, pump=pump,
               what="seller's escrow refunded")
    tags = wait_published(stack, trade.order_id, "canceled")
    check_order_tags(tags, stack, order_id=trade.order_id, kind=Kind.SELL, status="canceled",
                     amount=AMOUNT, fiat=(100,))
