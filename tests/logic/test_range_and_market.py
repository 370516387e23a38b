"""Market-priced and range orders: quotes, premium, range takes, the child order (ORDER_FLOW.md §3.3, §3.4)."""

from __future__ import annotations

import uuid
from dataclasses import replace

from actors.order_logic.decide import decide
from actors.order_logic.model import (
    OrderRecord,
    OrderState,
    PriceSnapshot,
    PublishOrder,
    RecordTradeIndex,
    SendPayment,
    derive_bytes,
)
from actors.order_logic.replies import notify
from adapters.nostr.protocol.enums import Action, Kind, Status
from adapters.nostr.protocol.payloads import (
    Amount,
    NextTrade,
    OrderPayload,
    PaymentRequest,
    SmallOrder,
)

from . import kit
from .kit import BUYER, BUYER_ID, NEXT_KEY, NOW, ORDER_ID, SELLER, SELLER_ID


def market_order(kind=Kind.SELL, **fields) -> OrderRecord:
    return kit.pending_order(kind, amount=0, fee=0, price_from_api=True, **fields)


def test_market_take_quotes_with_premium_and_fees():
    # 100 USD at 50,000 USD/BTC = 200,000 sats; premium +2 % lowers it to 196,000 (trap 5)
    state = OrderState(market_order(premium=2))
    d = decide(state, kit.request(Action.TAKE_SELL, BUYER, trade_index=4), kit.ctx())
    order = d.state.order
    assert (order.amount, order.fee, order.dev_fee) == (196_000, 588, 353)
    assert order.status == Status.WAITING_BUYER_INVOICE
    add_invoice = d.effects[1].message
    assert add_invoice.payload.order.amount == 196_000 - 588


def test_negative_premium_raises_the_sats():
    state = OrderState(market_order(premium=-3))
    d = decide(state, kit.request(Action.TAKE_SELL, BUYER, trade_index=4), kit.ctx())
    assert d.state.order.amount == 206_000


def test_market_quote_truncates_toward_zero():
    # 100 / 43,210 × 1e8 = 231,427.91… → 231,427; with +1 %: 229,113.63… → 229,113
    prices = PriceSnapshot({"USD": 43_210.0}, taken_at=NOW)
    plain = decide(
        OrderState(market_order()),
        kit.request(Action.TAKE_SELL, BUYER, trade_index=4),
        kit.ctx(prices=prices),
    )
    assert plain.state.order.amount == 231_427
    premium = decide(
        OrderState(market_order(premium=1)),
        kit.request(Action.TAKE_SELL, BUYER, trade_index=4),
        kit.ctx(prices=prices),
    )
    assert premium.state.order.amount == 229_113


def test_new_market_order_keeps_amount_zero_and_fee_zero():
    request = kit.new_order_request(Kind.BUY, amount=0, premium=1)
    d = decide(None, request, kit.ctx())
    order = d.state.order
    assert (order.amount, order.fee, order.price_from_api, order.premium) == (0, 0, True, 1)
    assert d.effects[1] == PublishOrder(order, "pending")


def test_expiration_is_clamped_and_defaulted():
    default = decide(None, kit.new_order_request(Kind.SELL), kit.ctx()).state.order
    assert default.expires_at == NOW + 24 * 3600
    far = decide(None, kit.new_order_request(Kind.SELL, expires_at=NOW + 99 * 86400), kit.ctx())
    assert far.state.order.expires_at == NOW + 15 * 86400
    past = decide(None, kit.new_order_request(Kind.SELL, expires_at=0), kit.ctx())
    assert past.state.order.expires_at == 0  # stored as is (trap 9)


def test_full_privacy_maker_without_trade_index_records_nothing():
    request = kit.request(
        Action.NEW_ORDER,
        kit.STRANGER,
        identity=kit.STRANGER,
        order_id=None,
        payload=OrderPayload(kit.small_order(Kind.SELL)),
    )
    d = decide(None, request, kit.ctx())
    assert d.state.order.trade_index_seller == 0
    assert not any(isinstance(e, RecordTradeIndex) for e in d.effects)


def range_sell(**fields) -> OrderRecord:
    return market_order(Kind.SELL, fiat_amount=0, min_amount=10, max_amount=100, **fields)


def run_range_sell_to_release(
    take_amount: int, next_trade: NextTrade | None, *, via_payment_request: bool
):
    invoice = kit.invoice(None)
    payload = (
        PaymentRequest(None, invoice, take_amount) if via_payment_request else Amount(take_amount)
    )
    d = decide(
        OrderState(range_sell()),
        kit.request(Action.TAKE_SELL, BUYER, trade_index=4, payload=payload),
        kit.ctx(),
    )
    if not via_payment_request:
        d = decide(
            d.state,
            kit.request(Action.ADD_INVOICE, BUYER, payload=PaymentRequest(None, invoice)),
            kit.ctx(),
        )
    order = replace(d.state.order, status=Status.FIAT_SENT, invoice_held_at=NOW)
    release = kit.request(Action.RELEASE, SELLER, payload=next_trade, request_id=30)
    return decide(OrderState(order), release, kit.ctx(NOW + 5, entropy=b"\x05" * 32))


