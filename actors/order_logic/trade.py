"""The buyer's and seller's trade steps: ``add-invoice``, ``fiat-sent``, ``release`` (+ range child).

Rules (ORDER_FLOW.md §4.6–§4.8, §3.4): pure handlers; checks run in the
Rust handler's order (its refusal reasons differ per action, trap 12) and
the first failing one is the whole answer. The escrow invoice lives in
``escrow``, the payout in ``payout``.

Deviation (ours): a missing ``payment_request`` in ``add-invoice`` is
``invalid_invoice``.
"""

from __future__ import annotations

from adapters.nostr.protocol.enums import Action, CantDoReason, Kind, Status
from adapters.nostr.protocol.payloads import NextTrade, OrderPayload, PaymentRequest, Peer

from . import bond_hooks
from .escrow import activation_messages, create_escrow
from .evolve import replace
from .invoice_rules import invoice_refusal
from .model import (
    ClientRequest,
    Decision,
    DecisionContext,
    Effect,
    OrderRecord,
    OrderState,
    PublishDispute,
    SettleHoldInvoice,
)
from .parties import initiator_side, reputation
from .payout import start_payout
from .replies import cant_do, notify
from .small_order import listing_view
from .status_rules import status_refusal
from .steps import derived_uuid, publish


# ---------------------------------------------------------------- add-invoice (§4.6)
def handle_add_invoice(state: OrderState, request: ClientRequest, ctx: DecisionContext) -> Decision:
    order = state.order
    if order.buyer_pubkey is None or request.sender != order.buyer_pubkey:
        return Decision(state, (cant_do(request, CantDoReason.INVALID_PEER),))
    payload = request.message.payload
    if not isinstance(payload, PaymentRequest) or not payload.invoice:
        return Decision(state, (cant_do(request, CantDoReason.INVALID_INVOICE),))
    refusal = invoice_refusal(
        payload.invoice,
        amount=order.amount,
        fee=order.fee,
        settings=ctx.settings,
        now=ctx.now,
        network=ctx.network,
    )
    if refusal is not None:
        return Decision(state, (cant_do(request, refusal),))
    if order.status == Status.SETTLED_HOLD_INVOICE:
        return _replace_failed_payout_invoice(state, request, payload.invoice)
    refusal = status_refusal(Action.ADD_INVOICE, order.status)
    if refusal is not None:
        return Decision(state, (cant_do(request, refusal),))
    with_invoice = replace(order, buyer_invoice=payload.invoice)
    request_id = request.message.request_id
    if with_invoice.preimage is not None:
        active = replace(with_invoice, status=Status.ACTIVE)
        return Decision(replace(state, order=active), activation_messages(active, request_id))
    notice = notify(
        order.seller_pubkey,
        Action.PAY_INVOICE,
        order.id,
        Peer("", reputation(ctx, order.master_buyer_pubkey)),
        request_id=request_id,
    )
    escrowed, effects = create_escrow(with_invoice, ctx, request_id)
    return Decision(replace(state, order=escrowed), (notice, *effects))


def _replace_failed_payout_invoice(
    state: OrderState, request: ClientRequest, invoice: str
) -> Decision:
    order = state.order
    if order.payout_payment_hash is not None:
        return Decision(state, (cant_do(request, CantDoReason.NOT_ALLOWED_BY_STATUS),))
    updated = replace(order, buyer_invoice=invoice, payment_attempts=0)
    told = notify(
        order.buyer_pubkey,
        Action.INVOICE_UPDATED,
        order.id,
        request_id=request.message.request_id,
    )
    return Decision(replace(state, order=updated), (told,))


# ---------------------------------------------------------------- fiat-sent (§4.7)
def handle_fiat_sent(state: OrderState, request: ClientRequest, ctx: DecisionContext) -> Decision:
    order = state.order
    refusal = status_refusal(Action.FIAT_SENT, order.status)
    if refusal is not None:
        return Decision(state, (cant_do(request, refusal),))
    if request.sender != order.buyer_pubkey:
        return Decision(state, (cant_do(request, CantDoReason.INVALID_PUBKEY),))
    after = replace(order, status=Status.FIAT_SENT)
    next_trade = request.message.payload
    if (
        isinstance(next_trade, NextTrade)
        and order.min_amount is not None
        and order.max_amount is not None
    ):
        after = replace(
            after, next_trade_pubkey=next_trade.pubkey, next_trade_index=next_trade.index
        )
    request_id = request.message.request_id
    effects = (
        notify(
            order.seller_pubkey,
            Action.FIAT_SENT_OK,
            order.id,
            Peer(order.buyer_pubkey),
            request_id=request_id,
        ),
        notify(
            order.buyer_pubkey,
            Action.FIAT_SENT_OK,
            order.id,
            Peer(order.seller_pubkey),
            request_id=request_id,
        ),
    )
    return Decision(replace(state, order=after), effects)


