"""The size of an anti-abuse bond in sats (BONDS.md §2), as one pure function.

`bond = max(round(amount_pct × amount_sats), base_amount_sats)`, with the
Rust daemon's edge rules: rounding half away from zero, saturation at the
i64 maximum instead of overflow, a non-positive amount or percentage gives
the floor, and a negative floor counts as 0.

No settings object, no I/O: callers pass the three numbers so the rule can
be tested on its own and used for takers and makers alike.
"""

from __future__ import annotations

from actors.rounding import round_half_away

I64_MAX = 2**63 - 1
# `i64::MAX as f64` in Rust: the nearest double, 2**63 exactly.
_I64_MAX_AS_FLOAT = float(2**63)


def bond_amount_sats(amount_sats: int, amount_pct: float, base_amount_sats: int) -> int:
    """Bond in sats for a take (or make) of `amount_sats` sats.

    `amount_sats` must be the amount of *this* take (market and range orders:
    the amount quoted for it), not the order's listed amount.
    """
    floor = min(max(base_amount_sats, 0), I64_MAX)
    # `not amount_pct > 0` also catches NaN, which Rust's `as i64` turns into 0.
    if amount_sats <= 0 or not amount_pct > 0:
        return floor
    proportional = float(min(amount_sats, I64_MAX)) * amount_pct
    if proportional >= _I64_MAX_AS_FLOAT:
        return I64_MAX
    return max(round_half_away(proportional), floor)
