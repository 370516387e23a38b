"""Whole trades through the wire protocol: clients on a real relay, wallets on the LND simulator.

Nothing here reaches into the daemon: makers and takers only send signed,
encrypted Mostro messages and pay or issue invoices from their own wallets,
as the mobile app would. The order book is read back from the relay after
each step and checked against PROTOCOL.md §3.1 (including the asymmetric
status buckets). The happy paths run on the single-threaded base and on both
multiprocess bases (TCP and queue).
"""

from __future__ import annotations

import pytest

from adapters.nostr.protocol.enums import Action, Kind, Status
from adapters.nostr.protocol.payloads import OrderPayload, PaymentRequest, SmallOrder
from tests.e2e.conftest import Stack
from tests.e2e.helpers import (
    check_order_tags,
    fiat_sent_and_release,
    fixed_order,
    latest_order_tags,
    open_trade,
    party_fee,
    pay_escrow,
    send_payout_invoice,
    take,
    wait_message,
    wait_published,
)

AMOUNT = 50_000
FEE = party_fee(AMOUNT)  # 150

BASES = [
    pytest.param("simpleSystemBase", id="simple"),
    pytest.param("multiprocTCPBase", id="multiproc", marks=pytest.mark.multiproc),
    pytest.param("multiprocQueueBase", id="multiproc-queue", marks=pytest.mark.multiproc),
]


def sell_order(amount: int = AMOUNT, fiat_amount: int = 100) -> OrderPayload:
    return OrderPayload(SmallOrder(amount=amount, fiat_code="USD", fiat_amount=fiat_amount,
                                   payment_method="SEPA", premium=0, kind=Kind.SELL,
                                   status=Status.PENDING))


def wallet_balance_sat(stack: Stack, index: int) -> int:
    return stack.lnsim.sim.balance_msat(stack.lnsim.sim.wallet_names[index]) // 1000


@pytest.mark.parametrize("stack", BASES, indirect=True)
def test_sell_order_to_success(stack: Stack) -> None:
    """§5.1 without an invoice in the take: the published status goes pending → in-progress → success."""
    seller_wallet, buyer_wallet = stack.wallet(0), stack.wallet(1)
    buyer_before = wallet_balance_sat(stack, 1)
    trade = open_trade(stack, Kind.SELL, sell_order(), "seller", "buyer")
    order_id, pump = trade.order_id, stack.pump
    tags = wait_published(stack, order_id, "pending")
    check_order_tags(tags, stack, order_id=order_id, kind=Kind.SELL, status="pending",
                     amount=AMOUNT, fiat=(100,))

    taker_key = take(trade)
    ask = trade.taker.wait_for(Action.ADD_INVOICE, trade=taker_key, pump=pump).message
    assert ask.payload.order.amount == AMOUNT - FEE
    assert ask.payload.order.status == Status.WAITING_BUYER_INVOICE
    trade.maker.wait_for(Action.WAITING_BUYER_INVOICE, trade=trade.maker_key, pump=pump)
    tags = wait_published(stack, order_id, "in-progress")
    check_order_tags(tags, stack, order_id=order_id, kind=Kind.SELL, status="in-progress",
                     amount=AMOUNT, fiat=(100,))

    send_payout_invoice(trade, buyer_wallet, AMOUNT - FEE)
    request = wait_message(trade.maker, Action.PAY_INVOICE, trade.maker_key, pump=pump,
                           payload_type=PaymentRequest).message.payload
    assert request.order.amount == AMOUNT + FEE
    assert request.order.status == Status.WAITING_PAYMENT
    trade.taker.wait_for(Action.WAITING_SELLER_TO_PAY, trade=taker_key, pump=pump)

    escrow = pay_escrow(trade, seller_wallet)
    # waiting-payment and active are not published for a sell order: still in-progress
    assert latest_order_tags(stack, order_id)["s"] == ["in-progress"]

    fiat_sent_and_release(trade)
    trade.taker.wait_for(Action.PURCHASE_COMPLETED, trade=taker_key, pump=pump)
    assert escrow.wait_for("SUCCEEDED", "FAILED") == "SUCCEEDED"
    tags = wait_published(stack, order_id, "success")
    check_order_tags(tags, stack, order_id=order_id, kind=Kind.SELL, status="success",
                     amount=AMOUNT, fiat=(100,))
    assert wallet_balance_sat(stack, 1) == buyer_before + AMOUNT - FEE