# ---------------------------------------------------------------- release (§4.8)
def handle_release(state: OrderState, request: ClientRequest, ctx: DecisionContext) -> Decision:
    order = state.order
    if order.seller_pubkey is None or request.sender != order.seller_pubkey:
        return Decision(state, (cant_do(request, CantDoReason.INVALID_PEER),))
    refusal = status_refusal(Action.RELEASE, order.status)
    if refusal is not None:
        return Decision(state, (cant_do(request, refusal),))
    if order.preimage is None or order.hash is None:
        return Decision(state, (cant_do(request, CantDoReason.INVALID_INVOICE),))
    request_id = request.message.request_id
    settled = replace(order, status=Status.SETTLED_HOLD_INVOICE)
    effects: list[Effect] = [SettleHoldInvoice(order.hash, order.preimage)]
    dispute = state.dispute
    if dispute is not None:
        dispute = replace(dispute, status="settled")
        effects.append(PublishDispute(dispute, initiator_side(order)))
    effects.append(notify(order.buyer_pubkey, Action.RELEASED, order.id, request_id=request_id))
    child = range_child(settled, request.message.payload, ctx)
    if child is not None:
        effects.append(
            notify(
                child.creator_pubkey,
                Action.NEW_ORDER,
                child.id,
                OrderPayload(listing_view(child)),
                trade_index=child.trade_index_seller
                if child.kind == Kind.SELL
                else child.trade_index_buyer,
            )
        )
        effects.extend(publish(child))
    effects.append(
        notify(
            order.seller_pubkey,
            Action.HOLD_INVOICE_PAYMENT_SETTLED,
            order.id,
            request_id=request_id,
        )
    )
    effects.append(notify(order.seller_pubkey, Action.RATE, order.id, request_id=request_id))
    after_release = replace(state, order=settled, dispute=dispute)
    after_release, bond_effects = bond_hooks.release_taker_bonds(after_release, ctx, notify=False)
    effects.extend(bond_effects)
    paying, payout_effects = start_payout(after_release.order, ctx)
    effects.extend(payout_effects)
    created = () if child is None else (OrderState(child),)
    return Decision(replace(after_release, order=paying), tuple(effects), created)


def range_child(parent: OrderRecord, payload, ctx: DecisionContext) -> OrderRecord | None:
    """The remainder of a range order after a released slice (§3.4), or None."""
    if parent.min_amount is None or parent.max_amount is None:
        return None
    new_max = parent.max_amount - parent.fiat_amount
    if new_max < parent.min_amount:
        return None
    if parent.kind == Kind.SELL:
        if not isinstance(payload, NextTrade) or parent.creator_pubkey != parent.seller_pubkey:
            return None
        key, index = payload.pubkey, payload.index
    else:
        if parent.next_trade_pubkey is None or parent.creator_pubkey != parent.buyer_pubkey:
            return None
        key, index = parent.next_trade_pubkey, parent.next_trade_index
    if new_max == parent.min_amount:
        bounds = {"fiat_amount": new_max, "min_amount": None, "max_amount": None}
    else:
        bounds = {"fiat_amount": 0, "min_amount": parent.min_amount, "max_amount": new_max}
    if parent.kind == Kind.SELL:
        full_privacy = parent.master_seller_pubkey == parent.seller_pubkey
        sides = {
            "seller_pubkey": key,
            "master_seller_pubkey": key if full_privacy else parent.master_seller_pubkey,
            "trade_index_seller": index,
            "buyer_pubkey": None,
            "master_buyer_pubkey": None,
            "trade_index_buyer": None,
        }
    else:
        full_privacy = parent.master_buyer_pubkey == parent.buyer_pubkey
        sides = {
            "buyer_pubkey": key,
            "master_buyer_pubkey": key if full_privacy else parent.master_buyer_pubkey,
            "trade_index_buyer": index,
            "seller_pubkey": None,
            "master_seller_pubkey": None,
            "trade_index_seller": None,
        }
    return OrderRecord(
        id=derived_uuid(ctx, f"child-of:{parent.id}"),
        kind=parent.kind,
        status=Status.PENDING,
        creator_pubkey=key,
        fiat_code=parent.fiat_code,
        payment_method=parent.payment_method,
        amount=0,
        premium=parent.premium,
        price_from_api=parent.price_from_api,
        fee=parent.fee,
        dev_fee=parent.dev_fee,
        range_parent_id=parent.id,
        created_at=parent.created_at,
        expires_at=parent.expires_at,
        **bounds,
        **sides,
    )
