"""Whole trades through the wire protocol: clients on a real relay, wallets on the LND simulator.

Nothing here reaches into the daemon: makers and takers only send signed,
encrypted Mostro messages and pay or issue invoices from their own wallets,
as the mobile app would.
"""

from __future__ import annotations

import pytest

from adapters.nostr.protocol.enums import Action, Kind, Status
from adapters.nostr.protocol.payloads import OrderPayload, PaymentRequest, SmallOrder
from tests.e2e.conftest import Stack

AMOUNT = 50_000
FEE = 150  # round(0.006 * 50_000 / 2)


def sell_order(amount: int = AMOUNT, fiat_amount: int = 100) -> OrderPayload:
    return OrderPayload(SmallOrder(amount=amount, fiat_code="USD", fiat_amount=fiat_amount,
                                   payment_method="SEPA", premium=0, kind=Kind.SELL,
                                   status=Status.PENDING))


@pytest.mark.parametrize("stack", ["simpleSystemBase"], indirect=True)
def test_sell_order_to_success(stack: Stack) -> None:
    seller, buyer = stack.client("seller"), stack.client("buyer")
    seller_wallet, buyer_wallet = stack.wallet(0), stack.wallet(1)
    pump = stack.pump

    maker_key = seller.new_trade_key()
    seller.send(maker_key, Action.NEW_ORDER, payload=sell_order(), with_trade_index=True)
    created = seller.wait_for(Action.NEW_ORDER, trade=maker_key, pump=pump).message
    order_id = created.id
    assert order_id is not None
    assert created.payload.order.status == Status.PENDING

    taker_key = buyer.new_trade_key()
    buyer.send(taker_key, Action.TAKE_SELL, order_id, with_trade_index=True)
    ask = buyer.wait_for(Action.ADD_INVOICE, trade=taker_key, pump=pump).message
    assert ask.payload.order.amount == AMOUNT - FEE
    seller.wait_for(Action.WAITING_BUYER_INVOICE, trade=maker_key, pump=pump)

    payout_invoice = buyer_wallet.invoice(AMOUNT - FEE, "payout")
    buyer.send(taker_key, Action.ADD_INVOICE, order_id, PaymentRequest(None, payout_invoice, None))
    pay = seller.wait_for(Action.PAY_INVOICE, trade=maker_key, pump=pump,
                          after=0).message
    while not isinstance(pay.payload, PaymentRequest):  # the reputation notice comes first
        index = seller.inbox.index(next(r for r in seller.inbox if r.message is pay)) + 1
        pay = seller.wait_for(Action.PAY_INVOICE, trade=maker_key, pump=pump, after=index).message
    assert pay.payload.order.amount == AMOUNT + FEE
    buyer.wait_for(Action.WAITING_SELLER_TO_PAY, trade=taker_key, pump=pump)

    escrow = seller_wallet.pay(pay.payload.invoice)
    seller.wait_for(Action.BUYER_TOOK_ORDER, trade=maker_key, pump=pump)
    buyer.wait_for(Action.HOLD_INVOICE_PAYMENT_ACCEPTED, trade=taker_key, pump=pump)
    assert escrow.status == "IN_FLIGHT"

    buyer.send(taker_key, Action.FIAT_SENT, order_id)
    seller.wait_for(Action.FIAT_SENT_OK, trade=maker_key, pump=pump)
    buyer.wait_for(Action.FIAT_SENT_OK, trade=taker_key, pump=pump)

    seller.send(maker_key, Action.RELEASE, order_id)
    buyer.wait_for(Action.RELEASED, trade=taker_key, pump=pump)
    seller.wait_for(Action.HOLD_INVOICE_PAYMENT_SETTLED, trade=maker_key, pump=pump)
    buyer.wait_for(Action.PURCHASE_COMPLETED, trade=taker_key, pump=pump, timeout=30)
    assert escrow.wait_for("SUCCEEDED", "FAILED") == "SUCCEEDED"