def test_range_take_sets_the_slice_and_quotes_it():
    d = decide(
        OrderState(range_sell()),
        kit.request(Action.TAKE_SELL, BUYER, trade_index=4, payload=Amount(40)),
        kit.ctx(),
    )
    order = d.state.order
    assert (order.fiat_amount, order.amount, order.fee) == (40, 80_000, 240)
    assert (order.min_amount, order.max_amount) == (10, 100)


def test_partial_range_release_creates_a_child_range_for_the_sell_maker():
    d = run_range_sell_to_release(40, NextTrade(NEXT_KEY, 8), via_payment_request=False)
    child_id = str(
        uuid.UUID(bytes=derive_bytes(b"\x05" * 32, f"child-of:{ORDER_ID}")[:16], version=4)
    )
    child = OrderRecord(
        id=child_id,
        kind=Kind.SELL,
        status=Status.PENDING,
        creator_pubkey=NEXT_KEY,
        fiat_code="USD",
        payment_method="SEPA,Bank transfer",
        amount=0,
        fiat_amount=0,
        min_amount=10,
        max_amount=60,
        price_from_api=True,
        fee=240,
        dev_fee=144,
        seller_pubkey=NEXT_KEY,
        master_seller_pubkey=SELLER_ID,
        trade_index_seller=8,
        range_parent_id=ORDER_ID,
        created_at=NOW - 1000,
        expires_at=NOW + 86_400,
    )
    assert d.created_orders == (OrderState(child),)
    child_view = SmallOrder(
        id=child_id,
        kind=Kind.SELL,
        status=Status.PENDING,
        amount=0,
        fiat_code="USD",
        min_amount=10,
        max_amount=60,
        fiat_amount=0,
        payment_method="SEPA,Bank transfer",
        premium=0,
        created_at=NOW - 1000,
        expires_at=NOW + 86_400,
    )
    messages = [e for e in d.effects if hasattr(e, "message")]
    assert (
        notify(NEXT_KEY, Action.NEW_ORDER, child_id, OrderPayload(child_view), trade_index=8)
        in messages
    )
    assert PublishOrder(child, "pending") in d.effects
    # the parent's trade still pays its buyer
    assert isinstance(d.effects[-1], SendPayment)
    assert d.state.order.status == Status.SETTLED_HOLD_INVOICE


def test_range_remainder_equal_to_min_becomes_a_fixed_child():
    d = run_range_sell_to_release(90, NextTrade(NEXT_KEY, 8), via_payment_request=True)
    (child,) = d.created_orders
    assert (child.order.fiat_amount, child.order.min_amount, child.order.max_amount) == (
        10,
        None,
        None,
    )


def test_range_fully_taken_has_no_child():
    d = run_range_sell_to_release(95, NextTrade(NEXT_KEY, 8), via_payment_request=True)
    assert d.created_orders == ()


def test_range_without_next_trade_has_no_child_but_still_pays():
    d = run_range_sell_to_release(40, None, via_payment_request=True)
    assert d.created_orders == ()
    assert isinstance(d.effects[-1], SendPayment)


def test_buy_range_child_uses_the_next_trade_from_fiat_sent():
    parent = kit.taken_order(
        Kind.BUY,
        status=Status.ACTIVE,
        amount=80_000,
        fee=240,
        fiat_amount=40,
        min_amount=10,
        max_amount=100,
        price_from_api=True,
        hash="aa" * 32,
        preimage="bb" * 32,
        invoice_held_at=NOW,
        buyer_invoice=kit.invoice(None),
    )
    fiat_sent = decide(
        OrderState(parent),
        kit.request(Action.FIAT_SENT, BUYER, payload=NextTrade(NEXT_KEY, 6)),
        kit.ctx(),
    )
    assert (fiat_sent.state.order.next_trade_pubkey, fiat_sent.state.order.next_trade_index) == (
        NEXT_KEY,
        6,
    )
    d = decide(fiat_sent.state, kit.request(Action.RELEASE, SELLER), kit.ctx(NOW + 1))
    (child,) = d.created_orders
    assert child.order.creator_pubkey == child.order.buyer_pubkey == NEXT_KEY
    assert child.order.master_buyer_pubkey == BUYER_ID
    assert (
        child.order.trade_index_buyer,
        child.order.seller_pubkey,
        child.order.trade_index_seller,
    ) == (6, None, None)
    assert (child.order.min_amount, child.order.max_amount, child.order.fiat_amount) == (10, 60, 0)


def test_the_same_inputs_give_the_same_decision():
    state = OrderState(range_sell())
    request = kit.request(
        Action.TAKE_SELL, BUYER, trade_index=4, payload=PaymentRequest(None, kit.invoice(None), 50)
    )
    first = decide(state, request, kit.ctx(entropy=b"\x42" * 32))
    assert decide(state, request, kit.ctx(entropy=b"\x42" * 32)) == first
    other = decide(state, request, kit.ctx(entropy=b"\x43" * 32))
    assert other.state.order.hash != first.state.order.hash
