"""Read the reputations a decision may show (reputation notices, ratings in events).

Users are shared between orders, so the order actor reads them fresh for each
decision instead of keeping them in its state. The reads are fixed SQL text
(`storage.fixed_sql`): one runs per decision and one per published order event.
"""

from __future__ import annotations

from collections.abc import Iterable

from adapters.nostr.events import MakerRating
from adapters.nostr.protocol.payloads import UserInfo
from storage import fixed_sql

from .order_logic.model import OrderState

_REPUTATION_COLUMNS = '"pubkey", "total_rating", "total_reviews", "created_at"'
_MAKER_RATING = ('SELECT "total_rating", "total_reviews", "created_at" FROM "users"'
                 ' WHERE "pubkey" = ?')
# number of identities -> the statement (ordered, so the journal records the same context
# on every database backend)
_REPUTATIONS: dict[int, str] = {}


def user_info(total_rating: float | None, total_reviews: int | None, created_at: int | None,
              now: int) -> UserInfo:
    days = max(0, (now - (created_at or now)) // 86400)
    return UserInfo(
        rating=float(total_rating or 0.0),
        reviews=int(total_reviews or 0),
        operating_days=int(days),
    )


def _reputations_sql(count: int) -> str:
    sql = _REPUTATIONS.get(count)
    if sql is None:
        sql = _REPUTATIONS[count] = (
            f'SELECT {_REPUTATION_COLUMNS} FROM "users"'
            f' WHERE "pubkey" IN ({fixed_sql.placeholders(count)}) ORDER BY "pubkey"')
    return sql


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
    rows = fixed_sql.fetch_all(_reputations_sql(len(wanted)), sorted(wanted))
    return {pubkey: user_info(rating, reviews, created_at, now)
            for pubkey, rating, reviews, created_at in rows}


def maker_rating(identity: str) -> MakerRating | None:
    """The maker's reputation for the order event; None (zero rating) without a user row."""
    row = fixed_sql.fetch_one(_MAKER_RATING, (identity,))
    if row is None:
        return None
    rating, reviews, created_at = row
    return MakerRating(float(rating or 0.0), int(reviews or 0), int(created_at or 0))
