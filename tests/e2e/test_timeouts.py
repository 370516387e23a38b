"""Timer-driven order changes end to end: pending expiry and the waiting-state timeout.

The Clock actor runs on real time here, so every wait is short by
configuration (a client ``expires_at`` two seconds ahead,
``expiration_seconds = 2``) and each test waits on what the relay and the
clients see, never for a fixed time. Each test first lists an order with the
default day-long expiry, so the clock is already asleep towards a far
deadline when the near one is scheduled (the case a single pending wakeup
got wrong).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from actors.clock import DeadlineSchedule
from actors.order_logic.model import Deadline, DeadlineKind
from adapters.nostr.protocol.enums import Action, Kind, Status
from adapters.nostr.protocol.payloads import PaymentRequest
from tests.e2e.conftest import Stack
from tests.e2e.helpers import (
    check_order_tags,
    count_messages,
    fixed_order,
    hold_invoice_for_seller,
    latest_order_tags,
    make_order,
    open_and_take,
    party_fee,
    wait_published,
    wait_until,
)

AMOUNT = 20_000
# the waiting-state timeout: short, yet long enough for a seller to pay on a busy machine
EXPIRATION_SECONDS = 2
FEE = party_fee(AMOUNT)


def list_far_order(stack: Stack) -> str:
    """An order expiring in a day: the clock now sleeps towards it."""
    lister = stack.client("lister")
    _, order_id = make_order(stack, lister, fixed_order(Kind.SELL, AMOUNT))
    return order_id


def test_pending_order_expires_at_its_expires_at(stack: Stack) -> None:
    """ORDER_FLOW §5.1: expired → published s=canceled, and no message to the maker (trap 9)."""
    far_id = list_far_order(stack)
    maker = stack.client("maker")
    expires_at = int(time.time()) + 2
    key, order_id = make_order(stack, maker, fixed_order(Kind.SELL, AMOUNT, expires_at=expires_at))
    created = maker.wait_for(Action.NEW_ORDER, trade=key, pump=stack.pump).message
    assert created.payload.order.expires_at == expires_at
    listed = wait_published(stack, order_id, "pending")
    assert listed["expires_at"] == [str(expires_at)]
    assert listed["expiration"] == [str(expires_at)]

    tags = wait_published(stack, order_id, "canceled", timeout=10)
    assert time.time() > expires_at
    check_order_tags(tags, stack, order_id=order_id, kind=Kind.SELL, status="canceled",
                     amount=AMOUNT, fiat=(100,))
    assert maker.actions(order_id) == [Action.NEW_ORDER.value]
    # a take after the expiry is refused
    taker = stack.client("taker")
    late = taker.new_trade_key()
    taker.send(late, Action.TAKE_SELL, order_id, with_trade_index=True)
    taker.wait_for(Action.CANT_DO, trade=late, pump=stack.pump)
    assert latest_order_tags(stack, far_id)["s"] == ["pending"]




def test_waiting_state_timeouts_blame_the_staller(stack_factory: Callable[..., Stack]) -> None:
    """ORDER_FLOW §5.2: a stalled taker re-lists the order; a stalled maker cancels it for both
    (and a held escrow goes back to the seller)."""
    stack = stack_factory("simpleSystemBase", mostro={"expiration_seconds": EXPIRATION_SECONDS})
    pump = stack.pump
    far_id = list_far_order(stack)
    seller_wallet, buyer_wallet = stack.wallet(0), stack.wallet(1)
    seller_before = stack.lnsim.sim.balance_msat(stack.lnsim.sim.wallet_names[0])

    # sell, taker (buyer) never sends an invoice: waiting-buyer-invoice
    sell_taker_stalls = open_and_take(stack, Kind.SELL, AMOUNT, "seller-a", "buyer-a")
    # buy, taker (seller) never pays the hold invoice: waiting-payment
    buy_taker_stalls = open_and_take(stack, Kind.BUY, AMOUNT, "buyer-b", "seller-b")
    # sell taken with an invoice, maker (seller) never pays: waiting-payment
    invoice = buyer_wallet.invoice(AMOUNT - FEE, "payout")
    sell_maker_stalls = open_and_take(stack, Kind.SELL, AMOUNT, "seller-c", "buyer-c",
                                      PaymentRequest(None, invoice, None))

    # buy, the seller pays but the maker (buyer) never sends an invoice: waiting-buyer-invoice
    buy_maker_stalls = open_and_take(stack, Kind.BUY, AMOUNT, "buyer-d", "seller-d")
    escrow = seller_wallet.pay(hold_invoice_for_seller(buy_maker_stalls).invoice)

    assert sell_taker_stalls.taker_key is not None
    sell_taker_stalls.taker.wait_for(Action.ADD_INVOICE, trade=sell_taker_stalls.taker_key,
                                     pump=pump)
    hold_invoice_for_seller(buy_taker_stalls)
    hold_invoice_for_seller(sell_maker_stalls)
    # (the in-progress revisions in between are checked by the trade-flow tests: with a
    # timeout this short they may already be replaced when the relay is asked)

    for relisted in (sell_taker_stalls, buy_taker_stalls):
        assert relisted.taker_key is not None
        relisted.taker.wait_for(Action.CANCELED, trade=relisted.taker_key, pump=pump, timeout=10)
        wait_until(lambda t=relisted: count_messages(t.maker, Action.NEW_ORDER, t.maker_key) == 2,
                   pump=pump, what="maker told the order is listed again")
        again = [r for r in relisted.maker.inbox if r.message.action == Action.NEW_ORDER][-1]
        assert again.message.payload.order.status == Status.PENDING
        tags = wait_published(stack, relisted.order_id, "pending")
        check_order_tags(tags, stack, order_id=relisted.order_id, kind=relisted.kind,
                         status="pending", amount=AMOUNT, fiat=(100,))

    for canceled in (sell_maker_stalls, buy_maker_stalls):
        assert canceled.taker_key is not None
        canceled.maker.wait_for(Action.CANCELED, trade=canceled.maker_key, pump=pump,
                                timeout=10)
        canceled.taker.wait_for(Action.CANCELED, trade=canceled.taker_key, pump=pump)
        tags = wait_published(stack, canceled.order_id, "canceled")
        check_order_tags(tags, stack, order_id=canceled.order_id, kind=canceled.kind,
                         status="canceled", amount=AMOUNT, fiat=(100,))
    assert Action.ADD_INVOICE.value in buy_maker_stalls.maker.actions(buy_maker_stalls.order_id)
    assert escrow.wait_for("SUCCEEDED", "FAILED") == "FAILED"
    wait_until(lambda: stack.lnsim.sim.balance_msat(stack.lnsim.sim.wallet_names[0])
               == seller_before, pump=pump, what="seller's escrow refunded")
    assert latest_order_tags(stack, far_id)["s"] == ["pending"]



def test_clock_schedule_orders_same_second_deadlines_of_one_order() -> None:
    """Two deadlines of one order due in the same second (a bond and the listing) both fire."""
    schedule = DeadlineSchedule()
    listing = Deadline(DeadlineKind.PENDING_EXPIRY, 100)
    bond = Deadline(DeadlineKind.BOND_EXPIRY, 100, key="bond-1")
    schedule.replace("order-1", (listing,))
    schedule.replace("order-1", (listing, bond))
    assert schedule.next_at() == 100
    assert sorted(d.kind for _, d in schedule.pop_due(100)) == sorted([listing.kind, bond.kind])
    assert len(schedule) == 0 and schedule.next_at() is None
