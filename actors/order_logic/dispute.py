"""Opening a dispute (ORDER_FLOW.md §4.11); the escrow guard reuses ``open_dispute``.

Only the opening lives here. Solver actions (``admin-take-dispute``,
``admin-settle``, ``admin-cancel``) need the solver registry, which is not
part of an order's state; until they are built the dispatcher refuses them
with ``not_authorized``. In ``dispute`` the trade is frozen except for the
seller's ``release`` and a cooperative cancel (both in their own modules).

Deviation (ours): a second ``dispute`` on an order that already has one
(Rust: silent internal error) gets ``not_allowed_by_status`` — the order is
in ``dispute`` then, so the status check answers it; if a dispute row exists
while the status is still active/fiat-sent (cannot happen through this
module) the reply is ``dispute_creation_error``.
"""

from __future__ import annotations

from adapters.nostr.protocol.enums import Action, CantDoReason, Status
from adapters.nostr.protocol.payloads import DisputePayload

from .evolve import replace
from .model import (
    ClientRequest,
    Decision,
    DecisionContext,
    DisputeRecord,
    OrderState,
    PublishDispute,
)
from .parties import counterparty, initiator_side, is_party
from .replies import cant_do, notify
from .status_rules import status_refusal
from .steps import derived_uuid


def handle_dispute(state: OrderState, request: ClientRequest, ctx: DecisionContext) -> Decision:
    order = state.order
    refusal = status_refusal(Action.DISPUTE, order.status)
    if refusal is not None:
        return Decision(state, (cant_do(request, refusal),))
    if state.dispute is not None:
        return Decision(state, (cant_do(request, CantDoReason.DISPUTE_CREATION_ERROR),))
    if not is_party(order, request.sender):
        return Decision(state, (cant_do(request, CantDoReason.INVALID_PUBKEY),))
    already = order.buyer_dispute if request.sender == order.buyer_pubkey else order.seller_dispute
    if already:
        return Decision(state, (cant_do(request, CantDoReason.DISPUTE_CREATION_ERROR),))
    return open_dispute(state, request.sender, ctx, request_id=request.message.request_id)


def open_dispute(
    state: OrderState, initiator: str, ctx: DecisionContext, *, request_id: int | None
) -> Decision:
    """Freeze the trade in ``dispute`` on behalf of ``initiator`` (a party's trade key).

    Opening publishes no order event (trap 14), only the dispute event.
    """
    order = state.order
    flag = {"buyer_dispute": True} if initiator == order.buyer_pubkey else {"seller_dispute": True}
    disputed = replace(order, status=Status.DISPUTE, **flag)
    if state.dispute is None:
        dispute = DisputeRecord(
            id=derived_uuid(ctx, f"dispute:{order.id}"),
            order_id=order.id,
            status="initiated",
            order_previous_status=str(order.status),
            created_at=ctx.now,
        )
    else:  # the escrow guard re-opens a dispute row that already exists
        dispute = replace(
            state.dispute, status="initiated", order_previous_status=str(order.status)
        )
    payload = DisputePayload(dispute.id, None)
    effects = (
        notify(counterparty(order, initiator), Action.DISPUTE_INITIATED_BY_PEER, order.id, payload),
        notify(
            initiator, Action.DISPUTE_INITIATED_BY_YOU, order.id, payload, request_id=request_id
        ),
        PublishDispute(dispute, initiator_side(disputed)),
    )
    return Decision(replace(state, order=disputed, dispute=dispute), effects)
