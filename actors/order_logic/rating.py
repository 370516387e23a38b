"""``rate-user`` after a trade, and the rating arithmetic (ORDER_FLOW.md §4.13, trap 15).

The handler decides *whether* a vote counts and emits ``RecordRating``; the
user row lives outside the order, so whoever applies ``RecordRating`` folds
the vote in with ``fold_rating`` (pure, here, so the odd formula is written
and tested once: the first vote counts half, later votes average in the
**previous** ``last_rating``).

Deviations (ours): a rating outside 1..5 (or no ``rating_user`` payload) is
``invalid_rating`` and a sender who is neither party is ``invalid_pubkey``
(Rust: silent). A second vote by the same side and a vote for a
full-privacy party stay silently ignored, as in Rust (they are not errors).
"""

from __future__ import annotations

from dataclasses import dataclass

from adapters.nostr.protocol.enums import MAX_RATING, MIN_RATING, Action, CantDoReason, Status
from adapters.nostr.protocol.payloads import RatingUser

from .evolve import replace
from .model import ClientRequest, Decision, DecisionContext, OrderState, RecordRating
from .replies import cant_do, notify
from .status_rules import status_refusal


@dataclass(frozen=True)
class RatingTotals:
    """The rating columns of a ``users`` row."""

    total_reviews: int = 0
    total_rating: float = 0.0
    last_rating: int = 0
    min_rating: int = 0
    max_rating: int = 0


def fold_rating(totals: RatingTotals, rating: int) -> RatingTotals:
    """The user's totals after one more vote (mostro-core ``User::update_rating``, as is)."""
    reviews = totals.total_reviews + 1
    if reviews == 1:
        return RatingTotals(reviews, rating / 2, rating, rating, rating)
    average = totals.total_rating + (totals.last_rating - totals.total_rating) / reviews
    return RatingTotals(
        total_reviews=reviews,
        total_rating=average,
        last_rating=rating,
        min_rating=min(totals.min_rating, rating),
        max_rating=max(totals.max_rating, rating),
    )


def handle_rate_user(state: OrderState, request: ClientRequest, ctx: DecisionContext) -> Decision:
    order = state.order
    sender = request.sender
    is_seller = sender == order.seller_pubkey
    refusal = status_refusal(Action.RATE_USER, order.status)
    if refusal is None and order.status == Status.SETTLED_HOLD_INVOICE and not is_seller:
        refusal = CantDoReason.INVALID_ORDER_STATUS
    if refusal is not None:
        return Decision(state, (cant_do(request, refusal),))
    if sender not in (order.buyer_pubkey, order.seller_pubkey) or sender is None:
        return Decision(state, (cant_do(request, CantDoReason.INVALID_PUBKEY),))
    if order.seller_sent_rate if is_seller else order.buyer_sent_rate:
        return Decision(state)
    payload = request.message.payload
    if not isinstance(payload, RatingUser) or not MIN_RATING <= payload.rating <= MAX_RATING:
        return Decision(state, (cant_do(request, CantDoReason.INVALID_RATING),))
    rated_key = order.buyer_pubkey if is_seller else order.seller_pubkey
    rated_identity = order.master_buyer_pubkey if is_seller else order.master_seller_pubkey
    if rated_identity is None or rated_identity == rated_key:
        return Decision(state)  # full-privacy party: no user row to rate
    voted = replace(
        order, **({"seller_sent_rate": True} if is_seller else {"buyer_sent_rate": True})
    )
    effects = (
        RecordRating(rated_identity, rated_key, payload.rating),
        notify(
            sender, Action.RATE_RECEIVED, order.id, payload, request_id=request.message.request_id
        ),
    )
    return Decision(replace(state, order=voted), effects)
