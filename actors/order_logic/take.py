"""``take-sell`` / ``take-buy``: who may take, what the take fixes, and how the trade starts.

Three public pieces, shared with the bond logic (BONDS.md §4.1):
* ``take_refusal`` — the generic checks 2–6 of ORDER_FLOW.md §4.2/§4.3;
* ``take_snapshot`` — amount choice, market quote, fees, invoice, identity
  and trade index: a ``TakeSnapshot`` or the refusal reason;
* ``apply_take`` — writes a snapshot onto the order and continues exactly as
  a take without bonds (hold invoice, or ``add-invoice`` to the buyer).
``handle_take`` wires them for the bonds-off path and hands over to
``taker_bonds`` when bonds apply. No I/O; quotes come from ``ctx.prices``.

Deviations (ours): a take without ``trade_index`` from a non-full-privacy
sender is refused with ``invalid_trade_index`` (Rust: silent internal error);
a missing price is ``price_too_stale`` (see ``fees``).
"""

from __future__ import annotations

from adapters.nostr.protocol.enums import Action, CantDoReason, Kind, Status
from adapters.nostr.protocol.payloads import Amount, OrderPayload, PaymentRequest

from . import bond_hooks
from .escrow import create_escrow
from .evolve import replace
from .fees import dev_fee, market_quote, mostro_fee, price_for
from .invoice_rules import invoice_refusal
from .model import (
    ClientRequest,
    Decision,
    DecisionContext,
    Effect,
    OrderState,
    RecordTradeIndex,
    TakeSnapshot,
)
from .replies import cant_do, notify
from .small_order import buyer_invoice_request_view
from .status_rules import status_refusal
from .steps import publish

KIND_OF_TAKE = {Action.TAKE_SELL: Kind.SELL, Action.TAKE_BUY: Kind.BUY}


def take_refusal(
    state: OrderState, request: ClientRequest, ctx: DecisionContext
) -> CantDoReason | None:
    """Checks 2–6 of §4.2/§4.3, in order (check 1, order lookup, is the dispatcher's).

    A locked taker bond answers ``pending_order_exists`` before the status check
    (BONDS.md §4.6); without bonds that check never fires.
    """
    order = state.order
    action = request.message.action
    if request.pending_take_exists:
        return CantDoReason.PENDING_ORDER_EXISTS
    if order.kind != KIND_OF_TAKE[action]:
        return CantDoReason.INVALID_ORDER_KIND
    if bond_hooks.has_locked_taker_bond(state):
        # BONDS.md §4.6: once a taker bond won, later takers hear pending_order_exists,
        # even though the order has moved on to a waiting state
        return CantDoReason.PENDING_ORDER_EXISTS
    refusal = status_refusal(action, order.status)
    if refusal is not None:
        return refusal
    if order.expires_at > 0 and order.expires_at <= ctx.now:
        return CantDoReason.INVALID_ORDER_STATUS
    if request.sender == order.creator_pubkey:
        return CantDoReason.INVALID_PUBKEY
    return None


def _requested_fiat_amount(request: ClientRequest) -> int | None:
    payload = request.message.payload
    if isinstance(payload, Amount):
        return payload.amount
    if request.message.action == Action.TAKE_SELL and isinstance(payload, PaymentRequest):
        return payload.amount
    return None


def _take_invoice(request: ClientRequest) -> str | None:
    """Only ``take-sell`` reads an invoice (trap 3)."""
    payload = request.message.payload
    if request.message.action == Action.TAKE_SELL and isinstance(payload, PaymentRequest):
        return payload.invoice or None
    return None


