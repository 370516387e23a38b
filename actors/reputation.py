"""Read the reputations a decision may show (reputation notices, ratings in events).

Users are shared between orders, so the order actor reads them fresh for each
decision instead of keeping them in its state.
"""

from __future__ import annotations

from collections.abc import Iterable

from adapters.nostr.events import MakerRating
from adapters.nostr.protocol.payloads import UserInfo
from storage import models

from .order_logic.model import OrderState


def user_info(row: models.User, now: int) -> UserInfo:
    days = max(0, (now - (row.created_at or now)) // 86400)
    return UserInfo(
        rating=float(row.total_rating or 0.0),
        reviews=int(row.total_reviews or 0),
        operating_days=int(days),
    )


def reputations_for(
    state: OrderState | None, extra_identities: Iterable[str], now: int
) -> dict[str, UserInfo]:
    """UserInfo of the order's parties and of ``extra_identities``, keyed by identity key."""
    wanted = set(extra_identities)
    if state is not None:
        order = state.order
        wanted.update(k for k in (order.master_buyer_pubkey, order.master_seller_pubkey) if k)
    if not wanted:
        return {}
    # Ordered, so the journal records the same context on every database backend.
    rows = (models.User.select().where(models.User.pubkey.in_(sorted(wanted)))
            .order_by(models.User.pubkey))
    return {row.pubkey: user_info(row, now) for row in rows}


def maker_rating(identity: str) -> MakerRating | None:
    """The maker's reputation for the order event; None (zero rating) without a user row."""
    row = models.User.get_or_none(models.User.pubkey == identity)
    if row is None:
        return None
    return MakerRating(float(row.total_rating or 0.0), int(row.total_reviews or 0),
                       int(row.created_at or 0))
