"""Maker re-binding (``trade-pubkey``) and ``rate-user`` acceptance paths."""

from __future__ import annotations

from dataclasses import replace

from actors.order_logic.decide import decide
from actors.order_logic.model import Decision, OrderState, RecordRating
from actors.order_logic.replies import cant_do, notify
from adapters.nostr.protocol.enums import Action, CantDoReason, Kind, Status
from adapters.nostr.protocol.payloads import RatingUser

from . import kit
from .kit import BUYER, BUYER_ID, ORDER_ID, SELLER, SELLER_ID

NEW_KEY = "d4" * 32


def test_maker_rebinds_a_pending_buy_order_to_a_new_trade_key():
    order = kit.pending_order(Kind.BUY)
    request = kit.request(Action.TRADE_PUBKEY, NEW_KEY, identity=BUYER_ID, request_id=5)
    d = decide(OrderState(order), request, kit.ctx())
    rebound = replace(order, creator_pubkey=NEW_KEY, buyer_pubkey=NEW_KEY)
    assert d == Decision(
        OrderState(rebound), (notify(NEW_KEY, Action.TRADE_PUBKEY, ORDER_ID, request_id=5),)
    )


def test_only_the_makers_identity_may_rebind():
    order = kit.pending_order(Kind.SELL)
    request = kit.request(Action.TRADE_PUBKEY, NEW_KEY, identity=BUYER_ID)
    assert decide(OrderState(order), request, kit.ctx()) == Decision(
        OrderState(order), (cant_do(request, CantDoReason.INVALID_PUBKEY),)
    )


def test_rebinding_a_taken_order_is_refused():
    order = kit.taken_order(Kind.SELL, status=Status.ACTIVE)
    request = kit.request(Action.TRADE_PUBKEY, NEW_KEY, identity=SELLER_ID)
    assert decide(OrderState(order), request, kit.ctx()) == Decision(
        OrderState(order), (cant_do(request, CantDoReason.INVALID_ORDER_STATUS),)
    )


def test_seller_may_rate_from_settled_hold_invoice():
    order = kit.taken_order(Kind.BUY, status=Status.SETTLED_HOLD_INVOICE)
    request = kit.request(Action.RATE_USER, SELLER, payload=RatingUser(1), request_id=2)
    d = decide(OrderState(order), request, kit.ctx())
    assert d == Decision(
        OrderState(replace(order, seller_sent_rate=True)),
        (
            RecordRating(BUYER_ID, BUYER, 1),
            notify(SELLER, Action.RATE_RECEIVED, ORDER_ID, RatingUser(1), request_id=2),
        ),
    )


def test_each_side_rates_once():
    order = kit.taken_order(Kind.SELL, status=Status.SUCCESS)
    first = decide(
        OrderState(order), kit.request(Action.RATE_USER, SELLER, payload=RatingUser(4)), kit.ctx()
    )
    second = decide(
        first.state, kit.request(Action.RATE_USER, SELLER, payload=RatingUser(2)), kit.ctx()
    )
    assert second == Decision(first.state)
    buyer = decide(
        first.state, kit.request(Action.RATE_USER, BUYER, payload=RatingUser(5)), kit.ctx()
    )
    assert buyer.effects[0] == RecordRating(SELLER_ID, SELLER, 5)
    assert (buyer.state.order.buyer_sent_rate, buyer.state.order.seller_sent_rate) == (True, True)