def take_snapshot(
    state: OrderState, request: ClientRequest, ctx: DecisionContext
) -> TakeSnapshot | CantDoReason:
    """What this take fixes (checks 8–12): fiat amount, sats, fees, invoice, identity, index."""
    order = state.order
    if order.min_amount is not None and order.max_amount is not None:
        fiat_amount = _requested_fiat_amount(request)
        if fiat_amount is None or not order.min_amount <= fiat_amount <= order.max_amount:
            return CantDoReason.OUT_OF_RANGE_SATS_AMOUNT
    else:
        fiat_amount = order.fiat_amount
    if order.amount == 0:
        price = price_for(ctx, order.fiat_code)
        if isinstance(price, CantDoReason):
            return price
        amount = market_quote(fiat_amount, price, order.premium)
        fee = mostro_fee(amount, ctx.settings.mostro.fee)
    else:
        amount, fee = order.amount, order.fee
    invoice = _take_invoice(request)
    if invoice is not None:
        refusal = invoice_refusal(
            invoice, amount=amount, fee=fee, settings=ctx.settings, now=ctx.now, network=ctx.network
        )
        if refusal is not None:
            return refusal
    trade_index = request.message.trade_index
    if trade_index is None:
        if request.identity != request.sender:
            return CantDoReason.INVALID_TRADE_INDEX
        trade_index = 0
    return TakeSnapshot(
        taker_pubkey=request.sender,
        identity=request.identity,
        trade_index=trade_index,
        invoice=invoice,
        fiat_amount=fiat_amount,
        amount=amount,
        fee=fee,
        dev_fee=dev_fee(2 * fee, ctx.settings.mostro.dev_fee_percentage),
    )


def apply_take(
    state: OrderState, snapshot: TakeSnapshot, ctx: DecisionContext, request_id: int | None
) -> tuple[OrderState, tuple[Effect, ...]]:
    """Write the taker onto the order and start the trade (no trade-index record: callers do it)."""
    order = state.order
    if order.kind == Kind.SELL:
        taker_side = {
            "buyer_pubkey": snapshot.taker_pubkey,
            "master_buyer_pubkey": snapshot.identity,
            "trade_index_buyer": snapshot.trade_index,
            "buyer_invoice": snapshot.invoice,
        }
    else:
        taker_side = {
            "seller_pubkey": snapshot.taker_pubkey,
            "master_seller_pubkey": snapshot.identity,
            "trade_index_seller": snapshot.trade_index,
        }
    taken = replace(
        order,
        fiat_amount=snapshot.fiat_amount,
        amount=snapshot.amount,
        fee=snapshot.fee,
        dev_fee=snapshot.dev_fee,
        taken_at=ctx.now,
        **taker_side,
    )
    if order.kind == Kind.BUY or taken.buyer_invoice is not None:
        escrowed, effects = create_escrow(taken, ctx, request_id)
        return replace(state, order=escrowed), effects
    waiting = replace(taken, status=Status.WAITING_BUYER_INVOICE)
    effects = (
        notify(
            waiting.buyer_pubkey,
            Action.ADD_INVOICE,
            waiting.id,
            OrderPayload(buyer_invoice_request_view(waiting, Status.WAITING_BUYER_INVOICE)),
            request_id=request_id,
            trade_index=waiting.trade_index_buyer,
        ),
        notify(
            waiting.seller_pubkey,
            Action.WAITING_BUYER_INVOICE,
            waiting.id,
            request_id=request_id,
            trade_index=waiting.trade_index_seller,
        ),
        *publish(waiting),
    )
    return replace(state, order=waiting), effects


def handle_take(state: OrderState, request: ClientRequest, ctx: DecisionContext) -> Decision:
    """Route a take: generic checks, then bonds (if they apply) or the plain take."""
    refusal = take_refusal(state, request, ctx)
    if refusal is not None:
        return Decision(state, (cant_do(request, refusal),))
    bonds = None
    if bond_hooks.bonds_on_take(ctx.settings):
        bonds = bond_hooks.taker_bonds_module()
        early = bonds.precheck_take(state, request, ctx)
        if early is not None:
            return early
    elif state.order.status != Status.PENDING:
        # waiting-taker-bond with the feature now off: the race owns the order until it ends
        return Decision(state, (cant_do(request, CantDoReason.INVALID_ORDER_STATUS),))
    snapshot = take_snapshot(state, request, ctx)
    if isinstance(snapshot, CantDoReason):
        return Decision(state, (cant_do(request, snapshot),))
    if bonds is not None:
        return bonds.request_bond(state, snapshot, request, ctx)
    record = _trade_index_record(snapshot)
    taken, effects = apply_take(state, snapshot, ctx, request.message.request_id)
    return Decision(taken, (*record, *effects))


def _trade_index_record(snapshot: TakeSnapshot) -> tuple[Effect, ...]:
    """Full-privacy takers have no user row, so nothing to record for them."""
    if snapshot.identity == snapshot.taker_pubkey or snapshot.trade_index is None:
        return ()
    return (RecordTradeIndex(snapshot.identity, snapshot.trade_index),)
