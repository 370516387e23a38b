"""``cancel`` in every status (ORDER_FLOW.md §4.10, PROTOCOL.md §5.3).

By status: the maker withdraws a pending order; in the waiting states the
maker cancels the trade and a taker walks away (the order is re-listed);
once sats are escrowed (active, fiat-sent, dispute) both parties must agree
(cooperative cancel). During a bond race (``waiting-taker-bond``, or a
pending order where the sender holds a bond) the bond logic decides.
Every exit releases the taker bonds (a no-op without bonds).
"""

from __future__ import annotations

from adapters.nostr.protocol.enums import Action, CantDoReason, Status

from . import bond_hooks
from .evolve import replace
from .model import (
    CancelHoldInvoice,
    ClientRequest,
    Decision,
    DecisionContext,
    Effect,
    OrderState,
    PublishDispute,
)
from .parties import counterparty, initiator_side, is_party, taker_key
from .replies import cant_do, notify
from .status_rules import CANCELED_STATUSES, status_refusal
from .steps import canceled_for_both, publish, relist_effects, relisted

WAITING = frozenset({Status.WAITING_PAYMENT, Status.WAITING_BUYER_INVOICE})


def handle_cancel(state: OrderState, request: ClientRequest, ctx: DecisionContext) -> Decision:
    order = state.order
    if order.status in CANCELED_STATUSES:
        return _refuse(state, request, CantDoReason.ORDER_ALREADY_CANCELED)
    refusal = status_refusal(Action.CANCEL, order.status)
    if refusal is not None:
        return _refuse(state, request, refusal)
    in_bond_window = order.status == Status.WAITING_TAKER_BOND or (
        order.status == Status.PENDING
        and request.sender != order.creator_pubkey
        and bond_hooks.holds_active_taker_bond(state, request.sender)
    )
    if in_bond_window:
        return bond_hooks.taker_bonds_module().cancel_in_bond_window(state, request, ctx)
    if order.status == Status.PENDING:
        return _cancel_pending(state, request, ctx)
    if order.status in WAITING:
        return _cancel_waiting(state, request, ctx)
    return _cancel_cooperatively(state, request, ctx)


def _refuse(state: OrderState, request: ClientRequest, reason: CantDoReason) -> Decision:
    return Decision(state, (cant_do(request, reason),))


def _cancel_pending(state: OrderState, request: ClientRequest, ctx: DecisionContext) -> Decision:
    order = state.order
    if request.sender != order.creator_pubkey:
        return _refuse(state, request, CantDoReason.IS_NOT_YOUR_ORDER)
    canceled = replace(order, status=Status.CANCELED)
    told = notify(
        order.creator_pubkey, Action.CANCELED, order.id, request_id=request.message.request_id
    )
    released, bond_effects = bond_hooks.release_taker_bonds(
        replace(state, order=canceled), ctx, notify=True
    )
    return Decision(released, (*publish(canceled), told, *bond_effects))


def _cancel_waiting(state: OrderState, request: ClientRequest, ctx: DecisionContext) -> Decision:
    order = state.order
    taker = taker_key(order)
    if request.sender == order.creator_pubkey:
        canceled, effects = canceled_for_both(order, Status.CANCELED)
        released, bond_effects = bond_hooks.release_taker_bonds(
            replace(state, order=canceled), ctx, notify=False
        )
        return Decision(released, (*effects, *bond_effects))
    if taker is not None and request.sender == taker:
        back = relisted(order)
        released, bond_effects = bond_hooks.release_taker_bonds(
            replace(state, order=back), ctx, notify=False
        )
        return Decision(released, (*relist_effects(order, back), *bond_effects))
    return _refuse(state, request, CantDoReason.INVALID_PUBKEY)


def _cancel_cooperatively(
    state: OrderState, request: ClientRequest, ctx: DecisionContext
) -> Decision:
    order = state.order
    sender = request.sender
    if not is_party(order, sender):
        return _refuse(state, request, CantDoReason.INVALID_PUBKEY)
    side_flag = (
        {"buyer_cooperativecancel": True}
        if sender == order.buyer_pubkey
        else {"seller_cooperativecancel": True}
    )
    other = counterparty(order, sender)
    request_id = request.message.request_id
    if order.cancel_initiator_pubkey is None:
        started = replace(order, cancel_initiator_pubkey=sender, **side_flag)
        effects = (
            notify(
                sender, Action.COOPERATIVE_CANCEL_INITIATED_BY_YOU, order.id, request_id=request_id
            ),
            notify(other, Action.COOPERATIVE_CANCEL_INITIATED_BY_PEER, order.id),
        )
        return Decision(replace(state, order=started), effects)
    if sender == order.cancel_initiator_pubkey:
        return _refuse(state, request, CantDoReason.INVALID_PUBKEY)
    agreed = replace(order, status=Status.COOPERATIVELY_CANCELED, **side_flag)
    effects: list[Effect] = []
    if order.hash is not None:
        effects.append(CancelHoldInvoice(order.hash))
    effects.extend(publish(agreed))
    effects.append(
        notify(sender, Action.COOPERATIVE_CANCEL_ACCEPTED, order.id, request_id=request_id)
    )
    effects.append(
        notify(order.cancel_initiator_pubkey, Action.COOPERATIVE_CANCEL_ACCEPTED, order.id)
    )
    dispute = state.dispute
    if dispute is not None:
        dispute = replace(dispute, status="seller-refunded")
        effects.append(PublishDispute(dispute, initiator_side(order)))
    released, bond_effects = bond_hooks.release_taker_bonds(
        replace(state, order=agreed, dispute=dispute), ctx, notify=False
    )
    return Decision(released, (*effects, *bond_effects))
