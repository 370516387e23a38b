"""``trade-pubkey``: the maker re-binds its not-yet-taken order to a new trade key (ORDER_FLOW.md §4.14).

Only the maker may do it, proved by its **identity** matching the maker
side's master key (sell: seller, buy: buyer); the maker's trade key and
``creator_pubkey`` become the sender. Allowed while the order is listed
(``pending``, or ``waiting-taker-bond`` during a bond race).

Deviation (ours): a sender whose identity is not the maker's gets
``invalid_pubkey`` (Rust: silent internal error).
"""

from __future__ import annotations

from adapters.nostr.protocol.enums import Action, CantDoReason, Kind, Status

from .evolve import replace
from .model import ClientRequest, Decision, DecisionContext, OrderState
from .replies import cant_do, notify

LISTED = frozenset({Status.PENDING, Status.WAITING_TAKER_BOND})


def handle_trade_pubkey(
    state: OrderState, request: ClientRequest, ctx: DecisionContext
) -> Decision:
    order = state.order
    if order.status not in LISTED:
        return Decision(state, (cant_do(request, CantDoReason.INVALID_ORDER_STATUS),))
    maker_identity = (
        order.master_seller_pubkey if order.kind == Kind.SELL else order.master_buyer_pubkey
    )
    if maker_identity is None or request.identity != maker_identity:
        return Decision(state, (cant_do(request, CantDoReason.INVALID_PUBKEY),))
    key = request.sender
    side = {"seller_pubkey": key} if order.kind == Kind.SELL else {"buyer_pubkey": key}
    rebound = replace(order, creator_pubkey=key, **side)
    ack = notify(key, Action.TRADE_PUBKEY, order.id, request_id=request.message.request_id)
    return Decision(replace(state, order=rebound), (ack,))
