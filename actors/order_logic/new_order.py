"""``new-order``: validate a maker's order and create its row (ORDER_FLOW.md §4.1, §5.1).

Checks run in the Rust handler's order; the first failing one is the reply.
The new order's id comes from the decision's entropy; ``now`` from the
context. Maker bonds (``apply_to`` make/both) are Part B of BONDS.md and are
not handled here: the order is stored ``pending`` and published.

Deviations (ours): a ``buyer_invoice`` on a **sell** order is validated but
not stored (it would be the seller's own invoice, later paid as if it were
the buyer's); a missing ``trade_index`` from a non-full-privacy sender is
``invalid_trade_index`` (Rust: silent); a missing price is
``price_too_stale`` (Rust: silent); a missing ``order`` payload is
``invalid_payload`` (intake normally drops it first).
"""

from __future__ import annotations

from adapters.nostr.protocol.enums import Action, CantDoReason, Kind, Status
from adapters.nostr.protocol.payloads import OrderPayload, SmallOrder

from .fees import creation_quote, mostro_fee, price_for
from .invoice_rules import invoice_refusal
from .model import (
    ClientRequest,
    Decision,
    DecisionContext,
    Effect,
    OrderRecord,
    OrderState,
    RecordTradeIndex,
)
from .replies import cant_do, notify
from .small_order import listing_view
from .steps import derived_uuid, publish


def _is_range(order: SmallOrder) -> bool:
    return order.min_amount is not None and order.max_amount is not None


def new_order_refusal(
    order: SmallOrder, request: ClientRequest, ctx: DecisionContext
) -> CantDoReason | None:
    """Checks 1–8 of §4.1, in order."""
    settings = ctx.settings
    if order.buyer_invoice:
        refusal = invoice_refusal(
            order.buyer_invoice,
            amount=order.amount,
            fee=0,
            settings=settings,
            now=ctx.now,
            network=ctx.network,
        )
        if refusal is not None:
            return refusal
    accepted = settings.mostro.fiat_currencies_accepted
    if accepted and order.fiat_code not in accepted:
        return CantDoReason.INVALID_FIAT_CURRENCY
    if not _is_range(order) and order.fiat_amount <= 0:
        return CantDoReason.INVALID_AMOUNT
    if order.amount < 0:
        return CantDoReason.INVALID_AMOUNT
    if _is_range(order) and (
        order.min_amount < 0
        or order.max_amount < 0
        or order.min_amount >= order.max_amount
        or order.amount != 0
    ):
        return CantDoReason.INVALID_AMOUNT
    if order.premium != 0 and order.amount != 0:
        return CantDoReason.INVALID_PARAMETERS
    refusal = _sats_limits_refusal(order, ctx)
    if refusal is not None:
        return refusal
    if order.kind is None:
        return CantDoReason.INVALID_ORDER_KIND
    if request.message.trade_index is None and request.identity != request.sender:
        return CantDoReason.INVALID_TRADE_INDEX
    return None


def _sats_limits_refusal(order: SmallOrder, ctx: DecisionContext) -> CantDoReason | None:
    """Check 7: each fiat value (or the fixed sats amount) within the node's sats limits."""
    fiat_values = [order.min_amount, order.max_amount] if _is_range(order) else [order.fiat_amount]
    price: float | None = None
    for fiat in fiat_values:
        if order.amount > 0:
            quote = order.amount
        else:
            if price is None:
                found = price_for(ctx, order.fiat_code)
                if isinstance(found, CantDoReason):
                    return found
                price = found
            quote = creation_quote(fiat, price)
        if quote < 0:
            return CantDoReason.INVALID_AMOUNT
        mostro = ctx.settings.mostro
        if not mostro.min_payment_amount <= quote <= mostro.max_order_amount:
            return CantDoReason.OUT_OF_RANGE_SATS_AMOUNT
    return None


def expiration_of(order: SmallOrder, ctx: DecisionContext) -> int:
    """§5.1: the client's ``expires_at`` clamped to ``max_expiration_days``, else the default."""
    mostro = ctx.settings.mostro
    if order.expires_at is not None:
        return min(order.expires_at, ctx.now + mostro.max_expiration_days * 86400)
    return ctx.now + mostro.expiration_hours * 3600


def handle_new_order(request: ClientRequest, ctx: DecisionContext) -> Decision:
    payload = request.message.payload
    if not isinstance(payload, OrderPayload):
        return Decision(None, (cant_do(request, CantDoReason.INVALID_PAYLOAD),))
    wanted = payload.order
    refusal = new_order_refusal(wanted, request, ctx)
    if refusal is not None:
        return Decision(None, (cant_do(request, refusal),))
    trade_index = request.message.trade_index if request.message.trade_index is not None else 0
    if wanted.kind == Kind.SELL:
        maker_side = {
            "seller_pubkey": request.sender,
            "master_seller_pubkey": request.identity,
            "trade_index_seller": trade_index,
        }
    else:
        maker_side = {
            "buyer_pubkey": request.sender,
            "master_buyer_pubkey": request.identity,
            "trade_index_buyer": trade_index,
            "buyer_invoice": wanted.buyer_invoice or None,
        }
    created = OrderRecord(
        # The directory assigns the id before routing (it must know where the order lives);
        # a client's own id never gets this far. Pure callers without a directory get one
        # derived from the decision's entropy.
        id=request.message.id or derived_uuid(ctx, "new-order"),
        kind=wanted.kind,
        status=Status.PENDING,
        creator_pubkey=request.sender,
        fiat_code=wanted.fiat_code,
        payment_method=wanted.payment_method,
        amount=wanted.amount,
        fiat_amount=wanted.fiat_amount,
        min_amount=wanted.min_amount,
        max_amount=wanted.max_amount,
        premium=wanted.premium,
        price_from_api=wanted.amount == 0,
        fee=mostro_fee(wanted.amount, ctx.settings.mostro.fee) if wanted.amount > 0 else 0,
        dev_fee=0,
        created_at=ctx.now,
        expires_at=expiration_of(wanted, ctx),
        **maker_side,
    )
    effects: list[Effect] = []
    if request.message.trade_index is not None and request.identity != request.sender:
        effects.append(RecordTradeIndex(request.identity, request.message.trade_index))
    effects.extend(publish(created))
    effects.append(
        notify(
            request.sender,
            Action.NEW_ORDER,
            created.id,
            OrderPayload(listing_view(created)),
            request_id=request.message.request_id,
            trade_index=request.message.trade_index,
        )
    )
    return Decision(OrderState(created), tuple(effects))
