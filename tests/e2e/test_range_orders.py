"""Range orders partially taken end to end (ORDER_FLOW.md §3.4, PROTOCOL.md §5.1 "Range orders").

The maker lists a market-priced range (fiat 10..100 USD at the stack's fixed
100,000 USD/BTC, so about 1,000 sats per USD), a taker trades a slice, and the
maker announces its next trade key (``next_trade``): in ``release`` for a
sell range, in ``fiat-sent`` for a buy range. After the release that next
key receives ``new-order`` for the child order holding the remainder, and
the child is listed with both fiat bounds.
"""

from __future__ import annotations

import math

from adapters.nostr.protocol.enums import Action, Kind, Status
from adapters.nostr.protocol.payloads import Amount, NextTrade, OrderPayload, PaymentRequest
from tests.e2e.conftest import Stack
from tests.e2e.helpers import (
    Trade,
    check_order_tags,
    fiat_sent_and_release,
    make_order,
    party_fee,
    pay_escrow,
    range_order,
    send_payout_invoice,
    take,
    wait_message,
    wait_published,
)

MIN_FIAT, MAX_FIAT = 10, 100
USD_PRICE = 100_000.0  # the stack's [price] fixed table


def quote(fiat: int) -> int:
    """Sats for a fiat slice as Rust computes it: f64 division, then truncation (29999 for 30)."""
    return math.trunc(fiat / USD_PRICE * 1e8)


def open_range(stack: Stack, kind: Kind, maker_name: str, taker_name: str) -> Trade:
    maker, taker = stack.client(maker_name), stack.client(taker_name)
    key, order_id = make_order(stack, maker, range_order(kind, MIN_FIAT, MAX_FIAT))
    tags = wait_published(stack, order_id, "pending")
    check_order_tags(tags, stack, order_id=order_id, kind=kind, status="pending", amount=0,
                     fiat=(MIN_FIAT, MAX_FIAT))
    return Trade(stack, maker, taker, key, None, order_id, kind)


def check_child(stack: Stack, trade: Trade, next_key, slice_fiat: int) -> None:
    """The maker's next trade key got the child order, listed with the remaining range."""
    received = trade.maker.wait_for(Action.NEW_ORDER, trade=next_key, pump=stack.pump)
    child = received.message
    assert child.id is not None and child.id != trade.order_id
    assert child.trade_index == next_key.index
    order = child.payload.order
    assert order.status == Status.PENDING and order.kind == trade.kind
    assert (order.min_amount, order.max_amount) == (MIN_FIAT, MAX_FIAT - slice_fiat)
    assert order.amount == 0
    tags = wait_published(stack, child.id, "pending")
    check_order_tags(tags, stack, order_id=child.id, kind=trade.kind, status="pending",
                     amount=0, fiat=(MIN_FIAT, MAX_FIAT - slice_fiat))


def test_sell_range_partially_taken_leaves_a_child(stack: Stack) -> None:
    slice_fiat = 30
    amount = quote(slice_fiat)
    fee = party_fee(amount)
    trade = open_range(stack, Kind.SELL, "seller", "buyer")
    pump = stack.pump
    buyer_key = take(trade, Amount(slice_fiat))
    ask = trade.taker.wait_for(Action.ADD_INVOICE, trade=buyer_key, pump=pump).message
    assert ask.payload.order.amount == amount - fee
    assert ask.payload.order.fiat_amount == slice_fiat
    tags = wait_published(stack, trade.order_id, "in-progress")
    check_order_tags(tags, stack, order_id=trade.order_id, kind=Kind.SELL, status="in-progress",
                     amount=amount, fiat=(slice_fiat,))

    send_payout_invoice(trade, stack.wallet(1), amount - fee)
    escrow = pay_escrow(trade, stack.wallet(0))
    next_key = trade.maker.new_trade_key()
    fiat_sent_and_release(trade, release_payload=NextTrade(next_key.pair.public_hex,
                                                           next_key.index))
    trade.taker.wait_for(Action.PURCHASE_COMPLETED, trade=buyer_key, pump=pump)
    assert escrow.wait_for("SUCCEEDED", "FAILED") == "SUCCEEDED"
    check_child(stack, trade, next_key, slice_fiat)
    wait_published(stack, trade.order_id, "success")


def test_buy_range_partially_taken_leaves_a_child(stack: Stack) -> None:
    slice_fiat = 40
    amount = quote(slice_fiat)
    fee = party_fee(amount)
    trade = open_range(stack, Kind.BUY, "buyer", "seller")
    pump = stack.pump
    seller_key = take(trade, Amount(slice_fiat))
    request = wait_message(trade.taker, Action.PAY_INVOICE, seller_key, pump=pump,
                           payload_type=PaymentRequest).message.payload
    assert request.order.amount == amount + fee
    tags = wait_published(stack, trade.order_id, "in-progress")
    check_order_tags(tags, stack, order_id=trade.order_id, kind=Kind.BUY, status="in-progress",
                     amount=amount, fiat=(slice_fiat,))

    escrow = stack.wallet(0).pay(request.invoice)
    wait_message(trade.maker, Action.ADD_INVOICE, trade.maker_key, pump=pump,
                 payload_type=OrderPayload)
    send_payout_invoice(trade, stack.wallet(1), amount - fee)
    trade.taker.wait_for(Action.BUYER_TOOK_ORDER, trade=seller_key, pump=pump)
    next_key = trade.maker.new_trade_key()
    fiat_sent_and_release(trade, fiat_sent_payload=NextTrade(next_key.pair.public_hex,
                                                             next_key.index))
    trade.maker.wait_for(Action.PURCHASE_COMPLETED, trade=trade.maker_key, pump=pump)
    assert escrow.wait_for("SUCCEEDED", "FAILED") == "SUCCEEDED"
    check_child(stack, trade, next_key, slice_fiat)
    wait_published(stack, trade.order_id, "success")
