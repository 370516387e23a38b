"""Sats arithmetic of a trade: Mostro fee, dev fee, market quotes, payout routing-fee cap.

Pure functions of numbers (ORDER_FLOW.md §3, §6.2), plus ``price_for`` which
reads the price snapshot carried in the decision context. Nothing here knows
about orders or messages. Rounding follows Rust: ``f64::round`` (half away
from zero) for fees, truncation toward zero (``as i64``) for quotes and caps.

Deviation (ours): a missing price for the currency (or a non-positive one) is
answered with ``price_too_stale`` instead of the Rust daemon's silent internal
error — the client learns that the price is the problem.
"""

from __future__ import annotations

import math

from actors.rounding import round_half_away
from adapters.nostr.protocol.enums import CantDoReason

from .model import DecisionContext

SATS_PER_BTC = 1e8
DEFAULT_MAX_PRICE_STALENESS_SECONDS = 1800


def mostro_fee(amount_sats: int, fee_fraction: float) -> int:
    """Per-party Mostro fee: half of ``fee_fraction × amount``, rounded half away from zero."""
    return round_half_away((fee_fraction * amount_sats) / 2.0)


def dev_fee(total_mostro_fee: int, dev_fee_percentage: float) -> int:
    """Dev-fund share of the *total* Mostro fee (``2 × per-party fee``)."""
    return round_half_away(total_mostro_fee * dev_fee_percentage)


def creation_quote(fiat_amount: int, price: float) -> int:
    """Sats for a fiat amount at creation-time checks: no premium, truncated."""
    return math.trunc((fiat_amount / price) * SATS_PER_BTC)


def market_quote(fiat_amount: int, price: float, premium: int) -> int:
    """Sats a taker trades for ``fiat_amount``: a positive premium *lowers* the sats (trap 5)."""
    sats = (fiat_amount / price) * SATS_PER_BTC
    if premium != 0:
        sats = sats - (premium / 100.0) * sats
    return math.trunc(sats)


def routing_fee_cap(payout_sats: int, max_routing_fee: float) -> int:
    """Most the node pays in routing fees for a buyer payout of ``payout_sats``."""
    if payout_sats <= 1000:
        return math.trunc(max(payout_sats * 0.01, 10.0))
    return math.trunc(payout_sats * max_routing_fee)


def price_for(ctx: DecisionContext, fiat_code: str) -> float | CantDoReason:
    """Fiat units per BTC for ``fiat_code`` from the snapshot, or why there is none usable."""
    snapshot = ctx.prices
    if snapshot is None:
        return CantDoReason.PRICE_TOO_STALE
    price_settings = getattr(ctx.settings, "price", None)
    max_age = getattr(
        price_settings, "max_price_staleness_seconds", DEFAULT_MAX_PRICE_STALENESS_SECONDS
    )
    if ctx.now - snapshot.taken_at > max_age:
        return CantDoReason.PRICE_TOO_STALE
    price = snapshot.prices.get(fiat_code)
    if price is None:
        price = snapshot.prices.get(fiat_code.upper())
    if price is None or not price > 0:
        return CantDoReason.PRICE_TOO_STALE
    return float(price)
