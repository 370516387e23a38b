"""The ``SmallOrder`` each audience is shown for an order (PROTOCOL.md §1.6, §5).

One function per view, so the amounts a party sees follow one rule
(ORDER_FLOW.md §3.1): the seller sees ``amount + fee`` (what it pays into the
hold invoice), the buyer sees ``amount − fee`` (what it receives). Views
never carry the buyer's invoice to anyone but the buyer.
"""

from __future__ import annotations

from adapters.nostr.protocol.enums import Status
from adapters.nostr.protocol.payloads import SmallOrder

from .model import OrderRecord


def listing_view(order: OrderRecord) -> SmallOrder:
    """The order as a maker sees it in ``new-order`` (ack, re-list notice, range child)."""
    return SmallOrder(
        id=order.id,
        kind=order.kind,
        status=order.status,
        amount=order.amount,
        fiat_code=order.fiat_code,
        min_amount=order.min_amount,
        max_amount=order.max_amount,
        fiat_amount=order.fiat_amount,
        payment_method=order.payment_method,
        premium=order.premium,
        buyer_invoice=order.buyer_invoice,
        created_at=order.created_at,
        expires_at=order.expires_at,
    )


def _trade_view(order: OrderRecord, status: Status, amount: int) -> SmallOrder:
    return SmallOrder(
        id=order.id,
        kind=order.kind,
        status=status,
        amount=amount,
        fiat_code=order.fiat_code,
        min_amount=order.min_amount,
        max_amount=order.max_amount,
        fiat_amount=order.fiat_amount,
        payment_method=order.payment_method,
        premium=order.premium,
        created_at=order.created_at,
        expires_at=order.expires_at,
    )


def seller_payment_view(order: OrderRecord) -> SmallOrder:
    """``pay-invoice`` to the seller: status waiting-payment, ``amount + fee``, no invoice."""
    return _trade_view(order, Status.WAITING_PAYMENT, order.amount + order.fee)


def buyer_invoice_request_view(order: OrderRecord, status: Status) -> SmallOrder:
    """``add-invoice`` to the buyer: ``amount − fee``, no pubkeys, no ``expires_at``.

    ``status`` is ``waiting-buyer-invoice`` when the trade asks for the first
    invoice and ``settled-hold-invoice`` when a failed payout asks for a new one.
    """
    view = _trade_view(order, status, order.amount - order.fee)
    return SmallOrder(**{**_fields(view), "expires_at": None})


def active_view(order: OrderRecord, *, for_seller: bool) -> SmallOrder:
    """``buyer-took-order`` (seller, ``amount + fee``) / ``hold-invoice-payment-accepted`` (buyer)."""
    amount = order.amount + order.fee if for_seller else order.amount - order.fee
    view = _trade_view(order, Status.ACTIVE, amount)
    return SmallOrder(
        **{
            **_fields(view),
            "buyer_trade_pubkey": order.buyer_pubkey,
            "seller_trade_pubkey": order.seller_pubkey,
        }
    )


def _fields(view: SmallOrder) -> dict:
    return {name: getattr(view, name) for name in SmallOrder.__dataclass_fields__}