@pytest.mark.parametrize("stack", ["simpleSystemBase"], indirect=True)
def test_sell_order_taken_with_invoice_keeps_showing_pending(stack: Stack) -> None:
    """§5.1 step 4b: the take carries the invoice; waiting-payment is never published for a sell."""
    seller_wallet, buyer_wallet = stack.wallet(0), stack.wallet(1)
    trade = open_trade(stack, Kind.SELL, sell_order(), "seller", "buyer")
    order_id, pump = trade.order_id, stack.pump
    first = wait_published(stack, order_id, "pending")

    invoice = buyer_wallet.invoice(AMOUNT - FEE, "payout")
    taker_key = take(trade, PaymentRequest(None, invoice, None))
    escrow = pay_escrow(trade, seller_wallet)
    trade.taker.wait_for(Action.WAITING_SELLER_TO_PAY, trade=taker_key, pump=pump)
    assert Action.ADD_INVOICE.value not in trade.taker.actions(order_id)
    shown = latest_order_tags(stack, order_id)
    assert shown["s"] == ["pending"]
    assert shown["_created_at"] == first["_created_at"]  # no revision since the listing

    fiat_sent_and_release(trade)
    trade.taker.wait_for(Action.PURCHASE_COMPLETED, trade=taker_key, pump=pump)
    assert escrow.wait_for("SUCCEEDED", "FAILED") == "SUCCEEDED"
    tags = wait_published(stack, order_id, "success")
    check_order_tags(tags, stack, order_id=order_id, kind=Kind.SELL, status="success",
                     amount=AMOUNT, fiat=(100,))


@pytest.mark.parametrize("stack", BASES, indirect=True)
def test_buy_order_without_invoice_to_success(stack: Stack) -> None:
    """§5.2: the seller pays first; then the buyer is asked for an invoice."""
    seller_wallet, buyer_wallet = stack.wallet(0), stack.wallet(1)
    trade = open_trade(stack, Kind.BUY, fixed_order(Kind.BUY, AMOUNT), "buyer", "seller")
    order_id, pump = trade.order_id, stack.pump
    tags = wait_published(stack, order_id, "pending")
    check_order_tags(tags, stack, order_id=order_id, kind=Kind.BUY, status="pending",
                     amount=AMOUNT, fiat=(100,))

    seller_key = take(trade)
    request = wait_message(trade.taker, Action.PAY_INVOICE, seller_key, pump=pump,
                           payload_type=PaymentRequest).message.payload
    assert request.order.amount == AMOUNT + FEE
    trade.maker.wait_for(Action.WAITING_SELLER_TO_PAY, trade=trade.maker_key, pump=pump)
    tags = wait_published(stack, order_id, "in-progress")
    check_order_tags(tags, stack, order_id=order_id, kind=Kind.BUY, status="in-progress",
                     amount=AMOUNT, fiat=(100,))

    escrow = seller_wallet.pay(request.invoice)
    ask = wait_message(trade.maker, Action.ADD_INVOICE, trade.maker_key, pump=pump,
                       payload_type=OrderPayload).message.payload
    assert ask.order.amount == AMOUNT - FEE
    assert ask.order.status == Status.WAITING_BUYER_INVOICE
    trade.taker.wait_for(Action.WAITING_BUYER_INVOICE, trade=seller_key, pump=pump)

    send_payout_invoice(trade, buyer_wallet, AMOUNT - FEE)
    trade.taker.wait_for(Action.BUYER_TOOK_ORDER, trade=seller_key, pump=pump)
    trade.maker.wait_for(Action.HOLD_INVOICE_PAYMENT_ACCEPTED, trade=trade.maker_key, pump=pump)
    assert escrow.wait_for("IN_FLIGHT", "SUCCEEDED", "FAILED") == "IN_FLIGHT"
    assert latest_order_tags(stack, order_id)["s"] == ["in-progress"]

    fiat_sent_and_release(trade)
    trade.maker.wait_for(Action.PURCHASE_COMPLETED, trade=trade.maker_key, pump=pump)
    assert escrow.wait_for("SUCCEEDED", "FAILED") == "SUCCEEDED"
    tags = wait_published(stack, order_id, "success")
    check_order_tags(tags, stack, order_id=order_id, kind=Kind.BUY, status="success",
                     amount=AMOUNT, fiat=(100,))


@pytest.mark.parametrize("stack", BASES, indirect=True)
def test_buy_order_with_invoice_to_success(stack: Stack) -> None:
    """§5.2 step 4: the new-order carries the buyer invoice, so the payment activates the trade."""
    seller_wallet, buyer_wallet = stack.wallet(0), stack.wallet(1)
    buyer_before = wallet_balance_sat(stack, 1)
    # amountless: a new-order invoice is checked against the amount with fee 0 (ORDER_FLOW §6.1)
    invoice = buyer_wallet.invoice(0, "payout")
    trade = open_trade(stack, Kind.BUY, fixed_order(Kind.BUY, AMOUNT, buyer_invoice=invoice),
                       "buyer", "seller")
    order_id, pump = trade.order_id, stack.pump
    wait_published(stack, order_id, "pending")

    seller_key = take(trade)
    escrow = pay_escrow(trade, seller_wallet)
    assert Action.ADD_INVOICE.value not in trade.maker.actions(order_id)
    assert latest_order_tags(stack, order_id)["s"] == ["in-progress"]

    fiat_sent_and_release(trade)
    trade.maker.wait_for(Action.PURCHASE_COMPLETED, trade=trade.maker_key, pump=pump)
    assert escrow.wait_for("SUCCEEDED", "FAILED") == "SUCCEEDED"
    assert seller_key.order_id == order_id
    wait_published(stack, order_id, "success")
    assert wallet_balance_sat(stack, 1) == buyer_before + AMOUNT - FEE
