"""Who is who on an order: maker/taker and buyer/seller keys, counterparties, reputations.

Small pure helpers over ``OrderRecord`` so handlers read as the spec does
("the taker", "the counterparty"). Every comparison is on **trade keys**
(ORDER_FLOW.md §0); identities only appear where the spec says so.
"""

from __future__ import annotations

from adapters.nostr.protocol.enums import Kind
from adapters.nostr.protocol.payloads import UserInfo

from .model import DecisionContext, OrderRecord

NO_REPUTATION = UserInfo(0.0, 0, 0)


def taker_key(order: OrderRecord) -> str | None:
    """Trade key of the taker: the buyer of a sell order, the seller of a buy order."""
    return order.buyer_pubkey if order.kind == Kind.SELL else order.seller_pubkey


def is_party(order: OrderRecord, key: str) -> bool:
    return key in (order.buyer_pubkey, order.seller_pubkey) and key is not None


def counterparty(order: OrderRecord, key: str) -> str | None:
    """The other side's trade key (buyer ↔ seller)."""
    if key == order.buyer_pubkey:
        return order.seller_pubkey
    if key == order.seller_pubkey:
        return order.buyer_pubkey
    return None


def reputation(ctx: DecisionContext, identity: str | None) -> UserInfo:
    """The identity's reputation notice (zeros when unknown or full-privacy)."""
    if identity is None:
        return NO_REPUTATION
    return ctx.reputations.get(identity, NO_REPUTATION)


def initiator_side(order: OrderRecord) -> str:
    """``buyer`` / ``seller`` for a dispute event, from the dispute flags."""
    if order.buyer_dispute and not order.seller_dispute:
        return "buyer"
    if order.seller_dispute and not order.buyer_dispute:
        return "seller"
    return "unknown"
