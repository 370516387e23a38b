"""The buyer payout failing and recovering end to end (ORDER_FLOW.md §6.4, PROTOCOL.md §5.1 step 10').

The buyer's first invoice is one the simulator cannot pay again: another
wallet has already paid it, so every attempt by the node ends FAILED
(incorrect payment details). With ``payment_attempts = 3`` and
``payment_retries_interval = 1`` the node tries three times in about two
seconds, tells the buyer ``payment-failed`` after the first and asks for a
new invoice (``add-invoice``) after the last; the new invoice is paid.
"""

from __future__ import annotations

from collections.abc import Callable

from adapters.nostr.protocol.enums import Action, Kind, Status
from adapters.nostr.protocol.payloads import OrderPayload, PaymentFailed, PaymentRequest
from tests.e2e.conftest import Stack
from tests.e2e.helpers import (
    count_messages,
    fiat_sent_and_release,
    latest_order_tags,
    open_and_take,
    party_fee,
    pay_escrow,
    send_payout_invoice,
    wait_message,
    wait_published,
)

AMOUNT = 40_000
FEE = party_fee(AMOUNT)
ATTEMPTS = 3
RETRY_INTERVAL = 1


def test_failed_payout_is_retried_then_paid_to_a_new_invoice(
    stack_factory: Callable[..., Stack],
) -> None:
    stack = stack_factory("simpleSystemBase", lightning={
        "payment_attempts": ATTEMPTS, "payment_retries_interval": RETRY_INTERVAL})
    seller_wallet, buyer_wallet = stack.wallet(0), stack.wallet(1)
    pump = stack.pump
    trade = open_and_take(stack, Kind.SELL, AMOUNT, "seller", "buyer")
    buyer, buyer_key = trade.buyer
    buyer.wait_for(Action.ADD_INVOICE, trade=buyer_key, pump=pump)

    spent = buyer_wallet.invoice(AMOUNT - FEE, "paid by someone else")
    assert seller_wallet.pay(spent).wait_for("SUCCEEDED", "FAILED") == "SUCCEEDED"
    buyer.send(buyer_key, Action.ADD_INVOICE, trade.order_id, PaymentRequest(None, spent, None))
    escrow = pay_escrow(trade, seller_wallet)
    fiat_sent_and_release(trade)
    assert escrow.wait_for("SUCCEEDED", "FAILED") == "SUCCEEDED"  # the seller's part is done

    failed = buyer.wait_for(Action.PAYMENT_FAILED, trade=buyer_key, pump=pump).message
    assert failed.payload == PaymentFailed(payment_attempts=ATTEMPTS - 1,
                                           payment_retries_interval=RETRY_INTERVAL)
    failed_at = next(i for i, r in enumerate(buyer.inbox) if r.message is failed)
    ask = wait_message(buyer, Action.ADD_INVOICE, buyer_key, pump=pump,
                       payload_type=OrderPayload, after=failed_at,
                       timeout=RETRY_INTERVAL * ATTEMPTS + 10).message
    assert ask.payload.order.status == Status.SETTLED_HOLD_INVOICE
    assert ask.payload.order.amount == AMOUNT - FEE
    assert count_messages(buyer, Action.PAYMENT_FAILED, buyer_key) == 1
    assert Action.PURCHASE_COMPLETED.value not in buyer.actions(trade.order_id)
    # settled-hold-invoice is not published: the book still shows the take
    assert latest_order_tags(stack, trade.order_id)["s"] == ["in-progress"]

    balance_before = stack.lnsim.sim.balance_msat(stack.lnsim.sim.wallet_names[1])
    send_payout_invoice(trade, buyer_wallet, AMOUNT - FEE)
    buyer.wait_for(Action.INVOICE_UPDATED, trade=buyer_key, pump=pump)
    buyer.wait_for(Action.PURCHASE_COMPLETED, trade=buyer_key, pump=pump,
                   timeout=RETRY_INTERVAL + 10)
    buyer.wait_for(Action.RATE, trade=buyer_key, pump=pump)
    wait_published(stack, trade.order_id, "success")
    balance_after = stack.lnsim.sim.balance_msat(stack.lnsim.sim.wallet_names[1])
    assert balance_after - balance_before == (AMOUNT - FEE) * 1000
