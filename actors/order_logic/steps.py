"""State changes shared by several handlers: ids, publication, re-listing, two-sided cancel.

Each step returns a new ``OrderRecord`` plus the effects it implies; none of
them checks who asked (the handlers do that, in the spec's order). No I/O,
no clock (``now`` comes from the context), no randomness (``derive_bytes``).
"""

from __future__ import annotations

import hashlib
import uuid

from adapters.nostr.protocol.enums import Action, Kind, Status
from adapters.nostr.protocol.payloads import OrderPayload

from .evolve import replace
from .model import (
    CancelHoldInvoice,
    DecisionContext,
    Effect,
    OrderRecord,
    PublishOrder,
    derive_bytes,
)
from .parties import taker_key
from .publication import public_status
from .replies import notify
from .small_order import listing_view


def derived_uuid(ctx: DecisionContext, label: str) -> str:
    """A UUID v4 string from 16 bytes of the decision's entropy."""
    return str(uuid.UUID(bytes=derive_bytes(ctx.entropy, label)[:16], version=4))


def derived_preimage(ctx: DecisionContext, label: str) -> tuple[str, str]:
    """(preimage hex, sha256 hash hex) for a hold invoice we create."""
    preimage = derive_bytes(ctx.entropy, label)
    return preimage.hex(), hashlib.sha256(preimage).hexdigest()


def publish(order: OrderRecord) -> tuple[Effect, ...]:
    """``PublishOrder`` if the order's status is published at all (PROTOCOL.md §3.1)."""
    status = public_status(order.status, order.kind)
    return () if status is None else (PublishOrder(order, status),)


def cancel_escrow(order: OrderRecord) -> tuple[Effect, ...]:
    return () if order.hash is None else (CancelHoldInvoice(order.hash),)


def relisted(order: OrderRecord) -> OrderRecord:
    """The order back in the book after its taker left (ORDER_FLOW.md §4.10, §5.2).

    Market amounts are zeroed so the next take re-quotes; the taker side is
    cleared; trade indexes and ``expires_at`` are kept (trap 9).
    """
    market = order.price_from_api
    return replace(
        without_taker(order),
        status=Status.PENDING,
        amount=0 if market else order.amount,
        fee=0 if market else order.fee,
        dev_fee=0 if market else order.dev_fee,
        hash=None,
        preimage=None,
        buyer_invoice=None,
        taken_at=0,
        invoice_held_at=0,
    )


def without_taker(order: OrderRecord) -> OrderRecord:
    """The order with the taker's trade and identity keys cleared (trade indexes kept)."""
    if order.kind == Kind.SELL:
        return replace(order, buyer_pubkey=None, master_buyer_pubkey=None)
    return replace(order, seller_pubkey=None, master_seller_pubkey=None)


def relist_effects(before: OrderRecord, after: OrderRecord) -> tuple[Effect, ...]:
    """Escrow cancel, ``canceled`` to the leaving taker, republish, ``new-order`` to the maker."""
    leaving = taker_key(before)
    told_taker = () if leaving is None else (notify(leaving, Action.CANCELED, before.id),)
    return (
        *cancel_escrow(before),
        *told_taker,
        *publish(after),
        notify(after.creator_pubkey, Action.NEW_ORDER, after.id, OrderPayload(listing_view(after))),
    )


def canceled_for_both(order: OrderRecord, status: Status) -> tuple[OrderRecord, tuple[Effect, ...]]:
    """Escrow cancel, new ``status``, republish, ``canceled`` to maker then taker."""
    after = replace(order, status=status)
    taker = taker_key(order)
    told = [notify(order.creator_pubkey, Action.CANCELED, order.id)]
    if taker is not None:
        told.append(notify(taker, Action.CANCELED, order.id))
    return after, (*cancel_escrow(order), *publish(after), *told)
